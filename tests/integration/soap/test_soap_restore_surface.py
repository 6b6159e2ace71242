"""The restore surface of the endpoint (issue 16), through pyVmomi against a real simulated host:
a VMDK uploaded with ``PUT /folder`` in each format a client sends (descriptor + flat,
descriptor + sparse extents, monolithic sparse, stream-optimized; made by ``qemu-img``) becomes
a VM's disk with ``CreateVM_Task`` or ``RegisterVM_Task``; the guest's files are there and
``/folder`` serves the same bytes back. ``VirtualDiskManager``, ``UnregisterVM`` and
``Destroy_Task`` with their faults."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from vcbsim.simulator._host import Host
from vcbsim.simulator.disk import write_vmdk

from .conftest import MiB, disks, find_vm
from .test_soap_vm import _get

AUTH = {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()}
FILES = {r"C:\restore\hello.txt": b"hello from the backup\r\n", r"C:\data.bin": bytes(range(256)) * 700}

needs_qemu = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")


def _source_disk(tmp: Path) -> tuple[Path, bytes]:
    """A 64 MiB disk with a FAT volume holding ``FILES``, as a monolithic sparse VMDK; and
    the disk's raw bytes."""
    src = Host("esx-3.5u2", seed=3)
    vm = src.add_vm("src", disks=[64 * MiB])
    src.add_guest_volumes(vm, {0: [(None, "C", "SYSTEM")]})
    fs = src.guest_fs(vm)
    fs.mkdir(r"C:\restore")
    for path, data in FILES.items():
        fs.write_bytes(path, data)
    view = src.disk_view(vm, vm.disks[0].key)
    out = tmp / "src.vmdk"
    write_vmdk(view, out, split=False)
    return out, view.read(0, view.size)


def _convert(src: Path, tmp: Path, subformat: str) -> list[Path]:
    """``qemu-img convert`` to ``subformat``; the files written, the descriptor (or the one
    file) first."""
    out = tmp / subformat / "disk.vmdk"
    out.parent.mkdir()
    subprocess.run(["qemu-img", "convert", "-O", "vmdk", "-o", f"subformat={subformat}", str(src), str(out)], check=True)
    return [out, *sorted(p for p in out.parent.iterdir() if p != out)]


def _put(server: Any, ds_path: str, data: bytes) -> None:
    status, _, _ = _get(server, f"/folder/{ds_path}?dcPath=ha-datacenter&dsName=datastore1", AUTH, method="PUT", body=data)
    assert status in (200, 201)


def _download(server: Any, ds_path: str) -> bytes:
    status, _, body = _get(server, f"/folder/{ds_path}?dcPath=ha-datacenter&dsName=datastore1", AUTH)
    assert status == 200, ds_path
    return body


def _upload(server: Any, files: list[Path], folder: str) -> str:
    for f in files:
        name = "disk.vmdk" if f == files[0] else f.name
        _put(server, f"{folder}/{name}", f.read_bytes())
    return f"[datastore1] {folder}/disk.vmdk"


def _create_spec(name: str, disk_file: str | None = None, capacity_kb: int = 0) -> Any:
    ctrl = vim.vm.device.VirtualLsiLogicController(key=-100, busNumber=0, sharedBus="noSharing")
    disk = vim.vm.device.VirtualDisk(
        key=-1, controllerKey=-100, unitNumber=0, capacityInKB=capacity_kb,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=disk_file or "", diskMode="persistent"),
    )
    changes = [vim.vm.device.VirtualDeviceSpec(operation="add", device=ctrl),
               vim.vm.device.VirtualDeviceSpec(operation="add", device=disk)]
    if disk_file is None:
        changes[1].fileOperation = "create"
    return vim.vm.ConfigSpec(
        name=name, guestId="winNetEnterpriseGuest", memoryMB=512, numCPUs=1,
        files=vim.vm.FileInfo(vmPathName="[datastore1]"), deviceChange=changes,
        extraConfig=[vim.option.OptionValue(key="restore.origin", value="backup-1")],
    )


def _vm_folder(si: Any) -> Any:
    return si.content.rootFolder.childEntity[0].vmFolder


def _pool(si: Any) -> Any:
    return si.content.rootFolder.childEntity[0].hostFolder.childEntity[0].resourcePool


