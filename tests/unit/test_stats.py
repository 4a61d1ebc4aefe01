"""Descriptive statistics: Wilson intervals and the boot-spread figure shown beside the verdict; the
journal's recorded A/A boots through the verdict's own decide() (judging/sequential)."""

import pytest
from scipy import stats as sps

from harness.judging import sequential, stats
from harness.orchestrate.campaign import Plan


def test_wilson_interval_contains_the_rate_and_is_sane_at_zero():
    r = stats.rate(22, 100)
    assert r.low < 0.22 < r.high and 0.14 < r.low < 0.16
    z = stats.rate(0, 100)
    assert z.low == 0 and 0.03 < z.high < 0.04


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

    result = {"metric": "failed loops", "verdict": "no-effect-shown", "decision": None,
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


@pytest.mark.parametrize("baseline", [JOURNAL_NULL_BASELINE, sorted(JOURNAL_NULL_BASELINE, reverse=True)],
                         ids=["recorded order", "failing boots first"])
def test_the_recorded_journal_null_experiment_is_never_fixed(baseline):
    """Taken loop by loop, 100/200 against 0/200 'fixes' stock with stock; boot by boot, both failing boots
    among the baseline's four happen in C(6,2) = 15 of the C(8,4) = 70 arrangements, and this plan cannot
    even reach a verdict with four boots per arm."""
    plan = Plan("stock", "stock", loops_per_run=50, budget=200)
    for k in range(1, 5):
        d = sequential.decide(baseline[:k], JOURNAL_NULL_PATCHED[:k], plan=plan)
        assert d.verdict not in (sequential.Verdict.FIXED, sequential.Verdict.REGRESSION)
    assert d.final and d.p_fixed == pytest.approx(15 / 70)
    assert "cannot reach a verdict" in d.reason and "more, shorter boots" in d.reason
