"""The fast response serializer (``_fastencode.encode_fast``) against pyVmomi's (``SoapAdapter.SerializeToStr``).

Properties:

- for values generated from pyVmomi's type information (unicode and XML-special strings,
  integers at their extremes, floats, booleans, datetimes with and without a time zone and
  microseconds, enums, references with and without ``serverGuid``, arrays empty or not,
  optional properties set or not, nested data objects, faults with and without ``msg``,
  subtypes in base-typed slots, values of every kind in ``object`` slots), as the result of
  many methods and in several API versions, or in a slot of a chosen type, ``encode_fast``
  returns ``None`` or exactly pyVmomi's text, and ``None`` whenever pyVmomi refuses the value;
- the fast path is actually taken: for most generated values, for the shapes the endpoint
  answers most (checked against a running endpoint driven by pyVmomi through a snapshot
  create/remove cycle, a failing task included: the important methods never fall back);
- values it does not handle fall back, and ``serialize_response`` answers as it did before.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import Iso8601, VmomiSupport, vim, vmodl
from pyVmomi.VmomiSupport import (
    F_LINK,
    F_OPTIONAL,
    DataObject,
    Enum,
    ManagedMethod,
    ManagedObject,
    Object,
)

from vcbsim.simulator import Host
from vcbsim.simulator.soap import serve
from vcbsim.simulator.soap.mo import ALL_TYPES
from vcbsim.simulator.soap.wire import _codec, _fastencode

V = _codec.DEFAULT_VERSION
V60 = "vim.version.version10"  # 6.0
VERSIONS = [V, V60, "vim.version.v7_0_3_0", "vim.version.v9_1_1_0", "vim.version.version9"]
PC = vmodl.query.PropertyCollector
list(VmomiSupport.GetWsdlTypes())  # load every type, so __subclasses__() knows them all


def method_info(name: str, version: str = V) -> Any:
    return _codec.fetch_info(version) if name == "Fetch" else VmomiSupport.GetWsdlMethod("urn:vim25", name).info


def slot_info(typ: Any, flags: int = F_OPTIONAL) -> Any:
    """What ``encode_fast`` reads of a method info: the result's declared type and flags."""
    return Object(wsdlName="Slot", result=typ, resultFlags=flags)


def pyvmomi_text(result: Any, info: Any, version: str) -> str:
    rinfo = Object(name="returnval", type=info.result, version=version, flags=info.resultFlags)
    return _codec.serialize_to_str(result, rinfo, version)


def differential(result: Any, info: Any, version: str = V) -> str | None:
    """``encode_fast`` is None or pyVmomi's text; None whenever pyVmomi refuses the value."""
    fast = _fastencode.encode_fast(result, info, version)
    try:
        slow = pyvmomi_text(result, info, version)
    except Exception as exc:
        assert fast is None, f"the fast path wrote what pyVmomi refuses ({exc!r}): {fast!r}"
        return None
    if fast is not None:
        assert fast == slow
    return fast


# --- generated values, from pyVmomi's type information --------------------------------------------

_XML_CHARS = st.characters(blacklist_categories=("Cs",))
_SPECIAL = ["", " ", "<", ">", "&", '"', "'", "]]>", "&amp;", "a<b>c&d", "\t\n", "\r\n", " x ", "ä€😀",
            "\u202e", "true", "0", "-1", "ha-folder-root", "vm-1", "x:y", ' versionId="8.0.3.0"']


def texts() -> st.SearchStrategy[str]:
    return st.integers(0, 9).flatmap(lambda n: (
        st.sampled_from(_SPECIAL) if n < 4
        else st.text(_XML_CHARS, max_size=12) if n < 9
        else st.text(max_size=4)  # now and then a surrogate or a character XML does not allow
    ))


_INT_EXTREMES = [0, 1, -1, 127, -128, 255, 32767, -32768, 2**31 - 1, -(2**31), 2**31, 2**63 - 1,
                 -(2**63), 2**63, 2**64, 10**30, -(10**30)]
_INTS = (int, VmomiSupport.long, VmomiSupport.short, VmomiSupport.byte)
_FLOATS = (float, VmomiSupport.double)
_ZONES = [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8)),
          timezone(timedelta(seconds=90)), timezone(timedelta(0), "UTC+0")]
