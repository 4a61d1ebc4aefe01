"""A board reached over SSH, with an optional serial console: how a physical board in a lab is reached.

- Commands and files go over SSH (boards/ssh.py); the module and the workload script are copied into the
  board's work folder, sha256-checked.
- The kernel log is read from /dev/kmsg over SSH with its sequence numbers (parsers/devkmsg.py), raw
  into kmsg.txt; a gap in the numbers is counted as lost messages.
- The serial console, when the board has one, is teed to console.log and is the run's console: the
  module's records and every kernel report are read from it, since an oops or a panic reaches serial
  when SSH is already gone. Without one, the /dev/kmsg records are the console (written to console.log
  as a console prints them).
- A watchdog opens a channel every `ssh.keepalive_s`; after `keepalive_count_max` unanswered ones the
  connection is closed. Then the console ends (a few seconds later, so a report on its way over serial
  arrives whole) and the run ends `infra`, with every loop it finished on disk.
"""

from __future__ import annotations

import gzip
import logging
import shlex
import socket
import threading
import time
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import paramiko

from harness.boards.base import Board, BoardState, GuestPaths
from harness.boards.console_tee import ConsoleTee
from harness.boards.serial_console import SerialConsole
from harness.boards.shell import CommandResult
from harness.build import image as image_mod
from harness.boards.ssh import SshClient, SshCommandTimeout
from harness.core.deadline import Deadline
from harness.core.errors import InfraError
from harness.parsers.devkmsg import KmsgStream
from harness.spec.boards import BoardFile
from harness.store import names
from harness.store.run_folder import RunFolder

log = logging.getLogger(__name__)

# After the SSH connection is gone, the serial console is still read this long: a panic or an oops that
# took SSH down is on its way there.
DROP_GRACE_S = 8.0
# Reopened when a read fails (EPIPE: the kernel overwrote records first; the numbers show the gap); ends
# when its output is gone (SIGPIPE, status > 128), so nothing is left running on the board.
KMSG_COMMAND = ("[ -r /dev/kmsg ] || { echo 'cannot read /dev/kmsg' >&2; exit 1; }; "
                "while :; do cat /dev/kmsg; [ $? -gt 128 ] && exit 0; sleep 1; done")


def _read_at(f, offset: int, length: int) -> bytes:
    f.seek(offset)
    return f.read(length)


BLOCK = 4096


def write_extents_script(device: str, blob_gz: str, extents: list[tuple[int, int]], size: int) -> str:
    """The board's side of write-image: zero `size` bytes of the device, then put each extent of the
    blob (the extents' data, concatenated) at its offset. Extents that are not whole 4 KiB blocks are
    written byte by byte (bs=1). Pure."""
    q = shlex.quote
    dev, blob = q(device), q(blob_gz.removesuffix(".gz"))
    lines = [f"umount {dev} 2>/dev/null", f"gunzip -f {q(blob_gz)}",
             f"dd if=/dev/zero of={dev} bs=1M count={-(-size // (1 << 20))} conv=notrunc 2>/dev/null"]
    at = 0
    for off, n in extents:
        bs = BLOCK if (off | n | at) % BLOCK == 0 else 1
        lines.append(f"dd if={blob} of={dev} bs={bs} skip={at // bs} seek={off // bs} count={n // bs} "
                     f"conv=notrunc 2>/dev/null")
        at += n
    lines += ["sync", f"rm -f {blob}"]
    return " && ".join(lines[:1]) + "; " + " && ".join(lines[1:])


def wrap_script(script: str) -> str:
    """A snippet as one SSH command: its output goes through a file on the board, then comes back.

    An SSH server closes a session's pipes once its command has exited, though a job the snippet left
    in the background (the trace reader, the workload) still holds them: that job's next write to them
    (even the shell's own `set -x` line) would kill it with SIGPIPE. Writing to a file, it lives on."""
    return (f"o=$(mktemp) || exit 125; {{ {script.strip()}\n}} >\"$o\" 2>&1 </dev/null; "
            "s=$?; cat \"$o\"; rm -f \"$o\"; exit $s")


