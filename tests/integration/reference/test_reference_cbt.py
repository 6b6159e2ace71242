"""Incremental and differential image backups with changed block tracking (CBT), on the
esxi-7.0 demo host: restores rebuild each disk exactly as of its backup's snapshot, an
incremental stores O(changed) bytes, and every case that cannot use CBT falls back to a full
backup and says why."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcbsim.conformance._checker import check_trace
from vcbsim.reference import BackupProxy, Catalog, InProcessHostClient, read_export_catalog
from vcbsim.simulator import FaultRule
from vcbsim.simulator._host import Host
from vcbsim.simulator.disk import LayeredDisk, read_vmdk, write_vmdk

GRAIN = 64 * 1024
GiB = 1024**3
VM = "win2003-sql"
needs_qemu = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img not installed (qemu-utils)")


def grains(dev: Any) -> dict[int, bytes]:
    """The disk's content: every 64 KiB grain holding non-zero bytes, by offset."""
    out: dict[int, bytes] = {}
    for off, n in dev.allocated_areas():
        start = off - off % GRAIN
        for g in range(start, off + n, GRAIN):
            data = dev.read(g, min(GRAIN, dev.size - g))
            if any(data):
                out[g] = data
    return out


def snapshot_disks(host: Any, vm: Any, snap: str) -> dict[int, dict[int, bytes]]:
    return {d.key: grains(host.disk_view(vm, d.key, snap)) for d in vm.disks}


def restored_disks(cat: Catalog, backup_id: int, where: Path) -> dict[int, dict[int, bytes]]:
    out = cat.restore_image_files(backup_id, where)
    meta = read_export_catalog(out / "catalog")
    disks = {
        int(k.split(".")[1]): grains(read_vmdk(out / v)) for k, v in meta.items() if k.endswith(".filename")
    }
    shutil.rmtree(out)
    return disks


def esxi(seed: int = 0) -> Any:
    return Host.demo("esxi-7.0", seed=seed)


def set_cbt_now(host: Any, vm: Any, on: bool) -> None:
    """An administrator turns CBT on or off; a snapshot create/remove cycle (a stun) applies it."""
    host.reconfigure(vm, change_tracking=on)
    s = host.create_snapshot(vm, "stun", quiesce=False)
    host.remove_snapshot(vm, s)
    assert vm.change_tracking is on


def enable_cbt_now(host: Any, vm: Any) -> None:
    set_cbt_now(host, vm, True)


# -- the property ---------------------------------------------------------------------------------

# raw writes land far into each disk, past anything the guest's FAT file systems allocate
RAW_REGIONS = {2000: (6 * GiB, 8 * GiB), 2001: (3 * GiB + 512 * 1024 * 1024, 4 * GiB)}
PATHS = ["C:\\Data\\a.bin", "C:\\Data\\b.bin", "D:\\Data\\orders.csv", "D:\\Data\\db\\sales.mdf", "C:\\big.bin"]

file_write = st.tuples(st.just("file"), st.sampled_from(PATHS), st.integers(0, 150_000), st.integers(0, 255))
raw_write = st.tuples(
    st.just("raw"), st.sampled_from(sorted(RAW_REGIONS)), st.integers(0, 2**20), st.integers(1, 200_000),
    st.integers(0, 255),
)
writes = st.lists(st.one_of(file_write, raw_write), max_size=4)


