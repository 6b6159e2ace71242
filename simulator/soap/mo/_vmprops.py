"""VirtualMachine (and snapshot) properties as real pyVmomi data objects, built from a
``VMView`` (``_vmview.py``: the host's VM, read lazily).

Why here and not in the host: these objects are the wire contract (what Ansible and backup
tools read: ``config.hardware.device[].backing.fileName``, ``parent`` chains, ``changeId``,
``layoutEx`` ...). Building them in one place keeps the host free of pyVmomi's object model.
Each builder reads only the view attributes its property needs.

The device list (``config.hardware.device``, what an inventory read asks of every VM) is
built with ``wire/_dataobj.make`` (the objects ``__init__`` would make, without its checks
per field: ``tests/unit/soap/test_device_cache.py`` rebuilds each through the checked
constructors) and kept per VM until what it is built from changes (``build_devices``).
"""

from __future__ import annotations

import functools
import hashlib
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from pyVmomi import VmomiSupport, vim

from ..wire._dataobj import make
from ..wire._fastencode import freeze
from ._vmview import DiskInfo, DiskLayer, NicInfo, SnapshotView, VMView

__all__ = [
    "build_capability",
    "build_config",
    "build_devices",
    "build_guest",
    "build_layout",
    "build_layout_ex",
    "build_runtime",
    "build_snapshot_info",
    "build_storage",
    "build_summary",
    "iter_snapshots",
    "ts",
]

#: Keys of the fixed (non-disk) devices every simulated VM has.
_PCI_KEY = 100
_IDE_KEYS = (200, 201)
_SCSI_KEY = 1000


#: datastore name -> ``vim.Datastore`` reference (or None when unknown); the same for networks
DsRef = Callable[[str], Any] | None
_NIC_TYPES: dict[str, Any] = {
    "vlance": vim.vm.device.VirtualPCNet32,
    "e1000": vim.vm.device.VirtualE1000,
    "vmxnet3": vim.vm.device.VirtualVmxnet3,
}
# the device builders' classes, looked up once: each ``vim.vm.device.X`` is a lookup through
# pyVmomi's lazy modules (some 20 µs), more than building the object with ``make``
_DESCRIPTION: Any = vim.Description
_NETWORK: Any = vim.Network
_SHARES: Any = vim.SharesInfo
_NORMAL: Any = vim.SharesInfo.Level.normal
_IO_ALLOCATION: Any = vim.StorageResourceManager.IOAllocationInfo
_VIRTUAL_DISK: Any = vim.vm.device.VirtualDisk
_FLAT_BACKING: Any = vim.vm.device.VirtualDisk.FlatVer2BackingInfo
_SESPARSE_BACKING: Any = vim.vm.device.VirtualDisk.SeSparseBackingInfo
_RDM_BACKING: Any = vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo
_NETWORK_BACKING: Any = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo
_CONNECT_INFO: Any = vim.vm.device.VirtualDevice.ConnectInfo
_PCI_CONTROLLER: Any = vim.vm.device.VirtualPCIController
_IDE_CONTROLLER: Any = vim.vm.device.VirtualIDEController
_LSI_CONTROLLER: Any = vim.vm.device.VirtualLsiLogicController
_NO_SHARING: Any = vim.vm.device.VirtualSCSIController.Sharing.noSharing
_DEVICE_ARRAY: Any = VmomiSupport.GetVmodlType("vim.vm.device.VirtualDevice[]")
#: host VM -> (what its device list was built from, the list): ``build_devices`` answers the
#: same list, typed and frozen, while that stays the same (module docstring)
_DEVICES: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()
#: endpoints of different hosts in one process read and fill ``_DEVICES`` from their own threads
_DEVICES_LOCK = threading.Lock()


def _datastore_of(path: str) -> str | None:
    """``[datastore1] vm/vm.vmdk`` -> ``datastore1``."""
    if path.startswith("[") and "]" in path:
        return path[1 : path.index("]")]
    return None


def ts(seconds: float) -> datetime:
    """Virtual seconds since the epoch as the aware datetime pyVmomi serialises."""
    return datetime.fromtimestamp(seconds, tz=UTC)


