"""A/B campaign: baseline and patched kernels interleaved (A, B, A, B, ...), each run on a fresh disk,
every loop streamed to disk, a sequential boot-level verdict after each pair (judging/sequential),
resumable after an interruption."""

from __future__ import annotations

import concurrent.futures
import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from harness.boards import deployed
from harness.spec import config
from harness.judging import sequential, stats
from harness.spec.boards import BoardFile
from harness.spec.config import Scenario
from harness.core import host_cpus
from harness.core.errors import InfraError, InputError
from harness.store import counts
from harness.store.campaign_folder import SECOND_ARM_SUFFIX, CampaignFolder, arm_key_of, variant_of_key
from harness.orchestrate.run import RunState, run_variant


# A board that recovers by power (boards/deployed.py) goes on after a crash or a hang; one arm crashing or
# hanging this many boots in a row ends the campaign all the same: the kernel does not run the test.
MAX_UNHEALTHY_IN_A_ROW = 3


@dataclass(frozen=True)
class Plan:
    baseline: str
    patched: str
    # Many short boots: the verdict's unit is the boot (judging/sequential), and at alpha 0.001 it needs
    # at least 7 boots per arm; benchmarks/verdict_errors.py measures these defaults.
    loops_per_run: int = sequential.DEFAULT_LOOPS_PER_RUN
    budget: int = 600            # loops per variant at most
    alpha: float = sequential.DEFAULT_ALPHA     # a false verdict (fixed or regression) in at most alpha of campaigns
    infra_retries: int = 2       # an infrastructure failure is retried; a test result never is
    expected_rate: float | None = None   # the baseline's loop rate, if known: feasibility before the first boot
    # Both boots of a pair at once (two guests); the order of the records and the looks stay as serial.
    # Pinned with the plan: two guests share the host's CPUs, which is a condition of the measurement.
    # None: chosen by run_ab (arms_at_once).
    parallel_arms: bool | None = False

    @property
    def looks(self) -> int:
        return math.ceil(self.budget / self.loops_per_run)

    def validate(self) -> None:
        if not (1 <= self.loops_per_run <= self.budget):
            raise InputError(f"--loops-per-run must be between 1 and --budget ({self.budget}), got {self.loops_per_run}")
        if not 0 < self.alpha < 0.5:
            raise InputError(f"--alpha must be in (0, 0.5), got {self.alpha}")
        if not 0 <= self.infra_retries <= 10:
            raise InputError(f"--infra-retries must be between 0 and 10, got {self.infra_retries}")
        if self.expected_rate is not None and not 0 < self.expected_rate < 1:
            raise InputError(f"--baseline-rate is a loop failure rate in (0, 1), e.g. 0.1; got {self.expected_rate}")


@dataclass
class CampaignState:
    folder: CampaignFolder
    plan: Plan
    records: dict[str, list[dict]] = field(default_factory=dict)
    boots: dict[str, list[list[dict]]] = field(default_factory=dict)    # the same records, boot by boot
    runs: list[dict] = field(default_factory=list)

    def add(self, key: str, recs: list[dict]) -> None:
        self.records.setdefault(key, []).extend(recs)
        self.boots.setdefault(key, []).append(recs)

    @classmethod
    def load(cls, folder: CampaignFolder, plan: Plan) -> "CampaignState":
        """Everything already measured in this folder: each run's loops.jsonl, complete or cut short."""
        st = cls(folder, plan, {plan.baseline: [], plan.patched: []})
        for run in folder.runs():
            key = arm_key_of(run.name)
            recs = run.records()
            st.add(key, recs)
            st.runs.append({"run": run.name, "variant": variant_of_key(key), "loops": len(recs),
                            "state": run.saved_state()})
        return st

    def done(self, variant: str) -> int:
        return len(self.records.get(variant, []))


# What runs one boot into a run folder and returns its summary.json content: the harness itself
# (run_variant) by default, or another executor (orchestrate/lava.py: lava-run, then an import).
Executor = Callable[..., dict]


def harness_executor(scn: Scenario, variant: str, folder: Path, *, loops: int, progress, board,
                     first_loop: int = 0) -> dict:
    return run_variant(scn, variant, scn.variant(variant), folder, loops=loops, first_loop=first_loop,
                       progress=progress, board=board).as_dict()