_DATETIMES = [datetime(2024, 2, 29, 23, 59, 59, 999999, UTC), datetime(2008, 7, 25, tzinfo=UTC),
              datetime(1, 1, 1, tzinfo=UTC), datetime(999, 12, 31, 1, 2, 3, 400000, UTC),
              datetime(9999, 12, 31, 23, 59, 59, 10, UTC), datetime(2024, 1, 1, 0, 0, 0, 120000),
              datetime(1000, 1, 1, tzinfo=UTC)]
_MO_CLASSES = [vim.VirtualMachine, vim.Folder, vim.Task, vim.HostSystem, vim.Datacenter, vim.Datastore,
               vim.vm.Snapshot, vim.view.ContainerView, vim.ResourcePool, vim.Network,
               vim.ComputeResource, PC, PC.Filter, vim.SessionManager,
               vim.ServiceInstance, vim.SearchIndex, vim.ManagedEntity, ManagedObject]
_TYPE_NAMES = [vim.Task, vim.VirtualMachine, vim.Folder, vim.view.ContainerView, vim.Datacenter,
               vim.ManagedEntity, vim.vm.Snapshot, PC.FilterSpec, vim.vm.ConfigInfo, str, int,
               vim.TaskInfo.State, vim.vm.Snapshot.Array]
_METHODS = [VmomiSupport.GetWsdlMethod("urn:vim25", m) for m in
            ("CreateSnapshot_Task", "RetrieveProperties", "Destroy_Task", "PowerOnVM_Task")]
_PATHS = ["name", "info.state", "config.hardware.device", "snapshot", "a.b[\"c\"]", "a<b"]
_MOIDS = ["vm-1", "ha-folder-root", "haTask-1", "snapshot-2", "session[52ab]view-1", "", "x" * 40,
          "a<b", "a&b", "f&#233;", 'q"q']


def _named(types: Any) -> list[Any]:
    return sorted(types, key=lambda t: (t.__module__, t.__qualname__, t.__name__))


_LOADED = [t for t in VmomiSupport.GetWsdlTypes() if isinstance(t, type) and not issubclass(t, list)]
ENUMS = _named(t for t in _LOADED if issubclass(t, Enum) and t.values)
FAULTS = _named(t for t in _LOADED if issubclass(t, vmodl.MethodFault))
DATA = _named(t for t in _LOADED if issubclass(t, DataObject) and not issubclass(t, BaseException))
#: the data objects a backup product reads most (drawn from more often than the rest)
COMMON_DATA = [vim.TaskInfo, PC.ObjectContent, PC.RetrieveResult, PC.UpdateSet, PC.Change,
               vim.vm.SnapshotInfo, vim.vm.SnapshotTree, vim.vm.Summary, vim.vm.ConfigInfo,
               vim.vm.device.VirtualDisk, vim.UserSession, vim.ServiceInstanceContent, vim.option.OptionValue,
               vmodl.KeyAnyValue, vmodl.LocalizedMethodFault, vim.TaskReasonUser, vim.vm.RuntimeInfo,
               vim.VirtualMachine.DiskChangeInfo, vim.host.DiskDimensions.Lba, vmodl.LocalizableMessage]
_ARRAYS = [VmomiSupport.GetVmodlType(n) for n in (
    "string[]", "int[]", "long[]", "short[]", "byte[]", "boolean[]", "double[]", "float[]", "vmodl.DateTime[]",
    "vmodl.TypeName[]", "vmodl.MethodName[]", "vmodl.PropertyPath[]", "vmodl.ManagedObject[]", "anyType[]",
    "vim.vm.Snapshot[]", "vim.ManagedEntity[]", "vim.TaskInfo.State[]", "vim.vm.SnapshotTree[]",
    "vmodl.KeyAnyValue[]", "vmodl.MethodFault[]", "vmodl.DynamicProperty[]", "vim.option.OptionValue[]",
    "vmodl.URI[]", "vmodl.Binary[]")]


def subtypes(typ: type) -> list[type]:
    """``typ`` and its loaded subclasses (a fault only where one is declared)."""
    out, todo = [], [typ]
    while todo:
        t = todo.pop()
        out.append(t)
        todo.extend(t.__subclasses__())
    fault = issubclass(typ, BaseException)
    return _named(t for t in out if issubclass(t, BaseException) == fault)


_SUBTYPES: dict[type, list[type]] = {}


def some_subtype(data: st.DataObject, typ: type) -> type:
    """Mostly the declared type itself, now and then one of its subtypes."""
    if typ not in _SUBTYPES:
        _SUBTYPES[typ] = subtypes(typ)
    options = _SUBTYPES[typ]
    if len(options) == 1 or data.draw(st.integers(0, 2)) == 0:
        return typ
    return data.draw(st.sampled_from(options))


