"""Guests: partitions, volumes, a FAT32 file system on disk blocks, guest paths, workloads."""

from ._devices import ReadOnlyDevice, SparseDevice
from ._fat import FatFileSystem, FatStat, format_fat, open_readonly
from ._partition import (
    TYPE_FAT16_LBA,
    TYPE_FAT32_LBA,
    TYPE_LINUX,
    TYPE_NTFS,
    BlockDevice,
    Partition,
    PartitionDevice,
    partition_disk,
    read_partitions,
)

__all__ = [
    "TYPE_FAT16_LBA",
    "TYPE_FAT32_LBA",
    "TYPE_LINUX",
    "TYPE_NTFS",
    "BlockDevice",
    "FatFileSystem",
    "FatStat",
    "Partition",
    "PartitionDevice",
    "ReadOnlyDevice",
    "SparseDevice",
    "format_fat",
    "open_readonly",
    "partition_disk",
    "read_partitions",
]
