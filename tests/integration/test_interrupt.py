"""SIGTERM in the middle of a real campaign, then the same command again: QEMU is gone at once, every
finished loop is kept, and the resumed campaign measures exactly the planned loops per variant."""

import json
import signal
import subprocess
import sys
import time

import pytest

from harness.store.jsonl import read_jsonl

pytestmark = pytest.mark.integration
LOOPS_PER_RUN, BUDGET = 5, 10

SCENARIO = """\
name: interrupt
board: {hang_timeout_s: 60}
module: {loops: 5, gap_ms: 1000}
workload: {profile: none}
trace: {enabled: false}
variants: {stock: {}}
"""


def _loops(folder) -> int:
    return sum(len(list(read_jsonl(p))) for p in folder.glob("runs/*/loops.jsonl"))


def test_sigterm_then_resume_gives_the_planned_loops(tmp_path, qemu_pids):
    (tmp_path / "s.yaml").write_text(SCENARIO)
    out = tmp_path / "ab"
    # stock against itself: the null experiment never decides early, so it runs its whole budget.
    cmd = [sys.executable, "-m", "harness.cli", "ab", str(tmp_path / "s.yaml"), "--baseline", "stock",
           "--patched", "stock", "--loops-per-run", str(LOOPS_PER_RUN), "--budget", str(BUDGET),
           "--expect", "inconclusive", "--serial-arms", "--out", str(out)]     # one QEMU at a time: boot 001 follows 000
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (list(out.glob("runs/001-*/loops.jsonl")) and _loops(out) >= LOOPS_PER_RUN + 2):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.2)
    pids = qemu_pids(out)
    assert pids, "a QEMU runs the second boot"
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert "to resume, run the same command" in err
    assert qemu_pids(out) == [], "no QEMU is left behind"
    kept = _loops(out)
    assert LOOPS_PER_RUN + 2 <= kept < 2 * LOOPS_PER_RUN
    interrupted = json.loads(next(out.glob("runs/001-*/summary.json")).read_text())
    assert interrupted["error"].startswith("interrupted") and interrupted["loops_done"] == kept - LOOPS_PER_RUN

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resuming:" in second.stderr
    result = json.loads((out / "summary.json").read_text())
    assert [v["loops"] for v in result["variants"].values()] == [BUDGET, BUDGET]
    assert _loops(out) == 2 * BUDGET
    assert (out / "report.html").exists() and (out / "failures.png").exists()