def iter_snapshots(roots: Sequence[SnapshotView]) -> Iterator[tuple[SnapshotView, SnapshotView | None]]:
    """Every snapshot of a tree with its parent, depth first."""
    stack: list[tuple[SnapshotView, SnapshotView | None]] = [(r, None) for r in reversed(roots)]
    while stack:
        node, parent = stack.pop()
        yield node, parent
        stack.extend((c, node) for c in reversed(node.children))


def _backing(disk: DiskInfo, layers: Sequence[DiskLayer], change_id: str | None, ds_ref: DsRef) -> Any:
    """A disk backing and its ``parent`` chain.

    As ESXi reports them: a chain on a flat base is ``FlatVer2BackingInfo`` throughout, the
    redo logs marked by ``deltaDiskFormat`` (``redoLogFormat`` for ``-delta.vmdk``,
    ``seSparseFormat`` for ``-sesparse.vmdk``); only a chain that is SEsparse down to its base
    is ``SeSparseBackingInfo`` (whose ``parent`` must be SEsparse too).
    """
    top = layers[0]
    all_sesparse = all(layer.format == "seSparse" for layer in layers)
    if disk.rdm is not None:
        # an RDM and the redo logs of a snapshotted virtual-mode one (``parent``,
        # ``deltaDiskFormat``): RawDiskMappingVer1BackingInfo throughout (simulator/_rdm.py)
        backing: Any = make(
            _RDM_BACKING,
            fileName=top.descriptor,
            compatibilityMode=disk.rdm,
            diskMode=disk.disk_mode,
            lunUuid=disk.lun_uuid,
            deviceName=disk.device_name,
            uuid=disk.uuid or None,
            changeId=change_id,
        )
        _delta_format(backing, top)
    elif all_sesparse:
        backing = make(
            _SESPARSE_BACKING,
            fileName=top.descriptor,
            diskMode=disk.disk_mode,
            uuid=disk.uuid or None,
            changeId=change_id,
            writeThrough=False,
            grainSize=4,
        )
    else:
        backing = make(
            _FLAT_BACKING,
            fileName=top.descriptor,
            diskMode=disk.disk_mode,
            uuid=disk.uuid or None,
            changeId=change_id,
            writeThrough=False,
            thinProvisioned=disk.thin,
            split=False,
            eagerlyScrub=False,
        )
        _delta_format(backing, top)
    name = _datastore_of(top.descriptor)
    if ds_ref is not None and name is not None:
        backing.__dict__["datastore"] = ds_ref(name)
    if len(layers) > 1:
        backing.__dict__["parent"] = _backing(disk, layers[1:], None, ds_ref)
    return backing


def _delta_format(backing: Any, top: DiskLayer) -> None:
    """A redo log's ``deltaDiskFormat`` (and SEsparse's grain size) on a backing just made
    (set in its state: the values are the enum's own, the object is ours alone)."""
    state = backing.__dict__
    if top.format == "vmfsSparse":
        state["deltaDiskFormat"] = "redoLogFormat"
    elif top.format == "seSparse":
        state["deltaDiskFormat"] = "seSparseFormat"
        state["deltaGrainSize"] = 4096


def _disk_device(disk: DiskInfo, ds_ref: DsRef) -> Any:
    kb = disk.capacity // 1024
    shares, io_allocation = _disk_allocation()
    dev = make(
        _VIRTUAL_DISK,
        key=disk.key,
        deviceInfo=_description(disk.label, f"{kb:,} KB"),
        backing=_backing(disk, list(disk.chain), disk.change_id, ds_ref),
        controllerKey=disk.controller_key,
        unitNumber=disk.unit_number,
        capacityInKB=kb,
        capacityInBytes=disk.capacity,
        shares=shares,
        storageIOAllocation=io_allocation,
        diskObjectId=f"1-{disk.key}",
        nativeUnmanagedLinkedClone=False,
    )
    return dev


# The parts of a device that many devices have alike (a disk's shares and I/O allocation, a
# description, an adapter's connection state and port group) are built once and shared by
# the kept device lists, which nothing changes (``build_devices``): fewer objects to build
# on a first read, and fewer for every garbage collection to walk while they are kept.


