"""Fixtures for the reference proxy's integration tests: a small host with real guests.

``small_host()`` builds a Windows VM (``win1``: C: and a letterless recovery volume on disk 0,
D: on disk 1) and a Linux VM (``rhel1``), small enough that a whole test runs in well under a
second, on the real simulator (disks, FAT file systems, VMware Tools).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vcbsim.reference import BackupProxy, Catalog, InProcessHostClient
from vcbsim.simulator._host import Host, MiB
from vcbsim.simulator.guest import GuestFileSystem, format_disk

SCRIPTS_DIR = "C:\\Program Files\\VMware\\VMware Tools\\backupScripts.d"


def attach_guest(host: Any, vm: Any, layouts: list[list[tuple[int | None, str | None, str]]]) -> None:
    vols = []
    for i, layout in enumerate(layouts):
        vols += format_disk(host.guest_device(vm, vm.disks[i].key), layout, disk_index=i, clock=host.clock)
    vm.guest = GuestFileSystem(vm.os_family, vols, trace=host.trace, vm=vm.moref, clock=host.clock)
    tools = vm.tools
    if tools is not None and hasattr(tools, "guest") and type(tools.guest).__name__ == "MemoryGuestFiles":
        tools.guest = vm.guest  # Tools reads its scripts from the guest's own file system


def small_host(seed: int = 0, profile: str = "esx-3.5u2") -> Any:
    host = Host(profile, seed=seed)
    win = host.add_vm("win1", os_family="windows", disks=[128 * MiB, 48 * MiB], ip_address="10.0.0.11")
    attach_guest(host, win, [[(64 * MiB, "C", "SYSTEM"), (None, None, "RECOVERY")], [(None, "D", "DATA")]])
    g = win.guest
    g.mkdir("C:\\Windows")
    g.write_bytes("C:\\Windows\\system.ini", b"[drivers]\r\nwave=mmdrv.dll\r\n")
    g.mkdir("C:\\Users\\Admin\\Documents")
    g.write_bytes("C:\\Users\\Admin\\Documents\\report.doc", bytes(range(256)) * 300)
    g.mkdir("D:\\data")
    g.write_bytes("D:\\data\\db.mdf", b"\x01" * 200_000)
    for v in g.volumes:
        if not v.letter:
            v.filesystem.write_file("/recovery.wim", b"letterless volume data")
    lin = host.add_vm("rhel1", os_family="linux", disks=[48 * MiB], ip_address="10.0.0.12")
    attach_guest(host, lin, [[(None, "/", "ROOT")]])
    lin.guest.mkdir("/etc")
    lin.guest.write_bytes("/etc/hosts", b"127.0.0.1 localhost\n")
    return host


def install_script(vm: Any, name: str, text: str) -> str:
    """Put a quiescing script where Tools (3.5 U2 layout) finds it."""
    files = vm.tools.guest
    if hasattr(files, "mkdir"):
        try:
            files.mkdir(SCRIPTS_DIR, parents=True)
        except Exception:  # already there
            pass
    path = SCRIPTS_DIR + "\\" + name
    files.write_bytes(path, text.encode())
    return path


def guest_tree(fs: Any, letters: tuple[str, ...] = ("C", "D")) -> dict[str, bytes]:
    """Every file of the lettered volumes: ``{"C:\\dir\\f": bytes}`` (keys case-folded)."""
    return fs.read_tree(*(f"{letter}:\\" for letter in letters))


@pytest.fixture
def host() -> Any:
    return small_host()


@pytest.fixture
def client(host: Any) -> InProcessHostClient:
    return InProcessHostClient(host)


@pytest.fixture
def proxy(client: InProcessHostClient, tmp_path: Path) -> BackupProxy:
    return BackupProxy(client, tmp_path / "proxy")


@pytest.fixture
def catalog(tmp_path: Path) -> Any:
    with Catalog(tmp_path / "medium") as cat:
        yield cat


@pytest.fixture
def helpers() -> Any:
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        small_host=small_host, install_script=install_script, guest_tree=guest_tree, attach_guest=attach_guest
    )
