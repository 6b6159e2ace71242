"""``ReconfigVM_Task`` deviceChange: add a new or an existing ``VirtualDisk``, remove one keeping
or destroying its file, through pyVmomi against a real simulated host (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from vcbsim.simulator._host import Host

from .conftest import MiB, disks, find_vm


def _add_spec(file_name: str = "", capacity_kb: int | None = 4096, create: bool = True,
              controller_key: int = 1000, unit: int | None = None) -> Any:
    disk = vim.vm.device.VirtualDisk(
        key=-1,
        controllerKey=controller_key,
        unitNumber=unit,
        capacityInKB=capacity_kb or 0,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=file_name, diskMode="persistent", thinProvisioned=True
        ),
    )
    change = vim.vm.device.VirtualDeviceSpec(operation="add", device=disk)
    if create:
        change.fileOperation = "create"
    return vim.vm.ConfigSpec(deviceChange=[change])


def _remove_spec(device: Any, destroy: bool) -> Any:
    change = vim.vm.device.VirtualDeviceSpec(operation="remove", device=device)
    if destroy:
        change.fileOperation = "destroy"
    return vim.vm.ConfigSpec(deviceChange=[change])


def _fault(task: Any) -> Any:
    with pytest.raises(vmodl.MethodFault) as info:
        WaitForTask(task)
    return info.value


def test_add_new_disk_then_remove_keeping_then_reattach_then_destroy(small: Host, si: Any) -> None:
    vm = find_vm(si, "win-db")  # powered on: SCSI hot-add
    assert WaitForTask(vm.ReconfigVM_Task(_add_spec(capacity_kb=8 * 1024))) == "success"
    new = disks(vm)[-1]
    assert len(disks(vm)) == 2
    assert new.capacityInKB == 8 * 1024
    assert new.backing.fileName == "[datastore1] win-db/win-db_1.vmdk"
    assert new.unitNumber == 1 and new.controllerKey == 1000
    # data written by the guest to the new disk survives the detach and re-attach
    host_vm = small.find_vm("win-db")
    small.guest_device(host_vm, new.key).write(65536, b"kept across detach")
    assert WaitForTask(vm.ReconfigVM_Task(_remove_spec(new, destroy=False))) == "success"
    assert len(disks(vm)) == 1
    assert ("datastore1", "win-db/win-db_1.vmdk") in small.loose_disks
    spec = _add_spec(file_name="[datastore1] win-db/win-db_1.vmdk", capacity_kb=None, create=False)
    assert WaitForTask(vm.ReconfigVM_Task(spec)) == "success"
    again = disks(vm)[-1]
    assert again.backing.fileName == "[datastore1] win-db/win-db_1.vmdk"
    assert small.read_disk("win-db", again.key, 65536, 18) == b"kept across detach"
    assert WaitForTask(vm.ReconfigVM_Task(_remove_spec(again, destroy=True))) == "success"
    assert small.loose_disks == {}
    kinds = [e.kind for e in small.trace.events if e.kind.startswith("vm.disk.")]
    assert kinds == ["vm.disk.add", "vm.disk.remove", "vm.disk.add", "vm.disk.remove"]


def test_add_disk_faults(small: Host, si: Any) -> None:
    vm = find_vm(si, "win-db")
    taken = disks(vm)[0].backing.fileName
    # the file exists (the VM's own disk): FileLocked / FileAlreadyExists, nothing added
    fault = _fault(vm.ReconfigVM_Task(_add_spec(file_name=taken, capacity_kb=None, create=False)))
    assert isinstance(fault, vim.fault.InvalidDeviceSpec)
    fault = _fault(vm.ReconfigVM_Task(_add_spec(file_name=taken)))
    assert isinstance(fault, vim.fault.FileAlreadyExists)
    fault = _fault(vm.ReconfigVM_Task(_add_spec(file_name="[datastore1] none/none.vmdk", capacity_kb=None, create=False)))
    assert isinstance(fault, vim.fault.FileNotFound)
    fault = _fault(vm.ReconfigVM_Task(_add_spec(capacity_kb=0)))
    assert isinstance(fault, vim.fault.InvalidDeviceSpec)
    fault = _fault(vm.ReconfigVM_Task(_add_spec(unit=0)))
    assert isinstance(fault, vim.fault.InvalidDeviceSpec)  # unit 0 is taken
    # IDE is not hot-pluggable on a powered-on VM
    fault = _fault(vm.ReconfigVM_Task(_add_spec(controller_key=200)))
    assert isinstance(fault, vim.fault.DeviceHotPlugNotSupported)
    assert len(disks(vm)) == 1
    # not a disk: the task fails with NotSupported
    fault = _fault(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(
        operation="add", device=vim.vm.device.VirtualCdrom(key=-1))])))
    assert isinstance(fault, vmodl.fault.NotSupported)


def test_remove_disk_with_snapshot_is_refused(small: Host, si: Any) -> None:
    vm = find_vm(si, "win-db")
    WaitForTask(vm.CreateSnapshot_Task("s", "", False, False))
    fault = _fault(vm.ReconfigVM_Task(_remove_spec(disks(vm)[0], destroy=False)))
    assert isinstance(fault, vim.fault.InvalidState)
    assert len(disks(vm)) == 1


def test_ide_disk_on_a_powered_off_vm(small: Host, si: Any) -> None:
    vm = find_vm(si, "lin-web")
    assert WaitForTask(vm.ReconfigVM_Task(_add_spec(controller_key=200, capacity_kb=2048))) == "success"
    d = disks(vm)[-1]
    assert d.controllerKey == 200 and d.capacityInKB == 2048
    assert small.find_vm("lin-web").disks[-1].controller == "ide"
    assert small.find_vm("lin-web").disks[-1].capacity == 2 * MiB
