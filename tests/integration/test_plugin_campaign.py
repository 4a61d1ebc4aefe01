"""A developer's test file using the marker and both fixtures, run as they would run it: `pytest --cma-board
images/boards/qemu.yaml --cma-patch <fix> --junitxml out.xml`. Real kernels (reintroduce-2012 and
reintroduce-2012 plus kernel-configs/patches/fixes/0001, built once per machine), real guests, a short
campaign (boots of 10 loops, 40 loops per arm at most): any verdict will do, and the JUnit properties must
be the campaign folder's own counts."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.core.paths import cache_root
from harness.spec import patch_files

pytestmark = pytest.mark.integration
pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[2]
FIX = next((REPO / "kernel-configs" / "patches" / "fixes").glob("0001-*.patch"))
VERDICTS = ("fixed", "regression", "no-effect-shown", "inconclusive", "baseline-does-not-reproduce")
# pytester gives the inner pytest a HOME of its own: the kernels it should reuse are in this one's cache.
CACHE = cache_root()

USER_TESTS = """
    import pytest

    @pytest.mark.cma(loops=3, variant="reintroduce-2012")
    def test_my_kernel(cma):
        summary, folder = cma()             # reintroduce-2012 plus the --cma-patch fix
        assert summary.loops_done == 3, folder

    @pytest.mark.cma(variant="reintroduce-2012")
    def test_my_fix(cma_campaign):
        c = cma_campaign(loops_per_run=10, budget=40, alpha=0.05)    # reintroduce-2012 vs +patches
        assert c.verdict in {verdicts!r}, c.folder
        assert c.patched.variant == "reintroduce-2012+patches" and c.baseline.boots >= 1
"""


def _props(path: Path) -> dict[str, dict[str, str]]:
    return {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
            for case in ET.parse(path).iter("testcase")}


def test_a_user_s_marker_run_and_campaign_are_green_and_junit_carries_their_figures(pytester, monkeypatch):
    monkeypatch.setenv("CMA_HARNESS_CACHE", str(CACHE))
    for folder in ("images", "kernel-configs"):          # the paths as written in a checkout of the harness
        (pytester.path / folder).symlink_to(REPO / folder)
    pytester.makepyfile(test_dev=USER_TESTS.format(verdicts=VERDICTS))
    fix = f"kernel-configs/patches/fixes/{FIX.name}"
    result = pytester.runpytest_subprocess("test_dev.py", "--cma-board", "images/boards/qemu.yaml",
                                           "--junitxml", "out.xml", "--cma-patch", fix, timeout=1500)
    result.assert_outcomes(passed=2)
    props = _props(pytester.path / "out.xml")

    run = props["test_my_kernel"]
    assert run["cma_loops"] == "3" and run["cma_variant"] == "reintroduce-2012+patches"
    assert int(run["cma_failed_loops"]) >= int(run["cma_lru_caused_loops"]) >= 0
    kernel = json.loads((Path(run["cma_run_folder"]) / "kernel.json").read_text())
    [fix] = patch_files.read([FIX])
    assert [(p["subject"], p["sha256"]) for p in kernel["patches"] if p["from"] == "developer"] == \
           [(fix.subject, fix.sha256)], "the run's kernel is the baseline plus the --cma-patch file"

    camp = props["test_my_fix"]
    folder = Path(camp["cma_campaign_folder"])
    summary = json.loads((folder / "summary.json").read_text())
    assert camp["cma_campaign_verdict"] == summary["verdict"] and summary["verdict"] in VERDICTS
    runs = sorted(p.name for p in (folder / "runs").iterdir())
    for arm in ("baseline", "patched"):
        v = summary["variants"][arm]
        assert camp[f"cma_campaign_{arm}"] == v["variant"]
        assert camp[f"cma_campaign_{arm}_loops"] == str(v["loops"])
        assert camp[f"cma_campaign_{arm}_failed_loops"] == str(v["failed_loops"]["events"])
        assert camp[f"cma_campaign_{arm}_lru_caused_loops"] == str(v["lru_caused_loops"]["events"])
        assert camp[f"cma_campaign_{arm}_boots"] == str(sum(r.split("-", 1)[1] == v["variant"] for r in runs))
    assert camp["cma_campaign_patched"] == "reintroduce-2012+patches" and 10 <= summary["variants"]["baseline"]["loops"] <= 40
