"""SOAP on the wire: parse requests and write responses and faults with pyVmomi's own code.

Why pyVmomi's serializer and deserializer, and not hand-written XML: every ``xsi:type`` a
client reads is then right by construction, and the endpoint accepts exactly what pyVmomi's
stub sends (and what the WSDL allows), version by version.

Security: the request is first parsed by ``defusedxml`` (a DOCTYPE, entity declarations and
external references are refused, so there is no entity expansion and no external entity),
then decoded a second time by pyVmomi's ``SoapDeserializer`` on an expat parser that refuses
the same constructs, so the typed arguments never come from an unchecked parser. A body
without ``<!`` (so without any DTD or entity) first goes to ``_fastdecode.decode_fast``, which
decodes the plain shapes pyVmomi's stub sends to the same values much faster and leaves
everything else (``None``) to this path. Likewise a response's ``returnval`` is first given to
``_fastencode.encode_fast``, which writes the values it handles byte for byte as pyVmomi's
serializer does, much faster, and leaves everything else (``None``) to pyVmomi's serializer.
"""

from __future__ import annotations

import copy
from io import StringIO
from typing import Any
from xml.parsers import expat

import defusedxml
import defusedxml.ElementTree
from pyVmomi import SoapAdapter, VmomiSupport, vmodl
from pyVmomi.VmomiSupport import F_OPTIONAL, DataObject, ManagedObject, Object

from . import _fastdecode, _fastencode
from ._meta import (
    DEFAULT_VERSION,
    MAX_REQUEST_BYTES,
    UNSAFE_ID,
    HostSerializer,
    Request,
    RequestError,
    fetch_info,
    ns_map,
    properties,
    version_from_soap_action,
    vim25_version,
    wire_version,
)

# the names this module had before the leaf module held them
_UNSAFE_ID, _ns_map, _properties = UNSAFE_ID, ns_map, properties

__all__ = [
    "DEFAULT_VERSION",
    "MAX_REQUEST_BYTES",
    "Request",
    "RequestError",
    "fetch_info",
    "parse_request",
    "serialize_fault",
    "serialize_response",
    "comparable",
    "serialize_value",
    "version_from_soap_action",
    "vim25_version",
    "wire_version",
]

_NS_SEP = " "
_SOAPENV = SoapAdapter.XMLNS_SOAPENV


def _refuse(*_: Any) -> None:
    msg = "DTDs, entity declarations and external references are not allowed in SOAP requests"
    raise RequestError(msg)


class _RequestDecoder(SoapAdapter.ExpatDeserializerNSHandlers):
    """Expat handlers for Envelope/Body/<Method>; each parameter element is handed to a
    pyVmomi ``SoapDeserializer`` with the parameter's declared type."""

    def __init__(self, parser: Any, version: str) -> None:
        super().__init__({})
        self.parser = parser
        self.version = version
        self.depth = 0
        self.in_body = False
        self.method: Any = None
        self.wsdl_name: str | None = None
        self.pending: list[tuple[Any, SoapAdapter.SoapDeserializer]] = []
        self.body_seen = False

    # expat callbacks -------------------------------------------------------------------
    def StartElementHandler(self, tag: str, attr: dict[str, str]) -> None:  # noqa: N802
        self.depth += 1
        ns, _, name = tag.rpartition(_NS_SEP)
        if self.depth == 1:
            if (ns, name) != (_SOAPENV, "Envelope"):
                msg = f"expected a soapenv:Envelope element, got {name!r}"
                raise RequestError(msg)
        elif self.depth == 2:
            self.in_body = (ns, name) == (_SOAPENV, "Body")
            self.body_seen = self.body_seen or self.in_body
        elif self.depth == 3 and self.in_body:
            if self.wsdl_name is not None:
                msg = "a SOAP body must hold exactly one method element"
                raise RequestError(msg)
            self.wsdl_name = name
            if name == "Fetch":
                self.method = fetch_info(self.version)
            else:
                try:
                    self.method = VmomiSupport.GetWsdlMethod(ns, name).info
                except KeyError:
                    msg = f"unknown method {name!r} in namespace {ns!r}"
                    raise RequestError(msg) from None
        elif self.depth == 4 and self.in_body:
            self._start_param(name, tag, attr)

    def _start_param(self, name: str, tag: str, attr: dict[str, str]) -> None:
        info: Any
        if name == "_this":
            info = Object(name="_this", type=ManagedObject, version=self.version, flags=0)
            if "type" not in attr:
                # the schema makes a reference's type optional (core-types.xsd) and some clients
                # send <_this>ServiceInstance</_this>: the endpoint finds the object by its id
                attr = {**attr, "type": "ManagedObject"}
        else:
            info = next((p for p in self.method.params if p.name == name), None)
            if info is None:
                msg = f"method {self.wsdl_name} has no parameter {name!r}"
                raise RequestError(msg)
        typ = info.type
        item = typ.Item if issubclass(typ, list) else typ
        deser = SoapAdapter.SoapDeserializer(version=self.version)
        deser.Deserialize(self.parser, item, False, self.nsMap)
        deser.StartElementHandler(tag, attr)
        # the deserializer consumes this element's end tag, then gives the handlers back
        self.depth -= 1
        self.pending.append((info, deser))

    def EndElementHandler(self, tag: str) -> None:  # noqa: N802
        if self.depth == 2:
            self.in_body = False
        self.depth -= 1

    def CharacterDataHandler(self, data: str) -> None:  # noqa: N802
        if self.depth >= 3 and self.in_body and data.strip():
            msg = "unexpected text in the SOAP body"
            raise RequestError(msg)


