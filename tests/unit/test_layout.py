"""The tree is the architecture: sub-packages in data-flow order, imports only downward, small files."""

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "harness"
# Lowest first: a module may import from its own stage or one listed before it.
STAGES = ["core", "spec", "parsers", "model", "store", "build", "boards", "guest", "judging", "present",
          "orchestrate", "top"]
MAX_LINES = 450


def _stage(module: str) -> str:
    """harness.build.kernel -> build; harness.cli -> top."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in STAGES else "top"


def _module_of(path: Path) -> str:
    rel = path.relative_to(HARNESS.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every harness module a file imports (at any depth: function-level imports count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("harness"):
            names = [f"{node.module}.{a.name}" for a in node.names] if node.module.count(".") == 1 else [node.module]
            found += [(node.lineno, n) for n in names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.append((node.lineno, "(relative)"))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("harness")]
    return found


FILES = sorted(HARNESS.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(HARNESS)))
def test_imports_only_run_downward(path):
    here = STAGES.index(_stage(_module_of(path)))
    upward = []
    for lineno, target in _imports(path):
        assert target != "(relative)", f"{path.name}:{lineno}: use absolute imports (harness.<stage>.<module>)"
        if target in ("harness", "harness.__version__"):
            continue
        if STAGES.index(_stage(target)) > here:
            upward.append(f"line {lineno}: {target}")
    assert not upward, f"{path.relative_to(HARNESS)} ({_stage(_module_of(path))}) imports a higher stage: {upward}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(HARNESS)))
def test_no_file_is_over_the_size_limit(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(HARNESS)} has {lines} lines; split it by subject"


def test_every_stage_package_says_what_it_holds():
    for stage in STAGES[:-1]:
        init = HARNESS / stage / "__init__.py"
        assert init.is_file() and ast.get_docstring(ast.parse(init.read_text())), f"{stage}/__init__.py needs a docstring"


def test_the_check_sees_an_upward_import(tmp_path):
    """The walk finds imports in functions too: a lower stage importing an orchestrator is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from harness.orchestrate.run import RunState\n")
    [(lineno, target)] = _imports(bad)
    assert lineno == 2 and _stage(target) == "orchestrate" and STAGES.index("orchestrate") > STAGES.index("parsers")


def test_run_folder_file_names_are_spelled_in_the_store_alone():
    spelled = []
    for path in FILES:
        if path.parent.name == "store":
            continue
        text = path.read_text()
        spelled += [f"{path.relative_to(HARNESS)}: {n}" for n in ('"summary.json"', '"loops.jsonl"', '"console.log"',
                                                                  '"trace.txt"', '"campaign.json"') if n in text]
    assert not spelled, spelled
