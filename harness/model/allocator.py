"""The 6.1 CMA bitmap allocator (mm/cma.c cma_alloc) and the seed's test loop over it."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

PAGE_SIZE = 4096
CMA_ALIGNMENT = 8  # CONFIG_CMA_ALIGNMENT default (kernel/dma/Kconfig)
BH_LRU_SIZE = 16  # fs/buffer.c

RangeBusy = Callable[[int, int], bool]


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


def release_chunks(area: CmaArea, pfns: Iterable[int | None], chunk_pages: int) -> None:
    for pfn in pfns:
        if pfn is not None:
            area.release(pfn, chunk_pages)


def run_loop(area: CmaArea, chunks: int, chunk_pages: int, align_order: int,
             range_busy: RangeBusy = _never_busy) -> LoopOutcome:
    """Allocate `chunks` chunks in order, then free every chunk that was allocated."""
    pfns = tuple(area.alloc(chunk_pages, align_order, range_busy) for _ in range(chunks))
    release_chunks(area, pfns, chunk_pages)
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


def pages_busy(pfns: Iterable[int]) -> RangeBusy:
    """range_busy for a fixed set of busy pages: a range is busy when it holds one of them."""
    ordered = sorted(pfns)

    def range_busy(pfn: int, count: int) -> bool:
        index = bisect.bisect_left(ordered, pfn)
        return index < len(ordered) and ordered[index] < pfn + count

    return range_busy



def format_pa(pa: int | None) -> str:
    return "NULL" if pa is None else f"{pa:#x}"


def format_pfns(pfns: Sequence[int | None], shown: int = 4) -> str:
    """Physical addresses, as the module's records print them; a long list is cut."""
    text = ", ".join(format_pa(None if pfn is None else pfn * PAGE_SIZE) for pfn in pfns[:shown])
    more = f" ... ({len(pfns)} in all)" if len(pfns) > shown else ""
    return (text or "none") + more
