"""Reference model: 6.1 CMA allocation, per-CPU bh LRUs and each kernel variant's migration rule."""

from __future__ import annotations

import bisect
import enum
import inspect
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

PAGE_SIZE = 4096
CMA_ALIGNMENT = 8  # CONFIG_CMA_ALIGNMENT default (kernel/dma/Kconfig)
BH_LRU_SIZE = 16  # fs/buffer.c

RangeBusy = Callable[[int, int], bool]


# --------------------------------------------------------------------------------------------
# Kernel variants: which of the three 6.1 defences against bh-LRU pins are present
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Defences:
    """The three 6.1 defences; a patch series named remove-N switches defence N off.

    1. lru_disable_blocks_install: fs/buffer.c bh_lru_install() returns early while
       lru_cache_disabled().
    2. drain_bh_lrus: mm/swap.c lru_cache_disable() -> __lru_add_drain_all(true) drains every CPU
       whose cpu_needs_drain() (which includes has_bh_in_lru()) is true, and the per-CPU
       lru_add_and_bh_lrus_drain() calls invalidate_bh_lrus_cpu().
    3. blkdev_migrate_norefs: block/fops.c def_blk_aops.migrate_folio = buffer_migrate_folio_norefs,
       whose __buffer_migrate_folio(check_refs=true) calls invalidate_bh_lrus() once on a busy
       buffer and rechecks. Switched off means no .migrate_folio, so block-device pages take
       fallback_migrate_folio -> filemap_release_folio -> try_to_free_buffers (the 2012 path).
    """

    lru_disable_blocks_install: bool
    drain_bh_lrus: bool
    blkdev_migrate_norefs: bool


STOCK = Defences(True, True, True)
REINTRODUCED_2012 = Defences(False, False, False)


def _without(*removed: int) -> Defences:
    """The stock kernel with the numbered defences switched off."""
    return Defences(
        lru_disable_blocks_install=1 not in removed,
        drain_bh_lrus=2 not in removed,
        blkdev_migrate_norefs=3 not in removed,
    )


# Keyed by the patch series directory names under kernel-configs/patches/.
ALL_VARIANTS: dict[str, Defences] = {
    "stock": STOCK,
    "remove-1": _without(1),
    "remove-2": _without(2),
    "remove-3": _without(3),
    "remove-1-2": _without(1, 2),
    "remove-1-3": _without(1, 3),
    "remove-2-3": _without(2, 3),
    "reintroduce-2012": REINTRODUCED_2012,
}


def variant_for_series(name: str) -> Defences:
    """The defences of the kernel built with patch series `name`."""
    try:
        return ALL_VARIANTS[name]
    except KeyError:
        valid = ", ".join(ALL_VARIANTS)
        raise ValueError(f"unknown patch series {name!r}; valid names: {valid}") from None


# --------------------------------------------------------------------------------------------
# The CMA bitmap allocator (mm/cma.c cma_alloc, lib/bitmap.c bitmap_find_next_zero_area_off)
# The bitmap is a Python int, bit i set = bitmap bit i allocated; big-int operations keep the
# searches fast enough to simulate thousands of loops.
# --------------------------------------------------------------------------------------------

def _lowest_set_bit(value: int) -> int:
    return (value & -value).bit_length() - 1


def _find_next_zero_bit(bitmap: int, size: int, start: int) -> int:
    if start >= size:
        return size
    # ~bitmap of a non-negative int has infinitely many high bits set, so a zero is always found.
    return min(start + _lowest_set_bit(~bitmap >> start), size)


def _find_next_bit(bitmap: int, size: int, start: int) -> int:
    if start >= size:
        return size
    rest = bitmap >> start
    if rest == 0:
        return size
    return min(start + _lowest_set_bit(rest), size)


def _bit_run(start: int, count: int) -> int:
    return ((1 << count) - 1) << start


def _find_next_zero_area_off(bitmap: int, size: int, start: int, nr: int,
                             align_mask: int, align_offset: int) -> int:
    """lib/bitmap.c bitmap_find_next_zero_area_off: index of the area, or a value > size."""
    while True:
        index = _find_next_zero_bit(bitmap, size, start)
        # __ALIGN_MASK(index + align_offset, align_mask) - align_offset
        index = ((index + align_offset + align_mask) & ~align_mask) - align_offset
        end = index + nr
        if end > size:
            return end
        busy_bit = _find_next_bit(bitmap, end, index)
        if busy_bit < end:
            start = busy_bit + 1
            continue
        return index


def get_order(size: int, page_size: int = PAGE_SIZE) -> int:
    """include/asm-generic/getorder.h get_order: smallest order with page_size << order >= size."""
    if size <= 0:
        raise ValueError(f"get_order of a non-positive size {size}")
    return max(0, (size - 1).bit_length() - page_size.bit_length() + 1)


def dma_align_order(size: int, page_size: int = PAGE_SIZE,
                    cma_alignment: int = CMA_ALIGNMENT) -> int:
    """The align order dma_alloc_from_contiguous() passes to cma_alloc(): get_order capped."""
    return min(get_order(size, page_size), cma_alignment)


def _never_busy(pfn: int, count: int) -> bool:
    return False


class AllocAttempt(NamedTuple):
    """One cma_alloc() call: the pfn (None on failure) and each range that was busy, in order."""

    pfn: int | None
    busy_pfns: tuple[int, ...]

    @property
    def busy_retries(self) -> int:
        """cma_alloc_busy_retry trace events this call emits."""
        return len(self.busy_pfns)


