"""What an NFC lease and an OVF descriptor carry besides the data, read through pyVmomi as
OVF tools read them: ``deviceUrl`` (``key``, ``importKey``, ``sslThumbprint``, ``targetId``),
``mode`` / ``capabilities`` (API 6.7), the manifest's ``populatedSize`` (API 4.1) and the
descriptor's hardware version, data sizes, adapter and ``extraconfig`` export option."""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyVmomi import vim

from vcbsim.simulator._host import Host
from vcbsim.simulator._ovf import parse_ovf
from vcbsim.simulator.soap import serve

from .conftest import MiB, connect, small_host


@pytest.fixture
def esxi() -> Host:
    host = small_host("esxi-7.0")
    dev = host.guest_device(host.find_vm("lin-web"), host.find_vm("lin-web").disks[0].key)
    dev.write(3 * MiB, b"\x5a" * (200 * 1024))  # 4 grains of 64 KiB touched (unaligned start)
    host.find_vm("lin-web").extra_config["backup.tag"] = "nightly"
    return host


def _ready(lease: Any) -> Any:
    for _ in range(200):  # the export task runs right after the reply
        if lease.state != vim.HttpNfcLease.State.initializing:
            break
        time.sleep(0.01)
    assert lease.state == vim.HttpNfcLease.State.ready, lease.error
    return lease


def _served_thumbprint(port: int) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return ":".join(f"{b:02X}" for b in hashlib.sha1(der).digest())  # noqa: S324 - vSphere's format


@pytest.fixture
def served(esxi: Host) -> Iterator[tuple[Any, Any]]:
    with serve(esxi) as server:
        for si in connect(server):
            yield server, si


def test_device_urls_name_the_device_and_pin_the_served_certificate(served: tuple[Any, Any], esxi: Host) -> None:
    server, si = served
    vm = si.content.searchIndex.FindByInventoryPath("ha-datacenter/vm/lin-web")
    lease = _ready(vm.ExportVm())
    assert lease.mode == "pushOrGet"
    assert lease.capabilities.pullModeSupported is False and lease.capabilities.corsSupported is False
    url, nvram = lease.info.deviceUrl
    assert url.key == f"/{vm._moId}/VirtualLsiLogicController0:0"
    assert url.importKey == "/lin-web/VirtualLsiLogicController0:0"
    assert url.targetId == "disk-0.vmdk" and url.disk is True and url.fileSize is None
    # an API 6.7+ host also exports the VM's .nvram: a file (disk false) whose size is given
    assert (nvram.key, nvram.disk, nvram.fileSize) == (f"/{vm._moId}/nvram", False, 8684)
    assert nvram.url.rsplit("/", 1)[1] == "disk-1.nvram"
    thumb = _served_thumbprint(server.port)
    assert len(thumb) == 59 and url.sslThumbprint == thumb == nvram.sslThumbprint
    lease.HttpNfcLeaseAbort()


def test_plain_http_leases_have_no_thumbprint(esxi: Host) -> None:
    with serve(esxi, http=True) as server:
        for si in connect_http(server):
            vm = si.content.searchIndex.FindByInventoryPath("ha-datacenter/vm/lin-web")
            lease = _ready(vm.ExportVm())
            assert [u.sslThumbprint for u in lease.info.deviceUrl] == ["", ""]
            lease.HttpNfcLeaseAbort()


def connect_http(server: Any) -> Iterator[Any]:
    from pyVim.connect import Disconnect, SmartConnect

    si = SmartConnect(protocol="http", host="127.0.0.1", port=server.port, user="user", pwd="pass")
    try:
        yield si
    finally:
        Disconnect(si)


