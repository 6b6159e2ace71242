"""FAT directory entries: names, timestamps and the 32-byte records, as bytes on the volume.

The encoding half of the FAT32 file system (``_fat.py`` does the operations: clusters, the
FAT, directories, files): which long names FAT accepts (``valid_name``), the 8.3 basis name
and its ``~N`` tail (Microsoft's FAT specification, "Basis-Name Generation Algorithm"), the
long-name (LFN) slots with their checksum, FAT's 2-second timestamps, the volume label, and a
directory's bytes parsed into entries (``_parse_dir``: a deleted slot (0xE5) is skipped, the
end marker (0x00) ends the directory, LFN slots whose sequence or checksum does not match
their short entry are ignored). Pure functions over bytes: no device, no state.
"""

from __future__ import annotations

import calendar
import codecs
import functools
import struct
import time
from dataclasses import dataclass

from .._errors import InvalidInputError, StateError

__all__ = [
    "ATTR_ARCHIVE",
    "ATTR_DIRECTORY",
    "ATTR_HIDDEN",
    "ATTR_LFN",
    "ATTR_READ_ONLY",
    "ATTR_SYSTEM",
    "ATTR_VOLUME_ID",
    "FatStat",
    "valid_name",
]


ATTR_READ_ONLY = 0x01
ATTR_HIDDEN = 0x02
ATTR_SYSTEM = 0x04
ATTR_VOLUME_ID = 0x08
ATTR_DIRECTORY = 0x10
ATTR_ARCHIVE = 0x20
ATTR_LFN = 0x0F

_BAD_LFN_CHARS = set('"*/:<>?\\|') | {chr(c) for c in range(0x20)}
_SFN_OK = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789$%'-_@~`!(){}^#&")


def valid_name(name: str) -> str | None:
    """Why ``name`` cannot be a FAT long file name, or ``None`` if it can."""
    if not name:
        return "a name cannot be empty"
    if name in (".", ".."):
        return "'.' and '..' are reserved"
    bad = sorted({c for c in name if c in _BAD_LFN_CHARS})
    if bad:
        return f"names cannot contain {''.join(bad)!r}"
    if name[-1] in ". ":
        return "names cannot end with a dot or a space"
    try:
        units = len(name.encode("utf-16-le")) // 2
    except UnicodeEncodeError:
        return "names must be valid Unicode (no lone surrogates)"
    if units > 255:
        return "names are limited to 255 UTF-16 characters"
    return None


def _fat_datetime(t: float) -> tuple[int, int, int]:
    """(date, time, tenths-of-10ms) for a Unix time, clamped to FAT's 1980-2107 range."""
    t = min(max(t, 315532800.0), 4354819198.0)
    tm = time.gmtime(int(t))
    d = ((tm.tm_year - 1980) << 9) | (tm.tm_mon << 5) | tm.tm_mday
    tt = (tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec // 2)
    tenths = (tm.tm_sec % 2) * 100 + int((t - int(t)) * 100)
    return d, tt, min(tenths, 199)


@functools.lru_cache(maxsize=4096)
def _unix_time(d: int, tt: int, tenths: int = 0) -> float:
    """A FAT date, time and tenths as Unix seconds (a pure function; remembered, because a
    walk converts two per entry and a volume's entries share few distinct times)."""
    if d == 0:
        return 315532800.0
    year, month, day = 1980 + (d >> 9), max((d >> 5) & 0xF, 1), max(d & 0x1F, 1)
    hour, minute, sec = tt >> 11, (tt >> 5) & 0x3F, (tt & 0x1F) * 2
    return calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0)) + tenths / 100


#: a byte rotated right by one bit: the LFN checksum's step (Microsoft's FAT specification,
#: "ChkSum") as one table lookup instead of two shifts
_ROR = bytes(((s & 1) << 7) | (s >> 1) for s in range(256))


def _lfn_checksum(short: bytes) -> int:
    s = 0
    for b in short:
        s = (_ROR[s] + b) & 0xFF
    return s


