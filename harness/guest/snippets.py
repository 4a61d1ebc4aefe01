"""What the harness does inside the guest, as shell snippets over the command channel, and their parsers."""

from __future__ import annotations

import re
import shlex

from harness.core.errors import InfraError
from harness.spec.config import ModuleSpec, WorkloadSpec
from harness.build.image import GUEST_MODULE_PATH, GUEST_WORKLOAD

MOUNT_POINT = "/mnt/work"
DISK_DEVICE = "/dev/vda"


def mount_disk(device: str = DISK_DEVICE) -> str:
    # Default options (relatime), as a device mounts it: the scan's atime updates are metadata traffic too
    # (ext4_mark_inode_dirty looks the inode-table block up again, through the bh LRU). Measured: with
    # noatime the LRU-caused loop rate on reintroduce-2012 fell from about 4 % to about 2 %.
    return f"mkdir -p {MOUNT_POINT} && mount -t ext4 {shlex.quote(device)} {MOUNT_POINT}"


def start_workload(w: WorkloadSpec, script: str = GUEST_WORKLOAD, verb: str = "start") -> str:
    """`start` returns once every worker is warm; `launch` at once, and `ready` (workload_ready) waits."""
    return shlex.join([script, verb, MOUNT_POINT, str(w.churn_workers), str(w.files_per_round),
                       str(w.scan_workers), str(w.fill_mib), str(w.idle_ms)])


def workload_ready(script: str = GUEST_WORKLOAD) -> str:
    return shlex.join([script, "ready"])


def warm_seconds(start_output: str) -> float | None:
    """How long the workload took to warm up, from its `workload running: ... after N ms` line."""
    m = re.search(r"^workload running: (\d+) of (\d+) workers warm after (\d+) ms$", start_output, re.M)
    if not m:
        return None
    if int(m.group(1)) < int(m.group(2)):
        raise InfraError(f"the guest workload did not warm up: {m.group(1)} of {m.group(2)} workers after "
                         f"{int(m.group(3)) / 1000:.0f} s ({start_output.strip()!r})")
    return int(m.group(3)) / 1000


def stop_workload(script: str = GUEST_WORKLOAD) -> str:
    return shlex.join([script, "stop"])


def insmod(m: ModuleSpec, loops: int, first_loop: int, path: str = GUEST_MODULE_PATH) -> list[str]:
    return ["insmod", path, f"loops={loops}", f"first_loop={first_loop}",
            f"gap_ms={m.gap_ms}", f"cpu={m.cpu}", f"attribution={'Y' if m.attribution else 'N'}"]


RMMOD = ["rmmod", "cma_harness"]

# Counters before/after: CMA sysfs per area (pages), and the vmstat lines about CMA and migration.
READ_COUNTERS = (
    "for f in /sys/kernel/mm/cma/*/alloc_pages_*; do echo \"$f $(cat $f)\"; done; "
    "grep -E '^(cma_|pgmigrate_|compact_)' /proc/vmstat"
)


def parse_counters(text: str) -> dict[str, int]:
    """'path value' / 'name value' lines -> {key: value}; sysfs paths become 'cma/<area>/<counter>'."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            continue
        key = parts[0]
        if key.startswith("/sys/kernel/mm/cma/"):
            key = "cma/" + key[len("/sys/kernel/mm/cma/"):]
        out[key] = int(parts[1])
    return out


def counter_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in sorted(after)}
