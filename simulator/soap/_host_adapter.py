"""``HostAdapter``: the simulated ``Host`` as a ``HostBackend`` for the SOAP endpoint.

A thin translation: morefs in, the host's own operations called (they validate, inject
faults, trace, and raise the real faults), plain records out. Nothing is cached: every
record is built from the host's state when the endpoint asks.

Guest operations: the VM must be powered on with VMware Tools running, and the credentials
must be one of ``guest_credentials`` (default ``Administrator``/``vmware`` and
``root``/``vmware``). Files are the guest's own file system on its virtual disks, so a script
a product installs this way is the script VMware Tools runs when quiescing. Programs are not
executed: a program that is a guest file is read by the Tools script interpreter
(``simulator/tools/_script.py``: ``exit N``, ``sleep S``, ``echo text >> file``), also when it
is started through ``cmd.exe /c`` or ``/bin/sh``; it ends at once (its ``sleep``s pass on the
virtual clock) and ``ListProcessesInGuest`` reports its exit code.

Files: ``.vmx``, ``.vmsd`` and disk descriptors are the host's own text
(``Host.datastore_files``); a base disk's ``-flat.vmdk`` extent is the base layer's bytes, read
in chunks; a redo log's ``-delta.vmdk`` / ``-sesparse.vmdk`` extent is the layer's grains as a
COWD / SEsparse extent (``disk.CowdExtent``, ``disk.SeSparseExtent``, rendered lazily). Files a client uploads with ``PUT /folder`` (scripts, notes) are kept by the
adapter; a VM's generated files cannot be overwritten.
"""

from __future__ import annotations

import hmac
import itertools
import shlex
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from .._errors import InvalidInputError, NotFoundError, StateError
from .._faults import make_fault
from .._host import Host
from .._vm import VM, Snapshot, VirtualDiskDevice
from ..disk import CowdExtent, SeSparseExtent, cowd_extent, sesparse_extent
from ._backend import (
    ChangedAreas,
    DatastoreInfo,
    DiskInfo,
    DiskLayer,
    GuestFile,
    GuestProcess,
    HostAbout,
    NicInfo,
    SnapshotInfo,
    VMFile,
    VMInfo,
)

__all__ = ["DEFAULT_GUEST_CREDENTIALS", "HostAdapter", "tools_version_number"]

#: Guest accounts the simulated guests accept (user -> password).
DEFAULT_GUEST_CREDENTIALS: dict[str, str] = {"Administrator": "vmware", "root": "vmware"}
#: Interpreters whose script argument is what runs (``cmd.exe /c x.bat``, ``/bin/sh x.sh``).
_SHELLS = {"cmd.exe", "cmd", "sh", "bash", "powershell.exe", "powershell"}


def tools_version_number(version: str) -> str:
    """VMware Tools ``3.5.0-110268`` as the number vSphere reports (major*1024+minor*32+patch)."""
    head = version.split("-", 1)[0].split(".")
    try:
        major, minor, patch = (int(x) for x in (head + ["0", "0"])[:3])
    except ValueError:
        return "0"
    return str(major * 1024 + minor * 32 + patch)


def _mac(vm_uuid: str) -> str:
    """A VMware-range MAC (``00:50:56:xx:xx:xx``) derived from the VM's uuid."""
    tail = vm_uuid.replace("-", "")[-6:].rjust(6, "0")
    return "00:50:56:" + ":".join(tail[i : i + 2] for i in range(0, 6, 2))


def _slice(data: bytes, offset: int, length: int) -> bytes:
    return data[offset : offset + length]


def _read_view(view: Any, capacity: int, offset: int, length: int) -> bytes:
    return bytes(view.read(offset, max(0, min(length, capacity - offset))))


