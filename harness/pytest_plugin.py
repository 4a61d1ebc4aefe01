"""pytest plugin (entry point pytest11): options and fixtures over the library, nothing more.

A kernel developer's own test, against a virtual ARM board:

    def test_my_patch_keeps_the_area_allocatable(cma_run):
        summary, folder = cma_run("my-patch", module={"loops": 50})
        assert summary.failed_loops == 0, folder

    pytest --cma-scenario my-scenario.yaml test_my_patch.py     # `my-patch` is a variant in that YAML
    pytest --cma-board images/boards/qemu-ssh.yaml test_my_patch.py   # the same test over SSH and serial

Or with the marker, whose loops and variant the `cma` fixture applies, and the `cma_campaign` fixture, an
A/B campaign that returns the verdict; both record their figures as JUnit properties (`pytest --junitxml`):

    @pytest.mark.cma(loops=50, variant="reintroduce-2012")
    def test_my_patch(cma):
        summary, folder = cma()                 # reintroduce-2012 plus the --cma-patch files, if any
        assert summary.failed_loops == 0, folder

    @pytest.mark.cma(variant="reintroduce-2012")
    def test_my_patch_fixes_it(cma_campaign):
        assert cma_campaign(budget=200).verdict == "fixed"     # reintroduce-2012 vs reintroduce-2012+patches

    pytest --cma-board images/boards/qemu.yaml test_my_patch.py --cma-patch 0001-my-fix.patch

Every option is checked when pytest starts: a wrong one is a usage error that names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MARKER_ARGS = ("loops", "variant")
# judging.sequential.Verdict's values (not imported here: the plugin loads in every pytest run, scipy not).
VERDICTS = ("fixed", "regression", "no-effect-shown", "inconclusive", "baseline-does-not-reproduce")


def pytest_addoption(parser):
    group = parser.getgroup("cma-harness")
    group.addoption("--cma-scenario", default=None,
                    help="scenario YAML for the cma_scenario and cma_run fixtures (default: the embedded seed-2012)")
    group.addoption("--cma-board", default=None,
                    help="board file for cma_run (images/boards/*.yaml, or a shipped board's name; default: qemu)")
    group.addoption("--cma-variant", default=None,
                    help="the kernel variant the `cma` fixture runs, and cma_campaign's baseline, when the test's "
                         "marker names none")
    group.addoption("--cma-patch", nargs="+", action="extend", default=[], metavar="FILE",
                    help="patch files (git format-patch output, an mbox, a diff) applied in order on the variant: the "
                         "`cma` fixture runs the patched kernel, and cma_campaign's patched arm is the baseline plus "
                         "these. Takes every file after it: put test paths before it, or write --cma-patch=FILE")
    group.addoption("--cma-out", default=None,
                    help="keep the run and campaign folders under this folder (default: pytest's temporary folders); "
                         "a campaign folder already there is resumed")


@dataclass
class Session:
    """The checked options of one pytest session; the scenario and board are loaded on first use."""
    scenario_path: str | None = None
    board_path: str | None = None
    variant: str | None = None
    patches: tuple[Path, ...] = ()
    _scenario: object = None
    _board: object = None
    patched_of: dict = field(default_factory=dict)     # base variant (None: the scenario's kernel) -> +patches
    checked: set = field(default_factory=set)          # kernel specs whose patches were tried on their source

    def scenario(self):
        """The scenario, with `<variant>+patches` for each variant (and its kernel) when --cma-patch is given."""
        if self._scenario is None:
            from harness.orchestrate import arms
            from harness.spec import config

            scn = config.load(self.scenario_path)
            for base in ([None, *scn.variants] if self.patches else []):
                made = arms.resolve(scn, arms.Request(baseline=base, patches=self.patches))
                scn, self.patched_of[base] = made.scenario, made.patched
            self._scenario = scn
        return self._scenario

    def board(self):
        if self._board is None:
            from harness.spec import boards

            self._board = boards.load(self.board_path)
        return self._board

    def kernel_of(self, variant: str | None) -> str | None:
        """The variant the `cma` fixture runs: `variant`, or with --cma-patch that variant plus the patches."""
        if not self.patches:
            return variant
        self.scenario()
        if variant in self.patched_of.values():       # a marker that names the patched variant itself
            return variant
        return self.patched_of.get(variant) or f"{variant}+patches"


SESSION = pytest.StashKey[Session]()


def check_options(scenario: str | None, board: str | None, variant: str | None, patches, base: Path) -> Session:
    """The session of these option values; every wrong one is a pytest.UsageError that names its option."""
    from harness.core.errors import InputError
    from harness.spec import patch_files

    files = []
    for given in patches:
        path = base / given
        if path.suffix == ".py" or path.is_dir() or "::" in str(given):
            raise pytest.UsageError(f"--cma-patch {given}: a test path, not a patch; --cma-patch takes every file "
                                    f"after it: put the test paths before --cma-patch, or write --cma-patch=FILE")
        if not path.is_file():
            raise pytest.UsageError(f"--cma-patch {given}: no such file; pass a file written by `git format-patch`, "
                                    f"an mbox or a diff")
        files.append(path.resolve())
    s = Session(scenario, board, variant, tuple(files))
    checks = [("--cma-patch", lambda: patch_files.read(s.patches)),
              ("--cma-scenario", s.scenario if (scenario or variant or files) else None),
              ("--cma-variant", (lambda: s.scenario().variant(variant)) if variant else None),
              ("--cma-board", s.board if board else None)]
    given = {"--cma-scenario": scenario or "(the embedded seed)", "--cma-board": board, "--cma-variant": variant}
    for option, check in checks:
        try:
            check and check()
        except InputError as e:
            said = str(e)
            if option == "--cma-patch":     # patch_files names the CLI's option: --patch FILE: ..., --patch: ...
                raise pytest.UsageError("--cma-patch" + said.removeprefix("--patch")) from None
            raise pytest.UsageError(f"{option} {given[option]}: {said}") from None
    return s


def pytest_configure(config):
    config.addinivalue_line("markers", "cma(loops=None, variant=None): what the `cma` fixture runs for this test "
                                       "(module.loops and the kernel variant); the variant is cma_campaign's baseline")
    opt = config.getoption
    config.stash[SESSION] = check_options(opt("--cma-scenario"), opt("--cma-board"), opt("--cma-variant"),
                                          opt("--cma-patch") or [], config.invocation_params.dir)


def pytest_collection_modifyitems(config, items):
    """A wrong @pytest.mark.cma is a usage error before anything runs, not a failure after a boot."""
    from harness.core.errors import InputError

    for item in items:
        marker = item.get_closest_marker("cma")
        if marker is None:
            continue
        unknown = sorted(set(marker.kwargs) - set(MARKER_ARGS))
        if unknown or marker.args:
            what = f"unknown argument {unknown[0]!r}" if unknown else "takes keyword arguments only"
            raise pytest.UsageError(f"@pytest.mark.cma on {item.nodeid}: {what}; allowed: {', '.join(MARKER_ARGS)}")
        variant = marker.kwargs.get("variant")
        if variant:
            try:
                config.stash[SESSION].scenario().variant(variant)
            except InputError as e:
                raise pytest.UsageError(f"@pytest.mark.cma(variant={variant!r}) on {item.nodeid}: {e}") from None


@dataclass(frozen=True)
class Arm:
    """One arm's totals in a campaign."""
    variant: str
    boots: int
    loops: int
    failed_loops: int
    lru_caused_loops: int


