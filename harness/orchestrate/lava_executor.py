"""A campaign's boots executed by LAVA instead of by the harness (`cma-harness ab --executor lava-run`):
each boot is a job `lava-job` writes into the run folder's lava-job/ folder, run by lava-run, then imported
into that run folder. The verdict stays the harness's own, from the imported loops.jsonl; LAVA's verdict
on each boot is kept in its summary.json (`lava`)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from harness.core.errors import InfraError
from harness.orchestrate import lava, lava_import
from harness.orchestrate.run import RunState, RunSummary
from harness.spec.boards import BoardFile
from harness.spec.config import Scenario
from harness.store import names
from harness.store.run_folder import RunFolder

EXECUTORS = ("harness", "lava-run", "lava")       # lava: a LAVA server (orchestrate/lava_server_executor.py)


def boot_as_job(scn: Scenario, variant: str, folder: Path, *, loops: int, progress, board: BoardFile | None,
                run_job: Callable[[lava.WrittenJob], dict], first_loop: int = 0) -> dict:
    """One boot as a LAVA job (the campaign.Executor protocol, whoever runs the job): the job written into
    the run folder's lava-job/, run and imported by run_job, the run folder's summary written and returned.
    A job that cannot be written or run is an `infra` run with the reason."""
    board = board or BoardFile()
    run = RunFolder(folder).create()
    try:
        written = lava.write_job(lava.JobRequest(scn, variant, scn.variant(variant), board,
                                                 folder / names.LAVA_JOB_FOLDER, loops, job_id=folder.name,
                                                 first_loop=first_loop),
                                 progress=progress)
        summary = run_job(written)
        run.write_summary(summary)
        return summary
    except (InfraError, OSError) as e:
        s = RunSummary(RunState.INFRA, variant, loops, error=f"the LAVA job did not run: {e}",
                       board={"name": board.name, "kind": board.kind, "executor": "lava"})
        run.write_summary(s.as_dict())
        progress(f"[{variant}] {s.error}")
        return s.as_dict()


def lava_run_executor(scn: Scenario, variant: str, folder: Path, *, loops: int, progress,
                      board: BoardFile | None, first_loop: int = 0) -> dict:
    """One boot as a LAVA job under lava-run: its run folder's summary."""

    def under_lava_run(written: lava.WrittenJob) -> dict:
        status, seconds = lava.run_job(written.folder, progress=progress)
        progress(f"[{variant}] lava-run ended with status {status} after {seconds:.0f} s")
        try:
            output = lava_import.read_output(written.folder.output)
        except lava_import.NotLavaOutput as e:          # lava-run died before it logged anything
            raise InfraError(f"lava-run left no job log (exit status {status}): {e}") from e
        summary = lava_import.import_output(output, folder, written.folder, require_records=False, progress=progress)
        summary["timings"]["lava_run_s"] = round(seconds, 1)
        return summary

    return boot_as_job(scn, variant, folder, loops=loops, progress=progress, board=board, run_job=under_lava_run,
                       first_loop=first_loop)
