"""A kernel's config base (`KernelSpec.base`): what its fragments are applied to, and its part of the
cache key. allnoconfig (the default) has no part, so every key made before bases existed stays; a
defconfig is named by the source's arch/arm/configs/ and checked there; a .config file enters the key
by its text."""

from __future__ import annotations

import difflib
from pathlib import Path

from harness.build import git_tree
from harness.core.errors import InputError
from harness.spec.config import ALLNOCONFIG, KernelSpec, base_kind

DEFCONFIGS = "arch/arm/configs"


def key_part(spec: KernelSpec, src: Path) -> dict:
    """A defconfig's name (its text is the source's, which the source's identity covers already), or a
    .config's full text (not its path: the same file anywhere is the same kernel)."""
    kind = base_kind(spec.base)
    if kind == "defconfig":
        if known := source_defconfigs(spec, src):
            check_defconfig(spec.base, known, spec.source)
        return {"defconfig": spec.base}
    if kind == "file":
        return {"config": config_path(spec.base).read_text(errors="replace")}
    raise InputError(f"kernel config base {spec.base!r} is none of: {ALLNOCONFIG}, a NAME_defconfig of the "
                     f"source's {DEFCONFIGS}/, a path to a .config file")


def config_path(base: str) -> Path:
    path = Path(base).expanduser()
    if not path.is_file():
        raise InputError(f"kernel config base {path} does not exist; name a .config file (a board file's "
                         f"`kernel.config`, a scenario's `kernel.base`)")
    return path


def source_defconfigs(spec: KernelSpec, src: Path) -> list[str]:
    """The defconfigs of a directory or git source, read before anything is built; [] for a tarball,
    since listing one costs a full decompression: its defconfig is checked in the unpacked tree instead."""
    if git_tree.is_git(spec.source):
        return sorted(n for n in git_tree.list_dir(git_tree.parse(spec.source), DEFCONFIGS) if n.endswith("_defconfig"))
    return defconfigs_in(src) if src.is_dir() else []


def defconfigs_in(tree: Path) -> list[str]:
    return sorted(p.name for p in (tree / DEFCONFIGS).glob("*_defconfig"))


def check_defconfig(name: str, known: list[str], source: str) -> None:
    """An InputError naming the defconfigs closest to name when it is not one of known. Pure."""
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6) or known[:5]
    raise InputError(f"kernel config base {name!r}: kernel source {source} has no {DEFCONFIGS}/{name}; "
                     f"close names there: {', '.join(close) or '(none: it has no defconfigs)'}")