def gen_any(data: st.DataObject, depth: int) -> Any:
    """A value for an ``object`` (anyType) slot: pyVmomi writes it with its ``xsi:type``."""
    kinds = ["str", "int", "float", "bool", "datetime", "enum", "mo", "array", "type", "method", "path",
             "uri", "binary"]
    if depth < 4:
        kinds += ["data", "common", "fault"]
    kind = data.draw(st.sampled_from(kinds))
    if kind == "str":
        return data.draw(texts())
    if kind == "int":
        return gen(data, data.draw(st.sampled_from(_INTS)), depth)
    if kind == "float":
        return gen(data, data.draw(st.sampled_from(_FLOATS)), depth)
    if kind == "bool":
        return data.draw(st.booleans())
    if kind == "datetime":
        return gen(data, datetime, depth)
    if kind == "enum":
        enum = data.draw(st.sampled_from(ENUMS))
        return getattr(enum, data.draw(st.sampled_from(enum.values)))
    if kind == "mo":
        return gen(data, ManagedObject, depth)
    if kind == "array":
        return gen(data, data.draw(st.sampled_from(_ARRAYS)), depth)
    if kind == "type":
        return gen(data, type, depth)
    if kind == "method":
        return gen(data, ManagedMethod, depth)
    if kind == "path":
        return gen(data, VmomiSupport.PropertyPath, depth)
    if kind == "uri":
        return gen(data, VmomiSupport.URI, depth)
    if kind == "binary":
        return gen(data, VmomiSupport.binary, depth)
    if kind == "common":
        return gen(data, data.draw(st.sampled_from(COMMON_DATA)), depth + 1)
    if kind == "fault":
        return gen(data, data.draw(st.sampled_from(FAULTS)), depth + 1)
    return gen(data, data.draw(st.sampled_from(DATA)), depth + 1)


def gen(data: st.DataObject, typ: Any, depth: int = 0, *, optional: bool = True) -> Any:
    """A value of pyVmomi type ``typ`` (never None; ``optional``: an array may be empty)."""
    if typ is object:
        return gen_any(data, depth)
    if issubclass(typ, list):
        low = 0 if optional else 1
        count = data.draw(st.integers(low, low if depth > 5 else 3))
        items = [gen(data, typ.Item, depth + 1) for _ in range(count)]
        if data.draw(st.integers(0, 29)) == 0:
            items.insert(data.draw(st.integers(0, count)), None)  # pyVmomi skips it in an optional slot
        return typ(items)
    if typ is bool:
        return data.draw(st.booleans())
    if typ in _INTS:
        return typ(data.draw(st.one_of(st.sampled_from(_INT_EXTREMES), st.integers())))
    if typ in _FLOATS:
        return typ(data.draw(st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1e300, 1e-300, 0.1, 2.5]))))
    if typ is type:
        return data.draw(st.sampled_from(_TYPE_NAMES))
    if typ is ManagedMethod:
        return data.draw(st.sampled_from(_METHODS))
    if typ is VmomiSupport.PropertyPath:
        return typ(data.draw(st.one_of(st.sampled_from(_PATHS), texts())))
    if typ is VmomiSupport.binary:
        return typ(data.draw(st.binary(max_size=8)))
    if isinstance(typ, type) and issubclass(typ, datetime):
        return data.draw(st.one_of(st.sampled_from(_DATETIMES), st.datetimes(timezones=st.sampled_from(_ZONES))))
    if issubclass(typ, Enum):
        name = data.draw(st.sampled_from(typ.values))
        return getattr(typ, name) if data.draw(st.integers(0, 4)) else name  # the enum, or a plain str
    if issubclass(typ, ManagedObject):
        cls = data.draw(st.sampled_from([c for c in _MO_CLASSES if issubclass(c, typ)] or [typ]))
        moid = data.draw(st.sampled_from(_MOIDS) if data.draw(st.integers(0, 7)) else texts())
        guid = data.draw(st.sampled_from(["g-1", "a<b", "", "52 1f"])) if data.draw(st.integers(0, 4)) == 0 else None
        return cls(moid, None, guid)
    if issubclass(typ, DataObject):
        return gen_data(data, some_subtype(data, typ), depth)
    if isinstance(typ, type) and issubclass(typ, str):
        return typ(data.draw(texts()))
    raise AssertionError(f"no generator for {typ}")


