"""Ansible's OVF modules (``community.vmware``) against an ESXi 7.0 host served by vcbsim.

``vmware_export_ovf`` exports a powered-off VM through ``ExportVm`` and an NFC lease: the
VMDK files it writes must be read by ``qemu-img`` and equal the VM's disks byte for byte, and
the OVF must describe the VM. ``vmware_deploy_ovf`` imports such a package back
(``CreateImportSpec`` + ``ImportVApp`` + uploads) as a new VM whose disks equal the original.
``vmware_guest`` + ``vmware_guest_disk`` restore from disk files already on the datastore
(uploaded with ``vsphere_copy``). Misuse comes back as the faults a host answers.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from vcbsim.simulator._export import open_export
from vcbsim.simulator._ovf import parse_ovf

pytestmark = pytest.mark.skipif(
    shutil.which("ansible-playbook") is None,
    reason="ansible-playbook is not installed (pip install 'ansible>=12,<13' for community.vmware)",
)
QEMU_IMG = shutil.which("qemu-img")
needs_qemu = pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img not installed (apt-get install qemu-utils)")

DATACENTER = "ha-datacenter"
WIN = "win2003-sql"
LINUX = "rhel5-web"
MiB = 1 << 20


@pytest.fixture
def host_profile() -> str:
    """ESXi 7.0: ``ExportVm`` / ``ImportVApp`` are API 4.0 (the default ESX 3.5 host has neither)."""
    return "esxi-7.0"


def ok(result: Any) -> dict[str, Any]:
    assert not result.failed, result.result.get("msg", result.result)
    return dict(result.result)


def failure(result: Any) -> str:
    """All a failed module said (its message, and the traceback of an exception it let out)."""
    assert result.failed, result.result
    return " ".join(str(result.result.get(k, "")) for k in ("msg", "module_stderr", "exception"))


def export(vm: str, export_dir: Path, **args: Any) -> dict[str, Any]:
    return {"community.vmware.vmware_export_ovf": {"datacenter": DATACENTER, "name": vm,
                                                   "export_dir": str(export_dir), **args}}


def deploy(ovf: Path, **args: Any) -> dict[str, Any]:
    return {"community.vmware.vmware_deploy_ovf": {"datacenter": DATACENTER, "datastore": "datastore1",
                                                   "ovf": str(ovf), **args}}


def guest_data(esx: Any, vm_name: str, seed: int) -> dict[str, bytes]:
    """Guest writes on every disk of ``vm_name``, then power off: files through the guest's
    file systems where it has them (returned by path), else raw writes across grains."""
    host = esx.host
    vm = host.find_vm(vm_name)
    rng = random.Random(seed)
    files: dict[str, bytes] = {}
    with host.lock:
        fs = host.guest_fs(vm) if vm.guest is not None else None
        if fs is not None:
            for i, vol in enumerate(v for v in fs.volumes if v.letter or v.mount_point):
                root = f"{vol.letter}:\\" if vol.letter else vol.mount_point.rstrip("/") + "/"
                path = f"{root}restore-check-{seed}-{i}.bin"
                files[path] = rng.randbytes(rng.randrange(100_000, 400_000))
                fs.write_bytes(path, files[path])
        else:
            for d in vm.disks:
                dev = host.guest_device(vm, d.key)
                for _ in range(6):
                    length = rng.randrange(1, 300_000)
                    dev.write(rng.randrange(0, dev.size - length), rng.randbytes(length))
        if vm.power_state != "poweredOff":
            host.power_off(vm)
    return files


def allocated(view: Any) -> int:
    return sum(length for _, length in view.allocated_areas())


def same_data(a: Any, b: Any) -> bool:
    """``a`` and ``b`` hold the same bytes: equal sizes, equal data wherever either has any
    (never-written grains read as zeros on both)."""
    if a.size != b.size:
        return False
    for offset, length in sorted(set(a.allocated_areas()) | set(b.allocated_areas())):
        for o in range(offset, offset + length, 4 * MiB):
            n = min(4 * MiB, offset + length - o)
            if a.read(o, n) != b.read(o, n):
                return False
    return True


def sparse_raw(view: Any, path: Path) -> Path:
    """The disk as a sparse raw file (only its data written), for ``qemu-img compare``."""
    with path.open("wb") as f:
        f.truncate(view.size)
        for offset, length in view.allocated_areas():
            f.seek(offset)
            f.write(view.read(offset, length))
    return path


def qemu(*args: str) -> subprocess.CompletedProcess[str]:
    assert QEMU_IMG is not None
    return subprocess.run([QEMU_IMG, *args], capture_output=True, text=True, check=False)


def lease_states(esx: Any, vm_moref: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in esx.host.trace.events:
        if e.kind == "nfc.lease" and e.vm == vm_moref:
            out.setdefault(e.details["lease"], []).append(e.details["state"])
    return out


@needs_qemu
def test_export_ovf_writes_a_package_qemu_img_reads_equal_to_the_vm_disks(esx: Any, playbook: Any, tmp_path: Path) -> None:
    """A powered-off VM with a snapshot: ``ExportVm`` exports its current state (the guest's
    writes after the snapshot included), and leaves the snapshot as it was."""
    guest_data(esx, WIN, seed=16)
    vm = esx.vm(WIN)
    snap = esx.host.create_snapshot(vm, "before-export")
    guest_data(esx, WIN, seed=17)
    assert not all(same_data(esx.host.disk_view(vm.moref, d.key), esx.host.disk_view(vm.moref, d.key, snap.moref))
                   for d in vm.disks)
    (result,) = playbook(export(WIN, tmp_path / "export"))
    facts = ok(result)
    assert facts["changed"] is True
    out = tmp_path / "export" / WIN
    *files, nvram = [Path(f) for f in facts["instance"]["device_files"]]
    # the module names the lease's disk-N.vmdk after the VM, one file per disk, and takes the
    # .nvram an ESXi 6.7+ lease lists after them (it asks the host's version first)
    assert [f.name for f in files] == [f"{WIN}-{i}.vmdk" for i in range(len(vm.disks))] and len(files) == 2
    assert nvram.name == f"{WIN}-2.nvram" and nvram.stat().st_size == 8684
    assert Path(facts["instance"]["ovf_file"]) == out / f"{WIN}.ovf"

    for f, d in zip(files, vm.disks, strict=True):
        info = json.loads(qemu("info", "--output=json", str(f)).stdout)
        assert info["format"] == "vmdk" and info["format-specific"]["data"]["create-type"] == "streamOptimized"
        assert info["virtual-size"] == d.capacity
        view = esx.host.disk_view(vm.moref, d.key)
        cmp = qemu("compare", "-f", "vmdk", "-F", "raw", str(f), str(sparse_raw(view, tmp_path / f"{d.key}.raw")))
        assert cmp.returncode == 0, cmp.stdout + cmp.stderr

    # the OVF describes the VM, names the files the module wrote and gives their sizes
    system = parse_ovf((out / f"{WIN}.ovf").read_text())
    assert (system.name, system.guest_id, system.num_cpus, system.memory_mb, system.hw_version) == (
        WIN, vm.guest_id, vm.num_cpus, vm.memory_mb, vm.hw_version)
    assert [(d.href, d.size, d.capacity, d.unit, d.controller) for d in system.disks] == [
        (f.name, f.stat().st_size, d.capacity, d.unit_number, d.controller) for f, d in zip(files, vm.disks, strict=True)]
    assert [d.populated for d in system.disks] == [allocated(esx.host.disk_view(vm.moref, d.key)) for d in vm.disks]
    assert system.network == "VM Network" and system.extra_config == {}
    assert system.nvram == (nvram.name, 8684)
    # the manifest the module writes (SHA256) covers each file
    manifest = dict(line.split("= ") for line in (out / f"{WIN}.mf").read_text().splitlines())
    assert len(manifest) == 4
    for f in [*files, nvram, out / f"{WIN}.ovf"]:
        assert manifest[f"SHA256({f.name})"] == hashlib.sha256(f.read_bytes()).hexdigest()

    # the host: one lease, completed (not aborted), each disk read once, the VM free again
    [states] = lease_states(esx, vm.moref).values()
    assert states == ["initializing", "ready", "done"]
    reads = [e for e in esx.host.trace.events if e.kind == "nfc.read" and e.vm == vm.moref]
    assert sorted((e.details["disk"], e.details["bytes"]) for e in reads) == sorted(
        (d.key, f.stat().st_size) for f, d in zip(files, vm.disks, strict=True))
    assert esx.host.holds.on(vm.moref, "export") == []
    assert [s.name for s in vm.root_snapshots] == ["before-export"] and vm.current_snapshot is snap
    calls = esx.server.endpoint.calls
    assert calls.get("ExportVm") == 1 and calls.get("CreateDescriptor") == 1 and calls.get("HttpNfcLeaseComplete") == 1
    assert calls.get("HttpNfcLeaseProgress", 0) >= 1 and "HttpNfcLeaseAbort" not in calls


def test_export_ovf_with_extraconfig_carries_the_vmx_options(esx: Any, playbook: Any, tmp_path: Path) -> None:
    vm = esx.vm(LINUX)
    vm.extra_config["backup.policy"] = "nightly"
    guest_data(esx, LINUX, seed=3)
    plain, full = playbook(export(LINUX, tmp_path / "plain"),
                           export(LINUX, tmp_path / "full", export_with_extraconfig=True))
    assert parse_ovf(Path(ok(plain)["instance"]["ovf_file"]).read_text()).extra_config == {}
    assert parse_ovf(Path(ok(full)["instance"]["ovf_file"]).read_text()).extra_config == {"backup.policy": "nightly"}


def test_export_ovf_misuse_gets_the_hosts_answers(esx: Any, playbook: Any, tmp_path: Path) -> None:
    host = esx.host
    faults_before = dict(esx.server.endpoint.faults)
    running = esx.vm(LINUX)
    guest_data(esx, WIN, seed=5)
    held = open_export(host, esx.vm(WIN).moref, None)  # another client's export lease on the VM
    held.ready()
    missing, powered_on, busy = playbook(
        {"community.vmware.vmware_export_ovf": {"datacenter": DATACENTER, "moid": "vm-999",
                                                "export_dir": str(tmp_path / "x")}},
        export(LINUX, tmp_path / "y"),
        export(WIN, tmp_path / "z"),
    )
    # a VM id the host does not know: ManagedObjectNotFound (the module says "not found")
    assert "not found" in failure(missing)
    assert esx.server.endpoint.faults.get("ManagedObjectNotFound", 0) > faults_before.get("ManagedObjectNotFound", 0)
    # a running VM: the module refuses before asking (the host would answer InvalidPowerState;
    # tests/integration/soap/test_soap_nfclease.py); nothing was exported
    assert "poweredoff" in failure(powered_on) and running.power_state == "poweredOn"
    assert lease_states(esx, running.moref) == {}
    # a VM under another export lease: TaskInProgress (API reference, ExportVm faults); the
    # other lease is untouched
    assert "TaskInProgress" in failure(busy)
    assert held.state == "ready" and len(lease_states(esx, esx.vm(WIN).moref)) == 1
    held.complete()


@needs_qemu
def test_deploy_ovf_restores_an_exported_vm_with_equal_disks(esx: Any, playbook: Any, tmp_path: Path) -> None:
    host = esx.host
    files = guest_data(esx, WIN, seed=7)
    assert len(files) == 2  # C: and D:, one on each disk
    source = esx.vm(WIN)
    (exported,) = playbook(export(WIN, tmp_path / "export"))
    ovf = Path(ok(exported)["instance"]["ovf_file"])
    count = len(host.vms)
    # the same package as an OVA: a tar with the descriptor first (OVF 1.0, "OVF package")
    ova = tmp_path / f"{WIN}.ova"
    with tarfile.open(ova, "w") as tar:
        for f in [ovf, *sorted(ovf.parent.glob("*.vmdk")), *sorted(ovf.parent.glob("*.nvram"))]:
            tar.add(f, arcname=f.name)
    restored, again, thick, hosted, from_ova = playbook(
        deploy(ovf, name="win-restored"),  # and powered on (the module's default)
        deploy(ovf, name="win-restored"),  # idempotent: the VM is there, and on
        deploy(ovf, name="win-thick", power_on=False, disk_provisioning="eagerZeroedThick"),
        # a hosted format no ESXi runs VMs on: OvfUnsupportedDiskProvisioning in the spec
        deploy(ovf, name="win-hosted", power_on=False, disk_provisioning="twoGbMaxExtentSparse"),
        deploy(ova, name="win-ova", power_on=False),
    )
    facts = ok(restored)
    assert facts["changed"] is True and facts["instance"]["hw_name"] == "win-restored"
    assert ok(again)["changed"] is False
    ok(thick)
    assert "Failure validating OVF import spec" in failure(hosted) and "twoGbMaxExtentSparse" in failure(hosted)
    names = [vm.name for vm in host.vms.values()]
    assert len(names) == count + 3 and {"win-restored", "win-thick", "win-ova"} <= set(names)
    assert "win-hosted" not in names
    assert [d.thin for d in host.find_vm("win-thick").disks] == [False, False]
    vm = host.find_vm("win-restored")
    assert (vm.guest_id, vm.num_cpus, vm.memory_mb, vm.power_state) == (
        source.guest_id, source.num_cpus, source.memory_mb, "poweredOn")
    assert facts["instance"]["hw_power_status"] == "poweredOn"
    # the restored VM boots from its disks: the guest's files are there
    with host.lock:
        fs = host.guest_fs(vm)
        assert {path: fs.read_bytes(path) for path in files} == files
    assert [d.capacity for d in vm.disks] == [d.capacity for d in source.disks] and all(d.thin for d in vm.disks)
    for new, old in zip(vm.disks, source.disks, strict=True):
        assert same_data(host.disk_view(vm.moref, new.key), host.disk_view(source.moref, old.key)), new.label
    [states] = lease_states(esx, vm.moref).values()
    assert states == ["initializing", "ready", "done"]
    writes = [e for e in host.trace.events if e.kind == "nfc.write" and e.vm == vm.moref]
    assert sorted(e.details["disk"] for e in writes) == sorted(d.key for d in vm.disks)
    assert host.holds.on(vm.moref, "export") == []
    ok(from_ova)
    copy = host.find_vm("win-ova")
    for new, old in zip(copy.disks, source.disks, strict=True):
        assert same_data(host.disk_view(copy.moref, new.key), host.disk_view(source.moref, old.key)), new.label


@needs_qemu
def test_deploy_ovf_under_a_taken_name_or_without_its_disks_leaves_nothing(esx: Any, playbook: Any, tmp_path: Path) -> None:
    host = esx.host
    guest_data(esx, LINUX, seed=11)
    (exported,) = playbook(export(LINUX, tmp_path / "export"))
    ovf = Path(ok(exported)["instance"]["ovf_file"])
    before = {m: vm.name for m, vm in host.vms.items()}
    leases_before = len([e for e in host.trace.events if e.kind == "nfc.lease"])
    # without ``name`` the module takes the OVF's, which the source VM has: DuplicateName
    # (API reference, ImportVApp faults), and no VM, lease or disk file is left
    (clash,) = playbook(deploy(ovf, power_on=False))
    assert "DuplicateName" in failure(clash)
    assert {m: vm.name for m, vm in host.vms.items()} == before
    assert len([e for e in host.trace.events if e.kind == "nfc.lease"]) == leases_before
    assert not any(ds == "datastore1" and path.startswith(f"{LINUX}_") for ds, path in host.loose_disks)

    # a package missing its disk file: the module aborts the import lease (HttpNfcLeaseAbort
    # with its SystemError), and the host destroys the VM the import had made
    for f in ovf.parent.glob("*.vmdk"):
        f.unlink()
    (partial,) = playbook(deploy(ovf, name="half-made", power_on=False))
    assert "Failed to find VMDK file" in failure(partial)
    assert {m: vm.name for m, vm in host.vms.items()} == before
    made = [e for e in host.trace.events if e.kind == "nfc.lease" and e.details.get("kind") == "import"]
    assert len(made) == 1
    states = [e.details["state"] for e in host.trace.events
              if e.kind == "nfc.lease" and e.details["lease"] == made[0].details["lease"]]
    assert states == ["initializing", "ready", "error"]
    assert not any(path.startswith("half-made/") for _, path in host.loose_disks)


@needs_qemu
def test_vmware_guest_restore_from_disk_files_uploaded_to_the_datastore(esx: Any, playbook: Any, tmp_path: Path) -> None:
    """The restore a user scripts from an export with the collection: convert the exported
    stream-optimized VMDK to a flat one (descriptor + ``-flat`` extent, what a host keeps),
    upload both with ``vsphere_copy``, create the VM with ``vmware_guest`` and attach the file
    with ``vmware_guest_disk`` (``vmware_guest``'s own ``disk.filename`` asks the host to
    create the file, which exists: refused, ``test_vmware_restore_modules.py``)."""
    host = esx.host
    host.add_vm("small-web", os_family="linux", disks=[48 * MiB], power_state="poweredOff", tools="not-installed",
                datastore="datastore1")
    guest_data(esx, "small-web", seed=23)
    source = esx.vm("small-web")
    (exported,) = playbook(export("small-web", tmp_path / "export"))
    stream, _nvram = ok(exported)["instance"]["device_files"]
    flat_dir = tmp_path / "flat"
    flat_dir.mkdir()
    conv = qemu("convert", "-f", "vmdk", "-O", "vmdk", "-o", "subformat=monolithicFlat", stream,
                str(flat_dir / "restored.vmdk"))
    assert conv.returncode == 0, conv.stderr
    copy = {"hostname": f"127.0.0.1:{esx.server.port}", "datacenter": DATACENTER, "datastore": "datastore1"}
    up_desc, up_flat, created, attached = playbook(
        {"community.vmware.vsphere_copy": {**copy, "src": str(flat_dir / "restored.vmdk"),
                                           "path": "restored/restored.vmdk"}},
        {"community.vmware.vsphere_copy": {**copy, "src": str(flat_dir / "restored-flat.vmdk"),
                                           "path": "restored/restored-flat.vmdk"}},
        {"community.vmware.vmware_guest": {
            "datacenter": DATACENTER, "folder": f"/{DATACENTER}/vm", "name": "restored", "state": "present",
            "guest_id": source.guest_id, "esxi_hostname": host.name, "datastore": "datastore1",
            "hardware": {"memory_mb": source.memory_mb, "num_cpus": source.num_cpus, "scsi": "lsilogic"}}},
        {"community.vmware.vmware_guest_disk": {
            "datacenter": DATACENTER, "name": "restored", "disk": [{
                "filename": "[datastore1] restored/restored.vmdk", "scsi_controller": 0, "scsi_type": "lsilogic",
                "unit_number": 0, "state": "present"}]}},
    )
    for r in (up_desc, up_flat, created, attached):
        ok(r)
    vm = host.find_vm("restored")
    [disk] = vm.disks
    assert disk.file_name == "[datastore1] restored/restored.vmdk" and disk.capacity == source.disks[0].capacity
    assert same_data(host.disk_view(vm.moref, disk.key), host.disk_view(source.moref, source.disks[0].key))
