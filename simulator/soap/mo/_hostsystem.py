"""ComputeResource, HostSystem and ResourcePool: the host itself and its root pool."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim

from . import _vmprops
from ._base import MOIDS, ManagedEntityImpl, soap
from ._hosthardware import hardware_for, hardware_info, hardware_summary

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["ComputeResourceImpl", "HostSystemImpl", "ResourcePoolImpl"]


class ComputeResourceImpl(ManagedEntityImpl):
    vim_type = vim.ComputeResource
    parent_id = MOIDS["hostfolder"]

    def p_name(self) -> str:
        return self.ep.inventory.about().host_name

    def p_host(self) -> list[Any]:
        return [vim.HostSystem(MOIDS["host"])]

    def p_resourcePool(self) -> Any:  # noqa: N802
        return vim.ResourcePool(MOIDS["pool"])

    def p_datastore(self) -> list[Any]:
        return list(self.ep.inventory.datastore_refs().values())

    def p_network(self) -> list[Any]:
        return list(self.ep.inventory.network_refs().values())

    def p_summary(self) -> Any:
        hw = hardware_for(self.ep.inventory.about().version)
        return vim.ComputeResource.Summary(
            totalCpu=hw.cores * hw.mhz,
            totalMemory=hw.memory,
            numCpuCores=hw.cores,
            numCpuThreads=hw.threads,
            effectiveCpu=hw.cores * hw.mhz,
            effectiveMemory=hw.memory // 1024**2,
            numHosts=1,
            numEffectiveHosts=1,
            overallStatus="green",
        )

    def children(self) -> list[Any]:
        return [vim.HostSystem(MOIDS["host"]), vim.ResourcePool(MOIDS["pool"])]


class HostSystemImpl(ManagedEntityImpl):
    vim_type = vim.HostSystem
    parent_id = MOIDS["compute"]
    parent_type = vim.ComputeResource

    def p_name(self) -> str:
        return self.ep.inventory.about().host_name

    def p_vm(self) -> list[Any]:
        return [vim.VirtualMachine(m) for m in self.ep.host.vms]

    def p_datastore(self) -> list[Any]:
        return list(self.ep.inventory.datastore_refs().values())

    def p_network(self) -> list[Any]:
        return list(self.ep.inventory.network_refs().values())

    def p_datastoreBrowser(self) -> Any:  # noqa: N802
        return vim.host.DatastoreBrowser(MOIDS["browser"])

    def p_runtime(self) -> Any:
        return vim.host.RuntimeInfo(
            connectionState="connected",
            powerState="poweredOn",
            inMaintenanceMode=False,
            standbyMode="none",
            bootTime=_vmprops.ts(self.ep.boot_time),
        )

    def p_hardware(self) -> Any:
        about = self.ep.inventory.about()
        return hardware_info(hardware_for(about.version), about.host_name)

    def p_summary(self) -> Any:
        about = self.ep.inventory.about_info()
        return vim.host.Summary(
            host=self.ref,
            hardware=hardware_summary(hardware_for(about.version), self.ep.inventory.about().host_name),
            runtime=self.p_runtime(),
            config=vim.host.Summary.ConfigSummary(
                name=self.ep.inventory.about().host_name,
                port=443,
                product=about,
                vmotionEnabled=False,
                faultToleranceEnabled=False,
            ),
            quickStats=vim.host.Summary.QuickStats(overallCpuUsage=0, overallMemoryUsage=0),
            overallStatus="green",
            rebootRequired=False,
            managementServerIp=None,
        )


class ResourcePoolImpl(ManagedEntityImpl):
    vim_type = vim.ResourcePool
    entity_name = "Resources"
    parent_id = MOIDS["compute"]
    parent_type = vim.ComputeResource

    def p_owner(self) -> Any:
        return vim.ComputeResource(MOIDS["compute"])

    def p_vm(self) -> list[Any]:
        return [vim.VirtualMachine(m) for m in self.ep.host.vms]

    def p_resourcePool(self) -> list[Any]:  # noqa: N802
        return []

    def children(self) -> list[Any]:
        return self.p_vm()

    @soap
    def ImportVApp(self, ctx: Context, spec: Any, folder: Any = None, host: Any = None) -> Any:  # noqa: N802
        """An import lease for an OVF import (API 4.0; ``mo/_nfclease.py`` ``start_import``)."""
        from ._nfclease import start_import

        return start_import(self.ep, ctx, spec, folder)
