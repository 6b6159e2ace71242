"""Workload: seeded, reproducible guest activity whose results the disk must hold."""

from __future__ import annotations

import pytest

from vcbsim.simulator import SimRandom, Trace, VirtualClock
from vcbsim.simulator.guest import (
    GuestFileSystem,
    PartitionDevice,
    SparseDevice,
    Workload,
    format_disk,
)

MiB = 1 << 20


def guest(os_family: str, trace: Trace | None = None) -> tuple[SparseDevice, GuestFileSystem]:
    disk = SparseDevice(128 * MiB)
    where = "C" if os_family == "windows" else "/"
    vols = format_disk(disk, [(None, where, "SYS")])
    return disk, GuestFileSystem(os_family, vols, trace=trace, vm="vm-7")


@pytest.mark.parametrize("os_family", ["windows", "linux"])
def test_disk_holds_every_write(os_family: str) -> None:
    disk, g = guest(os_family)
    w = Workload(g, SimRandom(3), VirtualClock(), max_size=20_000)
    expected = w.run(120)
    assert {op.kind for op in w.ops} == {"write", "delete"}
    assert any(v is None for v in expected.values())
    assert w.verify() == []
    # A fresh file system over the same blocks (nothing cached) sees the same files.
    again = GuestFileSystem(os_family, reopen(disk, g))
    assert w.verify(again) == []


def reopen(disk: SparseDevice, g: GuestFileSystem) -> list:
    from vcbsim.simulator.guest import Volume

    v = g.volumes[0]
    assert v.partition is not None
    return [Volume(PartitionDevice.of(disk, v.partition), v.letter, v.mount_point, v.label)]


def test_same_seed_same_operations() -> None:
    runs = []
    for _ in range(2):
        _, g = guest("windows")
        w = Workload(g, SimRandom(11), VirtualClock())
        w.run(30)
        runs.append(w.ops)
    assert runs[0] == runs[1]
    _, g = guest("windows")
    other = Workload(g, SimRandom(12), VirtualClock())
    other.run(30)
    assert other.ops != runs[0]


def test_workload_emits_guest_events_and_advances_the_clock() -> None:
    clock = VirtualClock()
    trace = Trace(clock)
    _, g = guest("windows", trace)
    w = Workload(g, SimRandom(5), clock)
    t0 = clock.now
    w.run(25)
    assert clock.now > t0
    writes = [e for e in trace.events if e.kind == "guest.write"]
    deletes = [e for e in trace.events if e.kind == "guest.delete"]
    assert len(writes) == sum(op.kind == "write" for op in w.ops)
    assert len(deletes) == sum(op.kind == "delete" for op in w.ops)
    last = {}
    for e in trace.events:
        last[e.details["path"]] = e.details.get("sha256")
    assert last == w.expected


def test_snapshot_during_workload_keeps_the_old_state() -> None:
    disk, g = guest("windows")
    w = Workload(g, SimRandom(9), VirtualClock())
    before = dict(w.run(40))
    frozen = disk.frozen()
    w.run(40)
    v = g.volumes[0]
    assert v.partition is not None
    old = g.as_of([PartitionDevice.of(frozen, v.partition)])
    assert w.verify(old, before) == []
    assert w.verify(old) != []  # the later writes are not in the snapshot
    assert w.verify() == []
