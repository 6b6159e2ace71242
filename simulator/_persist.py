"""A host's datastore kept as real files: ``Host(..., datastore_dir=DIR)``.

Layout of ``DIR``::

    vcbsim-host.json                       host state (clock, moref counters, RNG state)
    .vcbsim.lock                           flock: one host at a time uses the directory
    <datastore>/<vm>/<vm>.vmx              the VM's .vmx text (what VM.vmx_text() renders)
    <datastore>/<vm>/<vm>.vmsd             snapshot metadata text (VM.vmsd_text())
    <datastore>/<vm>/<vm>.vcbsim.json      the VM's state: identity, power, Tools, guest volume
                                           layout, snapshot tree, and for every disk its layer
                                           tree (labels, parents, flags, epochs, extent files)
    <datastore>/<vm>/<vm>.vmdk             descriptor of the base (render_descriptor) ...
    <datastore>/<vm>/<vm>-flat.vmdk        ... and its raw sparse extent (qemu-img reads it)
    <datastore>/<vm>/<vm>-000001.vmdk      descriptor of a redo log, extent ...-delta.vmdk
    <datastore>/<vm>/...                   the base's WAL and the CBT log (disk/_persistent.py)

Crash safety. Writes reach their files before ``write`` returns (see
``vcbsim.simulator.disk._persistent``). State files are replaced atomically (temporary file,
``fsync``, ``rename``, ``fsync`` of the directory). A host operation (snapshot create,
remove, revert, consolidate, power, reconfigure) changes the model in memory, then
:meth:`DatastoreStore.save_vm` writes the VM's new state once, listing the merges the
operation did as intents; only then are the merge copies made, the state written again
without intents, and files no layer uses any more deleted. A kill before the first write
leaves the old state with its files untouched; after it, loading finishes the listed merges
(idempotent). So each operation is atomic across a kill: every disk reads as before it or as
after it.

Recovery (:func:`attach_store`, run by ``Host.__init__``): read the host and VM states, finish
interrupted merges, cut torn log tails, release frozen layers no snapshot holds (left by an
interrupted removal) and merge them, delete leftover files of interrupted operations, and
report it all in ``host.recovery_report`` (and a trace ``note``). Snapshots that were there
(e.g. a ``_VCB-BACKUP_`` of a killed backup) are there again and can be removed as usual.

Not kept: the trace, fault rules, and files of a guest that has no volumes (Tools' in-memory
guest); the Tools object is rebuilt from its settings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import InvalidInputError, StateError
from ._vm import VM, Snapshot, VirtualDiskDevice
from .disk import CREATE_TYPES, Layer, render_descriptor
from .disk._persistent import PersistentLayeredDisk, atomic_write

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._host import Host
    from ._profiles import HostProfile

__all__ = ["DatastoreStore", "RecoveryReport", "attach_store", "open_host", "STATE_SUFFIX"]

FORMAT = 1
HOST_FILE = "vcbsim-host.json"
LOCK_FILE = ".vcbsim.lock"
STATE_SUFFIX = ".vcbsim.json"
_SWEPT_SUFFIXES = (".vmdk", ".tmp", ".wal", "-ctk.log")


@dataclass
class RecoveryReport:
    """What opening a datastore directory found and did."""

    directory: str
    created: bool = False
    vms: list[str] = field(default_factory=list)
    #: VM name -> names of the snapshots it has (e.g. a leftover ``_VCB-BACKUP_``)
    snapshots: dict[str, list[str]] = field(default_factory=dict)
    #: finished merges, cut torn tails, redone WAL records, compactions
    repairs: list[str] = field(default_factory=list)
    #: frozen layers no snapshot held (an interrupted removal), released and merged
    released: list[str] = field(default_factory=list)
    #: files of interrupted operations that no state referred to, deleted
    removed_files: list[str] = field(default_factory=list)
    #: VMs that could not be loaded, with the reason
    errors: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing needed repair (a clean shutdown, or a new directory)."""
        return not (self.repairs or self.released or self.removed_files or self.errors)

    def summary(self) -> str:
        if self.created:
            return f"datastore directory {self.directory}: new"
        snaps = sum(len(v) for v in self.snapshots.values())
        text = f"datastore directory {self.directory}: {len(self.vms)} VM(s), {snaps} snapshot(s)"
        if self.clean:
            return text + ", clean"
        parts = []
        if self.repairs:
            parts.append(f"{len(self.repairs)} repair(s)")
        if self.released:
            parts.append(f"{len(self.released)} unheld layer(s) merged")
        if self.removed_files:
            parts.append(f"{len(self.removed_files)} leftover file(s) deleted")
        if self.errors:
            parts.append(f"{len(self.errors)} error(s)")
        return text + ", recovered: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _moref_number(moref: str) -> int:
    m = re.search(r"(\d+)$", moref)
    return int(m.group(1)) if m else 0


