"""A short A/B campaign end to end (real kernels, real guests): record counts and the verdict logic on
what was measured. Short loop counts: the demo's real campaign is benchmarks/ab_demo.py."""

import json
import os
from pathlib import Path

import pytest

from harness.core import host_cpus
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


def test_both_arms_at_once_each_guest_on_its_own_host_cores(seed, tmp_path):
    """Two real guests at once, each pinned (core/host_cpus: QEMU started under taskset): the running QEMUs'
    masks are read from /proc while they run, the harness itself stays on every core, records are kept A, B."""
    cores = host_cpus.available()
    a, b = host_cpus.split_for_pair(cores, seed.board.cpus)
    plan = Plan(baseline="reintroduce-2012", patched="stock", loops_per_run=3, budget=3, alpha=0.001,
                parallel_arms=True)
    seen: dict[str, set[int]] = {}
    harness_masks = set()

    def progress(line: str) -> None:        # "[variant] booting": its QEMU is running by the next line
        harness_masks.add(frozenset(os.sched_getaffinity(0)))      # the arm's own thread, as it reports
        for pid in _qemu_pids():
            try:
                cmd, mask = _cmdline(pid), os.sched_getaffinity(pid)
            except OSError:
                continue                    # ended meanwhile
            if " -kernel " in cmd:          # a guest, not the DTB dump
                seen.setdefault(cmd, set()).update(mask)

    result = run_ab(seed, plan, tmp_path, progress=progress)
    assert [r["variant"] for r in result["runs"]] == ["reintroduce-2012", "stock"]
    masks = {("reintroduce-2012" if "reintroduce" in cmd else "stock"): m for cmd, m in seen.items()}
    assert masks == {"reintroduce-2012": set(a), "stock": set(b)}, seen
    recorded = {p.name.split("-", 1)[1]: (p / "qemu-cmdline.txt").read_text() for p in (tmp_path / "runs").iterdir()}
    assert recorded["reintroduce-2012"].startswith(f"taskset -c {','.join(map(str, a))} ")
    assert recorded["stock"].startswith(f"taskset -c {','.join(map(str, b))} ")
    assert harness_masks == {frozenset(cores)}, "the harness is never pinned (a build in a pair keeps every core)"


def _qemu_pids() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == "qemu-system-arm":
                pids.append(int(proc.name))
        except OSError:
            pass                        # gone meanwhile
    return pids


def _cmdline(pid: int) -> str:
    return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
