"""Pure parsers: console/dmesg lines in, typed events out. No I/O, no printing."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator

from fnv_hash_fast import fnv1a_32

from harness.parsers.frozen import made

# "[   12.345678] " printk time prefix (CONFIG_PRINTK_TIME); dmesg and serial captures both carry it.
TIMESTAMP = re.compile(r"^\s*(?:<\d>)?\[\s*(\d+\.\d+)\]\s?")


@dataclass(frozen=True)
class Event:
    kind: str = field(init=False, default="event")
    line: int = 0               # 1-based line number in the input
    time: float | None = None   # printk timestamp, seconds since boot

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LoopRecord(Event):
    """One loop of the test module: outcome has one char per chunk ('.' ok, T/L/P/F failed)."""
    kind: str = field(init=False, default="loop")
    loop: int = 0
    failed: int = 0
    calls_failed: int = 0
    dur_us: int = 0
    outcome: str = ""
    pa: tuple[int | None, ...] = ()

    @property
    def failed_indices(self) -> list[int]:
        return [i for i, c in enumerate(self.outcome) if c != "."]

    def count(self, cause: str) -> int:
        return self.outcome.count(cause)


@dataclass(frozen=True)
class ModuleStart(Event):
    kind: str = field(init=False, default="module_start")
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModuleDone(Event):
    kind: str = field(init=False, default="module_done")
    loops: int = 0
    failed_loops: int = 0


@dataclass(frozen=True)
class AreaInfo(Event):
    """The test device's CMA area as the module found it through memory-region."""
    kind: str = field(init=False, default="area")
    name: str = ""
    base: int = 0
    size: int = 0

    def summary_dict(self) -> dict:
        """The area as a run summary keeps it."""
        return {"name": self.name, "base": self.base, "size": self.size}


@dataclass(frozen=True)
class CmaPoolCreated(Event):
    """kernel/dma/contiguous.c rmem_cma_setup: 'Reserved memory: created CMA memory pool at 0x..., size N MiB'."""
    kind: str = field(init=False, default="cma_pool")
    base: int = 0
    size_mib: int = 0


@dataclass(frozen=True)
class CmaAllocFailed(Event):
    """mm/cma.c cma_alloc's rate-limited error; area is None on kernels that did not print it."""
    kind: str = field(init=False, default="cma_alloc_failed")
    area: str | None = None
    pages: int = 0
    ret: int = 0


@dataclass(frozen=True)
class PfnsBusy(Event):
    """Older kernels' alloc_contig_range: '[start, end) PFNs busy'."""
    kind: str = field(init=False, default="pfns_busy")
    start: int = 0
    end: int = 0


@dataclass(frozen=True)
class KernelReport(Event):
    """An oops, panic, BUG or WARNING: from parse_line its first line; from ReportAssembler the whole report."""
    kind: str = field(init=False, default="kernel_report")
    report: str = ""            # "oops" | "panic" | "bug" | "warning"
    text: str = ""              # the report's lines, raw, joined by newlines
    complete: bool = True       # False: cut short before its end (see ReportAssembler.flush)

    @property
    def title(self) -> str:
        return next((l for l in self.text.splitlines() if "cut here" not in l), "")

    @property
    def fatal(self) -> bool:
        """Whether the thread that hit it is dead: an oops, a panic, or `kernel BUG at` (which oopses)."""
        return self.report in ("oops", "panic") or "kernel BUG at " in self.text


@dataclass(frozen=True)
class GuestUp(Event):
    kind: str = field(init=False, default="guest_up")
    cpus: int = 0
    release: str = ""


def _kv(text: str) -> dict[str, str]:
    return dict(tok.split("=", 1) for tok in text.split() if "=" in tok)


