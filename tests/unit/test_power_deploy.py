"""A board file's `deploy` and `power` sections: validated like the others (unknown keys, wrong values,
rules between kinds), and the power commands run on this host within their timeout, a failure naming
the command, its exit status and its stderr."""

import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.boards.power import PowerControl, PowerError
from harness.core import proc
from harness.core.errors import InputError
from harness.spec import boards
from harness.spec.config import PROJECT_ROOT

TESTBED = {"name": "tb", "kind": "qemu-ssh", "ssh": {"host": "127.0.0.1", "port": 0, "key_file": "k", "known_hosts": "kh"}}


def _board(tmp_path, **sections) -> boards.BoardFile:
    return boards.from_dict({**TESTBED, **sections}, source="tb.yaml", base=tmp_path)


def _physical(tmp_path, **sections) -> dict:
    (tmp_path / "key").write_text("k")
    (tmp_path / "kh").write_text("")
    return {"name": "bbb", "kind": "ssh", "ssh": {"host": "bbb.lab", "key_file": "key", "known_hosts": "kh"},
            "disk": {"device": "/dev/sda", "provision": "write-image"}, **sections}


def test_the_test_bed_builds_its_kernels_with_kexec():
    b = boards.load("qemu-ssh")
    assert b.kernel.fragments == ("net", "kexec") and b.deploy.method == "kexec" and b.power.on.endswith("rig on {board}")
    fresh = boards.load("qemu-ssh-fresh")
    assert fresh.kernel.fragments == ("net", "kexec") and fresh.deploy.method == "none" and fresh.power is None
    text = (PROJECT_ROOT / "kernel-configs" / "kexec.config").read_text()
    assert "CONFIG_KEXEC=y" in text and "CONFIG_HOTPLUG_CPU=y" in text


def test_the_sections_load_with_their_defaults(tmp_path):
    b = _board(tmp_path, deploy={"method": "kexec"}, power={"on": "true", "off": "true"},
               disk={"provision": "write-image"})
    assert b.deploy == boards.BoardDeploy(method="kexec") and b.deploy.boot_timeout_s == 180
    assert b.power.timeout_s == 60 and b.power.cycle is None
    assert b.as_dict()["deploy"]["method"] == "kexec"


@pytest.mark.parametrize("sections, says", [
    ({"deploy": {"method": "reboot"}}, "`deploy.method` = 'reboot' is not allowed; allowed values: none, kexec"),
    ({"deploy": {"kexec_path": "/sbin/kexec"}}, "unknown key `deploy.kexec_path`; allowed keys here: method, kexec"),
    ({"deploy": {"boot_timeout_s": 2}}, "`deploy.boot_timeout_s` = 2 is out of range; allowed: 5 to 3600"),
    ({"power": {"reset": "x"}}, "unknown key `power.reset`; allowed keys here: on, off, cycle, timeout_s"),
    ({"power": {"on": "true"}}, "`power` needs `cycle`, or both `on` and `off`"),
    ({"power": {"cycle": "relay {port} cycle"}}, "names the placeholder {port}; allowed: {board}, {project}, {cache}"),
    ({"power": {"cycle": "sh -c 'unbalanced"}}, "`power.cycle` = \"sh -c 'unbalanced\" cannot be split"),
    ({"power": {"cycle": "   "}}, "`power.cycle` is empty"),
    ({"power": {"cycle": "x", "timeout_s": 0}}, "`power.timeout_s` = 0 is out of range"),
    ({"power": {"cycle": 5}}, "`power.cycle` must be a string"),
])
def test_a_bad_section_is_named_with_what_is_allowed(tmp_path, sections, says):
    with pytest.raises(InputError) as e:
        _board(tmp_path, **sections)
    assert "tb.yaml" in str(e.value) and says in str(e.value)


def test_the_qemu_board_takes_neither(tmp_path):
    for sections in ({"deploy": {"method": "kexec"}}, {"power": {"cycle": "true"}}):
        with pytest.raises(InputError, match="kind: qemu. board takes neither"):
            boards.from_dict({"kind": "qemu", **sections}, source="q.yaml")


