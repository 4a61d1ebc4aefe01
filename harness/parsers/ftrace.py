"""Pure parsers for ftrace text (tracefs `trace`, `trace_pipe`): events, their stack traces, lost-event marks.

Formats from kernel/trace/trace_output.c (6.1): trace_print_context prints
`<comm>-<pid> [<cpu>] <irq flags> <secs>.<usecs>: `, then the event: `<name>: <fields>` for trace events,
`<name>: (<sym>+<off>/<size>) args` for a kprobe, `<name>: (<caller>+<off>/<size> <- <func>) args` for a
kretprobe; a stack entry is `<stack trace>` followed by one ` => <sym>[+<off>/<size>] [<module>]` line
per frame. trace_pipe prints `CPU:<n> [LOST <count> EVENTS]` where the ring overwrote events.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Iterable

# The irq-info column is 4 or 5 characters (5 since 5.x adds migrate-disable), absent with irq-info off;
# a record-tgid column `(  pid)` may sit before the CPU. A comm may hold spaces and dashes: the pid is
# the `-<digits>` that the CPU column follows.
HEADER = re.compile(r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
                    r"(?:(?P<flags>\S{4,5})\s+)?(?P<ts>\d+\.\d+):\s(?P<rest>.*)$")
EVENT = re.compile(r"^(?P<event>[\w.-]+):\s?(?P<body>.*)$")
PROBE_SITE = re.compile(r"^\((?P<site>[^()<\s]+)(?: <- (?P<func>[^()\s]+))?\)\s?")
# trace_seq_print_sym: a symbol (with +off/size under sym-offset), a raw address where kallsyms has
# none, or `[unknown/kretprobe'd]` for a return address a kretprobe replaced (the unwinder stops there).
FRAME = re.compile(r"^ => (?P<frame>\[unknown/kretprobe'd\]|0x[0-9a-f]+|[A-Za-z_.$][\w.$]*(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?)"
                   r"(?: \[[\w-]+\])?\s*$")          # a module's symbol ends in ` [<module>]`
LOST = re.compile(r"^CPU:(?P<cpu>\d+) \[LOST (?:(?P<count>\d+) )?EVENTS\]")
FIELD = re.compile(r"(?P<key>[\w.]+)=(?P<value>\S*)")


@dataclass(frozen=True)
class TraceEvent:
    """One ftrace event. `fields` keeps the printed values as text: the same digits can be a decimal
    count or a %p pointer, so only the reader who knows the event converts (see `num`, `ptr`)."""
    kind: str = field(init=False, default="trace")
    line: int = 0
    time: float = 0.0                     # trace clock (local: the same clock as printk), seconds
    comm: str = ""
    pid: int = 0
    cpu: int = 0
    event: str = ""
    fields: dict = field(default_factory=dict)
    site: str | None = None               # kprobe: probed address; kretprobe: the caller's return address
    func: str | None = None               # kretprobe only: the probed function
    stack: tuple[str, ...] = ()           # `sym+0x1c/0x40` frames, innermost first, when a stack followed

    def num(self, key: str) -> int | None:
        """A decimal or 0x-prefixed field as an int; None when absent or not a number."""
        try:
            return int(self.fields[key], 0)
        except (KeyError, ValueError):
            return None

    def ptr(self, key: str) -> int | None:
        """A %p field (hex without 0x) as an int; None when absent, hashed or unreadable."""
        try:
            return int(self.fields[key], 16)
        except (KeyError, ValueError):
            return None

    @property
    def caller(self) -> str | None:
        """The function a kretprobe returned into (its call site's symbol, without offset)."""
        return function_of(self.site) if self.func and self.site else None

    @property
    def functions(self) -> tuple[str, ...]:
        return tuple(function_of(f) for f in self.stack)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LostEvents:
    """The ring overwrote events before they were read: every count from this trace is a lower bound."""
    kind: str = field(init=False, default="trace_lost")
    line: int = 0
    cpu: int = 0
    count: int | None = None              # None: the kernel did not know how many

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


TraceItem = TraceEvent | LostEvents


def function_of(frame: str) -> str:
    """`try_to_free_buffers+0x0/0x94` -> `try_to_free_buffers`."""
    return frame.split("+", 1)[0]


def parse_trace(lines: Iterable[str]) -> list[TraceItem]:
    """Every event and lost-event mark, in file order, each stack attached to the event it belongs to.

    A stack entry is recorded right after its event on the same CPU, but trace_pipe merges the CPUs by
    time, so another CPU's lines may come between: a stack goes to the latest stack-less event of the
    same pid on the same CPU. Lines that match no format (garbage, a cut line) are skipped; a stack cut
    short keeps the frames it has.
    """
    # The same frame lines and event texts come again and again (the same calls, the same returns), so
    # each distinct one is parsed once.
    items: list[TraceItem] = []
    open_by_task: dict[tuple[int, int], int] = {}   # (pid, cpu) -> index of its latest stack-less event
    frames: list[str] | None = None                 # the stack being read
    owner: int | None = None                        # the index it goes to
    frame_of: dict[str, str | None] = {}            # frame line -> its frame
    event_of: dict[str, tuple | None] = {}          # the text after the header -> _event_parts

    for n, raw in enumerate(lines, 1):
        if frames is not None:
            if raw not in frame_of:
                frame_of[raw] = m.group("frame") if (m := FRAME.match(raw.rstrip("\r\n"))) else None
            if (frame := frame_of[raw]) is not None:
                frames.append(frame)
                continue
            if frames and owner is not None:
                items[owner] = _trace_event({**vars(items[owner]), "stack": tuple(frames)})
            frames, owner = None, None
        text = raw.rstrip("\r\n")
        if text.startswith("CPU:") and (m := LOST.match(text)):     # LOST starts with "CPU:"
            items.append(LostEvents(line=n, cpu=int(m.group("cpu")),
                                    count=int(m.group("count")) if m.group("count") else None))
            continue
        if not (h := HEADER.match(text)):
            continue
        comm, pid, cpu, _flags, ts, rest = h.groups()
        pid, cpu = int(pid), int(cpu)
        if rest.startswith("<stack trace>"):
            frames, owner = [], open_by_task.pop((pid, cpu), None)
            continue
        if rest not in event_of:
            event_of[rest] = _event_parts(rest)
        if (parts := event_of[rest]) is None:
            continue
        event, site, func, fields = parts
        open_by_task[(pid, cpu)] = len(items)
        items.append(_trace_event({"line": n, "time": float(ts), "comm": comm.strip(), "pid": pid, "cpu": cpu,
                                   "event": event, "fields": fields.copy(), "site": site, "func": func, "stack": ()}))
    if frames and owner is not None:
        items[owner] = _trace_event({**vars(items[owner]), "stack": tuple(frames)})
    return items


def _event_parts(rest: str) -> tuple[str, str | None, str | None, dict[str, str]] | None:
    """`<name>: [(<site>[ <- <func>])] <fields>` as (name, site, func, fields); None: not an event."""
    if not (e := EVENT.match(rest)):
        return None
    event, body = e.groups()
    site = func = None
    if p := PROBE_SITE.match(body):
        site, func = p.groups()
        body = body[p.end():]
    return event, site, func, dict(FIELD.findall(body))


def _trace_event(values: dict) -> TraceEvent:
    """TraceEvent(**values) without the frozen dataclass's __init__, which sets each field through
    object.__setattr__ (2-3 us an event, once parse_trace's largest cost; dataclasses.replace, which a
    stack needed, twice that). `values` holds every field __init__ sets, in field order (not `kind`, a
    class default), so the instance is the one __init__ would make (test_trace checks it)."""
    ev = object.__new__(TraceEvent)
    ev.__dict__.update(values)
    return ev


RING_STAT = re.compile(r"^(?P<key>overrun|commit overrun|dropped events|entries|read events): (?P<value>\d+)\s*$")


def ring_stats(text: str) -> dict[str, int]:
    """per_cpu/cpu*/stats (kernel/trace/trace.c tracing_stats_read) summed over CPUs: `overrun` and
    `dropped events` are events the ring lost, `entries` what was still unread."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        if m := RING_STAT.match(line.strip()):
            out[m.group("key")] = out.get(m.group("key"), 0) + int(m.group("value"))
    return out
