"""Every parser over one saved capture (a console log, a dmesg, a trace file), events in line order.

A capture need not say what it is: each parser keeps the lines it knows and skips the rest, so a
console with a trace pasted in, or a bug report holding both, yields both kinds of event.
"""

from __future__ import annotations

from typing import Sequence

from . import pagedump, parse, trace


def parse_capture(lines: Sequence[str]) -> list:
    """Console/dmesg line events, dump_page blocks, ftrace events with their stacks; sorted by line."""
    events = [*parse.parse_lines(lines), *pagedump.parse_page_dumps(lines), *trace.parse_trace(lines)]
    return sorted(events, key=lambda ev: ev.line)
