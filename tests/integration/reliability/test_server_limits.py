"""The HTTP server under hostile clients: slow-header and idle-connection floods, large
anonymous bodies, login guessing; a normal client is served throughout.

``KIT_FLOOD_CONNECTIONS`` sets the flood size (``tox -e reliability`` raises it)."""

from __future__ import annotations

import http.client
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from vcbsim.simulator._host import Host
from vcbsim.simulator.soap import serve
from vcbsim.simulator.soap.http._server import Limits

FLOOD = int(os.environ.get("KIT_FLOOD_CONNECTIONS", "96"))
CAP = max(16, FLOOD // 3)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[Any]:
    with serve(Host.demo(), http=True, limits=Limits(max_connections=CAP)) as running:
        running._httpd.clock = FakeClock()
        yield running


def _normal_client(port: int) -> list[str]:
    si = SmartConnect(protocol="http", host="127.0.0.1", port=port, user="user", pwd="pass")
    try:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        return sorted(vm.name for vm in view.view)
    finally:
        Disconnect(si)


def _open(port: int, n: int, first_bytes: bytes) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if first_bytes:
            s.sendall(first_bytes)
        socks.append(s)
    return socks


def _closed_by_server(s: socket.socket) -> bool:
    s.settimeout(10)
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        return True


@pytest.mark.parametrize("kind", ["slow-headers", "idle"])
def test_a_flood_of_slow_or_idle_connections_does_not_stop_a_normal_client(server: Any, kind: str) -> None:
    first = b"POST /sdk HTTP/1.1\r\nHost: x\r\n" if kind == "slow-headers" else b""
    socks = _open(server.port, FLOOD, first)
    try:
        assert "win2003-sql" in _normal_client(server.port)  # served while the flood holds
        httpd = server._httpd
        assert len(httpd.connections) <= CAP + 1
        assert httpd.evicted >= FLOOD - CAP  # the longest-waiting went, not the client
        # the held connections still open are cut off at their deadline (the fake clock)
        httpd.clock.now += max(httpd.limits.head_timeout, 120.0) + 1
        httpd.reap()
        survivors = [s for s in socks if s.fileno() >= 0]
        assert all(_closed_by_server(s) for s in survivors[-CAP:])
    finally:
        for s in socks:
            s.close()
    assert "rhel5-web" in _normal_client(server.port)


def test_an_anonymous_body_is_refused_from_its_headers(server: Any) -> None:
    """A 15 MiB SOAP body without a session: 413 before a byte of it is read."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        s.sendall(b"POST /sdk HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                  b"Content-Length: 15728640\r\n\r\n")
        resp = http.client.HTTPResponse(s)
        resp.begin()
        assert resp.status == 413
    finally:
        s.close()


def test_logins_lock_out_a_guesser_as_esxi_does(server: Any) -> None:
    ep = server.endpoint
    clock = FakeClock()
    ep.auth.throttle.clock = clock
    for _ in range(5):  # Security.AccountLockFailures = 5
        with pytest.raises(vim.fault.InvalidLogin):
            SmartConnect(protocol="http", host="127.0.0.1", port=server.port, user="user", pwd="guess")
    with pytest.raises(vim.fault.InvalidLogin):  # now even the right password is refused
        SmartConnect(protocol="http", host="127.0.0.1", port=server.port, user="user", pwd="pass")
    assert ep.auth.throttle.refused == 1
    clock.now += 901  # Security.AccountUnlockTime = 900 s
    assert "win2003-sql" in _normal_client(server.port)


def test_the_lockout_can_be_switched_off() -> None:
    with serve(Host.demo(), http=True, login_lock_failures=0) as running:
        for _ in range(12):
            with pytest.raises(vim.fault.InvalidLogin):
                SmartConnect(protocol="http", host="127.0.0.1", port=running.port, user="user", pwd="x")
        assert "win2003-sql" in _normal_client(running.port)


def test_a_login_flood_keeps_the_server_serving(server: Any) -> None:
    """Many wrong passwords on many connections: all refused, the server serves on."""
    for n in range(FLOOD // 4):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        body = (
            '<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
            '<soapenv:Body><Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this>'
            f"<userName>user{n % 3}</userName><password>bad{n}</password></Login></soapenv:Body></soapenv:Envelope>"
        )
        conn.request("POST", "/sdk", body=body, headers={"Content-Type": "text/xml", "SOAPAction": "urn:vim25/8.0.3.0"})
        resp = conn.getresponse()
        assert resp.status == 500 and b"InvalidLogin" in resp.read()
        conn.close()
    assert "win2003-sql" in _normal_client(server.port)


def test_finished_tasks_are_kept_per_session_and_by_age_on_the_endpoint_clock() -> None:
    """A busy client cannot push another client's finished task out of sight; tasks go when
    they are older than ``max_age`` on the (injected) endpoint clock."""
    from pyVim.task import WaitForTask

    clock = FakeClock()
    with serve(Host.demo(), http=True, task_retention=3, clock=clock) as running:
        quiet = SmartConnect(protocol="http", host="127.0.0.1", port=running.port, user="user", pwd="pass")
        busy = SmartConnect(protocol="http", host="127.0.0.1", port=running.port, user="user", pwd="pass")
        try:
            def vm(si: Any) -> Any:
                return si.content.searchIndex.FindByInventoryPath("ha-datacenter/vm/rhel5-web")

            mine = vm(quiet).CreateSnapshot_Task("quiet", "", False, False)
            WaitForTask(mine)
            theirs = []
            for i in range(8):  # more than the retention, all from the other session
                t = vm(busy).CreateSnapshot_Task(f"b{i}", "", False, False)
                WaitForTask(t)
                theirs.append(t)
            assert mine.info.state == "success"  # still there
            with pytest.raises(vmodl.fault.ManagedObjectNotFound):
                theirs[0].info  # noqa: B018 - the busy session's own oldest went
            assert theirs[-1].info.state == "success"
            running.endpoint.tasks.max_age = 60.0
            clock.now += 61
            WaitForTask(vm(busy).CreateSnapshot_Task("late", "", False, False))
            with pytest.raises(vmodl.fault.ManagedObjectNotFound):
                mine.info  # noqa: B018 - older than max_age on the endpoint clock
        finally:
            Disconnect(quiet)
            Disconnect(busy)


def test_a_keep_alive_connection_is_reaped_only_after_its_idle_window(server: Any) -> None:
    """Between two requests a connection may idle ``KEEPALIVE_IDLE_SECONDS`` (the reaper once
    closed it at the 120 s request timeout, so a client pausing two minutes lost its connection)."""
    import threading

    from vcbsim.simulator.soap.http._server import KEEPALIVE_IDLE_SECONDS, REQUEST_TIMEOUT_SECONDS

    httpd = server._httpd
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/sdk/vimServiceVersions.xml")
        first = conn.getresponse()
        first.read()
        assert first.status == 200 and not first.will_close
        waited = threading.Event()
        for _ in range(1000):  # the handler records the idle phase after writing the answer
            idle = [(since, deadline) for phase, since, deadline in list(httpd.phases.values()) if phase == "idle"]
            if idle:
                break
            waited.wait(0.01)
        assert idle and idle[0][1] - idle[0][0] == pytest.approx(KEEPALIVE_IDLE_SECONDS)
        httpd.clock.now += REQUEST_TIMEOUT_SECONDS + 60
        assert httpd.reap() == 0
        conn.request("GET", "/sdk/vimServiceVersions.xml")
        second = conn.getresponse()
        second.read()
        assert second.status == 200
    finally:
        conn.close()
