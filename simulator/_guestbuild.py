"""Give a VM's disks partitions and FAT file systems, and read them back as of a snapshot.

Kept apart from ``_host.py`` because it is the one place where the host, the guest file
system and VMware Tools meet: the guest writes through the host's live device (so fault rules
and redo logs apply), and Tools looks for scripts in that same file system.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ._errors import InvalidInputError, StateError
from .guest import GuestFileSystem, PartitionDevice, Volume, format_disk

if TYPE_CHECKING:
    from ._host import Host
    from ._vm import VM, Snapshot

__all__ = ["add_guest_volumes", "guest_at"]

#: One entry per partition: (size in bytes or None for the rest, letter / mount point / None, label)
Layout = Sequence[tuple[int | None, str | None, str]]


def add_guest_volumes(host: Host, vm: VM, layouts: Mapping[int, Layout]) -> GuestFileSystem:
    """Partition and format the VM's disks (``{disk index: layout}``) and attach the guest.

    Only a few sectors per volume are written, whatever the disks' sizes. The new file system
    becomes the guest VMware Tools reads scripts from.
    """
    if vm.guest is not None:
        msg = f"VM {vm.name!r} already has a guest file system"
        raise StateError(msg)
    for index in layouts:
        if not isinstance(index, int) or not 0 <= index < len(vm.disks):
            raise InvalidInputError(
                "disk index", expected=f"0..{len(vm.disks) - 1}", got=index
            )
    volumes: list[Volume] = []
    for index, layout in sorted(layouts.items()):
        device = host.guest_device(vm, vm.disks[index].key)
        volumes.extend(format_disk(device, layout, disk_index=index, clock=host.clock))
    fs = GuestFileSystem(vm.os_family, volumes, trace=host.trace, vm=vm.moref, clock=host.clock)
    vm.guest = fs
    if vm.tools is not None:
        vm.tools.guest = fs
    return fs


def guest_at(host: Host, vm: VM, snap: Snapshot) -> GuestFileSystem:
    """The guest's volumes as of ``snap``: read-only, over the snapshot's redo-log chain."""
    assert vm.guest is not None
    views = {}
    for volume in vm.guest.volumes:
        if volume.disk_index is None or volume.partition is None:
            continue
        disk = vm.disks[volume.disk_index]
        view = host.disk_view(vm, disk.key, snap)
        views[volume] = PartitionDevice.of(view, volume.partition)
    return vm.guest.as_of(views)
