"""Busy traces: each failed chunk joined to its cma_alloc() calls in the trace, what refused inside them
and the page the kernel dumped; the distinct call chains with counts. Pure: events in, records out."""

from __future__ import annotations

import bisect
import functools
import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Protocol, Sequence

from harness.parsers.dump_page import PageDump, parse_page_dumps
from harness.parsers.frozen import made
from harness.parsers.kmsg import LoopRecord, loop_records
from harness.parsers.ftrace import LostEvents, TraceEvent, TraceItem, function_of, parse_trace

# The cma_alloc() calls the module makes for one chunk, by the outcome it recorded (True = succeeded):
# the first try, then with attribution a plain retry (T) and a retry after invalidate_bh_lrus() (L).
CHUNK_CALLS = {".": (True,), "T": (False, True), "L": (False, False, True),
               "P": (False, False, False), "F": (False,)}


@dataclass(frozen=True)
class Refusal:
    """A probed function that refused (a kretprobe whose filter kept it) and the chain that called it."""
    function: str
    ret: int | None
    chain: tuple[str, ...]          # innermost first: the refusing function, its caller, ...
    time: float


@dataclass(frozen=True)
class CmaCall:
    """One cma_alloc() on the test area, from cma_alloc_start to cma_alloc_finish on one thread."""
    pid: int
    start: float
    finish: float
    ok: bool
    busy_pfns: tuple[int, ...] = ()     # test_pages_isolated fin_pfn of each failed window: first busy page
    refusals: tuple[Refusal, ...] = ()
    migrate_failed: int = 0             # pages migrate_pages() gave up on (mm_migrate_pages nr_failed)


# Where the first failed call lost its window, when no probed function refused: migrate_pages() gave up
# on a page by a path without a probe (writeout of a dirty page, a lock), or the busy page was never
# handed to it (isolate_migratepages_range skipped it: not on an LRU, isolated by someone else).
STAGES = ("refused", "migration", "isolation")


@dataclass(frozen=True)
class BusyTrace:
    """Why one chunk failed, as far as the trace and the console say."""
    loop: int
    chunk: int
    cause: str                      # the module's attribution: T, L, P, or F (attribution off)
    pa: int | None                  # where a retry placed the chunk (T, L), else None
    failed_calls: int
    refused_by: str | None          # the innermost function that refused, on the chosen chain
    chain: tuple[str, ...]
    stage: str                      # see STAGES
    refusals: dict = field(default_factory=dict)    # function -> refusals over the chunk's failed calls
    pfn: int | None = None          # the first busy page of the first failed call
    page: dict | None = None        # its dump_page(): refcount, flags, aops, ino
    # The reference model's cross-check (crosscheck.py) replays the loop from these: the first busy page of
    # each range every one of the chunk's cma_alloc() calls found busy, one tuple per call, in call order.
    call_busy_pfns: tuple[tuple[int, ...], ...] = ()

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def chain_of(ret: TraceEvent, entry: TraceEvent | None = None) -> tuple[str, ...]:
    """The refusing function (a kretprobe) and the chain that called it.

    The kretprobe's return address names the caller. `entry` is the latest entry-probe event on the
    same thread; when the caller is on its stack, the refusal happened under it, and its stack (cut at
    the probed function: it starts in the probe's exception path, do_undefinstr ...) is the chain. The
    caller may sit one frame above the entry's function: filemap_release_folio ends in a tail call to
    try_to_free_buffers, which then returns straight into migrate_pages_batch."""
    fallback = (ret.func,) + ((ret.caller,) if ret.caller else ())
    if entry is None or not entry.site:
        return fallback
    stack, probed = entry.functions, function_of(entry.site)
    if probed not in stack or ret.caller not in stack[stack.index(probed):]:
        return fallback
    return (ret.func,) + stack[stack.index(probed):]


def cma_calls(items: Iterable[TraceItem], area: str) -> list[CmaCall]:
    """The test area's cma_alloc() calls in trace order, each with the refusals and busy pages seen
    on its thread between its start and finish events. A call cut by the end of the trace, or whose
    finish event is unreadable, is dropped: its loop then fails to join, and says so."""
    return _scan(items, area)[0]


