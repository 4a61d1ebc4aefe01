"""The QEMU board: qemu-system-arm `virt`, kernel console on the PL011 (QEMU's stdio through pexpect,
teed to console.log as it arrives), command channel on a virtio console behind a unix socket (no TCP)."""

from __future__ import annotations

import contextlib
import logging
import shlex
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import pexpect
import pexpect.fdpexpect

from harness.boards.console_tee import ConsoleTee
from harness.core import host_cpus
from harness.core.deadline import Deadline
from harness.core.errors import InfraError
from harness.build.image import GuestImages
from harness.spec.qemu_hardware import QemuHardware
from harness.boards.shell import CommandResult, Shell
from harness.build.toolchain import require
from harness.boards.base import Board, BoardState
from harness.store import names
from harness.store.run_folder import RunFolder

log = logging.getLogger(__name__)


def read_child(child: pexpect.spawn, timeout: float) -> bytes | None:
    """What a QEMU child wrote (b"" when nothing came within timeout), or None once it has exited:
    the reader a ConsoleTee needs."""
    try:
        return child.read_nonblocking(65536, timeout=timeout)
    except pexpect.TIMEOUT:
        return b""
    except (pexpect.EOF, OSError, ValueError):
        return None


# How long QEMU gets to exit on SIGTERM (it flushes its disk and closes its sockets) before SIGKILL.
STOP_GRACE_S = 5.0


def stop_child(child: pexpect.spawn | None, reader: ConsoleTee | None) -> None:
    """Stop a QEMU child for good: SIGTERM (QEMU exits at once, cleanly), SIGKILL if it has not within
    STOP_GRACE_S, its output reader joined, its pty closed. Polled every 10 ms: pexpect's own terminate()
    and close() sleep 0.1 s after each signal and again after closing, 0.2 s of every boot."""
    if child is None:
        return
    # Both layers sleep after a close: pexpect's spawn and the ptyprocess under it. QEMU is gone by then.
    child.delayafterclose = child.delayafterterminate = child.ptyproc.delayafterclose = 0.0
    if child.isalive():
        with contextlib.suppress(OSError):
            child.kill(signal.SIGTERM)
        grace = Deadline(STOP_GRACE_S, "QEMU exit")
        while child.isalive() and not grace.expired:
            time.sleep(0.01)
        if child.isalive():
            with contextlib.suppress(OSError):
                child.kill(signal.SIGKILL)
    if reader is not None:
        reader.join(5)
    child.close(force=True)


@dataclass(frozen=True)
class QemuBoardConfig:
    machine: QemuHardware
    zimage: Path
    images: GuestImages
    folder: Path                      # run folder: console.log and qemu-cmdline.txt go here
    cmdline_extra: tuple[str, ...] = field(default_factory=tuple)


def kernel_cmdline(machine: QemuHardware, extra: Sequence[str] = ()) -> str:
    # panic=-1 with -no-reboot: a panic ends QEMU at once, so a crash can never look like a hang.
    # cma=0: no default area. The test device's area from the DTB is the only CMA memory, as the
    # seed's 56 MB region was: metadata pages that spill into CMA can only land where the test allocates.
    # A cma= in extra (a board that tests the default pool) takes its place.
    pool = [] if any(e.startswith("cma=") for e in extra) else ["cma=0"]
    return " ".join([f"console={machine.console}", "rdinit=/init", "panic=-1", *pool, "loglevel=7", *extra])


# The guest's name for the trace port (nr 2; the command channel is nr 1, /dev/vport0p1, served by
# images/guest/init; nr 0 is kept for a virtconsole).
TRACE_PORT = "/dev/vport0p2"


def qemu_argv(cfg: QemuBoardConfig, qemu: str, socket_path: Path, trace_path: Path) -> list[str]:
    return [
        qemu, *cfg.machine.hardware_args(),
        "-accel", "tcg,thread=multi",
        "-display", "none", "-no-reboot",
        "-serial", "stdio",
        "-kernel", str(cfg.zimage), "-initrd", str(cfg.images.initramfs), "-dtb", str(cfg.images.dtb),
        "-append", kernel_cmdline(cfg.machine, cfg.cmdline_extra),
        "-drive", f"file={cfg.images.disk},if=none,format=raw,id=disk0",
        "-device", "virtio-blk-device,drive=disk0",
        "-device", "virtio-serial-device",
        "-chardev", f"socket,id=cmd,path={socket_path},server=on,wait=off",
        # A virtio serial port, not a virtconsole: a console port drops what the socket cannot take at
        # once (seen: 5.5 KB of a 57 KB transfer lost under load); a serial port throttles instead.
        "-device", "virtserialport,chardev=cmd,name=cma-harness.cmd,nr=1",
        # The trace streams out of the guest into the run folder as it is written, instead of filling
        # guest tmpfs (on a 128 MiB guest whose loops all failed it reached 42 MiB and the OOM killer
        # came). A file always takes what it is given; a serial port loses nothing on the way.
        "-chardev", f"file,id=trace,path={trace_path}",
        "-device", "virtserialport,chardev=trace,name=cma-harness.trace,nr=2",
    ]


