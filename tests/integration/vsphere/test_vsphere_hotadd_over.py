"""Hot-add restore over the original (``vcbsim restore --server ... --vm --over -m hotadd``): the
powered-off VM's snapshots are removed, its own disks attached writable to the proxy VM, the
backup written through the proxy's block devices (and zeroes where the disk has data the backup
has not), detached; the VM's disks equal the backup byte for byte, it keeps its moref and BIOS
uuid. A running VM is refused in one line with nothing changed; a failure mid-way detaches
every disk and leaves the VM registered, said in one line."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vsphere_disk_writes import SIZES, apply_writes, writes

from vcbsim.reference import main
from vcbsim.simulator import FaultRule
from vcbsim.simulator._hotadd import hot_added, mark_proxy

from .conftest import SMALL

MiB = 1 << 20


@pytest.fixture
def devices() -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="vcbsim-ho-"))  # short: a socket path holds 107 bytes
    yield where
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
def proxied(host: Any, devices: Path) -> Any:
    host.add_vm("vcb-proxy", os_family="linux", disks=[8 * MiB], tools="not-installed")
    mark_proxy(host, "vcb-proxy", devices)
    return host


def _remote(url: str, tmp_path: Path) -> list[str]:
    return ["--server", url, "--user", "user", "--password", "pass", "--insecure",
            "--state", str(tmp_path / "state"), "--json", "--no-progress"]  # fmt: skip


def _backup(url: str, tmp_path: Path, capsys: Any) -> int:
    assert main(["backup", *_remote(url, tmp_path), "-a", f"name:{SMALL}", "-t", "fullvm"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["status"] == "ok"
    return int(run["backup_id"])


def _images(tmp_path: Path, backup_id: int) -> dict[int, bytes]:
    from vcbsim.reference import Catalog

    with Catalog(tmp_path / "state" / "medium") as cat:
        _meta, images = cat.image_as_of_snapshot(backup_id, tmp_path / "rebuild")
        return {k: img.read(0, img.size) for k, (_f, img) in images.items()}


def _disks(host: Any, name: str) -> dict[int, bytes]:
    vm = host.find_vm(name)
    return {d.key: host.disk_view(vm, d.key).read(0, d.capacity) for d in vm.disks}


def _change_after_backup(host: Any) -> None:
    """Data the backup has not: a guest file, raw bytes past the volumes' data on both disks
    (areas the backup has as zeroes), and a snapshot holding more writes."""
    vm = host.find_vm(SMALL)
    host.guest_fs(SMALL).write_bytes("C:\\after.txt", b"written after the backup")
    for d in vm.disks:
        host.guest_device(vm, d.key).write(d.capacity - 3 * MiB, b"\xa5" * (MiB + 17))
    host.create_snapshot(vm, "after-backup")
    host.guest_device(vm, vm.disks[1].key).write(d.capacity - 5 * MiB, b"\x5a" * 4096)


def test_hotadd_restore_over_the_original_writes_its_own_disks(proxied: Any, url: str, tmp_path: Path,
                                                               capsys: Any, devices: Path) -> None:
    host = proxied
    backup_id = _backup(url, tmp_path, capsys)
    expected = _images(tmp_path, backup_id)
    _change_after_backup(host)
    original = host.find_vm(SMALL)
    moref, uuid = original.moref, original.uuid
    assert _disks(host, SMALL) != expected  # not vacuous
    args = ["restore", *_remote(url, tmp_path), "--backup", str(backup_id), "--vm", "--over", "-m", "hotadd",
            ]
    # a running VM is refused in one line, nothing changed (its snapshot is still there)
    assert main(args) == 4
    err = json.loads(capsys.readouterr().out)
    assert "powered on" in err["message"] and "\n" not in err["message"]
    assert [s.name for s in original.snapshots()] != [] and hot_added(host, "vcb-proxy") == []
    host.power_off(SMALL)
    mark = len(host.trace.events)
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["over_original"] and out["restored"] == SMALL and out["moref"] == moref
    vm = host.find_vm(SMALL)
    assert vm.moref == moref and vm.uuid == uuid and vm.snapshots() == [] and vm.power_state == "poweredOff"
    assert vm.memory_mb == original.memory_mb  # its own configuration is kept
    assert _disks(host, SMALL) == expected
    assert hot_added(host, "vcb-proxy") == [] and list((devices / "vcb-proxy").iterdir()) == []
    events = host.trace.events[mark:]
    adds = [e for e in events if e.kind == "disk.hotadd"]
    assert [e.vm for e in adds] == [moref, moref] and all(e.details["writable"] for e in adds)
    assert sum(e.details["bytes"] for e in events if e.kind == "disk.hotwrite") == out["bytes_uploaded"]
    assert not any(e.kind in ("vm.create", "vm.register", "vm.unregister", "vm.destroy") for e in events)
    host.power_on(vm)  # detached: its disks are its own again
    assert vm.guest is not None and not vm.guest.exists("C:\\after.txt")
    assert vm.guest.read_bytes("D:\\db\\big.mdf") == bytes(range(256)) * 2000


def test_a_failing_hotadd_restore_over_leaves_the_vm_registered_and_nothing_attached(
        proxied: Any, url: str, tmp_path: Path, capsys: Any, devices: Path) -> None:
    from vcbsim.conformance import check_trace

    host = proxied
    backup_id = _backup(url, tmp_path, capsys)
    host.power_off(SMALL)
    moref = host.find_vm(SMALL).moref
    host.faults.add(FaultRule("disk.write", SMALL, fault="NoDiskSpace", after=3))
    args = ["restore", *_remote(url, tmp_path), "--backup", str(backup_id), "--vm", "--over", "-m", "hotadd",
            "--trace", str(tmp_path / "proxy.jsonl")]
    assert main(args) == 4
    err = json.loads(capsys.readouterr().out)
    assert "ENOSPC" in err["message"] and "stays registered" in err["message"] and "\n" not in err["message"]
    assert host.find_vm(SMALL).moref == moref and hot_added(host, "vcb-proxy") == []
    assert list((devices / "vcb-proxy").iterdir()) == []
    host.faults.clear()
    # its documented failure state is one a new run finishes from
    assert main(args[:-2]) == 0
    capsys.readouterr()
    assert _disks(host, SMALL) == _images(tmp_path, backup_id)
    report = check_trace(host.trace.events, profile=host.profile.name)
    broken = {v.rule_id for v in report.violations if v.rule_id.startswith(("RST-", "TR-"))}
    assert broken == set(), [v.format() for v in report.violations]


def test_over_refuses_a_vm_whose_disks_differ_from_the_backup(proxied: Any, url: str, tmp_path: Path,
                                                              capsys: Any) -> None:
    host = proxied
    backup_id = _backup(url, tmp_path, capsys)
    host.power_off(SMALL)
    host.create_snapshot(SMALL, "kept")
    args = ["restore", *_remote(url, tmp_path), "--backup", str(backup_id), "--vm", "--over", "-m", "hotadd",
            "-a", "name:vcb-proxy"]
    assert main(args) == 2  # the proxy itself
    assert "proxy" in json.loads(capsys.readouterr().out)["message"]
    host.add_vm("other", disks=[4 * MiB])
    host.power_off("other")
    assert main([*args[:-1], "name:other"]) == 2
    msg = json.loads(capsys.readouterr().out)["message"]
    assert "disk" in msg and "\n" not in msg
    assert main([*args[:-2], "--set", "memsize=512"]) == 2  # only the disks are written over
    assert "--set" in json.loads(capsys.readouterr().out)["message"]
    assert [s.name for s in host.find_vm(SMALL).snapshots()] == ["kept"]


def test_hotadd_over_round_trips_the_snapshot() -> None:
    """Property: random guest writes before the backup snapshot, while it exists, and after the
    backup (some into a snapshot taken later); a restore over the powered-off VM written through
    the proxy's NBD devices gives disks equal to the disks as of the backup's snapshot."""
    from hypothesis import HealthCheck, given, settings

    from vcbsim.reference import BackupProxy, Catalog, VSphereHostClient
    from vcbsim.reference._hotaddrestore import restore_vm_hotadd_over
    from vcbsim.simulator import Host
    from vcbsim.simulator.soap import serve

    @settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(before=writes(), during=writes(), after=writes(), later=writes())
    def prop(before: list[Any], during: list[Any], after: list[Any], later: list[Any]) -> None:
        host = Host("esxi-7.0", seed=9)
        vm = host.add_vm("src", disks=list(SIZES))
        host.add_vm("vcb-proxy", disks=[8 * MiB], tools="not-installed")
        mark_proxy(host, "vcb-proxy")
        apply_writes(host, vm, before)
        expected = [host.disk_view(vm, d.key).read(0, d.capacity) for d in vm.disks]

        def after_snapshot(v: Any, step: str) -> None:
            if v is vm and step == "WF-1d":  # the snapshot exists: these go to the redo logs
                apply_writes(host, vm, during)

        host.on_quiesce_step(after_snapshot)
        with tempfile.TemporaryDirectory(prefix="vcbsim-ho-") as t, serve(host, port=0) as server, \
                VSphereHostClient(f"https://127.0.0.1:{server.port}/sdk", "user", "pass", insecure=True) as client, \
                Catalog(Path(t) / "medium") as cat:
            res = BackupProxy(client, Path(t) / "proxy", transport="hotadd").backup("name:src", "fullvm", catalog=cat)
            assert res.ok and res.backup_id is not None, res.summary()
            apply_writes(host, vm, after)
            host.create_snapshot(vm, "later")
            apply_writes(host, vm, later)
            host.power_off(vm)
            restore_vm_hotadd_over(cat, res.backup_id, client, "name:src")
        src = host.find_vm("src")
        assert [host.disk_view(src, d.key).read(0, d.capacity) for d in src.disks] == expected
        assert hot_added(host, "vcb-proxy") == [] and src.snapshots() == []
        assert "disk.hotwrite" in {e.kind for e in host.trace.events}

    prop()
