"""The reference proxy on the real simulator: exports, mounts, failure paths, crash recovery."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vcbsim.conformance._checker import check_trace
from vcbsim.reference import (
    SNAPSHOT_NAME,
    BackupProxy,
    Catalog,
    InProcessHostClient,
    UnsupportedGuestError,
    read_export_catalog,
)
from vcbsim.simulator import InvalidInputError, NotFoundError, SimulatedCrash, StateError

QEMU = pytest.mark.skipif(
    subprocess.run(["which", "qemu-img"], capture_output=True).returncode != 0, reason="qemu-img not installed"
)


def snapshots(host: Any, name: str = "win1") -> list[Any]:
    return host.find_vm(f"name:{name}").snapshots()


def exposed(root: Path) -> list[str]:
    """What is left on the proxy besides the (empty) session directory."""
    if not root.exists():
        return []
    left = sorted(p.name for p in root.iterdir() if p.name != ".vcb-sessions")
    sessions = root / ".vcb-sessions"
    if sessions.exists():
        left += [f".vcb-sessions/{p.name}" for p in sessions.iterdir()]
    return left


def assert_trace_ok(host: Any) -> None:
    report = check_trace(host.trace.events)
    assert report.ok, "\n".join(v.format() for v in report.violations)


# -- selectors ---------------------------------------------------------------------------


def test_selectors_find_the_same_vm(client: InProcessHostClient, host: Any) -> None:
    vm = host.find_vm("name:win1")
    for sel in ("name:win1", f"uuid:{vm.uuid}", "ipaddr:10.0.0.11", f"moref:{vm.moref}"):
        assert client.find_vm(sel).moref == vm.moref
    with pytest.raises(NotFoundError):
        client.find_vm("name:WIN1")  # name: is exact, case included (R55)
    with pytest.raises(InvalidInputError):
        client.find_vm("win1")
    host.power_off(vm)
    with pytest.raises(NotFoundError):
        client.find_vm("ipaddr:10.0.0.11")  # the IP comes from Tools: only while running


# -- image-level export --------------------------------------------------------------------


@QEMU
@pytest.mark.parametrize("split", [True, False], ids=["2gb-split", "monolithic"])
def test_image_export_is_read_by_qemu_img_and_equals_the_snapshot(
    host: Any, client: InProcessHostClient, tmp_path: Path, split: bool
) -> None:
    proxy = BackupProxy(client, tmp_path / "proxy", split=split)
    res = proxy.mount("name:win1", "fullvm")
    assert res.status == "mounted", res.summary()
    vm = host.find_vm("name:win1")
    # the guest keeps writing after the snapshot: the export must not see it
    vm.guest.write_bytes("C:\\Windows\\system.ini", b"changed after the snapshot")
    export = Path(res.path or "")
    assert export == tmp_path / "proxy" / "win1-fullVM"
    names = sorted(p.name for p in export.iterdir())
    assert "win1.vmx" in names and "catalog" in names
    assert ("win1-s001.vmdk" in names) is split
    cat = read_export_catalog(export / "catalog")
    assert cat["display_name"] == "win1" and cat["uuid"] == vm.uuid
    vmx = (export / "win1.vmx").read_text()
    assert 'scsi0:0.fileName = "win1.vmdk"' in vmx and 'scsi0:1.fileName = "win1_1.vmdk"' in vmx
    assert "-000001.vmdk" in vm.vmx_text()  # the host's .vmx names the redo logs meanwhile
    assert vmx.replace("win1.vmdk", "win1-000001.vmdk").replace("win1_1.vmdk", "win1_1-000001.vmdk") == vm.vmx_text()
    for d in vm.disks:
        vmdk = export / cat[f"disk.{d.key}.filename"]
        info = json.loads(
            subprocess.run(["qemu-img", "info", "--output=json", str(vmdk)], check=True, capture_output=True, text=True).stdout
        )
        assert info["format"] == "vmdk" and info["virtual-size"] == d.capacity
        subprocess.run(["qemu-img", "check", str(vmdk)], check=True, capture_output=True)
        raw = tmp_path / f"{d.key}.raw"
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(vmdk), str(raw)], check=True, capture_output=True)
        view = host.disk_view(vm, d.key, res.snapshot_id)
        with open(raw, "rb") as fh:
            for off in range(0, d.capacity, 4 << 20):
                assert fh.read(4 << 20) == view.read(off, min(4 << 20, d.capacity - off)), f"disk {d.key} @ {off}"
    done = proxy.unmount(export)
    assert done.status == "ok" and not export.exists() and snapshots(host) == []
    assert vm.guest.read_bytes("C:\\Windows\\system.ini") == b"changed after the snapshot"
    assert_trace_ok(host)


def test_a_directory_the_proxy_did_not_create_is_never_removed(proxy: BackupProxy, host: Any) -> None:
    mine = proxy.root / "win1-fullVM"
    mine.mkdir(parents=True)
    (mine / "mine.txt").write_text("not the proxy's")
    n = len(host.trace)
    with pytest.raises(StateError, match="already exists"):
        proxy.mount("name:win1", "fullvm")
    assert (mine / "mine.txt").read_text() == "not the proxy's"
    assert snapshots(host) == [] and len(host.trace) == n
    res = proxy.mount("name:win1", "file")  # the file-level mount point is free
    assert res.ok
    with pytest.raises(StateError, match="already mounted"):
        proxy.mount("name:win1", "fullvm")
    assert proxy.unmount(Path(res.path or "")).ok
    assert snapshots(host) == [] and (mine / "mine.txt").exists()


# -- file-level mount ------------------------------------------------------------------------


def test_file_mount_shows_the_snapshot_read_only_and_reports_letterless_volumes(
    proxy: BackupProxy, host: Any, helpers: Any
) -> None:
    vm = host.find_vm("name:win1")
    before = helpers.guest_tree(vm.guest)
    res = proxy.mount("name:win1", "file")
    assert res.status == "mounted", res.summary()
    vm.guest.write_bytes("D:\\data\\new.txt", b"written while mounted")
    vm.guest.delete("C:\\Windows\\system.ini")
    root = proxy.root / "win1" / "letters"
    assert sorted(p.name for p in root.iterdir()) == ["C", "D"]
    assert res.letters == {"C": str(root / "C"), "D": str(root / "D")}
    assert res.skipped_volumes == ["disk 2000 partition 1 (RECOVERY)"]
    got = {
        f"{p.relative_to(root).parts[0]}:\\{chr(92).join(p.relative_to(root).parts[1:])}".casefold(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file()
    }
    assert got == before
    f = root / "C" / "Windows" / "system.ini"
    assert not os.access(f, os.W_OK) or os.geteuid() == 0
    assert f.stat().st_mode & 0o222 == 0
    mounts = host.trace.of_kind("mount")
    assert [(e.details["letter"], e.details["kind"]) for e in mounts] == [("C", "file"), ("D", "file")]
    notes = [e.details["text"] for e in host.trace.of_kind("note")]
    assert any("RECOVERY" in t and "no drive letter" in t for t in notes)
    proxy.unmount(proxy.root / "win1")
    assert not (proxy.root / "win1").exists() and snapshots(host) == []
    assert_trace_ok(host)


def test_linux_guest_file_level_gets_the_documented_error(proxy: BackupProxy, host: Any, catalog: Catalog) -> None:
    n = len(host.trace)
    with pytest.raises(UnsupportedGuestError, match="Windows") as info:
        proxy.backup("name:rhel1", "file", catalog=catalog)
    assert "-t fullvm" in str(info.value)
    assert isinstance(info.value, InvalidInputError)
    assert snapshots(host, "rhel1") == [] and len(host.trace) == n  # nothing happened
    # the image-level backup of the same guest works
    res = proxy.backup("name:rhel1", "fullvm", catalog=catalog)
    assert res.ok and res.kind == "image"


# -- failure paths of the seed ----------------------------------------------------------------


FAILURES = {
    "pre-freeze-nonzero": ("script", "WF-1", "WF-1a", "ApplicationQuiesceFault"),
    "sync-vss-failure": ({"operation": "quiesce.engage"}, "WF-1", "WF-1b", None),
    "snapshot-timeout": ({"operation": "snapshot.create", "delay": 30.0}, "WF-1", "WF-1d", "FilesystemQuiesceFault"),
    "export-failure": ({"operation": "export", "fault": "NoDiskSpace"}, "WF-1f", None, "NoDiskSpace"),
    "mount-failure": ({"operation": "mount", "target": "win1:D", "fault": "NoDiskSpace"}, "WF-1f", None, "NoDiskSpace"),
    "copy-failure": ({"operation": "copy", "target": "win1:*", "fault": "NoDiskSpace", "after": 1}, "WF-2", None, "NoDiskSpace"),
    "unmount-failure": ({"operation": "unmount", "target": "win1:*", "fault": "InvalidState"}, "WF-3a", None, "InvalidState"),
}


@pytest.mark.parametrize("type", ["file", "fullvm"])
@pytest.mark.parametrize("case", sorted(FAILURES))
def test_each_failure_path_cleans_up_and_names_the_step(
    case: str, type: str, host: Any, proxy: BackupProxy, catalog: Catalog, helpers: Any
) -> None:
    rule, step, cause, fault = FAILURES[case]
    # exposing is an export for fullvm and a mount for file: fail the first or the last disk
    if case == "mount-failure" and type == "fullvm":
        rule = {"operation": "export", "target": "win1:win1_1.vmdk", "fault": "NoDiskSpace"}
    if case == "export-failure" and type == "file":
        rule = {"operation": "mount", "target": "win1:C", "fault": "NoDiskSpace"}
    vm = host.find_vm("name:win1")
    if rule == "script":
        helpers.install_script(vm, "10-app.bat", "[freeze] exit 3\n")
    else:
        host.add_fault(**rule)
    res = proxy.backup("name:win1", type, catalog=catalog)
    assert res.status == "failed" and res.failed_step == step, res.summary()
    assert res.cause_step == cause
    if fault is not None:
        assert res.fault == fault and res.reason
    assert step in res.summary()
    assert snapshots(host) == [], "a _VCB-BACKUP_ snapshot was left on the VM"
    assert exposed(proxy.root) == [], "a mount, export or session was left on the proxy"
    assert vm.consolidation_needed is False
    assert all(len(d.disk.chain()) == 1 for d in vm.disks), "a redo log was left on a disk"
    if step in ("WF-1", "WF-1f", "WF-2"):
        assert catalog.backups("win1") == []
    assert_trace_ok(host)
    # and the next run of the VM is clean and succeeds
    host.faults.clear()
    if rule == "script":
        helpers.install_script(vm, "10-app.bat", "exit 0\n")
    again = proxy.backup("name:win1", type, catalog=catalog)
    assert again.ok and again.stale_cleaned == [], again.summary()


def test_snapshot_removal_is_retried_once(host: Any, proxy: BackupProxy, catalog: Catalog) -> None:
    host.add_fault(operation="snapshot.remove", fault="TaskInProgress")
    res = proxy.backup("name:win1", "file", catalog=catalog)
    assert res.ok, res.summary()
    assert [(s.step, s.ok) for s in res.steps if s.step == "WF-3b"] == [("WF-3b", False), ("WF-3b", True)]
    assert snapshots(host) == []
    host.add_fault(operation="snapshot.remove", fault="TaskInProgress", times=2)
    res = proxy.backup("name:win1", "file", catalog=catalog)
    assert res.status == "failed" and res.failed_step == "WF-3b"
    assert [s.name for s in snapshots(host)] == [SNAPSHOT_NAME]  # reported, left for the next run
    nxt = proxy.backup("name:win1", "file", catalog=catalog, kind="incremental")
    assert nxt.ok and any(SNAPSHOT_NAME in n for n in nxt.stale_cleaned)
    assert snapshots(host) == []


@pytest.mark.parametrize(
    "point", ["proxy.after-snapshot", "proxy.after-expose", "proxy.after-copy", "proxy.after-unmount"]
)
@pytest.mark.parametrize("type", ["file", "fullvm"])
def test_leftovers_of_a_crashed_run_are_found_reported_and_cleaned(
    point: str, type: str, host: Any, client: InProcessHostClient, tmp_path: Path, catalog: Catalog
) -> None:
    host.add_fault(operation="crash", target=point)
    with pytest.raises(SimulatedCrash):
        BackupProxy(client, tmp_path / "proxy").backup("name:win1", type, catalog=catalog)
    assert [s.name for s in snapshots(host)] == [SNAPSHOT_NAME]
    if point in ("proxy.after-expose", "proxy.after-copy"):
        assert any(not n.startswith(".") for n in exposed(tmp_path / "proxy"))
    # a new proxy process on the same directory
    proxy = BackupProxy(client, tmp_path / "proxy")
    res = proxy.backup("name:win1", type, catalog=catalog)
    assert res.ok, res.summary()
    assert any(SNAPSHOT_NAME in n for n in res.stale_cleaned)
    if point in ("proxy.after-expose", "proxy.after-copy"):
        assert any("left on the proxy" in n for n in res.stale_cleaned)
    assert snapshots(host) == [] and exposed(tmp_path / "proxy") == []
    assert_trace_ok(host)


def test_a_second_run_of_the_same_vm_waits(proxy: BackupProxy, catalog: Catalog) -> None:
    first = proxy.run("name:win1", "file", catalog=catalog)
    assert first.advance()  # WF-1 done: the VM is in snapshot mode
    second = proxy.run("name:win1", "fullvm", catalog=catalog)
    with pytest.raises(StateError, match="R60"):
        second.advance()
    assert first.run().ok


def test_bad_input_changes_nothing(proxy: BackupProxy, host: Any) -> None:
    n = len(host.trace)
    with pytest.raises(InvalidInputError):
        proxy.backup("name:win1", "disk")
    with pytest.raises(InvalidInputError):
        proxy.backup("name:win1", "file", kind="weekly")
    with pytest.raises(NotFoundError):
        proxy.backup("name:nosuchvm", "fullvm")
    with pytest.raises(StateError, match="nothing mounted"):
        proxy.unmount(proxy.root / "win1")
    assert len(host.trace) == n and snapshots(host) == []


@pytest.fixture
def host7() -> Any:
    """The small host on esxi-7.0: Tools with the 900 s abort timer (OVT 7c7a38862, 2010) and
    the 5.0 consolidation API; a 3.5 host has neither (docs/architecture.md, Host profiles)."""
    from .conftest import small_host

    return small_host(profile="esxi-7.0")


@pytest.fixture
def proxy7(host7: Any, tmp_path: Path) -> BackupProxy:
    from vcbsim.reference import InProcessHostClient

    return BackupProxy(InProcessHostClient(host7), tmp_path / "proxy7")


def test_snapshot_outlasting_the_guest_abort_timer(host7: Any, proxy7: BackupProxy, catalog: Catalog) -> None:
    """The snapshot takes longer than Tools' 900 s abort timer: the guest aborts, the host
    fails the quiesced snapshot, and the proxy leaves nothing behind."""
    host, proxy = host7, proxy7
    host.add_fault(operation="snapshot.create", delay=2000.0)
    res = proxy.backup("name:win1", "fullvm", catalog=catalog)
    assert res.status == "failed" and res.failed_step == "WF-1" and res.cause_step == "WF-1c"
    assert "Timed out" in res.reason
    assert snapshots(host) == [] and exposed(proxy.root) == []


def test_powered_off_vm_image_backup_by_uuid(host: Any, proxy: BackupProxy, catalog: Catalog) -> None:
    vm = host.find_vm("name:rhel1")
    host.power_off(vm)
    res = proxy.backup(f"uuid:{vm.uuid}", "fullvm", catalog=catalog)  # name: and uuid: work powered off
    assert res.ok and res.kind == "image", res.summary()
    created = [e for e in host.trace.of_kind("snapshot.create") if e.vm == vm.moref]
    assert created and created[-1].details["quiesced"] is False  # nothing to quiesce
    assert snapshots(host, "rhel1") == []
    assert_trace_ok(host)


def test_a_removal_that_fails_part_way_is_resolved_and_consolidated(
    host7: Any, proxy7: BackupProxy, catalog: Catalog
) -> None:
    """The host drops the snapshot but the merge fails ("Needs consolidation", F16, API 5.0):
    the proxy records an unknown outcome (op.info), sees the snapshot gone, then consolidates."""
    host, proxy = host7, proxy7
    vm = host.find_vm("name:win1")
    run = proxy.run("name:win1", "file", catalog=catalog)
    assert run.advance()
    vm.guest.write_bytes("C:\\during.txt", b"a write in snapshot mode")  # gives the merge work
    host.add_fault(operation="consolidate", fault="NoDiskSpace")
    res = run.run()
    assert res.ok, res.summary()
    assert [(s.op, s.ok) for s in res.steps if s.step == "WF-3b"] == [("remove-snapshot", False), ("consolidate", True)]
    assert [e.details["op"] for e in host.trace.of_kind("op.info")] == ["remove-snapshot"]
    assert vm.snapshots() == [] and vm.consolidation_needed is False
    assert len(vm.disks[0].disk.chain()) == 1  # one layer: every write is in the base disk
    assert vm.guest.read_bytes("C:\\during.txt") == b"a write in snapshot mode"
    # (no check_trace here: the host does not yet emit snapshot.remove when the merge fails)