def test_kexec_boots_the_harness_kernels_so_a_physical_board_needs_its_cmdline_and_dtb(tmp_path):
    (tmp_path / "linux").mkdir()
    (tmp_path / "linux" / ".config").write_text("")
    with pytest.raises(InputError, match="`kernel.tree` .the board's own kernel. must be unset"):
        boards.from_dict(_physical(tmp_path, deploy={"method": "kexec", "cmdline": "console=ttyS0"},
                                   kernel={"tree": "linux"}), source="b.yaml", base=tmp_path)
    with pytest.raises(InputError, match="needs `deploy.cmdline`"):
        boards.from_dict(_physical(tmp_path, deploy={"method": "kexec"}), source="b.yaml", base=tmp_path)
    with pytest.raises(InputError, match="needs `area.board_dtb`"):
        boards.from_dict(_physical(tmp_path, deploy={"method": "kexec", "cmdline": "console=ttyS0"}),
                         source="b.yaml", base=tmp_path)
    b = boards.from_dict(_physical(tmp_path, deploy={"method": "kexec", "cmdline": "console=ttyS0"},
                                   area={"board_dtb": "am335x-boneblack.dtb"}), source="b.yaml", base=tmp_path)
    assert b.deploy.cmdline == "console=ttyS0"


def test_placeholders_fill_each_word_and_a_value_with_spaces_stays_one_argument():
    argv = boards.power_argv("{project}/images/power.sh cycle --name {board} '{cache}/x y'",
                             {"board": "my board", "project": "/p", "cache": "/c"})
    assert argv == ["/p/images/power.sh", "cycle", "--name", "my board", "/c/x y"]


class FakeRun:
    def __init__(self, results):
        self.results, self.argvs = list(results), []

    def __call__(self, argv, timeout_s):
        self.argvs.append(argv)
        rc, err = self.results.pop(0)
        return proc.Finished(argv, rc, "", err, 0.1)


def test_a_cycle_without_its_own_command_is_off_a_pause_then_on(tmp_path):
    run, slept = FakeRun([(0, ""), (0, "")]), []
    pc = PowerControl(_board(tmp_path, power={"on": "pdu {board} on", "off": "pdu {board} off", "cycle_delay_s": 3}),
                      run=run, sleep=slept.append)
    pc.cycle()
    assert run.argvs == [["pdu", "tb", "off"], ["pdu", "tb", "on"]] and slept == [3]
    assert [a.action for a in pc.done] == ["off", "on"]


def test_a_command_that_fails_is_named_with_its_status_and_stderr(tmp_path):
    pc = PowerControl(_board(tmp_path, power={"cycle": "pdu cycle"}),
                      run=FakeRun([(2, "pdu: outlet 4 unreachable\n")]))
    with pytest.raises(PowerError) as e:
        pc.cycle()
    msg = str(e.value)
    assert "power cycle of board tb (`power.cycle`: pdu cycle) exited with status 2" in msg
    assert "pdu: outlet 4 unreachable" in msg
    with pytest.raises(PowerError, match="`power.on` is not set"):
        pc.on()


def test_a_board_without_power_cannot_be_switched(tmp_path):
    with pytest.raises(PowerError, match="no `power` section"):
        PowerControl(_board(tmp_path))


def test_real_commands_run_on_the_host_and_a_hung_one_is_killed_at_its_timeout(tmp_path):
    py = sys.executable
    pc = PowerControl(_board(tmp_path, power={"on": f"{py} -c 'import sys; sys.stderr.write(\"relay stuck\\n\"); sys.exit(3)'",
                                              "off": f"{py} -c 'import time; time.sleep(60)'", "timeout_s": 1}))
    with pytest.raises(PowerError, match=r"(?s)exited with status 3.*relay stuck"):
        pc.on()
    t0 = time.monotonic()
    with pytest.raises(PowerError, match=r"did not finish within 1 s \(power.timeout_s\) and was killed"):
        pc.off()
    assert time.monotonic() - t0 < 10
    with pytest.raises(PowerError, match="could not be started"):
        PowerControl(_board(tmp_path, power={"cycle": "/nonexistent/relay"})).cycle()


def test_run_bounded_kills_what_the_command_started_too():
    t0 = time.monotonic()
    with pytest.raises(proc.CommandTimedOut):
        proc.run_bounded(["sh", "-c", "sleep 60 & sleep 60; wait"], 0.5)
    assert time.monotonic() - t0 < 10
    done = proc.run_bounded(["sh", "-c", "echo out; echo err >&2; exit 4"], 10)
    assert (done.returncode, done.stdout, done.stderr) == (4, "out\n", "err\n")


def test_the_templates_document_both_sections():
    for name in ("beaglebone-black", "raspberrypi-2"):
        doc = yaml.safe_load((boards.BOARDS_DIR / f"{name}.yaml").read_text())
        assert set(doc) <= set(boards.TOP_KEYS), name
    assert Path(boards.BOARDS_DIR / "qemu-ssh.yaml").is_file()
