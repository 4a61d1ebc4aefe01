"""Sequential A/B verdicts on whole boots: exact boot-level tests at alpha-spending looks, and their feasibility."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Protocol

import numpy as np
from scipy import signal, special
from scipy import stats as sps

from harness.judging.boot_test import Boots, boot_test, clean, p_fixed_if_perfect, smallest_p
from harness.judging.stats import Rate
from harness.judging.stats import rate as _wilson

# Defaults (benchmarks/verdict_errors.py measures them): boots of 10 loops, at most 60 per arm. With alpha
# 0.001 a boot-level verdict needs 7 boots per arm or more (1/C(14, 7) < alpha/2 < 1/C(12, 6)), and each
# baseline boot that fails no loop ties with the patched ones, so boots of 25 could not decide before
# 175 loops. A boot costs about 1.5 s besides its loops, a loop 0.3 s (`cma-harness bench` on the 2-core
# development machine: power-on to the first loop 1.42 s, 205 loops a minute; the README's table).
DEFAULT_LOOPS_PER_RUN = 10
DEFAULT_BUDGET = 600
SPENDING_LOOKS = 15             # alpha is spent at about this many looks at most, evenly spaced
DEFAULT_ALPHA = 0.001           # --alpha: the most often a campaign of a kernel against itself ends `fixed` or
                                # `regression` (alpha/2 each), whatever the boots' spread and wherever it stops
BOOT_SECONDS = 1.5
LOOP_SECONDS = 0.3


class Verdict(enum.Enum):
    FIXED = "fixed"                                 # patched fails less often, boot-level significant
    REGRESSION = "regression"                       # patched fails more often, boot-level significant
    NO_EFFECT_SHOWN = "no-effect-shown"             # budget spent, no significant difference
    INCONCLUSIVE = "inconclusive"                   # not decided yet, or stopped before the budget
    BASELINE_DOES_NOT_REPRODUCE = "baseline-does-not-reproduce"   # too few baseline failures to judge a fix


class PlanLike(Protocol):
    loops_per_run: int
    budget: int
    alpha: float


@dataclass(frozen=True)
class Design:
    """A plan for decide(); the campaign's Plan has the same three fields."""
    loops_per_run: int = DEFAULT_LOOPS_PER_RUN
    budget: int = DEFAULT_BUDGET
    alpha: float = DEFAULT_ALPHA
    futility: bool = False          # measured, not used by default: see decide()


@dataclass(frozen=True)
class Look:
    index: int                      # 1, 2, ...: after the index-th pair of boots
    loops: int                      # loops per arm at this look
    level: float                    # per direction; 0 where no data could reach the look's share
    smallest_p: Fraction            # the smallest p-value any data gives with the plan's boots here


def spent(t: float, alpha: float) -> float:
    """Pocock-shaped spending, per direction: alpha/2 * ln(1 + (e - 1) t) by information time t in [0, 1]."""
    return alpha / 2 * math.log1p((math.e - 1) * min(1.0, max(0.0, t)))


def schedule(plan: PlanLike) -> tuple[Look, ...]:
    return _schedule(int(plan.loops_per_run), int(plan.budget), float(plan.alpha))


@lru_cache(maxsize=256)
def _schedule(loops_per_run: int, budget: int, alpha: float) -> tuple[Look, ...]:
    """The looks and their levels, fixed by the plan before any boot runs.

    Look k comes after the k-th pair of boots, at t = loops per arm / budget, and its share is the
    increment spent(t_k) - spent(t_k-1) in each direction. Only every s-th look spends (s = looks /
    SPENDING_LOOKS rounded up, and the last): each spending look divides alpha further. Measured at the
    defaults (10-loop boots, 600 per arm, rho 0.016), spending at all 53 reachable looks gave 84 % power
    for a regression 5 % -> 15 % and 41 % for a perfect fix of a 3 % baseline; at 14 looks, 93 % and 54 %,
    with the same loops to `fixed` at 10.5 %. A look that does not spend, or whose smallest achievable
    p-value (1/C(2k, k) with k boots per arm: every baseline boot failing more than every patched one)
    is above its share, spends nothing and hands its share on to the next look.

    Validity: the levels depend on the plan only, never on the data, and sum to at most alpha/2 per
    direction (moving a share from one look to the next changes no sum). Each look's exact boot-level
    p-value satisfies P(p <= level) <= level under H0, so by the union bound the chance of a false
    `fixed` at any look is at most alpha/2, and of a false `regression` at most alpha/2: a false verdict
    of either kind in at most alpha of campaigns, whatever the looks' dependence and wherever it stops.
    At a look where the share is unreachable the chance of a rejection is zero anyway, so handing the
    share on spends it where it can be used.
    """
    looks, carry, before = [], 0.0, 0.0
    count = math.ceil(budget / loops_per_run)
    stride = math.ceil(count / SPENDING_LOOKS)
    for k in range(1, count + 1):
        loops = min(k * loops_per_run, budget)
        now = spent(loops / budget, alpha)
        share = now - before + carry
        before = now
        full = loops // loops_per_run           # a last, shorter pair is its own stratum: at best 1/2
        least = smallest_p(full) * (Fraction(1, 2) if loops % loops_per_run else 1)
        if least > share or (k % stride and k < count):
            looks.append(Look(k, loops, 0.0, least))
            carry = share
        else:
            looks.append(Look(k, loops, share, least))
            carry = 0.0
    return tuple(looks)