@functools.lru_cache(maxsize=1)
def _disk_allocation() -> tuple[Any, Any]:
    """A disk's ``shares`` and ``storageIOAllocation``: normal shares, no limit."""
    return (
        make(_SHARES, shares=1000, level=_NORMAL),
        make(_IO_ALLOCATION, limit=-1, shares=make(_SHARES, shares=1000, level=_NORMAL), reservation=0),
    )


@functools.lru_cache(maxsize=4096)
def _description(label: str, summary: str) -> Any:
    return make(_DESCRIPTION, label=label, summary=summary)


@functools.lru_cache(maxsize=16)
def _connect_info(start_connected: bool, connected: bool) -> Any:
    return make(_CONNECT_INFO, startConnected=start_connected, allowGuestControl=True, connected=connected,
                status="ok")


@functools.lru_cache(maxsize=1024)
def _network_backing(network: str, moid: str | None) -> Any:
    return make(_NETWORK_BACKING, deviceName=network, useAutoDetect=False,
                network=_NETWORK(moid) if moid is not None else None)


def _nic_device(nic: NicInfo, powered_on: bool, net_ref: DsRef) -> Any:
    return make(
        _NIC_TYPES[nic.type],
        key=nic.key,
        deviceInfo=_description(nic.label, nic.network),
        backing=_network_backing(nic.network, _moid(net_ref(nic.network)) if net_ref is not None else None),
        connectable=_connect_info(nic.connected, nic.connected and powered_on),
        controllerKey=_PCI_KEY,
        unitNumber=nic.unit_number,
        addressType="generated",
        macAddress=nic.mac_address or None,
        wakeOnLanEnabled=True,
    )


def _devices(disks: Sequence[DiskInfo], ds_ref: DsRef) -> list[Any]:
    scsi_units = tuple(d.key for d in disks if d.controller_key == _SCSI_KEY)
    devices: list[Any] = list(_controllers(scsi_units))
    devices.extend(_disk_device(d, ds_ref) for d in disks)
    return devices


@functools.lru_cache(maxsize=64)
def _controllers(scsi_units: tuple[int, ...]) -> tuple[Any, ...]:
    """The PCI, IDE and SCSI controllers of a VM whose SCSI disks are ``scsi_units``: the
    same for every VM with those disk keys, so built once and shared by their (frozen)
    device lists."""
    return tuple(freeze(c) for c in (
        make(
            _PCI_CONTROLLER,
            key=_PCI_KEY,
            busNumber=0,
            deviceInfo=make(_DESCRIPTION, label="PCI controller 0", summary="PCI controller 0"),
            device=[_SCSI_KEY],
        ),
        *(
            make(
                _IDE_CONTROLLER,
                key=k,
                busNumber=i,
                deviceInfo=make(_DESCRIPTION, label=f"IDE {i}", summary=f"IDE {i}"),
            )
            for i, k in enumerate(_IDE_KEYS)
        ),
        make(
            _LSI_CONTROLLER,
            key=_SCSI_KEY,
            busNumber=0,
            sharedBus=_NO_SHARING,
            scsiCtlrUnitNumber=7,
            hotAddRemove=True,
            controllerKey=_PCI_KEY,
            unitNumber=3,
            deviceInfo=make(_DESCRIPTION, label="SCSI controller 0", summary="LSI Logic"),
            device=list(scsi_units),
        ),
    ))


def _vm_dir(vm: VMView) -> str:
    return vm.vmx_path.rsplit("/", 1)[0] + "/" if "/" in vm.vmx_path else vm.vmx_path


