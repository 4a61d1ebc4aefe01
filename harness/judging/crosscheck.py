"""Cross-checks of a run folder against the reference model: placement, accounting, variant rule, busy pages."""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from harness.parsers import busy
from harness.spec import config
from harness.judging import checks
from harness.model import allocator
from harness.spec.variants import series_name, variant_for_series
from harness.parsers.busy import CHUNK_CALLS
from harness.spec.config import KernelSpec, Scenario
from harness.core.errors import InputError
from harness.judging.checks import CheckResult
from harness.model.replay import FailedLoop, MeasuredCall
from harness.store import names
from harness.store.run_folder import RunFolder

log = logging.getLogger(__name__)

# The kernels whose bh-LRU rules the model's variants were read against: 6.1, and 6.12, whose three
# defences sit in the same functions (kernel-configs/patches/README.md; 6.12's bh_lru_install() also
# returns early on an isolated CPU, which the harness's guests have none of).
MODELLED_SOURCES = ("debian", "debian-6.12")


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


def crosscheck(scn: Scenario, spec: KernelSpec, run: RunFolder, summary: Mapping,
               analysis: busy.Analysis | None = None) -> list[CheckResult]:
    """Every cross-check of one run folder, in a fixed order; reads the folder, changes nothing.
    `analysis` is the run's own busy.analyse() result, when it has one, so the trace is parsed once."""
    return run_checks(scn, spec, read_run(run, summary, analysis))


def crosscheck_quietly(scn: Scenario, spec: KernelSpec, run: RunFolder, summary: Mapping,
                       analysis: busy.Analysis | None = None) -> list[dict]:
    """crosscheck() at the end of a run, as summary.json entries. A failed check is a report, never an error;
    should the checks themselves crash, the run's measurements stand and one entry says why."""
    try:
        return [r.as_dict() for r in crosscheck(scn, spec, run, summary, analysis)]
    except Exception as e:  # noqa: BLE001 - the loops are measured; a checker bug must not cost the run
        log.exception("cross-checks of %s failed", run.path)
        return [CheckResult("crosscheck", None, f"the cross-checks could not run: {type(e).__name__}: {e}").as_dict()]


def check_folder(path: Path) -> list[CheckResult]:
    """crosscheck() of a saved run folder, with the scenario and variant it recorded (no guest needed)."""
    run = RunFolder(path)
    if not RunFolder.holds_run(path):
        raise InputError(f"{path}: no {run.file(names.LOOPS).name}; pass a run folder (or a campaign folder holding runs/)")
    if not run.file(names.SCENARIO).is_file():
        raise InputError(f"{path}: no {run.file(names.SCENARIO).name}; the cross-checks need the run's scenario")
    scn = config.load(run.file(names.SCENARIO))
    summary = run.summary() or {}
    return crosscheck(scn, scn.kernel_of(run.variant(summary)), run, summary)


def read_run(run: RunFolder, summary: Mapping, analysis: busy.Analysis | None = None) -> RunData:
    records = run.records()
    area = summary.get("area") or run.area()
    calls = failed_finish = None
    if area and analysis is None and (trace := run.trace_lines()) is not None:
        analysis = busy.analyse(run.console_lines(), trace, area["name"])
    if area and analysis is not None:
        calls = busy.calls_by_loop([busy.timed(r) for r in records], analysis.calls)[0]
        failed_finish = analysis.failed_finish_events
    return RunData(summary, records, area, calls, run.busy_traces(), failed_finish,
                   _cma_alignment(run.kernel_config_text()))


def _cma_alignment(config_text: str | None) -> int:
    if config_text and (m := re.search(r"^CONFIG_CMA_ALIGNMENT=(\d+)$", config_text, re.M)):
        return int(m.group(1))
    return allocator.CMA_ALIGNMENT


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
    # A board's default pool is shared: pages other drivers hold are taken in the bitmap, not busy, so
    # no trace shows them. Every call is then placed as an untraced one: the ranges it skipped are
    # inferred (busy or held), and it must still sit where the first-fit search can reach.
    shared = bool((data.summary.get("board") or {}).get("pool"))
    traced_calls = None if shared else data.calls
    loops = {r["loop"]: measured_calls(r, traced_calls.get(r["loop"]) if traced_calls is not None else None)
             for r in data.records if set(r["outcome"]) <= set(CHUNK_CALLS)}
    base_pfn, area_pages = _area_pages(data.area)
    result = checks.check_placement(loops, base_pfn=base_pfn, area_pages=area_pages, chunk_pages=chunk_pages,
                                   align_order=align_order)
    traced = len(traced_calls) if traced_calls is not None else 0
    detail = result.detail + ("; the default pool is shared: ranges others hold are inferred, not traced" if shared else "")
    return dataclasses.replace(result, detail=detail, data={**result.data, "loops_traced": traced, "shared_pool": shared})


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
    series = series_name(spec.patches)
    if spec.extra_patches:
        return CheckResult("variant_rule", None, f"{series} with {len(spec.extra_patches)} developer patch file(s): "
                           f"the model does not know what they change", {"series": series})
    if spec.source not in MODELLED_SOURCES:
        return CheckResult("variant_rule", None, f"kernel source {spec.source!r} is not one the model was checked "
                           f"against ({', '.join(MODELLED_SOURCES)})", {"series": series})
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
        sources.add(names.TRACE)
        return [tuple(c.busy_pfns) for c in chunk_calls]
    if row is None:
        return []
    if row.get("call_busy_pfns"):
        sources.add(names.BUSY_TRACES)
        return [tuple(pfns) for pfns in row["call_busy_pfns"]]
    # Older busy traces keep only the first busy page of the first failed call: assume every failed call of
    # the chunk met it (the retries of L and P chunks mostly do).
    sources.add(f"{names.BUSY_TRACES} (first busy page only)")
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