def look_at(baseline_loops: int, patched_loops: int, plan: PlanLike) -> Look | None:
    """The planned look these loop counts are at, or None: equal loops per arm, at a look's count."""
    if baseline_loops != patched_loops or baseline_loops <= 0:
        return None
    for look in schedule(plan):
        if look.loops == baseline_loops:
            return look
    return None


def at_look(baseline_boots: Boots, patched_boots: Boots, plan: PlanLike) -> bool:
    """Whether the campaign should call decide() now (after each equal pair, or topped-up equal loops)."""
    return look_at(_loops(baseline_boots), _loops(patched_boots), plan) is not None


def _loops(boots: Boots) -> int:
    return sum(int(n) for _, n in boots)


@lru_cache(maxsize=100_000)
def rate(events: int, trials: int) -> Rate:
    return _wilson(events, trials)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    final: bool                     # stop the campaign now
    p_fixed: float                  # exact boot-level one-sided p, patched fails less
    p_regression: float             # exact boot-level one-sided p, patched fails more
    level: float                    # this look's level, each direction (0: no verdict possible here)
    look: int                       # the look's index (0: not at a planned look)
    looks: int                      # planned looks
    alpha: float                    # the whole campaign's false-verdict rate (fixed or regression)
    baseline: Rate
    patched: Rate
    reason: str
    baseline_boots: tuple[tuple[int, int], ...] = ()
    patched_boots: tuple[tuple[int, int], ...] = ()
    stopped: str | None = None

    def as_dict(self) -> dict:
        return {"verdict": self.verdict.value, "final": self.final, "p_fixed": self.p_fixed,
                "p_regression": self.p_regression, "level_fixed": self.level, "level_regression": self.level,
                "alpha_per_look": self.level, "look": self.look, "looks": self.looks, "alpha": self.alpha,
                "baseline": self.baseline.as_dict(), "patched": self.patched.as_dict(), "reason": self.reason,
                "baseline_boots": [list(b) for b in self.baseline_boots],
                "patched_boots": [list(b) for b in self.patched_boots], "stopped": self.stopped}


def _counts(boots: tuple[tuple[int, int], ...]) -> str:
    e, n = sum(b[0] for b in boots), sum(b[1] for b in boots)
    failing = sum(1 for b in boots if b[0])
    return f"{e}/{n} loops ({100 * e / n if n else 0:.1f} %) in {failing} of {len(boots)} boots"


