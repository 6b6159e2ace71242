"""The RESTORE rules judge real restores over the wire (issue 16): the reference proxy's
restores pass every RST-* rule (the merged trace of host and proxy through ``check_trace``, the
restored data through ``check_restored_disks`` / ``check_restored_settings``), and each restore
mutant (a plausible wrong restore, made by changing one step of ``reference/_wirerestore.py``)
is rejected naming its rule."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from vcbsim.conformance import check_trace
from vcbsim.conformance._check_restore import check_restored_disks, check_restored_settings
from vcbsim.reference import Catalog, VSphereHostClient, _wirerestore, main
from vcbsim.reference._wirerestore import restore_files_into_guest, restore_vm_over_wire
from vcbsim.simulator import StateError

SMALL = "win-small"
AUTH = {"guest_user": "Administrator", "guest_password": "vmware"}


def _remote(url: str, state: Path) -> list[str]:
    return ["--server", url, "--user", "user", "--password", "pass", "--insecure", "--guest-user", "Administrator",
            "--guest-password", "vmware", "--state", str(state), "--json", "--no-progress"]  # fmt: skip


@pytest.fixture
def setup(host: Any, url: str, tmp_path: Path, capsys: Any) -> Iterator[dict[str, Any]]:
    """An image and a file-level backup of ``win-small`` on the medium, then guest writes after
    them; a client whose proxy events go into the host's trace (one merged trace)."""
    state = tmp_path / "state"
    ids = {}
    for kind in ("fullvm", "file"):
        assert main(["backup", *_remote(url, state), "-a", f"name:{SMALL}", "-t", kind]) == 0
        ids[kind] = json.loads(capsys.readouterr().out)[0]["backup_id"]
    fs = host.guest_fs(SMALL)
    fs.write_bytes("C:\\Windows\\system.ini", b"changed after the backup")
    fs.write_bytes("D:\\db\\new.txt", b"made after the backup")
    mark = len(host.trace)
    with VSphereHostClient(url, "user", "pass", insecure=True, **AUTH) as client:
        client.trace.subscribe(lambda ev: host.trace.emit(ev.actor, ev.kind, vm=ev.vm, step=ev.step, **ev.details))
        with Catalog(state / "medium") as cat:
            yield {"host": host, "client": client, "cat": cat, "image": ids["fullvm"], "file": ids["file"],
                   "mark": mark, "tmp": tmp_path}


def _judge(s: dict[str, Any], vm_name: str | None = None, asked: dict[str, str] | None = None,
           new_vm: bool = True) -> set[str]:
    """Every RST rule the restore broke: the merged trace, and the restored VM's data."""
    host = s["host"]
    report = check_trace(host.trace.events, profile=host.profile.name)
    broken = {v.rule_id for v in report.violations}
    if vm_name is not None:
        cat = s["cat"]
        _meta, images = cat.image_as_of_snapshot(s["image"], s["tmp"] / f"rebuild-{len(host.trace)}")
        vm = host.find_vm(vm_name)
        restored = [(d.key, d.capacity, host.disk_view(vm, d.key).read) for d in vm.disks]
        found = check_restored_disks({k: img.read for k, (_f, img) in images.items()}, restored, vm=vm.moref)
        backed_up = _vmx_settings(_wirerestore._vmx_of_backup(cat, s["image"]))
        found += check_restored_settings(backed_up, _vmx_settings(vm.vmx_text()), asked or {}, new_vm=new_vm, vm=vm.moref)
        broken |= {v.rule_id for v in found}
    return {r for r in broken if r.startswith("RST-")}


