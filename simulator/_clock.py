"""The one virtual clock that owns all simulated time.

Why virtual: quiesce timeouts (the guest abort timer defaults to 900 s), the VSS hold-writes
window and snapshot durations must be testable in microseconds of wall time and must replay
exactly. Nothing in the simulator reads the wall clock; everything asks this clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["VirtualClock", "EPOCH"]

#: Virtual time starts at the release month of ESX 3.5 Update 2 (2008-07-25T00:00:00Z).
EPOCH = 1216944000.0


class VirtualClock:
    """A monotonic clock that moves only when told to.

    ``now`` is seconds since the Unix epoch, so it maps to ``datetime`` and FAT timestamps
    directly. ``advance`` is how durations (scripts, snapshot creation, consolidation) pass.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = EPOCH) -> None:
        self._now = float(start)

    @property
    def now(self) -> float:
        """Current virtual time, in seconds since the Unix epoch."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (never backward) and return the new time."""
        if seconds < 0:
            msg = f"the virtual clock only moves forward; advance() got {seconds!r} seconds"
            raise ValueError(msg)
        self._now += float(seconds)
        return self._now

    def advance_to(self, when: float) -> float:
        """Move time forward to ``when`` if it is later than now; return the new time."""
        if when > self._now:
            self._now = float(when)
        return self._now

    def datetime(self) -> datetime:
        """Current virtual time as an aware UTC ``datetime`` (what the SOAP layer serialises)."""
        return datetime.fromtimestamp(self._now, tz=UTC)

    def __repr__(self) -> str:
        return f"VirtualClock({self.datetime().isoformat()})"
