"""A run as a LAVA job: `write_job` builds what a harness run would boot (kernel and module from the cache,
initramfs with the guest's own run in it, DTB with the test's area, a fresh disk) into a job folder with
the job and, for the QEMU guest, a rendered device file; `run_job` runs it under lava-run. The folder's
output/ is what `cma-harness import` (orchestrate/lava_import.py) turns into a run folder."""

from __future__ import annotations

import datetime
import json
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from harness.boards.qemu import kernel_cmdline
from harness.boards import factory
from harness.build import cache, image, image_cache, kernel_record
from harness.build.toolchain import require
from harness.core import proc
from harness.core.errors import InfraError, InputError
from harness.guest import autorun
from harness.present import lava_job
from harness.spec import config
from harness.spec.boards import BoardFile
from harness.spec.config import KernelSpec, Scenario
from harness.spec.qemu_hardware import QemuHardware
from harness.store import names
from harness.store.lava_folder import LavaJobFolder

LAVA_RUN = "lava-run"


@dataclass(frozen=True)
class JobRequest:
    scenario: Scenario
    variant: str                    # the name the run folder records ("kernel": the scenario's own)
    spec: KernelSpec
    board: BoardFile
    folder: Path
    loops: int | None = None        # None: the scenario's module.loops
    job_id: str = "1"
    first_loop: int = 0             # the first loop's number (a campaign numbers an arm's loops on across boots)


@dataclass(frozen=True)
class WrittenJob:
    folder: LavaJobFolder
    kind: str                       # "qemu" (job and device file, runs under lava-run here) or "u-boot"
    run_command: str | None         # the lava-run command line (QEMU guest only)


def _image(path: Path, image_arg: str = "") -> lava_job.Image:
    return lava_job.Image(path.resolve().as_uri(), cache.file_sha256(path), image_arg)


def run_command(job: LavaJobFolder, job_id: str) -> list[str]:
    """lava-run for a job folder; its log goes to stderr, so the caller writes it to output/output.yaml."""
    return [LAVA_RUN, "--job-id", job_id, "--output-dir", str(job.output), "--device",
            str(job.file(names.LAVA_DEVICE)), str(job.file(names.LAVA_JOB))]


def _shell_command(job: LavaJobFolder, job_id: str) -> str:
    return (f"mkdir -p {shlex.quote(str(job.output))} && {shlex.join(run_command(job, job_id))} "
            f"2> {shlex.quote(str(job.output / names.LAVA_OUTPUT_LOG))}")