def apply(host: Any, vm: Any, actions: list[Any]) -> None:
    for act in actions:
        if act[0] == "file":
            _, path, size, byte = act
            data = bytes([byte]) * size if byte else bytes(range(256)) * (size // 256)
            vm.guest.write_bytes(path, data)
        else:
            _, key, where, size, byte = act
            lo, _hi = RAW_REGIONS[key]
            off = lo + (where % 16) * 40_000 + where // 16 % 5000  # 16 overlapping places, unaligned
            host.guest_device(vm, key).write(off, bytes([byte]) * size)  # zeros too: an area can change to zeros


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**16),
    plan=st.lists(
        st.tuples(
            st.sampled_from(["full", "incremental", "differential"]),
            writes,  # before the backup
            st.lists(writes, min_size=4, max_size=4),  # during it, after each step
        ),
        min_size=1,
        max_size=6,
    ),
    restore_vm_of=st.integers(0, 5),
)
def test_restoring_any_image_backup_gives_the_disks_as_of_its_snapshot(
    tmp_path_factory: pytest.TempPathFactory, seed: int, plan: list[Any], restore_vm_of: int
) -> None:
    tmp = tmp_path_factory.mktemp("cbt")
    host = esxi(seed)
    vm = host.find_vm(f"name:{VM}")
    vm.guest.mkdir("C:\\Data")
    client = InProcessHostClient(host)
    proxy = BackupProxy(client, tmp / "proxy")
    taken: list[tuple[int, dict[int, dict[int, bytes]]]] = []
    cbt_on = False
    with Catalog(tmp / "medium") as cat:
        for requested, before, during in plan:
            apply(host, vm, before)
            run = proxy.run(f"name:{VM}", "fullvm", catalog=cat, kind=requested)
            assert run.advance()  # WF-1: the snapshot exists
            snap = run.result.snapshot_id
            assert snap is not None
            expected = snapshot_disks(host, vm, snap)
            i = 0
            while True:
                apply(host, vm, during[i % len(during)])  # the guest keeps writing
                i += 1
                if not run.advance():
                    break
            res = run.result
            assert res.ok and res.backup_id is not None, res.summary()
            if requested == "full" or cbt_on:
                assert (res.level, res.fallback) == (requested, ""), res.stored()
            else:  # the first incremental or differential turns CBT on: the baseline full
                assert res.level == "full" and "enabled it" in res.fallback
                cbt_on = True
            assert vm.snapshots() == []
            taken.append((res.backup_id, expected))
        for backup_id, expected in taken:
            assert restored_disks(cat, backup_id, tmp / f"restore-{backup_id}") == expected, backup_id
        backup_id, expected = taken[restore_vm_of % len(taken)]
        cat.restore_vm(backup_id, client)
        assert {d.key: grains(host.disk_view(vm, d.key)) for d in vm.disks} == expected
    report = check_trace(host.trace.events, profile="esxi-7.0")
    assert report.ok, "\n".join(v.format() for v in report.violations)


# -- cost ------------------------------------------------------------------------------------------


def store_bytes(cat: Catalog) -> int:
    return sum(p.stat().st_size for p in cat.store.root.rglob("*") if p.is_file())


def test_an_incremental_of_a_large_disk_stores_only_the_changed_areas(tmp_path: Path) -> None:
    host = esxi()
    big = host.add_vm("big", disks=[16 * GiB, 256 * GiB], ip_address="192.0.2.40")
    for key, off in ((2000, 0), (2001, 100 * GiB)):  # some data to begin with: 8 MiB per disk
        host.guest_device(big, key).write(off, b"\x11" * (8 << 20))
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        first = proxy.backup("name:big", "fullvm", catalog=cat, kind="incremental")
        assert first.ok and first.level == "full" and "enabled it" in first.fallback
        assert first.bytes_stored >= 16 << 20
        full_store = store_bytes(cat)
        # a few KiB change: 1 KiB at the start, 3 KiB across a grain boundary, 4 KiB near the end
        dev = host.guest_device(big, 2001)
        dev.write(512, b"a" * 1024)
        dev.write(200 * GiB + GRAIN - 1024, b"b" * 3072)
        dev.write(256 * GiB - 8192, b"c" * 4096)
        res = proxy.backup("name:big", "fullvm", catalog=cat, kind="incremental")
        assert res.ok and res.level == "incremental" and res.fallback == "", res.stored()
        rec = cat.backup(res.backup_id or 0)
        disks = {d.key: d for d in cat.image_disks(rec.id)}
        assert disks[2000].areas == 0 and disks[2000].bytes == 0  # the 16 GiB disk did not change
        assert disks[2001].areas == 3 and disks[2001].bytes == 4 * GRAIN  # 64 KiB grains, as CBT reports
        extents = cat.image_extents(rec.id, 2001)
        assert [(o, n) for o, n, _ in extents] == [
            (0, GRAIN), (200 * GiB, 2 * GRAIN), (256 * GiB - GRAIN, GRAIN)
        ]  # fmt: skip
        files = {f.name for f in cat.image_files(rec.id)}
        assert files == {"catalog", "big.vmx"}  # no VMDK files: the disks are areas
        vmx_and_catalog = sum(f.size for f in cat.image_files(rec.id))
        assert rec.bytes_copied == 4 * GRAIN + vmx_and_catalog
        grew = store_bytes(cat) - full_store
        assert grew <= 4 * GRAIN + vmx_and_catalog, grew  # O(changed), whatever the capacity
        # and the chain restores the 256 GiB disk exactly
        expected = grains(host.disk_view(big, 2001))
        assert restored_disks(cat, rec.id, tmp_path / "restore")[2001] == expected


