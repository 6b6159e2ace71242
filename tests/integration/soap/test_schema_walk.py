"""Every answer checked against the served schema: a walk over every property the endpoint
serves, of every managed object reachable from the service content, on a rich inventory (VMs
with snapshot trees and redo logs, change tracking where the profile has it, datastores, the
host), for every host profile at its own API version and for the default version.

Two checks per answer, the way a strict WSDL client reads it:

* the answer's body element validates against the served ``vim.wsdl`` schemas (libxml2,
  ``lxml.etree.XMLSchema``), which checks every element, every ``xsi:type`` named inside a
  typed slot (it must be the declared type or derived from it) and every enum value;
* each value in an ``anyType`` position (a ``DynamicProperty.val``, a ``Fetch`` result) carries
  exactly the ``xsi:type`` pyVmomi declares for its property path (a derived data object type
  is fine; ``xsd:int`` where ``xsd:long`` is declared, or ``xsd:string`` for an enum, is not),
  and every item of an array value carries its own ``xsi:type``.

Paths are the top-level properties the endpoint implements (``MOImpl.property_names``) and
every nested data-object path below them that the answer holds (``summary.capacity``,
``config.hardware.memoryMB``, ...), each read by ``RetrieveProperties`` and the top-level ones
by ``Fetch`` too. A Hypothesis property then sends generated calls (random objects, random path
sets, ``RetrievePropertiesEx`` / ``RetrieveProperties`` / ``Fetch``, ``all=true``) and checks
their answers the same way. The counts of the walk are printed (``-s``) and asserted to be
large enough to mean something.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from pyVmomi import SoapAdapter, VmomiSupport
from pyVmomi.VmomiSupport import DataObject, ManagedObject

from vcbsim.simulator import Host
from vcbsim.simulator._profiles import PROFILES
from vcbsim.simulator.soap import serve
from vcbsim.simulator.soap._collector import declared_type
from vcbsim.simulator.soap.mo import ALL_TYPES
from vcbsim.simulator.soap.wire._codec import DEFAULT_VERSION, vim25_version, wire_version
from vcbsim.simulator.soap.wire._wsdl import documents

SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
VIM = "urn:vim25"
TYPE = f"{{{XSI}}}type"
IMPLS = {VmomiSupport.GetWsdlName(impl.vim_type): impl for impl in ALL_TYPES}


# --- the inventory ---------------------------------------------------------------------------


def rich_host(profile: str) -> Host:
    """The demo host plus a third VM, with snapshot trees (two levels on one VM) and redo logs,
    and change tracking on (where the profile has it) before the snapshots."""
    host = Host.demo(profile)
    host.add_vm("sql-cluster-node", os_family="windows", disks=[2 * 1024**3, 1024**3], power_state="poweredOff")
    vms = sorted(host.vms.values(), key=lambda vm: vm.name)
    if host.profile.change_tracking:
        for vm in vms:
            host.reconfigure(vm, change_tracking=True)
    first, second, third = vms[0], vms[1], vms[2]
    host.create_snapshot(first, "nightly")
    host.create_snapshot(first, "before-patch", description="two levels of redo logs")
    host.create_snapshot(second, "weekly")
    host.create_snapshot(third, "offline")
    return host


# --- a raw client ---------------------------------------------------------------------------------


class Client:
    def __init__(self, base: str, version: str) -> None:
        self.base = base
        self.version = version
        self.action = f"urn:vim25/{wire_version(version)}"
        self.http = requests.Session()
        self.http.trust_env = False
        self.has_ex = VmomiSupport.IsChildVersion(version, "vim.version.version6")  # RetrievePropertiesEx: 4.1

    def post(self, body: str) -> etree._Element:
        env = (f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}" xmlns:xsi="{XSI}"><soapenv:Body>{body}'
               "</soapenv:Body></soapenv:Envelope>")
        r = self.http.post(f"{self.base}/sdk", data=env.encode(), headers={"SOAPAction": self.action,
                                                                           "Content-Type": "text/xml"})
        root = etree.fromstring(r.content)
        answer = root.find(f"{{{SOAPENV}}}Body")[0]
        assert r.status_code == 200, etree.tostring(answer)[:2000]
        return answer

    def login(self) -> etree._Element:
        content = self.post('<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">'
                            "ServiceInstance</_this></RetrieveServiceContent>")
        self.post('<Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this>'
                  "<userName>user</userName><password>pass</password></Login>")
        return content

    def retrieve(self, typ: str, moid: str, paths: list[str] | None, *, ex: bool = False) -> etree._Element:
        sel = "<all>true</all>" if paths is None else "".join(f"<pathSet>{p}</pathSet>" for p in paths)
        spec = (f"<specSet><propSet><type>{typ}</type>{sel}</propSet>"
                f'<objectSet><obj type="{typ}">{moid}</obj></objectSet></specSet>')
        method = "RetrievePropertiesEx" if ex else "RetrieveProperties"
        options = "<options/>" if ex else ""
        return self.post(f'<{method} xmlns="urn:vim25"><_this type="PropertyCollector">ha-property-collector'
                         f"</_this>{spec}{options}</{method}>")

    def fetch(self, typ: str, moid: str, prop: str) -> etree._Element:
        return self.post(f'<Fetch xmlns="urn:vim25"><_this type="{typ}">{moid}</_this><prop>{prop}</prop></Fetch>')


# --- the checks -------------------------------------------------------------------------------------


@functools.cache
def schema_for(version: str, folder: str) -> etree.XMLSchema:
    out = Path(folder) / version
    out.mkdir(parents=True, exist_ok=True)
    for name, body in documents(version).items():
        (out / name).write_bytes(body)
    return etree.XMLSchema(etree.parse(str(out / "vim-messages.xsd")))


def wsdl_type_name(typ: Any) -> str:
    """The ``xsi:type`` a host writes for a value of declared type ``typ``."""
    if issubclass(typ, list):
        item = typ.Item
        if SoapAdapter.isDynamicType(item):  # TypeName, MethodName, PropertyPath
            return "ArrayOfString"
        if issubclass(item, ManagedObject):
            return "ArrayOfManagedObjectReference"
    elif SoapAdapter.isDynamicType(typ):
        return "xsd:string"
    elif issubclass(typ, ManagedObject):
        return "ManagedObjectReference"
    ns, name = VmomiSupport.GetQualifiedWsdlName(typ)
    return f"xsd:{name}" if ns == XSD else name


def _qname(el: etree._Element, text: str) -> str:
    """An ``xsi:type`` value with its prefix resolved as ``xsd:`` or unprefixed vim25."""
    prefix, _, local = text.rpartition(":")
    ns = el.nsmap.get(prefix or None)
    return f"xsd:{local}" if ns == XSD else local


def _derives(name: str, declared: Any) -> bool:
    try:
        actual = VmomiSupport.GetWsdlType(VIM, name)
    except KeyError:
        return False
    return isinstance(declared, type) and isinstance(actual, type) and issubclass(actual, declared)


def check_typed(val: etree._Element, declared: Any, where: str) -> list[str]:
    """What is wrong with an anyType value of declared type ``declared`` (empty: nothing)."""
    raw = val.get(TYPE)
    if raw is None:
        return [f"{where}: no xsi:type"]
    got = _qname(val, raw)
    problems = []
    if declared is not object:
        want = wsdl_type_name(declared)
        ok = got == want or (issubclass(declared, DataObject) and not issubclass(declared, list)
                             and _derives(got, declared))
        if not ok:
            problems.append(f"{where}: xsi:type {got}, declared {want}")
    if isinstance(declared, type) and issubclass(declared, list):
        item = declared.Item
        for child in val:
            c_raw = child.get(TYPE)
            if c_raw is None:
                problems.append(f"{where}: an item <{etree.QName(child).localname}> without xsi:type")
                break
            c_got = _qname(child, c_raw)
            if not (c_got == wsdl_type_name(item) or (issubclass(item, DataObject) and _derives(c_got, item))):
                problems.append(f"{where}: item xsi:type {c_got}, declared {wsdl_type_name(item)}")
                break
    return problems


@dataclass
class Walk:
    client: Client
    schema: etree.XMLSchema
    properties: int = 0
    answers: int = 0
    problems: list[str] = field(default_factory=list)
    #: (type, moid) -> {path: declared type}
    paths: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def validate(self, answer: etree._Element, what: str) -> None:
        self.answers += 1
        if not self.schema.validate(answer):
            self.problems.append(f"{what}: {self.schema.error_log.last_error}")

    def check_answer(self, typ: str, moid: str, answer: etree._Element, declared: dict[str, Any]) -> None:
        for dp in answer.iter(f"{{{VIM}}}propSet"):
            name = dp.findtext(f"{{{VIM}}}name")
            val = dp.find(f"{{{VIM}}}val")
            self.properties += 1
            if name in declared:
                self.problems += check_typed(val, declared[name], f"{typ}:{moid} {name}")


def nested_paths(val: etree._Element, declared: Any, prefix: str, out: dict[str, Any]) -> None:
    """The data-object paths below ``prefix`` that ``val`` (its XML) holds, with their declared
    types (the owner's class: its ``xsi:type`` where it has one)."""
    raw = val.get(TYPE)
    owner = declared
    if raw is not None and not _qname(val, raw).startswith("xsd:"):
        try:
            owner = VmomiSupport.GetWsdlType(VIM, _qname(val, raw))
        except KeyError:  # ManagedObjectReference: no data object below
            return
    if not (isinstance(owner, type) and issubclass(owner, DataObject)) or issubclass(owner, list):
        return
    seen = set()
    for child in val:
        name = etree.QName(child).localname
        if name in seen:
            continue
        seen.add(name)
        try:
            info = owner._GetPropertyInfo(name)
        except AttributeError:
            continue
        path = f"{prefix}.{name}"
        out[path] = info.type
        if not issubclass(info.type, list):
            nested_paths(child, info.type, path, out)


def refs_in(answer: etree._Element) -> set[tuple[str, str]]:
    """Every managed object reference an answer holds."""
    found = set()
    for el in answer.iter():
        typ = el.get("type")
        if typ and typ in IMPLS and el.text and len(el) == 0:
            found.add((typ, el.text))
    return found


def walk(client: Client, schema: etree.XMLSchema) -> Walk:
    w = Walk(client, schema)
    content = client.login()
    w.validate(content, "RetrieveServiceContent")
    todo = sorted(refs_in(content))
    view = client.post('<CreateContainerView xmlns="urn:vim25"><_this type="ViewManager">ViewManager</_this>'
                       '<container type="Folder">ha-folder-root</container><recursive>true</recursive>'
                       "</CreateContainerView>")
    todo.append(("ContainerView", view[0].text))
    task = client.post('<CreateSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-2</_this>'
                       "<name>walk</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>")
    todo.append(("Task", task[0].text))
    done: set[tuple[str, str]] = set()
    while todo:
        key = todo.pop()
        if key in done or key[0] not in IMPLS:
            continue
        done.add(key)
        typ, moid = key
        impl = IMPLS[typ]
        names = impl.property_names(client.version)
        if not names:
            continue
        declared = {n: declared_type(impl.vim_type, n) for n in names}
        answer = client.retrieve(typ, moid, names)
        w.validate(answer, f"{typ}:{moid} RetrieveProperties")
        w.check_answer(typ, moid, answer, declared)
        todo.extend(sorted(refs_in(answer) - done))
        nested: dict[str, Any] = {}
        for dp in answer.iter(f"{{{VIM}}}propSet"):
            name = dp.findtext(f"{{{VIM}}}name")
            if not issubclass(declared[name], list):
                nested_paths(dp.find(f"{{{VIM}}}val"), declared[name], name, nested)
        if nested:
            deep = client.retrieve(typ, moid, sorted(nested))
            w.validate(deep, f"{typ}:{moid} RetrieveProperties (nested paths)")
            w.check_answer(typ, moid, deep, nested)
        for name in names:  # pyVmomi 8's way: Fetch, one property at a time
            got = client.fetch(typ, moid, name)
            w.answers += 1
            ret = got.find(f"{{{VIM}}}returnval")
            if ret is not None:
                w.properties += 1
                w.problems += check_typed(ret, declared[name], f"{typ}:{moid} Fetch {name}")
        w.paths[key] = {**declared, **nested}
    return w


# --- the tests -------------------------------------------------------------------------------------


CASES = [(name, vim25_version(p.api_version)) for name, p in PROFILES.items()] + [("esxi-7.0", DEFAULT_VERSION)]


@pytest.fixture(scope="module")
def schema_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("schemas"))


