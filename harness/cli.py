"""Command line: argument parsing only; every subcommand calls the library. Exit codes:
0 verdict as expected, 1 regression/failure found, 2 usage or input error, 3 infrastructure error."""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import signal
import sys
from pathlib import Path

from harness import cli_board, cli_lava, cli_patches
from harness.parsers import capture
from harness.spec import boards, config
from harness.judging import crosscheck
from harness.build import kernel
from harness.model import simulation
from harness.spec.variants import ALL_VARIANTS
from harness.judging import stats
from harness.build import toolchain
from harness.core.errors import HarnessError, from_os_error
from harness.judging.sequential import Verdict
from harness.present import text
from harness.store.campaign_folder import run_folders

EXIT_OK, EXIT_FOUND, EXIT_INPUT, EXIT_INFRA = 0, 1, 2, 3


def _progress(msg: str) -> None:
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    print(f"{stamp} {msg}", file=sys.stderr, flush=True)


def _arms_options(p, what: str) -> None:
    """--parallel-arms / --serial-arms; neither: both at once on QEMU with a host core for every vCPU of both
    guests, and a resumed campaign as it ran (orchestrate/campaign.arms_at_once)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--parallel-arms", dest="parallel_arms", action="store_const", const=True,
                   help=f"{what}with the baseline and patched guests of each pair booted at once (two QEMUs share "
                        "the host's CPUs; the looks and the statistics are unchanged). Default on QEMU with a host "
                        "core for every vCPU of both guests (4 for the demo); a resumed campaign goes on as it ran")
    g.add_argument("--serial-arms", dest="parallel_arms", action="store_const", const=False,
                   help=f"{what}with one guest at a time")


def _run_folder(base: Path | None, name: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return (base or Path("runs")) / f"{stamp}-{name}"


def cmd_bench(args) -> int:
    """Measure the harness on this machine (parsers, model, the verdict design, real boots) and print it."""
    from harness.orchestrate import bench

    campaigns = args.campaigns if args.campaigns is not None else (0 if args.quick else 3)
    for line in bench.run(config.load(args.scenario), quick=args.quick, campaigns=campaigns, lava=not args.no_lava,
                          parallel_arms=args.parallel_arms, fresh_cache=args.fresh_cache, progress=_progress):
        print(line, flush=True)
    return EXIT_OK


def cmd_doctor(args) -> int:
    ok, lines = toolchain.doctor(tests=args.tests)
    print("\n".join(lines))
    return EXIT_OK if ok else EXIT_INFRA


def cmd_build(args) -> int:
    scn = config.load(args.scenario)
    board = boards.load(args.board)
    spec = board.kernel_spec(scn.variant(args.variant) if args.variant else scn.kernel)
    if board.kernel.tree:
        kb = kernel.external(Path(board.kernel.tree))
    else:
        kb = kernel.build(spec, progress=_progress)
    out = {"key": kb.key, "zimage": str(kb.zimage), "tree": str(kb.tree), "release": kb.release}
    if board.area.board_dtb:
        from harness.build import image

        dtb = Path("runs") / f"{board.name}-cma-area.dtb"
        dtb.parent.mkdir(parents=True, exist_ok=True)
        out["dtb"] = str(image.add_area(Path(board.area.board_dtb), scn.area, dtb))
    print(json.dumps(out))
    return EXIT_OK


def cmd_run(args) -> int:
    from harness.boards import deployed
    from harness.orchestrate.run import RunState, run_variant

    scn = config.load(args.scenario)
    board = boards.load(args.board)
    if args.loops is not None:
        scn = config.with_overrides(scn, "module", origin="--loops", loops=args.loops)
    spec = scn.variant(args.variant) if args.variant else scn.kernel
    name = args.variant or "kernel"
    folder = args.out or _run_folder(None, f"{scn.name}-{name}")
    try:
        s = run_variant(scn, name, spec, folder, progress=_progress, board=board)
    except KeyboardInterrupt:
        _report(folder)         # the loops measured so far, and why the run stopped
        raise
    finally:
        deployed.switch_off_when_done(board, _progress)
    # The result first: the report (plots, every artefact hashed) takes seconds more.
    print("\n".join(text.run_lines(s.as_dict(), folder)), flush=True)
    page = _report(folder)
    if page:
        print(f"report: {page}")
    return {RunState.PASS: EXIT_OK, RunState.REPRODUCED: EXIT_FOUND, RunState.CRASH: EXIT_FOUND,
            RunState.HANG: EXIT_FOUND, RunState.INFRA: EXIT_INFRA}[s.state]


VERDICTS = [v.value for v in Verdict]


def cmd_ab(args) -> int:
    from harness.orchestrate import arms as arms_mod
    from harness.orchestrate.campaign import Plan, run_ab

    scn = config.load(args.scenario)
    board = boards.load(args.board)
    if args.no_attribution:
        scn = config.with_overrides(scn, "module", attribution=False)
    arms = arms_mod.prepare(scn, cli_patches.request(args), _progress)   # --patch/--tree/refs; patches tried
    plan = Plan(arms.baseline, arms.patched, loops_per_run=args.loops_per_run, budget=args.budget, alpha=args.alpha,
                infra_retries=args.infra_retries, expected_rate=args.baseline_rate, parallel_arms=args.parallel_arms)
    folder = args.out or _run_folder(None, f"ab-{arms.baseline}-vs-{arms.patched}")
    try:
        result = run_ab(arms.scenario, plan, folder, progress=_progress, expect=args.expect, board=board,
                        executor=cli_lava.executor(args))
    except KeyboardInterrupt:
        print(f"cma-harness: to resume, run the same command with --out {folder}", file=sys.stderr)
        raise
    # The verdict first: the report (a page and a plot per boot, every artefact hashed) takes seconds more.
    print(text.campaign_text(result, folder))
    print("\n".join(cli_patches.source_lines(arms, folder)), flush=True)
    page = _report(folder)
    if page:
        print(f"report: {page}")
    if args.git_bisect:
        return cli_patches.git_bisect_exit(result["verdict"], args.git_bisect)
    return EXIT_OK if result["verdict"] == args.expect else EXIT_FOUND


def _report(folder: Path) -> Path | None:
    """The folder's HTML/JSON report; a report that cannot be made is a warning, never a lost result."""
    from harness.present import report

    try:
        return report.write(folder, argv=sys.argv)
    except (HarnessError, OSError, ValueError) as e:
        _progress(f"warning: no report for {folder}: {e}")
        return None


