"""VirtualMachine: its properties (built by ``_vmprops.py``) and methods."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .._backend import VMInfo
from . import _vmprops
from ._base import MOIDS, ManagedEntityImpl, soap

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["VirtualMachineImpl"]


class VirtualMachineImpl(ManagedEntityImpl):
    vim_type = vim.VirtualMachine
    parent_id = MOIDS["vmfolder"]

    def vm(self) -> VMInfo:
        info = self._memo.get("_vminfo")
        if info is None:
            info = self._memo["_vminfo"] = self.ep.backend.vm(self.moid)
        return info  # type: ignore[no-any-return]

    def p_name(self) -> str:
        return self.vm().name

    def p_config(self) -> Any:
        return _vmprops.build_config(self.vm(), ds_ref=self.ep.datastore_ref, net_ref=self.ep.network_ref)

    def p_runtime(self) -> Any:
        return _vmprops.build_runtime(self.vm(), vim.HostSystem(MOIDS["host"]))

    def p_guest(self) -> Any:
        return _vmprops.build_guest(self.vm())

    def p_guestHeartbeatStatus(self) -> str:  # noqa: N802
        vm = self.vm()
        return "green" if vm.tools_running and vm.power_state == "poweredOn" else "gray"

    def p_summary(self) -> Any:
        return _vmprops.build_summary(self.vm(), self.ref, vim.HostSystem(MOIDS["host"]), self.ep.now())

    def p_capability(self) -> Any:
        return _vmprops.build_capability(self.vm())

    def p_layout(self) -> Any:
        return _vmprops.build_layout(self.vm())

    def p_layoutEx(self) -> Any:  # noqa: N802
        return _vmprops.build_layout_ex(self.vm(), self.ep.now())

    def p_storage(self) -> Any:
        return _vmprops.build_storage(self.vm(), self.ep.datastore_refs(), self.ep.now())

    def p_snapshot(self) -> Any:
        return _vmprops.build_snapshot_info(self.vm(), self.ref, vim.vm.Snapshot)

    def p_rootSnapshot(self) -> list[Any]:  # noqa: N802
        return [vim.vm.Snapshot(s.moref) for s in self.vm().snapshots]

    def p_datastore(self) -> list[Any]:
        refs = self.ep.datastore_refs()
        return [refs[n] for n in self.vm().datastores if n in refs]

    def p_network(self) -> list[Any]:
        refs = self.ep.network_refs()
        return [refs[n.network] for n in self.vm().nics if n.network in refs]

    def p_resourcePool(self) -> Any:  # noqa: N802
        return vim.ResourcePool(MOIDS["pool"])

    # --- methods -----------------------------------------------------------------------
    def _task(self, ctx: Context, method: str, fn: Callable[[], Any]) -> Any:
        return self.ep.tasks.submit(ctx, getattr(vim.VirtualMachine, method), self.moid, fn)

    @soap
    def CreateSnapshot_Task(  # noqa: N802
        self, ctx: Context, name: str, description: str | None = None, memory: bool = False, quiesce: bool = False
    ) -> Any:
        be = self.ep.backend

        def run() -> Any:
            moref = be.create_snapshot(self.moid, name, description or "", bool(memory), bool(quiesce))
            self.ep.note_snapshot(moref, self.moid)
            return vim.vm.Snapshot(moref)

        return self._task(ctx, "CreateSnapshot_Task", run)

    @soap
    def RemoveAllSnapshots_Task(self, ctx: Context, consolidate: bool | None = None, spec: Any = None) -> Any:  # noqa: N802
        be = self.ep.backend

        def run() -> None:
            be.remove_all_snapshots(self.moid, consolidate=consolidate is not False)
            self.ep.forget_snapshots(self.moid)

        return self._task(ctx, "RemoveAllSnapshots_Task", run)

    @soap
    def RevertToCurrentSnapshot_Task(  # noqa: N802
        self, ctx: Context, host: Any = None, suppressPowerOn: bool | None = None  # noqa: N803
    ) -> Any:
        be = self.ep.backend
        current = self.vm().current_snapshot
        if current is None:
            raise vim.fault.NotFound(msg="The virtual machine has no current snapshot.")
        return self._task(
            ctx,
            "RevertToCurrentSnapshot_Task",
            lambda: be.revert_to_snapshot(self.moid, current, suppress_power_on=bool(suppressPowerOn)),
        )

    @soap
    def ConsolidateVMDisks_Task(self, ctx: Context) -> Any:  # noqa: N802
        be = self.ep.backend
        return self._task(ctx, "ConsolidateVMDisks_Task", lambda: be.consolidate_disks(self.moid))

    @soap
    def PowerOnVM_Task(self, ctx: Context, host: Any = None) -> Any:  # noqa: N802
        be = self.ep.backend
        return self._task(ctx, "PowerOnVM_Task", lambda: be.power_on(self.moid))

    @soap
    def PowerOffVM_Task(self, ctx: Context) -> Any:  # noqa: N802
        be = self.ep.backend
        return self._task(ctx, "PowerOffVM_Task", lambda: be.power_off(self.moid))

    @soap
    def ReconfigVM_Task(self, ctx: Context, spec: Any) -> Any:  # noqa: N802
        ignored = {"dynamicType", "dynamicProperty", "changeTrackingEnabled", "changeVersion"}
        other = [
            p.name
            for p in spec._GetPropertyList()
            if p.name not in ignored and getattr(spec, p.name) not in (None, [], "")
        ]
        if other:
            raise vmodl.fault.NotSupported(
                msg="vcbsim reconfigures changeTrackingEnabled only; also given: " + ", ".join(other)
            )
        if spec.changeTrackingEnabled and not self.vm().change_tracking_supported:
            raise vmodl.fault.NotSupported(msg="Changed block tracking is not supported by this host.")
        be = self.ep.backend
        cbt = spec.changeTrackingEnabled
        return self._task(ctx, "ReconfigVM_Task", lambda: be.reconfigure(self.moid, change_tracking=cbt))

    @soap
    def QueryChangedDiskAreas(  # noqa: N802
        self, ctx: Context, deviceKey: int, startOffset: int, changeId: str, snapshot: Any = None  # noqa: N803
    ) -> Any:
        snap_id = snapshot._moId if snapshot is not None else None
        if snap_id is not None:
            owner = self.ep.find_snapshot(snap_id)
            if owner is None or owner[0].moref != self.moid:
                raise vmodl.fault.ManagedObjectNotFound(
                    msg=f"The object '{snap_id}' has already been deleted or has not been completely created",
                    obj=snapshot,
                )
        res = self.ep.backend.query_changed_disk_areas(self.moid, snap_id, deviceKey, startOffset, changeId)
        return vim.VirtualMachine.DiskChangeInfo(
            startOffset=res.start_offset,
            length=res.length,
            changedArea=[
                vim.VirtualMachine.DiskChangeInfo.DiskChangeExtent(start=s, length=n) for s, n in res.areas
            ],
        )
