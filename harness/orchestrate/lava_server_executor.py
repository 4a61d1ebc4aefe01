"""A campaign's boots run by a LAVA server (`cma-harness ab --executor lava --url URL --token-file FILE`):
each boot is the job `lava-job` writes into the run folder's lava-job/ folder, submitted through the
server's REST API, polled until it is finished (within a deadline), its log fetched into the layout
`cma-harness import` reads (lava-job/output/output.yaml) and imported into the run folder, as
`--executor lava-run` does. The verdict stays the harness's own, from the imported loops.jsonl; the
server's view of each job (its id and page, state, health, LAVA's failure comment) is kept in
summary.json `lava.server` and lava-job/server-job.json.

The job's images are file:// URLs of this machine, so the server's worker must see this machine's files
(a worker on this machine: images/lava-server.sh). For a QEMU job, the submitted job (server-job.yaml)
carries the harness's whole QEMU option list in its context (`extra_options`, with the trace port,
whose file is in the job folder): a device whose dictionary is images/lava/server-device.jinja2 starts
exactly those, so the trace arrives as it does under lava-run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from harness.core.errors import HarnessError, InfraError
from harness.orchestrate import lava_executor, lava_import
from harness.orchestrate.lava_client import LavaServer
from harness.orchestrate.run import RunState
from harness.parsers import lava_api
from harness.spec.boards import BoardFile
from harness.spec.config import Scenario
from harness.store import names
from harness.store.lava_folder import LavaJobFolder

DEVICE_TYPE = "qemu"
# LAVA's stock qemu template sets these from the job's context (cpu, memory, machine): not in extra_options.
_CONTEXT_SET = ("-M", "-cpu", "-m")
_POLL_FAILURES = 5              # consecutive failed polls (a server restarting) before the boot is infra


def server_definition(job_text: str, device_text: str | None) -> str:
    """The job to submit: job.yaml, and for a QEMU job the harness's QEMU options from the rendered device
    file (device.yaml) as the context's extra_options, trace port included."""
    if device_text is None:
        return job_text
    job, device = yaml.safe_load(job_text), yaml.safe_load(device_text)
    options = device["actions"]["boot"]["methods"]["qemu"]["parameters"]["options"]
    job.setdefault("context", {})["extra_options"] = [o for o in options if o.split()[0] not in _CONTEXT_SET]
    header = ("# The job `cma-harness ab --executor lava` submitted: job.yaml beside it, with the harness's QEMU\n"
              "# options (device.yaml's, trace port included) as the context's extra_options, which the local\n"
              "# server's device (images/lava/server-device.jinja2) starts as they are.\n")
    return header + yaml.safe_dump(job, sort_keys=False, width=200)