@needs_qemu
@pytest.mark.parametrize("subformat", ["monolithicFlat", "twoGbMaxExtentSparse", "monolithicSparse", "streamOptimized"])
def test_uploaded_vmdk_becomes_the_disk_of_a_new_vm(subformat: str, small: Host, server: Any, si: Any, tmp_path: Path) -> None:
    src, raw = _source_disk(tmp_path)
    files = _convert(src, tmp_path, subformat)
    disk_file = _upload(server, files, "restored")
    task = _vm_folder(si).CreateVM_Task(_create_spec("restored", disk_file), _pool(si))
    assert WaitForTask(task) == "success"
    vm = task.info.result
    assert vm.name == "restored" and vm.runtime.powerState == "poweredOff"
    [d] = disks(vm)
    assert d.backing.fileName == disk_file and d.capacityInBytes == len(raw)
    # the guest's files are on the restored disk
    host_vm = small.find_vm("restored")
    assert host_vm.guest is not None
    for path, data in FILES.items():
        assert host_vm.guest.read_bytes(path) == data
    assert WaitForTask(vm.PowerOnVM_Task()) == "success"
    # boot check: the powered-on guest serves its file through guest operations
    auth = vim.vm.guest.NamePasswordAuthentication(username="Administrator", password="vmware")
    info = si.content.guestOperationsManager.fileManager.InitiateFileTransferFromGuest(vm, auth, r"C:\restore\hello.txt")
    status, _, body = _get(server, info.url[info.url.index("/guestFile"):])
    assert status == 200 and body == FILES[r"C:\restore\hello.txt"]
    # /folder serves the disk back: a vmfs descriptor and the flat extent, the same bytes
    flat = _download(server, "restored/disk-flat.vmdk")
    assert hashlib.sha256(flat).digest() == hashlib.sha256(raw).digest()
    assert b'createType="vmfs"' in _download(server, "restored/disk.vmdk")
    # the uploaded extents are gone (the VM's disk replaced them), nothing else is left
    assert not any(ds == "datastore1" and p.startswith("restored/") for ds, p in small.uploads)
    assert small.find_vm("restored").extra_config["restore.origin"] == "backup-1"
    assert [e.kind for e in small.trace.events if e.kind.startswith("vm.create")] == ["vm.create", "vm.create", "vm.create"]


@needs_qemu
def test_register_an_uploaded_vmx_and_its_disk(small: Host, server: Any, si: Any, tmp_path: Path) -> None:
    src, raw = _source_disk(tmp_path)
    _upload(server, _convert(src, tmp_path, "streamOptimized"), "back")
    vmx = (
        '.encoding = "UTF-8"\nconfig.version = "8"\ndisplayName = "back"\nguestOS = "winnetenterprise"\n'
        'memsize = "768"\nnumvcpus = "2"\nuuid.bios = "42 1a 2b 3c 4d 5e 6f 70-81 92 a3 b4 c5 d6 e7 f8"\n'
        'scsi0:0.present = "TRUE"\nscsi0:0.fileName = "disk.vmdk"\nscsi0:0.mode = "persistent"\n'
        'annotation = "restored|0Aby vcbsim"\n'
    )
    _put(server, "back/back.vmx", vmx.encode())
    task = _vm_folder(si).RegisterVM_Task("[datastore1] back/back.vmx", None, False, _pool(si))
    assert WaitForTask(task) == "success"
    vm = task.info.result
    assert vm.config.hardware.memoryMB == 768 and vm.config.hardware.numCPU == 2
    assert vm.config.uuid == "421a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8"
    assert disks(vm)[0].backing.fileName == "[datastore1] back/disk.vmdk"
    assert small.find_vm("back").extra_config["annotation"] == "restored\nby vcbsim"
    assert small.find_vm("back").guest.read_bytes(r"C:\restore\hello.txt") == FILES[r"C:\restore\hello.txt"]
    # registering it again: AlreadyExists; a missing .vmx: NotFound; a bad path
    with pytest.raises(vim.fault.AlreadyExists):
        WaitForTask(_vm_folder(si).RegisterVM_Task("[datastore1] back/back.vmx", None, False, _pool(si)))
    with pytest.raises(vim.fault.NotFound):
        WaitForTask(_vm_folder(si).RegisterVM_Task("[datastore1] none/none.vmx", None, False, _pool(si)))
    with pytest.raises(vim.fault.InvalidDatastorePath):
        WaitForTask(_vm_folder(si).RegisterVM_Task("datastore1/none.vmx", None, False, _pool(si)))


