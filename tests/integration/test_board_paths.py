"""The board paths for real, on the QEMU guest: `board check` over SSH, an oops that reaches the serial
console while SSH is already dead, a module built for another kernel refused before insmod, and the
loop on the kernel's default CMA pool instead of the dedicated area."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.boards import factory
from harness.build import kernel, module
from harness.core.deadline import Deadline
from harness.guest import install
from harness.spec import boards, config
from harness.spec.boards import BOARDS_DIR
from harness.store.jsonl import read_jsonl
from harness.store.run_folder import RunFolder
from tests.conftest import ROOT
from tests.integration.conftest import kill_dropbear

pytestmark = pytest.mark.integration
CLI = [str(Path(sys.executable).with_name("cma-harness"))]
SSH_BOARD = BOARDS_DIR / "qemu-ssh-fresh.yaml"


def test_board_check_over_ssh_finds_the_test_bed_ready(tmp_path):
    r = subprocess.run([*CLI, "board", "check", "--board", str(SSH_BOARD), "--json", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    doc = json.loads(r.stdout)
    status = {f["item"]: f["status"] for f in doc["findings"]}
    assert doc["ready"] and "missing" not in status.values(), doc["findings"]
    assert status["/dev/kmsg"] == "ok" and status["work folder /tmp/cma-harness"] == "ok"
    assert status["module vermagic"] == "ok" and status["dedicated test area"] == "ok"
    assert doc["facts"]["release"] == "6.1.192" and doc["facts"]["cma_area"] == ["cma-harness-area"]
    assert (tmp_path / "board-probe.txt").read_text().startswith("release=6.1.192")


def test_an_oops_reaches_the_serial_console_whole_while_ssh_is_dead(tmp_path):
    """SSH is killed after loop 3; the module oopses at loop 12, seconds later: only the serial console
    (ser2net, rfc2217) can carry the report, and it must arrive whole, with the loops before it kept."""
    doc = config.as_dict(config.load(None))
    doc["module"].update(loops=30, fault="oops", fault_loop=12)
    doc["trace"]["enabled"] = False          # the trace would come back over SSH, which is gone
    scn = tmp_path / "oops.yaml"
    scn.write_text(json.dumps(doc))
    out = tmp_path / "run"
    proc = subprocess.Popen([*CLI, "run", str(scn), "--board", str(SSH_BOARD), "--variant", "stock",
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "loops.jsonl").exists() and len((out / "loops.jsonl").read_text().splitlines()) >= 3:
                break
            time.sleep(0.2)
        kill_dropbear(out)
        killed_after = len((out / "loops.jsonl").read_text().splitlines())
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.terminate()
    assert killed_after < 12, "SSH must be dead before the oops for this test to mean anything"
    s = json.loads((out / "summary.json").read_text())
    assert s["state"] == "crash", (s["state"], s["error"], stdout[-2000:])
    [rep] = s["kernel_reports"]
    assert rep["report"] == "oops" and rep["complete"], rep
    text = rep["text"].splitlines()
    assert "cut here" in text[0] and "---[ end trace" in text[-1]
    assert any("Internal error: Oops" in line for line in text) and any("loop_thread" in line for line in text)
    assert [r["loop"] for r in read_jsonl(out / "loops.jsonl")] == list(range(12))
    kmsg = (out / "kmsg.txt").read_text(errors="replace")
    assert "Internal error: Oops" not in kmsg, "the report came over serial, not over the dead SSH"


def test_a_module_built_for_another_kernel_is_refused_before_insmod(tmp_path):
    """The 6.1 guest over SSH, handed the module built for 6.12: the vermagic check stops it and the
    guest's /proc/modules shows nothing was loaded."""
    board = boards.load(SSH_BOARD)
    scn = config.load(None)
    kb61 = kernel.build(board.kernel_spec(scn.variant("stock")), progress=print)
    mb61 = module.build(scn.module, kb61)
    scn612 = config.load(ROOT / "images" / "scenarios" / "seed-2012-6.12.yaml")
    mb612 = module.build(scn612.module, kernel.build(scn612.variant("stock"), progress=print))
    run = RunFolder(tmp_path / "run").create()
    with factory.make_board(board, scn, kb61, mb61, run) as guest:
        guest.power_on(Deadline(180, "boot"))
        with pytest.raises(install.VermagicMismatch) as e:
            install.prepare(guest, mb612, Deadline(120))
        loaded = guest.run(["cat", "/proc/modules"], Deadline(30)).check().output
    assert "built for kernel 6.12" in str(e.value) and "the board runs 6.1.192" in str(e.value)
    assert "it was not loaded" in str(e.value)
    assert "cma_harness" not in loaded


def test_the_loop_runs_on_the_default_cma_pool(run_seed, tmp_path):
    """images/boards/qemu-cma-pool.yaml: no dedicated area, cma=60M; the module allocates for a device of
    its own from the pool virtio shares. The records say which area, the cross-checks adapt and pass."""
    summary, folder = run_seed("reintroduce-2012", "default-pool", board_file=boards.load("qemu-cma-pool"),
                               module={"loops": 10})
    s = json.loads((folder / "summary.json").read_text())
    assert s["state"] in ("pass", "reproduced"), s["error"]
    assert s["loops_done"] == 10
    assert s["board"]["pool"] == {"name": "reserved", "base": s["area"]["base"], "size": 60 << 20, "source": "debugfs"}
    assert s["area"]["name"] == "reserved" and s["area"]["size"] == 60 << 20
    console = (folder / "console.log").read_text(errors="replace")
    assert "cma: Reserved 60 MiB at" in console and "cma-harness-area" not in console
    checks = {c["name"]: c for c in s["crosschecks"]}
    assert checks["placement"]["status"] == "pass" and checks["placement"]["data"]["shared_pool"], checks["placement"]
    assert "fail" not in {c["status"] for c in checks.values()}, s["crosschecks"]
    r = subprocess.run([*CLI, "check", str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
