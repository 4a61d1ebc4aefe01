"""SSH to a board (paramiko): host keys pinned, timeouts, commands drained against one deadline,
sha256-checked file transfer both ways, and long-running streams (the board's /dev/kmsg).

Host keys: paramiko's RejectPolicy, and only the board file's known_hosts file (never the user's
~/.ssh; a key is never added on first sight). An unknown or changed key is a HostKeyError that names the host, the
offered key's SHA256 fingerprint and the exact line that pins it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import shlex
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko

from harness.core.deadline import Deadline
from harness.core.errors import InfraError
from harness.spec.boards import SshSpec

PIECE = 1 << 15                 # bytes per send on a channel's stdin
FIRST_BANNER_S = 2.0            # connect_until's first wait for a banner (grows on each retry)


class HostKeyError(InfraError):
    """The board's host key is not the pinned one: never retried."""


class SshAuthError(InfraError):
    """The board refused the client key: never retried."""


class SshUnreachable(InfraError):
    """No SSH server answered (yet): a booting board is retried until its deadline."""


class SshCommandTimeout(InfraError):
    pass


class SshConnectionLost(InfraError):
    pass


@dataclass(frozen=True)
class ExecResult:
    command: str
    status: int
    stdout: bytes
    stderr: bytes


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of a host key (what `ssh-keygen -lf` prints)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    """How known_hosts names a host: `host` on port 22, else `[host]:port`."""
    return host if port == 22 else f"[{host}]:{port}"


def pin_line(name: str, key: paramiko.PKey) -> str:
    return f"{name} {key.get_name()} {key.get_base64()}"


def _keyscan(host: str, port: int, key: paramiko.PKey) -> str:
    return f"ssh-keyscan -p {port} -t {key.get_name().removeprefix('ssh-')} {host}"


def unknown_key_message(spec: SshSpec, port: int, key: paramiko.PKey) -> str:
    name = spec.host_key_alias or known_hosts_name(spec.host, port)
    return (f"the host key of {spec.user}@{spec.host}:{port} is not pinned: {spec.known_hosts} has no key for "
            f"{name!r}, and the board offered {key.get_name()} {fingerprint(key)}. Check that fingerprint on the "
            f"board itself (its serial console: ssh-keygen -lf <host key>.pub, or dropbearkey -y -f <key>), then pin "
            f"it by adding this line to {spec.known_hosts}:\n  {pin_line(name, key)}\n(the same as "
            f"`{_keyscan(spec.host, port, key)} >> {spec.known_hosts}`"
            + (f", with the host name replaced by {name}" if spec.host_key_alias else "") + ")")


def changed_key_message(spec: SshSpec, port: int, offered: paramiko.PKey, pinned: paramiko.PKey) -> str:
    name = spec.host_key_alias or known_hosts_name(spec.host, port)
    return (f"the host key of {spec.user}@{spec.host}:{port} has CHANGED: {spec.known_hosts} pins {pinned.get_name()} "
            f"{fingerprint(pinned)} for {name!r}, but the board offered {offered.get_name()} {fingerprint(offered)}. "
            f"Someone may be in between, or the board was re-imaged. If the new key is the board's (check it on its "
            f"serial console), replace the pin: `ssh-keygen -R '{name}' -f {spec.known_hosts}`, then add the line\n"
            f"  {pin_line(name, offered)}")


def load_client_key(path: str) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(path)
    except (OSError, paramiko.SSHException, ValueError) as e:
        raise InfraError(f"cannot read the SSH client key {path}: {e}") from e


