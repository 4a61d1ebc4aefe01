"""A campaign folder: its plan, its decisions, and one run folder per boot named NNN-<arm key>."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from harness.core.errors import InputError
from harness.store import names
from harness.store.jsonl import JsonlWriter
from harness.store.run_folder import RunFolder

# The arm key of a run: the variant, or "<variant>#B" for the second arm of a null experiment (A/A).
SECOND_ARM_SUFFIX = "#B"


def run_name(index: int, arm_key: str) -> str:
    return f"{index:03d}-{arm_key}"


def arm_key_of(name: str) -> str:
    """The arm key in a run folder's name (NNN-<key>)."""
    return name.split("-", 1)[1]


def variant_of_key(arm_key: str) -> str:
    return arm_key.removesuffix(SECOND_ARM_SUFFIX)


def _index_of(name: str) -> int:
    return int(name.split("-", 1)[0])


@dataclass(frozen=True)
class CampaignFolder:
    path: Path

    def file(self, name: str) -> Path:
        """A file of the campaign folder, by its name in store.names."""
        return self.path / name


    @staticmethod
    def holds_campaign(path: Path) -> bool:
        return (path / names.CAMPAIGN).is_file()

    def create(self) -> "CampaignFolder":
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def runs(self) -> list[RunFolder]:
        """Every run folder already there, in run order (complete or cut short)."""
        if not self.file(names.RUNS).is_dir():
            return []
        return [RunFolder(p) for p in sorted(self.file(names.RUNS).glob("[0-9][0-9][0-9]-*")) if p.is_dir()]

    def run(self, name: str) -> RunFolder:
        return RunFolder(self.file(names.RUNS) / name)

    def next_run(self, arm_key: str) -> RunFolder:
        """NNN-<arm key>, NNN one past the highest run folder already there (retries and resumes included)."""
        taken = [_index_of(r.name) for r in self.runs()]
        return self.run(run_name(max(taken, default=-1) + 1, arm_key))

    def plan(self) -> dict | None:
        return json.loads(self.file(names.CAMPAIGN).read_text()) if self.file(names.CAMPAIGN).is_file() else None

    def write_plan(self, doc: Mapping) -> None:
        self.file(names.CAMPAIGN).write_text(json.dumps(doc, indent=2, sort_keys=True))

    def summary(self) -> dict:
        if not self.file(names.SUMMARY).is_file():
            raise InputError(f"{self.path} has no {names.SUMMARY}: not a campaign folder, or it was interrupted "
                             f"(resume it with the same `cma-harness ab ... --out {self.path}`)")
        return json.loads(self.file(names.SUMMARY).read_text())

    def write_summary(self, summary: Mapping) -> None:
        self.file(names.SUMMARY).write_text(json.dumps(summary, indent=2, sort_keys=True))

    def decision_writer(self) -> JsonlWriter:
        return JsonlWriter(self.file(names.DECISIONS))


def run_folders(path: Path) -> list[RunFolder]:
    """A run folder itself, or every run of a campaign folder that has loop records."""
    if RunFolder.holds_run(path):
        return [RunFolder(path)]
    runs = [r for r in CampaignFolder(path).runs() if RunFolder.holds_run(r.path)]
    if not runs:
        raise InputError(f"{path}: neither a run folder ({names.LOOPS}) nor a campaign folder "
                         f"({names.RUNS}/*/{names.LOOPS})")
    return runs
