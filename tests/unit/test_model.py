"""Properties of the reference model: the 6.1 CMA allocator, bh LRUs and each variant's rule."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.judging import checks
from harness.model import allocator
from harness.model import bh_lru
from harness.model import replay
from harness.model import simulation
from harness.spec.variants import variant_for_series
from harness.spec.variants import ALL_VARIANTS, Defences, REINTRODUCED_2012, STOCK
from harness.model.bh_lru import BhLru, BhLruModel, PageState
from harness.model.allocator import CmaArea

MIB = 1 << 20
SLOT_PAGES = 256  # 1 MiB of 4 KiB pages
AREA_PAGES = 56 * SLOT_PAGES
BASE_PA = 0x48000000


# ---- variants ------------------------------------------------------------------------------

def test_series_names_cover_the_eight_subsets():
    assert len(set(ALL_VARIANTS.values())) == 8
    assert ALL_VARIANTS["stock"] == STOCK == Defences(True, True, True)
    assert ALL_VARIANTS["reintroduce-2012"] == REINTRODUCED_2012 == Defences(False, False, False)
    assert variant_for_series("remove-2") == Defences(True, False, True)
    assert variant_for_series("remove-1-3") == Defences(False, True, False)


def test_unknown_series_lists_valid_names():
    with pytest.raises(ValueError, match="remove-1-2.*reintroduce-2012"):
        variant_for_series("remove-4")


# ---- the CMA allocator ---------------------------------------------------------------------

def test_get_order_and_dma_align_order():
    assert allocator.get_order(1) == 0
    assert allocator.get_order(4096) == 0
    assert allocator.get_order(4097) == 1
    assert allocator.get_order(MIB) == 8
    assert allocator.dma_align_order(MIB) == 8
    assert allocator.dma_align_order(4 * MIB) == 8  # capped at CONFIG_CMA_ALIGNMENT


def test_cma_alloc_search_order_on_a_hand_built_bitmap():
    """Expected values worked out by hand from mm/cma.c cma_alloc() and lib/bitmap.c
    bitmap_find_next_zero_area_off() in 6.1, not from the model.

    base_pfn 0x103 with align order 3: mask = 7 and offset = 0x103 & 7 = 3, so a chunk may
    start only at bitmap_no with (bitmap_no + 3) % 8 == 0, i.e. 5, 13, 21, 29 ...
    Twenty 1-page allocations set bits 0..19; releasing bits 8..15 leaves an 8-bit hole that
    is not physically aligned. For 8 pages: find_next_zero_bit(0) = 8, aligned up to
    ((8 + 3 + 7) & ~7) - 3 = 13; find_next_bit(13..21) = 16 (allocated), so start = 17;
    find_next_zero_bit(17) = 20, aligned to 21; bits 21..28 are free: the first try is
    bitmap_no 21 (pfn 0x118). When it is busy cma_alloc clears it and resumes at
    21 + mask + 1 = 29 (pfn 0x120), then 37 (0x128), 45 (0x130) and 53 (0x138), the last
    start whose 8 bits fit in 64.
    """
    area = CmaArea(base_pfn=0x103, count=64)
    singles = [area.alloc(1, 0) for _ in range(20)]
    assert singles == list(range(0x103, 0x103 + 20))
    for pfn in singles[8:16]:
        area.release(pfn, 1)

    tried = []

    def busy_until_0x138(pfn, count):
        tried.append(pfn)
        return pfn != 0x138

    attempt = area.try_alloc(8, 3, busy_until_0x138)
    assert tried == [0x118, 0x120, 0x128, 0x130, 0x138]
    assert attempt.pfn == 0x138
    assert attempt.busy_pfns == (0x118, 0x120, 0x128, 0x130)
    assert attempt.busy_retries == 4
    assert area.used_pages == 12 + 8


def test_cma_alloc_gives_up_when_no_aligned_window_is_left():
    area = CmaArea(base_pfn=0x103, count=64)
    attempt = area.try_alloc(8, 3, lambda pfn, count: True)
    # Aligned starts 5, 13, ..., 53 are the only ones whose 8 bits fit in 64 bits.
    assert attempt.busy_pfns == tuple(0x103 + n for n in range(5, 54, 8))
    assert attempt.pfn is None
    assert area.used_pages == 0


def test_order_per_bit_rounds_requests_up_to_whole_bits():
    area = CmaArea(base_pfn=0x100, count=64, order_per_bit=1)
    pfn = area.alloc(3, 2)  # 3 pages take ALIGN(3, 2) >> 1 = 2 bits; mask (1 << 1) - 1
    assert pfn == 0x100
    assert area.used_pages == 4
    assert area.alloc(1, 0) == 0x104
    area.release(pfn, 3)
    assert area.used_pages == 2
    assert area.maxchunk_pages == 58  # bits 3..31 free: 29 bits of 2 pages


def test_area_must_be_whole_bitmap_bits():
    with pytest.raises(ValueError, match="multiples of 1 << order_per_bit"):
        CmaArea(base_pfn=0x101, count=64, order_per_bit=1)
    with pytest.raises(ValueError, match="multiples of 1 << order_per_bit"):
        CmaArea(base_pfn=0x100, count=63, order_per_bit=1)


def test_release_refuses_what_is_not_allocated():
    area = CmaArea(base_pfn=0x1000, count=512)
    pfn = area.alloc(256, 8)
    with pytest.raises(ValueError, match="not all allocated"):
        area.release(pfn + 256, 256)
    with pytest.raises(ValueError, match="outside the area"):
        area.release(0x900, 1)
    area.release(pfn, 256)
    with pytest.raises(ValueError, match="not all allocated"):
        area.release(pfn, 256)


def _reference_first_fit(bitmap, maxno, start, nr, mask, offset):
    """The lowest bitmap_no >= start with (bitmap_no + offset) aligned to mask + 1 whose nr
    bits are all free: what the kernel's search loop computes, written the naive way."""
    for index in range(start, maxno - nr + 1):
        if (index + offset) & mask == 0 and not bitmap >> index & ((1 << nr) - 1):
            return index
    return None


