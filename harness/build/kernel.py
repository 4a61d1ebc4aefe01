"""Kernel build: source + config fragments + patch series -> zImage and a build tree, cached by the hash of every input."""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.build import cache, git_tree, kernel_base, sibling_tree
from harness.core import proc
from harness.spec import patch_files
from harness.spec.config import ALLNOCONFIG, PROJECT_ROOT, KernelSpec, base_kind
from harness.core.errors import InfraError, InputError
from harness.build.toolchain import (CROSS_COMPILE, DEBIAN_KERNEL_612_TARBALL, DEBIAN_KERNEL_TARBALL,
                                     DEBIAN_SOURCES, require)

log = logging.getLogger(__name__)
CONFIGS_DIR = PROJECT_ROOT / "kernel-configs"
PATCHES_DIR = CONFIGS_DIR / "patches"
# Where an embedded source's series live: the same variant names (remove-1, ..., reintroduce-2012), each
# folder ported to that kernel. A source given as a path uses the 6.1 folder.
SOURCE_PATCHES_DIRS = {"debian": PATCHES_DIR, "debian-6.12": PATCHES_DIR / "debian-6.12"}
MAKE_VARS = ("ARCH=arm", f"CROSS_COMPILE={CROSS_COMPILE}")
# How every patch is applied (the build and the check before it): exactly, never twice.
PATCH_ARGV = ("patch", "-p1", "--forward", "--batch", "--fuzz=0")
# Beside a built kernel's tree in the cache: how long its build took, seconds (`cma-harness bench` reads it).
BUILD_SECONDS = "build-seconds"


@dataclass(frozen=True)
class KernelBuild:
    key: str
    tree: Path            # in-tree build: sources + objects; out-of-tree modules build against it

    @property
    def zimage(self) -> Path:
        return self.tree / "arch/arm/boot/zImage"

    @property
    def config(self) -> Path:
        return self.tree / ".config"

    @property
    def gen_init_cpio(self) -> Path:
        return self.tree / "usr/gen_init_cpio"

    @property
    def log(self) -> Path:
        return self.tree.parent / "build.log"

    @property
    def release(self) -> str:
        return (self.tree / "include/config/kernel.release").read_text().strip()


# ---- inputs -------------------------------------------------------------------------------------

def debian_tarball(source: str) -> Path | None:
    """The tarball an embedded `kernel.source` name stands for; None when the source is a path."""
    return {"debian": DEBIAN_KERNEL_TARBALL, "debian-6.12": DEBIAN_KERNEL_612_TARBALL}.get(source)


def source_path(spec: KernelSpec) -> Path:
    if git_tree.is_git(spec.source):      # a commit of a git tree: its repository
        gs = git_tree.parse(spec.source)
        if not git_tree.exists(gs):
            raise InputError(f"kernel source {spec.source}: no commit {gs.commit} in the git repository {gs.repo}")
        return gs.repo
    tarball = debian_tarball(spec.source)
    path = tarball or Path(spec.source).expanduser()
    if not path.exists():
        hint = f"install it with: apt-get install -y {DEBIAN_SOURCES[spec.source]}" if tarball else \
            f"set `kernel.source` to an existing kernel directory or .tar.* file, or to one of: {', '.join(DEBIAN_SOURCES)}"
        raise InputError(f"kernel source {path} does not exist; {hint}")
    if path.is_dir() and not (path / "Makefile").exists():
        raise InputError(f"kernel source {path} is a directory without a top-level Makefile: not a kernel tree")
    return path


def source_identity(path: Path) -> str:
    """Content identity of a tarball (sha256), or of a directory (paths, sizes and mtimes of every file)."""
    if path.is_file():
        st = path.stat()
        return "tar:" + _tarball_sha256(str(path), st.st_size, st.st_mtime_ns)
    entries = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            st = os.lstat(os.path.join(root, name))
            entries.append((os.path.relpath(os.path.join(root, name), path), st.st_size, st.st_mtime_ns))
    return "dir:" + cache.digest({"files": sorted(entries)})


@functools.lru_cache(maxsize=16)
def _tarball_sha256(path: str, size: int, mtime_ns: int) -> str:
    """A tarball is hashed once per process (the check before the build, the build, the run's record)."""
    return cache.file_sha256(Path(path))


