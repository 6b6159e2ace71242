"""Hot-add restore over the wire (``vcbsim restore --server ... --vm -m hotadd``): the new VM is
created with empty disks, they are attached writable to the proxy VM and written through its
block devices, then detached; the restored disks equal the backup byte for byte and the guest's
files are there. A restore that fails mid-way (the datastore fills up under the writes) leaves
no VM registered and nothing attached to the proxy. While a disk is attached to the proxy its
owner cannot be powered on (``FileLocked``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim
from vsphere_disk_writes import SIZES, apply_writes, writes

from vcbsim.reference import main
from vcbsim.simulator import FaultRule
from vcbsim.simulator._hotadd import hot_added, mark_proxy

from .conftest import SMALL

MiB = 1 << 20


@pytest.fixture
def devices() -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="vcbsim-hr-"))  # short: a socket path holds 107 bytes
    yield where
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
def proxied(host: Any, devices: Path) -> Any:
    host.add_vm("vcb-proxy", os_family="linux", disks=[8 * MiB], tools="not-installed")
    mark_proxy(host, "vcb-proxy", devices)
    return host


def _settings(text: str) -> dict[str, str]:
    import re

    return {m.group(1): m.group(2) for m in re.finditer(r'^\s*([^=\s]+)\s*=\s*"(.*)"\s*$', text, re.M)}


def _remote(url: str, tmp_path: Path) -> list[str]:
    return ["--server", url, "--user", "user", "--password", "pass", "--insecure",
            "--state", str(tmp_path / "state"), "--json", "--no-progress"]  # fmt: skip


def _backup(url: str, tmp_path: Path, capsys: Any) -> int:
    assert main(["backup", *_remote(url, tmp_path), "-a", f"name:{SMALL}", "-t", "fullvm", "-m", "hotadd"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["status"] == "ok"
    return int(run["backup_id"])


def _images(tmp_path: Path, backup_id: int) -> dict[int, Any]:
    from vcbsim.reference import Catalog

    with Catalog(tmp_path / "state" / "medium") as cat:
        _meta, images = cat.image_as_of_snapshot(backup_id, tmp_path / "rebuild")
        return {k: (img.read(0, img.size), sum(n for _, n in img.allocated_areas())) for k, (_f, img) in images.items()}


def test_hotadd_restore_writes_the_new_vms_disks_through_the_proxy(proxied: Any, url: str, tmp_path: Path,
                                                                   capsys: Any) -> None:
    host = proxied
    backup_id = _backup(url, tmp_path, capsys)
    expected = _images(tmp_path, backup_id)
    host.guest_fs(SMALL).write_bytes("C:\\after.txt", b"written after the backup")
    mark = len(host.trace.events)
    args = ["restore", *_remote(url, tmp_path), "--backup", str(backup_id), "--vm", "--name", "small-hot",
            "-m", "hotadd", "--set", "memsize=512", "--set", "tools.syncTime=TRUE"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["restored"] == "small-hot" and out["bytes_uploaded"] == sum(n for _, n in expected.values())
    vm = host.find_vm("small-hot")
    original = host.find_vm(SMALL)
    assert vm.uuid != original.uuid and vm.power_state == "poweredOff" and vm.memory_mb == 512
    assert vm.extra_config.get("tools.syncTime") == "TRUE" and vm.guest_id == original.guest_id
    # the kit's RST-VMX-KEPT on the .vmx: guestOS, numvcpus, the disk modes kept, memsize as asked
    from vcbsim.conformance._check_restore import check_restored_settings

    found = check_restored_settings(_settings(original.vmx_text()), _settings(vm.vmx_text()),
                                    {"memsize": "512", "tools.syncTime": "TRUE"}, new_vm=True)
    assert found == [], [v.format() for v in found]
    assert [d.capacity for d in vm.disks] == [d.capacity for d in original.disks]
    for d, (_key, (data, _n)) in zip(vm.disks, sorted(expected.items()), strict=True):
        view = host.disk_view(vm, d.key)
        assert view.read(0, view.size) == data
        # only the allocated areas were written: the new thin disk is as sparse as the backup
        assert sum(n for _, n in view.allocated_areas()) <= sum(n for _, n in host.disk_view(original, d.key).allocated_areas())
    assert vm.guest is not None and vm.guest.read_bytes("D:\\db\\big.mdf") == bytes(range(256)) * 2000
    assert not vm.guest.exists("C:\\after.txt")
    events = host.trace.events[mark:]
    kinds = [e.kind for e in events if e.kind in ("vm.create", "disk.hotadd", "disk.hotwrite", "disk.hotremove")]
    assert kinds == ["vm.create", "disk.hotadd", "disk.hotadd", "disk.hotwrite", "disk.hotremove",
                     "disk.hotwrite", "disk.hotremove"]
    assert all(e.details["writable"] for e in events if e.kind == "disk.hotadd")
    wrote = sum(e.details["bytes"] for e in events if e.kind == "disk.hotwrite")
    assert wrote == out["bytes_uploaded"]
    assert hot_added(host, "vcb-proxy") == [] and [d.key for d in host.find_vm("vcb-proxy").disks] == [2000]
    host.power_on(vm)  # detached: the new VM is its own again


def test_a_failing_hotadd_restore_leaves_no_vm_and_nothing_attached(proxied: Any, url: str, tmp_path: Path,
                                                                    capsys: Any, devices: Path) -> None:
    host = proxied
    backup_id = _backup(url, tmp_path, capsys)
    before = set(host.vms)
    # the datastore fills up part-way through the writes: the NBD write answers ENOSPC
    host.faults.add(FaultRule("disk.write", "small-fail", fault="NoDiskSpace", after=3))
    args = ["restore", *_remote(url, tmp_path), "--backup", str(backup_id), "--vm", "--name", "small-fail",
            "-m", "hotadd"]
    assert main(args) == 4  # a state error (exit code 4), in one line
    err = json.loads(capsys.readouterr().out)
    assert "ENOSPC" in err["message"] and "\n" not in err["message"]
    assert set(host.vms) == before
    assert hot_added(host, "vcb-proxy") == [] and list((devices / "vcb-proxy").iterdir()) == []
    kinds = [e.kind for e in host.trace.events if e.kind in ("vm.create", "vm.destroy", "disk.hotremove")]
    assert kinds[-4:] == ["vm.create", "disk.hotremove", "disk.hotremove", "vm.destroy"]
    assert not any(ds == "datastore1" and p.startswith("small-fail/") for ds, p in host.uploads)
    # over the original is the upload route's: refused in one line
    assert main([*args[:-2], "--over"]) == 2
    assert "--over" in json.loads(capsys.readouterr().out)["message"]


def test_the_owner_of_an_attached_disk_cannot_be_powered_on(proxied: Any, client: Any) -> None:
    host = proxied
    from vcbsim.simulator._vmlifecycle import DiskSpec

    vm = host.create_vm("fresh", datastore="datastore1", disks=[DiskSpec(capacity=4 * MiB)])
    si = client.si
    find = si.content.searchIndex.FindByInventoryPath
    fresh, proxy_vm = find("ha-datacenter/vm/fresh"), find("ha-datacenter/vm/vcb-proxy")
    name = next(d.backing.fileName for d in fresh.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
    add = vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.VirtualDisk(
        key=-1, controllerKey=1000, capacityInKB=0,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=name, diskMode="persistent")))
    WaitForTask(proxy_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[add])))
    (att,) = hot_added(host, "vcb-proxy")
    assert att.writable and att.export is not None and att.export.path.exists()
    with pytest.raises(vim.fault.FileLocked) as err:
        WaitForTask(fresh.PowerOnVM_Task())
    assert "locked" in err.value.msg and fresh.runtime.powerState == "poweredOff"
    with pytest.raises(vim.fault.FileLocked):
        WaitForTask(fresh.Destroy_Task())
    if shutil.which("qemu-img") is not None:  # a real client writes the device; the VM's disk has it
        src = Path(tempfile.mkdtemp(prefix="vcbsim-q-")) / "src.raw"
        src.write_bytes(b"Q" * MiB)
        uri = f"nbd+unix:///{att.device}?socket={att.export.path}"
        subprocess.run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(src), uri], check=True,
                       capture_output=True, timeout=60)
        assert host.disk_view(vm, vm.disks[0].key).read(0, MiB) == b"Q" * MiB
        shutil.rmtree(src.parent)
    remove = vim.vm.device.VirtualDeviceSpec(operation="remove", device=vim.vm.device.VirtualDisk(
        key=att.proxy_key, controllerKey=1000, capacityInKB=0))
    WaitForTask(proxy_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[remove])))
    assert not att.export.path.exists()
    WaitForTask(fresh.PowerOnVM_Task())
    assert fresh.runtime.powerState == "poweredOn"
    # a running VM's disk is its own: attaching it to the proxy is refused the same way
    with pytest.raises(vim.fault.FileLocked):
        WaitForTask(proxy_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[add])))
    assert hot_added(host, "vcb-proxy") == []


def test_the_kit_finds_no_broken_restore_or_transport_rule_in_hotadd_restores(proxied: Any, url: str,
                                                                              tmp_path: Path, capsys: Any) -> None:
    """The merged trace (host and proxy) of a hot-add restore that succeeds and of one that
    fails mid-way: ``check_trace`` finds no ``RST-*`` (RST-NO-HALF-VM among them) and no
    ``TR-HOTADD-DETACH`` (nothing left attached to the proxy)."""
    from vcbsim.conformance import check_trace
    from vcbsim.reference import Catalog, VSphereHostClient
    from vcbsim.reference._hotaddrestore import restore_vm_hotadd
    from vcbsim.reference._nbdclient import NbdError

    host = proxied
    backup_id = _backup(url, tmp_path, capsys)
    with VSphereHostClient(url, "user", "pass", insecure=True) as client, \
            Catalog(tmp_path / "state" / "medium") as cat:
        client.trace.subscribe(lambda ev: host.trace.emit(ev.actor, ev.kind, vm=ev.vm, step=ev.step, **ev.details))
        restore_vm_hotadd(cat, backup_id, client, name="kit-ok")
        host.faults.add(FaultRule("disk.write", "kit-fail", fault="NoDiskSpace", after=1))
        with pytest.raises(NbdError, match="ENOSPC"):
            restore_vm_hotadd(cat, backup_id, client, name="kit-fail")
    report = check_trace(host.trace.events, profile=host.profile.name)
    broken = {v.rule_id for v in report.violations if v.rule_id.startswith(("RST-", "TR-"))}
    assert broken == set(), [v.format() for v in report.violations]
    ops = [(e.kind, e.details.get("op")) for e in host.trace.events if e.actor == "proxy" and
           e.details.get("op") in ("restore-vm", "write-disk")]
    assert ops[:2] == [("op.invoke", "restore-vm"), ("op.invoke", "write-disk")]
    assert ops[-2:] == [("op.fail", "write-disk"), ("op.fail", "restore-vm")]
    assert "kit-fail" not in {vm.name for vm in host.vms.values()} and hot_added(host, "vcb-proxy") == []


def test_hotadd_both_ways_round_trips_the_snapshot() -> None:
    """Property: random guest writes before and after the backup snapshot; a backup read through
    the proxy's NBD devices (``-m hotadd`` over the wire) and a restore written through them give
    a new VM whose disks equal the disks as of the snapshot, byte for byte."""
    from hypothesis import HealthCheck, given, settings

    from vcbsim.reference import BackupProxy, Catalog, VSphereHostClient
    from vcbsim.reference._hotaddrestore import restore_vm_hotadd
    from vcbsim.simulator import Host
    from vcbsim.simulator.soap import serve

    @settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(before=writes(), during=writes())
    def prop(before: list[Any], during: list[Any]) -> None:
        host = Host("esxi-7.0", seed=9)
        vm = host.add_vm("src", disks=list(SIZES))
        host.add_vm("vcb-proxy", disks=[8 * MiB], tools="not-installed")
        mark_proxy(host, "vcb-proxy")
        apply_writes(host, vm, before)
        expected = [host.disk_view(vm, d.key).read(0, d.capacity) for d in vm.disks]

        def after_snapshot(v: Any, step: str) -> None:
            if v is vm and step == "WF-1d":  # the snapshot exists: these go to the redo logs
                apply_writes(host, vm, during)

        host.on_quiesce_step(after_snapshot)
        with tempfile.TemporaryDirectory(prefix="vcbsim-hp-") as t, serve(host, port=0) as server, \
                VSphereHostClient(f"https://127.0.0.1:{server.port}/sdk", "user", "pass", insecure=True) as client, \
                Catalog(Path(t) / "medium") as cat:
            res = BackupProxy(client, Path(t) / "proxy", transport="hotadd").backup("name:src", "fullvm", catalog=cat)
            assert res.ok and res.backup_id is not None, res.summary()
            restore_vm_hotadd(cat, res.backup_id, client, name="copy")
        copy = host.find_vm("copy")
        assert [host.disk_view(copy, d.key).read(0, d.capacity) for d in copy.disks] == expected
        assert hot_added(host, "vcb-proxy") == [] and host.find_vm("src").snapshots() == []
        assert {e.kind for e in host.trace.events} >= {"disk.hotread", "disk.hotwrite"}
        # not vacuous: the writes after the snapshot are on the source (the commit kept them)
        twin_host = Host("esxi-7.0", seed=9)
        twin = twin_host.add_vm("src", disks=list(SIZES))
        apply_writes(twin_host, twin, before + during)
        src = host.find_vm("src")
        assert [host.disk_view(src, d.key).read(0, d.capacity) for d in src.disks] == \
            [twin_host.disk_view(twin, d.key).read(0, d.capacity) for d in twin.disks]

    prop()
