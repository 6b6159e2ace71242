"""The real simulated host (``Host.demo()``) served over SOAP, driven by pyVmomi.

What a backup product sees: quiesced snapshots that run the guest's scripts, redo logs with
VMware's names, change ids and changed areas, the host's faults, and the real bytes of the
VM's files over ``/folder``.
"""

from __future__ import annotations

import http.client
import ssl

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from .conftest import disks, find_vm

PC = vmodl.query.PropertyCollector


def test_inventory_of_the_demo_host(host_si, host):
    content = host_si.RetrieveContent()
    assert content.about.version == host.profile.version and content.about.build == host.profile.build
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[PC.TraversalSpec(type=vim.view.ContainerView, path="view")])],
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name", "config.uuid", "snapshot"])],
    )
    result = content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions())
    rows = {
        {p.name: p.val for p in oc.propSet}["name"]: {p.name: p.val for p in oc.propSet} for oc in result.objects
    }
    assert set(rows) == {"win2003-sql", "rhel5-web"}
    assert all("snapshot" not in r for r in rows.values())  # unset, so left out
    assert rows["win2003-sql"]["config.uuid"] == host.find_vm("win2003-sql").uuid
    vm = find_vm(host_si)
    assert vm.snapshot is None  # Fetch of an unset property
    assert [d.capacityInBytes for d in disks(vm)] == [8 * 1024**3, 4 * 1024**3]
    assert disks(vm)[0].backing.fileName == "[datastore1] win2003-sql/win2003-sql.vmdk"
    assert vm.guest.ipAddress == "192.0.2.11" and vm.guest.toolsRunningStatus == "guestToolsRunning"
    assert vm.capability.quiescedSnapshotsSupported is True
    nic = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard))
    assert isinstance(nic, vim.vm.device.VirtualPCNet32)  # ethernet0.virtualDev = "vlance"
    assert nic.backing.deviceName == "VM Network" and nic.macAddress.startswith("00:50:56:")
    assert content.searchIndex.FindByIp(None, "192.0.2.11", True) == vm
    assert content.searchIndex.FindByUuid(None, host.find_vm("rhel5-web").uuid, True).name == "rhel5-web"


