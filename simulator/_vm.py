"""Virtual machines: identity, `.vmx`, disks with redo-log chains, and the snapshot tree.

A VM here is state only; the operations that change it (snapshots, power, reconfigure) live
on ``Host`` so that validation, fault injection, tracing and task bookkeeping happen in one
place, as they do on a real host (hostd).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from ._names import vmx_escape
from .disk import Layer, LayeredDisk

if TYPE_CHECKING:
    from .guest import GuestFileSystem
    from .tools import VMwareTools

__all__ = [
    "VM", "Snapshot", "VirtualDiskDevice", "GUEST_IDS", "GUEST_OS", "PowerState", "DISK_MODES",
    "datastore_of", "file_ref", "vmx_disk_mode", "SESSION_REDO_SUFFIX",
]

PowerState = Literal["poweredOn", "poweredOff", "suspended"]

#: ``VirtualDiskMode`` values a disk can have. The two ``independent_*`` modes are left out of
#: every snapshot (vSphere "Snapshot Behavior": "all attached non-independent disks are
#: snapshotted"); ``persistent`` is the ordinary mode.
DISK_MODES: tuple[str, ...] = ("persistent", "independent_persistent", "independent_nonpersistent")

#: The redo log an ``independent_nonpersistent`` disk writes to while the VM runs: "Changes to
#: the disk are written to and read from a redo log file that is deleted when you power off or
#: reset" (vSphere "Virtual Disk Modes"). Named after its disk with ``.REDO`` appended, as ESX
#: names the redo log of a mapped volume (ESX Server "Using Raw Device Mapping"); a later
#: host's exact name is not documented. It is in no snapshot and not a backing of the disk.
SESSION_REDO_SUFFIX = ".REDO"


def vmx_disk_mode(mode: str) -> str:
    """A ``VirtualDiskMode`` as the ``.vmx`` spells it: ``independent-persistent`` (the API's
    underscores are hyphens in ``scsi0:N.mode``)."""
    return mode.replace("_", "-")


def file_ref(path: str, directory: str) -> str:
    """How a file in ``directory`` names ``path`` (``.vmx``, ``parentFileNameHint``): the bare
    name inside the same folder, else ``/vmfs/volumes/<datastore>/<path>``."""
    folder, _, name = path.rpartition("/")
    if folder == directory:
        return name
    ds = datastore_of(path)
    if not ds:
        return path
    return f"/vmfs/volumes/{ds}/{path[path.index(']') + 1 :].strip()}"


def datastore_of(path: str) -> str:
    """``"[ds2] vm/vm_1.vmdk"`` -> ``"ds2"`` (a datastore path's datastore name)."""
    if path.startswith("[") and "]" in path:
        return path[1 : path.index("]")]
    return ""

#: guest OS family -> (vSphere guestId, .vmx guestOS, full name) for the demo-era guests.
GUEST_IDS: dict[str, tuple[str, str, str]] = {
    "windows": ("winNetEnterpriseGuest", "winnetenterprise", "Microsoft Windows Server 2003, Enterprise Edition (32-bit)"),
    "linux": ("rhel5Guest", "rhel5", "Red Hat Enterprise Linux 5 (32-bit)"),
}
#: other guests a VM can name (``VM.guest_os``): guestId -> (.vmx guestOS, full name, family,
#: Windows VSS behaviour per spec R42 / DOC-DR: ``"sync"`` = XP/2000, SYNC driver only;
#: ``"app"`` = 2003, VSS application-consistent; ``"rules"`` = 2008 and later, application
#: consistent only under the 4.1+ conditions, else file-system consistent).
GUEST_OS: dict[str, tuple[str, str, str, str]] = {
    "winXPProGuest": ("winxppro", "Microsoft Windows XP Professional (32-bit)", "windows", "sync"),
    "winNetEnterpriseGuest": (*GUEST_IDS["windows"][1:], "windows", "app"),
    "windows7Server64Guest": ("windows7srv-64", "Microsoft Windows Server 2008 R2 (64-bit)", "windows", "rules"),
    "windows2019srv_64Guest": ("windows2019srv-64", "Microsoft Windows Server 2019 (64-bit)", "windows", "rules"),
    "rhel5Guest": (*GUEST_IDS["linux"][1:], "linux", ""),
}


@dataclass(eq=False)
class VirtualDiskDevice:
    """One virtual disk attached to a VM (``scsi0:N``).

    ``disk`` holds the data; each of its layers carries the VMware file name as its label
    (``win2003.vmdk`` for the base, ``win2003-000001.vmdk`` for redo logs), so ``file_name``
    (what ``backing.fileName`` shows) is simply the top layer's label.
    """

    key: int
    unit_number: int
    label: str
    base_name: str
    disk: LayeredDisk
    controller_key: int = 1000
    disk_mode: str = "persistent"
    thin: bool = True
    change_id_prefix: str = ""
    #: ``"scsi"`` or ``"ide"``: VSS application consistency needs SCSI-only disks (R42).
    controller: str = "scsi"
    #: a raw device mapping's ``compatibilityMode`` (``physicalMode`` / ``virtualMode``,
    #: ``simulator/_rdm.py``); None for a virtual disk. The layers' base is then the LUN.
    rdm: str | None = None
    #: the mapped LUN: ``backing.lunUuid`` and ``backing.deviceName`` (RDMs only)
    lun_uuid: str = ""
    device_name: str = ""

    @property
    def independent(self) -> bool:
        """Independent disks are not part of any snapshot (``independent_*`` modes; a physical
        RDM has ``independent_persistent``, ``simulator/_rdm.py``)."""
        return self.disk_mode.startswith("independent")

    @property
    def physical_rdm(self) -> bool:
        return self.rdm == "physicalMode"

    @property
    def nonpersistent(self) -> bool:
        return self.disk_mode == "independent_nonpersistent"

    @property
    def base_extent(self) -> str:
        """The base's data file: ``<disk>-flat.vmdk``, or an RDM's mapping extent
        (``-rdmp.vmdk`` / ``-rdm.vmdk``), whose bytes are the LUN's."""
        if self.rdm is not None:
            from ._rdm import rdm_extent_name

            return rdm_extent_name(self.base_name, self.rdm)
        return self.base_name[: -len(".vmdk")] + "-flat.vmdk"

    def session_redo(self) -> Layer | None:
        """The running VM's redo log of a nonpersistent disk (deleted at power off), if any."""
        top = self.disk.top
        if self.nonpersistent and top.parent is not None and top.label.endswith(SESSION_REDO_SUFFIX):
            return top
        return None

    def backing_chain(self, at: Layer | None = None) -> list[Layer]:
        """The layers the disk's backing shows, top first: its chain without a nonpersistent
        disk's session redo log (a host shows the disk's own file as its backing)."""
        chain = self.disk.chain(at)
        return [layer for layer in chain if not layer.label.endswith(SESSION_REDO_SUFFIX)] or chain

    @property
    def datastore(self) -> str:
        """The datastore the base disk lives on (it may differ from the VM's)."""
        return datastore_of(self.base_name)

    @property
    def capacity(self) -> int:
        return self.disk.capacity

    @property
    def file_name(self) -> str:
        """Current backing file (the writable layer's descriptor; for a nonpersistent disk its
        own file, whatever session redo log it writes to)."""
        return self.backing_chain()[0].label

    def chain_files(self) -> list[str]:
        """Descriptor file names from the writable layer down to the base."""
        return [layer.label for layer in self.disk.chain()]

    def change_id(self, epoch: int) -> str:
        """VMware-style change id: 16 hex byte pairs, ``/``, a sequence number."""
        return f"{self.change_id_prefix}/{epoch}"


@dataclass(eq=False)
class Snapshot:
    """One node of a VM's snapshot tree; holds one frozen layer per disk."""

    id: int
    moref: str
    name: str
    description: str
    create_time: float
    quiesced: bool
    memory: bool
    power_state: PowerState
    layers: dict[int, Layer]
    epochs: dict[int, int]
    parent: Snapshot | None = None
    children: list[Snapshot] = field(default_factory=list)
    #: bytes of the ``<vm>-SnapshotN.vmsn`` in the working directory: the saved configuration
    #: and, for a memory snapshot, the memory image (ESX 3.x/4.x keep it in the .vmsn).
    vmsn_bytes: int = 0
    #: what quiescing got: ``"application"`` (VSS with writers), ``"filesystem"`` or None.
    quiesce_type: str | None = None
    #: ``SnapshotTree.backupManifest`` (API 4.0): the VSS manifest of an application-consistent
    #: snapshot, relative to the snapshot directory; None otherwise.
    backup_manifest: str | None = None

    @property
    def state(self) -> PowerState:
        """``poweredOff`` for a snapshot taken without memory (what vSphere reports)."""
        return self.power_state if self.memory else "poweredOff"

    def walk(self) -> list[Snapshot]:
        """This snapshot and all its descendants, depth first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out

    def create_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.create_time, tz=UTC)

    def __repr__(self) -> str:
        return f"<Snapshot {self.moref} {self.name!r}>"


@dataclass(eq=False)
class VM:
    """A virtual machine on the simulated host."""

    name: str
    moref: str
    uuid: str
    instance_uuid: str
    os_family: Literal["windows", "linux"]
    datastore: str
    directory: str
    memory_mb: int = 1024
    num_cpus: int = 1
    hw_version: int = 4
    power_state: PowerState = "poweredOff"
    hostname: str = ""
    ip_address: str | None = None
    disks: list[VirtualDiskDevice] = field(default_factory=list)
    root_snapshots: list[Snapshot] = field(default_factory=list)
    current_snapshot: Snapshot | None = None
    change_tracking: bool = False
    change_tracking_pending: bool | None = None
    tools: VMwareTools | None = None
    guest: GuestFileSystem | None = None
    consolidation_needed: bool = False
    busy: str | None = None
    next_delta: int = 1
    next_snapshot_uid: int = 1
    extra_config: dict[str, str] = field(default_factory=dict)
    #: ``workingDir``: where redo logs and ``.vmsn`` files go, for every disk whatever its
    #: datastore (Broadcom KB 304387; KB-WDIR). None: the VM's own directory.
    working_dir: str | None = None
    #: the Windows guest uses dynamic disks (VSS then gives file-system consistency only, R42).
    dynamic_disks: bool = False
    #: ``runtime.connectionState``: "connected", or "inaccessible" (a file is missing) /
    #: "invalid" (a file is damaged) for a registered VM the datastore could not load;
    #: such a VM has no disks and refuses operations (simulator/_persist.py)
    connection_state: str = "connected"
    #: a ``GUEST_OS`` guestId; None: the family's demo-era guest (``GUEST_IDS``).
    guest_os: str | None = None

    @property
    def vss_kind(self) -> str:
        """How this guest's VSS quiesces (``GUEST_OS``'s last column; "" for Linux)."""
        if self.guest_os is not None:
            return GUEST_OS[self.guest_os][3]
        return "app" if self.os_family == "windows" else ""

    @property
    def snapshot_dir(self) -> str:
        """The working directory (``[ds] path``): redo logs and snapshot state live here."""
        return self.working_dir or self.directory

    @property
    def guest_id(self) -> str:
        return self.guest_os or GUEST_IDS[self.os_family][0]

    @property
    def guest_full_name(self) -> str:
        return GUEST_OS[self.guest_os][1] if self.guest_os else GUEST_IDS[self.os_family][2]

    @property
    def vmx_path(self) -> str:
        return f"{self.directory}/{self.name}.vmx"

    @property
    def vmsd_path(self) -> str:
        return f"{self.directory}/{self.name}.vmsd"

    def snapshots(self) -> list[Snapshot]:
        """Every snapshot, depth first from the roots."""
        out: list[Snapshot] = []
        for root in self.root_snapshots:
            out.extend(root.walk())
        return out

    def find_snapshot(self, ref: str | int | Snapshot) -> Snapshot | None:
        """By object, moref (``snapshot-3``), numeric id, or name (first match)."""
        for snap in self.snapshots():
            if ref is snap or ref == snap.moref or ref == snap.id or ref == snap.name:
                return snap
        return None

    def disk(self, key: int | str) -> VirtualDiskDevice | None:
        for d in self.disks:
            if key in (d.key, d.label, d.file_name, d.base_name):
                return d
        return None

    # -- files on the datastore -------------------------------------------------------------

    def vmx_text(self) -> str:
        """The ``.vmx`` as a person (and VCB's export) reads it."""
        guest_os = GUEST_OS[self.guest_os][0] if self.guest_os else GUEST_IDS[self.os_family][1]

        def pair(h: str) -> str:
            return " ".join(h[i : i + 2] for i in range(0, 32, 2))

        lines = {
            ".encoding": "UTF-8",
            "config.version": "8",
            "virtualHW.version": str(self.hw_version),
            "displayName": self.name,
            "guestOS": guest_os,
            "memsize": str(self.memory_mb),
            "numvcpus": str(self.num_cpus),
            "uuid.bios": pair(self.uuid.replace("-", "")),
            "vc.uuid": pair(self.instance_uuid.replace("-", "")),
            "scsi0.present": "TRUE",
            "scsi0.virtualDev": "lsilogic",
        }
        if self.change_tracking:
            lines["ctkEnabled"] = "TRUE"
        if self.working_dir:
            lines["workingDir"] = self.vmx_file(self.working_dir)
        for d in self.disks:
            node = f"{d.controller}0:{d.unit_number}"
            lines[f"{node}.present"] = "TRUE"
            lines[f"{node}.fileName"] = self.vmx_file(d.file_name)
            lines[f"{node}.deviceType"] = "scsi-hardDisk" if d.controller == "scsi" else "disk"
            lines[f"{node}.mode"] = vmx_disk_mode(d.disk_mode)
            if self.change_tracking:
                lines[f"{node}.ctkEnabled"] = "TRUE"
        lines.update(
            {
                "ethernet0.present": "TRUE",
                "ethernet0.virtualDev": "vlance",
                "ethernet0.networkName": "VM Network",
                "tools.syncTime": "FALSE",
                "tools.remindInstall": "FALSE",
            }
        )
        lines.update(self.extra_config)
        return "".join(f'{k} = "{vmx_escape(v)}"\n' for k, v in lines.items())

    def vmx_file(self, path: str) -> str:
        """A ``.vmx`` file reference: a bare name inside the VM's directory, else the
        ``/vmfs/volumes/<datastore>/...`` path (as a host writes a disk on another datastore)."""
        if path.startswith(self.directory + "/"):
            return path[len(self.directory) + 1 :]
        return file_ref(path, self.directory)

    def vmsd_text(self) -> str:
        """Snapshot metadata in the ``<vm>.vmsd`` text format."""
        snaps = self.snapshots()
        out = {".encoding": "UTF-8"}
        if snaps:
            out["snapshot.lastUID"] = str(max(s.id for s in snaps))
            if self.current_snapshot is not None:
                out["snapshot.current"] = str(self.current_snapshot.id)
        for i, s in enumerate(snaps):
            p = f"snapshot{i}"
            out[f"{p}.uid"] = str(s.id)
            out[f"{p}.filename"] = f"{self.name}-Snapshot{s.id}.vmsn"
            if s.parent is not None:
                out[f"{p}.parent"] = str(s.parent.id)
            out[f"{p}.displayName"] = s.name
            if s.description:
                out[f"{p}.description"] = s.description
            out[f"{p}.type"] = "1" if s.quiesced else "0"
            micros = int(s.create_time * 1_000_000)
            out[f"{p}.createTimeHigh"] = str(micros >> 32)
            out[f"{p}.createTimeLow"] = str(micros & 0xFFFFFFFF)
            out[f"{p}.numDisks"] = str(len(s.layers))
            j = 0
            for d in self.disks:
                layer = s.layers.get(d.key)
                if layer is not None:
                    out[f"{p}.disk{j}.fileName"] = self.vmx_file(layer.label)
                    out[f"{p}.disk{j}.node"] = f"{d.controller}0:{d.unit_number}"
                    j += 1
        out["snapshot.numSnapshots"] = str(len(snaps))
        return "".join(f'{k} = "{vmx_escape(v)}"\n' for k, v in out.items())

    def summary(self) -> dict[str, Any]:
        """Plain data for dumps, the REPL and the control API."""
        return {
            "name": self.name,
            "moref": self.moref,
            "uuid": self.uuid,
            "os": self.os_family,
            "power": self.power_state,
            "connection_state": self.connection_state,
            "ip": self.ip_address,
            "tools": self.tools.state if self.tools is not None else "not-installed",
            # a 3.5-era guest still in an operation the host stopped waiting for (virtual time)
            "tools_busy_until": self.tools.busy_until if self.tools is not None else None,
            "guest_id": self.guest_id,
            "working_dir": self.snapshot_dir,
            "change_tracking": self.change_tracking,
            "consolidation_needed": self.consolidation_needed,
            "current_snapshot": self.current_snapshot.name if self.current_snapshot else None,
            "snapshots": [
                {
                    "moref": s.moref, "name": s.name, "parent": s.parent.moref if s.parent else None,
                    "quiesced": s.quiesced, "quiesce_type": s.quiesce_type,
                }
                for s in self.snapshots()
            ],
            "disks": [
                {
                    "key": d.key,
                    "label": d.label,
                    "capacity": d.capacity,
                    "mode": d.disk_mode,
                    "rdm": d.rdm,
                    "datastore": d.datastore,
                    "controller": d.controller,
                    "chain": [
                        {"file": layer.label, "grains": layer.grain_count}
                        for layer in d.disk.chain()
                    ],
                }
                for d in self.disks
            ],
        }
