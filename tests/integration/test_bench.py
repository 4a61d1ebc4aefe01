"""`cma-harness bench --quick` on real boots of the demo's cached kernels: every figure it names comes out,
a line at a time, with a finite value. The values are timings: never asserted (the README's table is
what they were)."""

import math
import re

import pytest

from harness.orchestrate import bench

pytestmark = pytest.mark.integration

# What the quick bench must print (its first words), in order: the parts the campaigns and the fresh cache
# leave out are the long ones, which the README's full run shows.
QUICK = ("parser: console", "parser: dump_page", "parser: ftrace", "busy join", "model: simulate reintroduce-2012",
         "model: simulate stock", "build: reintroduce-2012 from the cache", "build: stock from the cache",
         "guest (workload nojournal): loops per minute", "guest: power-on to shell",
         "guest: power-on to first loop record", "guest: a run of the boot's loops", "guest: harness overhead / run",
         "guest: harness outside the guest", "guest (workload none): loops per minute",
         "reintroduce-2012: loops with an LRU-caused chunk", "verdict: loops per arm to fixed", "verdict floor: serial",
         "verdict floor: both arms at once")


def test_the_quick_bench_prints_every_figure_from_real_boots(seed):
    lines = list(bench.run(seed, quick=True, lava=False))
    assert lines[0].startswith("cma-harness bench on ") and "commit" in lines[0]
    figures = lines[2:]
    names = [next((q for q in QUICK if line.startswith(q)), None) for line in figures]
    assert [n for n in names if n] == [q for q in QUICK if q in names], "out of order"
    assert set(QUICK) <= set(names), set(QUICK) - set(names)
    # A line is the name, two spaces or more, the value (%12.3g, right-aligned), a space, the unit, the note.
    values = [float(re.match(r"^.*?\S\s{2,}(\S+) \S", line).group(1)) for line in figures]
    assert all(math.isfinite(v) and v > 0 for v in values), figures
