"""VirtualMachine properties, snapshot tasks, changed block tracking and datastore files."""

from __future__ import annotations

import base64
import http.client
import ssl

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from vcbsim.simulator.soap import serve

from .conftest import SCRIPTS_D, connect, disks, find_vm, small_host

PC = vmodl.query.PropertyCollector


@pytest.fixture
def vm(si):
    return find_vm(si, "win-db")


def _disk(vm):
    return disks(vm)[0]


def test_vm_config_and_disk_backing(vm, small):
    cfg = vm.config
    assert cfg.name == "win-db" and cfg.uuid == small.find_vm("win-db").uuid
    assert cfg.files.vmPathName == "[datastore1] win-db/win-db.vmx"
    disk = _disk(vm)
    assert isinstance(disk.backing, vim.vm.device.VirtualDisk.FlatVer2BackingInfo)
    assert disk.backing.fileName == "[datastore1] win-db/win-db.vmdk"
    assert disk.backing.diskMode == "persistent" and disk.backing.thinProvisioned is True
    assert disk.backing.parent is None
    assert disk.backing.datastore.name == "datastore1"
    assert disk.capacityInKB * 1024 == disk.capacityInBytes == 64 * 1024**2
    assert disk.controllerKey == 1000 and disk.unitNumber == 0
    assert disk.storageIOAllocation.limit == -1 and disk.storageIOAllocation.shares.shares == 1000
    controller = next(d for d in cfg.hardware.device if d.key == disk.controllerKey)
    assert isinstance(controller, vim.vm.device.VirtualSCSIController)
    assert disk.key in controller.device


def test_vm_runtime_guest_summary_capability(vm, si):
    assert vm.runtime.powerState == "poweredOn" and vm.runtime.consolidationNeeded is False
    assert vm.runtime.host._moId == "ha-host"
    assert vm.guest.toolsRunningStatus == "guestToolsRunning" and vm.guest.ipAddress == "10.0.0.11"
    assert vm.summary.config.vmPathName == "[datastore1] win-db/win-db.vmx"
    assert vm.summary.runtime.powerState == "poweredOn"
    assert vm.capability.quiescedSnapshotsSupported is True
    assert [d.name for d in vm.datastore] == ["datastore1"]
    assert vm.guestHeartbeatStatus == "green"
    assert vm.layout.disk[0].diskFile == ["[datastore1] win-db/win-db.vmdk"]
    off = find_vm(si, "lin-web")
    assert off.runtime.powerState == "poweredOff" and off.guestHeartbeatStatus == "gray"
    assert off.guest.toolsStatus == "toolsNotInstalled" and off.guest.ipAddress is None


def test_snapshot_create_and_remove_with_wait_for_task(vm, server):
    assert vm.snapshot is None
    task = vm.CreateSnapshot_Task("backup", "nightly", False, True)
    assert WaitForTask(task) == "success"
    info = task.info
    assert info.entity == vm and info.entityName == "win-db"
    assert info.name.info.name == "CreateSnapshot" and info.descriptionId == "VirtualMachine.createSnapshot"
    assert info.state == "success" and info.startTime <= info.completeTime
    assert info.queueTime <= info.startTime
    snap = info.result
    assert isinstance(snap, vim.vm.Snapshot)
    tree = vm.snapshot.rootSnapshotList[0]
    assert (tree.name, tree.description, tree.quiesced, tree.state) == ("backup", "nightly", True, "poweredOff")
    assert tree.snapshot == snap and tree.vm == vm and vm.snapshot.currentSnapshot == snap
    assert snap.vm == vm and snap.childSnapshot == []
    # the redo log: backing moves to <base>-000001.vmdk, parent chains to the base
    disk = _disk(vm)
    assert disk.backing.fileName == "[datastore1] win-db/win-db-000001.vmdk"
    assert disk.backing.parent.fileName == "[datastore1] win-db/win-db.vmdk"
    assert _disk_of(snap.config).backing.fileName == "[datastore1] win-db/win-db.vmdk"
    chain = vm.layoutEx.disk[0].chain
    names = {f.key: f.name for f in vm.layoutEx.file}
    assert [names[u.fileKey[0]] for u in chain] == [
        "[datastore1] win-db/win-db.vmdk",
        "[datastore1] win-db/win-db-000001.vmdk",
    ]
    assert "[datastore1] win-db/win-db-000001-delta.vmdk" in names.values()

    remove = snap.RemoveSnapshot_Task(removeChildren=False)
    assert WaitForTask(remove) == "success"
    assert remove.info.entity == vm  # the VM, not the snapshot (vcsim's mistake)
    assert remove.info.descriptionId == "vm.Snapshot.remove"
    assert vm.snapshot is None
    assert _disk(vm).backing.fileName == "[datastore1] win-db/win-db.vmdk"
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        snap.config  # noqa: B018 - the snapshot is gone
    # WaitForTask destroyed its filters: nothing leaks per cycle
    assert server.endpoint.scoped.filters == {}


