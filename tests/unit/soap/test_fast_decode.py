"""The fast SOAP request decoder (``_fastdecode.decode_fast``) against pyVmomi's (``_codec._decode``).

Properties:

- for calls pyVmomi's stub serializes (many methods, values generated from pyVmomi's type
  information: unicode and XML-special strings, integers at their extremes, floats, booleans,
  enums, optional values set or not, arrays empty or not, nested and typed ``TraversalSpec``\\ s,
  data objects with ``dateTime``/``base64``/``anyType`` members), decoded in the stub's or another
  API version, ``decode_fast`` returns ``None`` or exactly what ``_decode`` returns (same method,
  same Python type at every node, same serialization); when ``_decode`` refuses the body,
  ``decode_fast`` returns ``None``;
- the same for those bodies mutated (attributes, text, elements deleted, duplicated or renamed,
  ``type`` and ``xsi:type`` changed, namespace declarations, comments, truncation);
- the fast path is taken for the shapes a backup product's pyVmomi session sends;
- bodies that must fall back do, and ``parse_request`` answers them as it did before.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl
from pyVmomi.VmomiSupport import F_LINK, F_OPTIONAL, DataObject, Enum, ManagedMethod, ManagedObject

from vcbsim.simulator.soap.mo import ALL_TYPES
from vcbsim.simulator.soap.wire import _codec, _fastdecode

V = _codec.DEFAULT_VERSION
PC = vmodl.query.PropertyCollector
list(VmomiSupport.GetWsdlTypes())  # load every type, so __subclasses__() knows them all
_STUBS: dict[tuple[str, bool], SoapAdapter.SoapStubAdapter] = {}


def stub(version: str = V, context: bool = False) -> SoapAdapter.SoapStubAdapter:
    """A stub that only serializes (nothing connects); ``context``: it sends a SOAP header."""
    key = (version, context)
    if key not in _STUBS:
        _STUBS[key] = SoapAdapter.SoapStubAdapter(
            "localhost", version=version, requestContext={"op": "x"} if context else None
        )
    return _STUBS[key]


def method_info(name: str, version: str = V) -> Any:
    return _codec.fetch_info(version) if name == "Fetch" else VmomiSupport.GetWsdlMethod("urn:vim25", name).info


def serialize(this: Any, name: str, args: list[Any], version: str = V, context: bool = False) -> bytes:
    return bytes(stub(version, context).SerializeRequest(this, method_info(name, version), args))


# --- comparing two decoded requests ---------------------------------------------------------------


def assert_same(a: Any, b: Any, path: str = "value") -> None:
    """Same Python type at every node, same values, same attributes in the same order."""
    stack = [(a, b, path)]
    while stack:
        x, y, where = stack.pop()
        assert type(x) is type(y), f"{where}: {type(x)} != {type(y)}"
        if isinstance(x, ManagedObject):
            assert (x._moId, x._serverGuid, x._stub) == (y._moId, y._serverGuid, y._stub), where
        elif isinstance(x, DataObject):
            assert list(vars(x)) == list(vars(y)), where
            stack.extend((vars(x)[k], vars(y)[k], f"{where}.{k}") for k in vars(x))
        elif isinstance(x, list):
            assert len(x) == len(y), where
            stack.extend((p, q, f"{where}[{i}]") for i, (p, q) in enumerate(zip(x, y, strict=True)))
        elif isinstance(x, float):
            assert repr(x) == repr(y), where
        elif isinstance(x, type | ManagedMethod):
            assert x is y, where
        else:
            assert x == y, where


def fetch_signature(info: Any) -> Any:
    return (info.name, info.wsdlName, info.version, info.type, info.result, info.resultFlags,
            [(p.name, p.type, p.flags, p.version) for p in info.params])


def assert_same_request(fast: _codec.Request, slow: _codec.Request, version: str) -> None:
    assert fast.wsdl_name == slow.wsdl_name
    if fast.wsdl_name == "Fetch":  # _codec builds a new info per call
        assert fetch_signature(fast.info) == fetch_signature(slow.info)
    else:
        assert fast.info is slow.info
    assert fast.version == slow.version
    assert_same(fast.this, slow.this, "_this")
    assert list(fast.args) == list(slow.args)
    for name in slow.args:
        assert_same(fast.args[name], slow.args[name], name)
        assert _codec.serialize_value(fast.args[name], version, name) == _codec.serialize_value(
            slow.args[name], version, name
        )
    assert _codec.serialize_value(fast.this, version) == _codec.serialize_value(slow.this, version)


def differential(body: bytes, version: str) -> _codec.Request | None:
    """``decode_fast`` is None or equals ``_decode``; None whenever ``_decode`` refuses."""
    fast = _fastdecode.decode_fast(body, version)
    try:
        slow = _codec._decode(body, version)
    except Exception as exc:
        assert fast is None, f"fast path accepted what pyVmomi refuses ({exc!r}): {body!r}"
        return None
    if fast is not None:
        assert_same_request(fast, slow, version)
    return fast


# --- generated values, from pyVmomi's type information --------------------------------------------

#: characters XML 1.0 allows, plus markup and odd ones (surrogates excluded: not UTF-8)
_XML_CHARS = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters=[chr(c) for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)] + ["\ufffe", "\uffff"],
)
_SPECIAL = ["", " ", "<", ">", "&", '"', "'", "]]>", "&amp;", "a<b", "\t\n", "\r\n", " x ", "ä€😀",
            "\u202e", "true", "0", "-1", "ha-folder-root", "vm-1", "x:y"]


def texts() -> st.SearchStrategy[str]:
    return st.integers(0, 9).flatmap(lambda n: (
        st.sampled_from(_SPECIAL) if n < 4
        else st.text(_XML_CHARS, max_size=12) if n < 9
        else st.text(max_size=4)  # now and then a character XML does not allow
    ))


_INT_EXTREMES = [0, 1, -1, 127, -128, 255, 32767, -32768, 2**31 - 1, -(2**31), 2**31, 2**63 - 1,
                 -(2**63), 2**63, 2**64, 10**30, -(10**30)]
_INTS = (int, VmomiSupport.long, VmomiSupport.short, VmomiSupport.byte)
_FLOATS = (float, VmomiSupport.double)
_MO_CLASSES = [vim.VirtualMachine, vim.Folder, vim.Task, vim.HostSystem, vim.Datacenter, vim.Datastore,
               vim.vm.Snapshot, vim.view.ContainerView, vim.ResourcePool, vim.Network,
               vim.ComputeResource, PC, PC.Filter, vim.SessionManager,
               vim.ServiceInstance, vim.SearchIndex, vim.ManagedEntity, ManagedObject]
_TYPE_NAMES = [vim.Task, vim.VirtualMachine, vim.Folder, vim.view.ContainerView, vim.Datacenter,
               vim.ManagedEntity, vim.vm.Snapshot, PC.FilterSpec, vim.vm.ConfigInfo, str, int]
_METHODS = [VmomiSupport.GetWsdlMethod("urn:vim25", m) for m in
            ("CreateSnapshot_Task", "RetrieveProperties", "Destroy_Task", "PowerOnVM_Task")]
_PATHS = ["name", "info.state", "config.hardware.device", "snapshot", "view", "childEntity",
          "runtime.powerState", "a.b[\"c\"]"]
_MOIDS = ["vm-1", "ha-folder-root", "haTask-1", "snapshot-2", "session[52ab]view-1", "", "ha-property-collector",
          "x" * 40, "a<b", "a&b", "vm-2", "task-9", "group-d1", "datastore-3", "ServiceInstance", "f&#233;"]


def subtypes(typ: type) -> list[type]:
    """``typ`` and its loaded subclasses (pyVmomi's stub sends a subclass with ``xsi:type``)."""
    out, todo = [], [typ]
    while todo:
        t = todo.pop()
        out.append(t)
        todo.extend(t.__subclasses__())
    fault = issubclass(typ, BaseException)  # a fault only where one is declared
    return [t for t in out if issubclass(t, BaseException) == fault]


def gen(data: st.DataObject, typ: Any, depth: int = 0) -> Any:
    """A value of pyVmomi type ``typ`` (never None)."""
    if issubclass(typ, list):
        return typ([gen(data, typ.Item, depth + 1) for _ in range(data.draw(st.integers(1, 3)))])
    if typ is bool:
        return data.draw(st.booleans())
    if typ in _INTS:
        return typ(data.draw(st.one_of(st.sampled_from(_INT_EXTREMES), st.integers())))
    if typ in _FLOATS:
        return typ(data.draw(st.floats()))
    if typ is type:
        return data.draw(st.sampled_from(_TYPE_NAMES))
    if typ is ManagedMethod:
        return data.draw(st.sampled_from(_METHODS))
    if typ is VmomiSupport.PropertyPath:
        return typ(data.draw(st.one_of(st.sampled_from(_PATHS), texts())))
    if typ is object:  # anyType: pyVmomi writes an xsi:type
        return data.draw(st.one_of(texts(), st.integers(-5, 5), st.booleans()))
    if typ is VmomiSupport.binary:
        return typ(data.draw(st.binary(max_size=8)))
    if isinstance(typ, type) and issubclass(typ, datetime):
        return data.draw(st.datetimes(timezones=st.just(UTC)))
    if issubclass(typ, Enum):
        return data.draw(st.sampled_from(typ.values))
    if issubclass(typ, ManagedObject):
        cls = data.draw(st.sampled_from([c for c in _MO_CLASSES if issubclass(c, typ)] or [typ]))
        moid = data.draw(st.sampled_from(_MOIDS) if data.draw(st.integers(0, 7)) else texts())
        guid = data.draw(st.sampled_from(["g-1", "a<b", ""])) if data.draw(st.integers(0, 5)) == 0 else None
        return cls(moid, None, guid)
    if issubclass(typ, DataObject):
        cls = data.draw(st.sampled_from(subtypes(typ)))
        props = cls._GetPropertyList()
        # dynamicProperty (its values are anyType, always left to pyVmomi) only now and then
        rare = data.draw(st.integers(0, 9)) == 0
        optional = [p for p in props if p.flags & F_OPTIONAL and (rare or p.name != "dynamicProperty")]
        chosen = {p.name for p in props if not p.flags & F_OPTIONAL}
        if depth < 4:
            chosen |= set(data.draw(st.lists(st.sampled_from([p.name for p in optional]), max_size=4))
                          if optional else [])
        kwargs = {}
        for p in props:
            if p.name not in chosen:
                continue
            if p.flags & F_LINK:
                kwargs[p.name] = VmomiSupport.Link(data.draw(texts()))
                continue
            kwargs[p.name] = gen(data, p.type, depth + 1)
        return cls(**kwargs)
    if isinstance(typ, type) and issubclass(typ, str):
        return typ(data.draw(texts()))
    raise AssertionError(f"no generator for {typ}")


#: the calls of the common shapes (always drawn from), and every method the endpoint simulates
COMMON = ["RetrievePropertiesEx", "RetrieveProperties", "ContinueRetrievePropertiesEx", "CreateFilter",
          "WaitForUpdatesEx", "DestroyPropertyFilter", "Fetch", "CreateSnapshot_Task", "RemoveSnapshot_Task",
          "RemoveAllSnapshots_Task", "RevertToSnapshot_Task", "Login", "Logout", "RetrieveServiceContent",
          "CreateContainerView", "FindByInventoryPath", "FindByUuid", "QueryChangedDiskAreas"]
ALL_METHODS = sorted({m for t in ALL_TYPES for m in t.soap_methods()} | set(COMMON))
VERSIONS = [V, "vim.version.v9_1_1_0", "vim.version.v7_0_3_0", "vim.version.version10"]


@st.composite
def calls(draw: Any) -> tuple[bytes, str]:
    """A request body pyVmomi's stub serializes, and the API version to decode it in."""
    data = draw(st.data())
    name = draw(st.one_of(st.sampled_from(COMMON), st.sampled_from(ALL_METHODS)))
    stub_version = draw(st.sampled_from(VERSIONS))
    info = method_info(name, stub_version)
    assume(VmomiSupport.IsChildVersion(stub_version, info.version))
    declaring = info.type if name != "Fetch" else vim.VirtualMachine
    this = gen(data, declaring)
    args = []
    for p in info.params:
        optional = p.flags & F_OPTIONAL
        args.append(None if optional and draw(st.booleans()) else gen(data, p.type))
    try:
        body = serialize(this, name, args, stub_version, context=draw(st.integers(0, 9)) == 0)
    except (TypeError, ValueError, UnicodeError):  # a value pyVmomi itself cannot write
        assume(False)
    version = draw(st.one_of(st.just(stub_version), st.sampled_from(VERSIONS)))
    return body, version


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                    HealthCheck.data_too_large, HealthCheck.filter_too_much])


