"""Cross-checks of a run folder against the reference model: placement, accounting, variant rule, busy pages."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from harness.parsers import busy
from harness.spec import config
from harness.judging import checks
from harness.model import allocator
from harness.spec.variants import variant_for_series
from harness.parsers import kmsg
from harness.parsers import ftrace
from harness.parsers.busy import CHUNK_CALLS
from harness.spec.config import KernelSpec, Scenario
from harness.core.errors import InputError
from harness.judging.checks import CheckResult
from harness.model.replay import FailedLoop, MeasuredCall
from harness.store.jsonl import read_jsonl

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunData:
    """What the cross-checks read from a run folder, parsed."""
    summary: Mapping
    records: list[dict]                              # loops.jsonl
    area: Mapping | None                             # name, base, size (the module's `cma_harness: area` line)
    calls: Mapping[int, list[busy.CmaCall]] | None   # loop -> its cma_alloc() calls; None: no trace.txt
    busy_traces: list[dict]                          # busy-traces.jsonl
    failed_finish_events: int | None                 # cma_alloc_finish with a NULL page, from the trace
    cma_alignment: int                               # the run kernel's CONFIG_CMA_ALIGNMENT


def crosscheck(scn: Scenario, variant_spec: KernelSpec, folder: Path, summary: Mapping) -> list[CheckResult]:
    """Every cross-check of one run folder, in a fixed order; reads the folder, changes nothing."""
    return run_checks(scn, variant_spec, read_run(folder, summary))


def crosscheck_quietly(scn: Scenario, variant_spec: KernelSpec, folder: Path, summary: Mapping) -> list[dict]:
    """crosscheck() at the end of a run, as summary.json entries. A failed check is a report, never an error;
    should the checks themselves crash, the run's measurements stand and one entry says why."""
    try:
        return [r.as_dict() for r in crosscheck(scn, variant_spec, folder, summary)]
    except Exception as e:  # noqa: BLE001 - the loops are measured; a checker bug must not cost the run
        log.exception("cross-checks of %s failed", folder)
        return [CheckResult("crosscheck", None, f"the cross-checks could not run: {type(e).__name__}: {e}").as_dict()]


def check_folder(folder: Path) -> list[CheckResult]:
    """crosscheck() of a saved run folder, with the scenario and variant it recorded (no guest needed)."""
    if not (folder / "loops.jsonl").is_file():
        raise InputError(f"{folder}: no loops.jsonl; pass a run folder (or a campaign folder holding runs/)")
    if not (folder / "scenario.yaml").is_file():
        raise InputError(f"{folder}: no scenario.yaml; the cross-checks need the run's scenario")
    scn = config.load(folder / "scenario.yaml")
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return crosscheck(scn, variant_spec(scn, run_variant(folder, summary)), folder, summary)


def run_folders(folder: Path) -> list[Path]:
    """A run folder itself, or every run of a campaign folder (runs/NNN-variant)."""
    if (folder / "loops.jsonl").is_file():
        return [folder]
    runs = sorted(p for p in (folder / "runs").glob("*") if (p / "loops.jsonl").is_file())
    if not runs:
        raise InputError(f"{folder}: neither a run folder (loops.jsonl) nor a campaign folder (runs/*/loops.jsonl)")
    return runs


def run_variant(folder: Path, summary: Mapping) -> str:
    """The variant name a run was started with (summary.json, else its loop records)."""
    if summary.get("variant"):
        return summary["variant"]
    first = next(read_jsonl(folder / "loops.jsonl"), {})
    return first.get("variant", "kernel")


def variant_spec(scn: Scenario, variant: str) -> KernelSpec:
    """The kernel a variant name stands for; `cma-harness run` without --variant names the scenario's kernel."""
    return scn.variants.get(variant, scn.kernel)


def series_of(spec: KernelSpec) -> str:
    """The patch series a kernel was built with, by directory name ("stock" when unpatched)."""
    if spec.patches is None:
        return "stock"
    path = Path(spec.patches)
    return path.parent.name if path.name == "series" else path.name


# --------------------------------------------------------------------------------------------
# Reading a run folder
# --------------------------------------------------------------------------------------------

