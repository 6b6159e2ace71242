"""A second, fast decoder for the plain shape of vSphere SOAP requests.

Why a second decoder: ``_codec._decode`` hands every parameter to pyVmomi's
``SoapDeserializer``, which runs several Python callbacks per XML element, looks every
property up by walking the class hierarchy, builds each data object with
``DataObject.__init__`` and assigns every property through ``CheckField``. That is about
70 µs for the ``RetrieveProperties`` a client sends to poll a task, most of a small call's
cost. Here the body is parsed by ElementTree's C parser (the tree is built without a single
Python callback) and walked with tables built once per (type, API version) from pyVmomi's own
type metadata (method parameters, ``_GetPropertyList()``, enum values, the defaults
``DataObject.__init__`` gives), so a request costs only the work of its own elements, and the
values are the ones pyVmomi builds: same Python types, same values, same defaults, typed
arrays, references of the class their ``type`` attribute names.

Why it falls back instead of raising: pyVmomi's decoder (with ``_codec``'s checks) is the
reference for which requests are accepted and which ``InvalidRequest`` a bad one gets.
Reproducing its every quirk and message here would make two references that drift apart.
So ``decode_fast`` accepts only a subset it decodes exactly as pyVmomi does (the shapes
pyVmomi's own stub sends, in the request's own API version) and returns ``None`` for anything
else, however harmless (a DTD, a comment, a processing instruction, an encoding other than
UTF-8, a namespace declaration it does not know, a prefixed or unknown ``xsi:type``, an
attribute it does not know, text where none belongs, an unknown element, a type it does not
decode such as ``xsd:anyType``, ``dateTime`` or ``base64Binary``, a property or parameter of a
later API version, a managed object id that cannot be echoed, a missing required value, or any
error at all). ``_codec.parse_request`` then decodes the body the old way, so the fast path
can only make accepted requests cheaper: it never changes which requests are accepted or what
a rejected one is told.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element, fromstring

from pyVmomi import SoapAdapter, VmomiSupport
from pyVmomi.VmomiSupport import (
    F_LINK,
    F_OPTIONAL,
    DataObject,
    Enum,
    IsChildVersion,
    ManagedMethod,
    ManagedObject,
)

from . import _meta

__all__ = ["decode_fast"]


class _Fallback(Exception):
    """Not the plain shape: pyVmomi's decoder decides."""


_SOAPENV = SoapAdapter.XMLNS_SOAPENV
_ENVELOPE = f"{{{_SOAPENV}}}Envelope"
_HEADER = f"{{{_SOAPENV}}}Header"
_BODY = f"{{{_SOAPENV}}}Body"
_XSI_TYPE = f"{{{VmomiSupport.XMLNS_XSI}}}type"
#: pyVmomi's stub marks each parameter element with the API version; its decoder ignores it
_VERSION_ID = "versionId"

#: XML declarations accepted (anything else, e.g. another encoding, falls back)
_XML_DECLS = (
    b'<?xml version="1.0" encoding="UTF-8"?>',
    b'<?xml version="1.0" encoding="utf-8"?>',
    b'<?xml version="1.0"?>',
)
#: the start and end of every request pyVmomi's stub sends without a SOAP header
_STUB_HEAD = (SoapAdapter.XML_HEADER + "\n" + SoapAdapter.SOAP_ENVELOPE_START
              + SoapAdapter.SOAP_BODY_START).encode()
_STUB_TAIL = (SoapAdapter.SOAP_BODY_END + SoapAdapter.SOAP_ENVELOPE_END).encode()
#: the element the body's content is parsed in: it binds soapenv and xsi as the envelope does
#: (a prefix it does not bind, soapenc or xsd, makes the parse fail: the request falls back)
_WRAP_HEAD = f'<soapenv:Body xmlns:soapenv="{_SOAPENV}" xmlns:xsi="{VmomiSupport.XMLNS_XSI}">'.encode()
_WRAP_TAIL = b"</soapenv:Body>"
#: a namespace declaration written the one way pyVmomi writes it; every ``xmlns`` in the body
#: must start one, and each must be one the context knows (so no prefix is ever rebound)
_XMLNS = re.compile(rb'xmlns(?::[A-Za-z_][\w.-]*)?="[^"]*"')
#: Python types whose decoded value pyVmomi builds as ``typ(text)``
_CALLED = frozenset({
    VmomiSupport.long, VmomiSupport.short, VmomiSupport.byte, int,
    float, VmomiSupport.double, VmomiSupport.URI, VmomiSupport.PropertyPath,
})