def test_manifest_gives_the_data_size_and_the_descriptor_describes_the_vm(served: tuple[Any, Any], esxi: Host) -> None:
    server, si = served
    vm = si.content.searchIndex.FindByInventoryPath("ha-datacenter/vm/lin-web")
    host_vm = esxi.find_vm("lin-web")
    lease = _ready(vm.ExportVm())
    url, nvram_url = lease.info.deviceUrl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(url.url), context=ctx) as resp:  # noqa: S310 - loopback
        body = resp.read()
    [entry] = lease.HttpNfcLeaseGetManifest()  # the .nvram is not downloaded yet
    assert entry.key == url.key and entry.size == len(body) and entry.capacity == 64 * MiB
    # 200 KiB written from 3 MiB touch grains 48..51: four 64 KiB grains of data
    assert entry.populatedSize == 4 * 64 * 1024
    with urllib.request.urlopen(urllib.request.Request(nvram_url.url), context=ctx) as resp:  # noqa: S310 - loopback
        nvram = resp.read()
    assert len(nvram) == nvram_url.fileSize
    _, nvram_entry = lease.HttpNfcLeaseGetManifest()
    assert (nvram_entry.key, nvram_entry.disk, nvram_entry.size) == (nvram_url.key, False, len(nvram))
    assert nvram_entry.sha1 == hashlib.sha1(nvram).hexdigest()  # noqa: S324 - the manifest's algorithm
    files = [vim.OvfManager.OvfFile(deviceId=url.key, path="lin-web-disk1.vmdk", size=len(body)),
             vim.OvfManager.OvfFile(deviceId=nvram_url.key, path="lin-web-file1.nvram", size=len(nvram))]
    plain = si.content.ovfManager.CreateDescriptor(obj=vm, cdp=vim.OvfManager.CreateDescriptorParams(ovfFiles=files))
    full = si.content.ovfManager.CreateDescriptor(obj=vm, cdp=vim.OvfManager.CreateDescriptorParams(
        ovfFiles=files, exportOption=["extraconfig"]))
    lease.HttpNfcLeaseComplete()
    system = parse_ovf(plain.ovfDescriptor)
    assert f"vmx-{host_vm.hw_version:02d}" in plain.ovfDescriptor and system.hw_version == host_vm.hw_version
    [disk] = system.disks
    assert (disk.href, disk.size, disk.capacity, disk.populated) == ("lin-web-disk1.vmdk", len(body), 64 * MiB,
                                                                     4 * 64 * 1024)
    assert system.nic_type == "PCNet32" and system.network == "VM Network"
    assert system.nvram == ("lin-web-file1.nvram", 8684) and 'vmw:key="nvram"' in plain.ovfDescriptor
    assert system.extra_config == {} and "backup.tag" not in plain.ovfDescriptor
    assert parse_ovf(full.ovfDescriptor).extra_config == host_vm.extra_config
    assert "vmw:ExtraConfig" in full.ovfDescriptor
    assert [o.option for o in si.content.ovfManager.ovfExportOption] == ["extraconfig"]


def test_import_spec_file_items_are_disks_the_import_makes(served: tuple[Any, Any], esxi: Host) -> None:
    """A host makes the disks itself and takes their content by POST: ``create`` false, CIM
    type 17; the spec carries the OVF's hardware version and the provisioning asked for."""
    _server, si = served
    vm = si.content.searchIndex.FindByInventoryPath("ha-datacenter/vm/lin-web")
    ovf = si.content.ovfManager.CreateDescriptor(obj=vm, cdp=vim.OvfManager.CreateDescriptorParams()).ovfDescriptor
    pool = vim.ResourcePool("ha-root-pool", si._stub)
    res = si.content.ovfManager.CreateImportSpec(
        ovfDescriptor=ovf, resourcePool=pool, datastore=vm.datastore[0],
        cisp=vim.OvfManager.CreateImportSpecParams(entityName="copy", diskProvisioning="thick"))
    assert not res.error
    [item] = res.fileItem
    assert (item.deviceId, item.create, item.cimType) == ("/copy/VirtualLsiLogicController0:0", False, 17)
    config = res.importSpec.configSpec
    assert config.version == f"vmx-{esxi.find_vm('lin-web').hw_version:02d}"
    [disk] = [c.device for c in config.deviceChange if isinstance(c.device, vim.vm.device.VirtualDisk)]
    assert disk.backing.thinProvisioned is False
    bad = si.content.ovfManager.CreateImportSpec(
        ovfDescriptor=ovf, resourcePool=pool, datastore=vm.datastore[0],
        cisp=vim.OvfManager.CreateImportSpecParams(entityName="copy", diskProvisioning="monolithicSparse"))
    assert bad.importSpec is None and isinstance(bad.error[0], vim.fault.OvfUnsupportedDiskProvisioning)
    assert bad.error[0].diskProvisioning == "monolithicSparse"