def _delta_extents(
    vm: VM, d: VirtualDiskDevice, prefix: str, suffix: str = "-delta.vmdk"
) -> dict[str, tuple[int, Callable[[int, int], bytes]]]:
    """``<stem>-delta.vmdk`` (a COWD extent) or ``<stem>-sesparse.vmdk`` (SEsparse), rendered
    lazily, of every redo layer of a disk on the current chain or held by a snapshot."""
    layers = {layer.id: layer for layer in d.disk.chain()}
    for snap in vm.snapshots():
        held = snap.layers.get(d.key)
        if held is not None and held.alive:
            layers.update((layer.id, layer) for layer in d.disk.chain(held))
    out: dict[str, tuple[int, Callable[[int, int], bytes]]] = {}
    for layer in layers.values():
        if layer.parent is None or not layer.label.startswith(prefix) or not layer.label.endswith(".vmdk"):
            continue
        parent = layer.parent.label.rsplit("/", 1)[-1]
        extent: CowdExtent | SeSparseExtent
        if suffix == "-sesparse.vmdk":
            extent = sesparse_extent(layer, d.capacity, grain_size=d.disk.grain_size)
        else:
            extent = cowd_extent(layer, d.capacity, grain_size=d.disk.grain_size, parent=parent)
        out[layer.label[len(prefix) : -len(".vmdk")] + suffix] = (extent.size, extent.read)
    return out


