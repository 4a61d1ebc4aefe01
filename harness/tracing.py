"""Guest-side tracing of the CMA failure path: tracefs and dynamic-debug set-up, a trace reader, collection.

Everything here goes over the command channel (shell snippets), never the kernel console. The probes
are data: one entry per non-inlined function of the failure path (checked against the 6.1 System.map of
the built kernel; fallback_migrate_folio, buffer_busy and bh_lru_install are inlined and cannot be
probed). ARM32 6.1 has no $argN: entry arguments are %r0..%r3, the return value $retval.
"""

from __future__ import annotations

import gzip
import shlex
from dataclasses import dataclass
from pathlib import Path

from .boards.base import Board
from .deadline import Deadline

TRACEFS = "/sys/kernel/tracing"
GROUP = "cmah"                      # kprobe event group: events/cmah/<name>
TRACE_FILE = "/tmp/cmah-trace.txt"  # guest tmpfs, filled by the reader while the loop runs
READER_PID = "/tmp/cmah-trace.pid"
# The loop thread is kthread_create(..., "cma_harness/%d", cpu): only its calls are the test's.
LOOP_COMM_GLOB = "cma_harness*"
ONLY_LOOP_THREAD = f'comm ~ "{LOOP_COMM_GLOB}"'


@dataclass(frozen=True)
class Probe:
    """A kretprobe event that records a refusal: `filter` keeps only the failing returns."""
    name: str
    symbol: str
    fetch: str          # fetch-args of the return value, typed as the C function returns it
    refused: str        # filter expression true when the function refused
    stack: bool         # a stacktrace trigger on the refusals: the call chain that led there

    def definition(self) -> str:
        return f"r:{GROUP}/{self.name} {self.symbol} {self.fetch}"

    @property
    def filter(self) -> str:
        return f"{self.refused} && {ONLY_LOOP_THREAD}"


PROBES = (
    # The 2012 refusal: drop_buffers() found a busy buffer_head (b_count pinned by a bh LRU slot).
    Probe("try_to_free_buffers", "try_to_free_buffers", "ret=$retval:u8", "ret == 0", stack=True),
    # Its caller; the kretprobe's own caller address tells migration (fallback_migrate_folio, inlined
    # into move_to_new_folio) from reclaim (shrink_folio_list), even where a stack is cut short.
    Probe("filemap_release_folio", "filemap_release_folio", "ret=$retval:u8", "ret == 0", stack=False),
    # 6.1's block-device path (defence 3) and ext4's data pages: -EAGAIN (-11) when buffers stay busy.
    Probe("buffer_migrate_folio_norefs", "buffer_migrate_folio_norefs", "ret=$retval:s32", "ret != 0", stack=False),
    Probe("__buffer_migrate_folio", "__buffer_migrate_folio", "ret=$retval:s32", "ret != 0", stack=True),
    # Any other mapping whose page has an unexpected reference count: -EAGAIN.
    Probe("folio_migrate_mapping", "folio_migrate_mapping", "ret=$retval:s32", "ret != 0", stack=True),
    # The whole range: -EBUSY (-16) after five migrate_pages() passes left pages behind.
    Probe("alloc_contig_range", "alloc_contig_range", "ret=$retval:s32", "ret != 0", stack=True),
)

# Static trace events: (path under events/, filter). cma events are few and name their area, so all
# are kept; migration and isolation events are restricted to the loop thread (kswapd compacts too).
STATIC_EVENTS = (
    ("cma", ""),                                    # cma_alloc_start/finish/busy_retry, cma_release
    ("migrate/mm_migrate_pages", ONLY_LOOP_THREAD),  # succeeded/failed per migrate_pages() pass
    ("page_isolation/test_pages_isolated", ONLY_LOOP_THREAD),  # fin_pfn: the first busy page
)

# Dynamic debug: alloc_contig_dump_pages() (inlined, but its descriptor keeps the function name)
# dump_page()s every page left behind by a failed range, to the console: refcount, flags, aops, ino.
PAGE_DUMPS = "func alloc_contig_dump_pages +p"


def _write(value: str, path: str) -> str:
    return f"echo {shlex.quote(value)} > {path}"


def setup_script(buffer_kib: int, page_dumps: bool) -> str:
    """Probes, filters, stack triggers and events; a per-CPU ring of buffer_kib; tracing on; a reader
    that drains trace_pipe into TRACE_FILE so the ring never overwrites."""
    t = TRACEFS
    lines = [
        f"echo 0 > {t}/tracing_on",
        f"echo > {t}/trace",
        f"echo {buffer_kib} > {t}/buffer_size_kb",
        # Raw pointers: cma_alloc_finish's page is NULL on failure, and a raw page pointer maps to a pfn.
        f"echo 0 > {t}/options/hash-ptr",
        f"echo 1 > {t}/options/sym-offset",
        f"echo > {t}/kprobe_events",
    ]
    for p in PROBES:
        ev = f"{t}/events/{GROUP}/{p.name}"
        lines.append(f"echo {shlex.quote(p.definition())} >> {t}/kprobe_events")
        lines.append(_write(p.filter, f"{ev}/filter"))
        if p.stack:
            lines.append(_write(f"stacktrace if {p.filter}", f"{ev}/trigger"))
        lines.append(f"echo 1 > {ev}/enable")
    for path, flt in STATIC_EVENTS:
        if flt:
            lines.append(_write(flt, f"{t}/events/{path}/filter"))
        lines.append(f"echo 1 > {t}/events/{path}/enable")
    if page_dumps:
        lines.append(_write(PAGE_DUMPS, "/proc/dynamic_debug/control"))
    lines += [
        f"echo 1 > {t}/tracing_on",
        f"cat {t}/trace_pipe > {TRACE_FILE} 2>/dev/null &",
        f"echo $! > {READER_PID}",
    ]
    # A subshell: `set -ex` stops at the first write the kernel refuses and shows which one,
    # without leaving the command channel's own shell in errexit mode.
    return "(\nset -ex\n" + "\n".join(lines) + "\n)"


# Tracing off, a second for the reader to drain what is left, then the reader stops: trace_pipe
# consumes what it reads, so nothing is read twice and nothing still in the ring is lost.
STOP_SCRIPT = (
    f"echo 0 > {TRACEFS}/tracing_on; echo 'func alloc_contig_dump_pages -p' > /proc/dynamic_debug/control; "
    f"sleep 1; kill $(cat {READER_PID}) 2>/dev/null; "
    f"for f in {TRACEFS}/per_cpu/cpu*/stats; do echo \"== $f\"; cat $f; done"
)


def start(board: Board, buffer_kib: int, page_dumps: bool, deadline: Deadline) -> None:
    board.run_script(setup_script(buffer_kib, page_dumps), deadline).check()


def collect(board: Board, folder: Path, deadline: Deadline) -> Path:
    """Stop tracing and copy the trace to folder/trace.txt byte for byte; the ring's own
    overrun/dropped counters go to folder/trace-stats.txt."""
    stats = board.run_script(STOP_SCRIPT, deadline).check().output
    (folder / "trace-stats.txt").write_text(stats)
    # Compressed in the guest: trace text shrinks about tenfold, and the console channel is slow.
    board.run_script(f"gzip -c {TRACE_FILE} > {TRACE_FILE}.gz", deadline).check()
    out = folder / "trace.txt"
    out.write_bytes(gzip.decompress(board.read_file(f"{TRACE_FILE}.gz", deadline)))
    return out
