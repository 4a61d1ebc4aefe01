"""The one place that runs host subprocesses: logs the command, keeps its output, names failures."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from harness.core.errors import InfraError

log = logging.getLogger(__name__)


class CommandError(InfraError):
    def __init__(self, argv: Sequence[str], returncode: int, tail: list[str], log_path: Path | None):
        self.argv = list(argv)
        self.returncode = returncode
        self.tail = tail
        self.log_path = log_path
        where = f" (full output: {log_path})" if log_path else ""
        super().__init__(
            f"command failed with exit code {returncode}: {shlex.join(self.argv)}{where}\n"
            + "\n".join("  | " + line for line in tail)
        )


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    tail_lines: int = 25,
    input_text: str | None = None,
) -> list[str]:
    """Run argv to completion; stream stdout+stderr to log_path and on_line; return the last lines.

    Raises CommandError naming the command, its exit code and its last output lines.
    """
    argv = [str(a) for a in argv]
    log.debug("run: %s (cwd=%s)", shlex.join(argv), cwd)
    tail: deque[str] = deque(maxlen=tail_lines)
    logf = open(log_path, "a", encoding="utf-8", errors="replace", buffering=1) if log_path else None
    try:
        if logf:
            logf.write(f"$ {shlex.join(argv)}\n")
            logf.flush()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except FileNotFoundError as e:
            raise InfraError(f"cannot run {argv[0]!r}: not found. Run `cma-harness doctor` for the package that provides it.") from e
        if input_text is not None:
            assert proc.stdin is not None
            proc.stdin.write(input_text)
            proc.stdin.close()
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            if logf:
                logf.write(line + "\n")
            if on_line:
                on_line(line)
        rc = proc.wait()
    except BaseException:
        if "proc" in locals() and proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    finally:
        if logf:
            logf.close()
    if rc != 0:
        raise CommandError(argv, rc, list(tail), log_path)
    return list(tail)


def run_to_file(argv: Sequence[str], *, stderr_path: Path, stdout_path: Path | None = None) -> int:
    """Run argv to completion with its stderr (and stdout, else discarded) written to files, byte for byte,
    as a tool that logs on stderr needs (lava-run); returns its exit status, which the caller judges."""
    argv = [str(a) for a in argv]
    log.debug("run: %s 2> %s", shlex.join(argv), stderr_path)
    with open(stderr_path, "wb") as err, open(stdout_path or "/dev/null", "wb") as out:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        except FileNotFoundError as e:
            raise InfraError(f"cannot run {argv[0]!r}: not found. Run `cma-harness doctor` for the package that provides it.") from e
        try:
            return proc.wait()
        except BaseException:
            proc.terminate()        # lava-run cancels the job (stops QEMU) on SIGTERM
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise


def capture(argv: Sequence[str], *, cwd: Path | None = None) -> str:
    """Run a short query command and return its stdout; failures raise CommandError."""
    argv = [str(a) for a in argv]
    try:
        res = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, errors="replace")
    except FileNotFoundError as e:
        raise InfraError(f"cannot run {argv[0]!r}: not found. Run `cma-harness doctor` for the package that provides it.") from e
    if res.returncode != 0:
        raise CommandError(argv, res.returncode, res.stderr.splitlines()[-10:], None)
    return res.stdout


def capture_bytes(argv: Sequence[str], *, cwd: Path | None = None) -> bytes:
    """Like capture, for binary output (an initramfs archive)."""
    argv = [str(a) for a in argv]
    try:
        res = subprocess.run(argv, cwd=cwd, capture_output=True)
    except FileNotFoundError as e:
        raise InfraError(f"cannot run {argv[0]!r}: not found") from e
    if res.returncode != 0:
        raise CommandError(argv, res.returncode, res.stderr.decode(errors="replace").splitlines()[-10:], None)
    return res.stdout


@dataclass(frozen=True)
class Finished:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


class CommandTimedOut(InfraError):
    def __init__(self, argv: Sequence[str], timeout_s: float, stderr: str):
        self.argv, self.timeout_s, self.stderr = list(argv), timeout_s, stderr
        super().__init__(f"command did not finish within {timeout_s:g} s and was killed: {shlex.join(self.argv)}")


def run_bounded(argv: Sequence[str], timeout_s: float, *, env: Mapping[str, str] | None = None) -> Finished:
    """Run argv to completion within timeout_s, its output kept; the caller judges the exit status.
    Past the timeout the command and everything it started (its own session) are killed: CommandTimedOut,
    with the stderr it wrote so far."""
    argv = [str(a) for a in argv]
    log.debug("run: %s (timeout %s s)", shlex.join(argv), timeout_s)
    t0 = time.monotonic()
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, errors="replace", env=dict(env) if env is not None else None,
                             start_new_session=True)
    except FileNotFoundError as e:
        raise InfraError(f"cannot run {argv[0]!r}: not found") from e
    try:
        out, err = p.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_session(p)
        out, err = p.communicate()
        raise CommandTimedOut(argv, timeout_s, err) from None
    except BaseException:
        _kill_session(p)
        p.wait()
        raise
    return Finished(argv, p.returncode, out, err, time.monotonic() - t0)


def _kill_session(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Background:
    """A host service started for the length of a run (the test bed's ser2net): its output goes to a
    log file, it is stopped (SIGTERM, then SIGKILL) by stop(), which is safe to call twice."""

    def __init__(self, argv: Sequence[str], log_path: Path):
        self.argv = [str(a) for a in argv]
        log.debug("start: %s", shlex.join(self.argv))
        self._log = open(log_path, "ab")
        self._log.write(f"$ {shlex.join(self.argv)}\n".encode())
        self._log.flush()
        try:
            # A session of its own: a Ctrl-C meant for the harness does not reach it; stop() ends it.
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        except FileNotFoundError as e:
            self._log.close()
            raise InfraError(f"cannot run {self.argv[0]!r}: not found. Run `cma-harness doctor` for the package "
                             f"that provides it.") from e

    @property
    def pid(self) -> int:
        return self._proc.pid

    def exited(self) -> int | None:
        """Its exit status once it has ended, else None."""
        return self._proc.poll()

    def stop(self, wait_s: float = 5.0) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if not self._log.closed:
            self._log.close()


def detach(argv: Sequence[str], log_path: Path) -> int:
    """Start a process that outlives the harness (the test bed's QEMU and ser2net, started by its power-on
    command, stopped by its power-off): a session of its own, output appended to log_path; its pid."""
    argv = [str(a) for a in argv]
    with open(log_path, "ab") as out:
        out.write(f"$ {shlex.join(argv)}\n".encode())
        out.flush()
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        except FileNotFoundError as e:
            raise InfraError(f"cannot run {argv[0]!r}: not found. Run `cma-harness doctor` for the package "
                             f"that provides it.") from e
    # Popen returns as the child's exec starts; its /proc cmdline reads empty a moment longer (seen in a
    # third of 200 tries), and `alive` would take it for another process.
    end = time.monotonic() + 2.0
    while time.monotonic() < end and p.poll() is None:
        try:
            if Path(f"/proc/{p.pid}/cmdline").read_bytes():
                break
        except OSError:
            break
        time.sleep(0.005)
    return p.pid


def alive(pid: int, marker: str) -> bool:
    """Whether pid runs and its command line holds `marker` (a pid file can outlive its process, and the
    number be taken by another)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and marker.encode() in cmdline


def stop_pid(pid: int, marker: str, wait_s: float = 5.0) -> bool:
    """SIGTERM, then SIGKILL after wait_s, to a detached process (only if it is still the one: `alive`).
    Whether it was running."""
    if not alive(pid, marker):
        return False
    for sig, wait in ((signal.SIGTERM, wait_s), (signal.SIGKILL, wait_s)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if not alive(pid, marker):
                return True
            time.sleep(0.05)
    return True
