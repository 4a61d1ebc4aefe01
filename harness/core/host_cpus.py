"""The host CPUs the harness may use, and pinning a pair's two guests each to their own.

Affinity on Linux belongs to a thread, and a process inherits the mask of the thread that forked it: a
campaign thread that pins itself before it powers a guest on gives the QEMU it spawns, and every vCPU
thread QEMU makes, the same cores (sched_setaffinity(2), fork(2))."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Sequence


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
def pinned(cores: Sequence[int] | None) -> Iterator[None]:
    """The calling thread (and what it spawns meanwhile) on `cores`; its own mask back afterwards. None: as is."""
    if cores is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
