"""The WSDL the endpoint serves (``/sdk/vim.wsdl`` and the schemas it includes), and a generic
SOAP client, zeep, that knows the API only from it.

The documents are checked three ways: as XML (every reference resolves within them), as XML
Schema (libxml2 compiles them, and every answer the endpoint gives zeep validates against
them), and by use (zeep builds its requests and reads the answers from them alone). zeep
needed no workaround: it reads the WSDL as served.
"""

from __future__ import annotations

import http.client
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
import zeep
from lxml import etree
from zeep.plugins import HistoryPlugin
from zeep.transports import Transport

from vcbsim.simulator import Host
from vcbsim.simulator.soap import serve
from vcbsim.simulator.soap.mo import ALL_TYPES
from vcbsim.simulator.soap.wire._codec import DEFAULT_VERSION, vim25_version, wire_version
from vcbsim.simulator.soap.wire._wsdl import DOCUMENT_NAMES, documents

XSD = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
VIM = "urn:vim25"
#: the XML Schema built-ins a document may name as xsd:X
XSD_BUILTINS = {"anyType", "anyURI", "base64Binary", "boolean", "byte", "dateTime", "double",
                "float", "int", "long", "short", "string"}


# --- the documents as XML --------------------------------------------------------------------


class _Names:
    """What the documents define, by kind (XML Schema types and elements, WSDL parts)."""

    def __init__(self, docs: Mapping[str, bytes]) -> None:
        self.roots = {name: ET.fromstring(body) for name, body in docs.items()}
        self.types: list[str] = []
        self.elements: list[str] = []
        for root in self.roots.values():
            for schema in [root] if root.tag == f"{{{XSD}}}schema" else root.iter(f"{{{XSD}}}schema"):
                self.types += [n.get("name") for n in schema if n.tag in (f"{{{XSD}}}complexType", f"{{{XSD}}}simpleType")]
                self.elements += [n.get("name") for n in schema.findall(f"{{{XSD}}}element")]
        wsdl = self.roots["vim.wsdl"]
        self.messages = [n.get("name") for n in wsdl.findall(f"{{{WSDL}}}message")]
        self.port_types = [n.get("name") for n in wsdl.findall(f"{{{WSDL}}}portType")]
        self.bindings = [n.get("name") for n in wsdl.findall(f"{{{WSDL}}}binding")]

    def operations(self, kind: str) -> dict[str, ET.Element]:
        parent = self.roots["vim.wsdl"].find(f"{{{WSDL}}}{kind}")
        assert parent is not None
        return {op.get("name"): op for op in parent.findall(f"{{{WSDL}}}operation")}


def _local(qname: str, prefix: str) -> str:
    assert qname.startswith(prefix + ":"), qname
    return qname.split(":", 1)[1]


@pytest.fixture(scope="module")
def names() -> _Names:
    return _Names(documents())


def test_documents_are_well_formed_and_every_reference_resolves(names):
    assert set(names.roots) == set(DOCUMENT_NAMES)
    for kind in (names.types, names.elements, names.messages):
        assert len(kind) == len(set(kind)), "a name is defined twice"
    types, elements = set(names.types), set(names.elements)
    checked = 0
    for doc, root in names.roots.items():
        for node in root.iter():
            tag = node.tag.rpartition("}")[2]
            for attr in ("type", "base"):
                ref = node.get(attr)
                if ref is None:
                    continue
                if node.tag == f"{{{WSDL}}}binding":  # a binding's type is its port type
                    assert _local(ref, "vim25") in names.port_types
                elif ref.startswith("xsd:"):
                    assert ref[4:] in XSD_BUILTINS, (doc, ref)
                else:
                    assert _local(ref, "vim25") in types, (doc, tag, node.get("name"), ref)
                checked += 1
            if node.get("element") is not None:
                assert _local(node.get("element"), "vim25") in elements, (doc, node.get("element"))
                checked += 1
            if node.get("message") is not None:
                assert _local(node.get("message"), "vim25") in names.messages, (doc, node.get("message"))
                checked += 1
            if tag == "sequence":  # no element twice in one sequence
                seq = [e.get("name") for e in node]
                assert len(seq) == len(set(seq)), (doc, seq)
    assert checked > 20_000
    # every schema is reached from vim.wsdl through includes, and every include is served
    reached, todo = set(), ["vim.wsdl"]
    while todo:
        doc = todo.pop()
        reached.add(doc)
        for include in names.roots[doc].iter(f"{{{XSD}}}include"):
            assert include.get("schemaLocation") in DOCUMENT_NAMES
            if include.get("schemaLocation") not in reached:
                todo.append(include.get("schemaLocation"))
    assert reached == set(DOCUMENT_NAMES)


