"""A second, fast serializer for the values the endpoint answers with.

Why a second serializer: ``_codec.serialize_response`` hands each result to pyVmomi's
``SoapSerializer``, which, for every element it writes, checks the property's version, asks
``GetWsdlNamespace`` for its namespace, walks the class hierarchy for the property list
(``_GetPropertyList()``), asks ``GetQualifiedWsdlName`` under pyVmomi's global lock for every
``xsi:type``, builds an ``Object`` per array item and formats through a ``StringIO``. That is
15 to 20 µs for the one-property ``ObjectContent`` a client polls a task with, 45 µs for a
whole ``TaskInfo`` and 400 µs for a VM's ``config``: most of a small call's cost, paid under
the endpoint's lock (``benchmarks/bench_encode.py``). Here every decision that depends only
on types is taken once per (property, value class, API version), from pyVmomi's own type
metadata (property lists, types, flags and versions, array item types, ``GetCompatibleType``,
the ``SoapSerializer``'s own ``_QName`` and outermost attributes), and kept as small writers;
a value costs only the work of its own elements (5 to 7 times less).

The writers follow ``SoapSerializer._Serialize`` and ``_SerializeDataObject`` branch by branch
(dispatch on the value's class in pyVmomi's order; ``xsi:type`` where the value's type is not
the declared one: ``object`` slots, subtypes, ``ArrayOfX``, ``xsd:string`` for type and method
names and property paths; a ``MethodFault`` written as the ``LocalizedMethodFault`` pyVmomi
wraps it in, its ``msg`` moved to ``localizedMessage``; ``GetCompatibleType`` widening; the
outermost ``versionId``; strings escaped as ``XmlEscape`` does, ids and enums not at all).

Why it falls back instead of guessing: pyVmomi's serializer is the reference for what a client
reads, and a second reference would drift from it. So ``encode_fast`` returns text only for
values it writes byte for byte as pyVmomi does, and ``None`` for anything else, however
harmless (a ``Link`` property, a type or property in another XML namespace, a plain list in an
``object`` slot, a string class it does not know such as ``bytes`` or a ``str`` subclass, a
fault ``copy.copy`` would choke on, a value pyVmomi would refuse such as a missing required
property, or any error at all). ``_codec.serialize_response`` then runs pyVmomi's serializer
as before, so the fast path can only make answers cheaper: it never changes what a client is
told, or which answers fail.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from io import StringIO
from typing import Any

from pyVmomi import Iso8601, SoapAdapter, VmomiSupport
from pyVmomi.VmomiSupport import (
    F_LINK,
    F_OPTIONAL,
    Array,
    DataObject,
    Enum,
    GetCompatibleType,
    GetQualifiedWsdlName,
    IsChildVersion,
    ManagedMethod,
    ManagedObject,
    binary,
)

from . import _meta

__all__ = ["encode_fast", "freeze"]

_MethodFault: Any = VmomiSupport.GetVmodlType("vmodl.MethodFault")
_LMF: Any = VmomiSupport.GetVmodlType("vmodl.LocalizedMethodFault")
_STRING_ARRAY: Any = VmomiSupport.GetVmodlType("string[]")
_MO_ARRAY: Any = VmomiSupport.GetVmodlType("vmodl.ManagedObject[]")
#: the string classes pyVmomi writes with ``XmlEscape`` (known not to override what it calls)
_TEXT_CLASSES = frozenset({str, VmomiSupport.PropertyPath, VmomiSupport.URI})

#: writes one value: (value, attributes for its start tag, output parts)
Writer = Callable[[Any, str, list[str]], None]
#: writes the properties of one data object into the output parts
Body = Callable[[Any, list[str]], None]


class _Fallback(Exception):
    """Not a value written here: pyVmomi's serializer decides."""


def _refuse(val: Any, attr: str, out: list[str]) -> None:
    """The writer of a value class that is not handled (cached, so it is refused quickly)."""
    raise _Fallback


