"""Ansible's ``community.vmware`` against the restore surface (issue 16): ``vmware_guest_disk``
adds a new disk and an existing disk file (one ``VirtualDiskManager`` made) to a VM and removes
one, through ``ReconfigVM_Task``; the host holds what the module reports."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("ansible-playbook") is None,
    reason="ansible-playbook is not installed (pip install 'ansible>=12,<13' for community.vmware)",
)

DATACENTER = "ha-datacenter"
LINUX = "rhel5-web"


def _disk_task(vm: str, disks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"community.vmware.vmware_guest_disk": {"datacenter": DATACENTER, "name": vm, "disk": disks}}


def test_vmware_guest_disk_adds_a_new_and_an_existing_disk(esx: Any, playbook: Any) -> None:
    host = esx.host
    host.create_virtual_disk("[datastore1] spare/spare.vmdk", 16 * 1024 * 1024)
    vm = esx.vm(LINUX)
    before = len(vm.disks)
    new, existing = playbook(
        _disk_task(LINUX, [{"size_mb": 32, "type": "thin", "datastore": "datastore1", "scsi_controller": 0, "scsi_type": "lsilogic",
                            "unit_number": 3, "state": "present"}]),
        _disk_task(LINUX, [{"filename": "[datastore1] spare/spare.vmdk", "scsi_controller": 0, "scsi_type": "lsilogic", "unit_number": 4,
                            "state": "present"}]),
    )
    assert not new.failed, new.result.get("msg", new.result)
    assert not existing.failed, existing.result.get("msg", existing.result)
    assert len(vm.disks) == before + 2
    by_unit = {d.unit_number: d for d in vm.disks}
    assert by_unit[3].capacity == 32 * 1024 * 1024
    assert by_unit[4].file_name == "[datastore1] spare/spare.vmdk" and by_unit[4].capacity == 16 * 1024 * 1024
    (removed,) = playbook(_disk_task(LINUX, [{"scsi_controller": 0, "scsi_type": "lsilogic", "unit_number": 4, "state": "absent",
                                              "destroy": False}]))
    assert not removed.failed, removed.result.get("msg", removed.result)
    assert 4 not in {d.unit_number for d in vm.disks}
    assert ("datastore1", "spare/spare.vmdk") in host.loose_disks  # kept as a disk file


def _guest(name: str, disk: dict[str, Any], esx: Any) -> dict[str, Any]:
    return {"community.vmware.vmware_guest": {
        "datacenter": DATACENTER, "folder": "/ha-datacenter/vm", "name": name, "state": "present",
        "guest_id": "rhel5Guest", "esxi_hostname": esx.host.name, "datastore": "datastore1",
        "hardware": {"memory_mb": 512, "num_cpus": 1, "scsi": "lsilogic"}, "disk": [disk],
    }}


def test_vmware_guest_creates_a_vm_and_is_refused_an_existing_file_as_a_host_refuses_it(esx: Any, playbook: Any) -> None:
    host = esx.host
    host.create_virtual_disk("[datastore1] made/made.vmdk", 16 * 1024 * 1024)
    new, existing = playbook(
        _guest("fresh", {"size_mb": 24, "type": "thin", "datastore": "datastore1"}, esx),
        _guest("made", {"filename": "[datastore1] made/made.vmdk"}, esx),
    )
    assert not new.failed, new.result.get("msg", new.result)
    fresh = host.find_vm("fresh")
    assert [d.capacity for d in fresh.disks] == [24 * 1024 * 1024] and fresh.guest_id == "rhel5Guest"
    # the collection sends fileOperation=create with the existing file's name: a host answers
    # FileAlreadyExists (govmomi issue 790), and no VM is left behind
    assert existing.failed and "already exists" in existing.result["msg"]
    assert not any(vm.name == "made" for vm in host.vms.values())
    assert ("datastore1", "made/made.vmdk") in host.loose_disks
