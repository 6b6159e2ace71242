"""Authentication everywhere: every method of the generated coverage, the datastore files, the
guest file transfer URLs and the control API refuse a missing, an expired and a logged-out
session; guest operations check the guest's credentials.

The methods are read from the code that generates ``docs/vsphere-coverage.md``
(``ALL_TYPES``' ``soap_methods()`` plus ``Fetch``), and the calls allowed without a session
from the endpoint's ``ANONYMOUS``; each request is a well-formed call with every required
parameter, so that with a live session it gets past the session check (checked too: a
refusal could otherwise come from a malformed request).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import http.client
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl

from vcbsim.simulator import VirtualClock
from vcbsim.simulator._host import Host
from vcbsim.simulator.soap import serve
from vcbsim.simulator.soap._coverage import coverage_markdown
from vcbsim.simulator.soap._endpoint import ANONYMOUS
from vcbsim.simulator.soap.control._handlers import _ROUTES, PREFIX
from vcbsim.simulator.soap.mo import ALL_TYPES, MOIDS

VERSION = "vim.version.v8_0_3_0"
#: what real hosts answer without a session (spec: RetrieveServiceContent and Login; the
#: clone ticket is the credential of CloneSession); the version discovery is plain GET
ALLOWED_ANONYMOUS = {"RetrieveServiceContent", "Login", "CloneSession"}
#: a tiny idle timeout for the server of the expired-session cases (seconds)
IDLE = 1.0
ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<soapenv:Body>{}</soapenv:Body></soapenv:Envelope>"
)
ADMIN = vim.vm.guest.NamePasswordAuthentication(username="Administrator", password="vmware")
WRONG = vim.vm.guest.NamePasswordAuthentication(username="Administrator", password="not-the-password")

# --- every covered method, as a well-formed request ------------------------------------------------

#: a managed object id for each managed type a parameter or ``_this`` may name (``vm-2``: the
#: positive controls may power it off; the guest and file tests use ``vm-1``)
_IDS = {
    "VirtualMachine": "vm-2", "VirtualMachineSnapshot": "snapshot-1", "Folder": MOIDS["root"],
    "Datacenter": MOIDS["dc"], "Datastore": "datastore-1", "HostSystem": MOIDS["host"],
    "ResourcePool": MOIDS["pool"], "ComputeResource": MOIDS["compute"], "ManagedEntity": MOIDS["root"],
    "Network": "network-1", "Task": "haTask-none", "PropertyFilter": "session[x]filter-1",
    "ContainerView": "session[x]view-1", "ServiceInstance": MOIDS["si"], "SessionManager": MOIDS["session"],
    "PropertyCollector": MOIDS["pc"], "ViewManager": MOIDS["views"], "SearchIndex": MOIDS["search"],
    "TaskManager": MOIDS["taskmgr"], "HostDatastoreBrowser": MOIDS["browser"],
    "GuestOperationsManager": MOIDS["guestops"], "GuestFileManager": MOIDS["guestfiles"],
    "GuestProcessManager": MOIDS["guestprocs"],
}
#: concrete types for abstract parameter types
_CONCRETE = {vim.vm.guest.GuestAuthentication: vim.vm.guest.NamePasswordAuthentication}
#: values that keep a call from blocking or changing much when it does run (positive control)
_SPECIAL = {"version": "999", "maxWaitSeconds": "0", "userName": "user", "password": "pass"}


def _value(name: str, typ: Any, depth: int = 0) -> str:
    """Attributes and content of a parameter element of type ``typ`` (required fields only)."""
    typ = _CONCRETE.get(typ, typ)
    if issubclass(typ, VmomiSupport.ManagedObject):
        wsdl = VmomiSupport.GetWsdlName(typ)
        return f' type="{wsdl}">{_IDS.get(wsdl, "x")}'
    if issubclass(typ, VmomiSupport.DataObject):
        inner = "".join(
            _element(p.name, p.type, depth + 1)
            for p in typ._GetPropertyList()
            if not p.flags & VmomiSupport.F_OPTIONAL and VmomiSupport.IsChildVersion(VERSION, p.version)
        )
        return f' xsi:type="{VmomiSupport.GetWsdlName(typ)}">{inner}'
    if issubclass(typ, VmomiSupport.Enum):
        return ">" + list(typ.values)[0]
    if typ is object:
        return ' xsi:type="xsd:string">x'
    if typ is type:
        return ">VirtualMachine"
    if issubclass(typ, bool):
        return ">false"
    if issubclass(typ, int | float):
        return ">" + _SPECIAL.get(name, "0")
    if issubclass(typ, VmomiSupport.binary):
        return ">AA=="
    if issubclass(typ, datetime.datetime):
        return ">2020-01-01T00:00:00Z"
    return ">" + escape(_SPECIAL.get(name, "x"))


def _element(name: str, typ: Any, depth: int = 0) -> str:
    if issubclass(typ, list):
        return _element(name, typ.Item, depth)
    return f"<{name}{_value(name, typ, depth)}</{name}>"


def _request(type_name: str, method: str) -> bytes:
    if method == "Fetch":
        params = "<prop>name</prop>"
    else:
        info = VmomiSupport.GetWsdlMethod("urn:vim25", method).info
        params = "".join(_element(p.name, p.type) for p in info.params if not p.flags & VmomiSupport.F_OPTIONAL)
        if method in ("WaitForUpdates", "WaitForUpdatesEx"):  # answered at once with a session
            params = "<version>999</version>" + params
        if method == "WaitForUpdatesEx":
            params += "<options><maxWaitSeconds>0</maxWaitSeconds></options>"
    this = f'<_this type="{type_name}">{_IDS.get(type_name, "x")}</_this>'
    return ENVELOPE.format(f'<{method} xmlns="urn:vim25">{this}{params}</{method}>').encode()


def _covered() -> list[tuple[str, str]]:
    """(managed type, method) for every method the coverage page lists, plus ``Fetch``."""
    calls = [(VmomiSupport.GetWsdlName(impl.vim_type), m) for impl in ALL_TYPES for m in impl.soap_methods()]
    calls.append(("VirtualMachine", "Fetch"))
    return sorted(calls)


COVERED = _covered()
GUARDED = [c for c in COVERED if c[1] not in ANONYMOUS]

# --- HTTP ----------------------------------------------------------------------------------------


def _http(server: Any, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
          ) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ssl._create_unverified_context(), timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def _soap(server: Any, body: bytes, cookie: str | None) -> tuple[int, bytes]:
    headers = {"SOAPAction": "urn:vim25/8.0.3.0", "Content-Type": "text/xml; charset=utf-8"}
    if cookie:
        headers["Cookie"] = cookie
    status, data, _ = _http(server, "POST", "/sdk", body, headers)
    return status, data


def _fault(status: int, body: bytes) -> str | None:
    """The fault's type name (``None`` for a result); the answer must be well formed."""
    ET.fromstring(body)
    if status == 200:
        return None
    assert status == 500, body[:300]
    fault = SoapAdapter.SoapResponseDeserializer(None).Deserialize(body, object)
    assert isinstance(fault, vmodl.MethodFault), body[:300]
    return type(fault).__name__.rsplit(".", 1)[-1]