@SETTINGS
@given(calls())
def test_generated_calls_decode_as_pyvmomi_does(call: tuple[bytes, str]) -> None:
    body, version = call
    differential(body, version)


# --- mutations -------------------------------------------------------------------------------------

_ELEMENT = re.compile(rb"<([A-Za-z_][\w.:-]*)((?:\s[^<>]*)?)>([^<]*)</\1>")
_OPEN_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)(\s[^<>]*)?>")
_TYPE_VALUE = re.compile(rb'(?<![:\w])type="([^"]*)"')
_ATTRS = [b' xsi:type="TraversalSpec"', b' xsi:type="SelectionSpec"', b' xsi:type="xsd:string"',
          b' xsi:type="xsd:int"', b' xsi:type="ArrayOfString"', b' xsi:type="PropertySpec"',
          b' xsi:type="NoSuch"', b' xsi:type="vim25:TraversalSpec"', b' xsi:type="ManagedObjectReference"',
          b' xsi:nil="true"', b' type="VirtualMachine"', b' serverGuid="g"', b' versionId="8.0.3.0"',
          b' xmlns="urn:vim25"', b' xmlns="urn:other"', b' xmlns=""', b' xmlns:vim25="urn:vim25"',
          b' other="1"', b' xsd:type="x"']
_TEXTS = [b"x", b" ", b"\n", b"&amp;", b"&#60;", b"&#x1;", b"&bogus;", b"<![CDATA[x]]>", b"<!-- c -->",
          b"<?pi x?>", b"<extra/>", b"<a>1</a>", b"\xff", b"\x00", b"]]>"]