class DatastoreStore:
    """Keeps one host's VMs in a directory (module docstring). Created by :func:`attach_store`."""

    def __init__(
        self, host: Host, root: str | os.PathLike[str], *, sync_writes: bool = False
    ) -> None:
        self.host = host
        self.root = Path(root)
        self.sync_writes = sync_writes
        self._written: dict[Path, bytes] = {}
        self._saving: set[str] = set()
        # while loading: files of interrupted operations that sweeps deleted
        self._removed: list[str] | None = None
        self._lock_fd: int | None = None

    # -- paths -------------------------------------------------------------------------------

    def vm_dir(self, vm: VM) -> Path:
        if vm.name in (".", "..") or "\0" in vm.name or "/" in vm.name:
            raise InvalidInputError("VM name", expected="a name usable as a directory", got=vm.name)
        return self.root / vm.datastore / vm.name

    def state_path(self, vm: VM) -> Path:
        return self.vm_dir(vm) / f"{vm.name}{STATE_SUFFIX}"

    # -- hooks the host calls ----------------------------------------------------------------

    def new_disk(self, vm: VM, capacity: int) -> PersistentLayeredDisk:
        """A blank disk whose files live in the VM's directory."""
        profile = self.host.profile
        # the rule of Host.delta_extent_suffix (R50), for a disk not yet attached
        sesparse = profile.delta_format == "sesparse" or capacity >= profile.sesparse_threshold
        delta_suffix = "-sesparse.vmdk" if sesparse else "-delta.vmdk"
        directory = self.vm_dir(vm)
        if not vm.disks:
            if self.state_path(vm).exists():
                msg = f"{directory} holds a VM this host did not load; move it away first"
                raise StateError(msg)
            if directory.is_dir():  # left by a VM whose creation a kill interrupted
                self._sweep(directory, set())
        directory.mkdir(parents=True, exist_ok=True)
        return PersistentLayeredDisk(
            capacity,
            directory,
            delta_suffix=delta_suffix,
            sync=self.sync_writes,
            commit=partial(self.save_vm, vm),
        )

    def save_vm(self, vm: VM) -> None:
        """Write the VM's state (see the module docstring for the order of steps)."""
        host = self.host
        with host.lock:
            if host.vms.get(vm.moref) is not vm or vm.moref in self._saving:
                return
            self._saving.add(vm.moref)
            try:
                self._save_vm(vm)
            finally:
                self._saving.discard(vm.moref)

    def _save_vm(self, vm: VM) -> None:
        directory = self.vm_dir(vm)
        directory.mkdir(parents=True, exist_ok=True)
        disks = [d.disk for d in vm.disks if isinstance(d.disk, PersistentLayeredDisk)]
        state = self.state_path(vm)
        atomic_write(state, self._vm_doc(vm))
        if any(disk.pending_intents() for disk in disks):
            for disk in disks:
                disk.apply_intents()
            atomic_write(state, self._vm_doc(vm))
        keep = {state.name, f"{vm.name}.vmx", f"{vm.name}.vmsd"}
        for disk in disks:
            disk.persisted_files = disk.files()
            keep |= disk.persisted_files
        self._put(directory / f"{vm.name}.vmx", vm.vmx_text().encode())
        self._put(directory / f"{vm.name}.vmsd", vm.vmsd_text().encode())
        for d in vm.disks:
            if isinstance(d.disk, PersistentLayeredDisk):
                for name, text in self._descriptors(vm, d, d.disk).items():
                    self._put(directory / name, text.encode())
                    keep.add(name)
        self._sweep(directory, keep)
        for disk in disks:
            disk.close_unused()
        self.save_host()

    def save_host(self) -> None:
        h = self.host
        doc = {
            "format": FORMAT,
            "name": h.name,
            "profile": h.profile.name,
            "seed": h.seed,
            "demo": h.is_demo,
            "clock": h.clock.now,
            "next_moref": h.moref_counters.next_vm,
            "next_snapshot_moref": h.moref_counters.next_snapshot,
            "random": h.random.getstate(),
        }
        data = json.dumps(doc, sort_keys=True).encode()
        path = self.root / HOST_FILE
        if self._written.get(path) != data:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)
            self._written[path] = data

    def wipe(self) -> None:
        """Delete every VM this store keeps and the host state (``Host.reset``)."""
        for vm in list(self.host.vms.values()):
            for d in vm.disks:
                if isinstance(d.disk, PersistentLayeredDisk):
                    d.disk.close()
        for state in self.root.glob(f"*/*/*{STATE_SUFFIX}"):
            shutil.rmtree(state.parent, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self.root / HOST_FILE).unlink()
        self._written.clear()
        self.unlock()

    def close(self) -> None:
        """Close every open file and release the directory (the host is not used afterwards)."""
        for vm in self.host.vms.values():
            for d in vm.disks:
                if isinstance(d.disk, PersistentLayeredDisk):
                    d.disk.close()
        self.unlock()

    def lock(self) -> None:
        """Take the directory for this host: one process (one host) at a time.

        An advisory ``flock`` on ``.vcbsim.lock``; the kernel drops it when the process dies,
        so a killed host never leaves the directory locked.
        """
        if self._lock_fd is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            msg = (
                f"datastore directory {self.root} is in use by another host (this process or "
                "another one); close that host first (host.store.close())"
            )
            raise StateError(msg) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- files ---------------------------------------------------------------------------------

    def _put(self, path: Path, data: bytes) -> None:
        """Replace a derived text file when it changed (atomic rename; no fsync needed)."""
        if self._written.get(path) == data:
            return
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self._written[path] = data

    def _sweep(self, directory: Path, keep: set[str]) -> list[str]:
        removed = []
        for entry in os.scandir(directory):
            if entry.name in keep or not entry.name.endswith(_SWEPT_SUFFIXES):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
            self._written.pop(Path(entry.path), None)
            removed.append(entry.name)
            if self._removed is not None:
                self._removed.append(f"{directory.name}/{entry.name}")
        return sorted(removed)

    def _descriptors(
        self, vm: VM, d: VirtualDiskDevice, disk: PersistentLayeredDisk
    ) -> dict[str, str]:
        """Descriptor text per live layer, named by its label, naming its real extent file."""
        out: dict[str, str] = {}
        redo_type = "seSparse" if disk.delta_suffix == "-sesparse.vmdk" else "vmfsSparse"
        for layer in disk.layers():
            name = layer.label.rsplit("/", 1)[-1]
            if not name.endswith(".vmdk") or '"' in name:
                continue
            parent = layer.parent
            create_type = "vmfs" if parent is None else redo_type
            text = render_descriptor(
                name,
                disk.capacity,
                create_type=create_type,
                parent=None if parent is None else parent.label.rsplit("/", 1)[-1],
                hw_version=vm.hw_version,
            )
            suffix = CREATE_TYPES[create_type][1] or ""
            expected = f'"{name[: -len(".vmdk")]}{suffix}"'
            out[name] = text.replace(expected, f'"{disk.extent_name(layer)}"', 1)
        return out

    # -- documents -----------------------------------------------------------------------------

    def _vm_doc(self, vm: VM) -> bytes:
        disks = []
        indexes: dict[int, dict[Layer, int]] = {}
        for d in vm.disks:
            assert isinstance(d.disk, PersistentLayeredDisk)
            meta, index = d.disk.to_meta()
            indexes[d.key] = index
            disks.append(
                {
                    "key": d.key,
                    "unit_number": d.unit_number,
                    "label": d.label,
                    "base_name": d.base_name,
                    "controller_key": d.controller_key,
                    "disk_mode": d.disk_mode,
                    "thin": d.thin,
                    "change_id_prefix": d.change_id_prefix,
                    "disk": meta,
                }
            )
        snaps = []
        for s in vm.snapshots():
            snaps.append(
                {
                    "id": s.id,
                    "moref": s.moref,
                    "name": s.name,
                    "description": s.description,
                    "create_time": s.create_time,
                    "quiesced": s.quiesced,
                    "memory": s.memory,
                    "power_state": s.power_state,
                    "parent": None if s.parent is None else s.parent.id,
                    "layers": {
                        str(k): indexes.get(k, {}).get(layer) for k, layer in s.layers.items()
                    },
                    "epochs": {str(k): e for k, e in s.epochs.items()},
                }
            )
        tools = None
        if vm.tools is not None:
            t = vm.tools
            tools = {
                "state": t.state,
                "version": t.version,
                "providers": list(t.providers),
                "config": dict(t.config),
                "install_path": t.install_path,
                "scripts_dir": t.scripts_dir,
                "switches": dataclasses.asdict(t.switches),
            }
        guest = None
        if vm.guest is not None:
            guest = {
                "volumes": [
                    {
                        "disk_index": v.disk_index,
                        "partition": None
                        if v.partition is None
                        else dataclasses.asdict(v.partition),
                        "letter": v.letter,
                        "mount_point": v.mount_point,
                        "label": v.label,
                    }
                    for v in vm.guest.volumes
                ]
            }
        doc = {
            "format": FORMAT,
            "vm": {
                "name": vm.name,
                "moref": vm.moref,
                "uuid": vm.uuid,
                "instance_uuid": vm.instance_uuid,
                "os_family": vm.os_family,
                "datastore": vm.datastore,
                "directory": vm.directory,
                "memory_mb": vm.memory_mb,
                "num_cpus": vm.num_cpus,
                "hw_version": vm.hw_version,
                "power_state": vm.power_state,
                "hostname": vm.hostname,
                "ip_address": vm.ip_address,
                "change_tracking": vm.change_tracking,
                "change_tracking_pending": vm.change_tracking_pending,
                "consolidation_needed": vm.consolidation_needed,
                "next_delta": vm.next_delta,
                "next_snapshot_uid": vm.next_snapshot_uid,
                "extra_config": dict(vm.extra_config),
            },
            "tools": tools,
            "disks": disks,
            "snapshots": snaps,
            "current_snapshot": None if vm.current_snapshot is None else vm.current_snapshot.id,
            "guest": guest,
        }
        return json.dumps(doc, indent=1, sort_keys=True).encode()

    # -- loading -------------------------------------------------------------------------------

    def load(self) -> RecoveryReport:
        """Load every VM of the directory into the (empty) host; see the module docstring."""
        host = self.host
        self.lock()
        report = RecoveryReport(str(self.root))
        host_path = self.root / HOST_FILE
        states = sorted(self.root.glob(f"*/*/*{STATE_SUFFIX}"))
        if not host_path.exists() and not states:
            report.created = True
            self.root.mkdir(parents=True, exist_ok=True)
            self.save_host()
            return report
        if host_path.exists():
            doc = json.loads(host_path.read_text())
            host.clock.advance_to(max(host.clock.now, float(doc["clock"])))
            host.reserve_morefs(
                next_vm=int(doc["next_moref"]), next_snapshot=int(doc["next_snapshot_moref"])
            )
            version, internal, gauss = doc["random"]
            host.random.setstate((version, tuple(internal), gauss))
            if doc.get("demo") and host.populate is None:
                from ._demo import populate_demo

                host.populate = populate_demo
        self._removed = report.removed_files
        try:
            self._load_all(states, report)
        finally:
            self._removed = None
        self.save_host()
        return report

    def _load_all(self, states: list[Path], report: RecoveryReport) -> None:
        host = self.host
        with_state = {p.parent for p in states}
        for directory in self.root.glob("*/*"):
            if directory.is_dir() and directory not in with_state:
                self._sweep(directory, set())
        docs = []
        for path in states:
            try:
                docs.append((path, json.loads(path.read_text())))
            except (OSError, ValueError) as exc:
                report.errors.append(f"{path.relative_to(self.root)}: {exc}")
        docs.sort(key=lambda pd: _moref_number(pd[1]["vm"]["moref"]))
        for path, doc in docs:
            try:
                self._load_vm(path, doc, report)
            except Exception as exc:  # a broken VM must not keep the host from starting
                report.errors.append(f"{path.relative_to(self.root)}: {type(exc).__name__}: {exc}")
        for vm in host.vms.values():
            host.reserve_morefs(next_vm=_moref_number(vm.moref) + 1)
            for s in vm.snapshots():
                host.reserve_morefs(next_snapshot=_moref_number(s.moref) + 1)

    def _load_vm(self, path: Path, doc: dict[str, Any], report: RecoveryReport) -> None:
        from .tools import MemoryGuestFiles, VMwareTools
        from .tools._quiesce import ToolsSwitches

        host = self.host
        if doc.get("format") != FORMAT:
            msg = f"state format {doc.get('format')!r} (this version reads {FORMAT})"
            raise ValueError(msg)
        v = doc["vm"]
        if v["moref"] in host.vms or any(x.name == v["name"] for x in host.vms.values()):
            msg = f"VM {v['name']!r} ({v['moref']}) is already on the host"
            raise ValueError(msg)
        vm = VM(**v)
        directory = path.parent
        layer_lists: dict[int, list[Layer]] = {}
        for dd in doc["disks"]:
            disk, layers = PersistentLayeredDisk.from_meta(
                directory, dd["disk"], sync=self.sync_writes
            )
            disk.commit = partial(self.save_vm, vm)
            report.repairs.extend(f"{vm.name}/{msg}" for msg in disk.load_report)
            fields = {k: dd[k] for k in dd if k != "disk"}
            vm.disks.append(VirtualDiskDevice(disk=disk, **fields))
            layer_lists[int(dd["key"])] = layers
        by_id: dict[int, Snapshot] = {}
        for sd in doc["snapshots"]:
            layers_of: dict[int, Layer] = {}
            for key_s, idx in sd["layers"].items():
                key = int(key_s)
                if idx is None:  # a snapshot whose redo log was already merged away
                    d = vm.disk(key)
                    assert d is not None
                    layers_of[key] = Layer.gone()
                else:
                    layers_of[key] = layer_lists[key][int(idx)]
            parent = None if sd["parent"] is None else by_id[int(sd["parent"])]
            snap = Snapshot(
                id=int(sd["id"]),
                moref=sd["moref"],
                name=sd["name"],
                description=sd["description"],
                create_time=float(sd["create_time"]),
                quiesced=bool(sd["quiesced"]),
                memory=bool(sd["memory"]),
                power_state=sd["power_state"],
                layers=layers_of,
                epochs={int(k): int(e) for k, e in sd["epochs"].items()},
                parent=parent,
            )
            by_id[snap.id] = snap
            (vm.root_snapshots if parent is None else parent.children).append(snap)
        cur = doc.get("current_snapshot")
        vm.current_snapshot = None if cur is None else by_id[int(cur)]
        t = doc.get("tools")
        if t is not None:
            sw: dict[str, Any] = {
                k: tuple(x) if isinstance(x, list) else x for k, x in t["switches"].items()
            }
            vm.tools = VMwareTools(
                MemoryGuestFiles(vm.os_family),
                state=t["state"],
                version=t["version"],
                providers=tuple(t["providers"]),
                config=t["config"],
                install_path=t["install_path"],
                scripts_dir=t["scripts_dir"],
                switches=ToolsSwitches(**sw),
            )
        host.vms[vm.moref] = vm
        host.faults.aliases[vm.moref] = vm.name  # as add_vm does: rules name VMs either way
        try:
            self._load_guest(vm, doc.get("guest"), report)
            self._release_unheld(vm, report)
            host.refresh_consolidation(vm)
            self.save_vm(vm)
        except BaseException:
            del host.vms[vm.moref]
            for d in vm.disks:
                if isinstance(d.disk, PersistentLayeredDisk):
                    d.disk.close()
            raise
        report.vms.append(vm.name)
        report.snapshots[vm.name] = [s.name for s in vm.snapshots()]

    def _load_guest(self, vm: VM, guest: dict[str, Any] | None, report: RecoveryReport) -> None:
        if guest is None:
            return
        from .guest import GuestFileSystem, Partition, PartitionDevice, Volume

        host = self.host
        volumes = []
        for vd in guest["volumes"]:
            if vd["disk_index"] is None or vd["partition"] is None:
                report.repairs.append(
                    f"{vm.name}: volume {vd['label']!r} has no disk position; dropped"
                )
                continue
            part = Partition(**vd["partition"])
            dev = PartitionDevice.of(
                host.guest_device(vm, vm.disks[int(vd["disk_index"])].key), part
            )
            volumes.append(
                Volume(
                    dev,
                    vd["letter"],
                    vd["mount_point"],
                    vd["label"],
                    disk_index=int(vd["disk_index"]),
                    partition=part,
                )
            )
        fs = GuestFileSystem(vm.os_family, volumes, trace=host.trace, vm=vm.moref, clock=host.clock)
        vm.guest = fs
        if vm.tools is not None:
            vm.tools.guest = fs

    def _release_unheld(self, vm: VM, report: RecoveryReport) -> None:
        """Release frozen layers that no snapshot holds (an interrupted removal) and merge."""
        held = {id(layer) for s in vm.snapshots() for layer in s.layers.values()}
        for d in vm.disks:
            disk = d.disk
            assert isinstance(disk, PersistentLayeredDisk)
            for layer in disk.layers():
                if (
                    layer.frozen
                    and not layer.released
                    and layer is not disk.top
                    and id(layer) not in held
                ):
                    report.released.append(f"{vm.name}/{layer.label.rsplit('/', 1)[-1]}")
                    disk.release(layer)
            stats = disk.settle()
            for merged, into in stats.merges:
                report.repairs.append(f"{vm.name}: merged {merged} into {into or '(discarded)'}")


