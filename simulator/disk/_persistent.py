"""Layered disks kept as real files that survive a restart and a SIGKILL at any moment.

:class:`PersistentLayeredDisk` is a :class:`LayeredDisk` whose grains stay in memory (reads
cost what they cost in memory) and whose every change reaches files in a directory before
the call returns. The structure (which layer is whose parent, labels, flags, epochs) is not
kept by the disk: :meth:`PersistentLayeredDisk.to_meta` gives it as plain data and the owner
writes it atomically (``vcbsim.simulator._persist`` does, once per host operation, for all
disks of a VM together). :meth:`PersistentLayeredDisk.from_meta` rebuilds the disk.

Files (``<stem>`` is the base label without ``.vmdk``: ``win2003``, ``win2003_1``)
---------------------------------------------------------------------------------------

``<stem>-flat.vmdk``
    The base layer: a raw sparse file of exactly the disk's capacity (never-written grains
    are holes), so ``qemu-img`` reads it through the ``<stem>.vmdk`` descriptor. Loading
    finds its data with ``SEEK_DATA`` / ``SEEK_HOLE``.
``<stem>-flat.vmdk.wal``
    Write-ahead log of the base while the base is the writable top: a write's records are
    appended here first, then written in place, so a write killed half-way is redone (or,
    if its records are torn, was never there). It is emptied when the base freezes and
    whenever it exceeds :data:`WAL_CHECKPOINT` bytes (everything in it is already in place).
``<label stem>-delta.vmdk`` (or ``-sesparse.vmdk``)
    A redo log, as an append-only grain log (format below). Named after the layer's label
    when the file is created; a merge may leave a layer backed by its neighbour's file (the
    descriptor's extent line names the file actually used).
``<stem>-ctk.log``
    Changed-block tracking: 16-byte records ``(grain: u64, epoch: u32, crc32: u32)``, written
    before the data of the same write (so a kill over-reports, never under-reports); grain
    ``2**64 - 1`` marks a tracking reset at ``epoch``. A torn or bad tail record is dropped.

Grain log format (delta extents and the WAL)
--------------------------------------------

A 24-byte file header (``b"VCBSIM-GRAINLOG1"``, grain size ``u32``, reserved ``u32``), then
records: a 32-byte header ``<4sHHQIII4x>`` = magic ``b"GRN1"``, flags, reserved, grain
index, offset in the grain, length, CRC-32 (of the header with the CRC field zeroed, then
the payload), then ``length`` payload bytes. A record with offset 0 and the grain's full
length sets the grain; any other record patches a grain set earlier in the same file. Flag
``END`` (1) closes a batch: the records of one ``write`` (or one piece of a merge) form one
batch and are applied together or not at all. On load, records are read in order; the first
torn, short or corrupt record, and every record of a batch without its ``END``, is
discarded and the file is truncated there (a kill only ever tears the tail). Compaction is
not needed for correctness: when a disk is loaded, a log holding more than four times its
live data (plus 1 MiB) is rewritten to one record per grain (temporary file, then renamed
over); the CBT log likewise.

Merges and their crash safety
-----------------------------

A merge (release, consolidate, the merges a revert enables) changes the in-memory model at
once and records an *intent* ``(src file, dst file, mode)``: ``into`` copies every grain of
the child's file into the parent's file (child grains win), ``fill`` copies the parent's
grains the child lacks into the child's file. The parent is always the destination when it
is the flat base (the base stays the flat file); otherwise the larger side is kept, so a
merge costs the grains of the smaller side. Intents touch no file until the owner has
written a state that lists them (:meth:`pending_intents`); then :meth:`apply_intents` does
the copies; then the owner writes the state again without them and deletes the files no
layer uses. Both copies are idempotent and never change the view of any layer the new
state shows (the destination only gains grains the view already shows through the chain),
so a kill at any point leaves either the old state with its files intact, or the new state
whose intents :func:`redo_intents` finishes on load.

One concern, although over 700 lines: a layered disk kept durable in files (the grain log, the
base's WAL and the CBT log, their formats, writes and recovery). The formats are not a module
of their own because the I/O seam every write goes through (``io``, swapped by ``use_io`` for
fault-injecting tests) is this module's global, which ``simulator/_persist.py`` also reads.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from .._errors import InvalidInputError, StateError
from .._iofaults import io_fault
from ._model import DEFAULT_GRAIN_SIZE, Layer, LayeredDisk, MergeStats, _MergeLog

__all__ = [
    "PersistentLayeredDisk",
    "GrainLogError",
    "DamagedFileError",
    "FileIO",
    "FailingIO",
    "io",
    "use_io",
    "read_grain_log",
    "redo_intents",
    "WAL_CHECKPOINT",
    "atomic_write",
]

FILE_MAGIC = b"VCBSIM-GRAINLOG1"
_FILE_HEADER = struct.Struct("<16sII")
_REC = struct.Struct("<4sHHQIII4x")
#: the same header with its last four bytes: a CRC-32 of the first 28 (0 in old files)
_REC_H = struct.Struct("<4sHHQIIII")
_REC_MAGIC = b"GRN1"
_END = 1
_CTK = struct.Struct("<QII")
_CTK_RESET = 2**64 - 1
_CTK_MAGIC_HEADER = b"VCBSIM-CTKLOG-01"
#: the base's write-ahead log is emptied when it grows past this many bytes
WAL_CHECKPOINT = 8 * 1024 * 1024
#: append batches of at most this many grains while merging
_MERGE_BATCH = 64

Mode = Literal["into", "fill"]


class GrainLogError(InvalidInputError):
    """A grain log that is not one (wrong magic or grain size): refuse rather than guess."""


class DamagedFileError(StateError):
    """A file the state refers to is missing or damaged in a way no kill can cause.

    Recovery only reports these (the disk, and so its VM, is not loaded; the file is left
    exactly as it is): a kill tears at most the tail of a log, so anything else is damage
    done from outside, and guessing would destroy data (docs/architecture.md, durability).
    """

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: {reason}", file=file, reason=reason)
        self.file = file
        self.reason = reason


class FileIO:
    """The I/O seam: every write, size change, rename and sync of a datastore file.

    The reliability harness replaces :data:`io` with a subclass that raises
    ``OSError(ENOSPC)`` (or ``EIO``) at chosen moments, so a full disk is exercised at every
    step without a real small file system.
    """

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        return os.write(fd, data)

    def pwrite(self, fd: int, data: bytes | bytearray | memoryview, offset: int) -> int:
        return os.pwrite(fd, data, offset)

    def ftruncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def replace(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)


#: the seam every datastore write goes through (tests swap in a faulty one)
io = FileIO()


class FailingIO(FileIO):
    """A :class:`FileIO` that fails on demand: a full disk (``ENOSPC``) or an I/O error.

    Every call fails while ``full`` is set; otherwise each fails with ``probability``
    (seeded). A failing ``write``/``pwrite`` first writes part of its data, as a short write
    on a full disk does, so the caller must cut it off. ``injected`` counts the failures.
    Install it with :func:`use_io` (or ``monkeypatch.setattr(_persistent, "io", ...)``).
    """

    def __init__(self, *, probability: float = 0.0, seed: int = 0, code: int = errno.ENOSPC) -> None:
        self.full = False
        self.probability = probability
        self.rng = random.Random(seed)
        self.code = code
        self.injected = 0
        self.calls = 0

    def _fails(self) -> bool:
        self.calls += 1
        if self.full or (self.probability and self.rng.random() < self.probability):
            self.injected += 1
            return True
        return False

    def _error(self) -> OSError:
        return OSError(self.code, os.strerror(self.code))

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        if self._fails():
            if len(data) > 1:
                os.write(fd, memoryview(data)[: len(data) // 2])  # a torn record left behind
            raise self._error()
        return os.write(fd, data)

    def pwrite(self, fd: int, data: bytes | bytearray | memoryview, offset: int) -> int:
        if self._fails():
            if len(data) > 1:
                os.pwrite(fd, memoryview(data)[: len(data) // 2], offset)
            raise self._error()
        return os.pwrite(fd, data, offset)

    def ftruncate(self, fd: int, length: int) -> None:
        # shrinking never needs space; growing (a new flat extent) does
        if length > os.fstat(fd).st_size and self._fails():
            raise self._error()
        os.ftruncate(fd, length)

    def fsync(self, fd: int) -> None:
        if self._fails():
            raise self._error()
        os.fsync(fd)

    def replace(self, src: Path, dst: Path) -> None:
        if self._fails():
            raise self._error()
        os.replace(src, dst)


def use_io(seam: FileIO) -> FileIO:
    """Make ``seam`` the datastore's I/O seam; returns the previous one (to put back)."""
    global io
    previous, io = io, seam
    return previous


