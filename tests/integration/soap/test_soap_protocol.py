"""The SOAP endpoint as real clients see it: discovery, sessions, bad input, faults.

pyVmomi is the client throughout; raw HTTP is used only to send what pyVmomi never would
(malformed XML, entity tricks, unknown methods).
"""

from __future__ import annotations

import http.client
import ssl
import threading
import xml.etree.ElementTree as ET

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import SoapAdapter, vim, vmodl

from vcbsim.simulator.soap import serve

from .conftest import find_vm, small_host

ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<soapenv:Body>{}</soapenv:Body></soapenv:Envelope>"
)
RSC = '<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>'


def _post(server, body: bytes | str, cookie: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ssl._create_unverified_context(), timeout=10)
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "urn:vim25/8.0.3.0"}
    if cookie:
        headers["Cookie"] = cookie
    try:
        conn.request("POST", "/sdk", body.encode() if isinstance(body, str) else body, headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _fault_of(body: bytes) -> object:
    """Decode a fault response with pyVmomi's own response deserializer."""
    return SoapAdapter.SoapResponseDeserializer(None).Deserialize(body, object)


def _still_serves(server) -> None:
    status, body = _post(server, ENVELOPE.format(RSC))
    assert status == 200
    assert b"ha-folder-root" in body


def test_service_versions_document_negotiates_a_modern_vim25(server):
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ssl._create_unverified_context())
    conn.request("GET", "/sdk/vimServiceVersions.xml")
    resp = conn.getresponse()
    root = ET.fromstring(resp.read())
    conn.close()
    assert resp.status == 200
    assert root.tag == "namespaces" and root.get("version") == "1.0"
    ns = root.find("namespace")
    assert ns.findtext("name") == "urn:vim25"
    assert ns.findtext("version") == "8.0.3.0"
    assert "2.5u2" in [v.text for v in ns.findall("priorVersions/version")]


def test_wsdl_document_names_the_service(server):
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ssl._create_unverified_context())
    conn.request("GET", "/sdk/vimService.wsdl")
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    assert resp.status == 200
    assert 'name="VimService"' in text and f":{server.port}/sdk" in text


def test_smartconnect_over_https_and_service_content(si, server):
    assert server.url.startswith("https://127.0.0.1:")
    content = si.RetrieveContent()
    assert content.about.apiType == "HostAgent"
    assert content.about.name == "VMware ESX Server"
    assert content.rootFolder._moId == "ha-folder-root"
    assert content.propertyCollector._moId == "ha-property-collector"
    assert content.viewManager is not None and content.searchIndex is not None
    assert content.sessionManager.currentSession.userName == "user"
    assert si.CurrentTime().year >= 2008


def test_plain_http_mode():
    with serve(small_host(), http=True) as running:
        assert running.url.startswith("http://127.0.0.1:")
        conn = SmartConnect(protocol="http", host="127.0.0.1", port=running.port, user="user", pwd="pass")
        assert conn.content.rootFolder.name == "ha-folder-root"
        Disconnect(conn)


def test_wrong_password_is_invalid_login(server):
    with pytest.raises(vim.fault.InvalidLogin):
        SmartConnect(host="127.0.0.1", port=server.port, user="user", pwd="wrong", disableSslCertValidation=True)
    with pytest.raises(vim.fault.InvalidLogin):
        SmartConnect(host="127.0.0.1", port=server.port, user="root", pwd="pass", disableSslCertValidation=True)
    _still_serves(server)


def test_call_without_session_is_not_authenticated(server):
    stub = SoapAdapter.SoapStubAdapter(
        "127.0.0.1", port=server.port, version="vim.version.v8_0_3_0", sslContext=ssl._create_unverified_context()
    )
    si = vim.ServiceInstance("ServiceInstance", stub)
    content = si.RetrieveContent()  # allowed without a session
    with pytest.raises(vim.fault.NotAuthenticated):
        content.rootFolder.name  # noqa: B018 - the read is the call under test
    view_mgr = content.viewManager
    with pytest.raises(vim.fault.NotAuthenticated):
        view_mgr.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    with pytest.raises(vim.fault.NotAuthenticated):
        si.CurrentTime()  # only RetrieveServiceContent and Login are anonymous