@st.composite
def areas(draw):
    order_per_bit = draw(st.integers(0, 2))
    count = draw(st.integers(1, 40)) << order_per_bit
    return CmaArea(draw(st.integers(0, 4096)) << order_per_bit, count, order_per_bit)


requests = st.lists(st.tuples(st.integers(1, 24), st.integers(0, 5), st.booleans()),
                    max_size=30)


@settings(max_examples=300, deadline=None)
@given(areas(), requests, st.data())
def test_allocator_invariants(area, ops, data):
    """Live chunks never overlap, each is aligned to its align order, used_pages counts them,
    every try follows the naive first-fit reference, and release restores the bitmap."""
    live = {}
    for count, align, release_one in ops:
        if release_one and live:
            pfn = data.draw(st.sampled_from(sorted(live)))
            before = area.bitmap
            area.release(pfn, live.pop(pfn))
            assert area.bitmap != before
            continue
        busy = set(data.draw(st.lists(st.integers(0, area.count), max_size=3)))
        bitmap_before = area.bitmap
        attempt = area.try_alloc(count, align, _busy_at_offsets(area.base_pfn, busy))
        tried = [*attempt.busy_pfns, *[attempt.pfn] * (attempt.pfn is not None)]
        assert tried == _expected_tries(area, bitmap_before, count, align, busy)
        pfn = attempt.pfn
        if pfn is None:
            assert area.bitmap == bitmap_before
            continue
        if align > area.order_per_bit:
            assert pfn % (1 << align) == 0
        assert (pfn - area.base_pfn) % (1 << area.order_per_bit) == 0
        rounded = -(-count >> area.order_per_bit) << area.order_per_bit
        for other, other_count in live.items():
            other_rounded = -(-other_count >> area.order_per_bit) << area.order_per_bit
            assert pfn + rounded <= other or other + other_rounded <= pfn
        live[pfn] = count
    assert area.used_pages == sum(-(-c >> area.order_per_bit) << area.order_per_bit
                                  for c in live.values())
    for pfn, count in live.items():
        area.release(pfn, count)
    assert area.bitmap == 0
    assert area.maxchunk_pages == area.bitmap_maxno << area.order_per_bit


def _busy_at_offsets(base_pfn, offsets):
    return lambda pfn, count: pfn - base_pfn in offsets


