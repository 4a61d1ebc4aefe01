"""LAVA job files for a run: the job (deploy, boot, a `monitors` test), and for the QEMU guest a rendered
device dictionary with the harness's own QEMU command line. Pure: values in, YAML text out; the templates
are data under images/lava/.

The monitor turns the module's console records into LAVA test cases with one pattern (LAVA allows one per
monitor, and a named group only once in it):

    cma_harness: loop=7 sum=1f2e3d4c failed=2 calls_failed=3 ...  -> case loop_7, fail, measurement 2
    cma_harness: done loops=10 failed_loops=1                     -> case failed_loops, fail, measurement 1

`result` is the count's first digit, which fixupdict maps to pass (0) or fail (1-9); `measurement` is the
whole count. The pattern ends on the separator after the count, so a count cut by a read is never matched.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import jinja2

from harness.boards.qemu import QemuBoardConfig, qemu_argv
from harness.build.image import GuestImages
from harness.guest import autorun
from harness.spec.config import PROJECT_ROOT
from harness.spec.qemu_hardware import QemuHardware

TEMPLATES = PROJECT_ROOT / "images" / "lava"
MONITOR_NAME = "cma-harness"
MONITOR_START = "cma_harness: start"
MONITOR_PATTERN = (r"cma_harness: (?:done loops=\d+ )?(?P<test_case_id>loop=\d+|failed_loops)"
                   r"(?: sum=[0-9a-f]{8})?(?: failed)?=(?P<measurement>(?P<result>0|[1-9])\d*)[ \r\n]")
FIXUPDICT = {"0": "pass", **{str(d): "fail" for d in range(1, 10)}}
SUMMARY_CASE = "failed_loops"
# The labels of the deployed images, in the order QEMU gets them (the harness's own order).
IMAGE_LABELS = ("kernel", "ramdisk", "dtb", "disk")


@dataclass(frozen=True)
class Monitor:
    """One entry of the test action's `monitors` (lava_common/schemas/test/monitor.py)."""
    name: str = MONITOR_NAME
    start: str = MONITOR_START
    end: str = autorun.END
    pattern: str = MONITOR_PATTERN
    fixupdict: Mapping[str, str] = field(default_factory=lambda: dict(FIXUPDICT))


def case_of(match: re.Match) -> dict:
    """What LAVA's monitor (lava_dispatcher/actions/test/monitor.py) records for a match of the pattern:
    its case id (lowered, non-word runs to `_`), result through fixupdict, measurement."""
    groups = match.groupdict()
    return {"case": re.sub(r"\W+", "_", groups["test_case_id"].strip().lower()),
            "result": FIXUPDICT[groups["result"]], "measurement": groups["measurement"]}


@dataclass(frozen=True)
class QemuSplit:
    """The harness's QEMU command line, as LAVA builds one: the device's options, then each image's
    image_arg (with LAVA's `{label}` placeholder for the downloaded file)."""
    command: str
    options: tuple[str, ...]            # device dictionary: actions.boot.methods.qemu.parameters.options
    image_args: Mapping[str, str]       # job: actions[deploy].images.<label>.image_arg
    dropped: tuple[str, ...]            # what a LAVA boot leaves out (the command channel)

    def argv(self, files: Mapping[str, str]) -> list[str]:
        """The command line LAVA will run, with the downloaded files in place of the placeholders."""
        args = [self.command, *(a for o in self.options for a in shlex.split(o))]
        for label in IMAGE_LABELS:
            text = self.image_args[label]
            for name, path in files.items():
                text = text.replace("{" + name + "}", path)
            args += shlex.split(text)
        return args


_PLAIN = re.compile(r"^[\w@%+=:,./{}-]+$")


def _join(group: Sequence[str]) -> str:
    """A group of arguments as one string that pexpect (which LAVA's command goes through) splits back:
    quoted where needed, but LAVA's `{label}` placeholders left bare."""
    return " ".join(a if _PLAIN.match(a) else shlex.quote(a) for a in group)


def _groups(argv: Sequence[str]) -> list[list[str]]:
    """QEMU arguments grouped: an option and its value (none for a flag such as -no-reboot)."""
    groups: list[list[str]] = []
    for arg in argv:
        if arg.startswith("-") or not groups:
            groups.append([arg])
        else:
            groups[-1].append(arg)
    return groups