_TYPES = [b"VirtualMachine", b"Folder", b"Task", b"ManagedObject", b"ManagedEntity", b"NoSuch", b"",
          b"string", b"FilterSpec", b"vim25:Task", b"ArrayOfTask", b"ContainerView", b"SelectionSpec",
          b"TraversalSpec", b"PropertySpec", b"xsd:string"]
_NAMES = [b"bogus", b"_this", b"name", b"selectSet", b"type", b"obj", b"prop", b"pathSet", b"skip",
          b"soapenv:Body", b"xsi:name", b"dynamicType", b"dynamicProperty"]


def mutate(body: bytes, data: st.DataObject) -> bytes:
    op = data.draw(st.sampled_from(["attr", "text", "delete", "duplicate", "rename", "type", "leaf",
                                    "truncate", "ns", "flip", "header", "encoding"]))
    pick = data.draw(st.integers(0, 10**6))
    leaves = list(_ELEMENT.finditer(body))
    tags = [m for m in _OPEN_TAG.finditer(body) if not m.group(0).startswith(b"<soapenv:Envelope")]
    if op == "attr" and tags:
        m = tags[pick % len(tags)]
        return body[: m.end(1)] + data.draw(st.sampled_from(_ATTRS)) + body[m.end(1):]
    if op == "text" and b">" in body:
        at = [m.end() for m in re.finditer(rb">", body)]
        pos = at[pick % len(at)]
        return body[:pos] + data.draw(st.sampled_from(_TEXTS)) + body[pos:]
    if op in ("delete", "duplicate", "rename", "leaf") and leaves:
        m = leaves[pick % len(leaves)]
        if op == "delete":
            return body[: m.start()] + body[m.end():]
        if op == "duplicate":
            return body[: m.end()] + m.group(0) + body[m.end():]
        if op == "leaf":
            value = data.draw(st.one_of(st.sampled_from(_SPECIAL), texts())).encode("utf-8", "surrogatepass")
            value = value.replace(b"&", b"&amp;").replace(b"<", b"&lt;")
            return body[: m.start(3)] + value + body[m.end(3):]
        name = data.draw(st.sampled_from(_NAMES))
        return body[: m.start()] + b"<" + name + m.group(2) + b">" + m.group(3) + b"</" + name + b">" + body[m.end():]
    if op == "type":
        found = list(_TYPE_VALUE.finditer(body))
        if found:
            m = found[pick % len(found)]
            return body[: m.start(1)] + data.draw(st.sampled_from(_TYPES)) + body[m.end(1):]
    if op == "truncate":
        return body[: pick % max(1, len(body))]
    if op == "ns":
        old, new = data.draw(st.sampled_from([
            (b'xmlns="urn:vim25"', b'xmlns="urn:vim25" xmlns:vim25="urn:vim25"'),
            (b'xmlns="urn:vim25"', b"xmlns='urn:vim25'"),
            (b'xmlns="urn:vim25"', b'xmlns = "urn:vim25"'),
            (b'xmlns="urn:vim25"', b'xmlns="urn:vim2"'),
            (b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"', b""),
            (b'xmlns:xsd="http://www.w3.org/2001/XMLSchema"', b'xmlns:xsd="urn:vim25"'),
            (b"xsi:type=", b"xsd:type="),
            (b"<soapenv:Body>", b'<soapenv:Body xmlns="urn:vim25">'),
        ]))
        return body.replace(old, new, 1)
    if op == "flip":
        pos = pick % max(1, len(body))
        return body[:pos] + bytes([data.draw(st.integers(0, 255))]) + body[pos + 1:]
    if op == "header":
        return body.replace(b"<soapenv:Body>", b"<soapenv:Header><x>y</x></soapenv:Header><soapenv:Body>", 1)
    if op == "encoding":
        return body.replace(b'encoding="UTF-8"', data.draw(st.sampled_from(
            [b'encoding="utf-8"', b'encoding="ISO-8859-1"', b'encoding="UTF-16"', b""])), 1)
    return body + data.draw(st.binary(max_size=4))


@SETTINGS
@given(calls(), st.data())
def test_mutated_calls_decode_as_pyvmomi_does_or_fall_back(call: tuple[bytes, str], data: st.DataObject) -> None:
    body, version = call
    for _ in range(data.draw(st.integers(1, 3))):
        body = mutate(body, data)
    differential(body, version)


# --- the fast path is taken for the common shapes --------------------------------------------------


def traversal_spec() -> Any:
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(
            obj=vim.view.ContainerView("session[52a1]52b2", None), skip=True,
            selectSet=[PC.TraversalSpec(
                name="traverseView", path="view", skip=False, type=vim.view.ContainerView,
                selectSet=[PC.SelectionSpec(name="traverseView"), PC.TraversalSpec(
                    name="folder", path="childEntity", type=vim.Folder, skip=False)])])],
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name", "runtime.powerState"]),
                 PC.PropertySpec(type=vim.Folder, all=True)],
        reportMissingObjectsInResults=False,
    )


