"""Datastore and HostDatastoreBrowser."""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING, Any

from pyVmomi import vim

from . import _vmprops
from ._base import MOIDS, ManagedEntityImpl, MOImpl, soap

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["DatastoreBrowserImpl", "DatastoreImpl"]


class DatastoreBrowserImpl(MOImpl):
    """The host's datastore browser (``HostSystem.datastoreBrowser``, every ``Datastore.browser``)."""

    vim_type = vim.host.DatastoreBrowser
    _B: Any = vim.host.DatastoreBrowser

    def p_datastore(self) -> list[Any]:
        return list(self.ep.inventory.datastore_refs().values())

    def p_supportedType(self) -> list[Any]:  # noqa: N802
        return [self._B.FolderQuery(), self._B.Query()]

    def _parse(self, datastore_path: str) -> tuple[str, str]:
        m = re.fullmatch(r"\[([^\]]+)\]\s*(.*)", datastore_path or "")
        if m is None:
            raise vim.fault.InvalidDatastorePath(
                msg=f"Invalid datastore path '{datastore_path}'.", datastorePath=datastore_path or ""
            )
        name, folder = m.group(1), m.group(2).strip("/")
        if name not in self.ep.inventory.datastore_refs():
            raise vim.fault.InvalidDatastore(msg=f"Invalid datastore '{name}'.", name=name)
        return name, folder

    def _search(self, ds: str, folder: str, spec: Any, recursive: bool) -> list[Any]:
        # files with their sizes, and the folders made empty (size None)
        files: list[tuple[str, int | None]] = [*self.ep.files.listing(ds)]
        files.extend((p, None) for p in self.ep.files.folders(ds))
        prefix = f"{folder}/" if folder else ""
        if folder and not self.ep.files.is_dir(ds, folder):
            raise vim.fault.FileNotFound(msg=f"File [{ds}] {folder} was not found", file=f"[{ds}] {folder}")
        patterns = list(spec.matchPattern or []) if spec is not None else []
        fold = bool(spec is not None and spec.searchCaseInsensitive)
        details = spec.details if spec is not None else None
        by_folder: dict[str, dict[str, int | None]] = {}
        by_folder.setdefault(folder, {})  # an empty folder is one result with no entries
        for path, size in files:
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            parts = rest.split("/")
            for depth in range(len(parts)):
                here = "/".join([folder, *parts[:depth]] if folder else parts[:depth])
                if depth and not recursive:
                    break
                children = by_folder.setdefault(here, {})
                last = depth == len(parts) - 1
                children[parts[depth]] = size if last else None
                if last and size is None and recursive:  # a folder made empty: its own result
                    by_folder.setdefault("/".join([folder, *parts] if folder else parts), {})
        results = []
        now = _vmprops.ts(self.ep.now())
        ref = self.ep.inventory.datastore_ref(ds)
        for here in sorted(by_folder):
            entries = []
            for name, entry_size in by_folder[here].items():
                if patterns and not any(
                    fnmatch.fnmatchcase(name.lower() if fold else name, p.lower() if fold else p) for p in patterns
                ):
                    continue
                cls = self._B.FolderInfo if entry_size is None else self._B.FileInfo
                info = cls(path=name)
                if details is None or details.fileSize:
                    info.fileSize = entry_size or 0
                if details is not None and details.modification:
                    info.modification = now
                entries.append(info)
            if spec is not None and spec.sortFoldersFirst:
                entries.sort(key=lambda e: (not isinstance(e, self._B.FolderInfo), e.path))
            else:
                entries.sort(key=lambda e: e.path)
            results.append(self._B.SearchResults(datastore=ref, folderPath=f"[{ds}] {here}".rstrip(), file=entries))
        return results

    @soap
    def SearchDatastore_Task(self, ctx: Context, datastorePath: str, searchSpec: Any = None) -> Any:  # noqa: N802, N803
        ds, folder = self._parse(datastorePath)

        def run() -> Any:
            results = self._search(ds, folder, searchSpec, recursive=False)
            return results[0] if results else self._B.SearchResults(
                datastore=self.ep.inventory.datastore_ref(ds), folderPath=datastorePath, file=[]
            )

        return self.ep.tasks.submit_for(ctx, self._B.SearchDatastore_Task, self.ep.inventory.datastore_ref(ds), ds, run)

    @soap
    def SearchDatastoreSubFolders_Task(self, ctx: Context, datastorePath: str, searchSpec: Any = None) -> Any:  # noqa: N802, N803
        ds, folder = self._parse(datastorePath)

        def run() -> Any:
            return self._B.SearchResults.Array(self._search(ds, folder, searchSpec, recursive=True))

        return self.ep.tasks.submit_for(
            ctx, self._B.SearchDatastoreSubFolders_Task, self.ep.inventory.datastore_ref(ds), ds, run
        )


class DatastoreImpl(ManagedEntityImpl):
    vim_type = vim.Datastore
    parent_id = MOIDS["dsfolder"]

    def _info(self) -> Any:
        return self.ep.inventory.datastore_info(self.moid)

    def p_name(self) -> str:
        return str(self._info().name)

    def _url(self) -> str:
        info = self._info()
        return info.url or f"/vmfs/volumes/{info.name}"

    def p_summary(self) -> Any:
        info = self._info()
        return vim.Datastore.Summary(
            datastore=self.ref,
            name=info.name,
            url=self._url(),
            capacity=info.capacity,
            freeSpace=info.free_space,
            uncommitted=0,
            accessible=True,
            multipleHostAccess=False,
            type=info.type,
            maintenanceMode="normal",
        )

    def p_info(self) -> Any:
        info = self._info()
        return vim.Datastore.Info(
            name=info.name,
            url=self._url(),
            freeSpace=info.free_space,
            maxFileSize=info.capacity,
            maxVirtualDiskCapacity=info.capacity,
            maxMemoryFileSize=info.capacity,
            timestamp=_vmprops.ts(self.ep.now()),
        )

    def p_host(self) -> list[Any]:
        return [
            vim.Datastore.HostMount(
                key=vim.HostSystem(MOIDS["host"]),
                mountInfo=vim.host.MountInfo(
                    path=self._url(), accessMode="readWrite", mounted=True, accessible=True
                ),
            )
        ]

    def p_browser(self) -> Any:
        return vim.host.DatastoreBrowser(MOIDS["browser"])

    def p_vm(self) -> list[Any]:
        name = self._info().name
        return [vim.VirtualMachine(vm.moref) for vm in self.ep.host.vms.values() if vm.datastore == name]
