"""The parsers' fast paths (issue 16: the busy join at 50 MB/s) answer as the plain ones they stand for:
objects made without their frozen __init__, the loop records alone, the field and event-name splits,
the trace headers matched by prefix, and analyse's one pass against the public pieces it joins."""

import dataclasses
import re
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.parsers import busy, dump_page, ftrace, kmsg
from tests.conftest import FIXTURES, fixture_lines

AREA = "cma-harness-area"
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONSOLES = sorted(FIXTURES.glob("**/console*.log"))
# Each recorded trace with its console, and the stock run folder's pair (the bench's input).
PAIRS = [(f"console-{t.name[6:-4]}.log", t.name) for t in sorted(FIXTURES.glob("trace-*.txt"))
         if (FIXTURES / f"console-{t.name[6:-4]}.log").is_file()] + [("run-stock/console.log", "run-stock/trace.txt")]


def _as_made(obj):
    """obj as its dataclass's __init__ makes it from obj's own init fields."""
    return type(obj)(**{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init})


def _state(obj):
    """obj's type and its attributes in order: a NamedTuple's fields, another object's __dict__."""
    return type(obj), list((obj._asdict() if isinstance(obj, tuple) else vars(obj)).items())


def _same_objects(got, want):
    assert got == want and list(map(_state, got)) == list(map(_state, want))


def test_parsed_records_dumps_and_calls_are_the_objects_the_constructors_make():
    """LoopRecord, PageDump and CmaCall are made by frozen.made: attribute for attribute, in order, the
    instances their __init__ makes."""
    made = []
    for console, trace in PAIRS:
        lines = fixture_lines(console)
        made += kmsg.loop_records(lines) + list(dump_page.parse_page_dumps(lines))
        made += busy.cma_calls(ftrace.parse_trace(fixture_lines(trace)), AREA)
    kinds = {type(o).__name__ for o in made}
    assert kinds == {"LoopRecord", "PageDump", "CmaCall"}, kinds
    _same_objects(made, [_as_made(o) for o in made])


def _plain_records(lines):
    return [e for e in kmsg.parse_lines(lines) if isinstance(e, kmsg.LoopRecord)]


def test_loop_records_are_the_loop_records_of_parse_lines():
    for path in CONSOLES:
        lines = path.read_text(errors="replace").splitlines()
        records = kmsg.loop_records(lines)
        _same_objects(records, _plain_records(lines))
        # parse_line alone keeps no shapes: the records parse_lines made with them are the same
        _same_objects(records, [e for n, l in enumerate(lines, 1) if isinstance(e := kmsg.parse_line(l, n), kmsg.LoopRecord)])
    assert records


TOKENS = st.sampled_from(["failed=1", "calls_failed=9", "dur_us=7", "outcome=.T", "pa=48800000,48900000", "pa=0,0",
                          "pa=x", "outcome=", "a=b=c", "=", "junk", "loop=3", "dur_us=", "outcome=.P"])


@FAST
@given(st.lists(st.tuples(st.integers(0, 3), st.text(alphabet=".TLPF", min_size=1, max_size=6), st.randoms(),
                          st.lists(st.tuples(st.integers(0, 5), TOKENS), max_size=3), st.booleans(),
                          st.sampled_from([" ", "  ", "\t", " \u00a0"]),
                          st.sampled_from(["", "cma_harness: area name=a ", "cma_harness: done loops=1 "])), max_size=8))
def test_a_records_end_parsed_once_reads_as_the_whole_record(specs):
    """_loop_record parses a record's end (from " outcome=" on) once per distinct end: records with the
    same ends, fields in another order, extra or repeated, other spacing, with and without a sum, after
    another module record on the line, read as parse_line reads each alone."""
    lines = []
    for loop, outcome, rnd, extra, with_sum, sep, before in specs:
        pa = ",".join("0" if c in "PF" else f"{0x48800000 + (i << 20):x}" for i, c in enumerate(outcome))
        failed = sum(c != "." for c in outcome)
        tokens = [f"failed={failed}", f"calls_failed={failed + outcome.count('L') + 2 * outcome.count('P')}",
                  "dur_us=5", f"outcome={outcome}", f"pa={pa}"]
        if rnd.random() < 0.3:
            rnd.shuffle(tokens)
        for at, token in extra:
            tokens.insert(at, token)
        head, tail = f"loop={loop}", "".join(sep + t for t in tokens)
        lines.append(f"[ 1.0] {before}cma_harness: {head} sum={kmsg.record_sum(head + tail):08x}{tail}" if with_sum
                     else f"[ 1.0] {before}cma_harness: {head}{tail}")
    lines += lines
    alone = [e for n, l in enumerate(lines, 1) if isinstance(e := kmsg.parse_line(l, n), kmsg.LoopRecord)]
    _same_objects(kmsg.loop_records(lines), alone)
    _same_objects(_plain_records(lines), alone)


