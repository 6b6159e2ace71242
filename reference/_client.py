"""The host-client seam (DESIGN.md seam 1): everything the proxy asks of an ESX host.

The orchestrator in ``_workflow.py``, the exporters and the backup software only ever talk to
a ``HostClient``. Two bindings exist:

- ``InProcessHostClient``: direct calls on a simulator ``Host``;
- ``VSphereHostClient`` (``_vsphere.py``): pyvmomi over SOAP plus datastore HTTP, so the same
  proxy runs against the simulator's endpoint (``vcbsim serve``) or a real host.

VMs are addressed by their managed-object id (``moref``, e.g. ``vm-12``) once found, and
snapshots by an opaque id the binding chooses. Records crossing the seam are frozen
dataclasses, never simulator objects.

Selectors follow VCB's ``vcbMounter -a`` syntax (spec R54-R55): ``name:<display name>``
(exact, case-sensitive), ``uuid:<bios uuid>``, ``ipaddr:<ip>`` (needs a running VM, the IP
comes from VMware Tools) and ``moref:<id>``.

What each method is in vSphere terms (for the pyvmomi binding):

=======================  ===================================================================
method                   vSphere
=======================  ===================================================================
``find_vm``              ``SearchIndex.FindByUuid`` / ``FindByIp``; a container view for
                         ``name:``; ``vim.VirtualMachine(moref)`` for ``moref:``
``vm_info``              ``config.hardware.device`` (disks), ``guest`` (os family, IP);
                         volumes come from the disks' partition tables (as VCB did)
``read_vmx``             datastore HTTP ``GET /folder/<dir>/<vm>.vmx``
``create_snapshot``      ``CreateSnapshot_Task(name, description, memory, quiesce)``
``remove_snapshot``      ``RemoveSnapshot_Task(removeChildren=False, consolidate=True)``
``list_snapshots``       ``snapshot.rootSnapshotList`` (flattened)
``consolidate_disks``    ``ConsolidateVMDisks_Task`` (``runtime.consolidationNeeded``; since API 5.0)
``api_version``          ``content.about.apiVersion``
``open_disk``            VDDK / NFC read of the snapshot's disk backing
``write_disk``           VDDK write (restore)
``allocated_areas``      ``QueryChangedDiskAreas(changeId="*")``
``query_changed_areas``  ``QueryChangedDiskAreas``, paged (``startOffset + length`` until the
                         capacity)
``change_tracking``      ``capability.changeTrackingSupported``, ``config.changeTrackingEnabled``
``enable_change_tracking`` ``ReconfigVM_Task(changeTrackingEnabled=True)`` (takes effect at the
                         next stun: the backup snapshot)
``disk_change_ids``      ``backing.changeId`` of each disk in ``snapshot.config``
``open_volume``          MBR + FAT read from ``open_disk`` (the simulator's FAT reader works on
                         any ``BlockReader``)
``check_fault``          a proxy-local ``FaultInjector`` (proxy faults are the proxy's own)
``trace``                a proxy-local ``Trace``, or the endpoint's control API
=======================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from vcbsim.simulator import InvalidInputError
from vcbsim.simulator.disk import BlockReader

if TYPE_CHECKING:
    from vcbsim.simulator import FaultRule, Trace

__all__ = [
    "SELECTOR_KINDS",
    "BlockReader",
    "ChangeTracking",
    "ClockLike",
    "DiskInfo",
    "GuestFile",
    "HostClient",
    "InProcessHostClient",
    "SnapshotInfo",
    "VMInfo",
    "VolumeInfo",
    "VolumeReader",
    "api_at_least",
    "parse_selector",
]

SelectorKind = Literal["name", "uuid", "ipaddr", "moref"]
#: The ``-a`` selector prefixes the proxy accepts (VCB's ``vcbMounter``/``vcbVmName``).
SELECTOR_KINDS: tuple[str, ...] = ("name", "uuid", "ipaddr", "moref")


def api_at_least(client: object, major: int) -> bool:
    """Whether ``client``'s host speaks vSphere API ``major`` or later (``api_version``
    ``2.5u2`` is 2, ``7.0.3.0`` is 7). A client that does not say is taken as recent: the
    property or method it is about to use tells it the rest."""
    version = getattr(client, "api_version", None)
    if not isinstance(version, str) or not version[:1].isdigit():
        return True
    return int(version.split(".", 1)[0]) >= major


def parse_selector(selector: str) -> tuple[SelectorKind, str]:
    """Split ``"name:vm1"`` into ``("name", "vm1")``; a clear error for anything else.

    >>> parse_selector("uuid:4211-aa")
    ('uuid', '4211-aa')
    """
    if not isinstance(selector, str) or ":" not in selector:
        msg = "VM selector"
        raise InvalidInputError(
            msg,
            expected="'<kind>:<value>' with kind one of " + ", ".join(SELECTOR_KINDS),
            got=selector,
            hint="for example name:win2003-sql or moref:vm-12",
        )
    kind, _, value = selector.partition(":")
    if kind not in SELECTOR_KINDS or not value:
        msg = "VM selector"
        raise InvalidInputError(
            msg,
            expected="'<kind>:<value>' with kind one of " + ", ".join(SELECTOR_KINDS),
            got=selector,
            hint="for example name:win2003-sql or moref:vm-12",
        )
    return kind, value  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class DiskInfo:
    """One virtual disk of a VM. ``file_name`` is the datastore path of its base ``.vmdk``."""

    key: int
    label: str
    file_name: str
    capacity: int
    #: the backing's ``diskMode`` (``VirtualDiskMode``): ``independent_*`` disks are in no snapshot
    disk_mode: str = "persistent"
    #: an RDM's ``compatibilityMode`` (``physicalMode`` / ``virtualMode``); None for a virtual disk
    rdm: str | None = None

    @property
    def snapshot_exclusion(self) -> str | None:
        """Why a snapshot of the VM does not cover this disk, or None when it does.

        "independent_persistent: Same as persistent, but not affected by snapshots" (API enum
        ``VirtualDiskMode``, since 2.0); a physical-mode RDM has no redo log and is in no
        snapshot (``simulator/_rdm.py``); a virtual-mode RDM is snapshotted like a disk."""
        if self.rdm == "physicalMode":
            return "physical-mode RDM: a snapshot does not cover it (no redo log on a physical RDM)"
        if self.disk_mode.startswith("independent"):
            return f"{self.disk_mode} disk: a snapshot does not cover it (independent disks are not affected by snapshots)"
        return None


@dataclass(frozen=True, slots=True)
class VolumeInfo:
    """One guest volume. ``letter`` is ``"C"`` (no colon) or ``None``; ``mount_point`` is the
    POSIX mount point of a Linux volume; ``disk_key``/``partition`` locate it."""

    index: int
    disk_key: int
    partition: int
    letter: str | None
    mount_point: str | None
    label: str = ""

    @property
    def name(self) -> str:
        """How reports name the volume: ``C:``, ``/var`` or ``disk 2000 partition 2``."""
        if self.letter:
            return f"{self.letter}:"
        if self.mount_point:
            return self.mount_point
        return f"disk {self.disk_key} partition {self.partition}"


@dataclass(frozen=True, slots=True)
class VMInfo:
    """What the proxy knows about a VM (a read-only copy; ask again for fresh data)."""

    name: str
    moref: str
    uuid: str
    os_family: str  # "windows" or "linux" (or another family the host reports)
    guest_id: str
    power_state: str
    ip: str | None = None
    consolidation_needed: bool = False
    disks: tuple[DiskInfo, ...] = ()
    volumes: tuple[VolumeInfo, ...] = ()
    vmx_path: str = ""

    @property
    def is_windows(self) -> bool:
        return self.os_family.lower().startswith("win")


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One snapshot. ``id`` is opaque to the proxy; ``created`` is host (virtual) time."""

    id: str
    name: str
    created: float
    quiesced: bool = False
    description: str = ""
    children: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ChangeTracking:
    """A VM's changed block tracking (CBT) as the host reports it.

    ``supported``: the host and the VM's hardware can track changes
    (``capability.changeTrackingSupported``); ``enabled``: it is configured on
    (``config.changeTrackingEnabled``). Enabling takes effect at the VM's next stun (power on,
    snapshot create or remove, spec R51); only from then do the disk backings carry a
    ``changeId``.
    """

    supported: bool
    enabled: bool


