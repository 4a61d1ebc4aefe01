"""`cma-harness bench`'s pure parts produce every figure they name (the values are timings: never asserted)."""

import math

from harness.judging import sequential
from harness.orchestrate import bench


def test_the_pure_figures_are_all_there_and_finite():
    figures = bench.parser_figures() + bench.model_figures(50) + bench.design_figures(sequential.Design())
    names = [f.name for f in figures]
    assert any(n.startswith("parser: ftrace") for n in names) and any(n.startswith("busy join") for n in names)
    assert all(math.isfinite(f.value) and f.value > 0 for f in figures), [f.line() for f in figures]


def test_the_header_names_the_machine_and_the_commit():
    assert "commit" in bench.machine() and "CPUs" in bench.machine()
