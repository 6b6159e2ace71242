"""Inventory, property collector, views and search index, through pyVmomi."""

from __future__ import annotations

import http.client
import ssl
import threading

import pytest
from pyVmomi import vim, vmodl

from .conftest import find_vm

PC = vmodl.query.PropertyCollector


def _vm_view(si):
    content = si.RetrieveContent()
    return content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)


def _view_spec(view, paths, **opts):
    traverse = PC.TraversalSpec(name="traverseEntities", path="view", skip=False, type=vim.view.ContainerView)
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[traverse])],
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=paths, **opts)],
    )


def test_container_view_lists_the_vms(si):
    view = _vm_view(si)
    assert sorted(vm.name for vm in view.view) == ["lin-web", "win-db"]
    assert view.type == ["VirtualMachine"] and view.recursive is True
    view.DestroyView()
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        view.view  # noqa: B018


def test_container_view_of_hosts_and_datastores(si):
    content = si.RetrieveContent()
    hosts = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True).view
    assert [h._moId for h in hosts] == ["ha-host"]
    stores = content.viewManager.CreateContainerView(content.rootFolder, [vim.Datastore], True).view
    assert [d.name for d in stores] == ["datastore1"]
    flat = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], False).view
    assert flat == []  # VMs are not direct children of the root folder


def test_retrieve_properties_ex_pages_with_tokens(si):
    pc = si.content.propertyCollector
    spec = _view_spec(_vm_view(si), ["name", "runtime.powerState"])
    first = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=1))
    assert len(first.objects) == 1 and first.token
    second = pc.ContinueRetrievePropertiesEx(first.token)
    assert len(second.objects) == 1 and second.token is None
    got = {
        {p.name: p.val for p in oc.propSet}["name"]: {p.name: p.val for p in oc.propSet}["runtime.powerState"]
        for oc in first.objects + second.objects
    }
    assert got == {"win-db": "poweredOn", "lin-web": "poweredOff"}
    with pytest.raises(vmodl.fault.InvalidArgument):
        pc.ContinueRetrievePropertiesEx(first.token)  # a token is used once


def test_retrieve_without_paging_and_legacy_calls(si):
    pc = si.content.propertyCollector
    spec = _view_spec(_vm_view(si), ["name"])
    result = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions())
    assert result.token is None and len(result.objects) == 2
    assert len(pc.RetrieveProperties([spec])) == 2
    assert len(pc.RetrieveContents([spec])) == 2


def test_invalid_property_path_is_invalid_property(si):
    pc = si.content.propertyCollector
    with pytest.raises(vmodl.query.InvalidProperty):
        pc.RetrievePropertiesEx([_view_spec(_vm_view(si), ["config.noSuchField"])], PC.RetrieveOptions())
    with pytest.raises(vmodl.query.InvalidProperty):
        pc.RetrievePropertiesEx([_view_spec(_vm_view(si), ["bogus"])], PC.RetrieveOptions())


def test_all_properties_of_a_vm(si):
    pc = si.content.propertyCollector
    result = pc.RetrievePropertiesEx([_view_spec(_vm_view(si), [], all=True)], PC.RetrieveOptions())
    names = {p.name for p in result.objects[0].propSet}
    assert {"name", "config", "runtime", "guest", "summary", "capability", "layoutEx", "datastore", "parent"} <= names
    assert "snapshot" not in names  # unset properties are left out


def test_classic_traversal_from_the_root_folder(si):
    """The traversal specs of the pyVmomi community samples (no views)."""
    content = si.RetrieveContent()
    folder_to_child = PC.TraversalSpec(
        name="folderTraversal", type=vim.Folder, path="childEntity", skip=False,
        selectSet=[PC.SelectionSpec(name="folderTraversal"), PC.SelectionSpec(name="dcToVm")],
    )
    dc_to_vm = PC.TraversalSpec(
        name="dcToVm", type=vim.Datacenter, path="vmFolder", skip=False,
        selectSet=[PC.SelectionSpec(name="folderTraversal")],
    )
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=content.rootFolder, skip=False, selectSet=[folder_to_child, dc_to_vm])],
        propSet=[PC.PropertySpec(type=vim.ManagedEntity, pathSet=["name"])],
    )
    names = {oc.propSet[0].val for oc in content.propertyCollector.RetrieveContents([spec])}
    assert {"ha-folder-root", "ha-datacenter", "vm", "win-db", "lin-web"} <= names