def _expected_tries(area, bitmap, count, align, busy_offsets):
    opb = area.order_per_bit
    nr = -(-count >> opb)
    mask = (1 << (align - opb)) - 1 if align > opb else 0
    offset = (area.base_pfn & ((1 << align) - 1)) >> opb
    tries, start = [], 0
    while nr <= area.bitmap_maxno:
        index = _reference_first_fit(bitmap, area.bitmap_maxno, start, nr, mask, offset)
        if index is None:
            break
        pfn = area.base_pfn + (index << opb)
        tries.append(pfn)
        if pfn - area.base_pfn not in busy_offsets:
            break
        start = index + mask + 1
    return tries


# ---- the seed's loop -----------------------------------------------------------------------

def test_idle_placement_fills_the_56_slots_exactly():
    placement = allocator.idle_placement(BASE_PA, 56 * MIB, MIB, 57)
    assert placement[:56] == [BASE_PA + slot * MIB for slot in range(56)]
    assert placement[56] is None


def test_idle_placement_respects_physical_alignment_of_an_unaligned_base():
    placement = allocator.idle_placement(BASE_PA + 0x80000, 4 * MIB, MIB, 4)
    assert placement == [BASE_PA + MIB, BASE_PA + 2 * MIB, BASE_PA + 3 * MIB, None]


def test_busy_slot_is_skipped_and_the_last_chunk_fails():
    """The seed's symptom: one pinned page in slot 10 pushes every later chunk one slot up,
    each later chunk retries slot 10 first, and chunk 55 finds no room."""
    area = CmaArea(BASE_PA >> 12, AREA_PAGES)
    pinned_pfn = area.base_pfn + 10 * SLOT_PAGES + 17
    retries = []

    def range_busy(pfn, count):
        busy = pfn <= pinned_pfn < pfn + count
        retries.extend([pfn] * busy)
        return busy

    outcome = allocator.run_loop(area, 56, SLOT_PAGES, 8, range_busy)
    assert outcome.failed and outcome.failed_indices == (55,)
    assert outcome.pfns[9] == area.base_pfn + 9 * SLOT_PAGES
    assert outcome.pfns[10] == area.base_pfn + 11 * SLOT_PAGES
    assert outcome.pfns[54] == area.base_pfn + 55 * SLOT_PAGES
    assert len(retries) == 46  # chunks 10..55 each met slot 10 once
    assert area.used_pages == 0  # every allocated chunk was freed after the loop


# ---- bh LRUs and the machine ---------------------------------------------------------------

def test_bh_lru_keeps_the_16_most_recent_and_evicts_the_oldest():
    lru = BhLru()
    evicted = [lru.install(bh) for bh in range(20)]
    assert evicted == [None] * 16 + [0, 1, 2, 3]
    assert lru.slots == tuple(range(19, 3, -1))


def test_bh_lru_duplicate_moves_to_the_front_without_eviction():
    lru = BhLru()
    for bh in range(16):
        lru.install(bh)
    assert lru.install(5) is None
    assert lru.slots == (5, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 4, 3, 2, 1, 0)
    assert lru.lookup(0) and lru.slots[0] == 0
    assert not lru.lookup(99)
    assert lru.invalidate() == [0, 5, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 4, 3, 2, 1]
    assert lru.slots == ()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=80))
def test_bh_lru_matches_a_most_recently_used_list(installs):
    lru = BhLru()
    for bh in installs:
        lru.install(bh)
    recent = list(dict.fromkeys(reversed(installs)))[:16]
    assert list(lru.slots) == recent


def test_a_page_stays_pinned_until_every_cpu_lets_its_bh_go():
    machine = BhLruModel(2, REINTRODUCED_2012)
    machine.add_page(0x500, PageState.BUFFERS_UNREFERENCED, (7,))
    machine.find_get_block(0, 7)
    machine.find_get_block(1, 7)
    for bh in range(100, 116):
        machine.find_get_block(0, bh)
    assert machine.page_state(0x500) is PageState.BUFFERS_LRU_PINNED
    for bh in range(100, 116):
        machine.find_get_block(1, bh)
    assert machine.page_state(0x500) is PageState.BUFFERS_UNREFERENCED


