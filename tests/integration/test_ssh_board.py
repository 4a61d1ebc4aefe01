"""The SSH board for real: `cma-harness run --board images/boards/qemu-ssh.yaml` boots the QEMU guest and
reaches it only as a lab's board is reached: commands, files and /dev/kmsg over SSH with the pinned host
key (dropbear in the guest, a 127.0.0.1 host forward), the kernel console over the ser2net the test bed
starts (rfc2217 on 127.0.0.1). The run folder must say what a QEMU-board run says."""

import base64
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import paramiko
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.boards import ssh
from harness.build import testbed
from harness.spec.boards import BOARDS_DIR
from harness.store.jsonl import read_jsonl
from tests.conftest import FIXTURES, ROOT
from tests.integration.conftest import kill_dropbear

pytestmark = pytest.mark.integration
CLI = [str(Path(sys.executable).with_name("cma-harness"))]
BOARD = BOARDS_DIR / "qemu-ssh-fresh.yaml"


def _listeners(pids: set[int]) -> set[str]:
    """host:port of every TCP socket the processes listen on (from /proc/net/tcp, owners by socket inode)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = str(fd.readlink()) if fd.is_symlink() else ""
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:            # LISTEN
                addr, port = f[1].split(":")
                ip = ".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0)) if width == 8 else addr
                found.add(f"{ip}:{int(port, 16)}")
    return found


def _children(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out |= {int(entry.name)} | _children(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def _run(args, out: Path, timeout=900) -> tuple[subprocess.CompletedProcess, set[str]]:
    """The CLI as a user runs it; meanwhile, every port its children (QEMU, ser2net) listen on."""
    proc = subprocess.Popen([*CLI, "run", *args, "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen: set[str] = set()

    def watch():
        while proc.poll() is None:
            seen.update(_listeners(_children(proc.pid)))
            time.sleep(0.5)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    stdout, stderr = proc.communicate(timeout=timeout)
    t.join()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), seen


@pytest.fixture(scope="module")
def ssh_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ssh") / "run"
    t0 = time.monotonic()
    result, listening = _run(["--board", str(BOARD), "--variant", "reintroduce-2012", "--loops", "10"], out)
    print(f"qemu-ssh run: {time.monotonic() - t0:.0f} s, exit {result.returncode}\n{result.stdout}")
    return result, out, listening


def test_the_run_measures_every_loop_over_ssh_and_serial(ssh_run):
    result, out, _ = ssh_run
    assert result.returncode in (0, 1), result.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["state"] in ("pass", "reproduced"), s["error"]
    assert s["loops_done"] == 10 and s["loops_unreadable"] == 0
    assert s["board"]["kind"] == "qemu-ssh" and s["board"]["release"] == "6.1.192"
    # The records have the QEMU board's schema (a recorded QEMU-board run folder is the reference).
    records = list(read_jsonl(out / "loops.jsonl"))
    reference = next(read_jsonl(FIXTURES / "run-reintroduce-2012" / "loops.jsonl"))
    assert [r["loop"] for r in records] == list(range(10))
    assert all(set(r) == set(reference) for r in records)
    # The same cross-checks as a QEMU-board run, and none fails.
    checks = {c["name"]: c["status"] for c in s["crosschecks"]}
    assert set(checks) == {"placement", "accounting", "variant_rule", "busy_pages"}, checks
    assert "fail" not in checks.values(), s["crosschecks"]
    assert s["accounting"]["ok"] and s["trace_error"] is None
    assert (out / "trace.txt").stat().st_size > 0          # copied back over SSH, sha256-checked
    if s["failed_chunks"]:
        assert (out / "busy-traces.jsonl").stat().st_size > 0


def test_the_console_came_through_ser2net_and_the_log_from_dev_kmsg(ssh_run):
    _, out, _ = ssh_run
    s = json.loads((out / "summary.json").read_text())
    log = s["kernel_log"]
    assert log["console"] == "serial" and log["lost"] == 0 and log["records"] > 100 and log["duplicates"] == 0
    console = (out / "console.log").read_text(errors="replace")
    assert "cma_harness: done loops=10" in console             # the serial console, the records' source
    kmsg_lines = (out / "kmsg.txt").read_text(errors="replace").splitlines()
    assert kmsg_lines[0].startswith("6,0,0,-;Booting Linux")   # pri,seq,usec,flags;text from seq 0
    assert sum(";cma_harness: loop=" in l for l in kmsg_lines) == 10
    assert "accepter: " not in console and "$ ser2net -n -u -c" in (out / "ser2net.log").read_text()
    qemu = (out / "qemu-cmdline.txt").read_text()
    assert "hostfwd=tcp:127.0.0.1:" in qemu and "-serial pty" in qemu and "virtserialport" not in qemu


def test_nothing_listens_beyond_127_0_0_1(ssh_run):
    _, _, listening = ssh_run
    assert len(listening) >= 2, f"the watcher saw no listeners of QEMU and ser2net: {listening}"
    assert all(l.startswith("127.0.0.1:") for l in listening), listening


def test_a_guest_whose_host_key_changed_is_refused_with_its_fingerprint(tmp_path):
    """A known_hosts that pins another key for the test bed: the run stops at the SSH handshake, names the
    key the guest offered (its SHA256 fingerprint) and how to pin it, and nothing ran in the guest."""
    keys = testbed.ensure_keys()
    other = paramiko.Ed25519Key(data=_public_blob(Ed25519PrivateKey.generate()))
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{testbed.HOST_KEY_ALIAS} ssh-ed25519 {other.get_base64()}\n")
    doc = yaml.safe_load(BOARD.read_text())
    doc["ssh"]["known_hosts"] = str(kh)
    doc["ssh"]["key_file"] = str(keys.client_key)
    board = tmp_path / "changed.yaml"
    board.write_text(yaml.safe_dump(doc))
    result, _ = _run(["--board", str(board), "--variant", "reintroduce-2012", "--loops", "2"], tmp_path / "run", 300)
    assert result.returncode == 3, result.stdout + result.stderr[-2000:]
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    offered = ssh.fingerprint(paramiko.Ed25519Key(data=testbed.host_key_blob(keys)))
    assert s["state"] == "infra" and s["loops_done"] == 0
    assert "has CHANGED" in s["error"] and offered in s["error"] and ssh.fingerprint(other) in s["error"]
    assert f"ssh-keygen -R '{testbed.HOST_KEY_ALIAS}' -f {kh}" in s["error"]
    assert not (tmp_path / "run" / "kmsg.txt").exists(), "no channel may be opened to a board with the wrong key"


def _public_blob(key: Ed25519PrivateKey) -> bytes:
    return base64.b64decode(testbed.openssh_public(key).split()[1])


def test_a_connection_killed_mid_run_ends_it_infra_with_every_loop_kept(tmp_path):
    """dropbear killed in the guest while the loops run: the SSH connection drops, the run ends `infra`,
    and every loop that finished is in loops.jsonl (the serial console goes on meanwhile)."""
    out = tmp_path / "run"
    proc = subprocess.Popen([*CLI, "run", "--board", str(BOARD), "--variant", "reintroduce-2012", "--loops", "300",
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "loops.jsonl").exists() and len((out / "loops.jsonl").read_text().splitlines()) >= 5:
                break
            time.sleep(0.5)
        kill_dropbear(out)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.terminate()
    assert proc.returncode == 3, stdout + stderr[-2000:]
    s = json.loads((out / "summary.json").read_text())
    records = list(read_jsonl(out / "loops.jsonl"))
    assert s["state"] == "infra" and "dropped" in s["error"], s["error"]
    assert 5 <= s["loops_done"] < 300 and len(records) == s["loops_done"]
    assert [r["loop"] for r in records] == list(range(len(records)))
