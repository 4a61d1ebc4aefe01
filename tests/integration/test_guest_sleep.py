"""What the README and the seed scenario say about the workload's pauses, on real guests: on the default
kernel busybox's usleep returns at once (the 32-bit time calls it needs are left out by allnoconfig), so
`workload.idle_ms` has no effect there; with kernel-configs/time32.config it sleeps."""

import tempfile
from pathlib import Path

import pytest

from harness.boards import factory
from harness.core.deadline import Deadline
from harness.spec import boards, config
from harness.store.run_folder import RunFolder
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

# Guest seconds (/proc/uptime, 10 ms steps) across a 2 s usleep, read in the guest itself.
SLEPT = "read a _ < /proc/uptime; usleep 2000000; read b _ < /proc/uptime; echo \"$a $b\""


def _guest_slept(scn) -> float:
    board = boards.load()
    kb, mb = factory.builds(board, board.kernel_spec(scn.variant("stock")), scn.module)
    with tempfile.TemporaryDirectory(prefix="cma-sleep-") as tmp:
        run = RunFolder(Path(tmp) / "run").create()
        with factory.make_board(board, scn, kb, mb, run) as guest:
            guest.power_on(Deadline(scn.board.boot_timeout_s, "boot"))
            a, b = guest.run_script(SLEPT, Deadline(60)).check().output.split()
    return float(b) - float(a)


def test_on_the_default_kernel_usleep_returns_at_once():
    assert _guest_slept(config.load()) < 1.0, "a 2 s usleep cannot end sooner if it sleeps at all"


def test_with_the_time32_fragment_usleep_sleeps():
    scn = config.load(ROOT / "images" / "scenarios" / "seed-2012-pauses.yaml")
    assert "time32" in scn.kernel.fragments
    assert _guest_slept(scn) >= 2.0
