"""A LAVA job's log (lava-run's stderr, a LAVA server's output.yaml): one YAML mapping a line,
`{"dt": ..., "lvl": ..., "msg": ...}`, optionally as a list item (`- {...}`). Pure: lines in, the console
lines, test cases and the job's outcome out.

`lvl: target` lines are the board's console. LAVA's ShellLogger (lava_dispatcher/shell.py) wrote each with
`"` escaped as `\\"` and `\\r` and ESC removed, and collapsed blank lines; `console_line` undoes the escape.
`lvl: results` lines are test cases (`definition`, `case`, `result`, `measurement`); the case
`lava`/`job` is lava-run's own verdict on the job, with `error_msg` and `error_type` when it failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable

import yaml

try:                                        # LibYAML when PyYAML was built with it: about 10x faster
    from yaml import CSafeLoader as _Loader
except ImportError:                         # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader

LEVELS = ("debug", "info", "warning", "error", "exception", "input", "target", "feedback", "event", "results")
MONITOR_TIMEOUT = "lava test monitoring has timed out"
MONITOR_EOF = "lava test monitoring reached end of file"
BOOT_COMMAND = "Boot command: "


@dataclass(frozen=True)
class Entry:
    line: int                   # 1-based line number in the log
    dt: str
    lvl: str
    msg: object


@dataclass
class LavaLog:
    console: list[str] = field(default_factory=list)         # the board's console, line by line
    cases: list[dict] = field(default_factory=list)          # test cases, in log order (the job's own last)
    errors: list[str] = field(default_factory=list)          # lvl error and exception messages
    warnings: list[str] = field(default_factory=list)
    boot_command: str | None = None                          # the QEMU (or other) command LAVA ran
    job: dict | None = None                                  # the `lava`/`job` case: result, error_msg, error_type
    first_dt: str | None = None
    last_dt: str | None = None
    entries: int = 0
    unreadable: int = 0                                      # lines that were no log entry

    @property
    def test_cases(self) -> list[dict]:
        """The cases of the job's tests (not LAVA's own `lava` suite of action results)."""
        return [c for c in self.cases if c.get("definition") != "lava"]

    @property
    def monitor_timed_out(self) -> bool:
        return any(MONITOR_TIMEOUT in w for w in self.warnings)


def console_line(msg: str) -> str:
    """A target line as the board printed it (ShellLogger escaped its double quotes)."""
    return msg.replace('\\"', '"')


def parse_entry(text: str, lineno: int = 0) -> Entry | None:
    """One log line as an entry, or None when it is not one (a header, a torn last line)."""
    text = text.strip()
    if text.startswith("- "):
        text = text[2:]
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)             # LAVA's double-quoted flow style is mostly JSON
    except ValueError:
        try:
            data = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError:
            return None
    if not isinstance(data, dict) or data.get("lvl") not in LEVELS or "msg" not in data:
        return None
    return Entry(lineno, str(data.get("dt", "")), data["lvl"], data["msg"])


def parse(lines: Iterable[str]) -> LavaLog:
    log = LavaLog()
    for n, text in enumerate(lines, 1):
        if not text.strip():
            continue
        e = parse_entry(text, n)
        if e is None:
            log.unreadable += 1
            continue
        log.entries += 1
        log.first_dt = log.first_dt or e.dt
        log.last_dt = e.dt
        msg = e.msg
        if e.lvl == "target" and isinstance(msg, str):
            log.console.append(console_line(msg))
        elif e.lvl == "results" and isinstance(msg, dict):
            log.cases.append(msg)
            if msg.get("definition") == "lava" and msg.get("case") == "job":
                log.job = msg
        elif e.lvl in ("error", "exception"):
            log.errors.append(str(msg))
        elif e.lvl == "warning":
            log.warnings.append(str(msg))
        elif e.lvl == "info" and isinstance(msg, str) and msg.startswith(BOOT_COMMAND):
            log.boot_command = msg[len(BOOT_COMMAND):]
    return log
