"""Guests: partitions, volumes, a FAT32 file system on disk blocks, guest paths, workloads.

How a host gives a VM files (every step reads and writes only the ``BlockDevice``)::

    volumes = format_disk(disk0, [(None, "C", "SYSTEM")], disk_index=0, clock=clock)
    volumes += format_disk(disk1, [(3 * GiB, "D", "DATA"), (None, None, "RECOVERY")],
                           disk_index=1, clock=clock)
    guest = GuestFileSystem("windows", volumes, trace=trace, vm="vm-1", clock=clock)
    guest.mkdir(r"C:\\Program Files\\VMware\\VMware Tools\\backupScripts.d")
    guest.write_text(r"C:\\...\\backupScripts.d\\10-a.bat", "exit 0")

    # file-level mount of a snapshot: one read-only view per volume
    old = guest.as_of({v: PartitionDevice.of(view_of(v.disk_index), v.partition)
                       for v in guest.volumes})

By hand: ``partition_disk`` -> ``PartitionDevice`` -> ``FatFileSystem.format`` -> ``Volume``.
"""

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
