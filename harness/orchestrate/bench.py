"""`cma-harness bench`: measure the harness on this machine and print the figures (never asserted in tests).

Pure parts (parsers, model, the verdict design's loops to a verdict) run in seconds; the guest part boots
the scenario's cached kernels for real and reads the timings each run folder records."""

from __future__ import annotations

import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from harness.core import host_cpus
from harness.core.paths import cache_root, cache_root_at
from harness.judging import sequential
from harness.model.simulation import simulate
from harness.parsers import busy, dump_page, ftrace, kmsg
from harness.spec.config import PROJECT_ROOT, Scenario, with_overrides
from harness.spec.variants import ALL_VARIANTS
from harness.store import counts, names
from harness.store.run_folder import RunFolder

FIXTURES = PROJECT_ROOT / "tests" / "fixtures"

# The demo's baseline rate where the bench measured none (no campaign, no boot of the baseline): loops with
# an LRU-caused chunk of reintroduce-2012 in the demo's A/B (README, "The workload's pauses": 38 of 120).
DEMO_BASELINE_RATE = 0.317


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    note: str = ""

    def line(self) -> str:
        return f"{self.name:44} {self.value:12.3g} {self.unit:12} {self.note}"


def machine() -> str:
    """The machine and the commit the figures belong to."""
    try:
        commit = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    cpus = len(host_cpus.available())
    return f"{platform.node()} ({platform.machine()}, {cpus} CPUs, Python {platform.python_version()}), commit {commit}"


def _best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def parser_figures() -> list[Figure]:
    """MB/s of each pure parser over the recorded real captures (console logs and traces)."""
    consoles = [p.read_text(errors="replace") for p in sorted(FIXTURES.glob("console-*.log"))]
    traces = [p.read_text(errors="replace") for p in sorted(FIXTURES.glob("trace-*.txt"))]
    console_lines = [line for text in consoles for line in text.splitlines()]
    trace_lines = [line for text in traces for line in text.splitlines()]
    mb_console = sum(map(len, consoles)) / 1e6
    mb_trace = sum(map(len, traces)) / 1e6
    out = [
        Figure("parser: console records and reports", mb_console / _best_of(lambda: list(kmsg.parse_lines(console_lines))), "MB/s",
               f"{mb_console:.2f} MB of recorded consoles"),
        Figure("parser: dump_page blocks", mb_console / _best_of(lambda: list(dump_page.parse_page_dumps(console_lines))), "MB/s"),
        Figure("parser: ftrace text", mb_trace / _best_of(lambda: ftrace.parse_trace(trace_lines)), "MB/s",
               f"{mb_trace:.2f} MB of recorded traces"),
    ]
    run = RunFolder(FIXTURES / "run-stock")
    lines, tr = run.console_lines(), run.trace_lines() or []
    size = (run.file(names.CONSOLE).stat().st_size + run.file(names.TRACE).stat().st_size) / 1e6
    out.append(Figure("busy join: console + trace of a run", size / _best_of(lambda: busy.analyse(lines, tr, "cma-harness-area")), "MB/s",
                      f"tests/fixtures/run-stock, {size:.2f} MB"))
    return out


def model_figures(loops: int = 2000) -> list[Figure]:
    out = []
    for name in ("reintroduce-2012", "stock"):
        seconds = _best_of(lambda: simulate(ALL_VARIANTS[name], loops, seed=0), repeat=1)
        out.append(Figure(f"model: simulate {name}", loops / seconds, "loops/s"))
    return out


def design_figures(plan: sequential.PlanLike, rates: tuple[float, ...] = (DEMO_BASELINE_RATE,)) -> list[Figure]:
    """Loops per arm to `fixed` against a perfect fix, exact under independent loops (sequential.feasibility)."""
    out = []
    for r in rates:
        f = sequential.feasibility(r, plan)
        out.append(Figure(f"verdict: loops per arm to fixed, {100 * r:.1f} % vs 0", f.median_loops or float("nan"),
                          "loops (median)", f"P(fixed within the budget) {100 * f.p_fixed:.0f} %; boots of {plan.loops_per_run}"))
    return out


