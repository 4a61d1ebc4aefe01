"""Loop-record arithmetic, in one place: loops by outcome and by cause, for an arm or boot by boot.
A loop record is one line of loops.jsonl: {"loop", "failed", "outcome" (one letter per chunk), ...}."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

# The verdict's metric: "lru" counts loops with a chunk rescued only by the LRU flush (the module's L),
# "failed" counts loops with any failed chunk (the seed's own count).
METRICS = ("lru", "failed")


def metric_for(attribution: bool) -> str:
    """The verdict's metric for a module with or without attribution."""
    return "lru" if attribution else "failed"


def metric_text(metric: str) -> str:
    return "loops with an LRU-caused chunk" if metric == "lru" else "failed loops"


def shows_failure(record: Mapping, metric: str) -> bool:
    if metric == "lru":
        return "L" in record["outcome"]
    return record["failed"] > 0


def loop_counts(records: Sequence[Mapping], metric: str) -> tuple[int, int]:
    """(loops that show the failure under `metric`, loops)."""
    return sum(shows_failure(r, metric) for r in records), len(records)


def per_boot(boots: Iterable[Sequence[Mapping]], metric: str) -> list[tuple[int, int]]:
    """(events, loops) of each boot, in run order."""
    return [loop_counts(b, metric) for b in boots]


def per_boot_text(counts: Iterable[Sequence[int]]) -> str:
    return ", ".join(f"{e}/{n}" for e, n in counts)


def cause_counts(records: Iterable[Mapping]) -> dict[str, int]:
    """Failed chunks by cause letter (T, L, P, F), over the records."""
    out: dict[str, int] = {}
    for r in records:
        for c in r["outcome"]:
            if c != ".":
                out[c] = out.get(c, 0) + 1
    return out


def attribution_off_loops(records: Iterable[Mapping]) -> int:
    """Loops recorded with attribution off (an F chunk): the LRU cause was not measured in them."""
    return sum("F" in r["outcome"] for r in records)
