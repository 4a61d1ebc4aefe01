"""`cma-harness bisect`: the binary search over a series' prefixes (pure), the verdict -> outcome map, and the
search driven through a fake campaign function (the real one is the command itself)."""

import json
import math

import pytest
from hypothesis import given, strategies as st

from harness import cli, cli_patches
from harness.core.errors import InfraError, InputError
from harness.orchestrate import bisect
from harness.orchestrate.bisect import Outcome
from harness.spec import config, patch_files
from harness.store import names
from tests.conftest import ROOT

OLD, NEW, SKIP = Outcome.OLD, Outcome.NEW, Outcome.SKIP
FIXES = sorted((ROOT / "kernel-configs/patches/fixes").glob("*.patch"))


def search(n, truth):
    """Run the pure search against truth(k) -> Outcome; return (conclusion, prefixes measured in order)."""
    results, asked = {}, []
    while (s := bisect.step(n, results)).next is not None:
        assert s.next not in results, "a prefix is never measured twice"
        asked.append(s.next)
        results[s.next] = truth(s.next)
    return s, asked


@given(st.integers(1, 64).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))))
def test_a_monotone_series_finds_its_first_new_patch_in_a_binary_searchs_campaigns(case):
    n, first = case
    s, asked = search(n, lambda k: NEW if k >= first else OLD)
    assert s.first == first and asked[0] == n
    assert len(asked) <= 1 + math.ceil(math.log2(n)) if n > 1 else len(asked) == 1


def test_a_series_that_changes_nothing_or_cannot_be_judged_names_no_patch():
    s, asked = search(5, lambda k: OLD)
    assert s.first is None and asked == [5] and "does not change the verdict" in s.reason
    s, asked = search(5, lambda k: SKIP)
    assert s.first is None and asked == [5] and "no usable verdict" in s.reason


def test_skipped_prefixes_are_stepped_around_and_leave_candidates_when_they_must():
    s, asked = search(4, lambda k: {1: OLD, 2: SKIP, 3: NEW, 4: NEW}[k])
    assert asked == [4, 2, 1, 3] and s.first is None and s.candidates == (2, 3)
    s, _ = search(4, lambda k: {1: OLD, 2: OLD, 3: SKIP, 4: NEW}[k])
    assert s.candidates == (3, 4) and "one of 3, 4" in s.reason


def test_an_old_prefix_after_a_new_one_is_reported():
    s = bisect.step(4, {4: NEW, 1: NEW, 2: OLD})
    assert s.first == 1 and "not monotone" in s.reason


@pytest.mark.parametrize("verdict, fixed, regression", [
    ("fixed", NEW, OLD), ("regression", OLD, NEW), ("not-fixed", OLD, OLD), ("no-effect-shown", OLD, OLD),
    ("baseline-does-not-reproduce", SKIP, OLD), ("inconclusive", SKIP, SKIP), ("incomplete", SKIP, SKIP),
    ("infra", SKIP, SKIP),
])
def test_each_verdict_maps_to_an_outcome(verdict, fixed, regression):
    assert bisect.outcome(verdict, "fixed") is fixed
    assert bisect.outcome(verdict, "regression") is regression
    code = {NEW: 1, OLD: 0, SKIP: 125}
    assert cli_patches.git_bisect_exit(verdict, "fixed") == code[fixed]


def test_git_bisect_errors_skip_a_commit_on_infrastructure_and_abort_on_bad_input():
    assert cli_patches.git_bisect_error(InfraError("build failed")) == 125
    assert cli_patches.git_bisect_error(InputError("bad scenario")) == 128


class FakeCampaign:
    """run_ab's signature; the verdict per prefix length comes from a table, each call is recorded."""

    def __init__(self, verdicts, fail=()):
        self.verdicts, self.fail, self.calls = verdicts, fail, []

    def __call__(self, scn, plan, folder, *, progress, expect, **kw):
        k = int(plan.patched.rsplit("+", 1)[1].split("of")[0])
        self.calls.append((plan.baseline, plan.patched, folder.name, len(scn.variant(plan.patched).extra_patches)))
        if k in self.fail:
            raise InfraError("QEMU died")
        lru = lambda e: {"lru_caused_loops": {"events": e, "trials": 100}}
        return {"verdict": self.verdicts[k], "variants": {"baseline": lru(10), "patched": lru(0)},
                "decision": {"reason": "fake"}}


def _run(tmp_path, campaign, folder="b"):
    scn = config.load(None)
    patches = patch_files.read(FIXES)
    return bisect.run_bisect(scn, "reintroduce-2012", patches, FIXES,
                             {"loops_per_run": 10, "budget": 20, "alpha": 0.001, "infra_retries": 0},
                             tmp_path / folder, campaign, progress=lambda s: None)


def test_the_search_runs_one_campaign_per_step_and_writes_each_steps_verdict(tmp_path):
    fake = FakeCampaign({1: "regression", 2: "fixed", 3: "fixed"})     # order 1, 2, 3: the model's prediction
    summary = _run(tmp_path, fake)
    assert [c[1] for c in fake.calls] == ["reintroduce-2012+3of3", "reintroduce-2012+1of3", "reintroduce-2012+2of3"]
    assert [c[3] for c in fake.calls] == [3, 1, 2], "each step's kernel has the first k patches"
    assert summary["result"]["first"] == 2 and summary["result"]["patch"]["subject"].startswith("mm/swap")
    assert [(s["prefix"], s["verdict"], s["outcome"]) for s in summary["steps"]] == \
        [(3, "fixed", "new"), (1, "regression", "old"), (2, "fixed", "new")]
    saved = json.loads((tmp_path / "b" / names.SUMMARY).read_text())
    assert saved == json.loads(json.dumps(summary)) and saved["campaigns"] == 3
    assert summary["steps"][0]["folder"] == f"{names.STEPS}/01-reintroduce-2012+3of3"
    assert summary["steps"][0]["lru_caused_loops"] == {"baseline": [10, 100], "patched": [0, 100]}


def test_an_infrastructure_failure_is_a_skipped_step_and_another_plan_is_refused(tmp_path):
    summary = _run(tmp_path, FakeCampaign({1: "fixed", 2: "fixed", 3: "fixed"}, fail=(1,)))
    assert summary["steps"][1]["verdict"] == "infra" and summary["steps"][1]["error"] == "QEMU died"
    assert summary["result"]["candidates"] == [1, 2], "prefix 1 skipped, 2 new: either is the first"
    scn = config.load(None)
    with pytest.raises(InputError, match="holds a bisect with other patches"):
        bisect.run_bisect(scn, "reintroduce-2012", patch_files.read(FIXES[:2]), FIXES[:2], {"loops_per_run": 10,
                          "budget": 20, "alpha": 0.001, "infra_retries": 0}, tmp_path / "b", FakeCampaign({}))


def test_bisect_without_a_series_is_refused_before_anything_runs(capsys):
    assert cli.main(["bisect", "--baseline", "reintroduce-2012"]) == cli.EXIT_INPUT
    assert "bisect needs the series" in capsys.readouterr().err
