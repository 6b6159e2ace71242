"""FileManager: folders and files of the host's datastores by datastore path.

``content.fileManager`` is ``ha-nfc-file-manager`` on a standalone host; the type exists since
API 2.5 (``vim.version.version2``), so every profile here serves it. Paths are datastore paths
(``[datastore1] backups/job-1``); a standalone host has one datacenter, which the optional
``datacenter`` arguments may name.

Behaviour follows the vSphere API reference for ``FileManager``:

* ``MakeDirectory``: a folder whose parent does not exist is ``FileNotFound`` unless
  ``createParentDirectories`` is set (then every missing folder is made); a name that already
  exists (folder or file) is ``FileAlreadyExists``;
* ``DeleteDatastoreFile_Task`` deletes a file, or a folder and everything in it;
  ``MoveDatastoreFile_Task`` and ``CopyDatastoreFile_Task`` take a source and a destination
  (a folder moves or copies with its contents) and refuse an existing destination unless
  ``force`` (``FileAlreadyExists``); a missing source is ``FileNotFound``;
* a file a registered VM uses (its ``.vmx``, ``.vmsd``, ``.nvram``, descriptors, extents, redo
  logs) cannot be deleted, moved or overwritten while the VM is registered
  (``CannotDeleteFile``); a copy reads it;
* a malformed path is ``InvalidDatastorePath``, an unknown datastore ``InvalidDatastore``.

The simulated datastore keeps files clients put there in memory: a copy larger than the largest
upload the host takes (1 GiB, as ``PUT /folder``) is refused with ``FileTooLarge`` instead of
being held in memory (a disk extent is copied by downloading it over ``/folder``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from ..._faults import make_fault
from ._base import MOIDS, MOImpl, soap

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["FileManagerImpl"]

_PATH = re.compile(r"\[([^\]]+)\]\s*(.*)")
#: the largest file a copy makes (the host's upload limit, http/_server.MAX_PUT_BYTES)
MAX_COPY_BYTES = 1024**3


class FileManagerImpl(MOImpl):
    vim_type = vim.FileManager
    static_moids = ("ha-nfc-file-manager",)
    content_property = "fileManager"

    def _path(self, name: str, datacenter: Any) -> tuple[str, str]:
        """``[ds] a/b`` -> (``ds``, ``a/b``), checked against the host's datastores."""
        if datacenter is not None and datacenter._moId != MOIDS["dc"]:
            raise vmodl.fault.ManagedObjectNotFound(
                msg=f"The object '{datacenter._moId}' has already been deleted or has not been completely created",
                obj=datacenter,
            )
        m = _PATH.fullmatch(name or "")
        if m is None or not m.group(2).strip("/"):
            raise make_fault("InvalidDatastorePath", f"Invalid datastore path '{name}'.", datastorePath=name or "")
        ds, path = m.group(1), m.group(2).strip("/")
        if ds not in self.ep.host.datastores:
            raise make_fault("InvalidDatastore", f"Invalid datastore '{ds}'.", name=ds)
        return ds, path

    @soap
    def MakeDirectory(  # noqa: N802
        self, ctx: Context, name: str, datacenter: Any = None, createParentDirectories: bool | None = None  # noqa: N803
    ) -> None:
        ds, path = self._path(name, datacenter)
        files = self.ep.files
        if files.exists(ds, path):
            raise make_fault("FileAlreadyExists", f"Cannot complete the operation because the file or folder "
                             f"[{ds}] {path} already exists", file=f"[{ds}] {path}")
        parts = path.split("/")
        missing = [p for p in ("/".join(parts[:i]) for i in range(1, len(parts))) if not files.is_dir(ds, p)]
        if missing and not createParentDirectories:
            raise make_fault("FileNotFound", f"File [{ds}] {missing[0]} was not found", file=f"[{ds}] {missing[0]}")
        for folder in [*missing, path]:
            files.add_directory(ds, folder)
        self.ep.changed.notify_all()

    # --- delete, move, copy (tasks) ------------------------------------------------------------
    def _task(self, ctx: Context, method: str, fn: Any) -> Any:
        dc = vim.Datacenter(MOIDS["dc"])
        return self.ep.tasks.submit_for(ctx, getattr(vim.FileManager, method), dc, "ha-datacenter", fn)

    def _under(self, ds: str, path: str) -> dict[str, int]:
        """``path`` itself if it is a file, else every file below the folder ``path``
        (path -> size)."""
        files = dict(self.ep.files.listing(ds))
        if path in files:
            return {path: files[path]}
        prefix = path + "/"
        return {p: n for p, n in files.items() if p.startswith(prefix)}

    def _folders_under(self, ds: str, path: str) -> list[str]:
        return [f for f in self.ep.files.folders(ds) if f == path or f.startswith(path + "/")]

    @soap
    def DeleteDatastoreFile_Task(self, ctx: Context, name: str, datacenter: Any = None) -> Any:  # noqa: N802
        ds, path = self._path(name, datacenter)

        def run() -> None:
            files = self.ep.files
            victims = self._under(ds, path)
            folders = self._folders_under(ds, path)
            if not victims and not folders:
                raise make_fault("FileNotFound", f"File [{ds}] {path} was not found", file=f"[{ds}] {path}")
            used = sorted(files.in_use(ds) & set(victims))
            if used:
                raise make_fault("CannotDeleteFile", f"Cannot delete file [{ds}] {used[0]}: a virtual machine "
                                 "uses it", file=f"[{ds}] {used[0]}")
            for p in [*victims, *folders]:
                files.delete(ds, p)
            self.ep.changed.notify_all()

        return self._task(ctx, "DeleteDatastoreFile_Task", run)

    @soap
    def MoveDatastoreFile_Task(  # noqa: N802
        self, ctx: Context, sourceName: str, sourceDatacenter: Any = None,  # noqa: N803
        destinationName: str = "", destinationDatacenter: Any = None, force: bool | None = None,  # noqa: N803
    ) -> Any:
        return self._transfer(ctx, "MoveDatastoreFile_Task", sourceName, sourceDatacenter, destinationName,
                              destinationDatacenter, bool(force), move=True)

    @soap
    def CopyDatastoreFile_Task(  # noqa: N802
        self, ctx: Context, sourceName: str, sourceDatacenter: Any = None,  # noqa: N803
        destinationName: str = "", destinationDatacenter: Any = None, force: bool | None = None,  # noqa: N803
    ) -> Any:
        return self._transfer(ctx, "CopyDatastoreFile_Task", sourceName, sourceDatacenter, destinationName,
                              destinationDatacenter, bool(force), move=False)

    def _transfer(self, ctx: Context, method: str, source: str, source_dc: Any, destination: str,
                  destination_dc: Any, force: bool, *, move: bool) -> Any:
        src_ds, src = self._path(source, source_dc)
        dst_ds, dst = self._path(destination, destination_dc)

        def run() -> None:
            files = self.ep.files
            moving = self._under(src_ds, src)
            folders = self._folders_under(src_ds, src)
            if not moving and not folders:
                raise make_fault("FileNotFound", f"File [{src_ds}] {src} was not found", file=f"[{src_ds}] {src}")

            def target(p: str) -> str:  # each file keeps its place below the source
                return dst if p == src else dst + p[len(src):]

            pairs = [(p, target(p)) for p in moving]
            existing = [d for _, d in pairs if files.exists(dst_ds, d)] or (
                [dst] if files.exists(dst_ds, dst) else [])
            if existing and not force:
                raise make_fault("FileAlreadyExists", f"Cannot complete the operation because the file or folder "
                                 f"[{dst_ds}] {dst} already exists", file=f"[{dst_ds}] {dst}")
            used_src = files.in_use(src_ds) & set(moving) if move else set()
            used_dst = files.in_use(dst_ds) & {d for _, d in pairs}
            if used_src or used_dst:
                which = f"[{src_ds}] {sorted(used_src)[0]}" if used_src else f"[{dst_ds}] {sorted(used_dst)[0]}"
                raise make_fault("CannotDeleteFile", f"Cannot delete file {which}: a virtual machine uses it",
                                 file=which)
            too_big = [p for p, n in moving.items() if n > MAX_COPY_BYTES]
            if too_big:
                raise make_fault("FileTooLarge", f"The file [{src_ds}] {too_big[0]} is too large to copy",
                                 datastore=dst_ds, fileSize=moving[too_big[0]], maxFileSize=MAX_COPY_BYTES)
            for p, d in pairs:
                files.write(dst_ds, d, files.read(src_ds, p, 0, moving[p]))
            for f in folders:
                files.add_directory(dst_ds, target(f))
            if move:
                for p in [*moving, *folders]:
                    files.delete(src_ds, p)
            self.ep.changed.notify_all()

        return self._task(ctx, method, run)
