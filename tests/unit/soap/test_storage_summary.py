"""``summary.storage`` of a VM with thin disks counts what its files take, not their capacity.

The API reference's ``VirtualMachineStorageSummary`` (vSphere API 4.0): ``committed`` is the
"total storage space, in bytes, committed to this virtual machine across all datastores", the
aggregate of ``storage.perDatastoreUsage[].committed``; ``uncommitted`` the "additional storage
space ... potentially used" (thin disks growing to their capacity); ``unshared`` the space no
other VM shares. A thin disk never written takes its descriptor, not its capacity."""

from __future__ import annotations

from typing import Any

from pyVim.connect import Disconnect, SmartConnect

from vcbsim.simulator import Host
from vcbsim.simulator.soap import serve

MiB = 1 << 20
GiB = 1 << 30


def _storage(port: int, name: str) -> tuple[Any, int]:
    si = SmartConnect(host="127.0.0.1", port=port, user="user", pwd="pass", protocol="http")
    try:
        vm = si.content.searchIndex.FindByInventoryPath(f"ha-datacenter/vm/{name}")
        summary = vm.summary.storage
        return summary, sum(u.committed for u in vm.storage.perDatastoreUsage)
    finally:
        Disconnect(si)


def test_thin_disks_commit_their_written_grains_not_their_capacity() -> None:
    host = Host("esxi-7.0", seed=3)
    vm = host.add_vm("thin", disks=[4 * GiB, 2 * GiB], power_state="poweredOff", tools="not-installed")
    with serve(host, port=0, http=True) as server:
        empty, per_ds = _storage(server.port, "thin")
        assert 0 < empty.committed < MiB and empty.committed == per_ds == empty.unshared
        assert empty.uncommitted == 6 * GiB
        host.guest_device(vm, vm.disks[0].key).write(100 * MiB, b"\x01" * (3 * MiB))
        host.guest_device(vm, vm.disks[1].key).write(0, b"\x02" * MiB)
        written, per_ds = _storage(server.port, "thin")
        assert written.committed - empty.committed == 4 * MiB  # the grains written, nothing more
        assert written.committed == per_ds == written.unshared
        assert written.uncommitted == 6 * GiB - 4 * MiB
        # a thick (eager) disk takes its capacity from the start
        vm.disks[1].thin = False
        thick, _ = _storage(server.port, "thin")
        assert thick.committed - empty.committed == 3 * MiB + 2 * GiB and thick.uncommitted == 4 * GiB - 3 * MiB
        # a snapshot's redo log adds what is written after it
        vm.disks[1].thin = True
        host.create_snapshot(vm, "s")
        host.guest_device(vm, vm.disks[0].key).write(0, b"\x03" * MiB)
        snapped, per_ds = _storage(server.port, "thin")
        assert snapped.committed == per_ds and snapped.committed > written.committed + MiB
