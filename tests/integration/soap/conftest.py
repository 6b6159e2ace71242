"""Fixtures and shared helpers for the SOAP endpoint: real simulated hosts, running servers,
pyVmomi clients.

Every server here serves a real ``Host``: ``small_host()`` (two VMs, built for these tests) or
the demo inventory (``host``, ``esxi``). Tests reach the host to arrange what a client cannot
(a failing guest script, guest writes for changed-block tracking) and to check what the
client's calls did to it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from vcbsim.simulator._host import Host
from vcbsim.simulator.soap import serve

MiB = 1024**2
#: where VMware Tools on Windows looks for backup scripts (the demo and the seed use it)
SCRIPTS_D = r"C:\Program Files\VMware\VMware Tools\backupScripts.d"


def small_host(profile: str = "esx-3.5u2", *, seed: int = 1) -> Host:
    """``win-db`` (``vm-1``: Windows, powered on, Tools running, one 64 MiB disk, 10.0.0.11)
    and ``lin-web`` (``vm-2``: Linux, powered off, no Tools), on ``datastore1``."""
    host = Host(profile, seed=seed)
    host.add_vm("win-db", disks=[64 * MiB], ip_address="10.0.0.11", hostname="win-db.example.test")
    host.add_vm("lin-web", os_family="linux", disks=[64 * MiB], power_state="poweredOff", tools="not-installed")
    return host


def find_vm(si: Any, name: str = "win2003-sql") -> Any:
    """A VM by name, as clients find it (its inventory path); ``None`` if there is none."""
    return si.content.searchIndex.FindByInventoryPath(f"ha-datacenter/vm/{name}")


def disks(vm: Any) -> list[Any]:
    """The VM's virtual disks (``config.hardware.device``), in device order."""
    return [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]


@pytest.fixture
def small() -> Host:
    """``small_host()``: the host behind ``server`` and ``si``."""
    return small_host()


@pytest.fixture
def server(small: Host) -> Iterator[Any]:
    with serve(small, port=0) as running:
        yield running


def connect(server: Any) -> Iterator[Any]:
    """A pyVmomi connection to ``server`` (logged out at the end); use with ``yield from`` or
    ``for si in connect(server):``."""
    port = server.port
    conn = SmartConnect(host="127.0.0.1", port=port, user="user", pwd="pass", disableSslCertValidation=True)
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            Disconnect(conn)


@pytest.fixture
def si(server: object) -> Iterator[object]:
    yield from connect(server)


# --- the real simulated host ---------------------------------------------------------------


@pytest.fixture(params=["esx-3.5u2", "esxi-7.0"])
def host(request: pytest.FixtureRequest) -> Host:
    """The demo host (a Windows and a Linux guest with scripts), under both kinds of profile."""
    return Host.demo(request.param, seed=7)


@pytest.fixture
def esxi() -> Host:
    """The demo host on the ESXi 7.0 profile (changed block tracking, SEsparse redo logs)."""
    return Host.demo("esxi-7.0", seed=7)


@pytest.fixture
def host_server(host: Host) -> Iterator[object]:
    with serve(host) as running:
        yield running


@pytest.fixture
def host_si(host_server: object) -> Iterator[object]:
    yield from connect(host_server)


@pytest.fixture
def esxi_si(esxi: Host) -> Iterator[object]:
    with serve(esxi) as running:
        yield from connect(running)
