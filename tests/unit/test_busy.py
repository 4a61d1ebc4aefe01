"""Busy traces: failed chunks joined to their cma_alloc() calls, what refused inside them, and the page."""


from harness.parsers import busy
from harness.parsers import kmsg
from harness.parsers import ftrace
from harness.parsers.dump_page import parse_page_dumps
from tests.conftest import FIXTURES, fixture_lines

AREA = "cma-harness-area"
SEED_PATH = ("try_to_free_buffers", "filemap_release_folio", "migrate_pages_batch", "migrate_pages",
             "__alloc_contig_migrate_range", "alloc_contig_range", "cma_alloc")


_lines = fixture_lines


def _join(loop):
    console, items = _lines(f"console-reintroduce-2012-loop{loop}.log"), ftrace.parse_trace(_lines(f"trace-reintroduce-2012-loop{loop}.txt"))
    records = [e for e in kmsg.parse_lines(console) if isinstance(e, kmsg.LoopRecord)]
    return busy.join(records, busy.cma_calls(items, AREA), list(parse_page_dumps(console))), items, records


def test_real_loop6_transient_chunk_failed_on_the_2012_chain():
    """Recorded from `cma-harness run` on reintroduce-2012 (journal-less ext4 workload, tracing on):
    the console and the trace cut to loop 6's window, from loop 5's record to loop 6's. Chunk 55 failed
    once and a plain retry succeeded (T)."""
    (traces, unjoined), items, _ = _join(6)
    assert unjoined == {5: "trace has 0 calls (0 failed), the record implies 56 (0 failed)"}, "loop 5 lies before the cut"
    t, = traces
    assert (t.loop, t.chunk, t.cause, t.failed_calls, t.refused_by, t.stage) == (6, 55, "T", 1, "try_to_free_buffers", "refused")
    assert t.chain[:len(SEED_PATH)] == SEED_PATH and t.chain[-3:] == ("loop_thread", "kthread", "ret_from_fork")
    assert t.refusals == {"try_to_free_buffers": 53}
    assert t.pfn == 0x4bfee and t.page["pfn"] == t.pfn
    assert t.page["flags"] == ["referenced", "active", "private", "zone=0"], "private: the page has buffer heads"
    assert (t.page["refcount"], t.page["aops"], t.page["ino"]) == (3, "0xc0332704", 0xfe00000)
    assert busy.failed_finish_events(items, AREA) == 1


def test_real_loop11_first_refusal_was_a_page_reference_then_busy_buffers():
    """Same run, loop 11's window. Chunk 55's first call was refused by folio_migrate_mapping (the
    page had no buffers but a reference too many: refcount 3, no `private`), the plain retry by
    try_to_free_buffers (buffers back, busy), and the retry after invalidate_bh_lrus() succeeded (L)."""
    (traces, unjoined), items, records = _join(11)
    t, = traces
    assert (t.loop, t.chunk, t.cause, t.failed_calls) == (11, 55, "L", 2)
    assert (t.refused_by, t.chain) == ("folio_migrate_mapping", ("folio_migrate_mapping", "migrate_folio_extra"))
    assert t.refusals == {"folio_migrate_mapping": 46, "try_to_free_buffers": 55}
    assert t.page["flags"] == ["referenced", "zone=0"] and t.page["refcount"] == 3
    assert busy.failed_finish_events(items, AREA) == records[-1].calls_failed == 2


def _ev(text):
    ev, = ftrace.parse_trace(text.splitlines())
    return ev


ENTRY = _ev("""   cma_harness/0-97      [000] d....    16.903441: filemap_release_folio_entry: (filemap_release_folio+0x0/0x90) folio=0xc77b72e0
   cma_harness/0-97      [000] d....    16.909294: <stack trace>
 => do_undefinstr+0xc0/0x158
 => __und_svc_finish+0x0/0x20
 => filemap_release_folio+0x0/0x90
 => migrate_pages_batch+0x8c4/0xc60
 => migrate_pages+0x14c/0x398""")


def test_a_refusal_takes_the_chain_of_the_entry_it_returned_under():
    # filemap_release_folio tail-calls try_to_free_buffers, whose return address is then in migrate_pages_batch.
    tail = _ev("   cma_harness/0-97      [000] .n...    16.909963: try_to_free_buffers: "
               "(migrate_pages_batch+0x8c4/0xc60 <- try_to_free_buffers) ret=0")
    assert busy.chain_of(tail, ENTRY) == ("try_to_free_buffers", "filemap_release_folio", "migrate_pages_batch", "migrate_pages")
    direct = _ev("   cma_harness/0-97      [000] .....    16.909963: try_to_free_buffers: "
                 "(filemap_release_folio+0x5c/0x90 <- try_to_free_buffers) ret=0")
    assert busy.chain_of(direct, ENTRY)[:2] == ("try_to_free_buffers", "filemap_release_folio")
    # Returned into a function that is not on the entry's chain: not under it; the caller is all we know.
    other = _ev("   cma_harness/0-97      [000] .....    33.416365: folio_migrate_mapping: "
                "(migrate_folio_extra+0x24/0x64 <- folio_migrate_mapping) ret=-11")
    assert busy.chain_of(other, ENTRY) == ("folio_migrate_mapping", "migrate_folio_extra")


