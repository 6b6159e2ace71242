"""NFC export over the wire: ``ExportSnapshot`` / ``ExportVm`` → ``HttpNfcLease``, through pyVmomi,
the disks downloaded from ``info.deviceUrl`` and read by ``qemu-img`` (equal to the snapshot)."""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from vcbsim.simulator import VirtualClock
from vcbsim.simulator._host import Host
from vcbsim.simulator.soap import serve

from .conftest import MiB, connect, small_host

QEMU_IMG = shutil.which("qemu-img")
needs_qemu = pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img not installed (apt-get install qemu-utils)")


@pytest.fixture
def esxi_small() -> Host:
    return small_host("esxi-7.0")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def running(esxi_small: Host, clock: VirtualClock) -> Iterator[Any]:
    with serve(esxi_small, clock=clock) as server:
        yield server


@pytest.fixture
def si(running: Any) -> Iterator[Any]:
    yield from connect(running)


def vm_by_name(si: Any, name: str) -> Any:
    return si.content.searchIndex.FindByInventoryPath(f"ha-datacenter/vm/{name}")


def wait_ready(lease: Any) -> None:
    for _ in range(200):  # the export task runs right after the reply: normally at once
        if lease.state != vim.HttpNfcLease.State.initializing:
            return
        time.sleep(0.01)


def download(si: Any, url: str, dest: Path) -> int:
    cookie = si._stub.cookie
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(req, context=ctx) as resp, dest.open("wb") as f:
        n = 0
        while chunk := resp.read(1 << 20):
            f.write(chunk)
            n += len(chunk)
    return n


def guest_writes(host: Host, vm: str, seed: bytes) -> None:
    dev = host.guest_device(host.find_vm(vm), host.find_vm(vm).disks[0].key)
    dev.write(0, seed * 512)
    dev.write(17 * MiB + 3, os.urandom(100_000))
    dev.write(dev.size - 4096, seed * 4096)


def snapshot(si: Any, vm: Any, name: str = "backup") -> Any:
    WaitForTask(vm.CreateSnapshot_Task(name=name, description="", memory=False, quiesce=False))
    return vm.snapshot.currentSnapshot