def _escape(text: str) -> str:
    """``SoapAdapter.XmlEscape`` (``&``, ``>``, ``<``; quotes are left alone), without the
    three copies when there is nothing to escape."""
    if "&" in text or "<" in text or ">" in text:
        return text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")
    return text


def _iso8601(dt: datetime) -> str:
    """``Iso8601.ISO8601Format``: computed from ``isoformat()`` for the common case (a plain
    UTC ``datetime`` of a four-digit year: ``strftime`` does not pad smaller years), pyVmomi's
    own function otherwise (other time zones, naive values written with the local offset)."""
    if dt.tzinfo is UTC and dt.__class__ is datetime and dt.year >= 1000:
        text = dt.isoformat()[:-6]  # "+00:00"
        if dt.microsecond:  # six digits, trailing zeros stripped (at least one is not zero)
            text = text.rstrip("0")
        return text + "Z"
    return str(Iso8601.ISO8601Format(dt))


# --- slots: one element position and the writers of each value class seen there ---------------


class _Slot:
    """One element position, pyVmomi's ``info`` (name, declared type, flags, version), and a
    writer per value class seen there (made on first sight, from the class alone)."""

    __slots__ = ("ctx", "name", "typ", "flags", "version", "optional", "is_object", "skip_empty",
                 "same_ns", "writers", "direct")

    def __init__(self, ctx: _Context, name: str, typ: Any, flags: int, version: str) -> None:
        self.ctx = ctx
        self.name = name
        self.typ = typ
        self.flags = flags
        self.version = version
        self.optional = bool(flags & F_OPTIONAL)
        self.is_object = typ is object
        #: an empty list here writes nothing (an ``object`` slot writes a typed empty array)
        self.skip_empty = self.optional and not self.is_object
        #: pyVmomi would declare another default namespace on this element: not handled
        self.same_ns = VmomiSupport.GetWsdlNamespace(version) == ctx.ns
        self.writers: dict[Any, Writer] = {}
        #: writers of faults written directly (``_SerializeDataObject``, the ``fault`` of a
        #: ``LocalizedMethodFault``)
        self.direct: dict[Any, Writer] = {}

    def put(self, val: Any, attr: str, out: list[str]) -> None:
        """``SoapSerializer._Serialize`` of ``val`` here (the version was checked when the
        property was planned)."""
        if val is None:
            if self.optional:
                return
            raise _Fallback  # pyVmomi: 'Field ... is not optional'
        write = self.writers.get(val.__class__) or self.writer(val.__class__)
        write(val, attr, out)

    def writer(self, cls: Any) -> Writer:
        with _LOCK:
            write = self.writers.get(cls)
            if write is None:
                try:
                    write = self._make(cls) if self.same_ns else _refuse
                except _Fallback:
                    write = _refuse
                except Exception:  # pyVmomi's metadata refuses this class (no wsdl name, ...)
                    write = _refuse
                self.writers[cls] = write
        return write

    def direct_writer(self, cls: Any) -> Writer:
        with _LOCK:
            write = self.direct.get(cls)
            if write is None:
                try:
                    write = self._make_data(cls, direct=True)
                except Exception:
                    write = _refuse
                self.direct[cls] = write
        return write

    # making writers: SoapSerializer._Serialize's branches, in its order -----------------------
    def _xsi(self, typ: Any) -> str:
        return self.ctx.xsi_type(typ) if self.is_object else ""

    def _make(self, cls: Any) -> Writer:
        if issubclass(cls, DataObject):
            if issubclass(cls, _MethodFault):
                return self._make_fault(cls)
            return self._make_data(cls, direct=False)
        if issubclass(cls, ManagedObject):
            return self._make_ref(cls)
        if issubclass(cls, list):
            return self._make_list(cls)
        if issubclass(cls, type):  # a type name (pyVmomi: isinstance(val, type))
            return self._make_leaf(self.ctx.xsd_string if self.is_object else "", self.ctx.type_name)
        if issubclass(cls, ManagedMethod):
            return self._make_leaf(self.ctx.xsd_string if self.is_object else "", _method_name)
        if issubclass(cls, datetime):
            return self._make_leaf(self._xsi(cls), _iso8601)
        if issubclass(cls, binary):
            return self._make_leaf(self._xsi(cls), _base64)
        if issubclass(cls, bool):
            return self._make_leaf(self._xsi(cls), _bool)
        if issubclass(cls, (float, int)):  # pyVmomi's numeric_types
            return self._make_leaf(self._xsi(cls), str)
        if issubclass(cls, Enum):
            return self._make_leaf(self._xsi(cls), None)  # written as is, not escaped
        if cls in _TEXT_CLASSES:
            if self.is_object:
                xsi = self.ctx.xsd_string if cls is VmomiSupport.PropertyPath else self._xsi(cls)
            else:
                xsi = ""
            return self._make_leaf(xsi, _escape)
        raise _Fallback  # bytes, Link, other classes: pyVmomi's own path

    def _make_leaf(self, xsi: str, text: Callable[[Any], str] | None) -> Writer:
        head = "<" + self.name
        tail = xsi + ">"
        close = f"</{self.name}>"
        if text is None:
            def write_raw(val: Any, attr: str, out: list[str]) -> None:
                out.append(f"{head}{attr}{tail}{val}{close}")
            return write_raw

        def write(val: Any, attr: str, out: list[str]) -> None:
            out.append(f"{head}{attr}{tail}{text(val)}{close}")
        return write

    def _make_ref(self, cls: Any) -> Writer:
        """``<name [xsi:type="ManagedObject"] [serverGuid="g"] type="Class">id</name>``: the id
        and the guid are not escaped (as pyVmomi writes them)."""
        head = "<" + self.name
        xsi = self._xsi(ManagedObject)
        tail = f' type="{GetQualifiedWsdlName(cls)[1]}">'
        close = f"</{self.name}>"

        def write(val: Any, attr: str, out: list[str]) -> None:
            guid = val._serverGuid
            if guid is None:
                out.append(f"{head}{attr}{xsi}{tail}{val._moId}{close}")
            else:
                out.append(f'{head}{attr}{xsi} serverGuid="{guid}"{tail}{val._moId}{close}')
        return write

    def _make_list(self, cls: Any) -> Writer:
        ctx = self.ctx
        if not self.is_object:
            # the items are written as the slot itself, one element each; the list's own start
            # tag attributes (the outermost versionId too) are dropped, as pyVmomi drops them
            item = ctx.slot(self.name, self.typ.Item, self.flags, self.version)
            skip_empty = self.skip_empty

            def write_items(val: Any, attr: str, out: list[str]) -> None:
                if not val:
                    if skip_empty:
                        return
                    raise _Fallback  # pyVmomi: 'Field ... not optional'
                for it in val:
                    item.put(it, "", out)
            return write_items
        if not issubclass(cls, Array):
            raise _Fallback  # pyVmomi needs the item type of a list in an anyType slot
        item_type = cls.Item
        if SoapAdapter.isDynamicType(item_type):
            tag, typ = "string", _STRING_ARRAY
        elif issubclass(item_type, ManagedObject):
            tag, typ = "ManagedObjectReference", _MO_ARRAY
        else:
            tag, typ = GetQualifiedWsdlName(item_type)[1], cls
        xsi = ctx.xsi_type(typ, array=True)
        # each item as in an anyType slot: it carries its own xsi:type (_codec.HostSerializer)
        item = ctx.slot(tag, object, self.flags, self.version)
        head = "<" + self.name
        tail = xsi + ">"
        close = f"</{self.name}>"
        token = object()  # this writer's key in a frozen value's memo

        def write_array(val: Any, attr: str, out: list[str]) -> None:
            memo = val.__dict__.get(_MEMO)
            if memo is not None:
                text = memo.get((token, attr))
                if text is None:
                    parts: list[str] = []
                    write_array_now(val, attr, parts)
                    text = memo[token, attr] = "".join(parts)
                out.append(text)
                return
            write_array_now(val, attr, out)

        def write_array_now(val: Any, attr: str, out: list[str]) -> None:
            out.append(f"{head}{attr}{tail}")
            for it in val:
                kept = getattr(it, "__dict__", _NO_MEMO).get(_MEMO)
                if kept is None:
                    item.put(it, "", out)
                    continue
                text = kept.get(token)
                if text is None:
                    parts: list[str] = []
                    item.put(it, "", parts)
                    text = kept[token] = "".join(parts)
                out.append(text)
            out.append(close)
        return write_array

    def _make_data(self, cls: Any, *, direct: bool) -> Writer:
        """``_SerializeDataObject``: ``xsi:type`` when the value's type, widened to one of the
        API version, is not the declared type; ``direct``: the ``fault`` of a
        ``LocalizedMethodFault``, written from a copy whose ``msg`` is None."""
        if self.flags & F_LINK:
            raise _Fallback  # pyVmomi writes the key of the linked object
        ctx = self.ctx
        dyn = GetCompatibleType(cls, ctx.version)
        xsi = ctx.xsi_type(dyn) if dyn != self.typ else ""
        plan = ctx.plan(cls)
        if dyn is _LMF:
            if not direct:  # a LocalizedMethodFault is a MethodFault: written wrapped
                raise _Fallback
            body = plan.lmf_body
        elif direct:
            body = plan.nomsg_body
            if not issubclass(cls, _MethodFault):
                raise _Fallback
        else:
            body = plan.body
        head = "<" + self.name
        tail = xsi + ">"
        close = f"</{self.name}>"
        if direct:
            names = plan.names

            def write_fault(val: Any, attr: str, out: list[str]) -> None:
                # pyVmomi copies the fault (copy.copy): what that refuses is left to it
                if val.args or not names.issuperset(val.__dict__):
                    raise _Fallback
                out.append(f"{head}{attr}{tail}")
                body(val, out)
                out.append(close)
            return write_fault

        def write(val: Any, attr: str, out: list[str]) -> None:
            out.append(f"{head}{attr}{tail}")
            body(val, out)
            out.append(close)
        return write

    def _make_fault(self, cls: Any) -> Writer:
        """A fault in ``_Serialize``: pyVmomi writes ``LocalizedMethodFault(fault=val,
        localizedMessage=val.msg)`` (declared ``object`` stays ``object``, anything else
        becomes ``LocalizedMethodFault``); every other property of that wrapper is unset."""
        if self.flags & F_LINK:
            raise _Fallback
        ctx = self.ctx
        lmf = ctx.lmf_slots
        if lmf is None:
            raise _Fallback
        fault_slot, message_slot = lmf
        declared = object if self.is_object else _LMF
        dyn = GetCompatibleType(_LMF, ctx.version)
        xsi = ctx.xsi_type(dyn) if dyn != declared else ""
        head = "<" + self.name
        tail = xsi + ">"
        close = f"</{self.name}>"
        direct = fault_slot.direct

        def write(val: Any, attr: str, out: list[str]) -> None:
            out.append(f"{head}{attr}{tail}")
            (direct.get(val.__class__) or fault_slot.direct_writer(val.__class__))(val, "", out)
            if message_slot is not None:
                message_slot.put(val.msg, "", out)
            out.append(close)
        return write


