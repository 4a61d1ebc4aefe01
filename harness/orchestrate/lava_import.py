"""`cma-harness import`: a LAVA job's output (its log, with the board's console and LAVA's test cases)
turned into a run folder, so the cross-checks, the statistics and the report read a boot that ran on a
farm as they read one the harness drove.

The console goes through the same watcher as a live run (run.collect's, over the log's lines instead of a
board's), so loops.jsonl, the end state and the kernel reports are what the harness would have recorded;
the autorun's counter lines give the sysfs/vmstat deltas, and a QEMU job's trace stream becomes trace.txt.
LAVA's own verdict is kept beside the harness's (summary.json `lava`), with the two failed-loop counts.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from harness.boards.base import Board
from harness.core.deadline import Deadline
from harness.core.errors import InfraError, InputError
from harness.guest import autorun, snippets, tracing
from harness.judging import crosscheck
from harness.orchestrate import run as run_mod
from harness.orchestrate.run import RunState, RunSummary
from harness.parsers import kmsg, lava_log
from harness.present import lava_job
from harness.spec import config
from harness.store import names
from harness.store.jsonl import JsonlWriter
from harness.store.lava_folder import STATIC_RUN_FILES, LavaJobFolder
from harness.store.run_folder import RunFolder, read_lines


class NotLavaOutput(InputError):
    """The folder (or file) given is not a LAVA job's output."""


@dataclass(frozen=True)
class LavaOutput:
    path: Path                  # the output folder
    log_path: Path
    log: lava_log.LavaLog


def read_output(path: Path) -> LavaOutput:
    """A LAVA output folder (lava-run's --output-dir with its log saved as output.yaml, or a folder with a
    LAVA server's job log) or the log file itself, parsed; an error says what is missing and how to get it."""
    if not path.exists():
        raise NotLavaOutput(f"{path}: no such folder; pass the LAVA job's output folder (lava-run's --output-dir)")
    log_path = path if path.is_file() else path / names.LAVA_OUTPUT_LOG
    folder = path.parent if path.is_file() else path
    if not log_path.is_file():
        raise NotLavaOutput(
            f"{path}: not a LAVA job's output: no {names.LAVA_OUTPUT_LOG} in it. lava-run writes its log on stderr: "
            f"run it with `2> {path / names.LAVA_OUTPUT_LOG}` (the command `cma-harness lava-job` prints does), or save "
            f"a LAVA server's job log there: lavacli jobs logs --raw JOB_ID > {path / names.LAVA_OUTPUT_LOG}")
    log = lava_log.parse(read_lines(log_path))
    if not log.entries:
        raise NotLavaOutput(f"{log_path}: not a LAVA job log: none of its {log.unreadable} lines is a LAVA log entry "
                            f"({{\"dt\": ..., \"lvl\": ..., \"msg\": ...}} one a line); pass lava-run's stderr or a LAVA "
                            f"server's raw job log")
    return LavaOutput(folder, log_path, log)


class LogConsole(Board):
    """A board that is only a recorded console: the log's target lines, then the end (the job is over)."""

    def __init__(self, lines: Sequence[str], ended_by: str):
        self._lines = lines
        self._ended_by = ended_by

    def power_on(self, deadline: Deadline) -> None:
        raise InfraError("a recorded LAVA console cannot be booted")

    def console_lines(self, tick: float = 1.0) -> Iterator[str | None]:
        return iter(self._lines)

    def run(self, argv, deadline):
        raise InfraError("a recorded LAVA console has no command channel")

    def run_script(self, script, deadline):
        raise InfraError("a recorded LAVA console has no command channel")

    @property
    def running(self) -> bool:
        return False

    def exit_description(self, wait_s: float = 2.0) -> str:
        return self._ended_by

    def power_off(self) -> None:
        pass


def _job_error(log: lava_log.LavaLog) -> str:
    job = log.job or {}
    if job.get("result") == "pass":
        return "LAVA passed the job"
    why = job.get("error_msg") or (log.errors[-1] if log.errors else "no reason logged")
    return f"LAVA failed the job ({job.get('error_type') or 'no error type'}: {why})" if job else \
        "the log has no job result (lava-run was stopped, or the log is cut short)"


