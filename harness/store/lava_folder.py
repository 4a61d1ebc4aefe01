"""A LAVA job folder (`cma-harness lava-job`): the job, the device file, the images, the run-folder files
the import copies, the manifest that ties them together, and lava-run's output folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from harness.core.errors import InputError
from harness.store import names

# The files of a run folder that are known before the boot: lava-job writes them into the job folder,
# the import copies them into the run folder it makes.
STATIC_RUN_FILES = (names.SCENARIO, names.BOARD, names.KERNEL_CONFIG, names.KERNEL_RECORD, names.MODULE_SOURCE)


@dataclass(frozen=True)
class LavaJobFolder:
    path: Path

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def images(self) -> Path:
        return self.path / names.IMAGES

    @property
    def output(self) -> Path:
        """lava-run's --output-dir for this job."""
        return self.path / names.LAVA_OUTPUT

    @property
    def trace_stream(self) -> Path:
        """Where the QEMU guest's trace port streams to while the job runs."""
        return self.path / names.TRACE_STREAM

    @staticmethod
    def holds_job(path: Path) -> bool:
        return (path / names.LAVA_MANIFEST).is_file()

    def create(self) -> "LavaJobFolder":
        self.images.mkdir(parents=True, exist_ok=True)
        return self

    def write_manifest(self, manifest: Mapping) -> None:
        self.file(names.LAVA_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    def manifest(self) -> dict:
        path = self.file(names.LAVA_MANIFEST)
        if not path.is_file():
            raise InputError(f"{self.path}: no {names.LAVA_MANIFEST}; pass the folder `cma-harness lava-job` wrote "
                             f"(--job FOLDER)")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{path} is not the JSON `cma-harness lava-job` writes ({e}); write the job again") from e


def find_job_folder(output_dir: Path, explicit: Path | None) -> LavaJobFolder:
    """The job folder of a LAVA output folder: --job when given, else the output folder's parent (where
    lava-job puts it), else an error saying how to name it."""
    if explicit is not None:
        folder = LavaJobFolder(explicit)
        folder.manifest()               # names what is wrong with it
        return folder
    for candidate in (output_dir.parent, output_dir):
        if LavaJobFolder.holds_job(candidate):
            return LavaJobFolder(candidate)
    raise InputError(f"{output_dir}: no LAVA job folder beside it (no {names.LAVA_MANIFEST} in {output_dir.parent}); "
                     f"pass the folder `cma-harness lava-job` wrote for this job: --job FOLDER")
