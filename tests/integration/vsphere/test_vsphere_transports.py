"""The reference proxy over ``--server`` on each transport: ``-m nfc`` exports through the
host's lease (pyVmomi ``ExportSnapshot``, the disks downloaded as stream-optimized VMDK);
the restored image equals the disk as of the snapshot, and the lease is completed before the
snapshot is removed. ``-m hotadd`` over the wire reconfigures the marked proxy VM to add the
snapshot's disk files, reads them through the NBD devices they become in the proxy's guest
(``disk.hotread`` counts the bytes) and removes them before the commit."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcbsim.reference import BackupProxy, Catalog, VSphereHostClient
from vcbsim.simulator import VirtualClock
from vcbsim.simulator.disk import read_vmdk
from vcbsim.simulator.soap import serve

MiB = 1 << 20


def digest(view: Any) -> str:
    h = hashlib.sha256()
    for off in range(0, view.size, 8 * MiB):
        h.update(view.read(off, min(8 * MiB, view.size - off)))
    return h.hexdigest()


@pytest.fixture
def esxi(helpers: Any) -> Any:
    from vcbsim.simulator._host import Host

    host = Host.demo("esxi-7.0", seed=7)
    vm = host.add_vm(helpers.SMALL, os_family="windows", disks=[48 * MiB, 40 * MiB], ip_address="192.0.2.21")
    host.add_guest_volumes(vm, {0: [(None, "C", "SYSTEM")], 1: [(None, "D", "DATA")]})
    vm.guest.write_bytes("D:\\big.bin", bytes(range(256)) * 4000)
    return host


@pytest.fixture
def esxi_client(esxi: Any) -> Iterator[VSphereHostClient]:
    with serve(esxi, clock=VirtualClock()) as running, VSphereHostClient(
        f"https://127.0.0.1:{running.port}/sdk", "user", "pass", insecure=True
    ) as c:
        yield c


@pytest.mark.parametrize("transport", ["nfc", "nbd", "folder"])
def test_image_backup_over_the_wire_equals_the_snapshot(
    esxi: Any, esxi_client: VSphereHostClient, tmp_path: Path, helpers: Any, transport: str
) -> None:
    vm = esxi.find_vm(f"name:{helpers.SMALL}")
    expected = {d.key: digest(esxi.disk_view(vm, d.key)) for d in vm.disks}  # nothing writes meanwhile
    proxy = BackupProxy(esxi_client, tmp_path / "proxy", transport=transport, quiesce=False)
    with Catalog(tmp_path / "medium") as cat:
        res = proxy.backup(f"name:{helpers.SMALL}", "fullvm", catalog=cat)
        assert res.ok, res.summary()
        out = cat.restore_image_files(res.backup_id, tmp_path / "restored")
        got = {d.key: digest(read_vmdk(out / d.file_name).view(None)) for d in cat.image_disks(res.backup_id)}
    assert got == expected
    host_events = [e for e in esxi.trace.events if e.kind.startswith("nfc.")]
    if transport == "folder":
        assert host_events == []
        return
    assert [e.details["state"] for e in host_events if e.kind == "nfc.lease"] == ["initializing", "ready", "done"]
    assert sum(1 for e in host_events if e.kind == "nfc.read") == 2
    done = next(e.seq for e in host_events if e.details.get("state") == "done")
    removed = next(e.seq for e in esxi.trace.events if e.kind == "snapshot.remove")
    assert done < removed  # the lease ended before the commit (seed 3a before 3b)
    ops = [e.details["op"] for e in esxi_client.trace.events if e.kind == "op.ok"]
    assert ops.index("attach-disks") < ops.index("release-disks") < ops.index("remove-snapshot")


def test_hotadd_over_the_wire_attaches_to_the_proxy_vm_and_detaches_before_the_commit(
    esxi: Any, esxi_client: VSphereHostClient, tmp_path: Path, helpers: Any
) -> None:
    from vcbsim.simulator._hotadd import mark_proxy

    esxi.add_vm("vcb-proxy", disks=[16 * MiB])
    mark_proxy(esxi, "vcb-proxy")
    vm = esxi.find_vm(f"name:{helpers.SMALL}")
    expected = {d.key: digest(esxi.disk_view(vm, d.key)) for d in vm.disks}
    proxy = BackupProxy(esxi_client, tmp_path / "proxy", transport="hotadd", quiesce=False)
    with Catalog(tmp_path / "medium") as cat:
        res = proxy.backup(f"name:{helpers.SMALL}", "fullvm", catalog=cat)
        assert res.ok, res.summary()
        out = cat.restore_image_files(res.backup_id, tmp_path / "restored")
        got = {d.key: digest(read_vmdk(out / d.file_name).view(None)) for d in cat.image_disks(res.backup_id)}
    assert got == expected
    kinds = [e.kind for e in esxi.trace.events if e.kind.startswith(("disk.hot", "snapshot.remove"))]
    assert kinds[:2] == ["disk.hotadd", "disk.hotadd"] and kinds[-1] == "snapshot.remove"
    assert kinds.count("disk.hotremove") == 2
    # every byte came through the proxy guest's block devices: at least the allocated data
    snap_id = next(e.details["snapshot"] for e in esxi.trace.events if e.kind == "disk.hotadd")
    read = {e.details["disk"]: e.details["bytes"] for e in esxi.trace.events if e.kind == "disk.hotread"}
    assert set(read) == {d.key for d in vm.disks}
    for d in vm.disks:
        assert read[d.key] >= sum(n for _, n in esxi.disk_view(vm, d.key).allocated_areas()) > 0
    devices = [e.details["device"] for e in esxi.trace.events if e.kind == "disk.hotadd"]
    assert all(dev and dev.endswith(("scsi0:1", "scsi0:2")) for dev in devices), devices
    assert not any(Path(dev).exists() for dev in devices)  # the devices went with the detach
    assert snap_id.startswith("snapshot-")
    assert not vm.consolidation_needed and esxi.find_vm("name:vcb-proxy").disks[0].key == 2000
    ops = [e.details["op"] for e in esxi_client.trace.events if e.kind == "op.ok"]
    assert ops.index("attach-disks") < ops.index("release-disks") < ops.index("remove-snapshot")


def test_the_proxy_vm_shows_the_hot_added_disks_and_the_commit_fails_while_attached(
    esxi: Any, esxi_client: VSphereHostClient, helpers: Any
) -> None:
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    from vcbsim.simulator._hotadd import mark_proxy

    esxi.add_vm("vcb-proxy", disks=[16 * MiB])
    si = esxi_client.si
    find = si.content.searchIndex.FindByInventoryPath
    target, proxy_vm = find(f"ha-datacenter/vm/{helpers.SMALL}"), find("ha-datacenter/vm/vcb-proxy")
    devices = mark_proxy(esxi, "vcb-proxy")
    assert [(o.key, o.value) for o in proxy_vm.config.extraConfig] == [
        ("vcbsim.backupProxy", "TRUE"), ("vcbsim.guestDevices", str(devices))]
    WaitForTask(target.CreateSnapshot_Task(name="b", memory=False, quiesce=False))
    snap = target.snapshot.currentSnapshot
    name = next(d.backing.fileName for d in snap.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
    add = vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.VirtualDisk(
        key=-1, controllerKey=1000, capacityInKB=0,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=name, diskMode="independent_nonpersistent")))
    WaitForTask(proxy_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[add])))
    added = [d for d in proxy_vm.config.hardware.device
             if isinstance(d, vim.vm.device.VirtualDisk) and d.backing.fileName == name]
    assert len(added) == 1 and added[0].backing.diskMode == "independent_nonpersistent"
    with pytest.raises(vim.fault.FileLocked):
        WaitForTask(snap.RemoveSnapshot_Task(removeChildren=False))
    assert target.runtime.consolidationNeeded
    remove = vim.vm.device.VirtualDeviceSpec(operation="remove", device=added[0])
    WaitForTask(proxy_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[remove])))
    WaitForTask(target.ConsolidateVMDisks_Task())
    assert not target.runtime.consolidationNeeded
    assert [d.key for d in proxy_vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)] == [2000]


@pytest.mark.parametrize("transport", ["nfc", "hotadd"])
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), writes=st.lists(st.integers(0, 4), min_size=1, max_size=3))
def test_guest_writes_during_a_wire_backup_round_trip(
    helpers: Any, tmp_path_factory: pytest.TempPathFactory, transport: str, seed: int, writes: list[int]
) -> None:
    """Random guest writes while the proxy reads over --server (hot-add: through the NBD devices
    of the proxy's guest): the restored image is the disk as of the snapshot, byte for byte, and
    every write survives the commit."""
    from vcbsim.simulator import SimRandom
    from vcbsim.simulator._host import Host
    from vcbsim.simulator._hotadd import mark_proxy
    from vcbsim.simulator.guest import Workload

    tmp = tmp_path_factory.mktemp(transport)
    host = Host("esxi-7.0", seed=seed)
    vm = host.add_vm("w1", os_family="windows", disks=[48 * MiB, 40 * MiB])
    host.add_guest_volumes(vm, {0: [(None, "C", "SYSTEM")], 1: [(None, "D", "DATA")]})
    host.add_vm("vcb-proxy", disks=[8 * MiB])
    mark_proxy(host, "vcb-proxy")
    work = Workload(vm.guest, SimRandom(seed), host.clock, root="D:\\work", max_size=9000, max_files=6)
    with serve(host, clock=VirtualClock()) as running, VSphereHostClient(
        f"https://127.0.0.1:{running.port}/sdk", "user", "pass", insecure=True
    ) as client:
        proxy = BackupProxy(client, tmp / "proxy", transport=transport, quiesce=False)
        with Catalog(tmp / "medium") as cat:
            run = proxy.run("name:w1", "fullvm", catalog=cat)
            assert run.advance()  # WF-1: the snapshot exists
            snap = vm.snapshots()[0]
            expected = {d.key: digest(host.disk_view(vm, d.key, snap.moref)) for d in vm.disks}
            i = 0
            while True:
                with host.lock:
                    work.run(writes[i % len(writes)])
                i += 1
                if not run.advance():
                    break
            res = run.result
            assert res.ok and res.backup_id is not None, res.summary()
            out = cat.restore_image_files(res.backup_id, tmp / "restored")
            got = {d.key: digest(read_vmdk(out / d.file_name).view(None)) for d in cat.image_disks(res.backup_id)}
    assert got == expected
    assert vm.snapshots() == [] and not vm.consolidation_needed
    assert work.verify() == []
    if transport == "hotadd":  # read through the proxy guest's NBD devices, which left with the detach
        read = [e.details["bytes"] for e in host.trace.events if e.kind == "disk.hotread"]
        assert len(read) == 2 and all(n > 0 for n in read)
        assert all(not Path(e.details["device"]).exists() for e in host.trace.events if e.kind == "disk.hotadd")