@dataclass
class _Intent:
    src: str
    dst: str
    mode: Mode
    grains: list[tuple[int, bytearray]] = field(default_factory=list)

    def to_meta(self) -> dict[str, str]:
        return {"src": self.src, "dst": self.dst, "mode": self.mode}


# -- low-level file helpers ------------------------------------------------------------------


def _write_all(fd: int, data: bytes | memoryview) -> None:
    mv = memoryview(data)
    while mv:
        n = io.write(fd, mv)
        mv = mv[n:]


def _append(fd: int, data: bytes | memoryview) -> None:
    """Append ``data`` or nothing: a failed append is cut off again (the fence).

    Without the cut a partial record would stay in the log, later appends would sit behind
    it, and loading (which stops at a torn record) would drop them although they were
    acknowledged. If even the cut fails the error says so (:class:`_FenceError`), and the
    disk refuses writes until it is loaded again.
    """
    size = os.fstat(fd).st_size
    try:
        _write_all(fd, data)
    except OSError as exc:
        try:
            io.ftruncate(fd, size)
        except OSError as exc2:
            raise _FenceError(exc, exc2) from None
        raise


class _FenceError(OSError):
    """A failed write could not be undone in its file: the disk takes no more writes.

    Carries the first error (what the caller is told) and says why the cut failed.
    """

    def __init__(self, cause: OSError, cut: OSError) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.cut_error = cut.strerror or str(cut)


