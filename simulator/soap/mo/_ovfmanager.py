"""OvfManager (vSphere API 4.0): ``CreateDescriptor`` for an export, ``CreateImportSpec`` for the
way back, which ``ResourcePool.ImportVApp`` (``_hostsystem.py``) takes with an import lease.

An exported VM is restored as an OVF tool does it: the descriptor (``simulator/_ovf.py``),
``CreateImportSpec`` (a ``VirtualMachineImportSpec``: the ``ConfigSpec`` of a new VM with new
disks, and one ``fileItem`` per disk whose ``deviceId`` the import lease's ``importKey``
names), ``ImportVApp`` (the VM made, a lease ``ready`` with one upload URL per disk), an upload
of each stream-optimized VMDK, ``HttpNfcLeaseComplete``. A host of API 2.5 has no OvfManager
(``ServiceContent.ovfManager`` unset; the type is not served).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from ..._errors import InvalidInputError
from ..._ovf import OvfDisk, OvfSystem, parse_ovf, render_ovf
from ._base import MOIDS, MOImpl, soap

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["OvfManagerImpl", "import_key"]


def import_key(vm_name: str, disk: OvfDisk) -> str:
    """The ``deviceId`` / ``importKey`` of a disk of an import (as a host names them)."""
    controller = "VirtualLsiLogicController0" if disk.controller == "scsi" else "VirtualIDEController0"
    return f"/{vm_name}/{controller}:{disk.unit}"


class OvfManagerImpl(MOImpl):
    vim_type = vim.OvfManager
    static_moids = ("ha-ovf-manager",)
    content_property = "ovfManager"

    @soap
    def CreateDescriptor(self, ctx: Context, obj: Any, cdp: Any) -> Any:  # noqa: N802
        """The OVF envelope of VM ``obj``: its CPUs, memory, disks (as the snapshot ``cdp.snapshot``
        sees them, else now), network and ``.vmx`` settings; ``cdp.ovfFiles`` (what the client
        downloaded through the lease) name the files and give their sizes."""
        host = self.ep.host
        if not isinstance(obj, vim.VirtualMachine):
            raise vmodl.fault.NotSupported(msg="CreateDescriptor: vcbsim describes virtual machines only.")
        vm = host.vms.get(obj._moId)
        if vm is None:
            raise vmodl.fault.ManagedObjectNotFound(msg=f"The object '{obj._moId}' has already been deleted", obj=obj)
        files = {f.deviceId: f for f in (getattr(cdp, "ovfFiles", None) or [])}
        snap = host.find_snapshot(vm, cdp.snapshot._moId) if getattr(cdp, "snapshot", None) is not None else None
        disks = []
        for i, d in enumerate(vm.disks):
            if snap is not None and d.key not in snap.layers:
                continue
            key = f"/{vm.moref}/VirtualLsiLogicController0:{d.unit_number}"
            f = files.get(key)
            disks.append(OvfDisk(href=f.path if f is not None else f"{vm.name}-disk{i}.vmdk", capacity=d.capacity,
                                 unit=d.unit_number, size=int(f.size) if f is not None and f.size else None))
        system = OvfSystem(
            name=(getattr(cdp, "name", None) or vm.name), guest_id=vm.guest_id, num_cpus=vm.num_cpus,
            memory_mb=vm.memory_mb, disks=disks, config=dict(vm.extra_config),
            annotation=getattr(cdp, "description", None) or "",
        )
        return vim.OvfManager.CreateDescriptorResult(ovfDescriptor=render_ovf(system), includeImageFiles=False)

    @soap
    def CreateImportSpec(  # noqa: N802
        self, ctx: Context, ovfDescriptor: str, resourcePool: Any, datastore: Any, cisp: Any  # noqa: N803
    ) -> Any:
        """The spec ``ImportVApp`` takes for the OVF ``ovfDescriptor``: a new VM named
        ``cisp.entityName`` (else the descriptor's name) on ``datastore``, with new disks of
        the descriptor's capacities. A descriptor that cannot be imported is an answer with
        ``error`` set (as the host answers, not a fault)."""
        if resourcePool is None or resourcePool._moId != MOIDS["pool"]:
            raise vmodl.fault.ManagedObjectNotFound(msg="resourcePool: this host's pool is ha-root-pool.",
                                                    obj=resourcePool)
        ds = self.ep.inventory.datastore_info(datastore._moId).name if datastore is not None else None
        try:
            system = parse_ovf(ovfDescriptor)
        except InvalidInputError as exc:
            return vim.OvfManager.CreateImportSpecResult(error=[vmodl.fault.InvalidArgument(msg=str(exc))])
        name = getattr(cisp, "entityName", None) or system.name
        scsi = vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.VirtualLsiLogicController(
            key=-100, busNumber=0, sharedBus="noSharing"))
        changes = [scsi]
        items = []
        for i, d in enumerate(system.disks):
            changes.append(vim.vm.device.VirtualDeviceSpec(
                operation="add", fileOperation="create",
                device=vim.vm.device.VirtualDisk(
                    key=-(200 + i), controllerKey=-100, unitNumber=d.unit, capacityInKB=d.capacity // 1024,
                    backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                        fileName=f"[{ds}]" if ds else "", diskMode="persistent", thinProvisioned=True),
                ),
            ))
            items.append(vim.OvfManager.FileItem(deviceId=import_key(name, d), path=d.href, size=d.size or 0,
                                                 create=True))
        config = vim.vm.ConfigSpec(
            name=name, guestId=system.guest_id, numCPUs=system.num_cpus, memoryMB=system.memory_mb,
            annotation=system.annotation or None,
            files=vim.vm.FileInfo(vmPathName=f"[{ds}]" if ds else None),
            extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in sorted(system.config.items())] or None,
            deviceChange=changes,
        )
        spec = vim.vm.VmImportSpec(configSpec=config)
        return vim.OvfManager.CreateImportSpecResult(importSpec=spec, fileItem=items)
