"""How often each design's verdict is wrong, and how many loops a right one takes, by seeded simulation.

Drives the real decision code, at the campaign's schedule (A, B, A, B, ..., a look after each pair):
- new: harness.judging.sequential.decide at its defaults (exact boot-level test, Pocock-shaped spending);
- old: benchmarks/old_verdict.decide (as it was) at the campaign's old plan (100-loop boots, budget 600, Fisher on
  loops with the boot-spread guard, Bonferroni over 6 looks).
Each boot's loop-failure rate is drawn from a beta distribution (mean, intra-boot correlation rho), or
the boot fails every loop or none ("all or nothing"). No change: both arms the same kernel, mean 10 %.
Last, the futility stop the new design leaves off, measured on the same boots with and without it.

    .venv/bin/python benchmarks/verdict_errors.py [--campaigns N] [--quick] [--workers 1|2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.judging import sequential

sys.path.insert(0, str(Path(__file__).resolve().parent))
import old_verdict  # noqa: E402  the pre-boot-level verdict, for the side-by-side figures

NEW = sequential.Design()
OLD_LOOPS, OLD_BUDGET = 100, 600
NO_CHANGE = [("rho 0", ("bb", 0.10, 0.0)), ("rho 0.016", ("bb", 0.10, 0.016)), ("rho 0.05", ("bb", 0.10, 0.05)),
             ("rho 0.2", ("bb", 0.10, 0.2)), ("all or nothing", ("aon", 0.10))]
POWER = [("fixed: 10.5 % vs 0 %, rho 0", "fixed", ("bb", 0.105, 0.0), ("bb", 0.0, 0.0)),
         ("fixed: 10.5 % vs 0 %, rho 0.016", "fixed", ("bb", 0.105, 0.016), ("bb", 0.0, 0.0)),
         ("fixed: 3 % vs 0 %, rho 0.016", "fixed", ("bb", 0.03, 0.016), ("bb", 0.0, 0.0)),
         ("regression: 5 % vs 15 %, rho 0", "regression", ("bb", 0.05, 0.0), ("bb", 0.15, 0.0)),
         ("regression: 5 % vs 15 %, rho 0.016", "regression", ("bb", 0.05, 0.016), ("bb", 0.15, 0.016)),
         ("regression: 5 % vs 10 %, rho 0.016", "regression", ("bb", 0.05, 0.016), ("bb", 0.10, 0.016))]
FUTILITY = [("no change, 10 %, rho 0.016", ("bb", 0.10, 0.016), ("bb", 0.10, 0.016)),
            ("regression 5 % vs 15 %, rho 0.016", ("bb", 0.05, 0.016), ("bb", 0.15, 0.016)),
            ("regression 5 % vs 10 %, rho 0.016", ("bb", 0.05, 0.016), ("bb", 0.10, 0.016)),
            ("fixed 3 % vs 0 %, rho 0.016", ("bb", 0.03, 0.016), ("bb", 0.0, 0.0)),
            ("fixed 6.5 % vs 3 %, rho 0.016", ("bb", 0.065, 0.016), ("bb", 0.03, 0.016))]


def draw(spec):
    return sequential.all_or_nothing(spec[1]) if spec[0] == "aon" else sequential.beta_binomial(spec[1], spec[2])


def old_campaign(baseline, patched, rng, alpha=0.001):
    """The campaign's old loop: boots of 100 loops, stats.decide after each pair, Bonferroni over 6 looks."""
    looks = -(-OLD_BUDGET // OLD_LOOPS)
    a, b = [], []
    for k in range(1, looks + 1):
        n = min(OLD_LOOPS, OLD_BUDGET - (k - 1) * OLD_LOOPS)
        a.append((baseline(rng, n), n))
        b.append((patched(rng, n), n))
        ta = (sum(e for e, _ in a), sum(m for _, m in a))
        tb = (sum(e for e, _ in b), sum(m for _, m in b))
        d = old_verdict.decide(ta, tb, alpha=alpha, looks=looks, budget_reached=k == looks,
                         baseline_boots=a, patched_boots=b)
        if d.final:
            return d.verdict.value, ta[1]
    return d.verdict.value, ta[1]


def run_chunk(task):
    design, baseline, patched, campaigns, seed = task
    rng = np.random.default_rng(seed)
    da, db = draw(baseline), draw(patched)
    out = []
    for _ in range(campaigns):
        if design == "old":
            out.append(old_campaign(da, db, rng))
        elif design == "paired futility":
            # The same boots through the design without and with the futility stop.
            n = NEW.loops_per_run
            a = [da(rng, n) for _ in range(NEW.budget // n)]
            b = [db(rng, n) for _ in range(NEW.budget // n)]
            pair = []
            for plan in (NEW, replace(NEW, futility=True)):
                ia, ib = iter(a), iter(b)
                d, loops = sequential.simulate(plan, lambda r, m, i=ia: next(i), lambda r, m, i=ib: next(i), rng)
                pair += [d.verdict.value, loops]
            out.append(tuple(pair))
        else:
            d, loops = sequential.simulate(NEW, da, db, rng)
            out.append((d.verdict.value, loops))
    return out


def run_all(jobs, workers):
    """jobs: {key: (design, baseline, patched, campaigns, seed)}, each split into chunks of 100 campaigns."""
    tasks, owners = [], []
    for key, (design, baseline, patched, campaigns, seed) in jobs.items():
        seeds = np.random.SeedSequence(seed).spawn(-(-campaigns // 100))
        for i, s in enumerate(seeds):
            tasks.append((design, baseline, patched, min(100, campaigns - 100 * i), s))
            owners.append(key)
    results = {key: [] for key in jobs}
    started = time.monotonic()
    if workers > 1:
        with multiprocessing.Pool(workers) as pool:
            chunks = pool.imap(run_chunk, tasks)
            for i, (key, chunk) in enumerate(zip(owners, chunks)):
                results[key].extend(chunk)
                progress(i + 1, len(tasks), started)
    else:
        for i, (key, task) in enumerate(zip(owners, tasks)):
            results[key].extend(run_chunk(task))
            progress(i + 1, len(tasks), started)
    return results


def progress(done, total, started):
    if done % 10 == 0 or done == total:
        print(f"  {done}/{total} chunks, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)


def upper95(events, n):
    return float(sps.beta.ppf(0.95, events + 1, n - events)) if events < n else 1.0


def pct(x):
    return f"{100 * x:.3g} %"


def quantile_loops(results, target, q, budget):
    """Loops per arm by which a share q of all campaigns reached the target verdict ('>budget': never)."""
    reached = sorted(loops for verdict, loops in results if verdict == target)
    rank = int(np.ceil(q * len(results)))
    return str(reached[rank - 1]) if rank <= len(reached) else f">{budget}"


def minutes(loops_text, loops_per_boot):
    if loops_text.startswith(">"):
        return "-"
    loops = int(loops_text)
    return f"{2 * (loops / loops_per_boot * sequential.BOOT_SECONDS + loops * sequential.LOOP_SECONDS) / 60:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaigns", type=int, default=3000, help="campaigns per no-change scenario and design")
    ap.add_argument("--quick", action="store_true", help="300 campaigns per no-change scenario, 200 per other one")
    ap.add_argument("--workers", type=int, default=1, choices=[1, 2])
    args = ap.parse_args()
    null_n = 300 if args.quick else args.campaigns
    power_n = 200 if args.quick else max(200, null_n // 3)
    jobs = {}
    for i, (name, spec) in enumerate(NO_CHANGE):
        for design in ("new", "old"):
            jobs[("null", name, design)] = (design, spec, spec, null_n, 1000 + 10 * i)
    for i, (name, _, a, b) in enumerate(POWER):
        for design in ("new", "old"):
            jobs[("power", name, design)] = (design, a, b, power_n, 2000 + 10 * i)
    for i, (name, a, b) in enumerate(FUTILITY):
        jobs[("futility", name)] = ("paired futility", a, b, power_n, 3000 + 10 * i)
    started = time.monotonic()
    results = run_all(jobs, args.workers)

    print(f"new: exact boot-level permutation test, Pocock-shaped spending over {sum(1 for x in sequential.schedule(NEW) if x.level)} "
          f"looks; boots of {NEW.loops_per_run} loops, budget {NEW.budget} loops per arm, alpha {NEW.alpha} "
          f"({NEW.alpha / 2:g} per direction)")
    print(f"old: stats.decide (loop-level Fisher, boot-spread guard, futility), boots of {OLD_LOOPS} loops, budget "
          f"{OLD_BUDGET}, alpha 0.001 per direction over {-(-OLD_BUDGET // OLD_LOOPS)} looks (Bonferroni)")
    print()
    print("No change (both arms the same kernel, mean 10 % of loops); 95 % upper bounds are one-sided Clopper-Pearson")
    print(f"{'scenario':16} {'design':6} {'campaigns':>9}  {'false fixed (95 % upper)':>26}  "
          f"{'false regression (95 % upper)':>31}  {'false either':>12}  verdicts")
    for name, _ in NO_CHANGE:
        for design in ("new", "old"):
            res = results[("null", name, design)]
            n = len(res)
            ff = sum(v == "fixed" for v, _ in res)
            fr = sum(v == "regression" for v, _ in res)
            others = {}
            for v, _ in res:
                others[v] = others.get(v, 0) + 1
            print(f"{name:16} {design:6} {n:9}  {f'{ff} = {pct(ff / n)} (<= {pct(upper95(ff, n))})':>26}  "
                  f"{f'{fr} = {pct(fr / n)} (<= {pct(upper95(fr, n))})':>31}  {pct((ff + fr) / n):>12}  "
                  f"{', '.join(f'{k} {c}' for k, c in sorted(others.items()))}")
    print()
    print("Power: share of campaigns reaching the verdict; loops per arm by which 50 % and 90 % of all campaigns")
    print("reached it ('>budget': fewer did); minutes of boots (both arms, 7 s a boot, 0.35 s a loop) at the median")
    print(f"{'scenario':36} {'design':12} {'campaigns':>9} {'power':>7} {'median':>7} {'p90':>6} "
          f"{'mean loops':>10} {'min@median':>10}")
    for name, target, _, _ in POWER:
        for design in ("new", "old"):
            res = results[("power", name, design)]
            n = len(res)
            budget = OLD_BUDGET if design == "old" else NEW.budget
            per_boot = OLD_LOOPS if design == "old" else NEW.loops_per_run
            med = quantile_loops(res, target, 0.5, budget)
            print(f"{name:36} {design:12} {n:9} {pct(sum(v == target for v, _ in res) / n):>7} {med:>7} "
                  f"{quantile_loops(res, target, 0.9, budget):>6} {np.mean([l for _, l in res]):10.0f} "
                  f"{minutes(med, per_boot):>10}")
    print()
    print("Futility, measured: the same boots through the new design without it and with a stop past half the")
    print("budget when both one-sided p >= 0.2 (Design(futility=True)); verdicts that changed, and loops per arm")
    for name, _, _ in FUTILITY:
        res = results[("futility", name)]
        changed: dict[str, int] = {}
        for v0, _, v1, _ in res:
            if v0 != v1:
                changed[f"{v0} -> {v1}"] = changed.get(f"{v0} -> {v1}", 0) + 1
        print(f"  {name:35} {len(res)} campaigns; mean loops per arm {np.mean([r[1] for r in res]):.0f} without, "
              f"{np.mean([r[3] for r in res]):.0f} with; changed: {changed or 'none'}")
    print(f"\n{time.monotonic() - started:.0f} s, {args.workers} worker(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
