"""A developer's test file using the marker and the `cma` fixture, run by pytest as a user would run it
(real kernel, real guest, 3 loops): its --junitxml output carries the run's figures as properties."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.core.paths import cache_root

pytestmark = pytest.mark.integration
pytest_plugins = ["pytester"]
# pytester gives the inner pytest a HOME of its own: the kernels it should reuse are in this one's cache.
CACHE = cache_root()


def test_the_marker_sets_the_run_and_junit_carries_its_figures(pytester, monkeypatch):
    monkeypatch.setenv("CMA_HARNESS_CACHE", str(CACHE))
    pytester.makepyfile(test_dev="""
        import pytest

        @pytest.mark.cma(loops=3, variant="reintroduce-2012")
        def test_my_kernel(cma):
            summary, folder = cma()
            assert summary.loops_done == 3 and (folder / "loops.jsonl").is_file()
    """)
    result = pytester.runpytest_subprocess("--junitxml", "out.xml", "--cma-board", "qemu")
    result.assert_outcomes(passed=1)
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "out.xml").iter("property")}
    assert props["cma_loops"] == "3" and props["cma_state"] in ("pass", "reproduced")
    assert int(props["cma_failed_loops"]) >= int(props["cma_lru_caused_loops"]) >= 0
    assert Path(props["cma_run_folder"]).name.startswith("test_my_kernel-1") and Path(props["cma_run_folder"]).is_dir()
