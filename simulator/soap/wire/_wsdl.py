"""The vSphere WSDL the endpoint serves: ``/sdk/vim.wsdl`` and the XML schemas it includes.

A real ESX host serves ``/sdk/vimService.wsdl`` (a small service document, see
``_server._service_wsdl``) that imports ``vim.wsdl``; generic SOAP clients (zeep, suds, Java
JAX-WS stubs) read them to call the API. The documents here are laid out as a host's are:

==========================  ==============================================================
``vim.wsdl``                messages, ``VimPortType`` (every operation and its faults) and
                            ``VimBinding`` (SOAP document/literal, ``soapAction="urn:vim25/
                            <version>"``); its ``<types>`` include ``vim-messages.xsd``
``vim-messages.xsd``        the ``<Method>``/``<MethodResponse>`` elements of the ``vim.*``
                            managed types and the ``<XFault>`` elements of every fault
``query-messages.xsd``      the same for the property collector (``vmodl.query``)
``vim-types.xsd``           the ``vim.*`` data objects, enums, ``ArrayOfX`` types and the
                            ``<Method>RequestType`` types of the ``vim.*`` methods
``query-types.xsd``         the same for ``vmodl.query``
``core-types.xsd``          ``vmodl.*`` (``DynamicData``, ``MethodFault``, ...),
                            ``ManagedObjectReference`` and the ``ArrayOf`` primitives
==========================  ==============================================================

(Real hosts also serve ``reflect-types.xsd``/``reflect-messages.xsd``; pyVmomi has no
``vmodl.reflect`` types, so there is nothing to put in them and they are not served.)

Why generated and not shipped: pyVmomi does not ship the WSDL, and a copy taken from some
host would describe that host's version, not the one the endpoint is serving. Generating it
from pyVmomi's type metadata (the ``_wsdlDefMap`` definitions behind ``GetWsdlType`` and
``GetWsdlMethod``, property flags and versions, method infos), which is the very metadata the
endpoint's serializer and deserializer use, keeps the two consistent by construction: types,
properties, methods and parameters are included only as of the endpoint's version
(``IsChildVersion``), so the WSDL describes exactly what the endpoint accepts and writes (the
1,072 operations of 8.0.3.0 are exactly the vim25 methods its decoder knows). The documents
are built with ``xml.etree.ElementTree`` once per version (``documents`` is cached): for
8.0.3.0, 0.75 s the first time (when pyVmomi also loads its ~3,800 types; 0.36 s without
that) and 3.8 MB in all (0.24 MB gzipped).

Where pyVmomi's Python model differs from the wire, the wire wins (as on real hosts):

* ``MethodFault`` is a root type (no ``DynamicData`` base) without ``msg``: pyVmomi's
  serializer never writes ``msg`` (the fault detail and ``LocalizedMethodFault.fault`` are
  written with it cleared), and ``LocalizedMethodFault`` extends ``DynamicData`` with only
  ``fault`` and ``localizedMessage``;
* a property, parameter or result declared as a fault (``faultCause``, ``TaskInfo.error``,
  ...) is ``LocalizedMethodFault`` on the wire, so it is typed so;
* a managed object is a ``ManagedObjectReference``; ``TypeName``, ``MethodName``,
  ``PropertyPath`` and links are ``xsd:string``; ``anyType`` is ``xsd:anyType``;
* an array result is optional (``minOccurs="0"``): the endpoint writes no element for an
  empty array;
* every operation may fail with ``RuntimeFault`` (as the host's WSDL says, whose operations
  name that fault ``RuntimeFault`` and every other one ``<X>Fault``);
* a reference held by an ``anyType`` (a property collector value such as a VM's ``parent``)
  is written ``xsi:type="ManagedObjectReference"``, as hosts write it (``_codec.HostSerializer``;
  pyVmomi alone would write ``ManagedObject``, a type no host schema has).
"""

from __future__ import annotations

import collections
import functools
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from pyVmomi import VmomiSupport, vmodl
from pyVmomi.VmomiSupport import F_OPTIONAL, DataObject, Enum, ManagedObject

from ._codec import DEFAULT_VERSION, wire_version