def _login(server: Any) -> str:
    body = _request("SessionManager", "Login")
    status, data, headers = _http(server, "POST", "/sdk", body, {"SOAPAction": "urn:vim25/8.0.3.0"})
    assert status == 200, data[:300]
    return headers["set-cookie"].split(";")[0]


def _logout(server: Any, cookie: str) -> None:
    status, data = _soap(server, _request("SessionManager", "Logout"), cookie)
    assert status == 200, data[:300]


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with serve(Host.demo("esxi-7.0", seed=7)) as running:
        yield running


#: the idle server's clock: tests move it past the idle timeout instead of sleeping
IDLE_CLOCK = VirtualClock(0.0)


@pytest.fixture(scope="module")
def idle_server() -> Iterator[Any]:
    """A server whose sessions expire after ``IDLE`` seconds without a call (on ``IDLE_CLOCK``)."""
    with serve(Host.demo("esxi-7.0", seed=7), session_idle_timeout=IDLE, clock=IDLE_CLOCK) as running:
        yield running


def _expired_cookies(server: Any, n: int) -> list[str]:
    """``n`` sessions that worked, then sat idle past the timeout."""
    cookies = []
    for i in range(n):
        cookies.append(_login(server))
        if i < 3:  # they work while fresh
            assert _fault(*_soap(server, _request("ServiceInstance", "CurrentTime"), cookies[-1])) is None
    IDLE_CLOCK.advance(IDLE * 1.5)
    return cookies


# --- the SOAP methods -------------------------------------------------------------------------


