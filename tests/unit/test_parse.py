"""Parsers on recorded real console output, and on the kernel's other formats."""


import re

from harness.parsers import kmsg
from tests.conftest import FIXTURES



def _events(name):
    return list(kmsg.parse_lines((FIXTURES / name).read_text(errors="replace").splitlines()))


def test_real_stock_idle_capture():
    """Recorded from `cma-harness run` on stock 6.1, idle area, 3 loops (CRLF line ends, as QEMU writes them)."""
    evs = _events("console-stock-idle-3loops.log")
    kinds = [e.kind for e in evs]
    assert kinds.count("loop") == 3 and kinds.count("module_done") == 1 and "guest_up" in kinds
    pool = next(e for e in evs if isinstance(e, kmsg.CmaPoolCreated))
    area = next(e for e in evs if isinstance(e, kmsg.AreaInfo))
    assert (pool.base, pool.size_mib) == (0x48800000, 56)
    assert (area.name, area.base, area.size) == ("cma-harness-area", 0x48800000, 56 << 20)
    loops = [e for e in evs if isinstance(e, kmsg.LoopRecord)]
    assert [l.loop for l in loops] == [0, 1, 2]
    assert loops[0].pa[0] == 0x48800000 and loops[0].pa[-1] == 0x48800000 + (55 << 20)
    assert loops[0].time == 2.297800 and loops[0].dur_us == 285299
    start = next(e for e in evs if isinstance(e, kmsg.ModuleStart))
    assert start.params["chunks"] == 56 and start.params["loops"] == 3


def test_failed_chunks_and_causes():
    line = ("[   9.1] cma_harness: loop=7 failed=2 calls_failed=3 dur_us=5 outcome=.L.P pa=48800000,48900000,48a00000,0")
    rec = kmsg.parse_line(line)
    assert isinstance(rec, kmsg.LoopRecord)
    assert rec.failed_indices == [1, 3] and rec.count("L") == 1 and rec.pa[3] is None


def test_truncated_or_garbled_record_is_not_a_record():
    good = "cma_harness: loop=1 failed=0 calls_failed=0 dur_us=5 outcome=.. pa=48800000,48900000"
    assert kmsg.parse_line(good) is not None
    assert kmsg.parse_line(good[:-9]) is None, "pa list cut short"
    assert kmsg.parse_line(good.replace("outcome=..", "outcome=.X")) is None
    assert kmsg.parse_line(good.replace("dur_us=5", "dur_us=5x")) is None
    assert kmsg.parse_line("cma_harness: loop=1 failed=0") is None


def test_cma_alloc_failure_formats_of_three_kernel_eras():
    new = kmsg.parse_line("[  50.1] cma: cma_alloc: cma-harness-area: alloc failed, req-size: 256 pages, ret: -16")
    assert (new.area, new.pages, new.ret) == ("cma-harness-area", 256, -16)
    old = kmsg.parse_line("<3>[ 1.0] cma: cma_alloc: alloc failed, req-size: 256 pages, ret: -12")
    assert (old.area, old.pages, old.ret) == (None, 256, -12)
    busy = kmsg.parse_line("[ 2.0] alloc_contig_range: [48800, 48900) PFNs busy")
    assert (busy.start, busy.end) == (0x48800, 0x48900)


def test_kernel_reports():
    cases = {
        "[ 3.0] Kernel panic - not syncing: cma_harness: injected panic at loop 2": "panic",
        "[ 3.0] Internal error: Oops: 805 [#1] SMP ARM": "oops",
        "[ 3.0] 8<--- cut here --- Unable to handle kernel NULL pointer dereference at virtual address 00000000": "oops",
        "[ 3.0] kernel BUG at mm/migrate.c:123!": "bug",
        "[ 3.0] WARNING: CPU: 0 PID: 71 at /tmp/cma_harness.c:120 loop_thread+0x1/0x2 [cma_harness]": "warning",
    }
    for line, report in cases.items():
        ev = kmsg.parse_line(line)
        assert isinstance(ev, kmsg.KernelReport) and ev.report == report, line
    assert kmsg.parse_line("[ 3.0] random: crng init done") is None


def test_the_prefilter_changes_no_answer(monkeypatch):
    """parse_line skips a line that holds none of kmsg._WORDS before trying any pattern: over every
    recorded console and the lines above, it answers as it does with every line tried."""
    lines = [l for p in sorted(FIXTURES.glob("**/console*.log")) for l in p.read_text(errors="replace").splitlines()]
    lines += ["[ 3.0] 8<--- cut here --- Unable to handle kernel paging request at virtual address 0",
              "[ 1.0] cma-harness: guest up cpus=2 kernel=6.1.0", "[ 3.0] BUG: sleeping function called",
              "[ 2.0] alloc_contig_range: [48800, 48900) PFNs busy", "[ 3.0] Kernel panic - not syncing: Fatal exception"]
    filtered = [kmsg.parse_line(l, n) for n, l in enumerate(lines)]
    monkeypatch.setattr(kmsg, "_ANY_WORD", re.compile(""))
    assert filtered == [kmsg.parse_line(l, n) for n, l in enumerate(lines)]
    assert sum(e is not None for e in filtered) > 100


def _fnv1a_32_reference(data: bytes) -> int:
    h = 2166136261
    for byte in data:
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def test_the_record_sum_is_the_modules_fnv1a_over_every_recorded_record():
    """record_sum() runs in C (fnv-hash-fast); it must be the module's FNV-1a, byte for byte: the published
    test vectors, a byte that is not UTF-8 (surrogateescape), and every record of the recorded consoles."""
    assert kmsg.record_sum("") == 0x811C9DC5 and kmsg.record_sum("a") == 0xE40C292C
    assert kmsg.record_sum("foobar") == 0xBF9CF968
    odd = b"cma_harness: loop=1 \xff".decode("utf-8", "surrogateescape")
    assert kmsg.record_sum(odd) == _fnv1a_32_reference(b"cma_harness: loop=1 \xff")
    records = [line for p in sorted(FIXTURES.glob("console-*.log"))
               for line in p.read_text(errors="surrogateescape").splitlines() if "cma_harness: loop=" in line]
    assert len(records) > 20
    for line in records:
        text = line.split("cma_harness: ", 1)[1]
        assert kmsg.record_sum(text) == _fnv1a_32_reference(text.encode("utf-8", "surrogateescape"))
