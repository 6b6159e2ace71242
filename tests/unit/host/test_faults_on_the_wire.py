"""Every fault the host can raise or a rule can inject by name can be written on the wire.

A fault missing a required property (``TaskInProgress.task``) cannot be serialised, and the
endpoint then answers ``SystemError`` instead of the fault a product must handle."""

from __future__ import annotations

import pytest
from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl

from vcbsim.simulator._faults import make_fault

#: every fault type pyVmomi knows in vim / vmodl (``VmomiSupport._wsdlDefMap``: the names a
#: fault rule may use)
FAULT_NAMES = sorted(
    {
        info[0].rsplit(".", 1)[-1]
        for info in VmomiSupport._wsdlDefMap.values()
        if info[0].startswith(("vim.fault.", "vmodl.fault."))
    }
)


def _is_fault(name: str) -> bool:
    cls = getattr(vim.fault, name, None) or getattr(vmodl.fault, name, None)
    return isinstance(cls, type) and issubclass(cls, vmodl.MethodFault)


@pytest.mark.parametrize("name", [n for n in FAULT_NAMES if _is_fault(n)])
def test_a_fault_made_by_name_serialises(name: str) -> None:
    fault = make_fault(name)
    xml = SoapAdapter.Serialize(fault)
    assert name.encode() in xml


def test_task_in_progress_names_a_task() -> None:
    fault = make_fault("TaskInProgress")
    assert isinstance(fault.task, vim.Task) and fault.task._moId
    given = make_fault("TaskInProgress", task=vim.Task("haTask-vm-1-x"))
    assert given.task._moId == "haTask-vm-1-x"
    assert VmomiSupport.F_OPTIONAL  # the flag the placeholder logic reads exists in this pyVmomi
