"""What the VirtualMachine properties are built from: a VM of the ``Host``, read lazily.

Why a view and not a record: a property read costs what it returns. ``VMView(host, vm)``
answers ``name`` or ``power_state`` from the ``VM`` itself and builds the costly parts (the
disks' chains and change ids, the snapshot tree, the ``.vmsd`` size) only when a property
asks for them, once per view (one view lives for one call, under the endpoint lock). Values
that never change for a VM (a disk's uuid, the NIC's MAC address, both derived from the VM's
uuid) are cached across calls by pure functions.

The builders in ``_vmprops.py`` read these attributes by name; a VM's snapshot is a
``SnapshotView`` whose disks are also built on first use.
"""

from __future__ import annotations

import functools
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from ._dsfiles import NVRAM, nvram_path

if TYPE_CHECKING:
    from ..._host import Host
    from ..._vm import VM, Snapshot, VirtualDiskDevice

__all__ = [
    "DiskInfo",
    "DiskLayer",
    "NicInfo",
    "SnapshotView",
    "VMFile",
    "VMView",
    "disk_uuid",
    "mac_address",
    "network_name",
    "tools_version_number",
]

PowerState = Literal["poweredOn", "poweredOff", "suspended"]


@dataclass(frozen=True, slots=True)
class DiskLayer:
    """One link of a disk's chain: a descriptor (``[ds] vm/vm-000001.vmdk``) and its extent."""

    descriptor: str
    extent: str
    #: bytes the extent occupies (allocated grains for sparse layers)
    size: int
    #: "flat" base disk, "vmfsSparse" (``-delta.vmdk``) or "seSparse" (``-sesparse.vmdk``) redo log
    format: Literal["flat", "vmfsSparse", "seSparse"] = "flat"
    descriptor_size: int = 512
    #: bytes the extent holds on the datastore when less than ``size`` (a thin base disk: its
    #: written grains); None: ``size``. What ``summary.storage.committed`` counts (``_vmprops``)
    allocated: int | None = None


@dataclass(frozen=True, slots=True)
class DiskInfo:
    """A virtual disk as the VM (or a snapshot) sees it. ``chain`` is top first."""

    key: int
    label: str
    capacity: int
    chain: Sequence[DiskLayer]
    controller_key: int = 1000
    unit_number: int = 0
    thin: bool = True
    disk_mode: str = "persistent"
    #: set when change tracking is active for this disk (``<16 hex pairs>/<seq>``)
    change_id: str | None = None
    uuid: str = ""
    #: an RDM's ``compatibilityMode`` and LUN (``simulator/_rdm.py``); None: a virtual disk
    rdm: str | None = None
    lun_uuid: str = ""
    device_name: str = ""


@dataclass(frozen=True, slots=True)
class VMFile:
    """A file of the VM's directory that ``layoutEx.file[]`` lists (not the disks)."""

    name: str
    type: str  # config, nvram, snapshotList, log, snapshotData ...
    size: int


@dataclass(frozen=True, slots=True)
class NicInfo:
    """A virtual network adapter (``ethernet0`` in the ``.vmx``) on a port group."""

    key: int = 4000
    label: str = "Network adapter 1"
    network: str = "VM Network"
    mac_address: str = ""
    type: Literal["vlance", "e1000", "vmxnet3"] = "vlance"
    connected: bool = True
    unit_number: int = 7


def tools_version_number(version: str) -> str:
    """VMware Tools ``3.5.0-110268`` as the number vSphere reports (major*1024+minor*32+patch)."""
    head = version.split("-", 1)[0].split(".")
    try:
        major, minor, patch = (int(x) for x in (head + ["0", "0"])[:3])
    except ValueError:
        return "0"
    return str(major * 1024 + minor * 32 + patch)


@functools.lru_cache(maxsize=65536)
def mac_address(vm_uuid: str) -> str:
    """A VMware-range MAC (``00:50:56:xx:xx:xx``) derived from the VM's uuid (fixed for the VM)."""
    tail = vm_uuid.replace("-", "")[-6:].rjust(6, "0")
    return "00:50:56:" + ":".join(tail[i : i + 2] for i in range(0, 6, 2))


@functools.lru_cache(maxsize=65536)
def disk_uuid(vm_uuid: str, key: int) -> str:
    """A disk's ``backing.uuid`` (fixed for the VM and the device key)."""
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"{vm_uuid}/{key}"))


def network_name(vm: VM) -> str:
    """The port group of the VM's adapter (the ``.vmx``'s ``ethernet0.networkName``)."""
    return vm.extra_config.get("ethernet0.networkName", "VM Network")