def test_logout_ends_the_session(server):
    conn = SmartConnect(host="127.0.0.1", port=server.port, user="user", pwd="pass", disableSslCertValidation=True)
    content = conn.RetrieveContent()
    assert content.rootFolder.name == "ha-folder-root"
    content.sessionManager.Logout()
    with pytest.raises(vim.fault.NotAuthenticated):
        content.rootFolder.name  # noqa: B018


def test_unknown_moref_is_managed_object_not_found(si, server):
    ghost = vim.VirtualMachine("vm-404", si._stub)
    with pytest.raises(vmodl.fault.ManagedObjectNotFound) as info:
        ghost.name  # noqa: B018
    assert info.value.obj._moId == "vm-404"
    # right id, wrong type is not found either
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vim.Folder("vm-1", si._stub).name  # noqa: B018
    _still_serves(server)


def test_method_of_another_type_is_method_not_found(si):
    folder_as_vm = vim.VirtualMachine("ha-folder-root", si._stub)
    # the type check comes first: a folder is not a VM
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        folder_as_vm.PowerOnVM_Task()


def test_unsimulated_method_is_not_supported(si):
    vm = find_vm(si, "win-db")
    with pytest.raises(vmodl.fault.NotSupported):
        vm.ResetVM_Task()


@pytest.mark.parametrize(
    "payload",
    [
        b"this is not xml",
        b"<soapenv:Envelope",
        ENVELOPE.format("").encode(),
        ENVELOPE.format('<NoSuchMethod xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></NoSuchMethod>').encode(),
        ENVELOPE.format('<RetrieveServiceContent xmlns="urn:vim25"></RetrieveServiceContent>').encode(),
        ENVELOPE.format('<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this><bogus>1</bogus></RetrieveServiceContent>').encode(),
        b'<?xml version="1.0"?><Envelope>' + RSC.encode() + b"</Envelope>",
        ENVELOPE.format('<Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this><password>x</password></Login>').encode(),
        ENVELOPE.format('<CreateSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-1</_this><name>s</name><memory>maybe</memory><quiesce>false</quiesce></CreateSnapshot_Task>').encode(),
        ENVELOPE.format('<RetrieveServiceContent xmlns="urn:vim25"><_this type="NoSuchType">x</_this></RetrieveServiceContent>').encode(),
    ],
    ids=["not-xml", "truncated", "empty-body", "unknown-method", "no-this", "unknown-param", "not-soap",
         "missing-required", "bad-bool", "bad-type"],
)
def test_malformed_requests_get_invalid_request_and_the_server_keeps_serving(server, payload):
    status, body = _post(server, payload)
    assert status == 500
    fault = _fault_of(body)
    assert isinstance(fault, vmodl.fault.InvalidRequest)
    _still_serves(server)


def test_entity_expansion_is_refused(server):
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        + ENVELOPE.format(
            '<Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this>'
            "<userName>&lol3;</userName><password>x</password></Login>"
        ).split("?>", 1)[1]
    )
    status, body = _post(server, bomb)
    assert status == 500
    fault = _fault_of(body)
    assert isinstance(fault, vmodl.fault.InvalidRequest)
    assert b"lollollol" not in body
    _still_serves(server)


def test_external_entity_is_refused(server, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        + ENVELOPE.format(
            '<Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this>'
            "<userName>&xxe;</userName><password>x</password></Login>"
        ).split("?>", 1)[1]
    )
    status, body = _post(server, xxe)
    assert status == 500
    assert isinstance(_fault_of(body), vmodl.fault.InvalidRequest)
    assert b"TOP-SECRET" not in body
    _still_serves(server)