def gen_data(data: st.DataObject, cls: Any, depth: int) -> Any:
    props = cls._GetPropertyList()
    # dynamicProperty (a rarely used escape hatch) and links only now and then
    rare = data.draw(st.integers(0, 9)) == 0
    optional = [p.name for p in props if p.flags & F_OPTIONAL
                and (rare or (p.name != "dynamicProperty" and not p.flags & F_LINK))]
    chosen = {p.name for p in props if not p.flags & F_OPTIONAL}
    if depth < 4 and optional:
        chosen |= set(data.draw(st.lists(st.sampled_from(optional), max_size=6)))
    kwargs: dict[str, Any] = {}
    for p in props:
        if p.name not in chosen:
            continue
        if p.flags & F_LINK:
            kwargs[p.name] = VmomiSupport.Link(data.draw(texts()))
        else:
            kwargs[p.name] = gen(data, p.type, depth + 1, optional=bool(p.flags & F_OPTIONAL))
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, AttributeError):  # a combination pyVmomi itself refuses
        reject()


#: the methods of the common shapes (always drawn from), and every method the endpoint simulates
COMMON = ["RetrievePropertiesEx", "RetrieveProperties", "ContinueRetrievePropertiesEx", "CreateFilter",
          "WaitForUpdatesEx", "WaitForUpdates", "Fetch", "CreateSnapshot_Task", "RemoveSnapshot_Task",
          "Login", "RetrieveServiceContent", "CreateContainerView", "FindByInventoryPath",
          "QueryChangedDiskAreas", "CurrentTime"]
ALL_METHODS = sorted({m for t in ALL_TYPES for m in t.soap_methods()} | set(COMMON))
#: declared types of the slots drawn directly
SLOT_TYPES = [object, str, int, VmomiSupport.long, bool, float, datetime, type, ManagedMethod,
              VmomiSupport.PropertyPath, VmomiSupport.URI, VmomiSupport.binary, ManagedObject, vim.ManagedEntity,
              vim.Task, vim.TaskInfo.State, vmodl.MethodFault, vmodl.LocalizedMethodFault, vmodl.DynamicData,
              vim.TaskReason, vim.vm.device.VirtualDevice, *COMMON_DATA, *_ARRAYS]


@st.composite
def method_results(draw: Any) -> tuple[Any, Any, str]:
    """A result of a method (its declared type, in one of several API versions)."""
    data = draw(st.data())
    name = draw(st.one_of(st.sampled_from(COMMON), st.sampled_from(ALL_METHODS)))
    version = draw(st.sampled_from(VERSIONS))
    info = method_info(name, version)
    if info.result is type(None):
        reject()
    value = gen(data, info.result)
    if isinstance(value, list) and draw(st.booleans()):
        value = list(value)  # the endpoint answers plain lists too
    return value, info, version


@st.composite
def slot_values(draw: Any) -> tuple[Any, Any, str]:
    """A value in a slot of a chosen declared type (optional or not)."""
    data = draw(st.data())
    typ = draw(st.sampled_from(SLOT_TYPES))
    flags = draw(st.sampled_from([F_OPTIONAL, 0]))
    value = gen(data, typ)
    return value, slot_info(typ, flags), draw(st.sampled_from(VERSIONS))


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def _run(strategy: st.SearchStrategy[tuple[Any, Any, str]]) -> collections.Counter[str]:
    """The differential property over ``strategy``; counts how often the fast path answered."""
    counts: collections.Counter[str] = collections.Counter()

    @SETTINGS
    @given(strategy)
    def check(case: tuple[Any, Any, str]) -> None:
        value, info, version = case
        counts["fast" if differential(value, info, version) is not None else "fallback"] += 1

    check()
    return counts


def test_method_results_are_written_as_pyvmomi_writes_them() -> None:
    counts = _run(method_results())
    # a fast path that silently refused everything would pass the property: it must answer most
    assert counts["fast"] > counts["fallback"], counts


def test_values_in_typed_slots_are_written_as_pyvmomi_writes_them() -> None:
    counts = _run(slot_values())
    assert counts["fast"] > counts["fallback"], counts


@SETTINGS
@given(st.one_of(st.sampled_from(_DATETIMES), st.datetimes(timezones=st.sampled_from(_ZONES))))
def test_datetimes_are_formatted_as_iso8601format_does(value: datetime) -> None:
    assert _fastencode._iso8601(value) == Iso8601.ISO8601Format(value)


# --- the shapes the endpoint answers most take the fast path -------------------------------------