def test_defence_1_blocks_installs_only_while_the_lru_cache_is_disabled():
    machine = BhLruModel(1, Defences(True, False, False))
    machine.add_page(0x500, PageState.BUFFERS_UNREFERENCED, (7,))
    machine.lru_cache_disable()
    machine.find_get_block(0, 7)
    assert machine.page_state(0x500) is PageState.BUFFERS_UNREFERENCED
    machine.lru_cache_enable()
    machine.find_get_block(0, 7)
    assert machine.page_state(0x500) is PageState.BUFFERS_LRU_PINNED


def test_alloc_contig_range_moves_out_what_it_can_even_when_busy():
    machine = BhLruModel(1, REINTRODUCED_2012)
    machine.add_page(0x100, PageState.BUFFERS_UNREFERENCED, (1,))
    machine.add_page(0x101, PageState.BUFFERS_UNREFERENCED, (2,))
    machine.add_page(0x102, PageState.MOVABLE_NO_BUFFERS)
    machine.find_get_block(0, 2)
    assert machine.alloc_contig_range(0x100, 256)
    assert machine.pfns_in(0x100, 256) == [0x101]
    machine.invalidate_bh_lrus()
    assert not machine.alloc_contig_range(0x100, 256)
    assert machine.pfns_in(0, 1 << 20) == []
    with pytest.raises(ValueError, match="not tracked"):
        machine.remove_page(0x101)


# ---- the migration rule --------------------------------------------------------------------

EXPECTED_CAN_FAIL = {
    "stock": False,
    "remove-1": True,
    "remove-2": False,
    "remove-3": False,
    "remove-1-2": True,
    "remove-1-3": True,
    "remove-2-3": True,
    "reintroduce-2012": True,
}


@pytest.mark.parametrize("series", ALL_VARIANTS)
def test_can_fail_from_lru_pins_per_variant(series):
    assert bh_lru.can_fail_from_lru_pins(ALL_VARIANTS[series]) is EXPECTED_CAN_FAIL[series]


def test_variants_keeping_norefs_fail_only_through_the_recheck_race():
    for series in ("remove-1", "remove-1-2"):
        assert bh_lru.lru_failure_reasons(ALL_VARIANTS[series]) == (bh_lru.RECHECK_RACE,)
    for series in ("remove-1-3", "remove-2-3", "reintroduce-2012"):
        assert bh_lru.lru_failure_reasons(ALL_VARIANTS[series]) == (bh_lru.LRU_PIN,)


def test_the_three_moments_on_single_defences():
    unref = PageState.BUFFERS_UNREFERENCED
    only_drain = Defences(False, True, False)
    assert bh_lru.migration_outcome(unref, only_drain, pinned_before=True).result == "ok"
    assert bh_lru.migration_outcome(unref, only_drain, pinned_during=True).busy
    only_block = Defences(True, False, False)
    assert bh_lru.migration_outcome(unref, only_block, pinned_before=True).busy
    assert bh_lru.migration_outcome(unref, only_block, pinned_during=True).result == "ok"
    only_norefs = Defences(False, False, True)
    outcome = bh_lru.migration_outcome(PageState.BUFFERS_LRU_PINNED, only_norefs)
    assert outcome == ("ok", bh_lru.NOREFS_INVALIDATED)
    raced = bh_lru.migration_outcome(unref, only_norefs, pinned_during=True,
                                    reinstalled_after_invalidate=True)
    assert raced == ("busy", bh_lru.RECHECK_RACE)


def test_pages_without_lru_relevance():
    for defences in (STOCK, REINTRODUCED_2012):
        assert bh_lru.migration_outcome(PageState.MOVABLE_NO_BUFFERS, defences).result == "ok"
        assert bh_lru.migration_outcome(PageState.UNMOVABLE, defences).busy
        other = bh_lru.migration_outcome(PageState.BUFFERS_OTHER_REF, defences, pinned_before=True)
        assert other == ("busy", bh_lru.OTHER_REFERENCE) and not other.lru_caused
    with pytest.raises(ValueError, match="no buffers"):
        bh_lru.migration_outcome(PageState.MOVABLE_NO_BUFFERS, STOCK, pinned_before=True)