def _check_values(values: list[Any], version: str) -> None:
    """``RequestError`` if any managed object reference among ``values`` has an id that cannot
    be echoed, or a data object lacks a required property of ``version`` (walked without
    recursion: data objects nest as deep as the request)."""
    stack = list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, ManagedObject):
            if _UNSAFE_ID.search(value._moId or "") or _UNSAFE_ID.search(value._serverGuid or ""):
                msg = f"invalid managed object id {value._moId!r}"
                raise RequestError(msg)
        elif isinstance(value, DataObject):
            for name, required in _properties(type(value), version):
                item = getattr(value, name, None)
                if item is None and required:
                    msg = f"required property {name!r} of {VmomiSupport.GetWsdlName(type(value))} is missing"
                    raise RequestError(msg)
                stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)


def parse_request(body: bytes, version: str) -> Request:
    """Decode a SOAP request; ``RequestError`` if it is malformed, hostile or unknown."""
    if len(body) > MAX_REQUEST_BYTES:
        msg = f"request of {len(body)} bytes exceeds the {MAX_REQUEST_BYTES}-byte limit"
        raise RequestError(msg)
    # defusedxml's verdict comes first, as always; but a document without "<!" (no DOCTYPE,
    # no entity, no CDATA) that decodes is one it accepts, so that second parse of every
    # request is only done when the body has "<!" or does not decode
    suspect = b"<!" in body
    if suspect:
        _defused_check(body)
    else:
        # the common shape decodes much faster without pyVmomi's deserializer; anything else
        # (None) is decided below, exactly as before
        request = _fastdecode.decode_fast(body, version)
        if request is not None:
            return request
    try:
        return _decode(body, version)
    except Exception:
        if not suspect:
            _defused_check(body)
        raise


