"""Property-based fuzzing of every parser in harness/parsers/kmsg.py (and the guest counter parser): they never
raise, damage never yields a loop record, and a valid record round-trips."""

import string

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness.guest import snippets
from harness.parsers import kmsg

from .records import record_line
from tests.conftest import FIXTURES

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Text that looks like console output: printable, the record's own vocabulary, and control bytes.
console_text = st.text(alphabet=st.sampled_from(string.printable + "\x00\x1b\ufffd" + ".TLPF=,"), max_size=300)
outcomes = st.text(alphabet=".TLPF", min_size=1, max_size=64)


@FAST
@given(console_text)
def test_parse_line_never_raises(text):
    ev = kmsg.parse_line(text)
    assert ev is None or isinstance(ev, kmsg.Event)


@FAST
@given(st.lists(console_text, max_size=30))
def test_line_parsers_never_raise(lines):
    list(kmsg.parse_lines(lines))
    kmsg.kernel_reports(lines)
    snippets.parse_counters("\n".join(lines))


@FAST
@given(st.text(max_size=300))
def test_garbage_never_yields_a_loop_record(text):
    assume("cma_harness: loop=" not in text)
    assert not isinstance(kmsg.parse_line(text), kmsg.LoopRecord)


@FAST
@given(st.integers(0, 10**6), outcomes, st.integers(0, 10**7))
def test_a_valid_record_round_trips(loop, outcome, dur_us):
    rec = kmsg.parse_line(record_line(loop, outcome, dur_us=dur_us))
    assert isinstance(rec, kmsg.LoopRecord)
    assert (rec.loop, rec.outcome, rec.dur_us, rec.failed) == (loop, outcome, dur_us, len(rec.failed_indices))
    assert [a is None for a in rec.pa] == [c in "PF" for c in outcome]


@FAST
@given(st.integers(0, 999), outcomes, st.data())
def test_a_damaged_record_is_dropped_never_misread(loop, outcome, data):
    """One byte replaced, inserted or deleted anywhere after the prefix (console noise), or the line cut."""
    line = record_line(loop, outcome)
    start = line.index("loop=")
    pos = data.draw(st.integers(start, len(line) - 1))
    how = data.draw(st.sampled_from(["replace", "insert", "delete", "cut"]))
    byte = data.draw(st.characters(min_codepoint=0, max_codepoint=255))
    damaged = {"replace": line[:pos] + byte + line[pos + 1:], "insert": line[:pos] + byte + line[pos:],
               "delete": line[:pos] + line[pos + 1:], "cut": line[:pos]}[how]
    assume(damaged != line)
    rec = kmsg.parse_line(damaged)
    original = kmsg.parse_line(line)
    # Damage that only touches whitespace between fields may leave the same record: that is not misreading.
    assert rec is None or rec == original, (how, pos, repr(byte))


@FAST
@given(st.lists(st.sampled_from([
    "WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x4", "Kernel panic - not syncing: x", "---[ end trace 0 ]---",
    "Internal error: Oops: 5 [#1] ARM", "8<--- cut here ---", "kernel BUG at mm/x.c:1!", "plain line"]), max_size=40))
def test_reports_cover_every_report_line_once(lines):
    """Each report starts at a report line outside an open report; nothing is lost or doubled."""
    reports = kmsg.kernel_reports(lines)
    assert sum(len(r.text.splitlines()) for r in reports) <= len(lines)
    for r in reports:
        assert r.text.splitlines()[0] in lines


# The other line parsers (trace, page dumps, a whole capture) take the same console text: they must not
# raise on it either.
trace_text = st.text(alphabet=st.sampled_from(string.printable + "\x00\ufffd=:|<>-[]#"), max_size=200)


@FAST
@given(st.lists(st.one_of(console_text, trace_text), max_size=30))
def test_trace_page_dump_and_capture_parsers_never_raise(lines):
    from harness.parsers import capture
    from harness.parsers import dump_page
    from harness.parsers import ftrace

    ftrace.parse_trace(lines)
    list(dump_page.parse_page_dumps(lines))
    capture.parse_capture(lines)
    ftrace.ring_stats("\n".join(lines))


REAL_LINES = [l for name in ("trace-stock-loop10.txt", "console-reintroduce-2012-loop6.log",
                             "console-stock-fault-oops.log")
              for l in (FIXTURES / name).read_text(errors="replace").splitlines() if l.strip()]


@FAST
@given(st.lists(st.tuples(st.sampled_from(REAL_LINES), st.integers(0, 400), st.characters(max_codepoint=255)),
                min_size=1, max_size=40))
def test_every_parser_survives_damaged_real_lines(damage):
    """Real trace and console lines, each with one byte replaced: the parsers' regexes and int() calls
    see near-valid input, where a missing guard would raise."""
    from harness.parsers import capture
    from harness.parsers import dump_page
    from harness.parsers import ftrace

    lines = [l[:i] + c + l[i + 1:] for l, i, c in damage]
    list(kmsg.parse_lines(lines))
    kmsg.kernel_reports(lines)
    ftrace.parse_trace(lines)
    list(dump_page.parse_page_dumps(lines))
    capture.parse_capture(lines)
