"""Fault injection in a real guest on stock 6.1: the test module oopses, panics, hangs or warns at loop 2,
or QEMU is killed mid-run. Each run ends in its named state with the whole kernel report, every loop
before the fault kept in loops.jsonl, and no QEMU left behind."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness.store.jsonl import read_jsonl
from harness.orchestrate.run import RunState

pytestmark = pytest.mark.integration
FAULT_LOOP = 2


@pytest.fixture(scope="module")
def fault_run(run_seed, qemu_pids):
    def _run(fault: str, loops: int = 4, **overrides):
        module = {"loops": loops, "fault": fault, "fault_loop": FAULT_LOOP, "gap_ms": 100, **overrides.pop("module", {})}
        started = time.monotonic()
        summary, folder = run_seed("stock", f"fault-{fault}", module=module, workload={"profile": "none"},
                                   board={"hang_timeout_s": 20}, **overrides)
        assert qemu_pids(folder) == [], "QEMU must be gone when the run returns"
        return summary, folder, time.monotonic() - started

    return _run


def _saved(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def _loops(folder: Path) -> list[int]:
    return [r["loop"] for r in read_jsonl(folder / "loops.jsonl")]


def test_oops_is_a_crash_with_the_whole_report(fault_run):
    summary, folder, _ = fault_run("oops")
    assert summary.state is RunState.CRASH, summary.error
    assert _loops(folder) == list(range(FAULT_LOOP))
    [rep] = _saved(folder)["kernel_reports"]
    assert rep["report"] == "oops" and rep["fatal"] and rep["complete"]
    text = rep["text"].splitlines()
    assert "cut here" in text[0] and "---[ end trace" in text[-1]
    assert any("Internal error: Oops" in l for l in text) and any("loop_thread" in l for l in text)


def test_panic_ends_qemu_and_is_a_crash_not_infra(fault_run):
    summary, folder, seconds = fault_run("panic")
    assert summary.state is RunState.CRASH, summary.error
    assert _loops(folder) == list(range(FAULT_LOOP))
    [rep] = _saved(folder)["kernel_reports"]
    assert rep["report"] == "panic" and rep["fatal"] and rep["complete"]
    assert "injected panic at loop 2" in rep["title"] and len(rep["text"].splitlines()) > 5, "the whole report"
    assert seconds < 20 + summary.timings["boot_to_insmod_s"] + 30, "panic=-1 + -no-reboot end QEMU at once"


def test_hang_stops_the_guest_and_saves_its_state(fault_run):
    summary, folder, seconds = fault_run("hang")
    assert summary.state is RunState.HANG, summary.error
    assert _loops(folder) == list(range(FAULT_LOOP))
    state = (folder / "hang-state.txt").read_text()
    assert "(cma_harness/0) state=D" in state, "the blocked loop thread, with its kernel stack"
    assert "no loop record for 20 s" in summary.error


def test_warning_is_kept_whole_and_the_loops_go_on(fault_run):
    summary, folder, _ = fault_run("warn")
    assert summary.state is RunState.CRASH, summary.error
    assert _loops(folder) == list(range(4)), "a WARNING does not stop the loops"
    [rep] = _saved(folder)["kernel_reports"]
    assert rep["report"] == "warning" and not rep["fatal"] and rep["complete"]
    assert "injected warning at loop 2" in rep["text"] and "---[ end trace" in rep["text"].splitlines()[-1]


def test_qemu_killed_mid_run_keeps_the_loops_and_nothing_listens_on_tcp(fault_run, qemu_pids, tmp_path_factory):
    seen = {}
    base = tmp_path_factory.getbasetemp()

    def kill_qemu_after_two_loops():
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and "pid" not in seen:
            for folder in base.glob("fault-none*"):
                pids = qemu_pids(folder)
                if pids and len(list(read_jsonl(folder / "loops.jsonl"))) >= 2:
                    seen["tcp"] = subprocess.run(["ss", "-ltnupH"], capture_output=True, text=True).stdout
                    seen["pid"] = pids[0]
                    os.kill(pids[0], signal.SIGKILL)
            time.sleep(0.2)

    killer = threading.Thread(target=kill_qemu_after_two_loops, daemon=True)
    killer.start()
    summary, folder, _ = fault_run("none", loops=20, module={"gap_ms": 500})
    killer.join(5)
    assert "pid" in seen, "the test never found QEMU to kill"
    assert f"pid={seen['pid']}," not in seen["tcp"], f"QEMU listens on a TCP or UDP port:\n{seen['tcp']}"
    assert summary.state is RunState.INFRA and "killed by signal 9" in summary.error
    loops = _loops(folder)
    assert len(loops) >= 2 and loops == list(range(len(loops))) and summary.loops_done == len(loops)
