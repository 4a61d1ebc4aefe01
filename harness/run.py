"""One guest run of a scenario on one kernel variant: build (cached), boot, load, collect, classify.

Every loop record is appended to loops.jsonl the moment it is parsed, so a crash, a hang or a Ctrl-C
keeps every loop the guest finished. A run ends in exactly one named state.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from . import guest, image, kernel, module, parse
from .boards.qemu import QemuBoard, QemuBoardConfig
from .config import KernelSpec, Scenario, as_dict
from .deadline import Deadline
from .errors import InfraError
from .machine import QemuMachine
from .results import JsonlWriter

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
    kernel_reports: list = field(default_factory=list)
    error: str | None = None
    timings: dict = field(default_factory=dict)
    kernel_key: str | None = None
    module_key: str | None = None

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["state"] = self.state.value
        return d


def run_variant(scn: Scenario, variant: str, spec: KernelSpec, folder: Path, *, loops: int | None = None,
                first_loop: int = 0, progress: Callable[[str], None] = lambda s: None) -> RunSummary:
    """Run the scenario's loop once on one kernel variant; write the run folder; return its summary."""
    folder.mkdir(parents=True, exist_ok=True)
    loops = scn.module.loops if loops is None else loops
    summary = RunSummary(RunState.INFRA, variant, loops, first_loop=first_loop)
    (folder / "scenario.yaml").write_text(yaml.safe_dump(as_dict(scn), sort_keys=False))
    t0 = time.monotonic()
    try:
        kb = kernel.build(spec, progress=progress)
        mb = module.build(scn.module, kb, progress=progress)
        summary.kernel_key, summary.module_key = kb.key, mb.key
        shutil.copyfile(kb.config, folder / "kernel.config")
        shutil.copyfile(mb.source, folder / "cma_harness.c")
        summary.timings["build_s"] = round(time.monotonic() - t0, 1)
        machine = QemuMachine.for_board(scn.board)
        imgs = image.make_all(kb, mb.ko, machine, scn.area, scn.workload, folder / "images")
        board = QemuBoard(QemuBoardConfig(machine, kb.zimage, imgs, folder))
        with board, JsonlWriter(folder / "loops.jsonl") as out:
            _guest_session(scn, board, out, summary, loops, first_loop, progress)
    except InfraError as e:
        summary.state, summary.error = RunState.INFRA, str(e)
        progress(f"infrastructure error: {e}")
    finally:
        summary.timings["total_s"] = round(time.monotonic() - t0, 1)
        (folder / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2, sort_keys=True))
    return summary


def _guest_session(scn: Scenario, board: QemuBoard, out: JsonlWriter, summary: RunSummary,
                   loops: int, first_loop: int, progress) -> None:
    t_boot = time.monotonic()
    progress(f"[{summary.variant}] booting")
    board.power_on(Deadline(scn.board.boot_timeout_s, "boot"))
    summary.timings["boot_to_shell_s"] = round(time.monotonic() - t_boot, 1)
    cmd = Deadline(60, "guest command")
    board.run_script(guest.mount_disk(), cmd).check()
    if scn.workload.profile != "none":
        board.run_script(guest.start_workload(scn.workload), Deadline(60)).check()
        time.sleep(scn.workload.warmup_s)
    before = guest.parse_counters(board.run_script(guest.READ_COUNTERS, Deadline(60)).check().output)
    board.run(guest.insmod(scn.module, loops, first_loop), Deadline(60)).check()
    summary.timings["boot_to_insmod_s"] = round(time.monotonic() - t_boot, 1)
    _collect(scn, board, out, summary, loops, progress)
    if board.running and summary.state in (RunState.PASS, RunState.REPRODUCED):
        after = guest.parse_counters(board.run_script(guest.READ_COUNTERS, Deadline(60)).check().output)
        summary.counters_delta = guest.counter_delta(before, after)
        if scn.workload.profile != "none":
            board.run_script(guest.stop_workload(), Deadline(60))
        board.run(guest.RMMOD, Deadline(60))


def _collect(scn: Scenario, board: QemuBoard, out: JsonlWriter, summary: RunSummary, loops: int, progress) -> None:
    """Read the console until the module is done, the kernel reports a crash, or progress stops."""
    last_progress = time.monotonic()
    t_first = None
    report_deadline = None
    for line in board.console_lines(tick=1.0):
        now = time.monotonic()
        if line is not None:
            ev = parse.parse_line(line)
            if isinstance(ev, parse.LoopRecord):
                t_first = t_first or now
                last_progress = now
                _account(summary, ev)
                out.write({"variant": summary.variant, **ev.as_dict()})
                if summary.loops_done % 10 == 0 or summary.loops_done == loops:
                    progress(f"[{summary.variant}] {summary.loops_done}/{loops} loops, {summary.failed_loops} failed")
            elif isinstance(ev, parse.AreaInfo):
                summary.area = {"name": ev.name, "base": ev.base, "size": ev.size}
            elif isinstance(ev, parse.ModuleDone):
                summary.state = RunState.REPRODUCED if summary.failed_loops else RunState.PASS
                break
            elif isinstance(ev, parse.KernelReport):
                summary.kernel_reports.append({"report": ev.report, "text": ev.text})
                summary.state = RunState.CRASH
                # Keep reading: the whole report, up to its end marker or QEMU's exit, lands in console.log.
                report_deadline = report_deadline or now + 10
        if report_deadline and (now > report_deadline or (line and "---[ end " in line)):
            break
        if report_deadline is None and now - last_progress > scn.board.hang_timeout_s:
            summary.state = RunState.HANG
            summary.error = f"no loop record for {scn.board.hang_timeout_s} s"
            _save_hang_state(board, summary)
            return
    else:
        if summary.state not in (RunState.CRASH,):
            summary.state = RunState.CRASH if summary.kernel_reports else RunState.INFRA
            summary.error = summary.error or "the guest stopped before the module finished"
    if t_first is not None and summary.loops_done > 1:
        summary.timings["loops_per_min"] = round(60 * (summary.loops_done - 1) / max(1e-6, time.monotonic() - t_first), 1)


def _account(summary: RunSummary, rec: parse.LoopRecord) -> None:
    summary.loops_done += 1
    summary.calls_failed += rec.calls_failed
    if rec.failed:
        summary.failed_loops += 1
        summary.failed_chunks += rec.failed
        for c in rec.outcome:
            if c != ".":
                summary.causes[c] = summary.causes.get(c, 0) + 1


def _save_hang_state(board: QemuBoard, summary: RunSummary) -> None:
    """Best effort: what the guest was doing when it stopped making progress."""
    try:
        res = board.run_script("echo w > /proc/sysrq-trigger 2>/dev/null; cat /proc/loadavg; ps", Deadline(20))
        summary.error += "; guest state: " + res.output.strip().replace("\n", " | ")[:2000]
    except InfraError as e:
        summary.error += f"; the command channel did not answer either ({e})"