_T0 = datetime(2008, 7, 25, 0, 0, 0, tzinfo=UTC)
_TASK = vim.Task("haTask-ha-folder-root-vim.VirtualMachine.createSnapshot-42", None)
_VM = vim.VirtualMachine("vm-1", None)
_SNAP = vim.vm.Snapshot("snapshot-1", None)


def task_info(state: str = "success", error: Any = None) -> Any:
    return vim.TaskInfo(
        key=_TASK._moId, task=_TASK, name=VmomiSupport.GetWsdlMethod("urn:vim25", "CreateSnapshot_Task"),
        descriptionId="VirtualMachine.createSnapshot", entity=_VM, entityName="win2003-sql", state=state,
        cancelled=False, cancelable=False, error=error, result=_SNAP if error is None else None,
        reason=vim.TaskReasonUser(userName="user"), queueTime=_T0, startTime=_T0 + timedelta(seconds=1),
        completeTime=_T0 + timedelta(seconds=3, microseconds=250000), eventChainId=17, progress=100,
    )


def complete(obj: Any) -> Any:
    """``obj`` with every required property that is still unset given a plain value (so the
    hand-built shapes are ones pyVmomi writes)."""
    for p in obj._GetPropertyList():
        if p.flags & F_OPTIONAL or getattr(obj, p.name) is not None:
            continue
        if issubclass(p.type, ManagedObject):
            value: Any = p.type("x-1", None)
        elif issubclass(p.type, datetime):
            value = _T0
        elif issubclass(p.type, Enum):
            value = p.type.values[0]
        elif issubclass(p.type, DataObject):
            value = complete(p.type())
        else:
            continue
        setattr(obj, p.name, value)
    for p in obj._GetPropertyList():
        value = getattr(obj, p.name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, DataObject) and not isinstance(item, BaseException):
                complete(item)
    return obj


def disk(key: int) -> Any:
    return vim.vm.device.VirtualDisk(
        key=key, controllerKey=1000, unitNumber=key - 2000, capacityInKB=8 * 1024 * 1024,
        capacityInBytes=8 * 1024**3, deviceInfo=vim.Description(label=f"Hard disk {key - 1999}", summary="8 GB"),
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=f"[datastore1] win/win-00000{key - 2000}.vmdk", diskMode="persistent", thinProvisioned=True,
            datastore=vim.Datastore("datastore-1", None), uuid="6000C29a-0000"),
    )


def config_info() -> Any:
    return complete(vim.vm.ConfigInfo(
        name="win2003-sql", guestFullName="Microsoft Windows Server 2003", version="vmx-07", uuid="564d-1",
        template=False, guestId="winNetStandardGuest", changeTrackingEnabled=True, changeVersion="",
        modified=_T0, files=vim.vm.FileInfo(vmPathName="[datastore1] win/win.vmx"),
        hardware=vim.vm.VirtualHardware(numCPU=2, memoryMB=2048, device=[disk(2000), disk(2001)]),
        extraConfig=[vim.option.OptionValue(key="ctkEnabled", value="TRUE")],
    ))


def snapshot_info() -> Any:
    tree = vim.vm.SnapshotTree(snapshot=_SNAP, vm=_VM, name="backup <1>", description="by vcbsim & co",
                               id=1, createTime=_T0, state="poweredOn", quiesced=True, backupManifest="",
                               childSnapshotList=[], replaySupported=False)
    return vim.vm.SnapshotInfo(currentSnapshot=_SNAP, rootSnapshotList=[tree])


def summary() -> Any:
    return complete(vim.vm.Summary(
        vm=_VM, runtime=vim.vm.RuntimeInfo(powerState="poweredOn", connectionState="connected",
                                           bootTime=_T0, maxCpuUsage=2000, host=vim.HostSystem("ha-host", None)),
        config=vim.vm.Summary.ConfigSummary(name="win2003-sql", template=False, vmPathName="[datastore1] win/win.vmx",
                                            numCpu=2, memorySizeMB=2048, uuid="564d-1"),
        storage=vim.vm.Summary.StorageSummary(committed=2**33, uncommitted=0, unshared=2**33, timestamp=_T0),
        quickStats=vim.vm.Summary.QuickStats(), overallStatus="green",
    ))


def contents(name: str, val: Any) -> Any:
    return PC.ObjectContent(obj=_TASK if name.startswith("info") else _VM,
                            propSet=[vmodl.DynamicProperty(name=name, val=val)])