def test_inventory_tree_has_parent_and_name_up_to_the_datacenter(si, small):
    content = si.RetrieveContent()
    vm = content.searchIndex.FindByInventoryPath("ha-datacenter/vm/win-db")
    chain = []
    obj = vm
    while obj is not None:
        chain.append((type(obj).__name__, obj.name))
        obj = obj.parent
    assert chain == [
        ("vim.VirtualMachine", "win-db"),
        ("vim.Folder", "vm"),
        ("vim.Datacenter", "ha-datacenter"),
        ("vim.Folder", "ha-folder-root"),
    ]
    dc = content.rootFolder.childEntity[0]
    assert dc.vmFolder.name == "vm" and dc.hostFolder.name == "host" and dc.datastoreFolder.name == "datastore"
    compute = dc.hostFolder.childEntity[0]
    assert isinstance(compute, vim.ComputeResource)
    host = compute.host[0]
    assert host.parent == compute and host.name == "esx01.vcbsim.test"
    assert host.runtime.connectionState == "connected"
    assert compute.resourcePool.name == "Resources"
    assert sorted(v.name for v in compute.resourcePool.vm) == ["lin-web", "win-db"]
    ds = dc.datastore[0]
    store = small.datastores["datastore1"]
    assert ds.summary.name == "datastore1" and ds.summary.capacity == store.capacity > 0
    assert ds.summary.freeSpace == store.free
    assert ds.parent == dc.datastoreFolder
    assert {v.name for v in ds.vm} == {"win-db", "lin-web"}
    assert vm.resourcePool == compute.resourcePool


def test_search_index(si, small):
    idx = si.content.searchIndex
    win, lin = small.find_vm("win-db"), small.find_vm("lin-web")
    assert idx.FindByUuid(None, win.uuid, True).name == "win-db"
    assert idx.FindByUuid(None, lin.instance_uuid, True, True).name == "lin-web"
    assert idx.FindByUuid(None, lin.instance_uuid, True) is None  # not a BIOS uuid
    assert idx.FindByUuid(None, "42000000-0000-0000-0000-0000000000ff", True) is None
    assert idx.FindByIp(None, "10.0.0.11", True).name == "win-db"
    assert idx.FindByDnsName(None, "win-db.example.test", True).name == "win-db"
    assert idx.FindByIp(None, "10.0.0.99", True) is None
    assert idx.FindByInventoryPath("ha-datacenter/vm/nope") is None
    assert idx.FindByInventoryPath("ha-datacenter").name == "ha-datacenter"
    assert idx.FindByInventoryPath("ha-datacenter/host/esx01.vcbsim.test")._moId == "ha-compute-res"
    dc = idx.FindByInventoryPath("ha-datacenter")
    assert idx.FindChild(dc.vmFolder, "lin-web").name == "lin-web"
    assert idx.FindByDatastorePath(dc, "[datastore1] lin-web/lin-web.vmx").name == "lin-web"
    assert [v.name for v in idx.FindAllByUuid(None, lin.uuid.upper(), True)] == ["lin-web"]


def test_find_by_ip_and_dns_only_while_tools_run(si):
    idx = si.content.searchIndex
    vm = idx.FindByIp(None, "10.0.0.11", True)
    from pyVim.task import WaitForTask

    WaitForTask(vm.PowerOffVM_Task())
    assert idx.FindByIp(None, "10.0.0.11", True) is None
    assert idx.FindByDnsName(None, "win-db.example.test", True) is None


