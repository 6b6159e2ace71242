"""The host's VM life cycle and disk files (simulator/_vmlifecycle.py), in process: each
operation, its faults, the trace, and that a failure leaves the host as it was."""

from __future__ import annotations

import pytest
from pyVmomi import vim

from vcbsim.simulator import Host
from vcbsim.simulator._vmlifecycle import DiskSpec, parse_ds_path, parse_vmx, vmx_unescape
from vcbsim.simulator.disk import LayeredDisk, write_vmdk

MiB = 1024**2


@pytest.fixture
def host() -> Host:
    h = Host("esx-3.5u2", seed=3)
    h.add_vm("on", disks=[4 * MiB])
    h.add_vm("off", disks=[4 * MiB], power_state="poweredOff", tools="not-installed")
    return h


def test_parse_vmx_reads_what_the_host_writes(host: Host) -> None:
    vm = host.find_vm("on")
    vm.extra_config["annotation"] = 'two\nlines "quoted" |pipe'
    cfg = parse_vmx(vm.vmx_text(), vm.vmx_path)
    assert (cfg.name, cfg.memory_mb, cfg.num_cpus, cfg.guest_os) == ("on", vm.memory_mb, 1, vm.guest_id)
    assert cfg.uuid == vm.uuid
    assert cfg.disks == (("scsi0:0", "on.vmdk", "persistent"),)
    assert cfg.extra["annotation"] == 'two\nlines "quoted" |pipe'
    assert vmx_unescape("a|22b|7Cc") == 'a"b|c'


@pytest.mark.parametrize("bad", ["no-brackets.vmdk", "[ds]", "[a/b] x.vmdk", "[ds] ../x.vmdk", 3])
def test_a_malformed_datastore_path_is_invalid_datastore_path(bad: object) -> None:
    with pytest.raises(vim.fault.InvalidDatastorePath):
        parse_ds_path(bad)


def test_register_resolves_vmfs_volume_paths_and_keeps_nothing_on_failure(host: Host) -> None:
    disk = LayeredDisk(2 * MiB)
    disk.write(MiB, b"payload")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        write_vmdk(disk.view(), Path(tmp) / "d.vmdk", split=False)
        host.uploads[("datastore1", "elsewhere/d.vmdk")] = (Path(tmp) / "d.vmdk").read_bytes()
    vmx = ('displayName = "reg"\nscsi0:0.present = "TRUE"\n'
           'scsi0:0.fileName = "/vmfs/volumes/datastore1/elsewhere/d.vmdk"\n'
           'ide0:0.present = "TRUE"\nide0:0.fileName = "missing.vmdk"\n')
    host.uploads[("datastore1", "reg/reg.vmx")] = vmx.encode()
    before = dict(host.uploads)
    with pytest.raises(vim.fault.FileNotFound):
        host.register_vm("[datastore1] reg/reg.vmx")
    assert host.uploads == before and not any(v.name == "reg" for v in host.vms.values())
    host.uploads[("datastore1", "reg/reg.vmx")] = vmx.replace('ide0:0.present = "TRUE"', 'ide0:0.present = "FALSE"').encode()
    vm = host.register_vm("[datastore1] reg/reg.vmx")
    assert [d.file_name for d in vm.disks] == ["[datastore1] elsewhere/d.vmdk"]
    assert host.read_disk(vm, vm.disks[0].key, MiB, 7) == b"payload"
    assert host.uploads == {}  # the .vmx and the disk are the VM's own files now
    with pytest.raises(vim.fault.AlreadyExists):
        host.register_vm("[datastore1] reg/reg.vmx")


def test_an_uploaded_file_that_is_not_a_disk_is_invalid_disk_format(host: Host) -> None:
    host.uploads[("datastore1", "x/x.vmdk")] = b"not a disk at all"
    with pytest.raises(vim.fault.InvalidDiskFormat):
        host.add_disk("off", DiskSpec(file="[datastore1] x/x.vmdk", create=False))
    assert len(host.find_vm("off").disks) == 1 and ("datastore1", "x/x.vmdk") in host.uploads


def test_hot_plug_rules_and_unit_numbers(host: Host) -> None:
    with pytest.raises(vim.fault.DeviceHotPlugNotSupported):
        host.add_disk("on", DiskSpec(capacity=MiB, controller="ide"))
    d = host.add_disk("on", DiskSpec(capacity=MiB, unit_number=8))
    assert d.unit_number == 8
    for _ in range(6):
        host.add_disk("on", DiskSpec(capacity=MiB))
    assert sorted(x.unit_number for x in host.find_vm("on").disks) == [0, 1, 2, 3, 4, 5, 6, 8]  # 7 is the HBA
    with pytest.raises(vim.fault.InvalidDeviceSpec):
        host.add_disk("on", DiskSpec(capacity=MiB, unit_number=7))
    with pytest.raises(vim.fault.InvalidDeviceSpec):
        host.add_disk("on", DiskSpec(capacity=1000))
    with pytest.raises(vim.fault.InvalidDeviceSpec):
        host.remove_disk("on", 9999)


def test_create_faults_leave_nothing_and_trace_the_failure(host: Host) -> None:
    with pytest.raises(vim.fault.DuplicateName):
        host.create_vm("on", datastore="datastore1")
    with pytest.raises(vim.fault.InvalidDatastore):
        host.create_vm("x", datastore="nope")
    with pytest.raises(vim.fault.InvalidName):
        host.create_vm("bad/name", datastore="datastore1")
    before = set(host.vms)
    with pytest.raises(vim.fault.FileNotFound):
        host.create_vm("x", datastore="datastore1", disks=[DiskSpec(capacity=MiB),
                                                           DiskSpec(file="[datastore1] none.vmdk", create=False)])
    assert set(host.vms) == before
    assert host.trace.events[-1].kind == "vm.create.fail"
    # an id once given is not reused, but nothing else of the failed VM remains
    vm = host.create_vm("x", datastore="datastore1", disks=[DiskSpec(capacity=MiB)])
    assert vm.power_state == "poweredOff" and vm.tools is not None and vm.tools.state == "not-running"


def test_a_disk_in_use_is_locked_and_a_copy_reads_its_layer(host: Host) -> None:
    vm = host.find_vm("on")
    host.guest_device(vm, 2000).write(0, b"before")
    snap = host.create_snapshot(vm, "s")
    host.guest_device(vm, 2000).write(0, b"after!")
    with pytest.raises(vim.fault.FileLocked):
        host.delete_virtual_disk("[datastore1] on/on.vmdk")
    with pytest.raises(vim.fault.FileLocked):
        host.create_vm("thief", datastore="datastore1", disks=[DiskSpec(file="[datastore1] on/on.vmdk", create=False)])
    host.copy_virtual_disk("[datastore1] on/on.vmdk", "[datastore1] c/base.vmdk")  # the base layer: as of the snapshot
    assert host.loose_disks[("datastore1", "c/base.vmdk")].disk.read(0, 6) == b"before"
    host.copy_virtual_disk(vm.disks[0].file_name, "[datastore1] c/live.vmdk")  # the writable layer
    assert host.loose_disks[("datastore1", "c/live.vmdk")].disk.read(0, 6) == b"after!"
    with pytest.raises(vim.fault.InvalidState):
        host.remove_disk(vm, 2000)
    host.remove_snapshot(vm, snap)
    with pytest.raises(vim.fault.InvalidPowerState):
        host.unregister_vm(vm)
