"""ESXi's SEsparse redo-log extents (``<stem>-sesparse.vmdk``, ESXi 6.5 on), rendered lazily.

The layout qemu opens (``block/vmdk.c``, ``vmdk_open_se_sparse``): a 512-byte constant header
(magic 0xcafebabe, version 0x200000001, capacity in sectors, grain size 8 sectors, grain tables
of 64 sectors, then offset/size pairs of every region, in sectors), a 512-byte volatile header
(magic 0xcafecafe, no journal to replay), a grain directory of 64-bit entries (0: no table;
else 0x1000000000000000 | table number), grain tables of 4096 64-bit entries (0: not here, read
the parent; 0x3... an allocated grain whose number is split into 12 + 48 bits), and 4 KiB
grains. A layer's 64 KiB grain is 16 consecutive SEsparse grains.

The second redo-log format beside COWD (``_cowd.py``, whose lazy rendering this follows:
layout from the layer's grain indexes, tables rendered on demand, grain bytes sliced from the
layer). ``SeSparseExtent`` is the server side, ``SeSparseReader`` the client's.
"""

from __future__ import annotations

import bisect
import struct
import sys
from array import array
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from ._cowd import _CACHE_SIZE, _ceil_div, _data_piece, _invalid
from ._model import SECTOR_SIZE

__all__ = [
    "SESPARSE_CONST_MAGIC",
    "SESPARSE_VERSION",
    "SESPARSE_VOLATILE_MAGIC",
    "SeSparseExtent",
    "SeSparseReader",
    "sesparse_extent",
]

SESPARSE_CONST_MAGIC = 0xCAFEBABE
SESPARSE_VOLATILE_MAGIC = 0xCAFECAFE
SESPARSE_VERSION = 0x0000000200000001
_SE_GRAIN = 4096
_SE_GT_ENTRIES = 4096
_SE_GT_BYTES = _SE_GT_ENTRIES * 8  # 32 KiB, 64 sectors
_SE_GT_SPAN = _SE_GT_ENTRIES * _SE_GRAIN  # 16 MiB of disk per table
_SE_CONST = struct.Struct("<26Q304x")
assert _SE_CONST.size == SECTOR_SIZE
_SE_VOLATILE = struct.Struct("<4Q480x")
_SE_ALLOCATED = 0x3000000000000000
_SE_TABLE = 0x1000000000000000


def _se_entry(grain_number: int) -> int:
    """A grain table entry for the ``grain_number``-th grain of the grains region."""
    return _SE_ALLOCATED | ((grain_number & 0xFFF) << 48) | (grain_number >> 12)


def _se_number(entry: int) -> int:
    return ((entry & 0x0FFF000000000000) >> 48) | ((entry & 0x0000FFFFFFFFFFFF) << 12)


