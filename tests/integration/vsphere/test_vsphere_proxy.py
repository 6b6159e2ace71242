"""The reference proxy through ``VSphereHostClient`` against the served demo host: image and
file-level backups, a pre-freeze failure, the CLI with ``--server``, and parity with the
in-process binding (same catalogs, same file sets, same job results)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim, vmodl

from vcbsim.conformance._checker import check_trace
from vcbsim.reference import (
    SNAPSHOT_NAME,
    BackupProxy,
    Catalog,
    InProcessHostClient,
    VSphereHostClient,
    main,
    read_export_catalog,
)
from vcbsim.simulator import NotFoundError
from vcbsim.simulator.disk import write_vmdk

needs_qemu = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img not installed (qemu-utils)")


def left_on_proxy(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.name != ".vcb-sessions")


# -- the seam itself -----------------------------------------------------------------------------


def test_inventory_matches_the_in_process_binding(client: VSphereHostClient, twin: InProcessHostClient) -> None:
    for selector in ("name:win2003-sql", "name:win-small", "ipaddr:192.0.2.11", "moref:vm-3"):
        assert client.find_vm(selector) == twin.find_vm(selector), selector
    vm = client.find_vm("name:win2003-sql")
    assert client.find_vm(f"uuid:{vm.uuid}").moref == vm.moref
    assert [v.letter for v in vm.volumes] == ["C", "D", None]  # the RECOVERY volume has no letter
    assert client.read_vmx(vm.moref) == twin.read_vmx(vm.moref)
    assert client.host_name == twin.host_name
    assert abs(client.clock.now - twin.clock.now) < 1e-3
    with pytest.raises(NotFoundError):
        client.find_vm("name:no-such-vm")
    with pytest.raises(NotFoundError):
        client.find_vm("moref:vm-99")
    with pytest.raises(NotFoundError):
        client.remove_snapshot(vm.moref, "snapshot-99")


def test_without_guest_credentials_letters_follow_windows_default_order(url: str) -> None:
    with VSphereHostClient(url, "user", "pass", insecure=True) as bare:
        vm = bare.find_vm("name:win2003-sql")
    assert [v.letter for v in vm.volumes] == ["C", "D", "E"]


def test_snapshot_calls_and_faults_are_the_hosts(host: Any, client: VSphereHostClient) -> None:
    snap = client.create_snapshot("vm-3", "manual", description="d", quiesce=False)
    assert [s.id for s in client.list_snapshots("vm-3")] == [snap.id]
    assert (snap.name, snap.description, snap.quiesced) == ("manual", "d", False)
    disk = client.open_disk("vm-3", 2001, snap.id)
    view = host.disk_view("vm-3", 2001, snap.id)
    assert disk.size == view.size
    assert disk.read(0, 1 << 20) == view.read(0, 1 << 20)
    assert disk.read(48 * 1024**2 - 100, 70_000) == view.read(48 * 1024**2 - 100, 70_000)
    with pytest.raises(vmodl.fault.NotSupported):  # no changed block tracking on ESX 3.5
        client.query_changed_areas("vm-3", snap.id, 2000, 0, "*")
    host.add_fault(operation="snapshot.remove", fault="FileLocked")
    with pytest.raises(vim.fault.FileLocked):
        client.remove_snapshot("vm-3", snap.id)
    client.remove_snapshot("vm-3", snap.id)
    assert client.list_snapshots("vm-3") == [] and host.find_vm("vm-3").snapshots() == []


# -- image level -----------------------------------------------------------------------------------


@needs_qemu
def test_image_export_converts_to_the_disk_as_of_the_snapshot(
    host: Any, client: VSphereHostClient, proxy_root: Path, tmp_path: Path, helpers: Any
) -> None:
    proxy = BackupProxy(client, proxy_root)
    res = proxy.mount(f"name:{helpers.SMALL}", "fullvm")
    assert res.status == "mounted", res.summary()
    vm = host.find_vm(f"name:{helpers.SMALL}")
    assert [s.name for s in vm.snapshots()] == [SNAPSHOT_NAME]
    host.guest_fs(vm).write_bytes("C:\\Windows\\system.ini", b"written after the snapshot")
    export = Path(res.path or "")
    cat = read_export_catalog(export / "catalog")
    assert cat["snapshot"] == res.snapshot_id and cat["host"] == host.name
    for d in vm.disks:
        vmdk = export / cat[f"disk.{d.key}.filename"]
        subprocess.run(["qemu-img", "check", str(vmdk)], check=True, capture_output=True)
        raw = tmp_path / f"{d.key}.raw"
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(vmdk), str(raw)], check=True, capture_output=True)
        assert raw.read_bytes() == host.disk_view(vm, d.key, res.snapshot_id).read(0, d.capacity), d.key
    done = proxy.unmount(export)
    assert done.status == "ok", done.summary()
    assert vm.snapshots() == [] and all(len(d.disk.chain()) == 1 for d in vm.disks)
    assert host.guest_fs(vm).read_bytes("C:\\Windows\\system.ini") == b"written after the snapshot"
    assert left_on_proxy(proxy_root) == []


# -- file level ------------------------------------------------------------------------------------


def test_file_backup_has_the_snapshots_files_and_a_write_during_it_reaches_the_disk(
    host: Any, client: VSphereHostClient, proxy_root: Path, tmp_path: Path, helpers: Any
) -> None:
    vm = host.find_vm("name:win2003-sql")
    seen: dict[str, Any] = {}

    def during(ev: Any) -> None:  # the guest keeps working while its volumes are mounted
        if ev.kind == "mount" and ev.details.get("kind") == "file" and "files" not in seen:
            (snap,) = vm.snapshots()
            seen["files"] = helpers.guest_files(host.guest_fs_at(vm, snap))
            host.guest_fs(vm).write_bytes("D:\\Data\\during-backup.txt", b"written during the backup")

    unsubscribe = client.trace.subscribe(during)
    try:
        with Catalog(tmp_path / "medium") as catalog:
            res = BackupProxy(client, proxy_root).backup("name:win2003-sql", "file", catalog=catalog)
            assert res.ok, res.summary()
            entries = catalog.entries(res.backup_id or 0)
            restored = catalog.restore_files(res.backup_id or 0, "D:\\Data", tmp_path / "restored")
    finally:
        unsubscribe()
    files = {k: e for k, e in entries.items() if not e.is_dir}
    assert sorted(files) == sorted(seen["files"])  # exactly the snapshot's files of C: and D:
    assert not any("during-backup" in k for k in entries) and not any("recovery" in k for k in entries)
    assert res.letters.keys() == {"C", "D"} and res.skipped_volumes == ["disk 2001 partition 1 (RECOVERY)"]
    for f in restored:  # the medium holds the snapshot's bytes
        rel = "\\".join(f.relative_to(tmp_path / "restored").parts[1:])
        assert f.read_bytes() == seen["files"][f"d:\\{rel}".casefold()]
    assert len(restored) == 3
    # committed: the write made during the backup is on the live disk, no redo log is left
    assert host.guest_fs(vm).read_bytes("D:\\Data\\during-backup.txt") == b"written during the backup"
    assert vm.snapshots() == [] and all(len(d.disk.chain()) == 1 for d in vm.disks)
    assert left_on_proxy(proxy_root) == []
    kinds = [e.kind for e in client.trace.events]
    assert kinds.count("mount") == 2 and kinds.count("unmount") == 2
    # the proxy's own trace and the host's both pass the conformance checker
    for events in (client.trace.events, host.trace.events):
        report = check_trace(events)
        assert report.ok, "\n".join(v.format() for v in report.violations)


def test_pre_freeze_failure_gives_the_in_process_job_result(
    host: Any, client: VSphereHostClient, twin: InProcessHostClient, tmp_path: Path, helpers: Any
) -> None:
    script = helpers.SCRIPTS_D + "\\15-x.bat"
    results = []
    for h, c, name in ((host, client, "vsphere"), (twin.host, twin, "inprocess")):
        h.guest_fs(h.find_vm("name:win2003-sql")).write_text(script, "[freeze] exit 3\r\n")
        with Catalog(tmp_path / name / "medium") as catalog:
            res = BackupProxy(c, tmp_path / name / "proxy").backup("name:win2003-sql", "file", catalog=catalog)
            assert catalog.backups("win2003-sql") == []
        assert h.find_vm("name:win2003-sql").snapshots() == [], name
        assert left_on_proxy(tmp_path / name / "proxy") == [], name
        results.append(res)
    remote, local = results
    assert (remote.status, remote.failed_step, remote.cause_step, remote.fault) == (
        "failed", "WF-1", "WF-1a", "ApplicationQuiesceFault"
    )
    assert (remote.status, remote.failed_step, remote.cause_step, remote.fault, remote.reason) == (
        local.status, local.failed_step, local.cause_step, local.fault, local.reason
    )
    assert remote.steps == local.steps


# -- the CLI ---------------------------------------------------------------------------------------


def test_cli_backup_mount_and_unmount_with_server(
    host: Any, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], helpers: Any
) -> None:
    remote = ["--server", url, "--user", "user", "--password", "pass", "--insecure",
              "--guest-user", "Administrator", "--guest-password", "vmware",
              "--state", str(tmp_path / "state"), "--json", "--no-progress"]  # fmt: skip
    assert main(["backup", *remote, "-a", "name:win2003-sql", "-t", "file"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["status"] == "ok" and run["kind"] == "full" and sorted(run["letters"]) == ["C", "D"]
    assert main(["mount", *remote, "-a", f"name:{helpers.SMALL}", "-t", "fullvm"]) == 0
    mounted = json.loads(capsys.readouterr().out)
    assert mounted["status"] == "mounted" and Path(mounted["path"], "catalog").is_file()
    assert [s.name for s in host.find_vm(f"name:{helpers.SMALL}").snapshots()] == [SNAPSHOT_NAME]
    assert main(["unmount", *remote, "-r", mounted["path"]]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "ok"
    assert host.find_vm(f"name:{helpers.SMALL}").snapshots() == []
    assert not (tmp_path / "state" / "host.pickle").exists()  # the host is the endpoint's
    # a wrong password is the host's InvalidLogin, reported, not a traceback
    bad = ["--server", url, "--user", "user", "--password", "wrong", "--insecure", "--json",
           "--state", str(tmp_path / "state")]  # fmt: skip
    assert main(["backup", *bad, "-a", "name:win2003-sql"]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == "InvalidLogin"


# -- parity --------------------------------------------------------------------------------------------


def _catalog(client: Any, where: Path, selector: str, kind: str) -> tuple[Any, dict[str, Any], list[Any]]:
    with Catalog(where / "medium") as catalog:
        res = BackupProxy(client, where / "proxy").backup(selector, kind, catalog=catalog)
        assert res.ok, res.summary()
        rec = catalog.backup(res.backup_id or 0)
        entries = {
            k: (e.path, e.is_dir, e.size, e.sha256, e.copied, None if k.endswith(":\\") else e.mtime)
            for k, e in catalog.entries(rec.id).items()
        }  # a volume root's mtime is the proxy directory's
        images = catalog.image_files(rec.id)
    times = tuple(round(t or 0, 3) for t in (rec.snapshot_time, rec.started, rec.finished))
    record = (rec.vm_name, rec.vm_uuid, rec.kind, rec.status, rec.files_total, rec.files_copied, rec.bytes_copied, times)
    return record, entries, images


@pytest.mark.parametrize(("selector", "kind"), [("name:win2003-sql", "file"), ("name:win-small", "fullvm")])
def test_the_same_backup_in_process_and_over_vsphere_gives_the_same_catalog(
    client: VSphereHostClient, twin: InProcessHostClient, tmp_path: Path, selector: str, kind: str
) -> None:
    remote = _catalog(client, tmp_path / "vsphere", selector, kind)
    local = _catalog(twin, tmp_path / "inprocess", selector, kind)
    assert remote[0] == local[0]
    assert remote[1] == local[1]
    assert remote[2] == local[2]
    assert (len(remote[1]) > 5) if kind == "file" else (len(remote[2]) >= 3)


# -- changed block tracking (ESXi 7.0 profile) -------------------------------------------------------


def test_changed_areas_come_from_query_changed_disk_areas(tmp_path: Path) -> None:
    from vcbsim.simulator._host import Host
    from vcbsim.simulator.soap import serve

    hosts = [Host.demo("esxi-7.0", seed=7) for _ in range(2)]
    twin = InProcessHostClient(hosts[1])
    for h in hosts:
        h.reconfigure("vm-1", change_tracking=True)
    with serve(hosts[0]) as running, VSphereHostClient(
        f"https://127.0.0.1:{running.port}/sdk", "user", "pass", insecure=True
    ) as client:
        for c in (client, twin):  # the first stun turns tracking on
            c.create_snapshot("vm-1", "on", quiesce=False)
        first = [c.create_snapshot("vm-1", "a", quiesce=False) for c in (client, twin)]
        assert client.allocated_areas("vm-1", 2000, first[0].id) == twin.allocated_areas("vm-1", 2000, first[1].id)
        config = vim.vm.Snapshot(first[0].id, client.si._stub).config
        (change_id,) = [d.backing.changeId for d in config.hardware.device if d.key == 2000]
        for h in hosts:
            h.guest_fs("vm-1").write_bytes("C:\\new.bin", b"n" * 300_000)
        second = [c.create_snapshot("vm-1", "b", quiesce=False) for c in (client, twin)]
        changed = client.query_changed_areas("vm-1", second[0].id, 2000, 0, change_id)
        assert changed == twin.query_changed_areas("vm-1", second[1].id, 2000, 0, change_id)
        assert sum(n for _, n in changed) >= 300_000
        with pytest.raises(vmodl.fault.InvalidArgument):  # a foreign change id, as the host says
            client.query_changed_areas("vm-1", second[0].id, 2000, 0, "52 00/1")
        # ESXi 7.0 redo logs are SEsparse: read through their grain tables down to the base
        disk = client.open_disk("vm-1", 2000, second[0].id)
        view = hosts[0].disk_view("vm-1", 2000, second[0].id)
        for off, n in changed[:8] + [(0, 1 << 20)]:
            assert disk.read(off, n) == view.read(off, n), off


@needs_qemu
def test_esxi_image_backup_over_sesparse_redo_logs_with_cbt(tmp_path: Path) -> None:
    """ESXi 7.0: SEsparse redo logs, allocated areas from changed block tracking."""
    from vcbsim.simulator._host import Host
    from vcbsim.simulator.soap import serve

    hosts = [Host.demo("esxi-7.0", seed=7) for _ in range(2)]
    for h in hosts:
        h.reconfigure("vm-2", change_tracking=True)
        h.create_snapshot("vm-2", "user", quiesce=False)  # a user's snapshot: the chain is deeper
        h.guest_fs("vm-2").write_bytes("/var/www/index.html", b"<html>after the user's snapshot</html>")
    twin = InProcessHostClient(hosts[1])
    with serve(hosts[0]) as running, VSphereHostClient(
        f"https://127.0.0.1:{running.port}/sdk", "user", "pass", insecure=True
    ) as client:
        proxy = BackupProxy(client, tmp_path / "proxy")
        res = proxy.mount("name:rhel5-web", "fullvm")
        assert res.status == "mounted", res.summary()
        export = Path(res.path or "")
        cat = read_export_catalog(export / "catalog")
        d = hosts[0].find_vm("vm-2").disks[0]
        expected = tmp_path / "expected.vmdk"
        write_vmdk(hosts[0].disk_view("vm-2", d.key, res.snapshot_id), expected, split=False)
        same = subprocess.run(["qemu-img", "compare", str(export / cat[f"disk.{d.key}.filename"]), str(expected)],
                              capture_output=True, text=True)  # fmt: skip
        assert same.returncode == 0, same.stdout + same.stderr
        remote = {p.name: p.read_bytes() for p in export.iterdir()}
        assert proxy.unmount(export).status == "ok"
    local_proxy = BackupProxy(twin, tmp_path / "twin")
    local = local_proxy.mount("name:rhel5-web", "fullvm")
    assert {p.name: p.read_bytes() for p in Path(local.path or "").iterdir()} == remote  # byte for byte
    assert local_proxy.unmount(Path(local.path or "")).status == "ok"
    assert [s.name for s in hosts[0].find_vm("vm-2").snapshots()] == ["user"]


# host-side rules go to the host (served or in process); proxy-side rules to the proxy's injector
FAILURES = {
    "sync-vss-failure": ("host", {"operation": "quiesce.engage"}),
    "snapshot-timeout": ("host", {"operation": "snapshot.create", "delay": 30.0}),
    "export-failure": ("proxy", {"operation": "export", "fault": "NoDiskSpace"}),
    "mount-failure": ("proxy", {"operation": "mount", "target": "win-small:D", "fault": "NoDiskSpace"}),
    "copy-failure": ("proxy", {"operation": "copy", "target": "win-small:*", "fault": "NoDiskSpace", "after": 1}),
    "unmount-failure": ("proxy", {"operation": "unmount", "target": "win-small:*", "fault": "InvalidState"}),
    "remove-failure": ("host", {"operation": "snapshot.remove", "fault": "FileLocked", "times": 2}),
}


#: Known differences between the bindings (each an xfail that must start passing when fixed).
GAPS: dict[str, str] = {}


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=GAPS[c])) if c in GAPS else c for c in sorted(FAILURES)],
)
def test_failure_paths_give_the_in_process_job_results(
    case: str, host: Any, client: VSphereHostClient, twin: InProcessHostClient, tmp_path: Path, helpers: Any
) -> None:
    side, rule = FAILURES[case]
    kind = "fullvm" if case == "export-failure" else "file"
    results = []
    for h, c, name in ((host, client, "vsphere"), (twin.host, twin, "inprocess")):
        if side == "host" or c is twin:
            h.add_fault(**rule)
        else:
            client.faults.add(**rule)
        with Catalog(tmp_path / name / "medium") as catalog:
            res = BackupProxy(c, tmp_path / name / "proxy").backup(f"name:{helpers.SMALL}", kind, catalog=catalog)
        vm = h.find_vm(f"name:{helpers.SMALL}")
        if case != "remove-failure":  # a snapshot that cannot be removed stays for the next run
            assert vm.snapshots() == [], name
            assert all(len(d.disk.chain()) == 1 for d in vm.disks), name
        results.append(res)
    remote, local = results
    assert remote.status == "failed", remote.summary()
    assert (remote.failed_step, remote.cause_step, remote.fault, remote.reason) == (
        local.failed_step, local.cause_step, local.fault, local.reason
    )
    assert remote.steps == local.steps


def test_letters_reported_by_vmware_tools_in_guest_disk_are_used() -> None:
    """A real host's Tools report ``guest.disk`` (path, capacity, the virtual disk it is on)."""
    MiB = 1024**2
    found = [(2000, 0, 100 * MiB, "SYSTEM", None), (2001, 0, 50 * MiB, "DATA", None), (2001, 1, 30 * MiB, "R", None)]
    mapping = vim.vm.GuestInfo.VirtualDiskMapping
    reported = [
        vim.vm.GuestInfo.DiskInfo(diskPath="C:\\", capacity=99 * MiB, mappings=[mapping(key=2000)]),
        vim.vm.GuestInfo.DiskInfo(diskPath="F:\\", capacity=49 * MiB, mappings=[mapping(key=2001)]),
    ]
    assert VSphereHostClient._places_from_guest_disk(reported, found, True) == {(2000, 0): "C", (2001, 0): "F"}
    # without mappings (older hosts) the capacity picks the partition; Linux paths are mount points
    linux = [vim.vm.GuestInfo.DiskInfo(diskPath="/var/www", capacity=29 * MiB),
             vim.vm.GuestInfo.DiskInfo(diskPath="/", capacity=90 * MiB)]  # fmt: skip
    assert VSphereHostClient._places_from_guest_disk(linux, found, False) == {(2001, 1): "/var/www", (2000, 0): "/"}