def _layers(host: Host, d: VirtualDiskDevice, top: Any = None) -> tuple[DiskLayer, ...]:
    chain = d.backing_chain(top)  # without a nonpersistent disk's session redo log
    suffix = host.delta_extent_suffix(d)
    out = []
    for layer in chain:
        stem = layer.label[: -len(".vmdk")] if layer.label.endswith(".vmdk") else layer.label
        if layer.parent is None:
            # an RDM's mapping extent takes no room on the datastore: the bytes are the LUN's
            held = None if d.rdm or not d.thin else min(d.capacity, layer.grain_count * d.disk.grain_size)
            out.append(DiskLayer(layer.label, d.base_extent, 0 if d.rdm else d.capacity, "flat", allocated=held))
        else:
            allocated = layer.grain_count * d.disk.grain_size
            fmt: Literal["seSparse", "vmfsSparse"] = "seSparse" if suffix == "-sesparse.vmdk" else "vmfsSparse"
            out.append(DiskLayer(layer.label, f"{stem}{suffix}", allocated, fmt))
    return tuple(out)


def _disk(host: Host, vm: VM, d: VirtualDiskDevice, snap: Snapshot | None = None) -> DiskInfo:
    top = None
    if snap is not None:
        layer = snap.layers.get(d.key)
        top = layer if layer is not None and layer.alive else None
    change_id = host.change_id(vm, d.key, snap) if vm.change_tracking else None
    return DiskInfo(
        key=d.key,
        label=d.label,
        capacity=d.capacity,
        chain=_layers(host, d, top),
        controller_key=d.controller_key,
        unit_number=d.unit_number,
        thin=d.thin,
        disk_mode=d.disk_mode,
        change_id=change_id,
        uuid=disk_uuid(vm.uuid, d.key),
        rdm=d.rdm,
        lun_uuid=d.lun_uuid,
        device_name=d.device_name,
    )


def _hot_added(host: Host, vm: VM) -> tuple[DiskInfo, ...]:
    """Disks of other VMs hot-added to this one (a backup proxy, ``simulator/_hotadd.py``): as
    on a host, devices of the proxy whose backing is the other VM's disk as of its snapshot,
    independent-nonpersistent (the proxy cannot change them), or its live disk, persistent
    (a writable attach: a hot-add restore writes it)."""
    attached = host.holds.attached.get(vm.moref) if len(host.holds) else None
    if not attached:
        return ()
    out = []
    n = len(vm.disks)
    for a in attached:
        target = host.vms.get(a.vm)
        if target is None:
            continue
        d = target.disk(a.disk)
        snap = target.find_snapshot(a.snapshot) if a.snapshot is not None else None
        if d is None or (a.snapshot is not None and snap is None):
            continue
        n += 1
        info = _disk(host, target, d, snap)
        mode = "persistent" if a.writable else "independent_nonpersistent"
        out.append(replace(info, key=a.proxy_key, label=f"Hard disk {n}", controller_key=1000, unit_number=a.unit,
                           disk_mode=mode, change_id=None))
    return tuple(out)


class SnapshotView:
    """A snapshot of the VM, its children, and (built on first use) its disks."""

    __slots__ = ("_host", "_vm", "_snap", "_disks", "_children")

    files: Sequence[VMFile] = ()

    def __init__(self, host: Host, vm: VM, snap: Snapshot) -> None:
        self._host, self._vm, self._snap = host, vm, snap
        self._disks: tuple[DiskInfo, ...] | None = None
        self._children: tuple[SnapshotView, ...] | None = None

    moref = property(lambda self: self._snap.moref)
    id = property(lambda self: self._snap.id)
    name = property(lambda self: self._snap.name)
    description = property(lambda self: self._snap.description)
    create_time = property(lambda self: self._snap.create_time)
    state = property(lambda self: self._snap.state)
    quiesced = property(lambda self: self._snap.quiesced)
    #: ``SnapshotTree.backupManifest`` (API 4.0): the VSS manifest of an application-consistent
    #: quiesced snapshot, relative to the snapshot directory; None otherwise
    backup_manifest = property(lambda self: self._snap.backup_manifest)

    @property
    def children(self) -> tuple[SnapshotView, ...]:
        if self._children is None:
            self._children = tuple(SnapshotView(self._host, self._vm, c) for c in self._snap.children)
        return self._children

    @property
    def disks(self) -> tuple[DiskInfo, ...]:
        """The disks as of this snapshot (their chains end at the frozen layer)."""
        if self._disks is None:
            self._disks = tuple(_disk(self._host, self._vm, d, self._snap) for d in self._vm.disks)
        return self._disks


