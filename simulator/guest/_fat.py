"""A FAT32 file system that lives entirely on the blocks of a ``BlockDevice``.

Why by hand: the design needs *files on blocks* - a file a guest writes must change blocks of
its virtual disk, so that snapshots (redo layers), revert, commit and changed-block tracking
apply to files, and a snapshot's read-only view must show the files as of that snapshot.
Existing Python FAT libraries do not fit: pyfatfs keeps FAT and directory state in Python
objects (and needs PyFilesystem2), so it is neither snapshot-safe nor able to run on a
read-only view of a layered disk. What is needed is small (FAT32, LFN, no journaling), so it is
written here against the ``BlockDevice`` protocol and checked with ``mtools`` and ``fsck.fat``.

Rules this module keeps:

- **Nothing is cached across calls.** Every public method reads what it needs (boot sector,
  FSInfo, FAT pages, directories) from the device and forgets it on return; within one call a
  small page cache batches FAT reads and writes. The host may revert the disk underneath at any
  time, and a read-only snapshot view is just another device.
- **Cost follows the data touched.** The free-cluster search starts at the FSInfo "next free"
  hint and FSInfo's free count is maintained, so a write never scans the whole FAT of a large
  volume. ``format`` writes only non-zero sectors (boot sectors, FSInfo, the first FAT sector
  of each FAT, the root directory's cluster): the device must read zeros elsewhere (a fresh
  sparse disk does), or pass ``clear=True`` to zero both FATs explicitly.
- **Whole clusters.** File data is read and written in runs of contiguous clusters.
- **Consistent on failure.** Input, names and free space are checked before anything is
  written. A write puts data into newly allocated clusters first, then the FAT (both copies),
  then the directory entry, and frees the old chain last. If the device fails part-way (a
  disk-layer fault such as a full datastore), a file reads as its old or its new content, never
  a mix, and the residue is what a power cut leaves on FAT - leaked clusters, a stale FSInfo
  free count, FAT copies that differ - which ``fsck.fat`` repairs and this module tolerates.
- **Honest timestamps.** Times come from the supplied clock (virtual time, treated as UTC, as
  FAT stores local time without a zone); modification times have FAT's 2-second resolution.

One concern, although over 700 lines: the file system's operations on its device (geometry,
the FAT and its page cache, cluster allocation, directories, files, format, open); how names,
timestamps and directory entries are encoded as bytes is ``_fatentry.py``.

Paths given to ``FatFileSystem`` are volume-relative, ``/``-separated (a leading ``/`` is
optional); names compare case-insensitively and are stored case-preserving, as on Windows.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .._clock import EPOCH, VirtualClock
from .._errors import InvalidInputError, NotFoundError, StateError
from ._fatentry import (
    ATTR_ARCHIVE,
    ATTR_DIRECTORY,
    ATTR_VOLUME_ID,
    FatStat,
    _Entry,
    _fat_datetime,
    _index,
    _label_bytes,
    _lfn_slots,
    _make_short,
    _parse_dir,
    _short_display,
    _short_entry,
    _unix_time,
    valid_name,
)
from ._partition import BlockDevice, BlockReader, Partition, PartitionDevice

__all__ = [
    "ATTR_DIRECTORY",
    "ATTR_ARCHIVE",
    "FatFileSystem",
    "FatStat",
    "format_fat",
    "open_readonly",
    "valid_name",
]

SECTOR = 512
RESERVED_SECTORS = 32
NUM_FATS = 2
ROOT_CLUSTER = 2
FSINFO_SECTOR = 1
BACKUP_BOOT_SECTOR = 6
MIN_CLUSTERS = 65525 + 16  # FAT32 needs at least 65525 clusters; keep a margin
MAX_CLUSTERS = 0x0FFFFFF5 - 2
EOC = 0x0FFFFFFF
FAT_MASK = 0x0FFFFFFF
PAGE = 4096  # FAT pages are read and written 4 KiB at a time
MAX_FILE = 0xFFFFFFFF
MAX_DIR_BYTES = 65536 * 32


Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class _Geometry:
    sectors_per_cluster: int
    reserved: int
    num_fats: int
    fat_sectors: int
    total_sectors: int
    root_cluster: int
    fsinfo_sector: int
    label: str

    @property
    def cluster_size(self) -> int:
        return self.sectors_per_cluster * SECTOR

    @property
    def fat_offset(self) -> int:
        return self.reserved * SECTOR

    @property
    def fat_bytes(self) -> int:
        return self.fat_sectors * SECTOR

    @property
    def data_offset(self) -> int:
        return (self.reserved + self.num_fats * self.fat_sectors) * SECTOR

    @property
    def cluster_count(self) -> int:
        return (self.total_sectors - self.data_offset // SECTOR) // self.sectors_per_cluster

    @property
    def max_cluster(self) -> int:
        return self.cluster_count + 1


def _parse_boot(boot: bytes, device_size: int) -> _Geometry:
    def bad(*, why: str) -> InvalidInputError:
        return InvalidInputError(
            what="volume boot sector",
            expected="a FAT32 boot sector",
            got=why,
            hint="format the volume first (FatFileSystem.format)",
        )

    if boot[510:512] != b"\x55\xaa":
        raise bad(why="no 55 AA signature")
    bps, spc, reserved, nfats, root_entries, tot16, _media, fat16 = struct.unpack_from(
        "<HBHBHHBH", boot, 11
    )
    tot32, fat32 = struct.unpack_from("<II", boot, 32)
    root_cluster, fsinfo = struct.unpack_from("<IH", boot, 44)
    if bps != SECTOR:
        raise bad(why=f"{bps} bytes per sector")
    if spc == 0 or spc & (spc - 1) or nfats == 0:
        raise bad(why=f"{spc} sectors per cluster, {nfats} FATs")
    if fat16 != 0 or root_entries != 0 or fat32 == 0:
        raise bad(why="a FAT12/16 layout")
    total = tot32 or tot16
    if total * SECTOR > device_size:
        raise bad(why=f"{total} sectors on a device of {device_size} bytes")
    label = boot[71:82].decode("cp437", "replace").rstrip(" ")
    geo = _Geometry(spc, reserved, nfats, fat32, total, root_cluster, fsinfo, label)
    if geo.cluster_count < 65525 or geo.fat_bytes < (geo.cluster_count + 2) * 4:
        raise bad(why=f"{geo.cluster_count} clusters")
    return geo


class _Op:
    """The state of one public call: geometry, a FAT page cache, pending FSInfo changes."""

    __slots__ = ("fs", "dev", "geo", "pages", "dirty", "free", "hint", "fsinfo_dirty")

    def __init__(self, fs: FatFileSystem) -> None:
        self.fs = fs
        self.dev = fs.device
        self.geo = fs._geometry()
        self.pages: dict[int, bytearray] = {}
        self.dirty: set[int] = set()
        self.free = -1
        self.hint = -1
        self.fsinfo_dirty = False

    # -- FAT entries ---------------------------------------------------------------------
    def _page(self, n: int) -> bytearray:
        p = self.pages.get(n)
        if p is None:
            start = n * PAGE
            length = min(PAGE, self.geo.fat_bytes - start)
            p = bytearray(self.dev.read(self.geo.fat_offset + start, length))
            self.pages[n] = p
        return p

    def get(self, cluster: int) -> int:
        off = cluster * 4
        page = self._page(off // PAGE)
        return int.from_bytes(page[off % PAGE : off % PAGE + 4], "little") & FAT_MASK

    def set(self, cluster: int, value: int) -> None:
        off = cluster * 4
        n = off // PAGE
        page = self._page(n)
        o = off % PAGE
        old = int.from_bytes(page[o : o + 4], "little")
        page[o : o + 4] = ((old & ~FAT_MASK) | (value & FAT_MASK)).to_bytes(4, "little")
        self.dirty.add(n)

    def chain(self, first: int) -> list[int]:
        out: list[int] = []
        c = first
        limit = self.geo.cluster_count
        while 2 <= c <= self.geo.max_cluster:
            out.append(c)
            if len(out) > limit:
                msg = f"FAT chain from cluster {first} loops; run fsck.fat on the volume"
                raise StateError(msg)
            c = self.get(c)
        return out

    # -- FSInfo ----------------------------------------------------------------------------
    def _load_fsinfo(self) -> None:
        if self.free >= 0:
            return
        raw = self.dev.read(self.geo.fsinfo_sector * SECTOR, SECTOR)
        free, hint = struct.unpack_from("<II", raw, 488)
        ok = raw[0:4] == b"RRaA" and raw[484:488] == b"rrAa"
        if not ok or free > self.geo.cluster_count:
            free = self._count_free()  # once, for volumes whose FSInfo is unknown
            self.fsinfo_dirty = True
        if not 2 <= hint <= self.geo.max_cluster:
            hint = 2
        self.free, self.hint = free, hint

    def _count_free(self) -> int:
        n = 0
        for c in range(2, self.geo.max_cluster + 1):
            if self.get(c) == 0:
                n += 1
        return n

    def free_clusters(self) -> int:
        self._load_fsinfo()
        return self.free

    def allocate(self, count: int) -> list[int]:
        """``count`` free clusters, marked as one chain in the page cache (not yet flushed)."""
        if count == 0:
            return []
        self._load_fsinfo()
        if count > self.free:
            raise InvalidInputError(
                what="write",
                expected=f"at most {self.free * self.geo.cluster_size} bytes of free space",
                got=f"{count * self.geo.cluster_size} bytes needed",
                hint="delete files or use a larger volume",
            )
        got: list[int] = []
        lo, hi = 2, self.geo.max_cluster
        c = self.hint
        scanned = 0
        total = hi - lo + 1
        while len(got) < count and scanned < total:
            # Walk one FAT page at a time from the hint.
            off = c * 4
            page = self._page(off // PAGE)
            base = (off // PAGE) * (PAGE // 4)
            stop = min(base + len(page) // 4, hi + 1)
            mv = memoryview(page)
            while c < stop and len(got) < count:
                o = (c - base) * 4
                if not (int.from_bytes(mv[o : o + 4], "little") & FAT_MASK):
                    got.append(c)
                c += 1
                scanned += 1
            if c > hi:
                c = lo
        if len(got) < count:
            # FSInfo over-counted (clusters leaked by an interrupted change): correct it.
            self.free, self.fsinfo_dirty = len(got), True
            self.flush_fsinfo()
            raise InvalidInputError(
                what="write",
                expected=f"at most {len(got) * self.geo.cluster_size} bytes of free space",
                got=f"{count * self.geo.cluster_size} bytes needed",
                hint="delete files or use a larger volume",
            )
        for a, b in zip(got, got[1:], strict=False):
            self.set(a, b)
        self.set(got[-1], EOC)
        self.free -= count
        self.hint = got[-1] + 1 if got[-1] < hi else lo
        self.fsinfo_dirty = True
        return got

    def release(self, clusters: list[int]) -> None:
        if not clusters:
            return
        self._load_fsinfo()
        for c in clusters:
            self.set(c, 0)
        self.free += len(clusters)
        self.fsinfo_dirty = True

    def flush_fat(self) -> None:
        """Write the dirty FAT pages to every FAT copy, then FSInfo."""
        geo = self.geo
        for n in sorted(self.dirty):
            data = bytes(self.pages[n])
            for f in range(geo.num_fats):
                self.dev.write(geo.fat_offset + f * geo.fat_bytes + n * PAGE, data)
        self.dirty.clear()

    def flush_fsinfo(self) -> None:
        if not self.fsinfo_dirty:
            return
        raw = bytearray(self.dev.read(self.geo.fsinfo_sector * SECTOR, SECTOR))
        if raw[0:4] != b"RRaA":
            raw = bytearray(_fsinfo_sector(self.free, self.hint))
        struct.pack_into("<II", raw, 488, self.free, self.hint)
        self.dev.write(self.geo.fsinfo_sector * SECTOR, bytes(raw))
        self.fsinfo_dirty = False

    # -- clusters --------------------------------------------------------------------------
    def cluster_offset(self, c: int) -> int:
        return self.geo.data_offset + (c - 2) * self.geo.cluster_size

    def read_clusters(self, clusters: list[int]) -> bytes:
        cs = self.geo.cluster_size
        parts = []
        for start, n in _runs(clusters):
            parts.append(self.dev.read(self.cluster_offset(start), n * cs))
        return b"".join(parts)

    def write_clusters(self, clusters: list[int], data: bytes) -> None:
        """Write ``data`` (padded with zeros to whole clusters) over ``clusters``."""
        cs = self.geo.cluster_size
        mv = memoryview(data)
        pos = 0
        for start, n in _runs(clusters):
            chunk = bytes(mv[pos : pos + n * cs])
            if len(chunk) < n * cs:
                chunk += bytes(n * cs - len(chunk))
            self.dev.write(self.cluster_offset(start), chunk)
            pos += n * cs


_WTIME = struct.Struct("<HH")  # a short entry's write time and date (bytes 22-25)


def _runs(clusters: list[int]) -> Iterator[tuple[int, int]]:
    """(first, count) runs of consecutive cluster numbers."""
    if not clusters:
        return
    start = prev = clusters[0]
    for c in clusters[1:]:
        if c != prev + 1:
            yield start, prev - start + 1
            start = c
        prev = c
    yield start, prev - start + 1


def _fsinfo_sector(free: int, hint: int) -> bytes:
    s = bytearray(SECTOR)
    s[0:4] = b"RRaA"
    s[484:488] = b"rrAa"
    struct.pack_into("<II", s, 488, free, hint)
    s[508:512] = b"\x00\x00\x55\xaa"
    return bytes(s)


class _Dir:
    """One directory read in full: its clusters, its raw bytes and its parsed entries.

    Parsing is memoized on the directory's *bytes* (read from the device on every call), so
    the memo can never be stale: a reverted disk or a snapshot view has other bytes.
    """

    __slots__ = ("cluster", "clusters", "data", "entries", "index")

    def __init__(self, op: _Op, cluster: int) -> None:
        self.cluster = cluster
        self.clusters = op.chain(cluster)
        raw = op.read_clusters(self.clusters)
        self.data = bytearray(raw)
        self.entries, self.index = op.fs._parsed(raw)

    def find(self, name: str) -> _Entry | None:
        return self.index.get(name.casefold())

    def shorts(self) -> set[bytes]:
        return {e.short for e in self.entries}

    def update(self, fs: FatFileSystem, old: _Entry | None, new: _Entry | None) -> None:
        """After changing ``data``: update the parse to match and memoize it.

        Equal to ``_parse_dir(data)`` because a change only rewrites the slots of one entry
        (tests compare it with a fresh parse).
        """
        entries = [e for e in self.entries if e is not old]
        if new is not None:
            pos = len(entries)
            while pos > 0 and entries[pos - 1].slot > new.slot:
                pos -= 1
            entries.insert(pos, new)
        if old is None and new is not None:
            index = dict(self.index)
            index.setdefault(new.name.casefold(), new)
            index.setdefault(_short_display(new.short, 0).casefold(), new)
        else:
            index = _index(entries)
        self.entries, self.index = entries, index
        fs._remember(bytes(self.data), entries, index)

    def free_run(self, n: int) -> tuple[int, int]:
        """(first slot of ``n`` free slots or -1, free slots at the end of the directory)."""
        marks = bytes(self.data[0::32]).translate(_FREE_MARKS)
        at = marks.find(b"F" * n)
        tail = len(marks) - len(marks.rstrip(b"F"))
        return at, tail


_FREE_MARKS = bytes(70 if b in (0x00, 0xE5) else 85 for b in range(256))  # "F" free, "U" used


def _split(path: str) -> list[str]:
    if not isinstance(path, str):
        raise InvalidInputError(what="path", expected="a str", got=path)
    return [p for p in path.replace("\\", "/").split("/") if p and p != "."]


def _clock_fn(clock: Clock | VirtualClock | None) -> Clock:
    if clock is None:
        return lambda: EPOCH
    if isinstance(clock, VirtualClock):
        return lambda: clock.now
    return clock


def _choose_cluster_size(size: int) -> int:
    """Microsoft's FAT32 table, but small enough to keep at least 65525 clusters."""
    table = [
        (8 << 30, 4096),
        (16 << 30, 8192),
        (32 << 30, 16384),
    ]
    target = 32768
    for limit, cs in table:
        if size <= limit:
            target = cs
            break
    cs = target
    while cs > SECTOR and size // cs < MIN_CLUSTERS + 2048:
        cs //= 2
    return cs