_new = object.__new__


def _text(elem: Element) -> str:
    """A leaf's text as pyVmomi's decoder sees it (``""`` if empty); ``_Fallback`` if the
    element has children or an attribute other than ``versionId``."""
    if len(elem):
        raise _Fallback
    attrib = elem.attrib
    if attrib and (len(attrib) > 1 or _VERSION_ID not in attrib):
        raise _Fallback
    text = elem.text
    return "" if text is None else text


def _text_in(text: str | None) -> bool:
    """Whether there is text other than white space (text where none belongs: fall back)."""
    return text is not None and not text.isspace()


# --- plans: how to decode one element of a declared type ----------------------------------------


class _Plan:
    """Decodes an element of one declared type (this base: a type not handled here)."""

    __slots__ = ()

    def decode(self, elem: Element) -> Any:
        raise _Fallback


class _Str(_Plan):
    __slots__ = ()

    def decode(self, elem: Element) -> Any:
        return _text(elem)


class _Called(_Plan):
    """Numbers, ``URI``, ``PropertyPath``: pyVmomi's value is ``typ(text)`` (so the same
    parse, the same range, the same errors, which fall back)."""

    __slots__ = ("typ",)

    def __init__(self, typ: Callable[[str], Any]) -> None:
        self.typ = typ

    def decode(self, elem: Element) -> Any:
        return self.typ(_text(elem))


class _Bool(_Plan):
    __slots__ = ()

    def decode(self, elem: Element) -> Any:
        # exactly pyVmomi's test, in its order
        text = _text(elem)
        if text == "0" or text.lower() == "false":
            return False
        if text == "1" or text.lower() == "true":
            return True
        raise _Fallback


class _Enum(_Plan):
    """Only the enum's declared values (pyVmomi's ``getattr(enum, text)`` would also return
    any other attribute of the class)."""

    __slots__ = ("values",)

    def __init__(self, typ: Any) -> None:
        self.values: dict[str, Any] = {str(v): getattr(typ, v) for v in typ.values}

    def decode(self, elem: Element) -> Any:
        value = self.values.get(_text(elem))
        if value is None:
            raise _Fallback
        return value


class _Name(_Plan):
    """``vmodl.TypeName`` and ``vmodl.MethodName``: an unprefixed name in the request's
    namespace (names that resolve are cached: a bounded set)."""

    __slots__ = ("resolve", "cache")

    def __init__(self, resolve: Callable[[str], Any]) -> None:
        self.resolve = resolve
        self.cache: dict[str, Any] = {}

    def decode(self, elem: Element) -> Any:
        text = _text(elem)
        value = self.cache.get(text)
        if value is None:
            if not text or ":" in text:  # empty is None to pyVmomi; a prefix names another ns
                raise _Fallback
            value = self.cache[text] = self.resolve(text)
        return value


class _Ref(_Plan):
    """A managed object reference: the class its ``type`` attribute names (it must be the
    declared type or a subtype), the id as text, ``serverGuid`` if given."""

    __slots__ = ("declared", "ctx")

    def __init__(self, declared: Any, ctx: _Context) -> None:
        self.declared = declared
        self.ctx = ctx

    def decode(self, elem: Element) -> Any:
        if len(elem):
            raise _Fallback
        attrib = elem.attrib
        name = attrib.get("type")
        if name is None:
            raise _Fallback
        guid = attrib.get("serverGuid")
        extra = len(attrib) - 1 - (guid is not None)
        if extra and (extra > 1 or _VERSION_ID not in attrib):
            raise _Fallback
        ctx = self.ctx
        cls = ctx.mo_types.get(name) or ctx.mo_type(name)
        if not issubclass(cls, self.declared):
            raise _Fallback
        moid = elem.text or ""
        unsafe = ctx.unsafe
        if unsafe(moid) or (guid is not None and unsafe(guid)):
            raise _Fallback
        return cls(moid, None, guid)


