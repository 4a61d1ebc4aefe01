"""Campaign bookkeeping without QEMU: run lengths that top up to the next look, run names that never
collide, the time-left line, and interrupt + resume giving the same loops as an uninterrupted campaign."""

import json

import pytest

from harness.orchestrate import campaign
from harness.spec import config
from harness.orchestrate.campaign import Plan, run_length, time_left
from harness.store import names
from harness.store.campaign_folder import CampaignFolder
from harness.store.jsonl import JsonlWriter, read_jsonl
from harness.orchestrate.run import RunState, RunSummary

PLAN = Plan("reintroduce-2012", "stock", loops_per_run=10, budget=30, alpha=0.05)


def test_run_length_tops_up_to_the_next_look():
    assert [run_length(n, PLAN) for n in (0, 7, 10, 23, 29)] == [10, 3, 10, 7, 1]
    assert run_length(0, Plan("a", "b", loops_per_run=20, budget=30)) == 20
    assert run_length(20, Plan("a", "b", loops_per_run=20, budget=30)) == 10, "never past the budget"


def test_run_names_count_past_every_folder_already_there(tmp_path):
    camp = CampaignFolder(tmp_path)
    assert camp.next_run("stock").name == "000-stock"
    for name in ("000-stock", "001-stock", "002-reintroduce-2012"):
        (camp.file(names.RUNS) / name).mkdir(parents=True)
    assert camp.next_run("stock#B").name == "003-stock#B"


def test_time_left_line():
    assert time_left(0, 0, 100, 0, 0) == "campaign: baseline 0/100, patched 0/100 loops"
    line = time_left(50, 50, 100, 100, 600)      # 100 loops in 10 min
    assert "10 loops/min" in line and "at most 100 loops left, about 10 min" in line


class FakeRuns:
    """run_variant stand-in: writes `loops` records per boot; interrupts once after `cut` loops in boot `at`."""

    def __init__(self, at=None, cut=0):
        self.at, self.cut, self.boots = at, cut, 0

    def __call__(self, scn, variant, spec, folder, *, loops, progress, **_):
        folder.mkdir(parents=True, exist_ok=True)      # the campaign made it (its name is taken)
        boot, self.boots = self.boots, self.boots + 1
        s = RunSummary(RunState.INFRA, variant, loops)
        with JsonlWriter(folder / "loops.jsonl") as out:
            for i in range(loops):
                if boot == self.at and i == self.cut:
                    s.error = "interrupted"
                    (folder / "summary.json").write_text(json.dumps(s.as_dict()))
                    raise KeyboardInterrupt
                failed = variant == "reintroduce-2012" and i % 3 == 0
                out.write({"variant": variant, "loop": i, "failed": int(failed), "outcome": "L." if failed else ".."})
                s.loops_done += 1
        s.state = RunState.PASS
        (folder / "summary.json").write_text(json.dumps(s.as_dict()))
        return s


def _totals(result):
    return {arm: v["loops"] for arm, v in result["variants"].items()}


NULL_PLAN = Plan("stock", "stock", loops_per_run=10, budget=30, alpha=0.05)    # baseline == patched


@pytest.mark.parametrize("plan", [PLAN, NULL_PLAN], ids=["ab", "null"])
@pytest.mark.parametrize("at, cut", [(0, 0), (1, 4), (2, 9), (3, 1)])
def test_interrupt_then_resume_measures_what_an_uninterrupted_campaign_does(tmp_path, monkeypatch, plan, at, cut):
    scn = config.load()
    monkeypatch.setattr(campaign, "run_variant", FakeRuns())
    whole = campaign.run_ab(scn, plan, tmp_path / "whole")

    monkeypatch.setattr(campaign, "run_variant", FakeRuns(at=at, cut=cut))
    with pytest.raises(KeyboardInterrupt):
        campaign.run_ab(scn, plan, tmp_path / "cut")
    kept = [sum(len(list(read_jsonl(p / "loops.jsonl"))) for p in (tmp_path / "cut" / "runs").glob(f"*-{key}"))
            for key in (campaign._key(plan, "A"), campaign._key(plan, "B"))]
    messages = []
    resumed = campaign.run_ab(scn, plan, tmp_path / "cut", progress=messages.append)
    if any(kept):
        assert f"resuming: {kept[0]} baseline and {kept[1]} patched loops" in messages[0]

    assert _totals(resumed) == _totals(whole)
    assert [r["state"] for r in resumed["runs"]].count("interrupted") == 1, "the cut run is listed as such"
    assert resumed["verdict"] == whole["verdict"]
    looks = [json.loads(l)["loops_per_variant"] for l in (tmp_path / "cut" / "decisions.jsonl").read_text().splitlines()]
    assert looks[-1] == [json.loads(l)["loops_per_variant"]
                         for l in (tmp_path / "whole" / "decisions.jsonl").read_text().splitlines()][-1]
    names = sorted(p.name for p in (tmp_path / "cut" / "runs").iterdir())
    assert len(names) == len(set(n.split("-", 1)[0] for n in names)), "one number per run folder"


PARALLEL = Plan("reintroduce-2012", "stock", loops_per_run=10, budget=30, alpha=0.05, parallel_arms=True)


