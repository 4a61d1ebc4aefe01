"""The one place a board is made from a board file, by its `kind`, with the images it needs."""

from __future__ import annotations

from harness.boards.base import Board
from harness.boards.deployed import DeployedBoard, Target
from harness.boards.kexec import BootFiles
from harness.boards.qemu import QemuBoard, QemuBoardConfig, kernel_cmdline
from harness.boards.rig import Flash
from harness.boards.ssh_board import SshBoard
from harness.boards.testbed import SER2NET, QemuSshBoard
from pathlib import Path

from harness.build import build_identity, image, image_cache, kernel, module, testbed
from harness.build.kernel import KernelBuild
from harness.build.module import ModuleBuild
from harness.core.errors import InfraError
from harness.spec.boards import BoardFile
from harness.spec.config import KernelSpec, ModuleSpec, Scenario
from harness.spec.qemu_hardware import QemuHardware
from harness.store import names
from harness.store.run_folder import RunFolder


def host_tools(board: BoardFile) -> tuple[str, ...]:
    """The host tools (build/toolchain.py names) a run on this board needs, checked before any build."""
    if board.kind in ("qemu", "qemu-ssh"):
        return "qemu", "dtc", "fdtput", "mkfs.ext4"
    return ("mkfs.ext4",) if board.disk.provision == "write-image" else ()


def check_host(board: BoardFile) -> None:
    """What the board's kind needs on this host beyond the tools: the test bed's server and ser2net."""
    if board.kind != "qemu-ssh":
        return
    if (problem := testbed.dropbear_missing()) is not None:
        raise InfraError(problem)
    import shutil

    if board.serial is not None and shutil.which(SER2NET) is None:
        raise InfraError("ser2net is missing (the test bed serves its serial console with it); install it with: "
                         "apt-get install -y ser2net   (or run: bash images/setup-host.sh)")


def builds(board: BoardFile, spec: KernelSpec, module_spec: ModuleSpec, progress=lambda s: None
           ) -> tuple[KernelBuild, ModuleBuild]:
    """The kernel a run on this board boots and the module for it: the board's own build tree when it names
    one (kernel.tree: the kernel it runs), else `spec` (the board's kernel spec) built or taken from the cache."""
    kb = kernel.external(Path(board.kernel.tree)) if board.kernel.tree else kernel.build(spec, progress=progress)
    return kb, module.build(module_spec, kb, progress=progress)


def make_board(board: BoardFile, scn: Scenario, kb: KernelBuild, mb: ModuleBuild, run: RunFolder,
               progress=lambda s: None) -> Board:
    """The board of a run, with the images it boots from made in the run folder."""
    folder = run.file(names.IMAGES)
    # The default pool instead of the dedicated area: QEMU's own DTB, and the pool on the command line.
    dedicated = board.area.method == "dedicated"
    area, extra = (scn.area, ()) if dedicated else (None, (f"cma={board.area.pool_mib}M",))
    if board.deploy.method != "none":
        return _deployed(board, scn, kb, mb, run, area, extra, progress)
    if board.kind == "qemu":
        machine = QemuHardware.for_board(scn.board)
        imgs = image_cache.for_run(kb, mb.ko, machine, area, scn.workload, folder)
        return QemuBoard(QemuBoardConfig(machine, kb.zimage, imgs, run.path, extra))
    if board.kind == "qemu-ssh":
        check_host(board)
        keys = testbed.ensure_keys()
        folder.mkdir(parents=True, exist_ok=True)
        machine = QemuHardware.for_board(scn.board)
        imgs = image_cache.for_run(kb, mb.ko, machine, area, scn.workload, folder,
                                   initramfs_extra=testbed.initramfs_entries(keys, folder))
        return QemuSshBoard(board, QemuBoardConfig(machine, kb.zimage, imgs, run.path, extra))
    disk = None
    if board.disk.provision == "write-image":
        folder.mkdir(parents=True, exist_ok=True)
        disk = image_cache.fresh_disk(scn.workload, folder / image_cache.DISK)
    return SshBoard(board, run.path, disk_image=disk)


def _deployed(board: BoardFile, scn: Scenario, kb: KernelBuild, mb: ModuleBuild, run: RunFolder, area, extra,
              progress) -> DeployedBoard:
    """A board that stays on (deploy.method: kexec): what kexec is given, and for the test bed what it
    boots when switched on; each run's fresh disk is written onto the board's device over SSH."""
    folder = run.file(names.IMAGES)
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "images.log"
    disk = image_cache.fresh_disk(scn.workload, folder / image_cache.DISK)
    expected = build_identity.of_build(kb)
    if board.kind == "qemu-ssh":
        check_host(board)
        machine = QemuHardware.for_board(scn.board)
        keys = testbed.ensure_keys()
        initramfs = image.make_initramfs(kb, mb.ko, folder / "initramfs.cpio", testbed.initramfs_entries(keys, folder))
        dtb = image_cache.board_dtb(machine, area, folder)
        cmdline = kernel_cmdline(machine, extra)
        files = BootFiles(kb.zimage, dtb, initramfs, cmdline)
        flash = Flash(kb.zimage, dtb, initramfs, scn.workload.disk_mib, machine.hardware_args(), cmdline)
        return DeployedBoard(board, run.path, Target(files, expected, flash), disk_image=disk, progress=progress)
    # A physical board: its own DTB with the test area added, its own command line, its own root file system.
    dtb = image.add_area(Path(board.area.board_dtb), scn.area, folder / "board.dtb", log_path) if area else \
        Path(board.area.board_dtb)
    files = BootFiles(kb.zimage, dtb, None, " ".join([board.deploy.cmdline, *extra]))
    return DeployedBoard(board, run.path, Target(files, expected), disk_image=disk, progress=progress)