def task_state_spec() -> Any:
    return PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vim.Task("haTask-1", None))],
                         propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info.state"])])


_PCO = PC("ha-property-collector", None)
_VM = vim.VirtualMachine("vm-1", None)
_SNAP = vim.vm.Snapshot("snapshot-2", None)
COMMON_CALLS: dict[str, tuple[Any, str, list[Any]]] = {
    "RetrievePropertiesEx": (_PCO, "RetrievePropertiesEx", [[traversal_spec()], PC.RetrieveOptions(maxObjects=100)]),
    "RetrievePropertiesEx-no-options": (_PCO, "RetrievePropertiesEx", [[task_state_spec()], PC.RetrieveOptions()]),
    "RetrieveProperties": (_PCO, "RetrieveProperties", [[task_state_spec()]]),
    "RetrieveProperties-traversal": (_PCO, "RetrieveProperties", [[traversal_spec(), task_state_spec()]]),
    "ContinueRetrievePropertiesEx": (_PCO, "ContinueRetrievePropertiesEx", ["token-1"]),
    "CreateFilter": (_PCO, "CreateFilter", [task_state_spec(), True]),
    "WaitForUpdatesEx": (_PCO, "WaitForUpdatesEx", ["1", PC.WaitOptions(maxWaitSeconds=0)]),
    "WaitForUpdatesEx-first": (_PCO, "WaitForUpdatesEx", [None, PC.WaitOptions(maxWaitSeconds=60)]),
    "DestroyPropertyFilter": (PC.Filter("session[52a1]52b3", None), "DestroyPropertyFilter", []),
    "Fetch": (_VM, "Fetch", ["config.hardware.device"]),
    "CreateSnapshot_Task": (_VM, "CreateSnapshot_Task", ["backup <1> & \"2\"", "by vcbsim ✓", False, True]),
    "CreateSnapshot_Task-no-description": (_VM, "CreateSnapshot_Task", ["s", None, True, False]),
    "RemoveSnapshot_Task": (_SNAP, "RemoveSnapshot_Task", [False, True]),
    "RemoveSnapshot_Task-old": (_SNAP, "RemoveSnapshot_Task", [True, None]),
    "RemoveAllSnapshots_Task": (_VM, "RemoveAllSnapshots_Task", [True, vim.vm.SnapshotSelectionSpec(retentionDays=3)]),
    "RemoveAllSnapshots_Task-bare": (_VM, "RemoveAllSnapshots_Task", [None, None]),
    "RevertToSnapshot_Task": (_SNAP, "RevertToSnapshot_Task", [vim.HostSystem("ha-host", None), True]),
    "Login": (vim.SessionManager("ha-sessionmgr", None), "Login", ["root", "pa<ss>&w\"ord", "en_US"]),
    "Logout": (vim.SessionManager("ha-sessionmgr", None), "Logout", []),
    "RetrieveServiceContent": (vim.ServiceInstance("ServiceInstance", None), "RetrieveServiceContent", []),
    "CreateContainerView": (vim.view.ViewManager("ViewManager", None), "CreateContainerView",
                            [vim.Folder("ha-folder-root", None), [vim.VirtualMachine, vim.HostSystem], True]),
    "FindByInventoryPath": (vim.SearchIndex("ha-searchindex", None), "FindByInventoryPath",
                            ["ha-datacenter/vm/rhel5-web"]),
    "FindByUuid": (vim.SearchIndex("ha-searchindex", None), "FindByUuid",
                   [None, "564d1b2c-0000-4000-a000-000000000001", True, False]),
    "FindByUuid-datacenter": (vim.SearchIndex("ha-searchindex", None), "FindByUuid",
                              [vim.Datacenter("ha-datacenter", None), "x", False, None]),
    "QueryChangedDiskAreas": (_VM, "QueryChangedDiskAreas", [_SNAP, 2000, 2**40, "52 de ad/17"]),
    "QueryChangedDiskAreas-start": (_VM, "QueryChangedDiskAreas", [None, 2000, 0, "*"]),
}