# -- fallbacks ----------------------------------------------------------------------------------------


def incremental(proxy: BackupProxy, cat: Catalog, kind: str = "incremental") -> Any:
    res = proxy.backup(f"name:{VM}", "fullvm", catalog=cat, kind=kind)
    assert res.ok, res.summary()
    return res


def captured(host: Any, proxy: BackupProxy, cat: Catalog, kind: str = "incremental") -> tuple[Any, dict[int, dict[int, bytes]]]:
    """Run a backup; also return the disks as of its snapshot (read right after WF-1)."""
    run = proxy.run(f"name:{VM}", "fullvm", catalog=cat, kind=kind)
    assert run.advance()
    vm = host.find_vm(VM)
    expected = snapshot_disks(host, vm, run.result.snapshot_id)
    res = run.run()
    assert res.ok, res.summary()
    return res, expected


def said(host: Any, res: Any, *words: str) -> None:
    """A fallback to full is in the result, the catalog record, the trace and the job's op.ok."""
    assert res.level == "full" and res.requested_level in ("incremental", "differential")
    for w in words:
        assert w in res.fallback, res.fallback
    notes = [e.details["text"] for e in host.trace.of_kind("note")]
    assert any(res.fallback in n and "is a full one" in n for n in notes)
    job_ok = [e for e in host.trace.of_kind("op.ok") if e.details.get("op") == "job"][-1]
    assert job_ok.details["level"] == "full" and job_ok.details["fallback"] == res.fallback
    assert res.fallback in res.stored() and "full because" in res.stored()


def test_fallback_on_a_host_without_changed_block_tracking(tmp_path: Path) -> None:
    host = Host.demo("esx-3.5u2")
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        for kind in ("incremental", "differential", "incremental"):
            res = incremental(proxy, cat, kind)
            said(host, res, "changed block tracking is not available")
            assert cat.backup(res.backup_id or 0).fallback == res.fallback
        assert not [e for e in host.trace.of_kind("op.invoke") if e.details.get("op") == "enable-change-tracking"]
        assert host.find_vm(VM).change_tracking is False
    assert check_trace(host.trace.events).ok


def test_fallback_when_tracking_was_just_enabled_then_incrementals(tmp_path: Path) -> None:
    host = esxi()
    vm = host.find_vm(VM)
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        first = incremental(proxy, cat)
        said(host, first, "changed block tracking was off", "enabled it")
        assert vm.change_tracking is True and first.notes and "enabled changed block tracking" in first.notes[0]
        ops = [e.details["op"] for e in host.trace.of_kind("op.ok")]
        assert ops.index("enable-change-tracking") < ops.index("pre-backup")
        vm.guest.write_bytes("C:\\x.txt", b"x" * 5000)
        second = incremental(proxy, cat)
        assert (second.level, second.base_backup_id, second.fallback) == ("incremental", first.backup_id, "")
        diff = incremental(proxy, cat, "differential")
        assert (diff.level, diff.base_backup_id) == ("differential", first.backup_id)
    assert check_trace(host.trace.events, profile="esxi-7.0").ok


