"""Deploy by kexec: start another kernel on a board reached over SSH, without a power cycle, and check
that the kernel that answers afterwards is the build that was meant.

    kexec_into(ssh, BootFiles(zimage, dtb, initramfs, cmdline), expected, deadline, KexecOptions.of(board))

1. the zImage, the DTB (the board's, with the test area) and the initramfs are copied into the board's
   work folder, each checked against the board's sha256 (SshClient.put);
2. `kexec -l` loads them with the command line; its failure is named (no CONFIG_KEXEC in the running
   kernel, no CPU hotplug, not root, no kexec binary) with how to fix it;
3. `kexec -e` starts the new kernel, detached, its output kept in a file: the connection goes with the old
   kernel; one that returns (it failed) is found out from that file;
4. SSH is retried until the board answers from a new boot (its boot ID changed; without one, an uptime
   shorter than the time since `kexec -e`), within `deploy.boot_timeout_s`; a board that never does is
   a BoardDidNotReturn, whose message points at the serial console and the power commands;
5. the running kernel is compared with the build: /proc/version with the build's banner, and the GNU
   build ID in /sys/kernel/notes with vmlinux's (parsers/kernel_identity.py: two variants of one
   release print the same banner; only the build ID tells them apart).
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.boards.base import Board
from harness.boards.ssh import SshClient, SshCommandTimeout, SshConnectionLost, SshUnreachable
from harness.core.deadline import Deadline
from harness.core.errors import InfraError
from harness.parsers.kernel_identity import (BOOT_ID_TAG, NOTES_TAG, UPTIME_TAG, KernelIdentity, RunningKernel,
                                             checked_by, mismatch, parse_running)
from harness.spec.boards import BoardFile

# /proc/version, then the kernel's notes as hex (od is POSIX; the build ID is among them), its boot ID, its uptime.
IDENTITY_SCRIPT = ("cat /proc/version; "
                   f"echo \"{NOTES_TAG}$(od -An -tx1 -v /sys/kernel/notes 2>/dev/null | tr -d ' \\n')\"; "
                   f"echo \"{BOOT_ID_TAG}$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)\"; "
                   f"echo \"{UPTIME_TAG}$(cut -d ' ' -f 1 /proc/uptime)\"")
# `kexec -e` either never returns (the kernel is replaced) or fails at once ("Nothing has been loaded!"):
# it starts this long after the SSH command that launched it has returned.
EXEC_DELAY_S = 0.3
RETURNED_TAG = "@@kexec -e returned, status "
RETRY_S = 0.5
PROBE_S = 10.0              # for one identity read: a connection to a kernel going away is given up sooner


class KexecError(InfraError):
    """kexec could not load or start the kernel: the board still runs the old one."""


class BoardDidNotReturn(InfraError):
    """After `kexec -e` the board never answered from a new boot within its deadline."""


class KernelMismatch(InfraError):
    """The board answers, but runs another kernel than the build it was meant to."""


@dataclass(frozen=True)
class BootFiles:
    zimage: Path
    dtb: Path
    initramfs: Path | None
    cmdline: str


@dataclass(frozen=True)
class KexecOptions:
    workdir: str = "/tmp/cma-harness"
    kexec: str = "kexec"
    boot_timeout_s: float = 180.0

    @classmethod
    def of(cls, board: BoardFile) -> "KexecOptions":
        return cls(board.ssh.workdir if board.ssh else cls.workdir, board.deploy.kexec, board.deploy.boot_timeout_s)


@dataclass
class KexecResult:
    kernel: KernelIdentity                  # the kernel the board runs now: the build's
    checked_by: list[str]                   # what the match rests on ("/proc/version", "build ID")
    previous: KernelIdentity | None = None  # the kernel it ran before
    seconds: dict[str, float] = field(default_factory=dict)  # copy_s, load_s, switch_s (kexec -e to SSH), verify_s
    method: str = "kexec"                   # or "command" (boards/deployed.py: the board file's deploy command)

    def as_dict(self) -> dict:
        return {"method": self.method, "kernel": self.kernel.as_dict(), "verified_by": self.checked_by,
                "previous": self.previous.as_dict() if self.previous else None, "seconds": self.seconds}


# -- which kernel runs ----------------------------------------------------------------------------

def running_kernel(ssh: SshClient, deadline: Deadline) -> RunningKernel:
    r = ssh.exec(IDENTITY_SCRIPT, deadline)
    got = parse_running(r.stdout.decode("utf-8", "replace"))
    if not got.identity.banner:
        raise InfraError(f"{ssh.where}: `cat /proc/version` printed no banner (status {r.status}): "
                         f"{(r.stdout + r.stderr).decode(errors='replace').strip()[-300:]}")
    return got


def running_kernel_on(board: Board, deadline: Deadline) -> RunningKernel:
    """The same over any board's command channel (the QEMU guest's virtio shell, an SshBoard)."""
    return parse_running(board.run_script(IDENTITY_SCRIPT, deadline).check().output)


def verify(running: KernelIdentity, expected: KernelIdentity, where: str) -> list[str]:
    """What the match rests on, or KernelMismatch naming both kernels."""
    problem = mismatch(expected, running)
    if problem:
        raise KernelMismatch(f"{where}: {problem}. The board did not boot the kernel the harness meant: check the "
                             f"zImage the boot was given, and that nothing else (a bootloader, a watchdog reset) "
                             f"booted the board meanwhile")
    return checked_by(expected, running)


# -- the switch -----------------------------------------------------------------------------------

def kexec_into(ssh: SshClient, files: BootFiles, expected: KernelIdentity, deadline: Deadline,
               opts: KexecOptions = KexecOptions(), progress: Callable[[str], None] = lambda s: None) -> KexecResult:
    """Start `files` on the board over `ssh` (connected) and return once the new kernel answers and is
    `expected`; `ssh` is then connected to it. Every step counts against `deadline`."""
    seconds: dict[str, float] = {}
    before = running_kernel(ssh, deadline)
    kexec = _find_kexec(ssh, opts, deadline)
    t0 = time.monotonic()
    remote = _copy(ssh, files, opts.workdir.rstrip("/") + "/kexec", deadline)
    seconds["copy_s"] = round(time.monotonic() - t0, 2)
    t0 = time.monotonic()
    _load(ssh, kexec, remote, files.cmdline, deadline)
    seconds["load_s"] = round(time.monotonic() - t0, 2)
    progress(f"kexec: loaded {files.zimage.name} on {ssh.where}; starting it")
    ssh.exec("sync", deadline)              # kexec -e stops nothing first: what the old kernel holds dirty is written
    log = opts.workdir.rstrip("/") + "/kexec/kexec-e.log"
    t_exec = time.monotonic()
    _execute(ssh, kexec, log, deadline)
    now = _come_back(ssh, before, t_exec, log, deadline, opts)
    seconds["switch_s"] = round(time.monotonic() - t_exec, 2)
    t0 = time.monotonic()
    by = verify(now.identity, expected, ssh.where)
    seconds["verify_s"] = round(time.monotonic() - t0, 2)
    progress(f"kexec: {ssh.where} runs the build ({', '.join(by)}) {seconds['switch_s']:.1f} s after kexec -e")
    return KexecResult(now.identity, by, before.identity, seconds)


def _find_kexec(ssh: SshClient, opts: KexecOptions, deadline: Deadline) -> str:
    r = ssh.exec(f"command -v {shlex.quote(opts.kexec)}", deadline)
    path = r.stdout.decode(errors="replace").strip()
    if r.status != 0 or not path:
        raise KexecError(f"{ssh.where} has no kexec binary ({opts.kexec!r} is not on root's PATH): install "
                         f"kexec-tools on the board (Debian: apt-get install kexec-tools), or set `deploy.kexec` "
                         f"in the board file to its path")
    return path


ZIMAGE_MAGIC = 0x016F2818          # arch/arm/boot/compressed/head.S, at offset 0x24, little-endian
DTB_MAGIC = b"\xd0\x0d\xfe\xed"


def image_problem(key: str, data: bytes) -> str | None:
    """Why a file cannot be what kexec is given it as (None: it can). Pure. kexec-tools takes any file as
    an ARM zImage and jumps into it: a wrong file is a board that never comes back, so it is refused here."""
    if key == "zimage" and (len(data) < 0x28 or int.from_bytes(data[0x24:0x28], "little") != ZIMAGE_MAGIC):
        return "is not an ARM zImage (no magic 0x016f2818 at offset 0x24)"
    if key == "dtb" and data[:4] != DTB_MAGIC:
        return "is not a device tree blob (no magic d00dfeed)"
    return None


def _copy(ssh: SshClient, files: BootFiles, where: str, deadline: Deadline) -> dict[str, str]:
    remote = {"zimage": f"{where}/zImage", "dtb": f"{where}/board.dtb"}
    if files.initramfs is not None:
        remote["initramfs"] = f"{where}/initramfs.cpio"
    data = {}
    for key in remote:
        local: Path = getattr(files, key)
        try:
            data[key] = local.read_bytes()
        except OSError as e:
            raise InfraError(f"cannot read {local} to copy it to {ssh.where}: {e.strerror}") from None
        if (problem := image_problem(key, data[key])) is not None:
            raise KexecError(f"{local} {problem}: nothing was copied to {ssh.where}, which keeps its kernel")
    for key, path in remote.items():
        ssh.put(data[key], path, deadline)
    return remote


def load_command(kexec: str, remote: dict[str, str], cmdline: str) -> str:
    argv = [kexec, "-l", remote["zimage"], f"--dtb={remote['dtb']}", f"--command-line={cmdline}"]
    if "initramfs" in remote:
        argv.insert(4, f"--initrd={remote['initramfs']}")
    return shlex.join(argv)


# (what kexec -l prints, what it means and how to fix it), first match wins.
LOAD_FAILURES = (
    ("Function not implemented", "the running kernel has no kexec (CONFIG_KEXEC is off: kexec_load is ENOSYS). "
     "Boot the board once with a kernel that has it (kernel-configs/kexec.config in the board file's "
     "kernel.fragments), by its bootloader or a power cycle; from then on each variant's kernel has it too"),
    ("Operation not permitted", "kexec_load was refused: run it as root, and check that "
     "/proc/sys/kernel/kexec_load_disabled is 0 (once 1 it stays so until the next boot)"),
    ("Invalid argument", "the running kernel refused the image: on an SMP ARM kernel without CPU hotplug "
     "(CONFIG_HOTPLUG_CPU, via PM_SLEEP_SMP: kernel-configs/kexec.config) it cannot stop its other CPUs; "
     "else a segment lies outside the board's memory (see `kexec -d -l ...`)"),
    ("free area of memory", "there was no room for the image in the board's memory: free some (a smaller "
     "initramfs, fewer files in the work folder's tmpfs)"),
)


def load_failure(status: int, output: str) -> str:
    """What a failed `kexec -l` means, from what it printed. Pure."""
    for needle, meaning in LOAD_FAILURES:
        if needle in output:
            return meaning
    return f"kexec -l exited with status {status}"


def _load(ssh: SshClient, kexec: str, remote: dict[str, str], cmdline: str, deadline: Deadline) -> None:
    command = load_command(kexec, remote, cmdline)
    r = ssh.exec(command, deadline)
    if r.status != 0:
        said = (r.stdout + r.stderr).decode("utf-8", "replace").strip()
        raise KexecError(f"{ssh.where}: `{command}` failed: {load_failure(r.status, said)}; it printed:\n"
                         + "\n".join("  | " + l for l in telling_lines(said)))


TELLING = re.compile(r"fail|cannot|could not|error|invalid|not implemented|not permitted|denied|no such", re.I)


def telling_lines(output: str, keep: int = 6) -> list[str]:
    """The lines of kexec's output that say what went wrong (it may print its segment list after the
    error), else its last lines. Pure."""
    lines = [l for l in output.splitlines() if l.strip()]
    return [l for l in lines if TELLING.search(l)][:keep] or lines[-keep:] or ["(nothing)"]


def execute_command(kexec: str, log: str) -> str:
    """`kexec -e` started detached, a moment later, so the SSH command returns while the kernel is still
    there to say so; SIGHUP ignored (the session's end must not stop it); what it prints, and its status
    if it ever returns, go to `log`, which the old boot can be asked for."""
    q = shlex.quote
    return (f"rm -f {q(log)}; ( trap '' HUP; sleep {EXEC_DELAY_S}; {q(kexec)} -e >{q(log)} 2>&1; "
            f"echo \"{RETURNED_TAG}$?\" >>{q(log)} ) </dev/null >/dev/null 2>&1 &")


def returned(log_text: str) -> str | None:
    """What a `kexec -e` that returned printed, with its status; None while it has not. Pure."""
    if RETURNED_TAG not in log_text:
        return None
    said, _, status = log_text.rpartition(RETURNED_TAG)
    return f"status {status.strip()}: {said.strip()[-300:] or '(no output)'}"


def _execute(ssh: SshClient, kexec: str, log: str, deadline: Deadline) -> None:
    r = ssh.exec(execute_command(kexec, log), deadline)
    if r.status != 0:
        raise KexecError(f"{ssh.where}: could not start `kexec -e` (status {r.status}): "
                         f"{(r.stdout + r.stderr).decode(errors='replace').strip()[-300:]}")


def is_new_boot(before: RunningKernel, now: RunningKernel, since_exec_s: float) -> bool:
    """The answering kernel booted after `kexec -e`: a new boot ID, or (without one) an uptime shorter
    than the time since. Pure."""
    if before.boot_id and now.boot_id:
        return now.boot_id != before.boot_id
    return now.uptime_s is not None and now.uptime_s < since_exec_s + 1.0


def _come_back(ssh: SshClient, before: RunningKernel, t_exec: float, log: str, deadline: Deadline,
               opts: KexecOptions) -> RunningKernel:
    """Reconnect until the board answers from a new boot. An answer from the old one asks it whether
    `kexec -e` returned (then it failed: KexecError at once)."""
    back = Deadline(min(opts.boot_timeout_s, deadline.remaining), "kexec boot")
    ssh.close(because="kexec -e replaces the board's kernel")
    time.sleep(EXEC_DELAY_S)
    while True:
        try:
            ssh.connect_until(back, RETRY_S)
            now = running_kernel(ssh, back.child(PROBE_S))
            if is_new_boot(before, now, time.monotonic() - t_exec):
                return now
            failed = returned(ssh.exec(f"cat {shlex.quote(log)} 2>/dev/null", back.child(PROBE_S)).stdout.decode(
                "utf-8", "replace"))
            ssh.close(because="the boot before kexec -e answered")
        except (SshUnreachable, SshConnectionLost, SshCommandTimeout) as e:
            if isinstance(e, SshUnreachable) or back.remaining <= RETRY_S:
                raise BoardDidNotReturn(
                    f"{ssh.where} did not answer over SSH within {back.seconds:.0f} s of `kexec -e` "
                    f"(deploy.boot_timeout_s): the new kernel did not boot, or its network or SSH server did not "
                    f"come up ({e}). Its serial console shows how far it got; the board's `power.cycle` command "
                    f"brings it back") from None
            ssh.close(because="retrying after kexec -e")
            continue
        if failed is not None:
            raise KexecError(f"{ssh.where}: `kexec -e` returned ({failed}) instead of starting the loaded kernel; "
                             f"the board still runs its old kernel")
        if back.remaining <= RETRY_S:
            raise BoardDidNotReturn(f"{ssh.where} still answers from the boot before `kexec -e` after "
                                    f"{back.seconds:.0f} s: the new kernel never started")
        time.sleep(RETRY_S)
