"""Before anything is built: the kernel source of each kernel a command will build is a kernel source, and
its patches (the series, then the developer's) apply to it. Checked on the files the patches touch only, so
it takes seconds (a tarball's files are read in one pass), not the minutes a failed build costs."""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from harness.build import cache, git_tree, kernel
from harness.core import proc
from harness.core.errors import InputError
from harness.spec.config import KernelSpec
from harness.spec.variants import series_name

# A file header pair of a unified diff (the --- line directly followed by its +++ line).
HEADER = re.compile(r"^--- (\S+).*\n\+\+\+ (\S+)", re.M)
VERSION_LINE = re.compile(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)\s*=[ \t]*(\S*)", re.M)
TREE_MARKERS = ("Kconfig", "arch/arm/Kconfig", "mm/Makefile")


@dataclass(frozen=True)
class PatchText:
    label: str      # how an error names it: the file (and mail) and its subject
    text: str


def patch_texts(spec: KernelSpec) -> list[PatchText]:
    """Every patch the build of spec applies, in order: the series, then the developer's."""
    out = [PatchText(str(p), p.read_text()) for p in kernel.series_patches(spec.patches, spec.source)] \
        if spec.patches else []
    for p in kernel.extra_patches(spec):
        # The file's own name (a developer's patch is read from its content-addressed copy in the cache).
        out.append(PatchText(f"{Path(p.source).name}{f' (mail {p.index})' if p.index > 1 else ''} {p.subject!r}", p.text))
    return out


def touched(text: str) -> set[str]:
    """The files a patch reads or writes, as `patch -p1` names them."""
    out = set()
    for m in HEADER.finditer(text):
        out |= {_strip1(name) for name in m.groups() if name != "/dev/null"}
    return out


def _strip1(name: str) -> str:
    return name.split("/", 1)[1] if "/" in name else name


def version_of(makefile: str) -> str | None:
    """The kernel version a top-level Makefile sets (6.1.192), or None when it sets none."""
    v = dict(VERSION_LINE.findall(makefile))
    if not (v.get("VERSION") and v.get("PATCHLEVEL")):
        return None
    return ".".join(x for x in (v["VERSION"], v["PATCHLEVEL"], v.get("SUBLEVEL")) if x) + v.get("EXTRAVERSION", "")


def check_tree(path: Path, option: str = "--tree") -> str:
    """The version of a kernel source tree, or an error saying why path is not one."""
    path = path.expanduser()
    if not path.is_dir():
        raise InputError(f"{option} {path}: no such folder; pass the top folder of a Linux kernel source tree")
    makefile = path / "Makefile"
    version = version_of(makefile.read_text(errors="replace")) if makefile.is_file() else None
    missing = [m for m in TREE_MARKERS if not (path / m).is_file()]
    if version is None or missing:
        what = ([] if version else ["a top-level Makefile that sets VERSION and PATCHLEVEL"]) + missing
        raise InputError(f"{option} {path} is not a Linux kernel source tree; it lacks: {', '.join(what)}; "
                         f"pass the top folder of a kernel tree (where `make ARCH=arm` runs)")
    return version


def check_commit(gs: git_tree.GitSource, option: str) -> str:
    """The version of the kernel at a commit, or an error saying why the commit holds no kernel source."""
    makefile = git_tree.read_file(gs, "Makefile")
    version = version_of(makefile.decode(errors="replace")) if makefile is not None else None
    missing = [m for m in TREE_MARKERS if not git_tree.has_path(gs, m)]
    if version is None or missing:
        what = ([] if version else ["a top-level Makefile that sets VERSION and PATCHLEVEL"]) + missing
        raise InputError(f"{option}: commit {gs.commit} of {gs.repo} holds no Linux kernel source tree; it lacks: "
                         f"{', '.join(what)}")
    return version