@dataclass(frozen=True, slots=True)
class GuestFile:
    """A file or directory of a guest volume. ``path`` is relative to the volume root, with
    ``/`` separators whatever the guest OS (``Windows/system.ini``)."""

    path: str
    is_dir: bool
    size: int
    mtime: float


class ClockLike(Protocol):
    """The host's (virtual) clock, as far as the proxy needs it."""

    @property
    def now(self) -> float: ...

    def advance(self, seconds: float) -> float: ...

    def advance_to(self, when: float) -> float: ...


class VolumeReader(Protocol):
    """A guest volume opened read-only as of a snapshot."""

    def walk(self) -> Iterator[GuestFile]:
        """Every directory and file under the root (parents before children)."""
        ...

    def read_bytes(self, path: str) -> bytes: ...


class HostClient(Protocol):
    """What a backup proxy needs from an ESX host (seam 1).

    Host faults (pyVmomi ``vim.fault.*``) propagate unchanged, so the orchestrator can name
    them in its job result. Misuse raises ``vcbsim.simulator`` errors (``NotFoundError`` ...).
    """

    @property
    def trace(self) -> Trace:
        """The one event log proxy events are emitted into (``actor="proxy"``)."""
        ...

    @property
    def clock(self) -> ClockLike: ...

    @property
    def host_name(self) -> str: ...

    @property
    def api_version(self) -> str:
        """The host's vSphere API version (``AboutInfo.apiVersion``: ``2.5u2``, ``7.0.3.0``):
        what the proxy may call (``ConsolidateVMDisks_Task`` is since 5.0)."""
        ...

    def list_vms(self) -> list[VMInfo]: ...

    def find_vm(self, selector: str) -> VMInfo:
        """Resolve a ``name:``/``uuid:``/``ipaddr:``/``moref:`` selector (``NotFoundError``)."""
        ...

    def vm_info(self, moref: str) -> VMInfo: ...

    def read_vmx(self, moref: str) -> str: ...

    def create_snapshot(
        self,
        moref: str,
        name: str,
        *,
        description: str = "",
        quiesce: bool = True,
        memory: bool = False,
    ) -> SnapshotInfo:
        """Create a snapshot; with ``quiesce`` VMware Tools runs steps 1a-1e around it."""
        ...

    def remove_snapshot(self, moref: str, snapshot_id: str, *, consolidate: bool = True) -> None:
        """Remove a snapshot, committing its redo log (seed step 3b)."""
        ...

    def list_snapshots(self, moref: str) -> list[SnapshotInfo]: ...

    def consolidate_disks(self, moref: str) -> None:
        """Merge redo logs a removal left behind ("Needs consolidation", spec F16)."""
        ...

    def open_disk(self, moref: str, disk_key: int, snapshot_id: str | None) -> BlockReader:
        """The disk as of the snapshot (``None``: as it is now), read-only."""
        ...

    def write_disk(self, moref: str, disk_key: int, offset: int, data: bytes) -> None:
        """Write to the VM's current disk state (whole-VM restore)."""
        ...

    def allocated_areas(
        self, moref: str, disk_key: int, snapshot_id: str | None
    ) -> list[tuple[int, int]]:
        """``(offset, length)`` of every area ever written as of the snapshot."""
        ...

    def query_changed_areas(
        self, moref: str, snapshot_id: str, disk_key: int, start_offset: int, change_id: str
    ) -> list[tuple[int, int]]:
        """vSphere ``QueryChangedDiskAreas``: every ``(offset, length)`` area that changed
        since ``change_id`` as seen at the snapshot, from ``start_offset`` to the end of the
        disk (the host's windows are paged through). A change id the host no longer accepts
        raises its ``InvalidArgument``; a VM without tracking ``NotSupported``."""
        ...

    def change_tracking(self, moref: str) -> ChangeTracking:
        """Whether the VM can track changed blocks, and whether tracking is configured on."""
        ...

    def enable_change_tracking(self, moref: str) -> None:
        """Turn changed block tracking on (``ReconfigVM_Task``); effective at the next stun."""
        ...

    def disk_change_ids(self, moref: str, snapshot_id: str | None) -> dict[int, str | None]:
        """``changeId`` of each disk backing as of the snapshot (``None`` where the disk has
        none: tracking not active)."""
        ...

    def open_volume(self, moref: str, snapshot_id: str, volume: VolumeInfo) -> VolumeReader:
        """A guest volume's files as of the snapshot."""
        ...

    def check_fault(self, operation: str, target: str, *, vm: str | None = None) -> FaultRule | None:
        """Ask the fault injector whether a proxy-side fault (export, mount, unmount, copy,
        crash) fires here; ``None`` when nothing is armed."""
        ...