@dataclass(frozen=True)
class Campaign:
    """What cma_campaign returns: the verdict, each arm's totals, the campaign folder and its summary."""
    verdict: str
    reason: str
    p_fixed: float | None
    p_regression: float | None
    baseline: Arm
    patched: Arm
    folder: Path
    summary: dict

    @classmethod
    def of(cls, summary: dict, folder: Path) -> Campaign:
        """From run_ab's summary (summary.json)."""
        from harness.store.campaign_folder import arm_key_of

        def arm(which: str) -> Arm:
            v = summary["variants"][which]
            boots = sum(1 for r in summary.get("runs", []) if arm_key_of(r["run"]) == v["variant"])
            return Arm(v["variant"], boots, v["loops"], v["failed_loops"]["events"], v["lru_caused_loops"]["events"])

        d = summary.get("decision") or {}
        return cls(summary["verdict"], d.get("reason", ""), d.get("p_fixed"), d.get("p_regression"),
                   arm("baseline"), arm("patched"), Path(folder), summary)


def _named(prefix: str, items, n: int) -> list[tuple[str, object]]:
    """JUnit property names: cma_<key> for a test's first run, cma_<key>_<n> for its n-th."""
    return [(f"{prefix}_{k}" if n == 1 else f"{prefix}_{k}_{n}", v) for k, v in items if v is not None]


