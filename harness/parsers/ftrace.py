"""Pure parsers for ftrace text (tracefs `trace`, `trace_pipe`): events, their stack traces, lost-event marks.

Formats from kernel/trace/trace_output.c (6.1): trace_print_context prints
`<comm>-<pid> [<cpu>] <irq flags> <secs>.<usecs>: `, then the event: `<name>: <fields>` for trace events,
`<name>: (<sym>+<off>/<size>) args` for a kprobe, `<name>: (<caller>+<off>/<size> <- <func>) args` for a
kretprobe; a stack entry is `<stack trace>` followed by one ` => <sym>[+<off>/<size>] [<module>]` line
per frame. trace_pipe prints `CPU:<n> [LOST <count> EVENTS]` where the ring overwrote events.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Iterable, Mapping, NamedTuple

# The irq-info column is 4 or 5 characters (5 since 5.x adds migrate-disable), absent with irq-info off;
# a record-tgid column `(  pid)` may sit before the CPU. A comm may hold spaces and dashes: the pid is
# the `-<digits>` that the CPU column follows.
_TS_REST = r"(?P<ts>\d+\.\d+):\s(?P<rest>.*)$"
HEADER = re.compile(r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
                    r"(?:(?P<flags>\S{4,5})\s+)?" + _TS_REST)
HEADER_TAIL = re.compile(_TS_REST)      # HEADER from the timestamp on (see _Headers)
EVENT = re.compile(r"^(?P<event>[\w.-]+):\s?(?P<body>.*)$")
PROBE_SITE = re.compile(r"^\((?P<site>[^()<\s]+)(?: <- (?P<func>[^()\s]+))?\)\s?")
# trace_seq_print_sym: a symbol (with +off/size under sym-offset), a raw address where kallsyms has
# none, or `[unknown/kretprobe'd]` for a return address a kretprobe replaced (the unwinder stops there).
FRAME = re.compile(r"^ => (?P<frame>\[unknown/kretprobe'd\]|0x[0-9a-f]+|[A-Za-z_.$][\w.$]*(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?)"
                   r"(?: \[[\w-]+\])?\s*$")          # a module's symbol ends in ` [<module>]`
LOST = re.compile(r"^CPU:(?P<cpu>\d+) \[LOST (?:(?P<count>\d+) )?EVENTS\]")
FIELD = re.compile(r"(?P<key>[\w.]+)=(?P<value>\S*)")
_NO_FIELDS: Mapping[str, str] = MappingProxyType({})


class TraceEvent(NamedTuple):
    """One ftrace event. `fields` keeps the printed values as text: the same digits can be a decimal
    count or a %p pointer, so only the reader who knows the event converts (see `num`, `ptr`).

    A NamedTuple, not a frozen dataclass: a trace holds thousands of events, and a tuple is made in one
    step where an instance needs its attribute dict built (parse_trace: 1.5 us of its 2.8 us an event
    line; 0.9 us as a tuple, with `fields` shared). `fields` is read-only: events of the same text share it."""
    line: int = 0
    time: float = 0.0                     # trace clock (local: the same clock as printk), seconds
    comm: str = ""
    pid: int = 0
    cpu: int = 0
    event: str = ""
    fields: Mapping[str, str] = _NO_FIELDS
    site: str | None = None               # kprobe: probed address; kretprobe: the caller's return address
    func: str | None = None               # kretprobe only: the probed function
    stack: tuple[str, ...] = ()           # `sym+0x1c/0x40` frames, innermost first, when a stack followed
    kind = "trace"                        # not a field: the same for every event

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
        return {"kind": self.kind, **self._asdict(), "fields": dict(self.fields)}


class LostEvents(NamedTuple):
    """The ring overwrote events before they were read: every count from this trace is a lower bound."""
    line: int = 0
    cpu: int = 0
    count: int | None = None              # None: the kernel did not know how many
    kind = "trace_lost"

    def as_dict(self) -> dict:
        return {"kind": self.kind, **self._asdict()}


TraceItem = TraceEvent | LostEvents


def function_of(frame: str) -> str:
    """`try_to_free_buffers+0x0/0x94` -> `try_to_free_buffers`."""
    return frame.split("+", 1)[0]


_UNSEEN = object()       # parse_trace's caches: a text not parsed yet (None is a parse: not an event)
_new = tuple.__new__


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
    headers = _Headers()
    known, widths = headers.known, headers.widths
    names: dict[str, bool] = {}                     # _event_name's event names
    keys: dict[str, bool] = {}                      # _fields' field keys

    for n, raw in enumerate(lines, 1):
        if frames is not None:
            if (frame := frame_of.get(raw, _UNSEEN)) is _UNSEEN:
                frame = frame_of[raw] = m.group("frame") if (m := FRAME.match(raw.rstrip("\r\n"))) else None
            if frame is not None:
                frames.append(frame)
                continue
            if frames and owner is not None:
                items[owner] = items[owner]._replace(stack=tuple(frames))
            frames, owner = None, None
        text = raw.rstrip("\r\n")
        if text.startswith("CPU:") and (m := LOST.match(text)):     # LOST starts with "CPU:"
            items.append(LostEvents(line=n, cpu=int(m.group("cpu")),
                                    count=int(m.group("count")) if m.group("count") else None))
            continue
        for width in widths:                # headers.parse, inline: this line runs for every event
            if (header := known.get(text[:width])) is not None and (t := HEADER_TAIL.match(text, width)):
                ts, rest = t.groups()
                break
        else:
            if (whole := headers.whole(text)) is None:
                continue
            header, ts, rest = whole
        comm, task = header
        if rest.startswith("<stack trace>"):
            frames, owner = [], open_by_task.pop(task, None)
            continue
        if (parts := event_of.get(rest, _UNSEEN)) is _UNSEEN:
            parts = event_of[rest] = _event_parts(rest, names, keys)
        if parts is None:
            continue
        event, site, func, fields = parts
        open_by_task[task] = len(items)
        # TraceEvent(...) without NamedTuple's __new__, which takes keywords: this line runs for every event
        items.append(_new(TraceEvent, (n, float(ts), comm, task[0], task[1], event, fields, site, func, ())))
    if frames and owner is not None:
        items[owner] = items[owner]._replace(stack=tuple(frames))
    return items


class _Headers:
    """HEADER.match(text), as (comm stripped, (pid, cpu), ts, rest), or None. A trace's headers repeat up
    to the timestamp (`<comm>-<pid> [<cpu>] <flags> `, in fixed columns): a prefix seen before is not
    matched again, only HEADER_TAIL (HEADER's own end) from the timestamp on.

    Why that is HEADER's answer: HEADER tries its choices in order (the shortest comm, the longest runs,
    the tgid and flags columns present, 5 flag characters before 4). A prefix is kept only where its match
    took the first choice everywhere and every earlier one failed on the prefix's own characters: the flags
    column there (4 or 5 non-blanks then a blank: 5 has no chance where 4 matched; an absent column is
    tried present first, against the timestamp's characters), no `-` in comm (a shorter comm ends at a
    `-`), comm from the first non-blank. On a line with the same prefix HEADER follows the same choices to
    the timestamp, the blanks before it ending where HEADER_TAIL's digit starts; where HEADER_TAIL matches
    there, HEADER matches with the same groups. Any other line is matched whole."""

    _WIDTHS = 4                     # distinct prefix lengths kept: the columns are fixed, one in practice

    def __init__(self) -> None:
        self.known: dict[str, tuple[str, tuple[int, int]]] = {}     # prefix -> (comm stripped, (pid, cpu))
        self.widths: list[int] = []

    def parse(self, text: str) -> tuple[tuple[str, tuple[int, int]], str, str] | None:
        """((comm stripped, (pid, cpu)), ts, rest) of HEADER.match(text), or None."""
        for width in self.widths:
            if (known := self.known.get(text[:width])) is not None and (t := HEADER_TAIL.match(text, width)):
                return known, t.group("ts"), t.group("rest")
        return self.whole(text)

    def whole(self, text: str) -> tuple[tuple[str, tuple[int, int]], str, str] | None:
        """parse, by HEADER on the whole line; its prefix kept where it can be."""
        if not (h := HEADER.match(text)):
            return None
        comm, pid, cpu, flags, ts, rest = h.groups()
        header = (comm.strip(), (int(pid), int(cpu)))
        width = h.start("ts")
        if (flags is not None and "-" not in comm and h.start("comm") == len(text) - len(text.lstrip())
                and (width in self.widths or len(self.widths) < self._WIDTHS)):
            self.known[text[:width]] = header
            if width not in self.widths:
                self.widths.append(width)
        return header, ts, rest


def _event_parts(rest: str, names: dict[str, bool],
                 keys: dict[str, bool]) -> tuple[str, str | None, str | None, Mapping[str, str]] | None:
    """`<name>: [(<site>[ <- <func>])] <fields>` as (name, site, func, fields); None: not an event.
    `names` and `keys` are the caller's, kept across events (see _event_name and _fields)."""
    if (found := _event_name(rest, names)) is None:
        return None
    event, body = found
    site = func = None
    if body.startswith("(") and (p := PROBE_SITE.match(body)):     # PROBE_SITE starts with "("
        site, func = p.groups()
        body = body[p.end():]
    return event, site, func, MappingProxyType(_fields(body, keys))    # shared by the events of this text


