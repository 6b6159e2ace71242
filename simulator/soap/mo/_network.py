"""Network: the host's port groups."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from ._base import MOIDS, ManagedEntityImpl
from ._vmview import network_name

__all__ = ["NetworkImpl"]


class NetworkImpl(ManagedEntityImpl):
    """A port group of the host's standard switch (``VM Network``)."""

    vim_type = vim.Network
    parent_id = MOIDS["netfolder"]

    def p_name(self) -> str:
        return self.ep.inventory.network_name(self.moid)

    def p_summary(self) -> Any:
        return vim.Network.Summary(network=self.ref, name=self.p_name(), accessible=True, ipPoolName="")

    def p_host(self) -> list[Any]:
        return [vim.HostSystem(MOIDS["host"])]

    def p_vm(self) -> list[Any]:
        name = self.p_name()
        return [vim.VirtualMachine(vm.moref) for vm in self.ep.host.vms.values() if network_name(vm) == name]
