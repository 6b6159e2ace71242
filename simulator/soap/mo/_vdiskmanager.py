"""VirtualDiskManager: disk files by datastore path (``content.virtualDiskManager``).

The type and these methods are since API 2.5 (vSphere Web Services API reference,
``VirtualDiskManager``): every profile here serves them. A standalone host names it
``ha-vdiskmanager``. The work is the host's (``simulator/_vmlifecycle.py``):

* ``CreateVirtualDisk_Task``: a blank disk (``FileBackedVirtualDiskSpec``: ``capacityKb``,
  ``adapterType``, ``diskType``); an existing file is ``FileAlreadyExists``;
* ``CopyVirtualDisk_Task``: a copy as a new disk no VM holds (a VM's disk file is read as its
  layer shows); an existing destination is ``FileAlreadyExists`` unless ``force``;
* ``DeleteVirtualDisk_Task``: ``FileNotFound``; a disk a VM uses is ``FileLocked``;
* ``QueryVirtualDiskUuid``: the disk's uuid; for a VM's disk the ``backing.uuid`` it shows.

A ``datacenter`` argument other than the host's one is ``ManagedObjectNotFound``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from ..._vmlifecycle import query_virtual_disk_uuid
from ._base import MOIDS, MOImpl, soap
from ._vmview import disk_uuid

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["VirtualDiskManagerImpl"]

_ADAPTERS = {"ide": "ide", "busLogic": "buslogic", "lsiLogic": "lsilogic", "lsiLogicSAS": "lsilogic", "pvscsi": "lsilogic"}


def _check_dc(datacenter: Any) -> None:
    if datacenter is not None and datacenter._moId != MOIDS["dc"]:
        raise vmodl.fault.ManagedObjectNotFound(
            msg=f"The object '{datacenter._moId}' has already been deleted or has not been completely created",
            obj=datacenter,
        )


class VirtualDiskManagerImpl(MOImpl):
    vim_type = vim.VirtualDiskManager
    static_moids = ("ha-vdiskmanager",)
    content_property = "virtualDiskManager"

    def _task(self, ctx: Context, method: str, fn: Callable[[], Any]) -> Any:
        dc = vim.Datacenter(MOIDS["dc"])  # a task's entity is a managed entity (as FileManager's)
        return self.ep.tasks.submit_for(ctx, getattr(vim.VirtualDiskManager, method), dc, "ha-datacenter", fn)

    @soap
    def CreateVirtualDisk_Task(self, ctx: Context, name: str, datacenter: Any = None, spec: Any = None) -> Any:  # noqa: N802
        _check_dc(datacenter)
        if spec is None or not isinstance(spec, vim.VirtualDiskManager.FileBackedVirtualDiskSpec):
            raise vmodl.fault.InvalidArgument(msg="spec: expected a FileBackedVirtualDiskSpec with capacityKb.", invalidProperty="spec")
        capacity = int(spec.capacityKb or 0) * 1024
        adapter = _ADAPTERS.get(spec.adapterType or "lsiLogic", "lsilogic")
        host = self.ep.host
        return self._task(ctx, "CreateVirtualDisk_Task", lambda: host.create_virtual_disk(name, capacity, adapter=adapter))

    @soap
    def CopyVirtualDisk_Task(  # noqa: N802
        self, ctx: Context, sourceName: str, sourceDatacenter: Any = None, destName: str = "",  # noqa: N803
        destDatacenter: Any = None, destSpec: Any = None, force: bool | None = None,  # noqa: N803
    ) -> Any:
        _check_dc(sourceDatacenter)
        _check_dc(destDatacenter)
        host = self.ep.host
        return self._task(
            ctx, "CopyVirtualDisk_Task", lambda: host.copy_virtual_disk(sourceName, destName, force=bool(force))
        )

    @soap
    def DeleteVirtualDisk_Task(self, ctx: Context, name: str, datacenter: Any = None) -> Any:  # noqa: N802
        _check_dc(datacenter)
        host = self.ep.host

        def run() -> None:
            host.delete_virtual_disk(name)

        return self._task(ctx, "DeleteVirtualDisk_Task", run)

    @soap
    def QueryVirtualDiskUuid(self, ctx: Context, name: str, datacenter: Any = None) -> str:  # noqa: N802
        _check_dc(datacenter)
        with self.ep.host.lock:
            return query_virtual_disk_uuid(self.ep.host, name, lambda vm, d: disk_uuid(vm.uuid, d.key))
