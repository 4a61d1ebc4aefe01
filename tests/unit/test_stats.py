"""Verdict logic on counts: known answers, and the error rate of `fixed` under no change."""

import random

import pytest

from harness import stats
from harness.stats import Verdict


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
