"""PersistentLayeredDisk on its own: the grain log, the base's WAL, CBT log, compaction."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest

from vcbsim.simulator.disk import LayeredDisk
from vcbsim.simulator.disk._persistent import (
    DamagedFileError,
    GrainLogError,
    PersistentLayeredDisk,
    read_grain_log,
)

MiB = 1024**2
G = 65536


def new_disk(tmp_path: Path, capacity: int = 4 * MiB) -> PersistentLayeredDisk:
    disk = PersistentLayeredDisk(capacity, tmp_path, delta_suffix="-delta.vmdk")
    disk.base.label = "d.vmdk"
    return disk


def reload(
    disk: PersistentLayeredDisk, meta: dict[str, Any] | None = None
) -> PersistentLayeredDisk:
    meta = disk.to_meta()[0] if meta is None else meta
    disk.close()
    again, _ = PersistentLayeredDisk.from_meta(disk.directory, meta)
    return again


def test_random_writes_match_the_in_memory_model(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 4 * MiB + 512)
    ref = LayeredDisk(4 * MiB + 512)
    rng = random.Random(7)
    for step in range(300):
        if step in (100, 200):
            disk.freeze()
            disk.top.label = f"d-{step:06d}.vmdk"
            ref.freeze()
        length = rng.choice((1, 512, 4096, 70000, 300000))
        offset = rng.randrange(0, disk.capacity - length + 1)
        data = rng.randbytes(length)
        disk.write(offset, data)
        ref.write(offset, data)
    again = reload(disk)
    assert again.read(0, again.capacity) == ref.read(0, ref.capacity)
    assert [len(x.grains) for x in again.chain()] == [len(x.grains) for x in ref.chain()]
    assert again.load_report == []


def test_a_torn_batch_is_dropped_whole(tmp_path: Path) -> None:
    disk = new_disk(tmp_path)
    disk.freeze()
    disk.top.label = "d-000001.vmdk"
    disk.write(0, b"a" * 1000)
    before = disk.read(0, disk.capacity)
    disk.write(G - 10, b"b" * (3 * G))  # one batch of four records
    meta = disk.to_meta()[0]
    disk.close()
    log = tmp_path / "d-000001-delta.vmdk"
    size = log.stat().st_size
    with open(log, "r+b") as f:
        f.truncate(size - 100)  # the last record of the batch is torn
    again = reload(disk, meta)
    assert again.read(0, again.capacity) == before
    assert len(again.load_report) == 1
    assert again.load_report[0].startswith("d-000001-delta.vmdk: discarded")
    # the file was cut back to the last complete batch: appends continue after it
    again.write(5, b"c")
    assert reload(again).read(0, 8) == b"aaaaacaa"


@pytest.mark.parametrize("where", ["last", "middle"])
def test_a_damaged_record_is_reported_and_nothing_is_cut(tmp_path: Path, where: str) -> None:
    """A flipped byte is damage, not a torn tail: the file stays as it is, records after it
    included, and the error names the file and the offset."""
    disk = new_disk(tmp_path)
    disk.freeze()
    disk.top.label = "d-000001.vmdk"
    disk.write(0, b"a" * 100)
    disk.write(G, b"b" * 100)
    disk.write(2 * G, b"c" * 100)
    meta = disk.to_meta()[0]
    disk.close()
    log = tmp_path / "d-000001-delta.vmdk"
    raw = bytearray(log.read_bytes())
    raw[-5 if where == "last" else 24 + 32 + G + 40] ^= 0xFF
    log.write_bytes(bytes(raw))
    with pytest.raises(DamagedFileError, match="d-000001-delta.vmdk: 1 damaged region"):
        reload(disk, meta)
    assert log.read_bytes() == bytes(raw)


def test_a_kill_torn_record_is_cut(tmp_path: Path) -> None:
    disk = new_disk(tmp_path)
    disk.freeze()
    disk.top.label = "d-000001.vmdk"
    disk.write(0, b"a" * 100)
    disk.write(G, b"b" * 100)
    meta = disk.to_meta()[0]
    disk.close()
    log = tmp_path / "d-000001-delta.vmdk"
    raw = log.read_bytes()
    log.write_bytes(raw[:-5])  # the last write's record, torn by a kill
    again = reload(disk, meta)
    assert again.read(0, 100) == b"a" * 100 and again.read(G, 100) == bytes(100)
    assert any("discarded" in r for r in again.load_report)


def test_not_a_grain_log_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x-delta.vmdk"
    bad.write_bytes(b"KDMV" + bytes(100))
    with pytest.raises(GrainLogError):
        read_grain_log(bad, G)


def test_wal_redoes_a_write_torn_in_the_flat_file(tmp_path: Path) -> None:
    disk = new_disk(tmp_path)
    disk.write(1000, b"w" * 200_000)
    expected = disk.read(0, disk.capacity)
    meta = disk.to_meta()[0]
    # a kill in the middle of the in-place write: the flat file holds only part of it
    fd = disk._fds["d-flat.vmdk"]
    os.pwrite(fd, b"\0" * 100_000, 100_000)
    disk._fds.clear()  # the process is gone: nothing is checkpointed
    os.close(fd)
    again, _ = PersistentLayeredDisk.from_meta(tmp_path, meta)
    assert again.read(0, again.capacity) == expected
    assert (tmp_path / "d-flat.vmdk.wal").stat().st_size == 24  # redone, then emptied


def test_a_log_full_of_rewrites_is_compacted_on_load(tmp_path: Path) -> None:
    disk = new_disk(tmp_path)
    disk.freeze()
    disk.top.label = "d-000001.vmdk"
    for n in range(40):
        disk.write(0, bytes([n]) * G)
    log = tmp_path / "d-000001-delta.vmdk"
    assert log.stat().st_size > 40 * G
    again = reload(disk)
    assert again.read(0, G) == bytes([39]) * G
    assert log.stat().st_size < 2 * G
    assert any("compacted" in r for r in again.load_report)


def test_change_tracking_and_its_reset_survive(tmp_path: Path) -> None:
    disk = new_disk(tmp_path)
    disk.write(0, b"x")
    layer = disk.freeze()
    disk.top.label = "d-000001.vmdk"
    disk.write(3 * G, b"y")
    assert disk.changed_grains(layer.change_epoch or 0) == {3}
    again = reload(disk)
    assert again.changed_grains(again.chain()[1].change_epoch or 0) == {3}
    start = again.reset_tracking()
    again.write(5 * G, b"z")
    meta = again.to_meta()[0]
    meta["tracking_start"] = 0  # an older state: the CBT log's reset record still wins
    third = reload(again, meta)
    assert third.tracking_start == start
    assert third.changed_grains(start) == {5}


def test_without_an_owner_merges_reach_the_files_at_once(tmp_path: Path) -> None:
    disk = new_disk(tmp_path)
    disk.write(0, b"1" * 1000)
    base = disk.freeze()
    disk.top.label = "d-000001.vmdk"
    disk.write(500, b"2" * 1000)
    disk.release(base)
    assert disk.pending_intents()  # until the next write
    disk.write(10 * G, b"3")
    assert not disk.pending_intents()
    again = reload(disk)
    assert again.read(0, 1500) == b"1" * 500 + b"2" * 1000
    assert again.chain() == [again.base]


def test_a_pickled_copy_reopens_its_files(tmp_path: Path) -> None:
    import pickle

    disk = new_disk(tmp_path)
    disk.write(0, b"x")
    copy = pickle.loads(pickle.dumps(disk))
    assert copy._fds == {} and copy._changed == {0: 0}
    disk.close()
    copy.write(1, b"y")
    assert reload(copy).read(0, 2) == b"xy"