def build_devices(vm: VMView, disks: Sequence[DiskInfo], ds_ref: DsRef = None, net_ref: DsRef = None) -> list[Any]:
    """``config.hardware.device``: the controllers, the disks and the network adapters.

    Built once per state of what they are built from (the disks as ``disks`` describes them:
    chain, formats, change ids, uuids; the adapters; the power state, which the adapters'
    ``connected`` follows; the references of the datastores and port groups they name) and
    answered as the same typed, frozen list until that changes: a snapshot, a consolidation,
    a write under change tracking, a power operation or a reconfigure gives a new key and so
    a new list. The fast encoder keeps the list's XML on it (``_fastencode.freeze``), so an
    inventory read of unchanged VMs neither builds nor encodes their devices again."""
    powered_on = vm.power_state == "poweredOn"
    nics = vm.nics
    disks = tuple(disks)
    refs: tuple[Any, ...] = ()
    if ds_ref is not None or net_ref is not None:
        names = {_datastore_of(layer.descriptor) for d in disks for layer in d.chain}
        refs = (
            tuple(_moid(ds_ref(n)) for n in sorted(n for n in names if n is not None)) if ds_ref is not None else (),
            tuple(_moid(net_ref(n.network)) for n in nics) if net_ref is not None else (),
        )
    key = (powered_on, disks, nics, refs)
    host_vm = vm.vm
    with _DEVICES_LOCK:
        cached = _DEVICES.get(host_vm)
    if cached is not None and cached[0] == key:
        return cached[1]  # type: ignore[no-any-return]
    built = _DEVICE_ARRAY(_devices(disks, ds_ref) + [_nic_device(n, powered_on, net_ref) for n in nics])
    with _DEVICES_LOCK:
        _DEVICES[host_vm] = (key, freeze(built))
    return built  # type: ignore[no-any-return]


def _moid(ref: Any) -> str | None:
    return None if ref is None else str(ref._moId)


def build_config(
    vm: VMView, disks: Sequence[DiskInfo] | None = None, ds_ref: DsRef = None, net_ref: DsRef = None
) -> Any:
    """``vim.vm.ConfigInfo`` of the VM (or, with ``disks``, as of a snapshot); ``ds_ref`` maps a
    datastore name to its reference (``backing.datastore``)."""
    disks = vm.disks if disks is None else disks
    vm_dir = _vm_dir(vm)
    change_version = hashlib.sha1(
        repr((vm.name, vm.change_tracking, [d.chain[0].descriptor for d in disks])).encode()
    ).hexdigest()[:16]
    return vim.vm.ConfigInfo(
        changeVersion=change_version,
        modified=ts(0),
        name=vm.name,
        guestFullName=vm.guest_full_name,
        version=f"vmx-{vm.hw_version:02d}",
        uuid=vm.uuid,
        instanceUuid=vm.instance_uuid,
        locationId=vm.uuid,
        template=False,
        guestId=vm.guest_id,
        alternateGuestName="",
        annotation=vm.annotation,
        files=vim.vm.FileInfo(
            vmPathName=vm.vmx_path,
            snapshotDirectory=vm_dir,
            suspendDirectory=vm_dir,
            logDirectory=vm_dir,
        ),
        tools=vim.vm.ToolsConfigInfo(
            toolsVersion=int(vm.tools_version) if vm.tools_version.isdigit() else 0,
            afterPowerOn=True,
            afterResume=True,
            beforeGuestStandby=True,
            beforeGuestShutdown=True,
            syncTimeWithHost=False,
            toolsUpgradePolicy="manual",
        ),
        flags=vim.vm.FlagInfo(
            disableAcceleration=False,
            enableLogging=True,
            useToe=False,
            runWithDebugInfo=False,
            snapshotDisabled=False,
            snapshotLocked=False,
            diskUuidEnabled=vm.extra_config.get("disk.EnableUUID", "").upper() == "TRUE",  # the same setting
            snapshotPowerOffBehavior="powerOff",
        ),
        # the .vmx's own settings (vcbsim's own keys among them: the backup proxy's mark,
        # simulator/_hotadd.py); disk.EnableUUID decides VSS application consistency (R42)
        extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in sorted(vm.extra_config.items())],
        # BIOS boot without delay or retry, as a new VM has it (properties of later API
        # versions than the client's are not written)
        bootOptions=vim.vm.BootOptions(
            bootDelay=0, enterBIOSSetup=False, bootRetryEnabled=False, bootRetryDelay=10000,
            efiSecureBootEnabled=False, networkBootProtocol="ipv4",
        ),
        defaultPowerOps=vim.vm.DefaultPowerOpInfo(
            powerOffType="soft",
            suspendType="hard",
            resetType="soft",
            defaultPowerOffType="soft",
            defaultSuspendType="hard",
            defaultResetType="soft",
            standbyAction="checkpoint",
        ),
        hardware=vim.vm.VirtualHardware(
            numCPU=vm.num_cpu,
            numCoresPerSocket=1,
            memoryMB=vm.memory_mb,
            device=build_devices(vm, disks, ds_ref, net_ref),
        ),
        cpuAllocation=vim.ResourceAllocationInfo(
            reservation=0,
            expandableReservation=False,
            limit=-1,
            shares=vim.SharesInfo(shares=1000, level=vim.SharesInfo.Level.normal),
        ),
        memoryAllocation=vim.ResourceAllocationInfo(
            reservation=0,
            expandableReservation=False,
            limit=-1,
            shares=vim.SharesInfo(shares=10 * vm.memory_mb, level=vim.SharesInfo.Level.normal),
        ),
        changeTrackingEnabled=vm.change_tracking,
        firmware="bios",
        datastoreUrl=[
            vim.vm.ConfigInfo.DatastoreUrlPair(name=ds, url=f"/vmfs/volumes/{ds}")
            for ds in vm.datastores
        ],
        swapPlacement="inherit",
    )


