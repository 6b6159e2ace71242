"""The guest file system on the disk layer's LayeredDisk: snapshots, revert and commit of files."""

from __future__ import annotations

import pytest

from vcbsim.simulator import SimRandom, StateError, VirtualClock
from vcbsim.simulator.guest import GuestFileSystem, PartitionDevice, Workload, format_disk

disk_mod = pytest.importorskip("vcbsim.simulator.disk")
GiB = 1 << 30


def make() -> tuple[object, GuestFileSystem]:
    disk = disk_mod.LayeredDisk(4 * GiB)
    vols = format_disk(disk, [(2 * GiB, "C", "SYSTEM"), (None, None, "RECOVERY")])
    return disk, GuestFileSystem("windows", vols, clock=VirtualClock())


def test_snapshot_view_revert_and_commit_apply_to_files() -> None:
    disk, g = make()
    w = Workload(g, SimRandom(21), VirtualClock())
    at_snapshot = w.run(30)
    layer = disk.freeze()
    w.run(30)
    assert w.verify() == []
    view = disk.view(layer)
    old = g.as_of([PartitionDevice.of(view, v.partition) for v in g.volumes])
    assert w.verify(old, at_snapshot) == []
    with pytest.raises(StateError):
        old.write_bytes(r"C:\x.txt", b"")
    # Commit (release the snapshot's layer): the live disk keeps every write.
    disk.release(layer)
    assert w.verify() == []


def test_revert_shows_the_old_files_through_the_same_objects() -> None:
    disk, g = make()
    g.write_bytes(r"C:\keep.txt", b"kept")
    layer = disk.freeze()
    g.write_bytes(r"C:\keep.txt", b"changed")
    g.write_bytes(r"C:\gone.txt", b"later")
    disk.revert(layer)
    assert g.listdir("C:\\") == ["keep.txt"]
    assert g.read_bytes(r"C:\keep.txt") == b"kept"


def test_costs_on_a_large_layered_disk_follow_the_data() -> None:
    disk = disk_mod.LayeredDisk(200 * GiB)
    (vol,) = format_disk(disk, [(None, "C", "BIG")])
    g = GuestFileSystem("windows", [vol])
    for i in range(50):
        g.write_bytes(rf"C:\file {i}.bin", bytes([i]) * 50_000)
    grains = disk.allocated_grains()
    # boot/FSInfo, FAT pages (x2 FATs), root directory and about 2 MiB of data: a few dozen
    # 64 KiB grains, not the 50 MiB of FATs a full format of 200 GiB would write.
    assert grains < 80
