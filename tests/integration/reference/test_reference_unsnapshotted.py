"""Image backups leave out the disks a snapshot does not cover (``reference/_image.py``).

The era inventory's ``db-rdm`` has C: on a disk, E: on a physical RDM, F: on a virtual RDM
and T: on an ``independent_nonpersistent`` disk; ``sql-indep`` has an
``independent_persistent`` data disk. A snapshot covers only C:, F: (and ``sql-indep``'s
first disk), so an image backup exports only those, says which it left out and why, and a
whole-VM restore leaves the others as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vcbsim.reference import BackupProxy, Catalog, InProcessHostClient, read_export_catalog
from vcbsim.reference._cli import main
from vcbsim.simulator._host import Host


def _era(tmp_path: Path) -> tuple[Any, InProcessHostClient, BackupProxy]:
    host = Host.demo(inventory="era")
    client = InProcessHostClient(host)
    return host, client, BackupProxy(client, tmp_path / "proxy")


def test_image_export_leaves_out_physical_rdm_and_independent_disks(tmp_path: Path) -> None:
    host, client, proxy = _era(tmp_path)
    vm = host.find_vm("db-rdm")
    c, e, f, t = (d.key for d in vm.disks)
    res = proxy.mount("name:db-rdm", "fullvm")
    assert res.ok, res.summary()
    assert [line.split(":")[0] for line in res.excluded_disks] == [f"disk {e} (Hard disk 2)", f"disk {t} (Hard disk 4)"]
    assert "physical-mode RDM" in res.excluded_disks[0] and "independent_nonpersistent" in res.excluded_disks[1]
    export = Path(res.path or "")
    meta = read_export_catalog(export / "catalog")
    # exported: the disk and the virtual RDM; the others named, with the reason, and no file
    assert {k for k in meta if k.endswith(".filename")} == {f"disk.{c}.filename", f"disk.{f}.filename"}
    assert "physical-mode RDM" in meta[f"disk.{e}.excluded"]
    assert meta[f"disk.{t}.excluded"].startswith("independent_nonpersistent")
    assert not [p for p in export.iterdir() if p.name.startswith("db-rdm_1") or p.name.startswith("db-rdm_3")]
    # the exported .vmx is the configuration as of the snapshot: the left-out disks keep their
    # lines (their base names), the exported ones name their exported VMDKs
    vmx = next(export.glob("*.vmx")).read_text(encoding="utf-8")
    assert vmx == client.read_vmx(vm.moref).replace("db-rdm-000001.vmdk", "db-rdm.vmdk").replace(
        "db-rdm_2-000001.vmdk", "db-rdm_2.vmdk"
    )
    assert '"db-rdm_1.vmdk"' in vmx and '"db-rdm_3.vmdk"' in vmx
    notes = [ev.details["text"] for ev in host.trace.of_kind("note") if "left out of the image" in ev.details.get("text", "")]
    assert len(notes) == 2


def test_live_data_of_a_physical_rdm_is_not_in_the_backup_and_restore_leaves_it(tmp_path: Path) -> None:
    host, client, proxy = _era(tmp_path)
    vm = host.find_vm("db-rdm")
    c, e, f, t = (d.key for d in vm.disks)
    with Catalog(tmp_path / "medium") as cat:
        res = proxy.backup("name:db-rdm", "fullvm", catalog=cat)
        assert res.ok and res.backup_id is not None, res.summary()
        assert {d.key for d in cat.image_disks(res.backup_id)} == {c, f}
        assert set(cat.excluded_disks(res.backup_id)) == {e, t}
        # after the backup the guest writes to C: (backed up) and E: (not)
        fs = host.guest_fs(vm)
        fs.write_bytes("C:\\after.txt", b"after the backup")
        fs.write_bytes("E:\\after.txt", b"on the LUN, after the backup")
        host.power_off(vm)
        cat.restore_vm(res.backup_id, client, vm.moref)
        fs = host.guest_fs(vm)
        assert not fs.exists("C:\\after.txt")  # the backed-up disk reads as backed up
        assert fs.read_bytes("E:\\after.txt") == b"on the LUN, after the backup"  # left as it is
        ok = [ev for ev in host.trace.of_kind("op.ok") if ev.details.get("op") == "restore-vm"]
        assert ok[-1].details["left"] == [e, t]


def test_independent_persistent_disk_is_left_out_and_cli_says_so(tmp_path: Path, capsys: Any) -> None:
    host, client, proxy = _era(tmp_path)
    vm = host.find_vm("sql-indep")
    with Catalog(tmp_path / "medium") as cat:
        res = proxy.backup("name:sql-indep", "fullvm", catalog=cat)
        assert res.ok and res.backup_id is not None
        assert [d.key for d in cat.image_disks(res.backup_id)] == [vm.disks[0].key]
        assert list(cat.excluded_disks(res.backup_id)) == [vm.disks[1].key]
        assert "independent_persistent" in res.excluded_disks[0]
    # a VM whose disks a snapshot covers has nothing left out
    res = proxy.mount("name:w2019-app", "fullvm")
    assert res.ok and res.excluded_disks == []


def test_cli_backup_names_each_left_out_disk_on_one_line(tmp_path: Path) -> None:
    import contextlib
    import io

    from vcbsim.simulator import open_host
    from vcbsim.simulator._host import GiB

    state = tmp_path / "state"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["restore", "--list", "--state", str(state)]) == 0
    host = open_host(state / "datastore")
    try:
        host.add_vm("indep1", disks=[1 * GiB, 1 * GiB], disk_modes=["persistent", "independent_persistent"])
        key = host.find_vm("indep1").disks[1].key
    finally:
        host.store.close()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["backup", "-a", "name:indep1", "-t", "fullvm", "--state", str(state), "--no-progress"])
    text = out.getvalue()
    assert code == 0, text
    left = [ln for ln in text.splitlines() if ln.startswith("  not backed up: ")]
    assert left == [
        f"  not backed up: disk {key} (Hard disk 2): independent_persistent disk: a snapshot does not cover it "
        "(independent disks are not affected by snapshots)"
    ]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["restore", "--backup", "1", "--vm", "-a", "name:indep1", "--state", str(state)])
    assert code == 0, out.getvalue()
    assert f"left as it is (not in the backup): disk {key}: independent_persistent" in out.getvalue()


def test_drop_vmx_disks_removes_every_line_of_the_left_out_devices() -> None:
    from vcbsim.reference._image import drop_vmx_disks

    vmx = (
        'displayName = "db"\n'
        'scsi0:0.present = "TRUE"\nscsi0:0.fileName = "db.vmdk"\n'
        'scsi0:1.present = "TRUE"\nscsi0:1.fileName = "db_1.vmdk"\nscsi0:1.mode = "independent-persistent"\n'
        'scsi0:10.present = "TRUE"\nscsi0:10.fileName = "db_10-000001.vmdk"\n'
    )
    out = drop_vmx_disks(vmx, {"db_1.vmdk"})
    assert out == (
        'displayName = "db"\n'
        'scsi0:0.present = "TRUE"\nscsi0:0.fileName = "db.vmdk"\n'
        'scsi0:10.present = "TRUE"\nscsi0:10.fileName = "db_10-000001.vmdk"\n'
    )
    assert drop_vmx_disks(vmx, {"db_10.vmdk"}).count("scsi0:10") == 0
    assert drop_vmx_disks(vmx, set()) == vmx
