"""Busy traces: failed chunks joined to their cma_alloc() calls, refusals and page dumps."""

from pathlib import Path

from harness import busy, parse, trace
from harness.pagedump import PageDump

FIXTURES = Path(__file__).parent.parent / "fixtures"
AREA = "cma-harness-area"


def _line(ts, event, body, pid=71):
    return f"   cma_harness/0-{pid:<7d} [000] .....  {ts:10.6f}: {event}: {body}"


def _call(ts, ok, refusals=(), busy_pfn=None):
    """The trace of one cma_alloc() on the test area: start, what refused, finish."""
    out = [_line(ts, "cma_alloc_start", f"name={AREA} count=256 align=8")]
    for i, (func, caller, stack) in enumerate(refusals):
        out.append(_line(ts + 0.0001 * (i + 1), func, f"({caller}+0x10/0x40 <- {func}) ret=0"))
        if stack:
            out.append(_line(ts + 0.0001 * (i + 1), "<stack trace>", "").rstrip(": "))
            out += [f" => {f}+0x4/0x8" for f in stack]
    if busy_pfn:
        out.append(_line(ts + 0.0008, "test_pages_isolated",
                         f"start_pfn=0x48800 end_pfn=0x48900 fin_pfn={busy_pfn:#x} ret=fail"))
    page = "c1e5b000" if ok else "00000000"
    out.append(_line(ts + 0.0009, "cma_alloc_finish", f"name={AREA} pfn=0x48800 page={page} count=256 align=8"))
    return out


CHAIN = ["kretprobe_trace_func", "filemap_release_folio", "migrate_pages", "__alloc_contig_migrate_range",
         "alloc_contig_range", "cma_alloc"]
TTFB = ("try_to_free_buffers", "filemap_release_folio", CHAIN)
ACR = ("alloc_contig_range", "cma_alloc", ["trace_stuff", "cma_alloc", "dma_alloc_contiguous"])
RECLAIM = ("try_to_free_buffers", "filemap_release_folio", ["filemap_release_folio", "shrink_folio_list"])


def _record(loop, ts, outcome):
    pa = ",".join("48800000" if c in ".TL" else "0" for c in outcome)
    failed = sum(c != "." for c in outcome)
    calls_failed = sum(busy.CHUNK_CALLS[c].count(False) for c in outcome)
    return parse.parse_line(f"[{ts:12.6f}] cma_harness: loop={loop} failed={failed} calls_failed={calls_failed} "
                            f"dur_us=1 outcome={outcome} pa={pa}")


def _items(lines):
    return trace.parse_trace("\n".join(lines).splitlines())


def test_each_failed_chunk_gets_the_innermost_most_frequent_chain_and_its_dumped_page():
    lines = (_call(1.0, True) + _call(1.1, False, [RECLAIM, TTFB, TTFB, ACR], busy_pfn=0x4a123)
             + _call(1.2, True))  # the T retry
    records = [_record(0, 2.0, ".T")]
    dump = PageDump(time=1.1005, pfn=0x4a123, refcount=3, aops="def_blk_aops", ino=0xfe00001,
                    flag_names=("private", "zone=0"), cma=True, complete=True)
    traces, unjoined = busy.join(records, busy.cma_calls(_items(lines), AREA), [dump])
    assert unjoined == {}
    t, = traces
    assert (t.loop, t.chunk, t.cause, t.failed_calls, t.pfn) == (0, 1, "T", 1, 0x4a123)
    assert t.chain == ("try_to_free_buffers",) + tuple(CHAIN[1:]), "the reclaim refusal is rarer; acr only passed it on"
    assert t.refused_by == "try_to_free_buffers"
    assert t.refusals == {"try_to_free_buffers": 3, "alloc_contig_range": 1}
    assert t.page["aops"] == "def_blk_aops" and t.page["flags"] == ["private", "zone=0"]


def test_a_loop_whose_calls_do_not_match_its_record_is_reported_not_guessed():
    lines = _call(1.0, False, [TTFB]) + _call(1.1, True) + _call(3.0, False, [TTFB]) + _call(3.1, False)
    records = [_record(0, 2.0, "T"), _record(1, 4.0, "P")]   # loop 1: P needs three failed calls, two traced
    traces, unjoined = busy.join(records, busy.cma_calls(_items(lines), AREA))
    assert [t.loop for t in traces] == [0]
    assert "2 calls (2 failed)" in unjoined[1] and "implies 3 (3 failed)" in unjoined[1]


def test_kretprobe_without_a_usable_stack_still_names_its_caller():
    ev, = _items([_line(1.0, "try_to_free_buffers", "(filemap_release_folio+0x5c/0x80 <- try_to_free_buffers) ret=0")])
    assert busy.chain_of(ev) == ("try_to_free_buffers", "filemap_release_folio")


def test_failed_finish_events_count_only_the_area_and_null_pages():
    lines = _call(1.0, False) + _call(1.1, True) + [
        _line(1.2, "cma_alloc_finish", "name=reserved pfn=0x47800 page=00000000 count=1 align=0")]
    assert busy.failed_finish_events(_items(lines), AREA) == 1