def test_quiesced_snapshot_runs_the_scripts_and_adds_redo_logs(host_si, host):
    vm = find_vm(host_si)
    task = vm.CreateSnapshot_Task("_VCB-BACKUP_", "vcb", False, True)
    assert WaitForTask(task) == "success"
    assert task.info.entity == vm
    tree = vm.snapshot.rootSnapshotList[0]
    assert tree.quiesced is True and tree.state == "poweredOff" and tree.name == "_VCB-BACKUP_"
    kinds = [e.kind for e in host.trace.events]
    assert kinds.index("quiesce.start") < kinds.index("snapshot.create") < kinds.index("quiesce.end")
    assert any(e.kind == "script.run" for e in host.trace.events)
    suffix = "-sesparse.vmdk" if host.profile.delta_format == "sesparse" else "-delta.vmdk"
    d0, d1 = disks(vm)
    assert d0.backing.fileName == "[datastore1] win2003-sql/win2003-sql-000001.vmdk"
    assert d1.backing.fileName == "[datastore1] win2003-sql/win2003-sql_1-000001.vmdk"
    assert d0.backing.parent.fileName == "[datastore1] win2003-sql/win2003-sql.vmdk"
    files = {f.name for f in vm.layoutEx.file}
    assert f"[datastore1] win2003-sql/win2003-sql-000001{suffix}" in files
    assert "[datastore1] win2003-sql/win2003-sql-flat.vmdk" in files
    # the snapshot's own config shows the disks as they were
    snap_disks = [d for d in tree.snapshot.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
    assert snap_disks[0].backing.fileName == "[datastore1] win2003-sql/win2003-sql.vmdk"

    assert WaitForTask(tree.snapshot.RemoveSnapshot_Task(False)) == "success"
    assert vm.snapshot is None
    assert disks(vm)[0].backing.fileName == "[datastore1] win2003-sql/win2003-sql.vmdk"
    assert vm.runtime.consolidationNeeded is False
    assert any(e.kind == "snapshot.remove" for e in host.trace.events)


def test_failing_pre_freeze_script_is_application_quiesce_fault(host_si, host):
    host.add_fault(operation="script", target="*", exit_code=3, times=None)
    vm = find_vm(host_si)
    task = vm.CreateSnapshot_Task("q", "", False, True)
    with pytest.raises(vim.fault.ApplicationQuiesceFault):
        WaitForTask(task)
    assert task.info.state == "error" and task.info.entity == vm
    assert vm.snapshot is None


def test_host_faults_reach_the_client(host_si, host):
    vm = find_vm(host_si, "rhel5-web")
    with pytest.raises(vim.fault.InvalidPowerState):
        WaitForTask(vm.PowerOnVM_Task())
    with pytest.raises(vim.fault.InvalidName):
        WaitForTask(vm.CreateSnapshot_Task("", "", False, False))
    assert WaitForTask(vm.PowerOffVM_Task()) == "success"
    assert vm.runtime.powerState == "poweredOff"
    # memory snapshots need a running VM
    with pytest.raises(vim.fault.InvalidPowerState):
        WaitForTask(vm.CreateSnapshot_Task("m", "", True, False))


def test_remove_without_consolidation_then_consolidate(host_si, host):
    vm = find_vm(host_si, "rhel5-web")
    WaitForTask(vm.CreateSnapshot_Task("a", "", False, False))
    snap = vm.snapshot.currentSnapshot
    if not host.profile.api_consolidation:  # API 2.5 has neither (docs/architecture.md, Host profiles)
        with pytest.raises(vmodl.fault.InvalidArgument):
            WaitForTask(snap.RemoveSnapshot_Task(False, False))
        with pytest.raises(vmodl.fault.MethodNotFound):
            WaitForTask(vm.ConsolidateVMDisks_Task())
        return
    WaitForTask(snap.RemoveSnapshot_Task(False, False))
    assert vm.runtime.consolidationNeeded is True
    assert WaitForTask(vm.ConsolidateVMDisks_Task()) == "success"
    assert vm.runtime.consolidationNeeded is False


def test_revert_and_remove_all(host_si):
    vm = find_vm(host_si, "rhel5-web")
    WaitForTask(vm.CreateSnapshot_Task("one", "", False, False))
    WaitForTask(vm.CreateSnapshot_Task("two", "", False, False))
    one = vm.snapshot.rootSnapshotList[0]
    task = one.snapshot.RevertToSnapshot_Task()
    assert WaitForTask(task) == "success" and task.info.entity == vm
    assert vm.snapshot.currentSnapshot == one.snapshot
    assert vm.runtime.powerState == "poweredOff"  # no memory in the snapshot
    assert WaitForTask(vm.RemoveAllSnapshots_Task()) == "success"
    assert vm.snapshot is None


def test_changed_block_tracking_on_esxi(esxi_si, esxi):
    vm = find_vm(esxi_si)
    assert vm.capability.changeTrackingSupported is True
    assert WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(changeTrackingEnabled=True))) == "success"
    assert vm.config.changeTrackingEnabled is True
    assert disks(vm)[0].backing.changeId is None  # active from the next stun on
    WaitForTask(vm.CreateSnapshot_Task("stun", "", False, False))
    WaitForTask(vm.snapshot.currentSnapshot.RemoveSnapshot_Task(False))
    assert disks(vm)[0].backing.changeId is not None
    WaitForTask(vm.CreateSnapshot_Task("full", "", False, False))
    snap = vm.snapshot.currentSnapshot
    disk = disks(vm)[0]
    base_id = disk.backing.changeId
    assert base_id and base_id.count(" ") == 15 and "/" in base_id
    assert disk.backing.deltaDiskFormat == "seSparseFormat"
    # a full backup reads the allocated areas; windows until the capacity
    offset, total = 0, 0
    while offset < disk.capacityInBytes:
        info = vm.QueryChangedDiskAreas(snap, disk.key, offset, "*")
        assert info.startOffset == offset and info.length > 0
        total += sum(a.length for a in info.changedArea)
        offset = info.startOffset + info.length
    assert total > 0
    snap_change_id = next(
        d for d in snap.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)
    ).backing.changeId
    WaitForTask(snap.RemoveSnapshot_Task(False))
    # the guest writes; the next incremental sees the change
    esxi.guest_fs("win2003-sql").write_bytes("C:\\new.txt", b"x" * 200_000)
    WaitForTask(vm.CreateSnapshot_Task("incr", "", False, False))
    snap2 = vm.snapshot.currentSnapshot
    changed = vm.QueryChangedDiskAreas(snap2, disk.key, 0, snap_change_id)
    assert sum(a.length for a in changed.changedArea) >= 200_000
    with pytest.raises(vmodl.fault.InvalidArgument):
        vm.QueryChangedDiskAreas(snap2, disk.key, 0, "00 11/1")


