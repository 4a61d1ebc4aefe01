"""Run commands on a shell behind a byte stream (guest virtio console, SSH channel, or a local sh in tests).

Each command is wrapped in random markers, printed so that an echoed command line never matches them,
and its exit status comes back with the end marker. Written once over pexpect's send/expect.
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass
from typing import Sequence

import pexpect

from harness.core.deadline import Deadline
from harness.core.errors import InfraError


@dataclass(frozen=True)
class CommandResult:
    command: str
    output: str
    status: int

    def check(self) -> "CommandResult":
        if self.status != 0:
            raise GuestCommandError(self)
        return self


class GuestCommandError(InfraError):
    def __init__(self, result: CommandResult):
        self.result = result
        tail = "\n".join("  | " + l for l in result.output.splitlines()[-10:])
        super().__init__(f"guest command failed with status {result.status}: {result.command}\n{tail}")


class ShellTimeout(InfraError):
    pass


class Shell:
    """Marker-framed command execution over a pexpect spawn object (spawn, fdspawn or PopenSpawn)."""

    def __init__(self, channel: "pexpect.spawnbase.SpawnBase"):
        self.channel = channel

    def run(self, argv: Sequence[str], deadline: Deadline) -> CommandResult:
        """Run one command given as an argument vector; every argument is quoted."""
        return self.run_script(shlex.join(argv), deadline)

    def run_script(self, script: str, deadline: Deadline) -> CommandResult:
        """Run a shell snippet written by the harness itself (never user text without quoting)."""
        token = secrets.token_hex(6)
        begin, end = f"CMAH{token}B", f"CMAH{token}E"
        # printf joins the halves at run time; the command line itself contains neither marker.
        wrapped = (f"printf '%s%s\\n' CMAH{token} B; {{ {script.strip()}\n}} </dev/null; "
                   f"printf '%s%s %d\\n' CMAH{token} E $?\n")
        self.channel.send(wrapped)
        try:
            self.channel.expect_exact(begin, timeout=deadline.remaining)
            self.channel.expect(re.escape(end) + r" (\d+)\r?\n", timeout=deadline.remaining)
        except pexpect.TIMEOUT as e:
            raise ShellTimeout(f"no answer from the guest shell within {deadline.seconds:.0f} s to: {script}") from e
        except pexpect.EOF as e:
            raise InfraError(f"the guest shell channel closed while running: {script}") from e
        output = _text(self.channel.before).lstrip("\r\n")
        status = int(_text(self.channel.match.group(1)))
        return CommandResult(script, output.replace("\r\n", "\n"), status)


def _text(data) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data
