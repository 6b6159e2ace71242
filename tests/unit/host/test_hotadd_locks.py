"""Hot-add and the host's lock model: a snapshot's disks attached to the proxy VM lock the
target's commit (FileLocked), per profile; detaching and consolidating fixes it. Each attached
disk is an NBD device of the proxy's guest while it is attached."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyVmomi import vim

from vcbsim.simulator import Host, InvalidInputError
from vcbsim.simulator._hotadd import hot_add, hot_added, hot_remove, mark_proxy

MiB = 1 << 20


def _host(profile: str) -> Host:
    host = Host(profile, seed=3)
    host.add_vm("target", disks=[16 * MiB, 8 * MiB])
    host.add_vm("proxy", disks=[8 * MiB])
    mark_proxy(host, "proxy")
    return host


def _write(host: Host, vm: str, data: bytes) -> None:
    v = host.find_vm(vm)
    host.guest_device(v, v.disks[0].key).write(MiB, data)


@pytest.mark.parametrize("profile", ["esx-3.5u2", "esxi-7.0"])
def test_reads_through_the_proxy_are_the_snapshot_and_are_traced(profile: str) -> None:
    host = _host(profile)
    _write(host, "target", b"before" * 100)
    snap = host.create_snapshot("target", "backup")
    _write(host, "target", b"AFTER!" * 100)
    disks = hot_add(host, "proxy", "target", snap.moref)
    assert [d.disk for d in disks] == [d.key for d in host.find_vm("target").disks]
    assert disks[0].read(MiB, 600) == b"before" * 100
    assert hot_added(host, "proxy") == disks
    hot_remove(host, "proxy")
    kinds = [e.kind for e in host.trace.events if e.kind.startswith("disk.hot")]
    assert kinds == ["disk.hotadd", "disk.hotadd", "disk.hotread", "disk.hotremove", "disk.hotread", "disk.hotremove"]
    read = next(e for e in host.trace.events if e.kind == "disk.hotread")
    assert read.details["bytes"] == 600 and read.details["proxy"] == host.find_vm("proxy").moref
    assert read.vm == host.find_vm("target").moref


def test_on_7_0_a_commit_while_attached_fails_and_leaves_consolidation_needed() -> None:
    host = _host("esxi-7.0")
    _write(host, "target", b"x" * 1000)
    snap = host.create_snapshot("target", "backup")
    _write(host, "target", b"y" * 1000)
    hot_add(host, "proxy", "target", snap.moref)
    with pytest.raises(vim.fault.FileLocked, match="locked"):
        host.remove_snapshot("target", snap.moref)
    vm = host.find_vm("target")
    assert vm.snapshots() == [] and vm.consolidation_needed
    with pytest.raises(vim.fault.FileLocked):
        host.consolidate_disks("target")  # still attached: nothing changes
    assert vm.consolidation_needed
    hot_remove(host, "proxy")
    host.consolidate_disks("target")
    assert not vm.consolidation_needed
    assert host.read_disk("target", vm.disks[0].key, MiB, 1000) == b"y" * 1000
    assert len(vm.disks[0].disk.chain()) == 1


def test_on_3_5_the_failed_commit_leaves_the_consolidate_helper() -> None:
    host = _host("esx-3.5u2")
    snap = host.create_snapshot("target", "backup")
    hot_add(host, "proxy", "target", snap.moref)
    with pytest.raises(vim.fault.FileLocked):
        host.remove_snapshot("target", snap.moref)
    vm = host.find_vm("target")
    assert [s.name for s in vm.snapshots()] == ["Consolidate Helper-0"]
    hot_remove(host, "proxy", "target")
    host.remove_snapshot("target", vm.snapshots()[0].moref)
    assert vm.snapshots() == [] and len(vm.disks[0].disk.chain()) == 1


def test_detached_first_the_commit_works() -> None:
    host = _host("esxi-7.0")
    snap = host.create_snapshot("target", "backup")
    hot_add(host, "proxy", "target", snap.moref)
    hot_remove(host, "proxy")
    host.remove_snapshot("target", snap.moref)
    assert not host.find_vm("target").consolidation_needed


def test_misuse_is_refused_with_one_clear_line() -> None:
    host = _host("esxi-7.0")
    snap = host.create_snapshot("target", "backup")
    with pytest.raises(InvalidInputError, match="backup proxy"):
        hot_add(host, "target", "proxy", snap.moref)  # target is not marked
    with pytest.raises(InvalidInputError, match="another VM"):
        hot_add(host, "proxy", "proxy", snap.moref)
    host.power_off("proxy")
    with pytest.raises(vim.fault.InvalidPowerState):
        hot_add(host, "proxy", "target", snap.moref)
    host.power_on("proxy")
    hot_add(host, "proxy", "target", snap.moref)
    with pytest.raises(vim.fault.FileLocked):
        hot_add(host, "proxy", "target", snap.moref)


def test_serve_refuses_an_unknown_proxy_vm_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from vcbsim.simulator.soap._cli import main

    assert main(["--port", "0", "--http", "--proxy-vm", "nosuch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--proxy-vm nosuch" in err[0] and "win2003-sql" in err[0]


def test_an_attached_disk_is_a_device_of_the_proxy_guest_until_it_is_removed(tmp_path: Path) -> None:
    """Each attached disk is an NBD socket ``<devices>/scsi0:<unit>`` that reads the snapshot
    (qemu-img reads it too), refuses writes, and goes with the detach, cutting a reader off;
    ``disk.hotread`` counts what crossed it."""
    import shutil
    import subprocess
    import tempfile

    from vcbsim.reference._nbdclient import NbdDisk, NbdError

    host = _host("esxi-7.0")
    root = Path(tempfile.mkdtemp(prefix="vcbsim-ha-"))
    try:
        devices = mark_proxy(host, "proxy", root)
        assert devices == root / "proxy" and host.find_vm("proxy").extra_config["vcbsim.guestDevices"] == str(devices)
        _write(host, "target", b"before" * 100)
        snap = host.create_snapshot("target", "backup")
        _write(host, "target", b"AFTER!" * 100)
        first, second = hot_add(host, "proxy", "target", snap.moref)
        assert first.export is not None and first.export.path == devices / "scsi0:1" == devices / first.device
        assert sorted(p.name for p in devices.iterdir()) == ["scsi0:1", "scsi0:2"]
        reader = NbdDisk(first.export.path, first.device)
        assert reader.read_only and reader.read(MiB, 600) == b"before" * 100
        with pytest.raises(NbdError, match="EPERM"):
            reader.write(0, b"x")
        if shutil.which("qemu-img"):
            out = tmp_path / "d.raw"
            subprocess.run(["qemu-img", "convert", "-O", "raw", f"nbd+unix:///scsi0:2?socket={devices}/scsi0:2",
                            str(out)], check=True, capture_output=True, timeout=60)
            view = host.disk_view("target", second.disk, snap.moref)
            assert out.read_bytes() == view.read(0, view.size)
        hot_remove(host, "proxy")
        assert list(devices.iterdir()) == []
        with pytest.raises(NbdError, match="went away"):
            reader.read(0, 512)
        reader.close()
        read = {e.details["disk"]: e.details["bytes"] for e in host.trace.events if e.kind == "disk.hotread"}
        assert read[first.disk] == 600  # what the reader asked, over the socket
        assert read[second.disk] >= (8 * MiB if shutil.which("qemu-img") else 0)  # qemu-img probes a sector too
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_serve_refuses_proxy_devices_without_a_proxy_vm_or_too_long(capsys: pytest.CaptureFixture[str]) -> None:
    from vcbsim.simulator.soap._cli import main

    assert main(["--port", "0", "--http", "--proxy-devices", "/tmp/d"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--proxy-vm" in err[0]
    assert main(["--port", "0", "--http", "--proxy-vm", "win2003-sql", "--proxy-devices", "/tmp/" + "d" * 120]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "107 bytes" in err[0]
