"""The backup software: a SQLite catalog plus a content-addressed blob store on one medium.

Layout of a backup medium directory::

    <medium>/catalog.sqlite    backups, the file entries of each, image files, job history
    <medium>/blobs/ab/cdef...  file contents, named by sha256 (``_store.BlobStore``)

File-level backup types (seed, "Types of Backups"; spec R53 says they belong to the backup
software, not to VCB):

- **full**: every file is copied;
- **differential**: files changed since the last *full* backup of the VM;
- **incremental**: files changed since the last backup of the VM of *any* kind.

A differential or incremental with no earlier full backup is promoted to a full one (the
record keeps what was requested). Every backup records the whole namespace as of its snapshot
(so deletions are restored correctly); only the selected files are copied, and each entry
names the backup whose copy holds its bytes (``stored_in``), always the backup itself or one
in its chain (the full, the differential's full, or the incrementals before it).

Image-level backups (``kind`` ``image``) have a ``level`` of their own: ``full`` (the VMDK
files of the export, as VCB moved them), or ``incremental`` / ``differential`` with changed
block tracking (``_cbt.py``): only the changed areas of each disk, as content-addressed blobs
(``image_extents``), building on ``base_id``. Every image backup records, per disk, the
change id of the disk backing as of its snapshot (``image_disks``). A restore of an
incremental rebuilds each disk from its chain: the full, then each later backup's areas.

"Changed" compares the file's sha256, size and mtime with the reference backup's entry.
The content hash matters: FAT keeps mtimes to 2 seconds (``DIR_WrtTime``, Microsoft's FAT
specification), so a write in the same 2-second window as the previous snapshot would be
missed by an mtime-only rule. But a backup reading a snapshot volume (``volumes=``, what the
proxy's mount opened) hashes only where the metadata cannot vouch for the content, so an
incremental costs what changed (issue 18): a file whose size and mtime equal the reference
entry's, and whose mtime is at least ``MTIME_GRANULARITY`` before the reference backup's
snapshot, was last written before that snapshot (the guest's clock only moves forward and
stamps every write), so its bytes are the reference's and its recorded sha256 is reused
unread. A file within the window is "racily clean" and is read and hashed (the same rule as
git's racy-git check, Documentation/technical/racy-git.txt). A proxy directory
(``letters=``) is always hashed in full: anyone can set a proxy file's mtime. Known limit:
reverting the VM to a snapshot older than the reference can bring back an older file under
the same size and mtime; ``verify="content"`` hashes every file for such a chain.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vcbsim.simulator import InvalidInputError, NotFoundError, StateError

from ._cbt import ImagePlan, merge_areas, read_areas_file, split_chunks
from ._client import GuestFile, HostClient, VMInfo, VolumeReader
from ._store import BlobStore, sha256_bytes

__all__ = [
    "BACKUP_KINDS",
    "BackupRecord",
    "Catalog",
    "FileEntry",
    "ImageDisk",
    "ImageFile",
    "guest_path",
    "MTIME_GRANULARITY",
    "path_key",
    "scan_tree",
    "select_changed",
]

FileKind = Literal["full", "differential", "incremental"]
BACKUP_KINDS: tuple[str, ...] = ("full", "differential", "incremental", "image")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS backups (
    id INTEGER PRIMARY KEY,
    vm_name TEXT NOT NULL,
    vm_uuid TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('full', 'differential', 'incremental', 'image')),
    requested TEXT NOT NULL,
    base_id INTEGER REFERENCES backups(id),
    snapshot_time REAL NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed')),
    job TEXT NOT NULL DEFAULT '',
    files_total INTEGER NOT NULL DEFAULT 0,
    files_copied INTEGER NOT NULL DEFAULT 0,
    bytes_copied INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS entries (
    backup_id INTEGER NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    path TEXT NOT NULL,
    is_dir INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    sha256 TEXT,
    copied INTEGER NOT NULL,
    stored_in INTEGER REFERENCES backups(id),
    PRIMARY KEY (backup_id, key)
);
CREATE TABLE IF NOT EXISTS image_files (
    backup_id INTEGER NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (backup_id, name)
);
CREATE TABLE IF NOT EXISTS image_disks (
    backup_id INTEGER NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
    disk_key INTEGER NOT NULL,
    file_name TEXT NOT NULL,
    disk_name TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    change_id TEXT,
    since_change_id TEXT,
    areas INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (backup_id, disk_key)
);
CREATE TABLE IF NOT EXISTS image_extents (
    backup_id INTEGER NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
    disk_key INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    sha256 TEXT,
    PRIMARY KEY (backup_id, disk_key, offset)
);
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_runs (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,
    selector TEXT NOT NULL,
    vm_name TEXT NOT NULL,
    type TEXT NOT NULL,
    scheduled REAL NOT NULL,
    started REAL,
    finished REAL,
    status TEXT NOT NULL,
    failed_step TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    backup_id INTEGER
);
"""


def guest_path(letter: str, rel: str) -> str:
    """``("c", "Dir/f.txt")`` -> ``"C:\\Dir\\f.txt"`` (the Windows guest's own spelling)."""
    rel = rel.strip("/").replace("/", "\\")
    return f"{letter.upper()}:\\{rel}" if rel else f"{letter.upper()}:\\"


