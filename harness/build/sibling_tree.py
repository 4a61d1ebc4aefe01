"""A variant's build tree made from a built sibling's: same source, base, fragments and toolchain, other patches.

Almost all of a kernel build is the objects every variant of a scenario shares (the demo's two kernels differ
in three files). So a variant whose only difference from a cached kernel is its patches starts from that
kernel's tree: copied with its timestamps, the sibling's patches reverted (their exact texts are kept with
it, in order), then this variant's patches applied, configured and made as usual. make rebuilds what the
patches touched and what depends on it, by Kbuild's own dependency tracking, as a developer's incremental
build does. The cache key does not change: the inputs are the same, and so is the product, byte for byte
(the banner's `#N` counts a tree's links in its .version file, which the copy leaves out: its first link
is #1, as a fresh tree's).

Each entry records its tree key (everything but the patches) and the patches it applied, so any built
variant can be the next one's sibling; an entry built before this module existed simply is none."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from harness.build import cache
from harness.core import proc

TREE_KEY = "tree-key"            # entry/tree-key: cache.digest of the inputs without the patches
APPLIED = "applied"              # entry/applied/NNNN-<name>: every patch applied to the tree, in order
# The reverse of kernel.PATCH_ARGV: the same exact application, backwards.
REVERT_ARGV = ("patch", "-R", "-p1", "--batch", "--fuzz=0")
PATCH_INPUTS = ("patches", "extra_patches")


def tree_key(meta: dict) -> str:
    """What two kernels must share for one's tree to be the other's start: every input but the patches."""
    return cache.digest({k: v for k, v in meta.items() if k not in PATCH_INPUTS})


def find(store: cache.Store, key: str) -> Path | None:
    """A complete entry of the store built from the same tree key (the newest first), or None."""
    entries = [e for e in store.dir.iterdir() if e.is_dir() and not e.name.endswith(".partial")
               and store.has(e.name) and _read(e / TREE_KEY) == key and (e / "tree").is_dir()]
    return max(entries, key=lambda e: (e / ".complete").stat().st_mtime, default=None)


def _read(path: Path) -> str | None:
    return path.read_text().strip() if path.is_file() else None


def record(work: Path, key: str) -> None:
    """The entry being built is a sibling for later builds: its tree key."""
    (work / TREE_KEY).write_text(key + "\n")


def keep_applied(work: Path, patch: Path) -> None:
    """A patch the tree now has, kept in order (the next variant reverts them, last first)."""
    folder = work / APPLIED
    folder.mkdir(exist_ok=True)
    n = len(list(folder.iterdir())) + 1
    (folder / f"{n:04d}-{patch.name}").write_text(patch.read_text())


def copy_tree(sibling: Path, tree: Path, log_path: Path, progress, pristine_until: float | None = None) -> bool:
    """The sibling's tree into `tree`, its patches reverted. False, with `tree` removed, when a patch does not
    revert (a tree that is not what its record says): the caller then unpacks the source instead.

    pristine_until: the source tarball's mtime. Every file the tarball holds is at or before it, everything
    the build made or a patch wrote is after it; the first are hard-linked (nothing writes a source file in
    place, and GNU patch replaces the files it patches, which breaks the link), the rest copied: 3 % of
    the files and 7 % of the bytes of the demo's tree. None: everything is copied."""
    progress(f"tree from the built kernel {sibling.name} (same source and config; its patches reverted)")
    src = sibling / "tree"
    built_at = (sibling / TREE_KEY).stat().st_mtime            # find() took only entries that have it
    if pristine_until is None or built_at <= pristine_until:             # a clock before the tarball's date
        # -a keeps every timestamp: make then sees only what the patches touch as newer than its objects.
        proc.run(["cp", "-a", str(src), str(tree)], log_path=log_path)
    else:
        _link_sources(src, tree, pristine_until)
    (tree / ".version").unlink(missing_ok=True)
    for patch in sorted((sibling / APPLIED).glob("*"), reverse=True) if (sibling / APPLIED).is_dir() else []:
        try:
            proc.run([*REVERT_ARGV, "-i", str(patch)], cwd=tree, log_path=log_path, tail_lines=100_000)
        except proc.CommandError:
            progress(f"  {patch.name} does not revert on {sibling.name}'s tree: unpacking the source instead")
            shutil.rmtree(tree)
            return False
    return True


def _link_sources(src: Path, dst: Path, pristine_until: float) -> None:
    """A copy of src at dst that shares the files of the source tarball (hard links) and copies the others,
    timestamps kept."""
    for root, dirs, files in os.walk(src):
        out = dst / os.path.relpath(root, src)
        out.mkdir(parents=True, exist_ok=True)
        for name in [d for d in dirs if os.path.islink(os.path.join(root, d))] + files:
            s, d = os.path.join(root, name), out / name
            st = os.lstat(s)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(s), d)
            elif st.st_mtime <= pristine_until:
                os.link(s, d)
            else:
                shutil.copy2(s, d)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
