"""Whole kernel reports: from the first line (or its cut-here banner) to the end marker."""

from harness.parsers import kmsg
from tests.conftest import fixture_lines

OOPS = """\
[   30.100000] cma_harness: injecting fault=oops at loop=2
[   30.100100] 8<--- cut here ---
[   30.100200] Unable to handle kernel NULL pointer dereference at virtual address 00000000
[   30.100300] [00000000] *pgd=00000000
[   30.100400] Internal error: Oops: 805 [#1] SMP ARM
[   30.100500] Modules linked in: cma_harness(O)
[   30.100600] PC is at loop_thread+0x1c0/0x2f0 [cma_harness]
[   30.100700] ---[ end trace 0000000000000000 ]---
[   30.200000] random: crng init done"""

WARNING = """\
[   12.000000] ------------[ cut here ]------------
[   12.000100] WARNING: CPU: 0 PID: 71 at /tmp/cma_harness.c:150 loop_thread+0x1/0x2 [cma_harness]
[   12.000200] cma_harness: injected warning at loop 2
[   12.000300] ---[ end trace 0000000000000000 ]---
[   12.300000] cma_harness: loop=2 failed=0 calls_failed=0 dur_us=5 outcome=.. pa=48800000,48900000"""

PANIC = """\
[    5.000000] Kernel panic - not syncing: cma_harness: injected panic at loop 2
[    5.000100] CPU: 0 PID: 71 Comm: cma_harness/0 Tainted: G           O       6.1.192 #1
[    5.000200] CPU1: stopping"""


def _lines(text):
    return text.splitlines()


def test_oops_is_kept_whole_with_its_banner_and_is_fatal():
    [rep] = kmsg.kernel_reports(_lines(OOPS))
    assert rep.report == "oops" and rep.complete and rep.fatal
    text = rep.text.splitlines()
    assert "cut here" in text[0] and "end trace" in text[-1]
    assert any("Internal error: Oops" in l for l in text), "the second oops line belongs to the same report"
    assert rep.title.endswith("virtual address 00000000")
    assert "crng" not in rep.text


def test_warning_is_whole_and_not_fatal():
    [rep] = kmsg.kernel_reports(_lines(WARNING))
    assert rep.report == "warning" and rep.complete and not rep.fatal
    assert len(rep.text.splitlines()) == 4


def test_panic_without_its_end_marker_is_whole_once_the_guest_stopped():
    # panic=-1: the kernel resets before it prints `---[ end Kernel panic`.
    asm = kmsg.ReportAssembler()
    assert all(asm.feed(l) is None for l in _lines(PANIC))
    rep = asm.flush(guest_stopped=True)
    assert rep.report == "panic" and rep.complete and rep.fatal and "CPU1: stopping" in rep.text


def test_a_report_that_goes_quiet_is_kept_but_marked_cut_short():
    asm = kmsg.ReportAssembler()
    for l in _lines(OOPS)[:4]:
        asm.feed(l)
    rep = asm.flush()
    assert rep is not None and not rep.complete and asm.flush() is None


def test_kernel_bug_at_is_fatal_but_a_bug_line_alone_is_not():
    bug = kmsg.kernel_reports(["[ 1.0] kernel BUG at mm/migrate.c:123!", "[ 1.1] ---[ end trace 0 ]---"])
    assert bug[0].fatal
    sleeping = kmsg.kernel_reports(["[ 1.0] BUG: sleeping function called from invalid context at x.c:1"])
    assert sleeping[0].report == "bug" and not sleeping[0].fatal


def test_a_report_without_end_is_bounded():
    asm = kmsg.ReportAssembler(max_lines=5)
    got = [asm.feed(l) for l in ["WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1"] + ["noise"] * 10]
    done = [r for r in got if r is not None]
    assert len(done) == 1 and not done[0].complete and len(done[0].text.splitlines()) == 5


# Real captures: `module.fault` oops / panic / warn at loop 2 on stock 6.1, 4 loops, idle area.


_capture = fixture_lines


def test_real_oops_capture_is_one_whole_fatal_report():
    [rep] = kmsg.kernel_reports(_capture("console-stock-fault-oops.log"))
    lines = rep.text.splitlines()
    assert (rep.report, rep.fatal, rep.complete) == ("oops", True, True)
    assert lines[0].endswith("8<--- cut here ---") and lines[-1].endswith("---[ end trace 0000000000000000 ]---")
    assert any("PC is at loop_thread" in l for l in lines) and len(lines) > 40


def test_real_panic_capture_ends_where_qemu_stopped():
    """panic=-1: no `---[ end Kernel panic` line; the other CPU's `stopping` backtrace is part of it."""
    capture = _capture("console-stock-fault-panic.log")
    [rep] = kmsg.kernel_reports(capture)
    assert (rep.report, rep.fatal, rep.complete) == ("panic", True, True)
    assert "injected panic at loop 2" in rep.title and any("CPU1: stopping" in l for l in rep.text.splitlines())
    assert not any("end Kernel panic" in l for l in capture)


def test_real_warning_capture_is_whole_and_the_loops_after_it_are_records():
    capture = _capture("console-stock-fault-warn.log")
    [rep] = kmsg.kernel_reports(capture)
    assert (rep.report, rep.fatal, rep.complete) == ("warning", False, True)
    assert rep.text.splitlines()[0].endswith("------------[ cut here ]------------")
    loops = [e.loop for e in kmsg.parse_lines(capture) if isinstance(e, kmsg.LoopRecord)]
    assert loops == [0, 1, 2, 3]