def _scan(items: Iterable[TraceItem], area: str) -> tuple[list[CmaCall], int, int]:
    """cma_calls, failed_finish_events and the `[LOST n EVENTS]` marks, in one pass over the trace."""
    calls: list[CmaCall] = []
    open_calls: dict[int, dict] = {}
    failed_finish = lost = 0
    for ev in items:
        if not isinstance(ev, TraceEvent):
            lost += isinstance(ev, LostEvents)
            continue
        event = ev.event
        if event == "cma_alloc_start" and ev.fields.get("name") == area:
            open_calls[ev.pid] = {"start": ev.time, "busy": [], "refusals": [], "entry": None, "failed": 0}
        elif event == "cma_alloc_finish" and ev.fields.get("name") == area:
            ok = _allocated(ev)                 # None: an unreadable page says neither ok nor failed
            failed_finish += ok is False
            if (call := open_calls.pop(ev.pid, None)) is not None and ok is not None:
                calls.append(made(CmaCall, {"pid": ev.pid, "start": call["start"], "finish": ev.time, "ok": ok,
                                            "busy_pfns": tuple(call["busy"]),
                                            "refusals": stitch(call["refusals"]) if call["refusals"] else (),
                                            "migrate_failed": call["failed"]}))
        elif (call := open_calls.get(ev.pid)) is None:
            continue
        elif event == "test_pages_isolated" and ev.fields.get("ret") == "fail":
            if (pfn := ev.num("fin_pfn")) is not None:
                call["busy"].append(pfn)
        elif event == "mm_migrate_pages":
            call["failed"] += ev.num("nr_failed") or 0
        elif ev.func:
            call["refusals"].append(Refusal(ev.func, ev.num("ret"), chain_of(ev, call["entry"]), ev.time))
        elif ev.site and ev.stack:
            call["entry"] = ev
    return calls, failed_finish, lost


# lib/vsprintf.c ptr_to_id: NULL always prints as zeros; any other pointer hashed before the hash key
# exists prints as one of these.
_HASHED_BEFORE_KEY = ("(ptrval)", "(____ptrval____)")


def _allocated(finish: TraceEvent) -> bool | None:
    """Whether a cma_alloc_finish event got its page; None when the page field is unreadable."""
    if finish.fields.get("page") in _HASHED_BEFORE_KEY:
        return True
    page = finish.ptr("page")
    return None if page is None else page != 0


def stitch(refusals: Sequence[Refusal]) -> tuple[Refusal, ...]:
    """Chains joined across nested refusals: when a chain ends at a function that refuses next (a
    kretprobe without a stack knows only its caller: __buffer_migrate_folio <- buffer_migrate_folio_norefs,
    then buffer_migrate_folio_norefs <- migrate_pages_batch), the outer refusal's chain continues it."""
    out: list[Refusal] = list(refusals)
    for i in range(len(out) - 1, -1, -1):      # from the last: an outer chain is whole before it is used
        outer = next((r for r in out[i + 1:] if r.function == out[i].chain[-1]), None)
        if outer is not None and len(out[i].chain) > 1:
            out[i] = dataclasses.replace(out[i], chain=out[i].chain + outer.chain[1:])
    return tuple(out)


def failed_finish_events(items: Iterable[TraceItem], area: str) -> int:
    """cma_alloc_finish events of the area with a NULL page (include/trace/events/cma.h: page is NULL
    on failure; pfn is the last range tried)."""
    return sum(1 for ev in items if isinstance(ev, TraceEvent) and ev.event == "cma_alloc_finish"
               and ev.fields.get("name") == area and _allocated(ev) is False)


def innermost(refusals: Sequence[Refusal]) -> list[Refusal]:
    """The refusals nothing deeper refused under: a function on another refusal's chain (the
    alloc_contig_range that gave up because try_to_free_buffers refused) only passed the refusal on."""
    passed_on = {f for r in refusals for f in r.chain[1:]}
    return [r for r in refusals if r.function not in passed_on]


class Timed(Protocol):
    """What the join needs of a loop record (a parsed LoopRecord, or a loops.jsonl row wrapped by `timed`)."""
    loop: int
    time: float | None
    outcome: str


