"""OVF descriptors (``simulator/_ovf.py``): what ``render_ovf`` writes is what ``parse_ovf``
reads back; other tools' common shapes are read; what cannot be imported is one clear
``InvalidInputError`` (never a parser's traceback)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcbsim.simulator import InvalidInputError
from vcbsim.simulator._ovf import OVF, RASD, VMW, OvfDisk, OvfSystem, parse_ovf, render_ovf

MiB = 1 << 20


def _system() -> OvfSystem:
    return OvfSystem(
        name="db-01", guest_id="windows2019srv_64Guest", num_cpus=4, memory_mb=8192, hw_version=19,
        disks=[OvfDisk("db-01-0.vmdk", 64 * MiB, unit=0, size=70_000, populated=3 * MiB),
               OvfDisk("db-01-1.vmdk", 32 * MiB, unit=1, size=None, controller="scsi"),
               OvfDisk("db-01-2.vmdk", 16 * MiB, unit=0, size=None, controller="ide")],
        network="Backup LAN", nic_type="VmxNet3", annotation="nightly <copy> & more",
        config={"tools.syncTimeWithHost": "false"}, extra_config={"backup.tag": "a\"b"},
        nvram=("db-01-3.nvram", 8684),
    )


def test_what_is_written_is_read_back() -> None:
    text = render_ovf(_system())
    assert parse_ovf(text) == _system()
    assert "<vssd:VirtualSystemType>vmx-19</vssd:VirtualSystemType>" in text
    assert 'ovf:populatedSize="3145728"' in text and text.count("ovf:populatedSize") == 1
    assert "vmw:ExtraConfig" in text and "vmw:Config" in text
    # the .nvram is the package's fourth file, named by the nvram ExtraConfig (API 6.7 exports)
    assert '<ovf:File ovf:href="db-01-3.nvram" ovf:id="file4" ovf:size="8684" />' in text
    assert 'vmw:key="nvram" vmw:value="ovf:/file/file4"' in text


def test_extra_config_is_written_only_when_there_is_some() -> None:
    text = render_ovf(OvfSystem(name="x", guest_id="otherGuest"))
    assert "ExtraConfig" not in text and "vmw:Config" not in text and parse_ovf(text).extra_config == {}


def _envelope(body: str, disks: str = "", refs: str = "") -> str:
    return (f'<Envelope xmlns="{OVF}" xmlns:ovf="{OVF}" xmlns:rasd="{RASD}" xmlns:vmw="{VMW}" '
            'xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">'
            f"<References>{refs}</References><DiskSection>{disks}</DiskSection>{body}</Envelope>")


def test_another_tools_shape_is_read() -> None:
    """A default namespace, capacities in GiB, an IDE disk, several hardware families, memory
    in GiB: the newest family is the VM's hardware version."""
    text = _envelope(
        refs='<File ovf:href="a.vmdk" ovf:id="f1" ovf:size="123"/>',
        disks='<Disk ovf:capacity="2" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="d1" ovf:fileRef="f1"/>',
        body=(
            '<VirtualSystem ovf:id="appliance"><Name>appliance</Name>'
            '<OperatingSystemSection ovf:id="101" vmw:osType="otherLinux64Guest"/>'
            "<VirtualHardwareSection><System><vssd:VirtualSystemType>vmx-07 vmx-13</vssd:VirtualSystemType></System>"
            "<Item><rasd:AllocationUnits>byte * 2^30</rasd:AllocationUnits><rasd:InstanceID>2</rasd:InstanceID>"
            "<rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>"
            "<Item><rasd:InstanceID>5</rasd:InstanceID><rasd:ResourceType>5</rasd:ResourceType></Item>"
            "<Item><rasd:AddressOnParent>1</rasd:AddressOnParent><rasd:HostResource>ovf:/disk/d1</rasd:HostResource>"
            "<rasd:InstanceID>9</rasd:InstanceID><rasd:Parent>5</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>"
            "</VirtualHardwareSection></VirtualSystem>"
        ),
    )
    system = parse_ovf(text)
    assert (system.name, system.guest_id, system.memory_mb, system.hw_version) == (
        "appliance", "otherLinux64Guest", 2048, 13)
    [disk] = system.disks
    assert (disk.href, disk.capacity, disk.size, disk.unit, disk.controller) == ("a.vmdk", 2 << 30, 123, 1, "ide")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not xml at all", "well-formed XML"),
        ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>', "without DTDs or entities"),
        ("<Envelope/>", "an ovf:Envelope root"),
        (_envelope(""), "exactly one VirtualSystem"),
        (_envelope("", disks='<Disk ovf:capacity="1" ovf:diskId="d1" ovf:fileRef="nope"/>'), "known ovf:fileRef"),
        (_envelope("", refs='<File ovf:href="a" ovf:id="f1"/>',
                   disks='<Disk ovf:capacity="lots" ovf:diskId="d1" ovf:fileRef="f1"/>'), "integer ovf:capacity"),
        (_envelope('<VirtualSystem ovf:id=""><VirtualHardwareSection><Item><rasd:HostResource>ovf:/disk/zz'
                   "</rasd:HostResource><rasd:ResourceType>17</rasd:ResourceType></Item></VirtualHardwareSection>"
                   "</VirtualSystem>"), "naming a Disk of the DiskSection"),
        (_envelope('<VirtualSystem ovf:id=""/>'), "a VirtualSystem with a Name"),
        (_envelope('<VirtualSystem ovf:id="x"><Name>x</Name><VirtualHardwareSection><vmw:ExtraConfig vmw:key="nvram" '
                   'vmw:value="ovf:/file/file9"/></VirtualHardwareSection></VirtualSystem>'), "naming a File"),
    ],
)
def test_what_cannot_be_imported_is_one_clear_error(text: str, expected: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_ovf(text)
    message = str(err.value)
    assert expected in message and "\n" not in message and "OvfManager.CreateDescriptor" in message


# XML 1.0 text: no control characters or surrogates; names keep no leading/trailing blanks
_text = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffe\uffff"), max_size=20)
_name = _text.map(str.strip).filter(bool)
_disks = st.lists(
    st.builds(OvfDisk, href=_name, capacity=st.integers(1, 1 << 44), unit=st.integers(0, 15),
              size=st.none() | st.integers(0, 1 << 40), controller=st.sampled_from(["scsi", "ide"]),
              populated=st.none() | st.integers(0, 1 << 40)),
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(
    name=_name, guest=_name, cpus=st.integers(1, 128), memory=st.integers(1, 1 << 20), hw=st.integers(4, 21),
    disks=_disks, network=_name, annotation=_text, config=st.dictionaries(_name, _text, max_size=3),
    extra=st.dictionaries(_name.filter(lambda k: k != "nvram"), _text, max_size=3),
    nvram=st.none() | st.tuples(_name, st.none() | st.integers(0, 1 << 20)),
)
def test_any_vm_round_trips(name: str, guest: str, cpus: int, memory: int, hw: int, disks: list[OvfDisk],
                            network: str, annotation: str, config: dict[str, str], extra: dict[str, str],
                            nvram: tuple[str, int | None] | None) -> None:
    system = OvfSystem(name=name, guest_id=guest, num_cpus=cpus, memory_mb=memory, hw_version=hw, disks=disks,
                       network=network, annotation=annotation.strip(), config=config, extra_config=extra,
                       nvram=nvram)
    assert parse_ovf(render_ovf(system)) == system