def write_job(req: JobRequest, progress: Callable[[str], None] = lambda s: None) -> WrittenJob:
    """Build (cached) and write the job folder for one boot of the scenario on the request's board."""
    board = req.board
    if board.kind == "qemu-ssh":
        raise InputError(f"{board.source}: a `kind: qemu-ssh` board is the SSH test bed; a LAVA job boots the plain "
                         f"QEMU guest (--board qemu) or a physical board (`kind: ssh` with `area.board_dtb`)")
    if board.kind == "ssh" and not (board.area.board_dtb and board.kernel.tree):
        raise InputError(f"{board.source}: a LAVA job for a physical board boots the kernel of `kernel.tree` with the "
                         f"DTB of `area.board_dtb` plus the test's area: set both")
    scn = req.scenario
    if req.loops is not None:
        scn = config.with_overrides(scn, "module", origin="--loops", loops=req.loops)
    loops = scn.module.loops
    job = LavaJobFolder(req.folder).create()
    require("dtc", *(("qemu", "mkfs.ext4") if board.kind == "qemu" else ()))
    spec = board.kernel_spec(req.spec)
    kb, mb = factory.builds(board, spec, scn.module, progress)
    _write_run_files(job, scn, board, spec, kb, mb)
    qemu = board.kind == "qemu"
    sink = autorun.TRACE_PORT if qemu else None
    disk_device = board.disk.device
    script = job.images / names.AUTORUN
    script.write_text(autorun.script(scn, loops, req.first_loop, trace_sink=sink, disk=disk_device))
    script.chmod(0o755)
    extra = [f"file {autorun.GUEST_PATH} {script} 0755 0 0"]
    zimage = job.images / names.KERNEL_IMAGE
    shutil.copyfile(kb.zimage, zimage)
    machine = QemuHardware.for_board(scn.board)
    progress(f"writing the guest images into {job.images}")
    initramfs = image.make_initramfs(kb, mb.ko, job.images / "initramfs.cpio", extra)
    times = lava_job.JobTimes.for_run(loops, scn.board.boot_timeout_s, scn.board.hang_timeout_s)
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    written_by = f"cma-harness lava-job, {stamp}"
    metadata = {"cma-harness.scenario": scn.name, "cma-harness.variant": req.variant, "cma-harness.loops": str(loops),
                "cma-harness.kernel": kb.key, "cma-harness.module": mb.key, "cma-harness.board": board.name}
    name = f"cma-harness {scn.name} {req.variant} {loops} loops"
    if qemu:
        disk = image_cache.fresh_disk(scn.workload, job.images / image_cache.DISK)
        dtb = image_cache.board_dtb(machine, scn.area, job.images)
        split = lava_job.split_qemu(machine, job.trace_stream.resolve(), require("qemu")["qemu"])
        files = {"kernel": zimage, "ramdisk": initramfs, "dtb": dtb, "disk": disk}
        images = {label: _image(files[label], split.image_args[label]) for label in lava_job.IMAGE_LABELS}
        command = _shell_command(job, req.job_id)
        job.file(names.LAVA_DEVICE).write_text(lava_job.render_qemu_device(
            split, boot_timeout_s=times.boot_s, trace_stream=job.trace_stream.resolve(), written_by=written_by))
        job.file(names.LAVA_JOB).write_text(lava_job.render_qemu_job(
            job_name=name, machine=machine, split=split, images=images, times=times, metadata=metadata,
            run_command=command, output_dir=str(job.output), device_file=str(job.file(names.LAVA_DEVICE)),
            written_by=written_by))
        expected_argv = split.argv({label: "{" + label + "}" for label in lava_job.IMAGE_LABELS})
    else:
        dtb = image.add_area(Path(board.area.board_dtb), scn.area, job.images / "board.dtb", job.images / "images.log")
        files = {"kernel": zimage, "ramdisk": initramfs, "dtb": dtb}
        images = {label: _image(path) for label, path in files.items()}
        args = kernel_cmdline(machine).split(" ", 1)[1]         # the harness's, after its QEMU console
        job.file(names.LAVA_JOB).write_text(lava_job.render_uboot_job(
            job_name=name, device_type=board.name, images=images, times=times, metadata=metadata,
            kernel_args=args, written_by=written_by, board=board.name, disk_device=disk_device))
        command, expected_argv = None, None
    job.write_manifest({"scenario": scn.name, "variant": req.variant, "loops": loops, "kind": board.kind,
                        "board": board.name, "kernel_key": kb.key, "module_key": mb.key, "written": stamp,
                        "job_id": req.job_id, "run_command": command, "qemu_argv": expected_argv,
                        "trace": qemu and scn.trace.enabled,
                        "images": {label: {"file": str(p.relative_to(job.path)), "sha256": images[label].sha256}
                                   for label, p in files.items()}})
    return WrittenJob(job, "qemu" if qemu else "u-boot", command)


def _write_run_files(job: LavaJobFolder, scn: Scenario, board: BoardFile, spec: KernelSpec, kb, mb) -> None:
    """The run folder's files that are known before the boot; the import copies them."""
    job.file(names.SCENARIO).write_text(yaml.safe_dump(config.as_dict(scn), sort_keys=False))
    job.file(names.BOARD).write_text(yaml.safe_dump(board.as_dict(), sort_keys=False))
    shutil.copyfile(kb.config, job.file(names.KERNEL_CONFIG))
    record = kernel_record.describe_external(kb) if board.kernel.tree else kernel_record.describe(spec, kb)
    job.file(names.KERNEL_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True))
    shutil.copyfile(mb.source, job.file(names.MODULE_SOURCE))


def run_job(job: LavaJobFolder, progress: Callable[[str], None] = lambda s: None) -> tuple[int, float]:
    """Run a QEMU job folder under lava-run (as root); its log goes to output/output.yaml. Returns lava-run's
    exit status (1: LAVA failed the job; the log says why) and its wall time in seconds."""
    manifest = job.manifest()
    if manifest.get("kind") != "qemu":
        raise InputError(f"{job.path}: a {manifest.get('kind')} job runs on a LAVA lab's board, not under lava-run here; "
                         f"submit {job.file(names.LAVA_JOB)} to the lab (lavacli jobs submit)")
    if shutil.which(LAVA_RUN) is None:
        raise InfraError("lava-run is missing; install it with: apt-get install -y lava-dispatcher "
                         "(or run: bash images/setup-host.sh)")
    if job.output.exists():
        shutil.rmtree(job.output)
    job.output.mkdir(parents=True)
    if job.trace_stream.exists():
        job.trace_stream.unlink()
    progress(f"lava-run {job.path.name} (log: {job.output / names.LAVA_OUTPUT_LOG})")
    t0 = time.monotonic()
    status = proc.run_to_file(run_command(job, manifest.get("job_id", "1")), stderr_path=job.output / names.LAVA_OUTPUT_LOG)
    return status, time.monotonic() - t0