@dataclass(frozen=True)
class TimedRecord:
    loop: int
    time: float | None
    outcome: str


def timed(row: Mapping) -> TimedRecord:
    """A loops.jsonl row as the join needs it."""
    return TimedRecord(row["loop"], row.get("time"), row["outcome"])


def _deciding_records(records: Sequence[Timed]) -> dict[int, Timed]:
    """{loop: the record it is decided by}, in time order: each loop's first record by printk time, those
    without one last (they are never joined). A repeated line (console damage, with or without its time)
    decides nothing: calls_by_loop and _busy_traces both read a loop through this one record."""
    first: dict[int, Timed] = {}
    for r in sorted(records, key=lambda r: (r.time is None, r.time)):
        first.setdefault(r.loop, r)
    return first


def calls_by_loop(records: Sequence[Timed], calls: Sequence[CmaCall]) -> tuple[dict[int, list[CmaCall]], dict[int, str]]:
    """Each loop's cma_alloc() calls, and {loop: why not} for the loops whose calls cannot be known;
    both in time order.

    The one rule: a loop's calls are those that finished after the previous record was printed and
    before its own (printk and trace share the local clock), and they must be exactly the calls its
    record implies (CHUNK_CALLS per chunk), else the loop is left out. A loop is decided by its first
    record in time order: a repeated line (console damage, with or without its time) decides nothing."""
    joined, unjoined = {}, {}
    # Each loop's window of finish times found by bisection, then put back in trace order: a scan of every
    # call for every loop grows with loops times calls.
    finish_of = [c.finish for c in calls]
    by_finish = sorted(range(len(calls)), key=finish_of.__getitem__)
    finishes = [finish_of[i] for i in by_finish]
    why_not: dict[tuple, str] = {}          # (seen, outcome) -> why not: most loops of a run are not traced
    previous = float("-inf")
    for rec in _deciding_records(records).values():
        if rec.time is None:
            unjoined[rec.loop] = "the record has no printk timestamp"
            continue
        start, end = bisect.bisect_right(finishes, previous), bisect.bisect_right(finishes, rec.time)
        # previous < finish <= rec.time, in trace order
        mine = [calls[i] for i in sorted(by_finish[start:end])] if end > start else []
        previous = rec.time
        expected = _calls_implied(rec.outcome)
        seen = tuple([c.ok for c in mine])
        if seen != expected:
            if (why := why_not.get((seen, rec.outcome))) is None:
                why = why_not[seen, rec.outcome] = (f"trace has {len(seen)} calls ({seen.count(False)} failed), the "
                                                    f"record implies {len(expected)} ({expected.count(False)} failed)")
            unjoined[rec.loop] = why
            continue
        joined[rec.loop] = mine
    return joined, unjoined


@functools.lru_cache(maxsize=4096)
def _calls_implied(outcome: str) -> tuple[bool | None, ...]:
    """The ok/failed sequence of cma_alloc() calls a record's outcome implies; outcomes repeat (most
    loops are all "."), so each is expanded once."""
    return tuple(ok for c in outcome for ok in CHUNK_CALLS.get(c, (None,)))


def join(records: Sequence[LoopRecord], calls: Sequence[CmaCall],
         dumps: Sequence[PageDump] = ()) -> tuple[list[BusyTrace], dict[int, str]]:
    """One BusyTrace per failed chunk of every loop whose calls the trace saw exactly as its record
    says (calls_by_loop), and {loop: why not} for the others."""
    joined, unjoined = calls_by_loop(records, calls)
    return _busy_traces(records, joined, lambda: dumps), unjoined


def _busy_traces(records: Sequence[LoopRecord], joined: Mapping[int, list[CmaCall]],
                 dumps_of: Callable[[], Iterable[PageDump]]) -> list[BusyTrace]:
    """join's traces; the page dumps are asked of `dumps_of` once, when the first failed chunk needs them
    (most runs have none: analyse then never reads the console's dumps)."""
    traces: list[BusyTrace] = []
    by_pfn: dict[int, list[PageDump]] | None = None     # pfn -> its dumps, in console order
    first = _deciding_records(records)
    for loop, loop_calls in joined.items():             # in time order
        rec, it = first[loop], iter(loop_calls)
        for chunk, cause in enumerate(rec.outcome):
            if cause == ".":                # one call, that succeeded: no busy trace
                next(it)
                continue
            if by_pfn is None:
                by_pfn = {}
                for d in dumps_of():
                    by_pfn.setdefault(d.pfn, []).append(d)
            traces.append(_busy_trace(rec, chunk, cause, [next(it) for _ in CHUNK_CALLS[cause]], by_pfn))
    return traces


