"""A host kept in a datastore directory: round trips, leftovers, recovery, cost, qemu-img."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vcbsim.simulator._errors import InvalidInputError, StateError
from vcbsim.simulator._host import GiB, Host, MiB
from vcbsim.simulator._persist import STATE_SUFFIX, open_host
from vcbsim.simulator.disk._persistent import PersistentLayeredDisk, _encode, _file_header

VCB = "_VCB-BACKUP_"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def view_digest(view: Any) -> str:
    """Digest of a disk view: where it holds data, and that data (zeros elsewhere)."""
    h = hashlib.sha256()
    for offset, length in view.allocated_areas():
        h.update(f"{offset}+{length}:".encode())
        h.update(view.read(offset, length))
    return h.hexdigest()


def fingerprint(host: Host) -> dict[str, Any]:
    """Every VM's identity, snapshot tree and disks (live and as of each snapshot)."""
    out: dict[str, Any] = {}
    for vm in host.vms.values():
        out[vm.name] = {
            "ids": (vm.moref, vm.uuid, vm.instance_uuid, vm.power_state, vm.change_tracking),
            "tools": None if vm.tools is None else (vm.tools.state, vm.tools.providers),
            "vmx": vm.vmx_text(),
            "vmsd": vm.vmsd_text(),
            "tree": [
                (s.moref, s.name, s.parent.moref if s.parent else None) for s in vm.snapshots()
            ],
            "current": vm.current_snapshot.moref if vm.current_snapshot else None,
            "chains": [d.chain_files() for d in vm.disks],
            "live": [view_digest(d.disk.view()) for d in vm.disks],
            "at": {
                s.moref: [view_digest(host.disk_view(vm, d.key, s)) for d in vm.disks]
                for s in vm.snapshots()
            },
        }
    return out


def reopen(host: Host, directory: Path, profile: str = "esx-3.5u2") -> Host:
    assert host.store is not None
    host.store.close()
    return Host(profile, datastore_dir=directory)


def build(directory: Path, profile: str = "esx-3.5u2") -> Host:
    host = Host(profile, datastore_dir=directory)
    win = host.add_vm(
        "win", os_family="windows", disks=[128 * MiB, 96 * MiB], ip_address="192.0.2.21"
    )
    fs = host.add_guest_volumes(
        win, {0: [(None, "C", "SYSTEM")], 1: [(48 * MiB, "D", "DATA"), (None, None, "RECOVERY")]}
    )
    fs.mkdir(r"C:\Windows")
    fs.write_text(r"C:\Windows\system.ini", "[drivers]\r\n")
    fs.write_bytes(r"D:\big.bin", bytes(range(256)) * 2000)
    lin = host.add_vm("lin", os_family="linux", disks=[96 * MiB])
    lfs = host.add_guest_volumes(lin, {0: [(48 * MiB, "/", "ROOT"), (None, "/var/www", "WWW")]})
    lfs.mkdir("/etc")
    lfs.write_text("/etc/hostname", "lin\n")
    lfs.write_text("/var/www/index.html", "<html>v1</html>\n")
    return host


