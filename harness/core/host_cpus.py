"""The host CPUs the harness may use, and pinning a pair's two guests each to cores of their own.

Only the guests are pinned, never the harness: a kernel build inside a pair's first boot keeps every core.
A campaign thread names the cores its guest gets (`for_guests`), and the QEMU board that thread powers on
starts QEMU under `taskset -c` (`taskset_argv`): QEMU and every vCPU thread it makes inherit the mask from
exec on (sched_setaffinity(2)), and the recorded command line is the one that ran."""

from __future__ import annotations

import threading
from contextlib import contextmanager
import os
from typing import Iterator, Sequence

_this_thread = threading.local()


def available() -> tuple[int, ...]:
    """The CPUs this process may run on (its affinity mask: a cgroup or taskset may give fewer than the machine has)."""
    return tuple(sorted(os.sched_getaffinity(0)))


def split_for_pair(cores: Sequence[int], guest_cpus: int) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Each guest of a pair its own cores: guest_cpus each where there are that many for both, otherwise
    half each (on 2 cores, 2-vCPU guests: one core each); None on a single core (nothing to split).
    Measured on 2 cores, 6 pairs of 10-loop boots of the demo (README, Performance): 84 and 89 s pinned a
    core each, 86 and 89 s unpinned, 105 and 115 s one after the other. Pinning costs nothing there, and it
    gives both arms the same conditions: neither guest runs on time the other's load leaves it."""
    cores = tuple(cores)
    if len(cores) < 2:
        return None
    each = guest_cpus if len(cores) >= 2 * guest_cpus else len(cores) // 2
    return cores[:each], cores[each:2 * each]


@contextmanager
def for_guests(cores: Sequence[int] | None) -> Iterator[None]:
    """Guests this thread powers on meanwhile run on `cores` (None: wherever the kernel puts them)."""
    before = getattr(_this_thread, "cores", None)
    _this_thread.cores = tuple(cores) if cores is not None else None
    try:
        yield
    finally:
        _this_thread.cores = before


def taskset_argv() -> list[str]:
    """The prefix that starts a guest of this thread on its cores: `taskset -c 0,1`, or nothing."""
    cores = getattr(_this_thread, "cores", None)
    return ["taskset", "-c", ",".join(map(str, cores))] if cores else []