def test_fallback_without_an_earlier_complete_image_backup(tmp_path: Path) -> None:
    host = esxi()
    vm = host.find_vm(VM)
    enable_cbt_now(host, vm)
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        said(host, incremental(proxy, cat, "differential"), "no earlier complete full image backup")
    with Catalog(tmp_path / "medium-b") as cat:
        said(host, incremental(proxy, cat), "no earlier complete image backup")
        assert incremental(proxy, cat).level == "incremental"
    # a full that failed in WF-2 is never built on
    host = esxi()
    enable_cbt_now(host, host.find_vm(VM))
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy2")
    with Catalog(tmp_path / "medium2") as cat:
        host.add_fault(FaultRule("copy", target=f"{VM}:*", fault="NoDiskSpace", times=1))
        failed = proxy.backup(f"name:{VM}", "fullvm", catalog=cat)
        assert not failed.ok and failed.failed_step == "WF-2"
        said(host, incremental(proxy, cat), "no earlier complete image backup")


def test_fallback_when_the_host_refuses_the_recorded_change_id(tmp_path: Path) -> None:
    host = esxi()
    vm = host.find_vm(VM)
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        incremental(proxy, cat)  # enables CBT: the baseline full
        base = incremental(proxy, cat)
        assert base.level == "incremental"
        # CBT is switched off and on again (each takes effect at a stun): tracking restarts
        set_cbt_now(host, vm, False)
        set_cbt_now(host, vm, True)
        vm.guest.write_bytes("C:\\after-reset.txt", b"r" * 70_000)
        res = incremental(proxy, cat)
        said(host, res, "refused change id", "InvalidArgument", f"backup {base.backup_id}")
        # the full it fell back to is the new baseline
        nxt, expected = captured(host, proxy, cat)
        assert (nxt.level, nxt.base_backup_id) == ("incremental", res.backup_id)
        assert restored_disks(cat, nxt.backup_id or 0, tmp_path / "r") == expected


def test_fallback_when_tracking_was_reset(tmp_path: Path) -> None:
    """A CBT reset (as after a power failure, spec R52/F17) without any reconfiguration."""
    host = esxi()
    vm = host.find_vm(VM)
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        incremental(proxy, cat)
        for d in vm.disks:
            d.disk.reset_tracking()
        said(host, incremental(proxy, cat), "refused change id", "InvalidArgument")
        # a host that gives the reset tracking a new identity: refused before asking
        vm.disks[0].change_id_prefix = "52 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01"
        said(host, incremental(proxy, cat), "does not continue", "tracking was reset")


def test_fallback_when_the_disks_changed(tmp_path: Path) -> None:
    from vcbsim.simulator._vm import VirtualDiskDevice

    host = esxi()
    vm = host.find_vm(VM)
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        incremental(proxy, cat)
        first = incremental(proxy, cat)
        assert first.level == "incremental"
        # a third disk is added to the VM (hot add)
        disk = LayeredDisk(2 * GiB)
        disk.top.label = f"{vm.directory}/{VM}_2.vmdk"
        vm.disks.append(VirtualDiskDevice(2002, 2, "Hard disk 3", disk.top.label, disk, change_id_prefix="52 aa"))
        host.guest_device(vm, 2002).write(0, b"new disk")
        res = incremental(proxy, cat)
        said(host, res, "disks of win2003-sql changed", "added disk 2002")
        assert {d.key for d in cat.image_disks(res.backup_id or 0)} == {2000, 2001, 2002}
        nxt, expected = captured(host, proxy, cat)
        assert nxt.level == "incremental"
        assert restored_disks(cat, nxt.backup_id or 0, tmp_path / "r") == expected


