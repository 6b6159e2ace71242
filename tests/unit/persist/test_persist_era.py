"""The era fields of issue 17 survive a restart of a host kept in a datastore directory.

One test per field (docs/architecture.md, "Durability" and "Host profiles"): a disk's
independent mode, its datastore and the VM's ``workingDir``, an RDM's compatibility mode and
LUN, the VSS inputs (``disk.EnableUUID``, controllers, dynamic disks, the guest OS, Tools'
``vss.disableAppQuiescing``), Tools not installed, and what a snapshot recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vcbsim.simulator._host import Host, MiB
from vcbsim.simulator._vm import VM

DISK = 64 * MiB


def _restart(host: Host, directory: Path) -> Host:
    assert host.store is not None
    host.store.close()
    again = Host(host.profile.name, datastore_dir=directory)
    assert again.recovery_report is not None and again.recovery_report.clean, again.recovery_report.summary()
    return again


def _roundtrip(tmp_path: Path, profile: str, build: Callable[[Host], VM]) -> tuple[Host, VM, Host, VM]:
    host = Host(profile, datastore_dir=tmp_path)
    vm = build(host)
    again = _restart(host, tmp_path)
    return host, vm, again, again.find_vm(vm.name)


def test_independent_modes_survive(tmp_path: Path) -> None:
    def build(host: Host) -> VM:
        vm = host.add_vm(
            "vm1", disks=[DISK, DISK, DISK], power_state="poweredOff",
            disk_modes=["persistent", "independent_persistent", "independent_nonpersistent"],
        )
        host.power_on(vm)
        host.guest_device(vm, vm.disks[2].key).write(0, b"session")
        return vm

    _h, _vm, again, vm = _roundtrip(tmp_path, "esxi-7.0", build)
    assert [d.disk_mode for d in vm.disks] == ["persistent", "independent_persistent", "independent_nonpersistent"]
    snap = again.create_snapshot(vm, "s")
    assert set(snap.layers) == {vm.disks[0].key}
    # the running VM's session redo log came back with it, and still goes at power off
    assert vm.disks[2].session_redo() is not None and again.read_disk(vm, vm.disks[2].key, 0, 7) == b"session"
    again.power_off(vm)
    assert again.read_disk(vm, vm.disks[2].key, 0, 7) == bytes(7)


def test_disk_datastores_and_working_dir_survive(tmp_path: Path) -> None:
    def build(host: Host) -> VM:
        host.add_datastore("datastore2", 8 * 1024 * MiB)
        host.add_datastore("scratch", 4 * 1024 * MiB)
        return host.add_vm("vm1", disks=[DISK, DISK], disk_datastores=[None, "datastore2"], working_dir="scratch")

    h, old, again, vm = _roundtrip(tmp_path, "esx-3.5u2", build)
    assert {n: d.capacity for n, d in again.datastores.items()} == {n: d.capacity for n, d in h.datastores.items()}
    assert [d.datastore for d in vm.disks] == ["datastore1", "datastore2"]
    assert vm.working_dir == "[scratch] vm1" and vm.vmx_text() == old.vmx_text()
    again.create_snapshot(vm, "s")
    assert vm.disks[1].file_name == "[scratch] vm1/vm1_1-000001.vmdk"


def test_rdm_mode_and_lun_survive(tmp_path: Path) -> None:
    def build(host: Host) -> VM:
        vm = host.add_vm("db", disks=[DISK, DISK, DISK], disk_rdms=[None, "physicalMode", "virtualMode"])
        host.guest_device(vm, vm.disks[1].key).write(0, b"LUN")
        return vm

    _h, old, again, vm = _roundtrip(tmp_path, "esxi-7.0", build)
    assert [(d.rdm, d.disk_mode, d.lun_uuid, d.device_name) for d in vm.disks] == [
        (d.rdm, d.disk_mode, d.lun_uuid, d.device_name) for d in old.disks
    ]
    assert "vmfsPassthroughRawDeviceMap" in again.datastore_files(vm)["[datastore1] db/db_1.vmdk"]().decode()
    snap = again.create_snapshot(vm, "s")
    assert set(snap.layers) == {vm.disks[0].key, vm.disks[2].key}
    assert again.read_disk(vm, vm.disks[1].key, 0, 3, snapshot=snap) == b"LUN"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda vm: vm.extra_config.update({"disk.EnableUUID": "FALSE"}), "disk.EnableUUID is not TRUE"),
        (lambda vm: setattr(vm, "dynamic_disks", True), "the guest uses dynamic disks"),
        (None, "not every disk is on a SCSI controller"),
    ],
    ids=["enable-uuid", "dynamic-disks", "ide-controller"],
)
def test_vss_inputs_survive(tmp_path: Path, change: Callable[[VM], object] | None, why: str) -> None:
    """Each input that makes a 2019 guest file-system consistent on 7.0 is still there after a
    restart (and ``guest_os`` with them: without it the guest would be a 2003 one)."""

    def build(host: Host) -> VM:
        vm = host.add_vm(
            "w2019", disks=[DISK, DISK], guest_os="windows2019srv_64Guest",
            disk_controllers=["scsi", "scsi" if change else "ide"],
        )
        vm.extra_config["disk.EnableUUID"] = "TRUE"
        if change is not None:
            change(vm)
        assert host.store is not None
        host.store.save_vm(vm)
        assert host.vss_consistency(vm) == ("filesystem", why)
        return vm

    _h, _old, again, vm = _roundtrip(tmp_path, "esxi-7.0", build)
    assert vm.guest_os == "windows2019srv_64Guest"
    assert again.vss_consistency(vm) == ("filesystem", why)


def test_guest_os_and_application_consistency_survive(tmp_path: Path) -> None:
    def build(host: Host) -> VM:
        vm = host.add_vm("w2019", disks=[DISK], guest_os="windows2019srv_64Guest")
        vm.extra_config["disk.EnableUUID"] = "TRUE"
        host.create_snapshot(vm, "app", quiesce=True)
        return vm

    _h, old, again, vm = _roundtrip(tmp_path, "esxi-7.0", build)
    assert (vm.guest_os, vm.guest_full_name) == (old.guest_os, old.guest_full_name)
    assert again.vss_consistency(vm) == ("application", "every condition holds")
    (snap,) = vm.snapshots()
    (was,) = old.snapshots()
    assert (snap.quiesce_type, snap.backup_manifest, snap.vmsn_bytes) == (
        "application", was.backup_manifest, was.vmsn_bytes,
    )
    assert snap.backup_manifest == "w2019-vss_manifests1.zip"


def test_tools_settings_survive(tmp_path: Path) -> None:
    """No Tools, and Tools' ``vss.disableAppQuiescing`` (file-system consistency)."""

    def build(host: Host) -> VM:
        host.add_vm("bare", os_family="linux", disks=[DISK], tools="not-installed")
        vm = host.add_vm("w2019", disks=[DISK], guest_os="windows2019srv_64Guest")
        vm.extra_config["disk.EnableUUID"] = "TRUE"
        assert vm.tools is not None
        vm.tools.config["vss.disableAppQuiescing"] = "true"
        assert host.store is not None
        host.store.save_vm(vm)
        return vm

    _h, _old, again, vm = _roundtrip(tmp_path, "esxi-7.0", build)
    bare = again.find_vm("bare")
    assert bare.tools is not None and bare.tools.state == "not-installed"
    snap = again.create_snapshot(bare, "crash-consistent")  # quiesce=False works without Tools
    assert not snap.quiesced
    assert vm.tools is not None and vm.tools.config["vss.disableAppQuiescing"] == "true"
    assert again.create_snapshot(vm, "q", quiesce=True).quiesce_type == "filesystem"