def _disk_of(config):
    return next(d for d in config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))


def test_nested_snapshots_revert_and_remove_all(vm):
    WaitForTask(vm.CreateSnapshot_Task("one", "", False, False))
    WaitForTask(vm.CreateSnapshot_Task("two", "", False, False))
    root = vm.snapshot.rootSnapshotList[0]
    assert root.name == "one" and root.childSnapshotList[0].name == "two"
    backing = _disk(vm).backing
    assert backing.fileName.endswith("win-db-000002.vmdk")
    assert backing.parent.fileName.endswith("win-db-000001.vmdk")
    assert backing.parent.parent.fileName.endswith("win-db.vmdk")
    revert = root.snapshot.RevertToSnapshot_Task()
    assert WaitForTask(revert) == "success"
    assert revert.info.entity == vm
    assert vm.snapshot.currentSnapshot == root.snapshot
    assert WaitForTask(vm.RemoveAllSnapshots_Task()) == "success"
    assert vm.snapshot is None and vm.rootSnapshot == []


def test_failed_task_raises_the_hosts_fault(vm, small):
    # the guest's freeze script fails: the host's quiescing fault, the snapshot rolled back
    small.find_vm("win-db").tools.guest.write_bytes(SCRIPTS_D + r"\freeze.bat", b"[freeze] exit 3\r\n", parents=True)
    task = vm.CreateSnapshot_Task("q", "", False, True)
    with pytest.raises(vim.fault.ApplicationQuiesceFault) as info:
        WaitForTask(task)
    assert "Custom quiesce script failed" in info.value.msg
    assert task.info.state == "error" and task.info.entity == vm
    assert vm.snapshot is None


def test_quiesce_on_a_vm_without_tools_fails(si):
    lin = find_vm(si, "lin-web")
    assert WaitForTask(lin.PowerOnVM_Task()) == "success"  # running, but no Tools to quiesce it
    with pytest.raises(vim.fault.ApplicationQuiesceFault) as info:
        WaitForTask(lin.CreateSnapshot_Task("q", "", False, True))
    assert "VMware Tools is not currently available" in info.value.msg
    assert lin.snapshot is None


def test_power_operations_and_invalid_power_state(si):
    off = find_vm(si, "lin-web")
    with pytest.raises(vim.fault.InvalidPowerState):
        WaitForTask(off.PowerOffVM_Task())
    assert WaitForTask(off.PowerOnVM_Task()) == "success"
    assert off.runtime.powerState == "poweredOn"


def test_task_states_go_queued_running_success(vm, si):
    pc = si.content.propertyCollector
    task = vm.CreateSnapshot_Task("watched", "", False, False)
    pc.CreateFilter(
        PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=task)], propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info.state"])]),
        True,
    )
    seen: list[str] = []
    version = ""
    while "success" not in seen and "error" not in seen:
        update = pc.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=5))
        assert update is not None
        version = update.version
        seen.extend(c.val for fs in update.filterSet for o in fs.objectSet for c in o.changeSet)
    assert seen[-1] == "success"
    order = ["queued", "running", "success"]
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)


def test_finished_tasks_are_retained_within_a_bound():
    from pyVim.connect import Disconnect, SmartConnect

    with serve(small_host(), task_retention=5) as running:
        conn = SmartConnect(host="127.0.0.1", port=running.port, user="user", pwd="pass", disableSslCertValidation=True)
        vm = find_vm(conn, "win-db")
        tasks = []
        for i in range(12):
            t = vm.CreateSnapshot_Task(f"s{i}", "", False, False)
            WaitForTask(t)
            WaitForTask(vm.snapshot.currentSnapshot.RemoveSnapshot_Task(False))
            tasks.append(t)
        assert len(running.endpoint.tasks) == 5
        with pytest.raises(vmodl.fault.ManagedObjectNotFound):
            tasks[0].info  # noqa: B018
        assert len(conn.content.taskManager.recentTask) == 5
        assert running.endpoint.scoped.filters == {}
        Disconnect(conn)


