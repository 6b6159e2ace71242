"""Holds across a restart of a host kept in a datastore directory.

A hot-added disk is part of the proxy VM's configuration: a real host keeps it attached when
its management agent (hostd) restarts, so after a restart of the served host the disks are
attached again, with their device keys, SCSI units, locks and NBD devices, and a mount in one
process can be unmounted in another. An export lease is hostd's own object, held by its export
task: a restart ends it, and the VM it held is free again."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vcbsim.simulator import fault_name
from vcbsim.simulator._host import Host, MiB
from vcbsim.simulator._hotadd import hot_add, hot_add_file, hot_added, hot_remove, mark_proxy

PROFILE = "esxi-7.0"


@pytest.fixture
def devices() -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="vcbsim-ph-"))  # short: a socket path holds 107 bytes
    yield where
    shutil.rmtree(where, ignore_errors=True)


def restart(host: Host, directory: Path) -> Host:
    """The served host stops (its devices vanish with the process) and starts again."""
    assert host.store is not None
    host.holds.clear()
    host.store.close()
    return Host(PROFILE, datastore_dir=directory)


def build(directory: Path, devices: Path) -> Host:
    host = Host(PROFILE, datastore_dir=directory)
    vm = host.add_vm("src", disks=[8 * MiB, 4 * MiB], tools="not-installed")
    host.guest_device(vm, vm.disks[0].key).write(MiB, b"A" * 70_000)
    host.guest_device(vm, vm.disks[1].key).write(0, b"B" * 4096)
    host.add_vm("vcb-proxy", os_family="linux", disks=[8 * MiB], tools="not-installed")
    mark_proxy(host, "vcb-proxy", devices)
    return host


def _read(path: Path, export: str, size: int) -> bytes:
    from vcbsim.reference._nbdclient import NbdDisk

    with NbdDisk(path, export) as dev:
        return dev.read(0, size)


def test_hot_added_disks_are_attached_again_after_a_restart(tmp_path: Path, devices: Path) -> None:
    host = build(tmp_path / "ds", devices)
    vm = host.find_vm("src")
    snap = host.create_snapshot(vm, "_VCB-BACKUP_")
    expected = [host.disk_view(vm, d.key, snap).read(0, d.capacity) for d in vm.disks]
    host.guest_device(vm, vm.disks[0].key).write(MiB, b"after" * 100)  # into the redo log
    before = [(a.proxy_key, a.unit, a.disk, a.snapshot, a.file) for a in hot_add(host, "vcb-proxy", vm, snap.moref)]
    host = restart(host, tmp_path / "ds")
    atts = hot_added(host, "vcb-proxy")
    assert [(a.proxy_key, a.unit, a.disk, a.snapshot, a.file) for a in atts] == before
    assert len(host.recovery_report.hot_added) == 2 and host.recovery_report.clean
    # the proxy's guest reads them through its devices as before the restart
    for att, data in zip(atts, expected, strict=True):
        assert att.export is not None and _read(att.export.path, att.device, att.size) == data
    # still locked: the commit of the snapshot fails and leaves the consolidation pending
    vm = host.find_vm("src")
    with pytest.raises(Exception, match="locked") as err:
        host.remove_snapshot(vm, snap.moref)
    assert fault_name(err.value) == "FileLocked"
    # detached in this process (the proxy's unmount), then consolidation finishes it
    gone = hot_remove(host, "vcb-proxy", vm)
    assert len(gone) == 2 and all(not a.export.path.exists() for a in gone if a.export is not None)
    if vm.snapshots():
        host.remove_snapshot(vm, snap.moref)
    if vm.consolidation_needed:
        host.consolidate_disks(vm)
    assert vm.snapshots() == [] and not vm.consolidation_needed
    host = restart(host, tmp_path / "ds")
    assert hot_added(host, "vcb-proxy") == [] and host.recovery_report.hot_added == []


def test_a_writable_attach_survives_a_restart_and_keeps_its_owner_locked(tmp_path: Path, devices: Path) -> None:
    from vcbsim.reference._nbdclient import NbdDisk
    from vcbsim.simulator._vmlifecycle import DiskSpec

    host = build(tmp_path / "ds", devices)
    fresh = host.create_vm("fresh", datastore="datastore1", disks=[DiskSpec(capacity=4 * MiB)])
    att = hot_add_file(host, "vcb-proxy", fresh.disks[0].base_name)
    assert att is not None and att.writable
    host = restart(host, tmp_path / "ds")
    (att,) = hot_added(host, "vcb-proxy")
    assert att.writable and att.export is not None
    with pytest.raises(Exception, match="locked"):
        host.power_on("fresh")
    with NbdDisk(att.export.path, att.device) as dev:
        dev.write(0, b"R" * 8192)
        dev.flush()
    hot_remove(host, "vcb-proxy")
    fresh = host.find_vm("fresh")
    assert host.disk_view(fresh, fresh.disks[0].key).read(0, 8192) == b"R" * 8192
    host.power_on(fresh)


def test_a_disk_whose_vm_is_gone_is_dropped_and_reported(tmp_path: Path, devices: Path) -> None:
    host = build(tmp_path / "ds", devices)
    vm = host.find_vm("src")
    snap = host.create_snapshot(vm, "s")
    hot_add(host, "vcb-proxy", vm, snap.moref)
    host.power_off(vm)
    host.unregister_vm(vm)  # allowed while its disks are attached; its folder stays
    host = restart(host, tmp_path / "ds")
    assert hot_added(host, "vcb-proxy") == []
    assert [r for r in host.recovery_report.repairs if "not attached again" in r and "no longer" in r]
    proxy = host.find_vm("vcb-proxy")
    state = json.loads((tmp_path / "ds" / proxy.datastore / proxy.name / f"{proxy.name}.vcbsim.json").read_text())
    assert state["hotadded"] == []


def test_an_export_lease_ends_with_a_restart_as_hostd_drops_it(tmp_path: Path, devices: Path) -> None:
    from vcbsim.simulator._export import open_export

    host = build(tmp_path / "ds", devices)
    host.power_off("src")
    lease = open_export(host, host.find_vm("src").moref, None)
    lease.ready()
    with pytest.raises(Exception) as err:
        host.power_on("src")
    assert fault_name(err.value) == "TaskInProgress"
    host = restart(host, tmp_path / "ds")
    assert len(host.holds) == 0
    host.power_on("src")  # nothing holds it: the lease and its task went with hostd
    assert host.find_vm("src").power_state == "poweredOn"


def test_a_hotadd_mount_in_one_process_is_unmounted_in_another(tmp_path: Path, capsys: Any) -> None:
    """``vcbsim mount -m hotadd`` (a process that ends with the disks attached, as a held mount
    leaves them) then ``vcbsim unmount`` in another: the unmount finds them attached on the
    host, detaches them, then removes the snapshot; nothing is left held or locked."""
    import os
    import subprocess
    import sys

    from vcbsim.conformance import check_trace
    from vcbsim.reference import main
    from vcbsim.simulator import open_host
    from vcbsim.simulator._trace import load_jsonl

    state = tmp_path / "s"
    common = ["--state", str(state), "--json", "--no-progress"]
    mounted = subprocess.run(
        [sys.executable, "-m", "vcbsim", "mount", "-a", "name:rhel5-web", "-r", str(tmp_path / "proxy"), "-t", "fullvm",
         "-m", "hotadd", "--proxy-vm", "win2003-sql", "--trace", str(tmp_path / "mount.jsonl"), *common],
        env={**os.environ, "PYTHONSAFEPATH": "1"}, capture_output=True, timeout=300, check=False)
    assert mounted.returncode == 0, mounted.stderr.decode()[-2000:]
    out = json.loads(mounted.stdout)
    assert out["status"] == "mounted"
    host = open_host(state / "datastore")
    try:
        held = hot_added(host, "win2003-sql")
        assert len(held) == len(host.find_vm("rhel5-web").disks) and all(a.export is not None for a in held)
    finally:
        host.holds.clear()
        assert host.store is not None
        host.store.close()
    assert main(["unmount", "-r", out["path"], "--trace", str(tmp_path / "unmount.jsonl"), *common]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["status"] == "ok" and [s["op"] for s in done["steps"]][0] == "release-disks"
    host = open_host(state / "datastore")
    try:
        assert hot_added(host, "win2003-sql") == [] and host.find_vm("rhel5-web").snapshots() == []
        assert not host.find_vm("rhel5-web").consolidation_needed
    finally:
        assert host.store is not None
        host.store.close()
    events = load_jsonl(tmp_path / "mount.jsonl") + load_jsonl(tmp_path / "unmount.jsonl")
    report = check_trace(events, profile="esx-3.5u2")
    assert not [v for v in report.violations if v.rule_id.startswith(("TR-", "CMT-"))], \
        [v.format() for v in report.violations]