@pytest.mark.parametrize("case", sorted(COMMON_CALLS))
@pytest.mark.parametrize("context", [False, True], ids=["plain", "with-header"])
def test_common_shapes_take_the_fast_path(case: str, context: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    this, name, args = COMMON_CALLS[case]
    body = serialize(this, name, args, context=context)
    fast = differential(body, V)
    assert fast is not None, f"the fast path refused {body!r}"
    assert fast.wsdl_name == name

    def no_slow_path(*_: Any) -> Any:
        raise AssertionError("parse_request fell back to pyVmomi's decoder")

    monkeypatch.setattr(_codec, "_decode", no_slow_path)
    assert_same_request(_codec.parse_request(body, V), fast, V)


def test_a_hand_written_envelope_takes_the_fast_path() -> None:
    """Not byte for byte pyVmomi's stub (no XML declaration, other declarations, lower-case
    encoding, white space between elements): the whole envelope is parsed."""
    bodies = [
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        b'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        b'<soapenv:Body><Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this>'
        b"<userName>user</userName><password>pass</password></Login></soapenv:Body></soapenv:Envelope>",
        b'<?xml version="1.0" encoding="utf-8"?>\n<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">\n'
        b' <soapenv:Body>\n  <RemoveSnapshot_Task xmlns="urn:vim25">\n   <_this type="VirtualMachineSnapshot">snapshot-1</_this>\n'
        b"   <removeChildren>0</removeChildren>\n  </RemoveSnapshot_Task>\n </soapenv:Body>\n</soapenv:Envelope>\n",
    ]
    for body in bodies:
        assert differential(body, V) is not None, body


#: envelopes as govmomi (Go) writes them: the SOAP namespace as the default one, no prefixes
_GOVMOMI = ('<?xml version="1.0" encoding="UTF-8"?>\n<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/">'
            "<Body>{}</Body></Envelope>")


@pytest.mark.parametrize("call", [
    '<CreateSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-2</_this><name>b-1</name>'
    "<description>by govmomi</description><memory>false</memory><quiesce>true</quiesce></CreateSnapshot_Task>",
    '<CreateFilter xmlns="urn:vim25"><_this type="PropertyCollector">session[da62cb7b]propertyCollector-1</_this>'
    "<spec><propSet><type>Task</type><pathSet>info</pathSet></propSet><objectSet><obj type=\"Task\">"
    "haTask-vm-2-CreateSnapshot_Task-1</obj></objectSet></spec><partialUpdates>false</partialUpdates></CreateFilter>",
    '<WaitForUpdatesEx xmlns="urn:vim25"><_this type="PropertyCollector">session[da62cb7b]propertyCollector-1'
    "</_this></WaitForUpdatesEx>",
    '<RemoveSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachineSnapshot">snapshot-1</_this>'
    "<removeChildren>false</removeChildren></RemoveSnapshot_Task>",
], ids=["CreateSnapshot_Task", "CreateFilter", "WaitForUpdatesEx", "RemoveSnapshot_Task"])
def test_govmomi_envelopes_take_the_fast_path(call: str) -> None:
    body = _GOVMOMI.format(call).encode()
    assert differential(body, V) is not None, body


def test_a_soap_default_namespace_inside_the_body_falls_back() -> None:
    """The SOAP namespace as default is accepted on the envelope; re-declared on a parameter it
    puts that parameter in another namespace, which the fast path does not guess at."""
    call = ('<RemoveSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachineSnapshot">snapshot-1</_this>'
            '<removeChildren xmlns="http://schemas.xmlsoap.org/soap/envelope/">false</removeChildren>'
            "</RemoveSnapshot_Task>")
    assert _fastdecode.decode_fast(_GOVMOMI.format(call).encode(), V) is None


def test_required_list_parameter_defaults_to_an_empty_typed_list() -> None:
    body = serialize(_PCO, "RetrieveProperties", [[task_state_spec()]])
    body = re.sub(rb"<specSet>.*</specSet>", b"", body)
    fast = differential(body, V)
    assert fast is not None and fast.args["specSet"] == [] and type(fast.args["specSet"]) is PC.FilterSpec.Array


def test_values_are_pyvmomis_types() -> None:
    fast = _fastdecode.decode_fast(serialize(*COMMON_CALLS["QueryChangedDiskAreas"]), V)
    assert fast is not None
    assert type(fast.this) is vim.VirtualMachine and type(fast.args["snapshot"]) is vim.vm.Snapshot
    assert type(fast.args["deviceKey"]) is int and type(fast.args["startOffset"]) is VmomiSupport.long
    spec = _fastdecode.decode_fast(serialize(*COMMON_CALLS["RetrievePropertiesEx"]), V).args["specSet"][0]
    select = spec.objectSet[0].selectSet[0]
    assert type(select) is PC.TraversalSpec and select.type is vim.view.ContainerView
    assert type(select.path) is VmomiSupport.PropertyPath and type(select.selectSet[0]) is PC.SelectionSpec
    assert spec.propSet[1].pathSet == [] and type(spec.propSet[1].pathSet) is VmomiSupport.GetVmodlType("vmodl.PropertyPath[]")
    assert spec.objectSet[0].obj._moId == "session[52a1]52b2" and spec.dynamicType is None


# --- bodies that fall back -------------------------------------------------------------------------

_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<soapenv:Body>{}</soapenv:Body></soapenv:Envelope>"
)
_SNAPSHOT = (
    '<CreateSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachine">{this}</_this>{params}'
    "</CreateSnapshot_Task>"
)
_NAME = "<name>s</name><memory>false</memory><quiesce>false</quiesce>"


