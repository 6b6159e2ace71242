"""The one virtual clock that owns all simulated time.

Why virtual: quiesce timeouts (the guest abort timer defaults to 900 s), the VSS hold-writes
window and snapshot durations must be testable in microseconds of wall time and must replay
exactly. Nothing in the simulator reads the wall clock; everything asks this clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

__all__ = ["VirtualClock", "EPOCH"]

#: Virtual time starts at the release month of ESX 3.5 Update 2 (2008-07-25T00:00:00Z).
EPOCH = 1216944000.0


class VirtualClock:
    """A monotonic clock that moves only when told to.

    ``now`` is seconds since the Unix epoch, so it maps to ``datetime`` and FAT timestamps
    directly. ``advance`` is how durations (scripts, snapshot creation, consolidation) pass.
    """

    __slots__ = ("_now", "_alarm")

    def __init__(self, start: float = EPOCH) -> None:
        self._now = float(start)
        self._alarm: tuple[float, Callable[[], None]] | None = None

    @property
    def now(self) -> float:
        """Current virtual time, in seconds since the Unix epoch."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (never backward) and return the new time."""
        if seconds < 0:
            msg = f"the virtual clock only moves forward; advance() got {seconds!r} seconds"
            raise ValueError(msg)
        return self.advance_to(self._now + float(seconds))

    def advance_to(self, when: float) -> float:
        """Move time forward to ``when`` if it is later than now; return the new time. An
        alarm due on the way fires first, at its own time (and may raise: then time stays
        there and the operation that advanced the clock stops)."""
        alarm = self._alarm
        if alarm is not None and alarm[0] <= when:
            self._alarm = None
            self._now = max(self._now, float(alarm[0]))
            alarm[1]()
        if when > self._now:
            self._now = float(when)
        return self._now

    @contextmanager
    def alarm(self, when: float, callback: Callable[[], None]) -> Iterator[None]:
        """Within the block, run ``callback`` when time reaches ``when``: a timer that fires
        at its own virtual time while a longer operation (a snapshot being taken) advances
        the clock, as the guest's abort timer does (spec R15, F9)."""
        outer, self._alarm = self._alarm, (float(when), callback)
        try:
            yield
        finally:
            self._alarm = outer

    def datetime(self) -> datetime:
        """Current virtual time as an aware UTC ``datetime`` (what the SOAP layer serialises)."""
        return datetime.fromtimestamp(self._now, tz=UTC)

    def __repr__(self) -> str:
        return f"VirtualClock({self.datetime().isoformat()})"