def test_parallel_arms_measure_and_decide_what_the_serial_campaign_does(tmp_path, monkeypatch):
    scn = config.load()
    monkeypatch.setattr(campaign, "run_variant", FakeRuns())
    serial = campaign.run_ab(scn, PLAN, tmp_path / "serial")
    monkeypatch.setattr(campaign, "run_variant", FakeRuns())
    both = campaign.run_ab(scn, PARALLEL, tmp_path / "parallel")
    assert _totals(both) == _totals(serial) and both["verdict"] == serial["verdict"]
    looks = {k: [json.loads(l)["loops_per_variant"] for l in (tmp_path / k / "decisions.jsonl").read_text().splitlines()]
             for k in ("serial", "parallel")}
    assert looks["parallel"] == looks["serial"], "the same looks at the same loop counts"
    assert [r["variant"] for r in both["runs"]] == [r["variant"] for r in serial["runs"]], "records kept A, B, A, B"
    names = sorted(p.name for p in (tmp_path / "parallel" / "runs").iterdir())
    assert len(names) == len({n.split("-", 1)[0] for n in names}) == 6, names
    assert json.loads((tmp_path / "parallel" / "campaign.json").read_text())["plan"]["parallel_arms"] is True
    assert "parallel_arms" not in json.loads((tmp_path / "serial" / "campaign.json").read_text())["plan"], \
        "a serial campaign's plan is written as before, so older folders still resume"


def test_an_interrupted_parallel_campaign_resumes_to_the_same_totals(tmp_path, monkeypatch):
    scn = config.load()
    monkeypatch.setattr(campaign, "run_variant", FakeRuns())
    whole = campaign.run_ab(scn, PARALLEL, tmp_path / "whole")
    monkeypatch.setattr(campaign, "run_variant", FakeRuns(at=2, cut=4))
    with pytest.raises(KeyboardInterrupt):
        campaign.run_ab(scn, PARALLEL, tmp_path / "cut")
    monkeypatch.setattr(campaign, "run_variant", FakeRuns())
    resumed = campaign.run_ab(scn, PARALLEL, tmp_path / "cut")
    assert _totals(resumed) == _totals(whole) and resumed["verdict"] == whole["verdict"]


def test_resuming_with_another_plan_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign, "run_variant", FakeRuns())
    campaign.run_ab(config.load(), PLAN, tmp_path)
    with pytest.raises(campaign.InputError, match="different plan"):
        campaign.run_ab(config.load(), Plan("reintroduce-2012", "stock", loops_per_run=5, budget=30), tmp_path)


class FlakyRuns(FakeRuns):
    """The first boots end in the given states with no loop measured; later boots measure normally."""

    def __init__(self, *states):
        super().__init__()
        self.states = list(states)

    def __call__(self, scn, variant, spec, folder, *, loops, progress, **_):
        if self.states:
            folder.mkdir(parents=True, exist_ok=True)
            self.boots += 1
            s = RunSummary(self.states.pop(0), variant, loops, error="QEMU exited with status 1")
            (folder / "summary.json").write_text(json.dumps(s.as_dict()))
            return s
        return super().__call__(scn, variant, spec, folder, loops=loops, progress=progress)


def test_infra_is_retried_and_a_test_result_is_not(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign, "run_variant", FlakyRuns(RunState.INFRA, RunState.INFRA))
    result = campaign.run_ab(config.load(), PLAN, tmp_path / "infra")
    assert [r["state"] for r in result["runs"]][:1] == ["pass"], "two infra attempts, then the run that counts"
    assert sorted(p.name for p in (tmp_path / "infra" / "runs").iterdir())[:3] == [
        "000-reintroduce-2012", "001-reintroduce-2012", "002-reintroduce-2012"]

    monkeypatch.setattr(campaign, "run_variant", FlakyRuns(RunState.CRASH))
    result = campaign.run_ab(config.load(), PLAN, tmp_path / "crash")
    assert [r["state"] for r in result["runs"]] == ["crash"], "a crash is a result: not retried, and it stops"

    monkeypatch.setattr(campaign, "run_variant", FlakyRuns(*[RunState.INFRA] * 3))
    with pytest.raises(campaign.InfraError, match="3 attempts failed on infrastructure; last: QEMU exited"):
        campaign.run_ab(config.load(), PLAN, tmp_path / "broken")


def test_summary_gives_the_verdict_metric_boot_by_boot_and_a_resumed_boot_counts_once(tmp_path, monkeypatch):
    scn = config.load()
    monkeypatch.setattr(campaign, "run_variant", FakeRuns(at=2, cut=4))
    with pytest.raises(KeyboardInterrupt):
        campaign.run_ab(scn, PLAN, tmp_path)
    monkeypatch.setattr(campaign, "run_variant", FakeRuns())
    result = campaign.run_ab(scn, PLAN, tmp_path)
    base = result["variants"]["baseline"]["between_boots"]
    # Loops 0, 3, 6, 9 of a boot fail (L): 4 in a full boot; the cut boot kept loops 0-3 (2 failed),
    # its top-up of 6 loops is a boot of its own (loops 0 and 3 fail).
    per_run = [(sum("L" in r["outcome"] for r in read_jsonl(p / "loops.jsonl")), len(list(read_jsonl(p / "loops.jsonl"))))
               for p in sorted((tmp_path / "runs").glob("*-reintroduce-2012"))]
    assert base["per_boot"] == [list(c) for c in per_run]
    assert per_run[:3] == [(4, 10), (2, 4), (2, 6)] and all(c == (4, 10) for c in per_run[3:])
    assert result["variants"]["patched"]["between_boots"]["p_homogeneous"] is None     # nothing failed
