"""The sequential boot-level verdict: exact p-values, the spending schedule, verdicts and their reasons, and
the false-verdict rate of the real decide() under no change, by a fast seeded simulation."""

import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as sps

from harness.judging.boot_test import boot_test, smallest_p
from harness.judging.sequential import (
    Design,
    Verdict,
    all_or_nothing,
    at_look,
    beta_binomial,
    decide,
    feasibility,
    schedule,
    simulate,
)

ISSUE_AA = Design(loops_per_run=50, budget=200, alpha=0.001)      # the journaled A/A campaign of the issue


def brute_force(baseline, patched):
    """Every relabelling of whole boots that keeps each arm's boots per length, counted one by one."""
    boots = [b for b in baseline + patched if b[1] > 0]
    observed = sum(e for e, n in baseline if n > 0)
    per_length = []
    for n in sorted({n for _, n in boots}):
        counts = [e for e, m in boots if m == n]
        k = sum(1 for _, m in baseline if m == n)
        per_length.append([sum(counts[i] for i in c) for c in itertools.combinations(range(len(counts)), k)])
    sums = [sum(c) for c in itertools.product(*per_length)]
    return (Fraction(sum(s >= observed for s in sums), len(sums)),
            Fraction(sum(s <= observed for s in sums), len(sums)))


def test_three_boots_each_all_baseline_boots_failing_more_is_one_in_twenty():
    t = boot_test([(5, 10), (4, 10), (3, 10)], [(0, 10), (1, 10), (2, 10)])
    assert t.p_fixed == Fraction(1, 20) and t.p_regression == 1 and t.arrangements == 20
    t = boot_test([(0, 10), (1, 10), (2, 10)], [(5, 10), (4, 10), (3, 10)])
    assert t.p_regression == Fraction(1, 20) and t.p_fixed == 1


def test_ties_count_as_at_least_as_extreme():
    # Two of four boots failed, both in the baseline: C(4, 2) = 6 arrangements, one as extreme.
    assert boot_test([(2, 10), (1, 10)], [(0, 10), (0, 10)]).p_fixed == Fraction(1, 6)
    # One baseline boot failed no loop: it ties with the patched ones, 3 of C(6, 3) = 20 are as extreme.
    assert boot_test([(2, 10), (1, 10), (0, 10)], [(0, 10)] * 3).p_fixed == Fraction(4, 20)


def test_unequal_boot_lengths_are_permuted_within_their_length():
    # Length 10: {3, 0}, length 5: {1, 0}; 2 x 2 arrangements, the observed one the only one summing to 4.
    t = boot_test([(3, 10), (1, 5)], [(0, 10), (0, 5)])
    assert (t.p_fixed, t.p_regression, t.arrangements) == (Fraction(1, 4), 1, 4)
    # A topped-up boot alone in its length cannot move: it contributes nothing either way.
    assert boot_test([(3, 10), (2, 7)], [(0, 10)]).p_fixed == Fraction(1, 2)


def test_zero_loop_boots_are_ignored_and_one_boot_per_arm_does_not_raise():
    assert boot_test([(3, 10), (0, 0)], [(0, 10), (0, 0)]) == boot_test([(3, 10)], [(0, 10)])
    assert boot_test([(3, 10)], [(0, 10)]).p_fixed == Fraction(1, 2)
    assert boot_test([(3, 10)], []).p_fixed == 1 and boot_test([], []).p_regression == 1
    with pytest.raises(ValueError):
        boot_test([(11, 10)], [(0, 10)])


def test_exact_counts_match_enumeration():
    rng = np.random.default_rng(5)
    for _ in range(300):
        arm = lambda: [(int(rng.integers(0, n + 1)), n) for n in rng.choice([0, 3, 5, 5], rng.integers(0, 6))]
        baseline, patched = arm(), arm()
        t = boot_test(baseline, patched)
        assert (t.p_fixed, t.p_regression) == brute_force(baseline, patched), (baseline, patched)


def test_thirty_boots_per_arm_are_exact_and_fast():
    """Beyond 2^62 arrangements the counts run modulo primes; checked against plain integer counting."""
    rng = np.random.default_rng(2)
    baseline = [(int(rng.binomial(100, 0.2)), 100) for _ in range(30)]
    patched = [(int(rng.binomial(100, 0.2)), 100) for _ in range(30)]
    t = boot_test(baseline, patched)
    ways = [{} for _ in range(31)]
    ways[0][0] = 1
    for e, _ in baseline + patched:
        for c in range(30, 0, -1):
            for s, v in ways[c - 1].items():
                ways[c][s + e] = ways[c].get(s + e, 0) + v
    observed = sum(e for e, _ in baseline)
    assert t.arrangements == math.comb(60, 30) == sum(ways[30].values())
    assert t.p_fixed == Fraction(sum(v for s, v in ways[30].items() if s >= observed), t.arrangements)
    assert t.p_regression == Fraction(sum(v for s, v in ways[30].items() if s <= observed), t.arrangements)