class QemuBoard(Board):
    discarded_after_run = True

    def __init__(self, cfg: QemuBoardConfig):
        self.cfg = cfg
        self.state = BoardState.OFF
        self._qemu: pexpect.spawn | None = None
        self._console: ConsoleTee | None = None
        self._log = None
        self._sock: socket.socket | None = None
        self._shell: Shell | None = None
        # Unix socket paths are limited to 107 bytes and run folders can be deep: a private temp dir.
        self._sockdir = tempfile.TemporaryDirectory(prefix="cma-harness-")
        self._socket_path = Path(self._sockdir.name) / "cmd.sock"
        self.trace_stream = (TRACE_PORT, RunFolder(cfg.folder).file(names.TRACE_STREAM))

    # -- bring-up ---------------------------------------------------------------------------------

    def power_on(self, deadline: Deadline) -> None:
        qemu = require("qemu")["qemu"]
        # A guest of a pair booted at once runs on its own host cores (core/host_cpus): taskset execs QEMU.
        argv = host_cpus.taskset_argv() + qemu_argv(self.cfg, qemu, self._socket_path, self.trace_stream[1])
        self.cfg.folder.mkdir(parents=True, exist_ok=True)
        RunFolder(self.cfg.folder).file(names.QEMU_CMDLINE).write_text(shlex.join(argv) + "\n")
        self._log = open(RunFolder(self.cfg.folder).file(names.CONSOLE), "ab", buffering=0)
        self.state = BoardState.BOOTING
        try:
            # QEMU gets a pty in a session of its own: a Ctrl-C meant for the harness never reaches it,
            # and if the harness dies the pty closes and QEMU gets SIGHUP.
            self._qemu = pexpect.spawn(argv[0], argv[1:], timeout=None, echo=False)
        except pexpect.ExceptionPexpect as e:
            raise InfraError(f"cannot start QEMU: {e}") from e
        self._console = ConsoleTee(self._read_qemu, self._log)
        self._connect_command_channel(deadline)
        self._shell = Shell(pexpect.fdpexpect.fdspawn(self._sock.fileno(), timeout=None))
        self._wait_for_shell(deadline)
        self.state = BoardState.SHELL

    def _read_qemu(self, timeout: float) -> bytes | None:
        return read_child(self._qemu, timeout)

    def _check_alive(self, when: str) -> None:
        if not self._qemu.isalive():
            self._console.join(2)
            raise InfraError(f"QEMU stopped {when}; console: {RunFolder(self.cfg.folder).file(names.CONSOLE)}; last lines:\n"
                             + "\n".join("  | " + l for l in self._console.tail()))

    def _connect_command_channel(self, deadline: Deadline) -> None:
        while not deadline.expired:
            self._check_alive("during start-up")
            if self._socket_path.exists():
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(str(self._socket_path))
                    self._sock = s
                    return
                except OSError:
                    s.close()
            time.sleep(0.05)
        raise InfraError("QEMU did not open its command-channel socket in time")

    def _wait_for_shell(self, deadline: Deadline) -> None:
        while not deadline.expired:
            self._check_alive("during boot")
            try:
                if self._shell.run_script("true", deadline.child(2)).status == 0:
                    return
            except InfraError:
                continue
        raise InfraError(f"the guest shell did not come up within {deadline.seconds:.0f} s; "
                         f"console: {RunFolder(self.cfg.folder).file(names.CONSOLE)}")

    # -- console and commands ---------------------------------------------------------------------

    def console_lines(self, tick: float = 1.0) -> Iterator[str | None]:
        if self._console is None:
            return iter(())
        return self._console.lines(tick)

    def run(self, argv: Sequence[str], deadline: Deadline) -> CommandResult:
        return self._require_shell().run(argv, deadline)

    def run_script(self, script: str, deadline: Deadline) -> CommandResult:
        return self._require_shell().run_script(script, deadline)

    def _require_shell(self) -> Shell:
        if self.state is not BoardState.SHELL or self._shell is None:
            raise InfraError(f"the board is {self.state.value}, not at a shell")
        return self._shell

    @property
    def running(self) -> bool:
        return self._qemu is not None and self._qemu.isalive()

    def exit_description(self, wait_s: float = 2.0) -> str:
        """How QEMU ended, for messages: its console closes a moment before the process can be reaped."""
        if self._qemu is None:
            return "QEMU was not started"
        deadline = Deadline(wait_s, "QEMU exit")
        while self._qemu.isalive() and not deadline.expired:
            time.sleep(0.05)
        if self._qemu.isalive():
            return "QEMU closed its console but is still running"
        if self._qemu.signalstatus:
            return f"QEMU was killed by signal {self._qemu.signalstatus}"
        return f"QEMU exited with status {self._qemu.exitstatus}"

    # -- power off ------------------------------------------------------------------------------

    def power_off(self) -> None:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short and leave QEMU running: both wait
        # (held, not lost) until QEMU is gone, then take effect.
        with _signals_deferred():
            self._power_off()

    def _power_off(self) -> None:
        try:
            stop_child(self._qemu, self._console)
        finally:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            if self._log is not None:
                self._log.close()
                self._log = None
            self._sockdir.cleanup()
            stream = self.trace_stream[1]
            if stream.exists() and stream.stat().st_size == 0:
                stream.unlink()         # tracing was off: QEMU made the file, nothing came
            # The guest's scratch disk goes with the guest: a new mkfs each boot, nothing measured on it, and
            # a 256 MiB file the report would hash for every boot of a campaign (0.2 s each).
            if self.cfg.images is not None:
                self.cfg.images.disk.unlink(missing_ok=True)
            self.state = BoardState.OFF


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive meanwhile are held, then re-raised once the block is done.

    Handlers, not a signal mask: CPython runs handlers in the main thread whichever thread the OS picked,
    and the console thread does not block anything."""
    if threading.current_thread() is not threading.main_thread():
        yield                      # only the main thread may set handlers; it gets the signals anyway
        return
    pending: list[int] = []
    old = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum))
           for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if pending:
            signal.raise_signal(pending[0])