@pytest.mark.parametrize(("profile", "version"), CASES, ids=[f"{p}@{wire_version(v)}" for p, v in CASES])
def test_every_answer_validates_and_every_anytype_value_has_its_declared_type(profile: str, version: str,
                                                                              schema_dir: str) -> None:
    with serve(rich_host(profile), http=True, api_version=version) as server:
        w = walk(Client(server.base_url, version), schema_for(version, schema_dir))
    print(f"\n{profile} at {wire_version(version)}: {len(w.paths)} objects, {w.properties} properties walked, "
          f"{w.answers} answers validated, {len(w.problems)} problems")
    assert not w.problems, "\n".join(w.problems[:40])
    kinds = {typ for typ, _ in w.paths}
    assert {"VirtualMachine", "VirtualMachineSnapshot", "HostSystem", "Datastore", "Task", "Folder"} <= kinds
    assert sum(1 for typ, _ in w.paths if typ == "VirtualMachineSnapshot") == 5  # 4 + the task's
    assert w.properties > 1000 and w.answers > 100


# --- generated calls ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def walked(schema_dir: str) -> Iterator[Walk]:
    with serve(rich_host("esxi-7.0"), http=True) as server:
        w = walk(Client(server.base_url, DEFAULT_VERSION), schema_for(DEFAULT_VERSION, schema_dir))
        w.problems.clear()
        yield w