class HostAdapter:
    """Serve a ``Host`` over SOAP: ``serve(HostAdapter(Host.demo()))``."""

    def __init__(self, host: Host, *, guest_credentials: Mapping[str, str] | None = None) -> None:
        self.host = host
        self.uploads: dict[tuple[str, str], bytes] = {}
        self.guest_credentials = dict(
            DEFAULT_GUEST_CREDENTIALS if guest_credentials is None else guest_credentials
        )
        self._processes: dict[str, dict[int, GuestProcess]] = {}
        self._pids = itertools.count(4096)

    # --- identity ----------------------------------------------------------------------------
    def about(self) -> HostAbout:
        p = self.host.profile
        esxi = "ESXi" in p.product
        return HostAbout(
            name=p.product,
            full_name=f"{p.product} {p.version} build-{p.build}",
            version=p.version,
            build=p.build,
            api_version=p.api_version,
            product_line="embeddedEsx" if esxi else "esx",
            os_type="vmnix-x86" if not esxi else "vmnix-x86",
            instance_uuid=str(uuid.uuid5(uuid.NAMESPACE_DNS, self.host.name)),
            host_name=self.host.name,
        )

    def now(self) -> float:
        return self.host.clock.now

    def datastores(self) -> list[DatastoreInfo]:
        return [
            DatastoreInfo(d.name, d.capacity, d.free, f"/vmfs/volumes/{d.name}", "VMFS")
            for d in self.host.datastores.values()
        ]

    # --- VMs -----------------------------------------------------------------------------------
    def _vm(self, moref: str) -> VM:
        vm = self.host.vms.get(moref)
        if vm is None:
            raise NotFoundError("VM", moref, known=list(self.host.vms))
        return vm

    def _layers(self, vm: VM, d: VirtualDiskDevice, top: Any = None) -> tuple[DiskLayer, ...]:
        chain = d.disk.chain(top) if top is not None else d.disk.chain()
        suffix = self.host.delta_extent_suffix(d)
        out = []
        for layer in chain:
            stem = layer.label[: -len(".vmdk")] if layer.label.endswith(".vmdk") else layer.label
            allocated = layer.grain_count * d.disk.grain_size
            if layer.parent is None:
                out.append(DiskLayer(layer.label, f"{stem}-flat.vmdk", d.capacity, "flat"))
            else:
                if suffix == "-sesparse.vmdk":
                    out.append(DiskLayer(layer.label, f"{stem}{suffix}", allocated, "seSparse"))
                else:
                    out.append(DiskLayer(layer.label, f"{stem}{suffix}", allocated, "vmfsSparse"))
        return tuple(out)

    def _disk(self, vm: VM, d: VirtualDiskDevice, snap: Snapshot | None = None) -> DiskInfo:
        top = None
        if snap is not None:
            layer = snap.layers.get(d.key)
            top = layer if layer is not None and layer.alive else None
        change_id = self.host.change_id(vm, d.key, snap) if vm.change_tracking else None
        return DiskInfo(
            key=d.key,
            label=d.label,
            capacity=d.capacity,
            chain=self._layers(vm, d, top),
            controller_key=d.controller_key,
            unit_number=d.unit_number,
            thin=d.thin,
            disk_mode=d.disk_mode,
            change_id=change_id,
            uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{vm.uuid}/{d.key}")),
        )

    def _snapshot(self, vm: VM, s: Snapshot) -> SnapshotInfo:
        return SnapshotInfo(
            moref=s.moref,
            id=s.id,
            name=s.name,
            description=s.description,
            create_time=s.create_time,
            state=s.state,
            quiesced=s.quiesced,
            children=tuple(self._snapshot(vm, c) for c in s.children),
            disks=tuple(self._disk(vm, d, s) for d in vm.disks),
        )

    def _info(self, vm: VM) -> VMInfo:
        tools = vm.tools
        installed = tools is not None and tools.state != "not-installed"
        running = vm.power_state == "poweredOn" and tools is not None and tools.state == "running"
        p = self.host.profile
        return VMInfo(
            moref=vm.moref,
            name=vm.name,
            uuid=vm.uuid,
            instance_uuid=vm.instance_uuid,
            guest_id=vm.guest_id,
            guest_full_name=vm.guest_full_name,
            os_family=vm.os_family,
            power_state=vm.power_state,
            vmx_path=vm.vmx_path,
            datastores=(vm.datastore,),
            disks=tuple(self._disk(vm, d) for d in vm.disks),
            snapshots=tuple(self._snapshot(vm, s) for s in vm.root_snapshots),
            current_snapshot=vm.current_snapshot.moref if vm.current_snapshot else None,
            memory_mb=vm.memory_mb,
            num_cpu=vm.num_cpus,
            tools_running=running,
            tools_version=tools_version_number(tools.version) if installed and tools is not None else "",
            ip_address=vm.ip_address,
            host_name=vm.hostname or None,
            # the configured value; disks show change ids once it is active (next stun)
            change_tracking=(
                vm.change_tracking_pending if vm.change_tracking_pending is not None else vm.change_tracking
            ),
            consolidation_needed=vm.consolidation_needed,
            quiesced_snapshots_supported=p.quiesced_snapshots,
            change_tracking_supported=p.change_tracking,
            files=(VMFile(vm.vmsd_path, "snapshotList", len(vm.vmsd_text().encode())),),
            # the .vmx's ethernet0: a vlance adapter on "VM Network"
            nics=(NicInfo(network=vm.extra_config.get("ethernet0.networkName", "VM Network"),
                          mac_address=_mac(vm.uuid)),),
            connection_state=vm.connection_state,
        )

    def vms(self) -> list[VMInfo]:
        return [self._info(vm) for vm in self.host.vms.values()]

    def vm(self, moref: str) -> VMInfo:
        return self._info(self._vm(moref))

    def has_vm(self, moref: str) -> bool:
        """Whether VM ``moref`` exists (without building its whole record, as ``vm`` does)."""
        return moref in self.host.vms

    def vm_name(self, moref: str) -> str:
        """VM ``moref``'s name (without building its whole record)."""
        return self._vm(moref).name

    def snapshot_owner(self, snapshot: str, hint: str | None = None) -> str | None:
        """The VM holding snapshot ``snapshot`` (VM ``hint`` is looked at first), or ``None``."""
        vms = self.host.vms
        order = [vms[hint]] if hint in vms else []
        for vm in [*order, *vms.values()]:
            if any(s.moref == snapshot for s in vm.snapshots()):
                return vm.moref
        return None

    # --- operations ------------------------------------------------------------------------------
    def power_on(self, vm: str) -> None:
        self.host.power_on(self._vm(vm))

    def power_off(self, vm: str) -> None:
        self.host.power_off(self._vm(vm))

    def create_snapshot(self, vm: str, name: str, description: str, memory: bool, quiesce: bool) -> str:
        return self.host.create_snapshot(self._vm(vm), name, description, memory, quiesce).moref

    def remove_snapshot(self, vm: str, snapshot: str, *, remove_children: bool, consolidate: bool) -> None:
        self.host.remove_snapshot(self._vm(vm), snapshot, remove_children=remove_children, consolidate=consolidate)

    def remove_all_snapshots(self, vm: str, *, consolidate: bool) -> None:
        self.host.remove_all_snapshots(self._vm(vm), consolidate=consolidate)

    def revert_to_snapshot(self, vm: str, snapshot: str, *, suppress_power_on: bool) -> None:
        self.host.revert_to_snapshot(self._vm(vm), snapshot)

    def consolidate_disks(self, vm: str) -> None:
        self.host.consolidate_disks(self._vm(vm))

    def reconfigure(self, vm: str, *, change_tracking: bool | None = None) -> None:
        self.host.reconfigure(self._vm(vm), change_tracking=change_tracking)

    def query_changed_disk_areas(
        self, vm: str, snapshot: str | None, disk_key: int, start_offset: int, change_id: str
    ) -> ChangedAreas:
        info = self.host.query_changed_disk_areas(self._vm(vm), snapshot, disk_key, start_offset, change_id)
        return ChangedAreas(info.start_offset, info.length, info.changed_area)

    # --- datastore files ----------------------------------------------------------------------------
    def _vm_files(self, datastore: str) -> dict[str, tuple[int, Callable[[int, int], bytes]]]:
        """``path -> (size, read(offset, length))`` for every generated file on ``datastore``."""
        files: dict[str, tuple[int, Callable[[int, int], bytes]]] = {}
        prefix = f"[{datastore}] "
        for vm in self.host.vms.values():
            if vm.datastore != datastore:
                continue
            for name, reader in self.host.datastore_files(vm).items():
                if name.startswith(prefix):
                    data = reader()
                    files[name[len(prefix) :]] = (len(data), partial(_slice, data))
            for d in vm.disks:
                base = d.disk.chain()[-1]
                stem = base.label[: -len(".vmdk")]
                if stem.startswith(prefix):
                    files[stem[len(prefix) :] + "-flat.vmdk"] = (
                        d.capacity,
                        partial(_read_view, d.disk.view(base), d.capacity),
                    )
                files.update(_delta_extents(vm, d, prefix, self.host.delta_extent_suffix(d)))
        return files

    def _check_datastore(self, datastore: str) -> None:
        if datastore not in self.host.datastores:
            raise NotFoundError("datastore", datastore, known=list(self.host.datastores))

    def datastore_file_list(self, datastore: str) -> list[tuple[str, int]]:
        self._check_datastore(datastore)
        files = {path: size for path, (size, _read) in self._vm_files(datastore).items()}
        files.update({p: len(data) for (ds, p), data in self.uploads.items() if ds == datastore})
        if self.host.store is not None:  # the datastore's plain files (uploads survive restarts)
            files.update(self.host.store.plain_files(datastore))
        return sorted(files.items())

    def datastore_file_size(self, datastore: str, path: str) -> int:
        self._check_datastore(datastore)
        if (datastore, path) in self.uploads:
            return len(self.uploads[(datastore, path)])
        if self.host.store is not None and path in (plain := self.host.store.plain_files(datastore)):
            return plain[path]
        entry = self._vm_files(datastore).get(path)
        if entry is None:
            raise NotFoundError("file", f"[{datastore}] {path}")
        return entry[0]

    def read_datastore_file(self, datastore: str, path: str, offset: int, length: int) -> bytes:
        self._check_datastore(datastore)
        if (datastore, path) in self.uploads:
            return self.uploads[(datastore, path)][offset : offset + length]
        if self.host.store is not None and path in self.host.store.plain_files(datastore):
            return self.host.store.read_file(datastore, path, offset, length)
        entry = self._vm_files(datastore).get(path)
        if entry is None:
            raise NotFoundError("file", f"[{datastore}] {path}")
        size, read = entry
        if offset >= size:
            return b""
        return read(offset, min(length, size - offset))

    def write_datastore_file(self, datastore: str, path: str, data: bytes) -> None:
        self._check_datastore(datastore)
        if path in self._vm_files(datastore):
            raise InvalidInputError(
                "datastore file",
                expected="a path that is not a VM's generated file",
                got=f"[{datastore}] {path}",
                hint="the .vmx, .vmsd, descriptors and extents follow the VM's state",
            )
        if self.host.store is not None:
            self.host.store.put_file(datastore, path, [bytes(data)], len(data))
            return
        self.uploads[(datastore, path)] = bytes(data)

    def write_datastore_file_stream(
        self, datastore: str, path: str, chunks: Iterable[bytes], length: int | None
    ) -> int | None:
        """A ``PUT /folder`` body written as it arrives (``None``: not streamed, no store)."""
        self._check_datastore(datastore)
        if self.host.store is None:
            return None
        if path in self._vm_files(datastore):
            self.write_datastore_file(datastore, path, b"")  # raises the refusal
        return self.host.store.put_file(datastore, path, chunks, length)

    # --- guest operations -------------------------------------------------------------------------
    def _guest(self, moref: str, user: str, password: str) -> tuple[VM, Any]:
        vm = self._vm(moref)
        if vm.power_state != "poweredOn":
            raise make_fault(
                "InvalidPowerState", state=vm.power_state, requestedState="poweredOn", existingState=vm.power_state
            )
        if vm.tools is None or vm.tools.state != "running":
            raise make_fault(
                "GuestOperationsUnavailable", "The guest operations agent could not be contacted."
            )
        expected = self.guest_credentials.get(user)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            raise make_fault(
                "InvalidGuestLogin",
                "Failed to authenticate with the guest operating system using the supplied credentials.",
            )
        try:
            fs = self.host.guest_fs(vm)
        except StateError as exc:
            raise make_fault("GuestOperationsUnavailable", str(exc)) from None
        return vm, fs

    @staticmethod
    def _parent(fs: Any, path: str) -> str:
        norm = fs.normpath(path)
        sep = "\\" if fs.os_family == "windows" else "/"
        head = norm.rstrip(sep).rsplit(sep, 1)[0]
        if fs.os_family == "windows" and len(head) == 2 and head.endswith(":"):
            return head + sep
        return head or sep

    def _entry(self, fs: Any, path: str, name: str) -> GuestFile:
        st = fs.stat(path)
        return GuestFile(name, "directory" if st.is_dir else "file", 0 if st.is_dir else st.size, st.mtime)

    def guest_list_files(self, vm: str, user: str, password: str, path: str) -> list[GuestFile]:
        _, fs = self._guest(vm, user, password)
        if not fs.exists(path):
            raise make_fault("FileNotFound", "File {file} was not found", file=path)
        if not fs.is_dir(path):
            return [self._entry(fs, path, fs.realpath(path))]
        sep = "\\" if fs.os_family == "windows" else "/"
        base = fs.normpath(path).rstrip(sep) + sep
        return [self._entry(fs, base + name, name) for name in sorted(fs.listdir(path), key=str.casefold)]

    def guest_make_directory(self, vm: str, user: str, password: str, path: str, create_parents: bool) -> None:
        _, fs = self._guest(vm, user, password)
        if fs.exists(path):
            raise make_fault("FileAlreadyExists", "File {file} already exists", file=path)
        parent = self._parent(fs, path)
        if not create_parents and not fs.is_dir(parent):
            raise make_fault("FileNotFound", "File {file} was not found", file=parent)
        fs.mkdir(path, parents=create_parents, exist_ok=False)

    def guest_delete_file(self, vm: str, user: str, password: str, path: str) -> None:
        _, fs = self._guest(vm, user, password)
        if not fs.exists(path):
            raise make_fault("FileNotFound", "File {file} was not found", file=path)
        if fs.is_dir(path):
            raise make_fault("NotAFile", "{file} is not a file", file=path)
        fs.delete(path)

    def guest_delete_directory(self, vm: str, user: str, password: str, path: str, recursive: bool) -> None:
        _, fs = self._guest(vm, user, password)
        if not fs.exists(path):
            raise make_fault("FileNotFound", "File {file} was not found", file=path)
        if not fs.is_dir(path):
            raise make_fault("NotADirectory", "{file} is not a directory", file=path)
        if fs.listdir(path) and not recursive:
            raise make_fault("DirectoryNotEmpty", "Directory {file} is not empty", file=path)
        fs.delete(path, recursive=recursive)

    def guest_read_file(self, vm: str, user: str, password: str, path: str) -> bytes:
        _, fs = self._guest(vm, user, password)
        if not fs.exists(path):
            raise make_fault("FileNotFound", "File {file} was not found", file=path)
        if fs.is_dir(path):
            raise make_fault("NotAFile", "{file} is not a file", file=path)
        return bytes(fs.read_bytes(path))

    def guest_write_file(
        self, vm: str, user: str, password: str, path: str, data: bytes, overwrite: bool
    ) -> None:
        _, fs = self._guest(vm, user, password)
        if fs.exists(path):
            if fs.is_dir(path):
                raise make_fault("NotAFile", "{file} is not a file", file=path)
            if not overwrite:
                raise make_fault("FileAlreadyExists", "File {file} already exists", file=path)
        parent = self._parent(fs, path)
        if not fs.is_dir(parent):
            raise make_fault("FileNotFound", "File {file} was not found", file=parent)
        fs.write_bytes(path, data)

    def guest_start_program(
        self, vm: str, user: str, password: str, program: str, arguments: str, cwd: str | None
    ) -> int:
        from ..tools._script import run_script

        v, fs = self._guest(vm, user, password)
        windows = fs.os_family == "windows"
        try:
            args = shlex.split(arguments or "", posix=not windows)
        except ValueError as exc:
            raise make_fault("InvalidArgument", f"arguments: {exc}", invalidProperty="arguments") from None
        if windows:
            args = [a.strip('"') for a in args]
        name = program.replace("\\", "/").rsplit("/", 1)[-1]
        script_path, script_text = program, None
        if name.lower() in _SHELLS:
            if args and args[0].lower() in ("/c", "-c", "/k", "-command"):
                args = args[1:]
                candidate = args[0] if args else ""
                if candidate and fs.is_file(candidate):
                    script_path, args = candidate, args[1:]
                else:
                    script_path, script_text, args = program, " ".join(args), []
            elif args and fs.is_file(args[0]):
                script_path, args = args[0], args[1:]
            else:
                raise make_fault("FileNotFound", "File {file} was not found", file=args[0] if args else program)
        elif not fs.is_file(program):
            raise make_fault("FileNotFound", "File {file} was not found", file=program)
        text = script_text if script_text is not None else fs.read_bytes(script_path)
        start = self.host.clock.now
        outcome = run_script(text, args, fs)
        self.host.clock.advance(outcome.duration)
        pid = next(self._pids)
        table = self._processes.setdefault(v.moref, {})
        while len(table) >= 256:  # a guest remembers recently ended processes only
            del table[next(iter(table))]
        table[pid] = GuestProcess(
            pid=pid,
            name=name,
            owner=user,
            cmd_line=f'"{program}" {arguments}'.strip() if arguments else f'"{program}"',
            start_time=start,
            end_time=self.host.clock.now,
            exit_code=outcome.exit_code if outcome.exit_code is not None else 1,
        )
        return pid

    def guest_list_processes(
        self, vm: str, user: str, password: str, pids: Sequence[int]
    ) -> list[GuestProcess]:
        v, _ = self._guest(vm, user, password)
        table = self._processes.get(v.moref, {})
        if pids:
            return [table[p] for p in pids if p in table]
        return list(table.values())
