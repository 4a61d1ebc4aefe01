"""Test helper: module records exactly as the module prints them (record format 2, with its sum)."""

from harness.parsers.kmsg import record_sum

BASE = 0x48800000


def record_line(loop: int, outcome: str = "..", *, stamp: float = 1.0, dur_us: int = 5) -> str:
    """`[ t] cma_harness: loop=N sum=S failed=...`: a chunk marked P or F has no address, like the module's."""
    pa = ",".join("0" if c in "PF" else f"{BASE + (i << 20):x}" for i, c in enumerate(outcome))
    failed = sum(c != "." for c in outcome)
    calls = failed + outcome.count("L") + 2 * outcome.count("P")   # as attribute_failure() counts
    head, tail = f"loop={loop}", f" failed={failed} calls_failed={calls} dur_us={dur_us} outcome={outcome} pa={pa}"
    return f"[{stamp:12.6f}] cma_harness: {head} sum={record_sum(head + tail):08x}{tail}"
