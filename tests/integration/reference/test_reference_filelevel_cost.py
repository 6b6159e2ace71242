"""A file-level backup reads the snapshot's volumes directly and an incremental reads only
what changed (issue 18), with the rules' content semantics kept (BK-INCR-SINCE-LAST).

Reads are counted through the host-client seam (``open_volume``), not timed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vcbsim.conformance._checker import check_trace
from vcbsim.reference import BackupProxy, Catalog, InProcessHostClient
from vcbsim.reference._client import GuestFile, VolumeInfo, VolumeReader


class CountingReader:
    """A volume reader that records every file whose content is read."""

    def __init__(self, inner: VolumeReader, letter: str, reads: list[str]) -> None:
        self.inner, self.letter, self.reads = inner, letter, reads

    def walk(self) -> Any:
        return self.inner.walk()

    def read_bytes(self, path: str) -> bytes:
        self.reads.append(f"{self.letter}:{path}")
        return self.inner.read_bytes(path)


class CountingClient(InProcessHostClient):
    def __init__(self, host: Any) -> None:
        super().__init__(host)
        self.reads: list[str] = []

    def open_volume(self, moref: str, snapshot_id: str, volume: VolumeInfo) -> VolumeReader:
        return CountingReader(super().open_volume(moref, snapshot_id, volume), volume.letter or "?", self.reads)


def files_of(reader: VolumeReader) -> list[GuestFile]:
    return [e for e in reader.walk() if not e.is_dir]


def assert_trace_ok(host: Any) -> None:
    report = check_trace(host.trace.events)
    assert report.ok, report.summary()


def test_incremental_reads_only_the_changed_files_and_restores_the_snapshot(tmp_path: Path, helpers: Any) -> None:
    host = helpers.small_host()
    client = CountingClient(host)
    proxy = BackupProxy(client, tmp_path / "proxy")
    vm = host.find_vm("name:win1")
    g = vm.guest
    for i in range(20):
        g.write_bytes(f"C:\\Users\\Admin\\Documents\\n{i:02}.txt", f"note {i}".encode())
    host.clock.advance(60)  # the files are well before the full's snapshot
    with Catalog(tmp_path / "medium") as cat:
        full = proxy.backup("name:win1", "file", catalog=cat)
        assert full.ok, full.summary()
        total = cat.backup(full.backup_id).files_total
        assert len(client.reads) == total >= 23  # a full reads every file once, no proxy copy
        host.clock.advance(60)
        g.write_bytes("C:\\Users\\Admin\\Documents\\n07.txt", b"note 7, edited")
        g.write_bytes("D:\\data\\new.bin", b"\x02" * 5000)
        host.clock.advance(60)
        client.reads.clear()
        inc = proxy.backup("name:win1", "file", catalog=cat, kind="incremental")
        assert inc.ok, inc.summary()
        # only what changed was read: the 21 other files were vouched for by their metadata
        assert sorted(client.reads) == ["C:Users/Admin/Documents/n07.txt", "D:data/new.bin"]
        assert cat.copied_paths(inc.backup_id) == ["C:\\Users\\Admin\\Documents\\n07.txt", "D:\\data\\new.bin"]
        out = tmp_path / "restored"
        cat.restore_files(inc.backup_id, "C:\\", out)
        cat.restore_files(inc.backup_id, "D:\\", out)
        got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        want = {k.replace(":\\", "/").replace("\\", "/"): v for k, v in g.read_tree("C:\\", "D:\\").items()}
        assert {k.casefold(): v for k, v in got.items()} == {k.casefold(): v for k, v in want.items()}
    assert_trace_ok(host)


def test_a_same_size_rewrite_in_the_snapshots_mtime_window_is_still_caught(tmp_path: Path, helpers: Any) -> None:
    """FAT keeps mtimes to 2 s: a rewrite right after the full's snapshot can keep the size
    and mtime. Such a "racily clean" file is read and hashed, so the incremental holds it
    (data loss otherwise: rule BK-INCR-SINCE-LAST)."""
    host = helpers.small_host()
    client = CountingClient(host)
    # crash-consistent: the snapshot follows the write within a second (no scripts run)
    proxy = BackupProxy(client, tmp_path / "proxy", quiesce=False)
    g = host.find_vm("name:win1").guest
    host.clock.advance(60 - host.clock.now % 2)  # at the start of a FAT 2-second window
    g.write_bytes("C:\\race.txt", b"AAAA")  # same 2-second window as the full's snapshot
    with Catalog(tmp_path / "medium") as cat:
        full = proxy.backup("name:win1", "file", catalog=cat)
        assert full.ok, full.summary()
        before = g.stat("C:\\race.txt")
        g.write_bytes("C:\\race.txt", b"BBBB")  # no clock advance: same size, same FAT mtime
        assert (g.stat("C:\\race.txt").size, g.stat("C:\\race.txt").mtime) == (before.size, before.mtime)
        client.reads.clear()
        inc = proxy.backup("name:win1", "file", catalog=cat, kind="incremental")
        assert inc.ok, inc.summary()
        assert "C:race.txt" in client.reads
        assert "C:\\race.txt" in cat.copied_paths(inc.backup_id)
        files = cat.restore_files(inc.backup_id, "C:\\race.txt", tmp_path / "one")
        assert [f.read_bytes() for f in files] == [b"BBBB"]
    assert_trace_ok(host)


def test_a_backup_runs_mount_is_the_read_only_tree_and_a_held_mount_has_the_files(
    tmp_path: Path, helpers: Any
) -> None:
    """Step 1f stays observable: during a backup run ``letters\\C`` is a real read-only
    directory tree (the files are read from the snapshot view it shows); a held mount, which
    a user reads, has every file."""
    host = helpers.small_host()
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        run = proxy.run("name:win1", "file", catalog=cat)
        assert run.advance() and run.advance()  # WF-1, then WF-1f
        root = proxy.root / "win1" / "letters"
        assert sorted(p.name for p in root.iterdir()) == ["C", "D"]
        assert (root / "C" / "Users" / "Admin" / "Documents").is_dir()
        assert (root / "C").stat().st_mode & 0o222 == 0
        assert [p for p in root.rglob("*") if p.is_file()] == []
        res = run.run()
        assert res.ok, res.summary()
        assert "C:\\Users\\Admin\\Documents\\report.doc" in cat.copied_paths(res.backup_id)
        assert not (proxy.root / "win1").exists()
    held = proxy.mount("name:win1", "file")
    assert held.status == "mounted", held.summary()
    assert (proxy.root / "win1" / "letters" / "D" / "data" / "db.mdf").read_bytes() == b"\x01" * 200_000
    proxy.unmount(proxy.root / "win1")
    assert_trace_ok(host)
