"""A LAVA server's REST API (v0.2, lava_rest_app) answers, parsed. Pure: JSON or bytes in, values out.

A job's `state` is Submitted, Scheduling, Scheduled, Running, Canceling or Finished; once Finished its
`health` is Complete, Incomplete or Canceled (Unknown before), and `failure_comment` holds LAVA's error
text for an Incomplete job (lava_scheduler_app/models.py TestJob).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Mapping

import yaml

FINISHED = "Finished"
COMPLETE = "Complete"
STATES = ("Submitted", "Scheduling", "Scheduled", "Running", "Canceling", FINISHED)
HEALTHS = ("Unknown", COMPLETE, "Incomplete", "Canceled")
# Where a device can take a job (lava_scheduler_app: the scheduler only picks these).
USABLE_DEVICE_HEALTH = ("Good", "Unknown")


@dataclass(frozen=True)
class JobStatus:
    id: int
    state: str
    health: str
    failure_comment: str | None = None
    device: str | None = None
    submit_time: str | None = None
    start_time: str | None = None
    end_time: str | None = None

    @property
    def finished(self) -> bool:
        return self.state == FINISHED

    @property
    def complete(self) -> bool:
        return self.finished and self.health == COMPLETE

    @property
    def started(self) -> bool:
        return self.state in ("Running", "Canceling", FINISHED)

    def as_dict(self) -> dict:
        return {"job_id": self.id, "state": self.state, "health": self.health,
                "failure_comment": self.failure_comment, "device": self.device, "submit_time": self.submit_time,
                "start_time": self.start_time, "end_time": self.end_time}


def job_status(data: Mapping) -> JobStatus:
    """/api/v0.2/jobs/ID/ as a JobStatus; ValueError when it is not a LAVA job's record."""
    if not isinstance(data, Mapping) or "id" not in data or data.get("state") not in STATES:
        raise ValueError(f"not a LAVA job record (no id, or a state not among {', '.join(STATES)})")
    health = data.get("health") or "Unknown"
    return JobStatus(int(data["id"]), data["state"], health, data.get("failure_comment") or None,
                     data.get("actual_device"), data.get("submit_time"), data.get("start_time"), data.get("end_time"))


def submitted_id(data: Mapping) -> int:
    """The id of the one job a POST /api/v0.2/jobs/ made (a multinode job would make several)."""
    ids = data.get("job_ids") if isinstance(data, Mapping) else None
    if not isinstance(ids, list) or len(ids) != 1:
        raise ValueError(f"expected one job id in the answer, got {ids!r}")
    return int(ids[0])


def usable_devices(data: Mapping) -> list[str]:
    """The devices of a /api/v0.2/devices/ page that can take a job (health Good or Unknown)."""
    return [d["hostname"] for d in data.get("results", []) if d.get("health") in USABLE_DEVICE_HEALTH]


_TAGS = re.compile(r"<[^>]+>")


def error_text(body: bytes, limit: int = 300) -> str:
    """What a LAVA error answer says: DRF's `detail`, LAVA's `message`, a field's errors, else the text
    itself (an HTML page's title and heading, without the markup), cut to `limit` characters."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        for key in ("detail", "message", "error"):
            if data.get(key):
                return str(data[key])[:limit]
        return "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in data.items())[:limit]
    if isinstance(data, list) and data:
        return "; ".join(map(str, data))[:limit]
    title = re.search(r"<title>(.*?)</title>", text, re.S | re.I)
    heading = re.search(r"<h1>(.*?)</h1>", text, re.S | re.I)
    if title or heading:
        return " - ".join(" ".join(_TAGS.sub("", m.group(1)).split()) for m in (title, heading) if m)[:limit]
    return " ".join(_TAGS.sub(" ", text).split())[:limit] or "(empty answer)"


_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def timeout_s(block: Mapping | None) -> int | None:
    """A LAVA timeout block ({minutes: 5}, {seconds: 90}, ...) in seconds."""
    if not isinstance(block, Mapping):
        return None
    total = sum(int(block[u]) * f for u, f in _UNITS.items() if u in block)
    return total or None


def job_timeout_s(definition: str) -> int | None:
    """The job's own timeout (timeouts.job) from its definition: how long LAVA lets it run once started."""
    data = yaml.safe_load(definition)
    return timeout_s(((data or {}).get("timeouts") or {}).get("job"))