def test_the_walk_covers_the_generated_coverage_page():
    page = coverage_markdown()
    for type_name, method in COVERED:
        if method != "Fetch":
            assert f"`{method}`" in page and f"`{type_name}`" in page
    assert len(GUARDED) >= 40
    assert set(ANONYMOUS) <= ALLOWED_ANONYMOUS, "a call is allowed without a session that real hosts refuse"


@pytest.mark.parametrize(("type_name", "method"), GUARDED, ids=[f"{t}.{m}" for t, m in GUARDED])
def test_every_method_refuses_a_missing_and_a_logged_out_session(server, type_name, method):
    body = _request(type_name, method)
    tasks_before = len(server.endpoint.tasks)
    assert _fault(*_soap(server, body, None)) == "NotAuthenticated"
    assert _fault(*_soap(server, body, 'vmware_soap_session="0123456789abcdef"')) == "NotAuthenticated"
    cookie = _login(server)
    _logout(server, cookie)
    assert _fault(*_soap(server, body, cookie)) == "NotAuthenticated"
    assert len(server.endpoint.tasks) == tasks_before  # nothing was started
    # the same request with a live session gets past the session check
    live = _login(server)
    try:
        assert _fault(*_soap(server, body, live)) != "NotAuthenticated"
    finally:
        with contextlib.suppress(AssertionError):
            _logout(server, live)


def test_every_method_refuses_an_expired_session(idle_server):
    cookies = _expired_cookies(idle_server, len(GUARDED))
    refused = {}
    for (type_name, method), cookie in zip(GUARDED, cookies, strict=True):
        refused[method] = _fault(*_soap(idle_server, _request(type_name, method), cookie))
    assert set(refused.values()) == {"NotAuthenticated"}, refused
    assert not idle_server.endpoint.sessions


def test_a_session_in_use_does_not_expire(idle_server):
    cookie = _login(idle_server)
    for _ in range(30):  # three idle timeouts, a call every tenth of one
        assert _fault(*_soap(idle_server, _request("ServiceInstance", "CurrentTime"), cookie)) is None
        IDLE_CLOCK.advance(IDLE / 10)
    IDLE_CLOCK.advance(IDLE * 1.5)
    assert _fault(*_soap(idle_server, _request("ServiceInstance", "CurrentTime"), cookie)) == "NotAuthenticated"


def test_pyvmomi_sees_an_idle_session_expire(idle_server):
    si = SmartConnect(host="127.0.0.1", port=idle_server.port, user="user", pwd="pass", disableSslCertValidation=True)
    assert si.content.rootFolder.name == "ha-folder-root"
    IDLE_CLOCK.advance(IDLE * 1.5)
    with pytest.raises(vim.fault.NotAuthenticated):
        si.content.rootFolder.name  # noqa: B018 - the read is the call under test
    Disconnect(si)


def test_calls_allowed_without_a_session_are_only_those_of_a_real_host(server):
    assert _fault(*_soap(server, _request("ServiceInstance", "RetrieveServiceContent"), None)) is None
    bad_login = ENVELOPE.format(
        '<Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this>'
        "<userName>user</userName><password>wrong</password></Login>").encode()
    assert _fault(*_soap(server, bad_login, None)) == "InvalidLogin"
    clone = ENVELOPE.format(
        '<CloneSession xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this>'
        "<cloneTicket>cst-forged</cloneTicket></CloneSession>").encode()
    assert _fault(*_soap(server, clone, None)) == "InvalidLogin"
    for path in ("/sdk/vimServiceVersions.xml", "/sdk/vimService.wsdl"):
        status, body, _ = _http(server, "GET", path)
        assert status == 200 and ET.fromstring(body) is not None


# --- datastore files, guest file transfers, the control API ---------------------------------------


def _vmx_path(server: Any) -> str:
    si = SmartConnect(host="127.0.0.1", port=server.port, user="user", pwd="pass", disableSslCertValidation=True)
    try:
        vm = si.content.searchIndex.FindByInventoryPath("ha-datacenter/vm/win2003-sql")
        ds, _, rel = vm.config.files.vmPathName.partition("] ")
        return f"/folder/{rel}?dcPath=ha-datacenter&dsName={ds.lstrip('[')}"
    finally:
        Disconnect(si)


def _folder_requests(path: str) -> list[tuple[str, str, bytes | None]]:
    put = path.replace(".vmx", "-notes.txt")
    return [("GET", path, None), ("HEAD", path, None), ("PUT", put, b"written without a session\n")]


