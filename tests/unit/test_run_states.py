"""How a run ends, over a scripted console: every state, every loop before the end kept, whole reports."""

import itertools
import json
from types import SimpleNamespace

import pytest

from harness.spec import config
from harness.orchestrate import run
from harness.store.jsonl import JsonlWriter, read_jsonl
from harness.orchestrate.run import RunState, RunSummary
from harness.boards.shell import CommandResult

from .records import record_line
from .test_kernel_reports import OOPS, PANIC, WARNING


class FakeBoard:
    """The parts of QemuBoard that collect_loops uses; None in `lines` is a quiet console tick."""

    def __init__(self, lines, folder, then_quiet=False):
        self._lines = itertools.chain(lines, itertools.repeat(None) if then_quiet else [])
        self.cfg = SimpleNamespace(folder=folder)
        self.scripts = []

    def console_lines(self, tick=1.0):
        yield from self._lines

    def run_script(self, script, deadline):
        self.scripts.append(script)
        return CommandResult(script, "0.50 0.40 0.30 1/50 99\n  PID USER COMMAND\n   71 root [cma_harness/0]\n", 0)

    def exit_description(self):
        return "QEMU was killed by signal 9"


@pytest.fixture
def clock(monkeypatch):
    """A monotonic clock that moves 1 s per reading, so a hang timeout passes without waiting."""
    ticks = itertools.count(1000.0, 1.0)
    monkeypatch.setattr(run.time, "monotonic", lambda: next(ticks))


def _collect(tmp_path, lines, loops=4, then_quiet=False):
    scn = config.with_overrides(config.Scenario(), "board", hang_timeout_s=10)
    board = FakeBoard(lines, tmp_path, then_quiet)
    summary = RunSummary(RunState.INFRA, "stock", loops)
    with JsonlWriter(tmp_path / "loops.jsonl") as out:
        run.collect_loops(scn, board, out, summary, loops, progress=lambda s: None)
    return summary, list(read_jsonl(tmp_path / "loops.jsonl")), board


def _loops(n):
    return [record_line(i) for i in range(n)]


def test_all_loops_then_done_is_pass(tmp_path):
    s, recs, _ = _collect(tmp_path, _loops(4) + ["cma_harness: done loops=4 failed_loops=0"])
    assert (s.state, s.loops_done, len(recs), s.loops_unreadable) == (RunState.PASS, 4, 4, 0)


def test_failed_loops_are_reproduced(tmp_path):
    lines = [record_line(0), record_line(1, ".L"), "cma_harness: done loops=2 failed_loops=1"]
    s, _, _ = _collect(tmp_path, lines, loops=2)
    assert s.state is RunState.REPRODUCED and s.causes == {"L": 1}


def test_oops_is_crash_with_the_whole_report_and_the_loops_before_it(tmp_path):
    s, recs, _ = _collect(tmp_path, _loops(2) + OOPS.splitlines() + _loops(1))
    assert s.state is RunState.CRASH and [r["loop"] for r in recs] == [0, 1]
    [rep] = s.kernel_reports
    assert rep["fatal"] and rep["complete"] and rep["text"].splitlines()[-1].endswith("---[ end trace 0000000000000000 ]---")
    assert "Internal error: Oops" in rep["text"] and "kernel oops" in s.error


def test_panic_that_resets_the_guest_is_crash_not_infra(tmp_path):
    s, recs, _ = _collect(tmp_path, _loops(2) + PANIC.splitlines())     # then QEMU exits: the stream ends
    assert s.state is RunState.CRASH and len(recs) == 2
    assert s.kernel_reports[0]["report"] == "panic" and s.kernel_reports[0]["complete"]


def test_warning_keeps_the_loops_going_and_ends_in_crash(tmp_path):
    lines = _loops(2) + WARNING.splitlines()[:-1] + _loops(4)[2:] + ["cma_harness: done loops=4 failed_loops=0"]
    s, recs, _ = _collect(tmp_path, lines)
    assert s.state is RunState.CRASH and len(recs) == 4, "every loop after the WARNING is measured too"
    assert s.kernel_reports[0]["report"] == "warning" and not s.kernel_reports[0]["fatal"]
    assert s.error is None


def test_guest_gone_without_a_report_is_infra_and_says_how(tmp_path):
    s, recs, _ = _collect(tmp_path, _loops(3))
    assert s.state is RunState.INFRA and len(recs) == 3 and "killed by signal 9" in s.error


def test_no_progress_is_a_hang_with_the_guest_state_saved(tmp_path, clock):
    s, recs, board = _collect(tmp_path, _loops(2), then_quiet=True)
    assert s.state is RunState.HANG and len(recs) == 2
    assert "hang_timeout_s" in s.error and "hang-state.txt" in s.error
    assert any("sysrq-trigger" in sc for sc in board.scripts)
    assert "cma_harness/0" in (tmp_path / "hang-state.txt").read_text()


def test_a_report_cut_short_still_ends_the_run_after_a_quiet_spell(tmp_path, clock):
    s, recs, _ = _collect(tmp_path, _loops(1) + OOPS.splitlines()[1:5], then_quiet=True)
    assert s.state is RunState.CRASH and not s.kernel_reports[0]["complete"]


def test_damaged_records_are_dropped_and_counted(tmp_path):
    good = _loops(3)
    damaged = good[1].replace("outcome=..", "outcome=.\x00.")
    lines = [good[0], damaged, good[2], "cma_harness: done loops=3 failed_loops=0"]
    s, recs, _ = _collect(tmp_path, lines, loops=3)
    assert [r["loop"] for r in recs] == [0, 2] and s.loops_unreadable == 1


def test_summary_json_of_a_crash_holds_the_whole_report(tmp_path):
    s, _, _ = _collect(tmp_path, _loops(2) + OOPS.splitlines())
    saved = json.loads(json.dumps(s.as_dict()))
    assert saved["state"] == "crash" and "PC is at loop_thread" in saved["kernel_reports"][0]["text"]
