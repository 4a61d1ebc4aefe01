"""Pure parsers: console/dmesg lines in, typed events out. No I/O, no printing."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator

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
    """The first line of an oops, panic, BUG or WARNING."""
    kind: str = field(init=False, default="kernel_report")
    report: str = ""            # "oops" | "panic" | "bug" | "warning"
    text: str = ""


@dataclass(frozen=True)
class GuestUp(Event):
    kind: str = field(init=False, default="guest_up")
    cpus: int = 0
    release: str = ""


def _hex_or_none(tok: str) -> int | None:
    value = int(tok, 16)
    return value or None        # the module prints 0 for a chunk it did not get


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


def parse_line(text: str, lineno: int = 0) -> Event | None:
    """One console/dmesg line to an event, or None when it carries nothing the harness knows."""
    text = text.rstrip("\r\n")
    ts = None
    if m := TIMESTAMP.match(text):
        ts = float(m.group(1))
        text = text[m.end():]
    if m := RECORD.search(text):
        kind = m.group(1) or m.group(2)
        rest = ("loop" + m.group(3)) if m.group(1) else m.group(3)
        return _record(kind, rest, lineno, ts)
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


def _record(kind: str, rest: str, lineno: int, ts: float | None) -> Event | None:
    kv = _kv(rest)
    try:
        if kind == "loop":
            outcome = kv["outcome"]
            pa = tuple(_hex_or_none(t) for t in kv["pa"].split(","))
            if len(pa) != len(outcome) or set(outcome) - set(".TLPF"):
                return None          # a garbled or truncated record is not a record
            return LoopRecord(line=lineno, time=ts, loop=int(kv["loop"]), failed=int(kv["failed"]),
                              calls_failed=int(kv["calls_failed"]), dur_us=int(kv["dur_us"]),
                              outcome=outcome, pa=pa)
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
    for n, text in enumerate(lines, 1):
        if (ev := parse_line(text, n)) is not None:
            yield ev
