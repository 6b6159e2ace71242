"""Catalog, blob store and file selection of the reference backup software (no host needed)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcbsim.reference import BlobStore, Catalog, CorruptBlobError, FileEntry, select_changed
from vcbsim.reference._catalog import guest_path, path_key
from vcbsim.simulator import InvalidInputError, NotFoundError, StateError


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


def backup(cat: Catalog, vol: Path, kind: str, clock: Clock, snap: float) -> int:
    rec = cat.file_backup(
        vm_name="w", vm_uuid="u-1", kind=kind, letters={"C": vol}, snapshot_time=snap, now=clock
    )
    assert rec.status == "complete"
    return rec.id


def test_blob_store_roundtrip_dedup_and_corruption(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    d1, new1 = store.put_bytes(b"hello")
    d2, new2 = store.put_bytes(b"hello")
    assert d1 == d2 and new1 and not new2
    assert store.get_bytes(d1) == b"hello"
    assert list(store.digests()) == [d1]
    src = tmp_path / "f"
    src.write_bytes(b"x" * 3_000_000)
    d3, size, new3 = store.put_file(src)
    assert size == 3_000_000 and new3 and d3 in store
    store.path(d1).write_bytes(b"jello")
    with pytest.raises(CorruptBlobError):
        store.get_bytes(d1)
    with pytest.raises(CorruptBlobError):
        store.copy_to(d1, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(InvalidInputError):
        store.path("../etc/passwd")
    with pytest.raises(NotFoundError):
        store.get_bytes("0" * 64)


def test_guest_paths() -> None:
    assert guest_path("c", "Dir/f.txt") == "C:\\Dir\\f.txt"
    assert guest_path("d", "") == "D:\\"
    assert path_key("c:/DIR/F.TXT") == path_key("C:\\Dir\\f.txt")
    assert path_key("C:") == path_key("C:\\") == "c:\\"


def test_select_changed_rules() -> None:
    ref = {e.key: e for e in [FileEntry("C:\\a", False, 1, 10.0, "aa"), FileEntry("C:\\b", False, 1, 10.0, "bb")]}
    cur = [
        FileEntry("C:\\a", False, 1, 10.0, "aa"),  # same
        FileEntry("C:\\B", False, 1, 10.0, "bc"),  # content differs (same mtime: FAT's 2 s)
        FileEntry("C:\\c", False, 1, 10.0, "cc"),  # new
        FileEntry("C:\\d", True, 0, 10.0, None),  # directories are never copied
    ]
    assert select_changed(cur, ref) == {"c:\\b", "c:\\c"}
    assert select_changed(cur, None) == {"c:\\a", "c:\\b", "c:\\c"}


def test_full_differential_incremental_selection_and_restore(tmp_path: Path) -> None:
    """Three backups with edits between them prove differential vs incremental selection."""
    vol = tmp_path / "C"
    clock = Clock()
    cat = Catalog(tmp_path / "medium")
    write(vol, "a.txt", b"a1", 100)
    write(vol, "docs/b.txt", b"b1", 100)
    write(vol, "docs/c.txt", b"c1", 100)
    full = backup(cat, vol, "full", clock, 1)
    assert len(cat.copied_paths(full)) == 3

    write(vol, "a.txt", b"a2", 200)  # edit 1
    inc1 = backup(cat, vol, "incremental", clock, 2)
    assert cat.copied_paths(inc1) == ["C:\\a.txt"]

    write(vol, "docs/b.txt", b"b2", 300)  # edit 2
    (vol / "docs/c.txt").unlink()  # deletion
    diff = backup(cat, vol, "differential", clock, 3)
    inc2 = backup(cat, vol, "incremental", clock, 4)
    # differential: everything changed since the full; incremental: since the last full or
    # incremental (the seed's types of backups: a differential is not an incremental's base)
    assert cat.copied_paths(diff) == ["C:\\a.txt", "C:\\docs\\b.txt"]
    assert cat.copied_paths(inc2) == ["C:\\docs\\b.txt"]
    assert cat.backup(diff).base_id == full
    assert cat.backup(inc2).base_id == inc1

    def restored(bid: int) -> dict[str, bytes]:
        out = tmp_path / f"r{bid}"
        cat.restore_files(bid, "C:", out)
        return {p.relative_to(out / "C").as_posix(): p.read_bytes() for p in (out / "C").rglob("*") if p.is_file()}

    assert restored(full) == {"a.txt": b"a1", "docs/b.txt": b"b1", "docs/c.txt": b"c1"}
    assert restored(inc1) == {"a.txt": b"a2", "docs/b.txt": b"b1", "docs/c.txt": b"c1"}
    assert restored(diff) == {"a.txt": b"a2", "docs/b.txt": b"b2"}
    assert restored(inc2) == {"a.txt": b"a2", "docs/b.txt": b"b2"}
    assert cat.chain(inc2) == [inc1, inc2]  # a.txt as the first incremental copied it
    assert cat.chain(inc1) == [full, inc1]
    # one file, case-insensitively, with its guest mtime
    files = cat.restore_files(inc1, "c:\\A.TXT", tmp_path / "one")
    assert [f.read_bytes() for f in files] == [b"a2"] and files[0].stat().st_mtime == 200
    with pytest.raises(NotFoundError):
        cat.restore_files(diff, "C:\\docs\\c.txt", tmp_path / "x")


def test_first_differential_is_promoted_to_full_and_failed_backups_are_ignored(tmp_path: Path) -> None:
    vol = tmp_path / "C"
    write(vol, "a", b"1", 100)
    clock = Clock()
    cat = Catalog(tmp_path / "m")
    rec = cat.file_backup(vm_name="w", vm_uuid="u", kind="differential", letters={"C": vol}, snapshot_time=1, now=clock)
    assert (rec.kind, rec.requested, rec.files_copied) == ("full", "differential", 1)

    def boom(path: str) -> None:
        raise OSError("medium full")

    write(vol, "a", b"2", 200)
    with pytest.raises(OSError):
        cat.file_backup(vm_name="w", vm_uuid="u", kind="full", letters={"C": vol}, snapshot_time=2, now=clock, before_copy=boom)
    failed = cat.backups("w", status="failed")
    assert len(failed) == 1 and "medium full" in failed[0].error
    assert cat.entries(failed[0].id) == {}
    # the next incremental compares with the complete full, not the failed one
    inc = cat.file_backup(vm_name="w", vm_uuid="u", kind="incremental", letters={"C": vol}, snapshot_time=3, now=clock)
    assert inc.base_id == rec.id and cat.copied_paths(inc.id) == ["C:\\a"]
    with pytest.raises(StateError):
        cat.restore_files(failed[0].id, "C:", tmp_path / "r")


def test_catalog_is_a_real_sqlite_file_and_reopens(tmp_path: Path) -> None:
    vol = tmp_path / "C"
    write(vol, "x.bin", os.urandom(1000), 100)
    with Catalog(tmp_path / "m") as cat:
        bid = backup(cat, vol, "full", Clock(), 1)
    db = sqlite3.connect(tmp_path / "m" / "catalog.sqlite")
    assert db.execute("SELECT kind, files_copied FROM backups").fetchall() == [("full", 1)]
    with Catalog(tmp_path / "m") as cat:
        assert cat.backup(bid).files_total == 1
        with pytest.raises(NotFoundError):
            cat.backup(99)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["full", "differential", "incremental"]),
            st.dictionaries(st.sampled_from(["a", "b", "d/c", "d/e", "f"]), st.binary(max_size=8) | st.none(), max_size=4),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_backup_restores_its_own_state(tmp_path_factory: pytest.TempPathFactory, plan: list) -> None:
    """Property: whatever the sequence of kinds and edits, every backup restores exactly the
    files present when it was taken (edits keep mtime equal half the time: hash detection)."""
    tmp = tmp_path_factory.mktemp("p")
    vol = tmp / "C"
    vol.mkdir()
    cat = Catalog(tmp / "m")
    clock = Clock()
    states: list[tuple[int, dict[str, bytes]]] = []
    for n, (kind, edits) in enumerate(plan):
        for rel, data in edits.items():
            p = vol / rel
            if data is None:
                p.unlink(missing_ok=True)
            else:
                write(vol, rel, data, 100 + (n if len(data) % 2 else 0))
        snapshot = {p.relative_to(vol).as_posix(): p.read_bytes() for p in vol.rglob("*") if p.is_file()}
        states.append((backup(cat, vol, kind, clock, n), snapshot))
    for bid, snapshot in states:
        out = tmp / f"r{bid}"
        cat.restore_files(bid, "C:\\", out)
        got = {p.relative_to(out / "C").as_posix(): p.read_bytes() for p in (out / "C").rglob("*") if p.is_file()}
        assert got == snapshot


def test_restore_detects_a_damaged_medium(tmp_path: Path) -> None:
    vol = tmp_path / "C"
    write(vol, "a.txt", b"precious", 100)
    with Catalog(tmp_path / "m") as cat:
        bid = backup(cat, vol, "full", Clock(), 1)
        digest = cat.entries(bid)["c:\\a.txt"].sha256
        assert digest is not None
        cat.store.path(digest).write_bytes(b"bit rot!")
        with pytest.raises(CorruptBlobError, match="damaged"):
            cat.restore_files(bid, "C:\\a.txt", tmp_path / "out")
        assert not (tmp_path / "out" / "C" / "a.txt").exists()
