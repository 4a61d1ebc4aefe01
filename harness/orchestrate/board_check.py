"""`cma-harness board check`: reach the board as a run would, look at what it has, judge it for a scenario.

The QEMU boards are booted with the scenario's kernel (built or cached) and the harness's images; a
physical board is only connected to, since it runs its own kernel. Nothing is loaded or written on the
board beyond a probe file in the work folder; the console and kernel log go to the folder given."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.boards import deployed, factory
from harness.boards.ssh_board import SshBoard
from harness.build.toolchain import require
from harness.core.deadline import Deadline
from harness.guest import probe
from harness.judging import readiness
from harness.parsers.modinfo import modinfo
from harness.spec.boards import BoardFile
from harness.spec.config import Scenario
from harness.store import names
from harness.store.run_folder import RunFolder


@dataclass
class BoardCheck:
    board: BoardFile
    facts: dict = field(default_factory=dict)
    findings: list[readiness.Finding] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return readiness.ready(self.findings)


def check(scn: Scenario, board: BoardFile, folder: Path, progress: Callable[[str], None] = lambda s: None) -> BoardCheck:
    """Bring the board up, run the probe, judge it. Infra errors (unreachable, a refused key) propagate."""
    run = RunFolder(folder).create()
    mb = None
    if board.kind in ("qemu", "qemu-ssh") or board.kernel.tree:
        require(*factory.host_tools(board))
        factory.check_host(board)
        kb, mb = factory.builds(board, board.kernel_spec(scn.kernel), scn.module, progress)
    if board.kind in ("qemu", "qemu-ssh"):
        target = factory.make_board(board, scn, kb, mb, run, progress)
    else:
        target = SshBoard(board, run.path)     # its own kernel and disk: nothing to make or write
    progress(f"[{board.name}] connecting" if board.kind == "ssh" else f"[{board.name}] booting")
    try:
        with target:
            target.power_on(Deadline(scn.board.boot_timeout_s, "boot or connect"))
            workdir = board.ssh.workdir if board.ssh else "/tmp"
            text = target.run_script(probe.script(target.paths.disk, workdir), Deadline(60, "board probe")).output
    finally:
        deployed.switch_off_when_done(board, progress)      # the test bed switched on for the check
    run.file(names.BOARD_PROBE).write_text(text)
    facts = probe.parse(text)
    vermagic = modinfo(mb.ko.read_bytes()).get("vermagic") if mb else None
    return BoardCheck(board, facts, readiness.judge(facts, scn, board, vermagic))
