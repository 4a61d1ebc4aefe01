"""The test bed as a board that stays on, for real (images/boards/qemu-ssh.yaml): its power commands start
and stop one QEMU process (harness/boards/rig.py), every boot after the first is a kexec into the other
variant's kernel inside it, each boot's kernel is verified; a hang mid-campaign is recorded, the power
cycle brings the board back and the campaign finishes; a power command that fails, a board that never
answers and a missing kexec binary each end a run `infra` with the reason, never a hang of the harness.

Each test uses a copy of the board file under its own name, so its test bed (rigs/<name>/ in the cache)
is its own."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.boards import rig
from harness.build import build_identity, kernel
from harness.spec import boards, config
from harness.store.jsonl import read_jsonl
from tests.conftest import ROOT

pytestmark = pytest.mark.integration
CLI = [str(Path(sys.executable).with_name("cma-harness"))]
AB = ["--loops-per-run", "20", "--budget", "60", "--alpha", "0.001"]


def _board(tmp_path: Path, name: str, **changes) -> Path:
    """images/boards/qemu-ssh.yaml as `name`, with sections changed; its test bed starts off and empty."""
    doc = yaml.safe_load((boards.BOARDS_DIR / "qemu-ssh.yaml").read_text())
    doc["name"] = name
    for section, values in changes.items():
        doc[section] = {**boards._yaml11_keys(doc.get(section) or {}), **values}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    bed = rig.Rig(name)
    bed.power_off()
    subprocess.run(["rm", "-rf", str(bed.root)], check=True)
    return path


def _runs(folder: Path) -> list[dict]:
    return [json.loads((p / "summary.json").read_text()) | {"folder": p.name}
            for p in sorted((folder / "runs").iterdir())]


def _starts(name: str) -> int:
    """How many times the test bed's QEMU was started (proc.detach writes one `$ argv` line each)."""
    log = rig.Rig(name).run / "qemu.log"
    return sum(line.startswith("$ ") for line in log.read_text(errors="replace").splitlines())


def _identity(variant: str) -> dict:
    board = boards.load("qemu-ssh")
    return build_identity.of_build(kernel.build(board.kernel_spec(config.load(None).variant(variant)))).as_dict()


def _cli(*args, timeout=1800) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_ab_kexecs_each_boot_after_the_first_inside_one_qemu_and_agrees_with_the_qemu_board(tmp_path):
    board = _board(tmp_path, "it-ab")
    on_bed = _cli("ab", "--board", board, *AB, "--out", tmp_path / "bed")
    assert on_bed.returncode in (0, 1), on_bed.stdout[-3000:] + on_bed.stderr[-3000:]
    on_qemu = _cli("ab", *AB, "--out", tmp_path / "qemu")
    assert on_qemu.returncode == on_bed.returncode, on_qemu.stdout[-3000:]

    runs = _runs(tmp_path / "bed")
    ids = {v: _identity(v) for v in ("reintroduce-2012", "stock")}
    assert len(runs) == 6 and [r["state"] for r in runs if r["state"] not in ("pass", "reproduced")] == []
    for i, r in enumerate(runs):
        d = r["board"]["deploy"]
        assert d["kernel"] == ids[r["variant"]] and d["verified_by"] == ["/proc/version", "build ID"], (r["folder"], d)
        if i == 0:
            assert d["method"] == "running" and [p["action"] for p in d["power"]] == ["on"], d
        else:
            assert d["method"] == "kexec" and d["power"] == [] and d["previous"] == runs[i - 1]["board"]["deploy"]["kernel"]
    assert _starts("it-ab") == 1, "one QEMU process for the whole campaign"
    assert not rig.Rig("it-ab").on, "power.off_when_done: the test bed is off after the campaign"

    bed, qemu = (json.loads((tmp_path / f / "summary.json").read_text()) for f in ("bed", "qemu"))
    print(f"\non the test bed: {bed['verdict']}, {bed['variants']['baseline']['lru_caused_loops']}; "
          f"{bed['seconds_this_session']} s\non the QEMU board: {qemu['verdict']}, "
          f"{qemu['variants']['baseline']['lru_caused_loops']}; {qemu['seconds_this_session']} s")
    assert bed["verdict"] == qemu["verdict"]
    for s in (bed, qemu):
        assert s["variants"]["baseline"]["loops"] == s["variants"]["patched"]["loops"] == 60
        assert s["variants"]["patched"]["lru_caused_loops"]["events"] == 0
        assert s["variants"]["baseline"]["lru_caused_loops"]["events"] > 0, "the bug shows on both boards"


