"""/dev/kmsg records (Documentation/ABI/testing/dev-kmsg): "pri,seq,usec,flags[,...];text", each
followed by zero or more " KEY=value" dictionary lines. Pure: lines in, records and loss counts out.

Every record carries the kernel's sequence number, so a reader that fell behind (the kernel overwrote
records before they were read; the read returns EPIPE and skips ahead) or that reopened the device (it
starts again at the oldest record) is caught: a jump in the numbers is counted as lost messages, a
number seen before is a duplicate and dropped.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator

RECORD = re.compile(r"^(\d+),(\d+),(\d+),([^,;]*)(?:,[^;]*)?;(.*)$")
ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


@dataclass(frozen=True)
class KmsgRecord:
    seq: int
    usec: int                   # the printk timestamp, microseconds since boot
    level: int                  # 0 (emerg) .. 7 (debug)
    facility: int               # 0: kernel
    flags: str                  # "-" a record of its own, "c" a continuation
    text: str                   # unescaped (\xNN of non-printable bytes decoded)
    dictionary: tuple[tuple[str, str], ...] = ()

    def console_line(self) -> str:
        """The record as a console with CONFIG_PRINTK_TIME prints it, so the console parsers read it."""
        return f"[{self.usec // 1_000_000:5d}.{self.usec % 1_000_000:06d}] {self.text}"

    def as_dict(self) -> dict:
        return asdict(self)


def parse_record(line: str) -> KmsgRecord | None:
    """One record's first line, or None when it is not one (a dictionary line, a torn line)."""
    m = RECORD.match(line.rstrip("\n"))
    if m is None:
        return None
    pri, seq, usec, flags, text = m.groups()
    return KmsgRecord(seq=int(seq), usec=int(usec), level=int(pri) & 7, facility=int(pri) >> 3, flags=flags,
                      text=unescape(text))


def unescape(text: str) -> str:
    return ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


@dataclass
class KmsgStream:
    """Feed it /dev/kmsg lines in the order they were read; it returns each new record once, and counts
    what the sequence numbers say is missing."""
    first_seq: int | None = None
    last_seq: int | None = None
    records: int = 0
    lost: int = 0               # records the sequence numbers skipped
    gaps: list = field(default_factory=list)        # (after seq, next seq) of each jump
    duplicates: int = 0
    unreadable: int = 0         # lines that were neither a record nor a dictionary line
    _last: KmsgRecord | None = None

    def feed(self, line: str) -> KmsgRecord | None:
        line = line.rstrip("\r\n")
        if not line:
            return None
        if line.startswith(" "):           # a dictionary line of the record before
            if self._last is not None and "=" in line:
                key, _, value = line[1:].partition("=")
                self._last = _with_entry(self._last, key, value)
            return None
        rec = parse_record(line)
        if rec is None:
            self.unreadable += 1
            return None
        if self.last_seq is not None and rec.seq <= self.last_seq:
            self.duplicates += 1
            return None
        if self.last_seq is not None and rec.seq > self.last_seq + 1:
            self.lost += rec.seq - self.last_seq - 1
            self.gaps.append((self.last_seq, rec.seq))
        if self.first_seq is None:
            self.first_seq = rec.seq
        self.last_seq = rec.seq
        self.records += 1
        self._last = rec
        return rec

    def summary(self) -> dict:
        return {"records": self.records, "first_seq": self.first_seq, "last_seq": self.last_seq,
                "lost": self.lost, "gaps": [list(g) for g in self.gaps[:20]], "duplicates": self.duplicates,
                "unreadable": self.unreadable}


def _with_entry(rec: KmsgRecord, key: str, value: str) -> KmsgRecord:
    from dataclasses import replace

    return replace(rec, dictionary=(*rec.dictionary, (key, unescape(value))))


def parse_lines(lines: Iterable[str]) -> Iterator[KmsgRecord]:
    """Every new record of a saved /dev/kmsg capture, in order (duplicates dropped)."""
    stream = KmsgStream()
    for line in lines:
        if (rec := stream.feed(line)) is not None:
            yield rec