def fragment_path(name: str) -> Path:
    path = Path(name) if name.endswith(".config") else CONFIGS_DIR / f"{name}.config"
    if not path.exists():
        known = sorted(p.stem for p in CONFIGS_DIR.glob("*.config"))
        raise InputError(f"kernel config fragment {name!r} not found ({path}); known fragments: {', '.join(known)}")
    return path


def patches_dir(source: str) -> Path:
    """The folder of the series named for a kernel source (SOURCE_PATCHES_DIRS; 6.1's for a path)."""
    return SOURCE_PATCHES_DIRS.get(source, PATCHES_DIR)


def series_patches(series: str, source: str = "debian") -> list[Path]:
    """The patch files of a quilt series, in order: a name under the source's series folder
    (patches_dir) or a path to a series file."""
    base = patches_dir(source)
    series_file = Path(series) if "/" in series else base / series / "series"
    if not series_file.exists():
        known = sorted(p.parent.name for p in base.glob("*/series"))
        raise InputError(f"patch series {series!r} not found for kernel source {source!r} ({series_file}); "
                         f"known series: {', '.join(known) or '(none)'}")
    patches = []
    for lineno, line in enumerate(series_file.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        patch = (series_file.parent / line.split()[0]).resolve()
        if not patch.exists():
            raise InputError(f"{series_file}:{lineno}: patch {line!r} does not exist")
        patches.append(patch)
    return patches


def toolchain_identity() -> str:
    gcc = proc.capture([CROSS_COMPILE + "gcc", "--version"]).splitlines()[0]
    make = proc.capture(["make", "--version"]).splitlines()[0]
    return f"{gcc} / {make}"


def extra_patches(spec: KernelSpec) -> list[patch_files.Patch]:
    """The developer's patches of a spec, one per mail of each file, in order."""
    return patch_files.read(spec.extra_patches) if spec.extra_patches else []


def inputs(spec: KernelSpec) -> dict:
    src = source_path(spec)
    git = git_tree.parse(spec.source) if git_tree.is_git(spec.source) else None
    meta = {
        "source": spec.source if git else str(src),
        "source_identity": git_tree.identity(git) if git else source_identity(src),
        "fragments": {n: fragment_path(n).read_text() for n in spec.fragments},
        "patches": {p.name: p.read_text() for p in series_patches(spec.patches, spec.source)} if spec.patches else {},
        "toolchain": toolchain_identity(),
        "recipe": 1,  # bump when the build steps below change
    }
    if spec.extra_patches:      # absent otherwise, so the key of every spec without them stays as it was
        meta["extra_patches"] = [{"sha256": p.sha256, "subject": p.subject} for p in extra_patches(spec)]
    if base_kind(spec.base) != ALLNOCONFIG:     # likewise: allnoconfig kernels keep the keys they have
        meta["base"] = kernel_base.key_part(spec, src)
    return meta


# ---- build --------------------------------------------------------------------------------------

def build(spec: KernelSpec, *, jobs: int | None = None, progress: Callable[[str], None] = lambda s: None,
          store: cache.Store | None = None) -> KernelBuild:
    """Build (or fetch from the cache) the kernel described by spec."""
    require("cross-gcc", "host-gcc", "host-libc-headers", "make", "bc", "bison", "flex", "patch", "xz", "ccache")
    store = store or cache.Store("kernel")
    meta = inputs(spec)
    key = cache.digest(meta)
    with store.lock(key):
        if store.has(key):
            progress(f"kernel {key}: cached")
            return KernelBuild(key, store.path(key) / "tree")
        started = time.monotonic()
        # The record leaves out the fragments' and a .config base's text (the key has them): names instead.
        record = {k: v for k, v in meta.items() if k not in ("fragments", "base")} | {"fragment_names": list(spec.fragments)}
        tkey = sibling_tree.tree_key(meta)
        # Builds of one tree key one at a time (both arms of a parallel pair build at once): the second
        # then starts from the first one's tree.
        record |= {"base": spec.base} if "base" in meta else {}
        with store.lock(f"tree-{tkey}"), store.building(key, record) as work:
            tree = work / "tree"
            log_path = work / "build.log"
            sibling_tree.record(work, tkey)
            sibling = sibling_tree.find(store, tkey)
            tarball = Path(meta["source"]) if Path(meta["source"]).is_file() else None
            if not (sibling and sibling_tree.copy_tree(sibling, tree, log_path, progress,
                                                       tarball.stat().st_mtime if tarball else None)):
                _unpack(meta["source"], tree, log_path, progress)
            for patch in series_patches(spec.patches, spec.source) if spec.patches else []:
                _apply(patch, tree, log_path, progress)
                sibling_tree.keep_applied(work, patch)
            for i, p in enumerate(extra_patches(spec), 1):
                copy = work / "patches" / p.file_name(i)        # the exact text applied, kept with the kernel
                copy.parent.mkdir(exist_ok=True)
                copy.write_text(p.text)
                _apply(copy, tree, log_path, progress, label=f"{Path(p.source).name} ({p.subject!r})")
                sibling_tree.keep_applied(work, copy)
            configure_tree(spec, tree, log_path, progress)
            _compile(tree, compiler(tree, meta["source"]), log_path, jobs or os.cpu_count() or 2, progress)
            (work / BUILD_SECONDS).write_text(f"{time.monotonic() - started:.1f}\n")
        progress(f"kernel {key}: built in {time.monotonic() - started:.0f} s")
        return KernelBuild(key, store.path(key) / "tree")


def external(tree: Path) -> KernelBuild:
    """A kernel build tree the user names (a board file's `kernel.tree`: the kernel the board runs); the
    module is built against it. Its key covers the tree's place, .config, Module.symvers and release."""
    tree = tree.expanduser().resolve()
    missing = [n for n in (".config", "include/config/kernel.release", "Module.symvers") if not (tree / n).is_file()]
    if missing:
        raise InputError(f"kernel build tree {tree} lacks {', '.join(missing)}: run `make ARCH=arm "
                         f"CROSS_COMPILE={CROSS_COMPILE} modules_prepare` there (Module.symvers comes from a full "
                         f"`make modules`), or name the tree the board's kernel was built in")
    key = cache.digest({"external_tree": str(tree), "config": (tree / ".config").read_text(errors="replace"),
                        "symvers": cache.file_sha256(tree / "Module.symvers"),
                        "release": (tree / "include/config/kernel.release").read_text().strip()})
    return KernelBuild(key, tree)


def _unpack(source: str, tree: Path, log_path: Path, progress) -> None:
    progress(f"unpacking {source}")
    if git_tree.is_git(source):
        git_tree.export(git_tree.parse(source), tree, log_path)
        return
    src = Path(source)
    tree.mkdir()
    if src.is_dir():
        # Everything but .git (a developer's tree: its history is not a build input, and can be gigabytes).
        entries = sorted(str(p) for p in src.iterdir() if p.name != ".git")
        if entries:
            proc.run(["cp", "-a", *entries, str(tree)], log_path=log_path)
    else:
        proc.run([*tar_extract(src), "-C", tree, "--strip-components=1"], log_path=log_path)


def tar_extract(tarball: Path) -> list[str]:
    """tar's extract command for a source tarball. An .xz is decompressed on every core: xz 5.4 does that
    for a file of many blocks, as Debian's linux-source is (55 blocks of 24 MiB), where tar's own choice
    runs one thread."""
    if tarball.name.endswith((".xz", ".txz")):
        return ["tar", "--use-compress-program=xz -T0", "-xf", str(tarball)]
    return ["tar", "-xf", str(tarball)]


def _apply(patch: Path, tree: Path, log_path: Path, progress, label: str | None = None) -> None:
    label = label or str(patch)
    progress(f"applying {label if label != str(patch) else patch.name}")
    try:
        # Every line of patch's output (it is short): the failures may come before the last few.
        proc.run([*PATCH_ARGV, "-i", patch], cwd=tree, log_path=log_path, tail_lines=100_000)
    except proc.CommandError as e:
        detail = patch_failures(patch.read_text(errors="replace"), e.tail) or e.tail[-5:]
        raise InputError(
            f"patch {label} does not apply to this kernel source:\n  " + "\n  ".join(detail)
            + "\nRebase the patch onto the source named by `kernel.source`, or pick another source."
        ) from e


PATCHING = re.compile(r"^(?:patching|checking) file (.+)$")
HUNK_FAILED = re.compile(r"^Hunk #(\d+) FAILED at (\d+)")
NO_FILE = re.compile(r"^can't find file to patch at input line (\d+)")
REVERSED = re.compile(r"^Reversed \(or previously applied\) patch detected")


def patch_failures(patch_text: str, output: list[str]) -> list[str]:
    """GNU patch's output as one line per failure, naming the file, the hunk (with its @@ header and its
    line in the patch) and what went wrong. Pure."""
    hunks = _hunk_headers(patch_text)
    lines = patch_text.splitlines()
    out, current = [], "?"
    for line in output:
        if m := PATCHING.match(line):
            current = m.group(1)
        elif m := HUNK_FAILED.match(line):
            n = int(m.group(1))
            at, header = hunks.get((current, n), (None, ""))
            where = f" (patch line {at}: {header})" if at else ""
            out.append(f"{current}: hunk #{n}{where} does not match the source near line {m.group(2)}")
        elif m := NO_FILE.match(line):
            target = _file_before(lines, int(m.group(1)))
            out.append(f"{target}: no such file in the kernel source (patch line {m.group(1)})")
        elif REVERSED.match(line):
            out.append(f"{current}: already applied (the patch's changes are in the source already)")
    return out


def _hunk_headers(patch_text: str) -> dict[tuple[str, int], tuple[int, str]]:
    """(file, hunk number) -> (line in the patch, @@ header), with the -p1 file names patch prints."""
    out, current, n = {}, "?", 0
    for lineno, line in enumerate(patch_text.splitlines(), 1):
        if line.startswith("+++ "):
            current, n = _strip1(line[4:]), 0
        elif line.startswith("@@ "):
            n += 1
            out[(current, n)] = (lineno, line.split(" @@")[0] + " @@")
    return out


def _file_before(lines: list[str], lineno: int) -> str:
    """The file a patch's header names just before (1-based) lineno."""
    for line in reversed(lines[:lineno]):
        if line.startswith("+++ ") and not line.startswith("+++ /dev/null"):
            return _strip1(line[4:])
        if line.startswith("--- ") and not line.startswith("--- /dev/null"):
            return _strip1(line[4:])
    return "?"


def _strip1(name: str) -> str:
    name = name.split("\t")[0].strip()
    return name.split("/", 1)[1] if "/" in name else name


def configure_tree(spec: KernelSpec, tree: Path, log_path: Path, progress=lambda s: None) -> None:
    """The .config of an unpacked tree: the base with the fragments, then a check that every fragment line
    really holds. allnoconfig takes the fragments as KCONFIG_ALLCONFIG; a defconfig or a .config is put
    in place first and the fragments merged into it (_merge_fragments)."""
    progress(f"configuring: {spec.base} + " + ", ".join(spec.fragments))
    text = "\n".join(fragment_path(name).read_text() for name in spec.fragments) + "\n"
    wanted = parse_config(text)         # a fragment is .config syntax: later fragments win, as in Kconfig
    allconfig = tree / "cma-harness.allconfig"
    allconfig.write_text(text)
    if base_kind(spec.base) == ALLNOCONFIG:
        proc.run(["make", *MAKE_VARS, f"KCONFIG_ALLCONFIG={allconfig}", "allnoconfig"], cwd=tree, log_path=log_path)
    else:
        _merge_fragments(spec, tree, allconfig, log_path)
    got = parse_config((tree / ".config").read_text())
    unmet = [f"{sym}={val} (got {got.get(sym, 'n')})" for sym, val in wanted.items() if got.get(sym, "n") != val]
    if unmet:
        raise InputError(
            "kernel config fragments ask for settings Kconfig did not keep (a dependency is missing or the "
            "symbol does not exist in this kernel): " + "; ".join(unmet)
        )


def _merge_fragments(spec: KernelSpec, tree: Path, fragments: Path, log_path: Path) -> None:
    if base_kind(spec.base) == "defconfig":
        kernel_base.check_defconfig(spec.base, kernel_base.defconfigs_in(tree), spec.source)
        proc.run(["make", *MAKE_VARS, spec.base], cwd=tree, log_path=log_path)
    else:
        shutil.copyfile(kernel_base.config_path(spec.base), tree / ".config")
    # The kernel's own merge: each fragment line replaces the base's line for its symbol (the log names
    # every value overridden); a relative name, since the script splits its file list on spaces.
    # olddefconfig then settles what the merged values imply, as allnoconfig does for the default base.
    proc.run(["sh", "scripts/kconfig/merge_config.sh", "-m", ".config", fragments.name], cwd=tree, log_path=log_path)
    proc.run(["make", *MAKE_VARS, "olddefconfig"], cwd=tree, log_path=log_path)


def parse_config(text: str) -> dict[str, str]:
    """A .config as {symbol: value}; `# CONFIG_X is not set` becomes "n"."""
    out = {}
    for line in text.splitlines():
        if m := re.match(r"^(CONFIG_\w+)=(.*)$", line):
            out[m.group(1)] = m.group(2)
        elif m := re.match(r"^# (CONFIG_\w+) is not set$", line):
            out[m.group(1)] = "n"
    return out


COMPILE_LINE = re.compile(r"^\s+(CC|LD|AS|AR)\s+(\S+)")
FIRST_ERROR = re.compile(r"(error:|Error \d+|undefined reference|No rule to make target)")


def build_env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CCACHE_DIR=str(cache.cache_root() / "ccache"),
        CCACHE_BASEDIR=str(tree.parent.parent),  # variants build in different dirs: hash relative paths
        CCACHE_NOHASHDIR="1",
        CCACHE_MAXSIZE="5G",
        # Not depend mode (CCACHE_DEPEND), though it compiled the demo's 701 objects cold in 173 s against
        # 223 s: it skips the preprocessor pass in which ccache finds `.incbin` and refuses to cache, so
        # arch/arm/boot/compressed/piggy.o (`.incbin "piggy_data"`, the compressed kernel) came back from
        # the cache with another kernel inside: a stock zImage that booted reintroduce-2012.
        KBUILD_BUILD_TIMESTAMP="1970-01-01",
        KBUILD_BUILD_USER="cma-harness",
        KBUILD_BUILD_HOST="cma-harness",
    )
    return env


