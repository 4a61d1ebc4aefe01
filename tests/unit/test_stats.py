"""Verdict logic on counts: known answers, and the error rate of `fixed` under no change."""

import random

import pytest
from scipy import stats as sps

from harness.judging import stats
from harness.judging.stats import Verdict


def test_wilson_interval_contains_the_rate_and_is_sane_at_zero():
    r = stats.rate(22, 100)
    assert r.low < 0.22 < r.high and 0.14 < r.low < 0.16
    z = stats.rate(0, 100)
    assert z.low == 0 and 0.03 < z.high < 0.04


def test_clear_fix_is_fixed_at_the_first_look():
    d = stats.decide((22, 100), (0, 100), alpha=0.001, looks=8, budget_reached=False)
    assert d.verdict is Verdict.FIXED and d.final and d.p_fixed < 0.001 / 8


def test_regression_is_seen():
    d = stats.decide((0, 100), (30, 100), alpha=0.001, looks=4, budget_reached=False)
    assert d.verdict is Verdict.REGRESSION


def test_undecided_continues_until_the_budget():
    d = stats.decide((2, 20), (0, 20), alpha=0.001, looks=8, budget_reached=False)
    assert (d.verdict, d.final) == (Verdict.INCONCLUSIVE, False)
    d = stats.decide((2, 20), (0, 20), alpha=0.001, looks=8, budget_reached=True)
    assert (d.verdict, d.final) == (Verdict.INCONCLUSIVE, True)


def test_baseline_against_itself_is_not_fixed():
    d = stats.decide((20, 100), (21, 100), alpha=0.001, looks=8, budget_reached=False)
    assert d.verdict is Verdict.NOT_FIXED and d.final
    d = stats.decide((0, 100), (0, 100), alpha=0.001, looks=8, budget_reached=True)
    assert d.verdict is Verdict.INCONCLUSIVE


def test_bonferroni_spending_makes_a_later_fixed_harder():
    one = stats.decide((8, 50), (0, 50), alpha=0.01, looks=1, budget_reached=False)
    eight = stats.decide((8, 50), (0, 50), alpha=0.01, looks=8, budget_reached=False)
    assert one.verdict is Verdict.FIXED and eight.verdict is Verdict.INCONCLUSIVE


def test_false_fixed_rate_under_no_change_stays_below_alpha():
    """Simulate identical kernels (true rate 20 %) through the whole sequential procedure."""
    rng = random.Random(1)
    alpha, looks, per_look, campaigns, false_fixed = 0.05, 5, 40, 400, 0
    for _ in range(campaigns):
        a = b = n = 0
        for look in range(1, looks + 1):
            a += sum(rng.random() < 0.2 for _ in range(per_look))
            b += sum(rng.random() < 0.2 for _ in range(per_look))
            n += per_look
            d = stats.decide((a, n), (b, n), alpha=alpha, looks=looks, budget_reached=look == looks)
            if d.final:
                false_fixed += d.verdict is Verdict.FIXED
                break
    assert false_fixed / campaigns <= alpha


def test_boots_that_share_a_rate_are_not_flagged():
    spread = stats.boot_spread([(6, 100), (7, 100), (8, 100)])
    assert spread.p_homogeneous > 0.5 and not spread.suspicious


def test_boots_where_a_pinned_page_landed_in_the_area_or_not_are_flagged():
    """Seen on stock journaled ext4: a boot whose jbd2-held inode-table page landed in the area failed
    every loop, the next one none."""
    spread = stats.boot_spread([(100, 100), (0, 100), (0, 100)])
    assert spread.p_homogeneous < 1e-3 and spread.suspicious


def test_spread_p_agrees_with_the_chi_square_approximation_where_that_holds():
    counts = [(30, 100), (45, 100), (50, 100), (38, 100)]
    table = [[e, n - e] for e, n in counts]
    asymptotic = sps.chi2_contingency(table, correction=False)[1]
    assert abs(stats.boot_spread(counts).p_homogeneous - asymptotic) < 0.01


