"""ESX redo-log extents (``<stem>-delta.vmdk``) in VMware's "COWD" sparse format, rendered lazily.

Why this format: a ``vmfsSparse`` descriptor names its data with a ``VMFSSPARSE`` extent line,
and what ESX keeps in that file is a "COWD" copy-on-write sparse extent. qemu opens it
(``block/vmdk.c``, ``vmdk_open_vmfs_sparse``) and so does any VDDK-style reader, so a client
that downloads a VM's descriptor chain and extents over ``/folder`` can convert the disk as of
a snapshot with ``qemu-img``.

Layout (all integers little-endian; "sectors" are 512 bytes)::

    sector 0..3   header (2048 bytes): "COWD", version 1, flags 3, numSectors (the disk's
                  capacity), grainSize (sectors per grain), gdOffset (4), numGDEntries,
                  freeSector (the first sector past the file's data), then the root/child
                  union (for a redo log: the parent's file name), generation, name,
                  description, savedGeneration, reserved, uncleanShutdown, padding
    gdOffset      grain directory: numGDEntries 32-bit sector offsets of grain tables
                  (0: no table, the grains it would cover are not in this file)
    then          grain tables of 4096 32-bit entries: the sector of each grain (0: not here,
                  read the parent)
    then          grains, in ascending grain order

ESX itself writes redo logs with 1-sector grains; the simulator's layers hold 64 KiB grains,
so the rendered extent uses the layer's grain size (128 sectors). Readers take the grain size
from the header (``CowdReader`` handles any), as qemu does.

Why lazily: a layer of a 2 TiB disk with a few grains must be served in time proportional to
its grains. :class:`CowdExtent` computes its layout from the sorted grain indexes once (the
grain directory and tables are never materialised for the whole capacity), renders the bytes
of any requested range on demand, and slices grain data straight from the layer's grains.

ESXi's other redo-log format, SEsparse (``-sesparse.vmdk``), is ``_sesparse.py``.
"""

from __future__ import annotations

import bisect
import struct
import sys
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from .._errors import InvalidInputError
from ._model import SECTOR_SIZE

__all__ = [
    "COWD_MAGIC",
    "COWD_GT_ENTRIES",
    "COWD_HEADER_SIZE",
    "CowdExtent",
    "CowdHeader",
    "CowdReader",
    "cowd_extent",
]

COWD_MAGIC = b"COWD"
COWD_VERSION = 1
COWD_FLAGS = 3
#: grain-table entries per table (fixed by the format)
COWD_GT_ENTRIES = 4096
COWD_HEADER_SIZE = 2048
_GT_BYTES = COWD_GT_ENTRIES * 4
_GT_SECTORS = _GT_BYTES // SECTOR_SIZE  # 32
_GD_OFFSET = COWD_HEADER_SIZE // SECTOR_SIZE  # 4
# magic, version, flags, numSectors, grainSize, gdOffset, numGDEntries, freeSector
_FIXED = struct.Struct("<4s7I")
_PARENT_NAME_LEN = 1024
_NAME_LEN = 60
_DESC_LEN = 512
_UNION_AT = _FIXED.size  # 32
_GENERATION_AT = _UNION_AT + _PARENT_NAME_LEN + 4  # 1060
_NAME_AT = _GENERATION_AT + 4  # 1064
_DESC_AT = _NAME_AT + _NAME_LEN  # 1124
_SAVED_GENERATION_AT = _DESC_AT + _DESC_LEN  # 1636
_UNCLEAN_AT = _SAVED_GENERATION_AT + 4 + 8  # 1648
_MAX_SECTORS = 0xFFFFFFFF
assert array("I").itemsize == 4


def _invalid(what: str, expected: str, got: object, hint: str = "") -> NoReturn:
    raise InvalidInputError(what, expected=expected, got=got, hint=hint)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _le_u32(values: Iterable[tuple[int, int]], count: int) -> array[int]:
    """A ``count``-entry table of 32-bit zeros with ``(index, value)`` pairs set."""
    arr = array("I", bytes(4 * count))
    for i, v in values:
        arr[i] = v
    return arr


def _u32_bytes(arr: array[int]) -> bytes:
    if sys.byteorder == "big":  # pragma: no cover - the format is little-endian
        arr = array("I", arr)
        arr.byteswap()
    return arr.tobytes()