class CmaArea:
    """A CMA area's allocation bitmap, searched and updated exactly as 6.1 mm/cma.c does."""

    def __init__(self, base_pfn: int, count: int, order_per_bit: int = 0):
        # cma_init_reserved_mem() only takes pageblock-aligned areas, so one bitmap bit never
        # straddles the base or the end.
        bit_pages = 1 << max(order_per_bit, 0)
        if count <= 0 or base_pfn < 0 or order_per_bit < 0 or (base_pfn | count) % bit_pages:
            raise ValueError(f"bad CMA area: base_pfn={base_pfn:#x} count={count} "
                             f"order_per_bit={order_per_bit} (base and count must be positive "
                             "multiples of 1 << order_per_bit)")
        self.base_pfn = base_pfn
        self.count = count
        self.order_per_bit = order_per_bit
        self._bitmap = 0

    @property
    def bitmap_maxno(self) -> int:
        return self.count >> self.order_per_bit

    @property
    def bitmap(self) -> int:
        """debugfs cma/<area>/bitmap as an int: bit i set = pages of bitmap bit i allocated."""
        return self._bitmap

    def _pages_to_bits(self, pages: int) -> int:
        # ALIGN(pages, 1 << order_per_bit) >> order_per_bit
        return -(-pages >> self.order_per_bit)

    def _aligned_mask(self, align_order: int) -> int:
        if align_order <= self.order_per_bit:
            return 0
        return (1 << (align_order - self.order_per_bit)) - 1

    def _aligned_offset(self, align_order: int) -> int:
        return (self.base_pfn & ((1 << align_order) - 1)) >> self.order_per_bit

    def try_alloc(self, count_pages: int, align_order: int,
                  range_busy: RangeBusy = _never_busy) -> AllocAttempt:
        """cma_alloc(): first fit from bit 0; a busy range is unmarked and the search resumes
        at bitmap_no + mask + 1. range_busy(pfn, count) stands for alloc_contig_range()
        returning -EBUSY (other errors end cma_alloc without a retry and are not modelled)."""
        if count_pages <= 0:
            return AllocAttempt(None, ())
        mask = self._aligned_mask(align_order)
        offset = self._aligned_offset(align_order)
        maxno = self.bitmap_maxno
        bitmap_count = self._pages_to_bits(count_pages)
        if bitmap_count > maxno:
            return AllocAttempt(None, ())
        busy_pfns: list[int] = []
        start = 0
        while True:
            bitmap_no = _find_next_zero_area_off(self._bitmap, maxno, start, bitmap_count,
                                                 mask, offset)
            if bitmap_no >= maxno:
                return AllocAttempt(None, tuple(busy_pfns))
            run = _bit_run(bitmap_no, bitmap_count)
            self._bitmap |= run
            pfn = self.base_pfn + (bitmap_no << self.order_per_bit)
            if not range_busy(pfn, count_pages):
                return AllocAttempt(pfn, tuple(busy_pfns))
            self._bitmap &= ~run
            busy_pfns.append(pfn)
            start = bitmap_no + mask + 1

    def alloc(self, count_pages: int, align_order: int,
              range_busy: RangeBusy = _never_busy) -> int | None:
        """cma_alloc(): the first pfn of the allocation, or None."""
        return self.try_alloc(count_pages, align_order, range_busy).pfn

    def release(self, pfn: int, count_pages: int) -> None:
        """cma_release(); unlike the kernel, refuses to release pages that are not allocated."""
        end_pfn = self.base_pfn + self.count
        if not self.base_pfn <= pfn < end_pfn or pfn + count_pages > end_pfn or count_pages <= 0:
            raise ValueError(f"release of pfns [{pfn:#x}, {pfn + count_pages:#x}) outside the "
                             f"area [{self.base_pfn:#x}, {end_pfn:#x})")
        run = _bit_run((pfn - self.base_pfn) >> self.order_per_bit,
                       self._pages_to_bits(count_pages))
        if self._bitmap & run != run:
            raise ValueError(f"release of pfns [{pfn:#x}, {pfn + count_pages:#x}) that are not "
                             "all allocated")
        self._bitmap &= ~run

    @property
    def used_pages(self) -> int:
        """debugfs cma/<area>/used."""
        return self._bitmap.bit_count() << self.order_per_bit

    @property
    def maxchunk_pages(self) -> int:
        """debugfs cma/<area>/maxchunk: the longest run of free pages."""
        longest, end, maxno = 0, 0, self.bitmap_maxno
        while True:
            start = _find_next_zero_bit(self._bitmap, maxno, end)
            if start >= maxno:
                return longest << self.order_per_bit
            end = _find_next_bit(self._bitmap, maxno, start)
            longest = max(longest, end - start)


# --------------------------------------------------------------------------------------------
# The seed's test loop, typo fixed: a loop failed when any chunk failed
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoopOutcome:
    failed_indices: tuple[int, ...]
    pfns: tuple[int | None, ...]

    @property
    def failed(self) -> bool:
        return bool(self.failed_indices)


def _release_chunks(area: CmaArea, pfns: Iterable[int | None], chunk_pages: int) -> None:
    for pfn in pfns:
        if pfn is not None:
            area.release(pfn, chunk_pages)