CCACHE = "ccache"
# Kbuild's record of how a tree compiled init/main.o: `cmd_init/main.o := <CC> ...` (6.1; `savedcmd_` from 6.3)
MAIN_O_CMD = Path("init/.main.o.cmd")


def compiler(tree: Path, source: str) -> str:
    """CC for make in `tree`. A tree that was compiled before (a sibling's copy) keeps the CC it was
    compiled with, read from Kbuild's own record: any other CC changes every object's command line, and
    make rebuilds them all. A fresh tree of a tarball is compiled by the bare cross compiler: its variants
    start from its tree (sibling_tree), which reuses more than a compiler cache could, and a cold ccache
    adds its own preprocessor pass and store to every object (the demo's stock kernel, 701 objects,
    -j2 on this 2-core machine: 192 s without ccache, 276 s with an empty one). A git commit or a
    developer's directory is built as a whole tree each time, mostly the same files: ccache is what reuses
    them."""
    try:
        first = (tree / MAIN_O_CMD).read_text(errors="replace").split("\n", 1)[0]
    except OSError:
        first = ""
    if " := " in first:                     # compiled before: as it was
        cached = first.split(" := ", 1)[1].startswith(CCACHE + " ")
    else:
        cached = not Path(source).is_file()
    return f"{CCACHE} {CROSS_COMPILE}gcc" if cached else f"{CROSS_COMPILE}gcc"


def _compile(tree: Path, cc: str, log_path: Path, jobs: int, progress) -> None:
    progress(f"compiling zImage and modules with -j{jobs}, CC={cc} (log: {log_path})")
    count = 0
    last_report = time.monotonic()

    def on_line(line: str) -> None:
        nonlocal count, last_report
        if COMPILE_LINE.match(line):
            count += 1
            if time.monotonic() - last_report > 15:
                last_report = time.monotonic()
                progress(f"  {count} objects built, now {line.split()[-1]}")

    try:
        proc.run(["make", f"-j{jobs}", *MAKE_VARS, f"CC={cc}", "zImage", "modules"],
                 cwd=tree, env=build_env(tree), log_path=log_path, on_line=on_line)
    except proc.CommandError as e:
        first = next((l for l in log_path.read_text(errors="replace").splitlines() if FIRST_ERROR.search(l)), None)
        raise InfraError(f"kernel build failed; first error: {first or '(none found)'}\nfull log: {log_path}") from e
