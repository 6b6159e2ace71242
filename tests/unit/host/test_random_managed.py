"""Hypothesis manages every live SimRandom (seeded when a test starts, restored after), through
one registered object rather than one registration (and one ``gc.collect()``) per instance."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from vcbsim.simulator import SimRandom
from vcbsim.simulator._random import _LIVE_RANDOMS

OUTSIDE = SimRandom(1234)
SEEN: list[float] = []


@settings(max_examples=3, database=None)
@given(st.integers())
def _draw(_: int) -> None:
    SEEN.append(OUTSIDE.random())


def test_a_live_sim_random_is_seeded_inside_a_test_and_restored_after() -> None:
    before = OUTSIDE.getstate()
    SEEN.clear()
    _draw()
    # every example starts from Hypothesis' seed 0, as register_random promises
    assert SEEN and set(SEEN) == {random.Random(0).random()}
    assert OUTSIDE.getstate() == before


def test_state_round_trips_and_skips_collected_instances() -> None:
    r = SimRandom(7)
    gone = SimRandom(8)
    state = _LIVE_RANDOMS.getstate()
    first = r.random()
    del gone
    _LIVE_RANDOMS.setstate(state)
    assert r.random() == first
