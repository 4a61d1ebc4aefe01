"""The console watcher of a run: console lines (and quiet ticks) in, what happened out, with the run's
phase as one small explicit state machine. Pure: the caller passes the clock and does all the I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Union

from harness.parsers import kmsg


class Phase(enum.Enum):
    """Where a run's guest is, from the console's point of view. LOOPING is the only open phase."""
    LOOPING = "looping"      # the module is loaded; loop records are arriving
    DONE = "done"            # the module printed its done line
    CRASHED = "crashed"      # a kernel report killed the loop thread: nothing more will come
    HUNG = "hung"            # no loop record for the hang timeout
    STOPPED = "stopped"      # the console ended: the guest reset (panic) or QEMU died

    @property
    def final(self) -> bool:
        return self is not Phase.LOOPING


@dataclass(frozen=True)
class LoopSeen:
    record: kmsg.LoopRecord


@dataclass(frozen=True)
class AreaSeen:
    area: dict                  # name, base, size


@dataclass(frozen=True)
class ReportSeen:
    report: kmsg.KernelReport   # whole (or cut short when the console went quiet or ended)


@dataclass(frozen=True)
class Ended:
    phase: Phase
    reason: str = ""
    records_dropped: int = 0    # loops the module ran whose record did not survive (console damage)


Seen = Union[LoopSeen, AreaSeen, ReportSeen, Ended]


@dataclass
class ConsoleWatcher:
    """Feed it every console line as it arrives (None for a quiet tick); it returns what each line meant.

    A WARNING (or a BUG that did not oops) is kept whole and the loops go on; a fatal report ends the
    watch. A report whose end marker has not come after `report_quiet_s` is kept as it is."""
    hang_timeout_s: float
    report_quiet_s: float
    started: float                                  # the clock when the module was loaded
    phase: Phase = Phase.LOOPING
    loops_seen: int = 0
    failed_seen: int = 0
    _reports: kmsg.ReportAssembler = field(default_factory=kmsg.ReportAssembler)
    _last_record: float | None = None
    _last_line: float | None = None
    _lineno: int = 0                                # the line's number in console.log (every line since boot)

    def feed(self, line: str | None, now: float) -> list[Seen]:
        if self.phase.final:
            return []
        if self._last_record is None:
            self._last_record = self._last_line = self.started
        out: list[Seen] = []
        if line is not None:
            self._last_line, self._lineno = now, self._lineno + 1
            ev = kmsg.parse_line(line, self._lineno)
            if isinstance(ev, kmsg.LoopRecord):
                self._last_record = now
                self.loops_seen += 1
                self.failed_seen += bool(ev.failed)
                out.append(LoopSeen(ev))
            elif isinstance(ev, kmsg.AreaInfo):
                out.append(AreaSeen(ev.summary_dict()))
            elif isinstance(ev, kmsg.ModuleDone):
                return out + self._end(Phase.DONE, records_dropped=max(0, ev.loops - self.loops_seen))
            if (rep := self._reports.feed(line, self._lineno)) is not None:
                out += self._report(rep)
        elif self._reports.open and now - self._last_line > self.report_quiet_s:
            out += self._report(self._reports.flush())
        if not self.phase.final and not self._reports.open and now - self._last_record > self.hang_timeout_s:
            out += self._end(Phase.HUNG, f"no loop record for {self.hang_timeout_s:g} s (board.hang_timeout_s)")
        return out

    def console_ended(self) -> list[Seen]:
        """The console stream ended (QEMU exited): a panic reset the guest (panic=-1, -no-reboot), or it died."""
        if self.phase.final:
            return []
        out: list[Seen] = []
        if (rep := self._reports.flush(guest_stopped=True)) is not None:
            out += self._report(rep)
        if not self.phase.final:
            out += self._end(Phase.STOPPED, "the console ended before the module finished")
        return out

    def _report(self, rep: kmsg.KernelReport) -> list[Seen]:
        out: list[Seen] = [ReportSeen(rep)]
        if rep.fatal:
            out += self._end(Phase.CRASHED, f"kernel {rep.report}: {rep.title.strip()}")
        return out

    def _end(self, phase: Phase, reason: str = "", records_dropped: int = 0) -> list[Seen]:
        self.phase = phase
        return [Ended(phase, reason, records_dropped)]
