"""Changed-block tracking never under-reports, whatever the history (Hypothesis).

A random history of writes, snapshots (freeze), reverts and releases runs on a disk and on a
list of plain images; afterwards, for every pair of remembered states, ``changed_areas``
must cover every grain in which the two images differ.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vcbsim.simulator.disk import Layer, LayeredDisk

GRAIN = 1024
GRAINS = 16
CAPACITY = GRAIN * GRAINS

op = st.one_of(
    st.tuples(st.just("write"), st.integers(0, CAPACITY - 1), st.integers(1, 2 * GRAIN)),
    st.tuples(st.just("freeze"), st.just(0), st.just(0)),
    st.tuples(st.just("revert"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("release"), st.integers(0, 50), st.just(0)),
)


def grains_of(areas: list[tuple[int, int]]) -> set[int]:
    return {g for off, n in areas for g in range(off // GRAIN, (off + n - 1) // GRAIN + 1)}


def differing(a: bytes, b: bytes) -> set[int]:
    return {
        g for g in range(GRAINS) if a[g * GRAIN : (g + 1) * GRAIN] != b[g * GRAIN : (g + 1) * GRAIN]
    }


@settings(max_examples=100, deadline=None)
@given(st.lists(op, max_size=40), st.integers(0, 2**32 - 1))
def test_changed_areas_cover_every_difference(ops: list[tuple[str, int, int]], seed: int) -> None:
    disk = LayeredDisk(CAPACITY, grain_size=GRAIN)
    current = bytearray(CAPACITY)
    held: list[tuple[Layer, bytes, int]] = []  # layer, image, change_epoch
    for i, (kind, a, b) in enumerate(ops):
        if kind == "write":
            n = min(b, CAPACITY - a)
            data = bytes([(seed + i) % 251 + 1]) * n
            disk.write(a, data)
            current[a : a + n] = data
        elif kind == "freeze":
            layer = disk.freeze()
            assert layer.change_epoch is not None
            held.append((layer, bytes(current), layer.change_epoch))
        elif kind == "revert" and held:
            layer, image, _ = held[a % len(held)]
            disk.revert(layer)
            current = bytearray(image)
        elif kind == "release" and held:
            layer, _, _ = held.pop(a % len(held))
            disk.release(layer)
    now = bytes(current)
    for _, image, epoch in held:
        assert differing(image, now) <= grains_of(disk.changed_areas(epoch))
        for other, other_image, _ in held:
            assert differing(image, other_image) <= grains_of(disk.changed_areas(epoch, at=other))
    # A baseline taken now reports nothing yet; allocated areas cover all non-zero data.
    assert disk.changed_areas(disk.new_epoch()) == []
    assert {g for g in range(GRAINS) if any(now[g * GRAIN : (g + 1) * GRAIN])} <= grains_of(
        disk.allocated_areas()
    )