def test_operations_cover_the_endpoints_methods_with_messages_faults_and_soap_actions(names):
    port_ops, binding_ops = names.operations("portType"), names.operations("binding")
    assert port_ops.keys() == binding_ops.keys()
    simulated = {m for impl in ALL_TYPES for m in impl.soap_methods()}
    assert len(simulated) > 40
    assert simulated <= port_ops.keys(), sorted(simulated - port_ops.keys())
    assert len(port_ops) > 1000  # the whole vim25 API of the version, not only what is simulated
    action = f"urn:vim25/{wire_version(DEFAULT_VERSION)}"
    binding = names.roots["vim.wsdl"].find(f"{{{WSDL}}}binding")
    soap_binding = binding.find(f"{{{SOAP}}}binding")
    assert soap_binding.get("style") == "document"
    assert soap_binding.get("transport") == "http://schemas.xmlsoap.org/soap/http"
    for name, op in port_ops.items():
        assert op.find(f"{{{WSDL}}}input").get("message") == f"vim25:{name}RequestMsg"
        assert op.find(f"{{{WSDL}}}output").get("message") == f"vim25:{name}ResponseMsg"
        faults = [f.get("name") for f in op.findall(f"{{{WSDL}}}fault")]
        assert "RuntimeFault" in faults  # every call may fail with a RuntimeFault
        bound = binding_ops[name]
        assert bound.find(f"{{{SOAP}}}operation").get("soapAction") == action
        assert [f.get("name") for f in bound.findall(f"{{{WSDL}}}fault")] == faults
        for direction in ("input", "output"):
            assert bound.find(f"{{{WSDL}}}{direction}/{{{SOAP}}}body").get("use") == "literal"
    create = [f.get("message") for f in port_ops["CreateSnapshot_Task"].findall(f"{{{WSDL}}}fault")]
    assert {"vim25:SnapshotFaultFaultMsg", "vim25:InvalidStateFaultMsg", "vim25:TaskInProgressFaultMsg"} <= set(create)


def _schema_node(root: ET.Element, kind: str, name: str) -> ET.Element:
    node = root.find(f"{{{XSD}}}{kind}[@name='{name}']")
    assert node is not None, name
    return node


def test_types_elements_and_occurrences_follow_pyvmomis_metadata():
    docs = documents()
    types = ET.fromstring(docs["vim-types.xsd"])
    core = ET.fromstring(docs["core-types.xsd"])
    messages = ET.fromstring(docs["vim-messages.xsd"])
    # a data object: its base, required/optional/array properties
    spec = _schema_node(types, "complexType", "VirtualMachineConfigSpec")
    assert spec.find(f".//{{{XSD}}}extension").get("base") == "vim25:DynamicData"
    props = {e.get("name"): e.attrib for e in spec.iter(f"{{{XSD}}}element")}
    assert props["name"] == {"name": "name", "type": "xsd:string", "minOccurs": "0"}
    assert props["deviceChange"] == {"name": "deviceChange", "type": "vim25:VirtualDeviceConfigSpec",
                                     "minOccurs": "0", "maxOccurs": "unbounded"}
    key = {e.get("name"): e.attrib for e in _schema_node(types, "complexType", "VirtualDevice").iter(f"{{{XSD}}}element")}
    assert key["key"] == {"name": "key", "type": "xsd:int"}  # required: no minOccurs
    # a managed object is a reference; a fault property is a LocalizedMethodFault
    task = {e.get("name"): e.get("type") for e in _schema_node(types, "complexType", "TaskInfo").iter(f"{{{XSD}}}element")}
    assert task["entity"] == "vim25:ManagedObjectReference" and task["error"] == "vim25:LocalizedMethodFault"
    moref = _schema_node(core, "complexType", "ManagedObjectReference")
    assert moref.find(f"{{{XSD}}}simpleContent/{{{XSD}}}extension").get("base") == "xsd:string"
    attrs = {a.get("name"): a.get("use") for a in moref.iter(f"{{{XSD}}}attribute")}
    assert attrs == {"type": "optional", "serverGuid": "optional"}  # as the host's core-types.xsd
    # an enum, an array type, a fault element
    state = _schema_node(types, "simpleType", "TaskInfoState")
    assert [e.get("value") for e in state.iter(f"{{{XSD}}}enumeration")] == ["queued", "running", "success", "error"]
    array = _schema_node(types, "complexType", "ArrayOfVirtualDevice").find(f".//{{{XSD}}}element")
    assert array.attrib == {"name": "VirtualDevice", "type": "vim25:VirtualDevice", "minOccurs": "0", "maxOccurs": "unbounded"}
    assert _schema_node(messages, "element", "InvalidStateFault").get("type") == "vim25:InvalidState"
    # a request element with _this and its parameters, a response with returnval
    assert _schema_node(messages, "element", "CreateSnapshot_Task").get("type") == "vim25:CreateSnapshotRequestType"
    request = [e.attrib for e in _schema_node(types, "complexType", "CreateSnapshotRequestType").iter(f"{{{XSD}}}element")]
    assert request == [
        {"name": "_this", "type": "vim25:ManagedObjectReference"},
        {"name": "name", "type": "xsd:string"},
        {"name": "description", "type": "xsd:string", "minOccurs": "0"},
        {"name": "memory", "type": "xsd:boolean"},
        {"name": "quiesce", "type": "xsd:boolean"},
    ]
    response = _schema_node(messages, "element", "CreateSnapshot_TaskResponse").find(f".//{{{XSD}}}element")
    assert response.attrib == {"name": "returnval", "type": "vim25:ManagedObjectReference"}
    void = _schema_node(messages, "element", "DestroyViewResponse")
    assert void.find(f".//{{{XSD}}}element") is None