def _pwrite_all(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    mv = memoryview(data)
    while mv:
        n = io.pwrite(fd, mv, offset)
        mv = mv[n:]
        offset += n


def _file_header(grain_size: int) -> bytes:
    return _FILE_HEADER.pack(FILE_MAGIC, grain_size, 0)


def _encode(items: Iterable[tuple[int, int, bytes | bytearray | memoryview]]) -> bytes:
    """Encode ``(grain, offset, payload)`` records as one batch (the last one carries END)."""
    items = list(items)
    parts: list[bytes | bytearray | memoryview] = []
    for n, (grain, off, payload) in enumerate(items):
        flags = _END if n == len(items) - 1 else 0
        length = len(payload)
        head = _REC.pack(_REC_MAGIC, flags, 0, grain, off, length, 0)
        crc = zlib.crc32(payload, zlib.crc32(head))
        full = _REC.pack(_REC_MAGIC, flags, 0, grain, off, length, crc)
        hcrc = zlib.crc32(full[:28]) or 1
        parts.append(full[:28] + struct.pack("<I", hcrc))
        parts.append(payload)
    return b"".join(parts)


def _record_at(
    raw: bytes, pos: int, end: int, grain_size: int
) -> tuple[str, int, tuple[int, int, int, memoryview] | None]:
    """Classify the record at ``pos``: ``("ok", next, (flags, grain, offset, payload))``,
    ``("torn", ...)`` (the file ends inside it: what a kill leaves) or ``("bad", ...)``
    (complete but wrong: damage). A header checksum (new files) tells a torn payload from a
    damaged length field; in older files an intact magic stands in for it."""
    if end - pos < _REC.size:
        return "torn", pos, None
    magic, flags, res, grain, off, length, crc, hcrc = _REC_H.unpack_from(raw, pos)
    if magic != _REC_MAGIC or off + length > grain_size:
        return "bad", pos, None
    if hcrc and hcrc != (zlib.crc32(raw[pos : pos + 28]) or 1):
        return "bad", pos, None
    start = pos + _REC.size
    if start + length > end:
        return "torn", pos, None
    payload = memoryview(raw)[start : start + length]
    head = _REC.pack(_REC_MAGIC, flags, res, grain, off, length, 0)
    if zlib.crc32(payload, zlib.crc32(head)) != crc:
        return "bad", pos, None
    return "ok", start + length, (flags, grain, off, payload)


@dataclass
class _Scan:
    """A grain log read record by record: its complete batches, where they end, and any
    damaged regions (offset, length) between intact records."""

    batches: list[list[tuple[int, int, memoryview]]] = field(default_factory=list)
    good: int = 0
    damaged: list[tuple[int, int]] = field(default_factory=list)


def _scan(raw: bytes, grain_size: int) -> _Scan:
    """Read every record; a damaged record is skipped up to the next intact one (never
    the end of the file: records after damage are kept), a torn tail ends the scan."""
    end = len(raw)
    pos = _FILE_HEADER.size
    out = _Scan(good=pos)
    batch: list[tuple[int, int, memoryview]] = []
    while pos < end:
        kind, nxt, rec = _record_at(raw, pos, end, grain_size)
        if rec is not None:
            flags, grain, off, payload = rec
            batch.append((grain, off, payload))
            pos = nxt
            if flags & _END:
                out.batches.append(batch)
                batch = []
                out.good = pos
            continue
        if kind == "torn":
            break
        resume = _resync(raw, pos + 1, end, grain_size)
        out.damaged.append((pos, (end if resume is None else resume) - pos))
        batch = []
        if resume is None:
            out.good = end
            break
        pos = resume
    return out


def _resync(raw: bytes, start: int, end: int, grain_size: int) -> int | None:
    """Where the next intact record starts after damage (checked by its checksums)."""
    p = start
    while True:
        p = raw.find(_REC_MAGIC, p, end)
        if p < 0:
            return None
        if _record_at(raw, p, end, grain_size)[0] == "ok":
            return p
        p += 1


def _check_header(path: Path, raw: bytes, grain_size: int) -> None:
    magic, gsize, _ = _FILE_HEADER.unpack_from(raw)
    if magic != FILE_MAGIC or gsize != grain_size:
        msg = f"grain log {path.name}"
        raise GrainLogError(
            msg,
            expected=f"a vcbsim grain log of {grain_size}-byte grains",
            got=f"magic {magic!r}, grain size {gsize}",
        )


def _damage_text(damaged: list[tuple[int, int]]) -> str:
    shown = ", ".join(f"{n} bytes at offset {o}" for o, n in damaged[:5])
    more = f" and {len(damaged) - 5} more" if len(damaged) > 5 else ""
    return (
        f"{len(damaged)} damaged region(s) between intact records ({shown}{more}); "
        "no kill leaves that, so nothing was cut: restore the file from a backup or move "
        "the VM away"
    )


def read_grain_log(
    path: Path, grain_size: int, *, repair: bool = True
) -> tuple[dict[int, bytearray], int]:
    """Replay a grain log: ``(grains, bytes discarded from a torn tail)``.

    A missing file is an empty log. With ``repair`` the torn tail is cut off the file, so
    appends continue after the last complete batch. Damage anywhere else (a complete record
    whose checksum fails) raises :class:`DamagedFileError` and changes nothing.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, 0
    if len(raw) < _FILE_HEADER.size:
        # torn while being created: nothing was ever acknowledged in it
        if repair:
            with open(path, "wb") as f:
                f.write(_file_header(grain_size))
        return {}, len(raw)
    _check_header(path, raw, grain_size)
    scan = _scan(raw, grain_size)
    if scan.damaged:
        raise DamagedFileError(path.name, _damage_text(scan.damaged))
    grains: dict[int, bytearray] = {}
    for batch in scan.batches:
        for g, o, p in batch:
            if o == 0 and len(p) == grain_size:
                grains[g] = bytearray(p)
            else:
                cur = grains.get(g)
                if cur is None:
                    cur = grains[g] = bytearray(grain_size)
                cur[o : o + len(p)] = p
    torn = len(raw) - scan.good
    if torn and repair:
        with open(path, "r+b") as f:
            f.truncate(scan.good)
    return grains, torn


def _read_ctk(path: Path, report: list[str]) -> tuple[dict[int, int], int | None, str | None]:
    """Replay a CBT log: ``(changed, last reset epoch or None, damage or None)``.

    A torn tail (less than one record: what a kill leaves) is cut. A missing file, a wrong
    header or a complete record whose checksum fails is damage: nothing is read or changed,
    and the owner resets change tracking, as a host does when a ``-ctk.vmdk`` is damaged
    (VMware KB 2136854: the next ``QueryChangedDiskAreas`` with an old change id fails and
    the backup falls back to a full one).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, None, "missing"
    changed: dict[int, int] = {}
    reset: int | None = None
    head = len(_CTK_MAGIC_HEADER)
    if raw[:head] != _CTK_MAGIC_HEADER:
        if len(raw) >= head:
            return {}, None, f"not a vcbsim CBT log (starts {raw[:head]!r})"
        pos = 0
    else:
        pos = head
    good = pos
    while pos + _CTK.size <= len(raw):
        grain, epoch, crc = _CTK.unpack_from(raw, pos)
        if zlib.crc32(raw[pos : pos + 12]) != crc:
            return {}, None, f"record at offset {pos} fails its checksum"
        if grain == _CTK_RESET:
            changed.clear()
            reset = epoch
        else:
            changed[grain] = max(changed.get(grain, 0), epoch)
        pos += _CTK.size
        good = pos
    if good < len(raw):
        report.append(f"{path.name}: discarded {len(raw) - good} torn bytes")
        with open(path, "r+b") as f:
            f.truncate(good)
            if good == 0:
                f.write(_CTK_MAGIC_HEADER)
    return changed, reset, None


def _ctk_record(grain: int, epoch: int) -> bytes:
    body = struct.pack("<QI", grain, epoch)
    return body + struct.pack("<I", zlib.crc32(body))


class _CtkDict(dict[int, int]):
    """The disk's change records; each change of a value is queued for the CBT log."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[tuple[int, int]] = []

    def __setitem__(self, key: int, value: int) -> None:
        if self.get(key) != value:
            self.pending.append((key, value))
        super().__setitem__(key, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_ctk_dict, (dict(self),))


def _ctk_dict(items: dict[int, int]) -> _CtkDict:
    out = _CtkDict()
    dict.update(out, items)
    return out


def _load_flat(path: Path, capacity: int, grain_size: int) -> dict[int, bytearray]:
    """Grains of a sparse flat file: only its data regions are read (``SEEK_DATA``)."""
    grains: dict[int, bytearray] = {}
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return grains
    try:
        size = os.fstat(fd).st_size
        shift = grain_size.bit_length() - 1
        pos = 0
        seek_data = getattr(os, "SEEK_DATA", None)
        seek_hole = getattr(os, "SEEK_HOLE", None)
        while pos < size:
            if seek_data is not None and seek_hole is not None:
                try:
                    start = os.lseek(fd, pos, seek_data)
                except OSError as exc:
                    if exc.errno == errno.ENXIO:
                        break
                    raise
                stop = os.lseek(fd, start, seek_hole)
                sparse = True
            else:
                start, stop, sparse = pos, size, False
            first = start >> shift
            last = (min(stop, capacity) - 1) >> shift
            for idx in range(first, last + 1):
                if idx in grains:
                    continue
                data = os.pread(fd, grain_size, idx << shift)
                if not sparse and not any(data):
                    continue
                g = bytearray(grain_size)
                g[: len(data)] = data
                grains[idx] = g
            pos = max(stop, (last + 1) << shift)
    finally:
        os.close(fd)
    return grains


def redo_intents(
    directory: Path, intents: Iterable[Mapping[str, str]], grain_size: int, capacity: int
) -> int:
    """Finish merges a state lists (idempotent); returns the grains copied.

    Each intent reads its source file and copies into its destination (see the module
    docstring); intents run in order, so one merge may feed the next.
    """
    copied = 0
    for it in intents:
        src, dst, mode = it["src"], it["dst"], it["mode"]
        src_path = directory / src
        if not src_path.exists():
            continue
        grains, _ = read_grain_log(src_path, grain_size)
        dst_path = directory / dst
        if dst.endswith("-flat.vmdk"):
            if mode != "into":
                msg = f"intent {it!r}: a flat base only receives 'into' merges"
                raise StateError(msg)
            fd = os.open(dst_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if os.fstat(fd).st_size < capacity:
                    os.ftruncate(fd, capacity)
                for idx, g in sorted(grains.items()):
                    off = idx * grain_size
                    _pwrite_all(fd, memoryview(g)[: min(grain_size, capacity - off)], off)
                    copied += 1
            finally:
                os.close(fd)
            continue
        if mode == "fill":
            have, _ = read_grain_log(dst_path, grain_size)
            items = [(i, g) for i, g in sorted(grains.items()) if i not in have]
        else:
            items = sorted(grains.items())
        fd = _open_log(dst_path, grain_size)
        try:
            for n in range(0, len(items), _MERGE_BATCH):
                _append(fd, _encode((i, 0, g) for i, g in items[n : n + _MERGE_BATCH]))
            copied += len(items)
        finally:
            os.close(fd)
    return copied


def _open_log(path: Path, grain_size: int) -> int:
    """Open a grain log for appending, writing its header when it is new or empty."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size < _FILE_HEADER.size:
            io.ftruncate(fd, 0)
            _write_all(fd, _file_header(grain_size))
    except BaseException:
        os.close(fd)
        raise
    return fd


# -- the disk ----------------------------------------------------------------------------------


class PersistentLayeredDisk(LayeredDisk):
    """A :class:`LayeredDisk` whose layers are files in ``directory`` (module docstring).

    ``commit`` is called when merges recorded in memory must reach the files (before the
    next write touches a merged layer); the owner writes a state listing
    :meth:`pending_intents`, calls :meth:`apply_intents`, then writes the state again. Without
    an owner (``commit=None``) intents are applied at once, which keeps data but not the
    structure across a kill. ``sync=True`` also ``fsync``\\ s every write (power-loss safety);
    without it an acknowledged write has reached the kernel, which survives any kill of the
    process.
    """

    def __init__(
        self,
        capacity: int,
        directory: str | os.PathLike[str],
        *,
        grain_size: int = DEFAULT_GRAIN_SIZE,
        delta_suffix: str = "-delta.vmdk",
        sync: bool = False,
        commit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(capacity, grain_size=grain_size)
        if delta_suffix not in ("-delta.vmdk", "-sesparse.vmdk"):
            raise InvalidInputError(
                "delta_suffix", expected="'-delta.vmdk' or '-sesparse.vmdk'", got=delta_suffix
            )
        self.directory = Path(directory)
        self.delta_suffix = delta_suffix
        self.sync = sync
        self.commit = commit
        self._changed: _CtkDict = _CtkDict()
        self._extent: dict[Layer, str] = {}
        self._fds: dict[str, int] = {}
        self._intents: list[_Intent] = []
        self._ctk_name: str | None = None
        self._wal_size = 0
        #: file names the last written state refers to (never reused for a new layer)
        self.persisted_files: set[str] = set()
        #: what loading found and repaired (torn tails), for the host's recovery report
        self.load_report: list[str] = []
        #: why the CBT log could not be read (the owner resets tracking), or None
        self.ctk_damage: str | None = None
        #: the datastore and ``[ds] dir/`` prefix named in faults (set by the owner)
        self.datastore = "datastore1"
        self.path_prefix = ""
        #: why the disk takes no more writes (a failed write that could not be undone)
        self.fenced: str | None = None
        #: the state last written lists merges (intents): until a state without them is
        #: written, no write may reach a file (loading would redo the merges over it)
        self.listed_intents = False
        #: why finishing the last operation failed (re-raised by the next write), or None
        self.deferred: OSError | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled copies reopen their files by name (descriptors are per process)."""
        state = self.__dict__.copy()
        state["_fds"] = {}
        return state

    # -- naming ------------------------------------------------------------------------------

    @staticmethod
    def _stem(label: str) -> str:
        base = label.rsplit("/", 1)[-1]
        return base[: -len(".vmdk")] if base.endswith(".vmdk") else base

    def _base_stem(self) -> str:
        return self._stem(self.base.label) or "disk"

    def extent_name(self, layer: Layer) -> str:
        """The data file of ``layer`` (chosen, from its label, the first time it is needed)."""
        name = self._extent.get(layer)
        if name is not None:
            return name
        if layer is self.base:
            name = f"{self._base_stem()}-flat.vmdk"
        else:
            stem = self._stem(layer.label) or f"{self._base_stem()}-layer{layer.id}"
            taken = set(self._extent.values()) | self.persisted_files
            name = f"{stem}{self.delta_suffix}"
            n = 1
            # a file of that name that no state refers to is not ours to delete: skip it
            while name in taken or (self.directory / name).exists():
                name = f"{stem}-{n}{self.delta_suffix}"
                n += 1
        self._extent[layer] = name
        return name

    @property
    def ctk_name(self) -> str:
        if self._ctk_name is None:
            self._ctk_name = f"{self._base_stem()}-ctk.log"
        return self._ctk_name

    def is_flat(self, layer: Layer) -> bool:
        return self.extent_name(layer).endswith("-flat.vmdk")

    def files(self) -> set[str]:
        """Every file the live layers use (extents, the base's WAL, the CBT log)."""
        out = {self.extent_name(layer) for layer in self.layers()}
        flat = self.extent_name(self.base)
        out.add(flat + ".wal")
        out.add(self.ctk_name)
        for it in self._intents:
            out.update((it.src, it.dst))
        return out

    # -- file handles ------------------------------------------------------------------------

    def fault(self, exc: OSError | OverflowError, name: str, size: int | None = None) -> Any:
        """The host's fault for an I/O error on file ``name`` of this disk."""
        if not isinstance(exc, OSError):
            exc = OSError(errno.EFBIG, os.strerror(errno.EFBIG))
        return io_fault(exc, datastore=self.datastore, file=self.path_prefix + name, size=size)

    def _fd(self, name: str) -> int:
        fd = self._fds.get(name)
        if fd is not None:
            return fd
        path = self.directory / name
        existed = path.exists()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = self._open(path, name)
        except (OSError, OverflowError) as exc:
            if not existed:  # created by this very call: ours to take back
                with contextlib.suppress(OSError):
                    path.unlink()
            size = self.capacity if name.endswith("-flat.vmdk") else None
            raise self.fault(exc, name, size) from None
        self._fds[name] = fd
        return fd

    def _open(self, path: Path, name: str) -> int:
        if name.endswith("-flat.vmdk"):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if os.fstat(fd).st_size < self.capacity:
                    io.ftruncate(fd, self.capacity)
            except BaseException:
                os.close(fd)
                raise
        elif name == self.ctk_name:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if os.fstat(fd).st_size == 0:
                    _write_all(fd, _CTK_MAGIC_HEADER)
            except BaseException:
                os.close(fd)
                raise
        else:
            fd = _open_log(path, self.grain_size)
            if name.endswith(".wal"):
                self._wal_size = os.fstat(fd).st_size
        return fd

    def ensure_files(self) -> None:
        """Create every file the live layers use, so a state never names a missing file
        (loading then treats a missing one as damage, not as an empty layer)."""
        for name in sorted(self.files()):
            if name.endswith(".wal") and self.top is not self.base:
                continue
            self._fd(name)

    def close_unused(self, keep: set[str] | None = None) -> None:
        """Close handles of files no live layer uses (or all of them with ``keep=set()``)."""
        keep = self.files() if keep is None else keep
        for name in [n for n in self._fds if n not in keep]:
            os.close(self._fds.pop(name))

    def close(self) -> None:
        """Close every file (the base's WAL is emptied first: its records are in place)."""
        if self.base is self.top and self.is_flat(self.base):
            self._checkpoint_wal()
        self.close_unused(set())

    def _sync(self, fd: int) -> None:
        if self.sync:
            os.fdatasync(fd)

    # -- writes --------------------------------------------------------------------------------

    def _flush_ctk(self) -> None:
        pending = self._changed.pending
        if pending:
            fd = self._fd(self.ctk_name)
            _append(fd, b"".join(_ctk_record(g, e) for g, e in pending))
            self._sync(fd)
            pending.clear()

    def _refuse_if_fenced(self) -> None:
        if self.fenced is not None:
            raise self.fault(OSError(errno.EIO, self.fenced), self.extent_name(self.top))

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write to the top and append it to the top's file before returning.

        All or nothing: if a file write fails (a full disk, an I/O error) the model and the
        files are put back as they were (the partial record is cut off again, see
        :func:`_append`) and the host's fault is raised (``NoDiskSpace`` ...). If even that
        undo fails, the disk is *fenced*: it refuses further writes until it is loaded
        again, so nothing is ever acknowledged behind a torn record.
        """
        if (
            not isinstance(data, (bytes, bytearray, memoryview))
            or isinstance(offset, bool)
            or not isinstance(offset, int)
        ):
            super().write(offset, data)  # raises the model's error
            return
        mv = memoryview(data)
        if mv.ndim != 1 or mv.itemsize != 1:
            mv = mv.cast("B")
        length = mv.nbytes
        if length == 0 or offset < 0 or offset + length > self.capacity:
            super().write(offset, mv)  # raises, or a no-op
            return
        self._refuse_if_fenced()
        if self._intents or self.listed_intents:
            try:
                self._commit_intents()  # merges the state lists reach the files first
            except OSError as exc:  # not written: the merge copies are retried next time
                self._fail(exc, self.extent_name(self.top))
        top = self.top
        grains = top.grains
        shift, mask, gsize = self._shift, self._mask, self.grain_size
        first, last = offset >> shift, (offset + length - 1) >> shift
        flat = self.is_flat(top)
        new = set() if flat else {i for i in range(first, last + 1) if i not in grains}
        undo = self._undo_record(grains, offset, length)
        changed_before = {i: self._changed.get(i) for i in range(first, last + 1)}
        super().write(offset, mv)
        name = self.extent_name(top)
        try:
            self._flush_ctk()
        except OSError as exc:
            self._changed.pending.clear()
            for i, ep in changed_before.items():
                if ep is None:
                    dict.pop(self._changed, i, None)
                else:
                    dict.__setitem__(self._changed, i, ep)
            self._undo(grains, undo)
            self._fail(exc, self.ctk_name)
        items: list[tuple[int, int, bytes | bytearray | memoryview]] = []
        pos, end = offset, offset + length
        while pos < end:
            idx = pos >> shift
            a = pos & mask
            b = min(gsize, a + (end - pos))
            if idx in new:
                items.append((idx, 0, grains[idx]))
            else:
                items.append((idx, a, mv[pos - offset : pos - offset + (b - a)]))
            pos += b - a
        record = _encode(items)
        # the CBT records stay: they over-report a change that did not happen, which is safe
        if flat:
            wal = self._fd(name + ".wal")
            if self._wal_size + len(record) > WAL_CHECKPOINT:
                self._checkpoint_wal()
            try:
                _append(wal, record)
            except OSError as exc:
                self._undo(grains, undo)
                self._fail(exc, name + ".wal")
            self._sync(wal)
            fd = self._fd(name)
            try:
                _pwrite_all(fd, mv, offset)
            except OSError as exc:
                self._undo(grains, undo)
                if not self._undo_flat(fd, wal, undo):
                    # the old bytes cannot be put back: roll forward instead (the complete
                    # WAL record makes the write whole at the next load), and fence
                    LayeredDisk.write(self, offset, mv)
                    self._wal_size += len(record)
                self._fail(exc, name)
            self._wal_size += len(record)
            self._sync(fd)
        else:
            fd = self._fd(name)
            try:
                _append(fd, record)
            except OSError as exc:
                self._undo(grains, undo)
                self._fail(exc, name)
            self._sync(fd)

    def _undo_record(
        self, grains: dict[int, bytearray], offset: int, length: int
    ) -> list[tuple[int, int, int, bytes | None]]:
        """What a write will overwrite: ``(grain, start, stop, old bytes or None if new)``."""
        out: list[tuple[int, int, int, bytes | None]] = []
        shift, mask, gsize = self._shift, self._mask, self.grain_size
        pos, end = offset, offset + length
        while pos < end:
            idx = pos >> shift
            a = pos & mask
            b = min(gsize, a + (end - pos))
            g = grains.get(idx)
            out.append((idx, a, b, None if g is None else bytes(g[a:b])))
            pos += b - a
        return out

    @staticmethod
    def _undo(
        grains: dict[int, bytearray], undo: list[tuple[int, int, int, bytes | None]]
    ) -> None:
        for idx, a, b, old in undo:
            if old is None:
                grains.pop(idx, None)
            else:
                grains[idx][a:b] = old

    def _undo_flat(self, fd: int, wal: int, undo: list[tuple[int, int, int, bytes | None]]) -> bool:
        """Put the flat file's old bytes back, then cut the WAL record; ``False`` (and the
        disk fenced) when the old bytes cannot be written back."""
        try:
            for idx, a, b, old in undo:
                _pwrite_all(fd, bytes(b - a) if old is None else old, (idx << self._shift) + a)
        except OSError as exc:
            self.fenced = (
                f"a failed write could not be undone ({exc.strerror}); it was completed "
                "instead; load the datastore again (restart) to go on"
            )
            return False
        try:
            io.ftruncate(wal, self._wal_size)
        except OSError as exc:  # the record stays: its bytes are the old ones now, in place
            self.fenced = f"a failed write's log record could not be cut ({exc.strerror})"
        return True

    def _fail(self, exc: OSError, name: str) -> NoReturn:
        if isinstance(exc, _FenceError):
            self.fenced = (
                f"a failed write ({exc.strerror}) could not be cut off its file "
                f"({exc.cut_error}); load the datastore again (restart) to recover"
            )
        raise self.fault(exc, name) from None

    def _checkpoint_wal(self) -> None:
        """Empty the base's WAL: everything in it is in the flat file already (not on a
        fenced disk: a write completed by its record only is not in place)."""
        if self.fenced is not None:
            return
        name = self.extent_name(self.base) + ".wal"
        if name not in self._fds and not (self.directory / name).exists():
            return
        if self.sync:
            os.fsync(self._fd(self.extent_name(self.base)))
        wal = self._fd(name)
        os.ftruncate(wal, _FILE_HEADER.size)
        self._wal_size = _FILE_HEADER.size

    # -- structure changes ---------------------------------------------------------------------

    def freeze(self) -> Layer:
        was_flat = self.is_flat(self.top)
        layer = super().freeze()
        if was_flat:
            self._checkpoint_wal()
        return layer

    def reset_tracking(self) -> int:
        start = super().reset_tracking()
        self._changed.pending.clear()
        fd = self._fd(self.ctk_name)
        _write_all(fd, _ctk_record(_CTK_RESET, start))
        self._sync(fd)
        return start

    def revert(self, layer: Layer) -> MergeStats:
        # the change records of the revert reach the CBT log with the owner's state write
        # (:meth:`flush_tracking`), or with the next write: never after a state that needs them
        return super().revert(layer)

    def flush_tracking(self) -> None:
        """Append pending change records to the CBT log (a failed append is cut off)."""
        self._flush_ctk()

    def settle(self) -> MergeStats:
        """Merge the released layers that may merge now (after loading a state)."""
        log = _MergeLog()
        self._settle(log, everything=False)
        return self._stats(log)

    def _merge(self, layer: Layer, log: _MergeLog) -> None:
        if not layer.children:
            self._extent.pop(layer, None)
            super()._merge(layer, log)
            return
        child = layer.children[0]
        pname, cname = self.extent_name(layer), self.extent_name(child)
        if self.is_flat(layer) or len(child.grains) <= len(layer.grains):
            intent = _Intent(cname, pname, "into", list(child.grains.items()))
        else:
            intent = _Intent(
                pname,
                cname,
                "fill",
                [(i, g) for i, g in layer.grains.items() if i not in child.grains],
            )
        survivor, gone = (layer, child) if child is self.top else (child, layer)
        super()._merge(layer, log)
        self._extent.pop(gone, None)
        self._extent[survivor] = intent.dst
        self._intents.append(intent)

    # -- intents -------------------------------------------------------------------------------

    def pending_intents(self) -> list[dict[str, str]]:
        """Merges done in memory whose copies have not reached the files yet."""
        return [it.to_meta() for it in self._intents]

    def _commit_intents(self) -> None:
        if self.commit is not None:
            self.commit()
        if self._intents:
            self.apply_intents()
        if self.listed_intents and self.commit is not None:
            # the owner could not write the state without them: a write now would sit
            # under merges that loading redoes
            raise self.deferred or OSError(errno.EIO, "the disk's state could not be written")

    def apply_intents(self) -> int:
        """Do the file copies of the recorded merges (after the owner saved them)."""
        copied = 0
        for it in self._intents:
            if self.is_flat_name(it.dst):
                fd = self._fd(it.dst)
                for idx, g in it.grains:
                    off = idx << self._shift
                    _pwrite_all(fd, memoryview(g)[: min(self.grain_size, self.capacity - off)], off)
            else:
                fd = self._fd(it.dst)
                items = it.grains
                for n in range(0, len(items), _MERGE_BATCH):
                    # a failed batch is cut off: the copy is redone whole later (idempotent)
                    _append(fd, _encode((i, 0, g) for i, g in items[n : n + _MERGE_BATCH]))
            self._sync(fd)
            copied += len(it.grains)
        self._intents.clear()
        return copied

    @staticmethod
    def is_flat_name(name: str) -> bool:
        return name.endswith("-flat.vmdk")

    # -- state ---------------------------------------------------------------------------------

    def to_meta(self) -> tuple[dict[str, Any], dict[Layer, int]]:
        """The structure as plain data, and each live layer's index in it (for snapshots).

        Every file it names exists afterwards (:meth:`ensure_files`).
        """
        self.ensure_files()
        layers = self.layers()
        index = {layer: n for n, layer in enumerate(layers)}
        rows = []
        for layer in layers:
            rows.append(
                {
                    "label": layer.label,
                    "parent": None if layer.parent is None else index[layer.parent],
                    "frozen": layer.frozen,
                    "released": layer.released,
                    "auto": layer in self.auto_merge,
                    "change_epoch": layer.change_epoch,
                    "extent": self.extent_name(layer),
                }
            )
        meta = {
            "capacity": self.capacity,
            "grain_size": self.grain_size,
            "delta_suffix": self.delta_suffix,
            "epoch": self.epoch,
            "tracking_start": self.tracking_start,
            "top": index[self.top],
            "ctk": self.ctk_name,
            "layers": rows,
            "intents": self.pending_intents(),
        }
        return meta, index

    @classmethod
    def from_meta(
        cls,
        directory: str | os.PathLike[str],
        meta: Mapping[str, Any],
        *,
        sync: bool = False,
        commit: Callable[[], None] | None = None,
    ) -> tuple[PersistentLayeredDisk, list[Layer]]:
        """Rebuild a disk from :meth:`to_meta` data and its files (finishing listed merges)."""
        disk = cls(
            int(meta["capacity"]),
            directory,
            grain_size=int(meta["grain_size"]),
            delta_suffix=str(meta.get("delta_suffix", "-delta.vmdk")),
            sync=sync,
        )
        report = disk.load_report
        d = disk.directory
        _check_files(d, meta, disk.capacity)
        # the base's WAL first: its records are older than any merge the state lists
        _redo_wal(d, str(meta["layers"][0]["extent"]), disk.grain_size, disk.capacity, report)
        copied = redo_intents(d, meta.get("intents", ()), disk.grain_size, disk.capacity)
        if meta.get("intents"):
            report.append(
                f"finished {len(meta['intents'])} interrupted merge(s), {copied} grains copied"
            )
        rows = meta["layers"]
        layers: list[Layer] = []
        auto: list[Layer] = []
        for n, row in enumerate(rows):
            if n == 0:
                if row["parent"] is not None:
                    raise StateError("disk state: the first layer must be the base")
                layer = disk.base
            else:
                parent = layers[int(row["parent"])]
                layer = Layer(disk, parent)
                parent.children.append(layer)
            layer.label = str(row["label"])
            layer.frozen = bool(row["frozen"])
            layer.released = bool(row["released"])
            layer.change_epoch = None if row["change_epoch"] is None else int(row["change_epoch"])
            if row.get("auto"):
                auto.append(layer)
            disk._extent[layer] = str(row["extent"])
            layers.append(layer)
        disk.top = layers[int(meta["top"])]
        disk.restore(epoch=int(meta["epoch"]), tracking_start=int(meta["tracking_start"]), auto_merge=auto)
        disk._ctk_name = str(meta["ctk"])
        for layer in layers:
            name = disk._extent[layer]
            if cls.is_flat_name(name):
                layer.grains = _load_flat(d / name, disk.capacity, disk.grain_size)
                continue
            try:
                layer.grains, torn = read_grain_log(d / name, disk.grain_size)
            except GrainLogError as exc:
                raise DamagedFileError(name, str(exc)) from None
            if torn:
                report.append(f"{name}: discarded {torn} torn bytes")
            path = d / name
            live = _FILE_HEADER.size + len(layer.grains) * (_REC.size + disk.grain_size)
            if path.exists() and path.stat().st_size > 4 * live + (1 << 20):
                _rewrite_log(path, layer.grains, disk.grain_size)
                report.append(f"{name}: compacted to {live} bytes")
        changed, reset, disk.ctk_damage = _read_ctk(d / disk._ctk_name, report)
        if reset is not None and reset > disk.tracking_start:
            disk.restore(epoch=max(disk.epoch, reset), tracking_start=reset)
        disk.restore(changed={idx: min(ep, disk.epoch) for idx, ep in changed.items()})
        ctk_path = d / disk._ctk_name
        if disk.ctk_damage is None and ctk_path.exists() and ctk_path.stat().st_size > 2 * _CTK.size * (len(changed) + 1) + (
            1 << 20
        ):
            records = [_ctk_record(_CTK_RESET, disk.tracking_start)]
            records += [_ctk_record(i, e) for i, e in disk._changed.items()]
            atomic_write(ctk_path, _CTK_MAGIC_HEADER + b"".join(records))
            report.append(f"{disk._ctk_name}: compacted")
        disk.persisted_files = disk.files()
        disk.commit = commit
        # merges the state lists were redone here: until a state without them is written,
        # a write must not reach a file (a second load would redo them over it)
        disk.listed_intents = bool(meta.get("intents"))
        return disk, layers


def _check_files(directory: Path, meta: Mapping[str, Any], capacity: int) -> None:
    """Every extent the state names exists, and the flat base has the disk's full size.

    Files are created when the state that names them is written (``ensure_files``), so a
    missing one was deleted or moved from outside; a short flat file was truncated. Both are
    reported (the merges of listed intents may still be pending, so their sources may be
    gone legitimately: those are not required).
    """
    intents = {it["src"] for it in meta.get("intents", ())}
    for row in meta["layers"]:
        name = str(row["extent"])
        path = directory / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            if name in intents:
                continue
            raise DamagedFileError(name, "missing (the state refers to it)") from None
        if name.endswith("-flat.vmdk") and size < capacity:
            raise DamagedFileError(
                name, f"{size} bytes where the disk holds {capacity}: truncated from outside"
            )


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temporary file, fsync, rename, fsync of the directory.

    On any failure the temporary file is removed and ``path`` is as it was.
    """
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            _write_all(fd, data)
            io.fsync(fd)
        finally:
            os.close(fd)
        io.replace(tmp, path)
    except Exception:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _rewrite_log(path: Path, grains: Mapping[int, bytearray], grain_size: int) -> None:
    """Compact a grain log to one full record per live grain (atomically)."""
    items = sorted(grains.items())
    body = [_file_header(grain_size)]
    for n in range(0, len(items), _MERGE_BATCH):
        body.append(_encode((i, 0, g) for i, g in items[n : n + _MERGE_BATCH]))
    atomic_write(path, b"".join(body))


def _redo_wal(
    directory: Path, flat: str, grain_size: int, capacity: int, report: list[str]
) -> None:
    """Redo the complete batches of the base's WAL into the flat file, then empty the WAL."""
    wal_path = directory / (flat + ".wal")
    if not wal_path.exists():
        return
    _, torn = read_grain_log(wal_path, grain_size)
    if torn:
        report.append(f"{flat}.wal: discarded {torn} torn bytes")
    records, _ = _read_wal_records(wal_path, grain_size)
    if records:  # idempotent: every record may already be in place
        fd = os.open(directory / flat, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < capacity:
                os.ftruncate(fd, capacity)
            for idx, off, payload in records:
                pos = idx * grain_size + off
                _pwrite_all(fd, payload[: max(0, min(len(payload), capacity - pos))], pos)
            os.fsync(fd)
        finally:
            os.close(fd)
    with open(wal_path, "r+b") as f:
        f.truncate(_FILE_HEADER.size)


def _read_wal_records(path: Path, grain_size: int) -> tuple[list[tuple[int, int, bytes]], int]:
    """The complete batches of a WAL, as raw ``(grain, offset, payload)`` records in order."""
    raw = path.read_bytes()
    out: list[tuple[int, int, bytes]] = []
    if len(raw) < _FILE_HEADER.size:
        return out, 0
    scan = _scan(raw, grain_size)
    if scan.damaged:
        raise DamagedFileError(path.name, _damage_text(scan.damaged))
    for batch in scan.batches:
        out.extend((g, o, bytes(p)) for g, o, p in batch)
    return out, scan.good
