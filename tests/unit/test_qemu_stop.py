"""Stopping a QEMU child (boards/qemu.stop_child) on real processes: SIGTERM first, SIGKILL for one that
ignores it, and the pty closed either way."""

import pexpect

from harness.boards import qemu
from harness.boards.console_tee import ConsoleTee


def _spawn(script):
    return pexpect.spawn("sh", ["-c", script], timeout=None, echo=False)


def test_a_child_that_exits_on_sigterm_is_gone_and_reaped(tmp_path):
    child = _spawn("echo up; exec sleep 60")
    child.expect("up")
    with open(tmp_path / "out.log", "wb") as log:
        tee = ConsoleTee(lambda t: qemu.read_child(child, t), log)
        qemu.stop_child(child, tee)
    assert not child.isalive() and child.closed
    assert child.signalstatus == 15          # exec'd sleep took the SIGTERM itself: no SIGKILL needed


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(monkeypatch):
    monkeypatch.setattr(qemu, "STOP_GRACE_S", 0.3)
    child = _spawn("trap '' TERM; echo up; while :; do sleep 1; done")
    child.expect("up")
    qemu.stop_child(child, None)
    assert not child.isalive() and child.closed
    assert child.signalstatus == 9


def test_nothing_to_stop():
    qemu.stop_child(None, None)
