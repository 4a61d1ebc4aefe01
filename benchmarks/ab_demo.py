"""Benchmark the job a developer runs: kernel builds of both variants, then the A/B demo to its verdict.

Prints figures and ratios; asserts nothing (timings belong here, never in tests).

    .venv/bin/python benchmarks/ab_demo.py                 # from the cache: build times as recorded
    .venv/bin/python benchmarks/ab_demo.py --fresh-cache /tmp/cold   # cold build, then the ccache-warm one
    .venv/bin/python benchmarks/ab_demo.py images/scenarios/journal.yaml   # the journaled profile
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from harness.spec import config
from harness.build import kernel
from harness.orchestrate.campaign import Plan, run_ab


def build_seconds(spec) -> tuple[float, bool]:
    """(seconds the build took when it ran, whether it was already cached before this call)."""
    key = kernel.cache.digest(kernel.inputs(spec))
    store = kernel.cache.Store("kernel")
    was_cached = store.has(key)
    t0 = time.monotonic()
    kb = kernel.build(spec)
    if not was_cached:
        return time.monotonic() - t0, False
    return float((kb.tree.parent / "build-seconds").read_text()), True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", type=Path, help="scenario YAML (default: the embedded seed-2012)")
    ap.add_argument("--fresh-cache", type=Path, help="build into this empty cache dir (cold build, then warm)")
    ap.add_argument("--out", type=Path, help="campaign folder (default: a temp dir)")
    args = ap.parse_args()
    if args.fresh_cache:
        os.environ["CMA_HARNESS_CACHE"] = str(args.fresh_cache)
    scn = config.load(args.scenario)
    plan = Plan(baseline="reintroduce-2012", patched="stock")
    first, cached1 = build_seconds(scn.variant(plan.patched))
    second, cached2 = build_seconds(scn.variant(plan.baseline))
    print(f"build {plan.patched:18} {first:7.1f} s{' (recorded)' if cached1 else ''}")
    print(f"build {plan.baseline:18} {second:7.1f} s{' (recorded)' if cached2 else ''}  "
          f"ratio second/first = {second / first:.2f}")
    out = args.out or Path(tempfile.mkdtemp(prefix="cma-ab-bench-"))
    t0 = time.monotonic()
    result = run_ab(scn, plan, out, progress=lambda m: print("  " + m, file=sys.stderr, flush=True))
    wall = time.monotonic() - t0
    v = result["variants"]
    print(f"verdict {result['verdict']} after {wall:.0f} s wall ({wall / 60:.1f} min)")
    print(f"loops run: baseline {v['baseline']['loops']}, patched {v['patched']['loops']}; "
          f"loops per minute overall {60 * (v['baseline']['loops'] + v['patched']['loops']) / wall:.1f}")
    if result["decision"]:
        print(f"p (patched fails less) = {result['decision']['p_fixed']:.3g} on {result['metric']}")
    for arm in ("baseline", "patched"):
        f, l = v[arm]["failed_loops"], v[arm]["lru_caused_loops"]
        print(f"{arm:8} {v[arm]['variant']:18} failed loops {f['events']}/{f['trials']}, LRU-caused {l['events']}/{l['trials']}, "
              f"chunks {v[arm]['failed_chunks_by_cause']}, per boot {v[arm]['between_boots']['per_boot']}")
    print(f"campaign folder: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
