"""A board that stays on (deploy.method: kexec) without QEMU: the health rule that decides a power cycle,
the campaign going on after a crash or a hang on a board that recovers (and stopping when it keeps
failing), each boot's first loop number, the test bed's power script and its state, the board-file rules.
The real path (kexec inside one QEMU, a hang recovered by a power cycle) is tests/integration/test_deployed.py."""

import json
import subprocess
import sys

import pytest

from harness.boards import deployed, rig
from harness.core import proc
from harness.core.errors import InfraError, InputError
from harness.orchestrate import campaign
from harness.orchestrate.run import RunState
from harness.spec import boards, config
from tests.unit.test_campaign_resume import FakeRuns

TESTBED = boards.load("qemu-ssh")


@pytest.mark.parametrize("output, why", [
    ("tainted=0\nmodule=0\n", None),
    ("tainted=4096\nmodule=0\n", None),                                    # O: the test module's own taint
    ("tainted=4224\nmodule=1\n", "oops (die)"),                            # D + O: an oops
    ("tainted=4608\nmodule=0\n", "warning"),                               # W + O
    ("tainted=20480\nmodule=0\n", "soft lockup"),                          # L + O
    ("tainted=4096\nmodule=1\n", "the test module is still loaded"),       # a hang leaves it in
    ("", None),
])
def test_a_kernel_that_went_wrong_is_no_base_for_the_next_run(output, why):
    got = deployed.needs_recovery(output)
    assert (got is None) if why is None else (why in got)


class HangingRuns(FakeRuns):
    """Boots `hang_at` (0-based; "all": every baseline boot) end in `state` after 2 loops; every boot's
    first_loop is kept."""

    def __init__(self, hang_at, state=RunState.HANG):
        super().__init__()
        self.hang_at, self.state, self.first_loops = hang_at, state, []

    def __call__(self, scn, variant, spec, folder, *, loops, progress, first_loop=0, **kw):
        self.first_loops.append(first_loop)
        bad = variant == "reintroduce-2012" if self.hang_at == "all" else self.boots in self.hang_at
        s = super().__call__(scn, variant, spec, folder, loops=2 if bad else loops, progress=progress)
        if bad:
            s.state = self.state
            (folder / "summary.json").write_text(json.dumps(s.as_dict()))
        return s


PLAN = campaign.Plan("reintroduce-2012", "stock", loops_per_run=10, budget=30, alpha=0.05)


def test_on_a_board_that_recovers_the_campaign_goes_on_after_a_hang(tmp_path, monkeypatch):
    runs = HangingRuns(hang_at={2})
    monkeypatch.setattr(campaign, "run_variant", runs)
    monkeypatch.setattr(deployed, "switch_off_when_done", lambda board, progress: None)
    result = campaign.run_ab(config.load(), PLAN, tmp_path / "ab", board=TESTBED)
    states = [r["state"] for r in result["runs"]]
    assert states[2] == "hang" and states.count("hang") == 1 and len(states) > 3
    assert result["variants"]["baseline"]["loops"] == 30 and result["variants"]["patched"]["loops"] == 30, \
        "the hung boot's 2 loops count, the next boot tops the arm up to its look"
    # Loops are numbered on across an arm's boots: after 10 + 2 baseline loops the next starts at 12.
    assert runs.first_loops[:5] == [0, 0, 10, 10, 12]


def test_an_arm_that_keeps_crashing_ends_the_campaign_even_on_a_board_that_recovers(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign, "run_variant", HangingRuns(hang_at="all", state=RunState.CRASH))
    monkeypatch.setattr(deployed, "switch_off_when_done", lambda board, progress: None)
    result = campaign.run_ab(config.load(), PLAN, tmp_path / "ab", board=TESTBED)
    assert [r["state"] for r in result["runs"]]== ["crash", "pass", "crash", "crash"]
    assert result["verdict"] == "inconclusive" and "crash" in result["decision"]["stopped"]


def test_without_power_a_crash_still_stops_the_campaign(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign, "run_variant", HangingRuns(hang_at={1}, state=RunState.CRASH))
    result = campaign.run_ab(config.load(), PLAN, tmp_path / "ab", board=boards.load("qemu-ssh-fresh"))
    assert [r["state"] for r in result["runs"]] == ["pass", "crash"]


def test_both_arms_at_once_on_one_board_that_stays_on_is_refused(tmp_path):
    plan = campaign.Plan("reintroduce-2012", "stock", loops_per_run=10, budget=30, parallel_arms=True)
    with pytest.raises(InputError, match="drop --parallel-arms"):
        campaign.run_ab(config.load(), plan, tmp_path / "ab", board=TESTBED)