def decide(baseline_boots: Boots, patched_boots: Boots, *, plan: PlanLike, stopped: str | None = None) -> Decision:
    """The verdict at a look, from each arm's boots as (failed loops, loops), in run order.

    Both p-values are exact boot-level permutation tests (boot_test.boot_test), valid whatever the
    loops of one boot share; `fixed` when p_fixed <= the look's level, `regression` when p_regression is;
    the levels come from schedule(). Never a verdict with fewer than 2 boots in an arm. At the budget
    with neither: `baseline-does-not-reproduce` when even a patched arm without a single failure would
    not have been `fixed` at the last look, else `no-effect-shown`, with the effect the campaign could
    have seen. `stopped` (a crash or hang mid-campaign) makes the decision final and `inconclusive`: the
    campaign ended before its plan, so no verdict is drawn, and the reason says why.

    Futility: none by default, so no regression is ever pre-empted; a campaign without an effect runs its
    budget. `plan.futility` (for measurement) stops past half the budget when both one-sided p-values
    are at least 0.2; benchmarks/verdict_errors.py shows what it saves and the regressions it loses.
    """
    a, b = clean(baseline_boots), clean(patched_boots)
    na, nb = sum(n for _, n in a), sum(n for _, n in b)
    test = boot_test(a, b)
    pf, pr = float(test.p_fixed), float(test.p_regression)
    looks = schedule(plan)
    look = look_at(na, nb, plan)
    level = look.level if look and min(len(a), len(b)) >= 2 else 0.0
    counts = f"baseline {_counts(a)}, patched {_counts(b)}"
    ps = f"p fixed = {pf:.3g}, p regression = {pr:.3g}"

    def done(verdict: Verdict, final: bool, reason: str) -> Decision:
        return Decision(verdict, final, pf, pr, level, look.index if look else 0, len(looks), float(plan.alpha),
                        rate(sum(e for e, _ in a), na), rate(sum(e for e, _ in b), nb), reason, a, b, stopped)

    if stopped:
        return done(Verdict.INCONCLUSIVE, True, f"stopped: {stopped}; {counts}; {ps} (no verdict from a campaign "
                                                 f"stopped before its plan)")
    where = f"look {look.index} of {len(looks)}" if look else f"not at a planned look ({na}+{nb} loops)"
    if level and test.p_fixed <= level:
        return done(Verdict.FIXED, True, f"patched fails less often, boot by boot: p = {pf:.3g} <= {level:.3g} "
                                         f"at {where}; {counts}")
    if level and test.p_regression <= level:
        return done(Verdict.REGRESSION, True, f"patched fails more often, boot by boot: p = {pr:.3g} <= "
                                              f"{level:.3g} at {where}; {counts}")
    final = look is not None and look.index == len(looks)
    if not final:
        if look is None:
            why = where
        elif level:
            why = f"{where}: {ps}, level {level:.3g}"
        else:
            nxt = next((x for x in looks if x.index > look.index and x.level), None)
            why = f"{where}: {ps}; no alpha is spent here" + (f" (next: {nxt.loops} loops per arm)" if nxt else "")
        if getattr(plan, "futility", False) and level and na * 2 >= plan.budget and min(pf, pr) >= 0.2:
            return done(Verdict.NO_EFFECT_SHOWN, True, f"futility stop at {where}: neither direction near "
                                                       f"significance ({ps}); {counts}")
        return done(Verdict.INCONCLUSIVE, False, f"{why}; continuing")
    if not any(x.level for x in looks):
        return done(Verdict.INCONCLUSIVE, True, f"the plan cannot reach a verdict: with {len(looks)} boots per arm the "
                                                f"smallest p is {float(looks[-1].smallest_p):.3g} > alpha/2 = "
                                                f"{plan.alpha / 2:.3g}; use more, shorter boots; {counts}; {ps}")
    best = float(p_fixed_if_perfect(a, b))
    last = next(x.level for x in reversed(looks) if x.level)
    if sum(e for e, _ in a) == 0 or best > last:
        return done(Verdict.BASELINE_DOES_NOT_REPRODUCE, True,
                    f"the baseline failed too rarely to judge a fix: {counts}; even a patched arm that never "
                    f"failed would have had p = {best:.3g} > {last:.3g}")
    return done(Verdict.NO_EFFECT_SHOWN, True, f"no effect shown within the budget: {counts}; {ps}; "
                                               f"{could_have_seen(a, plan)}")


def could_have_seen(baseline: Boots, plan: PlanLike) -> str:
    """What this campaign could have detected, from the baseline's share of failing boots (boot level)."""
    a = clean(baseline)
    failing, k = sum(1 for e, _ in a if e), len(a)
    if k == 0:
        return "no baseline boot"
    perfect, detectable = _detectable(failing, k, plan.loops_per_run, plan.budget, plan.alpha)
    text = (f"with {failing} of {k} baseline boots failing, a patch that removed every failure would have been "
            f"shown fixed in {100 * perfect:.0f} % of such campaigns")
    if detectable is None:
        return text + ", so 80 % power was out of reach"
    loops = 1 - (1 - detectable) ** (1 / plan.loops_per_run)
    return (text + f"; 80 % power for patched boots failing in at most {100 * detectable:.0f} % of boots "
            f"(about {100 * loops:.1f} % of loops, were loops independent)")