class _Data(_Plan):
    """A data object: built without ``DataObject.__init__`` and ``CheckField`` (the
    defaults are copied from a template that ``__init__`` made; every array is a fresh typed
    array), each child element decoded by its property's plan."""

    __slots__ = ("cls", "ctx", "defaults", "arrays", "props", "required", "subtypes")

    def __init__(self, cls: Any, ctx: _Context) -> None:
        self.cls = cls
        self.ctx = ctx
        self.defaults: dict[str, Any] = {}
        self.arrays: tuple[tuple[str, type], ...] = ()
        #: "{ns}name" -> (property name, plan, is an array)
        self.props: dict[str, tuple[str, _Plan, bool]] = {}
        #: required properties (in the request's version) whose default is None
        self.required: tuple[str, ...] = ()
        #: xsi:type value -> plan of that subtype
        self.subtypes: dict[str, _Data] = {}

    def decode(self, elem: Element) -> Any:
        attrib = elem.attrib
        plan = self
        if attrib:
            xsi = attrib.get(_XSI_TYPE)
            extra = len(attrib) - (xsi is not None)
            if extra and (extra > 1 or _VERSION_ID not in attrib):
                raise _Fallback
            if xsi is not None:
                plan = self.subtypes.get(xsi) or self.ctx.subtype(self, xsi)
        return plan.build(elem)

    def build(self, elem: Element) -> Any:
        text = elem.text
        if text is not None and not text.isspace():
            raise _Fallback
        obj: Any = _new(self.cls)
        values = obj.__dict__
        values.update(self.defaults)
        for name, array in self.arrays:
            values[name] = array()
        props = self.props
        for child in elem:
            prop = props.get(child.tag)
            tail = child.tail
            if prop is None or (tail is not None and not tail.isspace()):
                raise _Fallback
            name, plan, is_array = prop
            if is_array:
                values[name].append(plan.decode(child))
            else:
                values[name] = plan.decode(child)
        for name in self.required:
            if values[name] is None:
                raise _Fallback
        return obj


_UNHANDLED = _Plan()
_STR = _Str()
_BOOL = _Bool()


# --- methods ------------------------------------------------------------------------------------


class _Method:
    """A method's parameters by element tag, and what a missing one becomes."""

    __slots__ = ("wsdl_name", "info", "params", "required")

    def __init__(self, wsdl_name: str, info: Any) -> None:
        self.wsdl_name = wsdl_name
        self.info = info
        #: "{ns}name" -> (parameter name, plan, array type or None)
        self.params: dict[str, tuple[str, _Plan, type | None]] = {}
        #: required parameters: (name, array type to default to, or None: must be present)
        self.required: tuple[tuple[str, type | None], ...] = ()


# --- per-version context ------------------------------------------------------------------------

_LOCK = threading.RLock()


