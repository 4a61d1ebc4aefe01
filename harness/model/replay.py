"""Replays of measured loops through the allocator: a loop's calls with their measured busy ranges, and
a failed loop held to its busy pages (what the module's attribution would then have recorded)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from harness.model.allocator import (
    CMA_ALIGNMENT,
    CmaArea,
    format_pfns,
    pages_busy,
)


class MeasuredCall(NamedTuple):
    """One measured cma_alloc() call of a loop (a chunk's first try or an attribution retry)."""

    chunk: int
    ok: bool
    pfn: int | None                 # where the call placed the chunk; None when it failed
    busy: tuple[int, ...] | None    # first busy page of each range it found busy, in order
    #                                 (test_pages_isolated fin_pfn); None when not traced


def replay_placement(calls: Sequence[MeasuredCall], area: CmaArea, chunk_pages: int,
                      align_order: int) -> tuple[str | None, int]:
    """(the first disagreement or None, busy ranges the calls met) for one loop."""
    met = 0
    for call in calls:
        if call.busy is not None:
            attempt = area.try_alloc(chunk_pages, align_order, pages_busy(call.busy))
            tried = attempt.busy_pfns
            if len(tried) != len(call.busy) or not all(
                    start <= page < start + chunk_pages for start, page in zip(tried, call.busy)):
                return (f"chunk {call.chunk}: the trace saw busy pages at "
                        f"{format_pfns(call.busy)}, the model met busy ranges at "
                        f"{format_pfns(tried)}"), met
        else:
            # Untraced: every range the search meets before the measured one must have been
            # busy; a placement the search cannot reach (misaligned, taken, outside) fails.
            attempt = area.try_alloc(chunk_pages, align_order,
                                     (lambda pfn, count, want=call.pfn: pfn != want)
                                     if call.ok else (lambda pfn, count: True))
        met += attempt.busy_retries
        want = call.pfn if call.ok else None
        if attempt.pfn == want:
            continue
        if call.busy is None:
            first_choice = attempt.busy_pfns[0] if attempt.busy_pfns else None
            return (f"chunk {call.chunk}: measured {format_pfns([want])}, not a free aligned "
                    f"range the search can reach (the model's first choice: "
                    f"{format_pfns([first_choice])})"), met
        return (f"chunk {call.chunk}: measured {format_pfns([want])}, "
                f"model {format_pfns([attempt.pfn])}"), met
    return None, met



# The module's attribution: the call (first try, plain retry, retry after invalidate_bh_lrus())
# that got the chunk, or P when none did (F: attribution off, the first try failed).
ATTRIBUTION_CAUSES = ".TL"


@dataclass(frozen=True)
class FailedLoop:
    """A measured loop with failed chunks, as the busy traces describe it."""

    outcome: str                                 # the module's record: '.' ok, T/L/P/F failed
    last_seen: Mapping[int, tuple[int, int]]     # busy pfn -> (chunk, call) of the last
    #                                              cma_alloc() call that found it busy
    pfns: Sequence[int | None] = ()              # the record's placement of each chunk


def replay_attributed_loop(chunks: int, last_seen: Mapping[int, tuple[int, int]], *,
                           base_pfn: int, area_pages: int, chunk_pages: int,
                           align_order: int = CMA_ALIGNMENT,
                           attribution: bool = True) -> tuple[str, tuple[int | None, ...]]:
    """The module's loop (attribution retries included) with each busy page held from the
    loop's start to the last call that found it busy; returns the outcome string and the pfns.

    Held from the start because a range stays allocated until the loop frees everything: a
    range free at a later call was skipped by every earlier search that reached it, so it was
    busy then too. Released after the last sighting because a later call that reached the
    range would have found it busy again."""
    area = CmaArea(base_pfn, area_pages)
    tries = len(ATTRIBUTION_CAUSES) if attribution else 1
    outcome, pfns = [], []
    for chunk in range(chunks):
        for call in range(tries):
            held = pages_busy(pfn for pfn, seen in last_seen.items() if seen >= (chunk, call))
            pfn = area.alloc(chunk_pages, align_order, held)
            if pfn is not None:
                outcome.append(ATTRIBUTION_CAUSES[call])
                break
        else:
            outcome.append("P" if attribution else "F")
        pfns.append(pfn)
    return "".join(outcome), tuple(pfns)


def failed_chunks(outcome: str) -> set[int]:
    return {index for index, cause in enumerate(outcome) if cause != "."}


def describe_failed(outcome: str) -> str:
    """'......T.L' -> 'chunks 6T 8L'."""
    failed = [f"{index}{outcome[index]}" for index in sorted(failed_chunks(outcome))]
    return "chunks " + " ".join(failed) if failed else "no failed chunk"