def _fetch(spec: KernelSpec, files: set[str], dest: Path) -> None:
    """Copy the named files (those that exist) of spec's source into dest."""
    if git_tree.is_git(spec.source):
        gs = git_tree.parse(spec.source)
        for name in files:
            if (data := git_tree.read_file(gs, name)) is not None:
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                (dest / name).write_bytes(data)
        return
    src = kernel.source_path(spec)
    if src.is_dir():
        for name in files:
            if (src / name).is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / name, dest / name)
        return
    with tarfile.open(src, "r|*") as tf:        # the tarball's top folder, from its first member
        top = next(iter(tf)).name.split("/")[0]
    try:
        proc.run([*kernel.tar_extract(src), "-C", dest, "--strip-components=1", *(f"{top}/{n}" for n in sorted(files))],
                 tail_lines=len(files) + 10)
    except proc.CommandError as e:      # exit 2 for members that are not there: the patch check names them
        if e.returncode != 2 or any("Not found in archive" not in l and "Exiting with failure" not in l for l in e.tail):
            raise


def _cached(spec: KernelSpec) -> bool:
    return cache.Store("kernel").has(cache.digest(kernel.inputs(spec)))


def check(specs: Sequence[KernelSpec], progress: Callable[[str], None] = lambda s: None) -> None:
    """Raise InputError, before any build, when a patch of one of specs does not apply to its source.
    A kernel already in the cache was built from these inputs: it is not checked again."""
    todo = [s for s in dict.fromkeys(specs) if (s.patches or s.extra_patches) and not _cached(s)]
    by_source: dict[str, list[KernelSpec]] = {}
    for spec in todo:
        by_source.setdefault(spec.source, []).append(spec)
    for source, group in by_source.items():
        texts = {spec: patch_texts(spec) for spec in group}
        files = {"Makefile"}.union(*(touched(t.text) for ts in texts.values() for t in ts))
        count = sum(map(len, texts.values()))
        progress(f"checking {count} patch{'es' if count > 1 else ''} of {len(group)} kernel{'s' if len(group) > 1 else ''} "
                 f"against {source} ({len(files) - 1} files) before building")
        with tempfile.TemporaryDirectory(prefix="cma-preflight-") as tmp:
            base = Path(tmp) / "source"
            base.mkdir()
            _fetch(group[0], files, base)
            version = version_of((base / "Makefile").read_text(errors="replace")) if (base / "Makefile").is_file() \
                else None
            for i, spec in enumerate(group):
                work = Path(tmp) / f"kernel-{i}"
                shutil.copytree(base, work)
                _apply_all(spec, texts[spec], work, version)


def _apply_all(spec: KernelSpec, texts: list[PatchText], work: Path, version: str | None) -> None:
    n_series = len(kernel.series_patches(spec.patches, spec.source)) if spec.patches else 0
    for n, t in enumerate(texts):
        patch_file = work.parent / f"{work.name}.patch"
        patch_file.write_text(t.text)
        try:
            proc.run([*kernel.PATCH_ARGV, "-i", patch_file], cwd=work, tail_lines=100_000)
        except proc.CommandError as e:
            detail = kernel.patch_failures(t.text, e.tail) or e.tail[-5:]
            after = series_name(spec.patches) if n >= n_series and n_series else None
            raise InputError(failure_text(t.label, detail, spec.source, version,
                                          n - n_series if n >= n_series else n, after)) from None


def failure_text(label: str, detail: list[str], source: str, version: str | None, earlier: int,
                 series: str | None) -> str:
    """The error for a patch that does not apply: each file and hunk, the tree's version, what to do. Pure."""
    what = f"Linux {version}" if version else "a tree whose Makefile sets no version"
    on = f"{source} ({what})" + (f", after the series {series}" if series else "") + \
        (f" and {earlier} patch{'es' if earlier > 1 else ''} before it" if earlier else "")
    lines = [f"patch {label} does not apply to {on}:", *("  " + d for d in detail)]
    if any("no such file" in d for d in detail):
        lines.append(f"A file it changes is not in this tree: is the patch for another kernel version? This tree is "
                     f"{what}; rebase the patch onto it, or pick a source of the patch's version (--tree, "
                     f"`kernel.source`).")
    elif any("already applied" in d for d in detail):
        lines.append("The baseline already has this change: pick a baseline without it (--baseline), or drop the patch.")
    else:
        lines.append(f"Rebase the patch onto {what} (the baseline's source and series), or pick another baseline.")
    return "\n".join(lines)