def test_fallback_when_the_reference_backup_has_no_change_ids(tmp_path: Path) -> None:
    host = esxi()
    vm = host.find_vm(VM)
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        plain = proxy.backup(f"name:{VM}", "fullvm", catalog=cat)  # a plain full never enables CBT
        assert plain.ok and plain.level == "full" and plain.fallback == "" and not vm.change_tracking
        assert all(d.change_id is None for d in cat.image_disks(plain.backup_id or 0))
        enable_cbt_now(host, vm)
        said(host, incremental(proxy, cat), f"backup {plain.backup_id} recorded no change id")


# -- revert, restore, qemu-img -----------------------------------------------------------------------


def test_incremental_after_a_revert_restores_the_reverted_disks(tmp_path: Path) -> None:
    host = esxi()
    vm = host.find_vm(VM)
    client = InProcessHostClient(host)
    proxy = BackupProxy(client, tmp_path / "proxy", quiesce=False)
    with Catalog(tmp_path / "medium") as cat:
        incremental(proxy, cat)
        user = host.create_snapshot(vm, "before-upgrade", quiesce=False)
        dev = host.guest_device(vm, 2000)
        dev.write(7 * GiB, b"upgrade" * 10_000)
        after = incremental(proxy, cat)
        assert after.level == "incremental"
        host.revert_to_snapshot(vm, user)  # the upgrade is undone
        host.power_on(vm)
        res, expected = captured(host, proxy, cat)
        # the simulator keeps change ids valid across a revert (the reverted grains count as
        # changed); a host that refused them would make this a full: either restores exactly
        assert res.level == "incremental" or "refused" in res.fallback
        assert restored_disks(cat, res.backup_id or 0, tmp_path / "r") == expected
        assert dev.read(7 * GiB, 7) == bytes(7)


@needs_qemu
def test_qemu_img_reads_the_delta_export_and_the_rebuilt_disks(tmp_path: Path) -> None:
    host = esxi()
    vm = host.find_vm(VM)
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy", split=False)
    with Catalog(tmp_path / "medium") as cat:
        incremental(proxy, cat)
        vm.guest.write_bytes("C:\\delta.bin", b"d" * 300_000)
        run = proxy.run(f"name:{VM}", "fullvm", catalog=cat, kind="incremental")
        while run.result.path is None or not (Path(run.result.path) / "catalog").exists():
            assert run.advance()
        export = Path(run.result.path)
        meta = read_export_catalog(export / "catalog")
        assert meta["level"] == "incremental" and meta["disk.2000.changedAreas"] == f"{VM}.changed"
        for key in (2000, 2001):
            delta = export / meta[f"disk.{key}.filename"]
            check = subprocess.run(["qemu-img", "check", str(delta)], capture_output=True, text=True)
            assert check.returncode == 0, check.stdout + check.stderr
        snap = run.result.snapshot_id
        expected = tmp_path / "expected.vmdk"
        write_vmdk(host.disk_view(vm, 2000, snap), expected, split=False)
        res = run.run()
        assert res.ok and res.level == "incremental"
        out = cat.restore_image_files(res.backup_id or 0, tmp_path / "restored")
        restored_meta = read_export_catalog(out / "catalog")
        assert restored_meta["restoredFrom"] == f"1,{res.backup_id}"
        assert not any(k.endswith(".changedAreas") for k in restored_meta)
        same = subprocess.run(
            ["qemu-img", "compare", str(out / f"{VM}.vmdk"), str(expected)], capture_output=True, text=True
        )
        assert same.returncode == 0, same.stdout + same.stderr


