"""Every parser over one saved capture (a console log, a dmesg, a trace file), events in line order.

A capture need not say what it is: each parser keeps the lines it knows and skips the rest, so a
console with a trace pasted in, or a bug report holding both, yields both kinds of event.
"""

from __future__ import annotations

from typing import Sequence

from harness.parsers import dump_page
from harness.parsers import kmsg
from harness.parsers import ftrace


def parse_capture(lines: Sequence[str]) -> list:
    """Console/dmesg line events, dump_page blocks, ftrace events with their stacks; sorted by line."""
    events = [*kmsg.parse_lines(lines), *dump_page.parse_page_dumps(lines), *ftrace.parse_trace(lines)]
    return sorted(events, key=lambda ev: ev.line)