def test_spread_needs_two_boots_and_something_to_spread():
    assert stats.boot_spread([(5, 100)]).p_homogeneous is None
    assert stats.boot_spread([(0, 100), (0, 50)]).p_homogeneous is None
    assert stats.boot_spread([(100, 100), (50, 50)]).p_homogeneous is None
    assert stats.boot_spread([(3, 100), (0, 0)]).p_homogeneous is None     # a boot with no loop is no boot


def test_spread_is_reproducible():
    counts = [(3, 100), (0, 100), (9, 100)]
    assert stats.boot_spread(counts).p_homogeneous == stats.boot_spread(counts).p_homogeneous


def test_ab_summary_warns_when_an_arms_boots_disagree(tmp_path):
    from harness.present.text import campaign_text

    def arm(variant, per_boot):
        events, loops = sum(e for e, _ in per_boot), sum(n for _, n in per_boot)
        r = stats.rate(events, loops).as_dict()
        return {"variant": variant, "loops": loops, "failed_loops": r, "lru_caused_loops": r,
                "failed_chunks_by_cause": {"P": events},
                "between_boots": stats.boot_spread(per_boot).as_dict()}

    result = {"metric": "failed loops", "verdict": "not-fixed", "decision": None,
              "variants": {"baseline": arm("reintroduce-2012", [(9, 100), (8, 100)]),
                           "patched": arm("stock", [(100, 100), (0, 100)])}}
    text = campaign_text(result, tmp_path)
    assert "warning: patched stock: the boots disagree (failed loops per boot: 100/100, 0/100" in text
    assert "warning: baseline" not in text
    assert "per boot (failed loops): baseline 9/100, 8/100; patched 100/100, 0/100" in text


# Recorded: `cma-harness ab images/scenarios/journal.yaml --baseline stock --patched stock --loops-per-run 50
# --budget 200` (stock against itself, journaled ext4), failed loops per boot. Two of the baseline's four
# boots had a jbd2-held page in the area and failed every loop; no other boot failed a loop.
JOURNAL_NULL_BASELINE = [(0, 50), (0, 50), (50, 50), (50, 50)]
JOURNAL_NULL_PATCHED = [(0, 50), (0, 50), (0, 50), (0, 50)]


def test_a_null_experiment_whose_boots_disagree_is_not_called_fixed():
    counts = (100, 200), (0, 200)
    naive = stats.decide(*counts, alpha=0.001, looks=4, budget_reached=True)
    assert naive.verdict is Verdict.FIXED, "taken loop by loop, stock 'fixed' stock"
    d = stats.decide(*counts, alpha=0.001, looks=4, budget_reached=True,
                     baseline_boots=JOURNAL_NULL_BASELINE, patched_boots=JOURNAL_NULL_PATCHED)
    assert d.verdict is not Verdict.FIXED and d.by_boot == ("baseline",)
    # Both failing boots among the baseline's four happens in C(6,2) = 15 of the C(8,4) = 70 arrangements.
    assert d.p_fixed == pytest.approx(15 / 70)
    assert "boots disagree" in d.reason and "--loops-per-run" in d.reason


def test_boots_that_agree_leave_the_loop_level_verdict_alone():
    base, patched = [(5, 100), (6, 100), (10, 100)], [(0, 100), (0, 100), (0, 100)]
    plain = stats.decide((21, 300), (0, 300), alpha=0.001, looks=6, budget_reached=False)
    d = stats.decide((21, 300), (0, 300), alpha=0.001, looks=6, budget_reached=False,
                     baseline_boots=base, patched_boots=patched)
    assert d == plain and d.verdict is Verdict.FIXED and d.by_boot == ()


def test_boot_level_p_is_exact_for_few_boots_and_one_sided():
    assert stats.p_less_by_boot([(0, 10)] * 3, [(5, 10)] * 3) == pytest.approx(1 / 20)
    assert stats.p_less_by_boot([(5, 10)] * 3, [(0, 10)] * 3) == pytest.approx(1.0)
    assert stats.p_less_by_boot([], [(5, 10)]) == 1.0