def cmd_report(args) -> int:
    from harness.present import report

    for folder in args.folders:
        if not folder.is_dir():
            raise config.InputError(f"{folder}: not a folder; pass a run or campaign folder")
        print(report.write(folder, argv=sys.argv))
    return EXIT_OK


def cmd_check(args) -> int:
    """The reference model's cross-checks of saved run folders; 1 when any check failed."""
    # Every argument is looked at before any check runs: all the wrong ones are named at once.
    runs, wrong = [], []
    for folder in args.folders:
        try:
            runs += run_folders(folder)
        except config.InputError as e:
            wrong.append(str(e))
    if wrong:
        raise config.InputError("; ".join(wrong))
    failed = False
    for run in runs:
        results = [r.as_dict() for r in crosscheck.check_folder(run.path)]
        failed |= any(r["status"] == "fail" for r in results)
        print(f"{run.path}:")
        print("\n".join("  " + line for line in text.crosscheck_lines(results)))
    return EXIT_FOUND if failed else EXIT_OK


def cmd_model_simulate(args) -> int:
    from harness.judging import prediction

    if args.loops < 1:
        raise config.InputError(f"--loops must be at least 1, got {args.loops}")
    knobs = {k: v for k, v in vars(args).items() if k in simulation.workload_defaults() and v is not None}
    variants = args.variant or list(ALL_VARIANTS)
    predicted = prediction.predict(variants, args.loops, knobs)
    print("\n".join(prediction.prediction_lines(predicted, knobs)))
    if args.compare:
        print("\n".join(prediction.comparison_lines(predicted, prediction.measured(args.compare))))
    return EXIT_OK


def cmd_model_fit(args) -> int:
    from harness.judging import prediction

    if args.loops < 1:
        raise config.InputError(f"--loops must be at least 1, got {args.loops}")
    first, last = args.range
    if not 0 <= first <= last:
        raise config.InputError(f"--range {first} {last}: give FIRST LAST with 0 <= FIRST <= LAST")
    seen = prediction.measured(args.compare)
    m = seen.get(args.on)
    if m is None or m.loops - m.attribution_off_loops == 0:
        raise config.InputError(f"no attributed loops of {args.on} in {', '.join(map(str, args.compare))}: "
                                f"measure it (cma-harness run --variant {args.on}) or fit on a variant that is there "
                                f"({', '.join(sorted(seen)) or 'none'})")
    target = stats.rate(m.lru_loops, m.loops - m.attribution_off_loops)
    f = prediction.fit(args.on, target, args.knob, range(first, last + 1), args.loops, {})
    print("\n".join(prediction.fit_lines(f)))
    knobs = {args.knob: f.value}
    predicted = prediction.predict([v for v in seen if v in ALL_VARIANTS], args.loops, knobs)
    table = prediction.prediction_lines(predicted, knobs)
    print("\n".join([table[0], *table[2:]]))      # without the "not fitted" caveat: this one is
    print("\n".join(prediction.comparison_lines(predicted, seen)))
    return EXIT_OK