class _Context:
    """Everything cached for one API version. Plans are built under ``_LOCK`` and published
    only once complete (a plan refers to the plans of its properties, types nest recursively),
    so a concurrent request never sees a half-built table."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.ns = VmomiSupport.GetWsdlNamespace(version)
        self.tag = f"{{{self.ns}}}"
        self.declarations = frozenset({
            *(f'xmlns:{prefix}="{uri}"'.encode() for uri, prefix in SoapAdapter.SOAP_NSMAP.items()),
            f'xmlns="{self.ns}"'.encode(),
            # govmomi's envelope: <Envelope xmlns="...soap/envelope/"><Body><Method xmlns="urn:vim25">
            f'xmlns="{_SOAPENV}"'.encode(),
        })
        self.default_declaration = f'xmlns="{self.ns}"'.encode()
        self.unsafe = _meta.UNSAFE_ID.search
        self.plans: dict[Any, _Plan] = {}
        self.methods: dict[str, _Method] = {}
        self.mo_types: dict[str, Any] = {}
        self.type_names = _Name(self._type_name)
        self.method_names = _Name(self._method_name)

    # names in the request's namespace -----------------------------------------------------------
    def _type_name(self, name: str) -> Any:
        return VmomiSupport.GetWsdlType(self.ns, name)

    def _method_name(self, name: str) -> Any:
        return VmomiSupport.GetWsdlMethod(self.ns, name)

    def mo_type(self, name: str) -> Any:
        if ":" in name:
            raise _Fallback
        cls = VmomiSupport.GetWsdlType(self.ns, name)
        if not (isinstance(cls, type) and issubclass(cls, ManagedObject)):
            raise _Fallback
        self.mo_types[name] = cls
        return cls

    def subtype(self, base: _Data, name: str) -> _Data:
        """The plan of the data object type an ``xsi:type`` names (unprefixed, in the
        request's namespace, the declared type or a subtype)."""
        if ":" in name:
            raise _Fallback
        cls = VmomiSupport.GetWsdlType(self.ns, name)
        if not (isinstance(cls, type) and issubclass(cls, base.cls)):
            raise _Fallback
        plan = self.plan(cls)
        if not isinstance(plan, _Data):
            raise _Fallback
        base.subtypes[name] = plan
        return plan

    # plans ---------------------------------------------------------------------------------
    def plan(self, typ: Any) -> _Plan:
        plan = self.plans.get(typ)
        if plan is None:
            with _LOCK:
                plan = self.plans.get(typ)
                if plan is None:
                    pending: dict[Any, _Plan] = {}
                    plan = self._make(typ, pending)
                    self.plans.update(pending)
        return plan

    def _make(self, typ: Any, pending: dict[Any, _Plan]) -> _Plan:
        plan = self.plans.get(typ) or pending.get(typ)
        if plan is not None:
            return plan
        plan = self._make_new(typ, pending)
        pending[typ] = plan
        return plan

    def _make_new(self, typ: Any, pending: dict[Any, _Plan]) -> _Plan:
        if typ is str:
            return _STR
        if typ is bool:
            return _BOOL
        if typ in _CALLED:
            return _Called(typ)
        if typ is type:
            return self.type_names
        if typ is ManagedMethod:
            return self.method_names
        if not isinstance(typ, type):
            return _UNHANDLED
        if issubclass(typ, ManagedObject):
            return _Ref(typ, self)
        try:  # a type of a later version: pyVmomi would widen it
            if VmomiSupport.GetCompatibleType(typ, self.version) is not typ:
                return _UNHANDLED
        except Exception:
            return _UNHANDLED
        if issubclass(typ, Enum):
            return _Enum(typ)
        if (issubclass(typ, DataObject) and not issubclass(typ, BaseException)
                and typ.__init__ is DataObject.__init__):
            try:
                defaults = dict(vars(typ()))  # exactly what DataObject.__init__ sets
            except Exception:
                return _UNHANDLED
            plan = _Data(typ, self)
            pending[typ] = plan  # before its properties: types nest recursively
            self._fill(plan, defaults, pending)
            return plan
        return _UNHANDLED  # object (anyType), datetime, binary, Link, ...

    def _fill(self, plan: _Data, defaults: dict[str, Any], pending: dict[Any, _Plan]) -> None:
        cls = plan.cls
        plan.defaults = defaults
        plan.arrays = tuple((n, type(v)) for n, v in defaults.items() if isinstance(v, list))
        for prop in cls._GetPropertyList():
            is_array = issubclass(prop.type, list)
            item = prop.type.Item if is_array else prop.type
            if prop.flags & F_LINK or not IsChildVersion(self.version, prop.version):
                prop_plan = _UNHANDLED
            else:
                prop_plan = self._make(item, pending)
            plan.props[self.tag + prop.name] = (prop.name, prop_plan, is_array)
        plan.required = tuple(
            name for name, required in _meta.properties(cls, self.version)
            if required and defaults[name] is None
        )

    def method(self, tag: str) -> _Method:
        with _LOCK:
            method = self.methods.get(tag)
            if method is None:
                method = self._make_method(tag)
                self.methods[tag] = method
            return method

    def _make_method(self, tag: str) -> _Method:
        if not tag.startswith(self.tag):
            raise _Fallback
        name = tag[len(self.tag):]
        if name == "Fetch":
            info = _meta.fetch_info(self.version)
        else:
            info = VmomiSupport.GetWsdlMethod(self.ns, name).info
        if not IsChildVersion(self.version, info.version):
            raise _Fallback
        method = _Method(name, info)
        required: list[tuple[str, type | None]] = []
        for param in info.params:
            is_array = issubclass(param.type, list)
            item = param.type.Item if is_array else param.type
            array = param.type if is_array else None
            plan = self.plan(item) if IsChildVersion(self.version, param.version) else _UNHANDLED
            method.params[self.tag + param.name] = (param.name, plan, array)
            if not param.flags & F_OPTIONAL:
                required.append((param.name, array))
        # "_this" wins over a parameter of that name, as in _codec
        method.params[self.tag + "_this"] = ("_this", self.plan(ManagedObject), None)
        method.required = tuple(required)
        return method


_CONTEXTS: dict[str, _Context] = {}


def _context(version: str) -> _Context:
    ctx = _CONTEXTS.get(version)
    if ctx is None:
        with _LOCK:
            ctx = _CONTEXTS.get(version)
            if ctx is None:
                ctx = _CONTEXTS[version] = _Context(version)
    return ctx


# --- the decoder --------------------------------------------------------------------------------


def decode_fast(body: bytes, version: str) -> _meta.Request | None:
    """The request ``body`` decoded exactly as ``_codec._decode`` would, or ``None`` if it is
    not the plain shape this decoder handles (then ``_codec._decode`` decides)."""
    try:
        return _decode(body, version)
    except Exception:  # _Fallback, ParseError, anything pyVmomi raised: not ours to judge
        return None


def _decode(body: bytes, version: str) -> _meta.Request | None:
    if len(body) > _meta.MAX_REQUEST_BYTES:
        return None
    ctx = _CONTEXTS.get(version) or _context(version)
    soap_body: Element | None
    if body.startswith(_STUB_HEAD) and body.endswith(_STUB_TAIL):
        # what pyVmomi's stub sends: only the body's content is parsed (in an element with the
        # same xsi binding); the envelope around it is known to be well formed
        content = body[len(_STUB_HEAD):-len(_STUB_TAIL)]
        if not (_plain(content) and _declared(content, ctx)):
            return None
        soap_body = fromstring(_WRAP_HEAD + content + _WRAP_TAIL)
    else:
        soap_body = _parse_envelope(body, ctx)
        if soap_body is None:
            return None
    if len(soap_body) != 1 or _text_in(soap_body.text):
        return None
    call = soap_body[0]
    if _text_in(call.tail) or _text_in(call.text):
        return None
    method = ctx.methods.get(call.tag) or ctx.method(call.tag)

    params = method.params
    this = None
    args: dict[str, Any] = {}
    for child in call:
        param = params.get(child.tag)
        tail = child.tail
        if param is None or (tail is not None and not tail.isspace()):
            return None
        name, plan, array = param
        value = plan.decode(child)
        if array is not None:
            values = args.get(name)
            if values is None:
                values = args[name] = array()
            values.append(value)
        elif name == "_this":
            this = value
        else:
            args[name] = value
    if this is None:
        return None
    for name, array in method.required:
        if name not in args:
            if array is None:
                return None
            args[name] = array()
    return _meta.Request(method.wsdl_name, method.info, this, version, args)


def _plain(data: bytes) -> bool:
    """No DTD, entity, comment or CDATA (``<!``), no processing instruction (``<?``: it would
    split text differently) and no NUL (UTF-16/32). (``!``/``?`` are looked for first: one
    byte is found much faster than two.)"""
    return not (
        (b"!" in data and b"<!" in data) or (b"?" in data and b"<?" in data) or b"\x00" in data
    )


def _declared(data: bytes, ctx: _Context) -> bool:
    """Every namespace declaration in ``data`` is one ``ctx`` knows: each ``xmlns`` starts a
    declaration written as pyVmomi writes it, binding a known prefix to its one namespace."""
    count = data.count(b"xmlns")
    if count == 1:  # the usual: the method element's xmlns="urn:vim25"
        return ctx.default_declaration in data
    if count == 0:
        return True
    found = _XMLNS.findall(data)
    return len(found) == count and ctx.declarations.issuperset(found)


def _parse_envelope(body: bytes, ctx: _Context) -> Element | None:
    """The ``soapenv:Body`` of a whole envelope (None if it is not the plain shape)."""
    if body.startswith(_XML_DECLS):
        start = body.index(b"?>") + 2
    elif body.startswith(b"<"):
        start = 0
    else:
        return None
    if not (_plain(body[start:]) and _declared(body, ctx)):
        return None
    root = fromstring(body)
    if root.tag != _ENVELOPE or _text_in(root.text) or not 1 <= len(root) <= 2:
        return None
    if len(root) == 2:  # a header (pyVmomi's request context): ignored, as _codec does
        header, soap_body = root
        if header.tag != _HEADER or _text_in(header.tail):
            return None
    else:
        soap_body = root[0]
    if soap_body.tag != _BODY or _text_in(soap_body.tail):
        return None
    return soap_body