def test_change_tracking_is_not_supported_on_esx35():
    from pyVim.connect import Disconnect, SmartConnect

    from vcbsim.simulator._host import Host
    from vcbsim.simulator.soap import serve

    with serve(Host.demo("esx-3.5u2")) as running:
        si = SmartConnect(host="127.0.0.1", port=running.port, user="user", pwd="pass", disableSslCertValidation=True)
        vm = find_vm(si)
        assert vm.capability.changeTrackingSupported is False
        with pytest.raises(vmodl.fault.NotSupported):
            vm.ReconfigVM_Task(vim.vm.ConfigSpec(changeTrackingEnabled=True))
        with pytest.raises(vmodl.fault.NotSupported):
            vm.QueryChangedDiskAreas(None, 2000, 0, "*")
        Disconnect(si)


def _get(server, path, cookie, headers=None, method="GET", body=None):
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ssl._create_unverified_context())
    try:
        conn.request(method, path, body=body, headers={"Cookie": cookie, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_vm_files_over_http_are_the_hosts_bytes(host_si, host_server, host):
    cookie = host_si._stub.cookie.split(";")[0]
    vm = host.find_vm("win2003-sql")
    q = "?dcPath=ha-datacenter&dsName=datastore1"
    status, _, body = _get(host_server, f"/folder/win2003-sql/win2003-sql.vmx{q}", cookie)
    assert status == 200 and body == vm.vmx_text().encode()
    WaitForTask(find_vm(host_si).CreateSnapshot_Task("s", "", False, False))
    status, _, body = _get(host_server, f"/folder/win2003-sql/win2003-sql-000001.vmdk{q}", cookie)
    assert status == 200 and b'parentFileNameHint="win2003-sql.vmdk"' in body
    if host.profile.delta_format == "vmfssparse":
        # the redo log's extent is a COWD sparse extent (what VMware's tools read)
        status, _, body = _get(host_server, f"/folder/win2003-sql/win2003-sql-000001-delta.vmdk{q}", cookie,
                               {"Range": "bytes=0-3"})
        assert status == 206 and body == b"COWD"
    status, _, body = _get(host_server, f"/folder/win2003-sql/win2003-sql.vmsd{q}", cookie)
    assert status == 200 and b'displayName = "s"' in body
    # the flat extent is the base disk's bytes: the MBR signature the guest build wrote
    status, headers, body = _get(host_server, f"/folder/win2003-sql/win2003-sql-flat.vmdk{q}", cookie,
                                 {"Range": "bytes=510-511"})
    assert status == 206 and body == b"\x55\xaa"
    assert headers["Content-Range"] == f"bytes 510-511/{8 * 1024**3}"
    # uploads are kept; generated files cannot be overwritten
    status, _, _ = _get(host_server, f"/folder/win2003-sql/notes.txt{q}", cookie, method="PUT", body=b"hello")
    assert status == 201
    assert _get(host_server, f"/folder/win2003-sql/notes.txt{q}", cookie)[2] == b"hello"
    status, _, _ = _get(host_server, f"/folder/win2003-sql/win2003-sql.vmx{q}", cookie, method="PUT", body=b"x")
    assert status == 400
    assert _get(host_server, f"/folder/win2003-sql/win2003-sql.vmx{q}", cookie)[2] == vm.vmx_text().encode()


def test_snapshot_cycles_do_not_accumulate_state(host_si, host_server):
    vm = find_vm(host_si, "rhel5-web")
    for i in range(30):
        WaitForTask(vm.CreateSnapshot_Task(f"c{i}", "", False, False))
        WaitForTask(vm.snapshot.currentSnapshot.RemoveSnapshot_Task(False))
    ep = host_server.endpoint
    assert ep.scoped.filters == {}
    assert len(ep.tasks) <= ep.tasks.retention
    assert ep.tasks.completed == 60 and ep.tasks.failed == 0


def test_datastore_browser_lists_the_vm_files(host_si, host):
    content = host_si.RetrieveContent()
    ds = content.rootFolder.childEntity[0].datastore[0]
    browser = ds.browser
    assert browser == content.rootFolder.childEntity[0].hostFolder.childEntity[0].host[0].datastoreBrowser
    spec = vim.host.DatastoreBrowser.SearchSpec(
        matchPattern=["*.vmx", "*.vmdk"], details=vim.host.DatastoreBrowser.FileInfo.Details(fileSize=True)
    )
    task = browser.SearchDatastore_Task("[datastore1] win2003-sql", spec)
    assert WaitForTask(task) == "success"
    result = task.info.result
    assert result.folderPath == "[datastore1] win2003-sql"
    sizes = {f.path: f.fileSize for f in result.file}
    assert sizes["win2003-sql.vmx"] == len(host.find_vm("win2003-sql").vmx_text().encode())
    assert sizes["win2003-sql-flat.vmdk"] == 8 * 1024**3
    assert "win2003-sql.vmsd" not in sizes  # not matched
    root = browser.SearchDatastore_Task("[datastore1]", None)
    WaitForTask(root)
    folders = {f.path for f in root.info.result.file if isinstance(f, vim.host.DatastoreBrowser.FolderInfo)}
    assert folders == {"win2003-sql", "rhel5-web"}
    deep = browser.SearchDatastoreSubFolders_Task("[datastore1]", vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*.vmx"]))
    WaitForTask(deep)
    found = {(r.folderPath, f.path) for r in deep.info.result for f in r.file}
    assert ("[datastore1] rhel5-web", "rhel5-web.vmx") in found
    missing = browser.SearchDatastore_Task("[datastore1] nothing-here", None)
    with pytest.raises(vim.fault.FileNotFound):
        WaitForTask(missing)
    assert missing.info.entity == ds
    with pytest.raises(vim.fault.InvalidDatastorePath):
        browser.SearchDatastore_Task("no brackets", None)


@pytest.mark.parametrize("fault", ["TaskInProgress", "FileLocked", "InvalidState"])
def test_a_fault_injected_by_name_reaches_the_client_as_that_fault(host_si, host, fault):
    """Injected faults with required properties a rule cannot know (``TaskInProgress.task``)
    still reach pyVmomi as themselves, not as the endpoint's ``SystemError``."""
    vm = find_vm(host_si)
    assert WaitForTask(vm.CreateSnapshot_Task("s", "", False, False)) == "success"
    host.add_fault(operation="snapshot.remove", target="*", fault=fault, times=1)
    task = vm.snapshot.rootSnapshotList[0].snapshot.RemoveSnapshot_Task(False)
    with pytest.raises(getattr(vim.fault, fault)) as caught:
        WaitForTask(task)
    assert type(caught.value).__name__.endswith(fault)