def run_properties(summary, lru_caused: int, folder: Path, n: int = 1) -> list[tuple[str, object]]:
    """One run's JUnit properties: its loops, failed loops, LRU-caused loops, state, variant and folder."""
    return _named("cma", [("loops", summary.loops_done), ("failed_loops", summary.failed_loops),
                          ("lru_caused_loops", lru_caused), ("state", summary.state.value),
                          ("variant", summary.variant), ("run_folder", str(folder))], n)


def campaign_properties(c: Campaign, n: int = 1) -> list[tuple[str, object]]:
    """A campaign's JUnit properties: the verdict, p-values, each arm's variant and counts, and the folder."""
    items = [("verdict", c.verdict), ("p_fixed", c.p_fixed), ("p_regression", c.p_regression)]
    for name in ("baseline", "patched"):
        a = getattr(c, name)
        items += [(name, a.variant), (f"{name}_boots", a.boots), (f"{name}_loops", a.loops),
                  (f"{name}_failed_loops", a.failed_loops), (f"{name}_lru_caused_loops", a.lru_caused_loops)]
    return _named("cma_campaign", items + [("folder", str(c.folder))], n)


def _out(config) -> Path | None:
    """--cma-out as an absolute folder (relative to where pytest was started), or None."""
    out = config.getoption("--cma-out")
    return config.invocation_params.dir / out if out else None


def _folder_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-") or "test"


@pytest.fixture(scope="session")
def cma_scenario(request):
    """The validated scenario of --cma-scenario (or the embedded seed-2012), with a `<variant>+patches`
    beside every variant when --cma-patch is given."""
    return request.config.stash[SESSION].scenario()


@pytest.fixture(scope="session")
def cma_board(request):
    """The validated board file of --cma-board (or images/boards/qemu.yaml)."""
    return request.config.stash[SESSION].board()


@pytest.fixture(scope="session")
def cma_run(cma_scenario, cma_board, request, tmp_path_factory):
    """cma_run(variant=None, name=None, board_file=None, **section_overrides) -> (RunSummary, run folder).

    One real boot of the scenario on a kernel variant (None: the scenario's own kernel), built or taken
    from the cache, on the board of --cma-board (or `board_file`, a loaded board file); overrides like
    module={"loops": 3}, workload={"profile": "journal"} or board={"hang_timeout_s": 20} (the scenario's
    board section), validated as a
    scenario file's would be. The run folder holds everything `cma-harness run` writes."""
    from harness.orchestrate import run
    from harness.spec import config

    out = _out(request.config)

    def _run(variant: str | None = None, name: str | None = None, board_file=None, **overrides):
        scn = cma_scenario
        for section, values in overrides.items():
            scn = config.with_overrides(scn, section, **values)
        label = _folder_name(name or variant or "kernel")
        if out:
            folder = out / label
            if folder.exists():
                raise config.InputError(f"--cma-out: {folder} exists already; give each cma_run a name of its own")
        else:
            folder = tmp_path_factory.mktemp(label)
        spec = scn.variant(variant) if variant else scn.kernel
        summary = run.run_variant(scn, variant or "kernel", spec, folder, progress=print,
                                  board=board_file or cma_board)
        return summary, folder

    return _run


def _preflight(session: Session, scn, variants, who: str) -> None:
    """Each variant's patches tried on its source's files once per session; one that does not apply fails
    the test, with the file, hunk and tree named, before anything is built."""
    from harness.build import preflight
    from harness.core.errors import InputError

    todo = [spec for spec in dict.fromkeys(scn.variant(v) for v in variants if v) if spec not in session.checked]
    try:
        preflight.check(todo, print)
    except InputError as e:
        pytest.fail(f"{who}: {e}", pytrace=False)
    session.checked.update(todo)


def _marker_variant(request) -> str | None:
    marker = request.node.get_closest_marker("cma")
    return marker.kwargs.get("variant") if marker else None


