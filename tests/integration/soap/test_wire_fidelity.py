"""Issue 13's causes, each checked the way a strict client sees the wire: raw SOAP envelopes
and raw HTTP, no pyVmomi deserializer in between (it forgives what zeep, govmomi, node-soap
and JAX-WS do not)."""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from vcbsim.simulator import Host
from vcbsim.simulator.soap import serve
from vcbsim.simulator.soap._endpoint import INTERNAL_ERROR

SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
VIM = "urn:vim25"
ACTION = "urn:vim25/7.0.3.0"


class Raw:
    """A client that writes envelopes by hand and reads answers as XML."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.trust_env = False

    def post(self, body: str) -> requests.Response:
        env = (f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}" xmlns:xsi="{XSI}"><soapenv:Body>{body}'
               "</soapenv:Body></soapenv:Envelope>")
        return self.http.post(f"{self.base}/sdk", data=env.encode(),
                              headers={"SOAPAction": ACTION, "Content-Type": "text/xml; charset=utf-8"})

    def call(self, body: str) -> ET.Element:
        r = self.post(body)
        assert r.status_code == 200, r.text
        root = ET.fromstring(r.content)
        return next(iter(root.find(f"{{{SOAPENV}}}Body")))

    def login(self) -> None:
        self.call('<Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this>'
                  "<userName>user</userName><password>pass</password></Login>")

    def fetch(self, typ: str, moid: str, prop: str) -> ET.Element | None:
        resp = self.call(f'<Fetch xmlns="urn:vim25"><_this type="{typ}">{moid}</_this><prop>{prop}</prop></Fetch>')
        return resp.find(f"{{{VIM}}}returnval")

    def retrieve(self, typ: str, moid: str, paths: list[str]) -> dict[str, ET.Element]:
        path_xml = "".join(f"<pathSet>{p}</pathSet>" for p in paths)
        resp = self.call(
            '<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">ha-property-collector</_this>'
            f"<specSet><propSet><type>{typ}</type>{path_xml}</propSet>"
            f'<objectSet><obj type="{typ}">{moid}</obj></objectSet></specSet><options/></RetrievePropertiesEx>')
        return {dp.findtext(f"{{{VIM}}}name"): dp.find(f"{{{VIM}}}val")
                for dp in resp.iter(f"{{{VIM}}}propSet")}

    def wait(self, task: str) -> str:
        for _ in range(1000):
            state = self.retrieve("Task", task, ["info.state"])["info.state"].text
            if state in ("success", "error"):
                return str(state)
        raise AssertionError(f"task {task} never finished")


def xsi_type(el: ET.Element | None) -> str | None:
    assert el is not None
    return el.get(f"{{{XSI}}}type")


@pytest.fixture
def server() -> Iterator[Any]:
    with serve(Host.demo("esxi-7.0"), http=True) as s:
        yield s


@pytest.fixture
def raw(server: Any) -> Raw:
    client = Raw(server.base_url)
    client.login()
    return client


# --- cause 1: xsi:type follows the declared type ---------------------------------------------


def test_long_properties_are_xsd_long_also_above_2_to_the_31(raw: Raw) -> None:
    cap = raw.fetch("Datastore", "datastore-1", "summary.capacity")
    assert xsi_type(cap) == "xsd:long" and int(cap.text) > 2**31  # a 4 TiB datastore
    props = raw.retrieve("VirtualMachine", "vm-1", ["summary.storage.committed", "config.memoryAllocation.limit"])
    assert xsi_type(props["summary.storage.committed"]) == "xsd:long"
    assert xsi_type(props["config.memoryAllocation.limit"]) == "xsd:long"
    assert xsi_type(raw.fetch("HostSystem", "ha-host", "hardware.memorySize")) == "xsd:long"


def test_enum_properties_carry_the_enum_type(raw: Raw) -> None:
    assert xsi_type(raw.fetch("VirtualMachine", "vm-1", "runtime.powerState")) == "VirtualMachinePowerState"
    assert xsi_type(raw.fetch("VirtualMachine", "vm-1", "overallStatus")) == "ManagedEntityStatus"
    assert xsi_type(raw.fetch("VirtualMachine", "vm-1", "configStatus")) == "ManagedEntityStatus"
    props = raw.retrieve("VirtualMachine", "vm-1", ["runtime.connectionState", "runtime.powerState"])
    assert xsi_type(props["runtime.connectionState"]) == "VirtualMachineConnectionState"
    assert xsi_type(props["runtime.powerState"]) == "VirtualMachinePowerState"


def test_every_item_of_an_anytype_array_carries_its_xsi_type(raw: Raw) -> None:
    for val in (raw.fetch("HostSystem", "ha-host", "vm"), raw.retrieve("HostSystem", "ha-host", ["vm"])["vm"]):
        assert xsi_type(val) == "ArrayOfManagedObjectReference"
        items = list(val)
        assert len(items) == 2
        for item in items:
            assert item.tag == f"{{{VIM}}}ManagedObjectReference"
            assert xsi_type(item) == "ManagedObjectReference" and item.get("type") == "VirtualMachine"
    devices = raw.fetch("VirtualMachine", "vm-1", "config.hardware.device")
    assert xsi_type(devices) == "ArrayOfVirtualDevice"
    assert {xsi_type(d) for d in devices} >= {"VirtualDisk", "VirtualLsiLogicController"}


# --- cause 2: Connection: close ---------------------------------------------------------------


def _read_response(sock: socket.socket, buf: bytearray) -> tuple[int, dict[str, str], bytes]:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a response")
        rest += chunk
    buf[:] = rest[length:]
    return int(lines[0].split()[1]), headers, rest[:length]


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_connection_close_is_announced_whenever_the_server_closes(server: Any) -> None:
    # an upload refused from its headers (no session): the body is not read, the connection ends
    with socket.create_connection((server.host, server.port)) as sock:
        buf = bytearray()
        sock.sendall(b"PUT /folder/x.bin?dcPath=ha-datacenter&dsName=datastore1 HTTP/1.1\r\nHost: h\r\n"
                     b"Content-Length: 100000\r\n\r\n" + b"A" * 1000)
        status, headers, _ = _read_response(sock, buf)
        assert status == 401 and headers.get("connection") == "close"
        assert _closed(sock)
    # a client that asks for close gets it echoed
    with socket.create_connection((server.host, server.port)) as sock:
        buf = bytearray()
        sock.sendall(b"GET /sdk/vimServiceVersions.xml HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        status, headers, _ = _read_response(sock, buf)
        assert status == 200 and headers.get("connection") == "close"
        assert _closed(sock)
    # a request without a Content-Length: refused, and closed, and said so
    with socket.create_connection((server.host, server.port)) as sock:
        buf = bytearray()
        sock.sendall(b"POST /sdk HTTP/1.1\r\nHost: h\r\n\r\n")
        status, headers, _ = _read_response(sock, buf)
        assert status == 411 and headers.get("connection") == "close"


def test_keep_alive_otherwise_and_an_aggressively_reused_connection_is_answered(server: Any) -> None:
    body = (b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            b'<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this>'
            b"</RetrieveServiceContent></soapenv:Body></soapenv:Envelope>")
    request = (f"POST /sdk HTTP/1.1\r\nHost: h\r\nContent-Type: text/xml\r\nSOAPAction: {ACTION}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection((server.host, server.port)) as sock:
        buf = bytearray()
        sock.sendall(request * 5)  # pipelined: every request written before any answer is read
        for _ in range(5):
            status, headers, payload = _read_response(sock, buf)
            assert status == 200 and "connection" not in headers and b"RetrieveServiceContentResponse" in payload
        # a 404 does not end the connection either
        sock.sendall(b"GET /nowhere HTTP/1.1\r\nHost: h\r\n\r\n" + request)
        assert _read_response(sock, buf)[0] == 404
        assert _read_response(sock, buf)[0] == 200


# --- cause 3: _this without a type; no internal text in faults --------------------------------


def test_this_without_a_type_attribute_is_found_by_its_id(server: Any) -> None:
    raw = Raw(server.base_url)
    content = raw.call('<RetrieveServiceContent xmlns="urn:vim25"><_this>ServiceInstance</_this></RetrieveServiceContent>')
    assert content.find(f"{{{VIM}}}returnval/{{{VIM}}}rootFolder").text == "ha-folder-root"
    raw.call('<Login xmlns="urn:vim25"><_this>ha-sessionmgr</_this><userName>user</userName><password>pass</password></Login>')
    name = raw.call('<Fetch xmlns="urn:vim25"><_this>vm-1</_this><prop>name</prop></Fetch>')
    assert name.find(f"{{{VIM}}}returnval").text == "win2003-sql"
    r = raw.post('<Fetch xmlns="urn:vim25"><_this>vm-404</_this><prop>name</prop></Fetch>')
    assert r.status_code == 500 and "ManagedObjectNotFound" in r.text


_INTERNAL = re.compile(r"Traceback|KeyError|TypeError|AttributeError|ValueError|Exception|\.py\b")


def test_no_internal_exception_text_reaches_a_client(raw: Raw, server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # a value pyVmomi's reader chokes on
    r = raw.post('<CreateSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-1</_this><name>x</name>'
                 "<memory>perhaps</memory><quiesce>false</quiesce></CreateSnapshot_Task>")
    assert r.status_code == 500 and "InvalidRequest" in r.text
    assert "CreateSnapshot_Task" in r.text and not _INTERNAL.search(r.text), r.text
    # a defect inside a method: the host's general fault, the text stays in the log
    from vcbsim.simulator.soap.mo import HostSystemImpl

    def broken(self: Any) -> Any:
        raise RuntimeError("secret internal detail at /srv/x.py")
    monkeypatch.setattr(HostSystemImpl, "p_hardware", broken)
    r = raw.post('<Fetch xmlns="urn:vim25"><_this type="HostSystem">ha-host</_this><prop>hardware</prop></Fetch>')
    assert r.status_code == 500 and "SystemError" in r.text
    assert INTERNAL_ERROR in r.text and "secret" not in r.text and not _INTERNAL.search(r.text)


# --- cause 4: the properties real clients read --------------------------------------------------


def test_host_hardware_and_summary_hardware(raw: Raw) -> None:
    hw = raw.fetch("HostSystem", "ha-host", "hardware")
    assert xsi_type(hw) == "HostHardwareInfo"
    assert int(hw.findtext(f"{{{VIM}}}cpuInfo/{{{VIM}}}numCpuCores")) > 0
    assert int(hw.findtext(f"{{{VIM}}}memorySize")) > 2**31
    uuid = hw.findtext(f"{{{VIM}}}systemInfo/{{{VIM}}}uuid")
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", uuid)
    features = hw.findall(f"{{{VIM}}}cpuFeature")
    assert [f.findtext(f"{{{VIM}}}level") for f in features] == ["0", "1"]
    assert all(re.fullmatch(r"([01]{4}:){7}[01]{4}", f.findtext(f"{{{VIM}}}eax")) for f in features)
    summary = raw.fetch("HostSystem", "ha-host", "summary.hardware")
    assert xsi_type(summary) == "HostHardwareSummary"
    assert summary.findtext(f"{{{VIM}}}uuid") == uuid
    assert summary.findtext(f"{{{VIM}}}memorySize") == hw.findtext(f"{{{VIM}}}memorySize")
    assert summary.findtext(f"{{{VIM}}}cpuModel")
    total = raw.fetch("ComputeResource", "ha-compute-res", "summary.numCpuCores")
    assert total.text == hw.findtext(f"{{{VIM}}}cpuInfo/{{{VIM}}}numCpuCores")  # one description


def test_boot_options_and_the_nvram_file(raw: Raw, server: Any) -> None:
    boot = raw.fetch("VirtualMachine", "vm-1", "config.bootOptions")
    assert xsi_type(boot) == "VirtualMachineBootOptions" and boot.findtext(f"{{{VIM}}}bootDelay") == "0"
    files = raw.fetch("VirtualMachine", "vm-1", "layoutEx.file")
    nvram = [f for f in files if f.findtext(f"{{{VIM}}}type") == "nvram"]
    assert len(nvram) == 1 and nvram[0].findtext(f"{{{VIM}}}name") == "[datastore1] win2003-sql/win2003-sql.nvram"
    got = raw.http.get(f"{server.base_url}/folder/win2003-sql/win2003-sql.nvram",
                       params={"dcPath": "ha-datacenter", "dsName": "datastore1"})
    assert got.status_code == 200 and len(got.content) == int(nvram[0].findtext(f"{{{VIM}}}size"))


def test_perf_manager_answers_a_vms_real_time_statistics(raw: Raw) -> None:
    content = raw.call('<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance'
                       "</_this></RetrieveServiceContent>").find(f"{{{VIM}}}returnval")
    perf = content.find(f"{{{VIM}}}perfManager")
    assert perf is not None and perf.get("type") == "PerformanceManager"
    assert content.find(f"{{{VIM}}}ovfManager").get("type") == "OvfManager"
    counters = raw.fetch("PerformanceManager", perf.text, "perfCounter")
    names = {f"{c.findtext(f'{{{VIM}}}groupInfo/{{{VIM}}}key')}.{c.findtext(f'{{{VIM}}}nameInfo/{{{VIM}}}key')}"
             for c in counters}
    assert {"cpu.usage", "mem.consumed", "sys.uptime"} <= names
    summary = raw.call(f'<QueryPerfProviderSummary xmlns="urn:vim25"><_this type="PerformanceManager">{perf.text}'
                       '</_this><entity type="VirtualMachine">vm-1</entity></QueryPerfProviderSummary>')
    assert summary.findtext(f".//{{{VIM}}}refreshRate") == "20"
    metrics = raw.call(f'<QueryPerf xmlns="urn:vim25"><_this type="PerformanceManager">{perf.text}</_this>'
                       '<querySpec><entity type="VirtualMachine">vm-1</entity><maxSample>3</maxSample>'
                       "<intervalId>20</intervalId></querySpec></QueryPerf>")
    series = metrics.findall(f"{{{VIM}}}returnval/{{{VIM}}}value")
    assert series and all(s.get(f"{{{XSI}}}type") == "PerfMetricIntSeries" for s in series)
    samples = metrics.findall(f"{{{VIM}}}returnval/{{{VIM}}}sampleInfo")
    assert 1 <= len(samples) <= 3
    assert all(len(s.findall(f"{{{VIM}}}value")) == len(samples) for s in series)


def test_an_esx35_host_has_no_ovf_manager() -> None:
    with serve(Host.demo("esx-3.5u2"), http=True) as s:
        content = Raw(s.base_url).call('<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">'
                                       "ServiceInstance</_this></RetrieveServiceContent>")
        assert content.find(f".//{{{VIM}}}ovfManager") is None  # OvfManager: since API 4.0
        assert content.find(f".//{{{VIM}}}perfManager") is not None


# --- cause 5: two reconfigures before a stun ------------------------------------------------------


def _reconfigure(raw: Raw, on: bool) -> None:
    task = raw.call('<ReconfigVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-1</_this>'
                    f"<spec><changeTrackingEnabled>{str(on).lower()}</changeTrackingEnabled></spec></ReconfigVM_Task>")
    assert raw.wait(task.find(f"{{{VIM}}}returnval").text) == "success"


def test_change_tracking_off_then_on_on_a_powered_on_vm_ends_on(raw: Raw) -> None:
    assert raw.fetch("VirtualMachine", "vm-1", "runtime.powerState").text == "poweredOn"
    _reconfigure(raw, True)
    assert raw.fetch("VirtualMachine", "vm-1", "config.changeTrackingEnabled").text == "true"
    _reconfigure(raw, False)
    assert raw.fetch("VirtualMachine", "vm-1", "config.changeTrackingEnabled").text == "false"
    _reconfigure(raw, True)
    assert raw.fetch("VirtualMachine", "vm-1", "config.changeTrackingEnabled").text == "true"


# --- cause 6: the guest's own programs ------------------------------------------------------------


def _run_in_guest(raw: Raw, vm: str, user: str, program: str, arguments: str) -> int:
    auth = (f'<auth xsi:type="NamePasswordAuthentication"><interactiveSession>false</interactiveSession>'
            f"<username>{user}</username><password>vmware</password></auth>")
    pid = raw.call('<StartProgramInGuest xmlns="urn:vim25"><_this type="GuestProcessManager">'
                   f'ha-guest-operations-process-manager</_this><vm type="VirtualMachine">{vm}</vm>{auth}'
                   f"<spec><programPath>{program}</programPath><arguments>{arguments}</arguments></spec>"
                   "</StartProgramInGuest>").findtext(f"{{{VIM}}}returnval")
    listed = raw.call('<ListProcessesInGuest xmlns="urn:vim25"><_this type="GuestProcessManager">'
                      f'ha-guest-operations-process-manager</_this><vm type="VirtualMachine">{vm}</vm>{auth}'
                      f"<pids>{pid}</pids></ListProcessesInGuest>")
    info = listed.find(f"{{{VIM}}}returnval")
    assert info.findtext(f"{{{VIM}}}endTime"), "the program should have ended"
    return int(info.findtext(f"{{{VIM}}}exitCode"))


@pytest.mark.parametrize(("program", "arguments", "code"), [
    ("/bin/echo", "hello", 0),
    ("echo", "on the PATH", 0),
    ("/bin/true", "", 0),
    ("/bin/false", "", 1),
    ("/bin/sh", "-c &quot;mkdir -p /tmp/wf/a &amp;&amp; test -d /tmp/wf/a &amp;&amp; exit 3&quot;", 3),
    ("/bin/sh", "-c &quot;test -e /no/such/file || exit 7&quot;", 7),
    ("/bin/sh", "-c &quot;no-such-command&quot;", 127),
    ("/bin/bash", "-c &quot;mkdir -p /tmp; echo done &gt;&gt; /tmp/wf.log; cat /tmp/wf.log&quot;", 0),
    ("/bin/bash", "-c &quot;echo lost &gt;&gt; /no/dir/wf.log; cat /no/dir/wf.log&quot;", 1),
])
def test_linux_guest_programs_run_and_report_their_exit_codes(raw: Raw, program: str, arguments: str, code: int) -> None:
    assert _run_in_guest(raw, "vm-2", "root", program, arguments) == code


@pytest.mark.parametrize(("program", "arguments", "code"), [
    ("C:\\Windows\\System32\\cmd.exe", "/c echo hello", 0),
    ("C:\\Windows\\System32\\cmd.exe", "/c &quot;mkdir C:\\wf &amp; echo x &gt; C:\\wf\\f.txt &amp; type C:\\wf\\f.txt&quot;", 0),
    ("C:\\Windows\\System32\\cmd.exe", "/c &quot;type C:\\no\\such.txt || exit /b 5&quot;", 5),
    ("cmd.exe", "/c exit /b 2", 2),
    ("C:\\Windows\\System32\\cmd.exe", "/c nosuchtool.exe", 9009),
    ("C:\\Windows\\System32\\whoami.exe", "", 0),
])
def test_windows_guest_programs_run_and_report_their_exit_codes(raw: Raw, program: str, arguments: str, code: int) -> None:
    assert _run_in_guest(raw, "vm-1", "Administrator", program, arguments) == code


def test_a_program_that_is_not_there_is_file_not_found(raw: Raw) -> None:
    auth = ('<auth xsi:type="NamePasswordAuthentication"><interactiveSession>false</interactiveSession>'
            "<username>root</username><password>vmware</password></auth>")
    r = raw.post('<StartProgramInGuest xmlns="urn:vim25"><_this type="GuestProcessManager">'
                 f'ha-guest-operations-process-manager</_this><vm type="VirtualMachine">vm-2</vm>{auth}'
                 "<spec><programPath>/opt/none/tool</programPath><arguments></arguments></spec></StartProgramInGuest>")
    assert r.status_code == 500 and "FileNotFound" in r.text


# --- cause 7: FileManager ---------------------------------------------------------------------------


def _file_task(raw: Raw, method: str, args: str) -> tuple[str, str]:
    """Run a FileManager task; (its final state, the fault type name or "")."""
    task = raw.call(f'<{method} xmlns="urn:vim25"><_this type="FileManager">ha-nfc-file-manager</_this>{args}'
                    f"</{method}>").findtext(f"{{{VIM}}}returnval")
    state = raw.wait(task)
    error = raw.retrieve("Task", task, ["info.error"]).get("info.error")
    fault = error.find(f"{{{VIM}}}fault") if error is not None else None
    return state, (xsi_type(fault) or "") if fault is not None else ""


def _put(raw: Raw, server: Any, path: str, data: bytes) -> None:
    r = raw.http.put(f"{server.base_url}/folder/{path}", params={"dcPath": "ha-datacenter", "dsName": "datastore1"},
                     data=data)
    assert r.status_code in (200, 201), r.text


def _get(raw: Raw, server: Any, path: str) -> requests.Response:
    return raw.http.get(f"{server.base_url}/folder/{path}", params={"dcPath": "ha-datacenter", "dsName": "datastore1"})


def test_file_manager_deletes_moves_and_copies_with_the_hosts_faults(raw: Raw, server: Any) -> None:
    content = raw.call('<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance'
                       "</_this></RetrieveServiceContent>")
    assert content.find(f".//{{{VIM}}}fileManager").text == "ha-nfc-file-manager"
    _put(raw, server, "restore/a.img", b"A" * 1000)
    _put(raw, server, "restore/sub/b.img", b"B" * 10)
    dc = '<sourceDatacenter type="Datacenter">ha-datacenter</sourceDatacenter>'

    # copy a file, then again without force: FileAlreadyExists; with force: overwritten
    args = (f"<sourceName>[datastore1] restore/a.img</sourceName>{dc}"
            "<destinationName>[datastore1] restore/a-copy.img</destinationName>")
    assert _file_task(raw, "CopyDatastoreFile_Task", args) == ("success", "")
    assert _get(raw, server, "restore/a-copy.img").content == b"A" * 1000
    assert _file_task(raw, "CopyDatastoreFile_Task", args) == ("error", "FileAlreadyExists")
    assert _file_task(raw, "CopyDatastoreFile_Task", args + "<force>true</force>") == ("success", "")
    # move a folder with its contents
    assert _file_task(raw, "MoveDatastoreFile_Task", "<sourceName>[datastore1] restore/sub</sourceName>"
                      "<destinationName>[datastore1] moved</destinationName>") == ("success", "")
    assert _get(raw, server, "moved/b.img").content == b"B" * 10
    assert _get(raw, server, "restore/sub/b.img").status_code == 404
    # delete: a file, then a missing one
    assert _file_task(raw, "DeleteDatastoreFile_Task", "<name>[datastore1] restore/a-copy.img</name>") == ("success", "")
    assert _get(raw, server, "restore/a-copy.img").status_code == 404
    assert _file_task(raw, "DeleteDatastoreFile_Task", "<name>[datastore1] restore/a-copy.img</name>") == ("error", "FileNotFound")
    # a file a registered VM uses cannot be deleted, moved, or overwritten; it can be copied
    used = "<name>[datastore1] win2003-sql/win2003-sql.vmx</name>"
    assert _file_task(raw, "DeleteDatastoreFile_Task", used) == ("error", "CannotDeleteFile")
    assert _file_task(raw, "MoveDatastoreFile_Task", "<sourceName>[datastore1] win2003-sql/win2003-sql.vmx</sourceName>"
                      "<destinationName>[datastore1] elsewhere.vmx</destinationName>") == ("error", "CannotDeleteFile")
    assert _file_task(raw, "CopyDatastoreFile_Task", "<sourceName>[datastore1] restore/a.img</sourceName>"
                      "<destinationName>[datastore1] win2003-sql/win2003-sql.vmx</destinationName><force>true</force>"
                      ) == ("error", "CannotDeleteFile")
    assert _file_task(raw, "CopyDatastoreFile_Task", "<sourceName>[datastore1] win2003-sql/win2003-sql.vmx</sourceName>"
                      "<destinationName>[datastore1] backup/win2003-sql.vmx</destinationName>") == ("success", "")
    assert b"displayName" in _get(raw, server, "backup/win2003-sql.vmx").content
    # a huge extent is not copied into memory
    assert _file_task(raw, "CopyDatastoreFile_Task", "<sourceName>[datastore1] win2003-sql/win2003-sql-flat.vmdk</sourceName>"
                      "<destinationName>[datastore1] backup/flat.vmdk</destinationName>") == ("error", "FileTooLarge")
    # bad names: refused at once with the host's faults
    r = raw.post('<DeleteDatastoreFile_Task xmlns="urn:vim25"><_this type="FileManager">ha-nfc-file-manager</_this>'
                 "<name>no brackets</name></DeleteDatastoreFile_Task>")
    assert r.status_code == 500 and "InvalidDatastorePath" in r.text
    r = raw.post('<DeleteDatastoreFile_Task xmlns="urn:vim25"><_this type="FileManager">ha-nfc-file-manager</_this>'
                 "<name>[nosuchds] x</name></DeleteDatastoreFile_Task>")
    assert r.status_code == 500 and "InvalidDatastore" in r.text
