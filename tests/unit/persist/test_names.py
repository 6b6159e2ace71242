"""Names checked once at the entry (simulator/_names.py), escaped where they are written."""

from __future__ import annotations

import xml.dom.minidom
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyVmomi import vim

from vcbsim.simulator._errors import InvalidInputError
from vcbsim.simulator._host import Host, MiB
from vcbsim.simulator._names import check_vm_name, vmx_escape, xml_unsafe
from vcbsim.simulator.soap.wire._codec import serialize_value

BAD = [
    "a\x01b",  # a control character
    "line\nbreak",  # would start a new .vmx line
    "tab\there",
    "non\ufffechar",  # U+FFFE: not XML
    "lone\ud800",  # a lone surrogate
    "quo\"te",  # ends descriptor and .vmx quoting
    "sl/ash",
    "back\\slash",
    ".",
    "..",
    " padded",
    "x" * 81,
    "é" * 79 + "\U0010fffe",
    "",
]


@pytest.mark.parametrize("name", BAD)
def test_bad_vm_names_are_refused_with_one_clear_line(name: str) -> None:
    host = Host()
    with pytest.raises(InvalidInputError) as info:
        host.add_vm(name, disks=[MiB])
    text = str(info.value)
    assert text.startswith("VM name: expected") and "\n" not in text.replace(repr(name), "")
    assert host.vms == {}


def test_bad_snapshot_names_are_invalid_name_faults() -> None:
    host = Host()
    vm = host.add_vm("v", disks=[MiB], power_state="poweredOff")
    for name in ("a\x00", "b\ud800", "c\uffff", "d\ne"):
        with pytest.raises(vim.fault.InvalidName):
            host.create_snapshot(vm, name)
    with pytest.raises(InvalidInputError):
        host.create_snapshot(vm, "ok", description="bad\x07bell")
    assert vm.snapshots() == []


def test_odd_but_valid_names_are_escaped_in_the_vmx_and_vmsd(tmp_path: Path) -> None:
    host = Host(datastore_dir=tmp_path / "ds")
    vm = host.add_vm("pipe|and 日本語 \U0001f600", disks=[MiB], power_state="poweredOff")
    host.create_snapshot(vm, 'say "hi"', description="two\nlines")
    vmx = vm.vmx_text()
    assert 'displayName = "pipe|7Cand 日本語 \U0001f600"' in vmx
    vmsd = vm.vmsd_text()
    assert 'displayName = "say |22hi|22"' in vmsd and 'description = "two|0Alines"' in vmsd
    for text in (vmx, vmsd):
        assert all(line.count('"') == 2 for line in text.splitlines())
    assert host.store is not None
    host.store.close()
    again = Host(datastore_dir=tmp_path / "ds")
    assert again.find_vm(vm.name).snapshots()[0].name == 'say "hi"'


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=12))
def test_any_name_is_refused_or_safe_everywhere(name: str) -> None:
    """Names from the whole Unicode range: refused with the reason, or safe in XML, in a
    .vmx line and as a folder name."""
    try:
        check_vm_name(name)
    except InvalidInputError:
        return
    assert xml_unsafe(name) is None
    escaped = vmx_escape(name)
    assert '"' not in escaped and "\n" not in escaped and "\r" not in escaped
    assert "/" not in name and name not in (".", "..") and len(name.encode()) <= 200
    body = serialize_value(name, "vim.version.version7", typ=str)
    xml.dom.minidom.parseString(
        '<r xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' + body + "</r>"
    )
