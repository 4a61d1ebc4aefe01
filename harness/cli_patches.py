"""Command-line pieces for a developer's own kernel: the source options of `ab` and `bisect` (--patch,
--tree, --baseline-ref/--patched-ref), `ab --git-bisect` exit codes, and the `bisect` subcommand.
Arguments and dispatch only; the work is in harness.orchestrate.arms and harness.orchestrate.bisect."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from harness.core.errors import HarnessError, InfraError
from harness.orchestrate import arms as arms_mod
from harness.orchestrate import bisect
from harness.present import bisect_page, kernels
from harness.spec import boards, config

GIT_BISECT_OLD, GIT_BISECT_NEW, GIT_BISECT_SKIP, GIT_BISECT_ABORT = 0, 1, 125, 128


def add_source_options(p: argparse.ArgumentParser, refs: bool = True) -> None:
    p.add_argument("--patch", nargs="+", type=Path, metavar="FILE", default=[],
                   help="patch files (git format-patch output, an mbox of several, or a diff), applied in order on "
                        "the baseline: the patched arm is the baseline plus these")
    p.add_argument("--tree", type=Path, metavar="DIR",
                   help="a kernel source tree to build instead of the scenario's source (Debian's tarball)")
    if refs:
        p.add_argument("--baseline-ref", metavar="REF", help="with --tree on a git tree: the commit with the bug")
        p.add_argument("--patched-ref", metavar="REF", help="with --tree on a git tree: the commit to test")


def request(args) -> arms_mod.Request:
    return arms_mod.Request(baseline=args.baseline, patched=getattr(args, "patched", None),
                            patches=tuple(args.patch), tree=args.tree,
                            baseline_ref=getattr(args, "baseline_ref", None),
                            patched_ref=getattr(args, "patched_ref", None))


def source_lines(arms: arms_mod.Arms, folder: Path) -> list[str]:
    """The exact kernels of both arms (cache key, source, every patch by sha256 and subject)."""
    return kernels.kernel_lines(kernels.arm_kernels(folder)) or arms_mod.patch_lines(arms)


def git_bisect_exit(verdict: str, new: str) -> int:
    """For `git bisect run`: 1 (new) when the verdict is `new`, 0 (old) when it is another verdict, 125
    (skip this commit) when there is none to go by (inconclusive, incomplete; see bisect.outcome)."""
    out = bisect.outcome(verdict, new)
    return {bisect.Outcome.NEW: GIT_BISECT_NEW, bisect.Outcome.OLD: GIT_BISECT_OLD}.get(out, GIT_BISECT_SKIP)


def git_bisect_error(e: HarnessError) -> int:
    """An infrastructure error (a build that fails, QEMU) skips the commit; bad input aborts the bisect."""
    return GIT_BISECT_SKIP if isinstance(e, InfraError) else GIT_BISECT_ABORT


def add_bisect_parser(sub, board_option) -> None:
    from harness.orchestrate.campaign import Plan

    defaults = {f.name: f.default for f in dataclasses.fields(Plan) if f.default is not dataclasses.MISSING}
    p = sub.add_parser("bisect", help="the first patch of a series after which the A/B verdict changes "
                       "(binary search; each step one campaign: baseline vs baseline + the first k patches)")
    p.add_argument("scenario", nargs="?", help="scenario YAML (default: the embedded seed-2012)")
    p.add_argument("--baseline", help="the variant the series is applied to (default: the scenario's kernel)")
    add_source_options(p, refs=False)
    p.add_argument("--looking-for", default="fixed", choices=list(bisect.LOOKING_FOR),
                   help="the verdict whose first appearance is searched for (default: fixed)")
    p.add_argument("--loops-per-run", type=int, default=defaults.get("loops_per_run"),
                   help=f"loops per guest boot (default {defaults.get('loops_per_run')})")
    p.add_argument("--budget", type=int, default=defaults.get("budget"),
                   help=f"loops per variant per campaign at most (default {defaults.get('budget')})")
    p.add_argument("--alpha", type=float, default=defaults.get("alpha"),
                   help=f"false-verdict rate of each campaign (default {defaults.get('alpha')})")
    p.add_argument("--baseline-rate", type=float, metavar="RATE",
                   help="the baseline's loop failure rate if known: each campaign says before its first boot whether "
                        "the budget can reach a verdict")
    p.add_argument("--no-attribution", action="store_true", help="seed-faithful count: judge on failed loops")
    p.add_argument("--infra-retries", type=int, default=defaults.get("infra_retries"),
                   help="boots retried after an infrastructure failure with no loop measured")
    p.add_argument("--out", type=Path, help="bisect folder; an existing one is resumed")
    board_option(p)
    p.set_defaults(func=cmd_bisect)


def cmd_bisect(args) -> int:
    from harness import cli
    from harness.orchestrate.campaign import Plan, run_ab

    if not args.patch:
        raise config.InputError("bisect needs the series: --patch FILE... (applied in order on the baseline)")
    scn = config.load(args.scenario)
    board = boards.load(args.board)
    if args.no_attribution:
        scn = config.with_overrides(scn, "module", attribution=False)
    arms = arms_mod.prepare(scn, request(args), cli._progress)     # the whole series: every prefix applies
    plan = {"loops_per_run": args.loops_per_run, "budget": args.budget, "alpha": args.alpha,
            "infra_retries": args.infra_retries}
    if args.baseline_rate is not None:      # only when given: a bisect folder's plan stays as it was otherwise
        plan["expected_rate"] = args.baseline_rate
    Plan(arms.baseline, arms.patched, **plan).validate()
    base = arms.scenario.variant(arms.baseline)
    stored = [Path(p) for p in arms.scenario.variant(arms.patched).extra_patches[len(base.extra_patches):]]
    folder = args.out or cli._run_folder(None, f"bisect-{arms.baseline}-{len(arms.patches)}-patches")
    try:
        summary = bisect.run_bisect(arms.scenario, arms.baseline, arms.patches, stored, plan, folder, run_ab,
                                    looking_for=args.looking_for, progress=cli._progress, board=board)
    except KeyboardInterrupt:
        print(f"cma-harness: to resume, run the same command with --out {folder}", file=sys.stderr)
        raise
    page = cli._report(folder)
    print("\n".join(bisect_page.lines(summary, folder)))
    if page:
        print(f"report: {page}")
    return cli.EXIT_OK if summary["result"] and summary["result"]["first"] else cli.EXIT_FOUND
