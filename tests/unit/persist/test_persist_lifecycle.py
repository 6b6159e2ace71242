"""A VM created, registered or given a disk over the restore surface survives a restart of a
host kept in a datastore directory; unregister and destroy too (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vcbsim.simulator._host import Host
from vcbsim.simulator._vmlifecycle import DiskSpec
from vcbsim.simulator.disk import LayeredDisk, write_vmdk

MiB = 1024**2


def _open(root: Path) -> Host:
    return Host("esx-3.5u2", seed=1, datastore_dir=root)


def _put(host: Host, path: str, data: bytes) -> None:
    assert host.store is not None
    host.store.put_file("datastore1", path, [data], len(data))


def test_created_vm_with_an_uploaded_disk_survives_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    host = _open(root)
    src = LayeredDisk(8 * MiB)
    src.write(3 * MiB, b"restored bytes")
    write_vmdk(src.view(), tmp_path / "up.vmdk", split=False)
    _put(host, "rest/rest.vmdk", (tmp_path / "up.vmdk").read_bytes())
    vm = host.create_vm("rest", datastore="datastore1",
                        disks=[DiskSpec(file="[datastore1] rest/rest.vmdk", create=False), DiskSpec(capacity=MiB)])
    assert host.read_disk(vm, 2000, 3 * MiB, 14) == b"restored bytes"
    assert "rest/rest.vmdk" not in host.store.plain_files("datastore1")  # the VM's own file now
    host.store.close()
    again = _open(root)
    back = again.find_vm("rest")
    assert back.moref == vm.moref
    assert [d.file_name for d in back.disks] == ["[datastore1] rest/rest.vmdk", "[datastore1] rest/rest_1.vmdk"]
    assert again.read_disk(back, 2000, 3 * MiB, 14) == b"restored bytes"
    assert again.recovery_report is not None and again.recovery_report.clean
    again.store.close()


def test_unregister_survives_a_restart_and_register_brings_the_vm_back(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    host = _open(root)
    vm = host.create_vm("keep", datastore="datastore1", disks=[DiskSpec(capacity=4 * MiB)])
    host.guest_device(vm, 2000).write(0, b"kept")
    host.unregister_vm(vm)
    host.store.close()
    again = _open(root)
    assert not any(v.name == "keep" for v in again.vms.values())
    back = again.register_vm("[datastore1] keep/keep.vmx")
    assert back.moref == vm.moref and again.read_disk(back, 2000, 0, 4) == b"kept"
    again.destroy_vm(back)
    assert not (root / "datastore1" / "keep").exists()
    again.store.close()
    third = _open(root)
    assert not any(v.name == "keep" for v in third.vms.values())
    third.store.close()


def test_a_failed_create_leaves_no_files_and_the_uploads(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    host = _open(root)
    src = LayeredDisk(4 * MiB)
    src.write(0, b"x")
    write_vmdk(src.view(), tmp_path / "up.vmdk", split=False)
    _put(host, "bad/bad.vmdk", (tmp_path / "up.vmdk").read_bytes())
    with pytest.raises(Exception) as info:
        host.create_vm("bad", datastore="datastore1", disks=[
            DiskSpec(file="[datastore1] bad/bad.vmdk", create=False),
            DiskSpec(file="[datastore1] bad/missing.vmdk", create=False),
        ])
    assert type(info.value).__name__.endswith("FileNotFound")
    assert not any(v.name == "bad" for v in host.vms.values())
    assert set(host.store.plain_files("datastore1")) == {"bad/bad.vmdk"}
    assert sorted(p.name for p in (root / "datastore1" / "bad").iterdir()) == ["bad.vmdk"]
    host.store.close()


def test_a_detached_disk_stays_as_a_disk_file(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    host = _open(root)
    vm = host.create_vm("det", datastore="datastore1", disks=[DiskSpec(capacity=4 * MiB), DiskSpec(capacity=2 * MiB)])
    host.guest_device(vm, 2001).write(MiB, b"second disk")
    host.remove_disk(vm, 2001, destroy=False)
    plain = host.store.plain_files("datastore1")
    assert plain["det/det_1-flat.vmdk"] == 2 * MiB and "det/det_1.vmdk" in plain
    host.store.close()
    again = _open(root)
    back = again.find_vm("det")
    assert len(back.disks) == 1
    d = again.add_disk(back, DiskSpec(file="[datastore1] det/det_1.vmdk", create=False))
    assert again.read_disk(back, d.key, MiB, 11) == b"second disk"
    again.store.close()


def test_the_over_the_original_flow_in_a_datastore_directory(tmp_path: Path) -> None:
    """What a wire restore over the original does: uploads in the original's folder beside its
    files, the original destroyed, the .vmx registered under the same name; then a restart."""
    root = tmp_path / "ds"
    host = _open(root)
    orig = host.create_vm("same", datastore="datastore1", disks=[DiskSpec(capacity=4 * MiB)])
    host.guest_device(orig, 2000).write(0, b"today")
    src = LayeredDisk(4 * MiB)
    src.write(0, b"backup")
    write_vmdk(src.view(), tmp_path / "up.vmdk", split=False)
    _put(host, "same/same-r1.vmdk", (tmp_path / "up.vmdk").read_bytes())
    _put(host, "same/same-r1.vmx", b'displayName = "same"\nscsi0:0.present = "TRUE"\nscsi0:0.fileName = "same-r1.vmdk"\n')
    host.destroy_vm(orig)
    vm = host.register_vm("[datastore1] same/same-r1.vmx", name="same")
    assert vm.moref != orig.moref and host.read_disk(vm, 2000, 0, 6) == b"backup"
    assert host.store.plain_files("datastore1") == {}
    host.store.close()
    again = _open(root)
    assert again.read_disk("same", 2000, 0, 6) == b"backup"
    assert again.recovery_report is not None and again.recovery_report.clean, again.recovery_report.summary()
    again.store.close()
