"""/dev/kmsg records with their sequence numbers: a jump is counted as lost messages, a repeat dropped."""

from harness.parsers import devkmsg, kmsg

from .records import record_line


def _rec(seq: int, text: str, usec: int = 1_500_000, pri: int = 6) -> str:
    return f"{pri},{seq},{usec},-;{text}"


def test_a_record_parses_with_its_level_facility_and_escapes():
    rec = devkmsg.parse_record("14,7,2345678,-,caller=T1;tab\\x09here \\x5c done")
    assert (rec.seq, rec.usec, rec.level, rec.facility, rec.flags) == (7, 2345678, 6, 1, "-")
    assert rec.text == "tab\there \\ done"
    assert devkmsg.parse_record(" SUBSYSTEM=virtio") is None and devkmsg.parse_record("junk") is None


def test_a_gap_in_the_sequence_numbers_is_counted_as_lost_messages():
    stream = devkmsg.KmsgStream()
    got = [stream.feed(_rec(s, f"m{s}")) for s in (10, 11, 12, 20, 21)]
    assert [r.seq for r in got] == [10, 11, 12, 20, 21]
    assert stream.lost == 7 and stream.gaps == [(12, 20)]
    assert stream.summary()["lost"] == 7 and stream.summary()["first_seq"] == 10


def test_a_reopened_device_replays_old_records_and_they_are_dropped():
    """The reader reopens /dev/kmsg after a failed read: it starts again at the oldest record."""
    stream = devkmsg.KmsgStream()
    lines = [_rec(s, f"m{s}") for s in (1, 2, 3)] + [_rec(s, f"m{s}") for s in (1, 2, 3, 4)]
    new = [r.seq for line in lines if (r := stream.feed(line)) is not None]
    assert new == [1, 2, 3, 4] and stream.duplicates == 3 and stream.lost == 0


def test_dictionary_lines_belong_to_the_record_before():
    stream = devkmsg.KmsgStream()
    stream.feed(_rec(5, "virtio_net virtio1 eth0: renamed"))
    assert stream.feed(" SUBSYSTEM=virtio") is None and stream.feed(" DEVICE=+virtio:virtio1") is None
    assert stream._last.dictionary == (("SUBSYSTEM", "virtio"), ("DEVICE", "+virtio:virtio1"))
    assert stream.unreadable == 0


def test_a_record_reads_as_a_console_line_the_module_parsers_understand():
    """Without a serial console the /dev/kmsg records are the console: loop records keep their checksum."""
    line = record_line(3, "..L.")
    text = line.split("] ", 1)[1]
    rec = devkmsg.parse_record(_rec(40, text, usec=12_345_678))
    console = rec.console_line()
    assert console.startswith("[   12.345678] cma_harness: loop=3")
    ev = kmsg.parse_line(console)
    assert isinstance(ev, kmsg.LoopRecord) and ev.loop == 3 and ev.outcome == "..L." and ev.time == 12.345678


def test_parse_lines_of_a_saved_capture():
    lines = [_rec(1, "a"), " K=v", _rec(2, "b"), _rec(2, "b"), _rec(4, "d"), ""]
    assert [r.text for r in devkmsg.parse_lines(lines)] == ["a", "b", "d"]
