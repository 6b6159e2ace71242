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
from ..._export import device_id
from ..._ovf import OvfDisk, OvfSystem, parse_ovf, render_ovf
from ._base import MOIDS, MOImpl, soap
from ._nfclease import nvram_id
from ._vmview import network_name

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["OvfManagerImpl", "import_key"]

#: ``CreateImportSpecParams.diskProvisioning`` a host takes, and whether the disks are thin
#: (``""``: the default, thin). The hosted formats (``monolithicSparse``, ``twoGbMaxExtent*``,
#: ``sparse``) are refused with ``OvfUnsupportedDiskProvisioning`` in the result, as govmomi's
#: simulator (``simulator/ovf_manager.go``) does for all but ``monolithicSparse``, which it
#: lets fail later at import (here: at once, the same fault)
_PROVISIONING = {"": True, "thin": True, "seSparse": True, "thick": False, "flat": False, "monolithicFlat": False,
                 "eagerZeroedThick": False}
#: the key of a VM's first IDE controller (the host's standard devices, ``_devicechange.py``)
_IDE_KEY = 200

#: the ``.vmx``'s ``ethernetN.virtualDev`` as the OVF's RASD ``ResourceSubType``
_NIC_SUBTYPE = {"vlance": "PCNet32", "e1000": "E1000", "e1000e": "E1000e", "vmxnet3": "VmxNet3"}


def import_key(vm_name: str, disk: OvfDisk) -> str:
    """The ``deviceId`` / ``importKey`` of a disk of an import (as a host names them)."""
    return device_id(vm_name, disk.controller, disk.unit)


class OvfManagerImpl(MOImpl):
    vim_type = vim.OvfManager
    static_moids = ("ha-ovf-manager",)
    content_property = "ovfManager"

    def p_ovfExportOption(self) -> list[Any]:  # noqa: N802
        """The export options ``CreateDescriptor`` honours (API 5.5): only ``extraconfig``."""
        return [vim.OvfManager.OvfOptionInfo(
            option="extraconfig",
            description=vmodl.LocalizableMessage(key="extraconfig",
                                               message="Include the virtual machine's extraConfig (.vmx options)."))]

    def p_ovfImportOption(self) -> list[Any]:  # noqa: N802
        return []

    @soap
    def CreateDescriptor(self, ctx: Context, obj: Any, cdp: Any) -> Any:  # noqa: N802
        """The OVF envelope of VM ``obj``: its CPUs, memory, virtual hardware version, disks (as
        the snapshot ``cdp.snapshot`` sees them, else now: capacity and data size), network
        adapter and guest; ``cdp.ovfFiles`` (what the client downloaded through the lease, by
        the lease's device ``key``) name the files and give their sizes. The VM's
        ``extraConfig`` is written only when ``cdp.exportOption`` has ``"extraconfig"`` (API
        reference, ``OvfCreateDescriptorParams.exportOption``, the values of
        ``OvfManager.ovfExportOption``)."""
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
            f = files.get(device_id(vm.moref, d.controller, d.unit_number))
            view = host.disk_view(vm.moref, d.key, snap.moref if snap is not None else None)
            populated = sum(length for _, length in view.allocated_areas()) if hasattr(view, "allocated_areas") else None
            disks.append(OvfDisk(href=f.path if f is not None else f"{vm.name}-disk{i}.vmdk", capacity=d.capacity,
                                 unit=d.unit_number, size=int(f.size) if f is not None and f.size else None,
                                 controller=d.controller, populated=populated))
        options = set(getattr(cdp, "exportOption", None) or [])
        # the .nvram the client downloaded through the lease (API 6.7 and later hosts)
        nvram = files.get(nvram_id(vm.moref))
        system = OvfSystem(
            name=(getattr(cdp, "name", None) or vm.name), guest_id=vm.guest_id, num_cpus=vm.num_cpus,
            memory_mb=vm.memory_mb, disks=disks, annotation=getattr(cdp, "description", None) or "",
            hw_version=vm.hw_version, network=network_name(vm),
            nic_type=_NIC_SUBTYPE.get(vm.extra_config.get("ethernet0.virtualDev", "vlance"), "PCNet32"),
            extra_config=dict(vm.extra_config) if "extraconfig" in options else {},
            nvram=(nvram.path, int(nvram.size) if nvram.size else None) if nvram is not None else None,
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
        provisioning = getattr(cisp, "diskProvisioning", None) or ""
        if provisioning not in _PROVISIONING:
            # hosted formats a host does not run VMs on (govmomi's simulator answers the same)
            return vim.OvfManager.CreateImportSpecResult(error=[vim.fault.OvfUnsupportedDiskProvisioning(
                msg=f"Disk provisioning type not supported: {provisioning} (this host takes "
                    f"{', '.join(sorted(p for p in _PROVISIONING if p))}).",
                diskProvisioning=provisioning, supportedDiskProvisioning=", ".join(sorted(p for p in _PROVISIONING if p)))])
        thin = _PROVISIONING[provisioning]
        scsi = vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.VirtualLsiLogicController(
            key=-100, busNumber=0, sharedBus="noSharing"))
        changes = [scsi]
        items = []
        for i, d in enumerate(system.disks):
            backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                fileName=f"[{ds}]" if ds else "", diskMode="persistent", thinProvisioned=thin,
                eagerlyScrub=True if provisioning == "eagerZeroedThick" else None)
            changes.append(vim.vm.device.VirtualDeviceSpec(
                operation="add", fileOperation="create",
                device=vim.vm.device.VirtualDisk(
                    key=-(200 + i), controllerKey=-100 if d.controller == "scsi" else _IDE_KEY, unitNumber=d.unit,
                    capacityInKB=d.capacity // 1024, backing=backing),
            ))
            # the disk is made by ImportVApp and its content uploaded into it: ``create`` false
            # (a POST of the stream-optimized VMDK; true would mean "created by the caller, for
            # example using HTTP PUT", OvfFileItem), cimType 17 "Disk drive"
            items.append(vim.OvfManager.FileItem(deviceId=import_key(name, d), path=d.href, size=d.size or 0,
                                                 create=False, cimType=17))
        config = vim.vm.ConfigSpec(
            name=name, guestId=system.guest_id, numCPUs=system.num_cpus, memoryMB=system.memory_mb,
            version=f"vmx-{system.hw_version:02d}", annotation=system.annotation or None,
            files=vim.vm.FileInfo(vmPathName=f"[{ds}]" if ds else None),
            extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in sorted(system.extra_config.items())] or None,
            deviceChange=changes,
        )
        spec = vim.vm.VmImportSpec(configSpec=config)
        return vim.OvfManager.CreateImportSpecResult(importSpec=spec, fileItem=items)