def build_runtime(vm: VMView, host_ref: Any) -> Any:
    on = vm.power_state == "poweredOn"
    return vim.vm.RuntimeInfo(
        host=host_ref,
        connectionState=vm.connection_state,
        powerState=vm.power_state,
        faultToleranceState=vim.VirtualMachine.FaultToleranceState.notConfigured,
        toolsInstallerMounted=False,
        numMksConnections=0,
        recordReplayState=vim.VirtualMachine.RecordReplayState.inactive,
        onlineStandby=False,
        consolidationNeeded=vm.consolidation_needed,
        maxCpuUsage=2000 * vm.num_cpu if on else None,
        maxMemoryUsage=vm.memory_mb if on else None,
        bootTime=None,
        suspendInterval=0,
    )


def build_guest(vm: VMView) -> Any:
    running = vm.tools_running and vm.power_state == "poweredOn"
    status = "toolsOk" if running else ("toolsNotRunning" if vm.tools_version else "toolsNotInstalled")
    return vim.vm.GuestInfo(
        toolsStatus=status,
        toolsVersionStatus="guestToolsCurrent" if vm.tools_version else "guestToolsNotInstalled",
        toolsVersionStatus2="guestToolsCurrent" if vm.tools_version else "guestToolsNotInstalled",
        toolsRunningStatus="guestToolsRunning" if running else "guestToolsNotRunning",
        toolsVersion=vm.tools_version or "0",
        guestId=vm.guest_id if running else None,
        guestFamily=(f"{vm.os_family}Guest" if running else None),
        guestFullName=vm.guest_full_name if running else None,
        hostName=vm.host_name if running else None,
        ipAddress=vm.ip_address if running else None,
        guestState="running" if running else "notRunning",
        guestOperationsReady=running,
        interactiveGuestOperationsReady=False,
        guestStateChangeSupported=running,
        net=[
            vim.vm.GuestInfo.NicInfo(
                network=n.network,
                ipAddress=[vm.ip_address] if vm.ip_address and i == 0 else [],
                macAddress=n.mac_address or None,
                connected=n.connected,
                deviceConfigId=n.key,
            )
            for i, n in enumerate(vm.nics)
        ]
        if running
        else [],
    )


def build_capability(vm: VMView) -> Any:
    fields = {p.name for p in vim.vm.Capability._GetPropertyList()}
    values: dict[str, Any] = {
        name: False for name in fields if name not in ("dynamicType", "dynamicProperty")
    }
    values.update(
        snapshotOperationsSupported=True,
        multipleSnapshotsSupported=True,
        snapshotConfigSupported=True,
        poweredOffSnapshotsSupported=True,
        memorySnapshotsSupported=True,
        revertToSnapshotSupported=True,
        quiescedSnapshotsSupported=vm.quiesced_snapshots_supported,
        disableSnapshotsSupported=False,
        lockSnapshotsSupported=False,
        changeTrackingSupported=vm.change_tracking_supported,
        seSparseDiskSupported=any(
            layer.format == "seSparse" for d in vm.disks for layer in d.chain
        ),
        diskSharesSupported=True,
    )
    return vim.vm.Capability(**values)