def test_round_trip_with_guests_and_snapshots(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = build(d)
    win = host.find_vm("win")
    host.create_snapshot(win, "first")
    fs = host.guest_fs(win)
    fs.write_text(r"C:\Windows\system.ini", "[drivers]\r\nwave=mmdrv.dll\r\n")
    fs.write_text(r"D:\new.txt", "after the snapshot")
    host.create_snapshot(win, "second", description="two")
    fs.write_bytes(r"D:\big.bin", b"x" * 70000)
    before = fingerprint(host)
    again = reopen(host, d)
    assert fingerprint(again) == before
    report = again.recovery_report
    assert report is not None and report.clean and not report.created
    assert report.snapshots == {"win": ["first", "second"], "lin": []}
    win2 = again.find_vm("win")
    live = again.guest_fs(win2)
    assert live.read_text(r"C:\Windows\system.ini") == "[drivers]\r\nwave=mmdrv.dll\r\n"
    assert live.read_bytes(r"D:\big.bin") == b"x" * 70000
    first = again.guest_fs_at(win2, "first")
    assert first.read_text(r"C:\Windows\system.ini") == "[drivers]\r\n"
    assert not first.exists(r"D:\new.txt")
    assert first.read_bytes(r"D:\big.bin") == bytes(range(256)) * 2000
    assert again.guest_fs_at(win2, "second").read_text(r"D:\new.txt") == "after the snapshot"
    assert (
        again.guest_fs(again.find_vm("lin")).read_text("/var/www/index.html") == "<html>v1</html>\n"
    )
    # a VM added after the restart gets a fresh moref, uuid and snapshot moref
    extra = again.add_vm("extra", disks=[8 * MiB])
    assert extra.moref not in {"vm-1", "vm-2"} and extra.uuid not in {win2.uuid}
    snap = again.create_snapshot(extra, "x")
    assert snap.moref not in {s.moref for s in win2.snapshots()}
    # and it is there after one more restart; the files on disk are what the layout says
    third = reopen(again, d)
    assert sorted(v.name for v in third.vms.values()) == ["extra", "lin", "win"]
    files = sorted(os.listdir(d / "datastore1" / "win"))
    assert {
        "win.vmx",
        "win.vmsd",
        "win.vmdk",
        "win-flat.vmdk",
        "win-000001.vmdk",
        "win-000002.vmdk",
    } <= set(files)
    assert "win-000001-delta.vmdk" in files and "win_1-000002-delta.vmdk" in files
    assert (d / "datastore1" / "win" / "win.vmx").read_text() == third.find_vm("win").vmx_text()
    assert (d / "datastore1" / "win" / "win.vmsd").read_text() == third.find_vm("win").vmsd_text()


def test_leftover_backup_snapshot_is_visible_and_removable(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = build(d)
    win = host.find_vm("win")
    host.create_snapshot(win, VCB, quiesce=True)
    host.guest_fs(win).write_text(r"D:\during.txt", "written while the backup ran")
    live = fingerprint(host)["win"]["live"]
    # the backup process dies here: the host restarts from the directory
    again = reopen(host, d)
    win2 = again.find_vm("win")
    assert [s.name for s in win2.snapshots()] == [VCB]
    assert again.recovery_report is not None and again.recovery_report.snapshots["win"] == [VCB]
    notes = [e.details["text"] for e in again.trace if e.kind == "note"]
    assert any(VCB in text for text in notes)
    stats = again.remove_snapshot(win2, VCB)
    assert stats.merged
    assert fingerprint(again)["win"]["live"] == live
    third = reopen(again, d)
    win3 = third.find_vm("win")
    assert win3.snapshots() == [] and [d.chain_files() for d in win3.disks] == [
        ["[datastore1] win/win.vmdk"],
        ["[datastore1] win/win_1.vmdk"],
    ]
    assert third.guest_fs(win3).read_text(r"D:\during.txt") == "written while the backup ran"
    leftovers = [n for n in os.listdir(d / "datastore1" / "win") if "-0000" in n]
    assert leftovers == []


def test_revert_and_consolidate_later_round_trip(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = build(d, "esxi-7.0")  # consolidate=False and ConsolidateVMDisks_Task are API 5.0
    lin = host.find_vm("lin")
    fs = host.guest_fs(lin)
    host.create_snapshot(lin, "a")
    fs.write_text("/etc/hostname", "changed\n")
    host.create_snapshot(lin, "b")
    fs.write_text("/etc/hostname", "changed again\n")
    host.revert_to_snapshot(lin, "a")
    assert host.guest_fs(lin).read_text("/etc/hostname") == "lin\n"
    host.remove_snapshot(lin, "b", consolidate=False)
    assert lin.consolidation_needed
    before = fingerprint(host)
    again = reopen(host, d, "esxi-7.0")
    assert fingerprint(again) == before
    lin2 = again.find_vm("lin")
    assert lin2.consolidation_needed
    again.consolidate_disks(lin2)
    assert not lin2.consolidation_needed
    third = reopen(again, d, "esxi-7.0")
    assert fingerprint(third) == fingerprint(again)
    assert third.guest_fs(third.find_vm("lin")).read_text("/etc/hostname") == "lin\n"


def test_changed_block_tracking_survives(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = Host("esxi-7.0", datastore_dir=d)
    vm = host.add_vm("cbt", disks=[16 * MiB], power_state="poweredOff")
    host.reconfigure(vm, change_tracking=True)
    key = vm.disks[0].key
    host.guest_device(vm, key).write(0, b"a" * 100_000)
    host.create_snapshot(vm, "base")
    cid = host.change_id(vm, key, "base")
    assert cid is not None
    host.guest_device(vm, key).write(5 * 65536 + 7, b"b" * 3)
    host.guest_device(vm, key).write(9 * MiB, b"c" * 200_000)
    expected = host.query_changed_disk_areas(vm, None, key, 0, cid)
    assert expected.changed_area
    again = reopen(host, d, "esxi-7.0")
    vm2 = again.find_vm("cbt")
    assert again.change_id(vm2, key, "base") == cid
    assert again.query_changed_disk_areas(vm2, None, key, 0, cid) == expected
    assert again.change_id(vm2, key) == host.change_id(vm, key)
    # esxi-7.0 keeps redo logs as -sesparse.vmdk
    assert (d / "datastore1" / "cbt" / "cbt-000001-sesparse.vmdk").exists()
    assert 'createType="seSparse"' in (d / "datastore1" / "cbt" / "cbt-000001.vmdk").read_text()


def test_qemu_img_reads_the_base_disk(tmp_path: Path) -> None:
    qemu = shutil.which("qemu-img")
    if qemu is None:
        pytest.skip("qemu-img is not installed")
    d = tmp_path / "ds"
    host = build(d)
    win = host.find_vm("win")
    host.create_snapshot(win, "s")
    host.guest_fs(win).write_text(r"D:\late.txt", "only in the redo log")
    assert host.store is not None
    host.store.close()
    for n, name in enumerate(("win.vmdk", "win_1.vmdk")):
        desc = d / "datastore1" / "win" / name
        info = json.loads(
            subprocess.run(
                [qemu, "info", "--output=json", str(desc)],
                capture_output=True,
                check=True,
                text=True,
            ).stdout
        )
        assert info["format"] == "vmdk" and info["virtual-size"] == win.disks[n].capacity
        raw = tmp_path / f"disk{n}.raw"
        subprocess.run(
            [qemu, "convert", "-f", "vmdk", "-O", "raw", str(desc), str(raw)], check=True
        )
        view = host.disk_view(win, win.disks[n].key, "s")
        assert raw.read_bytes() == view.read(0, view.size)
    # the flat extent is sparse: it occupies about the data written, not the capacity
    flat = d / "datastore1" / "win" / "win-flat.vmdk"
    assert flat.stat().st_size == 128 * MiB and flat.stat().st_blocks * 512 < 8 * MiB


def test_torn_tails_are_cut_and_data_kept(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    vm = host.add_vm("t", disks=[8 * MiB, 8 * MiB], power_state="poweredOff")
    dev0, dev1 = (host.guest_device(vm, x.key) for x in vm.disks)
    dev0.write(1000, b"base" * 1000)
    host.create_snapshot(vm, "s")
    dev0.write(70000, b"redo" * 30000)
    dev1.write(3 * MiB, b"flat" * 100)  # disk 1 is frozen too: this goes to its redo log
    before = fingerprint(host)
    assert host.store is not None
    host.store.close()
    vmdir = d / "datastore1" / "t"
    with open(vmdir / "t-000001-delta.vmdk", "ab") as f:
        f.write(_encode([(7, 0, b"\x07" * 65536)])[:48])  # a record torn by a kill
    with open(vmdir / "t-ctk.log", "ab") as f:
        f.write(b"\x01\x02\x03")
    again = Host(datastore_dir=d)
    assert fingerprint(again) == before
    report = again.recovery_report
    assert report is not None and any(
        "t-000001-delta.vmdk: discarded 48 torn bytes" in r for r in report.repairs
    )
    third = reopen(again, d)
    assert third.recovery_report is not None and third.recovery_report.clean


class _Killed(BaseException):
    """Stands for a SIGKILL in the middle of a merge."""


def test_merge_interrupted_half_way_is_finished_on_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    vm = host.add_vm("m", disks=[8 * MiB], power_state="poweredOff")
    dev = host.guest_device(vm, vm.disks[0].key)
    dev.write(0, b"1" * (2 * MiB))
    host.create_snapshot(vm, "s")
    dev.write(MiB // 2, b"2" * (3 * MiB))
    live = digest(vm.disks[0].disk.read(0, 8 * MiB))
    real = PersistentLayeredDisk.apply_intents

    def half(self: PersistentLayeredDisk) -> int:
        for it in self._intents:
            it.grains = it.grains[: len(it.grains) // 2]
        real(self)
        raise _Killed

    monkeypatch.setattr(PersistentLayeredDisk, "apply_intents", half)
    with pytest.raises(_Killed):
        host.remove_snapshot(vm, "s")
    monkeypatch.undo()
    assert host.store is not None
    host.store.close()
    again = Host(datastore_dir=d)
    vm2 = again.find_vm("m")
    assert vm2.snapshots() == []
    assert digest(vm2.disks[0].disk.read(0, 8 * MiB)) == live
    report = again.recovery_report
    assert report is not None and any("interrupted merge" in r for r in report.repairs)
    assert not (d / "datastore1" / "m" / "m-000001-delta.vmdk").exists()


def test_kill_before_the_state_is_written_leaves_the_old_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    vm = host.add_vm("k", disks=[8 * MiB], power_state="poweredOff")
    dev = host.guest_device(vm, vm.disks[0].key)
    dev.write(0, b"1" * MiB)
    host.create_snapshot(vm, "s")
    dev.write(0, b"2" * 100)
    before = fingerprint(host)
    assert host.store is not None

    def killed(vm: Any) -> None:
        raise _Killed

    monkeypatch.setattr(host.store, "save_vm", killed)
    with pytest.raises(_Killed):
        host.remove_snapshot(vm, "s")
    monkeypatch.undo()
    # merged in memory, nothing on disk changed: the restart shows the snapshot again
    host.store.close()
    again = Host(datastore_dir=d)
    assert fingerprint(again) == before


def test_frozen_layer_no_snapshot_holds_is_merged_on_load(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    vm = host.add_vm("u", disks=[8 * MiB], power_state="poweredOff")
    dev = host.guest_device(vm, vm.disks[0].key)
    dev.write(0, b"1" * 300_000)
    host.create_snapshot(vm, "s")
    dev.write(100, b"2" * 300_000)
    live = digest(vm.disks[0].disk.read(0, 8 * MiB))
    # a removal that got as far as the snapshot tree, not the disks
    vm.root_snapshots.clear()
    vm.current_snapshot = None
    assert host.store is not None
    host.store.save_vm(vm)
    again = reopen(host, d)
    vm2 = again.find_vm("u")
    report = again.recovery_report
    assert report is not None and report.released == ["u/u.vmdk"]
    assert digest(vm2.disks[0].disk.read(0, 8 * MiB)) == live
    assert vm2.disks[0].chain_files() == ["[datastore1] u/u.vmdk"]


def test_nothing_unaccounted_is_deleted_only_reported(tmp_path: Path) -> None:
    """Recovery deletes only its own leftovers (a temporary file of its state, an empty log
    a cut-short operation created); a user's files, and folders without vcbsim metadata,
    stay where they are and are reported with the reason."""
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    host.add_vm("f", disks=[8 * MiB])
    assert host.store is not None
    host.store.close()
    vmdir = d / "datastore1" / "f"
    (vmdir / "f-000042-delta.vmdk").write_bytes(b"a user's own disk")
    (vmdir / f"f{STATE_SUFFIX}.tmp").write_bytes(b"half a state")
    (vmdir / "f-000003-delta.vmdk").write_bytes(_file_header(65536))
    (vmdir / "notes.txt").write_text("not ours")
    (d / "datastore1" / "copied-in").mkdir()
    (d / "datastore1" / "copied-in" / "copied-in-flat.vmdk").write_bytes(b"x")
    again = Host(datastore_dir=d)
    report = again.recovery_report
    assert report is not None
    assert sorted(report.removed_files) == [
        "datastore1/f/f-000003-delta.vmdk",
        f"datastore1/f/f{STATE_SUFFIX}.tmp",
    ]
    assert sorted(u["file"] for u in report.unaccounted) == [
        "datastore1/copied-in/",
        "datastore1/f/f-000042-delta.vmdk",
        "datastore1/f/notes.txt",
    ]
    assert (vmdir / "notes.txt").exists() and (vmdir / "f-000042-delta.vmdk").exists()
    assert (d / "datastore1" / "copied-in" / "copied-in-flat.vmdk").read_bytes() == b"x"
    # a VM of that name is refused with the reason rather than built over someone's files
    with pytest.raises(StateError, match="already holds files"):
        again.add_vm("copied-in", disks=[MiB])
    assert "copied-in" not in [vm.name for vm in again.vms.values()]


def test_broken_state_is_reported_and_others_load(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    host.add_vm("good", disks=[MiB])
    host.add_vm("bad", disks=[MiB])
    host.add_vm("shape", disks=[MiB])
    assert host.store is not None
    host.store.close()
    (d / "datastore1" / "bad" / f"bad{STATE_SUFFIX}").write_text("{not json")
    (d / "datastore1" / "shape" / f"shape{STATE_SUFFIX}").write_text('{"vm": [1, 2]}')
    again = Host(datastore_dir=d)
    states = {vm.name: vm.connection_state for vm in again.vms.values()}
    assert states == {"good": "connected", "bad": "invalid", "shape": "invalid"}
    assert again.find_vm("bad").moref == "vm-2"  # registered under its own moref still
    report = again.recovery_report
    assert report is not None
    by_vm = {e["vm"]: e for e in report.errors}
    assert by_vm["bad"]["file"] == f"datastore1/bad/bad{STATE_SUFFIX}"
    assert "JSONDecodeError" in by_vm["bad"]["reason"]
    assert "expected 'vm' to be a JSON object, got list" in by_vm["shape"]["reason"]
    with pytest.raises(InvalidInputError, match="not used on this host"):
        again.add_vm("bad", disks=[MiB])
    # still registered after a second restart, files untouched
    third = reopen(again, d)
    assert third.recovery_report is not None
    assert {e["vm"] for e in third.recovery_report.errors} == {"bad", "shape"}


def test_reset_wipes_the_directory(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = build(d)
    host.reset()
    assert host.vms == {}
    assert not (d / "datastore1" / "win").exists()
    host.add_vm("after-reset", disks=[MiB])
    assert host.store is not None
    host.store.close()
    assert [vm.name for vm in Host(datastore_dir=d).vms.values()] == ["after-reset"]


def test_open_host_creates_the_demo_once(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = open_host(d)
    assert sorted(vm.name for vm in host.vms.values()) == ["rhel5-web", "win2003-sql"]
    host.guest_fs(host.find_vm("win2003-sql")).write_text(r"D:\Data\mine.txt", "kept")
    assert host.store is not None
    host.store.close()
    again = open_host(d)
    assert sorted(vm.name for vm in again.vms.values()) == ["rhel5-web", "win2003-sql"]
    assert again.guest_fs(again.find_vm("win2003-sql")).read_text(r"D:\Data\mine.txt") == "kept"
    assert again.is_demo


def test_cost_follows_data_not_capacity(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    vm = host.add_vm("huge", disks=[2048 * GiB], power_state="poweredOff")
    dev = host.guest_device(vm, vm.disks[0].key)
    for n in range(8):
        dev.write(n * 100 * GiB, b"x" * 70000)
    host.create_snapshot(vm, VCB)
    dev.write(5 * 100 * GiB + 3, b"y" * 10)
    host.remove_snapshot(vm, VCB)
    vmdir = d / "datastore1" / "huge"
    used = sum(p.stat().st_blocks * 512 for p in vmdir.iterdir())
    assert used < 16 * MiB
    again = reopen(host, d)
    vm2 = again.find_vm("huge")
    assert vm2.disks[0].disk.read(5 * 100 * GiB, 16) == b"xxxyyyyyyyyyyxxx"


def test_vm_names_must_be_directory_names(tmp_path: Path) -> None:
    host = Host(datastore_dir=tmp_path / "ds")
    with pytest.raises(InvalidInputError):
        host.add_vm("..", disks=[MiB])


def test_one_host_at_a_time(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    with pytest.raises(StateError, match="in use"):
        Host(datastore_dir=d)
    assert host.store is not None
    host.store.close()
    Host(datastore_dir=d)


def test_fault_rules_name_a_recovered_vm(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    host.add_vm("fr", disks=[MiB])
    assert host.store is not None
    host.store.close()
    again = Host(datastore_dir=d)
    vm = again.find_vm("fr")
    assert again.faults.aliases[vm.moref] == "fr"


def test_open_host_keeps_the_profile_of_the_directory(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = open_host(d, "esxi-7.0", demo=False)
    assert host.vms == {} and host.store is not None
    host.store.close()
    again = open_host(d)
    assert again.profile.name == "esxi-7.0"
