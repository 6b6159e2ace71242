"""Folder: the root folder and the datacenter's four folders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pyVmomi import vim

from ._base import MOIDS, ManagedEntityImpl

if TYPE_CHECKING:
    from .._endpoint import Endpoint

__all__ = ["FolderImpl"]


class FolderImpl(ManagedEntityImpl):
    vim_type = vim.Folder
    child_types: ClassVar[dict[str, list[str]]] = {
        MOIDS["root"]: ["Folder", "Datacenter"],
        MOIDS["vmfolder"]: ["Folder", "VirtualMachine", "VirtualApp"],
        MOIDS["hostfolder"]: ["Folder", "ComputeResource"],
        MOIDS["dsfolder"]: ["Folder", "Datastore"],
        MOIDS["netfolder"]: ["Folder", "Network"],
    }
    names: ClassVar[dict[str, tuple[str, str | None, Any]]] = {
        MOIDS["root"]: ("ha-folder-root", None, None),
        MOIDS["vmfolder"]: ("vm", MOIDS["dc"], vim.Datacenter),
        MOIDS["hostfolder"]: ("host", MOIDS["dc"], vim.Datacenter),
        MOIDS["dsfolder"]: ("datastore", MOIDS["dc"], vim.Datacenter),
        MOIDS["netfolder"]: ("network", MOIDS["dc"], vim.Datacenter),
    }

    def __init__(self, ep: Endpoint, moid: str) -> None:
        super().__init__(ep, moid)
        self.entity_name, self.parent_id, self.parent_type = self.names[moid]

    def p_childType(self) -> list[str]:  # noqa: N802
        return list(self.child_types[self.moid])

    def p_childEntity(self) -> list[Any]:  # noqa: N802
        return self.children()

    def children(self) -> list[Any]:
        if self.moid == MOIDS["root"]:
            return [vim.Datacenter(MOIDS["dc"])]
        if self.moid == MOIDS["vmfolder"]:
            return [vim.VirtualMachine(m) for m in self.ep.host.vms]
        if self.moid == MOIDS["hostfolder"]:
            return [vim.ComputeResource(MOIDS["compute"])]
        if self.moid == MOIDS["dsfolder"]:
            return list(self.ep.inventory.datastore_refs().values())
        if self.moid == MOIDS["netfolder"]:
            return list(self.ep.inventory.network_refs().values())
        return []