field_text = st.text(alphabet=st.sampled_from("ab_.=-: \t\u00a0\u2028x0()|"), max_size=40)


@FAST
@given(st.lists(field_text, max_size=8))
def test_fields_are_the_field_regex(bodies):
    keys = {}                                   # shared across bodies, as parse_trace shares it
    for body in bodies:
        got, want = ftrace._fields(body, keys), dict(ftrace.FIELD.findall(body))
        assert list(got.items()) == list(want.items()), body


@FAST
@given(st.lists(st.text(alphabet=st.sampled_from("ab_.-:( \t\n\u00a0\u0663x=<>"), max_size=30), max_size=8))
def test_event_names_are_the_event_regex(rests):
    names = {}
    for rest in rests:
        e = ftrace.EVENT.match(rest)
        assert ftrace._event_name(rest, names) == (e.groups() if e else None), repr(rest)


PREFIXES = ["   cma_harness/0-166     [000] .....    ", "   cma_harness/0-166     [000] .n...    ", " a-b-1 [0] ....  ",
            "  kworker/u4:1-47  (   47) [001] d..1.  ", "x-1 [0] 12.5 ", "-1 [0] .... ", "  sh-9 [1] ", "a\u00a0b-2 [0] ..... ",
            "z-1 (1-2) [0] ..... ", "y-1\t[0]\t.....\t", "q-12 [3] d.h2 "]
SOME_TAILS = ["25.576410: cma_alloc_start: name=cma-harness-area count=256", "1.0: x", "12.5 3.0: y", "3.0 : w", "4.0:",
              "4.0: ", "7.25: <stack trace>", "1234 5.0: q", "5.0: a\nb", "12.34: 5.0: z", "\u0663.1: u", "11.0: 2.0: y",
              "1.0: 2.0: y", "1.0:\t2.0: y", "1.0:x 2.0: y", "-3 [0] .... 1.0: v"]
TAILS = st.one_of(st.sampled_from(SOME_TAILS), st.text(alphabet=st.sampled_from("0123456789.: x-[]()\t\n"), max_size=16))


def _flat(parsed):
    return parsed and (*parsed[0], *parsed[1:])


def _header(line):
    h = ftrace.HEADER.match(line)
    return h and (h["comm"].strip(), (int(h["pid"]), int(h["cpu"])), h["ts"], h["rest"])


def test_a_known_prefix_answers_as_the_header_regex_after_every_other_line():
    """Each prefix after each tail, then with each other: the second line takes the first's prefix."""
    for prefix in PREFIXES:
        for first in SOME_TAILS:
            for second in SOME_TAILS:
                headers = ftrace._Headers()
                for line in (prefix + first, prefix + second):
                    assert _flat(headers.parse(line)) == (_header(line) or None), repr(line)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PREFIXES), TAILS, st.integers(0, 3)), max_size=30))
def test_headers_matched_by_prefix_are_the_header_regex(parts):
    """A prefix HEADER matched before, then HEADER_TAIL, answers as HEADER on the whole line, whatever
    follows the prefix (another flags column, a second timestamp, a cut one)."""
    headers = ftrace._Headers()
    for prefix, tail, cut in parts:
        line = prefix[:len(prefix) - cut] + tail
        assert _flat(headers.parse(line)) == (_header(line) or None), repr(line)


class _EveryLineWhole(ftrace._Headers):
    _WIDTHS = 0                                 # no prefix kept: every line through HEADER


def _damaged(lines, data):
    lines = list(lines)
    for _ in range(data.draw(st.integers(0, 6))):
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1))
        at = data.draw(st.integers(0, len(lines[i])))
        how = data.draw(st.sampled_from(["replace", "insert", "delete", "cut", "drop", "again"]))
        c = data.draw(st.sampled_from(list(" =:-.,()[]x0\t") + ["fail", "=0x1", "(ptrval)"]))
        line = lines[i]
        lines[i:i + 1] = {"replace": [line[:at] + c + line[at + 1:]], "insert": [line[:at] + c + line[at:]],
                          "delete": [line[:at] + line[at + 1:]], "cut": [line[:at]], "drop": [],
                          "again": [line, line]}[how]
    return lines


def _same_traces(lines):
    got = ftrace.parse_trace(lines)
    plain = ftrace._Headers
    try:
        ftrace._Headers = _EveryLineWhole
        want = ftrace.parse_trace(lines)
    finally:
        ftrace._Headers = plain
    _same_objects(got, want)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PAIRS), st.data())