def test_the_schedule_spends_at_most_half_alpha_per_direction_and_only_where_reachable():
    for plan in (Design(), Design(10, 300), Design(25, 250), Design(7, 600, 0.01), ISSUE_AA):
        looks = schedule(plan)
        assert sum(x.level for x in looks) <= plan.alpha / 2 * (1 + 1e-12)
        assert all(x.level == 0 or x.smallest_p <= x.level for x in looks)
        assert looks[-1].loops == plan.budget
    assert smallest_p(7) == Fraction(1, 3432)
    assert all(x.level == 0 for x in schedule(Design()) if x.index < 7)      # alpha 0.001: 7 boots per arm at least


def test_looks_are_after_each_equal_pair_and_after_a_topped_up_boot():
    plan = Design()
    assert at_look([(1, 10)], [(0, 10)], plan)
    assert not at_look([(1, 10), (0, 10)], [(0, 10)], plan)
    assert at_look([(1, 10), (0, 6), (0, 4)], [(0, 10), (2, 10)], plan)    # an interrupted boot, topped up
    assert not at_look([(1, 6)], [(0, 6)], plan)


def test_one_boot_per_arm_never_gives_a_verdict():
    for plan in (Design(), Design(10, 10), Design(10, 20, 0.4)):
        d = decide([(10, 10)], [(0, 10)], plan=plan)
        assert d.verdict not in (Verdict.FIXED, Verdict.REGRESSION)
        d = decide([(0, 10)], [(10, 10)], plan=plan)
        assert d.verdict not in (Verdict.FIXED, Verdict.REGRESSION)
    assert decide([], [], plan=Design()).verdict is Verdict.INCONCLUSIVE


def test_the_journal_a_a_counts_are_never_fixed_in_any_order():
    """Measured on journaled ext4, stock against itself, 50 loops per boot: two boots failed every loop,
    the others none. Every arrangement of four full and four empty boots over the two arms, in every run
    order, at every look of the issue's plan (50-loop boots, budget 200): never `fixed` nor `regression`."""
    for full in itertools.combinations(range(8), 4):
        boots = [(50, 50) if i in full else (0, 50) for i in range(8)]
        baseline, patched = boots[:4], boots[4:]
        for k in range(1, 5):
            d = decide(baseline[:k], patched[:k], plan=ISSUE_AA)
            assert d.verdict not in (Verdict.FIXED, Verdict.REGRESSION), (baseline, patched, k)
        assert d.final and d.verdict is Verdict.INCONCLUSIVE and "cannot reach a verdict" in d.reason
    d = decide([(50, 50), (50, 50), (0, 50), (0, 50)], [(0, 50)] * 4, plan=ISSUE_AA)
    assert d.p_fixed == pytest.approx(15 / 70)          # the loop-level count, 100/200 against 0/200, is no evidence


def test_a_crash_mid_campaign_says_so_and_gives_no_verdict():
    baseline = [(3, 10)] * 9 + [(1, 4)]
    patched = [(0, 10)] * 9
    d = decide(baseline, patched, plan=Design(), stopped="run 005-stock crashed at loop 12")
    assert d.final and d.verdict is Verdict.INCONCLUSIVE
    assert d.reason.startswith("stopped: run 005-stock crashed at loop 12") and "continuing" not in d.reason
    assert d.as_dict()["stopped"] == "run 005-stock crashed at loop 12"
    clear = decide([(3, 10)] * 12, [(0, 10)] * 12, plan=Design())
    assert clear.verdict is Verdict.FIXED
    assert decide([(3, 10)] * 12, [(0, 10)] * 12, plan=Design(), stopped="run 023-stock hung").verdict is Verdict.INCONCLUSIVE