def build_snapshot_info(vm: VMView, vm_ref: Any, snap_ref: Any) -> Any:
    """``vm.snapshot`` or ``None`` when the VM has no snapshot (Fetch then answers empty)."""
    if not vm.snapshots:
        return None

    def tree(node: SnapshotView) -> Any:
        return vim.vm.SnapshotTree(
            snapshot=snap_ref(node.moref),
            vm=vm_ref,
            name=node.name,
            description=node.description,
            id=node.id,
            createTime=ts(node.create_time),
            state=node.state,
            quiesced=node.quiesced,
            backupManifest=node.backup_manifest,
            childSnapshotList=[tree(c) for c in node.children],
            replaySupported=False,
        )

    current = snap_ref(vm.current_snapshot) if vm.current_snapshot else None
    return vim.vm.SnapshotInfo(
        currentSnapshot=current, rootSnapshotList=[tree(r) for r in vm.snapshots]
    )


class _Files:
    """Numbered file list for layoutEx (each file once, keys in order of appearance)."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.keys: dict[str, int] = {}

    def add(self, name: str, type_: str, size: int) -> int:
        if name in self.keys:
            return self.keys[name]
        key = len(self.items)
        self.keys[name] = key
        self.items.append(
            vim.vm.FileLayoutEx.FileInfo(
                key=key, name=name, type=type_, size=size, uniqueSize=size, accessible=True
            )
        )
        return key


def _disk_units(files: _Files, chain: Sequence[DiskLayer]) -> list[Any]:
    units = []
    for layer in reversed(chain):  # base first, as ESX lists them
        keys = [
            files.add(layer.descriptor, "diskDescriptor", layer.descriptor_size),
            files.add(layer.extent, "diskExtent", layer.size),
        ]
        units.append(vim.vm.FileLayoutEx.DiskUnit(fileKey=keys))
    return units


def build_layout_ex(vm: VMView, now: float) -> Any:
    files = _Files()
    files.add(vm.vmx_path, "config", 0)
    for f in vm.files:
        files.add(f.name, f.type, f.size)
    disks = [
        vim.vm.FileLayoutEx.DiskLayout(key=d.key, chain=_disk_units(files, d.chain))
        for d in vm.disks
    ]
    snapshots = []
    for snap, _parent in iter_snapshots(vm.snapshots):
        data_key = None
        for f in snap.files:
            k = files.add(f.name, f.type, f.size)
            if f.type == "snapshotData":
                data_key = k
        snap_disks = [
            vim.vm.FileLayoutEx.DiskLayout(key=d.key, chain=_disk_units(files, d.chain))
            for d in snap.disks
        ]
        snapshots.append(
            vim.vm.FileLayoutEx.SnapshotLayout(
                key=vim.vm.Snapshot(snap.moref),
                dataKey=data_key if data_key is not None else -1,
                disk=snap_disks,
            )
        )
    return vim.vm.FileLayoutEx(file=files.items, disk=disks, snapshot=snapshots, timestamp=ts(now))


def build_layout(vm: VMView) -> Any:
    """The older ``vm.layout`` (Ansible reads it).

    ``configFile`` and ``logFile`` are relative to the VM's directory (the API's definition;
    Ansible joins them to it), disk and snapshot files are datastore paths.
    """
    vm_dir = vm.vmx_path.rsplit("/", 1)[0] + "/"

    def relative(name: str) -> str:
        return name[len(vm_dir):] if name.startswith(vm_dir) else name

    cfg = [relative(f.name) for f in vm.files if f.type in ("nvram", "snapshotList")]
    logs = [relative(f.name) for f in vm.files if f.type == "log"]
    return vim.vm.FileLayout(
        configFile=cfg,
        logFile=logs,
        disk=[
            vim.vm.FileLayout.DiskLayout(key=d.key, diskFile=[layer.descriptor for layer in d.chain])
            for d in vm.disks
        ],
        snapshot=[
            vim.vm.FileLayout.SnapshotLayout(
                key=vim.vm.Snapshot(s.moref),
                snapshotFile=[f.name for f in s.files]
                + [layer.descriptor for d in s.disks for layer in d.chain[:1]],
            )
            for s, _ in iter_snapshots(vm.snapshots)
        ],
        swapFile=None,
    )


def _held(layer: Any) -> int:
    """Bytes a disk layer's extent holds on its datastore (a thin base disk only its written
    grains, not its capacity)."""
    return int(layer.size if layer.allocated is None else layer.allocated)


def _occupied(layer: Any) -> int:
    """Bytes a disk layer takes on its datastore: its descriptor and its extent."""
    return int(layer.descriptor_size) + _held(layer)


def _committed(vm: VMView) -> dict[str, int]:
    """Per datastore, the bytes the VM's files take there (a VM's disks may be on several)."""
    committed = dict.fromkeys(vm.datastores, 0)
    for d in vm.disks:
        for layer in d.chain:
            name = _datastore_of(layer.descriptor) or vm.datastores[0]
            committed[name] = committed.get(name, 0) + _occupied(layer)
    committed[vm.datastores[0]] += sum(f.size for f in vm.files)
    return committed


def build_storage(vm: VMView, ds_refs: dict[str, Any], now: float) -> Any:
    committed = _committed(vm)
    uncommitted = sum(d.capacity for d in vm.disks)
    return vim.vm.StorageInfo(
        perDatastoreUsage=[
            vim.vm.StorageInfo.UsageOnDatastore(
                datastore=ref, committed=committed[name], uncommitted=uncommitted, unshared=committed[name]
            )
            for name, ref in ds_refs.items()
            if name in committed
        ],
        timestamp=ts(now),
    )


def build_summary(vm: VMView, vm_ref: Any, host_ref: Any, now: float) -> Any:
    # VirtualMachineStorageSummary (API 4.0): ``committed`` is the space the VM's files take
    # across all datastores (the aggregate of ``storage.perDatastoreUsage``), so a thin disk
    # counts its written blocks, not its capacity; ``uncommitted`` the space it may still take
    # (its disks growing to their capacity); ``unshared`` what no other VM shares (a linked
    # clone's shared base is not modelled: all of it)
    committed = sum(_committed(vm).values())
    return vim.vm.Summary(
        vm=vm_ref,
        runtime=build_runtime(vm, host_ref),
        guest=vim.vm.Summary.GuestSummary(
            guestId=vm.guest_id,
            guestFullName=vm.guest_full_name,
            toolsStatus=build_guest(vm).toolsStatus,
            toolsVersionStatus="guestToolsCurrent" if vm.tools_version else "guestToolsNotInstalled",
            toolsRunningStatus=build_guest(vm).toolsRunningStatus,
            hostName=vm.host_name if vm.tools_running else None,
            ipAddress=vm.ip_address if vm.tools_running else None,
        ),
        config=vim.vm.Summary.ConfigSummary(
            name=vm.name,
            template=False,
            vmPathName=vm.vmx_path,
            memorySizeMB=vm.memory_mb,
            numCpu=vm.num_cpu,
            numEthernetCards=len(vm.nics),
            numVirtualDisks=len(vm.disks),
            uuid=vm.uuid,
            instanceUuid=vm.instance_uuid,
            guestId=vm.guest_id,
            guestFullName=vm.guest_full_name,
            annotation=vm.annotation,
        ),
        storage=vim.vm.Summary.StorageSummary(
            committed=committed,
            uncommitted=sum(max(0, d.capacity - _held(d.chain[-1])) for d in vm.disks if d.chain),
            unshared=committed,
            timestamp=ts(now),
        ),
        quickStats=vim.vm.Summary.QuickStats(
            guestHeartbeatStatus="green" if vm.tools_running else "gray",
            overallCpuUsage=0,
            guestMemoryUsage=0,
            hostMemoryUsage=0,
            uptimeSeconds=0,
        ),
        overallStatus="green",
    )