FAULT = vim.fault.InvalidState(msg="The operation is not allowed in the current state.")
NAMELESS_FAULT = vim.fault.SnapshotFault()
PROPERTY_VALUES: dict[str, Any] = {
    "info.state": vim.TaskInfo.State.success,
    "info.result": _SNAP,
    "info.error": FAULT,
    "info.error-no-msg": NAMELESS_FAULT,
    "info": task_info(),
    "info-failed": task_info("error", FAULT),
    "snapshot.currentSnapshot": _SNAP,
    "name": "win2003-sql <&>",
    "config.template": False,
    "config.hardware.numCPU": 2,
    "datastore": VmomiSupport.GetVmodlType("vim.Datastore[]")([vim.Datastore("datastore-1", None)]),
    "snapshot": snapshot_info(),
    "summary": summary(),
    "config": config_info(),
}
_UPDATE = PC.UpdateSet(version="3", filterSet=[PC.FilterUpdate(
    filter=PC.Filter("session[52a1]52b3", None),
    objectSet=[PC.ObjectUpdate(kind="modify", obj=_TASK, changeSet=[
        PC.Change(name="info.state", op="assign", val=vim.TaskInfo.State.running),
        PC.Change(name="info.progress", op="assign", val=40),
        PC.Change(name="info", op="assign", val=task_info()),
        PC.Change(name="info.error", op="assign", val=FAULT),
        PC.Change(name="info.completeTime", op="assign"),
    ])])])
SHAPES: dict[str, tuple[str, Any]] = {
    **{f"RetrieveProperties {name}": ("RetrieveProperties", [contents(name.split("-")[0], val)])
       for name, val in PROPERTY_VALUES.items()},
    **{f"RetrievePropertiesEx {name}": ("RetrievePropertiesEx", PC.RetrieveResult(objects=[contents(name.split("-")[0], val)]))
       for name, val in PROPERTY_VALUES.items()},
    "Fetch TaskInfo": ("Fetch", task_info()),
    "Fetch TaskInfo failed": ("Fetch", task_info("error", FAULT)),
    "Fetch TaskInfo running": ("Fetch", vim.TaskInfo(
        key="t", task=_TASK, descriptionId="d", state="running", cancelled=False, cancelable=True,
        reason=vim.TaskReasonUser(userName="user"), queueTime=_T0, startTime=_T0, eventChainId=1, progress=40)),
    "Fetch state": ("Fetch", vim.TaskInfo.State.queued),
    "Fetch fault": ("Fetch", FAULT),
    "Fetch snapshot": ("Fetch", _SNAP),
    "Fetch devices": ("Fetch", VmomiSupport.GetVmodlType("vim.vm.device.VirtualDevice[]")([disk(2000), disk(2001)])),
    "CreateSnapshot_Task": ("CreateSnapshot_Task", _TASK),
    "RemoveSnapshot_Task": ("RemoveSnapshot_Task", _TASK),
    "CreateFilter": ("CreateFilter", PC.Filter("session[52a1]52b3", None)),
    "WaitForUpdatesEx": ("WaitForUpdatesEx", _UPDATE),
    "WaitForUpdates": ("WaitForUpdates", _UPDATE),
    "RetrieveServiceContent": ("RetrieveServiceContent", vim.ServiceInstanceContent(
        rootFolder=vim.Folder("ha-folder-root", None), propertyCollector=PC("ha-property-collector", None),
        about=vim.AboutInfo(name="VMware ESX", fullName="VMware ESX 3.5.0 build-64607", vendor="VMware, Inc.",
                            version="3.5.0", build="64607", osType="vmnix-x86", productLineId="esx",
                            apiType="HostAgent", apiVersion="8.0.3.0"),
        sessionManager=vim.SessionManager("ha-sessionmgr", None), viewManager=vim.view.ViewManager("ViewManager", None))),
    "Login": ("Login", vim.UserSession(key="52ab", userName="user", fullName="user", loginTime=_T0,
                                       lastActiveTime=_T0 + timedelta(microseconds=5), locale="en", messageLocale="en",
                                       extensionSession=False, ipAddress="127.0.0.1", userAgent="pyvmomi",
                                       callCount=0)),
}


