"""`--executor lava`: a LAVA server through its REST API (orchestrate/lava_client.py, parsers/lava_api.py)
and the boots it runs (orchestrate/lava_server_executor.py), against a fake server that answers what
LAVA 2023.01 answers (the bodies below are its, recorded from images/lava-server.sh's server)."""

import io
import json
import shutil
import socket
import sys
import urllib.error

import pytest
import yaml

from harness import cli, cli_lava
from harness.core.errors import InfraError, InputError
from harness.orchestrate import lava_server_executor
from harness.orchestrate.lava_client import TOKEN_ENV, LavaServer, Token, normal_url, resolve_token
from harness.orchestrate.lava_server_executor import ServerExecutor, server_definition
from harness.parsers import lava_api
from harness.store import names
from harness.store.lava_folder import LavaJobFolder
from tests.conftest import FIXTURES

SECRET = "s3cr3t-token-value"
URL = "http://127.0.0.1:8040/"
FAILING = FIXTURES / "lava-reintroduce-2012-20loops"     # 20 loops, 2 failed (one L, one P)
QEMU_FAILS = FIXTURES / "lava-stock-qemu-fails"           # QEMU could not start: no console


def _job(id_, state, health="Unknown", comment=None):
    return {"id": id_, "state": state, "health": health, "failure_comment": comment, "actual_device": "cma-qemu-01",
            "submit_time": "2026-12-02T00:47:47Z", "start_time": None, "end_time": None, "definition": "..."}


class _Answer(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeLava:
    """urlopen for a LAVA server: routes by method and path, records every request."""

    def __init__(self, jobs=(), log=b"", token=SECRET):
        self.jobs = list(jobs)              # the job's successive states, one per poll (the last repeats)
        self.log, self.token, self.requests = log, token, []

    def __call__(self, req, timeout=None):
        self.requests.append(req)
        path = req.full_url[len(URL):]
        if req.get_header("Authorization") != f"Token {self.token}":
            raise urllib.error.HTTPError(req.full_url, 403, "Forbidden", {}, io.BytesIO(b'{"detail":"Invalid token."}'))
        if path == "api/v0.2/system/whoami/":
            return _Answer(b'{"user":"cma-harness"}')
        if path.startswith("api/v0.2/devices/?device_type=qemu"):
            return _Answer(json.dumps({"count": 1, "results": [{"hostname": "cma-qemu-01", "health": "Good"}]}).encode())
        if path == "api/v0.2/jobs/" and req.get_method() == "POST":
            return _Answer(b'{"message":"job(s) successfully submitted","job_ids":[7]}')
        if path == "api/v0.2/jobs/7/":
            state = self.jobs.pop(0) if len(self.jobs) > 1 else self.jobs[0]
            return _Answer(json.dumps(state).encode())
        if path == "api/v0.2/jobs/7/logs/":
            return _Answer(self.log)
        if path == "api/v0.2/jobs/7/cancel/":
            return _Answer(b'{"message":"Job cancel signal sent."}')
        raise urllib.error.HTTPError(req.full_url, 404, "Not Found", {}, io.BytesIO(b'{"detail":"Not found."}'))

    def paths(self):
        return [(r.get_method(), r.full_url[len(URL):]) for r in self.requests]


def _server(fake, secret=SECRET):
    return LavaServer(URL, Token(secret, "--token-file /x"), urlopen=fake)


# -- requests, tokens, answers ------------------------------------------------------------------------

def test_a_request_carries_the_token_and_json_and_joins_the_path_to_the_base_url():
    server = LavaServer("http://127.0.0.1:8040", Token(SECRET, "--token"))
    get = server.request("api/v0.2/jobs/7/")
    assert get.full_url == "http://127.0.0.1:8040/api/v0.2/jobs/7/" and get.get_method() == "GET"
    assert get.get_header("Authorization") == f"Token {SECRET}" and get.data is None
    post = server.request("/api/v0.2/jobs/", {"definition": "job_name: x\n"})
    assert post.get_method() == "POST" and post.get_header("Content-type") == "application/json"
    assert json.loads(post.data) == {"definition": "job_name: x\n"}
    assert SECRET not in repr(server) and SECRET not in str(Token(SECRET, "--token"))
    assert server.job_url(7) == "http://127.0.0.1:8040/scheduler/job/7"


def test_the_url_is_normalised_and_what_is_no_http_url_is_refused():
    assert normal_url("http://lava.example/base") == "http://lava.example/base/"
    for bad in ("127.0.0.1:8040", "ftp://x/", ""):
        with pytest.raises(InputError, match="not a LAVA server's address"):
            normal_url(bad)


def test_the_token_comes_from_the_option_the_file_or_the_environment(tmp_path):
    f = tmp_path / "token"
    f.write_text(SECRET + "\n")
    assert resolve_token("abc", f, {TOKEN_ENV: "env"}) == Token("abc", "--token")
    assert resolve_token(None, f, {TOKEN_ENV: "env"}) == Token(SECRET, str(f))
    assert resolve_token(None, None, {TOKEN_ENV: " env "}) == Token("env", f"${TOKEN_ENV}")
    with pytest.raises(InputError, match="needs an API token.*lava-server.sh start.*tokens add"):
        resolve_token(None, None, {})
    with pytest.raises(InputError, match="cannot read the LAVA token file"):
        resolve_token(None, tmp_path / "missing", {})


def test_job_states_parse_and_odd_records_are_refused():
    s = lava_api.job_status(_job(7, "Finished", "Incomplete", "Connection closed"))
    assert s.finished and s.started and not s.complete and s.failure_comment == "Connection closed"
    assert lava_api.job_status(_job(7, "Finished", "Complete")).complete
    queued = lava_api.job_status(_job(7, "Submitted"))
    assert not queued.started and not queued.finished
    with pytest.raises(ValueError):
        lava_api.job_status({"id": 7, "state": "Exploded"})
    assert lava_api.submitted_id({"job_ids": [12]}) == 12
    with pytest.raises(ValueError):
        lava_api.submitted_id({"job_ids": [1, 2]})


def test_error_answers_are_read_as_lava_writes_them():
    assert lava_api.error_text(b'{"detail":"Invalid token."}') == "Invalid token."
    assert lava_api.error_text(b'{"message":"Problem with submitted job data: x"}').startswith("Problem")
    html = b"<html><head><title> | HTTP 404 </title></head><body><h1>404 Not found</h1></body></html>"
    assert lava_api.error_text(html) == "| HTTP 404 - 404 Not found"
    assert lava_api.job_timeout_s("timeouts:\n  job:\n    minutes: 2\n    seconds: 5\n") == 125


# -- errors ---------------------------------------------------------------------------------------------

def test_a_wrong_token_is_the_users_error_naming_the_server_and_how_to_get_one():
    with pytest.raises(InputError) as e:
        _server(FakeLava(), secret="wrong").whoami()
    text = str(e.value)
    assert URL in text and "Invalid token." in text and "--token-file" in text and "tokens add" in text
    assert "wrong" not in text and SECRET not in text


def test_an_unreachable_server_is_infra_naming_the_url():
    with socket.socket() as s:                  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InfraError, match=rf"the LAVA server at http://127.0.0.1:{port}/ did not answer.*lava-server.sh"):
        LavaServer(f"http://127.0.0.1:{port}", Token(SECRET, "--token"), timeout_s=5).whoami()


