"""A LAVA server end to end: images/lava-server.sh starts Debian's lava-server and lava-dispatcher here
(postgres, gunicorn, publisher, scheduler, lava-worker, all on 127.0.0.1; it installs the packages when
they are missing), `cma-harness ab --executor lava` submits each boot of a campaign through the server's
REST API, and every run is imported from the job log the server kept: the jobs are on the server, the
cross-checks pass, the verdict is the harness's own. The server is stopped afterwards unless it was
already running.

It takes about 20 s to start fresh (database and migrations; plus the packages' install on a fresh
machine, about half a minute) and 7 s warm, and each job 2-4 s more than under lava-run. CI runs it with
the other integration tests; CMA_SKIP_LAVA_SERVER=1 skips it (a machine that must not run a LAVA server)."""

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from harness import cli
from harness.store import names
from tests.conftest import ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("CMA_SKIP_LAVA_SERVER") == "1", reason="CMA_SKIP_LAVA_SERVER=1"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the LAVA server's worker runs lava-run, as root only"),
]
SCRIPT = ROOT / "images" / "lava-server.sh"
STATE = Path(os.environ.get("CMA_LAVA_STATE", "/var/lib/cma-harness/lava-server"))
URL = f"http://127.0.0.1:{os.environ.get('CMA_LAVA_PORT', '8040')}/"
TOKEN_FILE = STATE / "token"


def _script(action: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), action], capture_output=True, text=True, timeout=timeout)


def _api(path: str):
    req = urllib.request.Request(URL + path, headers={"Authorization": f"Token {TOKEN_FILE.read_text().strip()}"})
    with urllib.request.urlopen(req, timeout=30) as answer:
        return json.load(answer)


@pytest.fixture(scope="module")
def lava_server():
    was_running = _script("status").returncode == 0
    t0 = time.monotonic()
    started = _script("start")
    print(f"images/lava-server.sh start: {time.monotonic() - t0:.1f} s ({'already running' if was_running else 'started'})"
          f"\n{started.stdout}{started.stderr}")
    assert started.returncode == 0, started.stdout + started.stderr
    # Nothing of it listens beyond 127.0.0.1: the API, the publisher's web and event sockets, postgres.
    port = int(URL.rsplit(":", 1)[1].strip("/"))
    ours = {addr for addr in _listening() if addr[1] in (port, port + 1, port + 2, 5432)}
    assert {(a, p) for a, p in ours if p != 5432} == {("127.0.0.1", port + i) for i in range(3)}, ours
    assert all(a == "127.0.0.1" for a, _ in ours), ours
    yield URL
    if not was_running:
        stopped = _script("stop")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def test_ab_with_a_lava_server_as_the_executor(lava_server, tmp_path, capsys):
    """Four boots, each a job on the server, imported; the verdict from the harness's statistics."""
    camp = tmp_path / "ab"
    t0 = time.monotonic()
    status = cli.main(["ab", "--executor", "lava", "--url", lava_server, "--token-file", str(TOKEN_FILE),
                       "--loops-per-run", "10", "--budget", "20", "--expect", "inconclusive", "--out", str(camp)])
    wall = time.monotonic() - t0
    summary = json.loads((camp / names.SUMMARY).read_text())
    runs = sorted((camp / names.RUNS).iterdir())
    assert len(runs) == 4
    overheads = []
    for r in runs:
        s = json.loads((r / names.SUMMARY).read_text())
        server = s["lava"]["server"]
        assert s["board"]["executor"] == "lava" and s["lava"]["agree"] and s["loops_done"] == 10, s.get("error")
        assert s["lava"]["job_result"] == "pass" and s["trace_error"] is None and (r / names.TRACE).stat().st_size > 0
        checks = {c["name"]: c["status"] for c in s["crosschecks"]}
        want_busy = "pass" if s["failed_loops"] else "skipped"
        assert checks == {"placement": "pass", "accounting": "pass", "variant_rule": "pass", "busy_pages": want_busy}
        # The job is on the server, finished, complete, on the local device, and ran what was submitted.
        job = _api(f"api/v0.2/jobs/{server['job_id']}/")
        assert (job["state"], job["health"], job["actual_device"]) == ("Finished", "Complete", "cma-qemu-01")
        submitted = (r / names.LAVA_JOB_FOLDER / names.LAVA_SERVER_JOB).read_text()
        assert yaml.safe_load(job["definition"]) == yaml.safe_load(submitted)     # the server re-dumps it
        assert server["job_page"].endswith(f"/scheduler/job/{server['job_id']}")
        boot = (r / names.LAVA_LOG).read_text()
        assert "-chardev file,id=trace,path=" in boot and "-net nic" not in boot and "-cpu cortex-a15" in boot
        ran = _seconds(job["end_time"]) - _seconds(job["start_time"])
        overheads.append(s["timings"]["lava_server_s"] - ran)
    assert summary["verdict"] == "inconclusive" and status == cli.EXIT_OK
    assert summary["variants"]["baseline"]["loops"] == 20 and summary["variants"]["patched"]["loops"] == 20
    capsys.readouterr()
    assert cli.main(["check", str(camp)]) == cli.EXIT_OK
    print(f"ab --executor lava: 4 jobs in {wall:.0f} s; submit-to-seen-finished minus the job's own run time: "
          f"{', '.join(f'{o:.1f}' for o in overheads)} s")


def test_a_wrong_token_stops_the_campaign_before_any_boot(lava_server, tmp_path, capsys):
    bad = tmp_path / "token"
    bad.write_text("not-a-token\n")
    status = cli.main(["ab", "--executor", "lava", "--url", lava_server, "--token-file", str(bad),
                       "--loops-per-run", "10", "--budget", "20", "--out", str(tmp_path / "ab")])
    err = capsys.readouterr().err
    assert status == cli.EXIT_INPUT and f"the LAVA server at {lava_server} refused" in err and "Invalid token" in err
    assert "not-a-token" not in err and not (tmp_path / "ab" / names.RUNS).exists()


def _listening() -> set[tuple[str, int]]:
    """Every listening TCP socket's (address, port), from /proc/net/tcp and tcp6 (no iproute2 needed)."""
    found = set()
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state != "0A":                               # TCP_LISTEN
                continue
            addr, port = local.split(":")
            raw = bytes.fromhex(addr)
            if name == "tcp":
                host = ".".join(str(b) for b in raw[::-1])
            else:
                words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
                host = socket.inet_ntop(socket.AF_INET6, b"".join(words))
            found.add((host, int(port, 16)))
    return found


def _seconds(stamp: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
