"""A board that stays on between runs (`deploy.method: kexec`): each run's kernel is started on it, the
kernel that answers is checked to be that build, and a board that does not answer, or that came out of a
crash or a hang, is brought back with the board file's power commands.

Bring-up, before the run's own SSH session (SshBoard.power_on):
1. reach the board over SSH (briefly); the test bed that is off is first given this run's kernel to boot
   (Rig.install: its "flash") and switched on with `power.on`;
2. a board that does not answer, or whose kernel shows it went wrong (health: an oops, a warning, a bad
   page or a soft lockup in /proc/sys/kernel/tainted; the test module still loaded, as after a hang) is
   power-cycled (`power.cycle`, else off / on) and waited for within `deploy.boot_timeout_s`;
3. the running kernel is compared with the build (boards/kexec.py); if it is another, `kexec` switches
   to the build, which is verified the same way. A board that does not come back from kexec is
   power-cycled so the next attempt finds it up, and the run ends `infra` (the campaign retries it).
What was done is the run's `summary.board.deploy`: method (running, kexec), the kernel and what its match
rests on, the power commands, why the board was recovered, and the seconds of each step.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.boards import kexec, rig
from harness.boards.kexec import BootFiles, BoardDidNotReturn, KernelMismatch
from harness.boards.power import PowerControl, placeholders, stderr_tail
from harness.boards.ssh import SshClient, SshUnreachable
from harness.boards.ssh_board import SshBoard
from harness.core.deadline import Deadline
from harness.core import proc
from harness.core.errors import InfraError
from harness.parsers.kernel_identity import KernelIdentity, RunningKernel
from harness.spec.boards import DEPLOY_PLACEHOLDERS, LOOPBACK, BoardFile, power_argv

REACH_S = 15.0          # a board that is on answers within this; one that does not is powered
HEALTH_SCRIPT = ("echo \"tainted=$(cat /proc/sys/kernel/tainted)\"; "
                 "echo \"module=$(grep -c '^cma_harness ' /proc/modules)\"")
# include/linux/panic.h: the taints that say this kernel went wrong, and is no base for the next run.
# (O, out-of-tree module, bit 12, is the test module's own and says nothing.)
BAD_TAINTS = {4: "machine check", 5: "bad page", 7: "oops (die)", 9: "warning", 14: "soft lockup"}


class DeployError(InfraError):
    """The deploy command failed, or did not reboot the board."""


@dataclass(frozen=True)
class Target:
    """The kernel a run is meant to run on the board."""
    files: BootFiles
    expected: KernelIdentity
    flash: rig.Flash | None = None      # the test bed: what it boots when switched on


def needs_recovery(health_output: str) -> str | None:
    """Why the kernel a board runs is no base for a run (None: it is). Pure."""
    values = dict(line.split("=", 1) for line in health_output.splitlines() if "=" in line)
    try:
        tainted = int(values.get("tainted", "0") or 0)
    except ValueError:
        tainted = 0
    bad = [what for bit, what in BAD_TAINTS.items() if tainted >> bit & 1]
    if bad:
        return f"its kernel is tainted by {', '.join(bad)} (/proc/sys/kernel/tainted = {tainted})"
    if values.get("module", "0").strip() not in ("", "0"):
        return "the test module is still loaded (a run before it hung, or was cut off)"
    return None


class DeployedBoard(SshBoard):
    def __init__(self, board: BoardFile, folder: Path, target: Target, *, disk_image: Path | None = None,
                 progress: Callable[[str], None] = lambda s: None):
        self.rig = rig.Rig(board.name) if board.kind == "qemu-ssh" else None
        super().__init__(board, folder, disk_image=disk_image)
        self.target = target
        self.power = PowerControl(board) if board.power is not None else None
        self.progress = progress
        self.deploy: dict = {}

    # -- where it is ------------------------------------------------------------------------------

    def _retarget(self) -> bool:
        """Point SSH and the console at the test bed's ports (they are its own, kept in its state); False
        when the test bed is off. A physical board's address is the board file's."""
        if self.rig is None:
            return True
        ports = self.rig.ports() if self.rig.on else None
        if ports is None:
            return False
        self.ssh = SshClient(self.board.ssh, ports.ssh)
        if self.board.serial is not None:
            self.serial_url = f"{self.board.serial.url.partition('://')[0]}://{LOOPBACK}:{ports.serial}"
        return True

    def _reach(self, seconds: float) -> bool:
        if not self._retarget():
            return False
        try:
            self.ssh.connect_until(Deadline(seconds, "reaching the board"))
            return True
        except SshUnreachable:
            return False

    # -- power ----------------------------------------------------------------------------------

    def _power(self, action: str, why: str, deadline: Deadline) -> None:
        if self.power is None:
            raise InfraError(f"{self.board.name} {why}, and its board file has no `power` section to bring it back: "
                             f"power-cycle it by hand (or add power commands: README, Boards)")
        self.progress(f"[{self.board.name}] {why}: power {action}")
        self.ssh.close(because=f"power {action}")
        if action == "on" and self.rig is not None and self.target.flash is not None:
            self.rig.install(self.target.flash)
        t0 = time.monotonic()
        if action == "on":
            self.power.on()
        else:
            self.power.cycle()
        self.deploy.setdefault("power", []).append({"action": action, "why": why})
        wait = Deadline(min(self.board.deploy.boot_timeout_s, deadline.remaining), "boot after power " + action)
        while not self._retarget():
            if wait.remaining <= 0:
                raise BoardDidNotReturn(f"the test bed {self.board.name} is still off after `power.{action}`")
            time.sleep(0.2)
        try:
            self.ssh.connect_until(wait)
        except SshUnreachable as e:
            raise BoardDidNotReturn(f"{self.board.name} did not answer over SSH within {wait.seconds:.0f} s of "
                                    f"`power.{action}` (deploy.boot_timeout_s): {e}. Its serial console shows how "
                                    f"far it got") from None
        self.deploy.setdefault("seconds", {})[f"power_{action}_s"] = round(time.monotonic() - t0, 2)

    # -- bring-up -------------------------------------------------------------------------------

    def power_on(self, deadline: Deadline) -> None:
        self.deploy = {"method": None, "power": [], "recovered": None, "seconds": {}}
        t0 = time.monotonic()
        if not self._reach(REACH_S if self.rig is None or self.rig.on else 0.5):
            off = self.rig is not None and not self.rig.on
            self._power("on" if off else "cycle", "is off" if off else "does not answer over SSH", deadline)
        why = needs_recovery(self.ssh.exec(HEALTH_SCRIPT, deadline.child(30)).stdout.decode("utf-8", "replace"))
        if why:
            self.deploy["recovered"] = why
            self._power("cycle", why, deadline)
        self._switch(deadline)
        self.deploy["seconds"]["bring_up_s"] = round(time.monotonic() - t0, 2)
        super().power_on(deadline)

    def _switch(self, deadline: Deadline) -> None:
        now = kexec.running_kernel(self.ssh, deadline.child(30))
        if now.identity == self.target.expected:
            self.deploy.update(method="running", kernel=now.identity.as_dict(),
                               verified_by=kexec.verify(now.identity, self.target.expected, self.ssh.where))
            self.progress(f"[{self.board.name}] runs the build already ({', '.join(self.deploy['verified_by'])})")
            return
        try:
            r = self._by_command(now, deadline) if self.board.deploy.method == "command" else \
                kexec.kexec_into(self.ssh, self.target.files, self.target.expected, deadline,
                                 kexec.KexecOptions.of(self.board), self.progress)
        except (BoardDidNotReturn, KernelMismatch) as e:
            if self.power is not None:      # the next attempt finds the board up; this run is `infra`
                try:
                    self._power("cycle", "did not come back from kexec as the build", deadline)
                except InfraError as again:
                    raise InfraError(f"{e}; then the power cycle failed too: {again}") from None
            raise
        done = r.as_dict()
        self.deploy["seconds"].update(done.pop("seconds"))
        self.deploy.update(done)

    def _by_command(self, before: RunningKernel, deadline: Deadline) -> kexec.KexecResult:
        """deploy.method: command: the board file's command puts the build on the board and reboots it;
        then SSH is retried until the board answers from a new boot, and its kernel is verified."""
        f, b = self.target.files, self.board
        values = {**placeholders(b), "zimage": str(f.zimage), "dtb": str(f.dtb),
                  "initramfs": str(f.initramfs or ""), "cmdline": f.cmdline}
        argv = power_argv(b.deploy.command, values, b.source, "deploy.command", DEPLOY_PLACEHOLDERS)
        what = f"the deploy command of board {b.name} (`deploy.command`: {shlex.join(argv)})"
        self.ssh.close(because="the deploy command reboots the board")
        t0 = time.monotonic()
        try:
            done = proc.run_bounded(argv, min(b.deploy.boot_timeout_s, deadline.remaining))
        except proc.CommandTimedOut:
            raise DeployError(f"{what} did not finish within {b.deploy.boot_timeout_s} s (deploy.boot_timeout_s) "
                              f"and was killed") from None
        if done.returncode != 0:
            raise DeployError(f"{what} exited with status {done.returncode}" + stderr_tail(done.stderr))
        seconds = {"command_s": round(time.monotonic() - t0, 2)}
        self.progress(f"[{b.name}] deploy command done in {seconds['command_s']:.1f} s; waiting for the new boot")
        back = Deadline(min(b.deploy.boot_timeout_s, deadline.remaining), "boot after the deploy command")
        while True:
            if not self._reach(min(back.remaining, REACH_S)):
                if back.remaining <= 0:
                    raise BoardDidNotReturn(f"{b.name} did not answer over SSH within {back.seconds:.0f} s of its "
                                            f"deploy command (deploy.boot_timeout_s)")
                continue
            now = kexec.running_kernel(self.ssh, back.child(30))
            if kexec.is_new_boot(before, now, time.monotonic() - t0):
                break
            self.ssh.close(because="the boot before the deploy command answered")
            if back.remaining <= 0:
                raise DeployError(f"{what} returned, but {b.name} still answers from the boot before it: it did not "
                                  f"reboot the board")
            time.sleep(0.5)
        seconds["boot_s"] = round(time.monotonic() - t0 - seconds["command_s"], 2)
        by = kexec.verify(now.identity, self.target.expected, self.ssh.where)
        return kexec.KexecResult(now.identity, by, before.identity, seconds, method="command")


def recovers(board: BoardFile | None) -> bool:
    """Whether a crash or a hang on this board is followed by a power cycle, so a campaign can go on."""
    return board is not None and board.deploy.method != "none" and board.power is not None


def switch_off_when_done(board: BoardFile, progress: Callable[[str], None] = lambda s: None) -> None:
    """`power.off_when_done`: the board off at the end of the harness's command (the test bed's QEMU).
    A failure is said, not raised: what was measured is on disk already."""
    if board.power is None or not board.power.off_when_done or board.deploy.method == "none":
        return
    try:
        PowerControl(board).off()
        progress(f"[{board.name}] switched off (power.off_when_done)")
    except InfraError as e:
        progress(f"[{board.name}] could not be switched off: {e}")