def cmd_parse(args) -> int:
    for path in args.files:
        p = Path(path)
        if not p.exists():
            raise config.InputError(f"{p}: no such file")
        if not p.is_file():
            raise config.InputError(f"{p}: not a file; pass console.log, dmesg or trace files")
        with open(p, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        for ev in capture.parse_capture(lines):
            print(json.dumps({"file": str(p), **ev.as_dict()}, sort_keys=True))
    return EXIT_OK


def cmd_build_key(args) -> int:
    """`build --print-key`: the kernel's cache key (the hash of every build input, as `build` computes it),
    on one line; nothing is built. CI keys its kernel cache with it."""
    from harness.build import cache

    scn = config.load(args.scenario)
    spec = boards.load(args.board).kernel_spec(scn.variant(args.variant) if args.variant else scn.kernel)
    print(cache.digest(kernel.inputs(spec)))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cma-harness", description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="check host tools; print the command that installs what is missing")
    p.add_argument("--tests", action="store_true", help="also what the test suite needs (set-up's --tests)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("bench", help="measure parsers, model, the verdict design and real boots; print the figures")
    p.add_argument("scenario", nargs="?", help="scenario YAML (default: the embedded seed-2012)")
    p.add_argument("--quick", action="store_true", help="one boot per setting instead of three, and no demo campaign")
    p.add_argument("--campaigns", type=int, metavar="N", help="demo campaigns timed to their verdict (default 3; "
                   "--quick: 0); each takes minutes")
    p.add_argument("--no-lava", action="store_true", help="leave out the boot under lava-run")
    p.add_argument("--fresh-cache", action="store_true", help="also time the demo from an empty cache to its verdict "
                   "(both kernels built cold: minutes)")
    _arms_options(p, "time the demo campaigns ")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("build", help="build (or fetch from the cache) a scenario's kernel")
    p.add_argument("scenario", nargs="?", help="scenario YAML (default: the embedded seed-2012)")
    p.add_argument("--variant", help="a kernel variant named under `variants:` in the scenario")
    p.add_argument("--print-key", dest="func", action="store_const", const=cmd_build_key,
                   help="print the kernel's cache key and exit, building nothing")
    _board_option(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="run the scenario's loop once on one kernel; write a run folder")
    p.add_argument("scenario", nargs="?", help="scenario YAML (default: the embedded seed-2012)")
    p.add_argument("--variant", help="a kernel variant named under `variants:` (default: the scenario's kernel)")
    p.add_argument("--loops", type=int, help="override module.loops")
    p.add_argument("--out", type=Path, help="run folder (default: runs/<time>-<scenario>-<variant>)")
    _board_option(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("ab", help="A/B campaign: does the patched kernel fix the failure? (default: the 2012 demo)")
    p.add_argument("scenario", nargs="?", help="scenario YAML (default: the embedded seed-2012)")
    p.add_argument("--baseline", help="variant expected to fail (default: reintroduce-2012; with --patch or "
                   "refs: the scenario's kernel)")
    p.add_argument("--patched", help="variant under test (default: stock; with --patch: the baseline + the patches)")
    cli_patches.add_source_options(p)
    p.add_argument("--git-bisect", metavar="VERDICT", choices=list(cli_patches.bisect.LOOKING_FOR),
                   help="exit codes for `git bisect run`: 1 (new) when the verdict is VERDICT, 0 (old) for another "
                        "verdict, 125 (skip) when there is none to go by or the build or QEMU failed, 128 (abort) on "
                        "bad input")
    p.add_argument("--loops-per-run", type=int, default=10, help="loops per guest boot (default 10: the verdict's "
                   "unit is the boot, and it needs at least 7 per arm at alpha 0.001)")
    p.add_argument("--budget", type=int, default=600, help="loops per variant at most (default 600)")
    p.add_argument("--alpha", type=float, default=0.001, help="the chance of a false verdict (fixed or regression) "
                   "over the whole campaign when both arms fail alike, whatever the boot-to-boot spread (default 0.001)")
    p.add_argument("--baseline-rate", type=float, metavar="RATE",
                   help="the baseline's loop failure rate if known (e.g. 0.1): says before the first boot whether the "
                        "budget can reach a verdict (otherwise the first baseline boot is the pilot)")
    p.add_argument("--no-attribution", action="store_true", help="seed-faithful count: judge on failed loops")
    p.add_argument("--expect", default="fixed", choices=VERDICTS,
                   help="the verdict that exits 0 (default: fixed)")
    _arms_options(p, "run the campaign ")
    p.add_argument("--infra-retries", type=int, default=2,
                   help="boots retried after an infrastructure failure with no loop measured (default 2)")
    p.add_argument("--out", type=Path, help="campaign folder; an existing one is resumed")
    _board_option(p)
    cli_lava.add_executor_option(p)
    p.set_defaults(func=cmd_ab)

    p = sub.add_parser("report", help="(re)write report.html, report.json and failures.png of run or campaign folders")
    p.add_argument("folders", nargs="+", type=Path)
    p.set_defaults(func=cmd_report)

    cli_patches.add_bisect_parser(sub, _board_option)
    cli_lava.add_parsers(sub, _board_option)
    cli_board.add_board_parser(sub, _board_option)

    p = sub.add_parser("check", help="re-run the reference model's cross-checks on saved run or campaign folders")
    p.add_argument("folders", nargs="+", type=Path)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("model", help="the reference model on its own")
    model_sub = p.add_subparsers(dest="model_command", required=True)
    p = model_sub.add_parser("simulate", help="predicted loop failure rate of each kernel variant, optionally "
                             "beside measured runs (the workload is not fitted to the guest)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--variant", action="append", choices=list(ALL_VARIANTS),
                       help="a patch series the model knows (repeatable; default: all eight)")
    which.add_argument("--all", action="store_true", help="every variant (the default)")
    p.add_argument("--loops", type=int, default=1000, help="simulated loops per variant (default 1000)")
    for name, default in simulation.workload_defaults().items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=type(default),
                       help=f"simulation.simulate's {name} (default {default})")
    p.add_argument("--compare", nargs="+", type=Path, metavar="FOLDER",
                   help="run or campaign folders: measured failed-loop and LRU-caused rates beside the prediction")
    p.set_defaults(func=cmd_model_simulate)

    p = model_sub.add_parser("fit", help="fit one integer workload knob so the model's LRU-caused rate on one "
                             "variant matches measured runs, then predict the other measured variants")
    p.add_argument("--compare", nargs="+", type=Path, metavar="FOLDER", required=True,
                   help="run or campaign folders with the measured variants")
    p.add_argument("--on", default="reintroduce-2012", choices=list(ALL_VARIANTS),
                   help="the variant to fit on (default reintroduce-2012)")
    p.add_argument("--knob", default="metadata_pages_in_area", help="the integer knob to fit (default metadata_pages_in_area)")
    p.add_argument("--range", nargs=2, type=int, default=(0, 8), metavar=("FIRST", "LAST"),
                   help="knob values to try, inclusive (default 0 8)")
    p.add_argument("--loops", type=int, default=2000, help="simulated loops per value and variant (default 2000)")
    p.set_defaults(func=cmd_model_fit)

    p = sub.add_parser("parse", help="parse saved console/dmesg/trace files; print events as JSON lines")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_parse)
    return ap


def _board_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", metavar="FILE", help="board file (images/boards/*.yaml, or a shipped board's name: "
                   f"{', '.join(boards.shipped())}; default: qemu)")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return EXIT_INPUT if e.code else EXIT_OK
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    # SIGTERM (a CI timeout, `kill`) takes the same path as Ctrl-C: every QEMU is stopped in a
    # finally block and every finished loop is already on disk.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return args.func(args)
    except HarnessError as e:
        print(f"cma-harness: error: {e}", file=sys.stderr)
        return cli_patches.git_bisect_error(e) if getattr(args, "git_bisect", None) else e.exit_code
    except OSError as e:
        err = from_os_error(e)
        print(f"cma-harness: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("cma-harness: interrupted; QEMU is stopped and every finished loop is in loops.jsonl", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
