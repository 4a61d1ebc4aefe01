"""pytest plugin (entry point pytest11): options and fixtures over the library, nothing more.

A kernel developer's own test, against a virtual ARM board:

    def test_my_patch_keeps_the_area_allocatable(cma_run):
        summary, folder = cma_run("my-patch", module={"loops": 50})
        assert summary.failed_loops == 0, folder

    pytest --cma-scenario my-scenario.yaml test_my_patch.py     # `my-patch` is a variant in that YAML
    pytest --cma-board images/boards/qemu-ssh.yaml test_my_patch.py   # the same test over SSH and serial

Or with the marker, whose loops and variant the `cma` fixture applies, and which records each run's loops,
failed loops, LRU-caused loops and folder as JUnit properties (`pytest --junitxml`):

    @pytest.mark.cma(loops=50, variant="my-patch")
    def test_my_patch(cma):
        summary, folder = cma()
        assert summary.failed_loops == 0, folder
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("cma-harness")
    group.addoption("--cma-scenario", default=None,
                    help="scenario YAML for the cma_scenario and cma_run fixtures (default: the embedded seed-2012)")
    group.addoption("--cma-board", default=None,
                    help="board file for cma_run (images/boards/*.yaml, or a shipped board's name; default: qemu)")
    group.addoption("--cma-variant", default=None,
                    help="the kernel variant the `cma` fixture runs when the test's marker names none")
    group.addoption("--cma-out", default=None,
                    help="keep cma_run's run folders under this folder (default: pytest's temporary folders)")


def pytest_configure(config):
    config.addinivalue_line("markers", "cma(loops=None, variant=None): what the `cma` fixture runs for this test "
                                       "(module.loops and the kernel variant)")


@pytest.fixture(scope="session")
def cma_scenario(request):
    """The validated scenario of --cma-scenario (or the embedded seed-2012)."""
    from harness.spec import config

    return config.load(request.config.getoption("--cma-scenario"))


@pytest.fixture(scope="session")
def cma_board(request):
    """The validated board file of --cma-board (or images/boards/qemu.yaml)."""
    from harness.spec import boards

    return boards.load(request.config.getoption("--cma-board"))


@pytest.fixture(scope="session")
def cma_run(cma_scenario, cma_board, request, tmp_path_factory):
    """cma_run(variant=None, name=None, board_file=None, **section_overrides) -> (RunSummary, run folder).

    One real boot of the scenario on a kernel variant (None: the scenario's own kernel), built or taken
    from the cache, on the board of --cma-board (or `board_file`, a loaded board file); overrides like
    module={"loops": 3}, workload={"profile": "journal"} or board={"hang_timeout_s": 20} (the scenario's
    board section), validated as a
    scenario file's would be. The run folder holds everything `cma-harness run` writes."""
    from harness.spec import config
    from harness.orchestrate.run import run_variant

    out = request.config.getoption("--cma-out")

    def _run(variant: str | None = None, name: str | None = None, board_file=None, **overrides):
        scn = cma_scenario
        for section, values in overrides.items():
            scn = config.with_overrides(scn, section, **values)
        label = name or variant or "kernel"
        if out:
            folder = Path(out) / label
            if folder.exists():
                raise config.InputError(f"--cma-out: {folder} exists already; give each cma_run a name of its own")
        else:
            folder = tmp_path_factory.mktemp(label)
        spec = scn.variant(variant) if variant else scn.kernel
        summary = run_variant(scn, variant or "kernel", spec, folder, progress=print, board=board_file or cma_board)
        return summary, folder

    return _run


@pytest.fixture
def cma(cma_run, request, record_property):
    """cma(variant=None, **section_overrides) -> (RunSummary, run folder): cma_run with the test's
    @pytest.mark.cma(loops=, variant=) (or --cma-variant) applied, one folder per test; each run's loops,
    failed loops, LRU-caused loops and folder are recorded as JUnit properties, so CI shows them per test."""
    from harness.store import counts
    from harness.store.run_folder import RunFolder

    marker = request.node.get_closest_marker("cma")
    wanted = dict(marker.kwargs) if marker else {}
    unknown = sorted(set(wanted) - {"loops", "variant"})
    if unknown:
        raise pytest.UsageError(f"@pytest.mark.cma: unknown argument {unknown[0]!r}; allowed: loops, variant")
    runs = 0

    def _run(variant: str | None = None, **overrides):
        nonlocal runs
        variant = variant or wanted.get("variant") or request.config.getoption("--cma-variant")
        if wanted.get("loops") is not None:
            overrides["module"] = {"loops": wanted["loops"], **overrides.get("module", {})}
        runs += 1
        summary, folder = cma_run(variant, name=f"{request.node.name}-{runs}", **overrides)
        records = RunFolder(folder).records()
        for key, value in (("loops", summary.loops_done), ("failed_loops", summary.failed_loops),
                           ("lru_caused_loops", counts.loop_counts(records, "lru")[0]), ("state", summary.state.value),
                           ("run_folder", str(folder))):
            record_property(f"cma_{key}" if runs == 1 else f"cma_{key}_{runs}", value)
        return summary, folder

    return _run
