"""Raw device mappings and independent disk modes per profile, in-process and over SOAP (issue 17).

Rows of the profile table in docs/architecture.md: "raw device mappings", "CBT on RDMs",
"nonpersistent independent disks", "independent disks". Sources are in simulator/_rdm.py and
simulator/_vm.py (``SESSION_REDO_SUFFIX``).
"""

from __future__ import annotations

import base64
import http.client
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from vcbsim.simulator import Host, InvalidInputError
from vcbsim.simulator._host import GiB
from vcbsim.simulator.soap import serve

PROFILES = ("esx-3.5u1", "esx-3.5u2", "esxi-7.0")
GRAIN = 65536


def _rdm_vm(host: Host, **kw: Any):
    """System disk, a physical RDM (disk 1) and a virtual RDM (disk 2)."""
    return host.add_vm("db", disks=[GiB, GiB, GiB], disk_rdms=[None, "physicalMode", "virtualMode"], **kw)


# -- row: raw device mappings ------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_physical_rdm_is_not_snapshotted_and_reads_the_lun_as_it_is(profile: str) -> None:
    host = Host(profile)
    vm = _rdm_vm(host)
    sys_disk, prdm, vrdm = vm.disks
    assert (prdm.rdm, prdm.disk_mode) == ("physicalMode", "independent_persistent")
    assert prdm.device_name.startswith("/vmfs/devices/disks/naa.6") and prdm.lun_uuid
    assert 'scsi0:1.mode = "independent-persistent"' in vm.vmx_text()
    dev = host.guest_device(vm, prdm.key)
    dev.write(0, b"before")
    snap = host.create_snapshot(vm, "_VCB-BACKUP_")
    assert set(snap.layers) == {sys_disk.key, vrdm.key}  # no redo log on the physical RDM
    assert len(prdm.disk.chain()) == 1 and prdm.file_name == "[datastore1] db/db_1.vmdk"
    assert "db_1" not in vm.vmsd_text()
    dev.write(0, b"after!")
    # its data is not in the snapshot: "as of" the snapshot it is what the LUN holds now
    assert host.read_disk(vm, prdm.key, 0, 6, snapshot=snap) == b"after!"
    host.revert_to_snapshot(vm, snap)
    assert host.read_disk(vm, prdm.key, 0, 6) == b"after!"


@pytest.mark.parametrize("profile", PROFILES)
def test_virtual_rdm_is_snapshotted_like_a_disk(profile: str) -> None:
    host = Host(profile)
    vm = _rdm_vm(host)
    vrdm = vm.disks[2]
    assert (vrdm.rdm, vrdm.disk_mode) == ("virtualMode", "persistent")
    dev = host.guest_device(vm, vrdm.key)
    dev.write(0, b"old")
    snap = host.create_snapshot(vm, "_VCB-BACKUP_")
    assert vrdm.key in snap.layers and vrdm.file_name == "[datastore1] db/db_2-000001.vmdk"
    dev.write(0, b"new")
    assert host.read_disk(vm, vrdm.key, 0, 3, snapshot=snap) == b"old"
    host.remove_snapshot(vm, snap)  # the commit writes the redo log into the LUN
    assert len(vrdm.disk.chain()) == 1 and host.read_disk(vm, vrdm.key, 0, 3) == b"new"
    snap = host.create_snapshot(vm, "s2")
    dev.write(0, b"xyz")
    host.revert_to_snapshot(vm, snap)
    assert host.read_disk(vm, vrdm.key, 0, 3) == b"new"