def _stronger(defences):
    """Each variant that adds one defence to `defences`."""
    for name in ("lru_disable_blocks_install", "drain_bh_lrus", "blkdev_migrate_norefs"):
        if not getattr(defences, name):
            yield name, replace(defences, **{name: True})


def test_adding_a_defence_never_adds_a_failing_scenario():
    """Exact, scenario by scenario: migration_outcome is monotone in the defences."""
    states = (PageState.BUFFERS_UNREFERENCED, PageState.BUFFERS_OTHER_REF)
    for defences in ALL_VARIANTS.values():
        for _, stronger in _stronger(defences):
            assert bh_lru.can_fail_from_lru_pins(stronger) <= bh_lru.can_fail_from_lru_pins(defences)
            for state, *moments in itertools.product(states, *[(False, True)] * 3):
                if bh_lru.migration_outcome(state, stronger, *moments).busy:
                    assert bh_lru.migration_outcome(state, defences, *moments).busy


# ---- simulation ----------------------------------------------------------------------------

workloads = st.fixed_dictionaries({
    "cpus": st.integers(1, 3),
    "metadata_pages_in_area": st.integers(0, 10),
    "metadata_pool_pages": st.integers(10, 80),
    "lru_installs_per_cpu_per_loop": st.integers(0, 80),
    "share_installs_during_alloc": st.floats(0, 1),
    "recheck_race_probability": st.floats(0, 1),
    "seed": st.integers(0, 2**32),
})


@settings(max_examples=40, deadline=None)
@given(workloads)
def test_variants_that_cannot_fail_from_pins_never_do_in_simulation(workload):
    for series, defences in ALL_VARIANTS.items():
        if not bh_lru.can_fail_from_lru_pins(defences):
            result = simulation.simulate(defences, 3, **workload)
            assert (result.failed_chunks, result.lru_caused_chunks) == (0, 0), series


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 3))
def test_other_references_fail_every_variant_but_are_not_lru_caused(seed, other_ref_pages):
    for defences in (STOCK, REINTRODUCED_2012):
        result = simulation.simulate(defences, 2, metadata_pages_in_area=0,
                                other_ref_pages=other_ref_pages, seed=seed)
        assert result.failed_loops == 2
        assert result.lru_caused_chunks == 0


def test_reintroduce_2012_fails_from_pins_in_the_area():
    result = simulation.simulate(REINTRODUCED_2012, 200, seed=3)
    assert 0 < result.failed_loops < 200
    assert result.lru_caused_chunks == result.failed_chunks > 0
    assert result.busy_retries > result.failed_chunks
    no_pins_in_area = simulation.simulate(REINTRODUCED_2012, 200, metadata_pages_in_area=0, seed=3)
    assert no_pins_in_area.failed_loops == 0


def test_recheck_race_needs_defence_1_off():
    only_norefs = ALL_VARIANTS["remove-1-2"]
    assert simulation.simulate(only_norefs, 100, recheck_race_probability=1.0, seed=1).lru_caused_chunks
    assert not simulation.simulate(only_norefs, 100, recheck_race_probability=0.0, seed=1).failed_chunks
    assert not simulation.simulate(ALL_VARIANTS["remove-2"], 100, recheck_race_probability=1.0,
                              seed=1).failed_chunks


def test_simulation_is_deterministic_for_a_seed():
    first = simulation.simulate(REINTRODUCED_2012, 50, seed=11)
    assert simulation.simulate(REINTRODUCED_2012, 50, seed=11) == first
    assert simulation.simulate(REINTRODUCED_2012, 50, seed=12) != first


SIM_WORKLOADS = [
    {},
    {"metadata_pages_in_area": 10, "lru_installs_per_cpu_per_loop": 80,
     "recheck_race_probability": 0.3},
    {"cpus": 3, "metadata_pool_pages": 20, "share_installs_during_alloc": 0.9},
]