def run_ab(scn: Scenario, plan: Plan, folder: Path, *, progress: Callable[[str], None] = lambda s: None,
           expect: str = "fixed", board: BoardFile | None = None, executor: Executor = harness_executor) -> dict:
    """Run (or resume) the campaign in folder; return its summary (also written to summary.json).
    `expect` is the verdict the caller counts as success (the JUnit file's verdict case); `executor` runs
    each boot (the verdict is always the harness's own, from the run folders' loops.jsonl)."""
    plan.validate()
    for name in {plan.baseline, plan.patched}:
        scn.variant(name)        # unknown names fail now, not after the first run
    if plan.parallel_arms is None:
        at_once = arms_at_once(CampaignFolder(folder).plan(), board, executor is harness_executor,
                               len(host_cpus.available()), scn.board.cpus)
        plan = replace(plan, parallel_arms=at_once)
        progress(f"arms: {'both at once' if at_once else 'one after the other'} (--serial-arms / --parallel-arms choose)")
    if plan.parallel_arms and board is not None and board.deploy.method != "none":
        raise InputError(f"--parallel-arms boots both arms at once, but {board.name} is one board that stays on "
                         f"(deploy.method: {board.deploy.method}): drop --parallel-arms")
    try:
        return _campaign(scn, plan, folder, progress, expect, board, executor)
    finally:
        if board is not None:
            deployed.switch_off_when_done(board, progress)


def arms_at_once(pinned: dict | None, board: BoardFile | None, own_executor: bool, host_cores: int,
                 guest_cpus: int) -> bool:
    """The default of --parallel-arms: a resumed campaign goes on as it ran (the choice is pinned with its
    plan); a new one boots both arms at once where both guests are this machine's QEMU, booted by the harness
    itself, and the host has a core for every vCPU of both (core/host_cpus.split_for_pair). With fewer, two
    guests on one core each run their loops at less than half speed (TCG's vCPUs wait on each other): on 2
    cores, 6 pairs of the demo took 63.6 and 64.0 s at once against 63.5 and 63.6 s one after the other, and
    a guest's power-on to first loop was 4 s instead of 2."""
    if pinned is not None:
        return bool(pinned.get("plan", {}).get("parallel_arms", False))
    return (board is None or board.kind == "qemu") and own_executor and host_cores >= 2 * guest_cpus


