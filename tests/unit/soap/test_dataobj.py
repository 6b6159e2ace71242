"""``_dataobj.make`` builds the object ``__init__`` builds (the endpoint's hot paths use it)."""

from __future__ import annotations

import datetime

import pytest
from pyVmomi import vim, vmodl

from vcbsim.simulator.soap.wire._codec import DEFAULT_VERSION, serialize_value
from vcbsim.simulator.soap.wire._dataobj import make

PC = vmodl.query.PropertyCollector
NOW = datetime.datetime(2026, 11, 24, 12, 0, 0, 123000, tzinfo=datetime.UTC)


def _task_info_fields() -> dict[str, object]:
    return {
        "key": "haTask-vm-1-CreateSnapshot_Task-7",
        "task": vim.Task("haTask-vm-1-CreateSnapshot_Task-7"),
        "name": vim.VirtualMachine.CreateSnapshot_Task,
        "descriptionId": "VirtualMachine.createSnapshot",
        "entity": vim.VirtualMachine("vm-1"),
        "entityName": "win2003-sql",
        "state": vim.TaskInfo.State.queued,
        "cancelled": False,
        "cancelable": True,
        "reason": vim.TaskReasonUser(userName="user"),
        "queueTime": NOW,
        "eventChainId": 7,
    }


CASES = {
    "TaskInfo": (vim.TaskInfo, _task_info_fields),
    "TaskReasonUser": (vim.TaskReasonUser, lambda: {"userName": "root"}),
    "UpdateSet": (
        PC.UpdateSet,
        lambda: {"version": "3", "filterSet": [PC.FilterUpdate(
            filter=PC.Filter("f-1"),
            objectSet=[PC.ObjectUpdate(kind="modify", obj=vim.Task("t-1"),
                                       changeSet=[PC.Change(name="info.state", op="assign", val="success")])])]},
    ),
    "ObjectUpdate, leave": (PC.ObjectUpdate, lambda: {"kind": "leave", "obj": vim.Task("t-1")}),
    "Change, unset": (PC.Change, lambda: {"name": "info.result", "op": "assign"}),
    "DynamicProperty": (vmodl.DynamicProperty, lambda: {"name": "info.state", "val": "success"}),
    "ObjectContent": (
        PC.ObjectContent,
        lambda: {"obj": vim.Task("t-1"), "propSet": [vmodl.DynamicProperty(name="info.result", val=vim.vm.Snapshot("snapshot-3"))]},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_make_equals_init(case: str) -> None:
    cls, fields = CASES[case]
    made, built = make(cls, **fields()), cls(**fields())
    assert type(made) is type(built)
    assert list(vars(made)) == list(vars(built))  # same properties, same order
    for name, value in vars(built).items():
        assert type(getattr(made, name)) is type(value), name
    assert serialize_value(made, DEFAULT_VERSION) == serialize_value(built, DEFAULT_VERSION)


def test_arrays_are_fresh_per_object() -> None:
    a, b = make(PC.ObjectContent), make(PC.ObjectContent)
    a.propSet.append(vmodl.DynamicProperty(name="x", val="y"))
    assert b.propSet == []


def test_unknown_property_is_refused_as_init_refuses_it() -> None:
    with pytest.raises(TypeError, match="noSuchProperty"):
        make(vim.TaskInfo, noSuchProperty=1)
    with pytest.raises(Exception, match="noSuchProperty"):
        vim.TaskInfo(noSuchProperty=1)