def test_memory_snapshot_vmsn_size_survives(tmp_path: Path) -> None:
    def build(host: Host) -> VM:
        vm = host.add_vm("vm1", disks=[DISK], memory_mb=512)
        host.create_snapshot(vm, "m", memory=True)
        return vm

    h, _old, again, vm = _roundtrip(tmp_path, "esx-3.5u1", build)
    assert vm.snapshots()[0].vmsn_bytes == 32 * 1024 + 512 * MiB
    assert again.datastores["datastore1"].used == h.datastores["datastore1"].used


def test_era_inventory_is_what_reset_rebuilds_after_a_restart(tmp_path: Path) -> None:
    from vcbsim.simulator._demo import populate_era_demo

    host = Host("esxi-7.0", datastore_dir=tmp_path, populate=populate_era_demo)
    names = sorted(vm.name for vm in host.vms.values())
    again = _restart(host, tmp_path)
    assert again.populate is populate_era_demo and sorted(vm.name for vm in again.vms.values()) == names
    again.reset()
    assert sorted(vm.name for vm in again.vms.values()) == names
    assert again.store is not None
    again.store.close()


def test_rdm_mapping_descriptor_in_the_datastore_directory(tmp_path: Path) -> None:
    """What a datastore-level reader (a ghettoVCB-style script) greps: the mapping file's
    createType, physical or virtual; its extent is the file the LUN is kept in here."""
    host = Host("esx-3.5u2", datastore_dir=tmp_path)
    host.add_vm("db", disks=[DISK, DISK, DISK], disk_rdms=[None, "physicalMode", "virtualMode"])
    folder = tmp_path / "datastore1" / "db"
    assert 'createType="vmfs"' in (folder / "db.vmdk").read_text()
    prdm = (folder / "db_1.vmdk").read_text()
    assert 'createType="vmfsPassthroughRawDeviceMap"' in prdm and 'VMFSRDM "db_1-flat.vmdk"' in prdm
    assert 'createType="vmfsRawDeviceMap"' in (folder / "db_2.vmdk").read_text()
    assert host.store is not None
    host.store.close()