def run_loop(area: CmaArea, chunks: int, chunk_pages: int, align_order: int,
             range_busy: RangeBusy = _never_busy) -> LoopOutcome:
    """Allocate `chunks` chunks in order, then free every chunk that was allocated."""
    pfns = tuple(area.alloc(chunk_pages, align_order, range_busy) for _ in range(chunks))
    _release_chunks(area, pfns, chunk_pages)
    failed = tuple(index for index, pfn in enumerate(pfns) if pfn is None)
    return LoopOutcome(failed, pfns)


def idle_placement(base_pa: int, area_size: int, chunk_size: int, chunks: int,
                   page_size: int = PAGE_SIZE,
                   cma_alignment: int = CMA_ALIGNMENT) -> list[int | None]:
    """Physical address of each chunk of one loop on an area where nothing is busy."""
    if base_pa % page_size or area_size % page_size or chunk_size % page_size:
        raise ValueError("base, area size and chunk size must be multiples of the page size")
    area = CmaArea(base_pa // page_size, area_size // page_size)
    outcome = run_loop(area, chunks, chunk_size // page_size,
                       dma_align_order(chunk_size, page_size, cma_alignment))
    return [None if pfn is None else pfn * page_size for pfn in outcome.pfns]


# --------------------------------------------------------------------------------------------
# Pages, per-CPU bh LRUs and the migration rule of a variant
# --------------------------------------------------------------------------------------------

class PageState(enum.Enum):
    FREE = "free"
    MOVABLE_NO_BUFFERS = "movable, no buffers"
    BUFFERS_UNREFERENCED = "buffers, b_count 0"
    BUFFERS_LRU_PINNED = "buffers, b_count 1 from a CPU's bh LRU slot"
    BUFFERS_OTHER_REF = "buffers referenced by the journal or I/O"
    UNMOVABLE = "unmovable"


_BUFFER_STATES = (PageState.BUFFERS_UNREFERENCED, PageState.BUFFERS_LRU_PINNED,
                  PageState.BUFFERS_OTHER_REF)


class BhLru:
    """One CPU's bh_lrus: slot 0 is the most recent; holes only ever sit at the end."""

    def __init__(self) -> None:
        self._slots: list[int] = []

    @property
    def slots(self) -> tuple[int, ...]:
        return tuple(self._slots)

    def __contains__(self, bh: int) -> bool:
        return bh in self._slots

    def _move_to_front(self, bh: int) -> None:
        self._slots.remove(bh)
        self._slots.insert(0, bh)

    def install(self, bh: int) -> int | None:
        """bh_lru_install(): bh goes to slot 0 and the others shift down; a duplicate just moves
        to the front (it already holds its reference); returns the bh pushed off the end,
        whose reference brelse() drops."""
        if bh in self._slots:
            self._move_to_front(bh)
            return None
        self._slots.insert(0, bh)
        if len(self._slots) > BH_LRU_SIZE:
            return self._slots.pop()
        return None

    def lookup(self, bh: int) -> bool:
        """lookup_bh_lru(): on a hit the bh moves to the front; no new LRU reference."""
        if bh not in self._slots:
            return False
        self._move_to_front(bh)
        return True

    def invalidate(self) -> list[int]:
        """__invalidate_bh_lrus(): empties the LRU and returns the bhs it released."""
        released, self._slots = self._slots, []
        return released


class MigrationOutcome(NamedTuple):
    result: str  # "ok" or "busy"
    reason: str

    @property
    def busy(self) -> bool:
        return self.result == "busy"

    @property
    def lru_caused(self) -> bool:
        return self.reason in LRU_REASONS


NO_BUFFERS = "no buffers to drop"
UNMOVABLE = "unmovable page"
OTHER_REFERENCE = "buffer referenced outside the bh LRUs (journal or I/O)"
UNREFERENCED = "buffers unreferenced"
NOREFS_INVALIDATED = "buffer_migrate_folio_norefs dropped the pin with invalidate_bh_lrus()"
LRU_PIN = "bh LRU pin: try_to_free_buffers() finds b_count 1 (fallback_migrate_folio)"
RECHECK_RACE = ("recheck race: bh LRU pin re-installed between invalidate_bh_lrus() and the "
                "norefs recheck")
LRU_REASONS = frozenset({LRU_PIN, RECHECK_RACE})


def _ok(reason: str) -> MigrationOutcome:
    return MigrationOutcome("ok", reason)


def _busy(reason: str) -> MigrationOutcome:
    return MigrationOutcome("busy", reason)


class Machine:
    """N CPUs' bh LRUs, the pages of interest (with their buffers) and one kernel variant.

    A bh is an int; the LRU reference count of each bh is tracked so that a page is
    LRU-pinned exactly while some CPU's LRU holds one of its buffers.
    """

    def __init__(self, cpus: int, defences: Defences):
        if cpus < 1:
            raise ValueError("a machine needs at least one CPU")
        self.defences = defences
        self.lrus = [BhLru() for _ in range(cpus)]
        self._lru_refs: Counter[int] = Counter()
        self._lru_disable_count = 0
        self._pfns: list[int] = []  # sorted, for range queries
        self._bhs_of_page: dict[int, tuple[int, ...]] = {}
        self._other_ref_pages: set[int] = set()
        self._states_without_buffers: dict[int, PageState] = {}

    # -- pages ----------------------------------------------------------------------------------
    def add_page(self, pfn: int, state: PageState, bhs: Sequence[int] = ()) -> None:
        """Track a page; pages with buffers need their bhs, others must have none. Pins are
        not a state to add: add BUFFERS_UNREFERENCED and look the bh up on a CPU."""
        if state is PageState.BUFFERS_LRU_PINNED:
            raise ValueError("add the page as BUFFERS_UNREFERENCED and install its bh in an LRU")
        if pfn in self._bhs_of_page or pfn in self._states_without_buffers:
            raise ValueError(f"pfn {pfn:#x} is already tracked")
        if (state in _BUFFER_STATES) != bool(bhs):
            raise ValueError(f"{state.name} page at {pfn:#x} with buffers {tuple(bhs)}")
        if bhs:
            self._bhs_of_page[pfn] = tuple(bhs)
            if state is PageState.BUFFERS_OTHER_REF:
                self._other_ref_pages.add(pfn)
        else:
            self._states_without_buffers[pfn] = state
        bisect.insort(self._pfns, pfn)

    def remove_page(self, pfn: int) -> None:
        """The page left the tracked memory (migrated away or freed)."""
        index = bisect.bisect_left(self._pfns, pfn)
        if index == len(self._pfns) or self._pfns[index] != pfn:
            raise ValueError(f"pfn {pfn:#x} is not tracked")
        del self._pfns[index]
        self._bhs_of_page.pop(pfn, None)
        self._other_ref_pages.discard(pfn)
        self._states_without_buffers.pop(pfn, None)

    def clear_pages(self) -> None:
        self._pfns.clear()
        self._bhs_of_page.clear()
        self._other_ref_pages.clear()
        self._states_without_buffers.clear()

    def pfns_in(self, pfn: int, count: int) -> list[int]:
        """Tracked pages in [pfn, pfn + count), in pfn order."""
        first = bisect.bisect_left(self._pfns, pfn)
        return self._pfns[first:bisect.bisect_left(self._pfns, pfn + count, first)]

    def is_lru_pinned(self, pfn: int) -> bool:
        return any(self._lru_refs[bh] for bh in self._bhs_of_page.get(pfn, ()))

    def page_state(self, pfn: int) -> PageState:
        if pfn in self._states_without_buffers:
            return self._states_without_buffers[pfn]
        if pfn not in self._bhs_of_page:
            return PageState.FREE
        if pfn in self._other_ref_pages:
            return PageState.BUFFERS_OTHER_REF
        if self.is_lru_pinned(pfn):
            return PageState.BUFFERS_LRU_PINNED
        return PageState.BUFFERS_UNREFERENCED

    # -- bh LRUs ----------------------------------------------------------------------------------
    def find_get_block(self, cpu: int, bh: int) -> None:
        """__find_get_block() on `cpu`: an LRU hit only reorders; a miss installs the bh,
        unless defence 1 holds installs off while the LRU cache is disabled."""
        lru = self.lrus[cpu]
        if lru.lookup(bh):
            return
        if self._lru_disable_count and self.defences.lru_disable_blocks_install:
            return
        self._lru_refs[bh] += 1
        evicted = lru.install(bh)
        if evicted is not None:
            self._lru_refs[evicted] -= 1

    def invalidate_bh_lrus(self) -> None:
        for lru in self.lrus:
            for bh in lru.invalidate():
                self._lru_refs[bh] -= 1

    def lru_cache_disable(self) -> None:
        self._lru_disable_count += 1
        if self.defences.drain_bh_lrus:
            self.invalidate_bh_lrus()

    def lru_cache_enable(self) -> None:
        self._lru_disable_count -= 1

    # -- migration ----------------------------------------------------------------------------
    def migrate_page(self, pfn: int, recheck_race: bool = False) -> MigrationOutcome:
        """Try to move one page out of a range that alloc_contig_range() is clearing.

        recheck_race: the CPUs that held the page's buffers in their LRUs look them up again
        between norefs' invalidate_bh_lrus() and its recheck (a hot metadata block)."""
        state = self.page_state(pfn)
        if state in (PageState.FREE, PageState.MOVABLE_NO_BUFFERS):
            return _ok(NO_BUFFERS)
        if state is PageState.UNMOVABLE:
            return _busy(UNMOVABLE)
        if state is PageState.BUFFERS_OTHER_REF:
            return _busy(OTHER_REFERENCE)
        if self.defences.blkdev_migrate_norefs:
            return self._buffer_migrate_folio_norefs(pfn, recheck_race)
        return _busy(LRU_PIN) if state is PageState.BUFFERS_LRU_PINNED else _ok(UNREFERENCED)

    def _buffer_migrate_folio_norefs(self, pfn: int, recheck_race: bool) -> MigrationOutcome:
        if not self.is_lru_pinned(pfn):
            return _ok(UNREFERENCED)
        holders = [(cpu, bh) for cpu, lru in enumerate(self.lrus)
                   for bh in self._bhs_of_page[pfn] if bh in lru]
        self.invalidate_bh_lrus()
        if recheck_race:
            for cpu, bh in holders:
                self.find_get_block(cpu, bh)
        return _busy(RECHECK_RACE) if self.is_lru_pinned(pfn) else _ok(NOREFS_INVALIDATED)

    def alloc_contig_range(self, pfn: int, count: int,
                           installs_while_disabled: Iterable[tuple[int, int]] = (),
                           recheck_race: bool = False) -> bool:
        """Migrate every tracked page out of [pfn, pfn + count); True (-EBUSY) when any stays.

        Pages that migrate leave the range even when another page keeps it busy, as in the
        kernel. installs_while_disabled are (cpu, bh) lookups made after lru_cache_disable()
        and before the pages are migrated.

        Pageblocks need no model: start_isolate_page_range() isolates the enclosing
        pageblocks, but isolate_single_pageblock() steps over order-0 pages outside the range,
        only [pfn, pfn + count) is migrated, and test_pages_isolated() extends the range
        downwards over free buddy pages only."""
        self.lru_cache_disable()
        for cpu, bh in installs_while_disabled:
            self.find_get_block(cpu, bh)
        busy = False
        for page in self.pfns_in(pfn, count):
            if self.migrate_page(page, recheck_race).busy:
                busy = True
            else:
                self.remove_page(page)
        self.lru_cache_enable()
        return busy

    def busy_without_lru_pins(self, pfn: int, count: int) -> bool:
        """Would [pfn, pfn + count) be busy if no LRU held a pin? (attribution counterfactual)"""
        return any(self.page_state(page) in (PageState.UNMOVABLE, PageState.BUFFERS_OTHER_REF)
                   for page in self.pfns_in(pfn, count))


def migration_outcome(page_state: PageState, defences: Defences, pinned_before: bool = False,
                      pinned_during: bool = False,
                      reinstalled_after_invalidate: bool = False) -> MigrationOutcome:
    """Outcome of migrating one page, derived by running the three moments on a 2-CPU Machine.

    pinned_before: a CPU's LRU took the page's bh before lru_cache_disable() (a page in state
        BUFFERS_LRU_PINNED is pinned before by definition).
    pinned_during: another CPU looks the bh up while the LRU cache is disabled, before the
        page is migrated.
    reinstalled_after_invalidate: the CPUs holding it look it up again between norefs'
        invalidate_bh_lrus() and its recheck.

    How the 6.1 code (Debian 6.1.192) decides, and so what this derives:
    - before pins: defence 2 empties them in lru_cache_disable() (__lru_add_drain_all(true),
      cpu_needs_drain() -> has_bh_in_lru(), lru_add_and_bh_lrus_drain() ->
      invalidate_bh_lrus_cpu()); synchronize_rcu_expedited() there first lets any install that
      raced with the counter finish, so it is a before pin too.
    - during pins: defence 1 stops them (bh_lru_install() returns early while
      lru_cache_disabled(); lookup_bh_lru() still reorders hits but takes no LRU reference).
    - at migration: defence 3 (__buffer_migrate_folio(check_refs=true)) invalidates every LRU
      once and rechecks b_count, which clears before and during pins. Without it the page goes
      fallback_migrate_folio -> filemap_release_folio -> try_to_free_buffers -> drop_buffers ->
      buffer_busy, and b_count 1 fails it (-EAGAIN in MIGRATE_SYNC, then -EBUSY).
    - the recheck race: __buffer_migrate_folio drops mapping->private_lock before
      invalidate_bh_lrus() and retakes it for the recheck. __find_get_block() ->
      __find_get_block_slow() needs only that private_lock (not the folio lock or the buffer
      locks migration holds) and then calls bh_lru_install(). So with defence 1 off another CPU
      can re-install the pin inside the window and the recheck returns -EAGAIN. With defence 1
      on it cannot. To fail the chunk the race must be won at every attempt: migrate_pages()
      makes NR_MAX_MIGRATE_PAGES_RETRY (10) passes and __alloc_contig_migrate_range() calls it
      up to 5 times, so 50 invalidate/recheck rounds; only a block that another CPU looks up
      continuously gets there. Possible, hence counted, but rare.
    """
    if page_state not in _BUFFER_STATES and (pinned_before or pinned_during
                                             or reinstalled_after_invalidate):
        raise ValueError(f"a {page_state.name} page has no buffers to pin")
    pfn, bh = 0, 0
    machine = Machine(cpus=2, defences=defences)
    if page_state is PageState.BUFFERS_LRU_PINNED:
        page_state, pinned_before = PageState.BUFFERS_UNREFERENCED, True
    machine.add_page(pfn, page_state, (bh,) if page_state in _BUFFER_STATES else ())
    if pinned_before:
        machine.find_get_block(0, bh)
    machine.lru_cache_disable()
    if pinned_during:
        machine.find_get_block(1, bh)
    outcome = machine.migrate_page(pfn, recheck_race=reinstalled_after_invalidate)
    machine.lru_cache_enable()
    return outcome


def lru_failure_reasons(defences: Defences) -> tuple[str, ...]:
    """Every way a page can fail to migrate because of bh-LRU pins on this variant, found by
    enumerating the page states with buffers and every combination of the three moments."""
    reasons = set()
    for state in (PageState.BUFFERS_UNREFERENCED, PageState.BUFFERS_OTHER_REF):
        for before in (False, True):
            for during in (False, True):
                for race in (False, True):
                    outcome = migration_outcome(state, defences, before, during, race)
                    if outcome.busy and outcome.lru_caused:
                        reasons.add(outcome.reason)
    return tuple(sorted(reasons))


def can_fail_from_lru_pins(defences: Defences) -> bool:
    """Whether any scenario lets a bh-LRU pin fail a migration on this variant.

    Derived (see migration_outcome) for the eight variants, defences kept in brackets:
      stock [1,2,3]      False: before pins drained (2) and invalidated (3), none installed (1).
      remove-1 [2,3]     True, recheck race only: during pins are invalidated by norefs but can
                         be re-installed before the recheck.
      remove-2 [1,3]     False: before pins invalidated by norefs (3), not re-installable (1).
      remove-3 [1,2]     False: before pins drained (2), none installed (1), so
                         try_to_free_buffers() finds b_count 0.
      remove-1-2 [3]     True, recheck race only: as remove-1, for before and during pins.
      remove-1-3 [2]     True: a pin installed while disabled meets try_to_free_buffers().
      remove-2-3 [1]     True: before pins survive (no drain, no invalidate); defence 1 even
                         freezes the LRUs so nothing evicts them during the allocation.
      reintroduce-2012   True: the 2012 path.
    """
    return bool(lru_failure_reasons(defences))


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


def _place_pages(rng: random.Random, machine: Machine, base_pfn: int, area_pages: int,
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


def _fits_without_lru_pins(area: CmaArea, machine: Machine, chunk_pages: int,
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
    machine = Machine(cpus, defences)
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
        _release_chunks(area, pfns, chunk_pages)
        failed_loops += any(pfn is None for pfn in pfns)
        lru_caused_loops += lru_caused > lru_caused_before
    return SimResult(defences, loops, failed_loops, failed_chunks, lru_caused, busy_retries,
                     lru_caused_loops)


def workload_defaults() -> dict[str, object]:
    """simulate()'s keyword-only workload parameters with their defaults (the CLI's knobs)."""
    return {name: parameter.default
            for name, parameter in inspect.signature(simulate).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY}


def _chunk_range_busy(machine: Machine, chunk: _ChunkSchedule) -> RangeBusy:
    """range_busy for one chunk's cma_alloc(): its lookups inside the disabled window happen
    in the first alloc_contig_range() only."""
    pending = list(chunk.during)

    def range_busy(pfn: int, count: int) -> bool:
        installs = pending.copy()
        pending.clear()
        return machine.alloc_contig_range(pfn, count, installs, chunk.recheck_race)

    return range_busy


# --------------------------------------------------------------------------------------------
# Cross-checks of measurements against the model (plain data in, CheckResult out)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckResult:
    """ok is True (agrees), False (a finding) or None (not measured, skipped)."""

    name: str
    ok: bool | None
    detail: str
    data: Mapping[str, object] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return {True: "pass", False: "fail", None: "skipped"}[self.ok]

    def as_dict(self) -> dict[str, object]:
        result = asdict(self)
        result["data"] = dict(self.data)
        result["status"] = self.status
        return result


def check_idle_placement(measured_pa: Sequence[int | None], base_pa: int, area_size: int,
                         chunk_size: int) -> CheckResult:
    """Chunk by chunk, does an idle loop place chunks where cma_alloc's first fit puts them?"""
    expected = idle_placement(base_pa, area_size, chunk_size, len(measured_pa))
    mismatches = [
        f"chunk {index}: measured {_format_pa(got)}, model {_format_pa(want)}"
        for index, (got, want) in enumerate(zip(measured_pa, expected, strict=True))
        if got != want
    ]
    detail = "; ".join(mismatches) or f"all {len(measured_pa)} chunks where the model puts them"
    return CheckResult("idle_placement", not mismatches, detail,
                       {"expected": expected, "mismatches": len(mismatches)})


def _format_pa(pa: int | None) -> str:
    return "NULL" if pa is None else f"{pa:#x}"


def check_accounting(alloc_calls_failed: int, sysfs_fail_pages_delta: int | None,
                     pages_per_chunk: int, failed_finish_events: int | None) -> CheckResult:
    """Do the module's records, sysfs and the trace agree on how many cma_alloc() calls failed?

    alloc_calls_failed is every failed dma_alloc_coherent() the module made, attribution
    retries included: each retry is a cma_alloc() call too, and each failed call adds
    pages_per_chunk to the area's sysfs alloc_pages_fail and emits one cma_alloc_finish with a
    NULL page (its pfn is the last range tried, not -1, after a busy retry). None means the
    figure was not measured.
    """
    expected_pages = alloc_calls_failed * pages_per_chunk
    compared, disagreements = [], []
    if sysfs_fail_pages_delta is not None:
        compared.append("sysfs")
        if sysfs_fail_pages_delta != expected_pages:
            disagreements.append(f"sysfs alloc_pages_fail grew by {sysfs_fail_pages_delta}, "
                                 f"records imply {expected_pages}")
    if failed_finish_events is not None:
        compared.append("trace")
        if failed_finish_events != alloc_calls_failed:
            disagreements.append(f"{failed_finish_events} failed cma_alloc_finish events, "
                                 f"records have {alloc_calls_failed} failed calls")
    data = {"alloc_calls_failed": alloc_calls_failed, "expected_fail_pages": expected_pages}
    if not compared:
        return CheckResult("accounting", None, "neither sysfs nor trace measured", data)
    detail = "; ".join(disagreements) or f"records agree with {' and '.join(compared)}"
    return CheckResult("accounting", not disagreements, detail, data)


def check_variant_rule(defences: Defences, lru_caused_failures: int) -> CheckResult:
    """A measured LRU-caused failure on a variant that cannot have one is a finding."""
    reasons = lru_failure_reasons(defences)
    data = {"lru_caused_failures": lru_caused_failures, "model_reasons": list(reasons)}
    if lru_caused_failures and not reasons:
        return CheckResult("variant_rule", False,
                           f"finding: LRU-caused failed chunks: {lru_caused_failures}, on a variant "
                           "whose defences rule them out", data)
    if not reasons:
        return CheckResult("variant_rule", True, "no LRU-caused failed chunk, none possible", data)
    return CheckResult("variant_rule", True,
                       f"LRU-caused failed chunks: {lru_caused_failures}; possible through: "
                       + "; ".join(reasons), data)


# --------------------------------------------------------------------------------------------
# Replays of measured loops: placement, and the busy pages' failed chunks
# --------------------------------------------------------------------------------------------

def pages_busy(pfns: Iterable[int]) -> RangeBusy:
    """range_busy for a fixed set of busy pages: a range is busy when it holds one of them."""
    ordered = sorted(pfns)

    def range_busy(pfn: int, count: int) -> bool:
        index = bisect.bisect_left(ordered, pfn)
        return index < len(ordered) and ordered[index] < pfn + count

    return range_busy


class MeasuredCall(NamedTuple):
    """One measured cma_alloc() call of a loop (a chunk's first try or an attribution retry)."""

    chunk: int
    ok: bool
    pfn: int | None                 # where the call placed the chunk; None when it failed
    busy: tuple[int, ...] | None    # first busy page of each range it found busy, in order
    #                                 (test_pages_isolated fin_pfn); None when not traced


def _replay_placement(calls: Sequence[MeasuredCall], area: CmaArea, chunk_pages: int,
                      align_order: int) -> tuple[str | None, int]:
    """(the first disagreement or None, busy ranges the calls met) for one loop."""
    met = 0
    for call in calls:
        if call.busy is not None:
            attempt = area.try_alloc(chunk_pages, align_order, pages_busy(call.busy))
            tried = attempt.busy_pfns
            if len(tried) != len(call.busy) or not all(
                    start <= page < start + chunk_pages for start, page in zip(tried, call.busy)):
                return (f"chunk {call.chunk}: the trace saw busy pages at "
                        f"{_format_pfns(call.busy)}, the model met busy ranges at "
                        f"{_format_pfns(tried)}"), met
        else:
            # Untraced: every range the search meets before the measured one must have been
            # busy; a placement the search cannot reach (misaligned, taken, outside) fails.
            attempt = area.try_alloc(chunk_pages, align_order,
                                     (lambda pfn, count, want=call.pfn: pfn != want)
                                     if call.ok else (lambda pfn, count: True))
        met += attempt.busy_retries
        want = call.pfn if call.ok else None
        if attempt.pfn == want:
            continue
        if call.busy is None:
            first_choice = attempt.busy_pfns[0] if attempt.busy_pfns else None
            return (f"chunk {call.chunk}: measured {_format_pfns([want])}, not a free aligned "
                    f"range the search can reach (the model's first choice: "
                    f"{_format_pfns([first_choice])})"), met
        return (f"chunk {call.chunk}: measured {_format_pfns([want])}, "
                f"model {_format_pfns([attempt.pfn])}"), met
    return None, met


def _format_pfns(pfns: Sequence[int | None], shown: int = 4) -> str:
    """Physical addresses, as the module's records print them; a long list is cut."""
    text = ", ".join(_format_pa(None if pfn is None else pfn * PAGE_SIZE) for pfn in pfns[:shown])
    more = f" ... ({len(pfns)} in all)" if len(pfns) > shown else ""
    return (text or "none") + more


def check_placement(loops: Mapping[int, Sequence[MeasuredCall]], *, base_pfn: int,
                    area_pages: int, chunk_pages: int,
                    align_order: int = CMA_ALIGNMENT) -> CheckResult:
    """Chunk by chunk, did every call land where 6.1's cma_alloc() puts it?

    A call whose busy ranges were traced is replayed with exactly those ranges busy: the model
    must meet them in the same order and end where the call ended. An untraced call is replayed
    with every range before the measured one busy, so its placement must be one the first-fit
    search can reach, and the ranges it skipped are the busy ranges that implies. A loop that met
    no busy range must sit exactly at idle_placement()."""
    if not loops:
        return CheckResult("placement", None, "no loop to check")
    idle, traced, inferred, mismatches = [], [], [], []
    for loop, calls in sorted(loops.items()):
        problem, met = _replay_placement(calls, CmaArea(base_pfn, area_pages), chunk_pages,
                                         align_order)
        if problem:
            mismatches.append(f"loop {loop} {problem}")
        elif not met:
            idle.append(loop)
        elif all(call.busy is not None for call in calls):
            traced.append(loop)
        else:
            inferred.append(loop)
    calls = sum(len(c) for c in loops.values())
    data = {"loops": len(loops), "calls": calls, "idle_loops": len(idle),
            "busy_loops_traced": traced, "busy_loops_inferred": inferred,
            "mismatches": mismatches}
    if mismatches:
        shown = "; ".join(mismatches[:5]) + ("; ..." if len(mismatches) > 5 else "")
        return CheckResult("placement", False,
                           f"{len(mismatches)} of {len(loops)} loops placed a chunk where the "
                           f"model does not: {shown}", data)
    detail = (f"all {calls} calls of {len(loops)} loops where the model puts them; "
              f"{len(idle)} loops at the idle placement")
    if traced:
        detail += f", {len(traced)} after busy ranges the trace saw"
    if inferred:
        detail += f", {len(inferred)} after busy ranges inferred from the placement (not traced)"
    return CheckResult("placement", True, detail, data)


# The module's attribution: the call (first try, plain retry, retry after invalidate_bh_lrus())
# that got the chunk, or P when none did (F: attribution off, the first try failed).
ATTRIBUTION_CAUSES = ".TL"
# Issue 6: cross-check 4 must agree on at least this share of failed chunks.
BUSY_PAGES_AGREEMENT = 0.95


@dataclass(frozen=True)
class FailedLoop:
    """A measured loop with failed chunks, as the busy traces describe it."""

    outcome: str                                 # the module's record: '.' ok, T/L/P/F failed
    last_seen: Mapping[int, tuple[int, int]]     # busy pfn -> (chunk, call) of the last
    #                                              cma_alloc() call that found it busy
    pfns: Sequence[int | None] = ()              # the record's placement of each chunk


def replay_attributed_loop(chunks: int, last_seen: Mapping[int, tuple[int, int]], *,
                           base_pfn: int, area_pages: int, chunk_pages: int,
                           align_order: int = CMA_ALIGNMENT,
                           attribution: bool = True) -> tuple[str, tuple[int | None, ...]]:
    """The module's loop (attribution retries included) with each busy page held from the
    loop's start to the last call that found it busy; returns the outcome string and the pfns.

    Held from the start because a range stays allocated until the loop frees everything: a
    range free at a later call was skipped by every earlier search that reached it, so it was
    busy then too. Released after the last sighting because a later call that reached the
    range would have found it busy again."""
    area = CmaArea(base_pfn, area_pages)
    tries = len(ATTRIBUTION_CAUSES) if attribution else 1
    outcome, pfns = [], []
    for chunk in range(chunks):
        for call in range(tries):
            held = pages_busy(pfn for pfn, seen in last_seen.items() if seen >= (chunk, call))
            pfn = area.alloc(chunk_pages, align_order, held)
            if pfn is not None:
                outcome.append(ATTRIBUTION_CAUSES[call])
                break
        else:
            outcome.append("P" if attribution else "F")
        pfns.append(pfn)
    return "".join(outcome), tuple(pfns)


def _failed_chunks(outcome: str) -> set[int]:
    return {index for index, cause in enumerate(outcome) if cause != "."}


def _describe_failed(outcome: str) -> str:
    """'......T.L' -> 'chunks 6T 8L'."""
    failed = [f"{index}{outcome[index]}" for index in sorted(_failed_chunks(outcome))]
    return "chunks " + " ".join(failed) if failed else "no failed chunk"


def check_busy_pages(loops: Mapping[int, FailedLoop], *, base_pfn: int, area_pages: int,
                     chunk_pages: int, align_order: int = CMA_ALIGNMENT,
                     attribution: bool = True) -> CheckResult:
    """Replay each failed loop with its busy pages (replay_attributed_loop) and compare the
    chunks the model says must fail with the ones that failed, chunk by chunk.

    agreement = failed chunks both name / failed chunks either names. For contrast, data also
    holds the agreement when every busy page is held for the whole loop (what the pages alone
    predict, without when they were seen)."""
    if not loops:
        return CheckResult("busy_pages", None, "no failed loop with busy pages recorded")
    kwargs = {"base_pfn": base_pfn, "area_pages": area_pages, "chunk_pages": chunk_pages,
              "align_order": align_order, "attribution": attribution}
    both = either = held_both = held_either = causes = placed = 0
    per_loop, disagreeing = {}, []
    for loop, measured in sorted(loops.items()):
        chunks = len(measured.outcome)
        predicted, pfns = replay_attributed_loop(chunks, measured.last_seen, **kwargs)
        whole_loop, _ = replay_attributed_loop(
            chunks, {pfn: (chunks, 0) for pfn in measured.last_seen}, **kwargs)
        want, got = _failed_chunks(measured.outcome), _failed_chunks(predicted)
        held = _failed_chunks(whole_loop)
        both, either = both + len(want & got), either + len(want | got)
        held_both, held_either = held_both + len(want & held), held_either + len(want | held)
        causes += sum(measured.outcome[i] == predicted[i] for i in want)
        placed += list(measured.pfns) == list(pfns)
        per_loop[loop] = {"measured": measured.outcome, "predicted": predicted,
                          "whole_loop": whole_loop, "agree": want == got}
        if want != got:
            disagreeing.append(loop)
    agreement = both / either if either else 1.0
    measured_chunks = sum(len(_failed_chunks(m.outcome)) for m in loops.values())
    data = {"agreement": agreement, "failed_chunks": measured_chunks, "agreeing_chunks": both,
            "causes_agreeing": causes,
            "placement_agreeing_loops": placed if any(m.pfns for m in loops.values()) else None,
            "whole_loop_agreement": held_both / held_either if held_either else 1.0,
            "required": BUSY_PAGES_AGREEMENT, "loops": per_loop}
    detail = (f"{both} of {either} failed chunks agree ({agreement:.0%}) over {len(loops)} "
              f"loops; cause letters agree on {causes} of {measured_chunks}")
    if data["placement_agreeing_loops"] is not None:
        detail += f"; every chunk placed as measured in {placed} of {len(loops)} loops"
    detail += f"; with every busy page held for the whole loop: {data['whole_loop_agreement']:.0%}"
    if disagreeing:
        detail += "; disagreeing loops: " + ", ".join(
            f"{loop} (measured {_describe_failed(per_loop[loop]['measured'])}, "
            f"model {_describe_failed(per_loop[loop]['predicted'])})" for loop in disagreeing[:5])
    return CheckResult("busy_pages", agreement >= BUSY_PAGES_AGREEMENT, detail, data)
