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

__all__ = ["VM", "Snapshot", "VirtualDiskDevice", "GUEST_IDS", "PowerState"]

PowerState = Literal["poweredOn", "poweredOff", "suspended"]

#: guest OS family -> (vSphere guestId, .vmx guestOS, full name) for the demo-era guests.
GUEST_IDS: dict[str, tuple[str, str, str]] = {
    "windows": ("winNetEnterpriseGuest", "winnetenterprise", "Microsoft Windows Server 2003, Enterprise Edition (32-bit)"),
    "linux": ("rhel5Guest", "rhel5", "Red Hat Enterprise Linux 5 (32-bit)"),
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

    @property
    def capacity(self) -> int:
        return self.disk.capacity

    @property
    def file_name(self) -> str:
        """Current backing file (the writable layer's descriptor)."""
        return self.disk.top.label

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
    #: ``runtime.connectionState``: "connected", or "inaccessible" (a file is missing) /
    #: "invalid" (a file is damaged) for a registered VM the datastore could not load;
    #: such a VM has no disks and refuses operations (simulator/_persist.py)
    connection_state: str = "connected"

    @property
    def guest_id(self) -> str:
        return GUEST_IDS[self.os_family][0]

    @property
    def guest_full_name(self) -> str:
        return GUEST_IDS[self.os_family][2]

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
        _, guest_os, _ = GUEST_IDS[self.os_family]

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
        for d in self.disks:
            node = f"scsi0:{d.unit_number}"
            lines[f"{node}.present"] = "TRUE"
            lines[f"{node}.fileName"] = d.file_name.rsplit("/", 1)[-1]
            lines[f"{node}.deviceType"] = "scsi-hardDisk"
            lines[f"{node}.mode"] = d.disk_mode
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
            for j, d in enumerate(self.disks):
                layer = s.layers.get(d.key)
                if layer is not None:
                    out[f"{p}.disk{j}.fileName"] = layer.label.rsplit("/", 1)[-1]
                    out[f"{p}.disk{j}.node"] = f"scsi0:{d.unit_number}"
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
            "change_tracking": self.change_tracking,
            "consolidation_needed": self.consolidation_needed,
            "current_snapshot": self.current_snapshot.name if self.current_snapshot else None,
            "snapshots": [
                {"moref": s.moref, "name": s.name, "parent": s.parent.moref if s.parent else None, "quiesced": s.quiesced}
                for s in self.snapshots()
            ],
            "disks": [
                {
                    "key": d.key,
                    "label": d.label,
                    "capacity": d.capacity,
                    "chain": [
                        {"file": layer.label, "grains": layer.grain_count}
                        for layer in d.disk.chain()
                    ],
                }
                for d in self.disks
            ],
        }