def _data_piece(
    out: bytearray, grains: Any, indexes: Any, grain_size: int, data_at: int, pos: int, end: int
) -> int:
    """Append the bytes of the data region from ``pos`` to the end of that grain (or ``end``)
    to ``out``: the ``k``-th stored grain is virtual grain ``indexes[k]``, zeros where it holds
    fewer bytes. Returns where the piece stops. (COWD and SEsparse extents lay their grains out
    the same way after their tables.)"""
    k, within = divmod(pos - data_at, grain_size)
    stop = min(end, data_at + (k + 1) * grain_size)
    grain = bytes(grains.get(indexes[k], b""))
    piece = grain[within : within + (stop - pos)]
    out += piece + bytes(stop - pos - len(piece))
    return stop


@dataclass(frozen=True, slots=True)
class CowdHeader:
    """The fields of a COWD header a reader needs (sizes in sectors)."""

    version: int
    flags: int
    num_sectors: int
    grain_sectors: int
    gd_offset: int
    gd_entries: int
    free_sector: int
    parent_file_name: str = ""

    @property
    def capacity(self) -> int:
        return self.num_sectors * SECTOR_SIZE

    @property
    def grain_size(self) -> int:
        return self.grain_sectors * SECTOR_SIZE

    @classmethod
    def parse(cls, data: bytes) -> CowdHeader:
        """Parse the first 2048 bytes of an extent (``InvalidInputError`` if it is no COWD)."""
        if len(data) < COWD_HEADER_SIZE:
            _invalid("COWD header", f"{COWD_HEADER_SIZE} bytes", f"{len(data)} bytes")
        magic, version, flags, sectors, grain, gd_offset, gd_entries, free = _FIXED.unpack_from(
            data
        )
        if magic != COWD_MAGIC:
            _invalid("COWD magic", "b'COWD' (a VMFSSPARSE redo-log extent)", magic)
        if version != COWD_VERSION:
            _invalid("COWD version", str(COWD_VERSION), version)
        if grain <= 0 or sectors <= 0 or gd_offset <= 0:
            _invalid(
                "COWD header",
                "positive numSectors, grainSize and gdOffset",
                (sectors, grain, gd_offset),
            )
        need = _ceil_div(_ceil_div(sectors, grain), COWD_GT_ENTRIES)
        if gd_entries < need:
            _invalid("COWD numGDEntries", f">= {need} for {sectors} sectors", gd_entries)
        parent = data[_UNION_AT : _UNION_AT + _PARENT_NAME_LEN].split(b"\0", 1)[0]
        return cls(
            version=version,
            flags=flags,
            num_sectors=sectors,
            grain_sectors=grain,
            gd_offset=gd_offset,
            gd_entries=gd_entries,
            free_sector=free,
            parent_file_name=parent.decode("utf-8", "replace"),
        )


