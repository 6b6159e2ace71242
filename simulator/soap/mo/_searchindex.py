"""SearchIndex: finding VMs and hosts by uuid, IP, DNS name and inventory path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from ._base import MOIDS, ManagedEntityImpl, MOImpl, soap
from ._vmview import VMView

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["SearchIndexImpl"]


class SearchIndexImpl(MOImpl):
    vim_type = vim.SearchIndex

    def _vms(self) -> Sequence[VMView]:
        return [VMView(self.ep.host, vm) for vm in self.ep.host.vms.values()]

    def _in_dc(self, datacenter: Any) -> None:
        if datacenter is not None and datacenter._moId != MOIDS["dc"]:
            raise vmodl.fault.ManagedObjectNotFound(
                msg=f"The object '{datacenter._moId}' has already been deleted or has not been completely created",
                obj=datacenter,
            )

    def _match_uuid(self, uuid: str, vm_search: bool | None, instance: bool | None) -> list[Any]:
        if vm_search is False:
            host_uuid = self.ep.inventory.about().instance_uuid
            return [vim.HostSystem(MOIDS["host"])] if host_uuid and host_uuid.lower() == uuid.lower() else []
        out = []
        for vm in self._vms():
            value = vm.instance_uuid if instance else vm.uuid
            if value.lower() == uuid.lower():
                out.append(vim.VirtualMachine(vm.moref))
        return out

    def _match(self, attr: str, value: str, vm_search: bool | None) -> list[Any]:
        if vm_search is False:
            about = self.ep.inventory.about()
            return [vim.HostSystem(MOIDS["host"])] if attr == "host_name" and about.host_name.lower() == value.lower() else []
        out = []
        for vm in self._vms():
            if not (vm.tools_running and vm.power_state == "poweredOn"):
                continue  # IP and DNS name are reported by VMware Tools only
            got = getattr(vm, attr)
            if got and got.lower() == value.lower():
                out.append(vim.VirtualMachine(vm.moref))
        return out

    @soap
    def FindByUuid(  # noqa: N802
        self, ctx: Context, uuid: str, vmSearch: bool, datacenter: Any = None, instanceUuid: bool | None = None  # noqa: N803
    ) -> Any:
        self._in_dc(datacenter)
        found = self._match_uuid(uuid, vmSearch, instanceUuid)
        return found[0] if found else None

    @soap
    def FindAllByUuid(  # noqa: N802
        self, ctx: Context, uuid: str, vmSearch: bool, datacenter: Any = None, instanceUuid: bool | None = None  # noqa: N803
    ) -> list[Any]:
        self._in_dc(datacenter)
        return self._match_uuid(uuid, vmSearch, instanceUuid)

    @soap
    def FindByIp(self, ctx: Context, ip: str, vmSearch: bool, datacenter: Any = None) -> Any:  # noqa: N802, N803
        self._in_dc(datacenter)
        found = self._match("ip_address", ip, vmSearch)
        return found[0] if found else None

    @soap
    def FindAllByIp(self, ctx: Context, ip: str, vmSearch: bool, datacenter: Any = None) -> list[Any]:  # noqa: N802, N803
        self._in_dc(datacenter)
        return self._match("ip_address", ip, vmSearch)

    @soap
    def FindByDnsName(self, ctx: Context, dnsName: str, vmSearch: bool, datacenter: Any = None) -> Any:  # noqa: N802, N803
        self._in_dc(datacenter)
        found = self._match("host_name", dnsName, vmSearch)
        return found[0] if found else None

    @soap
    def FindAllByDnsName(  # noqa: N802
        self, ctx: Context, dnsName: str, vmSearch: bool, datacenter: Any = None  # noqa: N803
    ) -> list[Any]:
        self._in_dc(datacenter)
        return self._match("host_name", dnsName, vmSearch)

    @soap
    def FindByInventoryPath(self, ctx: Context, inventoryPath: str) -> Any:  # noqa: N802, N803
        parts = [p for p in inventoryPath.strip("/").split("/") if p]
        current: Any = self.ep.registry.lookup(vim.Folder(MOIDS["root"]))
        for part in parts:
            nxt = None
            for child in current.children() if isinstance(current, ManagedEntityImpl) else []:
                cimpl = self.ep.registry.lookup(child)
                if isinstance(cimpl, ManagedEntityImpl) and cimpl.p_name() == part:
                    nxt = cimpl
                    break
            if nxt is None:
                return None
            current = nxt
        return current.ref if parts else None

    @soap
    def FindChild(self, ctx: Context, entity: Any, name: str) -> Any:  # noqa: N802
        impl = self.ep.registry.require(entity)
        for child in impl.children() if isinstance(impl, ManagedEntityImpl) else []:
            cimpl = self.ep.registry.lookup(child)
            if isinstance(cimpl, ManagedEntityImpl) and cimpl.p_name() == name:
                return child
        return None

    @soap
    def FindByDatastorePath(self, ctx: Context, datacenter: Any, path: str) -> Any:  # noqa: N802
        self._in_dc(datacenter)
        for vm in self._vms():
            if vm.vmx_path == path:
                return vim.VirtualMachine(vm.moref)
        return None
