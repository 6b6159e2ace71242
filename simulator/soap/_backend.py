"""The narrow interface between the SOAP endpoint and whatever host it serves.

Why a protocol of plain records, and not the host object itself: the endpoint builds every
vSphere data object (``vim.vm.ConfigInfo``, backings, ``TaskInfo`` ...) in one place from these
records, so the host stays free of wire concerns, a test can serve a twenty-line fake, and an
adapter from ``Host`` is a thin translation (``_host_adapter.py``).

Rules every backend follows:

- Identifiers are strings: VM morefs (``vm-1``), snapshot morefs (``snapshot-3``), datastore
  names. ``VMInfo``/``SnapshotInfo`` are snapshots of state: the endpoint asks again whenever it
  needs the current value and never mutates them.
- Operations are synchronous and may advance the virtual clock. They raise pyVmomi faults
  (``vim.fault.*``/``vmodl.fault.*``, built with ``simulator._faults.make_fault``) exactly as a
  real host would; ``NotFoundError``, ``InvalidInputError`` and ``StateError`` from
  ``simulator._errors`` are mapped to ``ManagedObjectNotFound``, ``InvalidArgument`` and
  ``InvalidState``.
- The endpoint calls a backend from one thread at a time (it holds one lock around every call),
  so a backend need not be thread-safe.
- Finders (by uuid, IP, DNS name, inventory path) are derived by the endpoint from ``vms()``;
  a backend does not implement them. So are the networks (the port groups the VMs' adapters
  use, and ``VM Network``, which every host has).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "ChangedAreas",
    "DatastoreInfo",
    "DiskInfo",
    "DiskLayer",
    "GuestBackend",
    "GuestFile",
    "GuestProcess",
    "HostAbout",
    "HostBackend",
    "NicInfo",
    "SnapshotInfo",
    "VMFile",
    "VMInfo",
]

PowerState = Literal["poweredOn", "poweredOff", "suspended"]


@dataclass(frozen=True, slots=True)
class HostAbout:
    """What ``ServiceContent.about`` reports (from the host profile)."""

    name: str = "VMware ESX Server"
    full_name: str = "VMware ESX Server 3.5.0 build-110268"
    version: str = "3.5.0"
    build: str = "110268"
    api_version: str = "2.5u2"
    product_line: str = "esx"
    os_type: str = "vmnix-x86"
    instance_uuid: str = ""
    host_name: str = "esx.vcbsim.local"


@dataclass(frozen=True, slots=True)
class DatastoreInfo:
    name: str
    capacity: int
    free_space: int
    url: str = ""
    type: str = "VMFS"


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


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    moref: str
    id: int
    name: str
    description: str
    create_time: float
    state: PowerState
    quiesced: bool
    children: Sequence[SnapshotInfo] = ()
    #: the disks as of this snapshot (their chains end at the frozen layer)
    disks: Sequence[DiskInfo] = ()
    #: the snapshot's own files (``<vm>-Snapshot1.vmsn``)
    files: Sequence[VMFile] = ()


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


@dataclass(frozen=True, slots=True)
class VMInfo:
    moref: str
    name: str
    uuid: str
    instance_uuid: str
    guest_id: str
    guest_full_name: str
    os_family: Literal["windows", "linux"]
    power_state: PowerState
    vmx_path: str  # "[datastore1] vm1/vm1.vmx"
    datastores: Sequence[str]
    disks: Sequence[DiskInfo]
    snapshots: Sequence[SnapshotInfo] = ()
    current_snapshot: str | None = None
    memory_mb: int = 1024
    num_cpu: int = 1
    tools_running: bool = False
    tools_version: str = ""
    ip_address: str | None = None
    host_name: str | None = None
    change_tracking: bool = False
    consolidation_needed: bool = False
    quiesced_snapshots_supported: bool = True
    change_tracking_supported: bool = False
    files: Sequence[VMFile] = field(default_factory=tuple)
    annotation: str = ""
    nics: Sequence[NicInfo] = ()
    connection_state: str = "connected"  # "inaccessible"/"invalid": files not loadable


@dataclass(frozen=True, slots=True)
class ChangedAreas:
    """One window of ``QueryChangedDiskAreas``: ``areas`` are (offset, length) pairs."""

    start_offset: int
    length: int
    areas: Sequence[tuple[int, int]]


@runtime_checkable
class HostBackend(Protocol):
    """What the endpoint needs from a host. See the module docstring for the rules."""

    def about(self) -> HostAbout: ...

    def now(self) -> float:
        """Virtual time (seconds since the Unix epoch)."""
        ...

    def datastores(self) -> Sequence[DatastoreInfo]: ...

    def vms(self) -> Sequence[VMInfo]: ...

    def vm(self, moref: str) -> VMInfo:
        """The VM, or ``NotFoundError``."""
        ...

    def power_on(self, vm: str) -> None: ...

    def power_off(self, vm: str) -> None: ...

    def create_snapshot(
        self, vm: str, name: str, description: str, memory: bool, quiesce: bool
    ) -> str:
        """Take a snapshot; return its moref."""
        ...

    def remove_snapshot(
        self, vm: str, snapshot: str, *, remove_children: bool, consolidate: bool
    ) -> None: ...

    def remove_all_snapshots(self, vm: str, *, consolidate: bool) -> None: ...

    def revert_to_snapshot(self, vm: str, snapshot: str, *, suppress_power_on: bool) -> None: ...

    def consolidate_disks(self, vm: str) -> None: ...

    def reconfigure(self, vm: str, *, change_tracking: bool | None = None) -> None: ...

    def query_changed_disk_areas(
        self, vm: str, snapshot: str | None, disk_key: int, start_offset: int, change_id: str
    ) -> ChangedAreas: ...

    def datastore_file_list(self, datastore: str) -> Sequence[tuple[str, int]]:
        """Every file on ``datastore``: (path relative to its root, size); ``NotFoundError`` for
        an unknown datastore. Folders are implied by the paths."""
        ...

    def datastore_file_size(self, datastore: str, path: str) -> int:
        """Size of ``path`` (relative to the datastore root), or ``NotFoundError``."""
        ...

    def read_datastore_file(self, datastore: str, path: str, offset: int, length: int) -> bytes: ...

    def write_datastore_file(self, datastore: str, path: str, data: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class GuestFile:
    path: str
    type: Literal["file", "directory", "symlink"]
    size: int
    modification_time: float


@dataclass(frozen=True, slots=True)
class GuestProcess:
    pid: int
    name: str
    owner: str
    cmd_line: str
    start_time: float
    end_time: float | None = None
    exit_code: int | None = None


@runtime_checkable
class GuestBackend(Protocol):
    """Guest operations (``GuestOperationsManager``); optional. The backend checks the VM is
    running with VMware Tools (``InvalidPowerState``, ``GuestOperationsUnavailable``) and the
    guest credentials (``InvalidGuestLogin``), and raises ``FileNotFound``,
    ``FileAlreadyExists``, ``DirectoryNotEmpty``, ``NotAFile`` ... as a real host does.
    Paths are guest paths (``C:\\dir\\f.txt``, ``/etc/x``). Paging and ``matchPattern`` of
    ``ListFilesInGuest`` are the endpoint's."""

    def guest_list_files(self, vm: str, user: str, password: str, path: str) -> Sequence[GuestFile]:
        """The entries of directory ``path`` (names only), or the file ``path`` itself."""
        ...

    def guest_make_directory(
        self, vm: str, user: str, password: str, path: str, create_parents: bool
    ) -> None: ...

    def guest_delete_file(self, vm: str, user: str, password: str, path: str) -> None: ...

    def guest_delete_directory(
        self, vm: str, user: str, password: str, path: str, recursive: bool
    ) -> None: ...

    def guest_read_file(self, vm: str, user: str, password: str, path: str) -> bytes: ...

    def guest_write_file(
        self, vm: str, user: str, password: str, path: str, data: bytes, overwrite: bool
    ) -> None: ...

    def guest_start_program(
        self, vm: str, user: str, password: str, program: str, arguments: str, cwd: str | None
    ) -> int:
        """Start a program; return its pid (``guest_list_processes`` tells how it ended)."""
        ...

    def guest_list_processes(
        self, vm: str, user: str, password: str, pids: Sequence[int]
    ) -> Sequence[GuestProcess]: ...