def test_datastore_files_refuse_missing_logged_out_and_expired_sessions(server, idle_server):
    for srv in (server, idle_server):
        path = _vmx_path(srv)
        live = _login(srv)
        logged_out = _login(srv)
        _logout(srv, logged_out)
        expired = _expired_cookies(srv, 1)[0] if srv is idle_server else None
        for method, target, body in _folder_requests(path):
            cookies = [None, 'vmware_soap_session="forged"', logged_out] + ([expired] if expired else [])
            for cookie in cookies:
                headers = {"Cookie": cookie} if cookie else {}
                status, data, _ = _http(srv, method, target, body, headers)
                assert status == 401, (method, cookie, status)
                assert b"vmware_soap_session" in data or method == "HEAD"
            bad_basic = {"Authorization": "Basic " + base64.b64encode(b"user:wrong").decode()}
            assert _http(srv, method, target, body, bad_basic)[0] == 401
        if srv is idle_server:
            live = _login(srv)  # the first one expired while we waited
        status, data, _ = _http(srv, "GET", path, None, {"Cookie": live})
        assert status == 200 and b"displayName" in data
    # nothing was written by the refused PUTs
    status, _, _ = _http(server, "GET", _folder_requests(_vmx_path(server))[2][1], None, {"Cookie": _login(server)})
    assert status == 404


def _transfer_url(server: Any, cookie: str, direction: str) -> str:
    vm = '<vm type="VirtualMachine">vm-1</vm>'
    auth = ('<auth xsi:type="NamePasswordAuthentication"><interactiveSession>false</interactiveSession>'
            "<username>Administrator</username><password>vmware</password></auth>")
    if direction == "to":
        body = (f'<InitiateFileTransferToGuest xmlns="urn:vim25"><_this type="GuestFileManager">'
                f'{MOIDS["guestfiles"]}</_this>{vm}{auth}<guestFilePath>C:\\auth-test.txt</guestFilePath>'
                '<fileAttributes xsi:type="GuestFileAttributes"/><fileSize>3</fileSize><overwrite>true</overwrite>'
                "</InitiateFileTransferToGuest>")
    else:
        body = (f'<InitiateFileTransferFromGuest xmlns="urn:vim25"><_this type="GuestFileManager">'
                f'{MOIDS["guestfiles"]}</_this>{vm}{auth}<guestFilePath>C:\\boot.ini</guestFilePath>'
                "</InitiateFileTransferFromGuest>")
    status, data = _soap(server, ENVELOPE.format(body).encode(), cookie)
    assert status == 200, data[:400]
    text = ET.fromstring(data).itertext()
    return next(t for t in text if "/guestFile?" in t)


def _use(url: str, direction: str) -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ssl._create_unverified_context(), timeout=10)
    try:
        if direction == "to":
            conn.request("PUT", f"{parts.path}?{parts.query}", body=b"abc")
        else:
            conn.request("GET", f"{parts.path}?{parts.query}")
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


@pytest.mark.parametrize("direction", ["to", "from"])
def test_guest_file_transfer_urls_refuse_missing_logged_out_and_expired_sessions(server, idle_server, direction):
    # missing: no token, or one the host never issued
    for query in ("", "?id=1", "?id=1&token=forged"):
        status, _, _ = _http(server, "PUT" if direction == "to" else "GET", f"/guestFile{query}",
                             b"abc" if direction == "to" else None)
        assert status in (401, 403, 404)
    # logged out: the URL dies with the session that asked for it
    cookie = _login(server)
    url = _transfer_url(server, cookie, direction)
    _logout(server, cookie)
    assert _use(url, direction) in (401, 403, 404)
    # expired
    cookie = _login(idle_server)
    url = _transfer_url(idle_server, cookie, direction)
    IDLE_CLOCK.advance(IDLE * 1.5)
    assert _use(url, direction) in (401, 403, 404)
    # control: a URL of a live session works once
    cookie = _login(server)
    url = _transfer_url(server, cookie, direction)
    assert _use(url, direction) == 200
    assert _use(url, direction) in (401, 403, 404)