def _method_name(val: Any) -> str:
    return str(val.info.wsdlName)


def _base64(val: Any) -> str:
    return base64.b64encode(val).decode("ascii")


def _bool(val: Any) -> str:
    return "true" if val else "false"


#: the attribute of a frozen value that holds its text per writer (``freeze``)
_MEMO = "_vcbsim_encoded"
_NO_MEMO: dict[str, Any] = {}


def freeze(value: Any) -> Any:
    """Mark a typed array (a pyVmomi ``Array``) or a data object as never to change again, it
    and everything in it, so that its text, once written in an ``anyType`` position (a
    property collector value: the array, or an item of such an array), is kept on it and
    written again as is (``_vmprops.build_devices`` keeps a VM's device list so until the VM
    changes, and the controllers every such list shares). The caller owns the promise: a
    frozen value that is changed afterwards would be answered as it was. Returns ``value``."""
    if isinstance(value, Array | DataObject):
        value.__dict__.setdefault(_MEMO, {})
    return value


# --- data object plans ------------------------------------------------------------------------


class _Plan:
    """The properties of one data object class in one API version (those of later versions
    are left out, as pyVmomi skips them), and its body writers."""

    __slots__ = ("names", "body", "nomsg_body", "lmf_body")

    def __init__(self, ctx: _Context, cls: Any) -> None:
        props = cls._GetPropertyList()
        if any(hasattr(cls, p.name) for p in props):
            raise _Fallback  # a class attribute would shadow the instance's value
        self.names = frozenset(p.name for p in props)
        slots = tuple(
            (p.name, ctx.slot(p.name, p.type, p.flags, p.version))
            for p in props if IsChildVersion(ctx.version, p.version)
        )
        self.body = _body(slots)
        nomsg = tuple(s for s in slots if s[0] != "msg")
        self.nomsg_body = _body(nomsg)
        if issubclass(cls, _LMF):
            fault = next(slot for name, slot in nomsg if name == "fault")
            self.lmf_body = _lmf_body(nomsg, fault)
        else:
            self.lmf_body = _refuse_body


