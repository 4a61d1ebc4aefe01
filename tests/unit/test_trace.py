"""ftrace text parser: the kernel's own formats (kernel/trace/trace_output.c), and recorded real traces."""

from collections import Counter

import pytest

from harness.parsers import ftrace
from tests.conftest import FIXTURES



def test_formats_from_trace_output_c():
    # trace_print_context "%16s-%-7d [%03d] " + 5 irq-info chars + " %5lu.%06lu: ", as 6.1 prints them.
    lines = [
        "   cma_harness/0-71      [000] .....    12.345678: cma_alloc_start: name=cma-harness-area count=256 align=8",
        "   cma_harness/0-71      [000] .....    12.345900: try_to_free_buffers: (filemap_release_folio+0x5c/0x80 <- try_to_free_buffers) ret=0",
        "          <idle>-0       [001] d.h1.    12.345901: cma_release: name=cma pfn=0x47800 page=c1e5b000 count=1",
        "   cma_harness/0-71      [000] .....    12.345902: <stack trace>",
        " => migrate_pages+0x3e4/0x8c0",
        " => loop_thread+0x1c0/0x2b0 [cma_harness]",
        "CPU:1 [LOST 42 EVENTS]",
        " => not-a-frame-after-the-stack-ended+0x0/0x4",
    ]
    items = ftrace.parse_trace(lines)
    start, ttfb, release, lost = items
    assert (start.comm, start.pid, start.cpu, start.event, start.time) == ("cma_harness/0", 71, 0, "cma_alloc_start", 12.345678)
    assert start.fields == {"name": "cma-harness-area", "count": "256", "align": "8"} and start.num("count") == 256
    assert (ttfb.func, ttfb.site, ttfb.caller, ttfb.num("ret")) == ("try_to_free_buffers", "filemap_release_folio+0x5c/0x80",
                                                                    "filemap_release_folio", 0)
    assert ttfb.stack == ("migrate_pages+0x3e4/0x8c0", "loop_thread+0x1c0/0x2b0"), "the stack goes to its own CPU's event"
    assert release.stack == () and release.ptr("page") == 0xc1e5b000
    assert (lost.cpu, lost.count) == (1, 42)


def test_comm_with_dashes_and_spaces_and_no_irq_info():
    ev, = ftrace.parse_trace(["  kworker/u4:1-ev ents-12 [001]   100.000001: mm_migrate_pages: nr_succeeded=3 nr_failed=1"])
    assert (ev.comm, ev.pid, ev.cpu, ev.num("nr_failed")) == ("kworker/u4:1-ev ents", 12, 1, 1)


def test_ring_stats_sum_over_cpus():
    text = "== cpu0\nentries: 0\noverrun: 3\ndropped events: 0\n== cpu1\nentries: 2\noverrun: 4\ndropped events: 1\n"
    assert ftrace.ring_stats(text) == {"entries": 2, "overrun": 7, "dropped events": 1}


def _items(name):
    return ftrace.parse_trace((FIXTURES / name).read_text(errors="replace").splitlines())


def _events(items, name):
    return [i for i in items if isinstance(i, ftrace.TraceEvent) and i.event == name]