def attach_store(
    host: Host, directory: str | os.PathLike[str], *, sync_writes: bool = False
) -> RecoveryReport:
    """Keep ``host``'s VMs in ``directory``, loading (and recovering) what is there.

    ``Host(..., datastore_dir=...)`` calls this; the report is ``host.recovery_report`` and a
    trace ``note``.
    """
    store = DatastoreStore(host, directory, sync_writes=sync_writes)
    report = store.load()
    host.store = store
    host.recovery_report = report
    host.trace.emit("host", "note", text=report.summary())
    for name, snaps in report.snapshots.items():
        if snaps:
            vm = host.find_vm(name)
            host.trace.emit(
                "host",
                "note",
                vm=vm.moref,
                text=f"recovered snapshots of {name}: {', '.join(snaps)}",
            )
    return report


def open_host(
    directory: str | os.PathLike[str],
    profile: str | HostProfile | None = None,
    *,
    seed: int = 0,
    demo: bool = True,
    sync_writes: bool = False,
    populate: Callable[[Host], None] | None = None,
    **kwargs: Any,
) -> Host:
    """What ``vcbsim serve --datastore DIR`` runs: open ``DIR``, or create it with the demo.

    A new (or empty) directory gets ``populate(host)`` (an inventory file's VMs), or else the
    demo inventory when ``demo`` is true; an existing one is loaded as it is (its VMs, leftover
    snapshots and all), with the profile it was made with unless ``profile`` is given.
    ``sync_writes`` makes every disk write ``fsync`` (power-loss safety; kills are survived
    without it).
    """
    from ._host import Host
    from ._profiles import DEFAULT_PROFILE

    if profile is None:  # the profile the directory was made with, else the default
        with contextlib.suppress(OSError, ValueError, KeyError):
            profile = str(json.loads((Path(directory) / HOST_FILE).read_text())["profile"])
    host = Host(profile or DEFAULT_PROFILE, seed=seed, datastore_dir=directory, **kwargs)
    store = host.store
    assert store is not None
    if sync_writes:
        store.sync_writes = True
        for vm in host.vms.values():
            for d in vm.disks:
                if isinstance(d.disk, PersistentLayeredDisk):
                    d.disk.sync = True
    created = not host.vms and host.recovery_report is not None and host.recovery_report.created
    if populate is not None:  # an existing directory too: its reset() rebuilds this inventory
        host.populate = populate
    elif created and demo:
        from ._demo import populate_demo

        host.populate = populate_demo
    if created and host.populate is not None:
        host.populate(host)
        store.save_host()
    return host
