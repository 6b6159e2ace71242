"""``vcbsim restore --server``: a whole VM as a new VM and over the powered-off original, files
into the running guest, through the served demo host (issue 16). The restored disks equal the
backup's snapshot byte for byte; a powered-on original is refused with one line; a failed
restore leaves no VM registered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vcbsim.reference import main

SMALL = "win-small"


def _remote(url: str, tmp_path: Path) -> list[str]:
    return ["--server", url, "--user", "user", "--password", "pass", "--insecure",
            "--guest-user", "Administrator", "--guest-password", "vmware",
            "--state", str(tmp_path / "state"), "--json", "--no-progress"]  # fmt: skip


def _backup(url: str, tmp_path: Path, capsys: Any, kind: str) -> tuple[int, dict[str, Any]]:
    assert main(["backup", *_remote(url, tmp_path), "-a", f"name:{SMALL}", "-t", kind]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["status"] == "ok"
    return int(run["backup_id"]), run


def _disks_at_backup(host: Any, tmp_path: Path, backup_id: int) -> dict[int, bytes]:
    from vcbsim.reference import Catalog

    with Catalog(tmp_path / "state" / "medium") as cat:
        _meta, images = cat.image_as_of_snapshot(backup_id, tmp_path / "rebuild")
        return {k: img.read(0, img.size) for k, (_f, img) in images.items()}


def test_whole_vm_as_a_new_vm_equals_the_backup(host: Any, url: str, tmp_path: Path, capsys: Any) -> None:
    backup_id, _ = _backup(url, tmp_path, capsys, "fullvm")
    expected = _disks_at_backup(host, tmp_path, backup_id)
    # the guest writes on after the backup: the restore gives the backup's data, not today's
    host.guest_fs(SMALL).write_bytes("C:\\after.txt", b"written after the backup")
    args = ["restore", *_remote(url, tmp_path), "--backup", str(backup_id), "--vm", "--name", "small-copy",
            "--set", "memsize=2048"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["restored"] == "small-copy" and not out["over_original"]
    vm = host.find_vm("small-copy")
    original = host.find_vm(SMALL)
    assert vm.uuid != original.uuid and vm.power_state == "poweredOff"
    assert vm.memory_mb == 2048
    assert len(vm.disks) == len(expected)
    for d, (_key, data) in zip(vm.disks, sorted(expected.items()), strict=True):
        view = host.disk_view(vm, d.key)
        assert view.read(0, view.size) == data
    assert vm.guest is not None and not vm.guest.exists("C:\\after.txt")
    assert vm.guest.read_bytes("D:\\db\\big.mdf") == bytes(range(256)) * 2000
    # the name is taken now: one line, exit 2, nothing new registered
    before = set(host.vms)
    assert main(args) == 2
    assert "small-copy" in json.loads(capsys.readouterr().out)["message"]
    assert set(host.vms) == before


def test_over_the_original_only_when_powered_off(host: Any, url: str, tmp_path: Path, capsys: Any) -> None:
    backup_id, _ = _backup(url, tmp_path, capsys, "fullvm")
    expected = _disks_at_backup(host, tmp_path, backup_id)
    original = host.find_vm(SMALL)
    uuid = original.uuid
    host.guest_fs(SMALL).write_bytes("C:\\after.txt", b"lost by the restore")
    args = ["restore", *_remote(url, tmp_path), "--backup", str(backup_id), "--vm", "--over"]
    assert main(args) == 4  # powered on: refused, nothing changed
    err = json.loads(capsys.readouterr().out)
    assert "powered on" in err["message"] and "\n" not in err["message"]
    assert host.find_vm(SMALL) is original
    host.power_off(original)
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["over_original"] and out["replaced"] == original.moref
    vm = host.find_vm(SMALL)
    assert vm is not original and vm.uuid == uuid
    for d, (_key, data) in zip(vm.disks, sorted(expected.items()), strict=True):
        view = host.disk_view(vm, d.key)
        assert view.read(0, view.size) == data
    assert not vm.guest.exists("C:\\after.txt")
    # the original leaves the inventory (its files stay) before the restored VM is registered
    kinds = [e.kind for e in host.trace.events if e.kind in ("vm.destroy", "vm.unregister", "vm.register")]
    assert kinds[-2:] == ["vm.unregister", "vm.register"]


def test_files_into_the_running_guest_report_what_they_overwrote(host: Any, url: str, tmp_path: Path, capsys: Any) -> None:
    backup_id, _ = _backup(url, tmp_path, capsys, "file")
    fs = host.guest_fs(SMALL)
    fs.write_bytes("D:\\db\\big.mdf", b"damaged")
    fs.delete("C:\\Windows\\system.ini")
    fs.write_bytes("C:\\Windows\\new.txt", b"not in the backup")
    args = ["restore", *_remote(url, tmp_path), "--backup", str(backup_id), "--path", "C:\\Windows", "--into-guest"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["written"] == ["C:\\Windows\\system.ini"] and out["overwritten"] == []
    assert fs.read_bytes("C:\\Windows\\system.ini") == b"[drivers]\r\nwave=mmdrv.dll\r\n"
    assert fs.read_bytes("C:\\Windows\\new.txt") == b"not in the backup"  # exactly the chosen files
    assert main(["restore", *_remote(url, tmp_path), "--backup", str(backup_id), "--path", "D:\\db\\big.mdf", "--into-guest"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["overwritten"] == ["D:\\db\\big.mdf"]
    assert fs.read_bytes("D:\\db\\big.mdf") == bytes(range(256)) * 2000


def test_a_failed_restore_leaves_no_vm_and_no_uploads(host: Any, url: str, tmp_path: Path, capsys: Any, server: Any) -> None:
    backup_id, _ = _backup(url, tmp_path, capsys, "fullvm")
    before = set(host.vms)
    # an unknown datastore: the first upload fails, nothing is registered
    args = ["restore", *_remote(url, tmp_path), "--backup", str(backup_id), "--vm", "--name", "nope",
            "--datastore", "nosuch"]
    assert main(args) != 0
    assert "nosuch" in json.loads(capsys.readouterr().out)["message"]
    assert set(host.vms) == before
    # the register fails (a disk upload vanished before it): no VM is registered, the other
    # uploads are removed again and the op fails in the trace
    from vcbsim.reference import _wirerestore

    real = _wirerestore._register

    def racing(client: Any, *a: Any, **k: Any) -> None:
        del host.uploads[("datastore1", "nope/nope_1.vmdk")]
        real(client, *a, **k)

    _wirerestore._register = racing
    try:
        assert main(args[:-2]) == 1
    finally:
        _wirerestore._register = real
    assert json.loads(capsys.readouterr().out)["error"] == "FileNotFound"
    assert set(host.vms) == before
    assert not any(p.startswith("nope/") for p, _ in server.endpoint.files.listing("datastore1"))
    assert not any(ds == "datastore1" and p.startswith("nope/") for ds, p in host.uploads)
    assert [e.kind for e in host.trace.events if e.kind.startswith("vm.create")][-1] == "vm.create.fail"


def test_without_server_the_wire_options_are_refused(tmp_path: Path, capsys: Any) -> None:
    args = ["restore", "--state", str(tmp_path / "s"), "--json", "--backup", "1", "--vm", "--name", "x"]
    assert main(args) == 2
    assert "--server" in json.loads(capsys.readouterr().out)["message"]



def test_independent_disks_and_disks_on_two_datastores_are_restored_as_they_were(tmp_path: Path) -> None:
    """An independent disk and a disk on a second datastore, as the era inventory has them: the
    second datastore's disk is restored equal to the backup; the independent disk is in no
    snapshot, so the image backup left it out and the restored VM has no such disk (its
    device lines dropped, ``not_restored`` names it; ``reference/_image.py``): RST-DISKS-EQUAL
    and RST-VMX-KEPT on what the backup holds."""
    import re as _re

    from vcbsim.conformance._check_restore import check_restored_disks, check_restored_settings
    from vcbsim.reference import BackupProxy, Catalog, VSphereHostClient, _wirerestore
    from vcbsim.reference._image import drop_vmx_disks
    from vcbsim.simulator import Host
    from vcbsim.simulator.soap import serve

    def settings(text: str) -> dict[str, str]:
        return {m.group(1): m.group(2) for m in _re.finditer(r'^\s*([^=\s]+)\s*=\s*"(.*)"\s*$', text, _re.M)}

    mib = 1024 * 1024
    host = Host("esxi-7.0", seed=8)
    host.add_datastore("datastore2", 64 * 1024 * mib)
    for name, kw in (("indep", {"disk_modes": ["persistent", "independent_persistent"]}),
                     ("twods", {"disk_datastores": [None, "datastore2"]})):
        vm = host.add_vm(name, disks=[8 * mib, 4 * mib], tools="not-installed", **kw)
        for d in vm.disks:
            host.guest_device(vm, d.key).write(mib, name.encode() * 1000)
    with serve(host, port=0) as srv, Catalog(tmp_path / "m") as cat:
        url = f"https://127.0.0.1:{srv.port}/sdk"
        with VSphereHostClient(url, "user", "pass", insecure=True) as client:
            for name in ("indep", "twods"):
                res = BackupProxy(client, tmp_path / "p", quiesce=False).backup(f"name:{name}", "fullvm", catalog=cat)
                assert res.ok and res.backup_id is not None, res.summary()
                out = _wirerestore.restore_vm_over_wire(cat, res.backup_id, client, name=f"{name}-r",
                                                        datastore="datastore1")
                backed_up = _wirerestore._vmx_of_backup(cat, res.backup_id)
                if name == "indep":
                    key = host.find_vm("indep").disks[1].key
                    assert list(out.not_restored) == [key] and "independent_persistent" in out.not_restored[key]
                    backed_up = drop_vmx_disks(backed_up, {"indep_1.vmdk"})
                vm = host.find_vm(f"{name}-r")
                _meta, images = cat.image_as_of_snapshot(res.backup_id, tmp_path / f"rb-{name}")
                found = check_restored_disks({k: img.read for k, (_f, img) in images.items()},
                                             [(d.key, d.capacity, host.disk_view(vm, d.key).read) for d in vm.disks])
                found += check_restored_settings(settings(backed_up),
                                                 settings(vm.vmx_text()), {}, new_vm=True)
                assert found == [], [v.format() for v in found]
    assert [d.disk_mode for d in host.find_vm("indep-r").disks] == ["persistent"]
    assert [d.capacity for d in host.find_vm("twods-r").disks] == [8 * mib, 4 * mib]