@pytest.mark.parametrize("profile", PROFILES)
def test_rdm_mapping_files_on_the_datastore(profile: str) -> None:
    """``<disk>.vmdk`` names its extent ``-rdmp.vmdk`` / ``-rdm.vmdk`` (VMFSRDM); the LUN
    takes no room on the datastore (ghettoVCB-style tools grep the descriptor)."""
    host = Host(profile)
    vm = _rdm_vm(host)
    used = host.datastores["datastore1"].used
    for d in vm.disks[1:]:
        host.guest_device(vm, d.key).write(0, b"z" * 4 * GRAIN)
    assert host.datastores["datastore1"].used == used  # written to the LUNs
    files = host.datastore_files(vm)
    prdm = files["[datastore1] db/db_1.vmdk"]().decode()
    vrdm = files["[datastore1] db/db_2.vmdk"]().decode()
    assert 'createType="vmfsPassthroughRawDeviceMap"' in prdm and 'VMFSRDM "db_1-rdmp.vmdk"' in prdm
    assert 'createType="vmfsRawDeviceMap"' in vrdm and 'VMFSRDM "db_2-rdm.vmdk"' in vrdm
    host.create_snapshot(vm, "s")
    delta = host.datastore_files(vm)["[datastore1] db/db_2-000001.vmdk"]().decode()
    assert 'parentFileNameHint="db_2.vmdk"' in delta
    assert "[datastore1] db/db_1-000001.vmdk" not in host.datastore_files(vm)


def test_rdm_input_is_checked() -> None:
    with pytest.raises(InvalidInputError, match="RDM compatibility mode"):
        Host().add_vm("x", disks=[GiB], disk_rdms=["rawMode"])
    with pytest.raises(InvalidInputError, match="physical RDM"):
        Host().add_vm("x", disks=[GiB], disk_rdms=["physicalMode"], disk_modes=["independent_nonpersistent"])
    with pytest.raises(InvalidInputError, match="disk_rdms"):
        Host().add_vm("x", disks=[GiB], disk_rdms=[None, None])


# -- row: changed block tracking on RDMs --------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_cbt_on_rdms(profile: str) -> None:
    """KB 1020128: CBT covers a virtual RDM, not a physical one (CBT itself arrived in 4.0)."""
    host = Host(profile)
    vm = _rdm_vm(host)
    prdm, vrdm = vm.disks[1:]
    if profile != "esxi-7.0":
        with pytest.raises(vmodl.fault.NotSupported):
            host.reconfigure(vm, change_tracking=True)
        return
    host.reconfigure(vm, change_tracking=True)
    base = host.create_snapshot(vm, "base")
    assert host.change_id(vm, vrdm.key, base) is not None
    assert host.change_id(vm, prdm.key, base) is None
    since = host.change_id(vm, vrdm.key, base)
    host.remove_snapshot(vm, base)
    host.guest_device(vm, vrdm.key).write(3 * GRAIN, b"c")
    snap = host.create_snapshot(vm, "incr")
    info = host.query_changed_disk_areas(vm, snap, vrdm.key, 0, since)
    assert info.changed_area == ((3 * GRAIN, GRAIN),)
    # "*" on a LUN: one extent over the whole disk (no VMFS holes to tell allocation by)
    assert host.query_changed_disk_areas(vm, snap, vrdm.key, 0, "*").changed_area == ((0, GiB),)
    sys_disk = vm.disks[0]
    assert host.query_changed_disk_areas(vm, snap, sys_disk.key, 0, "*").changed_area == ()  # a blank disk
    with pytest.raises(vim.fault.FileFault) as exc:
        host.query_changed_disk_areas(vm, snap, prdm.key, 0, "*")
    assert exc.value.file == "[datastore1] db/db_1.vmdk"
    # the fault is a switch (no source shows it): another answer is one field away
    import dataclasses

    other = Host(dataclasses.replace(host.profile, physical_rdm_cbt_fault="NotSupported"))
    vm2 = _rdm_vm(other)
    other.reconfigure(vm2, change_tracking=True)
    with pytest.raises(vmodl.fault.NotSupported):
        other.query_changed_disk_areas(vm2, other.create_snapshot(vm2, "s"), vm2.disks[1].key, 0, "*")