@pytest.mark.parametrize("workload", SIM_WORKLOADS)
def test_adding_defence_2_or_3_never_adds_failures_for_the_same_seed(workload):
    """Fixed seeds rather than hypothesis: per loop this is not a theorem (a drained pin lets
    a chunk take a slot whose page a later lookup pins, where the weaker kernel had moved that
    page out earlier), so the claim is checked on whole runs."""
    for seed in range(3):
        results = {defences: simulation.simulate(defences, 60, seed=seed, **workload)
                   for defences in ALL_VARIANTS.values()}
        for defences, weaker in results.items():
            for name, stronger_defences in _stronger(defences):
                if name == "lru_disable_blocks_install":
                    continue
                stronger = results[stronger_defences]
                assert stronger.failed_loops <= weaker.failed_loops, (defences, name, seed)
                assert stronger.lru_caused_chunks <= weaker.lru_caused_chunks


def test_defence_1_alone_adds_failures_by_freezing_the_lrus():
    """bh_lru_install()'s early return also stops the LRU from evicting old pins: without
    defences 2 and 3, an old pin survives every allocation window. With no lookups inside the
    windows, defence 1 has nothing to block and both kernels behave the same."""
    only_block = ALL_VARIANTS["remove-2-3"]
    blocked = simulation.simulate(only_block, 300, seed=2)
    unblocked = simulation.simulate(REINTRODUCED_2012, 300, seed=2)
    assert blocked.failed_loops > unblocked.failed_loops
    quiet_windows = {"share_installs_during_alloc": 0.0, "seed": 2}
    assert (simulation.simulate(only_block, 100, **quiet_windows).failed_loops
            == simulation.simulate(REINTRODUCED_2012, 100, **quiet_windows).failed_loops)


# ---- cross-checks --------------------------------------------------------------------------

def test_check_idle_placement_names_the_misplaced_chunk():
    good = [BASE_PA + slot * MIB for slot in range(56)]
    assert checks.check_idle_placement(good, BASE_PA, 56 * MIB, MIB).ok is True
    bad = list(good)
    bad[3], bad[4] = bad[4], None
    result = checks.check_idle_placement(bad, BASE_PA, 56 * MIB, MIB)
    assert result.ok is False
    assert "chunk 3" in result.detail and "chunk 4: measured NULL" in result.detail
    assert result.as_dict()["status"] == "fail"


def test_check_accounting():
    assert checks.check_accounting(3, 768, 256, 3).ok is True
    assert checks.check_accounting(3, 512, 256, None).ok is False
    assert checks.check_accounting(3, None, 256, 4).ok is False
    skipped = checks.check_accounting(3, None, 256, None)
    assert skipped.ok is None and skipped.as_dict()["status"] == "skipped"


def test_check_variant_rule_flags_lru_failures_that_cannot_happen():
    finding = checks.check_variant_rule(STOCK, 2)
    assert finding.ok is False and "finding" in finding.detail
    assert checks.check_variant_rule(STOCK, 0).ok is True
    assert checks.check_variant_rule(REINTRODUCED_2012, 40).ok is True
    assert "race" in checks.check_variant_rule(ALL_VARIANTS["remove-1"], 1).detail


def _slot(n, offset=0):
    """pfn of page `offset` in 1 MiB slot n of the test area."""
    return (BASE_PA >> 12) + n * SLOT_PAGES + offset


AREA_KWARGS = {"base_pfn": BASE_PA >> 12, "area_pages": AREA_PAGES, "chunk_pages": SLOT_PAGES}


def _idle_calls(slots):
    return [replay.MeasuredCall(chunk, True, _slot(slot), None) for chunk, slot in enumerate(slots)]


def test_check_placement_idle_and_inferred_busy_ranges():
    idle = _idle_calls(range(56))
    # Chunk 10 found slot 10 busy and took 11; the page left, so chunk 55 took slot 10.
    shifted = _idle_calls([*range(10), *range(11, 56), 10])
    result = checks.check_placement({0: idle, 1: shifted}, **AREA_KWARGS)
    assert result.ok is True
    assert result.data["idle_loops"] == 1 and result.data["busy_loops_inferred"] == [1]
    assert "inferred from the placement" in result.detail


