"""Guest-side tracing of the CMA failure path: tracefs and dynamic-debug set-up, a trace reader, collection.

Everything here goes over the command channel (shell snippets), never the kernel console. The probes
are data: one entry per non-inlined function of the failure path (checked against the 6.1 System.map of
the built kernel; fallback_migrate_folio, buffer_busy and bh_lru_install are inlined and cannot be
probed). ARM32 6.1 has no $argN: entry arguments are %r0..%r3, the return value $retval.
"""

from __future__ import annotations

import gzip
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from harness.boards.base import Board
from harness.core.deadline import Deadline
from harness.core.errors import InfraError
from harness.store import names
from harness.store.run_folder import RunFolder

TRACEFS = "/sys/kernel/tracing"
GROUP = "cmah"                      # kprobe event group: events/cmah/<name>
# Where the reader writes when the board cannot stream the trace out (Board.trace_stream is None):
# guest tmpfs, which costs guest memory as it grows (tens of MiB on a run where every loop fails).
TRACE_FILE = "/tmp/cmah-trace.txt"
# Written to the stream after the reader has stopped: the host knows the trace is whole when it sees it.
STREAM_END = "cma-harness: end of trace"
READER_PID = "/tmp/cmah-trace.pid"
# The loop thread is kthread_create(..., "cma_harness/%d", cpu): only its calls are the test's.
LOOP_COMM_GLOB = "cma_harness*"
ONLY_LOOP_THREAD = f'comm ~ "{LOOP_COMM_GLOB}"'


@dataclass(frozen=True)
class Probe:
    """A kprobe event: kind "r" (kretprobe) records the function's refusals, kind "p" (entry) its call
    chain. `condition` keeps the interesting hits; only the loop thread's are ever recorded."""
    name: str
    kind: str
    symbol: str
    fetch: str
    condition: str = ""
    stack: bool = False

    def definition(self) -> str:
        return f"{self.kind}:{GROUP}/{self.name} {self.symbol} {self.fetch}"

    @property
    def filter(self) -> str:
        return f"{self.condition} && {ONLY_LOOP_THREAD}" if self.condition else ONLY_LOOP_THREAD


# No kretprobe may sit on a function of the chain above try_to_free_buffers: it replaces the return
# address with __kretprobe_trampoline, and the ARM32 unwinder (CONFIG_ARM_UNWIND) stops there
# (`[unknown/kretprobe'd]`), for the trace's stacks and the console's backtraces alike. A stack taken
# in a kretprobe handler stops at the trampoline too. So the chain comes from an entry probe on the
# caller, the refusal from a kretprobe on the callee, and busy.py pairs them.
PROBES = (
    # The 2012 refusal: drop_buffers() found a busy buffer_head (b_count pinned by a bh LRU slot), or the
    # folio is under writeback.
    Probe("try_to_free_buffers", "r", "try_to_free_buffers", "ret=$retval:u8", "ret == 0"),
    # The chain that led to it, at the entry of its caller: one stack per release attempt of the loop
    # thread (migration and reclaim_clean_pages_from_list), a few per chunk.
    Probe("filemap_release_folio_entry", "p", "filemap_release_folio", "folio=%r0:x32", stack=True),
    # 6.1's block-device path (defence 3) and ext4's data pages: -EAGAIN (-11) when buffers stay busy.
    # Their return addresses name the caller; they are not on the chain above, so they cut no stack.
    Probe("buffer_migrate_folio_norefs", "r", "buffer_migrate_folio_norefs", "ret=$retval:s32", "ret != 0"),
    Probe("__buffer_migrate_folio", "r", "__buffer_migrate_folio", "ret=$retval:s32", "ret != 0"),
    # Any other mapping whose page has an unexpected reference count: -EAGAIN.
    Probe("folio_migrate_mapping", "r", "folio_migrate_mapping", "ret=$retval:s32", "ret != 0"),
)

# Static trace events: (path under events/, filter). cma events are few and name their area, so all
# are kept; migration and isolation events are restricted to the loop thread (kswapd compacts too).
STATIC_EVENTS = (
    ("cma", ""),                                    # cma_alloc_start/finish/busy_retry, cma_release
    ("migrate/mm_migrate_pages", ONLY_LOOP_THREAD),  # succeeded/failed per migrate_pages() pass
    # alloc_contig_range's verdict on each window without a kretprobe on it: ret=fail, and fin_pfn is
    # the first page still busy.
    ("page_isolation/test_pages_isolated", ONLY_LOOP_THREAD),
)

# Dynamic debug: alloc_contig_dump_pages() (inlined, but its descriptor keeps the function name)
# dump_page()s every page left behind by a failed range, to the console: refcount, flags, aops, ino.
PAGE_DUMPS = "func alloc_contig_dump_pages"


def _write(value: str, path: str) -> str:
    return f"echo {shlex.quote(value)} > {path}"