# -- row: nonpersistent independent disks --------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_nonpersistent_disk_discards_writes_at_power_off(profile: str) -> None:
    host = Host(profile)
    vm = host.add_vm(
        "vm1", disks=[GiB, GiB, GiB], power_state="poweredOff",
        disk_modes=["persistent", "independent_nonpersistent", "independent_persistent"],
    )
    _sys, nonp, pers = vm.disks
    host.guest_device(vm, nonp.key).write(0, b"golden")  # prepared while powered off: kept
    host.power_on(vm)
    assert nonp.session_redo() is not None and len(nonp.disk.chain()) == 2
    assert nonp.file_name == "[datastore1] vm1/vm1_1.vmdk"  # the backing is the disk itself
    assert 'scsi0:1.mode = "independent-nonpersistent"' in vm.vmx_text()
    used = host.datastores["datastore1"].used
    for d in (nonp, pers):
        host.guest_device(vm, d.key).write(0, b"session")
    assert host.read_disk(vm, nonp.key, 0, 7) == b"session"
    assert host.datastores["datastore1"].used == used + 2 * GRAIN  # the redo log takes room
    assert not any("REDO" in f for f in host.datastore_files(vm))
    host.power_off(vm)
    assert host.read_disk(vm, nonp.key, 0, 6) == b"golden" and len(nonp.disk.chain()) == 1
    assert host.read_disk(vm, pers.key, 0, 7) == b"session"  # persistent: kept
    (ev,) = host.trace.of_kind("disk.discard")
    assert ev.details == {
        "disk": nonp.key, "layer": "[datastore1] vm1/vm1_1.vmdk.REDO", "grains": 1, "reason": "power off",
    }
    host.power_on(vm)  # a new session each time
    host.guest_device(vm, nonp.key).write(0, b"again!")
    host.power_off(vm)
    assert host.read_disk(vm, nonp.key, 0, 6) == b"golden"


@pytest.mark.parametrize("profile", PROFILES)
def test_nonpersistent_disk_discards_writes_at_revert(profile: str) -> None:
    host = Host(profile)
    vm = host.add_vm("vm1", disks=[GiB, GiB], disk_modes=["persistent", "independent_nonpersistent"])
    nonp = vm.disks[1]
    snap = host.create_snapshot(vm, "s")
    assert set(snap.layers) == {vm.disks[0].key}
    host.guest_device(vm, nonp.key).write(0, b"w")
    host.revert_to_snapshot(vm, snap)  # a snapshot without memory: the VM is powered off
    assert vm.power_state == "poweredOff" and host.read_disk(vm, nonp.key, 0, 1) == b"\0"
    assert [e.details["reason"] for e in host.trace.of_kind("disk.discard")] == ["revert"]
    host.power_on(vm)
    # a memory snapshot would not match what a revert leaves on the independent disk
    with pytest.raises(vim.fault.MemorySnapshotOnIndependentDisk):
        host.create_snapshot(vm, "m", memory=True)
    assert [s.name for s in vm.snapshots()] == ["s"]


@pytest.mark.parametrize("profile", PROFILES)
def test_memory_snapshot_refused_with_a_physical_rdm(profile: str) -> None:
    """API 2.0 ``MemorySnapshotOnIndependentDisk``: a physical RDM is independent_persistent."""
    host = Host(profile)
    vm = _rdm_vm(host)
    with pytest.raises(vim.fault.MemorySnapshotOnIndependentDisk) as exc:
        host.create_snapshot(vm, "m", memory=True)
    assert "independent disks" in exc.value.msg and vm.snapshots() == []
    only_virtual = host.add_vm("v", disks=[GiB, GiB], disk_rdms=[None, "virtualMode"])
    assert host.create_snapshot(only_virtual, "m", memory=True).memory


# -- over SOAP: config.hardware.device and /folder -----------------------------------------------


@contextmanager
def _connected(host: Host) -> Iterator[tuple[Any, Any]]:
    with serve(host) as running:
        si = SmartConnect(host="127.0.0.1", port=running.port, user="user", pwd="pass", disableSslCertValidation=True)
        try:
            yield si, running
        finally:
            Disconnect(si)


