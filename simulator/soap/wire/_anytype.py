"""Values in an ``anyType`` position carry the type the API declares for them.

Why: a property collector value (``DynamicProperty.val``, ``PropertyChange.val``) and a
``Fetch`` result are ``xsd:anyType`` in the WSDL, so the only thing that tells a client what
it holds is the element's ``xsi:type``, and pyVmomi's serializer derives it from the Python
class of the value. The host side keeps plain Python values (an ``int`` for a ``long``
capacity, a ``str`` for an enum, a plain ``list`` for an array), which pyVmomi would write
``xsd:int`` (also above 2^31, where a Go client's ``strconv.ParseInt(..., 32)`` overflows),
``xsd:string`` where a real host writes ``VirtualMachinePowerState``, and so on. ``typed_as``
gives such a value the class of the declared type (pyVmomi's own metadata for the property
path), so both the fast encoder and pyVmomi's serializer write the host's ``xsi:type``.

What a real host writes, and what this follows: ``<val xsi:type="xsd:long">4398046511104</val>``
for ``summary.capacity`` (``DatastoreSummary.capacity`` is ``xsd:long`` in the vSphere API
reference, since 2.0), ``<val xsi:type="VirtualMachinePowerState">poweredOn</val>``, and an
array typed by its declared item type (``ArrayOfVirtualDevice`` even when every item is a
``VirtualDisk``), each item with its own ``xsi:type`` (``_codec.HostSerializer``).
"""

from __future__ import annotations

from typing import Any

from pyVmomi import VmomiSupport
from pyVmomi.VmomiSupport import Enum

__all__ = ["typed_as"]

#: the declared numeric classes an ``int`` (or ``float``) is widened to
_INTEGERS = (VmomiSupport.long, VmomiSupport.short, VmomiSupport.byte)
_FLOATS = (VmomiSupport.double, float)


def typed_as(value: Any, declared: Any) -> Any:
    """``value`` as an instance of ``declared`` (pyVmomi's declared type of the property it
    is the value of) where the two differ only in class: arrays (item by item), ``long`` /
    ``short`` / ``byte``, ``int`` where ``long`` was stored, enums, ``double``. Data objects,
    references and values of any other class are returned unchanged (their class is already
    the type the serializer writes); so is ``None``."""
    if value is None or not isinstance(declared, type) or declared is object:
        return value
    if issubclass(declared, list):
        if not isinstance(value, list):
            return value
        item = getattr(declared, "Item", object)
        if type(value) is declared and not _needs_items(item):
            return value
        return declared(typed_as(v, item) for v in value)
    cls = type(value)
    make: Any = declared
    if cls is declared or cls is bool:
        return value
    if issubclass(declared, Enum):
        return make(value) if isinstance(value, str) else value
    if declared in _INTEGERS or declared is int:
        return make(value) if isinstance(value, int) else value
    if declared in _FLOATS:
        return make(value) if isinstance(value, (int, float)) else value
    return value


def _needs_items(item: Any) -> bool:
    """Whether the items of an array of ``item`` may need a class of their own."""
    return isinstance(item, type) and (
        issubclass(item, (Enum, int, float, list)) and item is not bool
    )
