"""The default of --parallel-arms (campaign.arms_at_once): both arms at once only where both guests are this
machine's QEMU booted by the harness and each can have host cores of its own; a resumed campaign goes on as
it was pinned. And the pair's guests pinned each to their own cores (core/host_cpus)."""

import contextlib
import json
import os
import subprocess
import threading

import pytest

from harness import cli
from harness.core import host_cpus
from harness.orchestrate import campaign
from harness.orchestrate.campaign import Plan, arms_at_once
from harness.spec import boards, config

from tests.unit.test_campaign_resume import FakeRuns

QEMU = boards.load()


def test_a_new_campaign_on_qemu_with_a_core_for_every_vcpu_boots_both_arms_at_once():
    assert arms_at_once(None, None, True, 4, 2) is True
    assert arms_at_once(None, QEMU, True, 2, 1) is True


@pytest.mark.parametrize("board, own, cores, why", [
    (None, True, 1, "one core: two guests would share it"),
    (None, True, 2, "2 cores for two 2-vCPU guests: measured no faster than one at a time"),
    (None, True, 3, "still a core short"),
    (None, False, 4, "another executor (lava-run, a LAVA server) boots the guests"),
    (boards.load("qemu-ssh"), True, 4, "a board reached over SSH is one board"),
])
def test_one_arm_at_a_time_otherwise(board, own, cores, why):
    assert arms_at_once(None, board, own, cores, 2) is False, why


def test_a_resumed_campaign_goes_on_as_it_was_pinned():
    assert arms_at_once({"plan": {"baseline": "a"}}, None, True, 8, 2) is False, "a serial plan has no parallel_arms key"
    assert arms_at_once({"plan": {"parallel_arms": True}}, None, True, 1, 2) is True


def test_a_pair_gets_its_own_cores_each():
    assert host_cpus.split_for_pair((0, 1, 2, 3, 4), 2) == ((0, 1), (2, 3)), "as many as the guest has vCPUs"
    assert host_cpus.split_for_pair((0, 1, 2), 2) == ((0,), (1,)), "fewer: half each"
    assert host_cpus.split_for_pair((5, 7), 2) == ((5,), (7,)), "the cores this process may use, not 0..n"
    assert host_cpus.split_for_pair((0,), 2) is None


def test_a_guest_of_this_thread_starts_under_taskset_on_its_cores_and_no_other_threads_does():
    assert host_cpus.taskset_argv() == []
    core = min(os.sched_getaffinity(0))
    others = []
    with host_cpus.for_guests((core,)):
        prefix = host_cpus.taskset_argv()
        worker = threading.Thread(target=lambda: others.append(host_cpus.taskset_argv()))
        worker.start()
        worker.join()
    assert prefix == ["taskset", "-c", str(core)] and others == [[]]
    assert host_cpus.taskset_argv() == [], "given back"
    ran = subprocess.run([*prefix, "sh", "-c", "grep Cpus_allowed_list /proc/self/status"], capture_output=True,
                         text=True, check=True).stdout
    assert ran.split()[-1] == str(core), "what the prefix starts runs on that core only"


def test_run_ab_pins_the_choice_it_made_and_resumes_with_it(tmp_path, monkeypatch):
    scn = config.load()
    monkeypatch.setattr(campaign, "run_variant", FakeRuns())
    monkeypatch.setattr(host_cpus, "available", lambda: (0, 1, 2, 3))
    given = []

    @contextlib.contextmanager
    def for_guests(cores):
        given.append((threading.current_thread().name.startswith("patched-arm"), cores))
        yield

    monkeypatch.setattr(host_cpus, "for_guests", for_guests)
    auto = Plan("reintroduce-2012", "stock", loops_per_run=10, budget=30, alpha=0.05, parallel_arms=None)
    lines = []
    campaign.run_ab(scn, auto, tmp_path / "ab", progress=lines.append)
    assert json.loads((tmp_path / "ab" / "campaign.json").read_text())["plan"]["parallel_arms"] is True
    assert "arms: both at once (--serial-arms / --parallel-arms choose)" in lines
    assert set(given) == {(False, (0, 1)), (True, (2, 3))}, "the baseline's guest on 0-1, the patched one's on 2-3"
    monkeypatch.setattr(host_cpus, "available", lambda: (0,))
    lines.clear()
    campaign.run_ab(scn, auto, tmp_path / "ab", progress=lines.append)      # resumed on a 1-CPU machine
    assert "arms: both at once (--serial-arms / --parallel-arms choose)" in lines, "as pinned, not as the machine"


@pytest.mark.parametrize("argv, expected", [([], None), (["--parallel-arms"], True), (["--serial-arms"], False)])
def test_the_cli_leaves_the_choice_to_run_ab_unless_told(argv, expected):
    for command in ("ab", "bench"):
        assert cli.build_parser().parse_args([command, *argv]).parallel_arms is expected


def test_parallel_and_serial_arms_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["ab", "--parallel-arms", "--serial-arms"])
    assert "not allowed with argument" in capsys.readouterr().err
