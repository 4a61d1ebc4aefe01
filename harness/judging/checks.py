"""The cross-check verdicts: a measurement against the reference model, plain data in, CheckResult out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from harness.model.allocator import (
    CMA_ALIGNMENT,
    CmaArea,
    format_pa,
    idle_placement,
)
from harness.model.bh_lru import lru_failure_reasons
from harness.model.replay import (
    FailedLoop,
    MeasuredCall,
    describe_failed,
    failed_chunks,
    replay_attributed_loop,
    replay_placement,
)
from harness.spec.variants import Defences

# Issue 6: cross-check 4 must agree on at least this share of failed chunks.
BUSY_PAGES_AGREEMENT = 0.95


@dataclass(frozen=True)
class CheckResult:
    """ok is True (agrees), False (a finding) or None (not measured, skipped)."""

    name: str
    ok: bool | None
    detail: str
    data: Mapping[str, object] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return {True: "pass", False: "fail", None: "skipped"}[self.ok]

    def as_dict(self) -> dict[str, object]:
        result = asdict(self)
        result["data"] = dict(self.data)
        result["status"] = self.status
        return result


def check_idle_placement(measured_pa: Sequence[int | None], base_pa: int, area_size: int,
                         chunk_size: int) -> CheckResult:
    """Chunk by chunk, does an idle loop place chunks where cma_alloc's first fit puts them?"""
    expected = idle_placement(base_pa, area_size, chunk_size, len(measured_pa))
    mismatches = [
        f"chunk {index}: measured {format_pa(got)}, model {format_pa(want)}"
        for index, (got, want) in enumerate(zip(measured_pa, expected, strict=True))
        if got != want
    ]
    detail = "; ".join(mismatches) or f"all {len(measured_pa)} chunks where the model puts them"
    return CheckResult("idle_placement", not mismatches, detail,
                       {"expected": expected, "mismatches": len(mismatches)})


def check_accounting(alloc_calls_failed: int, sysfs_fail_pages_delta: int | None,
                     pages_per_chunk: int, failed_finish_events: int | None) -> CheckResult:
    """Do the module's records, sysfs and the trace agree on how many cma_alloc() calls failed?

    alloc_calls_failed is every failed dma_alloc_coherent() the module made, attribution
    retries included: each retry is a cma_alloc() call too, and each failed call adds
    pages_per_chunk to the area's sysfs alloc_pages_fail and emits one cma_alloc_finish with a
    NULL page (its pfn is the last range tried, not -1, after a busy retry). None means the
    figure was not measured.
    """
    expected_pages = alloc_calls_failed * pages_per_chunk
    compared, disagreements = [], []
    if sysfs_fail_pages_delta is not None:
        compared.append("sysfs")
        if sysfs_fail_pages_delta != expected_pages:
            disagreements.append(f"sysfs alloc_pages_fail grew by {sysfs_fail_pages_delta}, "
                                 f"records imply {expected_pages}")
    if failed_finish_events is not None:
        compared.append("trace")
        if failed_finish_events != alloc_calls_failed:
            disagreements.append(f"{failed_finish_events} failed cma_alloc_finish events, "
                                 f"records have {alloc_calls_failed} failed calls")
    data = {"alloc_calls_failed": alloc_calls_failed, "expected_fail_pages": expected_pages}
    if not compared:
        return CheckResult("accounting", None, "neither sysfs nor trace measured", data)
    detail = "; ".join(disagreements) or f"records agree with {' and '.join(compared)}"
    return CheckResult("accounting", not disagreements, detail, data)


def check_variant_rule(defences: Defences, lru_caused_failures: int) -> CheckResult:
    """A measured LRU-caused failure on a variant that cannot have one is a finding."""
    reasons = lru_failure_reasons(defences)
    data = {"lru_caused_failures": lru_caused_failures, "model_reasons": list(reasons)}
    if lru_caused_failures and not reasons:
        return CheckResult("variant_rule", False,
                           f"finding: LRU-caused failed chunks: {lru_caused_failures}, on a variant "
                           "whose defences rule them out", data)
    if not reasons:
        return CheckResult("variant_rule", True, "no LRU-caused failed chunk, none possible", data)
    return CheckResult("variant_rule", True,
                       f"LRU-caused failed chunks: {lru_caused_failures}; possible through: "
                       + "; ".join(reasons), data)