def import_output(output: LavaOutput, out: Path, job: LavaJobFolder, *, require_records: bool = True,
                  progress=lambda s: None) -> dict:
    """Make the run folder `out` from a LAVA job's output and its job folder; returns summary.json's content.
    With require_records, a console with no record of the test module is an error (nothing to import)."""
    log, manifest = output.log, job.manifest()
    starts = [ev for ev in kmsg.parse_lines(log.console) if isinstance(ev, kmsg.ModuleStart)]
    if require_records and not starts:
        tail = "".join(f"\n  | {line}" for line in log.console[-5:]) or " (none)"
        raise InputError(f"{output.log_path}: the console in this LAVA log has no record of the test module (no "
                         f"`cma_harness: start` line among its {len(log.console)} console lines), so there is no run "
                         f"to import: {_job_error(log)}. Fix what the console's last lines say and run the job again "
                         f"(a job `cma-harness lava-job` wrote loads the module by itself, images/{names.AUTORUN}); "
                         f"last console lines:{tail}")
    if RunFolder.holds_run(out):
        raise InputError(f"{out} already holds a run (its {names.LOOPS}); pass a new folder to --out")
    run = RunFolder(out).create()
    for name in STATIC_RUN_FILES:
        if job.file(name).is_file():
            shutil.copyfile(job.file(name), run.file(name))
    shutil.copyfile(output.log_path, run.file(names.LAVA_LOG))
    run.file(names.CONSOLE).write_text("".join(line + "\n" for line in log.console))
    scn = config.load(run.file(names.SCENARIO))
    summary = RunSummary(RunState.INFRA, manifest["variant"], manifest["loops"],
                         kernel_key=manifest.get("kernel_key"), module_key=manifest.get("module_key"),
                         board={"name": manifest.get("board"), "kind": manifest.get("kind"), "executor": "lava",
                                "job": str(job.path)})
    if starts:
        summary.first_loop = starts[0].params.get("first_loop", 0)
    console = LogConsole(log.console, f"the LAVA log ended ({_job_error(log)})")
    with run.loop_writer() as loops_out:
        run_mod.collect_loops(scn, console, loops_out, summary, manifest["loops"], progress)
    report = autorun.parse(log.console)
    _autorun_facts(summary, report, log, module_started=bool(starts))
    _timings(summary, run.records())
    _trace(job, run, scn, summary, report, manifest)
    analysis = run_mod.analyse_run(scn, run, summary)
    spec = scn.kernel_of(summary.variant)
    data = summary.as_dict()
    data["crosschecks"] = crosscheck.crosscheck_quietly(scn, spec, run, data, analysis)
    data["lava"] = lava_facts(log, summary)
    with JsonlWriter(run.file(names.LAVA_CASES)) as cases:
        for case in log.test_cases:
            cases.write(case)
    run.write_summary(data)
    return data


def _autorun_facts(summary: RunSummary, report: autorun.AutorunReport, log: lava_log.LavaLog,
                   module_started: bool) -> None:
    if report.counters_before is not None and report.counters_after is not None and \
            summary.state in (RunState.PASS, RunState.REPRODUCED):
        summary.counters_delta = snippets.counter_delta(report.counters_before, report.counters_after)
    if report.workload:
        summary.timings["workload_warm_s"] = snippets.warm_seconds(report.workload)
    if report.failed and not summary.error:
        summary.error = f"the guest's autorun failed at: {report.failed}"
    if summary.state is RunState.INFRA and log.monitor_timed_out and module_started:
        # The module had started, and LAVA's monitor waited its whole timeout (the scenario's hang
        # timeout, lava_job.JobTimes) for the next record: the harness's hang.
        summary.state = RunState.HANG
        summary.error = f"no loop record for the LAVA monitor's timeout ({lava_log.MONITOR_TIMEOUT})"


def _timings(summary: RunSummary, records: list[dict]) -> None:
    """The guest's own clock (printk times) instead of the import's: the replay took no time."""
    times = [r["time"] for r in records if r.get("time") is not None]
    summary.timings.pop("loops_per_min", None)
    if times:
        summary.timings["boot_to_first_loop_s"] = round(times[0], 2)
    if len(times) > 1 and times[-1] > times[0]:
        summary.timings["loops_per_min"] = round(60 * (len(times) - 1) / (times[-1] - times[0]), 1)


def _trace(job: LavaJobFolder, run: RunFolder, scn, summary: RunSummary, report: autorun.AutorunReport,
           manifest: dict) -> None:
    """A QEMU job's trace stream (beside the job) as the run's trace.txt, when its end line arrived."""
    if not manifest.get("trace"):
        return
    stream = job.trace_stream
    if not stream.is_file():
        summary.trace_error = f"no trace stream at {stream} (the job ran elsewhere, or was run again since)"
        return
    data = stream.read_bytes()
    end = (tracing.STREAM_END + "\n").encode()
    if not data.endswith(end):
        shutil.copyfile(stream, run.file(names.TRACE_STREAM))
        summary.trace_error = f"the trace stream did not end with {tracing.STREAM_END!r}: kept as {names.TRACE_STREAM}"
        return
    run.file(names.TRACE).write_bytes(data[:-len(end)])
    run.file(names.TRACE_STATS).write_text(report.trace_stats_text())


def lava_facts(log: lava_log.LavaLog, summary: RunSummary) -> dict:
    """LAVA's view of the boot beside the harness's: its test cases, failed loops by each count."""
    loops = [c for c in log.test_cases if c.get("case", "").startswith("loop_")]
    done = next((c for c in log.test_cases if c.get("case") == lava_job.SUMMARY_CASE), None)
    return {"job_result": (log.job or {}).get("result"), "job_error": None if (log.job or {}).get("result") == "pass"
            else _job_error(log), "test_cases": len(log.test_cases), "loop_cases": len(loops),
            "failed_loop_cases": sum(c.get("result") == "fail" for c in loops),
            "summary_case": done and {"result": done.get("result"), "failed_loops": int(done.get("measurement", 0))},
            "harness_failed_loops": summary.failed_loops, "harness_loops": summary.loops_done,
            "agree": len(loops) == summary.loops_done and
            sum(c.get("result") == "fail" for c in loops) == summary.failed_loops,
            "boot_command": log.boot_command, "monitor_timed_out": log.monitor_timed_out,
            "log_entries": log.entries, "log_unreadable": log.unreadable, "started": log.first_dt,
            "ended": log.last_dt}