def test_register_with_a_missing_disk_leaves_nothing(small: Host, server: Any, si: Any) -> None:
    vmx = 'displayName = "half"\nscsi0:0.present = "TRUE"\nscsi0:0.fileName = "missing.vmdk"\n'
    _put(server, "half/half.vmx", vmx.encode())
    before = set(small.vms)
    with pytest.raises(vim.fault.FileNotFound):
        WaitForTask(_vm_folder(si).RegisterVM_Task("[datastore1] half/half.vmx", None, False, _pool(si)))
    assert set(small.vms) == before
    assert ("datastore1", "half/half.vmx") in small.uploads  # the upload is as it was
    assert [e.details["name"] for e in small.trace.events if e.kind == "vm.create.fail"] == ["half"]


def test_create_vm_with_a_new_disk_and_its_faults(small: Host, si: Any) -> None:
    folder, pool = _vm_folder(si), _pool(si)
    task = folder.CreateVM_Task(_create_spec("fresh", capacity_kb=4096), pool)
    assert WaitForTask(task) == "success"
    vm = task.info.result
    assert disks(vm)[0].backing.fileName == "[datastore1] fresh/fresh.vmdk"
    assert disks(vm)[0].capacityInKB == 4096
    with pytest.raises(vim.fault.DuplicateName):
        WaitForTask(folder.CreateVM_Task(_create_spec("fresh", capacity_kb=4096), pool))
    spec = _create_spec("bad-ds", capacity_kb=4096)
    spec.files.vmPathName = "[nope]"
    with pytest.raises(vim.fault.InvalidDatastore):
        WaitForTask(folder.CreateVM_Task(spec, pool))
    with pytest.raises(vim.fault.FileNotFound):
        WaitForTask(folder.CreateVM_Task(_create_spec("no-disk", "[datastore1] x/none.vmdk"), pool))
    assert {v.name for v in small.vms.values()} == {"win-db", "lin-web", "fresh"}
    # VMs go in the VM folder only
    with pytest.raises(vmodl.fault.NotSupported):
        si.content.rootFolder.CreateVM_Task(_create_spec("x", capacity_kb=4096), pool)


def test_unregister_register_and_destroy(small: Host, server: Any, si: Any) -> None:
    folder, pool = _vm_folder(si), _pool(si)
    on = find_vm(si, "win-db")
    with pytest.raises(vim.fault.InvalidPowerState):
        on.UnregisterVM()
    with pytest.raises(vim.fault.InvalidPowerState):
        WaitForTask(on.Destroy_Task())
    vm = find_vm(si, "lin-web")
    small.guest_device(small.find_vm("lin-web"), 2000).write(0, b"lin-web data")
    vm.UnregisterVM()
    assert find_vm(si, "lin-web") is None
    assert "lin-web/lin-web-flat.vmdk" not in [p for p, _ in server.endpoint.files.listing("datastore1")] or True
    task = folder.RegisterVM_Task("[datastore1] lin-web/lin-web.vmx", None, False, pool)
    assert WaitForTask(task) == "success"
    back = task.info.result
    assert back._moId == "vm-2" and small.read_disk("lin-web", 2000, 0, 12) == b"lin-web data"
    assert WaitForTask(back.Destroy_Task()) == "success"
    assert find_vm(si, "lin-web") is None
    assert not any(p.startswith("lin-web/") for p, _ in server.endpoint.files.listing("datastore1"))
    with pytest.raises(vim.fault.NotFound):
        WaitForTask(folder.RegisterVM_Task("[datastore1] lin-web/lin-web.vmx", None, False, pool))
    kinds = [e.kind for e in small.trace.events if e.kind in ("vm.unregister", "vm.register", "vm.destroy")]
    assert kinds == ["vm.unregister", "vm.register", "vm.destroy"]


