"""Command-line pieces for boards: `cma-harness board check`. Arguments and dispatch only; the work is in
harness.orchestrate.board_check."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from harness.orchestrate import board_check
from harness.present import text
from harness.spec import boards, config

EXIT_OK, EXIT_NOT_READY = 0, 2


def add_board_parser(sub, board_option) -> None:
    p = sub.add_parser("board", help="boards: check that one can run a scenario")
    board_sub = p.add_subparsers(dest="board_command", required=True)
    p = board_sub.add_parser("check", help="connect to (or boot) the board; report kernel, CPUs, memory, CMA areas, "
                             "tracefs, kprobes, module loading, the disk, and what is missing for the scenario")
    p.add_argument("scenario", nargs="?", help="scenario YAML (default: the embedded seed-2012)")
    p.add_argument("--out", type=Path, help="folder for the console and kernel log (default: a temporary one)")
    p.add_argument("--json", action="store_true", help="print the facts and findings as JSON")
    board_option(p)
    p.set_defaults(func=cmd_board_check)


def cmd_board_check(args) -> int:
    scn = config.load(args.scenario)
    board = boards.load(args.board)
    folder = args.out or Path(tempfile.mkdtemp(prefix=f"cma-harness-board-{board.name}-"))
    result = board_check.check(scn, board, folder, progress=lambda s: print(s, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps({"board": board.name, "ready": result.ready, "facts": result.facts,
                          "findings": [f.__dict__ for f in result.findings]}, indent=2))
    else:
        print(text.board_check_text(board.name, result.findings, result.ready, folder))
    return EXIT_OK if result.ready else EXIT_NOT_READY
