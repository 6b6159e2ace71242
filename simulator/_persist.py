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
interrupted removal) and merge them, delete the files a state retired (only this host's own),
and report it all in ``host.recovery_report`` (and trace notes). Damage no kill can
cause is only reported: the VM stays registered as inaccessible/invalid with its files as they
are; files no state accounts for are left in place and reported. docs/architecture.md
("Durability") is the whole model. Snapshots that were there (e.g. a ``_VCB-BACKUP_`` of a
killed backup) are there again and can be removed as usual.

Not kept: the trace, fault rules, and files of a guest that has no volumes (Tools' in-memory
guest); the Tools object is rebuilt from its settings.

One cohesive concern, although over 700 lines: the on-disk form of a host (layout, state
files, intents, recovery and quarantine) and its load/save; the disk byte formats and their
I/O seam are in ``disk/_persistent.py``.
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
from ._iofaults import io_fault
from ._names import check_name, check_vm_name
from ._vm import VM, Snapshot, VirtualDiskDevice
from .disk import CREATE_TYPES, Layer, _persistent, render_descriptor
from .disk._persistent import DamagedFileError, PersistentLayeredDisk, atomic_write

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._host import Host
    from ._profiles import HostProfile

__all__ = ["DatastoreStore", "RecoveryReport", "attach_store", "open_host", "STATE_SUFFIX"]

FORMAT = 1
HOST_FILE = "vcbsim-host.json"
LOCK_FILE = ".vcbsim.lock"
STATE_SUFFIX = ".vcbsim.json"
#: where damaged files of this host are moved (never deleted), one numbered folder per move
QUARANTINE = ".vcbsim-quarantine"
#: the state of a VM unregistered from this host, kept in its folder (not loaded at a start)
UNREGISTERED = ".vcbsim-unregistered.json"


@dataclass
class RecoveryReport:
    """What opening a datastore directory found and did (docs/architecture.md, durability)."""

    directory: str
    created: bool = False
    vms: list[str] = field(default_factory=list)
    #: VM name -> names of the snapshots it has (e.g. a leftover ``_VCB-BACKUP_``)
    snapshots: dict[str, list[str]] = field(default_factory=dict)
    #: finished merges, cut torn tails, redone WAL records, compactions, CBT resets
    repairs: list[str] = field(default_factory=list)
    #: frozen layers no snapshot held (an interrupted removal), released and merged
    released: list[str] = field(default_factory=list)
    #: files an interrupted operation of this host had retired (listed in its state), deleted
    removed_files: list[str] = field(default_factory=list)
    #: VMs that could not be loaded: ``{"vm", "file", "reason"}`` (nothing of theirs changed)
    errors: list[dict[str, str]] = field(default_factory=list)
    #: files and folders no state accounts for, left in place: ``{"file", "reason"}``
    unaccounted: list[dict[str, str]] = field(default_factory=list)
    #: damaged files of this host moved aside: ``{"file", "moved_to", "reason"}``
    quarantined: list[dict[str, str]] = field(default_factory=list)
    #: disks hot-added to a proxy VM before, attached again (no repair: a host keeps them)
    hot_added: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing needed repair (a clean shutdown, or a new directory)."""
        return not (
            self.repairs
            or self.released
            or self.removed_files
            or self.errors
            or self.unaccounted
            or self.quarantined
        )

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
            parts.append(f"{len(self.removed_files)} retired file(s) of interrupted operations deleted")
        if self.errors:
            parts.append(f"{len(self.errors)} VM(s) inaccessible")
        if self.unaccounted:
            parts.append(f"{len(self.unaccounted)} unaccounted item(s) left in place")
        if self.quarantined:
            parts.append(f"{len(self.quarantined)} file(s) quarantined")
        return text + ", recovered: " + ", ".join(parts)

    def problems(self) -> list[str]:
        """One line per problem, naming the file and the reason (the server's start report)."""
        lines = [
            f"{e.get('state', 'invalid')} VM {e['vm']}: {e['file']}: {e['reason']}" for e in self.errors
        ]
        lines += [f"left in place: {u['file']}: {u['reason']}" for u in self.unaccounted]
        lines += [
            f"quarantined: {q['file']} -> {q['moved_to']}: {q['reason']}" for q in self.quarantined
        ]
        lines += [f"repaired: {r}" for r in self.repairs]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _StateShapeError(ValueError):
    """A state file that is JSON but not of the shape this version writes."""


def _shape(doc: Any, path: str) -> None:
    """Check the parts of a VM state the loader indexes, so a wrong shape is one line."""
    if not isinstance(doc, dict):
        msg = f"expected a JSON object, got {type(doc).__name__}"
        raise _StateShapeError(msg)
    for key, kind in (("vm", dict), ("disks", list), ("snapshots", list)):
        if not isinstance(doc.get(key), kind):
            want = "object" if kind is dict else "array"
            msg = f"expected {key!r} to be a JSON {want}, got {type(doc.get(key)).__name__}"
            raise _StateShapeError(msg)
    for key in ("name", "moref", "datastore"):
        if not isinstance(doc["vm"].get(key), str):
            msg = f"expected vm.{key} to be a string"
            raise _StateShapeError(msg)
    try:
        check_vm_name(doc["vm"]["name"])
    except InvalidInputError as exc:
        raise _StateShapeError(str(exc)) from None


def _inventory_name(host: Host) -> str | None:
    """The name of the named demo inventory ``host.populate`` builds, if it is one."""
    from ._demo import INVENTORIES

    return next((name for name, fill in INVENTORIES.items() if fill is host.populate), None)


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
        #: VM moref -> names of the files in its folder this host wrote or loaded (only
        #: these are ever deleted, and only once no state refers to them)
        self._owned: dict[str, set[str]] = {}
        #: VM moref -> the state text last written (what a failed operation rolls back to)
        self._last_doc: dict[str, bytes] = {}
        self._lock_fd: int | None = None
        self.report: RecoveryReport | None = None
        #: VMs registered on this host that could not be loaded: moref -> state file
        self._inaccessible: dict[str, str] = {}
        self._pending_placeholders: list[
            tuple[str, str, str | None, dict[str, Any] | None, str]
        ] = []
        #: proxy VM moref -> the hot-added disks its loaded state lists, until reattached
        self._pending_hotadds: dict[str, list[dict[str, Any]]] = {}

    # -- paths -------------------------------------------------------------------------------

    def vm_dir(self, vm: VM) -> Path:
        check_vm_name(vm.name)
        return self.root / vm.datastore / vm.name

    def state_path(self, vm: VM) -> Path:
        return self.vm_dir(vm) / f"{vm.name}{STATE_SUFFIX}"

    def _rel_state(self, vm: VM) -> str:
        return f"{vm.datastore}/{vm.name}/{vm.name}{STATE_SUFFIX}"

    def quarantine(self, path: Path, reason: str) -> str:
        """Move a damaged file of this host out of the way (never deleted); returns where."""
        rel = path.relative_to(self.root)
        n = 1
        while (self.root / QUARANTINE / str(n) / rel).exists():
            n += 1
        dest = self.root / QUARANTINE / str(n) / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
        moved = dest.relative_to(self.root).as_posix()
        if self.report is not None:
            self.report.quarantined.append(
                {"file": rel.as_posix(), "moved_to": moved, "reason": reason}
            )
        return moved

    # -- hooks the host calls ----------------------------------------------------------------

    def new_disk(self, vm: VM, capacity: int) -> PersistentLayeredDisk:
        """A blank disk whose files live in the VM's directory."""
        profile = self.host.profile
        # the rule of Host.delta_extent_suffix (R50), for a disk not yet attached
        sesparse = profile.delta_format == "sesparse" or capacity >= profile.sesparse_threshold
        delta_suffix = "-sesparse.vmdk" if sesparse else "-delta.vmdk"
        directory = self.vm_dir(vm)
        if not vm.disks:
            if self._rel_state(vm) in self._inaccessible.values():
                msg = (
                    f"VM name {vm.name!r} belongs to a VM this host has registered but could "
                    "not load (see the start report); repair or move its folder first"
                )
                raise StateError(msg)
            if self.state_path(vm).exists():
                msg = (
                    f"folder {directory} holds a VM this host did not load (see the start "
                    "report); move that folder away or choose another name"
                )
                raise StateError(msg)
            if directory.is_dir() and any(directory.iterdir()):
                msg = (
                    f"folder {directory} already holds files this host does not know (a VM "
                    "copied in, or one whose creation was interrupted); move them away or "
                    "choose another name"
                )
                raise StateError(msg)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise io_fault(exc, datastore=vm.datastore, file=f"[{vm.datastore}] {vm.name}") from None
        disk = PersistentLayeredDisk(
            capacity,
            directory,
            delta_suffix=delta_suffix,
            sync=self.sync_writes,
            commit=partial(self.save_vm, vm),
        )
        disk.datastore = vm.datastore
        disk.path_prefix = f"[{vm.datastore}] {vm.name}/"
        return disk

    def save_vm(self, vm: VM) -> None:
        """Write the VM's state (see the module docstring for the order of steps).

        All or nothing: when writing fails before the state file is replaced (a full disk,
        an I/O error) the VM is put back in memory as its last state on disk says, the files
        this call created are removed, and the host's fault is raised (``NoDiskSpace``,
        ``FileTooLarge``, ``CannotAccessFile``, ``FileFault``). Once the state is replaced
        the operation is done; a failure after that (merge copies, deleting retired files)
        is finished later, by the next save or the next load.
        """
        host = self.host
        with host.lock:
            if (
                host.vms.get(vm.moref) is not vm
                or vm.moref in self._saving
                or vm.connection_state != "connected"
            ):
                return
            self._saving.add(vm.moref)
            try:
                self._save_vm(vm)
            finally:
                self._saving.discard(vm.moref)

    def _keep(self, vm: VM, disks: list[PersistentLayeredDisk]) -> set[str]:
        keep = {self.state_path(vm).name, f"{vm.name}.vmx", f"{vm.name}.vmsd"}
        for disk in disks:
            keep |= disk.files()
            keep |= {layer.label.rsplit("/", 1)[-1] for layer in disk.layers()}
        return keep

    def _save_vm(self, vm: VM) -> None:
        directory = self.vm_dir(vm)
        disks = [d.disk for d in vm.disks if isinstance(d.disk, PersistentLayeredDisk)]
        state = self.state_path(vm)
        owned = self._owned.setdefault(vm.moref, set())
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for disk in disks:
                disk.ensure_files()
                disk.flush_tracking()  # before the state that may rely on them
            keep = self._keep(vm, disks)
            listed = [bool(disk.pending_intents()) for disk in disks]
            doc = self._vm_doc(vm, sorted(owned - keep))
            atomic_write(state, doc)  # the commit point
        except Exception as exc:
            fault = exc
            if isinstance(exc, OSError):
                fault = io_fault(exc, datastore=vm.datastore, file=self._ds_path(vm, state.name))
            self._roll_back(vm)
            if fault is exc:
                raise
            raise fault from None
        self._last_doc[vm.moref] = doc
        for disk, has in zip(disks, listed, strict=True):
            disk.listed_intents = has
        owned |= keep
        try:
            self._retire(vm, directory, owned - keep)
            if any(disk.pending_intents() for disk in disks):
                for disk in disks:
                    disk.apply_intents()
                keep = self._keep(vm, disks)
                doc = self._vm_doc(vm, sorted(owned - keep))
                atomic_write(state, doc)
                self._last_doc[vm.moref] = doc
                for disk in disks:
                    disk.listed_intents = False
                self._retire(vm, directory, owned - keep)
            for disk in disks:
                disk.persisted_files = disk.files()
            self._put(directory / f"{vm.name}.vmx", vm.vmx_text().encode())
            self._put(directory / f"{vm.name}.vmsd", vm.vmsd_text().encode())
            for d in vm.disks:
                if isinstance(d.disk, PersistentLayeredDisk):
                    for name, text in self._descriptors(vm, d, d.disk).items():
                        self._put(directory / name, text.encode())
            for disk in disks:
                disk.close_unused()
            self.save_host()
        except Exception as exc:  # after the commit point: finished by the next save or load
            for disk in disks:
                disk.deferred = exc if isinstance(exc, OSError) else None
            text = f"{vm.name}: finishing the last operation failed, done later: {exc}"
            self.host.trace.emit("host", "note", vm=vm.moref, text=text)

    def _ds_path(self, vm: VM, name: str) -> str:
        return f"[{vm.datastore}] {vm.name}/{name}"

    def _retire(self, vm: VM, directory: Path, names: set[str]) -> None:
        """Delete files of this VM that its written state no longer refers to (ours only)."""
        owned = self._owned.setdefault(vm.moref, set())
        for name in sorted(names):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / name)
            self._written.pop(directory / name, None)
            owned.discard(name)

    def _roll_back(self, vm: VM) -> None:
        """Put ``vm`` back as its last written state says (a failed operation)."""
        host = self.host
        last = self._last_doc.get(vm.moref)
        for d in vm.disks:
            if isinstance(d.disk, PersistentLayeredDisk):
                d.disk.close()
        if last is None:  # never written: the VM's creation failed; forget it
            host.vms.pop(vm.moref, None)
            host.faults.aliases.pop(vm.moref, None)
            directory = self.vm_dir(vm)
            for name in sorted(self._created_by(vm)):
                with contextlib.suppress(OSError):
                    os.unlink(directory / name)
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when empty: nothing of anyone else's goes
            self._owned.pop(vm.moref, None)
            return
        doc = json.loads(last)
        try:
            fresh = self._build_vm(self.state_path(vm), doc, RecoveryReport(str(self.root)))
        except Exception as exc:
            # reloading needs I/O too (finishing listed merges, the base's WAL) and the disk
            # still fails: the VM is taken out of service, its files are its last committed
            # state, and the next start loads them
            vm.disks, vm.root_snapshots, vm.current_snapshot, vm.guest = [], [], None, None
            vm.connection_state = "invalid"
            text = (
                f"{vm.name}: a failed operation could not be rolled back in memory ({exc}); "
                "the VM is out of service until the host is started again (its files hold "
                "its last committed state)"
            )
            host.trace.emit("host", "note", vm=vm.moref, text=text)
            return
        for d in fresh.disks:
            assert isinstance(d.disk, PersistentLayeredDisk)
            d.disk.commit = partial(self.save_vm, vm)
        vm.__dict__.update(fresh.__dict__)
        self._load_guest(vm, doc.get("guest"), RecoveryReport(str(self.root)))
        host.refresh_consolidation(vm)

    @staticmethod
    def _created_by(vm: VM) -> set[str]:
        names: set[str] = set()
        for d in vm.disks:
            if isinstance(d.disk, PersistentLayeredDisk):
                names |= d.disk.files()
        return names

    def save_host(self) -> None:
        h = self.host
        doc = {
            "format": FORMAT,
            "name": h.name,
            "profile": h.profile.name,
            "seed": h.seed,
            "demo": h.is_demo,
            # which named demo inventory reset() rebuilds ("era": Host.demo(inventory="era"))
            "demo_inventory": _inventory_name(h),
            "clock": h.clock.now,
            "next_moref": h.moref_counters.next_vm,
            "next_snapshot_moref": h.moref_counters.next_snapshot,
            "random": h.random.getstate(),
            # every datastore and its capacity (a VM's disks and workingDir may be on any)
            "datastores": {name: ds.capacity for name, ds in h.datastores.items()},
            # every VM registered on this host and where its state lives: a VM whose state
            # file goes missing stays registered (inaccessible) instead of vanishing
            "inventory": {
                **self._inaccessible,
                **{
                    vm.moref: self._rel_state(vm)
                    for vm in h.vms.values()
                    if vm.moref in self._last_doc
                },
            },
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
        registered = {self._rel_state(vm) for vm in self.host.vms.values()}
        registered |= set(self._inaccessible.values())
        for rel in sorted(registered):  # this host's VMs only: unregistered folders stay
            shutil.rmtree((self.root / rel).parent, ignore_errors=True)
        self._inaccessible.clear()
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
                f"datastore directory {self.root} is in use by another vcbsim (a server or a "
                "proxy command on the same --datastore/--state); stop it, or use another "
                "directory"
            )
            raise StateError(msg) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- plain datastore files (``PUT /folder``) ---------------------------------------------

    #: largest file ``put_file`` accepts (``FileTooLarge`` above it); ``serve`` may lower it
    max_upload_bytes = 1024**3
    #: space ``put_file`` leaves free on the file system (the VMs' logs need room to grow)
    reserve_bytes = 64 * 1024**2

    def _file_path(self, datastore: str, path: str) -> Path:
        if datastore not in self.host.datastores:
            from ._errors import NotFoundError

            raise NotFoundError("datastore", datastore, known=list(self.host.datastores))
        parts = [p for p in path.split("/") if p]
        if not parts or any(p in (".", "..") or p.startswith(".vcbsim") for p in parts):
            raise InvalidInputError(
                "datastore path", expected="a relative path without '.', '..' or '.vcbsim*'",
                got=path,
            )
        for part in parts:
            check_name("datastore file name", part, max_chars=255)
            if "\\" in part:
                raise InvalidInputError(
                    "datastore file name", expected="a name without '\\'", got=part
                )
        return self.root.joinpath(datastore, *parts)

    def _vm_files_of(self, datastore: str) -> set[str]:
        """Datastore paths of every file a VM of this host owns (not plain files)."""
        out: set[str] = set()
        for vm in self.host.vms.values():
            if vm.datastore != datastore:
                continue
            for name in self._owned.get(vm.moref, set()) | {self.state_path(vm).name}:
                out.add(f"{vm.name}/{name}")
        return out

    def put_file(self, datastore: str, path: str, chunks: Any, length: int | None) -> int:
        """Write a plain datastore file from ``chunks`` (an iterable of bytes), streamed:
        refused before a byte is written when ``length`` exceeds :attr:`max_upload_bytes`
        (``FileTooLarge``) or the free space (``NoDiskSpace``); a file system that fills up
        meanwhile leaves no partial file (``NoDiskSpace``). Replaced atomically; returns the
        bytes written. A VM's own files cannot be replaced this way."""
        import shutil as _shutil

        from ._faults import make_fault

        target = self._file_path(datastore, path)
        rel = target.relative_to(self.root / datastore).as_posix()
        ds_path = f"[{datastore}] {rel}"
        if rel in self._vm_files_of(datastore) or target.name.endswith(STATE_SUFFIX):
            raise InvalidInputError(
                "datastore file", expected="a path that is not a VM's own file", got=ds_path,
                hint="the .vmx, .vmsd, descriptors and extents follow the VM's state",
            )
        if length is not None and length > self.max_upload_bytes:
            raise make_fault(
                "FileTooLarge", f"File '{ds_path}' ({length} bytes) is larger than the "
                f"{self.max_upload_bytes} bytes this datastore accepts for an upload.",
                datastore=datastore, file=ds_path, fileSize=length,
                maxFileSize=self.max_upload_bytes,
            )
        try:
            free = _shutil.disk_usage(self.root).free
        except OSError:
            free = None
        if length is not None and free is not None and length + self.reserve_bytes > free:
            raise io_fault(OSError(28, os.strerror(28)), datastore=datastore, file=ds_path)
        tmp = target.with_name(f".vcbsim-upload-{target.name}.tmp")
        written = 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                for chunk in chunks:
                    if written + len(chunk) > self.max_upload_bytes:
                        raise make_fault(
                            "FileTooLarge", f"File '{ds_path}' is larger than the "
                            f"{self.max_upload_bytes} bytes this datastore accepts.",
                            datastore=datastore, file=ds_path, maxFileSize=self.max_upload_bytes,
                        )
                    _persistent._write_all(fd, chunk)
                    written += len(chunk)
                _persistent.io.fsync(fd)
            finally:
                os.close(fd)
            _persistent.io.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise io_fault(exc, datastore=datastore, file=ds_path) from None
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return written

    def plain_files(self, datastore: str) -> dict[str, int]:
        """``path -> size`` of the plain files of ``datastore`` (uploads, a user's files):
        everything there but the VMs' own files and vcbsim's bookkeeping."""
        base = self.root / datastore
        own = self._vm_files_of(datastore)
        out: dict[str, int] = {}
        if not base.is_dir():
            return out
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".vcbsim")]
            for name in filenames:
                if name.startswith(".vcbsim") or name.endswith((STATE_SUFFIX, ".tmp")):
                    continue
                full = Path(dirpath) / name
                rel = full.relative_to(base).as_posix()
                if rel in own:
                    continue
                with contextlib.suppress(OSError):
                    out[rel] = full.stat().st_size
        return out

    # -- VM life cycle (simulator/_vmlifecycle.py) ---------------------------------------------

    def plain_path(self, datastore: str, path: str) -> Path:
        """Where plain file ``path`` of ``datastore`` lives (checked as ``put_file`` checks)."""
        return self._file_path(datastore, path)

    def forget_vm(self, vm: VM) -> None:
        """A VM whose creation failed before its state was written: its files go, the host
        forgets it (nothing of anyone else's is touched)."""
        if vm.moref in self._last_doc:
            return
        for d in vm.disks:
            if isinstance(d.disk, PersistentLayeredDisk):
                d.disk.close()
        directory = self.vm_dir(vm)
        for name in sorted(self._created_by(vm)):
            with contextlib.suppress(OSError):
                os.unlink(directory / name)
        with contextlib.suppress(OSError):
            directory.rmdir()
        self._owned.pop(vm.moref, None)

    def _unregistered_path(self, datastore: str, folder: str) -> Path:
        return self.root / datastore / folder / UNREGISTERED

    def unregister_vm(self, vm: VM) -> None:
        """``UnregisterVM``: the VM's files stay; its state is set aside (not loaded at the
        next start) until ``reregister`` brings it back."""
        for d in vm.disks:
            if isinstance(d.disk, PersistentLayeredDisk):
                d.disk.close()
        state = self.state_path(vm)
        with contextlib.suppress(FileNotFoundError):
            os.replace(state, state.with_name(UNREGISTERED))
        self._last_doc.pop(vm.moref, None)
        self._owned.pop(vm.moref, None)
        self.save_host()

    def reregister(self, datastore: str, folder: str) -> VM | None:
        """``RegisterVM_Task`` of a VM this host unregistered: loaded from its kept state."""
        aside = self._unregistered_path(datastore, folder)
        if not aside.is_file():
            return None
        raw = aside.read_bytes()
        doc = json.loads(raw)
        _shape(doc, aside.relative_to(self.root).as_posix())
        state = aside.with_name(f"{doc['vm']['name']}{STATE_SUFFIX}")
        os.replace(aside, state)
        try:
            self._load_vm(state, doc, raw, RecoveryReport(str(self.root)))
        except BaseException:
            os.replace(state, aside)
            raise
        self.save_host()
        return self.host.vms[doc["vm"]["moref"]]

    def destroy_vm(self, vm: VM) -> None:
        """``Destroy_Task``: the VM's own files are deleted (plain files in its folder stay)."""
        for d in vm.disks:
            if isinstance(d.disk, PersistentLayeredDisk):
                d.disk.close()
        directory = self.vm_dir(vm)
        names = self._owned.pop(vm.moref, set()) | self._created_by(vm)
        names |= {self.state_path(vm).name, f"{vm.name}.vmx", f"{vm.name}.vmsd"}
        for name in sorted(names):
            with contextlib.suppress(OSError):
                os.unlink(directory / name)
            self._written.pop(directory / name, None)
        with contextlib.suppress(OSError):
            directory.rmdir()
        self._last_doc.pop(vm.moref, None)
        self.save_host()

    def read_file(self, datastore: str, path: str, offset: int, length: int) -> bytes:
        target = self._file_path(datastore, path)
        with open(target, "rb") as f:
            f.seek(offset)
            return f.read(length)

    # -- files ---------------------------------------------------------------------------------

    def _put(self, path: Path, data: bytes) -> None:
        """Replace a derived text file when it changed (atomic rename; no fsync needed)."""
        if self._written.get(path) == data:
            return
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_bytes(data)
            _persistent.io.replace(tmp, path)
        except Exception:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._written[path] = data

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
            if parent is None and d.rdm is not None:
                # an RDM's mapping file: its createType says physical or virtual (what a
                # datastore-level reader greps for); the extent is the file the LUN is kept in
                from ._rdm import RDM_CREATE_TYPES, rdm_descriptor

                text = rdm_descriptor(name, disk.capacity, d.rdm, hw_version=vm.hw_version)
                suffix = RDM_CREATE_TYPES[d.rdm][1]
            expected = f'"{name[: -len(".vmdk")]}{suffix}"'
            out[name] = text.replace(expected, f'"{disk.extent_name(layer)}"', 1)
        return out

    # -- documents -----------------------------------------------------------------------------

    def _hotadded(self, vm: VM) -> list[dict[str, Any]]:
        from ._hotadd import attached_doc

        return attached_doc(self.host, vm) or list(self._pending_hotadds.get(vm.moref, []))

    def reattach_hotadds(self, report: RecoveryReport) -> None:
        """After every VM is loaded: the disks the proxies' states list are attached again
        (``_hotadd.reattach``); each is in ``report.hot_added``, one that cannot be is dropped
        from the proxy's state and reported as a repair."""
        from ._hotadd import reattach

        pending, self._pending_hotadds = self._pending_hotadds, {}
        for moref, entries in pending.items():
            proxy = self.host.vms.get(moref)
            if proxy is None:
                continue
            done, dropped = reattach(self.host, proxy, entries)
            report.hot_added.extend(done)
            report.repairs.extend(dropped)
            self.save_vm(proxy)

    def _vm_doc(self, vm: VM, retired: list[str] | None = None) -> bytes:
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
                    # the era fields (issue 17): controller (VSS rules), raw device mapping
                    "controller": d.controller,
                    "rdm": d.rdm,
                    "lun_uuid": d.lun_uuid,
                    "device_name": d.device_name,
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
                    "vmsn_bytes": s.vmsn_bytes,
                    "quiesce_type": s.quiesce_type,
                    "backup_manifest": s.backup_manifest,
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
                # the era fields (issue 17): where redo logs go, the VSS inputs
                "working_dir": vm.working_dir,
                "dynamic_disks": vm.dynamic_disks,
                "guest_os": vm.guest_os,
            },
            "tools": tools,
            "disks": disks,
            "snapshots": snaps,
            "current_snapshot": None if vm.current_snapshot is None else vm.current_snapshot.id,
            "guest": guest,
            # disks of other VMs hot-added to this one (a backup proxy): part of its
            # configuration, attached again at the next load (``_hotadd.reattach``); until
            # then the loaded list is written back as it was
            "hotadded": self._hotadded(vm),
            # files this state no longer refers to, deleted right after it is written (a
            # kill in between: the next load deletes them; they are this host's own)
            "retired": retired or [],
        }
        return json.dumps(doc, indent=1, sort_keys=True).encode()

    # -- loading -------------------------------------------------------------------------------

    def load(self) -> RecoveryReport:
        """Load every VM of the directory into the (empty) host; see the module docstring."""
        self.lock()
        report = RecoveryReport(str(self.root))
        self.report = report
        host_path = self.root / HOST_FILE
        states = sorted(
            p for p in self.root.glob(f"*/*/*{STATE_SUFFIX}") if p.parts[-3] != QUARANTINE
        )
        if not host_path.exists() and not states:
            report.created = True
            self.root.mkdir(parents=True, exist_ok=True)
            self.save_host()
            return report
        inventory = self._load_host_doc(host_path, report)
        self._load_all(states, inventory, report)
        self.save_host()
        return report

    def _load_host_doc(self, path: Path, report: RecoveryReport) -> dict[str, str] | None:
        """Apply the host state; a damaged one is quarantined (the VMs still load)."""
        host = self.host
        if not path.exists():
            return None
        try:
            doc = json.loads(path.read_text())
            clock = float(doc["clock"])
            next_moref = int(doc["next_moref"])
            next_snap = int(doc["next_snapshot_moref"])
            version, internal, gauss = doc["random"]
            state = (int(version), tuple(int(x) for x in internal), gauss)
            inventory = doc.get("inventory")
            if inventory is not None and not (
                isinstance(inventory, dict)
                and all(isinstance(v, str) for v in inventory.values())
            ):
                raise _StateShapeError("inventory: expected an object of state file paths")
            host.random.setstate(state)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reason = f"host state unreadable ({type(exc).__name__}: {exc}); rebuilt from the VMs"
            self.quarantine(path, reason)
            return None
        host.clock.advance_to(max(host.clock.now, clock))
        host.reserve_morefs(next_vm=next_moref, next_snapshot=next_snap)
        from ._host import Datastore

        saved = doc.get("datastores")
        for name, capacity in (saved.items() if isinstance(saved, dict) else ()):
            if (
                name not in host.datastores and isinstance(capacity, int) and capacity > 0
                and name and not any(c in name for c in "[]/")
            ):
                host.datastores[name] = Datastore(name, capacity, host)  # not add_datastore: no save mid-load
        if doc.get("demo") and host.populate is None:
            from ._demo import populate_demo

            host.populate = populate_demo
        if host.populate is None:
            from ._demo import INVENTORIES

            host.populate = INVENTORIES.get(str(doc.get("demo_inventory")))
        return inventory  # type: ignore[no-any-return]

    def _load_all(
        self, states: list[Path], inventory: dict[str, str] | None, report: RecoveryReport
    ) -> None:
        host = self.host
        seen: set[str] = set()
        docs = []
        for path in states:
            rel = path.relative_to(self.root).as_posix()
            seen.add(rel)
            try:
                raw = path.read_bytes()
                doc = json.loads(raw)
                _shape(doc, rel)
            except (OSError, ValueError) as exc:
                reason = f"state file unreadable: {type(exc).__name__}: {exc}"
                self._inaccessible_vm(path.parent.name, rel, reason, None)
                continue
            v = doc["vm"]
            name, moref = v["name"], v["moref"]
            if rel != f"{v.get('datastore')}/{name}/{name}{STATE_SUFFIX}":
                report.unaccounted.append(
                    {
                        "file": rel,
                        "reason": f"holds the state of VM {name!r} ({moref}), whose folder is "
                        f"{v.get('datastore')}/{name}: a renamed or copied folder is not "
                        "loaded (move it back to load it); left in place",
                    }
                )
                continue
            if inventory is not None and inventory.get(moref, rel) != rel:
                report.unaccounted.append(
                    {
                        "file": rel,
                        "reason": f"{moref} is registered at {inventory[moref]}; left in place",
                    }
                )
                continue
            docs.append((path, doc, raw))
        for moref, rel in (inventory or {}).items():
            if rel not in seen:
                name = rel.split("/")[1] if rel.count("/") == 2 else rel
                reason = "missing: the VM's state file is gone (its folder renamed, moved or deleted?)"
                self._inaccessible_vm(name, rel, reason, moref, state="inaccessible")
        with_state = {p.parent for p in states}
        for directory in sorted(self.root.glob("*/*")):
            if (
                directory.is_dir()
                and directory not in with_state
                and directory.parts[-2] != QUARANTINE
                and directory.name != QUARANTINE
                and _looks_like_a_vm(directory)  # other folders are plain datastore files
            ):
                report.unaccounted.append(
                    {
                        "file": directory.relative_to(self.root).as_posix() + "/",
                        "reason": "folder without a vcbsim state: not a VM of this host; "
                        "left in place",
                    }
                )
        def order(item: tuple[Path, dict[str, Any], bytes]) -> int:
            return _moref_number(str(item[1]["vm"]["moref"]))

        for path, doc, raw in sorted(docs, key=order):
            rel = path.relative_to(self.root).as_posix()
            try:
                self._load_vm(path, doc, raw, report)
            except DamagedFileError as exc:
                self._inaccessible_vm(
                    doc["vm"]["name"],
                    f"{path.parent.relative_to(self.root).as_posix()}/{exc.file}",
                    exc.reason,
                    doc["vm"]["moref"],
                    doc,
                    state="inaccessible" if exc.reason.startswith("missing") else "invalid",
                )
            except Exception as exc:  # a broken VM must not keep the host from starting
                reason = f"state file of the wrong shape or content: {type(exc).__name__}: {exc}"
                self._inaccessible_vm(doc["vm"]["name"], rel, reason, doc["vm"]["moref"], doc)
        for vm in host.vms.values():
            host.reserve_morefs(next_vm=_moref_number(vm.moref) + 1)
            for s in vm.snapshots():
                host.reserve_morefs(next_snapshot=_moref_number(s.moref) + 1)
        self._add_placeholders(inventory)

    def _inaccessible_vm(
        self,
        name: str,
        file: str,
        reason: str,
        moref: str | None,
        doc: dict[str, Any] | None = None,
        *,
        state: str = "invalid",
    ) -> None:
        """A VM that could not be loaded: reported, kept registered, its files untouched.

        It stays in the inventory as a real host keeps such a VM: ``runtime.connectionState``
        "inaccessible" (a file is missing) or "invalid" (a file is damaged), no disks, and
        every operation refused (``Host._operation``), until its files are put right and the
        host is started again.
        """
        assert self.report is not None
        self.report.errors.append({"vm": name, "file": file, "reason": reason, "state": state})
        rel = (
            file
            if file.endswith(STATE_SUFFIX)
            else f"{file.split('/')[0]}/{name}/{name}{STATE_SUFFIX}"
        )
        self._pending_placeholders.append((name, rel, moref, doc, state))

    def _add_placeholders(self, inventory: dict[str, str] | None) -> None:
        host = self.host
        by_rel = {rel: m for m, rel in (inventory or {}).items()}
        for name, rel, moref, doc, state in self._pending_placeholders:
            moref = moref or by_rel.get(rel)
            if moref is None:
                moref = f"vm-{host.moref_counters.next_vm}"
            if moref in host.vms or any(v.name == name for v in host.vms.values()):
                continue
            v = doc.get("vm", {}) if isinstance(doc, dict) else {}
            ds = rel.split("/")[0]

            def text(key: str, default: str, v: dict[str, Any] = v) -> str:
                value = v.get(key)
                return value if isinstance(value, str) else default

            vm = VM(
                name=name,
                moref=moref,
                uuid=text("uuid", ""),
                instance_uuid=text("instance_uuid", ""),
                os_family="linux" if text("os_family", "windows") == "linux" else "windows",
                datastore=ds,
                directory=f"[{ds}] {name}",
                power_state="poweredOff",
                connection_state=state,
            )
            host.vms[moref] = vm
            host.faults.aliases[moref] = name
            self._inaccessible[moref] = rel
            host.reserve_morefs(next_vm=_moref_number(moref) + 1)
        self._pending_placeholders.clear()

    def _build_vm(self, path: Path, doc: dict[str, Any], report: RecoveryReport) -> VM:
        """The VM a state describes, with its disks, snapshots and Tools (not registered)."""
        from .tools import MemoryGuestFiles, VMwareTools
        from .tools._quiesce import ToolsSwitches

        if doc.get("format") != FORMAT:
            msg = f"state format {doc.get('format')!r} (this version reads {FORMAT})"
            raise ValueError(msg)
        v = doc["vm"]
        vm = VM(**v)
        directory = path.parent
        layer_lists: dict[int, list[Layer]] = {}
        opened: list[PersistentLayeredDisk] = []
        try:
            for dd in doc["disks"]:
                disk, layers = PersistentLayeredDisk.from_meta(
                    directory, dd["disk"], sync=self.sync_writes
                )
                opened.append(disk)
                disk.commit = partial(self.save_vm, vm)
                disk.datastore = vm.datastore
                disk.path_prefix = f"[{vm.datastore}] {vm.name}/"
                report.repairs.extend(f"{vm.name}/{msg}" for msg in disk.load_report)
                fields = {k: dd[k] for k in dd if k != "disk"}
                vm.disks.append(VirtualDiskDevice(disk=disk, **fields))
                layer_lists[int(dd["key"])] = layers
        except BaseException:
            for disk in opened:
                disk.close()
            raise
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
                vmsn_bytes=int(sd.get("vmsn_bytes", 0)),
                quiesce_type=sd.get("quiesce_type"),
                backup_manifest=sd.get("backup_manifest"),
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
        return vm

    def _load_vm(self, path: Path, doc: dict[str, Any], raw: bytes, report: RecoveryReport) -> None:
        host = self.host
        v = doc["vm"]
        if v["moref"] in host.vms or any(x.name == v["name"] for x in host.vms.values()):
            msg = f"VM {v['name']!r} ({v['moref']}) is already on the host"
            raise ValueError(msg)
        vm = self._build_vm(path, doc, report)
        hotadded = doc.get("hotadded")
        if isinstance(hotadded, list) and hotadded:
            self._pending_hotadds[vm.moref] = [e for e in hotadded if isinstance(e, dict)]
        host.vms[vm.moref] = vm
        host.faults.aliases[vm.moref] = vm.name  # as add_vm does: rules name VMs either way
        try:
            self._load_guest(vm, doc.get("guest"), report)
            self._release_unheld(vm, report)
            self._reset_damaged_ctk(vm, report)
            host.refresh_consolidation(vm)
            self._account_files(vm, doc, report)
            self._last_doc[vm.moref] = raw
            self.save_vm(vm)
        except BaseException:
            del host.vms[vm.moref]
            self._last_doc.pop(vm.moref, None)
            self._pending_hotadds.pop(vm.moref, None)
            for d in vm.disks:
                if isinstance(d.disk, PersistentLayeredDisk):
                    d.disk.close()
            raise
        report.vms.append(vm.name)
        report.snapshots[vm.name] = [s.name for s in vm.snapshots()]

    def _reset_damaged_ctk(self, vm: VM, report: RecoveryReport) -> None:
        """A damaged CBT log: moved aside and tracking reset, so old change ids are refused."""
        for d in vm.disks:
            disk = d.disk
            if not isinstance(disk, PersistentLayeredDisk) or disk.ctk_damage is None:
                continue
            path = disk.directory / disk.ctk_name
            reason = f"CBT log damaged ({disk.ctk_damage})"
            if path.exists():
                self.quarantine(path, reason)
            disk.reset_tracking()
            report.repairs.append(
                f"{vm.name}/{disk.ctk_name}: {reason}; change tracking reset: changeIds "
                "issued before are refused and the next incremental backup is a full one"
            )
            disk.ctk_damage = None

    def _account_files(self, vm: VM, doc: dict[str, Any], report: RecoveryReport) -> None:
        """Which files of the VM's folder are this host's: referred to by the state, retired
        by it (deleted by the next save), leftovers of its own writes; the rest is reported."""
        disks = [d.disk for d in vm.disks if isinstance(d.disk, PersistentLayeredDisk)]
        keep = self._keep(vm, disks)
        retired = {str(n) for n in doc.get("retired", ()) if isinstance(n, str) and "/" not in n}
        for dd in doc["disks"]:  # files the loaded state names (a finished merge retires some)
            meta = dd["disk"]
            retired |= {str(row["extent"]) for row in meta["layers"]}
            retired |= {str(row["label"]).rsplit("/", 1)[-1] for row in meta["layers"]}
            for it in meta.get("intents", ()):
                retired |= {str(it["src"]), str(it["dst"])}
        retired -= keep
        owned = self._owned.setdefault(vm.moref, set())
        owned |= keep
        directory = self.vm_dir(vm)
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            name = entry.name
            if name in keep:
                continue
            rel = f"{directory.relative_to(self.root).as_posix()}/{name}"
            if name in retired or (name.endswith(".tmp") and name[:-4] in keep | retired):
                owned.add(name)
                report.removed_files.append(rel)
            elif entry.is_file() and _is_empty_own_file(Path(entry.path)):
                owned.add(name)  # created by an operation a kill cut short; holds nothing
                report.removed_files.append(rel)
            else:
                report.unaccounted.append(
                    {"file": rel, "reason": "not referred to by the VM's state; left in place"}
                )

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
        for d in vm.disks:  # a running nonpersistent disk's session redo log holds its base
            redo = d.session_redo()
            if redo is not None and redo.parent is not None:
                held.add(id(redo.parent))
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


def _looks_like_a_vm(directory: Path) -> bool:
    with contextlib.suppress(OSError):
        return any(p.suffix in (".vmx", ".vmdk", ".vmsd") for p in directory.iterdir())
    return False


def _is_empty_own_file(path: Path) -> bool:
    """A grain log or CBT log of ours holding nothing but its header (an operation cut
    short created it): deleting it loses nothing."""
    from .disk._persistent import _CTK_MAGIC_HEADER, _file_header

    try:
        if path.stat().st_size > 64:
            return False
        data = path.read_bytes()
    except OSError:
        return False
    return data == _CTK_MAGIC_HEADER or (
        len(data) == 24 and data[:16] == _file_header(0)[:16]
    )


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
    store.reattach_hotadds(report)
    host.recovery_report = report
    host.trace.emit("host", "note", text=report.summary())
    for line in report.problems() + report.hot_added:
        host.trace.emit("host", "note", text=line)
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
        try:
            host.populate(host)
            store.save_host()
        except BaseException:
            # everything here was created by this call: a failed fill leaves no half host
            store.wipe()
            raise
    return host
