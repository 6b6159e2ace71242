"""VirtualMachine: its properties (built by ``_vmprops.py`` from a ``VMView``) and methods, over the
``Host`` (whose operations validate, inject faults, trace and raise the real faults)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from . import _devicechange, _vmprops
from ._base import MOIDS, ManagedEntityImpl, soap
from ._nfclease import start_export
from ._vmview import VMView, network_name

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["VirtualMachineImpl"]


class VirtualMachineImpl(ManagedEntityImpl):
    vim_type = vim.VirtualMachine
    parent_id = MOIDS["vmfolder"]

    def vm(self) -> VMView:
        return self.ep.inventory.vm_view(self.moid)

    def p_name(self) -> str:
        return str(self.ep.inventory.host_vm(self.moid).name)

    def p_config(self) -> Any:
        return _vmprops.build_config(self.vm(), ds_ref=self.ep.inventory.datastore_ref, net_ref=self.ep.inventory.network_ref)

    # paths read without building the whole config (the collector's pp_ getters); each is the
    # value the full ``config`` has at that path (tests/unit/soap/test_subpaths.py)
    def pp_config_name(self) -> str:
        return str(self.ep.inventory.host_vm(self.moid).name)

    def pp_config_uuid(self) -> str:
        return str(self.ep.inventory.host_vm(self.moid).uuid)

    def pp_config_instanceUuid(self) -> str:  # noqa: N802
        return str(self.ep.inventory.host_vm(self.moid).instance_uuid)

    def pp_config_guestId(self) -> str:  # noqa: N802
        return str(self.ep.inventory.host_vm(self.moid).guest_id)

    def pp_config_guestFullName(self) -> str:  # noqa: N802
        return str(self.ep.inventory.host_vm(self.moid).guest_full_name)

    def pp_config_template(self) -> bool:
        return False

    def pp_config_changeTrackingEnabled(self) -> bool:  # noqa: N802
        return bool(self.vm().change_tracking)

    def pp_config_files_vmPathName(self) -> str:  # noqa: N802
        return str(self.ep.inventory.host_vm(self.moid).vmx_path)

    def pp_config_hardware_numCPU(self) -> int:  # noqa: N802
        return int(self.ep.inventory.host_vm(self.moid).num_cpus)

    def pp_config_hardware_memoryMB(self) -> int:  # noqa: N802
        return int(self.ep.inventory.host_vm(self.moid).memory_mb)

    def pp_config_hardware_device(self) -> list[Any]:
        vm = self.vm()
        return _vmprops.build_devices(vm, vm.disks, self.ep.inventory.datastore_ref, self.ep.inventory.network_ref)

    def pp_runtime_powerState(self) -> str:  # noqa: N802
        return str(self.ep.inventory.host_vm(self.moid).power_state)

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
        return _vmprops.build_storage(self.vm(), self.ep.inventory.datastore_refs(), self.ep.now())

    def p_snapshot(self) -> Any:
        return _vmprops.build_snapshot_info(self.vm(), self.ref, vim.vm.Snapshot)

    def p_rootSnapshot(self) -> list[Any]:  # noqa: N802
        return [vim.vm.Snapshot(s.moref) for s in self.vm().snapshots]

    def p_datastore(self) -> list[Any]:
        refs = self.ep.inventory.datastore_refs()
        return [refs[n] for n in self.vm().datastores if n in refs]

    def p_network(self) -> list[Any]:
        refs = self.ep.inventory.network_refs()
        return [refs[n] for n in (network_name(self.ep.inventory.host_vm(self.moid)),) if n in refs]

    def p_resourcePool(self) -> Any:  # noqa: N802
        return vim.ResourcePool(MOIDS["pool"])

    # --- methods -----------------------------------------------------------------------
    def _task(self, ctx: Context, method: str, fn: Callable[[], Any]) -> Any:
        return self.ep.tasks.submit(ctx, getattr(vim.VirtualMachine, method), self.moid, fn)

    def _void_task(self, ctx: Context, method: str, fn: Callable[[], object]) -> Any:
        """A task whose result is unset (the host's own return value, merge statistics and
        the like, is not the API's)."""

        def run() -> None:
            fn()

        return self._task(ctx, method, run)

    @soap
    def CreateSnapshot_Task(  # noqa: N802
        self, ctx: Context, name: str, description: str | None = None, memory: bool = False, quiesce: bool = False
    ) -> Any:
        host = self.ep.host

        def run() -> Any:
            moref = host.create_snapshot(self.moid, name, description or "", bool(memory), bool(quiesce)).moref
            self.ep.inventory.note_snapshot(moref, self.moid)
            return vim.vm.Snapshot(moref)

        return self._task(ctx, "CreateSnapshot_Task", run)

    @soap
    def CreateSnapshotEx_Task(  # noqa: N802
        self, ctx: Context, name: str, description: str | None = None, memory: bool = False,
        quiesceSpec: Any = None,  # noqa: N803
    ) -> Any:
        """API 6.5: a quiesce spec instead of the flag (``Host.create_snapshot_ex``)."""
        host = self.ep.host

        def run() -> Any:
            moref = host.create_snapshot_ex(self.moid, name, description or "", bool(memory), quiesceSpec).moref
            self.ep.inventory.note_snapshot(moref, self.moid)
            return vim.vm.Snapshot(moref)

        return self._task(ctx, "CreateSnapshotEx_Task", run)

    @soap
    def RemoveAllSnapshots_Task(self, ctx: Context, consolidate: bool | None = None, spec: Any = None) -> Any:  # noqa: N802
        host = self.ep.host

        def run() -> None:
            host.remove_all_snapshots(self.moid, consolidate=consolidate is not False)
            self.ep.inventory.forget_snapshots(self.moid)

        return self._task(ctx, "RemoveAllSnapshots_Task", run)

    @soap
    def RevertToCurrentSnapshot_Task(  # noqa: N802
        self, ctx: Context, host: Any = None, suppressPowerOn: bool | None = None  # noqa: N803
    ) -> Any:
        host = self.ep.host
        current = self.vm().current_snapshot
        if current is None:
            raise vim.fault.NotFound(msg="The virtual machine has no current snapshot.")
        return self._void_task(ctx, "RevertToCurrentSnapshot_Task", lambda: host.revert_to_snapshot(self.moid, current))

    @soap
    def ConsolidateVMDisks_Task(self, ctx: Context) -> Any:  # noqa: N802
        host = self.ep.host
        return self._void_task(ctx, "ConsolidateVMDisks_Task", lambda: host.consolidate_disks(self.moid))

    @soap
    def PowerOnVM_Task(self, ctx: Context, host: Any = None) -> Any:  # noqa: N802
        host = self.ep.host
        return self._void_task(ctx, "PowerOnVM_Task", lambda: host.power_on(self.moid))

    @soap
    def PowerOffVM_Task(self, ctx: Context) -> Any:  # noqa: N802
        host = self.ep.host
        return self._void_task(ctx, "PowerOffVM_Task", lambda: host.power_off(self.moid))

    @soap
    def ReconfigVM_Task(self, ctx: Context, spec: Any) -> Any:  # noqa: N802
        """``changeTrackingEnabled``, ``extraConfig`` (an empty value removes the key) and
        ``deviceChange`` add/remove of a ``VirtualDisk`` (``_devicechange.py``: new or existing
        files, remove keeping or destroying them)."""
        ignored = {"dynamicType", "dynamicProperty", "changeTrackingEnabled", "changeVersion", "deviceChange",
                   "extraConfig"}
        other = [
            p.name
            for p in spec._GetPropertyList()
            if p.name not in ignored and getattr(spec, p.name) not in (None, [], "")
        ]
        if other:
            raise vmodl.fault.NotSupported(
                msg="vcbsim reconfigures changeTrackingEnabled, extraConfig and disk devices only; also given: "
                + ", ".join(other)
            )
        if spec.changeTrackingEnabled and not self.vm().change_tracking_supported:
            raise vmodl.fault.NotSupported(msg="Changed block tracking is not supported by this host.")
        host = self.ep.host
        cbt = spec.changeTrackingEnabled
        has_devices = _devicechange.has_device_change(spec)
        extra = {str(o.key): "" if o.value is None else str(o.value) for o in (spec.extraConfig or [])}

        def run() -> None:
            # a device spec the host cannot follow fails the task, as hostd's validation does
            changes = _devicechange.disk_changes(spec) if has_devices else []
            if changes:
                _devicechange.apply_disk_changes(host, self.moid, changes)
            if cbt is not None or extra or not changes:
                host.reconfigure(self.moid, change_tracking=cbt, extra_config=extra or None)

        return self._void_task(ctx, "ReconfigVM_Task", run)

    # --- life cycle (issue 16, simulator/_vmlifecycle.py) ---------------------------------
    @soap
    def UnregisterVM(self, ctx: Context) -> None:  # noqa: N802
        """``UnregisterVM`` (API 2.0, not a task): out of the inventory, files kept;
        ``InvalidPowerState`` when powered on."""
        self.ep.host.unregister_vm(self.moid)
        self.ep.inventory.forget_snapshots(self.moid)

    @soap
    def Destroy_Task(self, ctx: Context) -> Any:  # noqa: N802
        """``Destroy_Task`` (API 2.0): unregistered and its files deleted; ``InvalidPowerState``
        when powered on."""
        host = self.ep.host

        def run() -> None:
            host.destroy_vm(self.moid)
            self.ep.inventory.forget_snapshots(self.moid)

        return self._task(ctx, "Destroy_Task", run)

    @soap
    def ExportVm(self, ctx: Context) -> Any:  # noqa: N802
        """An export lease on the powered-off VM's disks (API 4.0; ``mo/_nfclease.py``)."""
        return start_export(self.ep, ctx, vim.VirtualMachine.ExportVm, self.moid, None)

    @soap
    def QueryChangedDiskAreas(  # noqa: N802
        self, ctx: Context, deviceKey: int, startOffset: int, changeId: str, snapshot: Any = None  # noqa: N803
    ) -> Any:
        snap_id = snapshot._moId if snapshot is not None else None
        if snap_id is not None:
            owner = self.ep.inventory.find_snapshot(snap_id)
            if owner is None or owner[0].moref != self.moid:
                raise vmodl.fault.ManagedObjectNotFound(
                    msg=f"The object '{snap_id}' has already been deleted or has not been completely created",
                    obj=snapshot,
                )
        res = self.ep.host.query_changed_disk_areas(self.moid, snap_id, deviceKey, startOffset, changeId)
        return vim.VirtualMachine.DiskChangeInfo(
            startOffset=res.start_offset,
            length=res.length,
            changedArea=[
                vim.VirtualMachine.DiskChangeInfo.DiskChangeExtent(start=s, length=n) for s, n in res.changed_area
            ],
        )