def _folder(running: Any, path: str, **headers: str) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPSConnection("127.0.0.1", running.port, context=ssl._create_unverified_context())
    auth = {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode(), **headers}
    try:
        conn.request("GET", f"/folder/{path}?dcPath=ha-datacenter&dsName=datastore1", headers=auth)
        resp = conn.getresponse()
        return resp.status, resp.read(), dict(resp.getheaders())
    finally:
        conn.close()


@pytest.mark.parametrize("profile", PROFILES)
def test_rdm_and_disk_mode_backings_over_soap(profile: str) -> None:
    host = Host(profile)
    vm = host.add_vm(
        "db", disks=[GiB, GiB, GiB, GiB], disk_rdms=[None, "physicalMode", "virtualMode", None],
        disk_modes=["persistent", "persistent", "persistent", "independent_nonpersistent"],
    )
    host.guest_device(vm, vm.disks[1].key).write(0, b"LUN-P")
    with _connected(host) as (si, running):
        mo = si.content.searchIndex.FindByInventoryPath("ha-datacenter/vm/db")
        with pytest.raises(vim.fault.MemorySnapshotOnIndependentDisk):
            WaitForTask(mo.CreateSnapshot_Task("with memory", "", True, False))
        WaitForTask(mo.CreateSnapshot_Task("_VCB-BACKUP_", "", False, False))
        disks = [d for d in mo.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        _sys, prdm, vrdm, nonp = (d.backing for d in disks)
        assert isinstance(prdm, vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo)
        assert (prdm.compatibilityMode, prdm.diskMode) == ("physicalMode", "independent_persistent")
        assert prdm.fileName == "[datastore1] db/db_1.vmdk" and prdm.parent is None
        assert prdm.deviceName == vm.disks[1].device_name and prdm.lunUuid == vm.disks[1].lun_uuid
        assert isinstance(vrdm, vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo)
        assert vrdm.compatibilityMode == "virtualMode" and vrdm.fileName == "[datastore1] db/db_2-000001.vmdk"
        assert vrdm.deltaDiskFormat in ("redoLogFormat", "seSparseFormat")
        assert isinstance(vrdm.parent, vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo)
        assert vrdm.parent.fileName == "[datastore1] db/db_2.vmdk"
        # the running VM's nonpersistent disk shows its own file, not the session redo log
        assert nonp.diskMode == "independent_nonpersistent" and nonp.fileName == "[datastore1] db/db_3.vmdk"
        assert nonp.parent is None
        status, text, _ = _folder(running, "db/db_1.vmdk")
        assert status == 200 and b'createType="vmfsPassthroughRawDeviceMap"' in text
        status, data, head = _folder(running, "db/db_1-rdmp.vmdk", Range="bytes=0-4")  # the LUN
        assert status == 206 and data == b"LUN-P" and head["Content-Range"] == f"bytes 0-4/{GiB}"
        assert _folder(running, "db/db_1-flat.vmdk")[0] == 404
        assert _folder(running, "db/db_2.vmdk")[1].count(b'VMFSRDM "db_2-rdm.vmdk"') == 1


@pytest.mark.parametrize("profile", PROFILES)
def test_nonpersistent_disk_hot_added_and_removed(profile: str) -> None:
    """A nonpersistent disk added to a running VM writes to a session redo log at once; removing
    it deletes that redo log (its writes are not kept in the disk file left behind)."""
    from vcbsim.simulator._vmlifecycle import DiskSpec

    host = Host(profile)
    vm = host.add_vm("vm1", disks=[GiB])
    d = host.add_disk(vm, DiskSpec(capacity=GiB, mode="independent_nonpersistent"))
    assert d.session_redo() is not None
    host.guest_device(vm, d.key).write(0, b"temp")
    host.remove_disk(vm, d.key)  # kept as a disk file: the session's writes are not in it
    (ev,) = host.trace.of_kind("disk.discard")
    assert ev.details["reason"] == "disk removed" and ev.details["disk"] == d.key
    assert len(d.disk.chain()) == 1 and d.disk.read(0, 4) == bytes(4)
