"""Descriptive statistics over counts: rates with Wilson intervals, and whether one arm's boots share one
failure rate (shown beside the verdict; the verdict itself is judging/sequential's, boot by boot). Pure."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class Rate:
    events: int
    trials: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.events / self.trials if self.trials else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "rate": self.rate}


def rate(events: int, trials: int, confidence: float = 0.95) -> Rate:
    """Proportion with its Wilson score interval (sensible at 0 and at small n, unlike the Wald interval)."""
    if trials == 0:
        return Rate(0, 0, 0.0, 1.0)
    ci = sps.binomtest(events, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return Rate(events, trials, float(ci.low), float(ci.high))


# Boots whose rates differ with a homogeneity p below this are reported: the loops of one boot share
# its page placement (where the journal's or the LRUs' pinned pages happened to land), so they are not
# independent trials. The verdict does not depend on it: its test takes whole boots as the units.
SPREAD_WARN_P = 0.01


@dataclass(frozen=True)
class BootSpread:
    per_boot: tuple[tuple[int, int], ...]    # (events, loops) of each boot, in run order
    p_homogeneous: float | None              # None: fewer than two boots, or nothing to spread

    @property
    def suspicious(self) -> bool:
        return self.p_homogeneous is not None and self.p_homogeneous < SPREAD_WARN_P

    def as_dict(self) -> dict:
        return {"per_boot": [list(b) for b in self.per_boot], "p_homogeneous": self.p_homogeneous}


def boot_spread(per_boot: Sequence[tuple[int, int]], draws: int = 20_000, seed: int = 0) -> BootSpread:
    """Do one arm's boots share one failure rate, as the loop-level test assumes?

    A Monte Carlo exact test of homogeneity: with the arm's total events fixed, independent loops would
    spread them over the boots like draws without replacement (multivariate hypergeometric); the p-value
    is the share of such spreads whose Pearson chi-square is at least the observed one. Exact where the
    chi-square approximation is not (a few events per boot). Seeded: the same counts give the same p."""
    boots = tuple((int(e), int(n)) for e, n in per_boot if n > 0)
    events = sum(e for e, _ in boots)
    loops = sum(n for _, n in boots)
    if len(boots) < 2 or events == 0 or events == loops:
        return BootSpread(boots, None)
    n = np.array([b[1] for b in boots])
    expected = events * n / loops

    def chi2(e: np.ndarray) -> np.ndarray:
        # Both columns (events, non-events); their expected counts sum to n per boot.
        return (((e - expected) ** 2) * (1 / expected + 1 / (n - expected))).sum(axis=-1)

    observed = chi2(np.array([b[0] for b in boots], dtype=float))
    sims = np.random.default_rng(seed).multivariate_hypergeometric(n, events, size=draws)
    p = (1 + int((chi2(sims.astype(float)) >= observed - 1e-9).sum())) / (draws + 1)
    return BootSpread(boots, p)
