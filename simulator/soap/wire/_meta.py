"""What the codec and its fast paths share: versions, the request record, the checks'
tables and the host's serializer. A leaf module (pyVmomi only), so ``_codec.py`` imports the
fast decoder and encoder and they import this, with no cycle between them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from io import StringIO
from typing import Any

from pyVmomi import SoapAdapter, VmomiSupport
from pyVmomi.VmomiSupport import F_OPTIONAL, IsChildVersion, ManagedObject, Object

from ..._errors import VcbsimError

__all__ = [
    "DEFAULT_VERSION",
    "MAX_REQUEST_BYTES",
    "UNSAFE_ID",
    "HostSerializer",
    "Request",
    "RequestError",
    "fetch_info",
    "ns_map",
    "properties",
    "version_from_soap_action",
    "vim25_version",
    "wire_version",
]

#: The API version the endpoint advertises and answers in when a client names none.
DEFAULT_VERSION = "vim.version.v8_0_3_0"
#: Largest SOAP request accepted (a request this large is a mistake or an attack).
MAX_REQUEST_BYTES = 16 * 1024 * 1024

class RequestError(VcbsimError, ValueError):
    """The request is not a well-formed vSphere SOAP call (answered with ``InvalidRequest``)."""


@dataclass
class Request:
    """One decoded call: the method's wsdl name and info, the target, typed arguments."""

    wsdl_name: str
    info: Any
    this: Any
    version: str
    args: dict[str, Any] = field(default_factory=dict)

    def arg(self, name: str, default: Any = None) -> Any:
        return self.args.get(name, default)


def wire_version(version: str) -> str:
    """``vim.version.v8_0_3_0`` -> ``8.0.3.0``."""
    return str(VmomiSupport.versionIdMap[version])


def vim25_version(version: str) -> str:
    """``8.0.3.0`` or ``vim.version.v8_0_3_0`` -> the pyVmomi name; ``ValueError`` if not vim25."""
    name = version
    if version not in VmomiSupport.versionIdMap:
        name = VmomiSupport.versionMap.get(f"vim25/{version}", "")
    if not name or VmomiSupport.GetWsdlNamespace(name) != "urn:vim25":
        known = ", ".join(wire_version(v) for v in VmomiSupport.GetServiceVersions("vim25"))
        msg = f"API version: expected a vim25 version ({known}), got {version!r}"
        raise ValueError(msg)
    return str(name)


def version_from_soap_action(action: str | None, default: str = DEFAULT_VERSION) -> str:
    """The pyVmomi version a ``SOAPAction: urn:vim25/8.0.3.0`` header names (``default`` if
    it names none or one that is not vim25)."""
    if action:
        action = action.strip().strip('"')
        try:
            version = VmomiSupport.GetVersionFromVersionUri(action)
        except KeyError:
            version = None
        if version and VmomiSupport.GetWsdlNamespace(version) == "urn:vim25":
            return str(version)
    return default


def fetch_info(version: str) -> Any:
    """Method info for ``Fetch`` (pyVmomi 8+ reads every attribute with it; not in the WSDL
    map), with ``result`` typed ``object`` so each value carries its ``xsi:type``."""
    param = Object(name="prop", type=str, version=version, flags=0)
    return Object(
        name="Fetch",
        wsdlName="Fetch",
        type=ManagedObject,
        version=version,
        params=(param,),
        isTask=False,
        resultFlags=F_OPTIONAL,
        result=object,
        methodResult=object,
    )


#: characters no managed object id holds; pyVmomi's serializer writes ids unescaped, so an id
#: with one of them, echoed in a fault (``ManagedObjectNotFound.obj``), would break the XML
UNSAFE_ID = re.compile(r'[<>&"\x00-\x1f\x7f]')


#: (data object type, version) -> its properties as (name, required in that version)
PROPERTIES_CACHE: dict[tuple[Any, str], tuple[tuple[str, bool], ...]] = {}


def properties(typ: Any, version: str) -> tuple[tuple[str, bool], ...]:
    """A data object type's properties (pyVmomi's types and versions: a bounded set)."""
    props = PROPERTIES_CACHE.get((typ, version))
    if props is None:
        props = PROPERTIES_CACHE[typ, version] = tuple(
            (p.name, not p.flags & F_OPTIONAL and VmomiSupport.IsChildVersion(version, p.version))
            for p in typ._GetPropertyList()
        )
    return props


def ns_map(version: str) -> dict[str, str]:
    ns_map = dict(SoapAdapter.SOAP_NSMAP)
    ns_map[VmomiSupport.GetWsdlNamespace(version)] = ""
    return ns_map


class HostSerializer(SoapAdapter.SoapSerializer):  # type: ignore[misc]
    """pyVmomi's serializer, writing what a host writes where the two differ: a reference in
    an ``anyType`` slot (a ``DynamicProperty.val``, a ``Fetch`` result) is typed
    ``xsi:type="ManagedObjectReference"``. pyVmomi writes ``ManagedObject``, a name in no
    WSDL, which its own reader accepts but a client reading the WSDL (zeep, govmomi, JAX-WS)
    does not; pyVmomi already names arrays of references ``ArrayOfManagedObjectReference``."""

    def _QName(self, typ: Any, defNS: str) -> tuple[str, str]:  # noqa: N802,N803 - pyVmomi's names
        attr, name = super()._QName(typ, defNS)
        if typ is ManagedObject:
            name += "Reference"
        return attr, name

    def _Serialize(self, val: Any, info: Any, defNS: str) -> None:  # noqa: N802,N803 - pyVmomi's names
        """An array in an ``anyType`` slot: each item is written as in an ``anyType`` slot
        too, so it carries its own ``xsi:type`` (``<ManagedObjectReference type="HostSystem"
        xsi:type="ManagedObjectReference">``, ``<VirtualDevice xsi:type="VirtualDisk">``), as
        a host writes it; pyVmomi leaves items untyped, which strict clients refuse. The
        array's own element is pyVmomi's (``ArrayOfX``); so is everything else."""
        if info.type is not object or not isinstance(val, list) or not IsChildVersion(self.version, info.version):
            super()._Serialize(val, info, defNS)
            return
        if not isinstance(val, VmomiSupport.Array):
            super()._Serialize(val, info, defNS)  # pyVmomi refuses a plain list here
            return
        array: Any = val
        item_type = array.Item
        outer = Object(name=info.name, type=object, version=info.version, flags=info.flags)
        # the array element with no items written by pyVmomi, then the items
        start = StringIO()
        saved, self.writer = self.writer, start
        try:
            super()._Serialize(type(val)(), outer, defNS)
        finally:
            self.writer = saved
        text = start.getvalue()
        close = f"</{info.name}>"
        self.writer.write(text[: -len(close)] if text.endswith(close) else text.replace("/>", ">", 1))
        if SoapAdapter.isDynamicType(item_type):
            tag = "string"
        elif issubclass(item_type, ManagedObject):
            tag = "ManagedObjectReference"
        else:
            tag = VmomiSupport.GetWsdlName(item_type)
        item_info = Object(name=tag, type=object, version=info.version, flags=info.flags)
        current_ns = VmomiSupport.GetWsdlNamespace(info.version)
        for item in val:
            super()._Serialize(item, item_info, current_ns)
        self.writer.write(close)