def _busy_trace(rec: LoopRecord, chunk: int, cause: str, chunk_calls: list[CmaCall],
                dumps: Mapping[int, list[PageDump]]) -> BusyTrace:
    failed = [c for c in chunk_calls if not c.ok]
    first = failed[0]
    # The chain that refused most often in the first failed call, among its innermost refusals.
    chains = Counter(r.chain for r in innermost(first.refusals))
    chain = chains.most_common(1)[0][0] if chains else ()
    pfn = first.busy_pfns[0] if first.busy_pfns else None
    dump = _dump_for(first, pfn, dumps)
    stage = "refused" if chain else "migration" if first.migrate_failed else "isolation"
    return BusyTrace(loop=rec.loop, chunk=chunk, cause=cause, pa=rec.pa[chunk], failed_calls=len(failed),
                     refused_by=chain[0] if chain else None, chain=chain, stage=stage,
                     refusals=dict(Counter(r.function for c in failed for r in c.refusals)),
                     pfn=pfn, page=_page_fields(dump) if dump else None,
                     call_busy_pfns=tuple(c.busy_pfns for c in chunk_calls))


def _dump_for(call: CmaCall, pfn: int | None, dumps: Mapping[int, list[PageDump]]) -> PageDump | None:
    """The page dump of the busy page printed during the call (the dump comes from the failed range):
    the first, in console order, of those of its pfn (`dumps`: pfn -> its dumps)."""
    return next((d for d in dumps.get(pfn, ()) if d.time is not None and call.start <= d.time <= call.finish), None)


def _page_fields(d: PageDump) -> dict:
    return {"pfn": d.pfn, "refcount": d.refcount, "mapcount": d.mapcount, "flags": list(d.flag_names),
            "aops": d.aops, "ino": d.ino, "anon": d.anon, "cma": d.cma}


def chain_counts(traces: Iterable[BusyTrace]) -> list[dict]:
    """Distinct call chains over the busy traces, most frequent first."""
    counts = Counter(t.chain for t in traces)
    return [{"chain": list(chain), "count": n} for chain, n in counts.most_common()]


@dataclass(frozen=True)
class Analysis:
    """A run's busy traces, the loops that have none, and the trace's own figures."""
    traces: list[BusyTrace]
    unjoined: dict[int, str]         # loop -> why its chunks have no busy trace
    calls: list[CmaCall]             # every cma_alloc() call on the area, in trace order
    failed_finish_events: int
    lost_marks: int                  # `[LOST n EVENTS]` marks in the trace: its counts are then lower bounds

    def summary(self, failed_chunks: int) -> dict:
        """The figures a run summary keeps; failed_chunks comes from the module's records."""
        with_ttfb = sum(1 for t in self.traces if "try_to_free_buffers" in t.chain)
        return {"failed_chunks": failed_chunks, "traced": len(self.traces),
                "with_try_to_free_buffers": with_ttfb,
                "refused_by": dict(Counter(t.refused_by or f"(no probe: {t.stage})" for t in self.traces).most_common()),
                "chains": chain_counts(self.traces), "unjoined_loops": self.unjoined,
                "failed_finish_events": self.failed_finish_events, "trace_lost_marks": self.lost_marks}


def analyse(console: Sequence[str], trace_lines: Sequence[str], area: str) -> Analysis:
    """A run's console (loop records, page dumps) and trace, joined into busy traces."""
    records = loop_records(console)
    items = parse_trace(trace_lines)
    calls, failed_finish, lost = _scan(items, area)
    joined, unjoined = calls_by_loop(records, calls)
    traces = _busy_traces(records, joined, lambda: parse_page_dumps(console))
    return Analysis(traces, unjoined, calls, failed_finish, lost)
