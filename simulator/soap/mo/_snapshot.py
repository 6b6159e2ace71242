"""VirtualMachineSnapshot: a snapshot's properties and methods."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim

from . import _vmprops
from ._base import MOImpl, soap
from ._nfclease import start_export
from ._vmview import SnapshotView, VMView

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["SnapshotImpl"]

_SNAPSHOT: Any = vim.vm.Snapshot  # its task methods are not in the type stubs


class SnapshotImpl(MOImpl):
    vim_type = vim.vm.Snapshot

    def _owner_vm(self) -> str:
        """The moid of the VM holding this snapshot (cheaper than ``_owner``)."""
        vm = self.ep.inventory.snapshot_vm(self.moid)
        if vm is None:
            raise self.ep.registry.not_found(self.ref)
        return vm

    def _owner(self) -> tuple[VMView, SnapshotView]:
        found = self.ep.inventory.find_snapshot(self.moid)
        if found is None:
            raise self.ep.registry.not_found(self.ref)
        return found

    def p_vm(self) -> Any:
        return vim.VirtualMachine(self._owner_vm())

    def p_childSnapshot(self) -> list[Any]:  # noqa: N802
        return [vim.vm.Snapshot(c.moref) for c in self._owner()[1].children]

    def p_config(self) -> Any:
        vm, snap = self._owner()
        return _vmprops.build_config(
            vm, snap.disks or vm.disks, ds_ref=self.ep.inventory.datastore_ref, net_ref=self.ep.inventory.network_ref
        )

    @soap
    def RemoveSnapshot_Task(  # noqa: N802
        self, ctx: Context, removeChildren: bool, consolidate: bool | None = None  # noqa: N803
    ) -> Any:
        vm = self._owner_vm()
        host = self.ep.host

        def run() -> None:
            host.remove_snapshot(vm, self.moid, remove_children=bool(removeChildren), consolidate=consolidate is not False)
            self.ep.inventory.forget_snapshots(vm, self.moid)

        return self.ep.tasks.submit(ctx, _SNAPSHOT.RemoveSnapshot_Task, vm, run)

    @soap
    def RevertToSnapshot_Task(  # noqa: N802
        self, ctx: Context, host: Any = None, suppressPowerOn: bool | None = None  # noqa: N803
    ) -> Any:
        vm = self._owner_vm()
        host = self.ep.host
        return self.ep.tasks.submit(
            ctx, _SNAPSHOT.RevertToSnapshot_Task, vm, lambda: host.revert_to_snapshot(vm, self.moid)
        )

    @soap
    def ExportSnapshot(self, ctx: Context) -> Any:  # noqa: N802
        """An export lease on the disks as of this snapshot, the VM running on (API 5.5,
        pyVmomi ``vim.version.version9``; ``mo/_nfclease.py``)."""
        return start_export(self.ep, ctx, _SNAPSHOT.ExportSnapshot, self._owner_vm(), self.moid)