__all__ = ["DOCUMENT_NAMES", "document", "documents"]

NS = "urn:vim25"
XSD = "http://www.w3.org/2001/XMLSchema"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP_HTTP = "http://schemas.xmlsoap.org/soap/http"

WSDL = "vim.wsdl"
#: the ``.xsd`` documents: (name, documents it includes); the order is the include order
_SCHEMAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core-types.xsd", ()),
    ("query-types.xsd", ("core-types.xsd",)),
    ("vim-types.xsd", ("core-types.xsd", "query-types.xsd")),
    ("query-messages.xsd", ("query-types.xsd",)),
    ("vim-messages.xsd", ("query-messages.xsd", "vim-types.xsd")),
)
#: every document served under ``/sdk/``
DOCUMENT_NAMES: tuple[str, ...] = (WSDL, *(name for name, _ in _SCHEMAS))

#: Python types written as XML Schema built-ins, and their names there
_XSD_TYPES: dict[Any, str] = {
    bool: "boolean",
    VmomiSupport.byte: "byte",
    VmomiSupport.short: "short",
    int: "int",
    VmomiSupport.long: "long",
    float: "float",
    VmomiSupport.double: "double",
    str: "string",
    VmomiSupport.URI: "anyURI",
    VmomiSupport.binary: "base64Binary",
    datetime: "dateTime",
    object: "anyType",
    # written as their names (pyVmomi's serializer: xsi:type="xsd:string")
    type: "string",
    VmomiSupport.ManagedMethod: "string",
    VmomiSupport.PropertyPath: "string",
    VmomiSupport.Link: "string",
}
#: the built-ins that get an ``ArrayOfX`` whether or not a property uses one (values of
#: ``anyType`` properties, such as an option's value, may be any of them)
_ARRAY_PRIMITIVES = ("boolean", "byte", "short", "int", "long", "float", "double", "string",
                     "anyURI", "base64Binary", "dateTime", "anyType")
_MOREF = "ManagedObjectReference"


def _module(vmodl_name: str) -> str:
    """Which pair of documents a type or a managed type's methods belong to."""
    if vmodl_name.startswith("vmodl.query."):
        return "query"
    if vmodl_name.startswith("vmodl."):
        return "core"
    return "vim"


def _types_doc(module: str) -> str:
    return f"{module}-types.xsd"


def _messages_doc(module: str) -> str:
    return "vim-messages.xsd" if module == "core" else f"{module}-messages.xsd"