@lru_cache(maxsize=4096)
def _detectable(failing: int, k: int, loops_per_run: int, budget: int, alpha: float) -> tuple[float, float | None]:
    plan = Design(loops_per_run, budget, alpha)
    q = failing / k
    perfect = boot_power(q, 0.0, plan)
    if perfect < 0.8:
        return perfect, None
    low, high = 0.0, q
    for _ in range(14):
        mid = (low + high) / 2
        low, high = (mid, high) if boot_power(q, mid, plan) >= 0.8 else (low, mid)
    return perfect, low


def boot_power(q_baseline: float, q_patched: float, plan: PlanLike) -> float:
    """P(`fixed` within the budget) when baseline boots fail (one loop or more) with probability q_baseline
    and patched boots with q_patched, independently: exact, for the test on whether each boot failed.
    With q_patched = 0 that is the campaign's own test (all patched boots tie at 0); otherwise the count
    statistic decide() uses also sees how many loops failed, and is usually stronger."""
    stop, _ = _power_path(q_baseline, q_patched, plan)
    return float(sum(stop))


def _power_path(qa: float, qb: float, plan: PlanLike) -> tuple[list[float], list[int]]:
    """Per spending look, the probability that `fixed` comes there (and not earlier), and its loops.
    The chain jumps from one spending look to the next (binomial steps); a last, shorter pair is left out."""
    looks = [x for x in schedule(plan) if x.level and x.loops % plan.loops_per_run == 0]
    perfect = qb == 0
    alive = np.ones(1) if perfect else np.ones((1, 1))      # P(x failing baseline boots[, y patched]), not stopped
    stop: list[float] = []
    before = 0
    for look in looks:
        k, step = look.index, look.index - before
        before = look.index
        pa = sps.binom.pmf(np.arange(step + 1), step, qa)
        if perfect:
            alive = np.convolve(alive, pa)
        else:
            if k > 400:
                break
            alive = np.clip(signal.convolve(alive, np.outer(pa, sps.binom.pmf(np.arange(step + 1), step, qb))), 0, None)
        mask = _reject_mask(k, look.level, perfect)
        stop.append(float(alive[mask].sum()))
        alive = np.where(mask, 0.0, alive)
    return stop, [x.loops for x in looks[:len(stop)]]


@lru_cache(maxsize=4096)
def _reject_mask(k: int, level: float, perfect: bool) -> np.ndarray:
    """mask[x(, y)]: a one-sided Fisher test on boots (x of k baseline boots failed, y of k patched) rejects;
    perfect: y = 0, where p = C(2k - x, k - x) / C(2k, k), the campaign's own test's p-value there."""
    if perfect:
        x = np.arange(k + 1)
        log_p = special.gammaln(2 * k - x + 1) - special.gammaln(k - x + 1) - special.gammaln(k + 1)
        log_p -= special.gammaln(2 * k + 1) - 2 * special.gammaln(k + 1)
        return log_p <= math.log(level) + 1e-9
    x, y = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
    return sps.hypergeom.sf(x - 1, 2 * k, x + y, k) <= level * (1 + 1e-9)


def zero_boot_probability(loop_rate: float, loops: int, rho: float = 0.0) -> float:
    """P(a boot of `loops` loops fails none), loops failing at `loop_rate` with intra-boot correlation rho
    (beta-binomial; rho = 0: independent loops; rho = 1: the boot fails all loops or none)."""
    if rho <= 0:
        return (1 - loop_rate) ** loops
    if rho >= 1:
        return 1 - loop_rate
    s = 1 / rho - 1
    a, b = loop_rate * s, (1 - loop_rate) * s
    return math.exp(math.lgamma(b + loops) + math.lgamma(a + b) - math.lgamma(b) - math.lgamma(a + b + loops))


@dataclass(frozen=True)
class Feasibility:
    baseline_rate: float
    rho: float
    p_fixed: float                  # P(a perfect fix reaches `fixed` within the budget)
    median_loops: int | None        # loops per arm by which half such campaigns are `fixed`
    advice: str

    def as_dict(self) -> dict:
        return {"baseline_rate": self.baseline_rate, "rho": self.rho, "p_fixed": self.p_fixed,
                "median_loops": self.median_loops, "advice": self.advice}