def test_an_ide_disk_is_named_by_its_controller_and_comes_back_on_ide() -> None:
    host = small_host("esxi-7.0")
    host.add_vm("legacy", os_family="windows", disks=[16 * MiB, 8 * MiB], power_state="poweredOff",
                tools="not-installed", disk_controllers=["ide", "scsi"])
    with serve(host) as server:
        for si in connect(server):
            vm = si.content.searchIndex.FindByInventoryPath("ha-datacenter/vm/legacy")
            lease = _ready(vm.ExportVm())
            keys = [u.key for u in lease.info.deviceUrl if u.disk]
            assert keys == [f"/{vm._moId}/VirtualIDEController0:0", f"/{vm._moId}/VirtualLsiLogicController0:0"]
            ovf = si.content.ovfManager.CreateDescriptor(obj=vm, cdp=vim.OvfManager.CreateDescriptorParams())
            lease.HttpNfcLeaseComplete()
            assert [d.controller for d in parse_ovf(ovf.ovfDescriptor).disks] == ["ide", "scsi"]
            pool = vim.ResourcePool("ha-root-pool", si._stub)
            res = si.content.ovfManager.CreateImportSpec(
                ovfDescriptor=ovf.ovfDescriptor, resourcePool=pool, datastore=vm.datastore[0],
                cisp=vim.OvfManager.CreateImportSpecParams(entityName="legacy-copy"))
            assert [i.deviceId for i in res.fileItem] == ["/legacy-copy/VirtualIDEController0:0",
                                                         "/legacy-copy/VirtualLsiLogicController0:0"]
            imp = _ready(pool.ImportVApp(spec=res.importSpec, folder=si.content.rootFolder.childEntity[0].vmFolder))
            assert sorted(u.importKey for u in imp.info.deviceUrl) == sorted(i.deviceId for i in res.fileItem)
            [made] = [v for v in host.vms.values() if v.name == "legacy-copy"]
            assert [(d.controller, d.capacity) for d in made.disks] == [("ide", 16 * MiB), ("scsi", 8 * MiB)]
            imp.HttpNfcLeaseAbort()  # the VM the import made goes with it
            assert [v for v in host.vms.values() if v.name == "legacy-copy"] == []


def test_progress_is_the_clients_and_the_lease_reports_it(served: tuple[Any, Any], esxi: Host) -> None:
    """``initializeProgress`` is the host's (100 once ready), ``transferProgress`` what the
    client last reported with ``HttpNfcLeaseProgress`` (API 6.7), 100 once completed."""
    _server, si = served
    vm = si.content.searchIndex.FindByInventoryPath("ha-datacenter/vm/lin-web")
    lease = _ready(vm.ExportVm())
    assert (lease.initializeProgress, lease.transferProgress) == (100, 0)
    lease.HttpNfcLeaseProgress(percent=40)
    assert lease.transferProgress == 40
    lease.HttpNfcLeaseProgress(percent=75)
    assert lease.transferProgress == 75
    lease.HttpNfcLeaseComplete()
    assert lease.transferProgress == 100 and lease.state == vim.HttpNfcLease.State.done