def _campaign(scn: Scenario, plan: Plan, folder: Path, progress, expect: str, board: BoardFile | None,
              executor: Executor) -> dict:
    camp = CampaignFolder(folder).create()
    _pin_plan(camp, scn, plan, board)
    metric = counts.metric_for(scn.module.attribution)
    st = CampaignState.load(camp, plan)
    if st.runs:
        progress(f"resuming: {st.done(plan.baseline)} baseline and {_done_patched(st, plan)} patched loops already measured")
    started = time.monotonic()
    # The pace (loops a minute, boots included) is measured from the end of the first round of boots: a
    # first boot that also built its kernel would make the estimate hours.
    paced_from, paced_loops = None, 0
    streak = {"A": 0, "B": 0}           # crashed or hung boots in a row, per arm
    decision = None
    feasible = None
    if plan.expected_rate is not None:
        feasible = sequential.feasibility(plan.expected_rate, plan)
        progress(f"before the first boot: {feasible.advice}")

    def look(stopped: str | None = None) -> sequential.Decision:
        boots_a, boots_b = _boots(st, plan, metric)
        d = sequential.decide(boots_a, boots_b, plan=plan, stopped=stopped)
        decisions.write({"loops_per_variant": [st.done(plan.baseline), _done_patched(st, plan)], **d.as_dict()})
        progress(f"look at {st.done(plan.baseline)}+{_done_patched(st, plan)} loops: {d.verdict.value} ({d.reason})")
        return d

    def account(variant: str, arm: str, summary: dict) -> str | None:
        """One boot's records into the state; returns why the campaign stops, if it must."""
        nonlocal paced_loops, feasible
        recs = camp.run(summary["run"]).records()
        st.add(_key(plan, arm), recs)
        st.runs.append({"run": summary["run"], "variant": variant, "loops": len(recs), "state": summary["state"]})
        if paced_from is not None:
            paced_loops += len(recs)
        progress(time_left(st.done(plan.baseline), _done_patched(st, plan), plan.budget,
                           paced_loops, time.monotonic() - paced_from if paced_from is not None else 0.0))
        if feasible is None and arm == "A" and recs:
            # The first baseline boot is the pilot: can the budget reach a verdict at its rate?
            # One short boot is a noisy estimate: judged at the lower end of its 95 % interval.
            pilot = counts.loop_counts(recs, metric)
            low = stats.rate(*pilot).low
            if low > 0:
                feasible = sequential.feasibility(low, plan)
                progress(f"pilot (first baseline boot, {pilot[0]}/{pilot[1]}, judged at its 95 % lower bound "
                         f"{100 * low:.1f} %): {feasible.advice}")
            else:
                progress(f"pilot (first baseline boot): {pilot[0]}/{pilot[1]}: too few failures to say "
                         f"whether the budget can reach a verdict")
        unhealthy = summary["state"] in (RunState.CRASH.value, RunState.HANG.value)
        streak[arm] = streak[arm] + 1 if unhealthy else 0
        if unhealthy and deployed.recovers(board) and streak[arm] < MAX_UNHEALTHY_IN_A_ROW:
            progress(f"run {summary['run']} ended in {summary['state']} (kept as measured); {board.name} is "
                     f"power-cycled before its next boot and the campaign goes on")
            return None
        if unhealthy:
            progress(f"run {summary['run']} ended in {summary['state']}: stopping the campaign")
            return (f"run {summary['run']} ended in {summary['state']} after {len(recs)} loops"
                    + (f" ({summary['error']})" if summary.get("error") else ""))
        return None

    with camp.decision_writer() as decisions:
        while True:
            na, nb = st.done(plan.baseline), _done_patched(st, plan)
            if sequential.at_look(*_boots(st, plan, metric), plan):
                decision = look()
                if decision.final:
                    break
            if plan.parallel_arms and na == nb:
                boots = _run_pair(scn, plan, camp, run_length(na, plan), progress, board, executor, na)
            else:
                variant, arm = (plan.baseline, "A") if na <= nb else (plan.patched, "B")
                loops = run_length(na if arm == "A" else nb, plan)
                boots = [(variant, arm, _run_with_retries(scn, plan, variant, arm, camp, loops, progress, board,
                                                          executor, first_loop=na if arm == "A" else nb))]
            # Every boot of a pair is kept, in arm order, even when the first of them stops the campaign.
            stops = [why for why in (account(*boot) for boot in boots) if why]
            if paced_from is None:
                paced_from = time.monotonic()
            if stops:
                decision = look(stopped="; ".join(stops))
                break
    result = {**_summarise(st, plan, metric, decision, time.monotonic() - started), "expect": expect,
              "feasibility": feasible.as_dict() if feasible else None}
    camp.write_summary(result)
    return result


def _key(plan: Plan, arm: str) -> str:
    """Records of each arm; a null experiment (baseline == patched) keeps its two arms apart."""
    if plan.baseline == plan.patched and arm == "B":
        return plan.patched + SECOND_ARM_SUFFIX
    return plan.baseline if arm == "A" else plan.patched


def _done_patched(st: CampaignState, plan: Plan) -> int:
    return st.done(_key(plan, "B"))