@st.composite
def calls(draw: st.DrawFn, objects: list[tuple[tuple[str, str], dict[str, Any]]]) -> tuple[str, str, str, Any]:
    (typ, moid), paths = draw(st.sampled_from(objects))
    method = draw(st.sampled_from(["RetrievePropertiesEx", "RetrieveProperties", "Fetch", "all"]))
    names = sorted(paths)
    if method == "Fetch":
        return typ, moid, method, draw(st.sampled_from(names))
    if method == "all":
        return typ, moid, method, None
    return typ, moid, method, draw(st.lists(st.sampled_from(names), min_size=1, max_size=12, unique=True))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_generated_calls_answer_valid_typed_values(walked: Walk, data: st.DataObject) -> None:
    objects = sorted(walked.paths.items())
    typ, moid, method, arg = data.draw(calls(objects))
    declared = walked.paths[(typ, moid)]
    client = walked.client
    if method == "Fetch":
        ret = client.fetch(typ, moid, arg).find(f"{{{VIM}}}returnval")
        problems = [] if ret is None else check_typed(ret, declared[arg], f"{typ}:{moid} Fetch {arg}")
    else:
        answer = client.retrieve(typ, moid, None if method == "all" else arg, ex=method == "RetrievePropertiesEx")
        before = len(walked.problems)
        walked.validate(answer, f"{typ}:{moid} {method}")
        walked.check_answer(typ, moid, answer, declared)
        problems = walked.problems[before:]
        del walked.problems[before:]
    assert not problems, problems


