"""A run folder: where each of its files is, and typed readers and writers for them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from harness.core.errors import InputError
from harness.parsers import kmsg
from harness.store import names
from harness.store.jsonl import JsonlWriter, read_jsonl


def read_lines(path: Path) -> list[str]:
    """A captured text file as lines; bytes that are not UTF-8 (console damage) become U+FFFD."""
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


@dataclass(frozen=True)
class RunFolder:
    path: Path

    # -- where things are ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        """A file of the run folder, by its name in store.names (e.g. run.file(names.CONSOLE))."""
        return self.path / name


    @staticmethod
    def holds_run(path: Path) -> bool:
        """Whether `path` is a run folder (it has loop records, even if the run was cut short)."""
        return (path / names.LOOPS).is_file()

    # -- readers ---------------------------------------------------------------------------
    def summary(self) -> dict | None:
        """summary.json, or None when the run never wrote one (killed, or never started)."""
        if not self.file(names.SUMMARY).is_file():
            return None
        try:
            return json.loads(self.file(names.SUMMARY).read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{self.file(names.SUMMARY)} is empty or torn (the run could not finish writing it; a full "
                             f"disk?): {e}") from e

    def records(self) -> list[dict]:
        """Every loop record, in the order the console delivered them (none if there is no loops.jsonl)."""
        return list(read_jsonl(self.file(names.LOOPS))) if self.file(names.LOOPS).is_file() else []

    def iter_records(self) -> Iterator[dict]:
        return read_jsonl(self.file(names.LOOPS))

    def console_lines(self) -> list[str]:
        return read_lines(self.file(names.CONSOLE)) if self.file(names.CONSOLE).is_file() else []

    def trace_lines(self) -> list[str] | None:
        """The trace's lines, or None when the run has no trace."""
        return read_lines(self.file(names.TRACE)) if self.file(names.TRACE).is_file() else None

    def trace_stats_text(self) -> str:
        return self.file(names.TRACE_STATS).read_text() if self.file(names.TRACE_STATS).is_file() else ""

    def busy_traces(self) -> list[dict]:
        return list(read_jsonl(self.file(names.BUSY_TRACES))) if self.file(names.BUSY_TRACES).is_file() else []

    def kernel_config_text(self) -> str | None:
        return self.file(names.KERNEL_CONFIG).read_text() if self.file(names.KERNEL_CONFIG).is_file() else None

    def kernel_record(self) -> dict | None:
        """kernel.json: the kernel's cache key, exact source and patches (None for runs made before it existed)."""
        return json.loads(self.file(names.KERNEL_RECORD).read_text()) if self.file(names.KERNEL_RECORD).is_file() else None

    def write_kernel_record(self, record: Mapping) -> None:
        self.file(names.KERNEL_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True))

    def area(self) -> dict | None:
        """The CMA area as the module printed it on the console (name, base, size), or None."""
        found = [e for e in kmsg.parse_lines(self.console_lines()) if isinstance(e, kmsg.AreaInfo)]
        return found[-1].summary_dict() if found else None

    def variant(self, summary: Mapping | None = None) -> str:
        """The variant name the run was started with (summary.json, else its loop records)."""
        summary = self.summary() if summary is None else summary
        if summary and summary.get("variant"):
            return summary["variant"]
        first = next(read_jsonl(self.file(names.LOOPS)), {}) if self.file(names.LOOPS).is_file() else {}
        return first.get("variant", "kernel")

    def saved_state(self) -> str:
        """The run's end state as summary.json says, or "interrupted" (also when it could not be written)."""
        try:
            summary = self.summary()
        except InputError:
            return "interrupted"
        if summary is None or (summary.get("error") or "").startswith("interrupted"):
            return "interrupted"
        return summary["state"]

    # -- writers ---------------------------------------------------------------------------
    def create(self) -> "RunFolder":
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def write_summary(self, summary: Mapping) -> None:
        self.file(names.SUMMARY).write_text(json.dumps(summary, indent=2, sort_keys=True))

    def loop_writer(self) -> JsonlWriter:
        return JsonlWriter(self.file(names.LOOPS))

    def write_busy_traces(self, rows: Iterable[Mapping]) -> None:
        with JsonlWriter(self.file(names.BUSY_TRACES)) as out:
            for row in rows:
                out.write(row)
