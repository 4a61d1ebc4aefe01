"""Simulation of the seed's loop on a kernel variant: the model's predicted failure rates."""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass, field

from harness.model.allocator import (
    PAGE_SIZE,
    CmaArea,
    RangeBusy,
    dma_align_order,
    release_chunks,
)
from harness.model.bh_lru import BhLruModel, PageState
from harness.spec.variants import Defences

# --------------------------------------------------------------------------------------------
# Simulation of the seed's loop on a variant
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SimResult:
    defences: Defences
    loops: int
    failed_loops: int
    failed_chunks: int
    lru_caused_chunks: int
    busy_retries: int
    lru_caused_loops: int = 0  # loops with at least one LRU-caused chunk (the module's 'L' metric)

    @property
    def loop_failure_rate(self) -> float:
        return self.failed_loops / self.loops if self.loops else 0.0

    @property
    def lru_caused_loop_rate(self) -> float:
        return self.lru_caused_loops / self.loops if self.loops else 0.0

    @property
    def other_caused_chunks(self) -> int:
        return self.failed_chunks - self.lru_caused_chunks


@dataclass
class _ChunkSchedule:
    """Lookups made around one chunk's cma_alloc(): before it, and inside its first
    alloc_contig_range() while the LRU cache is disabled."""

    before: list[tuple[int, int]] = field(default_factory=list)
    during: list[tuple[int, int]] = field(default_factory=list)
    recheck_race: bool = False


def _draw_schedule(rng: random.Random, chunks: int, cpus: int, installs_per_cpu: int, pool: int,
                   share_during: float, race_probability: float) -> list[_ChunkSchedule]:
    schedule = [_ChunkSchedule() for _ in range(chunks)]
    for cpu in range(cpus):
        for _ in range(installs_per_cpu):
            chunk = schedule[rng.randrange(chunks)]
            phase = chunk.during if rng.random() < share_during else chunk.before
            phase.append((cpu, rng.randrange(pool)))
    for chunk in schedule:
        chunk.recheck_race = rng.random() < race_probability
    return schedule


def _place_pages(rng: random.Random, machine: BhLruModel, base_pfn: int, area_pages: int,
                 pool: int, metadata_pages: int, other_ref_pages: int) -> None:
    machine.clear_pages()
    pfns = [base_pfn + offset for offset in rng.sample(range(area_pages),
                                                       metadata_pages + other_ref_pages)]
    bhs = rng.sample(range(pool), metadata_pages)
    for pfn, bh in zip(pfns[:metadata_pages], bhs, strict=True):
        machine.add_page(pfn, PageState.BUFFERS_UNREFERENCED, (bh,))
    # Journal/I-O-held pages get bh ids outside the pool: no lookup ever touches them.
    for index, pfn in enumerate(pfns[metadata_pages:]):
        machine.add_page(pfn, PageState.BUFFERS_OTHER_REF, (pool + index,))


def _fits_without_lru_pins(area: CmaArea, machine: BhLruModel, chunk_pages: int,
                           align_order: int) -> bool:
    """Would the failed chunk have been allocated with every LRU pin gone? (what the test
    module's flush-and-retry attribution measures, without changing the state)"""
    pfn = area.alloc(chunk_pages, align_order, machine.busy_without_lru_pins)
    if pfn is None:
        return False
    area.release(pfn, chunk_pages)
    return True


def simulate(defences: Defences, loops: int, *, cpus: int = 2, area_pages: int = 14336,
             chunk_pages: int = 256, metadata_pages_in_area: int = 4,
             metadata_pool_pages: int = 64, lru_installs_per_cpu_per_loop: int = 48,
             share_installs_during_alloc: float = 0.5, other_ref_pages: int = 0,
             recheck_race_probability: float = 0.0, seed: int = 0) -> SimResult:
    """Run the seed's loop `loops` times on a variant; deterministic for a seed.

    Each loop fills the area with area_pages // chunk_pages chunks of chunk_pages pages (align
    order min(get_order, 8)), then frees them. The workload, redrawn every loop:
      metadata_pages_in_area: block-device metadata pages (one 4 KiB buffer each) sitting at
          random pfns of the area; migrating one moves it out of the area for the loop.
      metadata_pool_pages: the metadata blocks the workload looks up; the ones in the area
          are part of it, lookups of the others pin nothing that matters but evict.
      lru_installs_per_cpu_per_loop: __find_get_block() calls per CPU per loop, each on a
          uniformly drawn pool block at a uniformly drawn chunk, in the gap before that
          chunk's cma_alloc() or, with probability share_installs_during_alloc, inside its
          first alloc_contig_range() while the LRU cache is disabled.
      other_ref_pages: pages whose buffers the journal or I/O holds (busy on every variant).
      recheck_race_probability: per chunk, the chance that a hot block wins the norefs
          invalidate/recheck race (see migration_outcome) on every attempt.
    LRUs persist across loops. A failed chunk counts as LRU-caused when it would have been
    allocated had no LRU held a pin at that moment. With the defaults reintroduce-2012 fails
    about 46 % of loops, near the 45 to 46 of 100 measured on the seed-faithful layout
    (KERNEL-NOTES), and stock none.
    """
    if metadata_pages_in_area > metadata_pool_pages:
        raise ValueError("metadata_pages_in_area cannot exceed metadata_pool_pages")
    if metadata_pages_in_area + other_ref_pages > area_pages:
        raise ValueError("more pages placed in the area than it holds")
    rng = random.Random(seed)
    area = CmaArea(0, area_pages)
    machine = BhLruModel(cpus, defences)
    chunks = area_pages // chunk_pages
    align_order = dma_align_order(chunk_pages * PAGE_SIZE)
    failed_loops = failed_chunks = lru_caused = busy_retries = lru_caused_loops = 0
    for _ in range(loops):
        _place_pages(rng, machine, area.base_pfn, area_pages, metadata_pool_pages,
                     metadata_pages_in_area, other_ref_pages)
        schedule = _draw_schedule(rng, chunks, cpus, lru_installs_per_cpu_per_loop,
                                  metadata_pool_pages, share_installs_during_alloc,
                                  recheck_race_probability)
        pfns = []
        lru_caused_before = lru_caused
        for chunk in schedule:
            for cpu, bh in chunk.before:
                machine.find_get_block(cpu, bh)
            attempt = area.try_alloc(chunk_pages, align_order, _chunk_range_busy(machine, chunk))
            busy_retries += attempt.busy_retries
            pfns.append(attempt.pfn)
            if attempt.pfn is None:
                failed_chunks += 1
                lru_caused += _fits_without_lru_pins(area, machine, chunk_pages, align_order)
        release_chunks(area, pfns, chunk_pages)
        failed_loops += any(pfn is None for pfn in pfns)
        lru_caused_loops += lru_caused > lru_caused_before
    return SimResult(defences, loops, failed_loops, failed_chunks, lru_caused, busy_retries,
                     lru_caused_loops)


def workload_defaults() -> dict[str, object]:
    """simulate()'s keyword-only workload parameters with their defaults (the CLI's knobs)."""
    return {name: parameter.default
            for name, parameter in inspect.signature(simulate).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY}


def _chunk_range_busy(machine: BhLruModel, chunk: _ChunkSchedule) -> RangeBusy:
    """range_busy for one chunk's cma_alloc(): its lookups inside the disabled window happen
    in the first alloc_contig_range() only."""
    pending = list(chunk.during)

    def range_busy(pfn: int, count: int) -> bool:
        installs = pending.copy()
        pending.clear()
        return machine.alloc_contig_range(pfn, count, installs, chunk.recheck_race)

    return range_busy