def test_oversized_and_lengthless_requests_are_refused(server):
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ssl._create_unverified_context())
    conn.putrequest("POST", "/sdk")
    conn.putheader("Content-Length", str(1 << 30))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413
    conn.close()
    _still_serves(server)


def test_session_cookie_is_vmware_soap_session(server):
    body = ENVELOPE.format(
        '<Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this>'
        "<userName>user</userName><password>pass</password></Login>"
    )
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ssl._create_unverified_context())
    conn.request("POST", "/sdk", body.encode(), {"SOAPAction": "urn:vim25/8.0.3.0"})
    resp = conn.getresponse()
    resp.read()
    cookie = resp.getheader("Set-Cookie")
    conn.close()
    assert resp.status == 200
    assert cookie.startswith('vmware_soap_session="') and "HttpOnly" in cookie
    fetch = ENVELOPE.format('<Fetch xmlns="urn:vim25"><_this type="Folder">ha-folder-root</_this><prop>name</prop></Fetch>')
    status, reply = _post(server, fetch, cookie=cookie.split(";")[0])
    assert status == 200 and b"ha-folder-root" in reply
    status, reply = _post(server, fetch, cookie='vmware_soap_session="forged"')
    assert status == 500 and isinstance(_fault_of(reply), vim.fault.NotAuthenticated)


def test_keep_alive_serves_many_calls_on_one_connection(si, server):
    root = si.content.rootFolder
    for _ in range(50):
        assert root.name == "ha-folder-root"
    assert server.endpoint.calls["Fetch"] >= 50


def test_concurrent_clients(server):
    errors: list[BaseException] = []

    def client() -> None:
        try:
            conn = SmartConnect(host="127.0.0.1", port=server.port, user="user", pwd="pass",
                                disableSslCertValidation=True)
            vm = find_vm(conn, "lin-web")
            for _ in range(10):
                assert vm.runtime.powerState == "poweredOff"
            Disconnect(conn)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors


def test_serve_refuses_non_loopback_addresses():
    with pytest.raises(ValueError, match="loopback"):
        serve(small_host(), host="0.0.0.0")


def test_stop_closes_idle_keep_alive_connections(small):
    before = {t.ident for t in threading.enumerate()}
    running = serve(small)
    conn = SmartConnect(host="127.0.0.1", port=running.port, user="user", pwd="pass", disableSslCertValidation=True)
    assert conn.content.rootFolder.name == "ha-folder-root"
    running.stop()
    assert not running.endpoint.tasks._thread
    assert not running._httpd.connections
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        leftover = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
        if not leftover:
            break
        time.sleep(0.05)
    assert leftover == []  # the accept loop, the task worker and the connection threads ended


def test_plain_http_to_the_https_port_is_dropped_and_the_server_keeps_serving(server):
    for _ in range(3):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            conn.request("GET", "/sdk/vimServiceVersions.xml")
            conn.getresponse().read()
        conn.close()
    _still_serves(server)
    import time

    deadline = time.monotonic() + 5
    while server._httpd.connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server._httpd.connections  # failed handshakes are not kept


def test_unknown_paths_are_404(server):
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ssl._create_unverified_context())
    for method, path in [("GET", "/"), ("GET", "/sdk/nothing.wsdl"), ("POST", "/other"), ("PUT", "/sdk")]:
        conn.request(method, path, body=b"" if method != "GET" else None)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 404, (method, path)
    conn.close()


def test_an_older_advertised_api_version_is_negotiated():
    with serve(small_host(), api_version="5.5") as running:
        conn = SmartConnect(host="127.0.0.1", port=running.port, user="user", pwd="pass", disableSslCertValidation=True)
        assert conn._stub.versionId == '"urn:vim25/5.5"'
        vm = find_vm(conn, "win-db")
        disk = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
        assert disk.capacityInBytes == 64 * 1024**2  # a 5.5 property
        assert vm.config.vmOpNotificationToAppEnabled is None  # a 7.0 property, not sent to 5.5
        Disconnect(conn)
    with pytest.raises(ValueError, match="API version"):
        serve(small_host(), api_version="99.0")


