"""``VirtualDeviceConfigSpec`` lists (a ``ConfigSpec``'s ``deviceChange``) read into the host's
disk operations: what ``ReconfigVM_Task`` and ``Folder.CreateVM_Task`` do with a ``VirtualDisk``.

As the API reference describes ``VirtualDeviceConfigSpec`` (since 2.0): ``operation`` ``add``
with ``fileOperation`` ``create`` makes a new disk file (``backing.fileName`` empty or just
``[datastore]``: the host names it in the VM's folder), ``add`` without ``fileOperation``
attaches the existing ``backing.fileName``; ``remove`` with ``fileOperation`` ``destroy``
deletes the files, without it keeps them. Capacity comes from ``capacityInBytes`` (API 5.5)
or ``capacityInKB``. A spec the host cannot follow is ``InvalidDeviceSpec`` (with the index of
the spec in ``deviceIndex``), as a host answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from ..._vmlifecycle import DiskSpec

if TYPE_CHECKING:
    from ..._host import Host

__all__ = ["DiskChange", "disk_changes", "apply_disk_changes", "has_device_change"]

_SCSI_KEY = 1000
_IDE_KEYS = (200, 201)


@dataclass(frozen=True, slots=True)
class DiskChange:
    """One disk change: ``add`` (``spec``) or ``remove`` (``key``, ``destroy``)."""

    operation: str
    spec: DiskSpec | None = None
    key: int | None = None
    destroy: bool = False


def has_device_change(spec: Any) -> bool:
    return bool(getattr(spec, "deviceChange", None))


def _invalid(index: int, text: str) -> Any:
    return vim.fault.InvalidDeviceSpec(msg=f"Invalid configuration for device '{index}': {text}", deviceIndex=index)


def _file_name(backing: Any) -> str | None:
    """The backing's file, None for "host picks" (empty or ``[datastore]`` only)."""
    name = (getattr(backing, "fileName", None) or "").strip()
    if not name or (name.startswith("[") and name.endswith("]")):
        return None
    return name


def _controller(index: int, key: Any, added: dict[int, str]) -> str:
    if key in (None, _SCSI_KEY):
        return "scsi"
    if key in _IDE_KEYS:
        return "ide"
    if key in added:
        return added[key]
    raise _invalid(index, f"controllerKey {key} is not a controller of this VM (SCSI {_SCSI_KEY}, IDE {_IDE_KEYS}).")


def disk_changes(spec: Any, *, creating: bool = False) -> list[DiskChange]:
    """The disk changes of a ``ConfigSpec``; any other device is ``NotSupported``.

    ``creating`` (``CreateVM_Task``): the spec also adds the VM's controllers (a SCSI or IDE
    controller with a temporary negative key the disks name) and its other devices (NICs,
    CD-ROMs); the new VM gets the host's standard set (one LSI Logic SCSI controller, two IDE
    controllers, one NIC), and the disks are placed on the controller kind they name."""
    out: list[DiskChange] = []
    added: dict[int, str] = {}
    if creating:
        for change in spec.deviceChange or []:
            device = change.device
            if isinstance(device, vim.vm.device.VirtualSCSIController):
                added[device.key] = "scsi"
            elif isinstance(device, vim.vm.device.VirtualIDEController):
                added[device.key] = "ide"
    for i, change in enumerate(spec.deviceChange or []):
        device = change.device
        if creating and not isinstance(device, vim.vm.device.VirtualDisk):
            continue
        if not isinstance(device, vim.vm.device.VirtualDisk):
            raise vmodl.fault.NotSupported(
                msg=f"deviceChange[{i}]: vcbsim adds and removes virtual disks only; got {type(device).__name__}."
            )
        op = change.operation
        file_op = change.fileOperation
        if op == "remove":
            if file_op not in (None, "destroy"):
                raise _invalid(i, f"fileOperation '{file_op}' with remove: expected destroy or none.")
            out.append(DiskChange("remove", key=device.key, destroy=file_op == "destroy"))
            continue
        if op != "add":
            raise vmodl.fault.NotSupported(msg=f"deviceChange[{i}]: operation '{op}' on a disk is not supported (add, remove).")
        backing = device.backing
        if backing is not None and not isinstance(backing, vim.vm.device.VirtualDisk.FlatVer2BackingInfo):
            raise _invalid(i, f"backing {type(backing).__name__}: expected a FlatVer2BackingInfo.")
        name = _file_name(backing)
        mode = (getattr(backing, "diskMode", None) or "persistent") if backing is not None else "persistent"
        thin = bool(getattr(backing, "thinProvisioned", True)) if backing is not None else True
        capacity = device.capacityInBytes or ((device.capacityInKB or 0) * 1024) or None
        unit = device.unitNumber if device.unitNumber is not None and device.unitNumber >= 0 else None
        controller = _controller(i, device.controllerKey, added)
        if file_op == "create":
            if capacity is None and name is None:
                raise _invalid(i, "a new disk needs capacityInKB or capacityInBytes.")
            disk = DiskSpec(capacity=capacity, file=name, create=True, mode=mode, controller=controller,
                            unit_number=unit, thin=thin)
        elif file_op is None:
            if name is None:
                raise _invalid(i, "an existing disk needs backing.fileName (or fileOperation create).")
            disk = DiskSpec(file=name, create=False, mode=mode, controller=controller, unit_number=unit, thin=thin)
        else:
            raise _invalid(i, f"fileOperation '{file_op}' with add: expected create or none.")
        out.append(DiskChange("add", spec=disk))
    return out


def apply_disk_changes(host: Host, vm_id: str, changes: list[DiskChange]) -> None:
    """Apply the changes in order; when one fails, the disks added before it are removed
    again (their new files deleted, existing files put back as they were) and the fault is
    raised: the VM keeps the disks it had."""
    from ..._hotadd import hot_add_file, hot_remove_key

    added: list[tuple[int, bool]] = []
    hot: list[int] = []
    try:
        for change in changes:
            if change.operation == "add":
                assert change.spec is not None
                spec = change.spec
                # a snapshot's disk of another VM added to the backup proxy: a hot-add
                att = hot_add_file(host, vm_id, spec.file, spec.mode) if spec.file and not spec.create else None
                if att is not None:
                    hot.append(att.proxy_key)
                    continue
                d = host.add_disk(vm_id, spec)
                added.append((d.key, spec.create))
            else:
                assert change.key is not None
                if hot_remove_key(host, vm_id, change.key) is None:
                    host.remove_disk(vm_id, change.key, destroy=change.destroy)
    except BaseException:
        for key in reversed(hot):
            hot_remove_key(host, vm_id, key)
        for key, created in reversed(added):
            host.remove_disk(vm_id, key, destroy=created)
        raise
