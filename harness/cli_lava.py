"""Command-line pieces for LAVA: `lava-job` (write a job, and for the QEMU guest a device file, for one
boot) and `import` (a LAVA job's output as a run folder). Arguments and dispatch only; the work is in
harness.orchestrate.lava and harness.orchestrate.lava_import."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.core.errors import InputError
from harness.orchestrate import lava, lava_client, lava_executor, lava_import
from harness.orchestrate.run import RunState
from harness.present import text
from harness.spec import boards, config
from harness.store import names
from harness.store.lava_folder import find_job_folder

URL_ENV = "CMA_LAVA_URL"


def add_parsers(sub, board_option) -> None:
    p = sub.add_parser("lava-job", help="write a LAVA job (and for the QEMU guest a rendered device file) for one "
                       "boot: the harness's images, its QEMU arguments, a monitors test with one case per loop")
    p.add_argument("scenario", nargs="?", help="scenario YAML (default: the embedded seed-2012)")
    p.add_argument("--variant", help="a kernel variant named under `variants:` (default: the scenario's kernel)")
    p.add_argument("--loops", type=int, help="override module.loops")
    p.add_argument("--out", type=Path, help="job folder (default: runs/<time>-lava-<scenario>-<variant>)")
    p.add_argument("--job-id", default="1", help="lava-run's --job-id in the printed command (default 1)")
    board_option(p)
    p.set_defaults(func=cmd_lava_job)

    p = sub.add_parser("import", help="turn a LAVA job's output (its log and test cases) into a run folder the "
                       "cross-checks, statistics and report read")
    p.add_argument("output", type=Path, help="the job's output folder (lava-run's --output-dir, with the log as "
                   f"{names.LAVA_OUTPUT_LOG}), or the log file")
    p.add_argument("--out", type=Path, help="run folder to make (default: runs/<time>-lava-<scenario>-<variant>)")
    p.add_argument("--job", type=Path, metavar="FOLDER", help="the folder `cma-harness lava-job` wrote (default: "
                   "the output folder's parent)")
    p.set_defaults(func=cmd_import)


def add_executor_option(p) -> None:
    p.add_argument("--executor", choices=list(lava_executor.EXECUTORS), default="harness",
                   help="what runs each boot: the harness itself (default), lava-run (each boot a LAVA job "
                        "`lava-job` writes, imported into its run folder), or lava: a LAVA server at --url (each "
                        "job submitted through its API, its log fetched and imported); the verdict is the harness's own")
    p.add_argument("--url", default=os.environ.get(URL_ENV), help="--executor lava: the LAVA server's address "
                   f"(default ${URL_ENV}; the local one, images/lava-server.sh start: http://127.0.0.1:8040/)")
    p.add_argument("--token", action=_SecretAction, help=f"--executor lava: an API token of that server (visible to "
                   f"`ps`: prefer --token-file or ${lava_client.TOKEN_ENV})")
    p.add_argument("--token-file", type=Path, metavar="FILE", help="--executor lava: a file holding the API token "
                   f"(the local server's: {lava_client.LOCAL_TOKEN_FILE})")


class _SecretAction(argparse.Action):
    """Keeps the token, and takes it out of sys.argv, which the reports record."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        sys.argv[:] = [("--token=<token>" if a.startswith("--token=") else "<token>" if a == values else a)
                       for a in sys.argv]


def executor(args):
    """The campaign's boot executor for `--executor` (for a LAVA server, checked before the first boot)."""
    from harness import cli
    from harness.orchestrate import campaign, lava_server_executor

    if args.executor == "lava-run":
        return lava_executor.lava_run_executor
    if args.executor != "lava":
        return campaign.harness_executor
    if not args.url:
        raise InputError(f"--executor lava needs the server: --url URL (or ${URL_ENV}); the local server's is "
                         f"printed by images/lava-server.sh start")
    token = lava_client.resolve_token(args.token, args.token_file)
    run = lava_server_executor.ServerExecutor(lava_client.LavaServer(args.url, token))
    cli._progress(run.check())
    return run


def cmd_lava_job(args) -> int:
    from harness import cli

    scn = config.load(args.scenario)
    board = boards.load(args.board)
    spec = scn.variant(args.variant) if args.variant else scn.kernel
    name = args.variant or "kernel"
    folder = args.out or cli._run_folder(None, f"lava-{scn.name}-{name}")
    written = lava.write_job(lava.JobRequest(scn, name, spec, board, folder, args.loops, args.job_id),
                             progress=cli._progress)
    print(f"job folder: {written.folder.path}")
    print(f"job: {written.folder.file(names.LAVA_JOB)}")
    if written.run_command:
        print(f"device: {written.folder.file(names.LAVA_DEVICE)}")
        print(f"run it (as root): {written.run_command}")
        print(f"then: cma-harness import {written.folder.output} --out RUNFOLDER")
    else:
        print(f"submit it to the lab (check its TEMPLATE notes first): lavacli jobs submit "
              f"{written.folder.file(names.LAVA_JOB)}")
        print("then save the job's log into a folder as output.yaml (lavacli jobs logs --raw ID > DIR/output.yaml) "
              f"and: cma-harness import DIR --job {written.folder.path} --out RUNFOLDER")
    return cli.EXIT_OK


def cmd_import(args) -> int:
    from harness import cli

    output = lava_import.read_output(args.output)
    job = find_job_folder(output.path, args.job)
    manifest = job.manifest()
    folder = args.out or cli._run_folder(None, f"lava-{manifest.get('scenario')}-{manifest.get('variant')}")
    s = lava_import.import_output(output, folder, job, progress=cli._progress)
    page = cli._report(folder)
    print("\n".join(text.run_lines(s, folder)))
    print("\n".join(lava_lines(s["lava"])))
    if page:
        print(f"report: {page}")
    return {RunState.PASS.value: cli.EXIT_OK, RunState.REPRODUCED.value: cli.EXIT_FOUND,
            RunState.CRASH.value: cli.EXIT_FOUND, RunState.HANG.value: cli.EXIT_FOUND,
            RunState.INFRA.value: cli.EXIT_INFRA}[s["state"]]


def lava_lines(lava_facts: dict) -> list[str]:
    agree = "agree" if lava_facts["agree"] else "DISAGREE"
    return [f"LAVA: job {lava_facts['job_result']}; {lava_facts['loop_cases']} loop test cases, "
            f"{lava_facts['failed_loop_cases']} failed; the harness's parse of the same console: "
            f"{lava_facts['harness_loops']} loops, {lava_facts['harness_failed_loops']} failed ({agree})"]