class SshBoard(Board):
    kmsg_command = KMSG_COMMAND

    def __init__(self, board: BoardFile, folder: Path, *, port: int | None = None, serial_url: str | None = None,
                 disk_image: Path | None = None):
        self.board = board
        self.folder = folder
        self.ssh = SshClient(board.ssh, port)
        self.serial_url = serial_url or (board.serial.url if board.serial else None)
        w = board.ssh.workdir.rstrip("/")
        self.paths = GuestPaths(module=f"{w}/cma_harness.ko", workload=f"{w}/workload.sh", disk=board.disk.device)
        self.trace_stream = None            # the trace stays on the board until it is copied back (gzip'd)
        self.state = BoardState.OFF
        self._disk_image = disk_image
        self._serial: SerialConsole | None = None
        self._serial_tee: ConsoleTee | None = None
        self._kmsg_tee: ConsoleTee | None = None
        self._kmsg_chan: paramiko.Channel | None = None
        self._kmsg = KmsgStream()
        self._files: list = []
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None

    # -- bring-up ---------------------------------------------------------------------------------

    def power_on(self, deadline: Deadline) -> None:
        """Connect (a physical board is on already; switching it on is a power command's job)."""
        run = RunFolder(self.folder).create()
        self.state = BoardState.BOOTING
        if self.serial_url:
            self._serial = SerialConsole(self.serial_url, self.board.serial.baud if self.board.serial else 115200)
            self._serial.open(deadline)
            self._serial_tee = ConsoleTee(self._serial.read, self._open(run.file(names.CONSOLE)), name="serial")
        if not self.ssh.active:             # a deployed board's bring-up leaves it connected
            self.ssh.connect_until(deadline)
        self._start_kmsg(run)
        self._watchdog = threading.Thread(target=self._watch, name="ssh-watchdog", daemon=True)
        self._watchdog.start()
        self.state = BoardState.SHELL

    def _open(self, path: Path):
        f = open(path, "ab", buffering=0)
        self._files.append(f)
        return f

    def _start_kmsg(self, run: RunFolder) -> None:
        self._kmsg_chan = self.ssh.open_stream(self.kmsg_command)
        console = None if self._serial_tee is not None else self._open(run.file(names.CONSOLE))

        def keep(line: str) -> str | None:
            rec = self._kmsg.feed(line)
            if rec is None or console is None:
                return None
            text = rec.console_line()
            console.write(text.encode("utf-8", "replace") + b"\n")
            return text

        self._kmsg_tee = ConsoleTee(self._read_kmsg, self._open(run.file(names.KMSG)), keep=keep, name="kmsg")

    def _read_kmsg(self, timeout: float) -> bytes | None:
        chan = self._kmsg_chan
        try:
            chan.settimeout(timeout)
            data = chan.recv(1 << 16)
        except socket.timeout:
            return b""
        except (OSError, EOFError, paramiko.SSHException):
            return None
        return data or None             # b"": the stream ended

    def _watch(self) -> None:
        s = self.board.ssh
        misses = 0
        while not self._stop.wait(s.keepalive_s):
            if not self.ssh.active:
                return
            misses = 0 if self.ssh.ping(timeout=2 * s.keepalive_s) else misses + 1
            if misses >= s.keepalive_count_max:
                self.ssh.close(because=f"no answer to {misses} keepalives in a row, "
                                       f"{s.keepalive_s} s apart (ssh.keepalive_s, ssh.keepalive_count_max)")
                return

    # -- console and commands ---------------------------------------------------------------------

    def console_lines(self, tick: float = 1.0) -> Iterator[str | None]:
        source = self._serial_tee or self._kmsg_tee
        if source is None:
            return
        dropped_at = None
        for line in source.lines(tick):
            yield line
            if dropped_at is None and not self.ssh.active:
                dropped_at = time.monotonic()
            if dropped_at is not None and time.monotonic() - dropped_at > DROP_GRACE_S:
                return

    def run(self, argv: Sequence[str], deadline: Deadline) -> CommandResult:
        return self.run_script(shlex.join(argv), deadline)

    def run_script(self, script: str, deadline: Deadline) -> CommandResult:
        """The snippet's stdout and stderr, merged, with stdin empty: as the QEMU board's shell runs it."""
        self._require_shell()
        try:
            r = self.ssh.exec(wrap_script(script), deadline)
        except SshCommandTimeout as e:
            from harness.boards.shell import ShellTimeout

            raise ShellTimeout(str(e)) from None
        text = (r.stdout + r.stderr).decode("utf-8", "replace")
        return CommandResult(script, text, r.status)

    def read_file(self, path: str, deadline: Deadline) -> bytes:
        self._require_shell()
        return self.ssh.get(path, deadline)

    def write_file(self, path: str, data: bytes, deadline: Deadline, mode: str = "0644") -> None:
        self._require_shell()
        self.ssh.put(data, path, deadline, mode)

    def install(self, files: Mapping[str, Path], deadline: Deadline) -> None:
        for remote, local in files.items():
            self.write_file(remote, local.read_bytes(), deadline, "0755" if remote.endswith(".sh") else "0644")
        if self._disk_image is not None:
            self._write_disk(deadline)

    def _write_disk(self, deadline: Deadline) -> None:
        """disk.provision: write-image: the fresh ext4 image onto the board's device. Only its data goes
        over (gzip'd; a 256 MiB image holds about 4.6 MB), the device is zeroed first so the holes read as
        the image's do: 1.5 s on the test bed instead of 4.4 s for the whole image through gunzip."""
        image = self._disk_image
        extents = image_mod.data_extents(image)
        with open(image, "rb") as f:
            blob = b"".join(_read_at(f, off, n) for off, n in extents)
        gz = f"{self.board.ssh.workdir.rstrip('/')}/disk-data.gz"
        self.write_file(gz, gzip.compress(blob, compresslevel=1), deadline)
        self.run_script(write_extents_script(self.paths.disk, gz, extents, image.stat().st_size), deadline).check()

    def _require_shell(self) -> None:
        if self.state is not BoardState.SHELL:
            raise InfraError(f"the board is {self.state.value}, not connected")

    @property
    def running(self) -> bool:
        return self.state is BoardState.SHELL and self.ssh.active

    def exit_description(self, wait_s: float = 2.0) -> str:
        if self.ssh.active:
            return f"the SSH connection to {self.ssh.where} is still up"
        why = self.ssh.closed_because or "the board closed it"
        serial = f"; serial console: {self._serial.error}" if self._serial and self._serial.error else ""
        return f"the SSH connection to {self.ssh.where} dropped ({why}){serial}"

    def kernel_log_summary(self) -> dict | None:
        return {"source": "/dev/kmsg over SSH", "console": "serial" if self._serial_tee else "/dev/kmsg",
                **self._kmsg.summary()}

    # -- power off ------------------------------------------------------------------------------

    def power_off(self) -> None:
        """Disconnect; the board itself stays as it is (its power commands are boards/deployed.py's)."""
        self._stop.set()
        try:
            if self._kmsg_chan is not None:
                self._kmsg_chan.close()
            self.ssh.close(because="the harness disconnected")
            if self._serial is not None:
                self._serial.close()
            for tee in (self._kmsg_tee, self._serial_tee):
                if tee is not None:
                    tee.join(5)
        finally:
            for f in self._files:
                f.close()
            self._files = []
            self.state = BoardState.OFF
