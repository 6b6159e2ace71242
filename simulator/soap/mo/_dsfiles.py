"""The files of the host's datastores, as ``/folder`` and the datastore browser show them.

``.vmx``, ``.vmsd`` and disk descriptors are the host's own text (``Host.datastore_files``); a
base disk's ``-flat.vmdk`` extent is the base layer's bytes, read in chunks; a redo log's
``-delta.vmdk`` / ``-sesparse.vmdk`` extent is the layer's grains as a COWD / SEsparse extent
(``disk.CowdExtent``, ``disk.SeSparseExtent``, rendered lazily), so ``qemu-img`` reads a
downloaded chain. Files a client uploads with ``PUT /folder`` (scripts, notes) and folders
made with ``FileManager.MakeDirectory`` are kept here; a VM's generated files cannot be
overwritten. A folder exists when it was made or when a file lies under it (a VM's directory).

Cost follows the file asked for (issue 18): each VM's files are named without rendering any
(``_vm_files``: path -> an opener), and a folder index (``(datastore, folder)`` -> the VMs with
files there) sends a lookup to the one VM that owns the folder, whose file alone is then
opened, so ``open``/``size``/``read`` do not grow with the inventory. The index is only a
hint: a hit is checked against that VM's current files, and a miss (a new VM, a 404, a path
being uploaded) falls back to naming every VM's files (still without rendering) and rebuilds
the index. ``/folder`` opens a file once per request and streams its chunks from that opener.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from ..._errors import InvalidInputError, NotFoundError
from ..._vm import file_ref
from ...disk import CowdExtent, SeSparseExtent, cowd_extent, render_descriptor, sesparse_extent

if TYPE_CHECKING:
    from ..._host import Host
    from ..._vm import VM, VirtualDiskDevice

__all__ = ["NVRAM", "DatastoreFiles", "nvram_path"]

Reader = Callable[[int, int], bytes]
#: opens one file: ``(size, read(offset, length))``; renders text files only when called
Opener = Callable[[], tuple[int, Reader]]


#: a VM's ``.nvram`` (its BIOS settings) as the host lists and serves it: 8684 bytes, the size
#: of a BIOS VM's nvram on ESX; the settings themselves are not modelled (a fixed header and
#: zeros), so backups that copy the VM's directory find the file they expect
NVRAM = b"MRVN" + bytes(8684 - 4)


def nvram_path(vm: Any) -> str:
    """``[ds] vm/vm.nvram``, beside the ``.vmx``."""
    return str(vm.vmx_path)[: -len(".vmx")] + ".nvram"


def _slice(data: bytes, offset: int, length: int) -> bytes:
    return data[offset : offset + length]


def _read_view(view: Any, capacity: int, offset: int, length: int) -> bytes:
    return bytes(view.read(offset, max(0, min(length, capacity - offset))))


def _text(render: Callable[[], bytes]) -> tuple[int, Reader]:
    data = render()
    return len(data), partial(_slice, data)


def _fixed(data: bytes) -> tuple[int, Reader]:
    return len(data), partial(_slice, data)


def _flat(d: VirtualDiskDevice, base: Any) -> tuple[int, Reader]:
    return d.capacity, partial(_read_view, d.disk.view(base), d.capacity)


def _flat_disk(disk: Any) -> tuple[int, Reader]:
    return disk.capacity, partial(_read_view, disk.view(None), disk.capacity)


def _delta(layer: Any, d: VirtualDiskDevice, suffix: str) -> tuple[int, Reader]:
    extent: CowdExtent | SeSparseExtent
    if suffix == "-sesparse.vmdk":
        extent = sesparse_extent(layer, d.capacity, grain_size=d.disk.grain_size)
    else:
        parent = file_ref(layer.parent.label, layer.label.rpartition("/")[0])
        extent = cowd_extent(layer, d.capacity, grain_size=d.disk.grain_size, parent=parent)
    return extent.size, extent.read


def _bounded(size: int, read: Reader, offset: int, length: int) -> bytes:
    if offset >= size:
        return b""
    return read(offset, min(length, size - offset))


def _folder_key(name: str) -> tuple[str, str] | None:
    """``"[ds] vm/vm.vmx"`` -> ``("ds", "vm")``."""
    if not name.startswith("["):
        return None
    ds, sep, path = name[1:].partition("] ")
    return (ds, path.rpartition("/")[0]) if sep else None


def _delta_extents(vm: VM, d: VirtualDiskDevice, prefix: str, suffix: str) -> dict[str, Opener]:
    """``<stem>-delta.vmdk`` (a COWD extent) or ``<stem>-sesparse.vmdk`` (SEsparse), rendered
    lazily, of every redo layer of a disk on the current chain or held by a snapshot."""
    layers = {layer.id: layer for layer in d.disk.chain()}
    for snap in vm.snapshots():
        held = snap.layers.get(d.key)
        if held is not None and held.alive:
            layers.update((layer.id, layer) for layer in d.disk.chain(held))
    out: dict[str, Opener] = {}
    for layer in layers.values():
        if layer.parent is None or not layer.label.startswith(prefix) or not layer.label.endswith(".vmdk"):
            continue
        out[layer.label[len(prefix) : -len(".vmdk")] + suffix] = partial(_delta, layer, d, suffix)
    return out


class DatastoreFiles:
    """The datastores' files over a ``Host`` (paths relative to a datastore's root)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        #: the other file of a loose disk just deleted (descriptor or extent: they go together)
        self._gone_pair: set[tuple[str, str]] = set()
        #: (datastore, path) of folders made empty (``MakeDirectory``)
        self.directories: set[tuple[str, str]] = set()
        #: (datastore, folder) -> morefs of the VMs with files there (a hint: ``_lookup``)
        self._folders: dict[tuple[str, str], set[str]] = {}

    @property
    def uploads(self) -> dict[tuple[str, str], bytes]:
        """(datastore, path) -> bytes a client uploaded (kept by the host, which turns an
        uploaded disk into a VM's disk: ``simulator/_vmlifecycle.py``)."""
        return self.host.uploads

    def _loose_files(self, datastore: str) -> dict[str, Opener]:
        """Disk files no VM holds (in memory): a ``vmfs`` descriptor and its flat extent."""
        out: dict[str, Opener] = {}
        for (ds, path), loose in self.host.loose_disks.items():
            if ds != datastore:
                continue
            name = path.rsplit("/", 1)[-1]
            text = render_descriptor(name, loose.disk.capacity, create_type="vmfs", adapter=loose.adapter)
            text += f'ddb.uuid = "{" ".join(loose.uuid.replace("-", "")[i : i + 2] for i in range(0, 32, 2))}"\n'
            out[path] = partial(_fixed, text.encode())
            out[path[: -len(".vmdk")] + "-flat.vmdk"] = partial(_flat_disk, loose.disk)
        return out

    def _loose_key(self, datastore: str, path: str) -> tuple[str, str] | None:
        """The loose disk whose descriptor or flat extent ``path`` is, or None."""
        for key in ((datastore, path), (datastore, path.removesuffix("-flat.vmdk") + ".vmdk")):
            if key in self.host.loose_disks:
                return key
        return None

    def _vm_files(self, vm: VM) -> dict[str, Opener]:
        """``"[ds] path" -> opener`` for every file of ``vm``; nothing is rendered here."""
        files: dict[str, Opener] = {name: partial(_text, reader) for name, reader in self.host.datastore_files(vm).items()}
        files[nvram_path(vm)] = partial(_fixed, NVRAM)
        for d in vm.disks:
            base = d.disk.chain()[-1]
            # an RDM's mapping extent (-rdmp.vmdk / -rdm.vmdk) reads through to the LUN
            files[d.base_extent] = partial(_flat, d, base)
            # every file keeps its own datastore: a VM's disks may be on several
            files.update(_delta_extents(vm, d, "", self.host.delta_extent_suffix(d)))
        return files

    def _named(self, datastore: str) -> dict[str, Opener]:
        """``path -> opener`` for every VM file on ``datastore`` (and the folder index rebuilt)."""
        prefix = f"[{datastore}] "
        files: dict[str, Opener] = {}
        folders: dict[tuple[str, str], set[str]] = {}
        for vm in self.host.vms.values():
            for name, opener in self._vm_files(vm).items():
                key = _folder_key(name)
                if key is not None:
                    folders.setdefault(key, set()).add(vm.moref)
                if name.startswith(prefix):
                    files[name[len(prefix) :]] = opener
        self._folders = folders
        if self.host.loose_disks:
            files.update(self._loose_files(datastore))
        return files

    def _generated(self, datastore: str) -> dict[str, tuple[int, Reader]]:
        """``path -> (size, read(offset, length))`` for every VM file on ``datastore``
        (renders every text file: for listings, which show every size)."""
        return {path: opener() for path, opener in self._named(datastore).items()}

    def _lookup(self, datastore: str, path: str) -> Opener | None:
        """The opener of VM file ``path`` on ``datastore``: the VMs the folder index names
        for its folder first (O(1) of the inventory), every VM's names on a miss."""
        name = f"[{datastore}] {path}"
        for moref in self._folders.get((datastore, path.rpartition("/")[0]), ()):
            vm = self.host.vms.get(moref)
            opener = None if vm is None else self._vm_files(vm).get(name)
            if opener is not None:
                return opener
        return self._named(datastore).get(path)

    def _check(self, datastore: str) -> None:
        if datastore not in self.host.datastores:
            raise NotFoundError("datastore", datastore, known=list(self.host.datastores))

    def listing(self, datastore: str) -> list[tuple[str, int]]:
        """Every file on ``datastore``: (path, size), sorted; folders are implied by the paths."""
        self._check(datastore)
        files = {path: size for path, (size, _read) in self._generated(datastore).items()}
        files.update({p: len(data) for (ds, p), data in self.uploads.items() if ds == datastore})
        if self.host.store is not None:  # the datastore's plain files (uploads survive restarts)
            files.update(self.host.store.plain_files(datastore))
        return sorted(files.items())

    def folders(self, datastore: str) -> list[str]:
        """The folders made on ``datastore`` (those implied by files are not listed)."""
        self._check(datastore)
        return sorted(p for ds, p in self.directories if ds == datastore)

    def is_dir(self, datastore: str, path: str) -> bool:
        """Whether folder ``path`` exists (``""`` is the datastore's root)."""
        self._check(datastore)
        path = path.strip("/")
        if not path or (datastore, path) in self.directories:
            return True
        prefix = path + "/"
        plain = self.host.store.plain_files(datastore) if self.host.store is not None else {}
        return any(ds == datastore and p.startswith(prefix) for ds, p in [*self.uploads, *self.directories]) or any(
            p.startswith(prefix) for p in [*self._named(datastore), *plain]
        )

    def exists(self, datastore: str, path: str) -> bool:
        """Whether ``path`` is a file or a folder on ``datastore``."""
        path = path.strip("/")
        plain = self.host.store.plain_files(datastore) if self.host.store is not None else {}
        return (
            self.is_dir(datastore, path)
            or (datastore, path) in self.uploads
            or path in plain
            or self._lookup(datastore, path) is not None
        )

    def add_directory(self, datastore: str, path: str) -> None:
        """Record folder ``path`` (its parent's existence is the caller's check)."""
        self._check(datastore)
        self.directories.add((datastore, path.strip("/")))

    def open(self, datastore: str, path: str) -> tuple[int, Reader]:
        """``(size, read(offset, length))`` of file ``path`` (reads past the end give fewer
        bytes), or ``NotFoundError``: what a download opens once and reads chunk by chunk."""
        self._check(datastore)
        if (datastore, path) in self.uploads:
            return _fixed(self.uploads[(datastore, path)])
        if self.host.store is not None and path in (plain := self.host.store.plain_files(datastore)):
            size = plain[path]
            return size, partial(_bounded, size, partial(self.host.store.read_file, datastore, path))
        opener = self._lookup(datastore, path)
        if opener is None:
            raise NotFoundError("file", f"[{datastore}] {path}")
        size, read = opener()
        return size, partial(_bounded, size, read)

    def size(self, datastore: str, path: str) -> int:
        """Size of ``path``, or ``NotFoundError``."""
        return self.open(datastore, path)[0]

    def read(self, datastore: str, path: str, offset: int, length: int) -> bytes:
        return self.open(datastore, path)[1](offset, length)

    def in_use(self, datastore: str) -> set[str]:
        """The files of ``datastore`` its registered VMs use (generated from their state);
        disk files no VM holds are not in use."""
        self._check(datastore)
        return set(self._named(datastore)) - set(self._loose_files(datastore))

    def delete(self, datastore: str, path: str) -> None:
        """Delete a file a client put there, or a folder made with ``MakeDirectory`` (a VM's
        own files are in use: ``InvalidInputError``; nothing there: ``NotFoundError``)."""
        self._check(datastore)
        path = path.strip("/")
        loose = self._loose_key(datastore, path)
        if (datastore, path) in self.uploads:
            del self.uploads[(datastore, path)]
        elif loose is not None:  # a disk file no VM holds: its descriptor and extent go together
            del self.host.loose_disks[loose]
            desc = loose[1]
            flat = desc[: -len(".vmdk")] + "-flat.vmdk"
            self._gone_pair = {(datastore, desc), (datastore, flat)} - {(datastore, path)}
        elif (datastore, path) in self._gone_pair:
            self._gone_pair = set()  # went with its pair (a folder delete lists both)
        elif (datastore, path) in self.directories:
            self.directories.discard((datastore, path))
        elif self._lookup(datastore, path) is not None:
            raise InvalidInputError("datastore file", expected="a file no VM uses", got=f"[{datastore}] {path}")
        else:
            raise NotFoundError("file", f"[{datastore}] {path}")

    def write(self, datastore: str, path: str, data: bytes) -> None:
        self._check(datastore)
        if self._lookup(datastore, path) is not None:
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

    def write_stream(self, datastore: str, path: str, chunks: Iterable[bytes], length: int | None) -> int | None:
        """A ``PUT /folder`` body written to the datastore's files as it arrives (``None``:
        no datastore directory; the caller keeps it in memory)."""
        self._check(datastore)
        if self.host.store is None:
            return None
        if self._lookup(datastore, path) is not None:
            self.write(datastore, path, b"")  # raises the refusal
        return self.host.store.put_file(datastore, path, chunks, length)
