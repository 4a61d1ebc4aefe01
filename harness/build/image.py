"""Guest images: the initramfs (busybox, init, workload, module), a fresh ext4 disk, the DTB with the CMA area."""

from __future__ import annotations

import os
import re
from contextlib import nullcontext
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import jinja2

from harness.core import proc
from harness.spec.config import PROJECT_ROOT, AreaSpec, WorkloadSpec
from harness.core.errors import InfraError
from harness.build.kernel import KernelBuild
from harness.spec.qemu_hardware import QemuHardware
from harness.build.toolchain import busybox_path, require

GUEST_DIR = PROJECT_ROOT / "images" / "guest"
DT_FRAGMENT = PROJECT_ROOT / "images" / "dt" / "cma-area.dtsi.j2"
GUEST_MODULE_PATH = "/lib/modules/cma_harness.ko"
GUEST_WORKLOAD = "/usr/share/cma-harness/workload.sh"


@dataclass(frozen=True)
class GuestImages:
    initramfs: Path
    disk: Path
    dtb: Path


def initramfs_list(module_ko: Path, busybox: Path, extra: Sequence[str] = ()) -> str:
    """The kernel's gen_init_cpio list format: device nodes and owners without needing root on the host."""
    dirs = ["/dev", "/bin", "/sbin", "/proc", "/sys", "/tmp", "/mnt", "/root", "/lib", "/lib/modules",
            "/usr", "/usr/bin", "/usr/sbin", "/usr/share", "/usr/share/cma-harness"]
    lines = [f"dir {d} 0755 0 0" for d in dirs]
    lines += [
        "nod /dev/console 0600 0 0 c 5 1",
        "nod /dev/null 0666 0 0 c 1 3",
        f"file /bin/busybox {busybox} 0755 0 0",
        "slink /bin/sh busybox 0777 0 0",
        f"file /init {GUEST_DIR / 'init'} 0755 0 0",
        f"file {GUEST_WORKLOAD} {GUEST_DIR / 'workload.sh'} 0755 0 0",
        f"file {GUEST_MODULE_PATH} {module_ko} 0644 0 0",
        *extra,                 # a board's own additions (the SSH test bed's server and keys)
    ]
    return "\n".join(lines) + "\n"


def make_initramfs(kernel: KernelBuild, module_ko: Path, out: Path, extra: Sequence[str] = ()) -> Path:
    busybox = busybox_path()
    if not busybox.exists():
        raise InfraError(f"armhf busybox not found at {busybox}; run `cma-harness doctor` for the install command")
    listing = out.with_suffix(".list")
    listing.write_text(initramfs_list(module_ko, busybox, extra))
    with open(out, "wb") as f:
        data = proc.capture_bytes([kernel.gen_init_cpio, listing])
        f.write(data)
    return out


def make_disk(workload: WorkloadSpec, out: Path, log_path: Path | None = None, root: Path | None = None) -> Path:
    """A fresh ext4 image per run: journal-less (isolates the bh-LRU cause) or journaled (a real device).
    root: a folder holding the workload's `tree` already (build/image_cache.py keeps one); else it is made.
    Each image is a new file system: mkfs.ext4 gives it its own UUID and directory hash seed."""
    require("mkfs.ext4")
    with open(out, "wb") as f:
        f.truncate(workload.disk_mib * 1024 * 1024)
    features = "^has_journal" if workload.profile in ("nojournal", "none") else "has_journal"
    with tempfile.TemporaryDirectory(prefix="cma-harness-tree-") if root is None else nullcontext(root) as into:
        if root is None:
            populate_tree(Path(into) / "tree", workload.tree_files)
        proc.run(["mkfs.ext4", "-F", "-q", "-b", str(workload.block_size), "-O", features, "-L", "cma-harness", "-d", into, out],
                 log_path=log_path)
    return out


def data_extents(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of the parts of a sparse file that hold data (SEEK_DATA/SEEK_HOLE), in order; the
    rest reads as zeros. A fresh ext4 image of 256 MiB holds about 4.6 MB in five extents."""
    out = []
    with open(path, "rb") as f:
        size, off = os.fstat(f.fileno()).st_size, 0
        while off < size:
            try:
                start = os.lseek(f.fileno(), off, os.SEEK_DATA)
            except OSError:         # ENXIO: no data after off
                break
            end = os.lseek(f.fileno(), start, os.SEEK_HOLE)
            out.append((start, end - start))
            off = end
    return out


def populate_tree(top: Path, files: int, per_dir: int = 100) -> None:
    """The tree the scan workers walk: `files` small files, `per_dir` to a directory (mkfs.ext4 -d copies it)."""
    top.mkdir()
    for i in range(files):
        d = top / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir()
        (d / f"f{i % per_dir:03d}").write_text(f"{i}\n")


def render_dt_fragment(area: AreaSpec, address_cells: int = 2, size_cells: int = 2) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(DT_FRAGMENT.read_text()).render(
        size=area.size_mib * 1024 * 1024, alignment=area.alignment_mib * 1024 * 1024,
        address_cells=address_cells, size_cells=size_cells)


ROOT_CELLS = re.compile(r"^\t#(address|size)-cells = <(0x[0-9a-f]+|\d+)>;", re.M)


def root_cells(dts: str) -> tuple[int, int]:
    """The root node's #address-cells and #size-cells in dtc's dts output (its one-tab properties);
    the devicetree spec's defaults, 2 and 1, when absent."""
    found = {kind: int(value, 0) for kind, value in reversed(ROOT_CELLS.findall(dts))}
    return found.get("address", 2), found.get("size", 1)


def make_dtb(machine: QemuHardware, area: AreaSpec | None, out: Path, log_path: Path | None = None) -> Path:
    """QEMU's own virt DTB for this machine, plus the reserved-memory node and the test device (area
    None: as QEMU made it, for a guest that uses its default CMA pool)."""
    tools = require("qemu", "dtc")
    base = out.with_name(out.stem + "-base.dtb")
    proc.run([tools["qemu"], *machine.hardware_args(), "-machine", f"dumpdtb={base}", "-display", "none"],
             log_path=log_path)
    if area is None:
        # dumpdtb writes the blob padded to 1 MiB, which the zImage's decompressor does not survive; dtc
        # writes it back at its own size.
        proc.run([require("dtc")["dtc"], "-q", "-I", "dtb", "-O", "dtb", "-o", out, base], log_path=log_path)
        return out
    return add_area(base, area, out, log_path)


def add_area(base_dtb: Path, area: AreaSpec, out: Path, log_path: Path | None = None) -> Path:
    """A copy of a device tree blob with the reserved-memory node and the test device added (the same
    edit for QEMU's DTB and a board's own); out.dts keeps the source dtc compiled."""
    dtc = require("dtc")["dtc"]
    dts = proc.capture([dtc, "-q", "-I", "dtb", "-O", "dts", base_dtb])
    source = out.with_suffix(".dts")
    source.write_text(dts + "\n" + render_dt_fragment(area, *root_cells(dts)))
    proc.run([dtc, "-q", "-I", "dts", "-O", "dtb", "-o", out, source], log_path=log_path)
    return out