def test_real_trace_reintroduce_2012_loop6():
    """Recorded from `cma-harness run` on reintroduce-2012 with tracing on: trace.txt cut to loop 6's
    window (57 cma_alloc() calls, one failed)."""
    items = _items("trace-reintroduce-2012-loop6.txt")
    assert len(_events(items, "cma_alloc_start")) == len(_events(items, "cma_alloc_finish")) == 57
    refusals = _events(items, "try_to_free_buffers")
    # Return addresses: migrate_pages_batch (filemap_release_folio tail-calls try_to_free_buffers) for
    # migration, shrink_folio_list for reclaim_clean_pages_from_list's attempt first.
    assert Counter((r.func, r.caller, r.num("ret")) for r in refusals) == {
        ("try_to_free_buffers", "migrate_pages_batch", 0): 49, ("try_to_free_buffers", "shrink_folio_list", 0): 4}
    entries = _events(items, "filemap_release_folio_entry")
    assert entries and all(e.stack[:3] == ("do_undefinstr+0xc0/0x158", "__und_svc_finish+0x0/0x20",
                                          "filemap_release_folio+0x0/0x90") for e in entries)
    assert entries[0].stack[-3:] == ("loop_thread+0x138/0x3f8", "kthread+0xbc/0xd8", "ret_from_fork+0x14/0x38")
    failed = [e for e in _events(items, "cma_alloc_finish") if e.ptr("page") == 0]
    assert [(e.num("pfn"), e.time) for e in failed] == [(0x4bf00, 25.990041)]
    assert not any(isinstance(i, ftrace.LostEvents) for i in items)


def test_real_trace_stock_loop10():
    """Recorded from `cma-harness run` on stock 6.1 (journal-less ext4, tracing on), cut to loop 10:
    56 calls, every window isolated, nothing refused."""
    items = _items("trace-stock-loop10.txt")
    assert not [i for i in items if isinstance(i, ftrace.TraceEvent) and i.func]
    assert len(_events(items, "cma_alloc_finish")) == 56
    assert [e.fields["ret"] for e in _events(items, "test_pages_isolated")] == ["success"] * 56


def test_garbled_trace_loses_lines_not_meaning():
    """trace-reintroduce-2012-loop6.txt garbled with random.Random(4): before each line, with
    probability 0.05, a line of 1-79 random bytes; else, with probability 0.15, 1-11 random bytes
    spliced into the line at a random place (the same recipe, seed 5, made the console one)."""
    clean, garbled = _items("trace-reintroduce-2012-loop6.txt"), _items("trace-reintroduce-2012-loop6-garbled.txt")
    assert 0.8 * len(clean) < len(garbled) <= len(clean) + 5
    clean_keys = {(e.time, e.event) for e in clean if isinstance(e, ftrace.TraceEvent)}
    assert all((e.time, e.event) in clean_keys for e in garbled if isinstance(e, ftrace.TraceEvent)
               and e.event in ("cma_alloc_start", "cma_alloc_finish")), "no event made up from noise"
    failed = [e for e in _events(garbled, "cma_alloc_finish") if e.ptr("page") == 0]
    assert [e.time for e in failed] == [25.990041]


def test_truncated_trace_keeps_what_came_before_the_cut():
    """trace-reintroduce-2012-loop6.txt cut in the middle of a stack frame line, inside the failed call."""
    items = _items("trace-reintroduce-2012-loop6-truncated.txt")
    last = items[-1]
    assert last.event == "filemap_release_folio_entry" and last.stack[-2] == "cma_alloc+0x1cc/0x590"
    # The cut frame is kept as printed: a cut symbol is indistinguishable from a whole one.
    assert last.stack[-1] == "__alloc_from_contigu"
    assert not [e for e in _events(items, "cma_alloc_finish") if e.ptr("page") == 0]


def test_parsed_events_are_the_objects_the_constructor_makes():
    """parse_trace builds TraceEvents through tuple.__new__, not TraceEvent(...): each must be what the
    constructor makes, field for field, stacks included; `fields` read-only, since events of the same
    text share it."""
    events = [i for i in _items("trace-reintroduce-2012-loop6.txt") if isinstance(i, ftrace.TraceEvent)]
    assert any(e.stack for e in events) and any(not e.stack for e in events)
    for ev in events:
        made = ftrace.TraceEvent(**ev._asdict())
        assert type(ev) is type(made) and ev == made and ev._asdict() == made._asdict()
    with pytest.raises(TypeError):
        events[0].fields["name"] = "changed"
    assert events[0].as_dict()["kind"] == "trace" and type(events[0].as_dict()["fields"]) is dict