# Module records: "cma_harness: loop=N key=value ..." and "cma_harness: start|done|area key=value ...".
RECORD = re.compile(r"cma_harness: (?:(loop)(?==)|(start|done|area) )(.*)$")
POOL = re.compile(r"Reserved memory: created CMA memory pool at (0x[0-9a-f]+), size (\d+) MiB")
# 6.1: "cma: cma_alloc: <area>: alloc failed, req-size: N pages, ret: -16"; older: no area name.
ALLOC_FAILED = re.compile(r"cma: cma_alloc: (?:([^:\s]+): )?alloc failed, req-size: (\d+) pages, ret: (-?\d+)")
PFNS_BUSY = re.compile(r"alloc_contig_range: \[([0-9a-fx]+), ([0-9a-fx]+)\) PFNs busy")
GUEST_UP = re.compile(r"cma-harness: guest up cpus=(\d+) kernel=(\S+)")
REPORTS = (
    ("panic", re.compile(r"Kernel panic - not syncing")),
    ("oops", re.compile(r"Internal error: Oops|Unable to handle kernel (NULL pointer dereference|paging request)")),
    ("bug", re.compile(r"kernel BUG at |BUG: ")),
    ("warning", re.compile(r"WARNING: CPU: \d+ PID: \d+ at ")),
)


# A literal every pattern above holds: a line with none of them matches none, and most console lines have
# none, so parse_line (which runs on every console line) skips them before the timestamp and the patterns.
# A new pattern must hold one of these words.
_WORDS = ("cma_harness: ", "cma: cma_alloc: ", "alloc_contig_range: [", "Reserved memory: created CMA",
          "cma-harness: guest up ", "Kernel panic", "Oops", "Unable to handle kernel ", "BUG", "WARNING: CPU: ")
_ANY_WORD = re.compile("|".join(map(re.escape, _WORDS)))


def parse_line(text: str, lineno: int = 0) -> Event | None:
    """One console/dmesg line to an event, or None when it carries nothing the harness knows."""
    return _parse_line(text, lineno, None)


def _parse_line(text: str, lineno: int, shapes: dict | None) -> Event | None:
    """parse_line; `shapes` (see _loop_record), when given, keeps what the loop records share across lines."""
    text = text.rstrip("\r\n")
    if not _ANY_WORD.search(text):
        return None
    ts, text = _timestamped(text)
    if m := RECORD.search(text):
        kind = m.group(1) or m.group(2)
        rest = ("loop" + m.group(3)) if m.group(1) else m.group(3)
        return _record(kind, rest, lineno, ts, shapes)
    if m := ALLOC_FAILED.search(text):
        return CmaAllocFailed(line=lineno, time=ts, area=m.group(1), pages=int(m.group(2)), ret=int(m.group(3)))
    if m := PFNS_BUSY.search(text):
        return PfnsBusy(line=lineno, time=ts, start=int(m.group(1), 16), end=int(m.group(2), 16))
    if m := POOL.search(text):
        return CmaPoolCreated(line=lineno, time=ts, base=int(m.group(1), 16), size_mib=int(m.group(2)))
    if m := GUEST_UP.search(text):
        return GuestUp(line=lineno, time=ts, cpus=int(m.group(1)), release=m.group(2))
    for report, pattern in REPORTS:
        if pattern.search(text):
            return KernelReport(line=lineno, time=ts, report=report, text=text.strip())
    return None


def _timestamped(text: str) -> tuple[float | None, str]:
    """A line's printk time, if it has one, and the text after it."""
    if m := TIMESTAMP.match(text):
        return float(m.group(1)), text[m.end():]
    return None, text


def record_sum(text: str) -> int:
    """FNV-1a (32 bit) over the bytes of text: the module's record_sum(). In C (fnv-hash-fast): the same
    loop in Python took 46 us a 650-byte record, most of the console parser's time."""
    return fnv1a_32(text.encode("utf-8", "surrogateescape"))


# Record format 2 carries " sum=<8 hex>" after loop=N; format 1 (older modules) has none.
RECORD_SUM = re.compile(r" sum=([0-9a-f]{8})(?= )")