class _Builder:
    """One version's documents, from pyVmomi's metadata."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.method_fault = vmodl.MethodFault
        self.localized_fault = vmodl.LocalizedMethodFault
        self.dynamic_data = VmomiSupport.GetWsdlType(NS, "DynamicData")
        self.data: list[Any] = []
        self.enums: list[Any] = []
        self.managed: list[Any] = []
        for (ns, name), _definition in list(VmomiSupport._wsdlDefMap.items()):
            if ns != NS:
                continue
            typ = VmomiSupport.GetWsdlType(ns, name)
            if typ in (DataObject, ManagedObject) or not self.current(typ._version):
                continue
            if issubclass(typ, DataObject):
                self.data.append(typ)
            elif issubclass(typ, ManagedObject):
                self.managed.append(typ)
            elif issubclass(typ, Enum):
                self.enums.append(typ)
        self.data.sort(key=VmomiSupport.GetWsdlName)
        self.enums.sort(key=VmomiSupport.GetWsdlName)
        self.managed.sort(key=VmomiSupport.GetWsdlName)
        self.faults = [t for t in self.data if issubclass(t, self.method_fault) and t is not self.localized_fault]
        self.methods = [
            (mo, info)
            for mo in self.managed
            for info in sorted(mo._methodInfo.values(), key=lambda m: m.wsdlName)
            if self.current(info.version)
        ]
        #: local names of the types some property, parameter or result holds an array of
        self.arrays: set[str] = set(_ARRAY_PRIMITIVES) | {_MOREF}
        #: the ``XRequestType`` name of each method's wsdl name
        self.request_types = self._request_type_names()
        # a managed object's array properties reach clients as xsi:type="ArrayOfX" values
        for mo in self.managed:
            for p in mo._GetPropertyList(includeBaseClassProps=False):
                if self.current(p.version):
                    self.type_name(p.type)

    def current(self, version: str) -> bool:
        return bool(VmomiSupport.IsChildVersion(self.version, version))

    # type references ---------------------------------------------------------------------
    def type_name(self, typ: Any) -> tuple[str, bool]:
        """``(qualified name, is an array)`` of a declared type, as it is on the wire."""
        is_array = isinstance(typ, type) and issubclass(typ, list) and hasattr(typ, "Item")
        item = typ.Item if is_array else typ
        if isinstance(item, type) and issubclass(item, ManagedObject):
            local, prefix = _MOREF, "vim25"
        elif isinstance(item, type) and issubclass(item, self.method_fault):
            local, prefix = VmomiSupport.GetWsdlName(self.localized_fault), "vim25"
        elif isinstance(item, type) and issubclass(item, (DataObject, Enum)):
            local, prefix = VmomiSupport.GetWsdlName(item), "vim25"
        else:
            local, prefix = _XSD_TYPES[item], "xsd"
        if is_array:
            self.arrays.add(local)
        return f"{prefix}:{local}", is_array

    def element(self, parent: ET.Element, name: str, typ: Any, optional: bool,
                qname: str | None = None) -> ET.Element:
        """``<element name type [minOccurs] [maxOccurs]>`` of a property or parameter."""
        ref, is_array = self.type_name(typ)
        attrs = {"name": name, "type": qname or ref}
        if optional:
            attrs["minOccurs"] = "0"
        if is_array:
            attrs["maxOccurs"] = "unbounded"
        return ET.SubElement(parent, "element", attrs)

    # the schemas ---------------------------------------------------------------------------
    def data_type(self, typ: Any) -> tuple[Any, list[Any]]:
        """A data object's wire base type (``None``: a root) and its own properties."""
        props = [p for p in typ._GetPropertyList(includeBaseClassProps=False) if self.current(p.version)]
        if typ is self.method_fault:
            return None, [p for p in props if p.name != "msg"]
        if typ is self.localized_fault:
            return self.dynamic_data, props
        base = typ.__bases__[0]
        return (None if base is DataObject else base), props

    def complex_type(self, schema: ET.Element, typ: Any) -> None:
        name = VmomiSupport.GetWsdlName(typ)
        base, props = self.data_type(typ)
        node = ET.SubElement(schema, "complexType", {"name": name})
        if base is not None:
            content = ET.SubElement(node, "complexContent")
            node = ET.SubElement(content, "extension", {"base": f"vim25:{VmomiSupport.GetWsdlName(base)}"})
        sequence = ET.SubElement(node, "sequence")
        for p in props:
            optional = bool(p.flags & F_OPTIONAL)
            if typ is self.localized_fault and p.name == "fault":
                # the fault itself (with its xsi:type), not wrapped again
                self.element(sequence, p.name, p.type, optional, qname=f"vim25:{VmomiSupport.GetWsdlName(p.type)}")
            else:
                self.element(sequence, p.name, p.type, optional)

    def enum_type(self, schema: ET.Element, typ: Any) -> None:
        node = ET.SubElement(schema, "simpleType", {"name": VmomiSupport.GetWsdlName(typ)})
        restriction = ET.SubElement(node, "restriction", {"base": "xsd:string"})
        for value in typ.values:
            ET.SubElement(restriction, "enumeration", {"value": str(value)})

    def array_type(self, schema: ET.Element, local: str) -> None:
        prefix = "xsd" if local in _ARRAY_PRIMITIVES else "vim25"
        node = ET.SubElement(schema, "complexType", {"name": "ArrayOf" + VmomiSupport.Capitalize(local)})
        sequence = ET.SubElement(node, "sequence")
        ET.SubElement(sequence, "element", {"name": local, "type": f"{prefix}:{local}",
                                            "minOccurs": "0", "maxOccurs": "unbounded"})

    def moref_type(self, schema: ET.Element) -> None:
        node = ET.SubElement(schema, "complexType", {"name": _MOREF})
        content = ET.SubElement(node, "simpleContent")
        extension = ET.SubElement(content, "extension", {"base": "xsd:string"})
        # the host's core-types.xsd leaves "type" optional (JAX-WS stubs generated from it do
        # not mark it required); the endpoint finds a reference sent without it by its id
        ET.SubElement(extension, "attribute", {"name": "type", "type": "xsd:string", "use": "optional"})
        ET.SubElement(extension, "attribute", {"name": "serverGuid", "type": "xsd:string", "use": "optional"})

    def _request_type_names(self) -> dict[str, str]:
        """``ReconfigVM_Task`` -> ``ReconfigVMRequestType``, as hosts name them (the full
        name where dropping ``_Task`` would make two alike)."""
        names: dict[str, str] = {}
        taken = {VmomiSupport.GetWsdlName(t) for t in (*self.data, *self.enums)}
        short = [info.wsdlName.removesuffix("_Task") for _, info in self.methods]
        counts = collections.Counter(short)
        for (_, info), stem in zip(self.methods, short, strict=True):
            if counts[stem] > 1 or f"{stem}RequestType" in taken:
                stem = info.wsdlName
            names[info.wsdlName] = f"{stem}RequestType"
        return names

    def request_type(self, schema: ET.Element, info: Any) -> None:
        node = ET.SubElement(schema, "complexType", {"name": self.request_types[info.wsdlName]})
        sequence = ET.SubElement(node, "sequence")
        ET.SubElement(sequence, "element", {"name": "_this", "type": f"vim25:{_MOREF}"})
        for p in info.params:
            if self.current(p.version):
                self.element(sequence, p.name, p.type, bool(p.flags & F_OPTIONAL))

    def method_elements(self, schema: ET.Element, info: Any) -> None:
        ET.SubElement(schema, "element", {"name": info.wsdlName,
                                          "type": f"vim25:{self.request_types[info.wsdlName]}"})
        response = ET.SubElement(schema, "element", {"name": f"{info.wsdlName}Response"})
        node = ET.SubElement(response, "complexType")
        if info.result is not type(None):
            sequence = ET.SubElement(node, "sequence")
            is_array = issubclass(info.result, list)
            # an empty array is no element at all (see _codec.serialize_response)
            self.element(sequence, "returnval", info.result, bool(info.resultFlags & F_OPTIONAL) or is_array)

    def schemas(self) -> dict[str, ET.Element]:
        docs = {name: _schema_root(includes) for name, includes in _SCHEMAS}
        for typ in self.data:
            self.complex_type(docs[_types_doc(_module(typ.__name__))], typ)
        for typ in self.enums:
            self.enum_type(docs[_types_doc(_module(typ.__name__))], typ)
        self.moref_type(docs["core-types.xsd"])
        for mo, info in self.methods:
            module = _module(mo.__name__)
            self.request_type(docs[_types_doc(module)], info)
            self.method_elements(docs[_messages_doc(module)], info)
        for typ in self.faults:
            name = VmomiSupport.GetWsdlName(typ)
            ET.SubElement(docs[_messages_doc(_module(typ.__name__))], "element",
                          {"name": f"{name}Fault", "type": f"vim25:{name}"})
        # last: every property, parameter and result above noted the arrays it needs
        modules = {VmomiSupport.GetWsdlName(t): _module(t.__name__) for t in (*self.data, *self.enums)}
        for local in sorted(self.arrays):
            self.array_type(docs[_types_doc(modules.get(local, "core"))], local)
        return docs

    # the WSDL ------------------------------------------------------------------------------
    def operation_faults(self, info: Any) -> list[str]:
        """The wsdl names of the faults an operation declares, then ``RuntimeFault``."""
        names: list[str] = []
        for fault in (*(info.faults or ()), "vmodl.RuntimeFault"):
            typ = VmomiSupport.GetVmodlType(fault)
            name = VmomiSupport.GetWsdlName(typ)
            if self.current(typ._version) and name not in names:
                names.append(name)
        return names

    def wsdl(self) -> ET.Element:
        root = ET.Element("definitions", {
            "targetNamespace": NS,
            "xmlns": WSDL_NS,
            "xmlns:soap": SOAP_NS,
            "xmlns:vim25": NS,
            "xmlns:xsd": XSD,
        })
        types = ET.SubElement(root, "types")
        schema = ET.SubElement(types, "schema", {
            "targetNamespace": NS,
            "xmlns": XSD,
            "xmlns:vim25": NS,
            "xmlns:xsd": XSD,
            "elementFormDefault": "qualified",
        })
        ET.SubElement(schema, "include", {"schemaLocation": "vim-messages.xsd"})
        for typ in self.faults:
            name = VmomiSupport.GetWsdlName(typ)
            message = ET.SubElement(root, "message", {"name": f"{name}FaultMsg"})
            ET.SubElement(message, "part", {"name": "fault", "element": f"vim25:{name}Fault"})
        for _, info in self.methods:
            for suffix, element in (("RequestMsg", info.wsdlName), ("ResponseMsg", f"{info.wsdlName}Response")):
                message = ET.SubElement(root, "message", {"name": info.wsdlName + suffix})
                ET.SubElement(message, "part", {"name": "parameters", "element": f"vim25:{element}"})
        port_type = ET.SubElement(root, "portType", {"name": "VimPortType"})
        binding = ET.SubElement(root, "binding", {"name": "VimBinding", "type": "vim25:VimPortType"})
        ET.SubElement(binding, "soap:binding", {"style": "document", "transport": SOAP_HTTP})
        action = f"urn:vim25/{wire_version(self.version)}"
        for _, info in self.methods:
            name = info.wsdlName
            faults = self.operation_faults(info)
            operation = ET.SubElement(port_type, "operation", {"name": name})
            ET.SubElement(operation, "input", {"message": f"vim25:{name}RequestMsg"})
            ET.SubElement(operation, "output", {"message": f"vim25:{name}ResponseMsg"})
            for fault in faults:
                ET.SubElement(operation, "fault", {"name": _fault_name(fault), "message": f"vim25:{fault}FaultMsg"})
            operation = ET.SubElement(binding, "operation", {"name": name})
            ET.SubElement(operation, "soap:operation", {"soapAction": action, "style": "document"})
            for direction in ("input", "output"):
                ET.SubElement(ET.SubElement(operation, direction), "soap:body", {"use": "literal"})
            for fault in faults:
                node = ET.SubElement(operation, "fault", {"name": _fault_name(fault)})
                ET.SubElement(node, "soap:fault", {"name": _fault_name(fault), "use": "literal"})
        return root