class VMView:
    """A VM of the host as the VirtualMachine properties read it (see the module docstring)."""

    def __init__(self, host: Host, vm: VM) -> None:
        self.host = host
        self.vm = vm
        self._disks: tuple[DiskInfo, ...] | None = None
        self._snapshots: tuple[SnapshotView, ...] | None = None
        self._files: tuple[VMFile, ...] | None = None

    # what the VM holds ------------------------------------------------------------------
    moref = property(lambda self: self.vm.moref)
    name = property(lambda self: self.vm.name)
    uuid = property(lambda self: self.vm.uuid)
    instance_uuid = property(lambda self: self.vm.instance_uuid)
    guest_id = property(lambda self: self.vm.guest_id)
    guest_full_name = property(lambda self: self.vm.guest_full_name)
    os_family = property(lambda self: self.vm.os_family)
    power_state = property(lambda self: self.vm.power_state)
    #: "connected", or "inaccessible"/"invalid" for a VM whose files could not be loaded
    connection_state = property(lambda self: self.vm.connection_state)
    vmx_path = property(lambda self: self.vm.vmx_path)
    memory_mb = property(lambda self: self.vm.memory_mb)
    num_cpu = property(lambda self: self.vm.num_cpus)
    ip_address = property(lambda self: self.vm.ip_address)
    consolidation_needed = property(lambda self: self.vm.consolidation_needed)
    #: the ``.vmx``'s own settings (``disk.EnableUUID`` ...): ``config.extraConfig``
    extra_config = property(lambda self: self.vm.extra_config)
    hw_version = property(lambda self: self.vm.hw_version)
    annotation = ""

    @property
    def host_name(self) -> str | None:
        return self.vm.hostname or None

    @property
    def datastores(self) -> tuple[str, ...]:
        """Every datastore the VM has files on: its own, its disks' and its working
        directory's (``VirtualMachine.datastore``; disks may be on several, KB 304387)."""
        from ..._vm import datastore_of

        names = [self.vm.datastore, *(d.datastore for d in self.vm.disks), datastore_of(self.vm.snapshot_dir)]
        return tuple(dict.fromkeys(n for n in names if n))

    @property
    def current_snapshot(self) -> str | None:
        current = self.vm.current_snapshot
        return current.moref if current is not None else None

    @property
    def change_tracking(self) -> bool:
        """The configured value; disks show change ids once it is active (next stun)."""
        pending = self.vm.change_tracking_pending
        return pending if pending is not None else self.vm.change_tracking

    # VMware Tools ----------------------------------------------------------------------
    @property
    def tools_running(self) -> bool:
        tools = self.vm.tools
        return self.vm.power_state == "poweredOn" and tools is not None and tools.state == "running"

    @property
    def tools_version(self) -> str:
        tools = self.vm.tools
        # a vendor's guest agent (conformance GuestAgent) need not say a Tools version
        version = getattr(tools, "version", None) if tools is not None else None
        if version is None or tools is None or tools.state == "not-installed":
            return ""
        return tools_version_number(version)

    # the host's profile ------------------------------------------------------------------
    @property
    def quiesced_snapshots_supported(self) -> bool:
        return bool(self.host.profile.quiesced_snapshots)

    @property
    def change_tracking_supported(self) -> bool:
        return bool(self.host.profile.change_tracking)

    # built on first use ------------------------------------------------------------------
    @property
    def disks(self) -> tuple[DiskInfo, ...]:
        if self._disks is None:
            self._disks = tuple(_disk(self.host, self.vm, d) for d in self.vm.disks) + _hot_added(self.host, self.vm)
        return self._disks

    @property
    def snapshots(self) -> tuple[SnapshotView, ...]:
        """The root snapshots (each with its children)."""
        if self._snapshots is None:
            self._snapshots = tuple(SnapshotView(self.host, self.vm, s) for s in self.vm.root_snapshots)
        return self._snapshots

    @property
    def files(self) -> tuple[VMFile, ...]:
        if self._files is None:
            self._files = (VMFile(nvram_path(self.vm), "nvram", len(NVRAM)),
                           VMFile(self.vm.vmsd_path, "snapshotList", len(self.vm.vmsd_text().encode())))
        return self._files

    @property
    def nics(self) -> tuple[NicInfo, ...]:
        """The ``.vmx``'s ethernet0: a vlance adapter on "VM Network" (or the port group set)."""
        return (NicInfo(network=network_name(self.vm), mac_address=mac_address(self.vm.uuid)),)