def guest_figures(scn: Scenario, variant: str, loops: int, boots: int, progress,
                  seen: list[tuple[int, int]] | None = None) -> list[Figure]:
    """Real boots of a cached kernel, with and without the workload: the timings each run records.
    `seen` gets each workload boot's (loops with an LRU-caused chunk, loops)."""
    from harness.orchestrate.run import run_variant

    out = []
    for profile in (scn.workload.profile, "none"):
        s = with_overrides(scn, "workload", origin="bench", profile=profile)
        rows = []
        with tempfile.TemporaryDirectory(prefix="cma-bench-", dir=cache_root()) as tmp:
            for i in range(boots):
                folder = Path(tmp) / f"{profile}-{i}"
                summary = run_variant(s, variant, s.variant(variant), folder, loops=loops, progress=progress)
                rows.append(summary.timings)
                if seen is not None and profile != "none":
                    seen.append(counts.loop_counts(RunFolder(folder).records(), "lru"))
        label = f"workload {profile}"
        per_min = statistics.median(r.get("loops_per_min", 0) for r in rows)
        out.append(Figure(f"guest ({label}): loops per minute in a boot", per_min, "loops/min", f"median of {boots}"))
        if profile == "none":
            continue
        first = [r.get("boot_to_first_loop_s") for r in rows if r.get("boot_to_first_loop_s") is not None]
        shell = [r["boot_to_shell_s"] for r in rows if "boot_to_shell_s" in r]
        total = [r["total_s"] for r in rows]
        loop_time = [loops * 60 / r["loops_per_min"] for r in rows if r.get("loops_per_min")]
        out += [
            Figure("guest: power-on to shell", statistics.median(shell), "s"),
            Figure("guest: power-on to first loop record", statistics.median(first), "s", "timings.boot_to_first_loop_s"),
            Figure("guest: a run of the boot's loops, wall", statistics.median(total), "s", f"{loops} loops"),
            Figure("guest: harness overhead / run", 1 - statistics.median(loop_time) / statistics.median(total), "ratio",
                   "(wall - the guest's own loop time) / wall, boot included"),
        ]
        guest = [r["boot_to_last_loop_s"] for r in rows if "boot_to_last_loop_s" in r]
        if guest:
            out.append(Figure("guest: harness outside the guest / run", 1 - statistics.median(guest) / statistics.median(total),
                              "ratio", "(wall - power-on to the last loop record) / wall: images, stop, collection"))
    return out


def long_run_figures(scn: Scenario, variant: str, progress) -> list[Figure]:
    """One boot at the scenario's own loop count (`cma-harness run`'s default): the overhead of a run that
    is not a campaign's short boot."""
    from harness.orchestrate.run import run_variant

    loops = scn.module.loops
    with tempfile.TemporaryDirectory(prefix="cma-bench-", dir=cache_root()) as tmp:
        t = run_variant(scn, variant, scn.variant(variant), Path(tmp) / "long", loops=loops, progress=progress).timings
    if not t.get("loops_per_min"):
        return []
    return [Figure(f"guest: harness overhead / run of {loops} loops", 1 - loops * 60 / t["loops_per_min"] / t["total_s"],
                   "ratio", f"one boot, {t['total_s']:.1f} s wall, `cma-harness run`'s default loop count")]


def build_figures(scn: Scenario, progress, variants: tuple[str, ...] = ("reintroduce-2012", "stock")) -> list[Figure]:
    """The demo's kernels as the cache recorded their builds (build-seconds: the first one cold, a later
    one from the first one's tree), and the cost of taking each from the cache now (built first if it is not there)."""
    from harness.build import kernel

    out, recorded = [], []
    for name in [v for v in variants if v in scn.variants] or [None]:
        spec = scn.variant(name) if name else scn.kernel
        t0 = time.perf_counter()
        kb = kernel.build(spec, progress=progress)
        cached = time.perf_counter() - t0
        seconds = kb.tree.parent / kernel.BUILD_SECONDS
        if seconds.is_file():
            recorded.append((float(seconds.read_text()), name or "kernel"))
        out.append(Figure(f"build: {name or 'kernel'} from the cache", cached, "s"))
    if len(recorded) >= 2:
        recorded.sort(reverse=True)
        (slow, a), (fast, b) = recorded[0], recorded[-1]
        out = [Figure("build: slowest variant, as built", slow, "s", f"{a} (build-seconds in the cache)"),
               Figure("build: fastest variant, as built", fast, "s", f"{b}; ratio {fast / slow:.2f}"), *out]
    return out


