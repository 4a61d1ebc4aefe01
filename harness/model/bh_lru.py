"""Pages, the per-CPU bh LRUs (fs/buffer.c) and each variant's migration rule (mm/migrate.c, fs/buffer.c)."""

from __future__ import annotations

import bisect
import enum
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from harness.spec.variants import Defences

BH_LRU_SIZE = 16  # fs/buffer.c

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


class BhLruModel:
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
    """Outcome of migrating one page, derived by running the three moments on a 2-CPU BhLruModel.

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
    machine = BhLruModel(cpus=2, defences=defences)
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
