"""FileManager: folders and files of the host's datastores by datastore path.

``content.fileManager`` is ``ha-nfc-file-manager`` on a standalone host; the type exists since
API 2.5 (``vim.version.version2``), so every profile here serves it. Paths are datastore paths
(``[datastore1] backups/job-1``); a standalone host has one datacenter, which the optional
``datacenter`` argument may name.

Behaviour follows the vSphere API reference for ``FileManager.MakeDirectory``: a folder whose
parent does not exist is ``FileNotFound`` unless ``createParentDirectories`` is set (then every
missing folder is made); a name that already exists (folder or file) is ``FileAlreadyExists``;
a malformed path is ``InvalidDatastorePath``, an unknown datastore ``InvalidDatastore``.
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
