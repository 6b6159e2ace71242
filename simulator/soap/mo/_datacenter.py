"""Datacenter: the one datacenter of a standalone host (``ha-datacenter``)."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from ._base import MOIDS, ManagedEntityImpl

__all__ = ["DatacenterImpl"]


class DatacenterImpl(ManagedEntityImpl):
    vim_type = vim.Datacenter
    entity_name = "ha-datacenter"
    parent_id = MOIDS["root"]

    def p_vmFolder(self) -> Any:  # noqa: N802
        return vim.Folder(MOIDS["vmfolder"])

    def p_hostFolder(self) -> Any:  # noqa: N802
        return vim.Folder(MOIDS["hostfolder"])

    def p_datastoreFolder(self) -> Any:  # noqa: N802
        return vim.Folder(MOIDS["dsfolder"])

    def p_networkFolder(self) -> Any:  # noqa: N802
        return vim.Folder(MOIDS["netfolder"])

    def p_datastore(self) -> list[Any]:
        return list(self.ep.inventory.datastore_refs().values())

    def p_network(self) -> list[Any]:
        return list(self.ep.inventory.network_refs().values())

    def children(self) -> list[Any]:
        return [vim.Folder(MOIDS[k]) for k in ("vmfolder", "hostfolder", "dsfolder", "netfolder")]