def path_key(path: str) -> str:
    """Catalog lookup key: Windows paths are case-insensitive, either slash, no trailing one."""
    p = path.replace("/", "\\").rstrip("\\")
    if len(p) == 2 and p[1] == ":":
        p += "\\"
    return p.casefold()


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One path of a backup. ``sha256`` is ``None`` for directories."""

    path: str
    is_dir: bool
    size: int
    mtime: float
    sha256: str | None
    copied: bool = False
    stored_in: int | None = None

    @property
    def key(self) -> str:
        return path_key(self.path)


@dataclass(frozen=True, slots=True)
class ImageFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ImageDisk:
    """One disk of an image backup. ``change_id``: the disk backing's change id as of the
    backup snapshot (``None`` without changed block tracking); ``since_change_id``: what an
    incremental or differential asked the host for changes since (``None`` for a full);
    ``areas``/``bytes``: the changed areas it stored and their size (zeros included)."""

    key: int
    file_name: str
    disk_name: str
    capacity: int
    change_id: str | None
    since_change_id: str | None = None
    areas: int = 0
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class BackupRecord:
    id: int
    vm_name: str
    vm_uuid: str
    kind: str
    requested: str
    base_id: int | None
    snapshot_time: float
    started: float
    finished: float | None
    status: str
    job: str
    files_total: int
    files_copied: int
    bytes_copied: int
    error: str
    #: image backups: ``full``, ``differential`` or ``incremental`` (``None`` for file backups)
    level: str | None = None
    #: why a requested incremental or differential image backup is a full one
    fallback: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def select_changed(
    current: Iterable[FileEntry], reference: Mapping[str, FileEntry] | None
) -> set[str]:
    """Keys of the files to copy: new, or different in sha256, size or mtime from the
    reference backup's entry (every file when there is no reference). Directories are
    never copied (they have no content; every backup records them)."""
    return {e.key for e in current if not e.is_dir and _is_changed(e, None if reference is None else reference.get(e.key))}


def _is_changed(e: FileEntry, ref: FileEntry | None) -> bool:
    return (
        ref is None
        or ref.is_dir
        or ref.sha256 != e.sha256
        or ref.size != e.size
        or abs(ref.mtime - e.mtime) > 1e-6
    )


#: seconds: FAT's write-time resolution; a file whose mtime is this far before the reference
#: snapshot cannot have been written after it (see the module docstring)
MTIME_GRANULARITY = 2.0


class _DirectoryVolume:
    """A proxy directory read as a volume (``file_backup(letters=...)``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def walk(self) -> Iterator[GuestFile]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            here = Path(dirpath)
            for d in dirnames:
                p = here / d
                yield GuestFile(p.relative_to(self.root).as_posix(), True, 0, p.stat().st_mtime)
            for f in sorted(filenames):
                p = here / f
                st = p.stat()
                yield GuestFile(p.relative_to(self.root).as_posix(), False, st.st_size, st.st_mtime)

    def read_bytes(self, path: str) -> bytes:
        return (self.root / path).read_bytes()


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def volume_directories(vol: VolumeReader) -> Iterator[tuple[str, list[tuple[str, bool, int, float]]]]:
    """Each directory of ``vol`` (parents first) as ``(path, [(name, is_dir, size, mtime)])``:
    the reader's own ``walk_dirs`` (the snapshot volume, the mount's replay of it), else its
    ``walk`` grouped by directory. A backup makes each directory's guest path and key once
    and each entry adds its name: no per-file path conversion (issue 18)."""
    walk_dirs = getattr(vol, "walk_dirs", None)
    if walk_dirs is not None:
        yield from walk_dirs()
        return
    dirs: dict[str, list[tuple[str, bool, int, float]]] = {"": []}
    for g in vol.walk():
        rel = g.path.strip("/")
        parent, _, name = rel.rpartition("/")
        dirs.setdefault(parent, []).append((name, g.is_dir, g.size, g.mtime))
        if g.is_dir:
            dirs.setdefault(rel, [])
    yield from dirs.items()


def scan_tree(letters: Mapping[str, Path]) -> Iterator[tuple[FileEntry, Path]]:
    """Walk mounted volumes (``{"C": <dir>}``) and yield each entry with its proxy path.

    Directories come before their contents, in sorted order, so results are deterministic.
    """
    for letter in sorted(letters):
        root = Path(letters[letter])
        yield FileEntry(guest_path(letter, ""), True, 0, root.stat().st_mtime, None), root
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            here = Path(dirpath)
            for d in dirnames:
                p = here / d
                rel = p.relative_to(root).as_posix()
                yield FileEntry(guest_path(letter, rel), True, 0, p.stat().st_mtime, None), p
            for f in sorted(filenames):
                p = here / f
                st = p.stat()
                rel = p.relative_to(root).as_posix()
                yield (
                    FileEntry(guest_path(letter, rel), False, st.st_size, st.st_mtime, _hash_file(p)),
                    p,
                )


class Catalog:
    """One backup medium: ``catalog.sqlite`` and ``blobs/`` under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.store = BlobStore(self.root / "blobs")
        self.path = self.root / "catalog.sqlite"
        try:
            # one thread at a time, but not always the one that opened it: vcbsim repl runs the
            # proxy on a worker thread it hands over to and back (vcbsim/_teach_core.py Handoff)
            self.db = sqlite3.connect(self.path, check_same_thread=False)
            self.db.row_factory = sqlite3.Row
            # damage shows here, as one line, not as a traceback from some later query
            check = self.db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.executescript(_SCHEMA)
            self._migrate()
            self.db.commit()
        except sqlite3.Error as exc:
            msg = (
                f"backup catalog {self.path} cannot be used ({exc}): it is damaged, locked by "
                "another program, or not a vcbsim catalog; restore it from a copy, or move it "
                "away to start a new catalog (the blobs beside it are kept)"
            )
            raise StateError(msg) from None

    def _migrate(self) -> None:
        """Columns added after the first release (a medium written by an older vcbsim)."""
        have = {r[1] for r in self.db.execute("PRAGMA table_info(backups)")}
        if "level" not in have:
            self.db.execute("ALTER TABLE backups ADD COLUMN level TEXT")
            self.db.execute("UPDATE backups SET level = 'full' WHERE kind = 'image'")
        if "fallback" not in have:
            self.db.execute("ALTER TABLE backups ADD COLUMN fallback TEXT NOT NULL DEFAULT ''")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries -----------------------------------------------------------------------

    def backups(self, vm_name: str | None = None, *, status: str | None = "complete") -> list[BackupRecord]:
        sql = "SELECT * FROM backups WHERE 1=1"
        args: list[Any] = []
        if vm_name is not None:
            sql += " AND vm_name = ?"
            args.append(vm_name)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        return [self._record(r) for r in self.db.execute(sql + " ORDER BY id", args)]

    def backup(self, backup_id: int) -> BackupRecord:
        row = self.db.execute("SELECT * FROM backups WHERE id = ?", (backup_id,)).fetchone()
        if row is None:
            known = [str(r[0]) for r in self.db.execute("SELECT id FROM backups ORDER BY id")]
            msg = "backup"
            raise NotFoundError(msg, backup_id, known=known)
        return self._record(row)

    def entries(self, backup_id: int) -> dict[str, FileEntry]:
        rows = self.db.execute(
            "SELECT path, is_dir, size, mtime, sha256, copied, stored_in FROM entries "
            "WHERE backup_id = ? ORDER BY key",
            (backup_id,),
        )
        out: dict[str, FileEntry] = {}
        for r in rows:
            e = FileEntry(r[0], bool(r[1]), r[2], r[3], r[4], bool(r[5]), r[6])
            out[e.key] = e
        return out

    def _file_index(self, backup_id: int) -> dict[str, tuple[int, float, str | None, int | None]]:
        """``{key: (size, mtime, sha256, stored_in)}`` of a backup's files: what a new backup
        compares with, in one query into plain tuples (no row objects, no keys recomputed:
        the catalog stores them), so loading a 20,000-file reference costs what SQLite takes
        to read its rows (issue 18)."""
        rows = self.db.execute(
            "SELECT key, size, mtime, sha256, stored_in FROM entries WHERE backup_id = ? AND is_dir = 0",
            (backup_id,),
        )
        rows.row_factory = None  # plain tuples, whatever the connection's factory
        return {r[0]: r[1:] for r in rows}

    def copied_paths(self, backup_id: int) -> list[str]:
        """The guest paths whose bytes this backup copied (its file selection)."""
        rows = self.db.execute(
            "SELECT path FROM entries WHERE backup_id = ? AND copied = 1 ORDER BY key", (backup_id,)
        )
        return [r[0] for r in rows]

    def image_files(self, backup_id: int) -> list[ImageFile]:
        rows = self.db.execute(
            "SELECT name, size, sha256 FROM image_files WHERE backup_id = ? ORDER BY name",
            (backup_id,),
        )
        return [ImageFile(r[0], r[1], r[2]) for r in rows]

    def chain(self, backup_id: int) -> list[int]:
        """The backups a restore of ``backup_id`` reads from, oldest first."""
        if self.backup(backup_id).kind == "image":
            return [r.id for r in self.image_chain(backup_id)]
        ids = {e.stored_in for e in self.entries(backup_id).values() if e.stored_in is not None}
        ids.add(backup_id)
        return sorted(ids)

    def image_disks(self, backup_id: int) -> list[ImageDisk]:
        """The disks an image backup recorded (empty for one written before vcbsim kept them)."""
        rows = self.db.execute(
            "SELECT disk_key, file_name, disk_name, capacity, change_id, since_change_id, areas, bytes "
            "FROM image_disks WHERE backup_id = ? ORDER BY disk_key",
            (backup_id,),
        )
        return [ImageDisk(*r) for r in rows]

    def image_extents(self, backup_id: int, disk_key: int) -> list[tuple[int, int, str | None]]:
        """``(offset, length, sha256)`` of the areas an incremental or differential stored of
        one disk (``sha256`` ``None``: the area reads as zeros)."""
        rows = self.db.execute(
            "SELECT offset, length, sha256 FROM image_extents WHERE backup_id = ? AND disk_key = ? "
            "ORDER BY offset",
            (backup_id, disk_key),
        )
        return [(int(r[0]), int(r[1]), r[2]) for r in rows]

    def image_reference(self, vm_uuid: str, level: str) -> BackupRecord | None:
        """The complete image backup a new ``level`` image backup of the VM builds on: the
        latest one of any level for an incremental, the latest full one for a differential."""
        if level not in ("incremental", "differential"):
            msg = "image backup level"
            raise InvalidInputError(msg, expected="incremental or differential", got=level)
        sql = "SELECT * FROM backups WHERE vm_uuid = ? AND kind = 'image' AND status = 'complete'"
        if level == "differential":
            sql += " AND level = 'full'"
        row = self.db.execute(sql + " ORDER BY id DESC LIMIT 1", (vm_uuid,)).fetchone()
        return None if row is None else self._record(row)

    def image_chain(self, backup_id: int) -> list[BackupRecord]:
        """The image backups a restore of ``backup_id`` reads, oldest (the full) first."""
        out = [self.backup(backup_id)]
        while out[-1].level not in (None, "full"):
            cur = out[-1]
            if cur.base_id is None or cur.base_id >= cur.id:
                msg = f"image backup {cur.id} is {cur.level} but names no earlier backup it builds on"
                raise StateError(msg)
            out.append(self.backup(cur.base_id))
        out.reverse()
        top = out[-1]
        for rec in out:
            if rec.kind != "image" or rec.status != "complete" or rec.vm_uuid != top.vm_uuid:
                msg = (
                    f"image backup {top.id} needs backup {rec.id}, which is a {rec.status} {rec.kind} "
                    f"backup of VM {rec.vm_name}; a restore needs complete image backups of one VM"
                )
                raise StateError(msg)
        return out

    def reference_for(self, vm_uuid: str, kind: str) -> BackupRecord | None:
        """The backup a new ``kind`` backup of the VM is compared with (``None``: full)."""
        if kind == "full":
            return None
        if kind == "differential":
            row = self.db.execute(
                "SELECT * FROM backups WHERE vm_uuid = ? AND kind = 'full' AND status = 'complete' "
                "ORDER BY id DESC LIMIT 1",
                (vm_uuid,),
            ).fetchone()
        elif kind == "incremental":
            row = self.db.execute(
                # "since the last backup, whether the last backup was full or incremental"
                # (the seed's types of backups): a differential is not a base
                "SELECT * FROM backups WHERE vm_uuid = ? AND kind IN ('full', 'incremental') "
                "AND status = 'complete' "
                "ORDER BY id DESC LIMIT 1",
                (vm_uuid,),
            ).fetchone()
        else:
            msg = "backup kind"
            raise InvalidInputError(
                msg, expected="full, differential or incremental", got=kind
            )
        return None if row is None else self._record(row)

    # -- file-level backup -------------------------------------------------------------

    def file_backup(
        self,
        *,
        vm_name: str,
        vm_uuid: str,
        kind: str,
        letters: Mapping[str, Path] | None = None,
        snapshot_time: float,
        now: Callable[[], float],
        job: str = "",
        before_copy: Callable[[str], None] | None = None,
        progress: Callable[[int], None] | None = None,
        volumes: Mapping[str, VolumeReader] | None = None,
        verify: Literal["metadata", "content"] = "metadata",
    ) -> BackupRecord:
        """Back up volumes as a ``kind`` backup: snapshot volumes (``volumes={"C": reader}``,
        what the proxy's mount opened) or proxy directories (``letters={"C": <dir>}``).

        A file of a snapshot volume is read only when it is copied or when its metadata
        cannot vouch for its content (module docstring; ``verify="content"`` reads all).
        ``before_copy(guest_path)`` runs before each selected file is copied to the medium
        (the proxy consults fault injection there). On any error the backup is recorded as
        ``failed`` (never used as a reference or offered for restore) and the error re-raised.
        """
        if kind not in ("full", "differential", "incremental"):
            msg = "file-level backup kind"
            raise InvalidInputError(
                msg, expected="full, differential or incremental", got=kind
            )
        if verify not in ("metadata", "content"):
            msg = "file-level verify"
            raise InvalidInputError(msg, expected="'metadata' or 'content'", got=str(verify))
        if (volumes is None) == (letters is None):
            msg = "file-level backup source"
            raise InvalidInputError(
                msg, expected="either volumes= (snapshot volumes) or letters= (proxy directories)",
                got="both" if volumes is not None else "neither",
            )
        sources: Mapping[str, VolumeReader]
        if volumes is not None:
            sources = volumes
        else:
            assert letters is not None
            sources = {k: _DirectoryVolume(Path(v)) for k, v in letters.items()}
            verify = "content"  # a proxy file's mtime is anyone's to set
        ref = self.reference_for(vm_uuid, kind)
        actual = kind if ref is not None else "full"
        ref_files = {} if ref is None else self._file_index(ref.id)
        cur = self.db.execute(
            "INSERT INTO backups (vm_name, vm_uuid, kind, requested, base_id, snapshot_time, "
            "started, status, job) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?)",
            (vm_name, vm_uuid, actual, kind, None if ref is None else ref.id, snapshot_time, now(), job),
        )
        self.db.commit()
        bid = int(cur.lastrowid or 0)
        total = copied = nbytes = 0
        ref_snapshot = ref.snapshot_time if ref is not None else float("-inf")
        trust_metadata = verify == "metadata"
        put = self.store.put_bytes
        try:
            rows: list[tuple[Any, ...]] = []
            for letter in sorted(sources):
                vol = sources[letter]
                root_mtime = Path(letters[letter]).stat().st_mtime if letters is not None else snapshot_time
                root = FileEntry(guest_path(letter, ""), True, 0, root_mtime, None)
                rows.append((bid, root.key, root.path, 1, 0, root.mtime, None, 0, None))
                for rel_dir, names in volume_directories(vol):
                    dpath = guest_path(letter, rel_dir)
                    if not dpath.endswith("\\"):
                        dpath += "\\"
                    dkey = dpath.casefold()  # path_key: casefold is per character, so it adds up
                    rprefix = rel_dir.strip("/") + "/" if rel_dir.strip("/") else ""
                    for name, is_dir, size, mtime in names:
                        path = dpath + name
                        key = dkey + name.casefold()
                        if is_dir:
                            rows.append((bid, key, path, 1, 0, mtime, None, 0, None))
                            continue
                        ref_e = ref_files.get(key)
                        data: bytes | None = None
                        if (
                            trust_metadata
                            and ref_e is not None
                            and ref_e[0] == size
                            and mtime + MTIME_GRANULARITY <= ref_snapshot
                            and ref_e[2] is not None
                            and abs(ref_e[1] - mtime) <= 1e-6
                        ):
                            # vouched for by the metadata: same size and mtime as the reference's
                            # entry, and written at least MTIME_GRANULARITY before its snapshot, so
                            # the bytes are the reference's (module docstring); not read
                            digest = ref_e[2]
                            is_copied = False
                        else:
                            data = vol.read_bytes(rprefix + name)
                            digest = sha256_bytes(data)
                            size = len(data)
                            is_copied = (
                                ref_e is None
                                or ref_e[2] != digest
                                or ref_e[0] != size
                                or abs(ref_e[1] - mtime) > 1e-6
                            )
                        stored_in: int | None
                        if is_copied:
                            assert data is not None
                            if before_copy is not None:
                                before_copy(path)
                            put(data)
                            if progress is not None:
                                progress(size)
                            stored_in = bid
                            copied += 1
                            nbytes += size
                        else:
                            assert ref_e is not None
                            stored_in = ref_e[3]
                        total += 1
                        rows.append((bid, key, path, 0, size, mtime, digest, int(is_copied), stored_in))
            self.db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self.db.execute(
                "UPDATE backups SET status = 'complete', finished = ?, files_total = ?, "
                "files_copied = ?, bytes_copied = ? WHERE id = ?",
                (now(), total, copied, nbytes, bid),
            )
            self.db.commit()
        except BaseException as exc:
            self.db.rollback()
            self._fail(bid, now(), exc)
            raise
        return self.backup(bid)

    def fail_backup(self, bid: int, when: float, exc: BaseException) -> None:
        """Mark backup ``bid`` failed at ``when`` because of ``exc``, its entries dropped: it
        is never offered for restore nor used as a base (a run killed during WF-2 left it)."""
        self._fail(bid, when, exc)

    def _fail(self, bid: int, when: float, exc: BaseException) -> None:
        self.db.execute("DELETE FROM entries WHERE backup_id = ?", (bid,))
        self.db.execute("DELETE FROM image_files WHERE backup_id = ?", (bid,))
        self.db.execute("DELETE FROM image_disks WHERE backup_id = ?", (bid,))
        self.db.execute("DELETE FROM image_extents WHERE backup_id = ?", (bid,))
        self.db.execute(
            "UPDATE backups SET status = 'failed', finished = ?, error = ? WHERE id = ?",
            (when, f"{type(exc).__name__}: {exc}"[:500], bid),
        )
        self.db.commit()

    # -- image-level backup ------------------------------------------------------------

    def image_backup(
        self,
        *,
        vm_name: str,
        vm_uuid: str,
        export_dir: Path,
        snapshot_time: float,
        now: Callable[[], float],
        job: str = "",
        before_copy: Callable[[str], None] | None = None,
        progress: Callable[[int], None] | None = None,
        plan: ImagePlan | None = None,
    ) -> BackupRecord:
        """Move an image export (``<vm>-fullVM/``: .vmx, VMDKs, ``catalog``) to the medium.

        A full backup stores every file of the export. An incremental or differential
        (``plan.level``) stores the ``.vmx`` and ``catalog`` as files and, of each disk, only
        the areas its ``.changed`` file lists, read from its (delta) VMDK and cut into
        content-addressed pieces (``_cbt.CHUNK``); ``before_copy`` runs once per file or disk.
        Each disk's change id as of the snapshot is recorded either way (``image_disks``).
        """
        from ._image import read_export_catalog

        level = plan.level if plan is not None else "full"
        requested = "image" if plan is None or plan.requested == "full" else plan.requested
        base_id = plan.base_id if plan is not None and level != "full" else None
        cur = self.db.execute(
            "INSERT INTO backups (vm_name, vm_uuid, kind, requested, base_id, snapshot_time, "
            "started, status, job, level, fallback) VALUES (?, ?, 'image', ?, ?, ?, ?, 'running', ?, ?, ?)",
            (vm_name, vm_uuid, requested, base_id, snapshot_time, now(), job, level,
             plan.fallback if plan is not None else ""),
        )
        self.db.commit()
        bid = int(cur.lastrowid or 0)
        try:
            export_dir = Path(export_dir)
            meta = read_export_catalog(export_dir / "catalog")
            keys = sorted(int(k.split(".")[1]) for k in meta if k.startswith("disk.") and k.endswith(".filename"))
            partial = level != "full"
            # what an incremental takes from the export as areas, not as files
            skip: set[str] = set()
            if partial:
                for key in keys:
                    stem = re.escape(Path(meta[f"disk.{key}.filename"]).stem)
                    mine = re.compile(stem + r"(\.vmdk|\.changed|-s\d{3}\.vmdk)")
                    skip |= {p.name for p in export_dir.iterdir() if mine.fullmatch(p.name)}
            rows = []
            nbytes = 0
            for p in sorted(export_dir.iterdir()):
                if not p.is_file() or p.name in skip:
                    continue
                if before_copy is not None:
                    before_copy(p.name)
                digest, size, _ = self.store.put_file(p, progress=progress)
                rows.append((bid, p.name, size, digest))
                nbytes += size
            disk_rows = []
            extent_rows = []
            for key in keys:
                fname = meta[f"disk.{key}.filename"]
                capacity = int(meta[f"disk.{key}.capacity"])
                change_id = meta.get(f"disk.{key}.changeId") or None
                if plan is not None and key in plan.disks:
                    change_id = plan.disks[key].change_id
                since = None
                n_areas = n_bytes = 0
                if partial:
                    if before_copy is not None:
                        before_copy(fname)
                    since = meta.get(f"disk.{key}.sinceChangeId") or None
                    areas = read_areas_file(export_dir / meta[f"disk.{key}.changedAreas"])
                    copied, pieces = self._store_areas(export_dir / fname, capacity, areas, progress)
                    nbytes += copied
                    extent_rows += [(bid, key, o, n, h) for o, n, h in pieces]
                    n_areas, n_bytes = len(areas), sum(n for _, n in areas)
                disk_rows.append(
                    (bid, key, fname, meta.get(f"disk.{key}.diskname", ""), capacity, change_id, since, n_areas, n_bytes)
                )
            self.db.executemany("INSERT INTO image_files VALUES (?, ?, ?, ?)", rows)
            self.db.executemany("INSERT INTO image_disks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", disk_rows)
            self.db.executemany("INSERT INTO image_extents VALUES (?, ?, ?, ?, ?)", extent_rows)
            self.db.execute(
                "UPDATE backups SET status = 'complete', finished = ?, files_total = ?, "
                "files_copied = ?, bytes_copied = ? WHERE id = ?",
                (now(), len(rows), len(rows), nbytes, bid),
            )
            self.db.commit()
        except BaseException as exc:
            self.db.rollback()
            self._fail(bid, now(), exc)
            raise
        return self.backup(bid)

    def _store_areas(
        self,
        vmdk: Path,
        capacity: int,
        areas: list[tuple[int, int]],
        progress: Callable[[int], None] | None,
    ) -> tuple[int, list[tuple[int, int, str | None]]]:
        """Store the listed areas of an exported (delta) VMDK as blobs; returns the bytes
        copied (all-zero pieces cost nothing) and ``(offset, length, sha256 or None)``."""
        from vcbsim.simulator.disk import read_vmdk

        delta = read_vmdk(vmdk)
        if delta.size != capacity:
            msg = f"{vmdk.name} has {delta.size} bytes but the export's catalog says {capacity}"
            raise StateError(msg)
        pieces: list[tuple[int, int, str | None]] = []
        copied = 0
        for off, n in split_chunks(areas):
            data = delta.read(off, n)
            if not any(data):
                pieces.append((off, n, None))
                continue
            digest, _ = self.store.put_bytes(data)
            pieces.append((off, n, digest))
            copied += n
            if progress is not None:
                progress(n)
        return copied, pieces

    # -- restore -----------------------------------------------------------------------

    def restore_files(self, backup_id: int, path: str, target: str | Path) -> list[Path]:
        """Restore one file or a directory tree (``C:\\Dir``, ``C:`` for a whole volume) as of
        a backup into ``target/<letter>/<path>``; returns the files written."""
        rec = self.backup(backup_id)
        if rec.status != "complete" or rec.kind == "image":
            msg = (
                f"backup {backup_id} is a {rec.status} {rec.kind} backup; file restore needs a "
                "complete full, differential or incremental backup"
            )
            raise StateError(
                msg
            )
        entries = self.entries(backup_id)
        key = path_key(path)
        chosen = [
            e for k, e in entries.items() if k == key or k.startswith(key if key.endswith("\\") else key + "\\")
        ]
        if not chosen:
            near = sorted(e.path for e in entries.values())
            msg = f"file or directory in backup {backup_id}"
            raise NotFoundError(msg, path, known=near)
        sources = {bid: self.backup(bid) for bid in self.chain(backup_id)}
        for src in sources.values():
            if src.status != "complete" or src.vm_uuid != rec.vm_uuid or src.id > backup_id:
                msg = (
                    f"backup {backup_id} needs the copies held by backup {src.id}, which is "
                    f"{src.status} and of VM {src.vm_name}; the catalog is inconsistent"
                )
                raise StateError(msg)
        out: list[Path] = []
        target = Path(target)
        for e in sorted(chosen, key=lambda e: e.key):
            letter, _, rel = e.path.partition(":\\")
            dest = target.joinpath(letter, *[p for p in rel.split("\\") if p])
            if not e.is_dir and (e.stored_in not in sources or e.sha256 is None):
                msg = f"catalog entry for {e.path} in backup {backup_id} has no copy in its chain"
                raise StateError(msg)
            try:
                if e.is_dir:
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                assert e.sha256 is not None
                self.store.copy_to(e.sha256, dest)
                os.utime(dest, (e.mtime, e.mtime))
            except OSError as exc:  # the target, not the backup: one line that says so
                msg = (
                    f"restore target {target}: cannot write {dest} ({exc.strerror or exc}); "
                    f"{len(out)} file(s) were restored before; choose a directory you can write"
                )
                raise StateError(msg) from None
            out.append(dest)
        return out

    def _image_meta_and_disks(self, backup_id: int, work: Path) -> tuple[dict[str, str], dict[int, tuple[str, Any]]]:
        """Rebuild the disks of an image backup as of its snapshot (in ``work``): the full
        backup's VMDKs, then each later backup of the chain laid over them in order. Returns
        the backup's own export catalog and ``{disk key: (file name, disk)}``."""
        from vcbsim.simulator.disk import read_vmdk

        from ._image import read_export_catalog

        chain = self.image_chain(backup_id)
        full = chain[0]
        src = work / f"backup-{full.id}"
        self._copy_image_files(full.id, src)
        meta = read_export_catalog(src / "catalog")
        disks: dict[int, tuple[str, Any]] = {}
        for k in meta:
            if k.startswith("disk.") and k.endswith(".filename"):
                disks[int(k.split(".")[1])] = (meta[k], read_vmdk(src / meta[k]))
        for rec in chain[1:]:
            recorded = {d.key: d for d in self.image_disks(rec.id)}
            if set(recorded) != set(disks):
                msg = (
                    f"image backup {rec.id} holds disks {sorted(recorded)} but backup {full.id}, "
                    f"the full it builds on, holds {sorted(disks)}; the catalog is inconsistent"
                )
                raise StateError(msg)
            for key, d in recorded.items():
                image = disks[key][1]
                for off, n, digest in self.image_extents(rec.id, key):
                    data = bytes(n) if digest is None else self.store.get_bytes(digest)
                    if len(data) != n or off + n > image.size:
                        msg = f"area ({off}, {n}) of disk {key} in image backup {rec.id} does not fit its blob or disk"
                        raise StateError(msg)
                    image.write(off, data)
                disks[key] = (d.file_name, image)
        if len(chain) > 1:
            top = work / f"backup-{backup_id}"
            self._copy_image_files(backup_id, top)
            meta = read_export_catalog(top / "catalog")
        return meta, disks

    def image_as_of_snapshot(self, backup_id: int, work: str | Path) -> tuple[dict[str, str], dict[int, tuple[str, Any]]]:
        """The disks of image backup ``backup_id`` as of its snapshot, rebuilt through its chain
        in ``work`` (a directory the caller removes): its export catalog and ``{disk key:
        (exported file name, disk)}``. What a restore writes back (``_wirerestore.py``)."""
        return self._image_meta_and_disks(backup_id, Path(work))

    def _copy_image_files(self, backup_id: int, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        for f in self.image_files(backup_id):
            self.store.copy_to(f.sha256, target / f.name)

    def restore_image_files(self, backup_id: int, target: str | Path) -> Path:
        """Write an image backup as a complete export into ``target`` (verified); returns the
        directory. A full backup's files are copied as stored; for an incremental or
        differential the VMDKs are rebuilt from its chain (sparse, as the export was: split
        or monolithic) and its ``catalog`` names the backups they came from (``restoredFrom=``)."""
        import tempfile

        from vcbsim.simulator.disk import write_vmdk

        rec = self.backup(backup_id)
        if rec.kind != "image" or rec.status != "complete":
            msg = (
                f"backup {backup_id} is a {rec.status} {rec.kind} backup; a VM restore needs a "
                "complete image backup"
            )
            raise StateError(
                msg
            )
        target = Path(target)
        target.mkdir(parents=True, exist_ok=True)
        if rec.level in (None, "full"):
            self._copy_image_files(backup_id, target)
            return target
        chain = self.image_chain(backup_id)
        with tempfile.TemporaryDirectory(prefix="vcbsim-chain-", dir=target.parent) as tmp:
            meta, disks = self._image_meta_and_disks(backup_id, Path(tmp))
            split = meta.get("disktype", "VM_DISK_TYPE_2GBSPARSE") == "VM_DISK_TYPE_2GBSPARSE"
            for f in self.image_files(backup_id):
                if f.name != "catalog":
                    self.store.copy_to(f.sha256, target / f.name)
            for _key, (fname, image) in sorted(disks.items()):
                write_vmdk(image, target / fname, split=split)
            text = (Path(tmp) / f"backup-{backup_id}" / "catalog").read_text(encoding="utf-8")
            lines = [ln for ln in text.splitlines() if ".changedAreas=" not in ln]
            lines.append('restoredFrom= "' + ",".join(str(r.id) for r in chain) + '"')
            (target / "catalog").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return target

    def restore_vm(self, backup_id: int, client: HostClient, moref: str | None = None) -> VMInfo:
        """Restore a whole VM from an image backup: afterwards every disk of the VM (the one
        named by ``moref``, else the VM with the backed-up uuid) reads exactly as backed up.
        An incremental or differential is rebuilt from its chain first.

        Only areas that hold data in the backup or on the current disk are written, so the
        time grows with the data, not with the capacity.
        """
        import tempfile

        rec = self.backup(backup_id)
        if rec.kind != "image" or rec.status != "complete":
            msg = (
                f"backup {backup_id} is a {rec.status} {rec.kind} backup; a VM restore needs a "
                "complete image backup"
            )
            raise StateError(msg)
        with tempfile.TemporaryDirectory(prefix="vcbsim-restore-") as tmp:
            meta, images = self._image_meta_and_disks(backup_id, Path(tmp))
            vm = client.vm_info(moref) if moref else client.find_vm(f"uuid:{rec.vm_uuid}")
            trace = client.trace
            op_id = f"op-{len(trace)}"
            trace.emit("proxy", "op.invoke", vm=vm.moref, op="restore-vm", op_id=op_id, backup_id=backup_id)
            left: list[int] = []
            try:
                for disk in vm.disks:
                    if disk.key not in images and f"disk.{disk.key}.excluded" in meta:
                        # left out of the image (no snapshot covers it, ``_image.py``): its
                        # data is not in the backup, so the disk is left as it is, as VADP
                        # products do ("only the volumes that participated in snapshot
                        # operations are restored", IBM Spectrum Protect for VMware)
                        left.append(disk.key)
                        continue
                    if disk.key not in images:
                        msg = (
                            f"image backup {backup_id} has no disk {disk.key} ({disk.label}); "
                            f"it holds: {sorted(k for k in meta if k.endswith('.filename'))}"
                        )
                        raise StateError(msg)
                    fname, image = images[disk.key]
                    if image.size != disk.capacity:
                        msg = (
                            f"disk {disk.key} of {vm.name} has {disk.capacity} bytes but the backup's "
                            f"{fname} has {image.size}; restore to a VM with the same disk sizes"
                        )
                        raise StateError(msg)
                    areas = merge_areas(
                        list(image.allocated_areas()) + client.allocated_areas(vm.moref, disk.key, None)
                    )
                    for off, n in areas:
                        pos = off
                        while pos < off + n:
                            step = min(1 << 20, off + n - pos)
                            client.write_disk(vm.moref, disk.key, pos, image.read(pos, step))
                            pos += step
            except Exception as exc:
                trace.emit("proxy", "op.fail", vm=vm.moref, op="restore-vm", op_id=op_id, error=f"{type(exc).__name__}: {exc}")
                raise
            extra: dict[str, Any] = {"left": left} if left else {}
            trace.emit("proxy", "op.ok", vm=vm.moref, op="restore-vm", op_id=op_id, backup_id=backup_id, **extra)
        return client.vm_info(vm.moref)

    def excluded_disks(self, backup_id: int) -> dict[int, str]:
        """The disks image backup ``backup_id`` left out (``disk.<key>.excluded=`` in its
        export catalog, ``_image.py``): ``{key: reason}``; a whole-VM restore leaves them as
        they are."""
        from ._image import read_export_catalog

        f = next((f for f in self.image_files(backup_id) if f.name == "catalog"), None)
        if f is None:
            return {}
        import tempfile

        with tempfile.TemporaryDirectory(prefix="vcbsim-catalog-") as tmp:
            self.store.copy_to(f.sha256, Path(tmp) / "catalog")
            meta = read_export_catalog(Path(tmp) / "catalog")
        return {
            int(k.split(".")[1]): v for k, v in meta.items() if k.startswith("disk.") and k.endswith(".excluded")
        }

    # -- job history -------------------------------------------------------------------

    def record_job_run(self, **fields: Any) -> int:
        cols = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        cur = self.db.execute(f"INSERT INTO job_runs ({cols}) VALUES ({marks})", tuple(fields.values()))
        self.db.commit()
        return int(cur.lastrowid or 0)

    def job_runs(self, job: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM job_runs"
        args: tuple[Any, ...] = ()
        if job is not None:
            sql += " WHERE job = ?"
            args = (job,)
        return [dict(r) for r in self.db.execute(sql + " ORDER BY id", args)]

    @staticmethod
    def _record(r: sqlite3.Row) -> BackupRecord:
        return BackupRecord(*(r[k] for k in BackupRecord.__dataclass_fields__))
