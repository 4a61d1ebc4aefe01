"""`ab --patch/--tree/--baseline-ref/--patched-ref`: the two arms as variants of the scenario made in code,
their names, and the combinations refused before anything is built."""

from pathlib import Path

import pytest

from harness.core.errors import InputError
from harness.orchestrate import arms
from harness.spec import config
from tests.conftest import ROOT
from tests.unit import fake_kernel as fk

FIX3 = next((ROOT / "kernel-configs/patches/fixes").glob("0003-*.patch"))


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CMA_HARNESS_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def seed():
    return config.load(None)


def test_no_new_option_keeps_the_demo(seed):
    a = arms.resolve(seed, arms.Request())
    assert (a.baseline, a.patched) == ("reintroduce-2012", "stock")
    assert a.scenario.variant("stock") == seed.variant("stock") and a.patches == ()


def test_patch_makes_the_patched_arm_the_baseline_plus_the_patch(seed, tmp_path):
    a = arms.resolve(seed, arms.Request(baseline="reintroduce-2012", patches=(FIX3,)))
    assert (a.baseline, a.patched) == ("reintroduce-2012", "reintroduce-2012+patches")
    base, patched = a.scenario.variant(a.baseline), a.scenario.variant(a.patched)
    assert base == seed.variant("reintroduce-2012")
    [stored] = patched.extra_patches
    assert patched.patches == "reintroduce-2012" and Path(stored).read_text() == FIX3.read_text()
    assert a.patches[0].sha256 in stored and str(tmp_path / "cache" / "patches") in stored, "content-addressed copy"
    assert a.patches[0].subject.startswith("block/fops: migrate block-device folios")
    assert arms.patch_lines(a)[0].startswith(f"patch 1: {a.patches[0].sha256[:16]} block/fops")


def test_without_baseline_the_scenarios_own_kernel_is_the_baseline(seed):
    a = arms.resolve(seed, arms.Request(patches=(FIX3,)))
    assert (a.baseline, a.patched) == ("stock", "stock+patches"), "the seed's kernel is unpatched 6.1"


def test_tree_replaces_the_source_of_both_arms(seed, tmp_path):
    tree = fk.tree(tmp_path / "linux")
    a = arms.resolve(seed, arms.Request(tree=tree, patches=(FIX3,)))
    assert (a.baseline, a.patched) == ("linux", "linux+patches"), "the tree as it is, named after its folder"
    assert {a.scenario.variant(n).source for n in (a.baseline, a.patched)} == {str(tree.resolve())}
    b = arms.resolve(seed, arms.Request(tree=tree, baseline="reintroduce-2012", patches=(FIX3,)))
    assert (b.baseline, b.patched) == ("reintroduce-2012", "reintroduce-2012+patches")
    plain = arms.resolve(seed, arms.Request(tree=tree))
    assert plain.scenario.variant("reintroduce-2012").source == str(tree.resolve())


@fk.needs_git
def test_refs_make_one_arm_per_commit(seed, tmp_path):
    repo = fk.repository(tmp_path)
    head, base = (fk.git(repo, "rev-parse", r).strip() for r in ("HEAD", "base"))
    a = arms.resolve(seed, arms.Request(tree=repo, baseline_ref="base", patched_ref="HEAD"))
    assert (a.baseline, a.patched) == (f"base@{base[:12]}", f"HEAD@{head[:12]}")
    assert a.scenario.variant(a.baseline).source == f"git:{repo.resolve()}@{base}"
    assert a.scenario.variant(a.patched).source == f"git:{repo.resolve()}@{head}"
    assert arms.ref_name("HEAD~3", head) == f"HEAD-3@{head[:12]}" and arms.ref_name(head[:7], head) == head[:12]


@pytest.mark.parametrize("req, message", [
    (arms.Request(baseline_ref="a", patched_ref="b"), "pass the tree with --tree"),
    (arms.Request(tree=Path("/tmp"), baseline_ref="a"), "give both --baseline-ref and --patched-ref"),
    (arms.Request(patched="stock", patches=(FIX3,)), "drop --patched"),
    (arms.Request(baseline="reintroduce-2021", patches=(FIX3,)), "no kernel variant 'reintroduce-2021'"),
    (arms.Request(patches=(Path("/nonexistent.patch"),)), "no such file"),
])
def test_wrong_combinations_are_refused_by_name(seed, req, message):
    with pytest.raises(InputError, match=message):
        arms.resolve(seed, req)