def _refuse_body(val: Any, out: list[str]) -> None:
    raise _Fallback


def _body(slots: tuple[tuple[str, _Slot], ...]) -> Body:
    """Writes the properties in order: ``_Serialize`` of each, the ``None`` and empty-list
    rules inlined (the common unset properties cost no call)."""

    def body(val: Any, out: list[str]) -> None:
        values = val.__dict__
        for name, slot in slots:
            v = values[name]
            if v is None:
                if slot.optional:
                    continue
                raise _Fallback
            if not v and slot.skip_empty and isinstance(v, list):
                continue
            (slot.writers.get(v.__class__) or slot.writer(v.__class__))(v, "", out)
    return body


def _lmf_body(slots: tuple[tuple[str, _Slot], ...], fault_slot: _Slot) -> Body:
    """A ``LocalizedMethodFault`` written directly: its ``fault`` is written directly too
    (``msg`` dropped), its other properties as usual."""
    inner = _body(tuple(s for s in slots if s[0] != "fault"))
    after = tuple(s for s in slots if s[0] != "fault")
    index = [name for name, _ in slots].index("fault")
    before_body = _body(after[:index])
    after_body = _body(after[index:])
    del inner

    def body(val: Any, out: list[str]) -> None:
        before_body(val, out)
        fault = val.__dict__["fault"]
        if fault is None:
            raise _Fallback  # pyVmomi fails on copy(None).msg
        (fault_slot.direct.get(fault.__class__) or fault_slot.direct_writer(fault.__class__))(fault, "", out)
        after_body(val, out)
    return body


