"""A LAVA server through its REST API (v0.2), over plain HTTP(S) with urllib: check the token, submit a
job, read its state, fetch its log, cancel it. Every failure is a harness error that names the server's
URL: a refused token is the user's to fix (InputError, with how to get one), a server that does not answer
or answers badly is infrastructure (InfraError). The token is sent as `Authorization: Token ...` and is
never part of a message, a file or a repr."""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from harness.core.errors import InfraError, InputError
from harness.parsers import lava_api

TOKEN_ENV = "CMA_LAVA_TOKEN"
# Where images/lava-server.sh keeps the local server's token (CMA_LAVA_STATE changes it).
LOCAL_TOKEN_FILE = Path("/var/lib/cma-harness/lava-server/token")
TOKEN_HELP = (f"pass a token of a user of that server with --token-file FILE (or --token TOKEN, or ${TOKEN_ENV}): "
              f"the local server's is {LOCAL_TOKEN_FILE} (`images/lava-server.sh start` makes it and prints the URL); "
              f"on another LAVA server make one on its web pages (API > Authentication Tokens) or, on the server, "
              f"with `lava-server manage tokens add --user USER`")


@dataclass(frozen=True)
class Token:
    secret: str = field(repr=False)
    source: str                     # where it came from, for messages: "--token", "$CMA_LAVA_TOKEN", a file

    def __str__(self) -> str:
        return f"the token from {self.source}"


def resolve_token(token: str | None, token_file: Path | None, environ: Mapping[str, str] = os.environ) -> Token:
    """--token, else --token-file, else $CMA_LAVA_TOKEN; an error says how to get one."""
    if token:
        return Token(token.strip(), "--token")
    if token_file is not None:
        try:
            secret = Path(token_file).read_text().strip()
        except OSError as e:
            raise InputError(f"cannot read the LAVA token file {token_file}: {e.strerror or e}; {TOKEN_HELP}") from e
        if not secret:
            raise InputError(f"the LAVA token file {token_file} is empty; {TOKEN_HELP}")
        return Token(secret, str(token_file))
    if environ.get(TOKEN_ENV, "").strip():
        return Token(environ[TOKEN_ENV].strip(), f"${TOKEN_ENV}")
    raise InputError(f"--executor lava needs an API token: {TOKEN_HELP}")


def normal_url(url: str) -> str:
    """The server's base URL with one trailing slash; an error for what is no http(s) URL."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"--url {url!r} is not a LAVA server's address: give http://HOST[:PORT]/ (the local "
                         f"server's: images/lava-server.sh start prints it)")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/", "", ""))


class ServerError(InfraError):
    """The server answered with an HTTP error (other than a refused token)."""

    def __init__(self, message: str, code: int, detail: str):
        super().__init__(message)
        self.code, self.detail = code, detail


Opener = Callable[..., object]       # urllib.request.urlopen's signature: (request, timeout=...) -> response


class LavaServer:
    def __init__(self, url: str, token: Token, *, timeout_s: float = 30, urlopen: Opener = urllib.request.urlopen):
        self.url = normal_url(url)
        self._token = token
        self.timeout_s = timeout_s
        self._urlopen = urlopen

    def __repr__(self) -> str:
        return f"LavaServer({self.url!r}, {self._token})"

    def job_url(self, job_id: int) -> str:
        """The job's page on the server."""
        return f"{self.url}scheduler/job/{job_id}"

    def request(self, path: str, body: Mapping | None = None) -> urllib.request.Request:
        """The HTTP request for an API path (relative to the server's URL): GET, or POST of a JSON body."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path.lstrip("/"), data=data, method="GET" if data is None else "POST")
        req.add_header("Authorization", f"Token {self._token.secret}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        return req

    def call(self, path: str, body: Mapping | None = None) -> bytes:
        """The answer's body; every failure as a harness error naming the server."""
        req = self.request(path, body)
        try:
            with self._urlopen(req, timeout=self.timeout_s) as answer:
                return answer.read()
        except urllib.error.HTTPError as e:
            raise self._http_error(path, e.code, e.read() if e.fp is not None else b"") from None
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as e:
            reason = getattr(e, "reason", None) or e
            raise InfraError(f"the LAVA server at {self.url} did not answer ({reason}): start it (the local one: "
                             f"images/lava-server.sh start) or check --url") from None

    def _http_error(self, path: str, code: int, body: bytes) -> Exception:
        detail = lava_api.error_text(body)
        if code in (401, 403):
            return InputError(f"the LAVA server at {self.url} refused {self._token} ({code}: {detail}); {TOKEN_HELP}")
        if code == 404:
            return ServerError(f"the LAVA server at {self.url} has no {path} (404: {detail}): is --url the server's "
                               f"base address (where LAVA answers {self.url}api/v0.2/)?", code, detail)
        return ServerError(f"the LAVA server at {self.url} answered {path} with HTTP {code}: {detail}", code, detail)

    def json(self, path: str, body: Mapping | None = None):
        raw = self.call(path, body)
        try:
            return json.loads(raw)
        except ValueError:
            raise InfraError(f"{self.url}{path} answered something that is not JSON "
                             f"({lava_api.error_text(raw, 120)}): is --url a LAVA server?") from None

    # -- the calls the executor makes ------------------------------------------------------------------

    def whoami(self) -> str:
        """The token's user (an error when the server refuses the token or answers for nobody)."""
        user = (self.json("api/v0.2/system/whoami/") or {}).get("user")
        if not user:
            raise InputError(f"the LAVA server at {self.url} does not know {self._token} (it answered for no user); "
                             f"{TOKEN_HELP}")
        return user

    def devices(self, device_type: str) -> list[str]:
        """The devices of that type that can take a job; an error when the server has no such type."""
        try:
            data = self.json(f"api/v0.2/devices/?device_type={urllib.parse.quote(device_type)}&limit=100")
        except ServerError as e:
            if e.code == 400:
                raise InfraError(f"the LAVA server at {self.url} has no device type {device_type!r} ({e.detail}): "
                                 f"add it and a device (images/lava-server.sh start does, for the local server)") from None
            raise
        return lava_api.usable_devices(data)

    def submit(self, definition: str) -> int:
        try:
            return lava_api.submitted_id(self.json("api/v0.2/jobs/", {"definition": definition}))
        except ValueError as e:
            raise InfraError(f"the LAVA server at {self.url} answered the submission oddly: {e}") from None
        except ServerError as e:
            if e.code == 400:
                raise InfraError(f"the LAVA server at {self.url} rejected the job: {e.detail}") from None
            raise

    def job(self, job_id: int) -> lava_api.JobStatus:
        try:
            return lava_api.job_status(self.json(f"api/v0.2/jobs/{job_id}/"))
        except ServerError as e:
            if e.code == 404:
                raise InfraError(f"the LAVA server at {self.url} has no job {job_id} (deleted?)") from None
            raise
        except ValueError as e:
            raise InfraError(f"{self.job_url(job_id)}: {e}") from None

    def logs(self, job_id: int) -> bytes:
        """The job's whole log (output.yaml: one YAML mapping a line, as `- {...}` list items)."""
        return self.call(f"api/v0.2/jobs/{job_id}/logs/")

    def cancel(self, job_id: int) -> None:
        self.call(f"api/v0.2/jobs/{job_id}/cancel/")
