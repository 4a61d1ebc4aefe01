"""Board.read_file: a guest file comes back byte for byte over the command channel (a local sh here)."""

import os

import pexpect.popen_spawn
import pytest

from harness.boards import base
from harness.deadline import Deadline
from harness.errors import InfraError
from harness.shell import Shell


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


def test_a_file_that_changes_while_read_is_refused(board, tmp_path, monkeypatch):
    path = tmp_path / "growing"
    path.write_bytes(b"x" * 5000)
    monkeypatch.setattr(base, "READ_PIECE", 4096)
    real = board.run_script

    def grow_after_first_piece(script, deadline):
        result = real(script, deadline)
        if "skip=0" in script:
            path.write_bytes(b"y" * 5000)
        return result

    monkeypatch.setattr(board, "run_script", grow_after_first_piece)
    with pytest.raises(InfraError, match="sha256 differs"):
        board.read_file(str(path), Deadline(10))
