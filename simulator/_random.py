"""One seedable source of randomness for the whole simulator.

Every id, every shuffled listing and every probabilistic fault draws from a ``SimRandom``, so
a seed replays a run exactly. The Hypothesis entry point registers the live instances (as one
object, ``_LiveRandoms``), so Hypothesis controls (and can replay) their state inside tests.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import MutableSequence
from typing import TypeVar

__all__ = ["SimRandom"]

T = TypeVar("T")

_live: weakref.WeakSet[SimRandom] = weakref.WeakSet()


class SimRandom(random.Random):
    """A ``random.Random`` that remembers its seed; Hypothesis manages every live one
    (``_LiveRandoms``)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.seed_value = seed
        _live.add(self)

    def shuffled(self, items: MutableSequence[T]) -> list[T]:
        """A shuffled copy: listings whose order the real API leaves unspecified."""
        out = list(items)
        self.shuffle(out)
        return out

    def hex_id(self, nbytes: int = 16) -> str:
        """Deterministic hex string, for UUIDs and change ids."""
        return self.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    def uuid(self) -> str:
        """A deterministic RFC 4122 style UUID string."""
        h = self.hex_id(16)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


class _LiveRandoms:
    """Every live ``SimRandom`` as one Random-like object, registered with Hypothesis once.

    Hypothesis seeds what it manages when a test starts and restores the states after it
    (``register_random``); doing that for each live instance here is what registering each
    would do. Registering each instead cost a full ``gc.collect()`` per ``SimRandom``
    (``register_random`` checks the object is referenced elsewhere): a quarter of a
    conformance run, which builds a fresh host per example.
    """

    def seed(self, a: object = None) -> None:
        for r in list(_live):
            r.seed(a)  # type: ignore[arg-type]

    def getstate(self) -> list[tuple[weakref.ref[SimRandom], object]]:
        return [(weakref.ref(r), r.getstate()) for r in list(_live)]

    def setstate(self, state: list[tuple[weakref.ref[SimRandom], object]]) -> None:
        for ref, st in state:
            r = ref()
            if r is not None:
                r.setstate(st)  # type: ignore[arg-type]


#: the one object Hypothesis holds (weakly): module-level, so it lives as long as the module
_LIVE_RANDOMS = _LiveRandoms()


def _hypothesis_setup_hook() -> None:
    """Entry point ``hypothesis``: let Hypothesis manage every SimRandom's state."""
    try:
        from hypothesis import register_random
    except ImportError:  # pragma: no cover - hypothesis is a dependency
        return
    register_random(_LIVE_RANDOMS)