def test_fetch_of_unset_property_is_an_empty_fetch_response(si, server):
    vm = find_vm(si, "lin-web")
    assert vm.snapshot is None
    assert vm.rootSnapshot == []
    # on the wire: an empty <FetchResponse/>, nothing typed wrongly
    cookie = si._stub.cookie.split(";")[0]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        '<Fetch xmlns="urn:vim25"><_this type="VirtualMachine">vm-2</_this><prop>snapshot</prop></Fetch>'
        "</soapenv:Body></soapenv:Envelope>"
    )
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ssl._create_unverified_context())
    conn.request("POST", "/sdk", body.encode(), {"Cookie": cookie, "SOAPAction": "urn:vim25/8.0.3.0"})
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    assert resp.status == 200
    assert '<FetchResponse xmlns="urn:vim25"></FetchResponse>' in text
    assert "versionId" not in text


def test_fetch_of_unknown_property_is_invalid_property(si):
    vm = find_vm(si, "lin-web")
    with pytest.raises(vmodl.query.InvalidProperty):
        vm._stub.InvokeAccessor(vm, vmodl.query.PropertyCollector.Filter._GetPropertyInfo("spec"))


def test_wait_for_updates_ex_reports_enter_modify_and_times_out(si):
    pc = si.content.propertyCollector
    vm = find_vm(si, "lin-web")
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=vm)], propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.powerState"])]
    )
    f = pc.CreateFilter(spec, True)
    first = pc.WaitForUpdatesEx("", PC.WaitOptions(maxWaitSeconds=0))
    update = first.filterSet[0].objectSet[0]
    assert update.kind == "enter" and update.changeSet[0].val == "poweredOff"
    assert pc.WaitForUpdatesEx(first.version, PC.WaitOptions(maxWaitSeconds=0)) is None
    vm.PowerOnVM_Task()  # not WaitForTask: it would consume this session's updates
    nxt = pc.WaitForUpdatesEx(first.version, PC.WaitOptions(maxWaitSeconds=5))
    change = nxt.filterSet[0].objectSet[0]
    assert change.kind == "modify" and change.changeSet[0].val == "poweredOn"
    with pytest.raises(vmodl.query.InvalidCollectorVersion):
        pc.WaitForUpdatesEx("999", PC.WaitOptions(maxWaitSeconds=0))
    assert [x._moId for x in pc.filter] == [f._moId]
    f.Destroy()
    assert pc.filter == []


def _waiting_filter(si):
    """A filter on a VM's name and the version after its first report: a wait from there
    blocks until something changes."""
    pc = si.content.propertyCollector
    vm = find_vm(si, "lin-web")
    pc.CreateFilter(PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vm)],
                                  propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])]), False)
    return pc, pc.WaitForUpdatesEx("", PC.WaitOptions(maxWaitSeconds=0)).version


def test_a_cancel_before_the_wait_cancels_the_next_wait(si):
    """The API reference: if no wait is outstanding, the next one is cancelled (the cancel is
    not lost to a wait that starts after it)."""
    pc, version = _waiting_filter(si)
    pc.CancelWaitForUpdates()
    with pytest.raises(vmodl.fault.RequestCanceled):
        pc.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=30))
    # consumed: the wait after it is an ordinary one
    assert pc.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=0)) is None


def test_cancel_ends_a_wait_whichever_call_runs_first(si):
    """A waiter on one connection and a cancel on another, in whatever order the threads are
    scheduled: the wait ends with RequestCanceled (no sleep orders them)."""
    pc, version = _waiting_filter(si)
    outcome: list[object] = []

    def waiter() -> None:
        try:
            outcome.append(pc.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=60)))
        except vmodl.fault.RequestCanceled as exc:
            outcome.append(exc)

    t = threading.Thread(target=waiter)
    t.start()
    pc.CancelWaitForUpdates()
    t.join(60)
    assert not t.is_alive()
    assert isinstance(outcome[0], vmodl.fault.RequestCanceled)


def test_filters_and_views_belong_to_their_session(si, server):
    from pyVim.connect import Disconnect, SmartConnect

    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    f = content.propertyCollector.CreateFilter(_view_spec(view, ["name"]), False)
    other = SmartConnect(host="127.0.0.1", port=server.port, user="user", pwd="pass", disableSslCertValidation=True)
    try:
        with pytest.raises(vmodl.fault.ManagedObjectNotFound):
            vim.view.ContainerView(view._moId, other._stub).view  # noqa: B018
        with pytest.raises(vmodl.fault.ManagedObjectNotFound):
            PC.Filter(f._moId, other._stub).Destroy()
        assert other.content.propertyCollector.filter == []
    finally:
        Disconnect(other)
    assert len(view.view) == 2 and content.propertyCollector.filter == [f]
    # logging out drops the session's filters and views
    content.sessionManager.Logout()
    assert server.endpoint.scoped.filters == {} and server.endpoint.scoped.views == {}


