"""Build and raise the faults a real ESX host raises, in one place.

Orchestrators must exercise their real error paths, so the simulator raises pyVmomi's own
``vim.fault.*`` / ``vmodl.fault.*`` classes with the host's messages (spec/guest-quiescing.md
R46-R47). The SOAP endpoint serialises the same objects, so in-process and over-the-wire
clients see identical faults.
"""

from __future__ import annotations

import datetime
from typing import Any, NoReturn

from pyVmomi import VmomiSupport, vim, vmodl

__all__ = ["make_fault", "raise_fault", "fault_name", "MESSAGES"]

#: Host messages, as seen in logs and UIs (spec R47) or as the fault's documented meaning.
MESSAGES: dict[str, str] = {
    "ApplicationQuiesceFault": (
        "An error occurred while quiescing the virtual machine. See the virtual machine's "
        "event log for details. The guest OS has reported an error during quiescing. The "
        "error code was: {code} The error message was: {desc}"
    ),
    "FilesystemQuiesceFault": (
        "An error occurred while saving the snapshot: Failed to quiesce the virtual machine. "
        "The create snapshot operation exceeded the time limit for holding off I/O in the "
        "frozen virtual machine."
    ),
    "QuiesceTimeout": (
        "[msg.snapshot.quiesce.timeout] Timed out while quiescing the virtual machine."
    ),
    "ToolsUnavailable": (
        "Cannot quiesce this virtual machine because VMware Tools is not currently available."
    ),
    "TaskInProgress": "The operation is not allowed in the current state: another task is in progress.",
    "InvalidPowerState": "The attempted operation cannot be performed in the current state ({state}).",
    "InvalidState": "The operation is not allowed in the current state.",
    "NoDiskSpace": "There is not enough space on the file system for the selected operation.",
    "NotSupported": "The operation is not supported on the object.",
    "TooManySnapshotLevels": "Exceeded the maximum number of permitted snapshots.",
    "ManagedObjectNotFound": "The object '{obj}' has already been deleted or has not been completely created",
}


def _fault_class(name: str) -> type:
    for ns in (vim.fault, vmodl.fault):
        cls = getattr(ns, name, None)
        if cls is not None:
            return cls  # type: ignore[no-any-return]
    msg = (
        f"fault name: expected a vim.fault or vmodl.fault class name such as "
        f"'ApplicationQuiesceFault', got {name!r}"
    )
    raise ValueError(msg)


def make_fault(name: str, message: str | None = None, /, **fields: Any) -> Any:
    """Build the pyVmomi fault object ``name`` with the host's message.

    ``message`` overrides the stock text; ``fields`` fill both the message template and the
    fault's own properties (``datastore=`` for ``NoDiskSpace``, for instance).
    """
    cls = _fault_class(name)
    template = message if message is not None else MESSAGES.get(name, name)
    try:
        text = template.format(**fields)
    except (KeyError, IndexError):
        text = template
    declared = cls._GetPropertyList()  # type: ignore[attr-defined]
    own = {p.name for p in declared}
    props = {k: v for k, v in fields.items() if k in own}
    for p in declared:  # a required property nobody gave (an injected fault's, usually)
        if p.name not in props and not p.flags & VmomiSupport.F_OPTIONAL:
            props[p.name] = _placeholder(name, p.name, p.type)
    fault = cls(msg=text, **props)
    fault.faultMessage = [vmodl.LocalizableMessage(key=f"vcbsim.{name}", message=text)]
    return fault


def _placeholder(fault: str, prop: str, kind: type, depth: int = 0) -> Any:
    """A value for a fault's required property that its raiser did not give.

    A real host always fills them (``TaskInProgress.task`` names the task in the way), and a
    fault without one cannot be written on the wire (pyVmomi: "Required field ... not
    provided"), so the client would get a ``SystemError`` instead of the fault. The host's own
    raisers pass the real value; this covers faults injected by name (``Host.add_fault``),
    whose rule knows none: references whose ids say they are stand-ins, empty lists and
    strings, zero, the epoch, one-item lists and data objects built the same way."""
    if issubclass(kind, list):  # pyVmomi's array types: a required one holds an item
        item = _placeholder(fault, f"{prop}[0]", kind.Item, depth + 1)  # type: ignore[attr-defined]
        return kind([item] if item is not None else [])
    if kind is type:  # a type name (``UnexpectedFault.faultName``)
        return vmodl.MethodFault
    if kind is object:  # anyType
        return ""
    if issubclass(kind, VmomiSupport.ManagedObject):
        return kind(f"vcbsim-{fault}-{prop}")
    if issubclass(kind, bool):
        return False
    if issubclass(kind, str | bytes):
        return kind()
    if issubclass(kind, int | float):
        return kind(0)
    if issubclass(kind, datetime.datetime):
        return datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    if issubclass(kind, vmodl.MethodFault):
        return vmodl.fault.SystemError(msg=f"{fault}.{prop}", reason=f"{fault}.{prop}")
    if issubclass(kind, VmomiSupport.DataObject) and depth < 4:
        values = {
            p.name: _placeholder(fault, f"{prop}.{p.name}", p.type, depth + 1)
            for p in kind._GetPropertyList()  # type: ignore[attr-defined]
            if not p.flags & VmomiSupport.F_OPTIONAL
        }
        return kind(**values)
    return None


def raise_fault(name: str, message: str | None = None, /, **fields: Any) -> NoReturn:
    """Raise ``make_fault(name, message, **fields)``."""
    raise make_fault(name, message, **fields)


def fault_name(exc: BaseException) -> str:
    """The short class name of a vSphere fault (``'ApplicationQuiesceFault'``), for traces."""
    return type(exc).__name__.rsplit(".", 1)[-1]
