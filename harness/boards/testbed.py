"""The SSH test bed: the harness's QEMU guest, reached only the way a lab's board is.

QEMU stands in for the board's hardware and power: its serial port is a pty that Debian's ser2net
serves on 127.0.0.1 (rfc2217, as a lab's console server does), its NIC is user networking with one
host forward, 127.0.0.1:PORT to the guest's dropbear on 22 (`restrict=on`: the guest reaches nothing
else). Both ports are picked free at run time. Everything the run does then goes through SshBoard:
commands, files and /dev/kmsg over SSH with the pinned host key, the console from ser2net.
"""

from __future__ import annotations

import re
import shlex
import tempfile
from pathlib import Path

import pexpect

from harness.boards.console_tee import ConsoleTee
from harness.boards.qemu import QemuBoardConfig, _signals_deferred, kernel_cmdline, read_child, stop_child
from harness.boards.ssh import free_port
from harness.boards.ssh_board import SshBoard
from harness.build.toolchain import require
from harness.core import proc
from harness.core.deadline import Deadline
from harness.core.errors import InfraError
from harness.spec.boards import LOOPBACK, BoardFile
from harness.store import names
from harness.store.run_folder import RunFolder

PTY_LINE = re.compile(rb"char device redirected to (/dev/pts/\d+) \(label serial0\)")
SER2NET = "ser2net"


def bed_argv(qemu: str, hardware: list[str], zimage: Path, initramfs: Path, dtb: Path, cmdline: str, disk: Path,
             ssh_port: int) -> list[str]:
    """The test bed's QEMU: the board's UART as a pty (ser2net serves it), its NIC user networking with
    one host forward to the guest's SSH server (`restrict=on`: the guest reaches nothing else)."""
    return [
        qemu, *hardware,
        "-accel", "tcg,thread=multi",
        "-display", "none", "-no-reboot",
        "-serial", "pty",
        "-kernel", str(zimage), "-initrd", str(initramfs), "-dtb", str(dtb),
        "-append", cmdline,
        "-drive", f"file={disk},if=none,format=raw,id=disk0",
        "-device", "virtio-blk-device,drive=disk0",
        "-netdev", f"user,id=net0,restrict=on,hostfwd=tcp:{LOOPBACK}:{ssh_port}-:22",
        "-device", "virtio-net-device,netdev=net0",
        "-device", "virtio-rng-device",
    ]


def ssh_bed_argv(cfg: QemuBoardConfig, qemu: str, ssh_port: int) -> list[str]:
    return bed_argv(qemu, cfg.machine.hardware_args(), cfg.zimage, cfg.images.initramfs, cfg.images.dtb,
                    kernel_cmdline(cfg.machine, cfg.cmdline_extra), cfg.images.disk, ssh_port)


def ser2net_config(pty: str, port: int, rfc2217: bool, baud: int) -> str:
    """One connection: the pty as a serial device, accepted on 127.0.0.1 only."""
    accepter = f"telnet(rfc2217),tcp,{LOOPBACK},{port}" if rfc2217 else f"tcp,{LOOPBACK},{port}"
    return ("%YAML 1.1\n---\n"
            "connection: &testbed\n"
            f"  accepter: {accepter}\n"
            f"  connector: serialdev,{pty},{baud}n81,local\n"
            "  options:\n"
            "    kickolduser: true\n")


class QemuSshBoard(SshBoard):
    def __init__(self, board: BoardFile, cfg: QemuBoardConfig):
        self.cfg = cfg
        self._ssh_port = board.ssh.port or free_port()
        self._serial_port: int | None = None
        serial_url = None
        if board.serial is not None:
            scheme, _, rest = board.serial.url.partition("://")
            self._serial_port = int(rest.rpartition(":")[2]) or free_port()
            serial_url = f"{scheme}://{LOOPBACK}:{self._serial_port}"
        super().__init__(board, cfg.folder, port=self._ssh_port, serial_url=serial_url)
        self._qemu: pexpect.spawn | None = None
        self._qemu_out: ConsoleTee | None = None
        self._qemu_log = None
        self._ser2net: proc.Background | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="cma-harness-testbed-")

    def power_on(self, deadline: Deadline) -> None:
        tools = require("qemu")
        run = RunFolder(self.cfg.folder).create()
        argv = ssh_bed_argv(self.cfg, tools["qemu"], self._ssh_port)
        run.file(names.QEMU_CMDLINE).write_text(shlex.join(argv) + "\n")
        try:
            self._qemu = pexpect.spawn(argv[0], argv[1:], timeout=None, echo=False)
            self._qemu.expect(PTY_LINE, timeout=min(30.0, deadline.remaining))
        except pexpect.TIMEOUT:
            raise InfraError(f"QEMU did not say where its serial pty is: {self._qemu.before!r}") from None
        except (pexpect.EOF, pexpect.ExceptionPexpect) as e:
            raise InfraError(f"cannot start QEMU for the test bed: {e}") from None
        pty = self._qemu.match.group(1).decode()
        out = self._qemu_log = open(run.file(names.QEMU_OUTPUT), "ab", buffering=0)
        out.write(self._qemu.before + self._qemu.after + b"\n")
        self._qemu_out = ConsoleTee(self._read_qemu, out, name="qemu-output")
        if self._serial_port is not None:
            self._start_ser2net(pty, run)
        super().power_on(deadline)

    def _start_ser2net(self, pty: str, run: RunFolder) -> None:
        conf = Path(self._tmp.name) / "ser2net.yaml"
        conf.write_text(ser2net_config(pty, self._serial_port, self.serial_url.startswith("rfc2217"),
                                       self.board.serial.baud))
        # -n: in the foreground (stopped with the run), -u: no UUCP lock files, -c: this file alone.
        self._ser2net = proc.Background([SER2NET, "-n", "-u", "-c", conf], run.file(names.SER2NET_LOG))

    def _read_qemu(self, timeout: float) -> bytes | None:
        return read_child(self._qemu, timeout)

    @property
    def running(self) -> bool:
        return self._qemu is not None and self._qemu.isalive() and super().running

    def exit_description(self, wait_s: float = 2.0) -> str:
        what = super().exit_description(wait_s)
        if self._qemu is not None and not self._qemu.isalive():
            what += f"; QEMU exited ({self._qemu.exitstatus if self._qemu.signalstatus is None else 'signal %s' % self._qemu.signalstatus})"
        if self._ser2net is not None and self._ser2net.exited() is not None:
            what += f"; ser2net exited with status {self._ser2net.exited()} (see {names.SER2NET_LOG})"
        return what

    def power_off(self) -> None:
        with _signals_deferred():
            try:
                super().power_off()
            finally:
                if self._ser2net is not None:
                    self._ser2net.stop()
                stop_child(self._qemu, self._qemu_out)
                if self._qemu_log is not None:
                    self._qemu_log.close()
                self._tmp.cleanup()
