"""The board's default CMA pool (board file `area.method: default`): where it is, read on the board.

mm/cma.c exports nothing a module could ask for the pool's place, so the harness reads it and passes it
to the module for its area record: from debugfs (CONFIG_CMA_DEBUGFS: cma/<name>/base_pfn and count),
else from the boot log's reservation line (mm/cma.c: "cma: Reserved 64 MiB at 0x46000000"; a DT pool:
kernel/dma/contiguous.c "Reserved memory: created CMA memory pool at 0x..., size 64 MiB")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.core.errors import InfraError

PAGE_SIZE = 4096
# The default pool's name when it comes from cma= or CONFIG_CMA_SIZE_MBYTES (kernel/dma/contiguous.c);
# a `linux,cma-default` reserved-memory node gives it the node's name instead.
CMDLINE_POOL = "reserved"
DEDICATED = "cma-harness-area"

SCRIPT = (
    "grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs nodev /sys/kernel/debug 2>/dev/null; "
    "for d in /sys/kernel/debug/cma/*/; do [ -f \"$d/base_pfn\" ] && "
    "echo \"debugfs $(basename \"$d\") $(cat \"$d/base_pfn\") $(cat \"$d/count\")\"; done; "
    "dmesg 2>/dev/null | grep -E 'cma: Reserved [0-9]+ MiB at|created CMA memory pool at'; true"
)
DEBUGFS = re.compile(r"^debugfs (\S+) (\d+) (\d+)$")
RESERVED = re.compile(r"cma: Reserved (\d+) MiB at (0x[0-9a-f]+)")
DT_POOL = re.compile(r"created CMA memory pool at (0x[0-9a-f]+), size (\d+) MiB")


@dataclass(frozen=True)
class Pool:
    name: str
    base: int
    size: int
    source: str         # "debugfs" or "boot log"


def parse(text: str) -> list[Pool]:
    """Every CMA area the board reports, debugfs first (it names them), then the boot log's lines."""
    pools, logged = [], []
    for line in text.splitlines():
        if m := DEBUGFS.match(line.strip()):
            pools.append(Pool(m.group(1), int(m.group(2)) * PAGE_SIZE, int(m.group(3)) * PAGE_SIZE, "debugfs"))
        elif m := RESERVED.search(line):
            logged.append(Pool(CMDLINE_POOL, int(m.group(2), 16), int(m.group(1)) << 20, "boot log"))
        elif m := DT_POOL.search(line):
            logged.append(Pool("", int(m.group(1), 16), int(m.group(2)) << 20, "boot log"))
    return pools or logged


def choose(pools: list[Pool], name: str | None) -> Pool:
    """The default pool: the one named (`area.pool_name`), else cma='s "reserved", else the only one."""
    candidates = [p for p in pools if p.name != DEDICATED]
    listed = ", ".join(f"{p.name or '(unnamed)'} {p.size >> 20} MiB at {p.base:#x}" for p in pools) or "none"
    if name:
        found = [p for p in candidates if p.name == name]
    else:
        found = [p for p in candidates if p.name == CMDLINE_POOL] or (candidates if len(candidates) == 1 else [])
    if not found:
        how = ("set `area.pool_name` in the board file to one of them" if candidates else
               "boot the board with cma=64M on its kernel command line (or a `linux,cma-default` reserved-memory node)")
        raise InfraError(f"no default CMA pool{f' named {name!r}' if name else ''} on the board (found: {listed}); "
                         f"{how}; mount debugfs (CONFIG_CMA_DEBUGFS) or keep the boot log's `cma: Reserved` line "
                         f"so the harness can place it")
    return found[0]


def insmod_params(pool: Pool) -> list[str]:
    return [f"pool_name={pool.name or 'default'}", f"pool_base={pool.base:#x}", f"pool_size={pool.size:#x}"]
