"""A board's power as data: the board file's `power` commands (on, off, cycle), run on this host as
labgrid's external power driver runs them, for recovery when a board stops answering.

Each command is split like a shell line, its placeholders filled in (spec/boards.py power_argv), and run
through core/proc.py within `power.timeout_s`; a non-zero exit or a timeout is a PowerError naming the
command, its exit status and the tail of its stderr. Nothing here waits for the board to come back:
that is the caller's deadline (SshClient.connect_until).
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass
from typing import Callable

from harness.core import proc
from harness.core.errors import InfraError
from harness.core.paths import cache_root
from harness.spec.boards import BoardFile, BoardPower, power_argv
from harness.spec.config import PROJECT_ROOT

STDERR_TAIL_LINES = 8


class PowerError(InfraError):
    """A power command failed or did not finish: the board's state is unknown."""


@dataclass(frozen=True)
class PowerAction:
    """One command that ran, for the run's record."""
    action: str
    argv: list[str]
    seconds: float


def placeholders(board: BoardFile) -> dict[str, str]:
    return {"board": board.name, "project": str(PROJECT_ROOT), "cache": str(cache_root()), "python": sys.executable}


class PowerControl:
    """on(), off(), cycle() of one board; `run` is swappable for tests (argv, timeout_s -> proc.Finished)."""

    def __init__(self, board: BoardFile, run: Callable[[list[str], float], proc.Finished] = proc.run_bounded,
                 sleep: Callable[[float], None] = time.sleep):
        if board.power is None:
            raise PowerError(f"{board.source}: the board file has no `power` section, so the harness cannot switch "
                             f"{board.name} on, off or cycle it; add `power: {{on: ..., off: ...}}` (README: Boards)")
        self.board = board
        self.spec: BoardPower = board.power
        self._run = run
        self._sleep = sleep
        self.done: list[PowerAction] = []

    def on(self) -> None:
        self._command("on")

    def off(self) -> None:
        self._command("off")

    def cycle(self) -> None:
        if self.spec.cycle:
            self._command("cycle")
            return
        self._command("off")
        self._sleep(self.spec.cycle_delay_s)
        self._command("on")

    def _command(self, action: str) -> None:
        command = getattr(self.spec, action)
        if not command:
            raise PowerError(f"{self.board.source}: `power.{action}` is not set; the board cannot be switched {action}")
        argv = power_argv(command, placeholders(self.board), self.board.source, f"power.{action}")
        what = f"power {action} of board {self.board.name} (`power.{action}`: {shlex.join(argv)})"
        try:
            done = self._run(argv, float(self.spec.timeout_s))
        except proc.CommandTimedOut as e:
            raise PowerError(f"{what} did not finish within {self.spec.timeout_s} s (power.timeout_s) and was killed"
                             + stderr_tail(e.stderr)) from None
        except InfraError as e:
            raise PowerError(f"{what} could not be started: {e}") from None
        if done.returncode != 0:
            raise PowerError(f"{what} exited with status {done.returncode}" + stderr_tail(done.stderr))
        self.done.append(PowerAction(action, argv, round(done.seconds, 2)))


def stderr_tail(stderr: str) -> str:
    """A host command's last stderr lines, for an error message (also the deploy command's)."""
    lines = [l for l in stderr.splitlines() if l.strip()][-STDERR_TAIL_LINES:]
    return ("; its stderr ended:\n" + "\n".join("  | " + l for l in lines)) if lines else "; it wrote nothing on stderr"