def _fault_name(fault: str) -> str:
    """An operation's name for a fault, as hosts' WSDLs have it."""
    return fault if fault == "RuntimeFault" else f"{fault}Fault"


def _schema_root(includes: Iterable[str]) -> ET.Element:
    root = ET.Element("schema", {
        "targetNamespace": NS,
        "xmlns": XSD,
        "xmlns:vim25": NS,
        "xmlns:xsd": XSD,
        "elementFormDefault": "qualified",
    })
    for name in includes:
        ET.SubElement(root, "include", {"schemaLocation": name})
    return root


def _serialize(root: ET.Element) -> bytes:
    ET.indent(root, space="   ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def documents(version: str = DEFAULT_VERSION) -> Mapping[str, bytes]:
    """Every document of ``DOCUMENT_NAMES`` for a vim25 version (pyVmomi's name, such as
    ``vim.version.v8_0_3_0``), generated once per version."""
    return _documents(version)


@functools.lru_cache(maxsize=8)
def _documents(version: str) -> Mapping[str, bytes]:
    builder = _Builder(version)
    docs = {name: _serialize(root) for name, root in builder.schemas().items()}
    docs[WSDL] = _serialize(builder.wsdl())
    return MappingProxyType({name: docs[name] for name in DOCUMENT_NAMES})


def document(name: str, version: str = DEFAULT_VERSION) -> bytes:
    """The document called ``name`` (one of ``DOCUMENT_NAMES``; ``KeyError`` otherwise)."""
    if name not in DOCUMENT_NAMES:
        raise KeyError(name)
    return documents(version)[name]
