"""One seedable source of randomness for the whole simulator.

Every id, every shuffled listing and every probabilistic fault draws from a ``SimRandom``, so
a seed replays a run exactly. The Hypothesis entry point registers the live instances, so
Hypothesis controls (and can replay) their state inside tests.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import MutableSequence
from typing import TypeVar

__all__ = ["SimRandom"]

T = TypeVar("T")

_live: weakref.WeakSet[SimRandom] = weakref.WeakSet()
_hypothesis_registered = False


class SimRandom(random.Random):
    """A ``random.Random`` that remembers its seed and registers itself with Hypothesis."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.seed_value = seed
        _live.add(self)
        if _hypothesis_registered:
            _register(self)

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


def _register(r: SimRandom) -> None:
    try:
        from hypothesis import register_random
        from hypothesis.errors import HypothesisWarning
    except ImportError:  # pragma: no cover - hypothesis is a dependency
        return
    import warnings

    # Hypothesis warns when the object looks unreferenced at registration time; a SimRandom
    # is registered from its own __init__, before its host stores it, so the warning is
    # spurious here: the host keeps the strong reference, Hypothesis a weak one.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HypothesisWarning)
        register_random(r)


def _hypothesis_setup_hook() -> None:
    """Entry point ``hypothesis``: let Hypothesis manage every SimRandom's state."""
    global _hypothesis_registered
    _hypothesis_registered = True
    for r in list(_live):
        _register(r)
