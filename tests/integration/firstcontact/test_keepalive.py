"""Idle keep-alive connections: a pyVmomi client's pooled connection is never closed under it.

pyVmomi drops a pooled connection idle for ``CONNECTION_POOL_IDLE_TIMEOUT_SEC`` (900 s) before
reusing it; the server's idle window is longer, so the call after a long gap (a long
download, a long think) goes out on a connection the server still has open. The gap is made
on the endpoint's injected clock, never by sleeping.
"""

from __future__ import annotations

import http.client

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi.SoapAdapter import CONNECTION_POOL_IDLE_TIMEOUT_SEC

from vcbsim.simulator import Host
from vcbsim.simulator.soap import serve
from vcbsim.simulator.soap.http._server import KEEPALIVE_IDLE_SECONDS


class _Clock:
    """The endpoint's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def served():
    clock = _Clock()
    with serve(Host.demo(), http=True, clock=clock) as running:
        yield running, clock


def _server_connections(running) -> int:
    return len(running._httpd.connections)


def test_the_window_outlasts_pyvmomis_pool() -> None:
    assert KEEPALIVE_IDLE_SECONDS > CONNECTION_POOL_IDLE_TIMEOUT_SEC


def test_a_pyvmomi_call_after_the_longest_pooled_gap_reuses_the_connection(served) -> None:
    running, clock = served
    si = SmartConnect(protocol="http", host=running.host, port=running.port, user="user", pwd="pass")
    try:
        assert si.content.about.apiType == "HostAgent"
        pooled = [conn for conn, _ in si._stub.pool]
        assert len(pooled) == 1 and _server_connections(running) == 1
        # the longest gap after which pyVmomi still reuses its pooled connection
        clock.now += CONNECTION_POOL_IDLE_TIMEOUT_SEC - 1
        assert si.content.rootFolder.childEntity[0].name == "ha-datacenter"
        assert [conn for conn, _ in si._stub.pool] == pooled, "pyVmomi had to reconnect"
        assert _server_connections(running) == 1
    finally:
        Disconnect(si)


def _get(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", "/sdk/vimServiceVersions.xml")
    resp = conn.getresponse()
    resp.read()
    return resp.status


def test_a_connection_idle_past_the_window_is_closed(served) -> None:
    running, clock = served
    conn = http.client.HTTPConnection(running.host, running.port, timeout=30)
    try:
        assert _get(conn) == 200
        clock.now += KEEPALIVE_IDLE_SECONDS - 1
        assert _get(conn) == 200  # still open just inside the window
        clock.now += KEEPALIVE_IDLE_SECONDS + 1
        conn.request("GET", "/sdk/vimServiceVersions.xml")
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            conn.getresponse()
    finally:
        conn.close()
    # a new connection is served at once
    fresh = http.client.HTTPConnection(running.host, running.port, timeout=30)
    try:
        assert _get(fresh) == 200
    finally:
        fresh.close()


def test_busy_connections_are_never_idle(served) -> None:
    """Each request starts the window again: many calls, each inside it, never close."""
    running, clock = served
    conn = http.client.HTTPConnection(running.host, running.port, timeout=30)
    try:
        for _ in range(5):
            clock.now += KEEPALIVE_IDLE_SECONDS * 0.9
            assert _get(conn) == 200
    finally:
        conn.close()
