"""The parts of a boot's images that never change, made once and kept in the cache: the workload's file
tree and the board's DTB. Each boot used to make both again (1000 small files written by Python, a QEMU
start for its DTB, dtc twice): 0.75 s of a 7 s boot, paid on every boot of a campaign.

What is random in a boot's images stays random per boot, as when everything was made per boot: every
disk is a new mkfs.ext4 (its own UUID and directory hash seed), and every DTB gets fresh /chosen rng-seed
and kaslr-seed values (QEMU's dumpdtb draws them at each start, and the guest kernel seeds its random
pool from rng-seed). A campaign's boots are its statistical units; a seed frozen in the cache would make
every boot of every campaign on the machine share it."""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from harness.build import cache, image
from harness.build.image import GuestImages
from harness.build.kernel import KernelBuild
from harness.build.toolchain import require
from harness.core import proc
from harness.spec.config import AreaSpec, WorkloadSpec
from harness.spec.qemu_hardware import QemuHardware

STORE = "images"
DISK = "disk.img"
# Bumped when populate_tree changes what it writes: every cached tree is then made again.
TREE_FORMAT = 1
# /chosen properties QEMU's virt board fills with random bytes, as 32-bit cells.
SEEDS = (("rng-seed", 8), ("kaslr-seed", 2))


@lru_cache(maxsize=None)
def _tool_identity(path: str) -> dict:
    """A host tool as a cache input: a package upgrade replaces the file, and its size or mtime with it."""
    st = os.stat(path)
    return {"path": path, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def tree_root(workload: WorkloadSpec) -> Path:
    """A folder in the cache whose `tree` is the one the scan workers walk (made on first use)."""
    def make(work: Path) -> None:
        (work / "root").mkdir()
        image.populate_tree(work / "root" / "tree", workload.tree_files)

    return _entry({"kind": "tree", "format": TREE_FORMAT, "tree_files": workload.tree_files}, make) / "root"


def _entry(meta: dict, make) -> Path:
    """The store's entry for meta, made by make(scratch folder) under its lock if it is not there yet."""
    store = cache.Store(STORE)
    key = cache.digest(meta)
    with store.lock(key):
        if not store.has(key):
            with store.building(key, meta) as work:
                make(work)
    return store.path(key)


def fresh_disk(workload: WorkloadSpec, out: Path, log_path: Path | None = None) -> Path:
    """A new ext4 file system at out, holding the cached tree."""
    return image.make_disk(workload, out, log_path, root=tree_root(workload))


def dtb_inputs(machine: QemuHardware, area: AreaSpec | None) -> dict:
    tools = require("qemu", "dtc")
    return {"kind": "dtb", "hardware": list(machine.hardware_args()),
            "area": dataclasses.asdict(area) if area is not None else None,
            "fragment": image.DT_FRAGMENT.read_text() if area is not None else None,
            "qemu": _tool_identity(tools["qemu"]), "dtc": _tool_identity(tools["dtc"])}


def board_dtb(machine: QemuHardware, area: AreaSpec | None, folder: Path) -> Path:
    """The board's DTB in folder (QEMU's own for this machine, with the test area added): the cached one,
    with fresh random seeds; board.dts beside it is its source, as dtc reads it back."""
    entry = _entry(dtb_inputs(machine, area),
                   lambda work: image.make_dtb(machine, area, work / "board.dtb", work / "images.log"))
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "board.dtb"
    shutil.copyfile(entry / "board.dtb", out)
    reseed(out)
    dtc = require("dtc")["dtc"]
    (folder / "board.dts").write_text(proc.capture([dtc, "-q", "-I", "dtb", "-O", "dts", out]))
    return out


def reseed(dtb: Path) -> None:
    """Fresh random values for the seeds QEMU put in /chosen (the blob keeps its size: same cell counts)."""
    fdtput = require("fdtput")["fdtput"]
    for name, cells in SEEDS:
        proc.run([fdtput, "-t", "x", dtb, "/chosen", name, *(f"{secrets.randbits(32):x}" for _ in range(cells))])


def for_run(kernel: KernelBuild, module_ko: Path, machine: QemuHardware, area: AreaSpec | None,
            workload: WorkloadSpec, folder: Path, initramfs_extra: Sequence[str] = ()) -> GuestImages:
    """A boot's images in its run folder's images/: the initramfs (it holds this run's module), a new disk
    and the DTB with fresh seeds."""
    folder.mkdir(parents=True, exist_ok=True)
    return GuestImages(
        initramfs=image.make_initramfs(kernel, module_ko, folder / "initramfs.cpio", initramfs_extra),
        disk=fresh_disk(workload, folder / DISK, folder / "images.log"),
        dtb=board_dtb(machine, area, folder),
    )
