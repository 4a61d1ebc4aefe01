"""The marker-framed command channel, over a real local shell (the same logic drives the guest's hvc0)."""

import pexpect.popen_spawn
import pytest

from harness.core.deadline import Deadline
from harness.boards.shell import GuestCommandError, Shell, ShellTimeout


@pytest.fixture
def shell():
    child = pexpect.popen_spawn.PopenSpawn(["sh"], encoding="utf-8")
    yield Shell(child)
    child.kill(9)


def test_output_and_status(shell):
    r = shell.run_script("echo hello; echo world", Deadline(10))
    assert (r.output, r.status) == ("hello\nworld\n", 0)
    assert shell.run_script("exit_code() { return 7; }; exit_code", Deadline(10)).status == 7


def test_arguments_are_quoted(shell):
    r = shell.run(["printf", "%s|", "a b", "$(echo pwned)", "'q'"], Deadline(10))
    assert r.output == "a b|$(echo pwned)|'q'|"


def test_check_raises_with_the_command_and_output(shell):
    with pytest.raises(GuestCommandError, match="status 3"):
        shell.run_script("echo oops; false || exit_three() { return 3; }; exit_three", Deadline(10)).check()


def test_commands_do_not_read_the_channel(shell):
    # A command that reads stdin must not swallow the next command's text.
    assert shell.run_script("cat", Deadline(10)).status == 0
    assert shell.run_script("echo next", Deadline(10)).output == "next\n"


def test_timeout_is_reported(shell):
    with pytest.raises(ShellTimeout, match="no answer"):
        shell.run_script("sleep 5", Deadline(0.5))
