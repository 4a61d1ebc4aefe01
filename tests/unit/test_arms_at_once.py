"""The default of --parallel-arms (campaign.arms_at_once): both arms at once only where both guests are this
machine's QEMU booted by the harness and there are 2 CPUs; a resumed campaign goes on as it was pinned."""

import json

import pytest

from harness import cli
from harness.orchestrate import campaign
from harness.orchestrate.campaign import Plan, arms_at_once
from harness.spec import boards, config

from tests.unit.test_campaign_resume import FakeRuns

QEMU = boards.load()


def test_a_new_campaign_on_qemu_with_two_cpus_boots_both_arms_at_once():
    assert arms_at_once(None, None, True, 2) is True
    assert arms_at_once(None, QEMU, True, 4) is True


@pytest.mark.parametrize("board, own, cpus, why", [
    (None, True, 1, "one CPU: two guests would share it"),
    (None, False, 2, "another executor (lava-run, a LAVA server) boots the guests"),
    (boards.load("qemu-ssh"), True, 2, "a board reached over SSH is one board"),
])
def test_one_arm_at_a_time_otherwise(board, own, cpus, why):
    assert arms_at_once(None, board, own, cpus) is False, why


def test_a_resumed_campaign_goes_on_as_it_was_pinned():
    assert arms_at_once({"plan": {"baseline": "a"}}, None, True, 8) is False, "a serial plan has no parallel_arms key"
    assert arms_at_once({"plan": {"parallel_arms": True}}, None, True, 1) is True


def test_run_ab_pins_the_choice_it_made_and_resumes_with_it(tmp_path, monkeypatch):
    scn = config.load()
    monkeypatch.setattr(campaign, "run_variant", FakeRuns())
    monkeypatch.setattr(campaign.os, "cpu_count", lambda: 2)
    auto = Plan("reintroduce-2012", "stock", loops_per_run=10, budget=30, alpha=0.05, parallel_arms=None)
    lines = []
    campaign.run_ab(scn, auto, tmp_path / "ab", progress=lines.append)
    assert json.loads((tmp_path / "ab" / "campaign.json").read_text())["plan"]["parallel_arms"] is True
    assert "arms: both at once (--serial-arms / --parallel-arms choose)" in lines
    monkeypatch.setattr(campaign.os, "cpu_count", lambda: 1)
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