def check_placement(loops: Mapping[int, Sequence[MeasuredCall]], *, base_pfn: int,
                    area_pages: int, chunk_pages: int,
                    align_order: int = CMA_ALIGNMENT) -> CheckResult:
    """Chunk by chunk, did every call land where 6.1's cma_alloc() puts it?

    A call whose busy ranges were traced is replayed with exactly those ranges busy: the model
    must meet them in the same order and end where the call ended. An untraced call is replayed
    with every range before the measured one busy, so its placement must be one the first-fit
    search can reach, and the ranges it skipped are the busy ranges that implies. A loop that met
    no busy range must sit exactly at idle_placement()."""
    if not loops:
        return CheckResult("placement", None, "no loop to check")
    idle, traced, inferred, mismatches = [], [], [], []
    for loop, calls in sorted(loops.items()):
        problem, met = replay_placement(calls, CmaArea(base_pfn, area_pages), chunk_pages,
                                         align_order)
        if problem:
            mismatches.append(f"loop {loop} {problem}")
        elif not met:
            idle.append(loop)
        elif all(call.busy is not None for call in calls):
            traced.append(loop)
        else:
            inferred.append(loop)
    calls = sum(len(c) for c in loops.values())
    data = {"loops": len(loops), "calls": calls, "idle_loops": len(idle),
            "busy_loops_traced": traced, "busy_loops_inferred": inferred,
            "mismatches": mismatches}
    if mismatches:
        shown = "; ".join(mismatches[:5]) + ("; ..." if len(mismatches) > 5 else "")
        return CheckResult("placement", False,
                           f"{len(mismatches)} of {len(loops)} loops placed a chunk where the "
                           f"model does not: {shown}", data)
    detail = (f"all {calls} calls of {len(loops)} loops where the model puts them; "
              f"{len(idle)} loops at the idle placement")
    if traced:
        detail += f", {len(traced)} after busy ranges the trace saw"
    if inferred:
        detail += f", {len(inferred)} after busy ranges inferred from the placement (not traced)"
    return CheckResult("placement", True, detail, data)



def check_busy_pages(loops: Mapping[int, FailedLoop], *, base_pfn: int, area_pages: int,
                     chunk_pages: int, align_order: int = CMA_ALIGNMENT,
                     attribution: bool = True) -> CheckResult:
    """Replay each failed loop with its busy pages (replay_attributed_loop) and compare the
    chunks the model says must fail with the ones that failed, chunk by chunk.

    agreement = failed chunks both name / failed chunks either names. For contrast, data also
    holds the agreement when every busy page is held for the whole loop (what the pages alone
    predict, without when they were seen)."""
    if not loops:
        return CheckResult("busy_pages", None, "no failed loop with busy pages recorded")
    kwargs = {"base_pfn": base_pfn, "area_pages": area_pages, "chunk_pages": chunk_pages,
              "align_order": align_order, "attribution": attribution}
    both = either = held_both = held_either = causes = placed = 0
    per_loop, disagreeing = {}, []
    for loop, measured in sorted(loops.items()):
        chunks = len(measured.outcome)
        predicted, pfns = replay_attributed_loop(chunks, measured.last_seen, **kwargs)
        whole_loop, _ = replay_attributed_loop(
            chunks, {pfn: (chunks, 0) for pfn in measured.last_seen}, **kwargs)
        want, got = failed_chunks(measured.outcome), failed_chunks(predicted)
        held = failed_chunks(whole_loop)
        both, either = both + len(want & got), either + len(want | got)
        held_both, held_either = held_both + len(want & held), held_either + len(want | held)
        causes += sum(measured.outcome[i] == predicted[i] for i in want)
        placed += list(measured.pfns) == list(pfns)
        per_loop[loop] = {"measured": measured.outcome, "predicted": predicted,
                          "whole_loop": whole_loop, "agree": want == got}
        if want != got:
            disagreeing.append(loop)
    agreement = both / either if either else 1.0
    measured_chunks = sum(len(failed_chunks(m.outcome)) for m in loops.values())
    data = {"agreement": agreement, "failed_chunks": measured_chunks, "agreeing_chunks": both,
            "causes_agreeing": causes,
            "placement_agreeing_loops": placed if any(m.pfns for m in loops.values()) else None,
            "whole_loop_agreement": held_both / held_either if held_either else 1.0,
            "required": BUSY_PAGES_AGREEMENT, "loops": per_loop}
    detail = (f"{both} of {either} failed chunks agree ({agreement:.0%}) over {len(loops)} "
              f"loops; cause letters agree on {causes} of {measured_chunks}")
    if data["placement_agreeing_loops"] is not None:
        detail += f"; every chunk placed as measured in {placed} of {len(loops)} loops"
    detail += f"; with every busy page held for the whole loop: {data['whole_loop_agreement']:.0%}"
    if disagreeing:
        detail += "; disagreeing loops: " + ", ".join(
            f"{loop} (measured {describe_failed(per_loop[loop]['measured'])}, "
            f"model {describe_failed(per_loop[loop]['predicted'])})" for loop in disagreeing[:5])
    return CheckResult("busy_pages", agreement >= BUSY_PAGES_AGREEMENT, detail, data)
