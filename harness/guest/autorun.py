"""The guest's own run, for boots nobody drives over a command channel (a LAVA job): one shell script in
the initramfs that does what harness/orchestrate/run.py does over the channel, in the same order, and
reports on the console through /dev/kmsg (one printk record per line, timestamped like the module's).

The script is made of the very snippets the harness sends (snippets.py, tracing.py), so a LAVA boot and a
harness boot run the same commands. Its console lines, parsed by `console_lines`:

    cma-harness: autorun workload running: 2 of 2 workers warm after 380 ms
    cma-harness: autorun counters before cma/cma-harness-area/alloc_pages_fail=0 ... pgmigrate_success=12
    cma-harness: autorun counters after ...
    cma-harness: autorun trace-stats overrun=0 dropped_events=0 entries=0
    cma-harness: autorun failed: <what>        (then the end line with status=fail)
    cma-harness: autorun end status=ok
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Iterable

from harness.boards import qemu
from harness.guest import snippets, tracing
from harness.spec.config import Scenario

# Where the script sits in the initramfs; images/guest/init starts it when it is there.
GUEST_PATH = "/usr/share/cma-harness/autorun.sh"
PREFIX = "cma-harness: autorun "
END = PREFIX + "end"
# The QEMU board's trace port: a LAVA job's QEMU command line streams it into a file beside the job, as the
# harness's own boot does into the run folder.
TRACE_PORT = qemu.TRACE_PORT


def script(scn: Scenario, loops: int, first_loop: int = 0, trace_sink: str | None = TRACE_PORT,
           disk: str = snippets.DISK_DEVICE) -> str:
    """The autorun script for one run of the scenario. trace_sink None: no trace even if the scenario asks
    (a board with no channel to stream it out on); the console says so."""
    w, m = scn.workload, scn.module
    steps = [f"step mount {shlex.quote(snippets.mount_disk(disk))}"]
    if w.profile != "none":
        steps.append(f"{snippets.start_workload(w)} > /tmp/autorun-workload.txt 2>&1 || fail workload")
        steps.append("say \"$(grep '^workload running' /tmp/autorun-workload.txt)\"")
        if w.warmup_s:
            steps.append(f"sleep {w.warmup_s}")
    steps.append('say "counters before $(counters)"')
    tracing_on = scn.trace.enabled and trace_sink is not None
    if tracing_on:
        # Only into the port itself: were it missing, the reader would fill a file in guest memory.
        steps.append(f"[ -c {trace_sink} ] || {{ say 'trace off: no {trace_sink} (the trace port)'; TRACE=; }}")
        steps.append(f"[ -z \"$TRACE\" ] || {tracing.setup_script(scn.trace.buffer_kib, scn.trace.page_dumps, trace_sink)} "
                     "> /tmp/autorun-trace.txt 2>&1 || fail trace-setup")
    elif scn.trace.enabled:
        steps.append('say "trace off: this board has no channel to stream it out on"')
    steps.append(f"{shlex.join(snippets.insmod(m, loops, first_loop))} || fail insmod")
    # The module's loop thread prints its done line and stays until rmmod; a crash or a hang never gets
    # here (the LAVA monitor's timeout ends the job).
    steps.append("until dmesg | grep -q 'cma_harness: done loops='; do usleep 200000; done")
    steps.append('say "counters after $(counters)"')
    if tracing_on:
        steps.append(f"[ -z \"$TRACE\" ] || {{ ( {tracing.stop_script(trace_sink)} ) > /tmp/autorun-trace-stats.txt 2>&1; "
                     "say \"trace-stats $(ring_stats < /tmp/autorun-trace-stats.txt)\"; }")
    if w.profile != "none":
        steps.append(f"{snippets.stop_workload()} > /dev/null 2>&1")
    steps.append(f"{shlex.join(snippets.RMMOD)} || fail rmmod")
    steps.append('say "end status=ok"')
    return HEAD + "\n".join(steps) + "\n"


HEAD = f"""#!/bin/sh
# cma-harness autorun, written by harness/guest/autorun.py: the run the harness would drive over the
# command channel, for a boot nobody drives (a LAVA job). Every report goes to /dev/kmsg, one line each.
say() {{ echo "{PREFIX}$*" > /dev/kmsg; }}
fail() {{ say "failed: $1"; say "end status=fail"; exit 1; }}
TRACE=1
step() {{ name=$1; shift; sh -c "$*" > /tmp/autorun-$name.txt 2>&1 || fail "$name"; }}
# The harness's counter snapshot (snippets.READ_COUNTERS) as key=value on one line.
counters() {{ ( {snippets.READ_COUNTERS} ) 2>/dev/null | sed 's|^/sys/kernel/mm/cma/|cma/|' | \\
    while read -r k v; do printf '%s=%s ' "$k" "$v"; done; }}
# The ring's per-CPU stats summed (parsers/ftrace.py ring_stats), as key=value.
ring_stats() {{ awk -F': ' '/^(overrun|commit overrun|dropped events|entries|read events): /{{s[$1]+=$2}}
    END {{for (k in s) {{n=k; gsub(/ /, "_", n); printf "%s=%d ", n, s[k]}}}}'; }}
"""


@dataclass
class AutorunReport:
    """What the autorun script said on the console."""
    workload: str | None = None
    counters_before: dict[str, int] | None = None
    counters_after: dict[str, int] | None = None
    trace_stats: dict[str, int] | None = None
    failed: str | None = None
    ended: bool = False
    notes: list[str] = field(default_factory=list)

    def trace_stats_text(self) -> str:
        """The stats as ftrace.ring_stats reads them (one CPU holding the sums)."""
        return "".join(f"{k.replace('_', ' ')}: {v}\n" for k, v in (self.trace_stats or {}).items())


LINE = re.compile(re.escape(PREFIX) + r"(?P<what>\S+)(?: (?P<rest>.*))?$")


def _pairs(text: str) -> dict[str, int]:
    return {k: int(v) for k, _, v in (tok.partition("=") for tok in text.split()) if v.lstrip("-").isdigit()}


def parse(lines: Iterable[str]) -> AutorunReport:
    """The autorun's lines of a console capture (other lines are skipped). Pure."""
    r = AutorunReport()
    for line in lines:
        m = LINE.search(line.rstrip("\r\n"))
        if m is None:
            continue
        what, rest = m.group("what"), (m.group("rest") or "").strip()
        if what == "counters" and rest.startswith("before"):
            r.counters_before = _pairs(rest[len("before"):])
        elif what == "counters" and rest.startswith("after"):
            r.counters_after = _pairs(rest[len("after"):])
        elif what == "trace-stats":
            r.trace_stats = _pairs(rest)
        elif what == "workload":
            r.workload = f"workload {rest}"             # as workload.sh printed it (snippets.warm_seconds)
        elif what == "failed:":
            r.failed = rest
        elif what == "end":
            r.ended = True
        else:
            r.notes.append(f"{what} {rest}".strip())
    return r
