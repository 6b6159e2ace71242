"""Hot-add and the host's lock model: a snapshot's disks attached to the proxy VM lock the
target's commit (FileLocked), per profile; detaching and consolidating fixes it."""

from __future__ import annotations

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