def test_all_properties_are_those_of_the_clients_version():
    """``all=True`` answers an older client with its version's properties only (a strict
    client of that version's WSDL knows no newer types)."""
    from pyVmomi import vmodl

    pc_ = vmodl.query.PropertyCollector
    for version, newer_expected in [("2.5u2", False), ("8.0.3.0", True)]:
        with serve(small_host(), api_version=version) as running:
            conn = SmartConnect(host="127.0.0.1", port=running.port, user="user", pwd="pass",
                                disableSslCertValidation=True)
            vm = find_vm(conn, "win-db")
            spec = pc_.FilterSpec(objectSet=[pc_.ObjectSpec(obj=vm)], propSet=[pc_.PropertySpec(type=vim.VirtualMachine, all=True)])
            (content,) = conn.content.propertyCollector.RetrieveContents([spec])
            names = {p.name for p in content.propSet}
            assert {"name", "config", "runtime", "snapshot"} & names
            assert ("layoutEx" in names) is newer_expected, (version, sorted(names))
            assert ("storage" in names) is newer_expected
            Disconnect(conn)


def test_serve_wraps_a_simulated_host():
    from vcbsim.simulator._host import Host

    with serve(Host.demo(), http=True) as running:
        conn = SmartConnect(protocol="http", host="127.0.0.1", port=running.port, user="user", pwd="pass")
        assert conn.content.about.apiVersion == "2.5u2"
        Disconnect(conn)


def test_sessions_are_bounded(server, monkeypatch):
    from vcbsim.simulator.soap import _sessions

    monkeypatch.setattr(_sessions, "MAX_SESSIONS", 5)
    first = SmartConnect(host="127.0.0.1", port=server.port, user="user", pwd="pass", disableSslCertValidation=True)
    for _ in range(4):  # a script that logs in for every call and never logs out
        SmartConnect(host="127.0.0.1", port=server.port, user="user", pwd="pass", disableSslCertValidation=True)
    with pytest.raises(vim.fault.InvalidLogin, match="5 sessions"):  # refused, nobody evicted
        SmartConnect(host="127.0.0.1", port=server.port, user="user", pwd="pass", disableSslCertValidation=True)
    assert len(server.endpoint.sessions) == 5
    assert first.content.rootFolder.name == "ha-folder-root"  # the oldest still works
    monkeypatch.setattr(_sessions, "SESSION_IDLE_SECONDS", 0.0)
    SmartConnect(host="127.0.0.1", port=server.port, user="user", pwd="pass", disableSslCertValidation=True)
    assert len(server.endpoint.sessions) == 1  # the idle ones expired at this login


def test_clone_ticket_gives_a_second_session_and_terminate_ends_it(si, server):
    ticket = si.content.sessionManager.AcquireCloneTicket()
    stub = SoapAdapter.SoapStubAdapter(
        "127.0.0.1", port=server.port, version="vim.version.v8_0_3_0", sslContext=ssl._create_unverified_context()
    )
    other = vim.ServiceInstance("ServiceInstance", stub)
    content = other.RetrieveContent()
    session = content.sessionManager.CloneSession(ticket)
    assert session.userName == "user"
    assert content.rootFolder.name == "ha-folder-root"
    with pytest.raises(vim.fault.InvalidLogin):
        content.sessionManager.CloneSession(ticket)  # one use only
    mine = si.content.sessionManager.currentSession.key
    with pytest.raises(vmodl.fault.InvalidArgument):
        si.content.sessionManager.TerminateSession([mine])
    si.content.sessionManager.TerminateSession([session.key])
    with pytest.raises(vim.fault.NotAuthenticated):
        content.rootFolder.name  # noqa: B018


