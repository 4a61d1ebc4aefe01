"""The Board interface and its bring-up states."""

from __future__ import annotations

import abc
import enum
from typing import Iterator, Sequence

from ..deadline import Deadline
from ..shell import CommandResult


class BoardState(enum.Enum):
    OFF = "off"
    BOOTING = "booting"
    SHELL = "shell"          # kernel up, command channel answers


class Board(abc.ABC):
    """A guest to test on. The kernel console and the command channel are separate streams."""

    state: BoardState = BoardState.OFF

    @abc.abstractmethod
    def power_on(self, deadline: Deadline) -> None:
        """Boot and bring the command channel up (OFF -> SHELL). Console lines seen meanwhile stay readable."""

    @abc.abstractmethod
    def console_lines(self, tick: float = 1.0) -> Iterator[str | None]:
        """Kernel console lines as they arrive; None every `tick` seconds without one. Ends when the guest stops."""

    @abc.abstractmethod
    def run(self, argv: Sequence[str], deadline: Deadline) -> CommandResult:
        """Run one command in the guest (arguments quoted)."""

    @abc.abstractmethod
    def run_script(self, script: str, deadline: Deadline) -> CommandResult:
        """Run a harness-written shell snippet in the guest."""

    @abc.abstractmethod
    def power_off(self) -> None:
        """Stop the guest, whatever state it is in. Safe to call twice."""

    def __enter__(self) -> "Board":
        return self

    def __exit__(self, *exc) -> None:
        self.power_off()
