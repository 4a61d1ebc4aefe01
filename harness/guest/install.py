"""Before the module is loaded: the harness's files onto the board, and the module checked against the
kernel the board runs (its vermagic against `uname -r`), so a mismatch is a clear error, not insmod's."""

from __future__ import annotations

from harness.boards.base import Board
from harness.build.image import GUEST_DIR
from harness.build.module import ModuleBuild
from harness.core.deadline import Deadline
from harness.core.errors import InfraError
from harness.parsers.modinfo import modinfo, vermagic_mismatch

WORKLOAD_SCRIPT = GUEST_DIR / "workload.sh"


class VermagicMismatch(InfraError):
    """The module was built for another kernel than the one the board runs: nothing was loaded."""


def prepare(board: Board, mb: ModuleBuild, deadline: Deadline) -> str:
    """Copy the module and the workload script (where the board needs them), check the vermagic;
    returns the board's kernel release."""
    board.install({board.paths.module: mb.ko, board.paths.workload: WORKLOAD_SCRIPT}, deadline)
    running = board.run(["uname", "-r"], deadline).check().output.strip()
    problem = vermagic_mismatch(modinfo(mb.ko.read_bytes()).get("vermagic"), running)
    if problem:
        raise VermagicMismatch(
            f"{problem}: insmod would refuse it, so it was not loaded. Boot the board with the kernel the harness "
            f"built for it (`cma-harness build --board FILE` names it), or set `kernel.tree` in the board file to "
            f"the build tree of the kernel it runs")
    return running
