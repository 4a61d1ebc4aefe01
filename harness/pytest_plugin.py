"""pytest plugin (entry point pytest11): options and fixtures over the library, nothing more.

A kernel developer's own test, against a virtual ARM board:

    def test_my_patch_keeps_the_area_allocatable(cma_run):
        summary, folder = cma_run("my-patch", module={"loops": 50})
        assert summary.failed_loops == 0, folder

    pytest --cma-scenario my-scenario.yaml test_my_patch.py     # `my-patch` is a variant in that YAML
    pytest --cma-board images/boards/qemu-ssh.yaml test_my_patch.py   # the same test over SSH and serial
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
    group.addoption("--cma-out", default=None,
                    help="keep cma_run's run folders under this folder (default: pytest's temporary folders)")


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
