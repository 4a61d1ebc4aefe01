"""ftrace text parser: the kernel's own formats (kernel/trace/trace_output.c), and recorded real traces."""

from pathlib import Path

from harness import trace

FIXTURES = Path(__file__).parent.parent / "fixtures"


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
    items = trace.parse_trace(lines)
    start, ttfb, release, lost = items
    assert (start.comm, start.pid, start.cpu, start.event, start.time) == ("cma_harness/0", 71, 0, "cma_alloc_start", 12.345678)
    assert start.fields == {"name": "cma-harness-area", "count": "256", "align": "8"} and start.num("count") == 256
    assert (ttfb.func, ttfb.site, ttfb.caller, ttfb.num("ret")) == ("try_to_free_buffers", "filemap_release_folio+0x5c/0x80",
                                                                    "filemap_release_folio", 0)
    assert ttfb.stack == ("migrate_pages+0x3e4/0x8c0", "loop_thread+0x1c0/0x2b0"), "the stack goes to its own CPU's event"
    assert release.stack == () and release.ptr("page") == 0xc1e5b000
    assert (lost.cpu, lost.count) == (1, 42)


def test_comm_with_dashes_and_spaces_and_no_irq_info():
    ev, = trace.parse_trace(["  kworker/u4:1-ev ents-12 [001]   100.000001: mm_migrate_pages: nr_succeeded=3 nr_failed=1"])
    assert (ev.comm, ev.pid, ev.cpu, ev.num("nr_failed")) == ("kworker/u4:1-ev ents", 12, 1, 1)


def test_ring_stats_sum_over_cpus():
    text = "== cpu0\nentries: 0\noverrun: 3\ndropped events: 0\n== cpu1\nentries: 2\noverrun: 4\ndropped events: 1\n"
    assert trace.ring_stats(text) == {"entries": 2, "overrun": 7, "dropped events": 1}