def test_the_check_before_the_first_boot_names_the_user_and_the_device():
    assert ServerExecutor(_server(FakeLava())).check() == f"LAVA server {URL}: user cma-harness; qemu devices cma-qemu-01"


# -- the boots --------------------------------------------------------------------------------------------

def test_the_submitted_job_carries_the_harness_qemu_options_trace_port_included():
    job = server_definition((FAILING / names.LAVA_JOB).read_text(), (FAILING / names.LAVA_DEVICE).read_text())
    context = yaml.safe_load(job)["context"]
    assert context["cpu"] == "cortex-a15" and context["machine"] == "virt,highmem=off"
    extra = context["extra_options"]
    assert "-device virtio-serial-device" in extra and any(o.startswith("-chardev file,id=trace,path=") for o in extra)
    assert not any(o.split()[0] in ("-M", "-cpu", "-m") for o in extra)
    assert extra.index("-device virtio-blk-device,drive=disk0") < extra.index("-device virtio-serial-device")
    assert yaml.safe_load(job)["actions"] == yaml.safe_load((FAILING / names.LAVA_JOB).read_text())["actions"]


def _job_folder(tmp_path, fixture):
    job = tmp_path / "run" / names.LAVA_JOB_FOLDER
    shutil.copytree(fixture, job, ignore=shutil.ignore_patterns(names.LAVA_OUTPUT))
    if not (job / names.LAVA_JOB).exists():
        shutil.copyfile(FAILING / names.LAVA_JOB, job / names.LAVA_JOB)
    return LavaJobFolder(job)


def _log_for(fixture, job):
    """The fixture's log as the server would give it for this job folder (its images' file:// URLs there)."""
    ran_in = json.loads((fixture / names.LAVA_MANIFEST).read_text())["run_command"].split()[2].rsplit("/", 1)[0]
    return (fixture / names.LAVA_OUTPUT / names.LAVA_OUTPUT_LOG).read_text().replace(ran_in, str(job.path)).encode()


def _executor(fake):
    clock = iter(range(0, 10**6, 2))
    return ServerExecutor(_server(fake), poll_s=0, clock=lambda: next(clock), sleep=lambda s: None)


