"""Guest images that do not change from boot to boot, made once and kept in the cache: the workload's
pristine ext4 disk and the board's DTB. Each boot used to make both again (mkfs.ext4 over a 1000-file tree,
a QEMU start for its own DTB, dtc twice): about 0.7 s of a 7 s boot, paid on every boot of a campaign.

A boot on the QEMU board reads the pristine disk through a copy-on-write view (QEMU `snapshot=on`: its
writes go to a temporary overlay QEMU deletes), so every boot still starts from a fresh file system and
nothing is copied; a board that is written to (the SSH test bed, a LAVA job) gets a sparse copy."""

from __future__ import annotations

import dataclasses
import json
import os
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
DISK_RECORD = "disk.json"       # in a run's images/: which pristine disk the boot read, and its sha256
# Bumped when make_disk or populate_tree changes what they write: every cached disk is then made again.
DISK_FORMAT = 1


@lru_cache(maxsize=None)
def _tool_identity(path: str) -> dict:
    """A host tool as a cache input: a package upgrade replaces the file, and its size or mtime with it."""
    st = os.stat(path)
    return {"path": path, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def disk_inputs(workload: WorkloadSpec) -> dict:
    """What the pristine disk depends on: the workload's disk fields (not its workers, idle time or fill,
    which act inside the guest) and mkfs.ext4."""
    return {"kind": "disk", "format": DISK_FORMAT, "profile_journal": workload.profile == "journal",
            "disk_mib": workload.disk_mib, "block_size": workload.block_size, "tree_files": workload.tree_files,
            "mkfs": _tool_identity(require("mkfs.ext4")["mkfs.ext4"])}


def disk_template(workload: WorkloadSpec) -> tuple[Path, dict]:
    """The workload's pristine disk in the cache (made on first use) and its record: the cache key, bytes,
    sha256. mkfs.ext4 gives each image a random UUID and hash seed; one image per input keeps them fixed, and
    neither decides where the kernel's pages land, which is what differs between boots."""
    store, meta = cache.Store(STORE), disk_inputs(workload)
    key = cache.digest(meta)
    with store.lock(key):
        if not store.has(key):
            with store.building(key, meta) as work:
                disk = image.make_disk(workload, work / DISK, work / "images.log")
                record = {"key": key, "bytes": disk.stat().st_size, "sha256": cache.file_sha256(disk)}
                (work / DISK_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    entry = store.path(key)
    return entry / DISK, json.loads((entry / DISK_RECORD).read_text())


def fresh_disk(workload: WorkloadSpec, out: Path) -> Path:
    """A writable fresh disk at out: a sparse copy of the pristine one (its 4-5 MB of data, not 256 MiB)."""
    template, _ = disk_template(workload)
    proc.run(["cp", "--sparse=always", "--reflink=auto", template, out])
    return out


def dtb_inputs(machine: QemuHardware, area: AreaSpec | None) -> dict:
    tools = require("qemu", "dtc")
    return {"kind": "dtb", "hardware": list(machine.hardware_args()),
            "area": dataclasses.asdict(area) if area is not None else None,
            "fragment": image.DT_FRAGMENT.read_text() if area is not None else None,
            "qemu": _tool_identity(tools["qemu"]), "dtc": _tool_identity(tools["dtc"])}


def board_dtb(machine: QemuHardware, area: AreaSpec | None, folder: Path) -> Path:
    """The board's DTB (QEMU's own for this machine, with the test area added) in folder, from the cache;
    its .dts source comes along where there is one."""
    store, meta = cache.Store(STORE), dtb_inputs(machine, area)
    key = cache.digest(meta)
    with store.lock(key):
        if not store.has(key):
            with store.building(key, meta) as work:
                image.make_dtb(machine, area, work / "board.dtb", work / "images.log")
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("board.dtb", "board.dts"):
        if (store.path(key) / name).is_file():
            shutil.copyfile(store.path(key) / name, folder / name)
    return folder / "board.dtb"


def for_run(kernel: KernelBuild, module_ko: Path, machine: QemuHardware, area: AreaSpec | None,
            workload: WorkloadSpec, folder: Path, initramfs_extra: Sequence[str] = (),
            shared_disk: bool = False) -> GuestImages:
    """A boot's images in its run folder's images/: the initramfs (it holds this run's module), the DTB,
    and the disk: the pristine one itself when shared_disk (the board must only read it: QEMU's
    snapshot=on), with a record of it in disk.json, else a fresh copy in the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    if shared_disk:
        disk, record = disk_template(workload)
        (folder / DISK_RECORD).write_text(json.dumps({**record, "path": str(disk), "view": "snapshot=on"}, indent=2) + "\n")
    else:
        disk = fresh_disk(workload, folder / DISK)
    return GuestImages(
        initramfs=image.make_initramfs(kernel, module_ko, folder / "initramfs.cpio", initramfs_extra),
        disk=disk,
        dtb=board_dtb(machine, area, folder),
        disk_shared=shared_disk,
    )
