"""The Board interface and its bring-up states."""

from __future__ import annotations

import abc
import base64
import enum
import hashlib
import shlex
from pathlib import Path
from typing import Iterator, Sequence

from harness.core.deadline import Deadline
from harness.core.errors import InfraError
from harness.boards.shell import CommandResult

# Files come back through the command channel in base64 pieces, each with the guest's sha256 of it:
# byte-exact whatever the file holds. The channel is a virtserialport, which throttles; the check stays
# because a virtconsole (hw/char/virtio-console.c flush_buf) drops what its chardev cannot take, and a
# board of another kind may too: a piece that arrives damaged is asked for again.
READ_PIECE = 16 * 1024
READ_TRIES = 4


class BoardState(enum.Enum):
    OFF = "off"
    BOOTING = "booting"
    SHELL = "shell"          # kernel up, command channel answers


class Board(abc.ABC):
    """A guest to test on. The kernel console and the command channel are separate streams."""

    state: BoardState = BoardState.OFF
    # (guest device, host file): a channel the guest can stream its trace into as it is written, so the
    # trace costs no guest memory and survives a crash. None: the guest keeps it until it is copied back.
    trace_stream: tuple[str, Path] | None = None

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

    def read_file(self, path: str, deadline: Deadline) -> bytes:
        """A guest file's bytes, over the command channel; every piece and the whole file are checked
        against the guest's sha256. The file must not change meanwhile."""
        q = shlex.quote(path)
        size_and_sum = self.run_script(f"wc -c < {q} && sha256sum {q}", deadline).check().output.split()
        size, digest = int(size_and_sum[0]), size_and_sum[1]
        data = b"".join(self._read_piece(q, piece, deadline) for piece in range(-(-size // READ_PIECE)))
        if hashlib.sha256(data).hexdigest() != digest:
            raise InfraError(f"copying {path} from the guest: {len(data)} bytes arrived, {size} sent, "
                             "and the sha256 differs")
        return data

    def _read_piece(self, q: str, piece: int, deadline: Deadline) -> bytes:
        script = (f"p() {{ dd if={q} bs={READ_PIECE} skip={piece} count=1 2>/dev/null; }}; "
                  "p | sha256sum; p | base64")
        for _ in range(READ_TRIES):
            first, _, rest = self.run_script(script, deadline).check().output.partition("\n")
            try:
                data = base64.b64decode(rest)
            except ValueError:
                continue                # a damaged answer: ask again
            if first.split()[:1] == [hashlib.sha256(data).hexdigest()]:
                return data
        raise InfraError(f"copying {q} from the guest: piece {piece} arrived damaged {READ_TRIES} times")

    @abc.abstractmethod
    def power_off(self) -> None:
        """Stop the guest, whatever state it is in. Safe to call twice."""

    def __enter__(self) -> "Board":
        return self

    def __exit__(self, *exc) -> None:
        self.power_off()
