"""Ctrl-C or SIGTERM while the board powers off: QEMU is still stopped, then the interrupt takes effect."""

import os
import signal
from pathlib import Path

import pexpect
import pytest

from harness.boards import qemu
from harness.boards.qemu import QemuBoard, QemuBoardConfig
from harness.boards.console_tee import ConsoleTee


@pytest.fixture
def sigterm_interrupts():
    """What cli.main installs: SIGTERM takes the Ctrl-C path; and Ctrl-C raises KeyboardInterrupt, as it
    does under a terminal (a job a script sends to the background starts with SIGINT ignored, and Python
    leaves it so: these tests would then see no interrupt at all)."""
    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, raise_interrupt)
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGTERM, old_term)
    signal.signal(signal.SIGINT, old_int)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_are_held_inside_the_block_and_raised_after(sig, sigterm_interrupts):
    done = False
    with pytest.raises(KeyboardInterrupt):
        with qemu._signals_deferred():
            os.kill(os.getpid(), sig)
            done = True             # reached: the signal did not cut the block short
    assert done


def test_an_interrupt_during_power_off_still_stops_qemu(tmp_path, sigterm_interrupts):
    board = QemuBoard(QemuBoardConfig(machine=None, zimage=Path("/none"), images=None, folder=tmp_path))
    child = pexpect.spawn("sleep", ["100"])       # stands in for qemu-system-arm
    board._qemu = child
    board._log = open(tmp_path / "console.log", "ab", buffering=0)
    board._console = ConsoleTee(board._read_qemu, board._log)
    kill = child.kill

    def interrupted_kill(sig):
        os.kill(os.getpid(), signal.SIGINT)         # a second Ctrl-C, in the middle of the clean-up
        return kill(sig)

    child.kill = interrupted_kill
    with pytest.raises(KeyboardInterrupt):
        board.power_off()
    assert not child.isalive(), "QEMU was stopped before the interrupt took effect"
