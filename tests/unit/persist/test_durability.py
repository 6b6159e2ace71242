"""The durability model (docs/architecture.md): failed writes, real faults, damage, recovery."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyVmomi import vim, vmodl

from vcbsim.simulator._errors import StateError
from vcbsim.simulator._host import Host, MiB
from vcbsim.simulator._persist import HOST_FILE, QUARANTINE, STATE_SUFFIX
from vcbsim.simulator.disk import _persistent
from vcbsim.simulator.disk._persistent import FailingIO, PersistentLayeredDisk

G = 65536


@pytest.fixture
def full_disk() -> Iterator[FailingIO]:
    seam = FailingIO()
    previous = _persistent.use_io(seam)
    try:
        yield seam
    finally:
        _persistent.use_io(previous)


def reopen(host: Host, d: Path) -> Host:
    assert host.store is not None
    host.store.close()
    return Host(datastore_dir=d)


def dev(host: Host, name: str, n: int = 0) -> object:
    vm = host.find_vm(name)
    return host.guest_device(vm, vm.disks[n].key)


@pytest.mark.parametrize("layer", ["flat", "redo"])
def test_a_write_that_hits_a_full_disk_does_not_poison_later_ones(
    tmp_path: Path, full_disk: FailingIO, layer: str
) -> None:
    """ENOSPC in the middle of a write: NoDiskSpace, the model as before, no torn record left;
    writes acknowledged after space is freed survive a restart."""
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    vm = host.add_vm("w", disks=[4 * MiB], power_state="poweredOff")
    disk = vm.disks[0].disk
    disk.write(0, b"1" * 1000)
    if layer == "redo":
        host.create_snapshot(vm, "s")
    before = disk.read(0, 4 * MiB)
    full_disk.full = True
    with pytest.raises(vim.fault.NoDiskSpace) as info:
        disk.write(G - 100, b"2" * (2 * G))
    assert info.value.datastore == "datastore1" and "[datastore1] w/" in info.value.file
    full_disk.full = False
    assert disk.read(0, 4 * MiB) == before  # the failed write left no trace in the model
    disk.write(3 * G, b"3" * 5000)  # acknowledged after space was freed
    disk.write(10, b"4" * 10)
    expected = disk.read(0, 4 * MiB)
    again = reopen(host, d)
    assert again.recovery_report is not None and again.recovery_report.clean, (
        again.recovery_report
    )
    assert again.find_vm("w").disks[0].disk.read(0, 4 * MiB) == expected


def test_a_failed_snapshot_does_not_exist_after_a_restart(
    tmp_path: Path, full_disk: FailingIO
) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    vm = host.add_vm("s", disks=[4 * MiB], power_state="poweredOff")
    vm.disks[0].disk.write(0, b"a" * 100)
    full_disk.full = True
    with pytest.raises(vim.fault.NoDiskSpace):
        host.create_snapshot(vm, "nope")
    full_disk.full = False
    assert host.find_vm("s").snapshots() == []  # rolled back in memory too
    vm.disks[0].disk.write(100, b"b" * 100)
    live = vm.disks[0].disk.read(0, 4 * MiB)
    again = reopen(host, d)
    vm2 = again.find_vm("s")
    assert vm2.snapshots() == [] and vm2.disks[0].disk.read(0, 4 * MiB) == live


def test_a_failed_removal_did_not_happen(tmp_path: Path, full_disk: FailingIO) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    vm = host.add_vm("r", disks=[4 * MiB], power_state="poweredOff")
    vm.disks[0].disk.write(0, b"a" * G)
    host.create_snapshot(vm, "keep")
    vm.disks[0].disk.write(0, b"b" * 10)
    full_disk.full = True
    with pytest.raises(vim.fault.NoDiskSpace):
        host.remove_snapshot(vm, "keep")
    full_disk.full = False
    vm = host.find_vm("r")
    assert [s.name for s in vm.snapshots()] == ["keep"]
    at = host.disk_view(vm, vm.disks[0].key, vm.snapshots()[0]).read(0, 20)
    assert at == b"a" * 20
    again = reopen(host, d)
    vm2 = again.find_vm("r")
    assert [s.name for s in vm2.snapshots()] == ["keep"]
    assert vm2.disks[0].disk.read(0, 20) == b"b" * 10 + b"a" * 10
    again.remove_snapshot(vm2, "keep")  # with space, the removal works
    assert reopen(again, d).find_vm("r").snapshots() == []


def test_a_vm_that_does_not_fit_is_not_created(tmp_path: Path, full_disk: FailingIO) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    full_disk.full = True
    with pytest.raises(vim.fault.NoDiskSpace):
        host.add_vm("big", disks=[4 * MiB])
    full_disk.full = False
    assert host.vms == {} and not (d / "datastore1" / "big").exists()
    host.add_vm("big", disks=[4 * MiB])  # and once there is space, it is
    assert [vm.name for vm in reopen(host, d).vms.values()] == ["big"]


def test_an_io_error_is_a_file_fault(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    vm = host.add_vm("e", disks=[4 * MiB], power_state="poweredOff")
    previous = _persistent.use_io(FailingIO(probability=1.0, code=errno.EIO))
    try:
        with pytest.raises(vim.fault.FileFault) as info:
            vm.disks[0].disk.write(0, b"x")
    finally:
        _persistent.use_io(previous)
    assert "Input/output error" in info.value.msg


def test_a_disk_too_big_for_the_file_system_is_file_too_large(tmp_path: Path) -> None:
    """A flat extent the file system cannot hold (EFBIG): FileTooLarge, and no VM."""
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    with pytest.raises(vim.fault.FileTooLarge):
        host.add_vm("huge", disks=[2**63 - 512])
    assert host.vms == {} and not (d / "datastore1" / "huge").exists()


# -- damage ------------------------------------------------------------------------------------


def two_vms(d: Path) -> Host:
    host = Host(datastore_dir=d)
    for name in ("a", "b"):
        vm = host.add_vm(name, disks=[4 * MiB], power_state="poweredOff")
        vm.disks[0].disk.write(0, name.encode() * 5000)
        host.create_snapshot(vm, "s1")
        vm.disks[0].disk.write(G, name.encode() * 100)
    return host


@pytest.mark.parametrize(
    ("kind", "file", "reason"),
    [
        ("delete", "a-flat.vmdk", "missing"),
        ("truncate", "a-flat.vmdk", "truncated from outside"),
        ("delete", "a-000001-delta.vmdk", "missing"),
        ("flip", "a-000001-delta.vmdk", "damaged region"),
        ("delete", f"a{STATE_SUFFIX}", "missing"),
        ("shape", f"a{STATE_SUFFIX}", "expected 'disks' to be a JSON array"),
    ],
)
def test_damage_makes_one_vm_inaccessible_and_is_reported_with_its_file(
    tmp_path: Path, kind: str, file: str, reason: str
) -> None:
    d = tmp_path / "ds"
    host = two_vms(d)
    b_live = host.find_vm("b").disks[0].disk.read(0, 4 * MiB)
    assert host.store is not None
    host.store.close()
    path = d / "datastore1" / "a" / file
    if kind == "delete":
        path.unlink()
    elif kind == "truncate":
        os.truncate(path, 1000)
    elif kind == "flip":
        raw = bytearray(path.read_bytes())
        raw[24 + 32 + 7] ^= 0x55
        path.write_bytes(bytes(raw))
    else:
        doc = json.loads(path.read_text())
        doc["disks"] = {"not": "a list"}
        path.write_text(json.dumps(doc))
    files_before = {p: p.read_bytes() for p in (d / "datastore1" / "a").iterdir()}
    again = Host(datastore_dir=d)
    report = again.recovery_report
    assert report is not None
    assert [e["vm"] for e in report.errors] == ["a"]
    assert report.errors[0]["file"] == f"datastore1/a/{file}"
    assert reason in report.errors[0]["reason"]
    assert any(f"datastore1/a/{file}" in line for line in report.problems())
    # it stays in the inventory, inaccessible or invalid, refusing operations
    vm_a = again.find_vm("a")
    expected_state = "inaccessible" if reason == "missing" else "invalid"
    assert vm_a.connection_state == expected_state and vm_a.disks == []
    assert report.errors[0]["state"] == expected_state
    with pytest.raises(vim.fault.InvalidState, match=expected_state):
        again.create_snapshot(vm_a, "x")
    assert again.dump()["recovery"]["errors"][0]["file"] == f"datastore1/a/{file}"
    assert any(
        e.kind == "note" and f"datastore1/a/{file}" in e.details["text"] for e in again.trace
    )
    # the other VM works, the damaged one's files are exactly as they were
    vm_b = again.find_vm("b")
    assert vm_b.disks[0].disk.read(0, 4 * MiB) == b_live
    again.create_snapshot(vm_b, "s2")
    assert {p: p.read_bytes() for p in (d / "datastore1" / "a").iterdir()} == files_before
    # still reported after another restart (it stays registered)
    third = reopen(again, d)
    assert third.recovery_report is not None
    assert [e["vm"] for e in third.recovery_report.errors] == ["a"]
    assert third.find_vm("a").moref == vm_a.moref


def test_a_damaged_ctk_resets_tracking_so_the_old_change_id_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = Host("esxi-7.0", datastore_dir=d)
    vm = host.add_vm("c", disks=[4 * MiB], power_state="poweredOff")
    host.reconfigure(vm, change_tracking=True)
    snap = host.create_snapshot(vm, "base")
    vm.disks[0].disk.write(0, b"x" * 100)
    change_id = host.change_id(vm, vm.disks[0].key, snap)
    assert change_id is not None
    host.query_changed_disk_areas(vm, None, vm.disks[0].key, 0, change_id)  # accepted now
    assert host.store is not None
    host.store.close()
    ctk = d / "datastore1" / "c" / "c-ctk.log"
    raw = bytearray(ctk.read_bytes())
    raw[16 + 3] ^= 0xFF  # the first record
    ctk.write_bytes(bytes(raw))
    again = Host("esxi-7.0", datastore_dir=d)
    report = again.recovery_report
    assert report is not None and any("change tracking reset" in r for r in report.repairs)
    assert [q["file"] for q in report.quarantined] == ["datastore1/c/c-ctk.log"]
    assert (d / report.quarantined[0]["moved_to"]).read_bytes() == bytes(raw)  # kept aside
    vm2 = again.find_vm("c")
    with pytest.raises(vmodl.fault.InvalidArgument):
        again.query_changed_disk_areas(vm2, None, vm2.disks[0].key, 0, change_id)


def test_a_renamed_vm_folder_is_no_split_brain(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = two_vms(d)
    a_live = host.find_vm("a").disks[0].disk.read(0, 4 * MiB)
    assert host.store is not None
    host.store.close()
    os.rename(d / "datastore1" / "a", d / "datastore1" / "a-renamed")
    again = Host(datastore_dir=d)
    report = again.recovery_report
    assert report is not None
    assert [(e["vm"], e["file"]) for e in report.errors] == [("a", f"datastore1/a/a{STATE_SUFFIX}")]
    assert [u["file"] for u in report.unaccounted] == [f"datastore1/a-renamed/a{STATE_SUFFIX}"]
    assert again.find_vm("a").connection_state == "inaccessible"
    with pytest.raises(Exception, match="not a name used|not used on this host"):
        again.add_vm("a", disks=[MiB])  # the name is still taken by the registered VM
    third = reopen(again, d)  # a second restart changes nothing
    assert third.recovery_report is not None and len(third.recovery_report.errors) == 1
    assert third.store is not None
    third.store.close()
    os.rename(d / "datastore1" / "a-renamed", d / "datastore1" / "a")
    back = Host(datastore_dir=d)
    assert back.recovery_report is not None and not back.recovery_report.errors
    assert back.find_vm("a").disks[0].disk.read(0, 4 * MiB) == a_live
    assert [s.name for s in back.find_vm("a").snapshots()] == ["s1"]


def test_a_damaged_host_state_is_quarantined_and_the_vms_load(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = two_vms(d)
    assert host.store is not None
    host.store.close()
    (d / HOST_FILE).write_text('{"clock": "soon"}')
    again = Host(datastore_dir=d)
    report = again.recovery_report
    assert report is not None and sorted(report.vms) == ["a", "b"]
    assert [q["file"] for q in report.quarantined] == [HOST_FILE]
    assert (d / QUARANTINE).is_dir()
    vm = again.add_vm("c", disks=[MiB])  # moref counters rebuilt from the VMs
    assert vm.moref not in {again.find_vm("a").moref, again.find_vm("b").moref}


def test_two_hosts_on_one_directory_get_one_clear_line(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    Host(datastore_dir=d)
    with pytest.raises(StateError) as info:
        Host(datastore_dir=d)
    text = str(info.value)
    assert "in use by another vcbsim" in text and "host.store" not in text and "\n" not in text


def test_the_disk_refuses_writes_when_a_failed_write_cannot_be_undone(tmp_path: Path) -> None:
    disk = PersistentLayeredDisk(4 * MiB, tmp_path)
    disk.base.label = "f.vmdk"
    disk.freeze()
    disk.top.label = "f-000001.vmdk"
    disk.write(0, b"ok")
    previous = _persistent.use_io(_CannotCut(probability=1.0))  # even the cut fails
    try:
        with pytest.raises(vim.fault.NoDiskSpace):
            disk.write(G, b"torn")
    finally:
        _persistent.use_io(previous)
    assert disk.fenced is not None
    with pytest.raises(vim.fault.FileFault):
        disk.write(2 * G, b"refused")
    assert disk.read(0, 2) == b"ok"


class _CannotCut(FailingIO):
    def ftruncate(self, fd: int, length: int) -> None:
        raise OSError(errno.EIO, "Input/output error")