class SeSparseExtent:
    """One redo layer as an SEsparse extent file: ``size`` and ``read(offset, length)``.

    As :class:`CowdExtent`: the layout comes from the layer's grain indexes (read once), the
    tables are rendered on demand, grain bytes are sliced from the layer when read.
    """

    def __init__(self, grains: Mapping[int, Any], capacity: int, *, grain_size: int = 65536) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0 or capacity % SECTOR_SIZE:
            _invalid("capacity", "a positive multiple of 512 bytes", capacity)
        if isinstance(grain_size, bool) or not isinstance(grain_size, int) or grain_size <= 0 or grain_size % _SE_GRAIN:
            _invalid("grain_size", "a positive multiple of 4096 bytes (SEsparse grains are 4 KiB)", grain_size)
        self.capacity = capacity
        self.grain_size = grain_size
        self.per = grain_size // _SE_GRAIN  # SEsparse grains per layer grain
        total = _ceil_div(capacity, grain_size)
        self._grains = grains
        self.indexes: list[int] = [i for i in sorted(grains) if 0 <= i < total]
        self.gd_entries = _ceil_div(capacity, _SE_GT_SPAN)
        gt_of = {(i * grain_size) // _SE_GT_SPAN for i in self.indexes}
        if self.per > _SE_GT_ENTRIES or _SE_GT_SPAN % grain_size:
            _invalid("grain_size", f"at most {_SE_GT_SPAN} bytes and a divisor of it", grain_size)
        self._tables = sorted(gt_of)
        self._table_pos = {t: n for n, t in enumerate(self._tables)}
        gd_sectors = _ceil_div(self.gd_entries * 8, SECTOR_SIZE)
        # const header, volatile header, journal header (1 sector, empty journal), then the GD
        self.gd_offset = 3
        self.gt_offset = self.gd_offset + gd_sectors
        self.data_offset = _ceil_div(self.gt_offset + len(self._tables) * 64, 8) * 8
        self.data_sectors = len(self.indexes) * (grain_size // SECTOR_SIZE)
        self.size = (self.data_offset + self.data_sectors) * SECTOR_SIZE
        self._gt_cache: dict[int, bytes] = {}
        self._head = self._render_head()

    def _render_head(self) -> bytes:
        sectors = self.capacity // SECTOR_SIZE
        const = _SE_CONST.pack(
            SESPARSE_CONST_MAGIC, SESPARSE_VERSION, sectors, 8, 64, 0, 0, 0, 0, 0,
            1, 1,  # volatile header
            2, 1,  # journal header
            3, 0,  # journal (empty)
            self.gd_offset, self.gt_offset - self.gd_offset,
            self.gt_offset, len(self._tables) * 64,
            0, 0,  # free bitmap
            0, 0,  # backmap
            self.data_offset, self.data_sectors,
        )  # fmt: skip
        volatile = _SE_VOLATILE.pack(SESPARSE_VOLATILE_MAGIC, len(self._tables), 1, 0)
        return const + volatile + bytes(SECTOR_SIZE)

    def _gt_bytes(self, table: int) -> bytes:
        cached = self._gt_cache.get(table)
        if cached is not None:
            return cached
        first = table * _SE_GT_SPAN // self.grain_size  # first layer grain of the table
        last = (table + 1) * _SE_GT_SPAN // self.grain_size
        lo = bisect.bisect_left(self.indexes, first)
        hi = bisect.bisect_left(self.indexes, last)
        arr = array("Q", bytes(_SE_GT_BYTES))
        for k in range(lo, hi):
            base = (self.indexes[k] - first) * self.per
            for j in range(self.per):
                arr[base + j] = _se_entry(k * self.per + j)
        if sys.byteorder == "big":  # pragma: no cover
            arr.byteswap()
        data = arr.tobytes()
        self._gt_cache[table] = data
        return data

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            _invalid("read range", "a non-negative offset and length", (offset, length))
        end = min(self.size, offset + length)
        out = bytearray()
        pos = offset
        gd_at = self.gd_offset * SECTOR_SIZE
        gt_at = self.gt_offset * SECTOR_SIZE
        gt_end = gt_at + len(self._tables) * _SE_GT_BYTES
        data_at = self.data_offset * SECTOR_SIZE
        while pos < end:
            if pos < gd_at:
                stop = min(end, gd_at)
                out += self._head[pos:stop]
            elif pos < gt_at:
                stop = min(end, gt_at)
                first = (pos - gd_at) // 8
                last = min(self.gd_entries, _ceil_div(stop - gd_at, 8))
                lo = bisect.bisect_left(self._tables, first)
                hi = bisect.bisect_left(self._tables, last)
                arr = array("Q", bytes(8 * max(0, last - first)))
                for n in range(lo, hi):
                    arr[self._tables[n] - first] = _SE_TABLE | n
                if sys.byteorder == "big":  # pragma: no cover
                    arr.byteswap()
                chunk = arr.tobytes()
                rel = (pos - gd_at) - first * 8
                piece = chunk[rel : rel + (stop - pos)]
                out += piece + bytes(stop - pos - len(piece))
            elif pos < gt_end:
                n, within = divmod(pos - gt_at, _SE_GT_BYTES)
                stop = min(end, gt_at + (n + 1) * _SE_GT_BYTES)
                out += self._gt_bytes(self._tables[n])[within : within + (stop - pos)]
            elif pos < data_at:
                stop = min(end, data_at)
                out += bytes(stop - pos)
            else:
                stop = _data_piece(out, self._grains, self.indexes, self.grain_size, data_at, pos, end)
            pos = stop
        return bytes(out)


_SE_CACHE: OrderedDict[tuple[int, int, int, int], SeSparseExtent] = OrderedDict()


def sesparse_extent(layer: Any, capacity: int, *, grain_size: int = 65536) -> SeSparseExtent:
    """The SEsparse extent of a redo ``Layer`` (cached while its grain count is unchanged)."""
    key = (int(layer.id), len(layer.grains), capacity, grain_size)
    ext = _SE_CACHE.get(key)
    if ext is not None:
        _SE_CACHE.move_to_end(key)
        return ext
    ext = SeSparseExtent(layer.grains, capacity, grain_size=grain_size)
    _SE_CACHE[key] = ext
    while len(_SE_CACHE) > _CACHE_SIZE:
        _SE_CACHE.popitem(last=False)
    return ext


class SeSparseReader:
    """Client side of an SEsparse extent, with the interface of :class:`CowdReader`."""

    def __init__(self, fetch: Callable[[int, int], bytes]) -> None:
        self._fetch = fetch
        head = fetch(0, SECTOR_SIZE)
        if len(head) < SECTOR_SIZE:
            _invalid("SEsparse header", f"{SECTOR_SIZE} bytes", f"{len(head)} bytes")
        f = _SE_CONST.unpack(head)
        if f[0] != SESPARSE_CONST_MAGIC or f[1] != SESPARSE_VERSION:
            _invalid("SEsparse header", "magic 0xcafebabe, version 0x200000001", (hex(f[0]), hex(f[1])))
        if f[3] != 8 or f[4] != 64:
            _invalid("SEsparse header", "4 KiB grains and 64-sector grain tables", (f[3], f[4]))
        self.capacity = f[2] * SECTOR_SIZE
        self.gt_offset = f[18] * SECTOR_SIZE
        self.data_offset = f[24] * SECTOR_SIZE
        gd = fetch(f[16] * SECTOR_SIZE, f[17] * SECTOR_SIZE)
        self._gd = array("Q", gd[: len(gd) // 8 * 8])
        if sys.byteorder == "big":  # pragma: no cover
            self._gd.byteswap()
        self._gts: dict[int, array[int]] = {}

    def _table(self, n: int) -> array[int] | None:
        if n >= len(self._gd) or self._gd[n] == 0:
            return None
        entry = self._gd[n]
        if entry & 0xFFFFFFFF00000000 != _SE_TABLE:
            _invalid("SEsparse grain directory entry", "0x10000000xxxxxxxx", hex(entry))
        gt = self._gts.get(n)
        if gt is None:
            raw = self._fetch(self.gt_offset + (entry & 0xFFFFFFFF) * _SE_GT_BYTES, _SE_GT_BYTES)
            gt = array("Q", raw)
            if sys.byteorder == "big":  # pragma: no cover
                gt.byteswap()
            self._gts[n] = gt
        return gt

    def _file_offset(self, grain: int) -> int | None:
        """File offset of SEsparse grain ``grain`` (None: not here; zero grains are data 0)."""
        gt = self._table(grain // _SE_GT_ENTRIES)
        if gt is None:
            return None
        e = gt[grain % _SE_GT_ENTRIES]
        kind = e & 0xF000000000000000
        if kind == 0:
            return None
        if kind == _SE_ALLOCATED:
            return self.data_offset + _se_number(e) * _SE_GRAIN
        return -1  # zeroed or unmapped: reads as zeros here

    def map(self, offset: int, length: int) -> list[tuple[int, int, int | None]]:
        """As :meth:`CowdReader.map`; a zeroed grain maps to file offset ``-1``."""
        end = min(offset + length, self.capacity)
        runs: list[tuple[int, int, int | None]] = []
        pos = offset
        while pos < end:
            g = pos // _SE_GRAIN
            table = g // _SE_GT_ENTRIES
            if table >= len(self._gd) or self._gd[table] == 0:
                stop = min(end, (table + 1) * _SE_GT_SPAN)
                file_off: int | None = None
            else:
                stop = min(end, (g + 1) * _SE_GRAIN)
                where = self._file_offset(g)
                file_off = None if where is None else (-1 if where < 0 else where + (pos - g * _SE_GRAIN))
            n = stop - pos
            if runs:
                p_off, p_len, p_file = runs[-1]
                if (p_file is None and file_off is None) or (p_file == -1 and file_off == -1) or (
                    p_file is not None and p_file >= 0 and file_off is not None and p_file + p_len == file_off
                ):
                    runs[-1] = (p_off, p_len + n, p_file)
                    pos = stop
                    continue
            runs.append((pos, n, file_off))
            pos = stop
        return runs

    def allocated(self) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for off, n, f in self.map(0, self.capacity):
            if f is not None:
                out.append((off, n))
        return out