class FatFileSystem:
    """FAT32 on a ``BlockDevice``. Open an existing one, or create one with ``format``."""

    def __init__(
        self,
        device: BlockDevice,
        readonly: bool = False,
        *,
        clock: Clock | VirtualClock | None = None,
    ) -> None:
        self.device = device
        self.readonly = readonly
        self.clock = _clock_fn(clock)
        self._boot = b""
        self._geo: _Geometry | None = None
        self._parse_memo: OrderedDict[bytes, tuple[list[_Entry], dict[str, _Entry]]] = OrderedDict()
        self._geometry()

    def _parsed(self, raw: bytes) -> tuple[list[_Entry], dict[str, _Entry]]:
        """Parse a directory's bytes, memoized by content (a pure function of the bytes)."""
        hit = self._parse_memo.get(raw)
        if hit is not None:
            self._parse_memo.move_to_end(raw)
            return hit
        entries = _parse_dir(raw)
        return self._remember(raw, entries, _index(entries))

    def _remember(
        self, raw: bytes, entries: list[_Entry], index: dict[str, _Entry]
    ) -> tuple[list[_Entry], dict[str, _Entry]]:
        result = (entries, index)
        self._parse_memo[raw] = result
        self._parse_memo.move_to_end(raw)
        if len(self._parse_memo) > 64:
            self._parse_memo.popitem(last=False)
        return result

    # -- creation --------------------------------------------------------------------------
    @classmethod
    def format(
        cls,
        device: BlockDevice,
        label: str = "NO NAME",
        *,
        clock: Clock | VirtualClock | None = None,
        cluster_size: int | None = None,
        hidden_sectors: int = 0,
        volume_id: int | None = None,
        clear: bool = False,
    ) -> FatFileSystem:
        """Create an empty FAT32 file system on ``device`` and open it.

        ``hidden_sectors`` is the partition's start LBA (as Windows records it);
        ``clear=True`` zeros both FATs first (needed when the device held data before).
        """
        now = _clock_fn(clock)()
        label_b = _label_bytes(label)
        size = device.size
        total = size // SECTOR
        if cluster_size is None:
            cluster_size = _choose_cluster_size(size)
        if cluster_size < SECTOR or cluster_size > 65536 or cluster_size & (cluster_size - 1):
            raise InvalidInputError(
                what="cluster size", expected="a power of two from 512 to 65536", got=cluster_size
            )
        spc = cluster_size // SECTOR
        # Microsoft's FAT size computation (fatgen103), rounded to keep pages simple.
        tmp1 = total - RESERVED_SECTORS
        tmp2 = (256 * spc + NUM_FATS) // 2
        fat_sectors = -(-tmp1 // tmp2)
        clusters = (total - RESERVED_SECTORS - NUM_FATS * fat_sectors) // spc
        if clusters < 65525 or total > 0xFFFFFFFF:
            need = (MIN_CLUSTERS + 2048) * cluster_size
            raise InvalidInputError(
                what="FAT32 volume size",
                expected=f"at least {need} bytes for {cluster_size}-byte clusters"
                " (FAT32 needs 65525 clusters) and below 2 TiB",
                got=size,
                hint="make the partition larger or the cluster size smaller",
            )
        if clusters > MAX_CLUSTERS:
            raise InvalidInputError(
                what="cluster size", expected="a larger cluster for this volume", got=cluster_size
            )
        if volume_id is None:
            volume_id = int(now * 1000) & 0xFFFFFFFF

        boot = bytearray(SECTOR)
        boot[0:3] = b"\xeb\x58\x90"
        boot[3:11] = b"MSWIN4.1"
        struct.pack_into(
            "<HBHBHHBHHHII",
            boot,
            11,
            SECTOR,
            spc,
            RESERVED_SECTORS,
            NUM_FATS,
            0,
            0,
            0xF8,
            0,
            63,
            255,
            hidden_sectors,
            total,
        )
        struct.pack_into("<IHHIHH", boot, 36, fat_sectors, 0, 0, ROOT_CLUSTER, FSINFO_SECTOR, 6)
        boot[64] = 0x80
        boot[66] = 0x29
        struct.pack_into("<I", boot, 67, volume_id)
        boot[71:82] = label_b
        boot[82:90] = b"FAT32   "
        boot[90:93] = b"\xf4\xeb\xfd"  # hlt; jmp back: a harmless loop as boot code
        boot[510:512] = b"\x55\xaa"

        fsinfo = _fsinfo_sector(clusters - 1, 3)
        fat_offset = RESERVED_SECTORS * SECTOR
        fat_bytes = fat_sectors * SECTOR
        data_offset = fat_offset + NUM_FATS * fat_bytes
        first = bytearray(SECTOR)
        struct.pack_into("<III", first, 0, 0x0FFFFFF8, 0x0FFFFFFF, EOC)
        root = bytearray(cluster_size)
        d, t, _ = _fat_datetime(now)
        root[0:11] = label_b
        root[11] = ATTR_VOLUME_ID
        struct.pack_into("<HH", root, 22, t, d)

        if clear:
            zero = bytes(1 << 20)
            for f in range(NUM_FATS):
                base = fat_offset + f * fat_bytes
                for off in range(0, fat_bytes, len(zero)):
                    device.write(base + off, zero[: min(len(zero), fat_bytes - off)])
        # Order: FATs and root first, boot sector last, so a half-formatted volume is not valid.
        for f in range(NUM_FATS):
            device.write(fat_offset + f * fat_bytes, bytes(first))
        device.write(data_offset, bytes(root))
        device.write(FSINFO_SECTOR * SECTOR, fsinfo)
        device.write((BACKUP_BOOT_SECTOR + 1) * SECTOR, fsinfo)
        device.write(BACKUP_BOOT_SECTOR * SECTOR, bytes(boot))
        device.write(0, bytes(boot))
        return cls(device, clock=clock)

    # -- geometry --------------------------------------------------------------------------
    def _geometry(self) -> _Geometry:
        """Re-read the boot sector (one sector per call: the disk may have been reverted)."""
        boot = self.device.read(0, SECTOR)
        if boot != self._boot or self._geo is None:
            self._geo = _parse_boot(boot, self.device.size)
            self._boot = boot
        return self._geo

    @property
    def label(self) -> str:
        return self._geometry().label

    @property
    def cluster_size(self) -> int:
        return self._geometry().cluster_size

    @property
    def size(self) -> int:
        """Bytes available for data (clusters x cluster size)."""
        g = self._geometry()
        return g.cluster_count * g.cluster_size

    @property
    def free_bytes(self) -> int:
        op = _Op(self)
        return op.free_clusters() * op.geo.cluster_size

    # -- lookup ----------------------------------------------------------------------------
    def _writable(self, what: str) -> None:
        if self.readonly:
            msg = f"{what}: this file system is a read-only view (a snapshot); it cannot change"
            raise StateError(msg)

    def _resolve(self, op: _Op, parts: list[str]) -> tuple[_Dir | None, _Entry | None]:
        """(parent directory, entry) for ``parts``; (None, None) for the root."""
        cluster = op.geo.root_cluster
        parent: _Dir | None = None
        entry: _Entry | None = None
        for i, name in enumerate(parts):
            parent = _Dir(op, cluster)
            entry = parent.find(name)
            if entry is None:
                if i < len(parts) - 1:
                    raise NotFoundError(
                        kind="directory",
                        name="/" + "/".join(parts[: i + 1]),
                        known=sorted(e.name for e in parent.entries if e.is_dir),
                    )
                return parent, None
            if i < len(parts) - 1 and not entry.is_dir:
                raise InvalidInputError(
                    what="path",
                    expected=f"{'/'.join(parts[: i + 1])!r} to be a directory",
                    got="a file",
                )
            cluster = entry.cluster
        return parent, entry

    def _dir_of(self, op: _Op, parts: list[str]) -> _Dir:
        if not parts:
            return _Dir(op, op.geo.root_cluster)
        parent, e = self._resolve(op, parts)
        if e is None:
            assert parent is not None
            raise NotFoundError(
                kind="directory",
                name="/" + "/".join(parts),
                known=sorted(x.name for x in parent.entries),
            )
        if not e.is_dir:
            raise InvalidInputError(
                what="path", expected=f"{'/'.join(parts)!r} to be a directory", got="a file"
            )
        return _Dir(op, e.cluster)

    def _lookup(self, path: str) -> _Entry | None:
        parts = _split(path)
        if not parts:
            return None
        op = _Op(self)
        parent, e = self._resolve(op, parts)
        if e is None:
            assert parent is not None
            raise NotFoundError(
                kind="file",
                name="/" + "/".join(parts),
                known=sorted(x.name for x in parent.entries),
            )
        return e

    # -- queries ---------------------------------------------------------------------------
    def realpath(self, path: str) -> str:
        """``path`` with each existing component spelled as stored (``/Program Files/a.bat``)."""
        op = _Op(self)
        parts = _split(path)
        out: list[str] = []
        cluster = op.geo.root_cluster
        for i, name in enumerate(parts):
            e = _Dir(op, cluster).find(name)
            if e is None:
                out.extend(parts[i:])
                break
            out.append(e.name)
            if not e.is_dir:
                out.extend(parts[i + 1 :])
                break
            cluster = e.cluster
        return "/" + "/".join(out)

    def exists(self, path: str) -> bool:
        try:
            self._lookup(path)
        except (NotFoundError, InvalidInputError):
            return False
        return True

    def is_dir(self, path: str) -> bool:
        try:
            e = self._lookup(path)
        except (NotFoundError, InvalidInputError):
            return False
        return e is None or e.is_dir

    def is_file(self, path: str) -> bool:
        try:
            e = self._lookup(path)
        except (NotFoundError, InvalidInputError):
            return False
        return e is not None and not e.is_dir

    def stat(self, path: str) -> FatStat:
        e = self._lookup(path)
        if e is None:
            return FatStat(
                "", "", True, 0, EPOCH, EPOCH, ATTR_DIRECTORY, self._geometry().root_cluster
            )
        return e.stat()

    def listdir(self, path: str = "/") -> list[str]:
        """Names in the directory, in on-disk order (``.``, ``..`` and the label left out)."""
        op = _Op(self)
        return [e.name for e in self._dir_of(op, _split(path)).entries]

    def scandir(self, path: str = "/") -> list[FatStat]:
        op = _Op(self)
        return [e.stat() for e in self._dir_of(op, _split(path)).entries]

    def read_file(self, path: str) -> bytes:
        op = _Op(self)
        parts = _split(path)
        if not parts:
            raise InvalidInputError(what="read", expected="a file", got="the root directory")
        parent, e = self._resolve(op, parts)
        if e is None:
            assert parent is not None
            raise NotFoundError(
                kind="file",
                name="/" + "/".join(parts),
                known=sorted(x.name for x in parent.entries),
            )
        if e.is_dir:
            raise InvalidInputError(what="read", expected="a file", got=f"directory {path!r}")
        return self._read_chain(op, e.cluster, e.size, path)

    def read_chain(self, first_cluster: int, size: int, path: str = "") -> bytes:
        """The ``size`` bytes of the cluster chain from ``first_cluster`` (a file's, as
        ``scandir`` stated it): a reader of a frozen (snapshot) volume that already walked the
        directories reads a file without resolving its path again."""
        return self._read_chain(_Op(self), first_cluster, size, path or f"cluster {first_cluster}")

    def _read_chain(self, op: _Op, first: int, size: int, path: str) -> bytes:
        if size == 0:
            return b""
        cs = op.geo.cluster_size
        need = -(-size // cs)
        clusters: list[int] = []
        c = first
        while len(clusters) < need and 2 <= c <= op.geo.max_cluster:
            clusters.append(c)
            c = op.get(c)
        if len(clusters) < need:
            msg = f"{path!r}: its cluster chain is shorter than its size; run fsck.fat"
            raise StateError(msg)
        return op.read_clusters(clusters)[:size]

    def walk_entries(self, path: str = "/") -> Iterator[tuple[str, list[tuple[str, bool, int, float, int]]]]:
        """Each directory of the tree once, in ``walk``'s order, as ``(dirpath, entries)``
        with ``(name, is_dir, size, mtime, first_cluster)`` per entry in on-disk order: what
        ``scandir`` says of them, for a reader of a whole tree (a backup of a snapshot
        volume) that needs no short names or creation times and should not read a
        directory twice (``walk`` and then ``scandir`` of each ``dirpath``)."""
        op = _Op(self)
        parts = _split(path)
        start = self._dir_of(op, parts)
        stack = [("/" + "/".join(parts), start.cluster)]
        while stack:
            dpath, cluster = stack.pop()
            dop = _Op(self)
            raw = dop.read_clusters(dop.chain(cluster))
            # the parse only: a walk looks nothing up by name, so no name index is built
            hit = self._parse_memo.get(raw)
            entries = hit[0] if hit is not None else _parse_dir(raw)
            rows = []
            unpack, unix_time = _WTIME.unpack_from, _unix_time
            for e in entries:
                wtime, wdate = unpack(e.raw, 22)
                is_dir = bool(e.attr & ATTR_DIRECTORY)
                rows.append((e.name, is_dir, 0 if is_dir else e.size, unix_time(wdate, wtime), e.cluster))
            yield dpath, rows
            base = dpath.rstrip("/")
            stack.extend((base + "/" + name, first) for name, is_dir, _, _, first in reversed(rows) if is_dir)

    def walk(self, path: str = "/") -> Iterator[tuple[str, list[str], list[str]]]:
        """Like ``os.walk`` (top-down): ``(dirpath, dirnames, filenames)``, ``/``-separated."""
        op = _Op(self)
        parts = _split(path)
        start = self._dir_of(op, parts)
        stack = [("/" + "/".join(parts), start.cluster)]
        while stack:
            dpath, cluster = stack.pop()
            d = _Dir(_Op(self), cluster)
            dirs = [e for e in d.entries if e.is_dir]
            files = [e.name for e in d.entries if not e.is_dir]
            names = [e.name for e in dirs]
            yield dpath, names, files
            sub = {e.name: e.cluster for e in dirs}
            for n in reversed(names):  # honour pruning of dirnames, like os.walk
                if n in sub:
                    stack.append((dpath.rstrip("/") + "/" + n, sub[n]))

    # -- changes ---------------------------------------------------------------------------
    def _add_entry(self, op: _Op, d: _Dir, name: str, attr: int, cluster: int, size: int) -> None:
        """Write ``name``'s LFN + short entries into ``d``, growing it by a cluster if needed."""
        short, need_lfn = _make_short(name, d.shorts())
        slots = (_lfn_slots(name, short) if need_lfn else []) + [
            bytes(_short_entry(short, attr, cluster, size, self.clock()))
        ]
        n = len(slots)
        total = len(d.data) // 32
        start, run = d.free_run(n)
        grow: list[int] = []
        if start < 0:
            cs = op.geo.cluster_size
            extra = -(-(n - run) * 32 // cs)
            if len(d.data) + extra * cs > MAX_DIR_BYTES:
                raise InvalidInputError(
                    what="directory",
                    expected="at most 65536 entries (FAT limit)",
                    got=len(d.data) // 32,
                )
            grow = op.allocate(extra)
            op.write_clusters(grow, b"")  # zero the new clusters
            op.set(d.clusters[-1], grow[0])
            d.clusters.extend(grow)
            d.data.extend(bytes(extra * cs))
            start = total - run
        for k, s in enumerate(slots):
            d.data[(start + k) * 32 : (start + k + 1) * 32] = s
        op.flush_fat()
        self._write_dir_range(op, d, start, start + n)
        d.update(
            self, None, _Entry(name, short, attr, cluster, size, start, start + n - 1, slots[-1])
        )

    def _write_dir_range(self, op: _Op, d: _Dir, first_slot: int, end_slot: int) -> None:
        """Write back the sectors of ``d`` that hold slots ``first_slot`` .. ``end_slot - 1``."""
        cs = op.geo.cluster_size
        lo = (first_slot * 32) // SECTOR * SECTOR
        hi = -(-(end_slot * 32) // SECTOR) * SECTOR
        pos = lo
        while pos < hi:
            ci, within = divmod(pos, cs)
            n = min(cs - within, hi - pos)
            op.dev.write(op.cluster_offset(d.clusters[ci]) + within, bytes(d.data[pos : pos + n]))
            pos += n

    def _remove_entry(self, op: _Op, d: _Dir, e: _Entry) -> None:
        for i in range(e.first_slot, e.slot + 1):
            d.data[i * 32] = 0xE5
        self._write_dir_range(op, d, e.first_slot, e.slot + 1)
        d.update(self, e, None)

    def _parent_for_new(self, op: _Op, parts: list[str]) -> tuple[_Dir, _Entry | None]:
        if not parts:
            raise InvalidInputError(what="path", expected="a path below the root", got="/")
        why = valid_name(parts[-1])
        if why:
            raise InvalidInputError(what="file name", expected=why, got=parts[-1])
        parent, e = self._resolve(op, parts)
        assert parent is not None
        return parent, e

    def mkdir(self, path: str, *, parents: bool = False, exist_ok: bool = False) -> None:
        self._writable("mkdir")
        parts = _split(path)
        if parents:
            for i in range(1, len(parts)):
                if not self.is_dir("/".join(parts[:i])):
                    self.mkdir("/".join(parts[:i]), exist_ok=True)
        op = _Op(self)
        parent, e = self._parent_for_new(op, parts)
        if e is not None:
            if exist_ok and e.is_dir:
                return
            raise InvalidInputError(
                what="mkdir", expected="a path that does not exist yet", got="/" + "/".join(parts)
            )
        (c,) = op.allocate(1)
        now = self.clock()
        block = bytearray(op.geo.cluster_size)
        block[0:32] = _short_entry(b".          ", ATTR_DIRECTORY, c, 0, now)
        pc = 0 if parent.cluster == op.geo.root_cluster else parent.cluster
        block[32:64] = _short_entry(b"..         ", ATTR_DIRECTORY, pc, 0, now)
        op.write_clusters([c], bytes(block))
        self._add_entry(op, parent, parts[-1], ATTR_DIRECTORY, c, 0)
        op.flush_fsinfo()

    def write_file(self, path: str, data: bytes) -> None:
        """Create or overwrite the file at ``path`` with ``data``; the parent must exist."""
        self._writable("write")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidInputError(what="file data", expected="bytes", got=type(data).__name__)
        data = bytes(data)
        if len(data) > MAX_FILE:
            raise InvalidInputError(what="file size", expected="below 4 GiB (FAT32)", got=len(data))
        op = _Op(self)
        parts = _split(path)
        parent, e = self._parent_for_new(op, parts)
        if e is not None and e.is_dir:
            raise InvalidInputError(what="write", expected="a file path", got=f"directory {path!r}")
        cs = op.geo.cluster_size
        need = -(-len(data) // cs)
        old = op.chain(e.cluster) if e is not None and e.cluster else []
        # A new entry slot may need one more directory cluster.
        spare = 0 if e is not None else 1
        released = False
        if (
            need + spare > op.free_clusters()
            and e is not None
            and need <= (op.free_clusters() + len(old))
        ):
            # Tight on space: reuse the old file's clusters (not atomic, but consistent).
            op.release(old)
            released = True
        if need + spare > op.free_clusters() and not released:
            raise InvalidInputError(
                what="write",
                expected=f"at most {op.free_clusters() * cs} bytes of free space",
                got=f"{len(data)} bytes to {path!r}",
                hint="delete files or use a larger volume",
            )
        clusters = op.allocate(need)
        op.write_clusters(clusters, data)
        first = clusters[0] if clusters else 0
        if e is None:
            self._add_entry(op, parent, parts[-1], ATTR_ARCHIVE, first, len(data))
        else:
            op.flush_fat()
            raw = bytearray(e.raw)
            d, t, _ = _fat_datetime(self.clock())
            struct.pack_into("<H", raw, 20, first >> 16)
            struct.pack_into("<HHH", raw, 22, t, d, first & 0xFFFF)
            struct.pack_into("<I", raw, 28, len(data))
            struct.pack_into("<H", raw, 18, d)
            raw[11] |= ATTR_ARCHIVE
            parent.data[e.slot * 32 : e.slot * 32 + 32] = raw
            self._write_dir_range(op, parent, e.slot, e.slot + 1)
            new = _Entry(
                e.name, e.short, raw[11], first, len(data), e.first_slot, e.slot, bytes(raw)
            )
            parent.update(self, e, new)
            if not released:
                op.release(old)
            op.flush_fat()
        op.flush_fsinfo()

    def delete(self, path: str, *, recursive: bool = False) -> None:
        """Delete a file, or a directory (empty unless ``recursive``)."""
        self._writable("delete")
        op = _Op(self)
        parts = _split(path)
        if not parts:
            raise InvalidInputError(what="delete", expected="a path below the root", got=path)
        parent, e = self._resolve(op, parts)
        assert parent is not None
        if e is None:
            raise NotFoundError(
                kind="file",
                name="/" + "/".join(parts),
                known=sorted(x.name for x in parent.entries),
            )
        if e.is_dir:
            inner = _Dir(op, e.cluster).entries
            if inner and not recursive:
                raise InvalidInputError(
                    what="delete",
                    expected="an empty directory (or recursive=True)",
                    got=f"{path!r} with {len(inner)} entries",
                )
            for sub in inner:
                self.delete("/".join([*parts, sub.name]), recursive=True)
            op = _Op(self)
            parent, e = self._resolve(op, parts)
            assert parent is not None and e is not None
        chain = op.chain(e.cluster) if e.cluster else []
        self._remove_entry(op, parent, e)
        op.release(chain)
        op.flush_fat()
        op.flush_fsinfo()

    def __repr__(self) -> str:
        ro = ", readonly" if self.readonly else ""
        return f"FatFileSystem(label={self.label!r}, size={self.size}{ro})"


def format_fat(
    device: BlockDevice,
    label: str = "NO NAME",
    **kwargs: object,
) -> FatFileSystem:
    """``FatFileSystem.format`` as a function."""
    return FatFileSystem.format(device, label, **kwargs)  # type: ignore[arg-type]


def open_readonly(
    view: BlockReader,
    partition: Partition | None = None,
    *,
    clock: Clock | VirtualClock | None = None,
) -> FatFileSystem:
    """Open the file system on a read-only (snapshot) view; every change raises StateError.

    ``view`` is a whole-disk view when ``partition`` is given (the volume's window is taken),
    else the volume itself. Nothing is cached, so the view shows the files as of its snapshot.
    """
    # a window (the whole view when no partition is given) makes any reader a device whose
    # writes raise; readonly=True means none is attempted
    window = PartitionDevice.of(view, partition) if partition is not None else PartitionDevice(view, 0, view.size)
    return FatFileSystem(window, readonly=True, clock=clock)