def _snapshot(params: str = _NAME, this: str = "vm-1") -> bytes:
    return _ENVELOPE.format(_SNAPSHOT.format(this=this, params=params)).encode()


FALLBACKS = {
    "doctype": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "s">]>' + _snapshot()[38:].replace(b">s<", b">&e;<"),
    "comment": _snapshot(_NAME + "<!-- c -->"),
    "cdata": _snapshot("<name><![CDATA[s]]></name><memory>false</memory><quiesce>false</quiesce>"),
    "xsi-type-naming-another-type": _ENVELOPE.format(
        '<CreateFilter xmlns="urn:vim25"><_this type="PropertyCollector">ha-property-collector</_this>'
        '<spec xsi:type="PropertySpec"><type>Task</type></spec><partialUpdates>false</partialUpdates>'
        "</CreateFilter>").encode(),
    "xsi-type-on-a-string": _snapshot('<name xsi:type="xsd:int">5</name><memory>0</memory><quiesce>1</quiesce>'),
    "unknown-parameter": _snapshot(_NAME + "<bogus>1</bogus>"),
    "missing-required-parameter": _snapshot("<memory>false</memory><quiesce>false</quiesce>"),
    "missing-this": _ENVELOPE.format("<Logout xmlns='urn:vim25'></Logout>").encode(),
    "unsafe-moid": _snapshot(this="a&lt;b"),
    "unsafe-server-guid": _snapshot().replace(b'type="VirtualMachine"', b'type="VirtualMachine" serverGuid="a&amp;b"'),
    "text-in-the-body": _snapshot("junk" + _NAME),
    "truncated": _snapshot()[:-30],
    "not-xml": b"hello",
    "bad-boolean": _snapshot("<name>s</name><memory>maybe</memory><quiesce>false</quiesce>"),
    "bad-moref-type": _snapshot().replace(b'type="VirtualMachine"', b'type="NoSuchType"'),
    "wrong-moref-type": _ENVELOPE.format(
        '<RevertToSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachineSnapshot">s-1</_this>'
        '<host type="Folder">ha-folder-root</host></RevertToSnapshot_Task>').encode(),
    "unknown-method": _ENVELOPE.format('<NoSuch xmlns="urn:vim25"><_this type="Folder">f</_this></NoSuch>').encode(),
    "two-methods": _ENVELOPE.format(_SNAPSHOT.format(this="vm-1", params=_NAME) * 2).encode(),
    "missing-required-property": _ENVELOPE.format(
        '<RetrieveProperties xmlns="urn:vim25"><_this type="PropertyCollector">pc</_this>'
        "<specSet><propSet><pathSet>name</pathSet></propSet></specSet></RetrieveProperties>").encode(),
    "utf-16": _snapshot().decode().replace("UTF-8", "UTF-16").encode("utf-16"),
    "datetime-member": _ENVELOPE.format(
        '<InitiateFileTransferToGuest xmlns="urn:vim25"><_this type="GuestFileManager">gfm</_this>'
        '<vm type="VirtualMachine">vm-1</vm><auth xsi:type="NamePasswordAuthentication"><interactiveSession>false'
        "</interactiveSession><username>u</username><password>p</password></auth><guestFilePath>/x</guestFilePath>"
        "<fileAttributes><modificationTime>2024-01-01T00:00:00Z</modificationTime></fileAttributes>"
        "<fileSize>1</fileSize><overwrite>true</overwrite></InitiateFileTransferToGuest>").encode(),
}


