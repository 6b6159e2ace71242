"""Folder: the root folder and the datacenter's four folders; the VM folder creates and
registers VMs (``CreateVM_Task``, ``RegisterVM_Task``: ``simulator/_vmlifecycle.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pyVmomi import vim, vmodl

from . import _devicechange
from ._base import MOIDS, ManagedEntityImpl, soap

if TYPE_CHECKING:
    from .._endpoint import Context, Endpoint

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

    # --- restore surface (issue 16): VMs made and registered in the VM folder ----------------

    def _vm_folder_task(self, ctx: Context, method: str, fn: Callable[[], Any]) -> Any:
        if self.moid != MOIDS["vmfolder"]:
            raise vmodl.fault.NotSupported(msg=f"{method}: this folder holds no virtual machines (use {MOIDS['vmfolder']}).")
        return self.ep.tasks.submit_for(ctx, getattr(vim.Folder, method), self.ref, self.entity_name, fn)

    @soap
    def CreateVM_Task(self, ctx: Context, config: Any, pool: Any = None, host: Any = None) -> Any:  # noqa: N802
        """``Folder.CreateVM_Task`` (API 2.0): a powered-off VM from a ``ConfigSpec``: ``name``,
        ``guestId``, ``memoryMB``, ``numCPUs``, ``files.vmPathName`` (``[datastore]`` or a path
        in it: the datastore), ``extraConfig``, and disks in ``deviceChange`` (new with
        ``fileOperation=create``, or existing files). Faults as ``Host.create_vm`` gives them
        (``DuplicateName``, ``FileAlreadyExists``, ``InvalidDeviceSpec``, ``InvalidDatastore``)."""
        _check_pool(pool)
        the_host = self.ep.host
        name = config.name
        if not name:
            raise vmodl.fault.InvalidArgument(msg="config.name: a VM needs a name.", invalidProperty="config.name")
        vmx = (config.files.vmPathName if config.files is not None else None) or ""
        datastore = vmx[1 : vmx.index("]")] if vmx.startswith("[") and "]" in vmx else None
        if datastore is None:
            raise vmodl.fault.InvalidArgument(
                msg=f"config.files.vmPathName {vmx!r}: expected '[datastore]' or a path on one.",
                invalidProperty="config.files.vmPathName",
            )
        extra = {o.key: str(o.value) for o in (config.extraConfig or [])}

        def run() -> Any:
            disks = [c.spec for c in _devicechange.disk_changes(config, creating=True) if c.spec is not None]
            vm = the_host.create_vm(
                name, datastore=datastore, guest_id=config.guestId or None,
                memory_mb=int(config.memoryMB or 1024), num_cpus=int(config.numCPUs or 1),
                disks=disks, extra_config=extra,
            )
            return vim.VirtualMachine(vm.moref)

        return self._vm_folder_task(ctx, "CreateVM_Task", run)

    @soap
    def RegisterVM_Task(  # noqa: N802
        self, ctx: Context, path: str, name: str | None = None, asTemplate: bool = False,  # noqa: N803
        pool: Any = None, host: Any = None,
    ) -> Any:
        """``Folder.RegisterVM_Task`` (API 2.0): the VM whose ``.vmx`` is at ``path``
        (``Host.register_vm``: ``NotFound``, ``AlreadyExists``, ``DuplicateName``,
        ``InvalidDatastorePath``). Templates are not modelled (``NotSupported``)."""
        if asTemplate:
            raise vmodl.fault.NotSupported(msg="RegisterVM_Task: templates are not modelled by vcbsim.")
        _check_pool(pool)
        the_host = self.ep.host

        def run() -> Any:
            return vim.VirtualMachine(the_host.register_vm(path, name=name or None).moref)

        return self._vm_folder_task(ctx, "RegisterVM_Task", run)


def _check_pool(pool: Any) -> None:
    if pool is not None and pool._moId != MOIDS["pool"]:
        raise vmodl.fault.ManagedObjectNotFound(
            msg=f"The object '{pool._moId}' has already been deleted or has not been completely created",
            obj=pool,
        )