class CowdExtent:
    """One redo layer as a COWD extent file: ``size`` and ``read(offset, length)``.

    ``grains`` maps grain index to the grain's bytes (``Layer.grains``); its index set is read
    once, here (a layer's index set only grows while it lives: build a new extent when
    ``len(grains)`` changes, as :func:`cowd_extent` does). Grain *contents* are read at
    ``read`` time, so the data is what the layer holds then.
    """

    def __init__(
        self,
        grains: Mapping[int, Any],
        capacity: int,
        *,
        grain_size: int = 65536,
        parent: str | None = None,
        name: str = "",
    ) -> None:
        if (
            isinstance(capacity, bool)
            or not isinstance(capacity, int)
            or capacity <= 0
            or capacity % SECTOR_SIZE
        ):
            _invalid("capacity", "a positive multiple of 512 bytes", capacity)
        if capacity // SECTOR_SIZE > _MAX_SECTORS:
            _invalid(
                "capacity",
                "at most 2 TiB - 512 bytes (numSectors is 32 bits)",
                capacity,
                "ESX uses SEsparse redo logs for larger disks",
            )
        if (
            isinstance(grain_size, bool)
            or not isinstance(grain_size, int)
            or grain_size <= 0
            or grain_size % SECTOR_SIZE
        ):
            _invalid("grain_size", "a positive multiple of 512 bytes", grain_size)
        if parent is not None and len(parent.encode()) >= _PARENT_NAME_LEN:
            _invalid("parent", f"a file name shorter than {_PARENT_NAME_LEN} bytes", parent)
        self.capacity = capacity
        self.grain_size = grain_size
        self.grain_sectors = grain_size // SECTOR_SIZE
        self.num_sectors = capacity // SECTOR_SIZE
        self.grain_total = _ceil_div(self.num_sectors, self.grain_sectors)
        self.gd_entries = _ceil_div(self.grain_total, COWD_GT_ENTRIES)
        self._grains = grains
        self.indexes: list[int] = [i for i in sorted(grains) if 0 <= i < self.grain_total]
        tables = sorted({i // COWD_GT_ENTRIES for i in self.indexes})
        self._tables = tables
        self._table_pos = {t: n for n, t in enumerate(tables)}
        gd_sectors = _ceil_div(self.gd_entries * 4, SECTOR_SIZE)
        self.gt_start = _GD_OFFSET + gd_sectors
        self.data_start = self.gt_start + _GT_SECTORS * len(tables)
        self.free_sector = self.data_start + len(self.indexes) * self.grain_sectors
        if self.free_sector > _MAX_SECTORS:
            _invalid("redo log", "an extent below 2 TiB", f"{self.free_sector} sectors")
        self.size = self.free_sector * SECTOR_SIZE
        self._gt_cache: dict[int, bytes] = {}
        self._header = self._render_header(parent or "", name)

    def _render_header(self, parent: str, name: str) -> bytes:
        h = bytearray(COWD_HEADER_SIZE)
        _FIXED.pack_into(
            h,
            0,
            COWD_MAGIC,
            COWD_VERSION,
            COWD_FLAGS,
            self.num_sectors,
            self.grain_sectors,
            _GD_OFFSET,
            self.gd_entries,
            self.free_sector,
        )
        p = parent.encode()
        h[_UNION_AT : _UNION_AT + len(p)] = p  # child: parentFileName (parentGeneration 0)
        struct.pack_into("<I", h, _GENERATION_AT, 1)
        n = name.encode()[: _NAME_LEN - 1]
        h[_NAME_AT : _NAME_AT + len(n)] = n
        struct.pack_into("<I", h, _SAVED_GENERATION_AT, 1)
        struct.pack_into("<I", h, _UNCLEAN_AT, 0)
        return bytes(h)

    # -- layout ----------------------------------------------------------------------------------

    def grain_sector(self, index: int) -> int:
        """The file sector of grain ``index`` (0: the grain is not in this extent)."""
        k = bisect.bisect_left(self.indexes, index)
        if k < len(self.indexes) and self.indexes[k] == index:
            return self.data_start + k * self.grain_sectors
        return 0

    def _gd_bytes(self, first: int, last: int) -> bytes:
        """GD entries ``[first, last)``."""
        lo = bisect.bisect_left(self._tables, first)
        hi = bisect.bisect_left(self._tables, last)
        entries = (
            (self._tables[n] - first, self.gt_start + _GT_SECTORS * n) for n in range(lo, hi)
        )
        return _u32_bytes(_le_u32(entries, last - first))

    def _gt_bytes(self, table: int) -> bytes:
        """The 16 KiB grain table number ``table`` (the ``table``-th GD entry's table)."""
        cached = self._gt_cache.get(table)
        if cached is not None:
            return cached
        base = table * COWD_GT_ENTRIES
        lo = bisect.bisect_left(self.indexes, base)
        hi = bisect.bisect_left(self.indexes, base + COWD_GT_ENTRIES)
        entries = (
            (self.indexes[k] - base, self.data_start + k * self.grain_sectors)
            for k in range(lo, hi)
        )
        data = _u32_bytes(_le_u32(entries, COWD_GT_ENTRIES))
        self._gt_cache[table] = data
        return data

    # -- bytes -------------------------------------------------------------------------------------

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (short at the end of the file)."""
        if offset < 0 or length < 0:
            _invalid("read range", "a non-negative offset and length", (offset, length))
        end = min(self.size, offset + length)
        out = bytearray()
        pos = offset
        gd_at = _GD_OFFSET * SECTOR_SIZE
        gt_at = self.gt_start * SECTOR_SIZE
        data_at = self.data_start * SECTOR_SIZE
        while pos < end:
            if pos < gd_at:
                stop = min(end, gd_at)
                out += self._header[pos:stop]
            elif pos < gt_at:
                stop = min(end, gt_at)
                first = (pos - gd_at) // 4
                last = min(self.gd_entries, _ceil_div(stop - gd_at, 4))
                chunk = self._gd_bytes(first, last) if first < last else b""
                lo = (pos - gd_at) - first * 4
                piece = chunk[lo : lo + (stop - pos)]
                out += piece + bytes(stop - pos - len(piece))  # zero padding after the GD
            elif pos < data_at:
                n, within = divmod(pos - gt_at, _GT_BYTES)
                stop = min(end, gt_at + (n + 1) * _GT_BYTES)
                out += self._gt_bytes(self._tables[n])[within : within + (stop - pos)]
            else:
                stop = _data_piece(out, self._grains, self.indexes, self.grain_size, data_at, pos, end)
            pos = stop
        return bytes(out)


# A small cache: the endpoint asks for a layer's extent on every chunk of a download.
_CACHE: OrderedDict[tuple[int, int, int, int, str], CowdExtent] = OrderedDict()
_CACHE_SIZE = 64


def cowd_extent(
    layer: Any, capacity: int, *, grain_size: int = 65536, parent: str | None = None
) -> CowdExtent:
    """The COWD extent of a redo ``Layer`` (cached while its grain count is unchanged)."""
    key = (int(layer.id), len(layer.grains), capacity, grain_size, parent or "")
    ext = _CACHE.get(key)
    if ext is not None:
        _CACHE.move_to_end(key)
        return ext
    label = str(getattr(layer, "label", "") or "")
    ext = CowdExtent(
        layer.grains, capacity, grain_size=grain_size, parent=parent, name=label.rsplit("/", 1)[-1]
    )
    _CACHE[key] = ext
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return ext


class CowdReader:
    """Client side: map a COWD extent read through ``fetch(offset, length) -> bytes``.

    The header and grain directory are read once; grain tables are fetched on first use and
    cached. :meth:`map` says where each part of a byte range of the *disk* lives in this file
    (or that it is not here, so the parent must be read), merging runs that are contiguous in
    the file so a caller can fetch each run with one Range request.
    """

    def __init__(self, fetch: Callable[[int, int], bytes]) -> None:
        self._fetch = fetch
        self.header = CowdHeader.parse(fetch(0, COWD_HEADER_SIZE))
        gd = fetch(self.header.gd_offset * SECTOR_SIZE, self.header.gd_entries * 4)
        if len(gd) != self.header.gd_entries * 4:
            _invalid(
                "COWD grain directory", f"{self.header.gd_entries * 4} bytes", f"{len(gd)} bytes"
            )
        self._gd = array("I", gd)
        if sys.byteorder == "big":  # pragma: no cover
            self._gd.byteswap()
        self._gts: dict[int, array[int]] = {}

    @property
    def capacity(self) -> int:
        return self.header.capacity

    def _table(self, n: int) -> array[int] | None:
        sector = self._gd[n]
        if sector == 0:
            return None
        gt = self._gts.get(n)
        if gt is None:
            raw = self._fetch(sector * SECTOR_SIZE, _GT_BYTES)
            if len(raw) != _GT_BYTES:
                _invalid(
                    "COWD grain table", f"{_GT_BYTES} bytes at sector {sector}", f"{len(raw)} bytes"
                )
            gt = array("I", raw)
            if sys.byteorder == "big":  # pragma: no cover
                gt.byteswap()
            self._gts[n] = gt
        return gt

    def grain_sector(self, grain: int) -> int:
        """The file sector of a grain (0: not allocated in this extent)."""
        n, i = divmod(grain, COWD_GT_ENTRIES)
        if n >= len(self._gd):
            return 0
        gt = self._table(n)
        return 0 if gt is None else int(gt[i])

    def map(self, offset: int, length: int) -> list[tuple[int, int, int | None]]:
        """``(disk_offset, length, file_offset or None)`` runs covering ``[offset, offset+length)``."""
        gsize = self.header.grain_size
        end = min(offset + length, self.capacity)
        runs: list[tuple[int, int, int | None]] = []
        pos = offset
        while pos < end:
            g = pos // gsize
            stop = min(end, (g + 1) * gsize)
            table = g // COWD_GT_ENTRIES
            if table >= len(self._gd) or self._gd[table] == 0:
                # a whole table's span is absent: skip to its end at once
                stop = min(end, (table + 1) * COWD_GT_ENTRIES * gsize)
                file_off = None
            else:
                sector = self.grain_sector(g)
                file_off = sector * SECTOR_SIZE + (pos - g * gsize) if sector else None
            n = stop - pos
            if runs:
                p_off, p_len, p_file = runs[-1]
                if (p_file is None and file_off is None) or (
                    p_file is not None and file_off is not None and p_file + p_len == file_off
                ):
                    runs[-1] = (p_off, p_len + n, p_file)
                    pos = stop
                    continue
            runs.append((pos, n, file_off))
            pos = stop
        return runs

    def allocated(self) -> list[tuple[int, int]]:
        """``(disk_offset, length)`` areas this extent holds, merged."""
        gsize = self.header.grain_size
        out: list[tuple[int, int]] = []
        for n, sector in enumerate(self._gd):
            if not sector:
                continue
            gt = self._table(n)
            assert gt is not None
            for i, s in enumerate(gt):
                if not s:
                    continue
                off = (n * COWD_GT_ENTRIES + i) * gsize
                if off >= self.capacity:
                    break
                size = min(gsize, self.capacity - off)
                if out and out[-1][0] + out[-1][1] == off:
                    out[-1] = (out[-1][0], out[-1][1] + size)
                else:
                    out.append((off, size))
        return out