def test_change_tracking_and_query_changed_disk_areas():
    host = small_host("esxi-7.0")  # changed block tracking needs ESX 4.0 or later
    guest_disk = host.guest_device(host.find_vm("win-db"), 2000)
    guest_disk.write(0, b"\x01" * 100)  # data before tracking: "*" reports it as allocated
    guest_disk.write(3 * 65536, b"\x02" * 100)
    with serve(host) as running:
        for si in connect(running):
            vm = find_vm(si, "win-db")
            assert vm.config.changeTrackingEnabled is False
            assert _disk(vm).backing.changeId is None
            spec = vim.vm.ConfigSpec(changeTrackingEnabled=True)
            assert WaitForTask(vm.ReconfigVM_Task(spec)) == "success"
            assert vm.config.changeTrackingEnabled is True
            WaitForTask(vm.CreateSnapshot_Task("base", "", False, False))
            snap = vm.snapshot.currentSnapshot
            change_id = _disk(vm).backing.changeId
            assert change_id and "/" in change_id
            # "*" lists allocated areas; callers loop on startOffset + length until the capacity
            capacity = _disk(vm).capacityInBytes
            offset, areas = 0, []
            while offset < capacity:
                info = vm.QueryChangedDiskAreas(snap, 2000, offset, "*")
                assert info.startOffset == offset and info.length > 0
                areas.extend((a.start, a.length) for a in info.changedArea)
                offset = info.startOffset + info.length
            assert [start for start, _ in areas] == [0, 3 * 65536]
            guest_disk.write(10 * 65536, b"\x03" * 100)  # the guest writes after the snapshot
            changed = vm.QueryChangedDiskAreas(None, 2000, 0, change_id)
            assert [(a.start, a.length) for a in changed.changedArea] == [(10 * 65536, 65536)]
            with pytest.raises(vmodl.fault.InvalidArgument):
                vm.QueryChangedDiskAreas(snap, 2000, 0, "52 00/1")
            with pytest.raises(vmodl.fault.ManagedObjectNotFound):
                vm.QueryChangedDiskAreas(vim.vm.Snapshot("snapshot-999", vm._stub), 2000, 0, "*")


def test_reconfigure_of_anything_else_is_refused(vm):
    with pytest.raises(vmodl.fault.NotSupported):
        vm.ReconfigVM_Task(vim.vm.ConfigSpec(memoryMB=4096))


# --- datastore files ----------------------------------------------------------------------


def _get(server, path, headers=None, method="GET", body=None):
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ssl._create_unverified_context())
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


VMX = "/folder/win-db/win-db.vmx?dcPath=ha-datacenter&dsName=datastore1"


def test_datastore_file_get_requires_a_session(server, si):
    status, headers, _ = _get(server, VMX)
    assert status == 401 and "Basic" in headers["WWW-Authenticate"]
    cookie = si._stub.cookie.split(";")[0]
    status, headers, body = _get(server, VMX, {"Cookie": cookie})
    assert status == 200 and b'displayName = "win-db"' in body
    assert headers["Content-Length"] == str(len(body))
    status, _, body = _get(server, VMX, {"Cookie": 'vmware_soap_session="forged"'})
    assert status == 401


def test_datastore_file_range_and_basic_auth(server, small):
    auth = {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()}
    vmx = small.find_vm("win-db").vmx_text().encode()
    status, headers, body = _get(server, VMX, {**auth, "Range": "bytes=0-10"})
    assert status == 206 and body == vmx[:11] and headers["Content-Range"] == f"bytes 0-10/{len(vmx)}"
    status, _, body = _get(server, VMX, {**auth, "Range": "bytes=-2"})
    assert status == 206 and body == vmx[-2:]
    status, _, _ = _get(server, VMX, {**auth, "Range": "bytes=9999-"})
    assert status == 416
    status, _, _ = _get(server, "/folder/win-db/none.vmdk?dcPath=ha-datacenter&dsName=datastore1", auth)
    assert status == 404
    status, _, _ = _get(server, "/folder/../etc/passwd?dcPath=ha-datacenter&dsName=datastore1", auth)
    assert status in (400, 404)
    bad = {"Authorization": "Basic " + base64.b64encode(b"user:nope").decode()}
    assert _get(server, VMX, bad)[0] == 401


def test_datastore_file_put_then_get(server):
    auth = {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()}
    path = "/folder/scripts/pre-freeze.bat?dcPath=ha-datacenter&dsName=datastore1"
    status, _, _ = _get(server, path, auth, method="PUT", body=b"exit 0\r\n")
    assert status == 201
    assert server.endpoint.files.uploads[("datastore1", "scripts/pre-freeze.bat")] == b"exit 0\r\n"
    status, _, body = _get(server, path, auth)
    assert status == 200 and body == b"exit 0\r\n"
    status, headers, body = _get(server, path, auth, method="HEAD")
    assert status == 200 and headers["Content-Length"] == "8" and body == b""


def test_a_second_operation_on_a_busy_vm_is_task_in_progress(vm, server):
    with server.endpoint.tasks.hold():  # the first task stays queued
        first = vm.CreateSnapshot_Task("one", "", False, False)
        assert first.info.state == "queued"
        second = vm.CreateSnapshot_Task("two", "", False, False)
        assert second.info.state == "error"
    with pytest.raises(vim.fault.TaskInProgress) as info:
        WaitForTask(second)
    assert info.value.task == first
    assert WaitForTask(first) == "success"
    assert [s.name for s in vm.snapshot.rootSnapshotList] == ["one"]
    # another VM is not affected
    other = vim.VirtualMachine("vm-2", vm._stub)
    assert WaitForTask(other.PowerOnVM_Task()) == "success"