def test_a_hang_mid_campaign_is_recorded_and_a_power_cycle_brings_the_board_back(tmp_path):
    """The module hangs at loop 15 of each arm (its second boot): both hangs are kept as measured, the
    board is power-cycled (the module is still loaded), and the campaign measures every remaining loop."""
    doc = config.as_dict(config.load(None))
    doc["module"].update(fault="hang", fault_loop=15)
    doc["board"]["hang_timeout_s"] = 10
    doc["trace"]["enabled"] = False
    scn = tmp_path / "hang.yaml"
    scn.write_text(json.dumps(doc))
    board = _board(tmp_path, "it-hang")
    r = _cli("ab", scn, "--board", board, "--loops-per-run", "10", "--budget", "30", "--out", tmp_path / "ab")
    summary = json.loads((tmp_path / "ab" / "summary.json").read_text())
    runs = _runs(tmp_path / "ab")
    states = [x["state"] for x in runs]
    assert states.count("hang") == 2, (states, r.stdout[-3000:])
    assert summary["variants"]["baseline"]["loops"] == summary["variants"]["patched"]["loops"] == 30
    assert summary["decision"]["stopped"] is None, summary["decision"]
    for i, x in enumerate(runs):
        if x["state"] == "hang":
            assert (tmp_path / "ab" / "runs" / x["folder"] / "hang-state.txt").is_file()
            assert [rec["loop"] for rec in read_jsonl(tmp_path / "ab" / "runs" / x["folder"] / "loops.jsonl")] == \
                list(range(10, 15))
            after = runs[i + 1]["board"]["deploy"]
            assert "still loaded" in after["recovered"] and [p["action"] for p in after["power"]] == ["cycle"]
    assert _starts("it-hang") == 3, "the first power-on and one power cycle per hang"
    assert "power-cycled before its next boot and the campaign goes on" in r.stdout + r.stderr, r.stderr[-2000:]


def test_a_power_command_that_fails_or_a_board_that_never_answers_is_infra_not_a_hang(tmp_path):
    failing = _board(tmp_path, "it-nopower", power={"on": "sh -c 'echo relay stuck >&2; exit 4'"})
    r = _cli("run", "--board", failing, "--variant", "stock", "--loops", "3", "--out", tmp_path / "a", timeout=600)
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert r.returncode == 3 and s["state"] == "infra" and s["loops_done"] == 0
    assert "exited with status 4" in s["error"] and "relay stuck" in s["error"], s["error"]

    silent = _board(tmp_path, "it-silent", power={"on": "true"}, deploy={"boot_timeout_s": 10})
    r = _cli("run", "--board", silent, "--variant", "stock", "--loops", "3", "--out", tmp_path / "b", timeout=600)
    s = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert r.returncode == 3 and s["state"] == "infra" and "still off after `power.on`" in s["error"], s["error"]


def test_a_missing_kexec_binary_on_a_board_that_is_on_is_named(tmp_path):
    board = _board(tmp_path, "it-nokexec", power={"off_when_done": False})
    try:
        first = _cli("run", "--board", board, "--variant", "stock", "--loops", "2", "--out", tmp_path / "a")
        assert first.returncode in (0, 1), first.stdout[-2000:]
        doc = yaml.safe_load(board.read_text())
        doc["deploy"]["kexec"] = "/opt/no-such/kexec"
        board.write_text(yaml.safe_dump(doc))
        r = _cli("run", "--board", board, "--variant", "reintroduce-2012", "--loops", "2", "--out", tmp_path / "b")
        s = json.loads((tmp_path / "b" / "summary.json").read_text())
        assert r.returncode == 3 and s["state"] == "infra" and s["loops_done"] == 0
        assert "has no kexec binary" in s["error"] and "deploy.kexec" in s["error"], s["error"]
        assert s["board"]["deploy"]["method"] is None, "the board kept its kernel: nothing was switched"
    finally:
        rig.Rig("it-nokexec").power_off()


def test_a_deploy_command_reboots_the_board_into_each_build_and_the_kernel_is_verified(tmp_path):
    """deploy.method: command, for boards where kexec is not wanted: the test bed's `rig boot` copies the
    build into what it boots (its boot partition) and power-cycles it."""
    cmd = "{python} -m harness.boards.rig boot {board} {zimage} {dtb} {initramfs}"
    board = _board(tmp_path, "it-command", deploy={"method": "command", "command": cmd},
                   power={"off_when_done": False})
    try:
        for i, variant in enumerate(("stock", "reintroduce-2012", "stock")):
            r = _cli("run", "--board", board, "--variant", variant, "--loops", "3", "--out", tmp_path / str(i))
            s = json.loads((tmp_path / str(i) / "summary.json").read_text())
            assert s["loops_done"] == 3, (r.stdout[-2000:], r.stderr[-2000:])
            d = s["board"]["deploy"]
            assert d["kernel"] == _identity(variant) and d["verified_by"] == ["/proc/version", "build ID"]
            assert d["method"] == ("running" if i == 0 else "command"), d
            if i:
                assert d["previous"] == _identity("reintroduce-2012" if i == 2 else "stock")
                assert d["seconds"]["command_s"] > 0 and d["seconds"]["boot_s"] >= 0
        assert _starts("it-command") == 3, "the first power-on, then one reboot per deploy"
    finally:
        rig.Rig("it-command").power_off()