class SshClient:
    """One SSH connection to a board."""

    def __init__(self, spec: SshSpec, port: int | None = None):
        self.spec = spec
        self.port = port or spec.port
        self._client: paramiko.SSHClient | None = None
        self.closed_because: str | None = None

    @property
    def where(self) -> str:
        return f"{self.spec.user}@{self.spec.host}:{self.port}"

    # -- connecting ------------------------------------------------------------------------------

    def connect(self, deadline: Deadline, banner_timeout_s: float | None = None) -> None:
        """One attempt within the deadline: HostKeyError, SshAuthError or SshUnreachable. banner_timeout_s
        caps the wait for the server's first line (default: the board file's)."""
        s = self.spec
        # paramiko logs every refused attempt with a traceback (a booting board refuses many); the harness
        # says what failed itself.
        logging.getLogger("paramiko.transport").setLevel(logging.CRITICAL)
        pkey = load_client_key(s.key_file)
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        self._pin(client)
        timeout = max(0.5, min(s.connect_timeout_s, deadline.remaining))
        try:
            client.connect(s.host, self.port, username=s.user, pkey=pkey, timeout=timeout,
                           banner_timeout=min(s.banner_timeout_s, banner_timeout_s or s.banner_timeout_s),
                           auth_timeout=s.auth_timeout_s,
                           allow_agent=False, look_for_keys=False)
        except paramiko.BadHostKeyException as e:
            client.close()
            raise HostKeyError(changed_key_message(s, self.port, e.key, e.expected_key)) from None
        except paramiko.AuthenticationException as e:
            client.close()
            raise SshAuthError(f"{self.where} refused the client key {s.key_file} ({e}); put its public half in "
                               f"the board's ~{s.user}/.ssh/authorized_keys") from None
        except paramiko.SSHException as e:
            offered = _offered_key(client)
            client.close()
            if offered is not None and "known_hosts" in str(e):
                raise HostKeyError(unknown_key_message(s, self.port, offered)) from None
            raise SshUnreachable(f"SSH to {self.where} failed: {e}") from None
        except (OSError, EOFError) as e:
            client.close()
            raise SshUnreachable(f"cannot reach {self.where}: {e}") from None
        client.get_transport().set_keepalive(s.keepalive_s)
        self._client = client
        self.closed_because = None

    def _pin(self, client: paramiko.SSHClient) -> None:
        """The board file's known_hosts, and nothing else, under the name paramiko will look up."""
        s = self.spec
        path = Path(s.known_hosts)
        pinned = paramiko.HostKeys(str(path)) if path.is_file() else paramiko.HostKeys()
        wanted = known_hosts_name(s.host, self.port)
        entry = pinned.lookup(s.host_key_alias or wanted)
        if entry is not None:
            for keytype in entry.keys():
                client.get_host_keys().add(wanted, keytype, entry[keytype])

    def connect_until(self, deadline: Deadline, retry_s: float = 1.0, first_banner_s: float = FIRST_BANNER_S) -> None:
        """Connect, retrying while nothing answers (the board is booting), until the deadline.

        The wait for the server's banner starts short and grows by a second with each attempt that ran
        out of it, up to `ssh.banner_timeout_s`: a port forward (QEMU's user network, a jump host) accepts
        the TCP connection at once and holds it while its own connection to a board that is not up yet
        retries on a slow back-off (seconds apart); a fresh attempt is answered as soon as the board is,
        and a board slow to send its banner still gets its time."""
        banner = first_banner_s
        while True:
            started = time.monotonic()
            try:
                return self.connect(deadline, banner_timeout_s=banner)
            except SshUnreachable as e:
                if deadline.remaining <= retry_s:
                    raise SshUnreachable(f"{e}; gave up after {deadline.seconds:.0f} s") from None
                if time.monotonic() - started >= banner:
                    banner = min(banner + 1.0, self.spec.banner_timeout_s)
                time.sleep(retry_s)

    @property
    def transport(self) -> paramiko.Transport:
        t = self._client.get_transport() if self._client is not None else None
        if t is None or not t.is_active():
            raise SshConnectionLost(f"the SSH connection to {self.where} is gone"
                                    + (f" ({self.closed_because})" if self.closed_because else ""))
        return t

    @property
    def active(self) -> bool:
        t = self._client.get_transport() if self._client is not None else None
        return t is not None and t.is_active()

    def ping(self, timeout: float) -> bool:
        """A round trip to the server (a channel opened and closed); False when none came in time."""
        try:
            chan = self.transport.open_session(timeout=timeout)
        except (paramiko.SSHException, SshConnectionLost, OSError, EOFError):
            return False
        chan.close()
        return True

    def close(self, because: str | None = None) -> None:
        if because and self.closed_because is None:
            self.closed_because = because
        if self._client is not None:
            self._client.close()

    # -- commands --------------------------------------------------------------------------------

    def exec(self, command: str, deadline: Deadline, stdin: bytes | None = None) -> ExecResult:
        """Run one command; stdout and stderr are read as they come, both in the same loop, until the
        command has exited and both are drained (a bare recv_exit_status() waits forever once a full
        window of unread output stalls the server: paramiko #1778). The deadline bounds it all."""
        try:
            chan = self.transport.open_session(timeout=max(0.5, deadline.remaining))
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise SshConnectionLost(f"cannot open a channel to {self.where}: {e}") from None
        out, err = bytearray(), bytearray()
        try:
            chan.settimeout(0.0)
            chan.exec_command(command)
            if stdin is not None:
                self._send(chan, stdin, out, err, deadline, command)
            chan.shutdown_write()           # the command's stdin ends here: nothing waits for a keyboard
            while True:
                got = _drain(chan, out, err)
                if chan.exit_status_ready() and chan.eof_received and not chan.recv_ready() \
                        and not chan.recv_stderr_ready():
                    break
                self._check(chan, deadline, command, len(out) + len(err))
                if not got:
                    time.sleep(0.005)
            status = chan.recv_exit_status()
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise SshConnectionLost(f"the SSH connection to {self.where} failed while running {command!r}: {e}") from None
        finally:
            chan.close()
        return ExecResult(command, status, bytes(out), bytes(err))

    def _send(self, chan, data: bytes, out, err, deadline: Deadline, command: str) -> None:
        view = memoryview(data)
        while view:
            if chan.send_ready():
                sent = chan.send(view[:PIECE])
                view = view[sent:]
            elif not _drain(chan, out, err):
                time.sleep(0.002)
            self._check(chan, deadline, command, len(out) + len(err))

    def _check(self, chan, deadline: Deadline, command: str, received: int) -> None:
        if deadline.expired:
            raise SshCommandTimeout(f"{command!r} on {self.where} did not finish within {deadline.seconds:.0f} s "
                                    f"({received} bytes of output arrived)")
        if (chan.closed and not chan.exit_status_ready()) or not self.active:
            raise SshConnectionLost(f"the SSH connection to {self.where} closed while running {command!r}"
                                    + (f" ({self.closed_because})" if self.closed_because else ""))

    def open_stream(self, command: str) -> paramiko.Channel:
        """A long-running command whose stdout the caller reads (recv with a timeout)."""
        chan = self.transport.open_session(timeout=self.spec.connect_timeout_s)
        chan.exec_command(command)
        return chan

    # -- files -----------------------------------------------------------------------------------

    def put(self, data: bytes, remote: str, deadline: Deadline, mode: str = "0644") -> None:
        """Write bytes to a board file (through a temporary name), then check its sha256 on the board."""
        q, tmp = shlex.quote(remote), shlex.quote(remote + ".part")
        parent = shlex.quote(str(Path(remote).parent))
        r = self.exec(f"mkdir -p {parent} && cat > {tmp} && chmod {mode} {tmp} && mv {tmp} {q}", deadline, stdin=data)
        if r.status != 0:
            raise InfraError(f"copying {len(data)} bytes to {self.where}:{remote} failed (status {r.status}): "
                             f"{r.stderr.decode(errors='replace').strip()}")
        there = self._sha256(remote, deadline)
        if there != hashlib.sha256(data).hexdigest():
            raise InfraError(f"copying to {self.where}:{remote}: the board's sha256 {there} is not the sent "
                             f"file's {hashlib.sha256(data).hexdigest()}")

    def get(self, remote: str, deadline: Deadline, tries: int = 3) -> bytes:
        """A board file's bytes, checked against the board's sha256 of it (asked again if they differ)."""
        for _ in range(tries):
            r = self.exec(f"cat {shlex.quote(remote)}", deadline)
            if r.status != 0:
                raise InfraError(f"reading {self.where}:{remote} failed (status {r.status}): "
                                 f"{r.stderr.decode(errors='replace').strip()}")
            if hashlib.sha256(r.stdout).hexdigest() == self._sha256(remote, deadline):
                return r.stdout
        raise InfraError(f"reading {self.where}:{remote}: the bytes that arrived never matched the board's "
                         f"sha256 in {tries} tries (is the file still changing?)")

    def _sha256(self, remote: str, deadline: Deadline) -> str:
        r = self.exec(f"sha256sum {shlex.quote(remote)}", deadline)
        words = r.stdout.decode(errors="replace").split()
        if r.status != 0 or not words:
            raise InfraError(f"sha256sum {remote} on {self.where} failed (status {r.status}): "
                             f"{r.stderr.decode(errors='replace').strip()}")
        return words[0]


def _drain(chan: paramiko.Channel, out: bytearray, err: bytearray) -> bool:
    got = False
    while chan.recv_ready():
        out += chan.recv(1 << 16)
        got = True
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(1 << 16)
        got = True
    return got


def _offered_key(client: paramiko.SSHClient) -> paramiko.PKey | None:
    t = client.get_transport()
    try:
        return t.get_remote_server_key() if t is not None else None
    except paramiko.SSHException:
        return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
