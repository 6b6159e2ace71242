"""FileManager (``ha-nfc-file-manager``): delete, move and copy datastore files.

Why: backup and restore products manage the files they put on a datastore (uploaded restore
images, exported disks, notes) with the FileManager, and check for the faults a host answers.
What a real host does, and what this follows (vSphere API reference, ``FileManager``, since API
2.0): names are datastore paths (``[datastore1] folder/file``; a malformed one is
``InvalidDatastorePath``, an unknown datastore ``InvalidDatastore``); ``DeleteDatastoreFile_Task``
deletes a file, or a folder and everything in it; ``MoveDatastoreFile_Task`` and
``CopyDatastoreFile_Task`` take a source and a destination and refuse an existing destination
unless ``force`` (``FileAlreadyExists``); a missing source is ``FileNotFound``; a file a
registered VM uses (its ``.vmx``, ``.vmsd``, ``.nvram``, descriptors, extents, redo logs) cannot
be deleted, moved or overwritten while the VM is registered (``CannotDeleteFile``); a copy
reads it. The datacenter arguments are accepted and checked, as the host's one datacenter.

The simulated datastore keeps files clients put there in memory: a copy larger than the largest
upload the host takes (``MAX_PUT_BYTES``) is refused with ``FileTooLarge`` instead of being held
in memory (a disk extent is copied by downloading it over ``/folder``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from ..._errors import InvalidInputError, NotFoundError
from ._base import MOIDS, MOImpl, soap

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["FileManagerImpl"]

_DS_PATH = re.compile(r"^\[(?P<ds>[^\]]+)\] ?(?P<path>.*)$")
#: the largest file a copy makes (the host's upload limit; http/_server.MAX_PUT_BYTES)
MAX_COPY_BYTES = 1024**3


class FileManagerImpl(MOImpl):
    vim_type = vim.FileManager

    # --- names ---------------------------------------------------------------------------------
    def _split(self, name: str | None) -> tuple[str, str]:
        m = _DS_PATH.match(name or "")
        if m is None:
            raise vim.fault.InvalidDatastorePath(
                msg=f"Invalid datastore path '{name}': expected '[datastore] folder/file'.", datastorePath=name or "")
        ds, path = m.group("ds"), m.group("path").strip("/")
        if ds not in {d.name for _, d in self.ep.datastore_list()}:
            raise vim.fault.InvalidDatastore(msg=f"Invalid datastore '{ds}'.", name=ds)
        return ds, path

    def _datacenter(self, dc: Any) -> None:
        if dc is not None and dc._moId != MOIDS["dc"]:
            raise self.ep._not_found(dc)

    def _backend(self) -> Any:
        """The backend, which must delete files too (``HostAdapter.delete_datastore_file``; an
        optional part of ``HostBackend``: a backend without it answers ``NotSupported``)."""
        be: Any = self.ep.backend
        if not callable(getattr(be, "delete_datastore_file", None)):
            raise vmodl.fault.NotSupported(msg="this host's datastores do not support FileManager")
        return be

    def _files(self, ds: str) -> dict[str, int]:
        return dict(self.ep.backend.datastore_file_list(ds))

    def _in_use(self, ds: str) -> set[str]:
        """Paths a registered VM uses (its generated files)."""
        used = getattr(self.ep.backend, "datastore_files_in_use", None)
        return set(used(ds)) if used is not None else set()

    def _under(self, files: dict[str, int], path: str) -> list[str]:
        """``path`` itself if it is a file, else every file below the folder ``path``."""
        if path in files:
            return [path]
        prefix = path + "/" if path else ""
        return [p for p in files if p.startswith(prefix)]

    def _task(self, ctx: Context, method: str, fn: Any) -> Any:
        dc = vim.Datacenter(MOIDS["dc"])
        return self.ep.tasks.submit_for(ctx, getattr(vim.FileManager, method), dc, "ha-datacenter", fn)

    # --- the methods ---------------------------------------------------------------------------
    @soap
    def DeleteDatastoreFile_Task(self, ctx: Context, name: str, datacenter: Any = None) -> Any:  # noqa: N802
        self._datacenter(datacenter)
        ds, path = self._split(name)

        def run() -> None:
            files = self._files(ds)
            victims = self._under(files, path)
            if not victims:
                raise vim.fault.FileNotFound(msg=f"File {name} was not found", file=name)
            used = self._in_use(ds) & set(victims)
            if used:
                raise vim.fault.CannotDeleteFile(msg=f"Cannot delete file {name}: it is in use by a virtual machine",
                                                 file=f"[{ds}] {sorted(used)[0]}")
            for p in victims:
                self._backend().delete_datastore_file(ds, p)

        return self._task(ctx, "DeleteDatastoreFile_Task", run)

    @soap
    def MoveDatastoreFile_Task(self, ctx: Context, sourceName: str, sourceDatacenter: Any = None,  # noqa: N802,N803
                               destinationName: str = "", destinationDatacenter: Any = None,  # noqa: N803
                               force: bool | None = None) -> Any:
        return self._transfer(ctx, "MoveDatastoreFile_Task", sourceName, sourceDatacenter, destinationName,
                              destinationDatacenter, bool(force), move=True)

    @soap
    def CopyDatastoreFile_Task(self, ctx: Context, sourceName: str, sourceDatacenter: Any = None,  # noqa: N802,N803
                               destinationName: str = "", destinationDatacenter: Any = None,  # noqa: N803
                               force: bool | None = None) -> Any:
        return self._transfer(ctx, "CopyDatastoreFile_Task", sourceName, sourceDatacenter, destinationName,
                              destinationDatacenter, bool(force), move=False)

    def _transfer(self, ctx: Context, method: str, source: str, source_dc: Any, destination: str,
                  destination_dc: Any, force: bool, *, move: bool) -> Any:
        self._datacenter(source_dc)
        self._datacenter(destination_dc)
        src_ds, src = self._split(source)
        dst_ds, dst = self._split(destination)

        def run() -> None:
            be = self._backend()
            files = self._files(src_ds)
            moving = self._under(files, src)
            if not moving:
                raise vim.fault.FileNotFound(msg=f"File {source} was not found", file=source)
            # each file keeps its place below the source: a folder moves with its contents
            pairs = [(p, dst if p == src else dst + p[len(src):]) for p in moving]
            dst_files = self._files(dst_ds)
            existing = [d for _, d in pairs if d in dst_files or self._under(dst_files, d)]
            if existing and not force:
                raise vim.fault.FileAlreadyExists(msg=f"Cannot complete the operation because the file or folder "
                                                  f"{destination} already exists", file=destination)
            used_src = self._in_use(src_ds) & set(moving) if move else set()
            used_dst = self._in_use(dst_ds) & set(existing)
            if used_src or used_dst:
                which = f"[{src_ds}] {sorted(used_src)[0]}" if used_src else f"[{dst_ds}] {sorted(used_dst)[0]}"
                raise vim.fault.CannotDeleteFile(msg=f"Cannot delete file {which}: it is in use by a virtual machine",
                                                 file=which)
            too_big = [p for p in moving if files[p] > MAX_COPY_BYTES]
            if too_big:
                raise vim.fault.FileTooLarge(msg=f"The file [{src_ds}] {too_big[0]} is too large to copy",
                                             datastore=dst_ds, fileSize=files[too_big[0]], maxFileSize=MAX_COPY_BYTES)
            for p, d in pairs:
                data = be.read_datastore_file(src_ds, p, 0, files[p])
                try:
                    be.write_datastore_file(dst_ds, d, data)
                except InvalidInputError:
                    raise vim.fault.CannotDeleteFile(msg=f"Cannot overwrite [{dst_ds}] {d}", file=f"[{dst_ds}] {d}") from None
            if move:
                for p, _ in pairs:
                    try:
                        be.delete_datastore_file(src_ds, p)
                    except NotFoundError:
                        pass

        return self._task(ctx, method, run)