def feasibility(baseline_rate: float, plan: PlanLike, *, rho: float = 0.0, power: float = 0.8) -> Feasibility:
    """Can this plan show a perfect fix (patched 0 %) against a baseline failing `baseline_rate` of loops
    (a pilot boot's rate, or a scenario's record)? Exact, under the beta-binomial boot model with rho;
    when it cannot, the boot length and budget that would (at `power`), fastest in worst-case wall time."""
    q = 1 - zero_boot_probability(baseline_rate, plan.loops_per_run, rho)
    stop, loops = _power_path(q, 0.0, plan)
    p = float(sum(stop))
    median = next((n for n, c in zip(loops, np.cumsum(stop)) if c >= 0.5), None)
    head = (f"at a {100 * baseline_rate:.3g} % baseline, a perfect fix reaches `fixed` within {plan.budget} loops "
            f"per arm (boots of {plan.loops_per_run}) in {100 * p:.0f} % of campaigns")
    if p >= power:
        return Feasibility(baseline_rate, rho, p, median, f"{head} (median {median} loops): the budget can reach a verdict")
    best = _suggest(baseline_rate, rho, float(plan.alpha), power)
    if best is None:
        tail = "no boot length up to 100 loops does within 20000 loops per arm"
    else:
        n, budget, secs = best
        tail = (f"boots of {n} loops and a budget of {budget} loops per arm would ({100 * power:.0f} %; "
                f"at most {secs / 60:.0f} min of boots for both arms)")
    return Feasibility(baseline_rate, rho, p, median, f"{head}: the budget cannot reach a verdict; {tail}")


def _suggest(loop_rate: float, rho: float, alpha: float, power: float) -> tuple[int, int, float] | None:
    """The boot length (of a few usual ones) and budget that reach `power` in the least worst-case time."""
    found = []
    for n in (5, 10, 20, 25, 50, 100):
        q = 1 - zero_boot_probability(loop_rate, n, rho)

        def enough(boots: int, q: float = q, n: int = n) -> bool:
            return boot_power(q, 0.0, Design(n, boots * n, alpha)) >= power

        low, high = 4, 8
        while not enough(high):
            low, high = high, high * 2
            if high * n > 20000:
                break
        else:
            while high - low > max(1, high // 20):
                mid = (low + high) // 2
                low, high = (low, mid) if enough(mid) else (mid, high)
            found.append((2 * high * (BOOT_SECONDS + n * LOOP_SECONDS), n, high * n))
    if not found:
        return None
    secs, n, budget = min(found)
    return n, budget, secs


BootDraw = Callable[[np.random.Generator, int], int]


def beta_binomial(mean: float, rho: float) -> BootDraw:
    """A boot's failed loops: each boot's rate drawn from Beta(mean, rho), its loops binomial at that rate."""
    if rho <= 0 or not 0 < mean < 1:
        return lambda rng, n: int(rng.binomial(n, min(1.0, max(0.0, mean))))
    s = 1 / rho - 1
    return lambda rng, n: int(rng.binomial(n, rng.beta(mean * s, (1 - mean) * s)))


def all_or_nothing(p: float) -> BootDraw:
    """A boot fails every loop with probability p, else none (a pinned page in the area or not)."""
    return lambda rng, n: n if rng.random() < p else 0


def simulate(plan: PlanLike, baseline: BootDraw, patched: BootDraw, rng: np.random.Generator,
             decide_fn: Callable[..., Decision] = decide) -> tuple[Decision, int]:
    """One campaign as the harness runs it, A, B, A, B, ...: (final decision, loops per arm). decide_fn
    is called at the looks that spend alpha and at the last: a look that spends nothing cannot end a
    campaign, so skipping it changes no outcome."""
    a: list[tuple[int, int]] = []
    b: list[tuple[int, int]] = []
    looks = schedule(plan)
    for look in looks:
        n = look.loops - sum(x[1] for x in a)
        a.append((baseline(rng, n), n))
        b.append((patched(rng, n), n))
        if look.level or look is looks[-1]:
            d = decide_fn(a, b, plan=plan)
            if d.final:
                return d, look.loops
    raise AssertionError("the last look is final")
