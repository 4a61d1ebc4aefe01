"""A LAVA job end to end: `cma-harness lava-job` writes it, lava-run (LAVA's own dispatcher, as root, as CI
runs) boots the harness's guest through LAVA's qemu boot method with the harness's QEMU arguments, and
`cma-harness import` turns LAVA's output into a run folder that passes every cross-check."""

import json
import os
import re
import shlex
import shutil
import subprocess
import time

import pytest
import yaml

from harness import cli
from harness.parsers import kmsg
from harness.present import lava_job
from harness.store import names

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("lava-run") is None,
                       reason="lava-run is missing: apt-get install -y lava-dispatcher (images/setup-host.sh does)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="lava-run runs as root only"),
]
LOOPS = 20


def _log_entries(path):
    """LAVA's log read on its own terms (one YAML mapping a line), not through the harness's parser."""
    return [yaml.safe_load(line) for line in path.read_text().splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def lava_job_done(tmp_path_factory):
    job = tmp_path_factory.mktemp("lava") / "job"
    assert cli.main(["lava-job", "--variant", "reintroduce-2012", "--loops", str(LOOPS), "--out", str(job),
                     "--job-id", "cma-integration"]) == cli.EXIT_OK
    manifest = json.loads((job / names.LAVA_MANIFEST).read_text())
    t0 = time.monotonic()
    done = subprocess.run(["bash", "-c", manifest["run_command"]], timeout=900)
    wall = time.monotonic() - t0
    print(f"lava-run: {LOOPS} loops in {wall:.1f} s, exit status {done.returncode}")
    return job, manifest, done.returncode


def test_lava_run_passes_the_job_with_one_case_per_loop_and_the_harness_failed_loop_count(lava_job_done):
    job, manifest, status = lava_job_done
    log = job / names.LAVA_OUTPUT / names.LAVA_OUTPUT_LOG
    entries = _log_entries(log)
    assert status == 0, [e["msg"] for e in entries if e["lvl"] in ("error", "exception")]
    assert yaml.safe_load((job / names.LAVA_OUTPUT / names.LAVA_OUTPUT_RESULT).read_text())["result"] == "pass"
    cases = [e["msg"] for e in entries if e["lvl"] == "results" and e["msg"]["definition"] == lava_job.MONITOR_NAME]
    loops = [c for c in cases if c["case"].startswith("loop_")]
    assert [c["case"] for c in loops] == [f"loop_{n}" for n in range(LOOPS)]
    # The harness's own parse of the same console (LAVA's target lines) against LAVA's verdicts.
    console = [e["msg"].replace('\\"', '"') for e in entries if e["lvl"] == "target"]
    records = [ev for ev in kmsg.parse_lines(console) if isinstance(ev, kmsg.LoopRecord)]
    harness_failed = sum(bool(r.failed) for r in records)
    assert len(records) == LOOPS
    assert sum(c["result"] == "fail" for c in loops) == harness_failed
    [summary] = [c for c in cases if c["case"] == lava_job.SUMMARY_CASE]
    assert int(summary["measurement"]) == harness_failed
    assert [c["measurement"] for c in loops] == [str(r.failed) for r in records]


def test_lava_booted_the_harness_qemu_command_line(lava_job_done):
    job, manifest, _ = lava_job_done
    entries = _log_entries(job / names.LAVA_OUTPUT / names.LAVA_OUTPUT_LOG)
    [boot] = [e["msg"] for e in entries if e["lvl"] == "info" and str(e["msg"]).startswith("Boot command: ")]
    ran = shlex.split(boot[len("Boot command: "):])
    # The downloaded files stand where the manifest has LAVA's placeholders; everything else is the same.
    expected = manifest["qemu_argv"]
    assert len(ran) == len(expected), (ran, expected)
    for got, want in zip(ran, expected):
        label = next((lb for lb in lava_job.IMAGE_LABELS if "{" + lb + "}" in want), None)
        if label is None:
            assert got == want
        else:
            assert re.fullmatch(re.escape(want).replace(re.escape("{" + label + "}"), r"/\S+"), got), (got, want)
    ran = " ".join(ran)
    assert "-cpu cortex-a15" in ran and "-m 128M" in ran and "-net" not in ran and "cortex-a57" not in ran


def test_import_of_lava_output_passes_every_cross_check(lava_job_done, tmp_path, capsys):
    job, _, _ = lava_job_done
    run = tmp_path / "run"
    status = cli.main(["import", str(job / names.LAVA_OUTPUT), "--out", str(run)])
    summary = json.loads((run / names.SUMMARY).read_text())
    assert summary["state"] in ("pass", "reproduced"), summary["error"]
    assert status == (cli.EXIT_OK if summary["state"] == "pass" else cli.EXIT_FOUND)
    assert summary["loops_done"] == LOOPS and summary["lava"]["agree"], summary["lava"]
    assert summary["trace_error"] is None and (run / names.TRACE).stat().st_size > 0
    capsys.readouterr()
    assert cli.main(["check", str(run)]) == cli.EXIT_OK
    checks = {c["name"]: c["status"] for c in summary["crosschecks"]}
    want_busy = "pass" if summary["failed_loops"] else "skipped"       # skipped: no failed chunk to replay
    assert checks == {"placement": "pass", "accounting": "pass", "variant_rule": "pass", "busy_pages": want_busy}
    print(f"LAVA {summary['lava']['loop_cases']} loop cases, {summary['lava']['failed_loop_cases']} failed; "
          f"harness {summary['failed_loops']} failed loops")


def test_ab_with_lava_run_as_the_executor(tmp_path, capsys):
    """Four boots, each a LAVA job run by lava-run and imported; the verdict from the harness's statistics."""
    camp = tmp_path / "ab"
    status = cli.main(["ab", "--executor", "lava-run", "--loops-per-run", "10", "--budget", "20",
                       "--expect", "inconclusive", "--out", str(camp)])
    summary = json.loads((camp / names.SUMMARY).read_text())
    runs = sorted((camp / names.RUNS).iterdir())
    assert len(runs) == 4 and all((r / names.LAVA_JOB_FOLDER / names.LAVA_JOB).is_file() for r in runs)
    for r in runs:
        s = json.loads((r / names.SUMMARY).read_text())
        assert s["board"]["executor"] == "lava" and s["lava"]["agree"] and s["loops_done"] == 10, s["lava"]
    # 2 boots per arm cannot reach a verdict at alpha 0.001 (the plan says so): the statistics ran on 40 loops.
    assert summary["verdict"] == "inconclusive" and status == cli.EXIT_OK
    assert summary["variants"]["baseline"]["loops"] == 20 and summary["variants"]["patched"]["loops"] == 20
    capsys.readouterr()
    assert cli.main(["check", str(camp)]) == cli.EXIT_OK