def test_check_placement_refuses_a_placement_first_fit_cannot_reach():
    # Chunk 1 a quarter slot off: not 1 MiB aligned, so no busy range explains it.
    odd = _idle_calls(range(56))
    odd[1] = odd[1]._replace(pfn=_slot(1, 64))
    # Chunk 3 where chunk 2 already sits.
    taken = _idle_calls([0, 1, 2, 2])
    result = checks.check_placement({5: odd, 6: taken}, **AREA_KWARGS)
    assert result.ok is False
    assert result.data["mismatches"] == [
        "loop 5 chunk 1: measured 0x48140000, not a free aligned range the search can reach "
        "(the model's first choice: 0x48100000)",
        "loop 6 chunk 3: measured 0x48200000, not a free aligned range the search can reach "
        "(the model's first choice: 0x48300000)"]


def test_check_placement_replays_traced_busy_ranges_exactly():
    # Chunks 10 to 54 each met a busy page in slot 10 first (a call retries from the start of
    # the area); chunk 55 found slot 10 free again.
    calls = [c._replace(busy=(_slot(10, 7),) if 10 <= c.chunk < 55 else ())
             for c in _idle_calls([*range(10), *range(11, 56), 10])]
    assert checks.check_placement({0: calls}, **AREA_KWARGS).data["busy_loops_traced"] == [0]
    # The trace says chunk 10 met a busy page in slot 12: the model would have taken slot 10.
    wrong = list(calls)
    wrong[10] = wrong[10]._replace(busy=(_slot(12),))
    result = checks.check_placement({0: wrong}, **AREA_KWARGS)
    assert result.ok is False
    assert "chunk 10: the trace saw busy pages at 0x48c00000, the model met busy ranges at none" in result.detail


def test_attributed_replay_holds_pages_until_their_last_sighting():
    # A page in slot 10 that chunk 55's first try and plain retry found busy, and nothing after:
    # the flush-and-retry gets slot 10 (L), and every earlier chunk stepped over it.
    outcome, pfns = replay.replay_attributed_loop(56, {_slot(10, 3): (55, 1)}, **AREA_KWARGS)
    assert outcome == "." * 55 + "L"
    assert pfns[10] == _slot(11) and pfns[55] == _slot(10)
    # Seen by the first try only: transient, the plain retry gets it (T).
    assert replay.replay_attributed_loop(56, {_slot(10, 3): (55, 0)}, **AREA_KWARGS)[0] == "." * 55 + "T"
    # Seen by all three calls: persistent (P), no address.
    outcome, pfns = replay.replay_attributed_loop(56, {_slot(10, 3): (55, 2)}, **AREA_KWARGS)
    assert outcome[-1] == "P" and pfns[-1] is None
    assert replay.replay_attributed_loop(56, {_slot(10, 3): (55, 2)}, attribution=False,
                                        **AREA_KWARGS)[0] == "." * 55 + "F"


def test_check_busy_pages_compares_failed_chunks_one_by_one():
    lru = replay.FailedLoop("." * 55 + "L", {_slot(10, 3): (55, 1)})
    # Chunk 54 failed (T) on pages in slots 52 and 53, seen again by its retry in slot 52 only;
    # chunk 55 succeeded: the pages were gone. Held for the whole loop, 55 would fail too.
    transient = replay.FailedLoop("." * 54 + "T.", {_slot(52): (54, 1), _slot(53, 9): (54, 0)})
    result = checks.check_busy_pages({4: lru, 12: transient}, **AREA_KWARGS)
    assert result.ok is True and result.data["agreement"] == 1.0
    assert result.data["causes_agreeing"] == 2 and result.data["failed_chunks"] == 2
    assert result.data["whole_loop_agreement"] == 2 / 3
    # A busy page in slot 10 cannot fail chunk 20 (the record says it did): chunk 20 takes
    # slot 21, and the page is gone before chunk 55 comes back to slot 10. A disagreement.
    wrong = replay.FailedLoop("." * 20 + "P" + "." * 35, {_slot(10, 3): (20, 2)})
    result = checks.check_busy_pages({4: lru, 9: wrong}, **AREA_KWARGS)
    assert result.ok is False and result.data["agreement"] == 1 / 2
    assert result.data["loops"][9]["agree"] is False
    assert "9 (measured chunks 20P, model no failed chunk)" in result.detail
    assert checks.check_busy_pages({}, **AREA_KWARGS).ok is None
