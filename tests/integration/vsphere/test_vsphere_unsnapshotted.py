"""Over the wire: the vSphere binding reads each disk's ``diskMode``, so an image backup
leaves out an independent disk (``reference/_image.py``), and a restore as a new VM registers
it without it and says so. (A virtual-mode RDM's ``VMFSRDM`` extent is read over the wire:
``test_vsphere_rdm_wire.py``.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vcbsim.reference import main
from vcbsim.simulator._host import MiB


def _remote(url: str, tmp_path: Path) -> list[str]:
    return ["--server", url, "--user", "user", "--password", "pass", "--insecure",
            "--guest-user", "Administrator", "--guest-password", "vmware",
            "--state", str(tmp_path / "state"), "--json", "--no-progress"]  # fmt: skip


def test_image_backup_and_restore_over_the_wire_leave_out_unsnapshotted_disks(
    host: Any, url: str, tmp_path: Path, capsys: Any
) -> None:
    vm = host.add_vm(
        "rdm-small", disks=[48 * MiB, 48 * MiB, 48 * MiB], ip_address="192.0.2.41",
        disk_modes=["persistent", "independent_persistent", "persistent"],
    )  # fmt: skip
    fs = host.add_guest_volumes(vm, {0: [(None, "C", "SYSTEM")], 1: [(None, "E", "SAN")], 2: [(None, "F", "LOGS")]})
    fs.write_bytes("F:\\log.txt", b"a plain disk")
    c, e, f = (d.key for d in vm.disks)
    assert main(["backup", *_remote(url, tmp_path), "-a", "name:rdm-small", "-t", "fullvm"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["status"] == "ok"
    assert [line.split(":")[0] for line in run["excluded_disks"]] == [f"disk {e} (Hard disk 2)"]
    assert "independent_persistent disk" in run["excluded_disks"][0]
    args = ["restore", *_remote(url, tmp_path), "--backup", str(run["backup_id"]), "--vm", "--name", "rdm-copy"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["not_restored"]) == [str(e)] and sorted(out["disks"]) == sorted([str(c), str(f)])
    copy = host.find_vm("rdm-copy")
    assert len(copy.disks) == 2 and "rdm-small_1" not in copy.vmx_text()
    # the guest of the copy finds its volumes anew: the third disk is its second
    assert copy.guest is not None and copy.guest.read_bytes("D:\\log.txt") == b"a plain disk"


def test_restore_over_the_original_is_refused_when_the_backup_left_disks_out(
    host: Any, url: str, tmp_path: Path, capsys: Any
) -> None:
    """Replacing the original would destroy the independent disk the backup does not hold."""
    vm = host.add_vm("indep-small", disks=[48 * MiB, 48 * MiB], ip_address="192.0.2.42",
                     disk_modes=["persistent", "independent_persistent"])
    host.add_guest_volumes(vm, {0: [(None, "C", "SYSTEM")], 1: [(None, "E", "DATA")]})
    host.guest_fs(vm).write_bytes("E:\\live.txt", b"only here")
    assert main(["backup", *_remote(url, tmp_path), "-a", "name:indep-small", "-t", "fullvm"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    host.power_off(vm)
    args = ["restore", *_remote(url, tmp_path), "--backup", str(run["backup_id"]), "--vm", "--over",
            "-a", "name:indep-small"]
    assert main(args) == 2
    err = json.loads(capsys.readouterr().out)
    assert "left out disk(s)" in err["message"] and "\n" not in err["message"]
    assert host.find_vm("indep-small") is vm and host.guest_fs(vm).read_bytes("E:\\live.txt") == b"only here"