def test_innermost_drops_functions_that_only_passed_a_refusal_on():
    deep = busy.Refusal("try_to_free_buffers", 0, SEED_PATH, 1.0)
    outer = busy.Refusal("alloc_contig_range", -16, ("alloc_contig_range", "cma_alloc"), 1.1)
    assert busy.innermost([deep, outer]) == [deep]


def test_real_trace_with_hashed_pointers_still_tells_success_from_failure():
    """Recorded from a reintroduce-2012 run whose set-up left options/hash-ptr on: every page pointer
    the trace printed is `(ptrval)` (no hash key yet in the guest), and NULL still prints as zeros.
    Cut to loop 16, where chunk 55 failed once and a plain retry succeeded."""
    console = (FIXTURES / "console-reintroduce-2012-hashed-loop16.log").read_text(errors="replace").splitlines()
    items = ftrace.parse_trace((FIXTURES / "trace-reintroduce-2012-hashed-loop16.txt").read_text().splitlines())
    assert {e.fields["page"] for e in items if e.event == "cma_alloc_finish"} == {"(ptrval)", "00000000"}
    records = [e for e in kmsg.parse_lines(console) if isinstance(e, kmsg.LoopRecord)]
    traces, unjoined = busy.join(records, busy.cma_calls(items, AREA))
    assert [(t.loop, t.chunk, t.cause, t.refused_by) for t in traces] == [(16, 55, "T", "try_to_free_buffers")]
    assert list(unjoined) == [15] and busy.failed_finish_events(items, AREA) == 1


def test_real_loop_where_nothing_refused_the_page_was_never_migrated():
    """Recorded from another reintroduce-2012 run (tracing on), cut to loop 4: chunk 55's two failed
    calls saw no refusal and no migration failure (mm_migrate_pages nr_failed=0), yet the window stayed
    busy at pfn 0x4bff7: isolate_migratepages_range never handed that page over. No page dump either:
    __alloc_contig_migrate_range returned 0, so alloc_contig_dump_pages() did not run."""
    console = (FIXTURES / "console-reintroduce-2012-loop4-isolation.log").read_text(errors="replace").splitlines()
    items = ftrace.parse_trace((FIXTURES / "trace-reintroduce-2012-loop4-isolation.txt").read_text().splitlines())
    records = [e for e in kmsg.parse_lines(console) if isinstance(e, kmsg.LoopRecord)]
    traces, _ = busy.join(records, busy.cma_calls(items, AREA), list(parse_page_dumps(console)))
    t, = traces
    assert (t.loop, t.cause, t.stage, t.refused_by, t.chain, t.pfn, t.page) == (4, "L", "isolation", None, (), 0x4bff7, None)


def test_nested_refusals_continue_each_other():
    inner = busy.Refusal("__buffer_migrate_folio", -11, ("__buffer_migrate_folio", "buffer_migrate_folio_norefs"), 1.0)
    outer = busy.Refusal("buffer_migrate_folio_norefs", -11, ("buffer_migrate_folio_norefs", "migrate_pages_batch"), 1.1)
    first, second = busy.stitch([inner, outer])
    assert first.chain == ("__buffer_migrate_folio", "buffer_migrate_folio_norefs", "migrate_pages_batch")
    assert second == outer and busy.innermost([first, second]) == [first]


def test_real_stock_journal_failure_is_refused_on_the_6_1_block_device_path():
    """Recorded from `cma-harness run` on stock 6.1 with a journaled ext4 (workload.profile journal),
    cut to loop 17: chunk 55 failed three times (P). buffer_migrate_folio_norefs (defence 3) flushed
    the bh LRUs and still found the buffers busy: the journal holds them, not an LRU."""
    console = (FIXTURES / "console-stock-journal-loop17.log").read_text(errors="replace").splitlines()
    items = ftrace.parse_trace((FIXTURES / "trace-stock-journal-loop17.txt").read_text().splitlines())
    records = [e for e in kmsg.parse_lines(console) if isinstance(e, kmsg.LoopRecord)]
    traces, unjoined = busy.join(records, busy.cma_calls(items, AREA), list(parse_page_dumps(console)))
    t, = traces
    assert (t.loop, t.cause, t.failed_calls, t.refused_by) == (17, "P", 3, "__buffer_migrate_folio")
    assert t.chain == ("__buffer_migrate_folio", "buffer_migrate_folio_norefs", "migrate_pages_batch")
    assert t.refusals == {"__buffer_migrate_folio": 150, "buffer_migrate_folio_norefs": 150, "try_to_free_buffers": 5}
    assert t.page["flags"] == ["dirty", "private", "reclaim", "zone=0"] and t.page["refcount"] == 3
    assert busy.failed_finish_events(items, AREA) == records[-1].calls_failed == 3