def test_the_campaign_switches_the_test_bed_off_when_done(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(campaign, "run_variant", FakeRuns())
    monkeypatch.setattr(deployed.PowerControl, "_command", lambda self, action: calls.append(action))
    campaign.run_ab(config.load(), PLAN, tmp_path / "ab", board=TESTBED)
    assert calls == ["off"]


# -- the test bed's power script ---------------------------------------------------------------

def _script(*args, cache):
    return subprocess.run([sys.executable, "-m", "harness.boards.rig", *args], capture_output=True, text=True,
                          env={"CMA_HARNESS_CACHE": str(cache), "PATH": "/usr/bin:/bin"}, timeout=60)


def test_the_power_script_on_a_test_bed_with_nothing_installed(tmp_path):
    assert _script("status", "qemu-ssh", cache=tmp_path).returncode == 3
    off = _script("off", "qemu-ssh", cache=tmp_path)
    assert off.returncode == 0 and "was off" in off.stdout
    on = _script("on", "qemu-ssh", cache=tmp_path)
    assert on.returncode == 1 and "holds nothing to boot" in on.stderr
    assert _script("reboot", "qemu-ssh", cache=tmp_path).returncode == 2
    bad = _script("on", "../etc", cache=tmp_path)
    assert bad.returncode == 1 and "letters, digits" in bad.stderr


def test_install_writes_what_the_bed_boots_and_keeps_its_disk(tmp_path):
    bed = rig.Rig("tb", tmp_path / "tb")
    files = {n: tmp_path / n for n in ("z", "d", "i")}
    for n, p in files.items():
        p.write_bytes(n.encode() * 10)
    flash = rig.Flash(files["z"], files["d"], files["i"], 32, ["-M", "virt"], "console=ttyAMA0")
    bed.install(flash)
    assert bed.installed() and (bed.flash / "zImage").read_bytes() == b"z" * 10
    assert (bed.flash / "disk.img").stat().st_size == 32 << 20
    assert json.loads((bed.flash / "boot.json").read_text()) == {"hardware": ["-M", "virt"], "cmdline": "console=ttyAMA0"}
    assert not bed.on and bed.ports() is None


def test_a_detached_process_is_stopped_only_while_it_is_the_one(tmp_path):
    pid = proc.detach(["sh", "-c", "sleep 60", str(tmp_path)], tmp_path / "log")    # $0: the marker
    assert proc.alive(pid, str(tmp_path)) and not proc.alive(pid, "another-marker")
    assert not proc.stop_pid(pid, "another-marker") and proc.alive(pid, str(tmp_path))
    assert proc.stop_pid(pid, str(tmp_path)) and not proc.alive(pid, str(tmp_path))


# -- board files ----------------------------------------------------------------------------------

def _bed(**changes):
    data = {"name": "tb", "kind": "qemu-ssh", "ssh": {"host": "127.0.0.1", "port": 0, "key_file": "k", "known_hosts": "kh"},
            "disk": {"provision": "write-image"}, "deploy": {"method": "kexec"},
            "power": {"on": "{python} -m harness.boards.rig on {board}", "off": "{python} -m harness.boards.rig off {board}"}}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_board_file_rules_of_the_test_bed_that_stays_on():
    assert boards.from_dict(_bed()).deploy.method == "kexec"
    assert TESTBED.power.off_when_done and TESTBED.deploy.method == "kexec"
    with pytest.raises(InputError, match="needs `power` commands"):
        boards.from_dict(_bed(power=None))
    with pytest.raises(InputError, match="scratch disk.*allowed here: write-image"):
        boards.from_dict(_bed(disk={"provision": "attached"}))
    with pytest.raises(InputError, match="at QEMU's start; allowed here: attached"):
        boards.from_dict(_bed(deploy=None, power=None))
    with pytest.raises(InputError, match=r"\{cash\}; allowed: \{board\}, \{project\}, \{cache\}, \{python\}"):
        boards.from_dict(_bed(power={"on": "x {cash}", "off": "y"}))


def test_a_power_command_that_fails_is_an_error_naming_it():
    from harness.boards.power import PowerControl, PowerError

    board = boards.from_dict(_bed(power={"on": "false", "off": "true"}))
    with pytest.raises(PowerError, match=r"power on of board tb \(`power.on`: false\) exited with status 1"):
        PowerControl(board).on()
    assert isinstance(PowerError("x"), InfraError)


def test_board_file_rules_of_a_deploy_command():
    cmd = "{python} -m harness.boards.rig boot {board} {zimage} {dtb} {initramfs}"
    b = boards.from_dict(_bed(deploy={"method": "command", "command": cmd}))
    assert b.deploy.method == "command" and deployed.recovers(b)
    with pytest.raises(InputError, match="needs `deploy.command`.*\\{zimage\\}, \\{dtb\\}, \\{initramfs\\}, \\{cmdline\\}"):
        boards.from_dict(_bed(deploy={"method": "command"}))
    with pytest.raises(InputError, match="`deploy.command` is used by `deploy.method: command` only"):
        boards.from_dict(_bed(deploy={"method": "kexec", "command": cmd}))
    with pytest.raises(InputError, match=r"names the placeholder \{kernel\}; allowed: .*\{cmdline\}"):
        boards.from_dict(_bed(deploy={"method": "command", "command": "flash {kernel}"}))


def test_the_power_script_s_boot_needs_an_installed_bed_and_its_files(tmp_path):
    assert _script("boot", "qemu-ssh", "z", cache=tmp_path).returncode == 2
    r = _script("boot", "qemu-ssh", "z", "d", "i", cache=tmp_path)
    assert r.returncode == 1 and "holds nothing yet" in r.stderr
