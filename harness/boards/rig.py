"""The test bed's hardware and power switch: a QEMU process that outlives the harness, as a board in a lab does.

`images/boards/qemu-ssh.yaml` names these as its power commands (run on this host like any board's):

    python -m harness.boards.rig on  qemu-ssh     # boot what is installed; return once QEMU and ser2net run
    python -m harness.boards.rig off qemu-ssh     # stop them (a board that is off stays off: exit 0)
    python -m harness.boards.rig status qemu-ssh  # exit 0 on, 3 off
    python -m harness.boards.rig boot qemu-ssh ZIMAGE DTB INITRAMFS
                    # a board's "copy the kernel to its boot partition and reboot" (deploy.method: command)

Its state is a folder under the cache, `rigs/<board>/`:
- `flash/`: what the board boots when it is switched on (its "flash": zImage, board.dtb, initramfs.cpio,
  boot.json with the QEMU hardware and the kernel command line, disk.img, the scratch disk), written by
  the harness with `install` before it first switches the board on;
- `run/`: the pids, the ports (ports.json: SSH forward and ser2net, both on 127.0.0.1, kept from one
  power-on to the next while they are free, so a pinned address stays right), QEMU's and ser2net's logs.

A kernel that panics ends QEMU (`panic=-1`, `-no-reboot`): the board is then off, as a board whose
watchdog is not armed hangs, and only a power command brings it back.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.boards.ssh import free_port
from harness.boards.testbed import PTY_LINE, SER2NET, bed_argv, ser2net_config
from harness.build.toolchain import require
from harness.core import proc
from harness.core.errors import InfraError, InputError
from harness.core.paths import cache_root

FLASH_FILES = ("zImage", "board.dtb", "initramfs.cpio", "boot.json", "disk.img")
START_S = 30.0                      # QEMU names its pty, ser2net listens, within this


@dataclass(frozen=True)
class Ports:
    ssh: int
    serial: int


@dataclass(frozen=True)
class Flash:
    """What the board boots at power-on."""
    zimage: Path
    dtb: Path
    initramfs: Path
    disk_mib: int
    hardware: list[str]             # QemuHardware.hardware_args(): machine, CPU, CPUs, memory
    cmdline: str


def state_dir(board: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9._-]+", board):
        raise InputError(f"board name {board!r}: letters, digits and ._- only")
    return cache_root() / "rigs" / board


class Rig:
    def __init__(self, board: str, root: Path | None = None):
        self.board = board
        self.root = root or state_dir(board)
        self.flash = self.root / "flash"
        self.run = self.root / "run"

    # -- what it boots --------------------------------------------------------------------------

    def install(self, f: Flash) -> None:
        """Write what the board boots next time it is switched on (the harness's job before the first
        power-on, as flashing is a lab's); the scratch disk is made once, empty (each run writes its own)."""
        self.flash.mkdir(parents=True, exist_ok=True)
        self._write_kernel(f.zimage, f.dtb, f.initramfs)
        disk = self.flash / "disk.img"
        if not disk.is_file() or disk.stat().st_size != f.disk_mib << 20:
            with open(disk, "wb") as d:
                d.truncate(f.disk_mib << 20)
        (self.flash / "boot.json").write_text(json.dumps({"hardware": f.hardware, "cmdline": f.cmdline}, indent=1))

    def replace_kernel(self, zimage: Path, dtb: Path, initramfs: Path) -> None:
        """New kernel files in the flash, the rest of what is installed kept (the boot partition's copy)."""
        if not self.installed():
            raise InfraError(f"{self.flash} holds nothing yet: the harness installs the test bed before its first power-on")
        self._write_kernel(zimage, dtb, initramfs)

    def _write_kernel(self, zimage: Path, dtb: Path, initramfs: Path) -> None:
        for src, name in ((zimage, "zImage"), (dtb, "board.dtb"), (initramfs, "initramfs.cpio")):
            tmp = self.flash / (name + ".partial")
            tmp.write_bytes(Path(src).read_bytes())
            tmp.replace(self.flash / name)

    def installed(self) -> bool:
        return all((self.flash / n).is_file() for n in FLASH_FILES)

    # -- state ----------------------------------------------------------------------------------

    def _pid(self, name: str) -> int | None:
        try:
            return int((self.run / f"{name}.pid").read_text())
        except (OSError, ValueError):
            return None

    def _alive(self, name: str) -> bool:
        pid = self._pid(name)
        return pid is not None and proc.alive(pid, str(self.root))

    @property
    def on(self) -> bool:
        return self._alive("qemu")

    def ports(self) -> Ports | None:
        try:
            return Ports(**json.loads((self.run / "ports.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    # -- power ----------------------------------------------------------------------------------

    def power_on(self) -> Ports:
        if self.on and self._alive("ser2net"):
            return self.ports()
        self.power_off()                    # half up (ser2net gone, or QEMU): start again whole
        if not self.installed():
            raise InfraError(f"{self.flash} holds nothing to boot: the harness installs a kernel there before it "
                             f"first switches the test bed on (a run with --board {self.board} does)")
        tools = require("qemu")
        self.run.mkdir(parents=True, exist_ok=True)
        ports = self._pick_ports()
        boot = json.loads((self.flash / "boot.json").read_text())
        argv = bed_argv(tools["qemu"], boot["hardware"], self.flash / "zImage", self.flash / "initramfs.cpio",
                        self.flash / "board.dtb", boot["cmdline"], self.flash / "disk.img", ports.ssh)
        qemu_log = self.run / "qemu.log"
        start = qemu_log.stat().st_size if qemu_log.exists() else 0
        (self.run / "qemu.pid").write_text(str(proc.detach(argv, qemu_log)))
        pty = self._wait_for_pty(qemu_log, start)
        conf = self.run / "ser2net.yaml"
        conf.write_text(ser2net_config(pty, ports.serial, True, 115200))
        (self.run / "ser2net.pid").write_text(str(proc.detach([SER2NET, "-n", "-u", "-c", conf],
                                                              self.run / "ser2net.log")))
        self._wait_listening(ports.serial)
        (self.run / "ports.json").write_text(json.dumps(asdict(ports)))
        return ports

    def power_off(self) -> bool:
        """Whether anything was running."""
        was = False
        for name in ("ser2net", "qemu"):
            pid = self._pid(name)
            if pid is not None:
                was |= proc.stop_pid(pid, str(self.root))
                (self.run / f"{name}.pid").unlink(missing_ok=True)
        return was

    def _pick_ports(self) -> Ports:
        old = self.ports()
        if old and all(_free(p) for p in (old.ssh, old.serial)):
            return old
        ssh = free_port()
        serial = free_port()
        while serial == ssh:
            serial = free_port()
        return Ports(ssh, serial)

    def _wait_for_pty(self, qemu_log: Path, start: int) -> str:
        end = time.monotonic() + START_S
        while time.monotonic() < end:
            said = qemu_log.read_bytes()[start:]
            if m := PTY_LINE.search(said):
                return m.group(1).decode()
            if not self.on:
                raise InfraError(f"QEMU of the test bed {self.board} exited at once: "
                                 f"{said.decode('utf-8', 'replace').strip()[-500:]}")
            time.sleep(0.05)
        self.power_off()
        raise InfraError(f"QEMU of the test bed {self.board} did not name its serial pty within {START_S:.0f} s "
                         f"(see {qemu_log})")

    def _wait_listening(self, port: int) -> None:
        end = time.monotonic() + START_S
        while time.monotonic() < end:
            if not self._alive("ser2net"):
                break
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        self.power_off()
        raise InfraError(f"ser2net of the test bed {self.board} did not listen on 127.0.0.1:{port} "
                         f"(see {self.run / 'ser2net.log'})")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


USAGE = "usage: python -m harness.boards.rig on|off|status BOARD, or boot BOARD ZIMAGE DTB INITRAMFS"


def main(argv: list[str]) -> int:
    if not ((len(argv) == 2 and argv[0] in ("on", "off", "status")) or (len(argv) == 5 and argv[0] == "boot")):
        print(USAGE, file=sys.stderr)
        return 2
    action, board = argv[:2]
    try:
        rig = Rig(board)
        if action == "boot":
            rig.replace_kernel(*map(Path, argv[2:]))
            rig.power_off()
            ports = rig.power_on()
            print(f"{board}: rebooted with {argv[2]} (ssh 127.0.0.1:{ports.ssh})")
        elif action == "on":
            ports = rig.power_on()
            print(f"{board}: on (ssh 127.0.0.1:{ports.ssh}, serial rfc2217://127.0.0.1:{ports.serial})")
        elif action == "off":
            print(f"{board}: {'switched off' if rig.power_off() else 'was off'}")
        else:
            print(f"{board}: {'on' if rig.on else 'off'}")
            return 0 if rig.on else 3
    except (InfraError, InputError, OSError) as e:
        print(f"{board}: power {action} failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
