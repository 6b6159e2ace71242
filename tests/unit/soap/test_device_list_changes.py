"""``config.hardware.device`` shows every change of what it is built from on the next read,
whether it is read by its own path or inside the whole ``config``: a reconfigure (change
tracking, seen at the next stun), a snapshot, a revert, a removal, a power change, a port group
change. The checks read the devices' fields, not a second build, so a device list kept between
calls (a cache) that goes stale fails them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pyVmomi import vim

from vcbsim.simulator import Host
from vcbsim.simulator.soap import Endpoint
from vcbsim.simulator.soap._collector import resolve_path
from vcbsim.simulator.soap.mo import VirtualMachineImpl

MiB = 1024 * 1024


@pytest.fixture
def ep() -> Iterator[Endpoint]:
    host = Host("esxi-7.0", seed=5)
    host.add_vm("win-db", disks=[64 * MiB, 32 * MiB])
    ep = Endpoint(host)
    with ep.lock:
        yield ep


def _devices(ep: Endpoint, *, whole_config: bool = False) -> list[Any]:
    """One call's read of ``vm-1``'s devices (the path's own getter, or inside ``config``)."""
    ep.begin_call()
    return list(resolve_path(VirtualMachineImpl(ep, "vm-1"), "config.hardware.device", shortcuts=not whole_config))


def _both(ep: Endpoint) -> list[list[Any]]:
    return [_devices(ep), _devices(ep, whole_config=True)]


def _disks(devices: list[Any]) -> list[Any]:
    return [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]


def _nic(devices: list[Any]) -> Any:
    (nic,) = [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    return nic


def _chain(disk: Any) -> list[str]:
    names, backing = [], disk.backing
    while backing is not None:
        names.append(backing.fileName)
        backing = backing.parent
    return names


def test_a_reconfigure_of_change_tracking_is_seen_at_the_next_stun(ep: Endpoint) -> None:
    for devices in _both(ep):
        assert all(d.backing.changeId is None for d in _disks(devices))
    ep.host.reconfigure("vm-1", change_tracking=True)
    ep.host.create_snapshot("vm-1", "stun")
    for devices in _both(ep):
        assert all(d.backing.changeId for d in _disks(devices))


def test_snapshots_revert_and_removal_are_seen(ep: Endpoint) -> None:
    host = ep.host
    for devices in _both(ep):
        assert [len(_chain(d)) for d in _disks(devices)] == [1, 1]
    snap = host.create_snapshot("vm-1", "s1")
    host.create_snapshot("vm-1", "s2")
    for devices in _both(ep):
        chains = [_chain(d) for d in _disks(devices)]
        assert [len(c) for c in chains] == [3, 3]
        assert all(c[0].endswith("-000002.vmdk") for c in chains)
    host.revert_to_snapshot("vm-1", snap)
    for devices in _both(ep):
        assert [len(_chain(d)) for d in _disks(devices)] == [2, 2]
        assert _nic(devices).connectable.connected is False  # a snapshot without memory: off
    host.remove_all_snapshots("vm-1")
    for devices in _both(ep):
        assert [len(_chain(d)) for d in _disks(devices)] == [1, 1]


def test_power_and_port_group_changes_are_seen(ep: Endpoint) -> None:
    for devices in _both(ep):
        assert _nic(devices).connectable.connected is True
        assert _nic(devices).backing.deviceName == "VM Network"
    ep.host.power_off("vm-1")
    ep.host.vms["vm-1"].extra_config["ethernet0.networkName"] = "Backup"
    for devices in _both(ep):
        nic = _nic(devices)
        assert nic.connectable.connected is False
        assert nic.backing.deviceName == "Backup"
        assert nic.backing.network == ep.inventory.network_ref("Backup")