def test_a_regression_futility_used_to_swallow_is_a_regression():
    """Boots of 10 loops, baseline 5 % and patched 15 % per loop, drawn with numpy's default_rng(1) (the
    first 20 boots of each arm). The old design (loop-level Fisher with a futility stop), at its first look
    (100 loops per arm: 5 vs 18 failed loops), stopped for futility with `not-fixed`; this one has no
    futility stop and finds the regression at 200 loops."""
    baseline = [0, 2, 0, 2, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    patched = [1, 0, 2, 2, 3, 1, 1, 2, 2, 4, 0, 1, 3, 1, 2, 0, 2, 3, 3, 3]
    plan = Design()
    for k in range(1, 21):
        d = decide([(e, 10) for e in baseline[:k]], [(e, 10) for e in patched[:k]], plan=plan)
        if d.final:
            break
    assert d.verdict is Verdict.REGRESSION and k == 20 and d.p_regression <= d.level


def test_verdicts_at_the_budget_say_what_the_campaign_could_have_seen():
    plan = Design(10, 200)
    same = decide([(2, 10)] * 20, [(2, 10)] * 20, plan=plan)
    assert same.verdict is Verdict.NO_EFFECT_SHOWN and same.final
    assert "perfect" not in same.reason and "removed every failure" in same.reason and "80 % power" in same.reason
    quiet = decide([(0, 10)] * 20, [(0, 10)] * 20, plan=plan)
    assert quiet.verdict is Verdict.BASELINE_DOES_NOT_REPRODUCE
    rare = decide([(1, 10)] * 2 + [(0, 10)] * 18, [(0, 10)] * 20, plan=plan)
    assert rare.verdict is Verdict.BASELINE_DOES_NOT_REPRODUCE and "never failed" in rare.reason
    going = decide([(2, 10)] * 5, [(2, 10)] * 5, plan=plan)
    assert going.verdict is Verdict.INCONCLUSIVE and not going.final and going.reason.endswith("continuing")


def test_the_decision_is_a_json_line():
    d = decide([(3, 10)] * 12, [(0, 10)] * 12, plan=Design())
    doc = json.loads(json.dumps(d.as_dict()))
    assert doc["verdict"] == "fixed" and doc["final"] is True and doc["look"] == 12
    assert doc["p_fixed"] <= doc["level_fixed"] and doc["baseline"]["events"] == 36
    assert doc["patched_boots"] == [[0, 10]] * 12 and doc["stopped"] is None


def test_feasibility_says_when_the_budget_cannot_reach_a_verdict():
    low = feasibility(0.01, Design())
    assert low.p_fixed < 0.05 and "cannot reach a verdict" in low.advice and "would" in low.advice
    assert "cannot reach a verdict" in feasibility(0.01, Design(100, 600)).advice
    demo = feasibility(0.105, Design(), rho=0.016)
    assert demo.p_fixed > 0.99 and "can reach a verdict" in demo.advice and demo.median_loops <= 200
    assert feasibility(0.10, ISSUE_AA).p_fixed == 0                 # four boots per arm: p >= 1/70


# The false-verdict test. alpha = 0.05 (not the default 0.001) so that a few hundred campaigns can tell a
# valid design (false `fixed` <= alpha/2 = 2.5 %) from a broken one: a loop-level Fisher test in the same
# schedule calls `fixed` in far more. The count is compared with the 99.9 % quantile of Binomial(campaigns,
# alpha/2): a valid design exceeds it with probability below 0.1 % whatever the seed, so the margin is not
# tuned to the seed. Boots of 50 loops (long enough that loop-level overconfidence shows at rho 0.05),
# budget 500 (ten looks), both arms the same kernel.
SIM_PLAN = Design(loops_per_run=50, budget=500, alpha=0.05)
CAMPAIGNS = 300
NO_CHANGE = {"beta-binomial rho 0.05": beta_binomial(0.1, 0.05), "beta-binomial rho 0.2": beta_binomial(0.1, 0.2),
             "all or nothing": all_or_nothing(0.1)}


def false_verdicts(draw, decide_fn=decide, seed=0):
    rng = np.random.default_rng(seed)
    counts = {Verdict.FIXED: 0, Verdict.REGRESSION: 0}
    for _ in range(CAMPAIGNS):
        d, _ = simulate(SIM_PLAN, draw, draw, rng, decide_fn=decide_fn)
        if d.verdict in counts:
            counts[d.verdict] += 1
    return counts


@pytest.mark.parametrize("name", NO_CHANGE)
def test_false_fixed_stays_below_alpha_under_no_change(name):
    counts = false_verdicts(NO_CHANGE[name], seed=sorted(NO_CHANGE).index(name))
    margin = sps.binom.ppf(0.999, CAMPAIGNS, SIM_PLAN.alpha / 2)
    assert counts[Verdict.FIXED] <= margin, counts
    assert counts[Verdict.REGRESSION] <= margin, counts
    assert counts[Verdict.FIXED] + counts[Verdict.REGRESSION] <= sps.binom.ppf(0.999, CAMPAIGNS, SIM_PLAN.alpha)
