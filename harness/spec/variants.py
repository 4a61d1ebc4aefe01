"""Kernel variants: the one definition of each, read by the scenario loader, the kernel build (its patch
series folder) and the reference model (which of the three 6.1 defences it keeps)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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


@dataclass(frozen=True)
class KernelVariant:
    """One embedded kernel variant: its name, which is also its patch series folder under
    kernel-configs/patches/ (none for stock), and the defences that series switches off."""

    name: str
    removed: tuple[int, ...]

    @property
    def defences(self) -> Defences:
        return _without(*self.removed)

    @property
    def series(self) -> str | None:
        return self.name if self.removed else None


EMBEDDED: dict[str, KernelVariant] = {v.name: v for v in (
    KernelVariant("stock", ()),
    KernelVariant("remove-1", (1,)),
    KernelVariant("remove-2", (2,)),
    KernelVariant("remove-3", (3,)),
    KernelVariant("remove-1-2", (1, 2)),
    KernelVariant("remove-1-3", (1, 3)),
    KernelVariant("remove-2-3", (2, 3)),
    KernelVariant("reintroduce-2012", (1, 2, 3)),
)}

# The model's view: each variant's defences, by name.
ALL_VARIANTS: dict[str, Defences] = {name: v.defences for name, v in EMBEDDED.items()}


def series_name(patches: str | None) -> str:
    """The patch series a kernel spec's `patches` names, by folder name ("stock" when unpatched): a
    series folder name, or a path to a quilt `series` file (its folder's name)."""
    if patches is None:
        return "stock"
    path = Path(patches)
    return path.parent.name if path.name == "series" else path.name


def variant_for_series(name: str) -> Defences:
    """The defences of the kernel built with patch series `name`."""
    try:
        return ALL_VARIANTS[name]
    except KeyError:
        valid = ", ".join(ALL_VARIANTS)
        raise ValueError(f"unknown patch series {name!r}; valid names: {valid}") from None