def test_types_and_methods_are_those_of_the_version():
    newest, oldest = documents(), documents(vim25_version("2.5u2"))
    assert documents(DEFAULT_VERSION) is newest  # generated once per version
    old_wsdl = oldest["vim.wsdl"].decode()
    assert 'soapAction="urn:vim25/2.5u2"' in old_wsdl and "urn:vim25/8.0.3.0" not in old_wsdl
    assert '<operation name="RetrieveProperties"' in old_wsdl
    assert '<operation name="RetrievePropertiesEx"' not in old_wsdl  # vSphere 4.1
    assert b'name="VirtualMachineFileLayoutEx"' in newest["vim-types.xsd"]
    assert b'name="VirtualMachineFileLayoutEx"' not in oldest["vim-types.xsd"]  # vSphere 4.0
    disk = _schema_node(ET.fromstring(oldest["vim-types.xsd"]), "complexType", "VirtualDisk")
    assert "capacityInBytes" not in {e.get("name") for e in disk.iter(f"{{{XSD}}}element")}
    assert len(oldest["vim.wsdl"]) < len(newest["vim.wsdl"]) / 2


# --- the documents as XML Schema, and a generic client --------------------------------------


def _compile(folder: Path, version: str = DEFAULT_VERSION) -> etree.XMLSchema:
    """A version's schemas compiled by libxml2 (which follows the includes from the files)."""
    for name, body in documents(version).items():
        (folder / name).write_bytes(body)
    return etree.XMLSchema(etree.parse(str(folder / "vim-messages.xsd")))


@pytest.fixture(scope="module")
def xml_schema(tmp_path_factory: pytest.TempPathFactory) -> etree.XMLSchema:
    return _compile(tmp_path_factory.mktemp("wsdl"))


class _Validated(HistoryPlugin):
    """Every answer's body element is checked against the schemas as it arrives."""

    def __init__(self, schema: etree.XMLSchema) -> None:
        super().__init__(maxlen=1)
        self.schema = schema
        self.checked: list[str] = []

    def ingress(self, envelope: Any, http_headers: Any, operation: Any) -> Any:
        for child in envelope.find(f"{{{SOAPENV}}}Body"):
            detail = child.find("detail")
            for node in [*detail] if detail is not None else [child]:
                assert self.schema.validate(node), (node.tag, str(self.schema.error_log))
                self.checked.append(etree.QName(node).localname)
        return super().ingress(envelope, http_headers, operation)


