"""References in ``anyType`` slots are typed as hosts type them, on both serializer paths."""

from __future__ import annotations

import datetime

import pytest
from pyVmomi import VmomiSupport, vim, vmodl

from vcbsim.simulator.soap.wire import _codec, _fastencode
from vcbsim.simulator.soap.wire._codec import DEFAULT_VERSION

NOW = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=datetime.UTC)
RETRIEVE = VmomiSupport.GetWsdlMethod("urn:vim25", "RetrieveProperties").info


def _contents(val: object) -> list[object]:
    prop = vmodl.DynamicProperty(name="parent", val=val)
    return [vmodl.query.PropertyCollector.ObjectContent(obj=vim.VirtualMachine("vm-1"), propSet=[prop])]


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "pyVmomi path"])
def test_a_reference_in_an_anytype_is_a_managed_object_reference(fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not fast:
        monkeypatch.setattr(_fastencode, "encode_fast", lambda *a: None)
    body = _codec.serialize_response("RetrieveProperties", RETRIEVE, _contents(vim.Folder("ha-folder-vm")),
                                     DEFAULT_VERSION).decode()
    assert '<val xsi:type="ManagedObjectReference" type="Folder">ha-folder-vm</val>' in body
    assert 'xsi:type="ManagedObject"' not in body
    arrays = _codec.serialize_response(
        "RetrieveProperties", RETRIEVE, _contents(vim.ManagedEntity.Array([vim.Datastore("datastore-1")])),
        DEFAULT_VERSION).decode()
    assert 'xsi:type="ArrayOfManagedObjectReference"' in arrays
    # each item of an array in an anyType slot carries its own xsi:type, as a host writes it
    assert ('<ManagedObjectReference xsi:type="ManagedObjectReference" type="Datastore">datastore-1'
            '</ManagedObjectReference>') in arrays


def test_faults_use_the_same_serializer() -> None:
    fault = vmodl.fault.ManagedObjectNotFound(msg="gone", obj=vim.VirtualMachine("vm-9"))
    body = _codec.serialize_fault(fault, DEFAULT_VERSION).decode()
    assert '<obj type="VirtualMachine">vm-9</obj>' in body  # no versionId: hosts send none


@pytest.mark.parametrize("value", [
    "success",
    vim.VirtualMachine("vm-1"),
    vim.Datastore.Array([vim.Datastore("datastore-1")]),
    vim.TaskInfo(key="t-1", task=vim.Task("t-1"), state="running", cancelled=False, cancelable=False,
                 descriptionId="VirtualMachine.createSnapshot", entity=vim.VirtualMachine("vm-1"),
                 reason=vim.TaskReasonUser(userName="user"), queueTime=NOW, eventChainId=1),
], ids=["enum text", "reference", "array of references", "TaskInfo"])
def test_comparable_texts_are_the_same_on_both_paths(value: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """A watched property is compared by this text: the fast and the pyVmomi path must agree,
    or a filter would report a change that did not happen."""
    fast = _codec.comparable(value, DEFAULT_VERSION)
    monkeypatch.setattr(_fastencode, "encode_fast", lambda *a: None)
    assert _codec.comparable(value, DEFAULT_VERSION) == fast


def test_comparable_tells_a_change() -> None:
    info = vim.TaskInfo(key="t-1", task=vim.Task("t-1"), state="running", cancelled=False, cancelable=False,
                        descriptionId="d", entity=vim.VirtualMachine("vm-1"),
                        reason=vim.TaskReasonUser(userName="user"), queueTime=NOW, eventChainId=1)
    before = _codec.comparable(info, DEFAULT_VERSION)
    info.state = "success"
    assert _codec.comparable(info, DEFAULT_VERSION) != before
