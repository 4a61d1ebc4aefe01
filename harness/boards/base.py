"""The Board interface and its bring-up states."""

from __future__ import annotations

import abc
import base64
import enum
import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from harness.core.deadline import Deadline
from harness.core.errors import InfraError
from harness.boards.shell import CommandResult
from harness.build.image import GUEST_MODULE_PATH, GUEST_WORKLOAD

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


@dataclass(frozen=True)
class GuestPaths:
    """Where a board keeps what the harness brings: the QEMU guest has them in its initramfs, a board
    reached over SSH gets them copied into its work folder."""
    module: str = GUEST_MODULE_PATH
    workload: str = GUEST_WORKLOAD
    disk: str = "/dev/vda"          # the block device that holds the workload's ext4


class Board(abc.ABC):
    """A guest to test on. The kernel console and the command channel are separate streams."""

    state: BoardState = BoardState.OFF
    paths: GuestPaths = GuestPaths()
    # (guest device, host file): a channel the guest can stream its trace into as it is written, so the
    # trace costs no guest memory and survives a crash. None: the guest keeps it until it is copied back.
    trace_stream: tuple[str, Path] | None = None
    # A board that stays on between runs (boards/deployed.py): how this run's kernel got there, and what
    # its identity check rests on. None: the harness boots the kernel itself.
    deploy: dict | None = None
    # A board switched off for good after each run (the harness's own QEMU guest): stopping the workload
    # and unloading the module would tidy a guest that is about to be discarded. A board that stays on
    # (SSH, deployed) and the QEMU test bed standing in for one get both.
    discarded_after_run: bool = False

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

    def install(self, files: Mapping[str, Path], deadline: Deadline) -> None:
        """Put host files at these board paths (already there on a board whose image holds them)."""

    @property
    def running(self) -> bool:
        """Whether the board still answers (QEMU alive, the SSH connection up)."""
        return self.state is BoardState.SHELL

    def exit_description(self, wait_s: float = 2.0) -> str:
        """How the board went away, for messages."""
        return f"the board is {self.state.value}"

    def kernel_log_summary(self) -> dict | None:
        """What the board's kernel log reader counted (records, lost messages), when it has one."""
        return None

    @abc.abstractmethod
    def power_off(self) -> None:
        """Stop the guest, whatever state it is in. Safe to call twice."""

    def __enter__(self) -> "Board":
        return self

    def __exit__(self, *exc) -> None:
        self.power_off()
