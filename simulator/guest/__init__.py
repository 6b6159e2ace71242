"""Guests: partitions, volumes, a FAT32 file system on disk blocks, guest paths, workloads."""

from ._devices import ReadOnlyDevice, SparseDevice
from ._fat import FatFileSystem, FatStat, format_fat, open_readonly
from ._filesystem import GuestFileSystem, GuestStat, Volume, format_disk
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
from ._paths import GuestPath, parse_guest_path
from ._workload import Workload, WorkloadOp

__all__ = [
    "TYPE_FAT16_LBA",
    "TYPE_FAT32_LBA",
    "TYPE_LINUX",
    "TYPE_NTFS",
    "BlockDevice",
    "FatFileSystem",
    "FatStat",
    "GuestFileSystem",
    "GuestPath",
    "GuestStat",
    "Partition",
    "PartitionDevice",
    "ReadOnlyDevice",
    "SparseDevice",
    "Volume",
    "Workload",
    "WorkloadOp",
    "format_disk",
    "format_fat",
    "open_readonly",
    "parse_guest_path",
    "partition_disk",
    "read_partitions",
]