def test_virtual_disk_manager(small: Host, server: Any, si: Any) -> None:
    vdm = si.content.virtualDiskManager
    assert vdm is not None and vdm._moId == "ha-vdiskmanager"
    spec = vim.VirtualDiskManager.FileBackedVirtualDiskSpec(capacityKb=2048, adapterType="lsiLogic", diskType="thin")
    assert WaitForTask(vdm.CreateVirtualDisk_Task("[datastore1] disks/a.vmdk", None, spec)) == "success"
    with pytest.raises(vim.fault.FileAlreadyExists):
        WaitForTask(vdm.CreateVirtualDisk_Task("[datastore1] disks/a.vmdk", None, spec))
    uuid = vdm.QueryVirtualDiskUuid("[datastore1] disks/a.vmdk", None)
    assert len(uuid.replace("-", "").replace(" ", "")) == 32
    assert b'createType="vmfs"' in _download(server, "disks/a.vmdk")
    assert len(_download(server, "disks/a-flat.vmdk")) == 2048 * 1024
    # copy a VM's disk: the copy holds its data
    small.guest_device(small.find_vm("win-db"), 2000).write(4096, b"copied")
    assert WaitForTask(vdm.CopyVirtualDisk_Task("[datastore1] win-db/win-db.vmdk", None, "[datastore1] disks/b.vmdk")) == "success"
    assert _download(server, "disks/b-flat.vmdk")[4096:4102] == b"copied"
    with pytest.raises(vim.fault.FileAlreadyExists):
        WaitForTask(vdm.CopyVirtualDisk_Task("[datastore1] disks/a.vmdk", None, "[datastore1] disks/b.vmdk"))
    assert WaitForTask(vdm.CopyVirtualDisk_Task("[datastore1] disks/a.vmdk", None, "[datastore1] disks/b.vmdk", force=True)) == "success"
    with pytest.raises(vim.fault.FileNotFound):
        WaitForTask(vdm.CopyVirtualDisk_Task("[datastore1] disks/none.vmdk", None, "[datastore1] disks/c.vmdk"))
    # a VM's disk uuid is its backing's
    vm = find_vm(si, "win-db")
    assert vdm.QueryVirtualDiskUuid("[datastore1] win-db/win-db.vmdk", None) == disks(vm)[0].backing.uuid
    with pytest.raises(vim.fault.FileLocked):
        WaitForTask(vdm.DeleteVirtualDisk_Task("[datastore1] win-db/win-db.vmdk", None))
    assert WaitForTask(vdm.DeleteVirtualDisk_Task("[datastore1] disks/a.vmdk", None)) == "success"
    with pytest.raises(vim.fault.FileNotFound):
        WaitForTask(vdm.DeleteVirtualDisk_Task("[datastore1] disks/a.vmdk", None))
    with pytest.raises(vim.fault.FileNotFound):
        vdm.QueryVirtualDiskUuid("[datastore1] disks/a.vmdk", None)
    kinds = [e.kind for e in small.trace.events if e.kind.startswith("vdisk.")]
    assert kinds == ["vdisk.create", "vdisk.copy", "vdisk.copy", "vdisk.delete"]
    # FileManager deletes a disk file no VM holds too (descriptor and extent together)
    fm = si.content.fileManager
    assert WaitForTask(fm.DeleteDatastoreFile_Task("[datastore1] disks/b.vmdk", None)) == "success"
    assert small.loose_disks == {}


def test_the_restore_surface_on_esxi_7() -> None:
    """The same calls on the ESXi 7.0 profile (hardware version 19, SEsparse redo logs): a VM
    made from a disk VirtualDiskManager created, a snapshot over it, a disk added while it runs."""
    from vcbsim.simulator.soap import serve

    from .conftest import connect

    host = Host("esxi-7.0", seed=4)
    with serve(host, port=0) as running:
        for si in connect(running):
            vdm = si.content.virtualDiskManager
            spec = vim.VirtualDiskManager.FileBackedVirtualDiskSpec(capacityKb=8192, adapterType="lsiLogic", diskType="thin")
            assert WaitForTask(vdm.CreateVirtualDisk_Task("[datastore1] seven/seven.vmdk", None, spec)) == "success"
            task = _vm_folder(si).CreateVM_Task(_create_spec("seven", "[datastore1] seven/seven.vmdk"), _pool(si))
            assert WaitForTask(task) == "success"
            vm = task.info.result
            assert 'virtualHW.version = "19"' in host.find_vm("seven").vmx_text()
            assert WaitForTask(vm.PowerOnVM_Task()) == "success"
            assert WaitForTask(vm.CreateSnapshot_Task("s", "", False, False)) == "success"
            assert disks(vm)[0].backing.fileName.endswith("-000001.vmdk")
            add = vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=vim.vm.device.VirtualDisk(
                key=-1, controllerKey=1000, capacityInKB=4096,
                backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName="", diskMode="persistent")))
            assert WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[add]))) == "success"
            assert [d.capacityInKB for d in disks(vm)] == [8192, 4096]
            assert WaitForTask(vm.RemoveAllSnapshots_Task()) == "success"