def floor_figures(guest: list[Figure], plan: sequential.PlanLike, rate: float = DEMO_BASELINE_RATE) -> list[Figure]:
    """The least a demo verdict can take here: loops per arm x seconds a loop + boots x a boot's overhead,
    serial, and with both arms at once if two guests ran as fast as one (an upper bound on the gain)."""
    by = {f.name: f.value for f in guest}
    per_min = by.get("guest (workload nojournal): loops per minute in a boot")
    wall, overhead = by.get("guest: a run of the boot's loops, wall"), by.get("guest: harness overhead / run")
    median = sequential.feasibility(rate, plan).median_loops
    if not (per_min and wall and overhead is not None and median):
        return []
    boots = median / plan.loops_per_run
    loops_s = 2 * median * 60 / per_min
    boot_s = 2 * boots * wall * overhead
    return [Figure("verdict floor: serial", loops_s + boot_s, "s",
                   f"2 arms x {median:.0f} loops at {per_min:.0f}/min + {2 * boots:.0f} boots x {wall * overhead:.1f} s"),
            Figure("verdict floor: both arms at once", (loops_s + boot_s) / 2, "s", "if two guests ran as fast as one")]


def lava_figures(scn: Scenario, variant: str, loops: int, progress) -> list[Figure]:
    """The same kernel booted by Debian's lava-dispatcher (lava-run), as a farm would run it."""
    from harness.orchestrate import lava_executor

    with tempfile.TemporaryDirectory(prefix="cma-bench-lava-", dir=cache_root()) as tmp:
        t0 = time.monotonic()
        s = lava_executor.lava_run_executor(scn, variant, Path(tmp) / "lava", loops=loops, progress=progress,
                                            board=None)
        wall = time.monotonic() - t0
    if s.get("state") == "infra":
        return [Figure("lava-run: a boot of the same kernel", float("nan"), "s", f"infra: {s.get('error')}")]
    return [Figure("lava-run: a boot of the same kernel, wall", wall, "s",
                   f"{loops} loops, job written, run and imported; lava-run itself {s['timings'].get('lava_run_s')} s")]


def campaign_figures(scn: Scenario, campaigns: int, progress, parallel_arms: bool | None = None,
                     seen: list[tuple[int, int]] | None = None) -> list[Figure]:
    """Warm time to the demo's verdict (the default plan), over several campaigns: median and spread.
    parallel_arms None: as `cma-harness ab` chooses on this machine (campaign.arms_at_once). `seen` gets
    each campaign's baseline (loops with an LRU-caused chunk, loops)."""
    from harness.orchestrate.campaign import Plan, arms_at_once, run_ab

    if parallel_arms is None:
        parallel_arms = arms_at_once(None, None, True, len(host_cpus.available()), scn.board.cpus)

    times, loops, verdicts = [], [], []
    for i in range(campaigns):
        with tempfile.TemporaryDirectory(prefix="cma-bench-ab-", dir=cache_root()) as tmp:
            t0 = time.monotonic()
            r = run_ab(scn, Plan("reintroduce-2012", "stock", parallel_arms=parallel_arms), Path(tmp) / "ab",
                       progress=progress)
            times.append(time.monotonic() - t0)
            loops.append(r["variants"]["baseline"]["loops"])
            verdicts.append(r["verdict"])
            if seen is not None:
                lru = r["variants"]["baseline"]["lru_caused_loops"]
                seen.append((lru["events"], lru["trials"]))
    if not times:
        return []
    how = "both arms at once" if parallel_arms else "serial"
    return [Figure(f"demo: warm time to the verdict, {how}", statistics.median(times), "s",
                   f"median of {campaigns}, {min(times):.0f}-{max(times):.0f} s; verdicts {', '.join(verdicts)}"),
            Figure("demo: loops per arm to the verdict", statistics.median(loops), "loops",
                   f"{min(loops)}-{max(loops)}")]


