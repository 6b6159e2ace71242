"""OVF 1.0 descriptors of a VM: written for an export, read back for an import.

Why: an OVF export (``OvfManager.CreateDescriptor`` after an ``ExportVm`` / ``ExportSnapshot``
lease) is a descriptor plus the disks as stream-optimized VMDK, and the way back is
``CreateImportSpec`` + ``ResourcePool.ImportVApp``. The descriptor follows DMTF DSP0243 1.0
(``Envelope``: ``References``, ``DiskSection``, ``NetworkSection``, one ``VirtualSystem``
with its ``VirtualHardwareSection`` of CIM RASD items: ResourceType 3 CPU, 4 memory, 6 SCSI
controller, 17 disk, 10 network adapter) with VMware's extensions as a host's export writes
them: ``vmw:osType`` for the guest id, ``vssd:VirtualSystemType`` ``vmx-NN`` for the virtual
hardware version, ``ovf:populatedSize`` on each disk, ``vmw:Config`` for settings of the VM's
configuration, and ``vmw:ExtraConfig`` for its ``extraConfig`` (the ``.vmx`` options), which a
host writes only when asked (``CreateDescriptorParams.exportOption`` ``"extraconfig"``, the
``OvfCreateDescriptorParams`` reference; ``vmware_export_ovf``'s ``export_with_extraconfig``).

``parse_ovf`` reads what ``render_ovf`` writes and the common shape of other tools' files
(one VirtualSystem, SCSI or IDE disks); anything else is one clear ``InvalidInputError``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from defusedxml.ElementTree import fromstring as safe_fromstring

from ._errors import InvalidInputError

__all__ = ["OvfDisk", "OvfSystem", "render_ovf", "parse_ovf", "STREAM_FORMAT"]

OVF = "http://schemas.dmtf.org/ovf/envelope/1"
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
VMW = "http://www.vmware.com/schema/ovf"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
STREAM_FORMAT = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
_UNITS = {"byte": 1, "byte * 2^10": 1 << 10, "byte * 2^20": 1 << 20, "byte * 2^30": 1 << 30, "byte * 2^40": 1 << 40}


@dataclass
class OvfDisk:
    """One disk: its file in the package (``href``), capacity in bytes, SCSI unit, the size
    of the file when known."""

    href: str
    capacity: int
    unit: int = 0
    size: int | None = None
    controller: str = "scsi"
    #: bytes of data in the disk (``ovf:populatedSize``), when known
    populated: int | None = None


@dataclass
class OvfSystem:
    name: str
    guest_id: str
    num_cpus: int = 1
    memory_mb: int = 1024
    disks: list[OvfDisk] = field(default_factory=list)
    network: str = "VM Network"
    #: ``vmw:Config``: settings of the VM's configuration (``ConfigSpec`` fields such as
    #: ``tools.syncTimeWithHost``)
    config: dict[str, str] = field(default_factory=dict)
    annotation: str = ""
    #: the virtual hardware version (``vmx-NN``)
    hw_version: int = 4
    #: the adapter's RASD subtype (``PCNet32`` for the ``.vmx``'s ``vlance``, ``E1000``,
    #: ``VmxNet3``)
    nic_type: str = "PCNet32"
    #: ``vmw:ExtraConfig``: the VM's ``extraConfig`` (``.vmx`` options)
    extra_config: dict[str, str] = field(default_factory=dict)
    #: the VM's ``.nvram`` file in the package (``href``, ``size``): a host of API 6.7 and later
    #: exports it, referenced as ``vmw:ExtraConfig`` ``nvram`` = ``ovf:/file/<id>``
    nvram: tuple[str, int | None] | None = None


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def render_ovf(system: OvfSystem) -> str:
    """The OVF envelope of ``system`` (UTF-8 text)."""
    for prefix, ns in (("ovf", OVF), ("rasd", RASD), ("vssd", VSSD), ("vmw", VMW), ("xsi", XSI)):
        ET.register_namespace(prefix, ns)
    env = ET.Element(_q(OVF, "Envelope"))
    refs = ET.SubElement(env, _q(OVF, "References"))
    for i, d in enumerate(system.disks, 1):
        attrs = {_q(OVF, "href"): d.href, _q(OVF, "id"): f"file{i}"}
        if d.size is not None:
            attrs[_q(OVF, "size")] = str(d.size)
        ET.SubElement(refs, _q(OVF, "File"), attrs)
    nvram_id = f"file{len(system.disks) + 1}"
    if system.nvram is not None:
        href, size = system.nvram
        ET.SubElement(refs, _q(OVF, "File"), {_q(OVF, "href"): href, _q(OVF, "id"): nvram_id,
                                               **({_q(OVF, "size"): str(size)} if size is not None else {})})
    disks = ET.SubElement(env, _q(OVF, "DiskSection"))
    ET.SubElement(disks, _q(OVF, "Info")).text = "Virtual disk information"
    for i, d in enumerate(system.disks, 1):
        ET.SubElement(disks, _q(OVF, "Disk"), {
            _q(OVF, "capacity"): str(d.capacity), _q(OVF, "capacityAllocationUnits"): "byte",
            _q(OVF, "diskId"): f"vmdisk{i}", _q(OVF, "fileRef"): f"file{i}", _q(OVF, "format"): STREAM_FORMAT,
            **({_q(OVF, "populatedSize"): str(d.populated)} if d.populated is not None else {}),
        })
    nets = ET.SubElement(env, _q(OVF, "NetworkSection"))
    ET.SubElement(nets, _q(OVF, "Info")).text = "The list of logical networks"
    net = ET.SubElement(nets, _q(OVF, "Network"), {_q(OVF, "name"): system.network})
    ET.SubElement(net, _q(OVF, "Description")).text = f"The {system.network} network"
    vs = ET.SubElement(env, _q(OVF, "VirtualSystem"), {_q(OVF, "id"): system.name})
    ET.SubElement(vs, _q(OVF, "Info")).text = "A virtual machine"
    ET.SubElement(vs, _q(OVF, "Name")).text = system.name
    if system.annotation:
        ann = ET.SubElement(vs, _q(OVF, "AnnotationSection"))
        ET.SubElement(ann, _q(OVF, "Info")).text = "A human-readable annotation"
        ET.SubElement(ann, _q(OVF, "Annotation")).text = system.annotation
    os_sec = ET.SubElement(vs, _q(OVF, "OperatingSystemSection"), {_q(OVF, "id"): "1", _q(VMW, "osType"): system.guest_id})
    ET.SubElement(os_sec, _q(OVF, "Info")).text = "The kind of installed guest operating system"
    hw = ET.SubElement(vs, _q(OVF, "VirtualHardwareSection"))
    ET.SubElement(hw, _q(OVF, "Info")).text = "Virtual hardware requirements"
    sysel = ET.SubElement(hw, _q(OVF, "System"))
    for tag, text in (("ElementName", "Virtual Hardware Family"), ("InstanceID", "0"),
                      ("VirtualSystemIdentifier", system.name), ("VirtualSystemType", f"vmx-{system.hw_version:02d}")):
        ET.SubElement(sysel, _q(VSSD, tag)).text = text
    ids = iter(range(1, 10_000))

    def item(**values: str) -> str:
        iid = str(next(ids))
        el = ET.SubElement(hw, _q(OVF, "Item"))
        values["InstanceID"] = iid
        for tag in sorted(values):
            ET.SubElement(el, _q(RASD, tag)).text = values[tag]
        return iid

    item(AllocationUnits="hertz * 10^6", Description="Number of Virtual CPUs",
         ElementName=f"{system.num_cpus} virtual CPU(s)", ResourceType="3", VirtualQuantity=str(system.num_cpus))
    item(AllocationUnits="byte * 2^20", Description="Memory Size", ElementName=f"{system.memory_mb}MB of memory",
         ResourceType="4", VirtualQuantity=str(system.memory_mb))
    parents = {"scsi": item(Address="0", Description="SCSI Controller", ElementName="SCSI controller 0",
                            ResourceSubType="lsilogic", ResourceType="6")}
    if any(d.controller == "ide" for d in system.disks):  # an IDE disk hangs off IDE 0 (ResourceType 5)
        parents["ide"] = item(Address="0", Description="IDE Controller", ElementName="IDE 0", ResourceType="5")
    for i, d in enumerate(system.disks, 1):
        item(AddressOnParent=str(d.unit), ElementName=f"Hard disk {i}", HostResource=f"ovf:/disk/vmdisk{i}",
             Parent=parents.get(d.controller, parents["scsi"]), ResourceType="17")
    item(AddressOnParent="7", AutomaticAllocation="true", Connection=system.network, ElementName="Network adapter 1",
         ResourceSubType=system.nic_type, ResourceType="10")
    extra = dict(system.extra_config)
    if system.nvram is not None:
        extra["nvram"] = f"ovf:/file/{nvram_id}"
    for tag, settings in (("Config", system.config), ("ExtraConfig", extra)):
        for key, value in sorted(settings.items()):
            ET.SubElement(hw, _q(VMW, tag), {_q(OVF, "required"): "false", _q(VMW, "key"): key, _q(VMW, "value"): value})
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(env, encoding="unicode") + "\n"


def _bad(expected: str, got: object) -> InvalidInputError:
    return InvalidInputError("OVF descriptor", expected=expected, got=got,
                             hint="an OVF 1.0 envelope with one VirtualSystem, as OvfManager.CreateDescriptor writes")


def parse_ovf(text: str) -> OvfSystem:
    """The VM an OVF envelope describes (one clear error for what cannot be imported)."""
    try:
        root = safe_fromstring(text.encode("utf-8") if isinstance(text, str) else text)
    except Exception as exc:  # noqa: BLE001 - malformed or hostile XML: one line
        raise _bad("well-formed XML without DTDs or entities", f"{type(exc).__name__}: {exc}") from None
    if root.tag != _q(OVF, "Envelope"):
        raise _bad("an ovf:Envelope root", root.tag)
    files = {f.get(_q(OVF, "id")): f for f in root.iter(_q(OVF, "File"))}
    disk_defs = {}
    for d in root.iter(_q(OVF, "Disk")):
        ref = files.get(d.get(_q(OVF, "fileRef")))
        unit = _UNITS.get((d.get(_q(OVF, "capacityAllocationUnits")) or "byte").strip())
        try:
            capacity = int(d.get(_q(OVF, "capacity"), "")) * (unit or 0)
        except ValueError:
            raise _bad("a Disk with an integer ovf:capacity", d.get(_q(OVF, "capacity"))) from None
        if ref is None or not capacity:
            raise _bad("each Disk with a known ovf:fileRef, capacity and capacityAllocationUnits",
                       d.get(_q(OVF, "diskId")))
        size = ref.get(_q(OVF, "size"))
        populated = d.get(_q(OVF, "populatedSize"))
        disk_defs[d.get(_q(OVF, "diskId"))] = OvfDisk(ref.get(_q(OVF, "href"), ""), capacity,
                                                     size=int(size) if size and size.isdigit() else None,
                                                     populated=int(populated) if populated and populated.isdigit() else None)
    systems = list(root.iter(_q(OVF, "VirtualSystem")))
    if len(systems) != 1:
        raise _bad("exactly one VirtualSystem", f"{len(systems)}")
    vs = systems[0]
    name = (vs.findtext(_q(OVF, "Name")) or vs.get(_q(OVF, "id")) or "").strip()
    os_sec = vs.find(_q(OVF, "OperatingSystemSection"))
    guest = (os_sec.get(_q(VMW, "osType")) if os_sec is not None else None) or "otherGuest"
    system = OvfSystem(name=name, guest_id=guest)
    vtype = vs.findtext(f".//{_q(VSSD, 'VirtualSystemType')}") or ""
    versions = [int(v[4:]) for v in vtype.replace(",", " ").split() if v.startswith("vmx-") and v[4:].isdigit()]
    if versions:
        system.hw_version = max(versions)  # "vmx-07 vmx-19": the newest the file allows
    ann = vs.find(f"{_q(OVF, 'AnnotationSection')}/{_q(OVF, 'Annotation')}")
    system.annotation = (ann.text or "") if ann is not None else ""
    controllers: dict[str, str] = {}
    items = list(vs.iter(_q(OVF, "Item")))
    for it in items:
        rtype = it.findtext(_q(RASD, "ResourceType"))
        iid = it.findtext(_q(RASD, "InstanceID")) or ""
        qty = it.findtext(_q(RASD, "VirtualQuantity")) or ""
        if rtype == "3" and qty.isdigit():
            system.num_cpus = int(qty)
        elif rtype == "4" and qty.isdigit():
            units = _UNITS.get((it.findtext(_q(RASD, "AllocationUnits")) or "byte * 2^20").strip(), 1 << 20)
            system.memory_mb = max(1, int(qty) * units >> 20)
        elif rtype in ("5", "6"):
            controllers[iid] = "ide" if rtype == "5" else "scsi"
        elif rtype == "10":
            system.network = it.findtext(_q(RASD, "Connection")) or system.network
            system.nic_type = it.findtext(_q(RASD, "ResourceSubType")) or system.nic_type
    for it in items:
        if it.findtext(_q(RASD, "ResourceType")) != "17":
            continue
        res = (it.findtext(_q(RASD, "HostResource")) or "").rsplit("/", 1)[-1]
        disk = disk_defs.get(res)
        if disk is None:
            raise _bad("each disk Item's HostResource naming a Disk of the DiskSection", res)
        addr = it.findtext(_q(RASD, "AddressOnParent")) or "0"
        disk.unit = int(addr) if addr.isdigit() else 0
        disk.controller = controllers.get(it.findtext(_q(RASD, "Parent")) or "", "scsi")
        system.disks.append(disk)
    for tag, settings in (("Config", system.config), ("ExtraConfig", system.extra_config)):
        for cfg in vs.iter(_q(VMW, tag)):
            key, value = cfg.get(_q(VMW, "key")), cfg.get(_q(VMW, "value"))
            if key:
                settings[key] = value or ""
    ref = system.extra_config.get("nvram", "")
    if ref.startswith("ovf:/file/"):  # a file of the package, not a setting to import as is
        del system.extra_config["nvram"]
        f = files.get(ref[len("ovf:/file/"):])
        if f is None:
            raise _bad("the nvram ExtraConfig naming a File of the References", ref)
        size = f.get(_q(OVF, "size"))
        system.nvram = (f.get(_q(OVF, "href"), ""), int(size) if size and size.isdigit() else None)
    if not system.name:
        raise _bad("a VirtualSystem with a Name", "none")
    return system
