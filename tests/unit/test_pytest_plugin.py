"""The pytest plugin, as a developer's test suite sees it: pytester runs each test file in a pytest of its
own (a subprocess, so the harness modules are imported afresh there). Boots are faked (FAKE_BOOTS below):
these tests check the options, the fixtures' wiring and the JUnit properties, not a kernel."""

import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import pytest_plugin
from harness.judging.sequential import Verdict
from harness.orchestrate.run import RunState

pytest_plugins = ["pytester"]
FIXES = Path(__file__).resolve().parents[2] / "kernel-configs" / "patches" / "fixes"
FIX1, FIX2 = sorted(str(p) for p in FIXES.glob("000[12]-*.patch"))
USAGE = pytest.ExitCode.USAGE_ERROR

# A conftest for the inner pytest: every boot writes `loops` records without QEMU (reintroduce-2012 fails
# one loop in three from the LRU, every other kernel none), and the patch preflight (which reads the
# kernel tarball) only notes which kernels it was asked about.
FAKE_BOOTS = """
import json
from types import SimpleNamespace

import pytest
from harness.build import preflight
from harness.orchestrate import campaign, run
from harness.orchestrate.run import RunState, RunSummary
from harness.store.jsonl import JsonlWriter

BOOTED, CHECKED = [], []

def fake_run_variant(scn, variant, spec, folder, *, loops=None, progress=print, **_):
    loops = loops or scn.module.loops
    folder.mkdir(parents=True, exist_ok=True)
    BOOTED.append((variant, spec.extra_patches, loops))
    s = RunSummary(RunState.PASS, variant, loops, loops_done=loops)
    with JsonlWriter(folder / "loops.jsonl") as out:
        for i in range(loops):
            failed = variant == "reintroduce-2012" and i % 3 == 0
            out.write({"variant": variant, "loop": i, "failed": int(failed), "outcome": "L." if failed else ".."})
            s.failed_loops += failed
    if s.failed_loops:
        s.state = RunState.REPRODUCED
    (folder / "summary.json").write_text(json.dumps(s.as_dict()))
    return s

@pytest.fixture(autouse=True)
def fake_boots(monkeypatch):
    BOOTED.clear(), CHECKED.clear()
    monkeypatch.setattr(run, "run_variant", fake_run_variant)
    monkeypatch.setattr(campaign, "run_variant", fake_run_variant)
    monkeypatch.setattr(preflight, "check", lambda specs, progress=None: CHECKED.extend(specs))
    return SimpleNamespace(booted=BOOTED, checked=CHECKED)
"""


def _props(path: Path) -> dict[str, dict[str, str]]:
    """Each test case's JUnit properties, by test name."""
    return {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
            for case in ET.parse(path).iter("testcase")}


def test_cma_scenario_loads_the_given_yaml_and_cma_run_is_offered(pytester):
    pytester.makefile(".yaml", mine="module: {loops: 7}\nvariants: {stock: {}}\n")
    pytester.makepyfile(test_mine="""
        def test_it(cma_scenario, cma_run):
            assert cma_scenario.module.loops == 7 and callable(cma_run)
    """)
    pytester.runpytest_subprocess("--cma-scenario", "mine.yaml").assert_outcomes(passed=1)


def test_cma_run_refuses_to_reuse_a_kept_folder(pytester):
    pytester.mkdir("keep")
    pytester.mkdir("keep/first")
    pytester.makepyfile(test_keep="""
        import pytest
        from harness.spec.config import InputError

        def test_it(cma_run):
            with pytest.raises(InputError, match="exists already"):
                cma_run("stock", "first")
    """)
    pytester.runpytest_subprocess("--cma-out", "keep").assert_outcomes(passed=1)


def test_cma_board_loads_the_given_board_file(pytester):
    pytester.makepyfile(test_board="""
        def test_it(cma_board):
            assert cma_board.kind == "qemu-ssh" and cma_board.ssh.host == "127.0.0.1"
    """)
    pytester.runpytest_subprocess("--cma-board", "qemu-ssh").assert_outcomes(passed=1)


@pytest.mark.parametrize("args, said", [
    (["--cma-scenario", "bad.yaml"], "--cma-scenario bad.yaml: *loopz*"),
    (["--cma-board", "beaglebone-black"], "--cma-board beaglebone-black: *is a template: fill in*ssh.host*"),
    (["--cma-variant", "nope"], "--cma-variant nope: *no kernel variant 'nope'; known variants: reintroduce-2012*"),
    (["--cma-patch", "nope.patch"], "--cma-patch nope.patch: no such file*"),
    (["--cma-patch", FIX1, "test_it.py"], ("--cma-patch test_it.py: a test path, not a patch; *put the test paths "
                                           "before --cma-patch, or write --cma-patch=FILE")),
    (["--cma-patch=bad.patch"], "--cma-patch: *bad.patch holds no patch*"),
    (["--cma-variant", "stock+patches"], "--cma-variant stock+patches: *no kernel variant*"),   # no --cma-patch
], ids=["scenario", "board", "variant", "missing-patch", "test-path-as-patch", "not-a-patch",
        "patched-variant-without-patches"])
