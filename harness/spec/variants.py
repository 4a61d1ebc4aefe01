"""Kernel variants: the one definition of each, read by the scenario loader, the kernel build (its patch
series folder) and the reference model (which of the three 6.1 defences it keeps)."""

from __future__ import annotations

from dataclasses import dataclass


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
