"""What a guest sees, on real boots: its own random seeds and its own file system each boot (the cached
images get them fresh: build/image_cache.py), and busybox's usleep really sleeping, so that the workload's
pauses (`workload.idle_ms`) happen. It needs the 32-bit time calls, which allnoconfig leaves out:
without CONFIG_COMPAT_32BIT_TIME in kernel-configs/virt-arm.config usleep returns at once (ENOSYS,
ignored), as it did on every QEMU kernel before that line was added."""

import tempfile
from pathlib import Path

import pytest

from harness.boards import factory
from harness.core.deadline import Deadline
from harness.spec import boards, config
from harness.store.run_folder import RunFolder

pytestmark = pytest.mark.integration

# Guest seconds (/proc/uptime, 10 ms steps) across a 2 s usleep, read in the guest itself.
SLEPT = "read a _ < /proc/uptime; usleep 2000000; read b _ < /proc/uptime; echo \"$a $b\""
# The DTB's kaslr-seed as the guest's kernel got it, and the disk's ext4 UUID as the guest reads it.
SEEN = "od -An -tx1 /proc/device-tree/chosen/kaslr-seed | tr -d ' \\n'; echo; dd if=/dev/vda bs=1 skip=1128 count=16 2>/dev/null | od -An -tx1 | tr -d ' \\n'"


def _in_guest(scn, script: str) -> str:
    """script's output on a fresh boot of the scenario's stock kernel on the QEMU board."""
    board = boards.load()
    kb, mb = factory.builds(board, board.kernel_spec(scn.variant("stock")), scn.module)
    with tempfile.TemporaryDirectory(prefix="cma-guest-") as tmp:
        run = RunFolder(Path(tmp) / "run").create()
        with factory.make_board(board, scn, kb, mb, run) as guest:
            guest.power_on(Deadline(scn.board.boot_timeout_s, "boot"))
            return guest.run_script(script, Deadline(60)).check().output


def test_every_boot_gets_its_own_seeds_and_its_own_file_system():
    scn = config.load()
    first, second = (_in_guest(scn, SEEN).split() for _ in range(2))
    assert len(first[0]) == 16 and len(first[1]) == 32, first
    assert first[0] != second[0], "the kaslr-seed QEMU's DTB carries must be drawn for each boot"
    assert first[1] != second[1], "each boot's disk must be a new mkfs (its own UUID)"


def test_on_the_default_kernel_usleep_sleeps():
    a, b = _in_guest(config.load(), SLEPT).split()
    assert float(b) - float(a) >= 2.0, "usleep returned early: are the 32-bit time calls in the kernel?"