def test_a_wrong_option_is_a_usage_error_that_names_it(pytester, args, said):
    pytester.makefile(".yaml", bad="module: {loopz: 7}\n")
    pytester.makefile(".patch", bad="hello\n")
    pytester.makepyfile(test_it="def test_it():\n    pass\n")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == USAGE, result.stdout.str()
    result.stderr.fnmatch_lines([f"ERROR: {said}"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


@pytest.mark.parametrize("marker, said", [
    ("loopz=3", "*on test_marker.py::test_it: unknown argument 'loopz'; allowed: loops, variant"),
    ("3", "*on test_marker.py::test_it: takes keyword arguments only; allowed: loops, variant"),
    ("variant='nope'", "@pytest.mark.cma(variant='nope') on test_marker.py::test_it: *no kernel variant 'nope'*"),
])
def test_a_wrong_cma_marker_is_a_usage_error_before_any_boot(pytester, marker, said):
    pytester.makepyfile(test_marker=f"""
        import pytest

        @pytest.mark.cma({marker})
        def test_it(cma):
            pass
    """)
    result = pytester.runpytest_subprocess()
    assert result.ret == USAGE
    result.stderr.fnmatch_lines([f"ERROR: {said}"])


def test_cma_patch_adds_a_patched_variant_of_each_variant_with_the_files_in_order(pytester):
    pytester.makepyfile(test_it=f"""
        from pathlib import Path

        def test_it(cma_scenario):
            spec = cma_scenario.variant("reintroduce-2012+patches")
            assert spec.patches == "reintroduce-2012"
            assert [Path(p).name for p in spec.extra_patches] == [{Path(FIX1).name!r}, {Path(FIX2).name!r}]
            assert cma_scenario.variant("reintroduce-2012").extra_patches == ()
            assert "stock+patches" in cma_scenario.variants
    """)
    # --cma-patch=FILE once per file, then the test path; or the files after one --cma-patch.
    pytester.runpytest_subprocess(f"--cma-patch={FIX1}", f"--cma-patch={FIX2}", "test_it.py").assert_outcomes(passed=1)
    pytester.runpytest_subprocess("test_it.py", "--cma-patch", FIX1, FIX2).assert_outcomes(passed=1)


def test_the_marker_and_cma_patch_pick_the_kernel_and_junit_carries_each_run(pytester):
    pytester.makeconftest(FAKE_BOOTS)
    pytester.makepyfile(test_dev="""
        import pytest

        @pytest.mark.cma(loops=6, variant="reintroduce-2012")
        def test_runs(cma, fake_boots):
            first, folder = cma()
            second, _ = cma(module={"loops": 2})
            assert [b[0] for b in fake_boots.booted] == ["reintroduce-2012+patches"] * 2
            assert [b[2] for b in fake_boots.booted] == [6, 2], "a call's own override wins over the marker"
            assert len(fake_boots.checked) == 1, "the patch is tried on its source once, before the first boot"
    """)
    result = pytester.runpytest_subprocess("--junitxml", "out.xml", "--cma-patch", FIX1)
    result.assert_outcomes(passed=1)
    props = _props(pytester.path / "out.xml")["test_runs"]
    assert props["cma_variant"] == props["cma_variant_2"] == "reintroduce-2012+patches"
    assert props["cma_loops"] == "6" and props["cma_failed_loops"] == props["cma_lru_caused_loops"] == "0"
    assert props["cma_state"] == "pass" and Path(props["cma_run_folder"]).name.startswith("test_runs-1")


def test_cma_campaign_runs_baseline_against_baseline_plus_cma_patch_and_junit_carries_it(pytester):
    pytester.makeconftest(FAKE_BOOTS)
    pytester.makepyfile(test_dev="""
        import json
        import pytest

        @pytest.mark.cma(variant="reintroduce-2012")
        def test_campaign(cma_campaign, fake_boots):
            c = cma_campaign(budget=40, loops_per_run=10, alpha=0.05)
            assert (c.baseline.variant, c.patched.variant) == ("reintroduce-2012", "reintroduce-2012+patches")
            assert c.verdict == "fixed" and c.baseline.lru_caused_loops == c.baseline.failed_loops > 0
            assert c.summary == json.loads((c.folder / "summary.json").read_text())
            assert c.folder.parent.name == "kept"

        def test_explicit_arms(cma_campaign, fake_boots):
            c = cma_campaign("stock", "reintroduce-2012", budget=20, loops_per_run=10, alpha=0.05)
            assert (c.baseline.variant, c.patched.variant, c.baseline.boots, c.patched.boots) == \\
                   ("stock", "reintroduce-2012", 2, 2)
            assert all(not extra for _, extra, _ in fake_boots.booted), "patched= is a variant: no --cma-patch"

        def test_expected_verdict(cma_campaign):
            cma_campaign("stock", "stock", budget=20, loops_per_run=10, expect="fixed")
    """)
    result = pytester.runpytest_subprocess("--junitxml", "out.xml", "--cma-out", "kept", "--cma-patch", FIX1)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*cma_campaign: verdict * expected fixed (*); *kept/test_expected_verdict-campaign"])
    props = _props(pytester.path / "out.xml")["test_campaign"]
    assert props["cma_campaign_verdict"] == "fixed" and float(props["cma_campaign_p_fixed"]) < 0.05
    assert (props["cma_campaign_baseline"], props["cma_campaign_patched"]) == ("reintroduce-2012", "reintroduce-2012+patches")
    assert props["cma_campaign_baseline_loops"] == props["cma_campaign_patched_loops"]
    assert props["cma_campaign_patched_lru_caused_loops"] == "0" and int(props["cma_campaign_baseline_lru_caused_loops"]) > 0
    assert props["cma_campaign_folder"] == str(pytester.path / "kept" / "test_campaign-campaign")


@pytest.mark.parametrize("call, said", [
    ('"stock", "reintroduce-2012", ["x.patch"]', "cma_campaign: give patched= (a variant) or patches=*not both"),
    ('patches=["nope.patch"]', "cma_campaign(patches=...): nope.patch: no such file"),
    ('"nope"', "cma_campaign: scenario 'seed-2012' has no kernel variant 'nope'*"),
    ('expect="fix"', "cma_campaign(expect='fix'): not a verdict; one of fixed, regression, *"),
    ('budget=5, loops_per_run=10', "cma_campaign: --loops-per-run must be between 1 and --budget (5)*"),
])
def test_a_wrong_cma_campaign_call_fails_the_test_without_a_traceback(pytester, call, said):
    pytester.makeconftest(FAKE_BOOTS)
    pytester.makepyfile(test_it=f"def test_it(cma_campaign):\n    cma_campaign({call})\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{said}"])
    assert "Traceback" not in result.stdout.str() and "def test_it" not in result.stdout.str()


def test_run_properties_name_each_run_s_figures_and_number_a_test_s_later_runs():
    summary = SimpleNamespace(loops_done=10, failed_loops=4, state=RunState.REPRODUCED, variant="reintroduce-2012")
    assert pytest_plugin.run_properties(summary, 3, Path("/r/x-1")) == [
        ("cma_loops", 10), ("cma_failed_loops", 4), ("cma_lru_caused_loops", 3), ("cma_state", "reproduced"),
        ("cma_variant", "reintroduce-2012"), ("cma_run_folder", "/r/x-1")]
    assert [k for k, _ in pytest_plugin.run_properties(summary, 3, Path("/r/x-2"), 2)][:2] == ["cma_loops_2",
                                                                                           "cma_failed_loops_2"]


def _summary(verdict="fixed", decision=True) -> dict:
    def arm(variant, loops, failed, lru):
        return {"variant": variant, "loops": loops, "failed_loops": {"events": failed, "trials": loops},
                "lru_caused_loops": {"events": lru, "trials": loops}}

    return {"verdict": verdict, "decision": {"reason": "p = 0.001", "p_fixed": 0.001, "p_regression": 0.9}
            if decision else None,
            "variants": {"baseline": arm("reintroduce-2012", 20, 7, 6), "patched": arm("stock#B", 20, 1, 0)},
            "runs": [{"run": "000-reintroduce-2012"}, {"run": "001-stock#B"}, {"run": "002-reintroduce-2012"}]}


def test_campaign_properties_carry_the_verdict_each_arm_s_counts_and_the_folder():
    c = pytest_plugin.Campaign.of(_summary(), Path("/c"))
    assert (c.baseline.boots, c.patched.boots, c.patched.variant) == (2, 1, "stock#B")
    assert dict(pytest_plugin.campaign_properties(c)) == {
        "cma_campaign_verdict": "fixed", "cma_campaign_p_fixed": 0.001, "cma_campaign_p_regression": 0.9,
        "cma_campaign_baseline": "reintroduce-2012", "cma_campaign_baseline_boots": 2,
        "cma_campaign_baseline_loops": 20, "cma_campaign_baseline_failed_loops": 7,
        "cma_campaign_baseline_lru_caused_loops": 6, "cma_campaign_patched": "stock#B",
        "cma_campaign_patched_boots": 1, "cma_campaign_patched_loops": 20, "cma_campaign_patched_failed_loops": 1,
        "cma_campaign_patched_lru_caused_loops": 0, "cma_campaign_folder": "/c"}
    undecided = pytest_plugin.Campaign.of(_summary("incomplete", decision=False), Path("/c"))
    names = [k for k, _ in pytest_plugin.campaign_properties(undecided, 2)]
    assert "cma_campaign_p_fixed_2" not in names and names[0] == "cma_campaign_verdict_2", "no p-value: none recorded"


def test_the_plugin_s_verdict_list_is_the_judge_s():
    assert pytest_plugin.VERDICTS == tuple(v.value for v in Verdict)