def _vmx_settings(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        m = re.match(r'^\s*([^=\s]+)\s*=\s*"(.*)"\s*$', line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


# -- the reference passes ---------------------------------------------------------------------


def test_the_reference_restores_pass_every_restore_rule(setup: dict[str, Any]) -> None:
    s = setup
    host, client, cat = s["host"], s["client"], s["cat"]
    asked = {"memsize": "1536"}
    restore_vm_over_wire(cat, s["image"], client, name="copy", settings=asked)
    assert _judge(s, "copy", asked) == set()
    with pytest.raises(StateError):  # running: refused, nothing changed
        restore_vm_over_wire(cat, s["image"], client, over=f"name:{SMALL}")
    host.power_off(SMALL)
    restore_vm_over_wire(cat, s["image"], client, over=f"name:{SMALL}")
    assert _judge(s, SMALL, new_vm=False) == set()
    host.power_on(SMALL)
    out = restore_files_into_guest(cat, s["file"], client, "C:\\Windows")
    assert out.overwritten == ["C:\\Windows\\system.ini"]
    assert _judge(s) == set()
    report = check_trace(host.trace.events, profile=host.profile.name)
    assert report.ok, report.format()


# -- the mutants are rejected ------------------------------------------------------------------


def _live_disks(s: dict[str, Any]) -> Callable[..., Any]:
    real = _wirerestore._upload_all

    def mutant(client: Any, ds: str, target: str, over: bool, backup_id: int, images: dict[int, Any], *a: Any) -> Any:
        vm = s["host"].find_vm(SMALL)
        live = {k: (f, s["host"].disk_view(vm, k)) for k, (f, _img) in images.items()}
        return real(client, ds, target, over, backup_id, live, *a)

    return mutant


def _ignores_settings(s: dict[str, Any]) -> Callable[..., Any]:
    real = _wirerestore.restore_vmx
    return lambda text, name, files, *, keep_uuid, settings=None: real(text, name, files, keep_uuid=keep_uuid)


def _half_made_vm(s: dict[str, Any]) -> Callable[..., Any]:
    def mutant(client: Any, ds: str, vmx_path: str, target: str, *a: Any) -> None:
        spec = vim.vm.ConfigSpec(name=f"{target}-new", guestId="winNetEnterpriseGuest", files=vim.vm.FileInfo(vmPathName=f"[{ds}]"))
        WaitForTask(_wirerestore._vm_folder(client).CreateVM_Task(spec, _wirerestore._pool(client)))
        msg = "the data upload into the new VM failed"
        raise StateError(msg)

    return mutant


@pytest.mark.parametrize(
    ("mutant", "patch", "make", "rule"),
    [
        ("restores-the-live-disk", "_upload_all", _live_disks, "RST-DISKS-EQUAL"),
        ("ignores-the-asked-settings", "restore_vmx", _ignores_settings, "RST-VMX-KEPT"),
        ("leaves-a-half-made-vm", "_register", _half_made_vm, "RST-NO-HALF-VM"),
    ],
)
def test_whole_vm_restore_mutants_are_rejected(setup: dict[str, Any], monkeypatch: Any, mutant: str, patch: str,
                                               make: Callable[..., Any], rule: str) -> None:
    s = setup
    monkeypatch.setattr(_wirerestore, patch, make(s))
    asked = {"memsize": "1536"}
    try:
        restore_vm_over_wire(s["cat"], s["image"], s["client"], name="copy", settings=asked)
    except StateError:
        pass
    name = "copy" if rule != "RST-NO-HALF-VM" else None
    assert _judge(s, name, asked) == {rule}, mutant


def test_powers_off_the_running_original_is_rejected(setup: dict[str, Any], monkeypatch: Any) -> None:
    s = setup
    real = _wirerestore._register

    def mutant(client: Any, ds: str, vmx_path: str, target: str, original: Any, *a: Any) -> None:
        if original.runtime.powerState == "poweredOn":
            WaitForTask(original.PowerOffVM_Task())
        real(client, ds, vmx_path, target, original, *a)

    monkeypatch.setattr(_wirerestore, "_refuse_running", lambda vm, name: None)
    monkeypatch.setattr(_wirerestore, "_register", mutant)
    restore_vm_over_wire(s["cat"], s["image"], s["client"], over=f"name:{SMALL}")
    assert _judge(s) == {"RST-NO-RUNNING-OVERWRITE"}


def test_file_restore_that_hides_an_overwrite_is_rejected(setup: dict[str, Any], monkeypatch: Any) -> None:
    s = setup
    monkeypatch.setattr(_wirerestore, "_in_guest", lambda *a: False)
    out = restore_files_into_guest(s["cat"], s["file"], s["client"], "C:\\Windows")
    assert out.overwritten == []
    assert _judge(s) == {"RST-FILES-EXACT"}


def test_file_restore_that_writes_more_than_chosen_is_rejected(setup: dict[str, Any], monkeypatch: Any) -> None:
    s = setup
    real = s["cat"].restore_files
    monkeypatch.setattr(s["cat"], "restore_files",
                        lambda backup_id, path, target: real(backup_id, path, target) + real(backup_id, "D:\\", target))
    restore_files_into_guest(s["cat"], s["file"], s["client"], "C:\\Windows")
    assert _judge(s) == {"RST-FILES-EXACT"}