class _FatVolumeReader:
    """A FAT volume of a disk view, read through the simulator's FAT reader."""

    def __init__(self, fs: Any) -> None:
        self._fs = fs
        #: path -> (first cluster, size) from the walk: the volume is a frozen snapshot, so a
        #: file is read by its chain without resolving its path again (issue 18)
        self._chains: dict[str, tuple[int, int]] = {}

    def walk(self) -> Iterator[GuestFile]:
        for dirpath, names in self.walk_dirs():
            prefix = dirpath + "/" if dirpath else ""
            for name, is_dir, size, mtime in names:
                yield GuestFile(prefix + name, is_dir, size, mtime)

    def walk_dirs(self) -> Iterator[tuple[str, list[tuple[str, bool, int, float]]]]:
        """Each directory once (parents first) as ``(path, [(name, is_dir, size, mtime)])``,
        its subdirectories before its files: what ``walk`` yields, a directory at a time, so
        a reader of the whole tree (a backup) makes each directory's path once, not per file."""
        chains = self._chains
        for dirpath, entries in self._fs.walk_entries("/"):
            base = dirpath.strip("/")
            prefix = base + "/" if base else ""
            names = [(name, True, 0, mtime) for name, is_dir, _s, mtime, _f in entries if is_dir]
            files = [(name, False, size, mtime) for name, is_dir, size, mtime, _f in entries if not is_dir]
            chains.update((prefix + name, (first, size)) for name, is_dir, size, _m, first in entries if not is_dir)
            yield base, names + files

    def read_bytes(self, path: str) -> bytes:
        chain = self._chains.get(path.strip("/"))
        if chain is not None:
            return bytes(self._fs.read_chain(chain[0], chain[1], path))
        return bytes(self._fs.read_file("/" + path.strip("/")))


