"""The SSH client against a real SSH server on 127.0.0.1 (tests/unit/sshserver.py): host keys pinned
with RejectPolicy, the runner that drains stdout and stderr against one deadline, sha256-checked files."""

import base64
import hashlib
import socket
import threading
import time
from pathlib import Path

import paramiko
import pytest

from harness.boards import ssh
from harness.core.deadline import Deadline
from harness.core.errors import InfraError
from harness.spec.boards import SshSpec

from .sshserver import SshServer


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return _keys(tmp_path_factory.mktemp("keys"))


def _keys(d: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    out = {}
    for name in ("host", "other", "client"):
        path = d / name
        path.write_bytes(Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
        path.chmod(0o600)
        out[name] = (path, paramiko.Ed25519Key.from_private_key_file(str(path)))
    return out


def _spec(keys, known_hosts: Path, port: int, alias=None) -> SshSpec:
    return SshSpec(host="127.0.0.1", port=port, user="root", key_file=str(keys["client"][0]),
                   known_hosts=str(known_hosts), host_key_alias=alias, connect_timeout_s=5, banner_timeout_s=5,
                   auth_timeout_s=5)


@pytest.fixture
def server(keys):
    with SshServer(keys["host"][1], keys["client"][1]) as s:
        yield s


@pytest.fixture
def client(keys, server, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(ssh.pin_line(f"[127.0.0.1]:{server.port}", keys["host"][1]) + "\n")
    c = ssh.SshClient(_spec(keys, kh, server.port))
    c.connect(Deadline(10))
    yield c
    c.close()


def test_fingerprint_is_openssh_sha256(keys):
    key = keys["host"][1]
    expected = base64.b64encode(hashlib.sha256(base64.b64decode(key.get_base64())).digest()).decode().rstrip("=")
    assert ssh.fingerprint(key) == "SHA256:" + expected


def test_an_unknown_host_key_is_refused_with_its_fingerprint_and_the_pin_line(keys, server, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    c = ssh.SshClient(_spec(keys, kh, server.port))
    with pytest.raises(ssh.HostKeyError) as e:
        c.connect(Deadline(10))
    msg, host = str(e.value), keys["host"][1]
    assert f"127.0.0.1:{server.port}" in msg and "not pinned" in msg
    assert ssh.fingerprint(host) in msg
    assert f"[127.0.0.1]:{server.port} ssh-ed25519 {host.get_base64()}" in msg      # the exact known_hosts line
    assert f"ssh-keyscan -p {server.port} -t ed25519 127.0.0.1 >> {kh}" in msg
    assert not server.commands, "nothing may run on a board whose key is not pinned"


def test_a_changed_host_key_is_refused_naming_both_fingerprints(keys, server, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(ssh.pin_line(f"[127.0.0.1]:{server.port}", keys["other"][1]) + "\n")
    with pytest.raises(ssh.HostKeyError) as e:
        ssh.SshClient(_spec(keys, kh, server.port)).connect(Deadline(10))
    msg = str(e.value)
    assert "CHANGED" in msg and ssh.fingerprint(keys["host"][1]) in msg and ssh.fingerprint(keys["other"][1]) in msg
    assert f"ssh-keygen -R '[127.0.0.1]:{server.port}' -f {kh}" in msg


def test_the_pin_may_be_under_an_alias(keys, server, tmp_path):
    """The test bed's forwarded port changes per run: its key is pinned under a fixed name."""
    kh = tmp_path / "known_hosts"
    kh.write_text(ssh.pin_line("my-board", keys["host"][1]) + "\n")
    c = ssh.SshClient(_spec(keys, kh, server.port, alias="my-board"))
    c.connect(Deadline(10))
    assert c.exec("echo hi", Deadline(10)).stdout == b"hi\n"
    c.close()
    kh.write_text(ssh.pin_line("my-board", keys["other"][1]) + "\n")
    with pytest.raises(ssh.HostKeyError, match="CHANGED"):
        ssh.SshClient(_spec(keys, kh, server.port, alias="my-board")).connect(Deadline(10))


def test_the_policy_is_reject_and_no_other_known_hosts_is_read():
    source = Path(ssh.__file__).read_text()
    assert "RejectPolicy()" in source and "load_system_host_keys" not in source
    everything = "".join(p.read_text() for p in Path(ssh.__file__).parents[1].rglob("*.py"))
    assert "AutoAdd" + "Policy" not in everything and "WarningPolicy" not in everything


def test_nobody_listening_is_unreachable_not_a_key_problem(keys, tmp_path):
    port = ssh.free_port()
    c = ssh.SshClient(_spec(keys, tmp_path / "none", port))
    with pytest.raises(ssh.SshUnreachable, match=f"127.0.0.1:{port}"):
        c.connect(Deadline(3))


def test_megabytes_on_stdout_and_stderr_at_once_are_drained_whole(client):
    """Both streams fill their windows together: a runner that read one, then the other, or called
    recv_exit_status() first, would hang (paramiko #1778)."""
    script = ("head -c 3000000 /dev/zero | tr '\\0' o & head -c 2000000 /dev/zero | tr '\\0' e >&2; wait; exit 3")
    t0 = time.monotonic()
    r = client.exec(script, Deadline(60))
    assert r.status == 3
    assert r.stdout == b"o" * 3_000_000 and r.stderr == b"e" * 2_000_000
    assert time.monotonic() - t0 < 60


def test_a_command_that_does_not_end_stops_at_the_deadline(client):
    t0 = time.monotonic()
    with pytest.raises(ssh.SshCommandTimeout, match="did not finish within 2 s"):
        client.exec("echo started; sleep 30", Deadline(2))
    assert time.monotonic() - t0 < 5


def test_files_go_both_ways_checked_by_sha256(client, tmp_path):
    data = bytes(range(256)) * 5000 + b"\0\r\n tail"        # 1.28 MB, every byte value
    target = tmp_path / "board" / "deep" / "file.bin"
    client.put(data, str(target), Deadline(60))
    assert target.read_bytes() == data
    assert client.get(str(target), Deadline(60)) == data


def test_a_file_damaged_on_the_way_back_is_an_error(keys, tmp_path):
    def flip(command, out):
        return out[:10] + bytes([out[10] ^ 1]) + out[11:] if command.startswith("cat ") and len(out) > 10 else out

    with SshServer(keys["host"][1], keys["client"][1], mangle=flip) as server:
        kh = tmp_path / "known_hosts"
        kh.write_text(ssh.pin_line(f"[127.0.0.1]:{server.port}", keys["host"][1]) + "\n")
        c = ssh.SshClient(_spec(keys, kh, server.port))
        c.connect(Deadline(10))
        (tmp_path / "f").write_bytes(b"x" * 1000)
        with pytest.raises(InfraError, match="never matched the board's sha256"):
            c.get(str(tmp_path / "f"), Deadline(30))
        c.close()


def test_a_dropped_connection_is_seen(client, server):
    assert client.ping(timeout=5)
    server.drop()
    deadline = Deadline(10)
    while client.active and not deadline.expired:
        time.sleep(0.1)
    assert not client.ping(timeout=2)
    with pytest.raises(ssh.SshConnectionLost):
        client.exec("true", Deadline(5))


class HoldingForward:
    """A port forward as QEMU's user network is one: it accepts every connection at once; the first
    `hold` it keeps open and silent (its own connection to the board is still retrying), the later ones
    it relays to the server."""

    def __init__(self, target_port: int, hold: int):
        self.target, self.hold, self.held = target_port, hold, []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if len(self.held) < self.hold:
                self.held.append(conn)
                continue
            up = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            b.close()


def test_a_forward_that_holds_the_first_connection_costs_seconds_not_the_banner_timeout(keys, server, tmp_path):
    """connect_until's first wait for a banner is short (the board file's 30 s is its ceiling): the
    connection QEMU's forward holds while the guest is still down is given up for a fresh one."""
    fwd = HoldingForward(server.port, hold=1)
    kh = tmp_path / "known_hosts"
    kh.write_text(ssh.pin_line(f"[127.0.0.1]:{fwd.port}", keys["host"][1]) + "\n")
    spec = SshSpec(host="127.0.0.1", port=fwd.port, user="root", key_file=str(keys["client"][0]),
                   known_hosts=str(kh), connect_timeout_s=5, banner_timeout_s=30, auth_timeout_s=5)
    c = ssh.SshClient(spec)
    t0 = time.monotonic()
    c.connect_until(Deadline(60), retry_s=0.2)
    assert time.monotonic() - t0 < 10 and c.exec("echo up", Deadline(10)).stdout == b"up\n"
    assert len(fwd.held) == 1
    c.close()
    fwd.sock.close()