@dataclass
class ServerExecutor:
    """The campaign.Executor protocol over a LAVA server. queue_timeout_s: how long a job may wait for a
    device (the server's other jobs, a parallel pair's other boot); once it runs, the job's own timeout
    (timeouts.job) and a margin for the log's last upload."""
    server: LavaServer
    poll_s: float = 2.0
    queue_timeout_s: float = 3600.0
    finish_margin_s: float = 120.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def check(self) -> str:
        """Before the first boot: the token's user, and a device of type qemu (errors say what to fix)."""
        user = self.server.whoami()
        devices = self.server.devices(DEVICE_TYPE)
        if not devices:
            raise InfraError(f"the LAVA server at {self.server.url} has no {DEVICE_TYPE} device in good health: "
                             f"the local server's is cma-qemu-01 (images/lava-server.sh status)")
        return f"LAVA server {self.server.url}: user {user}; {DEVICE_TYPE} devices {', '.join(devices)}"

    def __call__(self, scn: Scenario, variant: str, folder: Path, *, loops: int, progress,
                 board: BoardFile | None, first_loop: int = 0) -> dict:
        return lava_executor.boot_as_job(scn, variant, folder, loops=loops, progress=progress, board=board,
                                         run_job=lambda written: self.run_job(written.folder, folder, variant, progress),
                                         first_loop=first_loop)

    def run_job(self, job: LavaJobFolder, run_path: Path, variant: str, progress) -> dict:
        """Submit the job folder's job, wait for it, fetch its log, import it into the run folder run_path."""
        device = job.file(names.LAVA_DEVICE)
        definition = server_definition(job.file(names.LAVA_JOB).read_text(),
                                       device.read_text() if device.is_file() else None)
        job.file(names.LAVA_SERVER_JOB).write_text(definition)
        if job.trace_stream.exists():
            job.trace_stream.unlink()
        t0 = self.clock()
        job_id = self.server.submit(definition)
        record = {"url": self.server.url, "job_id": job_id, "job_page": self.server.job_url(job_id), "states": []}
        _write_record(job, record)
        progress(f"[{variant}] LAVA job {job_id} submitted: {self.server.job_url(job_id)}")
        try:
            status = self.wait(job_id, lava_api.job_timeout_s(definition) or 3600, variant, progress, record, job)
        except KeyboardInterrupt:           # Ctrl-C, SIGTERM: the job must not go on booting on the server
            try:
                self.server.cancel(job_id)
                progress(f"[{variant}] LAVA job {job_id} canceled")
            except HarnessError:
                pass
            raise
        seconds = self.clock() - t0
        progress(f"[{variant}] LAVA job {job_id} {status.health} after {seconds:.0f} s")
        why = f"LAVA job {job_id} ({self.server.job_url(job_id)}) ended {status.health}" + \
            (f": {status.failure_comment}" if status.failure_comment else "")
        output = job.output
        output.mkdir(parents=True, exist_ok=True)
        try:
            log = self.server.logs(job_id)
        except InfraError as e:
            raise InfraError(f"{why}; its log could not be fetched: {e}") from e
        (output / names.LAVA_OUTPUT_LOG).write_bytes(log)
        kernel = (job.images / names.KERNEL_IMAGE).resolve().as_uri()
        if status.started and kernel.encode() not in log:
            raise InfraError(f"the log the server gave for LAVA job {job_id} is not this job's: it never names its "
                             f"kernel {kernel} (a log left from an earlier database's job {job_id}? "
                             f"images/lava-server.sh purge removes them)")
        try:
            out = lava_import.read_output(output)
        except lava_import.NotLavaOutput as e:
            raise InfraError(f"{why}, and left no job log: {e}") from e
        summary = lava_import.import_output(out, run_path, job, require_records=False, progress=progress)
        summary["lava"]["server"] = {"url": self.server.url, "job_page": self.server.job_url(job_id),
                                     **status.as_dict()}
        summary["timings"]["lava_server_s"] = round(seconds, 1)
        if summary["state"] == RunState.INFRA.value and not status.complete:
            summary["error"] = why + (f"; {summary['error']}" if summary.get("error") else "")
        return summary

    def wait(self, job_id: int, job_timeout_s: float, variant: str, progress, record: dict,
             job: LavaJobFolder) -> lava_api.JobStatus:
        """Poll until the job is finished: at most queue_timeout_s for it to start, then its own timeout
        (plus a margin). A job past its deadline is canceled, and the boot is infra."""
        t0 = self.clock()
        deadline = t0 + self.queue_timeout_s
        started, seen, failures = False, None, 0
        while True:
            try:
                status = self.server.job(job_id)
                failures = 0
            except InfraError:
                failures += 1
                if failures >= _POLL_FAILURES:
                    raise
                self.sleep(self.poll_s)
                continue
            if status.state != seen:
                seen = status.state
                record["states"].append({"state": status.state, "after_s": round(self.clock() - t0, 1)})
                _write_record(job, {**record, **status.as_dict()})
                if status.state != lava_api.FINISHED:
                    progress(f"[{variant}] LAVA job {job_id}: {status.state}")
            if status.finished:
                return status
            if status.started and not started:
                started = True
                deadline = self.clock() + job_timeout_s + self.finish_margin_s
            if self.clock() > deadline:
                what = "to finish" if started else "to start (no free device)"
                try:
                    self.server.cancel(job_id)
                    done = "canceled"
                except HarnessError as e:
                    done = f"canceling it failed too: {e}"
                raise InfraError(f"LAVA job {job_id} ({self.server.job_url(job_id)}) took too long {what} "
                                 f"({job_timeout_s if started else self.queue_timeout_s:.0f} s): {done}")
            self.sleep(self.poll_s)


def _write_record(job: LavaJobFolder, record: dict) -> None:
    job.file(names.LAVA_SERVER_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