class _Vim:
    """zeep, and the few calls of a vSphere client, from the WSDL alone."""

    def __init__(self, base_url: str, schema: etree.XMLSchema, *, verify: bool = True) -> None:
        self.session = requests.Session()
        self.session.trust_env = False  # loopback: no proxy, and no CA bundle overriding verify
        self.session.verify = verify
        self.validated = _Validated(schema)
        self.client = zeep.Client(f"{base_url}/sdk/vimService.wsdl", transport=Transport(session=self.session),
                                  plugins=[self.validated])
        self.service = self.client.service
        self.moref = self.type("ManagedObjectReference")
        self.content = self.service.RetrieveServiceContent(_this=self.moref("ServiceInstance", type="ServiceInstance"))

    def type(self, name: str) -> Any:
        return self.client.get_type(f"{{{VIM}}}{name}")

    def retrieve(self, obj: Any, type_name: str, paths: list[str] | None, *, through_view: bool = False) -> Any:
        """``RetrievePropertiesEx`` of ``paths`` (all properties when ``None``) of ``obj``, or
        of the objects of the container view ``obj``."""
        if through_view:
            traverse = self.type("TraversalSpec")(name="view", type="ContainerView", path="view", skip=False)
            object_spec = self.type("ObjectSpec")(obj=obj, skip=True, selectSet=[traverse])
        else:
            object_spec = self.type("ObjectSpec")(obj=obj, skip=False)
        prop_spec = self.type("PropertySpec")(type=type_name, all=paths is None, pathSet=paths or [])
        spec = self.type("PropertyFilterSpec")(propSet=[prop_spec], objectSet=[object_spec])
        return self.service.RetrievePropertiesEx(_this=self.content.propertyCollector, specSet=[spec],
                                                 options=self.type("RetrieveOptions")())


@pytest.fixture
def running() -> Iterator[Any]:
    with serve(Host.demo(), http=True) as server:
        yield server


def _props(result: Any) -> dict[str, dict[str, Any]]:
    return {oc.obj._value_1: {p.name: p.val for p in oc.propSet} for oc in result.objects}


def test_zeep_logs_in_lists_vms_snapshots_and_follows_the_task_from_the_wsdl_alone(running, xml_schema):
    vim = _Vim(running.base_url, xml_schema)
    about = vim.content.about
    assert about.apiType == "HostAgent" and vim.content.rootFolder._value_1 == "ha-folder-root"
    assert vim.validated.last_sent["http_headers"]["SOAPAction"] == f'"urn:vim25/{wire_version(DEFAULT_VERSION)}"'
    session = vim.service.Login(_this=vim.content.sessionManager, userName="user", password="pass")
    assert session.userName == "user"
    assert "vmware_soap_session" in vim.session.cookies  # requests keeps the session cookie

    view = vim.service.CreateContainerView(_this=vim.content.viewManager, container=vim.content.rootFolder,
                                           type=["VirtualMachine"], recursive=True)
    assert view.type == "ContainerView"
    vms = _props(vim.retrieve(view, "VirtualMachine", ["name"], through_view=True))
    assert sorted(p["name"] for p in vms.values()) == sorted(vm.name for vm in running.endpoint.host.vms.values())

    vm = next(oc.obj for oc in vim.retrieve(view, "VirtualMachine", ["name"], through_view=True).objects)
    task = vim.service.CreateSnapshot_Task(_this=vm, name="zeep", description="from the WSDL alone",
                                           memory=False, quiesce=False)
    assert task.type == "Task"
    deadline = time.monotonic() + 30
    while True:
        state = _props(vim.retrieve(task, "Task", ["info.state"]))[task._value_1]["info.state"]
        if state in ("success", "error") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert state == "success"
    info = _props(vim.retrieve(task, "Task", ["info"]))[task._value_1]["info"]
    assert info.result.type == "VirtualMachineSnapshot" and info.entity._value_1 == vm._value_1
    snapshot = _props(vim.retrieve(vm, "VirtualMachine", ["snapshot"]))[vm._value_1]["snapshot"]
    assert snapshot.rootSnapshotList[0].name == "zeep"

    # every property of every VM (typed values of many kinds) reads through the schema too
    for props in _props(vim.retrieve(view, "VirtualMachine", None, through_view=True)).values():
        assert props["config"].hardware.device and props["runtime"].powerState in ("poweredOn", "poweredOff")
    vim.service.DestroyView(_this=view)
    # and so does every property of every other object the host has
    everything = vim.service.CreateContainerView(_this=vim.content.viewManager, container=vim.content.rootFolder,
                                                 type=[], recursive=True)
    entities = [oc.obj for oc in vim.retrieve(everything, "ManagedEntity", ["name"], through_view=True).objects]
    assert {"Datacenter", "Folder", "HostSystem", "ComputeResource", "ResourcePool", "Datastore",
            "Network"} <= {e.type for e in entities}
    for obj in [*entities, info.result, task]:
        assert _props(vim.retrieve(obj, obj.type, None))[obj._value_1]
    assert {"RetrieveServiceContentResponse", "LoginResponse", "CreateContainerViewResponse",
            "RetrievePropertiesExResponse", "CreateSnapshot_TaskResponse"} <= set(vim.validated.checked)


