"""The campaign's verdict as it was before the boot-level design (loop-level Fisher, a boot-spread guard,
futility; Bonferroni over looks), kept verbatim for benchmarks/verdict_errors.py's side-by-side figures.
Not used by the harness."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as sps

from harness.judging.stats import Rate, boot_spread, rate

class Verdict(enum.Enum):
    FIXED = "fixed"                # patched fails significantly less often than baseline
    NOT_FIXED = "not-fixed"        # the patched kernel still fails, not significantly less often
    REGRESSION = "regression"      # patched fails significantly more often
    INCONCLUSIVE = "inconclusive"  # not enough evidence either way (e.g. baseline never failed)


def p_less(patched: tuple[int, int], baseline: tuple[int, int]) -> float:
    """One-sided Fisher exact p-value for H1: the patched failure rate is lower than the baseline's."""
    (pe, pn), (be, bn) = patched, baseline
    if pn == 0 or bn == 0:
        return 1.0
    return float(sps.fisher_exact([[be, bn - be], [pe, pn - pe]], alternative="greater")[1])


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    final: bool                  # stop the campaign now
    p_fixed: float               # one-sided p, patched < baseline
    p_regression: float          # one-sided p, patched > baseline
    alpha_per_look: float
    baseline: Rate
    patched: Rate
    reason: str
    by_boot: tuple[str, ...] = ()    # arms whose boots disagreed: the p-values are then also boot-level

    def as_dict(self) -> dict:
        return {"verdict": self.verdict.value, "final": self.final, "p_fixed": self.p_fixed,
                "p_regression": self.p_regression, "alpha_per_look": self.alpha_per_look,
                "baseline": self.baseline.as_dict(), "patched": self.patched.as_dict(), "reason": self.reason,
                "by_boot": list(self.by_boot)}


Boots = Sequence[tuple[int, int]]


def decide(baseline: tuple[int, int], patched: tuple[int, int], *, alpha: float, looks: int,
           budget_reached: bool, baseline_boots: Boots | None = None, patched_boots: Boots | None = None) -> Decision:
    """The verdict after one look at (events, trials) per variant.

    Group-sequential with Bonferroni alpha spending: each of at most `looks` interim tests runs at
    alpha/looks, so the chance of a false `fixed` over the whole campaign stays below alpha however
    early it stops. Conservative, but valid without a model of the failure process.

    The loop-level test takes loops as independent. When an arm's boots disagree (boot_spread), they
    are not: each p-value is then the larger of the loop-level one and a boot-level permutation test's,
    so a few boots that failed throughout cannot make a verdict on their own.
    """
    a = alpha / max(1, looks)
    pf = p_less(patched, baseline)
    pr = p_less(baseline, patched)
    by_boot = tuple(arm for arm, boots in (("baseline", baseline_boots), ("patched", patched_boots))
                    if boots and boot_spread(boots).suspicious)
    note = ""
    if by_boot:
        pf = max(pf, p_less_by_boot(patched_boots or [], baseline_boots or []))
        pr = max(pr, p_less_by_boot(baseline_boots or [], patched_boots or []))
        note = (f"; the {' and '.join(by_boot)} boots disagree, so boots are judged too "
                f"(more boots: a smaller --loops-per-run)")
    b, p = rate(*baseline), rate(*patched)

    def done(verdict: Verdict, final: bool, reason: str) -> Decision:
        return Decision(verdict, final, pf, pr, a, b, p, reason + note, by_boot)

    if pf < a:
        return done(Verdict.FIXED, True, f"patched fails less often, p={pf:.2g} < {a:.2g}")
    if pr < a:
        return done(Verdict.REGRESSION, True, f"patched fails more often, p={pr:.2g} < {a:.2g}")
    # Futility: the patched kernel fails at least as often as the baseline, with enough failures on both
    # sides that a later `fixed` is out of reach in practice. Stop early instead of burning the budget.
    if p.events >= 5 and b.events >= 5 and p.rate >= b.rate:
        return done(Verdict.NOT_FIXED, True, "patched fails at least as often as baseline")
    if not budget_reached:
        return done(Verdict.INCONCLUSIVE, False, "undecided; continuing")
    if b.events == 0:
        return done(Verdict.INCONCLUSIVE, True, "the baseline never failed: nothing to fix was seen")
    if p.events > 0:
        return done(Verdict.NOT_FIXED, True, "the patched kernel still fails; no significant drop")
    return done(Verdict.INCONCLUSIVE, True, "loop budget spent before significance")


def p_less_by_boot(patched: Boots, baseline: Boots, resamples: int = 20_000) -> float:
    """One-sided p for H1 "patched fails less", with the boot as the unit: the arm labels of whole boots
    are permuted (every arrangement when there are at most `resamples`, else a seeded sample) and the
    statistic is the pooled rate of the baseline's boots minus the patched boots'."""
    boots = [(e, n) for e, n in (*baseline, *patched) if n > 0]
    nb = sum(1 for _, n in baseline if n > 0)
    if nb == 0 or nb == len(boots):
        return 1.0
    events = np.array([e for e, _ in boots], dtype=float)
    loops = np.array([n for _, n in boots], dtype=float)

    def diff(x: np.ndarray, y: np.ndarray) -> float:
        x, y = x.astype(int), y.astype(int)
        return events[x].sum() / loops[x].sum() - events[y].sum() / loops[y].sum()

    res = sps.permutation_test((np.arange(nb), np.arange(nb, len(boots))), diff, permutation_type="independent",
                               alternative="greater", n_resamples=resamples, vectorized=False, random_state=0)
    return float(res.pvalue)
