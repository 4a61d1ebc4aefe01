"""Board.read_file: a guest file comes back byte for byte over the command channel (a local sh here)."""

import os

import pexpect.popen_spawn
import pytest

from harness.boards import base
from harness.core.deadline import Deadline
from harness.core.errors import InfraError
from harness.boards.shell import CommandResult, Shell


class LocalBoard(base.Board):
    """Only the command channel of a board: a shell on this host."""

    def __init__(self):
        self.child = pexpect.popen_spawn.PopenSpawn(["sh"], encoding="utf-8")
        self.shell = Shell(self.child)

    def run_script(self, script, deadline):
        return self.shell.run_script(script, deadline)

    def run(self, argv, deadline):
        return self.shell.run(argv, deadline)

    def power_on(self, deadline):
        pass

    def console_lines(self, tick=1.0):
        return iter(())

    def power_off(self):
        self.child.kill(9)


@pytest.fixture
def board():
    b = LocalBoard()
    yield b
    b.power_off()


def test_binary_file_in_several_pieces_comes_back_exact(board, tmp_path, monkeypatch):
    monkeypatch.setattr(base, "READ_PIECE", 4096)
    data = os.urandom(3 * 4096 + 123) + b"\r\n\x00 trace line\r\n"
    (tmp_path / "f.bin").write_bytes(data)
    assert board.read_file(str(tmp_path / "f.bin"), Deadline(30)) == data


def test_empty_file(board, tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    assert board.read_file(str(tmp_path / "empty"), Deadline(10)) == b""


def _damaging(board, monkeypatch, damaged_answers):
    """The channel drops a run of bytes from the first `damaged_answers` piece answers, as QEMU's
    virtconsole does when its socket is full."""
    real, left = board.run_script, [damaged_answers]

    def run_script(script, deadline):
        result = real(script, deadline)
        if "base64" in script and left[0] > 0:
            left[0] -= 1
            out, cut = result.output, 80 + left[0] % 2    # a whole number of base64 quads, or not
            result = CommandResult(result.command, out[:100] + out[100 + cut:], result.status)
        return result

    monkeypatch.setattr(board, "run_script", run_script)


def test_a_piece_that_arrives_damaged_is_asked_for_again(board, tmp_path, monkeypatch):
    monkeypatch.setattr(base, "READ_PIECE", 4096)
    data = os.urandom(9000)
    (tmp_path / "f").write_bytes(data)
    _damaging(board, monkeypatch, damaged_answers=2)
    assert board.read_file(str(tmp_path / "f"), Deadline(30)) == data


def test_a_piece_damaged_every_time_is_an_infrastructure_error(board, tmp_path, monkeypatch):
    (tmp_path / "f").write_bytes(os.urandom(3000))
    _damaging(board, monkeypatch, damaged_answers=base.READ_TRIES)
    with pytest.raises(InfraError, match=f"piece 0 arrived damaged {base.READ_TRIES} times"):
        board.read_file(str(tmp_path / "f"), Deadline(30))


def test_a_file_that_changes_while_read_is_refused(board, tmp_path, monkeypatch):
    path = tmp_path / "growing"
    path.write_bytes(b"x" * 5000)
    monkeypatch.setattr(base, "READ_PIECE", 4096)
    real = board.run_script

    def rewrite_after_first_piece(script, deadline):
        result = real(script, deadline)
        if "skip=0" in script:
            path.write_bytes(b"y" * 5000)
        return result

    monkeypatch.setattr(board, "run_script", rewrite_after_first_piece)
    with pytest.raises(InfraError, match="sha256 differs"):
        board.read_file(str(path), Deadline(10))