def test_zeep_talks_to_an_older_version_from_that_versions_wsdl(tmp_path):
    version = vim25_version("2.5u2")
    schema = _compile(tmp_path, version)
    with serve(Host.demo(), http=True, api_version="2.5u2") as server:
        vim = _Vim(server.base_url, schema)
        assert vim.validated.last_sent["http_headers"]["SOAPAction"] == '"urn:vim25/2.5u2"'  # the binding's
        vim.service.Login(_this=vim.content.sessionManager, userName="user", password="pass")
        view = vim.service.CreateContainerView(_this=vim.content.viewManager, container=vim.content.rootFolder,
                                               type=["VirtualMachine"], recursive=True)
        traverse = vim.type("TraversalSpec")(name="view", type="ContainerView", path="view", skip=False)
        spec = vim.type("PropertyFilterSpec")(
            propSet=[vim.type("PropertySpec")(type="VirtualMachine", pathSet=["name", "runtime.powerState"])],
            objectSet=[vim.type("ObjectSpec")(obj=view, skip=True, selectSet=[traverse])])
        # RetrievePropertiesEx came with 4.1: this version's WSDL has RetrieveProperties only
        with pytest.raises(AttributeError):
            vim.service.RetrievePropertiesEx  # noqa: B018 - the lookup is the check
        contents = vim.service.RetrieveProperties(_this=vim.content.propertyCollector, specSet=[spec])
    names = sorted(p.val for oc in contents for p in oc.propSet if p.name == "name")
    assert names == sorted(vm.name for vm in server.endpoint.host.vms.values())
    assert "RetrievePropertiesResponse" in vim.validated.checked


def test_zeep_reads_a_fault_by_its_wsdl_type(running, xml_schema):
    vim = _Vim(running.base_url, xml_schema)
    with pytest.raises(zeep.exceptions.Fault) as raised:
        vim.service.Login(_this=vim.content.sessionManager, userName="user", password="wrong")
    detail = raised.value.detail[0]
    assert etree.QName(detail).localname == "InvalidLoginFault"
    assert "InvalidLoginFault" in vim.validated.checked  # the detail is the declared fault element


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_routes_answer_over_https_without_a_session_and_unknown_schemas_are_404(xml_schema):
    with serve(Host.demo()) as server:
        context = ssl._create_unverified_context()
        for name in ("vimService.wsdl", *DOCUMENT_NAMES, "nothing.xsd", "vim-types.xsd/x"):
            conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=30)
            try:
                conn.request("GET", f"/sdk/{name}")
                resp = conn.getresponse()
                body = resp.read()
            finally:
                conn.close()
            if name in ("nothing.xsd", "vim-types.xsd/x"):
                assert resp.status == 404, name
                continue
            assert resp.status == 200, name
            assert resp.getheader("Content-Type") == "text/xml; charset=utf-8"
            root = ET.fromstring(body)
            if name == "vimService.wsdl":  # imports vim.wsdl, whose binding it names
                imported = root.find(f"{{{WSDL}}}import")
                assert (imported.get("location"), imported.get("namespace")) == ("vim.wsdl", VIM)
                assert root.find(f".//{{{WSDL}}}port").get("binding").endswith(":VimBinding")
                assert root.find(f".//{{{SOAP}}}address").get("location") == f"https://127.0.0.1:{server.port}/sdk"
            else:
                assert body == documents()[name]
        # and a client reads them over TLS
        vim = _Vim(server.base_url, xml_schema, verify=False)
        assert vim.content.about.apiVersion


def test_the_service_address_of_an_ipv6_server_is_a_valid_url():
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with serve(Host.demo(), http=True, host="::1") as srv:
        conn = http.client.HTTPConnection("::1", srv.port, timeout=10)
        conn.request("GET", "/sdk/vimService.wsdl")
        body = conn.getresponse().read()
        conn.close()
    address = ET.fromstring(body).find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address is not None and address.get("location") == f"http://[::1]:{srv.port}/sdk"