def test_parse_trace_with_known_headers_is_parse_trace_matching_every_line(pair, data):
    _same_traces(_damaged(fixture_lines(pair[1]), data))


def test_parse_trace_after_a_known_prefix_is_parse_trace_matching_every_line():
    _same_traces([prefix + tail for prefix in PREFIXES for tail in SOME_TAILS + ["x 1.0: ev: a=1", "x1.0: ev: a=1", ""]])


def _analysis_of_the_pieces(console, trace):
    """analyse as the public pieces make it: every console event, the trace's items walked three times."""
    items = ftrace.parse_trace(trace)
    traces, unjoined = busy.join(_plain_records(console), busy.cma_calls(items, AREA), list(dump_page.parse_page_dumps(console)))
    return busy.Analysis(traces, unjoined, busy.cma_calls(items, AREA), busy.failed_finish_events(items, AREA),
                         sum(1 for ev in items if isinstance(ev, ftrace.LostEvents)))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PAIRS), st.data())
def test_analyse_is_the_analysis_of_its_pieces(pair, data):
    """analyse reads the loop records alone, walks the trace once and reads the page dumps only for a
    failed chunk: over the recorded pairs, damaged, the same Analysis as the pieces."""
    console, trace = (_damaged(fixture_lines(name), data) for name in pair)
    got = busy.analyse(console, trace, AREA)
    assert got == _analysis_of_the_pieces(console, trace)


def test_the_recorded_pairs_join_busy_traces_with_their_pages():
    """What the property above covers: real failed chunks, joined to the dumps of their pages."""
    analyses = [busy.analyse(fixture_lines(c), fixture_lines(t), AREA) for c, t in PAIRS]
    traces = [t for a in analyses for t in a.traces]
    assert traces and any(t.page for t in traces) and any(a.failed_finish_events for a in analyses)
    assert all(a == _analysis_of_the_pieces(fixture_lines(c), fixture_lines(t)) for a, (c, t) in zip(analyses, PAIRS))


def test_a_finish_without_its_start_still_counts_and_a_dump_outside_the_call_is_not_its_page():
    """failed_finish_events counts every failed finish of the area, in a call or not; a chunk's page is
    the dump of its pfn printed during the call, though another of the same pfn comes first."""
    console, trace = fixture_lines("console-reintroduce-2012-loop6.log"), fixture_lines("trace-reintroduce-2012-loop6.txt")
    started = [l for l in trace if "cma_alloc_start" not in l]
    assert busy.analyse(console, started, AREA).failed_finish_events == busy.failed_finish_events(
        ftrace.parse_trace(started), AREA) == 1
    before = [l.replace("[   25.9", "[    1.0").replace("refcount:3", "refcount:9") for l in console[38:50]]
    (t,) = busy.analyse(before + console, trace, AREA).traces
    assert t.page["refcount"] == 3 and before[0].startswith("[    1.0") and "refcount:9" in before[0]


def test_the_field_key_and_event_name_patterns_are_the_regexes_own():
    """_fields and _event_name test a key or a name against these: the classes FIELD and EVENT use."""
    assert ftrace.FIELD_KEY.pattern in ftrace.FIELD.pattern and ftrace.EVENT_NAME.pattern in ftrace.EVENT.pattern
    assert ftrace.HEADER.pattern.endswith(ftrace.HEADER_TAIL.pattern)
    assert all(bool(re.fullmatch(r"\s", c)) == c.isspace() for c in string.printable + "\u00a0\u2028\x1c\u3000")


def test_a_repeated_record_adds_no_busy_trace_and_leaves_its_loop_joined():
    """Console damage can repeat a line, and cut the time off the copy; its sum still holds, so it is a
    record, with time None or the same time. The loop is decided by its first record: it keeps its one
    busy trace and is not also unjoined (hypothesis found the untimed copy, whose None the sort compared
    with a time; a timed copy gave the loop a second trace)."""
    console, trace = fixture_lines("console-reintroduce-2012-loop6.log"), fixture_lines("trace-reintroduce-2012-loop6.txt")
    once = busy.analyse(console, trace, AREA)
    at = next(i for i, l in enumerate(console) if "cma_harness: loop=6 " in l)
    for copy in (re.sub(r"^\[\s*[\d.]+\] ", "", console[at]), console[at]):
        repeated = console[:at + 1] + [copy] + console[at + 1:]
        assert [r.loop for r in kmsg.loop_records(repeated)].count(6) == 2
        twice = busy.analyse(repeated, trace, AREA)
        assert twice.traces == once.traces and [t.loop for t in twice.traces] == [6]
        assert twice.unjoined == once.unjoined and 6 not in twice.unjoined