def _old_parse(body: bytes, monkeypatch: pytest.MonkeyPatch) -> str | Any:
    """What parse_request answered before the fast path existed (it always falls back)."""
    with monkeypatch.context() as m:
        m.setattr(_fastdecode, "decode_fast", lambda *_: None)
        try:
            return _codec.parse_request(body, V)
        except _codec.RequestError as exc:
            return f"RequestError: {exc}"


@pytest.mark.parametrize("case", sorted(FALLBACKS))
def test_odd_bodies_fall_back_and_get_the_same_answer(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    body = FALLBACKS[case]
    assert _fastdecode.decode_fast(body, V) is None
    before = _old_parse(body, monkeypatch)
    try:
        now: Any = _codec.parse_request(body, V)
    except _codec.RequestError as exc:
        now = f"RequestError: {exc}"
    if isinstance(before, str):
        assert now == before
    else:  # a body the fast path leaves to pyVmomi, which accepts it
        assert not isinstance(now, str)
        assert_same_request(now, before, V)


def test_refusals_keep_their_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cases the brief names are refused, with pyVmomi-path messages."""
    expected = {
        "doctype": "refused", "xsi-type-naming-another-type": "must be a PropertyFilterSpec",
        "unknown-parameter": "has no parameter 'bogus'", "missing-required-parameter": "'name' is missing",
        "unsafe-moid": "invalid managed object id", "text-in-the-body": "unexpected text",
        "truncated": "malformed XML",
    }
    for case, fragment in expected.items():
        with pytest.raises(_codec.RequestError, match=re.escape(fragment)):
            _codec.parse_request(FALLBACKS[case], V)


def test_unknown_version_falls_back() -> None:
    assert _fastdecode.decode_fast(_snapshot(), "vim.version.no_such") is None


def test_a_later_member_falls_back_in_an_earlier_version() -> None:
    """``RemoveAllSnapshots_Task.spec`` is new in 8.0.3: a 7.0.3 request with it is pyVmomi's."""
    body = serialize(*COMMON_CALLS["RemoveAllSnapshots_Task"])
    assert _fastdecode.decode_fast(body, "vim.version.v7_0_3_0") is None
    assert _fastdecode.decode_fast(body, V) is not None


def test_numbers_are_read_as_pyvmomi_reads_them() -> None:
    body = _ENVELOPE.format(
        '<QueryChangedDiskAreas xmlns="urn:vim25"><_this type="VirtualMachine">vm-1</_this>'
        "<deviceKey> 2147483648 </deviceKey><startOffset>-9223372036854775809</startOffset><changeId/>"
        "</QueryChangedDiskAreas>").encode()
    fast = differential(body, V)
    assert fast is not None and fast.args["deviceKey"] == 2**31 and fast.args["changeId"] == ""
    assert fast.args["startOffset"] == -(2**63) - 1