# --- per-version context ------------------------------------------------------------------------

_LOCK = threading.RLock()


class _Context:
    """Everything cached for one API version, with the ``SoapSerializer`` ``_codec`` would
    use (its default namespace, outermost attributes, prefixes and ``_QName``)."""

    def __init__(self, version: str) -> None:
        self.version = version
        ser: Any = _meta.HostSerializer(StringIO(), version, _meta.ns_map(version))
        self.serializer = ser
        self.ns: str = ser.defaultNS
        #: attributes of the outermost element (`` versionId="8.0.3.0"``)
        self.outer: str = ser.outermostAttrs or ""
        self.xsi: str = ser.xsiPrefix
        self.xsd_string = f' {ser.xsiPrefix}type="{ser.xsdPrefix}string"'
        self.slots: dict[tuple[str, Any, int, str], _Slot] = {}
        self.plans: dict[Any, _Plan] = {}
        self.results: dict[tuple[Any, int], _Slot] = {}
        self.type_names: dict[Any, str] = {}
        self.lmf_slots = self._lmf_slots()

    def _lmf_slots(self) -> tuple[_Slot, _Slot | None] | None:
        """The ``fault`` and ``localizedMessage`` slots of ``LocalizedMethodFault``, if its
        other properties are all optional (unset in the wrapper pyVmomi makes, so not written)
        and come before them (else faults fall back)."""
        props = _LMF._GetPropertyList()
        names = [p.name for p in props]
        if names[-2:] != ["fault", "localizedMessage"]:
            return None
        if any(not p.flags & F_OPTIONAL for p in props[:-2]):
            return None
        fault, message = props[-2:]
        fault_slot = self.slot(fault.name, fault.type, fault.flags, fault.version)
        message_slot = None
        if IsChildVersion(self.version, message.version):
            message_slot = self.slot(message.name, message.type, message.flags, message.version)
        return fault_slot, message_slot

    def slot(self, name: str, typ: Any, flags: int, version: str) -> _Slot:
        key = (name, typ, flags, version)
        with _LOCK:
            slot = self.slots.get(key)
            if slot is None:
                slot = self.slots[key] = _Slot(self, name, typ, flags, version)
            return slot

    def plan(self, cls: Any) -> _Plan:
        with _LOCK:
            plan = self.plans.get(cls)
            if plan is None:
                plan = self.plans[cls] = _Plan(self, cls)
            return plan

    def result_slot(self, typ: Any, flags: int) -> _Slot:
        with _LOCK:
            slot = self.results.get((typ, flags))
            if slot is None:
                slot = self.results[typ, flags] = self.slot("returnval", typ, flags, self.version)
            return slot

    def xsi_type(self, typ: Any, array: bool = False) -> str:
        """`` xsi:type="QName"`` as ``SoapSerializer._QName`` names ``typ`` (an
        ``xmlns:prefix`` declaration first if its namespace has no prefix)."""
        nsattr, qname = self.serializer._QName(typ, self.ns)
        if array and qname.endswith("ArrayOfManagedObject"):
            qname += "Reference"
        return f'{nsattr} {self.xsi}type="{qname}"'

    def type_name(self, typ: Any) -> str:
        """A ``vmodl.TypeName`` value's text (``GetWsdlName``; a bounded set, cached)."""
        name = self.type_names.get(typ)
        if name is None:
            name = self.type_names[typ] = VmomiSupport.GetWsdlName(typ)
        return name


_CONTEXTS: dict[str, _Context] = {}


def _context(version: str) -> _Context:
    with _LOCK:
        ctx = _CONTEXTS.get(version)
        if ctx is None:
            ctx = _CONTEXTS[version] = _Context(version)
        return ctx


# --- the encoder --------------------------------------------------------------------------------


def encode_fast(result: Any, info: Any, version: str) -> str | None:
    """The ``returnval`` element of ``info``'s response holding ``result``, exactly as
    ``SoapAdapter.SerializeToStr(result, returnval info, version, _meta.ns_map(version))``
    writes it (outermost ``versionId`` included), or ``None`` if it is not a value this
    serializer handles (then pyVmomi's serializer decides)."""
    try:
        ctx = _CONTEXTS.get(version) or _context(version)
        key = (info.result, info.resultFlags)
        slot = ctx.results.get(key) or ctx.result_slot(*key)
        out: list[str] = []
        slot.put(result, ctx.outer, out)
        return "".join(out)
    except Exception:  # _Fallback, or anything a value raised: not ours to judge
        return None