def split_qemu(machine: QemuHardware, trace_stream: Path, qemu: str = "qemu-system-arm") -> QemuSplit:
    """The harness's own qemu_argv (boards/qemu.py), with placeholders for the images, split for LAVA.
    The command channel (chardev id=cmd and its port) is left out: a LAVA boot runs autorun.sh instead."""
    placeholder = {label: Path("{" + label + "}") for label in IMAGE_LABELS}
    cfg = QemuBoardConfig(machine, placeholder["kernel"],
                          GuestImages(placeholder["ramdisk"], placeholder["disk"], placeholder["dtb"]), Path("."))
    argv = qemu_argv(cfg, qemu, Path("/nonexistent/cmd.sock"), trace_stream)
    options, images, dropped = [], {label: [] for label in IMAGE_LABELS}, []
    for group in _groups(argv[1:]):
        text = " ".join(group)
        label = next((lb for lb in IMAGE_LABELS if "{" + lb + "}" in text), None)
        if "id=cmd" in text or "chardev=cmd" in text:
            dropped.append(_join(group))
        elif label is not None:
            images[label].append(_join(group))
        elif group[0] == "-append":
            images["kernel"].append(_join(group))
        else:
            # Every -device stays in the device's options, in the harness's order: QEMU plugs devices into
            # the virt board's virtio-mmio slots in the order it creates them, and the guest numbers them
            # by slot (/dev/vport0p2 is the trace port only when the disk's device comes first). LAVA puts
            # the image arguments last, which QEMU does not mind: it makes every -drive before any -device.
            options.append(_join(group))
    return QemuSplit(argv[0], tuple(options), {k: " ".join(v) for k, v in images.items()}, tuple(dropped))


# What LAVA's stock qemu device template sets itself from the job's context (cpu, memory, machine): the
# rest of the harness's options go to `extra_options`, which that template appends. The trace port is left
# out there: its file would be on the farm's worker.
_CONTEXT_SET = ("-M", "-cpu", "-m")


def farm_extra_options(split: QemuSplit) -> list[str]:
    return [o for o in split.options if o.split()[0] not in _CONTEXT_SET and "trace" not in o
            and o != "-device virtio-serial-device"]


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    # JSON is YAML: every value goes in as a JSON scalar, list or mapping, quoted and escaped as JSON does
    # (Jinja's own tojson escapes < > & ' for HTML, which YAML does not need).
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    return env


def render_qemu_device(split: QemuSplit, *, boot_timeout_s: int, trace_stream: Path, written_by: str) -> str:
    return _env().get_template("qemu-device.yaml.j2").render(
        command=split.command, options=split.options, boot_timeout_s=boot_timeout_s,
        trace_stream=str(trace_stream), written_by=written_by)


@dataclass(frozen=True)
class Image:
    url: str
    sha256: str
    image_arg: str = ""


@dataclass(frozen=True)
class JobTimes:
    """Seconds. LAVA's qemu boot action only starts QEMU, and its timeout is also how long the monitor
    waits for each next match (lava_dispatcher: the pexpect timeout of the QEMU session): so it is the
    scenario's hang timeout. The test's covers the boot, every loop at a generous bound, and one hang."""
    deploy_s: int
    boot_s: int
    test_s: int
    hang_s: int

    @property
    def job_s(self) -> int:
        return self.deploy_s + self.boot_s + self.test_s + 60

    @classmethod
    def for_run(cls, loops: int, boot_timeout_s: int, hang_timeout_s: int, per_loop_s: int = 15) -> "JobTimes":
        return cls(deploy_s=300, boot_s=hang_timeout_s, test_s=boot_timeout_s + loops * per_loop_s + hang_timeout_s,
                   hang_s=hang_timeout_s)


def render_qemu_job(*, job_name: str, machine: QemuHardware, split: QemuSplit, images: Mapping[str, Image],
                    times: JobTimes, metadata: Mapping[str, str], run_command: str, output_dir: str,
                    device_file: str, written_by: str, monitor: Monitor = Monitor()) -> str:
    return _env().get_template("qemu-job.yaml.j2").render(
        job_name=job_name, machine=machine, farm_extra_options=farm_extra_options(split),
        images={label: images[label] for label in IMAGE_LABELS}, monitors=[monitor], metadata=dict(metadata),
        job_timeout_s=times.job_s, action_timeout_s=times.boot_s, hang_timeout_s=times.hang_s,
        deploy_timeout_s=times.deploy_s, boot_timeout_s=times.boot_s, test_timeout_s=times.test_s,
        run_command=run_command, output_dir=output_dir, device_file=device_file, written_by=written_by)


def render_uboot_job(*, job_name: str, device_type: str, images: Mapping[str, Image], times: JobTimes,
                     metadata: Mapping[str, str], kernel_args: str, written_by: str, board: str,
                     disk_device: str, monitor: Monitor = Monitor()) -> str:
    """A physical 32-bit board: TFTP deploy (zImage, initramfs with a u-boot header added by LAVA, the
    board's DTB with the test's area), u-boot boot, the same monitors test."""
    return _env().get_template("uboot-job.yaml.j2").render(
        job_name=job_name, device_type=device_type, images=dict(images), monitors=[monitor],
        metadata=dict(metadata), job_timeout_s=times.job_s, action_timeout_s=times.boot_s,
        hang_timeout_s=times.hang_s, deploy_timeout_s=times.deploy_s, boot_timeout_s=times.boot_s,
        test_timeout_s=times.test_s, kernel_args=kernel_args, written_by=written_by, board=board,
        disk_device=disk_device)