def _defused_check(body: bytes) -> None:
    """``RequestError`` if defusedxml refuses ``body`` or it is not XML."""
    try:
        defusedxml.ElementTree.fromstring(
            body, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DefusedXmlException as exc:
        msg = f"refused: {type(exc).__name__} ({exc})"
        raise RequestError(msg) from None
    except Exception as exc:  # ParseError and friends: not XML at all
        msg = f"malformed XML: {exc}"
        raise RequestError(msg) from None


def _decode(body: bytes, version: str) -> Request:
    parser = expat.ParserCreate(namespace_separator=_NS_SEP)
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse  # type: ignore[assignment]
    parser.buffer_text = True
    decoder = _RequestDecoder(parser, version)
    SoapAdapter.SetHandlers(parser, SoapAdapter.GetHandlers(decoder))
    try:
        parser.Parse(body, True)
    except RequestError:
        raise
    except expat.ExpatError as exc:  # the XML itself: its syntax error and where it is
        msg = f"malformed XML: {exc}"
        raise RequestError(msg) from None
    except (KeyError, TypeError, AttributeError, ValueError):
        # pyVmomi's reader failed on a value: say which call did not follow the schema, never
        # the reader's own exception text (internal detail, meaningless to a client)
        where = f"a {decoder.wsdl_name} request" if decoder.wsdl_name else "the request"
        msg = (f"cannot decode {where}: an element or value does not follow the vim25 schema "
               "(check each parameter's type and required attributes against /sdk/vim.wsdl)")
        raise RequestError(msg) from None
    if decoder.method is None or decoder.wsdl_name is None:
        msg = "the SOAP body holds no method element"
        raise RequestError(msg)

    args: dict[str, Any] = {}
    this = None
    for info, deser in decoder.pending:
        value = deser.GetResult()
        # pyVmomi honours any xsi:type the client names: a value of another type is refused
        declared = info.type.Item if issubclass(info.type, list) else info.type
        if value is not None and declared is not object and not isinstance(value, declared):
            msg = (f"{decoder.wsdl_name}: parameter {info.name!r} must be a {VmomiSupport.GetWsdlName(declared)}, "
                   f"not a {VmomiSupport.GetWsdlName(type(value))}")
            raise RequestError(msg)
        if info.name == "_this":
            this = value
        elif issubclass(info.type, list):
            args.setdefault(info.name, info.type()).append(value)
        else:
            args[info.name] = value
    if this is None:
        msg = f"{decoder.wsdl_name}: the _this parameter is missing"
        raise RequestError(msg)
    _check_values([this, *args.values()], version)
    for p in decoder.method.params:
        if not (p.flags & F_OPTIONAL) and p.name not in args:
            if issubclass(p.type, list):
                args[p.name] = p.type()
            else:
                msg = f"{decoder.wsdl_name}: required parameter {p.name!r} is missing"
                raise RequestError(msg)
    return Request(decoder.wsdl_name, decoder.method, this, version, args)


def serialize_to_str(value: Any, info: Any, version: str) -> str:
    """``SoapAdapter.SerializeToStr`` with ``HostSerializer`` and the endpoint's namespaces."""
    out = StringIO()
    HostSerializer(out, version, _ns_map(version)).Serialize(value, info)
    return out.getvalue()


#: an ``anyType`` slot, as ``encode_fast`` reads a method info (the result's type and flags)
_ANY_SLOT = Object(wsdlName="value", result=object, resultFlags=F_OPTIONAL)


def comparable(value: Any, version: str) -> str:
    """A text that is equal for values a client would read as equal (for telling whether a
    watched property changed): the fast encoder's when it handles the value, pyVmomi's
    (under the same element name) otherwise."""
    fast = _fastencode.encode_fast(value, _ANY_SLOT, version)
    return fast if fast is not None else serialize_value(value, version, name="returnval")


def serialize_value(value: Any, version: str, name: str = "val", typ: Any = object) -> str:
    """Serialize one value as the endpoint answers it (``HostSerializer``)."""
    info = Object(name=name, type=typ, version=version, flags=F_OPTIONAL)
    return serialize_to_str(value, info, version)


#: the start of every response, up to the method's response element
_RESPONSE_START = SoapAdapter.XML_HEADER + "\n" + SoapAdapter.SOAP_START


def serialize_response(wsdl_name: str, info: Any, result: Any, version: str) -> bytes:
    """A ``<{wsdl_name}Response>`` envelope holding ``result`` as ``returnval`` (written by
    ``_fastencode.encode_fast`` when it can, which writes what pyVmomi's serializer writes;
    by pyVmomi's serializer otherwise)."""
    ns = VmomiSupport.GetWsdlNamespace(version)
    text = ""
    # an empty array is no element at all (pyVmomi refuses to write one for a required result)
    if result is not None and info.result is not type(None) and not (isinstance(result, list) and not result):
        fast = _fastencode.encode_fast(result, info, version)
        if fast is not None:
            text = fast
        else:
            rinfo = Object(
                name="returnval", type=info.result, version=version, flags=info.resultFlags
            )
            text = serialize_to_str(result, rinfo, version)
        # pyVmomi marks its outermost element with the version; hosts do not send it
        text = text.replace(f' versionId="{wire_version(version)}"', "", 1)
    body = (f'{_RESPONSE_START}<{wsdl_name}Response xmlns="{ns}">{text}'
            f"</{wsdl_name}Response>{SoapAdapter.SOAP_END}")
    return body.encode("utf-8")


def serialize_fault(fault: Any, version: str) -> bytes:
    """A ``soapenv:Fault`` whose detail is the typed fault (``<InvalidLoginFault
    xsi:type="InvalidLogin">``), as pyVmomi's response deserializer reads it."""
    if not isinstance(fault, vmodl.MethodFault):
        fault = vmodl.fault.SystemError(msg=str(fault), reason=str(fault))
    text = fault.msg or type(fault).__name__
    detail_obj = copy.copy(fault)
    detail_obj.msg = None
    wsdl = VmomiSupport.GetWsdlName(type(fault))
    ns = VmomiSupport.GetWsdlNamespace(version)
    info = Object(name=f"{wsdl}Fault", type=vmodl.MethodFault, version=version, flags=0)
    writer = StringIO()
    HostSerializer(writer, version, _ns_map(version)).SerializeFaultDetail(detail_obj, info)
    # pyVmomi marks the first element it writes with the version; hosts do not send it
    detail = writer.getvalue().replace(f' versionId="{wire_version(version)}"', "", 1)
    head = f"<{wsdl}Fault"
    if detail.startswith(head):
        detail = f'{head} xmlns="{ns}"' + detail[len(head) :]
    body = (
        SoapAdapter.XML_HEADER
        + "\n"
        + SoapAdapter.SOAP_START
        + "<soapenv:Fault><faultcode>ServerFaultCode</faultcode>"
        + f"<faultstring>{SoapAdapter.XmlEscape(text)}</faultstring>"
        + f"<detail>{detail}</detail></soapenv:Fault>"
        + SoapAdapter.SOAP_END
    )
    return body.encode("utf-8")
