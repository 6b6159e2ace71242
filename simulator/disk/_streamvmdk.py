"""Stream-optimized VMDK: what a host's NFC export (``HttpNfcLease`` disk URLs) sends.

Why this format: an OVF export of an ESX host downloads each disk as a *stream-optimized*
sparse extent (``createType="streamOptimized"``): deflate-compressed grains, each behind a
marker that names its sector, and the grain tables and grain directory at the *end*, behind
metadata markers, so the file is written front to back in one pass with no seek and no
length known in advance. The layout is the "Stream-Optimized Compressed Sparse Extent" of
VMware's Virtual Disk Format 1.1 specification; qemu's ``block/vmdk.c`` (``VMDK4_FLAG_MARKER``,
``MARKER_GRAIN_TABLE`` ... ``MARKER_END_OF_STREAM``, the footer read ``1536`` bytes before the
end) reads the same layout, which is what tests check it with (``qemu-img compare``).

Layout, in 512-byte sectors:

* header (``version=3``, flags ``NL_DETECT | COMPRESSED | MARKERS``, ``gdOffset`` = all ones:
  "grain directory at the end"), the embedded descriptor, zeros up to ``overHead`` (128);
* for every grain that holds data, ascending: a grain marker (``uint64 lba``, ``uint32 size``)
  and the zlib stream, padded to a sector;
* after the last grain a grain table covers: a metadata marker (``numSectors``, ``size=0``,
  ``type=1``) and the table (512 32-bit sector numbers of grain markers);
* a grain directory marker (``type=2``) and the directory (0 where no table was needed);
* a footer marker (``type=3``) and a copy of the header whose ``gdOffset`` is real;
* the end-of-stream marker (a zero sector).

Only grains that hold data are read and sent (the source's ``allocated_areas()`` when it has
one), so an export costs what the disk holds, not its capacity.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext

from .._errors import InvalidInputError
from ._device import BlockReader
from ._model import SECTOR_SIZE
from ._vmdk import ADAPTER_TYPES, VMDK_GRAIN_SIZE, _data_grains, _geometry, descriptor_cid

__all__ = ["stream_optimized", "STREAM_OVERHEAD_SECTORS"]

GRAIN_SECTORS = VMDK_GRAIN_SIZE // SECTOR_SIZE  # 128
GTES_PER_GT = 512
GT_BYTES = GTES_PER_GT * 4
#: where the first grain starts (VMware's exports put it at one grain, as here)
STREAM_OVERHEAD_SECTORS = 128
_MAGIC = 0x564D444B
_FLAGS = 1 | (1 << 16) | (1 << 17)  # NL_DETECT, COMPRESSED grains, MARKERS
_GD_AT_END = 0xFFFFFFFFFFFFFFFF
_HEADER = struct.Struct("<IIIQQQQIQQQBccccH433x")
_MARKER_GT, _MARKER_GD, _MARKER_FOOTER = 1, 2, 3
_GRAIN_MARKER = struct.Struct("<QI")
_META_MARKER = struct.Struct("<QII496x")


def _header(sectors: int, desc_sectors: int, gd_offset: int) -> bytes:
    return _HEADER.pack(
        _MAGIC, 3, _FLAGS, sectors, GRAIN_SECTORS, 1, desc_sectors, GTES_PER_GT, 0, gd_offset,
        STREAM_OVERHEAD_SECTORS, 0, b"\n", b" ", b"\r", b"\n", 1,  # compressAlgorithm 1: deflate
    )


def _descriptor(name: str, capacity: int, adapter: str, hw_version: int) -> bytes:
    sectors = capacity // SECTOR_SIZE
    cyl, heads, secs = _geometry(sectors, adapter)
    lines = [
        "# Disk DescriptorFile",
        "version=1",
        'encoding="UTF-8"',
        f"CID={descriptor_cid(name):08x}",
        "parentCID=ffffffff",
        'createType="streamOptimized"',
        "",
        "# Extent description",
        f'RW {sectors} SPARSE "{name}"',
        "",
        "# The Disk Data Base",
        "#DDB",
        "",
        f'ddb.adapterType = "{adapter}"',
        f'ddb.geometry.cylinders = "{cyl}"',
        f'ddb.geometry.heads = "{heads}"',
        f'ddb.geometry.sectors = "{secs}"',
        f'ddb.virtualHWVersion = "{hw_version}"',
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _pad(n: int) -> bytes:
    return bytes(-n % SECTOR_SIZE)


def stream_optimized(
    device: BlockReader,
    name: str = "disk.vmdk",
    *,
    adapter: str = "lsilogic",
    hw_version: int = 7,
    level: int = 1,
    read_lock: AbstractContextManager[object] | None = None,
) -> Iterator[bytes]:
    """The bytes of ``device`` as one stream-optimized VMDK named ``name``, front to back.

    ``level`` is the zlib level (1: fastest; the format allows any). ``read_lock`` is taken
    around each read of ``device`` (the endpoint's lock, so a download never holds it while
    it compresses or sends). The input is checked before the first byte is produced.
    """
    size = getattr(device, "size", None)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % SECTOR_SIZE:
        raise InvalidInputError("device", expected="a BlockReader whose size is a positive multiple of 512", got=size)
    if adapter not in ADAPTER_TYPES:
        raise InvalidInputError("adapter", expected=f"one of {ADAPTER_TYPES}", got=adapter)
    if not name.endswith(".vmdk") or '"' in name or "/" in name:
        raise InvalidInputError("name", expected="a file name ending in .vmdk, without quotes or '/'", got=name)
    if not -1 <= level <= 9:
        raise InvalidInputError("level", expected="a zlib level, -1 to 9", got=level)
    return _stream(device, size, name, adapter, hw_version, level, read_lock or nullcontext())


def _stream(
    device: BlockReader, size: int, name: str, adapter: str, hw_version: int, level: int,
    lock: AbstractContextManager[object],
) -> Iterator[bytes]:
    sectors = size // SECTOR_SIZE
    desc = _descriptor(name, size, adapter, hw_version)
    desc_sectors = -(-len(desc) // SECTOR_SIZE)
    if 1 + desc_sectors > STREAM_OVERHEAD_SECTORS:
        raise InvalidInputError("name", expected="a descriptor that fits before the first grain", got=name)
    yield _header(sectors, desc_sectors, _GD_AT_END) + desc + bytes(
        (STREAM_OVERHEAD_SECTORS - 1) * SECTOR_SIZE - len(desc)
    )
    at = STREAM_OVERHEAD_SECTORS  # the sector the next piece starts at
    num_gtes = -(-sectors // GRAIN_SECTORS)
    num_gdes = -(-num_gtes // GTES_PER_GT)
    gd = [0] * num_gdes
    table: list[int] | None = None
    table_no = -1
    zero = bytes(VMDK_GRAIN_SIZE)
    batch = 64  # grains per read (4 MiB)

    def close_table() -> Iterator[bytes]:
        nonlocal at, table
        if table is None:
            return
        yield _META_MARKER.pack(GT_BYTES // SECTOR_SIZE, 0, _MARKER_GT)
        gd[table_no] = at + 1
        yield struct.pack(f"<{GTES_PER_GT}I", *table)
        at += 1 + GT_BYTES // SECTOR_SIZE
        table = None

    for a, b in _data_grains(device):
        for start in range(a, b, batch):
            stop = min(b, start + batch)
            off = start * VMDK_GRAIN_SIZE
            with lock:
                buf = memoryview(device.read(off, min(stop * VMDK_GRAIN_SIZE, size) - off))
            out: list[bytes] = []
            for g in range(start, stop):
                rel = (g - start) * VMDK_GRAIN_SIZE
                chunk = buf[rel : rel + VMDK_GRAIN_SIZE]
                if chunk == zero[: len(chunk)]:
                    continue
                if g // GTES_PER_GT != table_no:
                    out.extend(close_table())
                    table_no = g // GTES_PER_GT
                    table = [0] * GTES_PER_GT
                assert table is not None
                packed = zlib.compress(chunk, level)
                piece = _GRAIN_MARKER.pack(g * GRAIN_SECTORS, len(packed)) + packed
                piece += _pad(len(piece))
                table[g % GTES_PER_GT] = at
                at += len(piece) // SECTOR_SIZE
                out.append(piece)
            if out:
                yield b"".join(out)
    tail = list(close_table())
    gd_bytes = struct.pack(f"<{num_gdes}I", *gd)
    gd_bytes += _pad(len(gd_bytes))
    tail.append(_META_MARKER.pack(len(gd_bytes) // SECTOR_SIZE, 0, _MARKER_GD))
    gd_offset = at + 1
    tail.append(gd_bytes)
    tail.append(_META_MARKER.pack(1, 0, _MARKER_FOOTER))
    tail.append(_header(sectors, desc_sectors, gd_offset))
    tail.append(bytes(SECTOR_SIZE))  # end of stream
    yield b"".join(tail)
