"""A short A/B campaign end to end (real kernels, real guests): record counts and the verdict logic on
what was measured. Short loop counts: the demo's real campaign is benchmarks/ab_demo.py."""

import json

import pytest

from harness.judging import sequential
from harness.orchestrate.campaign import Plan, run_ab
from harness.store.counts import loop_counts
from harness.store.jsonl import read_jsonl

pytestmark = pytest.mark.integration


def _boots(folder, suffix):
    return [list(read_jsonl(run_dir / "loops.jsonl")) for run_dir in sorted((folder / "runs").glob(f"*-{suffix}"))]


def _records(folder, suffix):
    return [r for boot in _boots(folder, suffix) for r in boot]


def test_short_campaign_counts_and_verdict(seed, tmp_path):
    plan = Plan(baseline="reintroduce-2012", patched="stock", loops_per_run=6, budget=12, alpha=0.001)
    result = run_ab(seed, plan, tmp_path)
    base, patched = _records(tmp_path, "reintroduce-2012"), _records(tmp_path, "stock")
    # Interleaved A, B, A, B, ... and every loop on disk.
    assert [r["run"].split("-", 1)[1] for r in result["runs"]][:2] == ["reintroduce-2012", "stock"]
    assert result["variants"]["baseline"]["loops"] == len(base)
    assert result["variants"]["patched"]["loops"] == len(patched)
    assert len(base) == len(patched) and len(base) in (6, 12)
    # The verdict is what the statistics say about exactly these records.
    expected = sequential.decide([loop_counts(b, "lru") for b in _boots(tmp_path, "reintroduce-2012")],
                                 [loop_counts(b, "lru") for b in _boots(tmp_path, "stock")], plan=plan)
    assert result["verdict"] == expected.verdict.value
    assert result["decision"]["p_fixed"] == pytest.approx(expected.p_fixed)
    assert result["decision"]["baseline_boots"] == [list(loop_counts(b, "lru")) for b in _boots(tmp_path, "reintroduce-2012")]
    # Stock 6.1 has all three defences: the model says it cannot fail from LRU pins.
    assert loop_counts(patched, "lru")[0] == 0
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["verdict"] == result["verdict"]
    looks = list(read_jsonl(tmp_path / "decisions.jsonl"))
    assert looks and looks[-1]["verdict"] == result["verdict"]


def test_a_patch_that_changes_nothing_is_never_fixed(seed, tmp_path):
    plan = Plan(baseline="stock", patched="stock", loops_per_run=5, budget=5, alpha=0.001)
    result = run_ab(seed, plan, tmp_path)
    assert result["variants"]["baseline"]["loops"] == result["variants"]["patched"]["loops"] == 5
    assert result["verdict"] in ("inconclusive", "no-effect-shown", "baseline-does-not-reproduce")
