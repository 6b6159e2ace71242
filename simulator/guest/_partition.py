"""MBR partition tables on a block device, and partitions as block devices of their own.

A guest disk carries a classic DOS/MBR partition table in sector 0, as the disks of ESX 3.5
era guests do, so that an exported VMDK is read by ``qemu-img``, ``fdisk`` and ``mtools`` like
a real one. Partitions start on 1 MiB boundaries (what Windows Vista and later and Linux
partitioners do), which also keeps them aligned with the disk layer's 64 KiB grains.

``PartitionDevice`` is a window onto a ``BlockDevice``; it works over a writable disk and over
a read-only snapshot view alike (a write to a read-only view fails in the view).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from .._errors import InvalidInputError, StateError
from ..disk._device import BlockDevice, BlockReader

__all__ = [
    "ALIGNMENT",
    "SECTOR",
    "TYPE_FAT32_LBA",
    "TYPE_FAT16_LBA",
    "TYPE_LINUX",
    "TYPE_NTFS",
    "BlockDevice",
    "BlockReader",
    "Partition",
    "PartitionDevice",
    "partition_disk",
    "read_partitions",
]

SECTOR = 512
ALIGNMENT = 1 << 20

#: MBR partition type ids.
TYPE_FAT32_LBA = 0x0C
TYPE_FAT16_LBA = 0x0E
TYPE_NTFS = 0x07
TYPE_LINUX = 0x83

_HEADS = 255
_SECTORS_PER_TRACK = 63


@dataclass(frozen=True, slots=True)
class Partition:
    """One primary partition: ``index`` 0-3 in the MBR, ``start`` and ``size`` in bytes."""

    index: int
    start: int
    size: int
    type_id: int
    bootable: bool = False

    @property
    def end(self) -> int:
        return self.start + self.size


def _chs(lba: int) -> bytes:
    """CHS triple for an LBA, saturated at 1023/254/63 as partitioners do beyond 8 GiB."""
    cyl, rem = divmod(lba, _HEADS * _SECTORS_PER_TRACK)
    head, sec = divmod(rem, _SECTORS_PER_TRACK)
    sec += 1
    if cyl > 1023:
        cyl, head, sec = 1023, 254, 63
    return bytes([head, ((cyl >> 2) & 0xC0) | sec, cyl & 0xFF])


def partition_disk(
    device: BlockDevice,
    layout: Sequence[tuple[int | None, int]],
    *,
    disk_signature: int = 0x56434253,
    bootable: int | None = 0,
) -> list[Partition]:
    """Write an MBR with one primary partition per ``(size_bytes, type_id)`` entry.

    Each partition starts on the next 1 MiB boundary; its size is rounded down to whole
    sectors. A size of ``None`` takes the rest of the disk (only for the last entry).
    ``bootable`` is the index of the active partition (``None``: none). Only sector 0 is
    written; the partitions' contents are left as they are.
    """
    if not 1 <= len(layout) <= 4:
        raise InvalidInputError(
            what="partition layout",
            expected="1 to 4 (size_bytes, type_id) entries",
            got=list(layout),
        )
    parts: list[Partition] = []
    pos = ALIGNMENT
    for i, entry in enumerate(layout):
        try:
            size, type_id = entry
        except (TypeError, ValueError):
            raise InvalidInputError(
                what=f"partition {i}", expected="a (size_bytes, type_id) pair", got=entry
            ) from None
        if not isinstance(type_id, int) or not 1 <= type_id <= 0xFF:
            raise InvalidInputError(
                what=f"partition {i} type id", expected="an MBR type id 0x01-0xFF", got=type_id
            )
        if size is None:
            if i != len(layout) - 1:
                raise InvalidInputError(
                    what=f"partition {i} size",
                    expected="a size in bytes (None only for the last partition)",
                    got=size,
                )
            size = device.size - pos
        if not isinstance(size, int) or size < SECTOR:
            raise InvalidInputError(
                what=f"partition {i} size", expected=f"an int of at least {SECTOR} bytes", got=size
            )
        size -= size % SECTOR
        if pos + size > device.size:
            raise InvalidInputError(
                what=f"partition {i}",
                expected=f"to fit in the disk of {device.size} bytes",
                got=f"{size} bytes at offset {pos}",
                hint="make the disk larger or the partitions smaller",
            )
        if pos // SECTOR + size // SECTOR > 0xFFFFFFFF:
            raise InvalidInputError(
                what=f"partition {i}", expected="to end below 2 TiB (MBR limit)", got=pos + size
            )
        parts.append(Partition(i, pos, size, type_id, bootable == i))
        pos = -(-(pos + size) // ALIGNMENT) * ALIGNMENT

    mbr = bytearray(SECTOR)
    struct.pack_into("<I", mbr, 440, disk_signature & 0xFFFFFFFF)
    for p in parts:
        lba, count = p.start // SECTOR, p.size // SECTOR
        slot = (
            bytes([0x80 if p.bootable else 0x00])
            + _chs(lba)
            + bytes([p.type_id])
            + _chs(lba + count - 1)
            + struct.pack("<II", lba, count)
        )
        mbr[446 + 16 * p.index : 446 + 16 * (p.index + 1)] = slot
    mbr[510:512] = b"\x55\xaa"
    device.write(0, bytes(mbr))
    return parts


def read_partitions(device: BlockReader) -> list[Partition]:
    """The primary partitions in the MBR of ``device`` (empty slots skipped)."""
    if device.size < SECTOR:
        raise InvalidInputError(what="disk", expected="at least one sector", got=device.size)
    mbr = device.read(0, SECTOR)
    if mbr[510:512] != b"\x55\xaa":
        raise InvalidInputError(
            what="disk sector 0",
            expected="an MBR ending in the signature 55 AA",
            got=mbr[510:512].hex(" "),
            hint="partition the disk first with partition_disk()",
        )
    parts = []
    for i in range(4):
        e = mbr[446 + 16 * i : 446 + 16 * (i + 1)]
        type_id = e[4]
        lba, count = struct.unpack_from("<II", e, 8)
        if type_id == 0 or count == 0:
            continue
        parts.append(Partition(i, lba * SECTOR, count * SECTOR, type_id, e[0] == 0x80))
    return parts


class PartitionDevice:
    """A ``BlockDevice`` window of ``size`` bytes at ``start`` on ``device`` (a ``BlockReader``:
    over a read-only one, writes raise ``StateError``)."""

    __slots__ = ("device", "start", "_size")

    def __init__(self, device: BlockReader, start: int, size: int) -> None:
        if start < 0 or size < 0 or start + size > device.size:
            raise InvalidInputError(
                what="partition window",
                expected=f"start >= 0 and start + size <= {device.size}",
                got=(start, size),
            )
        self.device = device
        self.start = start
        self._size = size

    @classmethod
    def of(cls, device: BlockReader, partition: Partition) -> PartitionDevice:
        return cls(device, partition.start, partition.size)

    @property
    def size(self) -> int:
        return self._size

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self._size:
            raise InvalidInputError(
                what="partition access",
                expected=f"a range inside 0..{self._size}",
                got=(offset, length),
            )

    def read(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        return self.device.read(self.start + offset, length)

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        self._check(offset, len(data))
        write = getattr(self.device, "write", None)
        if write is None:
            msg = "this partition lies on a read-only view; it cannot be written"
            raise StateError(msg)
        write(self.start + offset, data)

    def __repr__(self) -> str:
        return f"PartitionDevice(start={self.start}, size={self.size})"