_CAUSES = frozenset(".TLPF")        # a chunk's outcome: ok, or how it failed


def _loop_record(rest: str, lineno: int, ts: float | None, shapes: dict | None = None) -> LoopRecord | None:
    """A loop record, or None when it is garbled or truncated: a bad record is never a record.

    Most of a record and of its cost is its end, from " outcome=" on: the outcome and the pa list (56 hex
    numbers), and the checks between them; a boot's records mostly end alike. `shapes` ({end: (its _kv,
    its _shape, or None when the end has no pa)}), when given, has each distinct end parsed once."""
    if m := RECORD_SUM.search(rest):
        rest = rest[:m.start()] + rest[m.end():]
        if record_sum(rest) != int(m.group(1), 16):
            return None
    kv, (pa, agree) = _fields_and_shape(rest, shapes)
    outcome = kv["outcome"]
    loop, failed, calls_failed, dur_us = int(kv["loop"]), int(kv["failed"]), int(kv["calls_failed"]), int(kv["dur_us"])
    # What the module's records always satisfy; format 1 has no sum, so these catch most damage there.
    if not (agree and failed == len(outcome) - outcome.count(".") and calls_failed >= failed):
        return None
    return made(LoopRecord, {"line": lineno, "time": ts, "loop": loop, "failed": failed, "calls_failed": calls_failed,
                             "dur_us": dur_us, "outcome": outcome, "pa": pa})


def _fields_and_shape(rest: str, shapes: dict | None) -> tuple[dict[str, str], tuple[tuple[int | None, ...], bool]]:
    """_kv(rest), and the _shape of its outcome and pa. With `shapes`, the end from " outcome=" on is
    parsed once per distinct end: rest.split() is the split of the part before it (rest[at] is a space:
    no token spans the cut) and then the end's, so _kv(rest) is the two dicts, the end's on top."""
    at = rest.find(" outcome=") if shapes is not None else -1
    if at >= 0:
        if (known := shapes.get(end := rest[at:])) is None:
            end_kv = _kv(end)           # holds "outcome": the end starts with it
            known = shapes[end] = (end_kv, _shape(end_kv["outcome"], end_kv["pa"]) if "pa" in end_kv else None)
        if known[1] is not None:        # else the pa is before the end, if anywhere: parsed whole below
            return {**_kv(rest[:at]), **known[0]}, known[1]
    kv = _kv(rest)
    return kv, _shape(kv["outcome"], kv["pa"])


def _shape(outcome: str, pa_text: str) -> tuple[tuple[int | None, ...], bool]:
    """A record's pa list, and whether it agrees with the outcome (a chunk per cause, no address for P, F)."""
    pa = tuple([int(t, 16) or None for t in pa_text.split(",")])     # 0: a chunk the module did not get
    return pa, (len(pa) == len(outcome) and set(outcome) <= _CAUSES
                and [a is None for a in pa] == [c in "PF" for c in outcome])


def _record(kind: str, rest: str, lineno: int, ts: float | None, shapes: dict | None = None) -> Event | None:
    try:
        if kind == "loop":
            return _loop_record(rest, lineno, ts, shapes)
        kv = _kv(rest)
        if kind == "start":
            return ModuleStart(line=lineno, time=ts, params={k: int(v) for k, v in kv.items()})
        if kind == "done":
            return ModuleDone(line=lineno, time=ts, loops=int(kv["loops"]), failed_loops=int(kv["failed_loops"]))
        if kind == "area":
            return AreaInfo(line=lineno, time=ts, name=kv["name"], base=int(kv["base"], 16), size=int(kv["size"], 16))
    except (KeyError, ValueError):
        return None
    return None


def parse_lines(lines: Iterable[str]) -> Iterator[Event]:
    shapes: dict = {}
    any_word = _ANY_WORD.search         # _parse_line's first test, here: most lines end at it, without a call
    for n, text in enumerate(lines, 1):
        if any_word(text) and (ev := _parse_line(text, n, shapes)) is not None:
            yield ev