def test_idle_sessions_and_clone_tickets_expire_on_the_endpoint_clock():
    """Session idle time, clone tickets and their expiry follow the clock the server is given:
    the test moves it, nothing sleeps."""
    from vcbsim.simulator import VirtualClock

    clock = VirtualClock(0.0)
    with serve(small_host(), http=True, session_idle_timeout=60.0, clock=clock) as running:
        si = SmartConnect(protocol="http", host="127.0.0.1", port=running.port, user="user", pwd="pass")
        clock.advance(59.0)
        assert si.content.rootFolder.name == "ha-folder-root"  # a call: idle time starts again
        clock.advance(59.0)
        ticket = si.content.sessionManager.AcquireCloneTicket()
        clock.advance(31.0)  # a clone ticket lives 30 s
        stub = SoapAdapter.SoapStubAdapter(url=f"http://127.0.0.1:{running.port}/sdk", version="vim.version.v8_0_3_0")
        other = vim.ServiceInstance("ServiceInstance", stub).RetrieveContent()
        with pytest.raises(vim.fault.InvalidLogin):
            other.sessionManager.CloneSession(ticket)
        clock.advance(30.0)  # 61 s since the last call
        with pytest.raises(vim.fault.NotAuthenticated):
            si.content.rootFolder.name  # noqa: B018
        assert running.endpoint.sessions == {}


def test_the_certificate_verifies_for_127_0_0_1(server):
    ctx = ssl.create_default_context(cafile=str(server.cert_path))  # hostname checked too
    conn = SmartConnect(host="127.0.0.1", port=server.port, user="user", pwd="pass", sslContext=ctx)
    assert conn.content.rootFolder.name == "ha-folder-root"
    Disconnect(conn)


def test_given_certificate_and_key_are_used(tmp_path):
    from vcbsim.simulator.soap.http._cert import write_self_signed

    cert, key = write_self_signed(tmp_path, common_name="vcbsim-test")
    with serve(small_host(), certfile=cert, keyfile=key) as running:
        assert running.cert_path == cert
        ctx = ssl.create_default_context(cafile=str(cert))
        with ctx.wrap_socket(__import__("socket").create_connection(("127.0.0.1", running.port)),
                             server_hostname="127.0.0.1") as tls:
            subject = dict(x[0] for x in tls.getpeercert()["subject"])
        assert subject["commonName"] == "vcbsim-test"
    assert cert.exists()  # a given certificate is the caller's: not deleted
    with pytest.raises(ValueError, match="certfile and keyfile"):
        serve(small_host(), certfile=cert)


def _raw_exchange(port: int, pieces: list[bytes]) -> bytes:
    import socket
    import time

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.01)  # separate segments: the server's buffer holds a part only
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_headers_are_read_the_same_however_they_arrive():
    """One header block in the buffer (the fast path), a block split over segments, a folded
    line and a repeated header (the line-by-line way) all give the same answer."""
    body = ENVELOPE.format('<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">'
                           "ServiceInstance</_this></RetrieveServiceContent>").encode()
    head = (b"POST /sdk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
            b'SOAPAction: "urn:vim25/8.0.3.0"\r\n')
    length = b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
    with serve(small_host(), http=True) as running:
        whole = _raw_exchange(running.port, [head + length + body])
        split = _raw_exchange(running.port, [head[:20], head[20:] + length[:10], length[10:] + body])
        folded = _raw_exchange(running.port, [head + b"X-Note: one\r\n two\r\n" + length + body])
        repeated = _raw_exchange(running.port, [head + b"Content-Length: 0\r\n" + length + body])
    for reply in (whole, split, folded):
        assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
        assert b"ha-folder-root" in reply
    # the first Content-Length counts, as the standard library's parser takes it: an empty
    # body is no SOAP call
    assert repeated.startswith(b"HTTP/1.1 500 "), repeated[:200]