@pytest.mark.parametrize("case", sorted(SHAPES))
@pytest.mark.parametrize("version", [V, V60], ids=["8.0.3.0", "6.0"])
def test_common_shapes_take_the_fast_path(case: str, version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    name, result = SHAPES[case]
    info = method_info(name, version)
    assert differential(result, info, version) is not None, f"{case}: the fast path refused it"
    fast = _codec.serialize_response(name, info, result, version)
    monkeypatch.setattr(_fastencode, "encode_fast", lambda *_: None)
    assert fast == _codec.serialize_response(name, info, result, version)


def test_later_properties_are_left_out_in_an_earlier_version() -> None:
    info = task_info()
    info.progressDetails = [vmodl.KeyAnyValue(key="phase", value="copy")]  # new in 8.0.1
    info.activationId = "a-1"  # new in 6.0 (version10)
    for version, present in [(V, True), (V60, False), ("vim.version.version9", False)]:
        text = differential(info, method_info("Fetch", version), version)
        assert text is not None
        assert ("<progressDetails>" in text) == present and ("<activationId>" in text) == (version != "vim.version.version9")


def test_a_later_type_is_widened_as_pyvmomi_widens_it() -> None:
    fault = vim.fault.SnapshotFault(msg="m")
    later = next(f for f in FAULTS if not VmomiSupport.IsChildVersion(V60, f._version)
                 and VmomiSupport.IsChildVersion(V, f._version) and f.__init__ is DataObject.__init__)
    for value in (fault, later()):
        for version in (V, V60):
            assert differential(value, method_info("Fetch", version), version) is not None


# --- values that fall back ------------------------------------------------------------------------


def _with(target: Any, /, **values: Any) -> Any:
    """``target`` with values pyVmomi's ``CheckField`` would refuse (set around it)."""
    for name, value in values.items():
        object.__setattr__(target, name, value)
    return target


FALLBACKS: dict[str, tuple[Any, Any]] = {
    "plain list in an object slot": (_with(vmodl.DynamicProperty(name="x", val=1), val=["a"]), slot_info(vmodl.DynamicProperty)),
    "required property unset": (_with(vim.TaskReasonUser(userName="u"), userName=None), slot_info(vim.TaskReason)),
    "required reference unset": (_with(PC.ObjectContent(obj=_VM), obj=None), slot_info(PC.ObjectContent)),
    "required array empty": (_with(PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=_VM)], propSet=[PC.PropertySpec(type=vim.Task)]),
                                   propSet=PC.PropertySpec.Array()), slot_info(PC.FilterSpec)),
    "required result None": (None, slot_info(vim.Task, 0)),
    "required result empty": ([], slot_info(vim.Task.Array, 0)),
    "a link": (vim.host.MultipathInfo.Path(key="k", name="n", pathState="active",
                                           adapter=VmomiSupport.Link("a"), lun=VmomiSupport.Link("l")),
               slot_info(vim.host.MultipathInfo.Path)),
    "bytes in an object slot": (_with(vmodl.DynamicProperty(name="x", val=1), val=b"x"), slot_info(vmodl.DynamicProperty)),
    "a str subclass": (type("Text", (str,), {})("x"), slot_info(str)),
    "an unknown value": (_with(vmodl.DynamicProperty(name="x", val=1), val={"a": 1}), slot_info(vmodl.DynamicProperty)),
    "a LocalizedMethodFault without its fault": (
        _with(vmodl.LocalizedMethodFault(fault=vmodl.MethodFault()), fault=None), slot_info(vmodl.MethodFault)),
    "a fault with positional args": (_with(vim.fault.InvalidState(), args=("x",)), slot_info(vmodl.MethodFault)),
}