def read_run(folder: Path, summary: Mapping) -> RunData:
    records = list(read_jsonl(folder / "loops.jsonl"))
    area = summary.get("area") or _area_from_console(folder / "console.log")
    calls = failed_finish = None
    trace_path = folder / "trace.txt"
    if area and trace_path.is_file():
        items = ftrace.parse_trace(_lines(trace_path))
        calls = calls_by_loop(records, busy.cma_calls(items, area["name"]))
        failed_finish = busy.failed_finish_events(items, area["name"])
    return RunData(summary, records, area, calls, list(read_jsonl(folder / "busy-traces.jsonl")), failed_finish,
                   _cma_alignment(folder / "kernel.config"))


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def _area_from_console(path: Path) -> dict | None:
    if not path.is_file():
        return None
    found = [e for e in kmsg.parse_lines(_lines(path)) if isinstance(e, kmsg.AreaInfo)]
    return {"name": found[-1].name, "base": found[-1].base, "size": found[-1].size} if found else None


def _cma_alignment(path: Path) -> int:
    if path.is_file() and (m := re.search(r"^CONFIG_CMA_ALIGNMENT=(\d+)$", path.read_text(), re.M)):
        return int(m.group(1))
    return allocator.CMA_ALIGNMENT


def calls_by_loop(records: Sequence[Mapping], calls: Sequence[busy.CmaCall]) -> dict[int, list[busy.CmaCall]]:
    """Each loop's cma_alloc() calls, by busy.join's rule (those that finished after the previous record and
    before this one); a loop whose calls do not match its record's outcome is left out."""
    out: dict[int, list[busy.CmaCall]] = {}
    previous = float("-inf")
    for rec in sorted((r for r in records if r.get("time") is not None), key=lambda r: r["time"]):
        mine = [c for c in calls if previous < c.finish <= rec["time"]]
        previous = rec["time"]
        if [c.ok for c in mine] == [ok for cause in rec["outcome"] for ok in CHUNK_CALLS.get(cause, (None,))]:
            out[rec["loop"]] = mine
    return out


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------

def run_checks(scn: Scenario, spec: KernelSpec, data: RunData) -> list[CheckResult]:
    chunk_pages = scn.module.chunk_kib * 1024 // allocator.PAGE_SIZE
    align_order = allocator.dma_align_order(scn.module.chunk_kib * 1024, cma_alignment=data.cma_alignment)
    attribution = scn.module.attribution and not any("F" in r["outcome"] for r in data.records)
    return [placement(data, chunk_pages, align_order), accounting(data, chunk_pages),
            variant_rule(spec, data.records, attribution),
            busy_pages(data, chunk_pages, align_order, attribution)]


def _area_pages(area: Mapping) -> tuple[int, int]:
    return area["base"] // allocator.PAGE_SIZE, area["size"] // allocator.PAGE_SIZE


def measured_calls(record: Mapping, traced: Sequence[busy.CmaCall] | None) -> list[MeasuredCall]:
    """A loop record's cma_alloc() calls (a failed chunk's attribution retries too), with the busy pages
    the trace saw in each when `traced` holds the loop's calls."""
    out, it = [], iter(traced or ())
    for chunk, cause in enumerate(record["outcome"]):
        pa = record["pa"][chunk]
        for ok in CHUNK_CALLS[cause]:
            call = next(it) if traced is not None else None
            out.append(MeasuredCall(chunk, ok, pa // allocator.PAGE_SIZE if ok and pa is not None else None,
                                    tuple(call.busy_pfns) if call else None))
    return out


def placement(data: RunData, chunk_pages: int, align_order: int) -> CheckResult:
    """Check 1: every call of every loop where the model's cma_alloc() puts it."""
    if data.area is None:
        return CheckResult("placement", None, "the module never printed its area: no base to place chunks from")
    loops = {r["loop"]: measured_calls(r, data.calls.get(r["loop"]) if data.calls is not None else None)
             for r in data.records if set(r["outcome"]) <= set(CHUNK_CALLS)}
    base_pfn, area_pages = _area_pages(data.area)
    result = checks.check_placement(loops, base_pfn=base_pfn, area_pages=area_pages, chunk_pages=chunk_pages,
                                   align_order=align_order)
    traced = len(data.calls) if data.calls is not None else 0
    return dataclasses.replace(result, data={**result.data, "loops_traced": traced})


def accounting(data: RunData, chunk_pages: int) -> CheckResult:
    """Check 2: records, sysfs and trace agree on failed cma_alloc() calls (as the run computed it, if it did)."""
    if stored := data.summary.get("accounting"):
        return CheckResult(stored["name"], stored["ok"], stored["detail"], stored.get("data", {}))
    delta = data.summary.get("counters_delta")
    if delta is None or data.area is None:
        return CheckResult("accounting", None, "the run did not finish its loops: no counters to compare")
    sysfs_fail_pages = delta.get(f"cma/{data.area['name']}/alloc_pages_fail")
    return checks.check_accounting(data.summary.get("calls_failed", 0), sysfs_fail_pages, chunk_pages,
                                  data.failed_finish_events)


