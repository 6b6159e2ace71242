"""Redo-log extents over ``/folder``: a VM's descriptor chain as of a snapshot, downloaded as a
client would, converts with qemu-img to exactly the disk as of that snapshot."""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from vcbsim.reference import VSphereHostClient

SMALL = "win-small"  # the small Windows VM conftest adds to the demo host
needs_qemu = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img not installed (qemu-utils)")


def fetch(url: str, client: VSphereHostClient, path: str, range_: str | None = None) -> tuple[int, bytes]:
    """``GET /folder/<path>`` with the session cookie (plain urllib, not the client's reader)."""
    base = url.rsplit("/sdk", 1)[0]
    headers = {"Cookie": str(client.si._stub.cookie).split(";", 1)[0]}
    if range_:
        headers["Range"] = range_
    req = urllib.request.Request(f"{base}/folder/{path}?dcPath=ha-datacenter&dsName=datastore1", headers=headers)
    with urllib.request.urlopen(req, context=ssl._create_unverified_context()) as resp:
        return resp.status, resp.read()


def download_chain(url: str, client: VSphereHostClient, descriptor: str, into: Path) -> list[str]:
    """Every descriptor of the chain from ``[ds] dir/name.vmdk`` down, with its extents."""
    directory, name = descriptor.split("] ", 1)[1].rsplit("/", 1)
    names = []
    while name:
        _, text = fetch(url, client, f"{directory}/{name}")
        (into / name).write_bytes(text)
        names.append(name)
        for extent in re.findall(r'^RW \d+ \w+ "([^"]+)"', text.decode(), re.M):
            _, data = fetch(url, client, f"{directory}/{extent}")
            (into / extent).write_bytes(data)
        hint = re.search(r'^parentFileNameHint="([^"]+)"', text.decode(), re.M)
        name = hint.group(1) if hint else ""
    return names


def snapshot_disks(client: VSphereHostClient, snapshot_id: str) -> dict[int, str]:
    config = vim.vm.Snapshot(snapshot_id, client.si._stub).config
    return {
        d.key: d.backing.fileName for d in config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)
    }


@needs_qemu
def test_descriptor_chains_as_of_each_snapshot_convert_to_the_disk(
    host: Any, client: VSphereHostClient, url: str, tmp_path: Path
) -> None:
    vm = host.find_vm(f"name:{SMALL}")
    fs = host.guest_fs(vm)
    first = host.create_snapshot(vm, "first")
    fs.write_bytes("C:\\Windows\\system.ini", b"changed after the first snapshot")
    fs.write_bytes("D:\\db\\new.bin", bytes(range(256)) * 700)
    second = host.create_snapshot(vm, "second")
    fs.write_bytes("D:\\db\\big.mdf", b"live only")  # in the top redo log, in no snapshot
    for snap, depth in ((first, 1), (second, 2)):
        for key, descriptor in snapshot_disks(client, snap.moref).items():
            into = tmp_path / f"{snap.moref}-{key}"
            into.mkdir()
            names = download_chain(url, client, descriptor, into)
            # the first snapshot froze the base disk; the second froze the first redo log
            assert len(names) == depth and names[-1] == (f"{SMALL}.vmdk" if key == 2000 else f"{SMALL}_1.vmdk")
            info = json.loads(
                subprocess.run(["qemu-img", "info", "--output=json", "--backing-chain", str(into / names[0])],
                               check=True, capture_output=True, text=True).stdout
            )
            assert [Path(i["filename"]).name for i in info] == names
            assert all(i["virtual-size"] == vm.disks[0].capacity for i in info)
            raw = into / "disk.raw"
            subprocess.run(["qemu-img", "convert", "-O", "raw", str(into / names[0]), str(raw)],
                           check=True, capture_output=True)
            assert raw.read_bytes() == host.disk_view(vm, key, snap).read(0, vm.disks[0].capacity), (snap.name, key)


def test_delta_extents_serve_ranges_and_follow_the_live_redo_log(
    host: Any, client: VSphereHostClient, url: str
) -> None:
    vm = host.find_vm(f"name:{SMALL}")
    snap = host.create_snapshot(vm, "s")
    top = f"{SMALL}/{SMALL}-000001-delta.vmdk"
    status, whole = fetch(url, client, top)
    assert status == 200 and whole[:4] == b"COWD"
    host.guest_fs(vm).write_bytes("C:\\grow.bin", b"x" * (3 * 65536))
    status, grown = fetch(url, client, top)
    assert len(grown) > len(whole)  # the writable redo log's extent follows its grains
    status, part = fetch(url, client, top, "bytes=2040-2100")
    assert status == 206 and part == grown[2040:2101]
    # the snapshot's base is served flat, with the bytes the snapshot froze
    status, sector0 = fetch(url, client, f"{SMALL}/{SMALL}-flat.vmdk", "bytes=0-511")
    assert status == 206 and sector0 == host.disk_view(vm, 2000, snap).read(0, 512)
    with pytest.raises(urllib.error.HTTPError) as err:
        fetch(url, client, f"{SMALL}/{SMALL}-000009-delta.vmdk")
    assert err.value.code == 404