@dataclass(frozen=True, slots=True)
class FatStat:
    """What ``stat`` returns. ``mtime``/``ctime`` are Unix seconds (virtual, UTC)."""

    name: str
    short_name: str
    is_dir: bool
    size: int
    mtime: float
    ctime: float
    attributes: int
    first_cluster: int


@dataclass(slots=True)
class _Entry:
    name: str
    short: bytes  # 11 bytes
    attr: int
    cluster: int
    size: int
    first_slot: int  # index of the first 32-byte slot (LFN or short)
    slot: int  # index of the short entry
    raw: bytes  # the 32-byte short entry

    @property
    def is_dir(self) -> bool:
        return bool(self.attr & ATTR_DIRECTORY)

    def stat(self) -> FatStat:
        r = self.raw
        ctenth, ctime, cdate = r[13], *struct.unpack_from("<HH", r, 14)
        wtime, wdate = struct.unpack_from("<HH", r, 22)
        return FatStat(
            name=self.name,
            short_name=_short_display(self.short, 0),
            is_dir=self.is_dir,
            size=0 if self.is_dir else self.size,
            mtime=_unix_time(wdate, wtime),
            ctime=_unix_time(cdate, ctime, ctenth),
            attributes=self.attr,
            first_cluster=self.cluster,
        )


def _short_display(short: bytes, nt_flags: int) -> str:
    if nt_flags == 0 and short[0] != 0x05 and short.isascii():
        # code page 437 is ASCII below 0x80: the common case without the charmap codec
        base, ext = short[:8].decode("ascii").rstrip(" "), short[8:].decode("ascii").rstrip(" ")
        return f"{base}.{ext}" if ext else base
    raw = bytearray(short)
    if raw[0] == 0x05:
        raw[0] = 0xE5
    base = raw[:8].decode("cp437").rstrip(" ")
    ext = raw[8:].decode("cp437").rstrip(" ")
    if nt_flags & 0x08:
        base = base.lower()
    if nt_flags & 0x10:
        ext = ext.lower()
    return f"{base}.{ext}" if ext else base


def _label_bytes(label: str) -> bytes:
    lab = label.upper()
    if len(lab) > 11 or any(c not in _SFN_OK and c != " " for c in lab):
        raise InvalidInputError(
            what="volume label",
            expected="up to 11 characters A-Z, 0-9, space or $%'-_@~`!(){}^#&",
            got=label,
        )
    return lab.ljust(11).encode("ascii")


def _index(entries: list[_Entry]) -> dict[str, _Entry]:
    idx: dict[str, _Entry] = {}
    for e in entries:
        idx.setdefault(e.name.casefold(), e)
        idx.setdefault(_short_display(e.short, 0).casefold(), e)
    return idx


#: one 32-byte slot: first byte, bytes 1-10, attributes, byte 12 (NT case flags), byte 13
#: (LFN checksum), bytes 14-25, bytes 26-27 (first cluster, low half), bytes 28-31 (size):
#: the fields both slot kinds (LFN and short entry) are read by
_SLOT = struct.Struct("<B10sBBB12sH4s")


def _parse_dir(data: bytes | bytearray) -> list[_Entry]:
    """A directory's entries in on-disk order. The slots are unpacked by ``struct`` in C
    (``iter_unpack``) and only their fields are touched: a backup's walk parses every
    directory of the volume (issue 18)."""
    entries: list[_Entry] = []
    lfn: list[str] = []
    lfn_sum = -1
    lfn_expect = 0
    lfn_first = -1
    raw_all = bytes(data)
    end = len(raw_all) // 32 * 32
    utf16 = codecs.utf_16_le_decode  # the codec itself: "utf-16-le" has no fast path in bytes.decode
    for i, (first, mid, attr, nt_flags, csum, mid2, lo, tail) in enumerate(_SLOT.iter_unpack(raw_all[:end])):
        if first == 0x00:
            break
        if first == 0xE5:
            lfn, lfn_expect = [], 0
            continue
        if attr & 0x3F == ATTR_LFN:
            seq = first & 0x1F
            part = utf16(mid + mid2 + tail, "replace", True)[0]
            if first & 0x40:
                lfn, lfn_expect, lfn_sum, lfn_first = [part], seq - 1, csum, i
            elif lfn and seq == lfn_expect and csum == lfn_sum:
                lfn.append(part)
                lfn_expect -= 1
            else:
                lfn, lfn_expect = [], 0
            continue
        raw = raw_all[i * 32 : i * 32 + 32]
        short = raw[0:11]
        name = ""
        first_slot = i
        if lfn and lfn_expect == 0 and _lfn_checksum(short) == lfn_sum:
            full = lfn[0] if len(lfn) == 1 else "".join(reversed(lfn))
            name = full.partition("\x00")[0]
            first_slot = lfn_first
        lfn, lfn_expect = [], 0
        if attr & ATTR_VOLUME_ID:
            continue
        if not name:
            name = _short_display(short, nt_flags)
        if name in (".", ".."):
            continue
        hi = mid2[6] | (mid2[7] << 8)
        entries.append(_Entry(name, short, attr, (hi << 16) | lo, int.from_bytes(tail, "little"), first_slot, i, raw))
    return entries