class InProcessHostClient:
    """The host-client seam bound to a simulator ``Host`` in the same process.

    Snapshot ids are the host's snapshot morefs (``snapshot-3``). Guest volumes are read
    straight from the snapshot's disk view (MBR, then the FAT file system on the partition),
    so a mount sees exactly the blocks the snapshot froze.

    .. versionadded:: 0.1.0
    """

    def __init__(self, host: Any) -> None:
        self.host = host

    @property
    def trace(self) -> Trace:
        return self.host.trace  # type: ignore[no-any-return]

    @property
    def clock(self) -> ClockLike:
        return self.host.clock  # type: ignore[no-any-return]

    @property
    def host_name(self) -> str:
        return str(self.host.name)

    @property
    def api_version(self) -> str:
        return str(self.host.profile.api_version)

    # -- inventory -------------------------------------------------------------------------

    def _vm(self, moref: str) -> Any:
        return self.host.find_vm(f"moref:{moref}")

    def _info(self, vm: Any) -> VMInfo:
        disks = tuple(
            DiskInfo(
                key=d.key, label=d.label, file_name=d.base_name, capacity=d.capacity,
                disk_mode=d.disk_mode, rdm=d.rdm,
            )
            for d in vm.disks
        )
        return VMInfo(
            name=vm.name,
            moref=vm.moref,
            uuid=vm.uuid,
            os_family=vm.os_family,
            guest_id=vm.guest_id,
            power_state=vm.power_state,
            ip=vm.ip_address,
            consolidation_needed=bool(getattr(vm, "consolidation_needed", False)),
            disks=disks,
            volumes=self._volumes(vm),
            vmx_path=vm.vmx_path,
        )

    @staticmethod
    def _volumes(vm: Any) -> tuple[VolumeInfo, ...]:
        guest = getattr(vm, "guest", None)
        if guest is None:
            return ()
        out = []
        for i, v in enumerate(getattr(guest, "volumes", ())):
            disk_index = int(getattr(v, "disk_index", 0))
            part = getattr(v, "partition", 0)
            part_index = int(getattr(part, "index", part))
            letter = getattr(v, "letter", None)
            out.append(
                VolumeInfo(
                    index=i,
                    disk_key=vm.disks[disk_index].key,
                    partition=part_index,
                    letter=str(letter).rstrip(":").upper() if letter else None,
                    mount_point=getattr(v, "mount_point", None),
                    label=str(getattr(v, "label", "") or ""),
                )
            )
        return tuple(out)

    def list_vms(self) -> list[VMInfo]:
        return [self._info(vm) for vm in self.host.vms.values()]

    def find_vm(self, selector: str) -> VMInfo:
        parse_selector(selector)
        return self._info(self.host.find_vm(selector))

    def vm_info(self, moref: str) -> VMInfo:
        return self._info(self._vm(moref))

    def read_vmx(self, moref: str) -> str:
        return str(self._vm(moref).vmx_text())

    # -- snapshots ---------------------------------------------------------------------------

    def create_snapshot(
        self,
        moref: str,
        name: str,
        *,
        description: str = "",
        quiesce: bool = True,
        memory: bool = False,
    ) -> SnapshotInfo:
        snap = self.host.create_snapshot(
            self._vm(moref), name, description=description, memory=memory, quiesce=quiesce
        )
        return self._snap(snap)

    @staticmethod
    def _snap(s: Any) -> SnapshotInfo:
        return SnapshotInfo(
            id=s.moref,
            name=s.name,
            created=float(s.create_time),
            quiesced=bool(s.quiesced),
            description=s.description,
            children=tuple(c.moref for c in s.children),
        )

    def remove_snapshot(self, moref: str, snapshot_id: str, *, consolidate: bool = True) -> None:
        self.host.remove_snapshot(self._vm(moref), snapshot_id, consolidate=consolidate)

    def list_snapshots(self, moref: str) -> list[SnapshotInfo]:
        return [self._snap(s) for s in self._vm(moref).snapshots()]

    def consolidate_disks(self, moref: str) -> None:
        self.host.consolidate_disks(self._vm(moref))

    # -- disks -------------------------------------------------------------------------------

    def open_disk(self, moref: str, disk_key: int, snapshot_id: str | None) -> BlockReader:
        return self.host.disk_view(self._vm(moref), disk_key, snapshot_id)  # type: ignore[no-any-return]

    def write_disk(self, moref: str, disk_key: int, offset: int, data: bytes) -> None:
        self.host.guest_device(self._vm(moref), disk_key).write(offset, data)

    def allocated_areas(
        self, moref: str, disk_key: int, snapshot_id: str | None
    ) -> list[tuple[int, int]]:
        view = self.host.disk_view(self._vm(moref), disk_key, snapshot_id)
        return [(int(o), int(n)) for o, n in view.allocated_areas()]

    def query_changed_areas(
        self, moref: str, snapshot_id: str, disk_key: int, start_offset: int, change_id: str
    ) -> list[tuple[int, int]]:
        vm = self._vm(moref)
        capacity = next((d.capacity for d in vm.disks if d.key == disk_key), None)
        out: list[tuple[int, int]] = []
        pos = start_offset
        while True:
            # the host answers one window at a time (at most 512 areas), as real hosts do
            info = self.host.query_changed_disk_areas(vm, snapshot_id, disk_key, pos, change_id)
            out.extend((int(o), int(n)) for o, n in info.changed_area)
            end = int(info.start_offset) + int(info.length)
            if capacity is None or end <= pos or end >= capacity:
                return out
            pos = end

    def change_tracking(self, moref: str) -> ChangeTracking:
        vm = self._vm(moref)
        pending = vm.change_tracking_pending
        return ChangeTracking(
            supported=bool(self.host.profile.change_tracking),
            enabled=bool(vm.change_tracking if pending is None else pending),
        )

    def enable_change_tracking(self, moref: str) -> None:
        self.host.reconfigure(self._vm(moref), change_tracking=True)

    def disk_change_ids(self, moref: str, snapshot_id: str | None) -> dict[int, str | None]:
        vm = self._vm(moref)
        return {d.key: self.host.change_id(vm, d.key, snapshot_id) for d in vm.disks}

    def open_volume(self, moref: str, snapshot_id: str, volume: VolumeInfo) -> VolumeReader:
        from vcbsim.simulator.guest import PartitionDevice, open_readonly, read_partitions

        view = self.host.disk_view(self._vm(moref), volume.disk_key, snapshot_id)
        parts = {p.index: p for p in read_partitions(view)}
        if volume.partition not in parts:
            from vcbsim.simulator import NotFoundError

            msg = f"partition of volume {volume.name}"
            raise NotFoundError(msg, volume.partition, known=[str(i) for i in parts])
        fs = open_readonly(PartitionDevice.of(view, parts[volume.partition]), clock=self.host.clock)
        return _FatVolumeReader(fs)

    def check_fault(self, operation: str, target: str, *, vm: str | None = None) -> FaultRule | None:
        faults = self.host.faults
        if not faults.rules:
            return None
        return faults.check(operation, target, vm=vm)  # type: ignore[no-any-return]
