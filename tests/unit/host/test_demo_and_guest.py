"""The demo inventory, guests on virtual disks, and quiesced snapshots through the host."""

from __future__ import annotations

import pytest
from pyVmomi import vim

from vcbsim.simulator import FaultRule, Host

WIN = "win2003-sql"
LIN = "rhel5-web"


@pytest.fixture
def host() -> Host:
    return Host.demo()


def test_demo_inventory_has_the_documented_guests(host: Host) -> None:
    win = host.find_vm(f"name:{WIN}")
    assert host.find_vm("ipaddr:192.0.2.11") is win
    assert host.find_vm(f"uuid:{win.uuid}") is win
    assert host.find_vm(f"moref:{win.moref}") is win
    assert [v.name for v in win.guest.mounted] == ["C:", "D:"]
    assert [v.label for v in win.guest.unmounted] == ["RECOVERY"]
    lin = host.find_vm(LIN)
    assert lin.os_family == "linux" and lin.guest.read_text("/etc/hostname") == "rhel5-web\n"


def test_files_live_on_blocks_and_snapshot_shows_old_files(host: Host) -> None:
    vm = host.find_vm(WIN)
    fs = host.guest_fs(vm)
    d_disk = vm.disks[1]
    base_grains = d_disk.disk.top.grain_count
    snap = host.create_snapshot(vm, "_VCB-BACKUP_", quiesce=True)
    fs.write_text(r"D:\Data\orders.csv", "changed during backup\r\n")
    fs.write_text(r"d:\data\NEW.txt", "new file\r\n")
    # the writes landed in the redo log of disk 2, not in its base
    assert d_disk.disk.top.grain_count > 0
    assert snap.layers[d_disk.key].grain_count == base_grains
    old = host.guest_fs_at(vm, snap)
    assert old.read_text(r"D:\Data\orders.csv").startswith("id,item,qty")
    assert not old.exists(r"D:\Data\NEW.txt")
    host.remove_snapshot(vm, snap)
    assert fs.read_text(r"D:\DATA\orders.csv") == "changed during backup\r\n"
    assert d_disk.disk.top is snap.layers[d_disk.key]


#: The demo's Windows VSS guest per profile: 3.5 U1 has no VSS, so the SYNC driver and hostd's
#: legacy pair; on 3.5 U2 VSS runs backupScripts.d alone; Tools of 2010 on run both (R21).
DEMO_RUNS = {
    "esx-3.5u1": [("pre-freeze-script.bat", "freeze"), ("post-thaw-script.bat", "thaw")],
    "esx-3.5u2": [
        ("10-sql-flush.bat", "freeze"), ("20-app-pause.bat", "freeze"),
        ("20-app-pause.bat", "thaw"), ("10-sql-flush.bat", "thaw"),
    ],
    "esxi-7.0": [
        ("pre-freeze-script.bat", "freeze"), ("10-sql-flush.bat", "freeze"), ("20-app-pause.bat", "freeze"),
        ("20-app-pause.bat", "thaw"), ("10-sql-flush.bat", "thaw"), ("post-thaw-script.bat", "thaw"),
    ],
}


@pytest.mark.parametrize("profile", sorted(DEMO_RUNS))
def test_quiesced_snapshot_runs_demo_scripts_in_order(profile: str) -> None:
    host = Host.demo(profile)
    vm = host.find_vm(WIN)
    snap = host.create_snapshot(vm, "q", quiesce=True)
    runs = [(e.details["path"].rsplit("\\", 1)[-1], e.details["arg"]) for e in host.trace.of_kind("script.run")]
    assert runs == DEMO_RUNS[profile]
    assert snap.quiesced
    log = host.guest_fs(vm).read_text(r"C:\vcb-quiesce.log")
    assert ("sql freeze" in log) == (profile != "esx-3.5u1")
    assert ("legacy-pre freeze" in log) == (profile != "esx-3.5u2")


def test_failing_prefreeze_leaves_no_snapshot_or_redo_log(host: Host) -> None:
    vm = host.find_vm(WIN)
    host.guest_fs(vm).write_text(
        r"C:\Program Files\VMware\VMware Tools\backupScripts.d\15-broken.bat", "[freeze] exit 3\r\n"
    )
    files_before = [d.file_name for d in vm.disks]
    with pytest.raises(vim.fault.ApplicationQuiesceFault):
        host.create_snapshot(vm, "_VCB-BACKUP_", quiesce=True)
    assert vm.snapshots() == []
    assert [d.file_name for d in vm.disks] == files_before
    assert all(len(d.disk.chain()) == 1 for d in vm.disks)
    assert not vm.tools.frozen
    args = [(e.details["path"].rsplit("\\", 1)[-1], e.details["arg"]) for e in host.trace.of_kind("script.run")]
    assert args[-1:] == [("10-sql-flush.bat", "freezeFail")]  # F1 (3.5 U2, VSS: the directory alone)


def test_failing_prefreeze_on_7_0_gives_the_legacy_post_thaw_freeze_fail_last() -> None:
    host = Host.demo("esxi-7.0")
    vm = host.find_vm(WIN)
    host.guest_fs(vm).write_text(
        r"C:\Program Files\VMware\VMware Tools\backupScripts.d\15-broken.bat", "[freeze] exit 3\r\n"
    )
    with pytest.raises(vim.fault.ApplicationQuiesceFault):
        host.create_snapshot(vm, "_VCB-BACKUP_", quiesce=True)
    args = [(e.details["path"].rsplit("\\", 1)[-1], e.details["arg"]) for e in host.trace.of_kind("script.run")]
    assert args[-2:] == [("10-sql-flush.bat", "freezeFail"), ("post-thaw-script.bat", "freezeFail")]  # F1: legacy post-thaw runs last


def test_slow_snapshot_rolls_back_with_filesystem_quiesce_fault(host: Host) -> None:
    vm = host.find_vm(WIN)
    host.add_fault(FaultRule("snapshot.create", target=WIN, delay=30.0))
    with pytest.raises(vim.fault.FilesystemQuiesceFault):
        host.create_snapshot(vm, "_VCB-BACKUP_", quiesce=True)
    assert vm.snapshots() == [] and all(len(d.disk.chain()) == 1 for d in vm.disks)
    assert host.trace.of_kind("snapshot.rollback")


def test_datastore_files_are_real_text(host: Host) -> None:
    vm = host.find_vm(WIN)
    host.create_snapshot(vm, "one")
    files = host.datastore_files(vm)
    names = sorted(p.rsplit("/", 1)[-1] for p in files)
    assert "win2003-sql.vmx" in names and "win2003-sql-000001.vmdk" in names
    delta = files[vm.disks[0].file_name]().decode()
    assert 'parentFileNameHint="win2003-sql.vmdk"' in delta
    assert "-delta.vmdk" in delta


def test_reset_of_demo_host_rebuilds_demo(host: Host) -> None:
    host.create_snapshot(WIN, "x")
    host.reset()
    assert sorted(v.name for v in host.vms.values()) == [LIN, WIN]
    assert host.find_vm(WIN).snapshots() == []