EVENT_NAME = re.compile(r"[\w.-]+")


def _event_name(rest: str, names: dict[str, bool]) -> tuple[str, str] | None:
    """EVENT.match(rest).groups(), or None. Without a newline in `rest` (HEADER's rest never has one)
    EVENT matches when the text before the first `:` is all name characters, and its body is what follows
    the `:` and one whitespace character, if there is one; `names` ({text: whether it is all name
    characters}) has each distinct name checked once."""
    if "\n" in rest:
        return e.groups() if (e := EVENT.match(rest)) else None
    name, colon, body = rest.partition(":")
    if not colon:
        return None
    if (whole := names.get(name)) is None:
        whole = names[name] = EVENT_NAME.fullmatch(name) is not None
    if not whole:
        return None
    return name, body[1:] if body[:1].isspace() else body


FIELD_KEY = re.compile(r"[\w.]+")


def _fields(body: str, keys: dict[str, bool]) -> dict[str, str]:
    """dict(FIELD.findall(body)), by whitespace-separated token: a FIELD match holds no whitespace and
    its value runs to the token's end, so each token holds at most one, the token's first. A token
    `<key>=<value>` whose key is all FIELD key characters is that match without the regex (`keys`
    remembers which keys are); any other token with a `=` is searched."""
    out = {}
    for token in body.split():
        key, eq, value = token.partition("=")
        if not eq:
            continue                    # no `=`: no match
        if (whole := keys.get(key)) is None:
            whole = keys[key] = FIELD_KEY.fullmatch(key) is not None
        if whole:
            out[key] = value
        elif m := FIELD.search(token):
            out[m.group("key")] = m.group("value")
    return out


RING_STAT = re.compile(r"^(?P<key>overrun|commit overrun|dropped events|entries|read events): (?P<value>\d+)\s*$")


def ring_stats(text: str) -> dict[str, int]:
    """per_cpu/cpu*/stats (kernel/trace/trace.c tracing_stats_read) summed over CPUs: `overrun` and
    `dropped events` are events the ring lost, `entries` what was still unread."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        if m := RING_STAT.match(line.strip()):
            out[m.group("key")] = out.get(m.group("key"), 0) + int(m.group("value"))
    return out
