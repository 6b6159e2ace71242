"""MBR partition tables and partition windows."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from vcbsim.simulator import InvalidInputError, StateError
from vcbsim.simulator.guest._devices import SparseDevice
from vcbsim.simulator.guest._partition import (
    ALIGNMENT,
    TYPE_FAT32_LBA,
    TYPE_LINUX,
    Partition,
    PartitionDevice,
    partition_disk,
    read_partitions,
)

MiB = 1 << 20


def test_partitions_round_trip_and_are_aligned() -> None:
    disk = SparseDevice(300 * MiB)
    parts = partition_disk(disk, [(100 * MiB + 7, TYPE_FAT32_LBA), (None, TYPE_LINUX)])
    assert parts == read_partitions(disk)
    assert [p.start % ALIGNMENT for p in parts] == [0, 0]
    assert parts[0] == Partition(0, MiB, 100 * MiB, TYPE_FAT32_LBA, True)
    assert parts[1].start == 101 * MiB
    assert parts[1].end == 300 * MiB
    assert parts[1].type_id == TYPE_LINUX and not parts[1].bootable


def test_only_sector_zero_is_written() -> None:
    disk = SparseDevice(64 * MiB)
    partition_disk(disk, [(None, TYPE_FAT32_LBA)])
    assert disk.writes == 1 and disk.bytes_written == 512


@pytest.mark.parametrize(
    "layout",
    [
        [],
        [(MiB, 0x0C)] * 5,
        [(200 * MiB, 0x0C)],
        [(MiB, 0)],
        [(None, 0x0C), (MiB, 0x0C)],
        [(-1, 0x0C)],
    ],
)
def test_bad_layouts_are_refused_and_write_nothing(layout: list) -> None:
    disk = SparseDevice(64 * MiB)
    with pytest.raises(InvalidInputError, match="expected"):
        partition_disk(disk, layout)
    assert disk.writes == 0


def test_unpartitioned_disk_is_reported() -> None:
    with pytest.raises(InvalidInputError, match="55 AA"):
        read_partitions(SparseDevice(MiB))


def test_partition_device_is_a_window() -> None:
    disk = SparseDevice(8 * MiB)
    win = PartitionDevice(disk, MiB, 2 * MiB)
    win.write(0, b"abc")
    win.write(2 * MiB - 3, b"xyz")
    assert disk.read(MiB, 3) == b"abc"
    assert disk.read(3 * MiB - 3, 3) == b"xyz"
    assert win.read(0, 3) == b"abc"
    with pytest.raises(InvalidInputError):
        win.write(2 * MiB - 2, b"xyz")
    with pytest.raises(InvalidInputError):
        win.read(-1, 2)
    with pytest.raises(InvalidInputError):
        PartitionDevice(disk, 7 * MiB, 2 * MiB)


def test_partition_device_over_a_read_only_view() -> None:
    disk = SparseDevice(8 * MiB)
    disk.write(MiB, b"old")
    view = disk.frozen()
    disk.write(MiB, b"new")
    win = PartitionDevice(view, MiB, MiB)
    assert win.read(0, 3) == b"old"
    with pytest.raises(StateError):
        win.write(0, b"x")


@pytest.mark.skipif(shutil.which("partx") is None, reason="partx (util-linux) not installed")
def test_partx_reads_the_table(tmp_path) -> None:
    disk = SparseDevice(64 * MiB)
    partition_disk(disk, [(16 * MiB, TYPE_FAT32_LBA), (None, TYPE_LINUX)])
    img = tmp_path / "disk.img"
    disk.save_image(img)
    out = subprocess.run(
        ["partx", "--raw", "--noheadings", "-o", "NR,START,SECTORS,TYPE", str(img)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["1", "2048", "32768", "0xc", "2", "34816", "96256", "0x83"]
