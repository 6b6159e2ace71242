"""``typed_as``: an anyType value gets the declared type's class, on both encoders' input."""

from __future__ import annotations

import pytest
from pyVmomi import VmomiSupport, vim

from vcbsim.simulator.soap.wire import _codec, _fastencode
from vcbsim.simulator.soap.wire._anytype import typed_as
from vcbsim.simulator.soap.wire._codec import DEFAULT_VERSION

LONG_ARRAY = VmomiSupport.GetVmodlType("long[]")


def test_values_take_the_class_of_their_declared_type() -> None:
    assert type(typed_as(4 * 1024**4, VmomiSupport.long)) is VmomiSupport.long
    assert type(typed_as("poweredOn", vim.VirtualMachine.PowerState)) is vim.VirtualMachine.PowerState
    assert type(typed_as(VmomiSupport.long(3), int)) is int
    items = typed_as([1, 2**40], LONG_ARRAY)
    assert type(items) is LONG_ARRAY and all(type(i) is VmomiSupport.long for i in items)
    devices = typed_as([vim.vm.device.VirtualDisk(key=1)], vim.vm.device.VirtualDevice.Array)
    assert type(devices) is vim.vm.device.VirtualDevice.Array  # the declared array, items as they are
    # unchanged: None, booleans, data objects, references, a value the declared type does not fit
    assert typed_as(None, VmomiSupport.long) is None
    assert typed_as(True, int) is True
    ref = vim.Datastore("datastore-1")
    assert typed_as(ref, vim.Datastore) is ref
    assert typed_as("text", VmomiSupport.long) == "text"


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "pyVmomi path"])
def test_both_encoders_write_the_declared_xsi_types(fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not fast:
        monkeypatch.setattr(_fastencode, "encode_fast", lambda *a: None)
    fetch = _codec.fetch_info(DEFAULT_VERSION)
    cases = [
        (typed_as(4 * 1024**4, VmomiSupport.long), 'xsi:type="xsd:long">4398046511104<'),
        (typed_as("poweredOn", vim.VirtualMachine.PowerState), 'xsi:type="VirtualMachinePowerState">poweredOn<'),
        (typed_as([5], LONG_ARRAY), '<returnval xsi:type="ArrayOfLong"><long xsi:type="xsd:long">5</long>'),
        (typed_as([vim.HostSystem("ha-host")], vim.HostSystem.Array),
         '<ManagedObjectReference xsi:type="ManagedObjectReference" type="HostSystem">ha-host<'),
    ]
    for value, expected in cases:
        body = _codec.serialize_response("Fetch", fetch, value, DEFAULT_VERSION).decode()
        assert expected in body, body