# RECORD's loop alternative needs this text: a line without it holds no loop record.
_LOOP_RECORD = "cma_harness: loop="


def loop_records(lines: Iterable[str]) -> list[LoopRecord]:
    """The loop records of parse_lines(lines) alone: only a line that holds _LOOP_RECORD is tried (it
    holds one of _WORDS too), and only as parse_line would make a loop record of it."""
    shapes: dict = {}
    out = []
    for n, raw in enumerate(lines, 1):
        if _LOOP_RECORD not in raw:
            continue
        text, ts, after = raw.rstrip("\r\n"), None, 0
        if m := TIMESTAMP.match(text):                  # parse_line's _timestamped, without the copy
            ts, after = float(m.group(1)), m.end()
        if (m := RECORD.search(text, after)) and m.group(1):    # else parse_line makes another event, or none
            try:                                        # text[m.start(1):]: "loop" + m.group(3), to the end
                rec = _loop_record(text[m.start(1):], n, ts, shapes)
            except (KeyError, ValueError):              # as _record
                continue
            if rec is not None:
                out.append(rec)
    return out


# ---- whole kernel reports -----------------------------------------------------------------------

# Every report the kernel ends with `---[ end trace <id> ]---` (oops, BUG, WARNING) or
# `---[ end Kernel panic - not syncing: ... ]---` (panic). The line before the first one may be a
# "cut here" banner ("8<--- cut here ---" on ARM, "------------[ cut here ]------------").
REPORT_END = re.compile(r"---\[ end (?:trace|Kernel panic)")
CUT_HERE = re.compile(r"cut here")


class ReportAssembler:
    """Groups console lines into whole kernel reports, from the first line to the end marker.

    Pure: feed it lines, it returns each report once it is complete. Lines of another report that start
    inside an open one (an oops after `kernel BUG at`, a panic on a fatal exception) belong to the open one.
    """

    def __init__(self, max_lines: int = 400):
        self.max_lines = max_lines      # a report without an end marker must not grow forever
        self._open: KernelReport | None = None
        self._lines: list[str] = []
        self._previous = ""

    @property
    def open(self) -> bool:
        return self._open is not None

    def feed(self, text: str, lineno: int = 0) -> KernelReport | None:
        """Take one console line; return a report when this line completes one."""
        text = text.rstrip("\r\n")
        if not text:
            return None     # QEMU writes "\r\r\n": splitlines() on a saved console.log yields empty lines
        previous, self._previous = self._previous, text
        if self._open is None:
            ev = parse_line(text, lineno)
            if not isinstance(ev, KernelReport):
                return None
            self._open = ev
            self._lines = [previous, text] if CUT_HERE.search(previous) else [text]
        else:
            self._lines.append(text)
        if REPORT_END.search(text):
            return self._close(complete=True)
        if len(self._lines) >= self.max_lines:
            return self._close(complete=False)
        return None

    def flush(self, guest_stopped: bool = False) -> KernelReport | None:
        """The open report, if any, when no more lines will come for it.

        With `panic=-1` the kernel resets before it prints `---[ end Kernel panic`, so a panic whose guest
        stopped is whole; anything else that ends without its marker was cut short.
        """
        if self._open is None:
            return None
        return self._close(complete=guest_stopped and self._open.report == "panic")

    def _close(self, complete: bool) -> KernelReport:
        first = self._open
        self._open = None
        text, self._lines = "\n".join(self._lines), []
        return KernelReport(line=first.line, time=first.time, report=first.report, text=text, complete=complete)


def kernel_reports(lines: Iterable[str]) -> list[KernelReport]:
    """Every whole kernel report in a finished capture (a console.log, a dmesg)."""
    asm = ReportAssembler()
    out = [r for n, text in enumerate(lines, 1) if (r := asm.feed(text, n)) is not None]
    if (last := asm.flush(guest_stopped=True)) is not None:
        out.append(last)
    return out