def variant_rule(spec: KernelSpec, records: Sequence[Mapping], attribution: bool) -> CheckResult:
    """Check 3: an LRU-caused failure ('L') on a variant whose defences rule them out is a finding."""
    series = series_of(spec)
    if spec.source != "debian":
        return CheckResult("variant_rule", None, f"kernel source {spec.source!r} is not Debian's 6.1: the model "
                           f"knows only the eight 6.1 variants", {"series": series})
    try:
        defences = variant_for_series(series)
    except ValueError as e:
        return CheckResult("variant_rule", None, f"the model does not know this kernel: {e}", {"series": series})
    if not attribution:
        return CheckResult("variant_rule", None, "attribution off: LRU-caused failures were not measured",
                           {"series": series})
    lru = sum(r["outcome"].count("L") for r in records)
    result = checks.check_variant_rule(defences, lru)
    return dataclasses.replace(result, detail=f"{series}: {result.detail}", data={**result.data, "series": series})


def failed_loops(data: RunData) -> tuple[dict[int, FailedLoop], dict[int, str], str]:
    """Each failed loop's busy pages, with the last call that found each one busy; the failed loops left out
    (and why); where the pages came from."""
    rows: dict[int, dict[int, dict]] = {}
    for row in data.busy_traces:
        rows.setdefault(row["loop"], {})[row["chunk"]] = row
    loops, left_out, sources = {}, {}, set()
    for rec in data.records:
        if not rec["failed"]:
            continue
        seen, missing = {}, []
        traced = (data.calls or {}).get(rec["loop"])
        calls = iter(traced or ())
        for chunk, cause in enumerate(rec["outcome"]):
            chunk_calls = [next(calls, None) for _ in CHUNK_CALLS[cause]] if traced else []
            if cause == ".":
                continue
            per_call = _busy_per_call(cause, chunk_calls, rows.get(rec["loop"], {}).get(chunk), sources)
            if not any(per_call):
                missing.append(chunk)
            for index, pfns in enumerate(per_call):
                for pfn in pfns:
                    seen[pfn] = max(seen.get(pfn, (-1, -1)), (chunk, index))
        if missing:
            left_out[rec["loop"]] = f"no busy page known for failed chunk(s) {missing}"
            continue
        pfns = [None if pa is None else pa // allocator.PAGE_SIZE for pa in rec["pa"]]
        loops[rec["loop"]] = FailedLoop(rec["outcome"], seen, pfns)
    return loops, left_out, ", ".join(sorted(sources)) or "none"


def _busy_per_call(cause: str, chunk_calls: list, row: Mapping | None, sources: set) -> list[tuple[int, ...]]:
    """The busy pages each of a failed chunk's calls found: from the trace, else its busy trace."""
    if chunk_calls:
        sources.add("trace.txt")
        return [tuple(c.busy_pfns) for c in chunk_calls]
    if row is None:
        return []
    if row.get("call_busy_pfns"):
        sources.add("busy-traces.jsonl")
        return [tuple(pfns) for pfns in row["call_busy_pfns"]]
    # Older busy traces keep only the first busy page of the first failed call: assume every failed call of
    # the chunk met it (the retries of L and P chunks mostly do).
    sources.add("busy-traces.jsonl (first busy page only)")
    return [(row["pfn"],) if row.get("pfn") is not None and not ok else () for ok in CHUNK_CALLS[cause]]


def busy_pages(data: RunData, chunk_pages: int, align_order: int, attribution: bool) -> CheckResult:
    """Check 4: the chunks the model says must fail, given the busy pages, against those that failed."""
    if data.area is None:
        return CheckResult("busy_pages", None, "the module never printed its area")
    loops, left_out, source = failed_loops(data)
    base_pfn, area_pages = _area_pages(data.area)
    result = checks.check_busy_pages(loops, base_pfn=base_pfn, area_pages=area_pages, chunk_pages=chunk_pages,
                                    align_order=align_order, attribution=attribution)
    detail = result.detail
    if not loops and not any(r["failed"] for r in data.records):
        detail = "no failed chunk"
    if left_out:
        detail += f"; {len(left_out)} failed loops left out (no busy page known: no trace, or it missed them)"
    return dataclasses.replace(result, detail=detail,
                               data={**result.data, "source": source, "left_out": left_out})


def describe(results: Sequence[Mapping]) -> list[str]:
    """One line per check for a terminal: name, status, detail."""
    return [f"cross-check {r['name']:12} {r['status']:7} {r['detail']}" for r in results]