def setup_script(buffer_kib: int, page_dumps: bool, sink: str = TRACE_FILE) -> str:
    """Probes, filters, stack triggers and events; a per-CPU ring of buffer_kib; tracing on; a reader
    that drains trace_pipe into `sink` (a file, or a device that streams it out of the guest) so the
    ring never overwrites."""
    t = TRACEFS
    lines = [
        f"echo 0 > {t}/tracing_on",
        f"echo > {t}/trace",
        f"echo {buffer_kib} > {t}/buffer_size_kb",
        # Raw %p: a hashed pointer prints as `(ptrval)` until the kernel's hash key exists, which an
        # entropy-starved guest may never reach; cma_alloc_finish's page is how a failure reads (NULL).
        f"echo 0 > {t}/options/hash-ptr",
        f"echo 1 > {t}/options/sym-offset",
        f"echo > {t}/kprobe_events",
        # Optimized kprobes jump to a detour buffer without unwind tables, where a stack trace stops;
        # the breakpoint path unwinds through the exception into the probed function's callers.
        "echo 0 > /proc/sys/debug/kprobes-optimization",
    ]
    for p in PROBES:
        ev = f"{t}/events/{GROUP}/{p.name}"
        lines.append(f"echo {shlex.quote(p.definition())} >> {t}/kprobe_events")
        lines.append(_write(p.filter, f"{ev}/filter"))
        if p.stack:     # a trigger runs before the event's filter: it needs the filter too
            lines.append(_write(f"stacktrace if {p.filter}", f"{ev}/trigger"))
        lines.append(f"echo 1 > {ev}/enable")
    for path, flt in STATIC_EVENTS:
        if flt:
            lines.append(_write(flt, f"{t}/events/{path}/filter"))
        lines.append(f"echo 1 > {t}/events/{path}/enable")
    if page_dumps:
        lines.append(_write(f"{PAGE_DUMPS} +p", "/proc/dynamic_debug/control"))
    lines += [
        f"echo 1 > {t}/tracing_on",
        # xtrace off first: a background job prints its own `+ cat ...` line whenever it gets to run, into
        # whatever the command channel carries by then (seen inside the next step's marker line).
        "set +x",
        f"cat {t}/trace_pipe > {sink} 2>/dev/null &",
        f"echo $! > {READER_PID}",
    ]
    # A subshell: `set -ex` stops at the first write the kernel refuses and shows which one,
    # without leaving the command channel's own shell in errexit mode.
    return "(\nset -ex\n" + "\n".join(lines) + "\n)"


# Where a trace_pipe reader that has read nothing yet sleeps on an empty ring (/proc/PID/wchan; seen on 6.1
# and 6.12 guests). One that has read something gets end-of-file once tracing is off and the ring is empty
# (kernel/trace/trace.c tracing_wait_pipe), and exits. Either way it has written everything it read.
READER_IDLE = "ring_buffer_wait"


def stop_script(sink: str = TRACE_FILE) -> str:
    """Tracing off; the reader drains the ring (trace_pipe consumes what it reads, so nothing is read
    twice) until every CPU's `entries` is 0, at most 10 s, and until the reader has exited at the end of
    the ring or sleeps in its read (READER_IDLE), at most 0.2 s, polled every 10 ms instead of a fixed
    0.2 s: either way the write of what it read last is done. Then the reader is stopped, and a stream
    gets its end line. Prints the ring's per-CPU stats (overruns, drops)."""
    t = TRACEFS
    lines = [
        f"echo 0 > {t}/tracing_on",
        _write(f"{PAGE_DUMPS} -p", "/proc/dynamic_debug/control"),
        f"i=0; while [ $i -lt 100 ] && grep -q '^entries: [1-9]' {t}/per_cpu/cpu*/stats; do "
        "usleep 100000; i=$((i + 1)); done",
        f"r=$(cat {READER_PID})",
        f"i=0; while [ $i -lt 20 ] && kill -0 $r 2>/dev/null && [ \"$(cat /proc/$r/wchan 2>/dev/null)\" != {READER_IDLE} ]; do "
        "usleep 10000; i=$((i + 1)); done",
        "kill $r 2>/dev/null; while kill -0 $r 2>/dev/null; do usleep 10000; done",
    ]
    if sink != TRACE_FILE:
        # A virtio serial port is open once at a time: the end line goes after the reader has closed it.
        lines.append(f"echo {shlex.quote(STREAM_END)} > {sink}")
    lines.append(f"for f in {t}/per_cpu/cpu*/stats; do echo \"== $f\"; cat $f; done")
    return "; ".join(lines)


def collect(board: Board, run: RunFolder, deadline: Deadline) -> Path:
    """Stop tracing and put the trace in folder/trace.txt byte for byte; the ring's own
    overrun/dropped counters go to folder/trace-stats.txt."""
    stats = board.run_script(stop_script(sink_of(board)), deadline).check().output
    run.file(names.TRACE_STATS).write_text(stats)
    out = run.file(names.TRACE)
    if board.trace_stream is not None:
        stream = board.trace_stream[1]
        out.write_bytes(wait_for_stream_end(stream, deadline))
        stream.unlink()
        return out
    # Compressed in the guest: trace text shrinks about tenfold, and the command channel is slow.
    board.run_script(f"gzip -c {TRACE_FILE} > {TRACE_FILE}.gz", deadline).check()
    out.write_bytes(gzip.decompress(board.read_file(f"{TRACE_FILE}.gz", deadline)))
    return out


def sink_of(board: Board) -> str:
    """Where the trace reader writes: the board's stream device, or a file it keeps."""
    return board.trace_stream[0] if board.trace_stream is not None else TRACE_FILE


def wait_for_stream_end(stream: Path, deadline: Deadline, poll_s: float = 0.1) -> bytes:
    """The streamed trace without its end line, once the end line has arrived (the host side of a
    serial port may lag the guest's write by a moment)."""
    end = (STREAM_END + "\n").encode()
    while True:
        size = stream.stat().st_size if stream.exists() else 0
        if size >= len(end):
            with stream.open("rb") as f:
                f.seek(size - len(end))
                if f.read() == end:
                    f.seek(0)
                    return f.read(size - len(end))
        if deadline.expired:
            raise InfraError(f"the trace stream {stream} did not end with {STREAM_END!r} within "
                             f"{deadline.seconds:.0f} s ({size} bytes arrived)")
        time.sleep(poll_s)
