"""One guest run of a scenario on one kernel variant: build (cached), boot, load, collect, classify.

Every loop record is appended to loops.jsonl the moment it is parsed, so a crash, a hang or a Ctrl-C
keeps every loop the guest finished. A run ends in exactly one named state.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from harness.parsers import busy
from harness.judging import crosscheck
from harness.guest import snippets
from harness.build import kernel_record
from harness.judging import checks
from harness.model import allocator
from harness.build import module
from harness.parsers import kmsg
from harness.parsers.console_watch import AreaSeen, ConsoleWatcher, Ended, LoopSeen, Phase, ReportSeen
from harness.parsers import ftrace
from harness.boards.shell import CommandResult
from harness.guest import install, pool, steps, tracing
from harness.boards import factory
from harness.boards.base import Board
from harness.spec.boards import BoardArea, BoardFile
from harness.spec.config import KernelSpec, Scenario, as_dict
from harness.core.deadline import Deadline
from harness.core.errors import InfraError, InputError, from_os_error
from harness.store import names
from harness.store.jsonl import JsonlWriter
from harness.store.run_folder import RunFolder
from harness.build.toolchain import require

log = logging.getLogger(__name__)


class RunState(enum.Enum):
    PASS = "pass"              # every loop ran, none failed
    REPRODUCED = "reproduced"  # every loop ran, at least one failed
    CRASH = "crash"            # oops, panic, BUG or WARNING in the kernel log
    HANG = "hang"              # no progress for the hang timeout; guest stopped
    INFRA = "infra"            # build, QEMU or board failure: nothing learnt about the kernel


@dataclass
class RunSummary:
    state: RunState
    variant: str
    loops_requested: int
    loops_done: int = 0
    failed_loops: int = 0
    failed_chunks: int = 0
    causes: dict = field(default_factory=dict)          # T/L/P/F -> failed chunks
    calls_failed: int = 0
    first_loop: int = 0
    area: dict | None = None
    counters_delta: dict | None = None
    kernel_reports: list = field(default_factory=list)   # whole reports: report, title, fatal, complete, text
    loops_unreadable: int = 0       # loops the module ran whose record failed its checks (console damage)
    error: str | None = None
    timings: dict = field(default_factory=dict)
    kernel_key: str | None = None
    module_key: str | None = None
    busy: dict | None = None            # busy traces: call chains with counts, refusing functions (busy.py)
    accounting: dict | None = None      # records vs sysfs vs trace (checks.check_accounting)
    trace_error: str | None = None      # why a run with tracing on has no trace.txt
    crosschecks: list = field(default_factory=list)  # the reference model's checks (crosscheck.py); never change state
    board: dict | None = None           # the board file's name and kind, and the kernel release it ran
    kernel_log: dict | None = None      # a board's /dev/kmsg reader: records, lost messages (sequence gaps)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["state"] = self.state.value
        return d


def run_variant(scn: Scenario, variant: str, spec: KernelSpec, folder: Path, *, loops: int | None = None,
                first_loop: int = 0, progress: Callable[[str], None] = lambda s: None,
                board: BoardFile | None = None) -> RunSummary:
    """Run the scenario's loop once on one kernel variant and board (default: the QEMU board); write the
    run folder; return its summary.

    Infrastructure failures end the run in `infra`; bad input and interrupts are recorded, then raised."""
    run = RunFolder(folder).create()
    loops = scn.module.loops if loops is None else loops
    board = board or BoardFile()
    spec = board.kernel_spec(spec)
    summary = RunSummary(RunState.INFRA, variant, loops, first_loop=first_loop,
                         board={"name": board.name, "kind": board.kind, "file": board.source})
    t0 = time.monotonic()
    try:
        run.file(names.SCENARIO).write_text(yaml.safe_dump(as_dict(scn), sort_keys=False))
        run.file(names.BOARD).write_text(yaml.safe_dump(board.as_dict(), sort_keys=False))
        _check_space(folder, scn.workload.disk_mib + RUN_FOLDER_SLACK_MIB)
        require(*factory.host_tools(board))      # before minutes of building, not after
        factory.check_host(board)
        kb, mb = factory.builds(board, spec, scn.module, progress)
        summary.kernel_key, summary.module_key = kb.key, mb.key
        shutil.copyfile(kb.config, run.file(names.KERNEL_CONFIG))
        run.write_kernel_record(kernel_record.describe_external(kb) if board.kernel.tree else
                                kernel_record.describe(spec, kb))
        shutil.copyfile(mb.source, run.file(names.MODULE_SOURCE))
        summary.timings["build_s"] = round(time.monotonic() - t0, 1)
        guest = factory.make_board(board, scn, kb, mb, run, progress)
        with guest, run.loop_writer() as out:
            try:
                _guest_session(scn, guest, mb, out, summary, loops, first_loop, run, progress, board.area)
            finally:
                summary.kernel_log = guest.kernel_log_summary()
        analysis = analyse_run(scn, run, summary)
        summary.crosschecks = crosscheck.crosscheck_quietly(scn, spec, run, summary.as_dict(), analysis)
    except (InfraError, OSError) as e:
        err = from_os_error(e, folder) if isinstance(e, OSError) else e
        summary.state, summary.error = RunState.INFRA, str(err)
        progress(f"infrastructure error: {err}")
        if not isinstance(err, InfraError):
            raise err from e
    except InputError as e:
        summary.error = f"input error: {e}"
        raise
    except KeyboardInterrupt:
        summary.error = f"interrupted (Ctrl-C or SIGTERM) after {summary.loops_done} loops"
        raise
    finally:
        summary.timings["total_s"] = round(time.monotonic() - t0, 1)
        try:
            run.write_summary(summary.as_dict())
        except OSError as e:
            progress(f"could not write {run.file(names.SUMMARY)}: {from_os_error(e, folder)}")
    return summary


# Beyond the ext4 disk image (sparse, but the workload fills it): initramfs, DTB, logs, results.
RUN_FOLDER_SLACK_MIB = 64


def _check_space(folder: Path, need_mib: int) -> None:
    free_mib = shutil.disk_usage(folder).free // (1 << 20)
    if free_mib < need_mib:
        raise InfraError(f"{folder} has {free_mib} MiB free; a run needs about {need_mib} MiB (the guest disk "
                         f"is workload.disk_mib MiB). Free some space, pass --out a folder on a larger disk, "
                         f"or lower workload.disk_mib")


def _guest_session(scn: Scenario, board: Board, mb: module.ModuleBuild, out: JsonlWriter, summary: RunSummary,
                   loops: int, first_loop: int, run: RunFolder, progress, area: BoardArea = BoardArea()) -> None:
    t_boot = time.monotonic()
    progress(f"[{summary.variant}] booting")
    try:
        board.power_on(Deadline(scn.board.boot_timeout_s, "boot"))
    finally:        # how the board got this run's kernel (kexec, power), and the kernel it verified; kept on failure too
        if board.deploy is not None:
            summary.board["deploy"] = board.deploy
    summary.timings["boot_to_shell_s"] = round(time.monotonic() - t_boot, 1)
    summary.board["release"] = install.prepare(board, mb, Deadline(120, "module copy and vermagic check"))
    before = _set_up(scn, board, loops, first_loop, area, summary)
    summary.timings["boot_to_insmod_s"] = round(time.monotonic() - t_boot, 1)
    progress(f"[{summary.variant}] module loaded {summary.timings['boot_to_insmod_s']:.0f} s after power-on: "
             f"{loops} loops (a hang is declared after {scn.board.hang_timeout_s} s without one)")
    collect_loops(scn, board, out, summary, loops, progress, t_boot)
    if board.running and summary.state in (RunState.PASS, RunState.REPRODUCED):
        after = snippets.parse_counters(board.run_script(snippets.READ_COUNTERS, Deadline(60)).check().output)
        summary.counters_delta = snippets.counter_delta(before, after)
        if scn.trace.enabled:
            _collect_trace(board, run, summary, progress)
        if board.discarded_after_run:
            return
        if scn.workload.profile != "none":
            board.run_script(snippets.stop_workload(board.paths.workload), Deadline(60))
        board.run(snippets.RMMOD, Deadline(60))


def _set_up(scn: Scenario, board: Board, loops: int, first_loop: int, area: BoardArea, summary: RunSummary) -> dict:
    """Mount, workload, trace, counters, insmod: one round trip over the command channel (guest/steps.py),
    a failed step named as if it had run alone. The trace is set up while the workload warms up (it
    records the loop thread's events only, and the loop has not started). The counters before the loop,
    as read."""
    insmod = snippets.insmod(scn.module, loops, first_loop, board.paths.module) + _pool_params(board, area, summary)
    plan = [("mount", snippets.mount_disk(board.paths.disk))]
    workload = scn.workload.profile != "none"
    if workload:
        plan.append(("launch", snippets.start_workload(scn.workload, board.paths.workload, verb="launch")))
    if scn.trace.enabled:
        plan.append(("trace", tracing.setup_script(scn.trace.buffer_kib, scn.trace.page_dumps, tracing.sink_of(board))))
    if workload:
        plan.append(("workload", snippets.workload_ready(board.paths.workload)))
        if scn.workload.warmup_s:
            plan.append(("warm-up", f"sleep {scn.workload.warmup_s}"))
    plan.append(("counters", snippets.READ_COUNTERS))
    plan.append(("insmod", shlex.join(insmod)))
    whole = board.run_script(steps.script(plan), Deadline(300, "set-up: mount, workload, counters, trace, insmod"))
    done = {r.name: r for r in steps.split(plan, whole.output)}
    for name, snippet in plan:
        r = done.get(name)
        if r is not None and r.status != 0:
            CommandResult(snippet, r.output, r.status).check()
        if r is None:           # its marker never came: the script ended before it, or the output was damaged
            raise InfraError(f"the set-up script's output has no step {name!r} (status {whole.status}): "
                             + " | ".join(whole.output.strip().splitlines()[-6:]))
    if "workload" in done:
        summary.timings["workload_warm_s"] = snippets.warm_seconds(done["workload"].output)
    return snippets.parse_counters(done["counters"].output)


def _pool_params(board: Board, area: BoardArea, summary: RunSummary) -> list[str]:
    """With `area.method: default`, the board's default pool found and named to the module."""
    if area.method != "default":
        return []
    found = pool.choose(pool.parse(board.run_script(pool.SCRIPT, Deadline(60, "CMA pool lookup")).output),
                        area.pool_name)
    summary.board["pool"] = dataclasses.asdict(found)
    return pool.insmod_params(found)


def _collect_trace(board: Board, run: RunFolder, summary: RunSummary, progress) -> None:
    """The loops are measured by now: a trace that does not come back costs the busy traces, not the run."""
    t0 = time.monotonic()
    try:
        tracing.collect(board, run, Deadline(600, "trace collection"))
    except InfraError as e:
        summary.trace_error = f"the trace did not come back from the guest: {e}"
        progress(f"[{summary.variant}] {summary.trace_error}")
    summary.timings["trace_collect_s"] = round(time.monotonic() - t0, 1)


def analyse_run(scn: Scenario, run: RunFolder, summary: RunSummary) -> busy.Analysis | None:
    """After the guest is off: busy traces from the console and the trace (busy-traces.jsonl), and the
    accounting identities. Only a run that finished its loops has the counters to compare. Returns the
    analysis, so the cross-checks do not parse the trace again."""
    if summary.area is None or summary.counters_delta is None:
        return None
    area = summary.area["name"]
    a = failed_finish = None
    if (trace := run.trace_lines()) is not None:
        a = busy.analyse(run.console_lines(), trace, area)
        run.write_busy_traces(t.as_dict() for t in a.traces)
        summary.busy = a.summary(summary.failed_chunks)
        ring = ftrace.ring_stats(run.trace_stats_text())
        summary.busy["ring_lost_events"] = ring.get("overrun", 0) + ring.get("dropped events", 0)
        failed_finish = a.failed_finish_events
    summary.accounting = checks.check_accounting(
        summary.calls_failed, summary.counters_delta.get(f"cma/{area}/alloc_pages_fail"),
        scn.module.chunk_kib * 1024 // allocator.PAGE_SIZE, failed_finish).as_dict()
    return a


# A kernel report whose end marker has not come after this long is kept as it is (cut short).
REPORT_QUIET_S = 10
# Loop progress is printed at most this often (and at the last loop).
PROGRESS_EVERY_S = 5


def end_state(phase: Phase, failed_loops: int, kernel_reports: int) -> RunState:
    """The run's end state from where the console watch ended. A hang is a hang whatever came before it;
    any kernel report (a WARNING too: the kernel said it is broken) makes the run a crash; a console that
    ended with no report is the infrastructure's failure, not the kernel's."""
    if phase is Phase.HUNG:
        return RunState.HANG
    if kernel_reports:
        return RunState.CRASH
    if phase is Phase.DONE:
        return RunState.REPRODUCED if failed_loops else RunState.PASS
    return RunState.INFRA


def collect_loops(scn: Scenario, board: Board, out: JsonlWriter, summary: RunSummary, loops: int, progress,
                  t_boot: float | None = None) -> None:
    """Drive the console watcher until the module is done, a fatal kernel report is whole, the guest
    stops, or progress stops; every loop record goes to loops.jsonl as it arrives. Also the collector of a
    boot the harness did not drive (orchestrate/lava_import.py replays a LAVA job's console through it)."""
    t_load = time.monotonic()
    run = RunFolder(out.path.parent)        # loops.jsonl is the run folder's
    watch = ConsoleWatcher(scn.board.hang_timeout_s, REPORT_QUIET_S, started=t_load)
    t_first = None
    last_print = t_load
    seen: list = []
    for line in board.console_lines(tick=1.0):
        now = time.monotonic()
        for ev in watch.feed(line, now):
            if isinstance(ev, LoopSeen):
                if t_first is None:
                    t_first = now
                    if t_boot is not None:
                        summary.timings["boot_to_first_loop_s"] = round(now - t_boot, 2)
                _account(summary, ev.record)
                out.write({"variant": summary.variant, **ev.record.as_dict()})
                if t_boot is not None:
                    # With total_s: what the harness adds around the guest (images, stop, collection).
                    summary.timings["boot_to_last_loop_s"] = round(now - t_boot, 2)
                if now - last_print >= PROGRESS_EVERY_S or summary.loops_done == loops:
                    last_print = now
                    progress(f"[{summary.variant}] {summary.loops_done}/{loops} loops, {summary.failed_loops} failed"
                             + _run_time_left(summary.loops_done, loops, now - t_first))
            seen.append(ev)
        if watch.phase.final:
            break
    else:
        seen += watch.console_ended()
    for ev in seen:
        if isinstance(ev, AreaSeen):
            summary.area = ev.area
        elif isinstance(ev, ReportSeen):
            _keep_report(summary, ev.report, progress)
        elif isinstance(ev, Ended):
            _ended(board, summary, ev, run, progress)
    summary.state = end_state(watch.phase, summary.failed_loops, len(summary.kernel_reports))
    if summary.state is RunState.INFRA and not summary.error:
        summary.error = f"the board went away before the module finished ({board.exit_description()})"
    if t_first is not None and summary.loops_done > 1:
        summary.timings["loops_per_min"] = round(60 * (summary.loops_done - 1) / max(1e-6, time.monotonic() - t_first), 1)


def _ended(board: Board, summary: RunSummary, ev: Ended, run: RunFolder, progress) -> None:
    if ev.records_dropped:
        summary.loops_unreadable = ev.records_dropped
        progress(f"[{summary.variant}] {ev.records_dropped} loop records arrived damaged and were dropped "
                 f"(console noise)")
    if ev.phase is Phase.HUNG:
        summary.error = ev.reason
        progress(f"[{summary.variant}] hang: {summary.error}; saving the guest's state, then stopping it")
        _save_hang_state(board, summary, run)


def _run_time_left(done: int, loops: int, seconds_since_first: float) -> str:
    if done < 2 or done >= loops:
        return ""
    return f", about {(loops - done) * seconds_since_first / (done - 1):.0f} s left"


def _keep_report(summary: RunSummary, rep: kmsg.KernelReport, progress) -> None:
    """Store a whole kernel report in the summary; the first fatal one is the run's error."""
    summary.kernel_reports.append({"report": rep.report, "title": rep.title, "complete": rep.complete,
                                   "fatal": rep.fatal, "line": rep.line, "text": rep.text})
    progress(f"[{summary.variant}] kernel {rep.report}: {rep.title.strip()}")
    if rep.fatal and not summary.error:
        summary.error = f"kernel {rep.report}: {rep.title.strip()}"


def _account(summary: RunSummary, rec: kmsg.LoopRecord) -> None:
    summary.loops_done += 1
    summary.calls_failed += rec.calls_failed
    if rec.failed:
        summary.failed_loops += 1
        summary.failed_chunks += rec.failed
        for c in rec.outcome:
            if c != ".":
                summary.causes[c] = summary.causes.get(c, 0) + 1


# Load, processes, and the kernel stack of every blocked (D) or running (R) task; sysrq w/l as well where
# the kernel has CONFIG_MAGIC_SYSRQ (the harness's fragments leave it out; /proc/PID/stack needs STACKTRACE).
HANG_STATE_SCRIPT = r"""
cat /proc/loadavg; ps
for p in /proc/[0-9]*; do
    read -r pid comm state rest < "$p/stat" 2>/dev/null || continue
    case "$state" in D|R) echo "== $pid $comm state=$state wchan=$(cat "$p/wchan" 2>/dev/null)"; cat "$p/stack" 2>/dev/null;; esac
done
if [ -w /proc/sysrq-trigger ]; then echo w > /proc/sysrq-trigger; echo l > /proc/sysrq-trigger; fi
"""


def _save_hang_state(board: Board, summary: RunSummary, run: RunFolder) -> None:
    """Best effort, before the guest is stopped: what every task is doing, from the command channel and
    the console, saved in hang-state.txt."""
    parts = []
    try:
        parts.append(board.run_script(HANG_STATE_SCRIPT, Deadline(20, "hang state")).output)
    except InfraError as e:
        parts.append(f"the command channel did not answer either: {e}")
    parts.append("console meanwhile:\n" + "\n".join(_drain(board, 3)))
    path = run.file(names.HANG_STATE)
    path.write_text("\n\n".join(parts) + "\n")
    summary.error += f"; guest state saved in {path.name}"
    free_mib = shutil.disk_usage(run.path).free >> 20
    if free_mib < RUN_FOLDER_SLACK_MIB:
        # QEMU's default werror=enospc pauses the guest when its disk image cannot grow: a "hang".
        summary.error += (f"; the run folder's disk has {free_mib} MiB free: QEMU pauses a guest whose disk "
                          f"image cannot grow, so free some space or pass --out a larger disk")


def _drain(board: Board, seconds: float) -> list[str]:
    """The console lines that arrive within `seconds` (the line generator itself never ends while QEMU runs)."""
    deadline, lines = Deadline(seconds, "console drain"), []
    for line in board.console_lines(tick=0.5):
        if line is not None:
            lines.append(line)
        if deadline.expired:
            break
    return lines