def run_length(done: int, plan: Plan) -> int:
    """Loops for an arm's next boot: up to its next look (a multiple of loops_per_run), within the budget.

    A run cut short by an interrupt or QEMU's death is topped up, so a resumed campaign looks at the
    same loop counts, and ends with the same totals, as one that was never interrupted."""
    next_look = min(plan.budget, (done // plan.loops_per_run + 1) * plan.loops_per_run)
    return next_look - done


def time_left(na: int, nb: int, budget: int, session_loops: int, seconds: float) -> str:
    """A progress line: loops per arm, and the worst-case time left at this session's pace (boots included)."""
    left = max(0, budget - na) + max(0, budget - nb)
    line = f"campaign: baseline {na}/{budget}, patched {nb}/{budget} loops"
    if session_loops == 0 or seconds <= 0:
        return line
    per_min = 60 * session_loops / seconds
    return (f"{line}; {per_min:.0f} loops/min, at most {left} loops left, about "
            f"{_minutes(left / per_min)} (less if a look decides first)")


def _minutes(minutes: float) -> str:
    if minutes < 1:
        return f"{60 * minutes:.0f} s"
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def _run_with_retries(scn, plan, variant, arm, camp: CampaignFolder, loops, progress, board=None,
                      executor: Executor = harness_executor, first_loop: int = 0) -> dict:
    """Run one boot; an infrastructure failure with no loop measured is retried, a test result never is."""
    for attempt in range(plan.infra_retries + 1):
        with _NAMING:               # the two boots of a parallel pair must not take the same number
            run = camp.next_run(_key(plan, arm)).create()
        name = run.name
        progress(f"run {name}: {loops} loops on {variant}")
        s = executor(scn, variant, run.path, loops=loops, progress=progress, board=board, first_loop=first_loop)
        if s["state"] != RunState.INFRA.value or s["loops_done"] > 0:
            return {"run": name, **s}
        progress(f"run {name}: infrastructure failure (attempt {attempt + 1}/{plan.infra_retries + 1}): {s['error']}")
    raise InfraError(f"{variant}: {plan.infra_retries + 1} attempts failed on infrastructure; last: {s['error']}")


_NAMING = threading.Lock()


def _run_pair(scn, plan: Plan, camp: CampaignFolder, loops: int, progress, board,
              executor: Executor, done: int = 0) -> list[tuple[str, str, dict]]:
    """A pair's two boots at once: the patched one in a second thread, the baseline in this one (which
    takes Ctrl-C). On an interrupt the other boot is stopped at its next progress line (its QEMU is
    stopped and its loops kept, as any interrupted run's), then the interrupt goes on."""
    cancel = threading.Event()
    cores_a, cores_b = host_cpus.split_for_pair(host_cpus.available(), scn.board.cpus) or (None, None)

    def patched_progress(line: str) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        progress(line)

    def patched_arm() -> dict:
        with host_cpus.for_guests(cores_b):
            return _run_with_retries(scn, plan, plan.patched, "B", camp, loops, patched_progress, board, executor, done)

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="patched-arm") as pool:
        other = pool.submit(patched_arm)
        try:
            with host_cpus.for_guests(cores_a):
                first = _run_with_retries(scn, plan, plan.baseline, "A", camp, loops, progress, board, executor, done)
        except BaseException:
            cancel.set()
            raise
        second = other.result()
    return [(plan.baseline, "A", first), (plan.patched, "B", second)]


def _boots(st: CampaignState, plan: Plan, metric: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Each arm's boots as (loops showing the failure, loops), in run order: the verdict's units."""
    return (counts.per_boot(st.boots.get(_key(plan, "A"), []), metric),
            counts.per_boot(st.boots.get(_key(plan, "B"), []), metric))


def _pin_plan(camp: CampaignFolder, scn: Scenario, plan: Plan, board: BoardFile | None = None) -> None:
    """campaign.json records what this folder measures; resuming with a different plan is refused."""
    # A serial campaign's plan stays as it was before parallel_arms existed, so old folders resume.
    kept = {k: v for k, v in asdict(plan).items() if k != "expected_rate" and (k != "parallel_arms" or v)}
    doc = {"plan": kept, "scenario": config.as_dict(scn)}
    if board is not None and board.kind != "qemu":      # a QEMU-board campaign's file stays as it was
        doc["board"] = {k: v for k, v in board.as_dict().items() if k != "source"}
    old = camp.plan()
    if old is None:
        camp.write_plan(doc)
    elif old != json.loads(json.dumps(doc)):
        raise InputError(f"{camp.path} holds a campaign with a different plan or scenario; "
                         f"resume it with the same arguments, or use a new --out folder")


def _summarise(st: CampaignState, plan: Plan, metric: str, decision, seconds: float) -> dict:
    per_variant = {}
    for arm, key in (("baseline", _key(plan, "A")), ("patched", _key(plan, "B"))):
        recs = st.records.get(key, [])
        per_variant[arm] = {
            "variant": key,
            "loops": len(recs),
            "failed_loops": stats.rate(*counts.loop_counts(recs, "failed")).as_dict(),
            "lru_caused_loops": stats.rate(*counts.loop_counts(recs, "lru")).as_dict(),
            "failed_chunks_by_cause": counts.cause_counts(recs),
            # The verdict's metric boot by boot, and whether the boots agree (stats.boot_spread).
            "between_boots": stats.boot_spread([counts.loop_counts(b, metric) for b in st.boots.get(key, [])]).as_dict(),
        }
    return {
        "plan": asdict(plan),
        "metric": counts.metric_text(metric),
        "verdict": decision.verdict.value if decision else "incomplete",
        "decision": decision.as_dict() if decision else None,
        "variants": per_variant,
        "runs": st.runs,
        "seconds_this_session": round(seconds, 1),
    }
