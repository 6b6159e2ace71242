"""``vcbsim restore --server`` when the host fails a restore call (issue 16): a fault rule on
``RegisterVM_Task``, on a ``/folder`` PUT (the datastore full part way, HTTP 507) or a connection
lost part way. The restore fails with one line, registers nothing, leaves no upload behind, and
over the original puts the original back as it was; the fault rules take only the faults the
API reference lists for the method."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vcbsim.reference import main
from vcbsim.simulator import InvalidInputError

SMALL = "win-small"


def _remote(url: str, tmp_path: Path) -> list[str]:
    return ["--server", url, "--user", "user", "--password", "pass", "--insecure",
            "--state", str(tmp_path / "state"), "--json", "--no-progress"]  # fmt: skip


def _backup(url: str, tmp_path: Path, capsys: Any) -> int:
    assert main(["backup", *_remote(url, tmp_path), "-a", f"name:{SMALL}", "-t", "fullvm"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    return int(run["backup_id"])


def _uploads(host: Any) -> list[Any]:
    return sorted(k for k in host.uploads if str(k[1]).startswith(("small-copy/", f"{SMALL}/")))


@pytest.mark.parametrize(
    ("rule", "code", "words"),
    [
        ({"operation": "vm.register", "fault": "DuplicateName"}, 1, "DuplicateName"),
        ({"operation": "vm.register", "fault": "NoDiskSpace"}, 1, "NoDiskSpace"),
        ({"operation": "datastore.put", "fault": "NoDiskSpace", "after": 1}, 4, "HTTP 507 NoDiskSpace"),
        ({"operation": "datastore.put.drop"}, 4, "connection was lost part way"),
    ],
    ids=["register-duplicate", "register-nospace", "upload-nospace", "upload-dropped"],
)
def test_a_failed_restore_as_a_new_vm_says_why_in_one_line_and_leaves_nothing(
        host: Any, url: str, tmp_path: Path, capsys: Any, rule: dict[str, Any], code: int, words: str) -> None:
    backup_id = _backup(url, tmp_path, capsys)
    before = dict(host.vms)
    host.add_fault(**rule)
    args = ["restore", *_remote(url, tmp_path), "--backup", str(backup_id), "--vm", "--name", "small-copy"]
    assert main(args) == code
    err = json.loads(capsys.readouterr().out)
    assert words in err["message"] and "\n" not in err["message"], err
    assert host.vms == before and _uploads(host) == []
    fired = [e for e in host.trace.events if e.kind == "fault.injected"]
    assert fired and fired[-1].details["operation"] == rule["operation"]
    # the same restore with the fault gone succeeds: nothing the failure left is in the way
    host.faults.clear()
    assert main(args) == 0
    assert host.find_vm("small-copy").power_state == "poweredOff"


def test_a_failed_restore_over_the_original_puts_the_original_back(host: Any, url: str, tmp_path: Path,
                                                                   capsys: Any) -> None:
    backup_id = _backup(url, tmp_path, capsys)
    original = host.find_vm(SMALL)
    host.guest_fs(SMALL).write_bytes("C:\\after.txt", b"kept: the restore failed")
    host.power_off(original)
    host.add_fault(operation="vm.register", target=SMALL, fault="InsufficientResourcesFault")
    args = ["restore", *_remote(url, tmp_path), "--backup", str(backup_id), "--vm", "--over"]
    assert main(args) == 1
    assert "InsufficientResourcesFault" in json.loads(capsys.readouterr().out)["message"]
    assert host.find_vm(SMALL) is original and original.moref in host.vms
    assert _uploads(host) == []
    host.power_on(original)
    assert host.guest_fs(SMALL).read_bytes("C:\\after.txt") == b"kept: the restore failed"
    kinds = [e.kind for e in host.trace.events if e.kind in ("vm.unregister", "vm.register", "vm.destroy")]
    assert kinds[-2:] == ["vm.unregister", "vm.register"]  # put back, nothing destroyed


@pytest.mark.parametrize(("operation", "fault"), [("vm.create", "TaskInProgress"), ("vm.register", "ToolsUnavailable"),
                                                  ("vdisk.copy", "InvalidPowerState"), ("datastore.put", "DuplicateName")])
def test_a_rule_takes_only_the_faults_the_method_declares(host: Any, operation: str, fault: str) -> None:
    with pytest.raises(InvalidInputError, match="a fault the method declares"):
        host.add_fault(operation=operation, fault=fault)


def test_vdisk_faults_fire_in_virtual_disk_manager_calls(host: Any) -> None:
    from pyVmomi import vim

    host.add_fault(operation="vdisk.create", fault="NoDiskSpace")
    with pytest.raises(vim.fault.NoDiskSpace):
        host.create_virtual_disk("[datastore1] loose/new.vmdk", 1 << 20)
    host.add_fault(operation="vdisk.copy", target="*copy.vmdk", fault="FileAlreadyExists")
    host.create_virtual_disk("[datastore1] loose/new.vmdk", 1 << 20)
    with pytest.raises(vim.fault.FileAlreadyExists):
        host.copy_virtual_disk("[datastore1] loose/new.vmdk", "[datastore1] loose/copy.vmdk")
    assert ("datastore1", "loose/copy.vmdk") not in host.loose_disks
    host.add_fault(operation="vm.create", fault="DuplicateName")
    before = dict(host.vms)
    with pytest.raises(vim.fault.DuplicateName):
        host.create_vm("made", datastore="datastore1")
    assert host.vms == before