@pytest.fixture
def cma(cma_run, cma_scenario, request, record_property):
    """cma(variant=None, **section_overrides) -> (RunSummary, run folder): cma_run with the test's
    @pytest.mark.cma(loops=, variant=) (or --cma-variant) applied, and with --cma-patch that variant plus the
    patches; one folder per test. Each run's loops, failed loops, LRU-caused loops, state, variant and folder
    are recorded as JUnit properties (cma_loops, ..., cma_run_folder; cma_loops_2 for a second run)."""
    from harness.store import counts
    from harness.store.run_folder import RunFolder

    session = request.config.stash[SESSION]
    marker = request.node.get_closest_marker("cma")
    wanted = dict(marker.kwargs) if marker else {}
    runs = 0

    def _run(variant: str | None = None, **overrides):
        nonlocal runs
        variant = session.kernel_of(variant or wanted.get("variant") or session.variant)
        if wanted.get("loops") is not None:
            overrides["module"] = {"loops": wanted["loops"], **overrides.get("module", {})}
        if session.patches:
            _preflight(session, cma_scenario, [variant], "cma")
        runs += 1
        summary, folder = cma_run(variant, name=f"{request.node.name}-{runs}", **overrides)
        lru = counts.loop_counts(RunFolder(folder).records(), "lru")[0]
        for key, value in run_properties(summary, lru, folder, runs):
            record_property(key, value)
        return summary, folder

    return _run


@pytest.fixture
def cma_campaign(cma_scenario, cma_board, request, record_property, tmp_path_factory):
    """cma_campaign(baseline=None, patched=None, patches=None, *, budget=None, loops_per_run=None, alpha=None,
    expect=None) -> Campaign: a real sequential A/B campaign (what `cma-harness ab` runs) into a folder of
    this test's under --cma-out (resumed if there) or pytest's temporary folders.

    The baseline is `baseline`, else the marker's variant, else --cma-variant, else what `ab` takes (the
    scenario's kernel when there are patches, reintroduce-2012 when not). The patched arm is `patched` (a
    variant), or the baseline plus `patches` (files), or, with neither, the baseline plus the --cma-patch
    files, else stock. budget, loops_per_run and alpha default to `ab`'s. The
    verdict, p-values, each arm's variant, boots, loops, failed and LRU-caused loops and the folder are JUnit
    properties (cma_campaign_verdict, ..., cma_campaign_folder). With `expect` ("fixed", "regression", ...),
    another verdict fails the test, naming the verdict, its reason and the folder."""
    from harness.core.errors import InputError
    from harness.orchestrate import arms, campaign

    session = request.config.stash[SESSION]
    out = _out(request.config)
    calls = 0

    def _campaign(baseline: str | None = None, patched: str | None = None, patches=None, *,
                  budget: int | None = None, loops_per_run: int | None = None, alpha: float | None = None,
                  expect: str | None = None) -> Campaign:
        nonlocal calls
        if patched and patches:
            pytest.fail("cma_campaign: give patched= (a variant) or patches= (files on the baseline), not both",
                        pytrace=False)
        files = session.patches if patches is None and not patched else tuple(Path(p) for p in patches or ())
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            pytest.fail(f"cma_campaign(patches=...): {missing[0]}: no such file", pytrace=False)
        if expect and expect not in VERDICTS:
            pytest.fail(f"cma_campaign(expect={expect!r}): not a verdict; one of {', '.join(VERDICTS)}", pytrace=False)
        calls += 1
        label = _folder_name(f"{request.node.name}-campaign" + (f"-{calls}" if calls > 1 else ""))
        plan_args = {k: v for k, v in (("budget", budget), ("loops_per_run", loops_per_run), ("alpha", alpha))
                     if v is not None}
        try:
            made = arms.resolve(cma_scenario, arms.Request(baseline=baseline or _marker_variant(request) or session.variant,
                                                           patched=patched, patches=files))
            plan = campaign.Plan(made.baseline, made.patched, **plan_args)
            plan.validate()
            _preflight(session, made.scenario, [made.baseline, made.patched], "cma_campaign")
            folder = out / label if out else tmp_path_factory.mktemp(label)
            summary = campaign.run_ab(made.scenario, plan, folder, progress=print, expect=expect or "fixed",
                                      board=cma_board)
        except InputError as e:
            pytest.fail(f"cma_campaign: {e}", pytrace=False)
        result = Campaign.of(summary, folder)
        for key, value in campaign_properties(result, calls):
            record_property(key, value)
        if expect and result.verdict != expect:
            pytest.fail(f"cma_campaign: verdict {result.verdict}, expected {expect} ({result.reason}); {folder}",
                        pytrace=False)
        return result

    return _campaign