def test_a_job_is_submitted_polled_fetched_and_imported_with_the_harness_verdict(tmp_path):
    job = _job_folder(tmp_path, FAILING)
    fake = FakeLava([_job(7, "Submitted"), _job(7, "Running"), _job(7, "Running"), _job(7, "Finished", "Complete")],
                    log=_log_for(FAILING, job))
    s = _executor(fake).run_job(job, job.path.parent, "reintroduce-2012", progress=lambda m: None)
    assert s["state"] == "reproduced" and s["loops_done"] == 20 and s["lava"]["agree"]
    assert s["lava"]["server"]["job_page"] == f"{URL}scheduler/job/7" and s["lava"]["server"]["health"] == "Complete"
    assert fake.paths()[0] == ("POST", "api/v0.2/jobs/") and fake.paths()[-1] == ("GET", "api/v0.2/jobs/7/logs/")
    submitted = json.loads(fake.requests[0].data)["definition"]
    assert submitted == job.file(names.LAVA_SERVER_JOB).read_text() and "trace" in submitted
    record = json.loads(job.file(names.LAVA_SERVER_RECORD).read_text())
    assert [r["state"] for r in record["states"]] == ["Submitted", "Running", "Finished"]
    assert SECRET not in json.dumps(s) and SECRET not in job.file(names.LAVA_SERVER_RECORD).read_text()


def test_an_incomplete_job_is_infra_with_lavas_error_text(tmp_path):
    job = _job_folder(tmp_path, QEMU_FAILS)
    fake = FakeLava([_job(7, "Running"), _job(7, "Finished", "Incomplete", "Connection closed")],
                    log=_log_for(QEMU_FAILS, job))
    s = _executor(fake).run_job(job, job.path.parent, "stock", progress=lambda m: None)
    assert s["state"] == "infra" and s["loops_done"] == 0
    assert s["error"].startswith(f"LAVA job 7 ({URL}scheduler/job/7) ended Incomplete: Connection closed")


def test_a_log_that_is_not_the_jobs_own_is_refused(tmp_path):
    """A new database numbers jobs from 1 again; LAVA then serves the old job's log under the new id."""
    job = _job_folder(tmp_path, FAILING)
    fake = FakeLava([_job(7, "Finished", "Complete")], log=(FAILING / names.LAVA_OUTPUT / names.LAVA_OUTPUT_LOG).read_bytes())
    with pytest.raises(InfraError, match="is not this job's: it never names its kernel.*lava-server.sh purge"):
        _executor(fake).run_job(job, job.path.parent, "stock", progress=lambda m: None)


def test_a_job_that_never_starts_is_canceled_at_its_deadline(tmp_path):
    job = _job_folder(tmp_path, FAILING)
    fake = FakeLava([_job(7, "Submitted")])
    run = _executor(fake)
    run.queue_timeout_s = 30
    with pytest.raises(InfraError, match=r"LAVA job 7 .* took too long to start .*: canceled"):
        run.run_job(job, job.path.parent, "stock", progress=lambda m: None)
    assert ("GET", "api/v0.2/jobs/7/cancel/") in fake.paths()


def test_a_boot_the_server_cannot_take_is_an_infra_run_the_campaign_retries(tmp_path, monkeypatch):
    def no_build(req, progress):
        raise InfraError("kernel build failed")
    monkeypatch.setattr(lava_server_executor.lava_executor.lava, "write_job", no_build)
    from harness.spec import config
    s = ServerExecutor(_server(FakeLava()))(config.load(None), "stock", tmp_path / "r", loops=3, progress=lambda m: None,
                                            board=None)
    assert s["state"] == "infra" and "the LAVA job did not run: kernel build failed" in s["error"]
    assert json.loads((tmp_path / "r" / names.SUMMARY).read_text())["state"] == "infra"


def test_the_token_given_on_the_command_line_leaves_sys_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cma-harness", "ab", "--executor", "lava", "--token", SECRET, "--out", "x"])
    args = cli.build_parser().parse_args(sys.argv[1:])
    assert args.token == SECRET and SECRET not in " ".join(sys.argv) and "<token>" in sys.argv


def test_executor_lava_without_url_or_token_says_what_to_pass(monkeypatch, tmp_path):
    monkeypatch.delenv("CMA_LAVA_URL", raising=False)
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    args = cli.build_parser().parse_args(["ab", "--executor", "lava"])
    with pytest.raises(InputError, match="--url URL"):
        cli_lava.executor(args)
    args = cli.build_parser().parse_args(["ab", "--executor", "lava", "--url", URL])
    with pytest.raises(InputError, match="needs an API token"):
        cli_lava.executor(args)


def test_an_interrupt_while_waiting_cancels_the_job_on_the_server(tmp_path):
    job = _job_folder(tmp_path, FAILING)
    fake = FakeLava([_job(7, "Running")])

    def interrupted(seconds):
        raise KeyboardInterrupt
    run = ServerExecutor(_server(fake), poll_s=0, sleep=interrupted)
    with pytest.raises(KeyboardInterrupt):
        run.run_job(job, job.path.parent, "stock", progress=lambda m: None)
    assert fake.paths()[-1] == ("GET", "api/v0.2/jobs/7/cancel/")
