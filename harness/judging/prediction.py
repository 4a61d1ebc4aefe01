"""The model's predicted loop failure rates per kernel variant, and their gap to measured runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from harness.spec import config
from harness.model import simulation
from harness.spec.variants import ALL_VARIANTS, Defences, series_name
from harness.judging import stats
from harness.core.errors import InputError
from harness.store import names
from harness.store import counts
from harness.store.campaign_folder import run_folders
from harness.store.run_folder import RunFolder

KNOBS = simulation.workload_defaults()

CAVEAT = ("The workload parameters are the model's defaults or the ones given, not fitted to the guest: a "
          "predicted rate says what the model's mechanism gives under them, not what a guest run will measure.")


def predict(variants: Sequence[str], loops: int, knobs: Mapping[str, object]) -> dict[str, simulation.SimResult]:
    """simulation.simulate() of each named variant (patch series name) with the same workload and seed."""
    unknown = [v for v in variants if v not in ALL_VARIANTS]
    if unknown:
        raise InputError(f"unknown variant {unknown[0]!r}; the model knows: {', '.join(ALL_VARIANTS)}")
    try:
        return {v: simulation.simulate(ALL_VARIANTS[v], loops, **knobs) for v in variants}
    except ValueError as e:
        raise InputError(f"workload parameters: {e}") from None


@dataclass
class Measured:
    """Loop counts of one variant over run folders."""
    runs: list[str] = field(default_factory=list)
    loops: int = 0
    failed_loops: int = 0
    lru_loops: int = 0              # loops with an 'L' chunk: rescued only by invalidate_bh_lrus()
    attribution_off_loops: int = 0  # loops recorded with attribution off (F): LRU cause not measured


def measured(folders: Sequence[Path]) -> dict[str, Measured]:
    """Measured loops per patch series, from run folders and campaign folders (their runs/*)."""
    out: dict[str, Measured] = {}
    for folder in folders:
        for run in run_folders(folder):
            records = run.records()
            m = out.setdefault(_series_of_run(run), Measured())
            m.runs.append(str(run.path))
            m.loops += len(records)
            m.failed_loops += counts.loop_counts(records, "failed")[0]
            m.lru_loops += counts.loop_counts(records, "lru")[0]
            m.attribution_off_loops += counts.attribution_off_loops(records)
    return out


def _series_of_run(run: RunFolder) -> str:
    name = run.variant({})
    if not run.file(names.SCENARIO).is_file():
        return name
    spec = config.load(run.file(names.SCENARIO)).kernel_of(name)
    # A developer's patches make a kernel the model has no variant for: measured under its own name.
    return name if spec.extra_patches else series_name(spec.patches)


def _defences(d: Defences) -> str:
    switches = (d.lru_disable_blocks_install, d.drain_bh_lrus, d.blkdev_migrate_norefs)
    kept = [str(number) for number, on in enumerate(switches, 1) if on]
    return " ".join(kept) or "none"


def prediction_lines(predicted: Mapping[str, simulation.SimResult], knobs: Mapping[str, object]) -> list[str]:
    loops = next(iter(predicted.values())).loops if predicted else 0
    settings = " ".join(f"{k}={v}" for k, v in {**KNOBS, **knobs}.items())
    lines = [f"model simulation, {loops} loops per variant; workload: {settings}", CAVEAT,
             f"{'variant':17} {'defences kept':13} {'failed loops':>12} {'LRU-caused loops':>16} "
             f"{'failed chunks (LRU / other)':>28}"]
    for name, r in predicted.items():
        lines.append(f"{name:17} {_defences(r.defences):13} {100 * r.loop_failure_rate:11.1f}% "
                     f"{100 * r.lru_caused_loop_rate:15.1f}% {r.lru_caused_chunks:>14} / {r.other_caused_chunks}")
    return lines


def _gap(rate: stats.Rate, predicted: float | None) -> str:
    if predicted is None:
        return "not simulated"
    inside = rate.low <= predicted <= rate.high
    return (f"predicted {100 * predicted:.1f}%, gap {100 * (rate.rate - predicted):+.1f} points "
            f"({'inside' if inside else 'outside'} the measured 95% CI)")


def comparison_lines(predicted: Mapping[str, simulation.SimResult], seen: Mapping[str, Measured]) -> list[str]:
    """Measured rates (Wilson 95% intervals) per variant beside the prediction, and the gap."""
    lines = ["measured vs predicted (gap = measured - predicted, in percentage points):",
             "Measured failed loops also count transient (T) and persistent (P) failures, which the model only "
             "has through other_ref_pages; LRU-caused loops compare like with like (the module's L: rescued only "
             "by invalidate_bh_lrus())."]
    for series, m in sorted(seen.items()):
        sim = predicted.get(series)
        known = "" if series in ALL_VARIANTS else " (a kernel the model does not know)"
        failed = stats.rate(m.failed_loops, m.loops)
        lines.append(f"{series}{known}: {m.loops} loops in {len(m.runs)} runs")
        lines.append(f"  failed loops      {m.failed_loops:4}/{m.loops} = {100 * failed.rate:5.1f}% "
                     f"[{100 * failed.low:.1f}-{100 * failed.high:.1f}]; "
                     + _gap(failed, sim.loop_failure_rate if sim else None))
        if m.attribution_off_loops:
            lines.append(f"  LRU-caused loops  not measured in {m.attribution_off_loops} loops (attribution off)")
        attributed = m.loops - m.attribution_off_loops
        if attributed:
            lru = stats.rate(m.lru_loops, attributed)
            lines.append(f"  LRU-caused loops  {m.lru_loops:4}/{attributed} = {100 * lru.rate:5.1f}% "
                         f"[{100 * lru.low:.1f}-{100 * lru.high:.1f}]; "
                         + _gap(lru, sim.lru_caused_loop_rate if sim else None))
    return lines


@dataclass(frozen=True)
class Fit:
    """One workload knob chosen so that the model's LRU-caused loop rate on one variant matches a
    measurement; the other variants' predictions under it are then out of sample."""
    variant: str
    knob: str
    value: int
    measured: stats.Rate
    tried: dict[int, float]          # knob value -> predicted LRU-caused loop rate


def fit(variant: str, measured_rate: stats.Rate, knob: str, values: Sequence[int], loops: int,
        knobs: Mapping[str, object]) -> Fit:
    """The value of an integer knob whose predicted LRU-caused loop rate on `variant` is nearest the
    measured one. Every value is simulated with the same seed (common random numbers), so neighbouring
    values differ by the knob, not by the draw."""
    if knob not in KNOBS or not isinstance(KNOBS[knob], int) or knob == "seed":
        choices = ", ".join(k for k, v in KNOBS.items() if isinstance(v, int) and k != "seed")
        raise InputError(f"--knob {knob!r}: the integer workload knobs are {choices}")
    if not values:
        raise InputError("--range gives no value to try")
    tried = {v: predict([variant], loops, {**knobs, knob: v})[variant].lru_caused_loop_rate for v in values}
    best = min(tried, key=lambda v: (abs(tried[v] - measured_rate.rate), v))
    return Fit(variant, knob, best, measured_rate, tried)


def fit_lines(f: Fit) -> list[str]:
    m = f.measured
    lines = [f"fit: {f.knob} on {f.variant}, measured LRU-caused loops {m.events}/{m.trials} = "
             f"{100 * m.rate:.1f}% [{100 * m.low:.1f}-{100 * m.high:.1f}]"]
    for v, rate in f.tried.items():
        mark = "  <- chosen" if v == f.value else ""
        inside = " (inside the measured 95% CI)" if m.low <= rate <= m.high else ""
        lines.append(f"  {f.knob}={v:<4} predicted {100 * rate:5.1f}%{inside}{mark}")
    lines.append(f"Fitted on {f.variant} alone: every other variant below is predicted out of sample.")
    return lines
