"""Shared by every test: where the recorded real captures live, and how a test reads one.

Test files import these names (`from tests.conftest import FIXTURES, fixture_lines`) instead of
declaring the paths again; pytest also loads this file first, so the names are set before any test."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]          # the project's root
FIXTURES = ROOT / "tests" / "fixtures"              # real console, trace and run-folder captures (see SOURCE.md files)


def fixture_lines(name: str) -> list[str]:
    """A recorded capture's lines, read as the harness reads a console: bytes that are not UTF-8 become U+FFFD."""
    return (FIXTURES / name).read_text(errors="replace").splitlines()
