"""The pieces of incremental image backups: area arithmetic, the ``.changed`` file, paging of
``QueryChangedDiskAreas`` in the in-process binding, the catalog's migration and chains."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from vcbsim.reference import (
    BackupProxy,
    Catalog,
    ChangeTracking,
    InProcessHostClient,
    Job,
    Schedule,
)
from vcbsim.reference._cbt import (
    CHUNK,
    _continues,
    merge_areas,
    read_areas_file,
    split_chunks,
    write_areas_file,
)
from vcbsim.simulator import InvalidInputError, StateError
from vcbsim.simulator._host import Host

GRAIN = 64 * 1024


def test_merge_and_split_areas() -> None:
    assert merge_areas([(10, 5), (0, 10), (30, 5), (33, 10), (50, 0)]) == [(0, 15), (30, 13)]
    assert merge_areas([(90, 20), (-5, 3)], capacity=100) == [(90, 10)]
    pieces = list(split_chunks([(CHUNK - 10, 20), (3 * CHUNK, 2 * CHUNK + 1)]))
    assert pieces == [(CHUNK - 10, 10), (CHUNK, 10), (3 * CHUNK, CHUNK), (4 * CHUNK, CHUNK), (5 * CHUNK, 1)]
    assert all(o // CHUNK == (o + n - 1) // CHUNK for o, n in pieces)


def test_change_id_continuation() -> None:
    a = "52 ab cd/7"
    assert _continues(a, "52 ab cd/7") and _continues(a, "52 ab cd/9")
    assert not _continues(a, "52 ab cd/6")  # went backwards
    assert not _continues(a, "52 00 00/9")  # a new identity: tracking was reset
    assert _continues("opaque", "also-opaque")  # unknown formats: the host decides


def test_the_changed_areas_file_round_trips(tmp_path: Path) -> None:
    p = tmp_path / "d.changed"
    write_areas_file(p, "x/2", "x/1", [(0, 65536), (1 << 40, 512)])
    assert read_areas_file(p) == [(0, 65536), (1 << 40, 512)]
    assert "since changeId x/1" in p.read_text()


def test_in_process_query_changed_areas_pages_past_one_window() -> None:
    host = Host("esxi-7.0")
    vm = host.add_vm("many", disks=[1 << 30])
    client = InProcessHostClient(host)
    assert client.change_tracking(vm.moref) == ChangeTracking(supported=True, enabled=False)
    client.enable_change_tracking(vm.moref)
    assert client.change_tracking(vm.moref).enabled
    first = client.create_snapshot(vm.moref, "a", quiesce=False)
    (since,) = client.disk_change_ids(vm.moref, first.id).values()
    assert since is not None
    dev = host.guest_device(vm, 2000)
    for i in range(600):  # every other grain: 600 separate areas
        dev.write(i * 2 * GRAIN, b"x")
    second = client.create_snapshot(vm.moref, "b", quiesce=False)
    window = host.query_changed_disk_areas(vm, second.id, 2000, 0, since)
    assert len(window.changed_area) == 512  # the host answers one window at a time
    areas = client.query_changed_areas(vm.moref, second.id, 2000, 0, since)
    assert areas == [(i * 2 * GRAIN, GRAIN) for i in range(600)]
    assert client.query_changed_areas(vm.moref, second.id, 2000, 500 * 2 * GRAIN, since)[0] == (1000 * GRAIN, GRAIN)
    # no CBT on an ESX 3.5 host
    old = Host("esx-3.5u2")
    v = old.add_vm("v", disks=[1 << 20])
    c = InProcessHostClient(old)
    assert c.change_tracking(v.moref) == ChangeTracking(supported=False, enabled=False)
    s = c.create_snapshot(v.moref, "s", quiesce=False)
    assert c.disk_change_ids(v.moref, s.id) == {2000: None}


def test_image_backup_kinds_are_validated(tmp_path: Path) -> None:
    host = Host("esxi-7.0")
    host.add_vm("v", disks=[1 << 20])
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "p")
    with pytest.raises(InvalidInputError, match="differential or incremental"):
        proxy.run("name:v", "fullvm", kind="weekly")
    assert proxy.run("name:v", "fullvm", kind="image").result.requested_level == "full"
    assert proxy.run("name:v", "fullvm", kind="incremental").result.requested_level == "incremental"
    Job("j", ("name:v",), "fullvm", Schedule(0), kind="incremental")
    with pytest.raises(InvalidInputError):
        Job("j", ("name:v",), "fullvm", Schedule(0), kind="weekly")


OLD_SCHEMA = """
CREATE TABLE backups (
    id INTEGER PRIMARY KEY, vm_name TEXT NOT NULL, vm_uuid TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('full', 'differential', 'incremental', 'image')),
    requested TEXT NOT NULL, base_id INTEGER REFERENCES backups(id), snapshot_time REAL NOT NULL,
    started REAL NOT NULL, finished REAL,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed')),
    job TEXT NOT NULL DEFAULT '', files_total INTEGER NOT NULL DEFAULT 0,
    files_copied INTEGER NOT NULL DEFAULT 0, bytes_copied INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT ''
);
INSERT INTO backups VALUES (1, 'vm1', 'u-1', 'image', 'image', NULL, 5, 5, 6, 'complete', '', 3, 3, 100, '');
INSERT INTO backups VALUES (2, 'vm1', 'u-1', 'full', 'full', NULL, 7, 7, 8, 'complete', '', 1, 1, 10, '');
"""


def test_a_medium_of_an_older_vcbsim_is_migrated(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    db = sqlite3.connect(tmp_path / "catalog.sqlite")
    db.executescript(OLD_SCHEMA)
    db.commit()
    db.close()
    with Catalog(tmp_path) as cat:
        image, files = cat.backups()
        assert (image.kind, image.level, image.fallback) == ("image", "full", "")
        assert (files.kind, files.level) == ("full", None)
        assert cat.image_disks(1) == [] and cat.image_chain(1) == [image]
        assert cat.image_reference("u-1", "incremental") == image
        assert cat.image_reference("u-1", "differential") == image
        with pytest.raises(InvalidInputError):
            cat.image_reference("u-1", "full")
        # a chain that names no base is refused, not guessed
        cat.db.execute(
            "INSERT INTO backups (vm_name, vm_uuid, kind, requested, snapshot_time, started, status, level) "
            "VALUES ('vm1', 'u-1', 'image', 'incremental', 9, 9, 'complete', 'incremental')"
        )
        with pytest.raises(StateError, match="names no earlier backup"):
            cat.image_chain(3)


def test_an_image_backup_of_an_older_vcbsim_is_not_built_on(tmp_path: Path) -> None:
    host = Host("esxi-7.0")
    vm = host.add_vm("v", disks=[1 << 24])
    host.reconfigure(vm, change_tracking=True)
    medium = tmp_path / "medium"
    medium.mkdir()
    db = sqlite3.connect(medium / "catalog.sqlite")
    db.executescript(OLD_SCHEMA.replace("'u-1'", f"'{vm.uuid}'").replace("'vm1'", "'v'"))
    db.commit()
    db.close()
    with Catalog(medium) as cat:
        res = BackupProxy(InProcessHostClient(host), tmp_path / "p").backup("name:v", "fullvm", catalog=cat, kind="incremental")
        assert res.ok and res.level == "full" and "backup 1 recorded no disks" in res.fallback
        assert res.backup_id == 3 and [d.change_id is not None for d in cat.image_disks(3)] == [True]