@needs_qemu
def test_export_snapshot_downloads_the_snapshot_as_stream_optimized_vmdk(
    si: Any, esxi_small: Host, tmp_path: Path
) -> None:
    guest_writes(esxi_small, "win-db", b"A")
    vm = vm_by_name(si, "win-db")
    snap = snapshot(si, vm)
    expected = esxi_small.disk_view("vm-1", esxi_small.vms["vm-1"].disks[0].key, snap._moId)
    want = expected.read(0, expected.size)
    guest_writes(esxi_small, "win-db", b"B")  # the VM writes on: the export is the snapshot's view

    lease = snap.ExportSnapshot()
    wait_ready(lease)
    assert lease.state == vim.HttpNfcLease.State.ready
    info = lease.info
    assert info.leaseTimeout == 300
    assert info.entity._moId == "vm-1"
    assert info.totalDiskCapacityInKB == 64 * 1024
    [url] = [u for u in info.deviceUrl if u.disk]  # an ESXi 7.0 lease also lists the .nvram
    assert url.disk and url.url.endswith("/disk-0.vmdk")
    out = tmp_path / "disk-0.vmdk"
    n = download(si, url.url, out)
    lease.HttpNfcLeaseProgress(percent=100)
    [entry] = lease.HttpNfcLeaseGetManifest()
    assert entry.sha1 == hashlib.sha1(out.read_bytes()).hexdigest() and entry.size == n and entry.disk

    raw = tmp_path / "snap.raw"
    raw.write_bytes(want)
    assert QEMU_IMG is not None
    info_text = subprocess.run([QEMU_IMG, "info", str(out)], capture_output=True, text=True, check=True).stdout
    assert "streamOptimized" in info_text
    cmp = subprocess.run([QEMU_IMG, "compare", "-f", "vmdk", "-F", "raw", str(out), str(raw)],
                         capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr

    # while the lease is held the commit (seed 3b) is blocked
    with pytest.raises(vim.fault.TaskInProgress):
        WaitForTask(snap.RemoveSnapshot_Task(removeChildren=False))
    lease.HttpNfcLeaseComplete()
    assert lease.state == vim.HttpNfcLease.State.done
    WaitForTask(snap.RemoveSnapshot_Task(removeChildren=False))
    assert vm.snapshot is None

    kinds = [(e.kind, e.details.get("state")) for e in esxi_small.trace.events if e.kind.startswith("nfc.")]
    assert kinds == [("nfc.lease", "initializing"), ("nfc.lease", "ready"), ("nfc.read", None), ("nfc.lease", "done")]
    read = next(e for e in esxi_small.trace.events if e.kind == "nfc.read")
    assert read.details["bytes"] == n and read.details["snapshot"] == snap._moId


def test_export_vm_needs_a_powered_off_vm(si: Any, esxi_small: Host, tmp_path: Path) -> None:
    with pytest.raises(vim.fault.InvalidPowerState):
        vm_by_name(si, "win-db").ExportVm()
    off = vm_by_name(si, "lin-web")
    lease = off.ExportVm()
    wait_ready(lease)
    [url] = [u for u in lease.info.deviceUrl if u.disk]
    download(si, url.url, tmp_path / "d.vmdk")
    # the lease blocks what would change the VM: power on
    with pytest.raises(vim.fault.TaskInProgress):
        WaitForTask(off.PowerOnVM_Task())
    lease.HttpNfcLeaseAbort()
    assert lease.state == vim.HttpNfcLease.State.error
    assert isinstance(lease.error, vmodl.fault.RequestCanceled)
    WaitForTask(off.PowerOnVM_Task())
    with pytest.raises(urllib.error.HTTPError) as err:  # the URL died with the lease
        download(si, url.url, tmp_path / "again.vmdk")
    assert err.value.code == 404


def test_a_lease_without_progress_times_out_on_the_endpoint_clock(
    si: Any, esxi_small: Host, clock: VirtualClock
) -> None:
    vm = vm_by_name(si, "win-db")
    snap = snapshot(si, vm)
    lease = snap.ExportSnapshot()
    wait_ready(lease)
    clock.advance(200)
    lease.HttpNfcLeaseProgress(percent=10)  # keeps it alive
    clock.advance(200)
    assert lease.state == vim.HttpNfcLease.State.ready
    clock.advance(101)
    assert lease.state == vim.HttpNfcLease.State.error
    assert isinstance(lease.error, vim.fault.Timedout)
    with pytest.raises(vim.fault.Timedout):
        lease.HttpNfcLeaseComplete()
    WaitForTask(snap.RemoveSnapshot_Task(removeChildren=False))  # the hold went with the lease
    states = [e.details for e in esxi_small.trace.events if e.kind == "nfc.lease"]
    assert states[-1]["state"] == "error" and states[-1]["reason"] == "timed out"


def test_misuse_answers_real_faults(si: Any) -> None:
    vm = vm_by_name(si, "win-db")
    snap = snapshot(si, vm)
    lease = snap.ExportSnapshot()
    wait_ready(lease)
    with pytest.raises(vim.fault.TaskInProgress):
        snap.ExportSnapshot()  # one export lease per VM
    with pytest.raises(vmodl.fault.InvalidArgument):
        lease.HttpNfcLeaseProgress(percent=101)
    lease.HttpNfcLeaseComplete()
    with pytest.raises(vim.fault.InvalidState):
        lease.HttpNfcLeaseComplete()
    with pytest.raises(vim.fault.InvalidState):
        lease.HttpNfcLeaseAbort()


def test_an_esx_3_5_host_has_no_export(tmp_path: Path) -> None:
    with serve(small_host("esx-3.5u2")) as server:
        for si in connect(server):
            vm = vm_by_name(si, "lin-web")
            with pytest.raises(vmodl.fault.MethodNotFound):
                vm.ExportVm()


# --- OVF: CreateDescriptor, then the way back (CreateImportSpec, ImportVApp, uploads) --------


def upload(si: Any, url: str, data: bytes) -> int:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(url, data=data, method="PUT",
                                 headers={"Cookie": si._stub.cookie, "Content-Type": "application/x-vnd.vmware-streamVmdk"})
    with urllib.request.urlopen(req, context=ctx) as resp:
        return int(resp.status)


def test_an_exported_vm_is_restored_through_ovf_import(si: Any, esxi_small: Host, tmp_path: Path) -> None:
    guest_writes(esxi_small, "win-db", b"R")
    vm = vm_by_name(si, "win-db")
    snap = snapshot(si, vm)
    want = esxi_small.disk_view("vm-1", esxi_small.vms["vm-1"].disks[0].key, snap._moId)
    want_bytes = want.read(0, want.size)
    lease = snap.ExportSnapshot()
    wait_ready(lease)
    files = []
    for u in (u for u in lease.info.deviceUrl if u.disk):
        out = tmp_path / u.targetId
        n = download(si, u.url, out)
        files.append(vim.OvfManager.OvfFile(deviceId=u.key, path=u.targetId, size=n))
    ovf = si.content.ovfManager.CreateDescriptor(
        obj=vm, cdp=vim.OvfManager.CreateDescriptorParams(ovfFiles=files, snapshot=snap))
    lease.HttpNfcLeaseComplete()
    WaitForTask(snap.RemoveSnapshot_Task(removeChildren=False))
    assert "<ovf:Envelope" in ovf.ovfDescriptor and "disk-0.vmdk" in ovf.ovfDescriptor

    pool = vim.ResourcePool("ha-root-pool", si._stub)
    ds = vm.datastore[0]
    res = si.content.ovfManager.CreateImportSpec(
        ovfDescriptor=ovf.ovfDescriptor, resourcePool=pool, datastore=ds,
        cisp=vim.OvfManager.CreateImportSpecParams(entityName="win-db-restored"))
    assert not res.error, res.error
    folder = si.content.rootFolder.childEntity[0].vmFolder
    imp = pool.ImportVApp(spec=res.importSpec, folder=folder)
    wait_ready(imp)
    assert imp.state == vim.HttpNfcLease.State.ready
    by_key = {u.importKey: u.url for u in imp.info.deviceUrl}
    for item in res.fileItem:
        assert upload(si, by_key[item.deviceId], (tmp_path / item.path).read_bytes()) == 200
    imp.HttpNfcLeaseProgress(percent=100)
    imp.HttpNfcLeaseComplete()
    restored = esxi_small.find_vm("name:win-db-restored")
    assert restored.power_state == "poweredOff" and restored.guest_id == esxi_small.vms["vm-1"].guest_id
    got = restored.disks[0].disk.read(0, want.size)
    assert got == want_bytes
    assert any(e.kind == "nfc.write" for e in esxi_small.trace.events)


def test_an_aborted_import_leaves_no_vm(si: Any, esxi_small: Host) -> None:
    vm = vm_by_name(si, "lin-web")
    lease = vm.ExportVm()
    wait_ready(lease)
    ovf = si.content.ovfManager.CreateDescriptor(obj=vm, cdp=vim.OvfManager.CreateDescriptorParams())
    lease.HttpNfcLeaseComplete()
    pool = vim.ResourcePool("ha-root-pool", si._stub)
    res = si.content.ovfManager.CreateImportSpec(
        ovfDescriptor=ovf.ovfDescriptor, resourcePool=pool, datastore=vm.datastore[0],
        cisp=vim.OvfManager.CreateImportSpecParams(entityName="half-made"))
    imp = pool.ImportVApp(spec=res.importSpec, folder=si.content.rootFolder.childEntity[0].vmFolder)
    wait_ready(imp)
    assert "half-made" in [v.name for v in esxi_small.vms.values()]
    imp.HttpNfcLeaseAbort()
    assert "half-made" not in [v.name for v in esxi_small.vms.values()]
    bad = si.content.ovfManager.CreateImportSpec(ovfDescriptor="<not-ovf/>", resourcePool=pool,
                                                 datastore=vm.datastore[0], cisp=vim.OvfManager.CreateImportSpecParams())
    assert bad.error and "ovf:Envelope" in bad.error[0].msg


def test_an_esx_3_5_host_has_no_ovf_manager() -> None:
    with serve(small_host("esx-3.5u2")) as server:
        for si in connect(server):
            assert si.content.ovfManager is None
