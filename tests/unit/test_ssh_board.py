"""SshBoard against a real SSH server on 127.0.0.1 (and a serial console on a local TCP port): the kernel
log from /dev/kmsg records, a connection that drops mid-run ends it `infra` with every loop kept, and
a report that reaches the serial console after SSH is gone is kept whole."""

import shlex
import socket
import threading
import time

import pytest

from harness.boards import ssh, ssh_board
from harness.boards.ssh_board import SshBoard
from harness.core.deadline import Deadline
from harness.orchestrate import run
from harness.orchestrate.run import RunState, RunSummary
from harness.spec import config
from harness.spec.boards import BoardFile, SerialSpec, SshSpec
from harness.store.jsonl import JsonlWriter, read_jsonl

from .records import record_line
from .sshserver import SshServer
from .test_kernel_reports import OOPS
from .test_ssh import _keys


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return _keys(tmp_path_factory.mktemp("keys"))


def _board(keys, tmp_path, port, serial=None) -> BoardFile:
    kh = tmp_path / "known_hosts"
    kh.write_text(ssh.pin_line(f"[127.0.0.1]:{port}", keys["host"][1]) + "\n")
    return BoardFile(name="t", kind="ssh", ssh=SshSpec(host="127.0.0.1", port=port, key_file=str(keys["client"][0]),
                                                       known_hosts=str(kh), keepalive_s=1, keepalive_count_max=2),
                     serial=SerialSpec(url=serial) if serial else None)


def _kmsg_script(lines, seq0=100) -> str:
    """What `cat /dev/kmsg` would print for these console lines, slowly, then nothing more."""
    out = []
    for i, line in enumerate(lines):
        stamp, text = line.split("] ", 1)
        usec = int(float(stamp.strip("[ ")) * 1e6)
        out.append(f"printf '%s\\n' {shlex.quote(f'6,{seq0 + 2 * i},{usec},-;{text}')}; sleep 0.05")
    return "; ".join(out) + "; sleep 60"


def _collect(board, folder, loops):
    scn = config.with_overrides(config.Scenario(), "board", hang_timeout_s=60)
    summary = RunSummary(RunState.INFRA, "stock", loops)
    with JsonlWriter(folder / "loops.jsonl") as out:
        run.collect_loops(scn, board, out, summary, loops, progress=lambda s: None)
    return summary, list(read_jsonl(folder / "loops.jsonl"))


def test_a_connection_that_drops_mid_run_ends_it_infra_with_the_loops_kept(keys, tmp_path):
    with SshServer(keys["host"][1], keys["client"][1]) as server:
        board = SshBoard(_board(keys, tmp_path, server.port), tmp_path)
        board.kmsg_command = _kmsg_script([record_line(i, stamp=10.0 + i) for i in range(3)])
        board.power_on(Deadline(10))
        assert board.run(["echo", "ok"], Deadline(10)).output == "ok\n"
        threading.Timer(1.5, server.drop).start()
        t0 = time.monotonic()
        try:
            summary, records = _collect(board, tmp_path, loops=5)
        finally:
            board.power_off()
    assert time.monotonic() - t0 < 15
    assert summary.state is RunState.INFRA and summary.loops_done == 3 and [r["loop"] for r in records] == [0, 1, 2]
    assert "SSH connection to root@127.0.0.1" in summary.error and "dropped" in summary.error
    log = board.kernel_log_summary()
    assert log["records"] == 3 and log["lost"] == 2 and log["console"] == "/dev/kmsg", log     # seq 100, 102, 104
    assert (tmp_path / "kmsg.txt").read_text().startswith("6,100,10000000,-;cma_harness: loop=0")
    assert "cma_harness: loop=2" in (tmp_path / "console.log").read_text()


class _SerialPort:
    """A console server's raw TCP port (socket://): sends `lines`, one every 50 ms, after the first `hold`
    wait until `release` is set."""

    def __init__(self, lines, hold: int):
        self.lines, self.hold, self.release = lines, hold, threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1)
        self.url = f"socket://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self._sock.accept()
        time.sleep(0.5)         # pyserial drops what came before its open() returned, as a tty would
        for i, line in enumerate(self.lines):
            if i == self.hold:
                self.release.wait(20)
            conn.sendall(line.encode() + b"\r\n")
            time.sleep(0.05)
        time.sleep(30)


def test_with_a_serial_console_a_report_after_ssh_died_arrives_whole(keys, tmp_path, monkeypatch):
    """The serial console is the authority: the oops that took SSH down is read from it, whole."""
    monkeypatch.setattr(ssh_board, "DROP_GRACE_S", 3.0)
    loops = [record_line(i, stamp=10.0 + i) for i in range(2)]
    serial = _SerialPort(loops + OOPS.splitlines(), hold=2)
    with SshServer(keys["host"][1], keys["client"][1]) as server:
        board = SshBoard(_board(keys, tmp_path, server.port, serial.url), tmp_path)
        board.kmsg_command = "sleep 60"
        board.power_on(Deadline(10))

        def ssh_dies_then_the_oops_comes():
            server.drop()
            time.sleep(0.5)
            serial.release.set()

        threading.Timer(1.0, ssh_dies_then_the_oops_comes).start()
        try:
            summary, records = _collect(board, tmp_path, loops=5)
        finally:
            board.power_off()
    assert summary.state is RunState.CRASH and summary.loops_done == 2 and len(records) == 2
    [report] = summary.kernel_reports
    assert report["report"] == "oops" and report["complete"] and "end trace" in report["text"]
    assert "Internal error: Oops" in (tmp_path / "console.log").read_text()


def test_write_image_puts_only_the_data_over_and_the_device_reads_as_the_image(tmp_path):
    """The board's side of write-image, run by a real shell on a file standing in for the device
    (full of another run's bytes): afterwards it is the image byte for byte, holes included."""
    import gzip
    import subprocess

    from harness.boards.ssh_board import write_extents_script
    from harness.build.image import data_extents

    image = tmp_path / "disk.img"
    with open(image, "wb") as f:
        f.truncate(3 << 20)
        for off, data in ((0, b"superblock" * 500), (1 << 20, b"inodes" * 2000), ((3 << 20) - 4096, b"end" * 10)):
            f.seek(off)
            f.write(data)
    extents = data_extents(image)
    assert 1 < len(extents) and sum(n for _, n in extents) < image.stat().st_size
    device = tmp_path / "vda"
    device.write_bytes(b"\xaa" * (4 << 20))           # the last run's disk, and larger than the image
    blob = b"".join(image.read_bytes()[off:off + n] for off, n in extents)
    (tmp_path / "data.gz").write_bytes(gzip.compress(blob))
    script = write_extents_script(str(device), str(tmp_path / "data.gz"), extents, image.stat().st_size)
    subprocess.run(["sh", "-c", script], check=True, timeout=60)
    assert device.read_bytes()[:3 << 20] == image.read_bytes()
    assert not (tmp_path / "data").exists(), "the blob is removed from the board's work folder"