@pytest.mark.parametrize("case", sorted(FALLBACKS))
def test_odd_values_fall_back_and_get_the_same_answer(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    value, info = FALLBACKS[case]
    assert _fastencode.encode_fast(value, info, V) is None
    differential(value, info, V)

    def answer() -> Any:
        try:
            return _codec.serialize_response("Slot", info, value, V)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    now = answer()
    monkeypatch.setattr(_fastencode, "encode_fast", lambda *_: None)
    assert now == answer()


def test_unknown_version_falls_back() -> None:
    assert _fastencode.encode_fast(_TASK, method_info("CreateSnapshot_Task"), "vim.version.no_such") is None


# --- a running endpoint, driven by pyVmomi --------------------------------------------------------

#: the methods whose answers must never fall back
IMPORTANT = {"RetrieveServiceContent", "Login", "CreateSnapshot_Task", "RemoveSnapshot_Task", "CreateFilter",
             "WaitForUpdatesEx", "WaitForUpdates", "RetrieveProperties", "RetrievePropertiesEx", "Fetch"}


class Spy:
    """Wraps ``encode_fast``: counts fast answers and fallbacks per method, checks each fast
    answer against pyVmomi's, and notes the classes of the property values answered."""

    def __init__(self) -> None:
        self.encode = _fastencode.encode_fast
        self.fast: collections.Counter[str] = collections.Counter()
        self.fallbacks: collections.Counter[tuple[str, str]] = collections.Counter()
        self.mismatches: list[tuple[str, str, str]] = []
        self.values: set[str] = set()

    def __call__(self, result: Any, info: Any, version: str) -> str | None:
        text = self.encode(result, info, version)
        if text is None:
            self.fallbacks[info.wsdlName, type(result).__name__] += 1
            return None
        self.fast[info.wsdlName] += 1
        slow = pyvmomi_text(result, info, version)
        if text != slow:
            self.mismatches.append((info.wsdlName, text, slow))
        self.values.update(self._classes(result))
        return text

    @staticmethod
    def _classes(result: Any) -> Iterator[str]:
        if isinstance(result, PC.RetrieveResult):
            result = result.objects
        if not isinstance(result, list):
            result = [result]
        for item in result:
            if isinstance(item, PC.ObjectContent):
                for prop in item.propSet:
                    yield VmomiSupport.GetWsdlName(type(prop.val))


def _contents(pc: Any, obj: Any, typ: Any, paths: list[str], ex: bool = False) -> dict[str, Any]:
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=obj)], propSet=[PC.PropertySpec(type=typ, pathSet=paths)])
    if ex:
        objects = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions()).objects
    else:
        objects = pc.RetrieveContents([spec])
    return {p.name: p.val for p in objects[0].propSet}


def test_a_snapshot_cycle_against_the_endpoint_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy()
    monkeypatch.setattr(_fastencode, "encode_fast", spy)
    host = Host.demo()
    with serve(host, http=True) as srv:
        si = SmartConnect(host="127.0.0.1", port=srv.port, user="user", pwd="pass", protocol="http")
        try:
            content = si.RetrieveContent()
            pc = content.propertyCollector
            view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
            vm = view.view[0]
            assert vm.name and len(vm.config.hardware.device) > 0

            task = vm.CreateSnapshot_Task("backup <1>", "by vcbsim & co", False, False)
            for _ in range(1000):  # polling the state, as a backup product does
                if _contents(pc, task, vim.Task, ["info.state"])["info.state"] not in ("queued", "running"):
                    break
            WaitForTask(task)
            assert task.info.state == "success" and task.info.queueTime is not None
            snap = task.info.result
            assert isinstance(snap, vim.vm.Snapshot)
            _contents(pc, task, vim.Task, ["info", "info.result", "info.state"], ex=True)
            values = _contents(pc, vm, vim.VirtualMachine, [
                "snapshot", "summary", "config", "name", "runtime.powerState", "snapshot.currentSnapshot",
                "datastore", "config.hardware.numCPU", "config.template"], ex=True)
            assert values["snapshot.currentSnapshot"] == snap

            # WaitForUpdatesEx on a filter of the task's state
            spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=task)],
                                 propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info.state", "info"])])
            pfilter = pc.CreateFilter(spec, True)
            update = pc.WaitForUpdatesEx("", PC.WaitOptions(maxWaitSeconds=0))
            assert update is not None and update.filterSet
            pfilter.Destroy()

            # a removal that fails: TaskInfo.error, in Fetch, RetrieveProperties and updates
            host.add_fault(operation="snapshot.remove", target="*", fault="SnapshotFault", message="no <way>", times=1)
            failed = snap.RemoveSnapshot_Task(False)
            with pytest.raises(vim.fault.SnapshotFault):
                WaitForTask(failed)
            assert failed.info.error is not None
            error = _contents(pc, failed, vim.Task, ["info.error", "info"])["info.error"]
            assert isinstance(error, vim.fault.SnapshotFault)

            removed = snap.RemoveSnapshot_Task(False)
            WaitForTask(removed)
            assert removed.info.state == "success"
        finally:
            Disconnect(si)

    assert not spy.mismatches, spy.mismatches[:3]
    assert IMPORTANT - {"WaitForUpdates"} <= set(spy.fast), spy.fast
    assert not [key for key in spy.fallbacks if key[0] in IMPORTANT], spy.fallbacks
    # the property values the client read were the shapes above, and all took the fast path
    expected = {"TaskInfoState", "TaskInfo", "VirtualMachineSnapshot", "string", "boolean", "int",
                "VirtualMachineSnapshotInfo", "VirtualMachineSummary", "VirtualMachineConfigInfo",
                "ArrayOfDatastore", "SnapshotFault"}
    assert expected <= spy.values, (expected - spy.values, spy.values)