def _basis_short(name: str) -> tuple[str, str, bool]:
    """(base, ext, lossy) for the 8.3 basis name of a long name (Microsoft's algorithm)."""
    up = name.upper()
    lossy = False
    stripped = up.lstrip(".").replace(" ", "")
    if stripped != up:
        lossy = True
    if "." in stripped:
        base, ext = stripped.rsplit(".", 1)
        base = base.replace(".", "")
    else:
        base, ext = stripped, ""

    def conv(s: str) -> str:
        nonlocal lossy
        out = []
        for ch in s:
            if ch in _SFN_OK:
                out.append(ch)
            else:
                out.append("_")
                lossy = True
        return "".join(out)

    base, ext = conv(base), conv(ext)
    if len(base) > 8 or len(ext) > 3:
        lossy = True
    return base[:8] or "_", ext[:3], lossy


def _make_short(name: str, existing: set[bytes]) -> tuple[bytes, bool]:
    """An 8.3 name unique in the directory, and whether a long-name entry is needed."""
    base, ext, lossy = _basis_short(name)
    exact = f"{base}.{ext}" if ext else base
    if not lossy:
        short = base.ljust(8).encode() + ext.ljust(3).encode()
        if short not in existing:
            return short, exact != name
    for n in range(1, 1_000_000):
        tail = f"~{n}"
        cand = (base[: 8 - len(tail)] + tail).ljust(8).encode() + ext.ljust(3).encode()
        if cand not in existing:
            return cand, True
    msg = f"no free 8.3 name for {name!r} in this directory"
    raise StateError(msg)


def _lfn_slots(name: str, short: bytes) -> list[bytes]:
    """The LFN entries for ``name``, in on-disk order (last part first)."""
    units = name.encode("utf-16-le")
    n_units = len(units) // 2
    n = -(-n_units // 13)
    padded = units + (b"\x00\x00" if n_units % 13 else b"")
    padded += b"\xff\xff" * (n * 13 - len(padded) // 2)
    csum = _lfn_checksum(short)
    out = []
    for seq in range(n, 0, -1):
        chunk = padded[(seq - 1) * 26 : seq * 26]
        e = bytearray(32)
        e[0] = seq | (0x40 if seq == n else 0)
        e[1:11] = chunk[0:10]
        e[11] = ATTR_LFN
        e[13] = csum
        e[14:26] = chunk[10:22]
        e[28:32] = chunk[22:26]
        out.append(bytes(e))
    return out


def _short_entry(short: bytes, attr: int, cluster: int, size: int, now: float) -> bytearray:
    d, t, tenths = _fat_datetime(now)
    e = bytearray(32)
    e[0:11] = short
    e[11] = attr
    e[13] = tenths
    struct.pack_into("<HHH", e, 14, t, d, d)
    struct.pack_into("<H", e, 20, cluster >> 16)
    struct.pack_into("<HH", e, 22, t, d)
    struct.pack_into("<H", e, 26, cluster & 0xFFFF)
    struct.pack_into("<I", e, 28, size)
    return e
