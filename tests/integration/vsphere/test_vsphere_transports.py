"""The reference proxy over ``--server`` on each transport: ``-m nfc`` exports through the
host's lease (pyVmomi ``ExportSnapshot``, the disks downloaded as stream-optimized VMDK);
the restored image equals the disk as of the snapshot, and the lease is completed before the
snapshot is removed. ``-m hotadd`` over the wire is refused in one line until the endpoint
serves ``ReconfigVM_Task`` disk adds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


def test_hotadd_over_the_wire_is_refused_in_one_line(
    esxi: Any, esxi_client: VSphereHostClient, tmp_path: Path, helpers: Any
) -> None:
    proxy = BackupProxy(esxi_client, tmp_path / "proxy", transport="hotadd", quiesce=False)
    with Catalog(tmp_path / "medium") as cat:
        res = proxy.backup(f"name:{helpers.SMALL}", "fullvm", catalog=cat)
    assert not res.ok and res.failed_step == "WF-1f"
    assert "ReconfigVM_Task" in res.reason
    assert esxi.find_vm(f"name:{helpers.SMALL}").snapshots() == []