def _guest_calls(fm: Any, pm: Any, vm: Any, auth: Any) -> dict[str, Any]:
    """Every guest operation the coverage lists, with arguments a Windows guest accepts."""
    spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath="C:\\Windows\\system32\\cmd.exe", arguments="/c exit 0")
    return {
        "ListFilesInGuest": lambda: fm.ListFilesInGuest(vm, auth, "C:\\"),
        "MakeDirectoryInGuest": lambda: fm.MakeDirectoryInGuest(vm, auth, "C:\\auth-dir", True),
        "DeleteFileInGuest": lambda: fm.DeleteFileInGuest(vm, auth, "C:\\boot.ini"),
        "DeleteDirectoryInGuest": lambda: fm.DeleteDirectoryInGuest(vm, auth, "C:\\Windows", True),
        "InitiateFileTransferToGuest": lambda: fm.InitiateFileTransferToGuest(
            vm, auth, "C:\\x.txt", vim.vm.guest.FileManager.FileAttributes(), 1, True),
        "InitiateFileTransferFromGuest": lambda: fm.InitiateFileTransferFromGuest(vm, auth, "C:\\boot.ini"),
        "StartProgramInGuest": lambda: pm.StartProgramInGuest(vm, auth, spec),
        "ListProcessesInGuest": lambda: pm.ListProcessesInGuest(vm, auth),
    }


def test_guest_operations_check_the_guest_credentials(server):
    si = SmartConnect(host="127.0.0.1", port=server.port, user="user", pwd="pass", disableSslCertValidation=True)
    try:
        gom = si.content.guestOperationsManager
        fm, pm = gom.fileManager, gom.processManager
        vm = si.content.searchIndex.FindByInventoryPath("ha-datacenter/vm/win2003-sql")
        guest_methods = {m for impl in ALL_TYPES if impl.vim_type in (vim.vm.guest.FileManager,
                                                                        vim.vm.guest.ProcessManager)
                         for m in impl.soap_methods()}
        wrong = _guest_calls(fm, pm, vm, WRONG)
        assert set(wrong) == guest_methods, "a guest operation of the coverage is not checked here"
        for name, call in wrong.items():
            with pytest.raises(vim.fault.InvalidGuestLogin):
                call()
                pytest.fail(f"{name} ran with a wrong guest password")
        unknown_user = vim.vm.guest.NamePasswordAuthentication(username="nobody", password="vmware")
        with pytest.raises(vim.fault.InvalidGuestLogin):
            fm.ListFilesInGuest(vm, unknown_user, "C:\\")
        # the guest's files are untouched, and the right password works
        names = {f.path for f in fm.ListFilesInGuest(vm, ADMIN, "C:\\").files}
        assert {"boot.ini", "Windows"} <= names and "auth-dir" not in names
    finally:
        Disconnect(si)


CONTROL = sorted({(m, r) for r, methods in _ROUTES.items() for m in methods}
                 | {(m, "guests/win2003-sql/files") for m in ("GET", "POST", "PUT")})


def test_the_control_api_refuses_missing_logged_out_and_expired_sessions(server, idle_server):
    state_before = _http(server, "GET", f"{PREFIX}/state", None,
                         {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()})
    assert state_before[0] == 200
    logged_out = _login(server)
    _logout(server, logged_out)
    expired = _expired_cookies(idle_server, len(CONTROL))
    bad_basic = "Basic " + base64.b64encode(b"user:wrong").decode()
    for (method, route), old in zip(CONTROL, expired, strict=True):
        path = f"{PREFIX}/{route}"
        body = b'{"seed": 1}' if method in ("POST", "PUT") else None
        for srv, headers in ((server, {}), (server, {"Cookie": logged_out}), (server, {"Authorization": bad_basic}),
                             (idle_server, {"Cookie": old})):
            status, data, _ = _http(srv, method, path, body, headers)
            assert status == 401, (method, route, headers, status, data[:200])
    # a live session gets past the check (whatever the resource then answers)
    live = _login(server)
    status, _, _ = _http(server, "GET", f"{PREFIX}/state", None, {"Cookie": live})
    assert status == 200


def test_datastore_file_requests_keep_a_session_alive(idle_server):
    """A backup that copies disks over ``/folder`` for longer than the idle timeout, with no
    SOAP call in between, can still remove its snapshot afterwards."""
    path = _vmx_path(idle_server)
    cookie = _login(idle_server)
    for _ in range(30):  # three idle timeouts, a request every tenth of one
        assert _http(idle_server, "GET", path, None, {"Cookie": cookie})[0] == 200
        IDLE_CLOCK.advance(IDLE / 10)
    assert _fault(*_soap(idle_server, _request("ServiceInstance", "CurrentTime"), cookie)) is None
