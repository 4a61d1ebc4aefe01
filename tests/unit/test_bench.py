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


def test_the_floor_is_loops_at_the_guests_pace_plus_each_boots_overhead():
    guest = [bench.Figure("guest (workload nojournal): loops per minute in a boot", 60, "loops/min"),
             bench.Figure("guest: a run of the boot's loops, wall", 12, "s"),
             bench.Figure("guest: harness overhead / run", 0.25, "ratio")]
    plan = sequential.Design()
    serial, parallel = bench.floor_figures(guest, plan, rate=0.083)
    median = sequential.feasibility(0.083, plan).median_loops
    boots = 2 * median / plan.loops_per_run
    assert serial.value == 2 * median * 1.0 + boots * 3.0          # a loop a second; 3 s of each boot is overhead
    assert parallel.value == serial.value / 2
    assert bench.floor_figures(guest[:1], plan) == [], "no floor without the guest's figures"


def test_the_rate_the_design_and_floor_use_is_pooled_over_what_was_measured():
    assert bench.measured_rate([(3, 10), (0, 10), (9, 20)], "boots") == (0.3, "boots, 12/40")
    assert bench.measured_rate([], "campaigns") is None, "no loops: the caller falls back"
    assert bench.measured_rate([(0, 10)], "boots") is None, "no event: the caller falls back, never a 0 % rate"
