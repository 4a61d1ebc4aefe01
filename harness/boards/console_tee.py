"""Tee a console stream: a thread reads it as it arrives, writes it raw to a log, and queues its lines.

A thread, not on-demand reads: QEMU's PL011 blocks the guest's CPU when nobody reads the serial output,
so the console must be drained even while the harness is busy on the command channel.
"""

from __future__ import annotations

import queue
import threading
from typing import BinaryIO, Callable, Iterator

_EOF = object()


class ConsoleTee:
    def __init__(self, read: Callable[[float], bytes | None], log: BinaryIO,
                 keep: Callable[[str], str | None] | None = None, name: str = "console-tee"):
        """read(timeout) returns bytes, b"" when nothing came in time, or None at end of stream.
        keep(line), when given, sees every line in order and returns what to queue (None: nothing)."""
        self._read = read
        self._log = log
        self._keep = keep
        self._lines: queue.Queue = queue.Queue()
        self._tail: list[str] = []
        self._thread = threading.Thread(target=self._pump, name=name, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        partial = b""
        try:
            while True:
                data = self._read(0.2)
                if data is None:
                    break
                if not data:
                    continue
                self._log.write(data)
                *lines, partial = (partial + data).split(b"\n")
                for raw in lines:
                    self._put(raw)
        finally:
            if partial:
                self._put(partial)
            self._lines.put(_EOF)

    def _put(self, raw: bytes) -> None:
        line = raw.rstrip(b"\r").decode("utf-8", "replace")
        self._tail = (self._tail + [line])[-40:]
        if self._keep is not None and (line := self._keep(line)) is None:
            return
        self._lines.put(line)

    def lines(self, tick: float = 1.0) -> Iterator[str | None]:
        """Lines in order; None after `tick` seconds without one; ends at end of stream."""
        while True:
            try:
                item = self._lines.get(timeout=tick)
            except queue.Empty:
                yield None
                continue
            if item is _EOF:
                self._lines.put(_EOF)   # later callers see the end too
                return
            yield item

    def tail(self, n: int = 15) -> list[str]:
        """The last lines seen (for error messages), whether or not a caller consumed them."""
        return self._tail[-n:]

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