def fresh_cache_figures(scn: Scenario, progress, parallel_arms: bool | None = None) -> list[Figure]:
    """The demo from an empty cache to its verdict: both kernels built cold (an empty ccache too), the guest
    images made, the campaign run, as README command 1 does after the set-up. The cache is a temporary
    folder holding only the set-up's busybox; the machine's own cache is left as it was."""
    from harness.build import kernel
    from harness.orchestrate.campaign import Plan, arms_at_once, run_ab
    from harness.orchestrate import arms as arms_mod

    if parallel_arms is None:
        parallel_arms = arms_at_once(None, None, True, len(host_cpus.available()), scn.board.cpus)
    busybox = cache_root() / "busybox-armhf"
    with tempfile.TemporaryDirectory(prefix="cma-bench-fresh-", dir=cache_root()) as tmp, \
            cache_root_at(Path(tmp) / "cache") as fresh:
        shutil.copytree(busybox, fresh / "busybox-armhf", symlinks=True)
        t0 = time.monotonic()
        arms = arms_mod.prepare(scn, arms_mod.Request(), progress)       # the patch check, as `ab` does
        r = run_ab(arms.scenario, Plan(arms.baseline, arms.patched, parallel_arms=parallel_arms),
                   Path(tmp) / "ab", progress=progress)
        seconds = time.monotonic() - t0
        built = sorted(float(f.read_text()) for f in (fresh / "kernel").glob(f"*/{kernel.BUILD_SECONDS}"))
    out = [Figure("demo: empty cache to the verdict", seconds, "s",
                  f"{r['verdict']} at {r['variants']['baseline']['loops']} loops per arm; both kernels built cold")]
    if len(built) == 2:         # the first from the tarball, the second from its tree (build/sibling_tree.py)
        out += [Figure("build: first kernel, cold", built[1], "s", "unpack, configure, compile"),
                Figure("build: second variant, from the first's tree", built[0], "s",
                       f"ratio {built[0] / built[1]:.2f} to the first")]
    return out


def run(scn: Scenario, *, quick: bool, variant: str = "reintroduce-2012", campaigns: int = 0, lava: bool = True,
        parallel_arms: bool | None = None, fresh_cache: bool = False,
        progress: Callable[[str], None] = lambda s: None) -> Iterator[str]:
    """The figures' lines, each as soon as it is measured (a bench stopped part way keeps what it printed).
    The verdict design's loops to `fixed` and the floor come after the boots and campaigns, at the
    baseline rate they measured (the campaigns' pooled, else the boots'), which is what the demo meets."""
    plan = sequential.Design()
    yield f"cma-harness bench on {machine()}"
    yield f"{'figure':44} {'value':>12} {'unit':12} note"
    for figure in parser_figures() + model_figures(500 if quick else 2000):
        yield figure.line()
    for figure in build_figures(scn, progress):
        yield figure.line()
    boots_seen: list[tuple[int, int]] = []
    guest = guest_figures(scn, variant, loops=10, boots=1 if quick else 3, progress=progress, seen=boots_seen)
    for figure in guest + ([] if quick else long_run_figures(scn, variant, progress)):
        yield figure.line()
    for figure in lava_figures(scn, variant, 10, progress) if lava else []:
        yield figure.line()
    campaigns_seen: list[tuple[int, int]] = []
    for figure in campaign_figures(scn, campaigns, progress, parallel_arms, seen=campaigns_seen):
        yield figure.line()
    rate, where = measured_rate(campaigns_seen, "campaigns' baseline") or measured_rate(boots_seen, "boots above") \
        or (DEMO_BASELINE_RATE, "the README's demo A/B")
    yield Figure(f"{variant}: loops with an LRU-caused chunk", 100 * rate, "%", f"from the {where}").line()
    for figure in design_figures(plan, (rate,)) + floor_figures(guest, plan, rate):
        yield figure.line()
    for figure in fresh_cache_figures(scn, progress, parallel_arms) if fresh_cache else []:
        yield figure.line()


def measured_rate(seen: list[tuple[int, int]], where: str) -> tuple[float, str] | None:
    """The pooled rate of (events, loops) pairs and where it came from, or None without an event: a few
    boots that saw none give no rate a verdict's loops could be planned on (at 0 % there is no verdict)."""
    events, loops = sum(e for e, _ in seen), sum(n for _, n in seen)
    return (events / loops, f"{where}, {events}/{loops}") if events else None