def test_a_differential_builds_on_the_full_and_chains_restore(tmp_path: Path) -> None:
    host = esxi()
    vm = host.find_vm(VM)
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        full = incremental(proxy, cat)
        vm.guest.write_bytes("C:\\one.txt", b"1" * 100_000)
        inc = incremental(proxy, cat)
        vm.guest.write_bytes("C:\\two.txt", b"2" * 100_000)
        diff = incremental(proxy, cat, "differential")
        vm.guest.write_bytes("C:\\three.txt", b"3" * 100_000)
        inc2 = incremental(proxy, cat)
        assert cat.chain(inc.backup_id or 0) == [full.backup_id, inc.backup_id]
        assert cat.chain(diff.backup_id or 0) == [full.backup_id, diff.backup_id]
        assert cat.chain(inc2.backup_id or 0) == [full.backup_id, diff.backup_id, inc2.backup_id]
        # the differential holds both files' changes: it stored at least what the incremental did
        assert (diff.bytes_stored or 0) >= (inc.bytes_stored or 0)
        # a chain with a member that is not complete cannot be restored
        cat.db.execute("UPDATE backups SET status = 'failed' WHERE id = ?", (diff.backup_id,))
        with pytest.raises(Exception, match="needs backup"):
            cat.restore_image_files(inc2.backup_id or 0, tmp_path / "x")


def test_a_delta_larger_than_one_extent_is_exported_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vcbsim.simulator.disk as disk_pkg

    monkeypatch.setattr(disk_pkg, "SPLIT_EXTENT_SIZE", 0)  # any change counts as "more than 2 GiB"
    host = esxi()
    vm = host.find_vm(VM)
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        incremental(proxy, cat)
        vm.guest.write_bytes("C:\\split.bin", b"s" * 200_000)
        run = proxy.run(f"name:{VM}", "fullvm", catalog=cat, kind="incremental")
        assert run.advance()
        expected = snapshot_disks(host, vm, run.result.snapshot_id or "")
        assert run.advance()  # WF-1f: the delta export
        names = sorted(p.name for p in Path(run.result.path or "").iterdir())
        assert f"{VM}-s001.vmdk" in names and f"{VM}.changed" in names
        res = run.run()
        assert res.ok and res.level == "incremental"
        assert {f.name for f in cat.image_files(res.backup_id or 0)} == {"catalog", f"{VM}.vmx"}
        assert restored_disks(cat, res.backup_id or 0, tmp_path / "r") == expected


def test_a_scheduled_incremental_image_job(tmp_path: Path) -> None:
    from vcbsim.reference import Job, JobScheduler, Schedule

    host = esxi()
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        sched = JobScheduler(proxy, cat)
        now = host.clock.now
        sched.add(Job("nightly", (f"name:{VM}",), "fullvm", Schedule(now + 60, every=86400, count=3), kind="incremental"))
        runs = sched.run_until(now + 3 * 86400)
        assert [r.result.level if r.result else r.error for r in runs] == ["full", "incremental", "incremental"]
        assert [h["type"] for h in sched.history("nightly")] == ["fullvm/incremental"] * 3
        assert [b.base_id for b in cat.backups()] == [None, 1, 2]
    assert check_trace(host.trace.events, profile="esxi-7.0").ok


def test_a_failed_enable_is_reported_and_the_backup_is_a_full_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vcbsim.simulator import make_fault

    def refuse(self: Any, moref: str) -> None:
        raise make_fault("TaskInProgress", "Another task is already in progress.")

    monkeypatch.setattr(InProcessHostClient, "enable_change_tracking", refuse)
    host = esxi()
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        res = incremental(proxy, cat)
        said(host, res, "not active on disks 2000, 2001")
        assert any("could not enable changed block tracking" in n and "TaskInProgress" in n for n in res.notes)
        assert [(s.op, s.ok) for s in res.steps][:1] == [("enable-change-tracking", False)]
        assert check_trace(host.trace.events, profile="esxi-7.0").ok
        # without a medium nothing is enabled: there is nothing to build on
        monkeypatch.undo()
        bare = proxy.run(f"name:{VM}", "fullvm", kind="incremental")
        assert bare.advance() and bare.advance()  # WF-1, WF-1f
        assert bare.result.level == "full" and "no backup medium" in bare.result.fallback
        assert bare.run().ok and host.find_vm(VM).change_tracking is False
