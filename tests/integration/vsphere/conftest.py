"""Fixtures: the demo host (plus a small Windows VM) served on 127.0.0.1, and the proxy's
``VSphereHostClient`` connected to it.

``win-small`` (two 96 MiB disks: ``C:``, ``D:`` and a letterless volume) keeps image
backups and raw conversions fast; ``win2003-sql`` is the demo's own Windows guest.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vcbsim.reference import InProcessHostClient, VSphereHostClient
from vcbsim.simulator._host import Host, MiB
from vcbsim.simulator.soap import serve

# helper modules of this folder import by plain name (pytest runs in importlib mode)
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

SMALL = "win-small"
SCRIPTS_D = r"C:\Program Files\VMware\VMware Tools\backupScripts.d"
GUEST_AUTH = {"guest_user": "Administrator", "guest_password": "vmware"}


def demo_host(seed: int = 7) -> Host:
    """``Host.demo()`` with ``win-small`` added (same seed: the same host every time)."""
    host = Host.demo(seed=seed)
    vm = host.add_vm(SMALL, os_family="windows", disks=[96 * MiB, 96 * MiB], ip_address="192.0.2.21")
    fs = host.add_guest_volumes(vm, {0: [(None, "C", "SYSTEM")], 1: [(48 * MiB, "D", "DATA"), (None, None, "RECOVERY")]})
    fs.mkdir("C:\\Windows")
    fs.write_bytes("C:\\Windows\\system.ini", b"[drivers]\r\nwave=mmdrv.dll\r\n")
    fs.mkdir("D:\\db")
    fs.write_bytes("D:\\db\\big.mdf", bytes(range(256)) * 2000)  # several grains
    fs.unmounted[0].filesystem.write_file("/RECOVERY.TXT", b"letterless")
    return host


def guest_files(fs: Any, letters: tuple[str, ...] = ("C", "D")) -> dict[str, bytes]:
    """``{"c:\\dir\\file": bytes}`` of the lettered volumes."""
    return fs.read_tree(*(f"{letter}:\\" for letter in letters))


@pytest.fixture
def host() -> Host:
    return demo_host()


@pytest.fixture
def server(host: Host) -> Iterator[Any]:
    with serve(host) as running:
        yield running


@pytest.fixture
def url(server: Any) -> str:
    return f"https://127.0.0.1:{server.port}/sdk"


@pytest.fixture
def client(url: str) -> Iterator[VSphereHostClient]:
    with VSphereHostClient(url, "user", "pass", insecure=True, **GUEST_AUTH) as c:
        yield c


@pytest.fixture
def twin() -> InProcessHostClient:
    """The same demo host, in process: what the vSphere binding must match."""
    return InProcessHostClient(demo_host())


@pytest.fixture
def proxy_root(tmp_path: Path) -> Path:
    return tmp_path / "proxy"


@pytest.fixture
def helpers() -> Any:
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        SMALL=SMALL, SCRIPTS_D=SCRIPTS_D, GUEST_AUTH=GUEST_AUTH, demo_host=demo_host, guest_files=guest_files
    )
