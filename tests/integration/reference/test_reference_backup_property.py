"""Properties of the reference backup software on the real simulator, with a busy guest."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcbsim.conformance._checker import check_trace
from vcbsim.reference import BackupProxy, Catalog, InProcessHostClient
from vcbsim.simulator import SimRandom
from vcbsim.simulator.guest import Workload


def restored_tree(cat: Catalog, backup_id: int, out: Path) -> dict[str, bytes]:
    for letter in ("C", "D"):
        cat.restore_files(backup_id, f"{letter}:", out)
    return {
        (p.relative_to(out).parts[0] + ":\\" + "\\".join(p.relative_to(out).parts[1:])).casefold(): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file()
    }


def disk_digest(view: Any) -> str:
    h = hashlib.sha256()
    for off in range(0, view.size, 8 << 20):
        h.update(view.read(off, min(8 << 20, view.size - off)))
    return h.hexdigest()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**16),
    plan=st.lists(
        st.tuples(
            st.sampled_from(["full", "differential", "incremental"]),
            st.integers(0, 6),  # guest writes before the backup
            st.lists(st.integers(0, 3), min_size=4, max_size=4),  # guest writes after each step
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_restore_of_any_backup_gives_its_snapshot_and_commit_keeps_every_write(
    helpers: Any, tmp_path_factory: pytest.TempPathFactory, seed: int, plan: list[Any]
) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    host = helpers.small_host(seed)
    vm = host.find_vm("name:win1")
    workload = Workload(vm.guest, SimRandom(seed), host.clock, root="D:\\work", max_size=6000, max_files=10)
    proxy = BackupProxy(InProcessHostClient(host), tmp / "proxy")
    taken: list[tuple[int, dict[str, bytes]]] = []
    with Catalog(tmp / "medium") as cat:
        for kind, before, during in plan:
            workload.run(before)
            run = proxy.run("name:win1", "file", catalog=cat, kind=kind)
            assert run.advance()  # WF-1: the snapshot exists; nothing has written since
            as_of_snapshot = helpers.guest_tree(vm.guest)
            i = 0
            while True:
                workload.run(during[i % len(during)])  # the guest keeps working during the backup
                i += 1
                if not run.advance():
                    break
            res = run.result
            assert res.ok and res.backup_id is not None, res.summary()
            assert vm.snapshots() == []
            assert workload.verify() == [], "a write made during the backup was lost at commit"
            taken.append((res.backup_id, as_of_snapshot))
        for backup_id, expected in taken:
            assert restored_tree(cat, backup_id, tmp / f"restore-{backup_id}") == expected
    report = check_trace(host.trace.events)
    assert report.ok, "\n".join(v.format() for v in report.violations)


def test_three_backups_prove_differential_versus_incremental_selection(
    host: Any, proxy: BackupProxy, catalog: Catalog
) -> None:
    g = host.find_vm("name:win1").guest

    def step(kind: str) -> list[str]:
        host.clock.advance(10)
        res = proxy.backup("name:win1", "file", catalog=catalog, kind=kind)
        assert res.ok and res.backup_id is not None, res.summary()
        return catalog.copied_paths(res.backup_id)

    full = step("full")
    assert "C:\\Windows\\system.ini" in full and len(full) == 3
    host.clock.advance(10)
    g.write_bytes("C:\\Windows\\system.ini", b"edit one")
    assert step("incremental") == ["C:\\Windows\\system.ini"]
    host.clock.advance(10)
    g.write_bytes("D:\\data\\db.mdf", b"edit two")
    g.write_bytes("D:\\data\\new.log", b"edit three")
    assert step("incremental") == ["D:\\data\\db.mdf", "D:\\data\\new.log"]
    assert step("differential") == ["C:\\Windows\\system.ini", "D:\\data\\db.mdf", "D:\\data\\new.log"]
    host.clock.advance(10)
    g.write_bytes("C:\\Users\\Admin\\Documents\\report.doc", b"edit four")
    assert step("differential") == [
        "C:\\Users\\Admin\\Documents\\report.doc",
        "C:\\Windows\\system.ini",
        "D:\\data\\db.mdf",
        "D:\\data\\new.log",
    ]
    # an incremental's base is the last full or incremental, not the differential in between
    # (the seed: "since the last backup, whether the last backup was full or incremental")
    assert step("incremental") == ["C:\\Users\\Admin\\Documents\\report.doc"]
    report = check_trace(host.trace.events)
    assert report.ok, "\n".join(v.format() for v in report.violations)


def test_restore_whole_vm_from_an_image_backup(host: Any, client: InProcessHostClient, proxy: BackupProxy, catalog: Catalog) -> None:
    vm = host.find_vm("name:win1")
    run = proxy.run("name:win1", "fullvm", catalog=catalog)
    assert run.advance()
    snap = run.result.snapshot_id
    expected = {d.key: disk_digest(host.disk_view(vm, d.key, snap)) for d in vm.disks}
    vm.guest.write_bytes("C:\\Windows\\system.ini", b"written during the backup")
    res = run.run()
    assert res.ok and res.kind == "image" and res.backup_id is not None
    # the disaster: files lost and overwritten after the backup
    vm.guest.delete("D:\\data", recursive=True)
    vm.guest.write_bytes("C:\\lost.txt", b"x" * 100_000)
    assert {d.key: disk_digest(host.disk_view(vm, d.key)) for d in vm.disks} != expected
    catalog.restore_vm(res.backup_id, client)
    assert {d.key: disk_digest(host.disk_view(vm, d.key)) for d in vm.disks} == expected
    ops = [e.details["op"] for e in host.trace.of_kind("op.ok")]
    assert ops[-1] == "restore-vm"
