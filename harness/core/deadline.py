"""One deadline per operation, passed down; callees ask for .remaining instead of summing timeouts."""

from __future__ import annotations

import time


class Deadline:
    def __init__(self, seconds: float, what: str = "operation"):
        self.what = what
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    @property
    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining <= 0

    def child(self, seconds: float) -> "Deadline":
        """A shorter deadline inside this one."""
        d = Deadline(min(seconds, self.remaining), self.what)
        return d
