"""Catalog format 2 (issue 18): a differential or incremental stores its namespace by
reference to its base's (rows only for what differs, removed paths in ``entries_gone``),
every reader still sees the whole namespace; a format-1 catalog (an older vcbsim's) is read
and extended; a newer format is refused in one line."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from vcbsim.reference import BlobStore, Catalog
from vcbsim.reference._catalog import CATALOG_FORMAT
from vcbsim.simulator import StateError


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        self.t += 1
        return self.t


def write(root: Path, rel: str, data: bytes, mtime: float) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.utime(p, (mtime, mtime))


def backup(cat: Catalog, vol: Path, kind: str, snap: float, clock: Clock) -> int:
    rec = cat.file_backup(vm_name="w", vm_uuid="u-1", kind=kind, letters={"C": vol}, snapshot_time=snap, now=clock)
    assert rec.status == "complete"
    return rec.id


def namespace(cat: Catalog, bid: int) -> dict[str, tuple]:
    return {k: (e.path, e.is_dir, e.size, e.mtime, e.sha256) for k, e in cat.entries(bid).items()}


def own_rows(cat: Catalog, bid: int) -> list[str]:
    return [r[0] for r in cat.db.execute("SELECT path FROM entries WHERE backup_id = ? ORDER BY key", (bid,))]


def test_an_incremental_writes_rows_only_for_what_differs_and_reads_whole(tmp_path: Path) -> None:
    vol, clock = tmp_path / "C", Clock()
    for d in range(3):
        for i in range(20):
            write(vol, f"d{d}/f{i:02}.txt", f"{d}-{i}".encode(), 100)
    for d in range(3):
        os.utime(vol / f"d{d}", (50, 50))
    cat = Catalog(tmp_path / "medium")
    full = backup(cat, vol, "full", 1, clock)
    assert len(own_rows(cat, full)) == 1 + 3 + 60  # the root, 3 folders, 60 files

    write(vol, "d1/f07.txt", b"edited", 200)
    (vol / "d2/f03.txt").unlink()
    write(vol, "d0/new.txt", b"new", 200)
    write(vol, "d2/F05.TXT", b"2-5", 100)  # same bytes and mtime, the name's case changed
    (vol / "d2/f05.txt").unlink()
    for d in range(3):
        os.utime(vol / f"d{d}", (50, 50))  # the folders' mtimes as before
    inc = backup(cat, vol, "incremental", 2, clock)

    # its own rows: the root (the snapshot's time), the edit, the new file, the renamed spelling
    assert own_rows(cat, inc) == ["C:\\", "C:\\d0\\new.txt", "C:\\d1\\f07.txt", "C:\\d2\\F05.TXT"]
    gone = [r[0] for r in cat.db.execute("SELECT key FROM entries_gone WHERE backup_id = ?", (inc,))]
    assert gone == ["c:\\d2\\f03.txt"]
    # what it reads as is what a full of the same state records (on another medium)
    other = Catalog(tmp_path / "other")
    again = backup(other, vol, "full", 2, clock)
    assert namespace(cat, inc) == namespace(other, again)
    assert sorted(e.path for e in cat.entries(inc).values() if e.copied) == ["C:\\d0\\new.txt", "C:\\d1\\f07.txt"]
    assert cat.copied_paths(inc) == ["C:\\d0\\new.txt", "C:\\d1\\f07.txt"]
    assert cat.entries_chain(inc) == [full, inc]
    # a second incremental is laid over the first, and restores its own state
    write(vol, "d0/f00.txt", b"edited too", 300)
    inc2 = backup(cat, vol, "incremental", 3, clock)
    assert cat.entries_chain(inc2) == [full, inc, inc2]
    out = tmp_path / "r"
    cat.restore_files(inc2, "C:", out)
    got = {p.relative_to(out / "C").as_posix(): p.read_bytes() for p in (out / "C").rglob("*") if p.is_file()}
    want = {p.relative_to(vol).as_posix(): p.read_bytes() for p in vol.rglob("*") if p.is_file()}
    assert got == want and "d2/f03.txt" not in got


def test_a_format_1_catalog_is_read_and_built_on(tmp_path: Path) -> None:
    """A medium an older vcbsim wrote: every backup with all its rows, no format number."""
    medium = tmp_path / "medium"
    store = BlobStore(medium / "blobs")
    a1, _ = store.put_bytes(b"a1")
    a2, _ = store.put_bytes(b"a2")
    b1, _ = store.put_bytes(b"b1")
    db = sqlite3.connect(medium / "catalog.sqlite")
    db.executescript(
        """
        CREATE TABLE backups (id INTEGER PRIMARY KEY, vm_name TEXT NOT NULL, vm_uuid TEXT NOT NULL,
            kind TEXT NOT NULL, requested TEXT NOT NULL, base_id INTEGER, snapshot_time REAL NOT NULL,
            started REAL NOT NULL, finished REAL, status TEXT NOT NULL, job TEXT NOT NULL DEFAULT '',
            files_total INTEGER NOT NULL DEFAULT 0, files_copied INTEGER NOT NULL DEFAULT 0,
            bytes_copied INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '', level TEXT,
            fallback TEXT NOT NULL DEFAULT '');
        CREATE TABLE entries (backup_id INTEGER NOT NULL, key TEXT NOT NULL, path TEXT NOT NULL,
            is_dir INTEGER NOT NULL, size INTEGER NOT NULL, mtime REAL NOT NULL, sha256 TEXT,
            copied INTEGER NOT NULL, stored_in INTEGER, PRIMARY KEY (backup_id, key));
        """
    )
    db.execute("INSERT INTO backups VALUES (1, 'w', 'u-1', 'full', 'full', NULL, 1, 1, 2, 'complete', '', 2, 2, 4, '', NULL, '')")
    db.execute("INSERT INTO backups VALUES (2, 'w', 'u-1', 'incremental', 'incremental', 1, 2, 3, 4, 'complete', '', 2, 1, 2, '', NULL, '')")
    rows = [
        (1, "c:\\", "C:\\", 1, 0, 1.0, None, 0, None),
        (1, "c:\\a.txt", "C:\\a.txt", 0, 2, 100.0, a1, 1, 1),
        (1, "c:\\b.txt", "C:\\b.txt", 0, 2, 100.0, b1, 1, 1),
        (2, "c:\\", "C:\\", 1, 0, 2.0, None, 0, None),
        (2, "c:\\a.txt", "C:\\a.txt", 0, 2, 200.0, a2, 1, 2),
        (2, "c:\\b.txt", "C:\\b.txt", 0, 2, 100.0, b1, 0, 1),
    ]
    db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()

    with Catalog(medium) as cat:
        assert cat.db.execute("PRAGMA user_version").fetchone()[0] == CATALOG_FORMAT == 2
        assert cat.entries_chain(2) == [2]  # it holds all its rows
        assert {e.path: (e.sha256, e.copied) for e in cat.entries(2).values() if not e.is_dir} == {
            "C:\\a.txt": (a2, True),
            "C:\\b.txt": (b1, False),
        }
        out = tmp_path / "r"
        cat.restore_files(2, "C:", out)
        assert {p.name: p.read_bytes() for p in (out / "C").iterdir()} == {"a.txt": b"a2", "b.txt": b"b1"}
        # a new incremental builds on the old one by reference
        vol = tmp_path / "C"
        write(vol, "a.txt", b"a2", 200)
        write(vol, "b.txt", b"b1", 100)
        write(vol, "c.txt", b"c1", 300)
        inc = cat.file_backup(vm_name="w", vm_uuid="u-1", kind="incremental", letters={"C": vol}, snapshot_time=3, now=Clock())
        assert cat.entries_chain(inc.id) == [2, inc.id]
        assert cat.copied_paths(inc.id) == ["C:\\c.txt"]
        assert sorted(e.path for e in cat.entries(inc.id).values() if not e.is_dir) == ["C:\\a.txt", "C:\\b.txt", "C:\\c.txt"]


def test_a_catalog_of_a_newer_format_is_refused_in_one_line(tmp_path: Path) -> None:
    Catalog(tmp_path / "m").close()
    db = sqlite3.connect(tmp_path / "m" / "catalog.sqlite")
    db.execute(f"PRAGMA user_version = {CATALOG_FORMAT + 1}")
    db.commit()
    db.close()
    with pytest.raises(StateError) as err:
        Catalog(tmp_path / "m")
    line = str(err.value)
    assert "\n" not in line and "format 3" in line and "newer vcbsim" in line
