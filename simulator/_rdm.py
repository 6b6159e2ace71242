"""Raw device mappings (RDMs): a LUN given to a VM through a mapping file on a datastore.

What a real host does, and where that is written down:

* The disk's backing is ``VirtualDiskRawDiskMappingVer1BackingInfo`` with
  ``compatibilityMode`` ``physicalMode`` or ``virtualMode``, ``deviceName`` (the host's device
  the LUN is reached through) and ``lunUuid`` (vSphere API reference, "VirtualDiskRawDisk
  MappingVer1BackingInfo", since 2.0; its ``parent`` and ``deltaDiskFormat`` describe the redo
  logs of a snapshotted virtual-mode RDM).
* The mapping file is a descriptor ``<disk>.vmdk`` whose extent is ``<disk>-rdmp.vmdk``
  (createType ``vmfsPassthroughRawDeviceMap``, physical mode) or ``<disk>-rdm.vmdk``
  (``vmfsRawDeviceMap``, virtual mode), extent type ``VMFSRDM`` (VMware Virtual Disk Format
  1.1, createType list). The extent is a pointer: the bytes are the LUN's, and they take no
  room on the datastore.
* Physical mode "cannot use disk modes, and commands are passed straight through to the LUN"
  (API enum ``VirtualDiskCompatibilityMode``); "redo logs are not possible when raw device
  mapping is used in physical compatibility mode" (ESX Server "Using Raw Device Mapping"), and
  "VMware does not support snapshots of ... RDM physical mode disks" (vSphere "Snapshot
  Limitations"). So a snapshot of the VM leaves a physical RDM out, like an independent disk:
  no redo log, and "as of the snapshot" it reads what the LUN holds now. Clients add a
  physical RDM with ``diskMode = independent_persistent`` (the vSphere client does, and hosts
  reject an unset one); the host reports that mode.
* Virtual mode "allows the RDM to behave as if it were a virtual disk, so you can use such
  features as taking snapshots" (vSphere Storage, "Add an RDM Disk"): redo logs as for a disk.
* Changed block tracking works "as is RDM in virtual compatibility mode, but not RDM in
  physical compatibility mode" (KB 1020128): a physical RDM's backing has no ``changeId`` and
  ``QueryChangedDiskAreas`` on it fails as on a disk without a tracking file (``FileFault``
  naming the disk; which fault exactly is INFERRED, no source shows it).
"""

from __future__ import annotations

from .disk import render_descriptor

__all__ = ["RDM_MODES", "RDM_CREATE_TYPES", "rdm_descriptor", "rdm_extent_name", "lun_identity"]

#: ``VirtualDiskCompatibilityMode`` values (API 2.0).
RDM_MODES: tuple[str, ...] = ("physicalMode", "virtualMode")

#: compatibility mode -> (descriptor createType, mapping extent suffix)
RDM_CREATE_TYPES: dict[str, tuple[str, str]] = {
    "physicalMode": ("vmfsPassthroughRawDeviceMap", "-rdmp.vmdk"),
    "virtualMode": ("vmfsRawDeviceMap", "-rdm.vmdk"),
}


def rdm_extent_name(descriptor: str, mode: str) -> str:
    """``[ds] vm/vm_1.vmdk`` -> ``[ds] vm/vm_1-rdmp.vmdk`` (physical) or ``-rdm.vmdk``."""
    return descriptor[: -len(".vmdk")] + RDM_CREATE_TYPES[mode][1]


def rdm_descriptor(name: str, capacity: int, mode: str, *, hw_version: int) -> str:
    """The mapping file's descriptor text: a base descriptor whose extent is the mapping."""
    create_type, suffix = RDM_CREATE_TYPES[mode]
    stem = name[: -len(".vmdk")]
    sectors = capacity // 512
    text = render_descriptor(name, capacity, create_type="vmfs", hw_version=hw_version)
    text = text.replace('createType="vmfs"', f'createType="{create_type}"', 1)
    return text.replace(f'RW {sectors} VMFS "{stem}-flat.vmdk"', f'RW {sectors} VMFSRDM "{stem}{suffix}"', 1)


def lun_identity(hex32: str) -> tuple[str, str]:
    """``(deviceName, lunUuid)`` of a LUN whose NAA id is ``naa.<hex32>``.

    ``deviceName`` is the host's path to the device (``/vmfs/devices/disks/naa.…``, as clients
    pass it); ``lunUuid`` follows the ``vml`` shape (``02`` SCSI disk, LUN 0, the NAA id, then
    the product id ``VMware``): the exact bytes a given array reports are not modelled."""
    naa = "6" + hex32[1:32]
    return f"/vmfs/devices/disks/naa.{naa}", f"0200000000{naa}564d77617265"