def test_a_collector_of_its_own_does_not_disturb_the_default_one(si, server):
    """govmomi waits for tasks on a collector it creates; versions stay per collector."""
    from pyVim.task import WaitForTask

    content = si.RetrieveContent()
    default = content.propertyCollector
    vm = content.searchIndex.FindByInventoryPath("ha-datacenter/vm/lin-web")
    default.CreateFilter(
        PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vm)],
                      propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.powerState"])]),
        False,
    )
    version = default.WaitForUpdatesEx("", PC.WaitOptions(maxWaitSeconds=0)).version
    own = default.CreatePropertyCollector()
    assert own._moId != default._moId
    assert WaitForTask(vm.PowerOnVM_Task(), pc=own) == "success"
    assert own.filter == []  # WaitForTask destroyed its filter on the new collector
    # the default collector still reports the change since *its* version
    update = default.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=5))
    assert update.filterSet[0].objectSet[0].changeSet[0].val == "poweredOn"
    own.CreateFilter(
        PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vm)], propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])]),
        False,
    )
    own.DestroyPropertyCollector()
    assert not any(f.collector == own._moId for f in server.endpoint.scoped.filters.values())
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        own.WaitForUpdatesEx("", PC.WaitOptions(maxWaitSeconds=0))
    with pytest.raises(vmodl.fault.NotSupported):
        default.DestroyPropertyCollector()


def test_networks_and_network_adapters(si, small):
    content = si.RetrieveContent()
    dc = content.rootFolder.childEntity[0]
    nets = dc.networkFolder.childEntity
    assert [n.name for n in nets] == ["VM Network"]
    assert dc.network == nets and nets[0].parent == dc.networkFolder
    assert nets[0].summary.accessible is True
    assert sorted(v.name for v in nets[0].vm) == ["lin-web", "win-db"]
    vm = content.searchIndex.FindByInventoryPath("ha-datacenter/vm/win-db")
    assert vm.network == nets
    nic = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard))
    assert isinstance(nic, vim.vm.device.VirtualPCNet32)  # ethernet0.virtualDev = "vlance"
    assert nic.backing.deviceName == "VM Network" and nic.backing.network == nets[0]
    uuid_tail = small.find_vm("win-db").uuid.replace("-", "")[-6:]
    assert nic.macAddress == "00:50:56:" + ":".join(uuid_tail[i : i + 2] for i in (0, 2, 4))
    assert nic.connectable.connected is True
    assert vm.guest.net[0].ipAddress == ["10.0.0.11"] and vm.guest.net[0].macAddress == nic.macAddress
    assert vm.summary.config.numEthernetCards == 1
    off = content.searchIndex.FindByInventoryPath("ha-datacenter/vm/lin-web")
    assert off.guest.net == []  # no Tools, no guest NIC info


def test_a_pyvmomi_client_in_the_same_process_does_not_change_what_the_server_answers():
    """pyVmomi's client, reading ``vm.datastore`` with ``Fetch``, rewrites the shared property
    info to ``ManagedObject[]`` ("legacy behaviour"); the server keeps the declared types."""
    from pyVim.connect import Disconnect, SmartConnect

    from vcbsim.simulator import Host
    from vcbsim.simulator.soap import serve

    with serve(Host.demo(), http=True) as running:
        si = SmartConnect(host="127.0.0.1", port=running.port, user="user", pwd="pass", protocol="http")
        try:
            vm = find_vm(si, "win2003-sql")
            assert [d.name for d in vm.datastore] == ["datastore1"]  # the client's Fetch
            ep = running.endpoint
            with ep.lock:
                value = ep.registry.require(vim.VirtualMachine(vm._moId)).get("datastore")
            assert type(value).Item is vim.Datastore
        finally:
            Disconnect(si)
