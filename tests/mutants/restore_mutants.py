"""Restore mutants (issue 16): the reference whose restore over the wire is wrong in one
plausible way, each made by replacing one step of ``reference/_wirerestore.py`` for the length
of the hook's call. The kit's ``wire-restore`` scenario (``conformance/_scenario_restore.py``)
rejects each, naming its RST-* rule (``test_mutants.py``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from unittest import mock

from pyVim.task import WaitForTask
from pyVmomi import vim

from vcbsim.conformance import ReferenceOrchestrator
from vcbsim.reference import _wirerestore

#: a mutant: the patches (``_wirerestore`` name -> replacement, given the orchestrator) active
#: while its restore hooks run
Patches = Callable[[ReferenceOrchestrator], Mapping[str, Any]]


def _live_disks(orch: ReferenceOrchestrator) -> Mapping[str, Any]:
    """Uploads the VM's live disks (read from the host it backed up) instead of the backup's."""
    real = _wirerestore._upload_all

    def upload_all(client: Any, ds: str, target: str, over: bool, backup_id: int, images: dict[int, Any],
                   *a: Any) -> Any:
        host = orch._client.host
        vm = host.find_vm(orch._catalog.backup(backup_id).vm_name)
        live = {k: (f, host.disk_view(vm, k)) for k, (f, _img) in images.items()}
        return real(client, ds, target, over, backup_id, live, *a)

    return {"_upload_all": upload_all}


def _ignores_settings(orch: ReferenceOrchestrator) -> Mapping[str, Any]:
    """Writes the backed-up ``.vmx`` as it was, without the settings the restore was asked for."""
    real = _wirerestore.restore_vmx
    return {"restore_vmx": lambda text, name, files, *, keep_uuid, settings=None: real(text, name, files,
                                                                                       keep_uuid=keep_uuid)}


def _overwrites_running(orch: ReferenceOrchestrator) -> Mapping[str, Any]:
    """Never refuses a running original: powers it off itself and replaces it."""
    real = _wirerestore._register

    def register(client: Any, ds: str, vmx_path: str, target: str, original: Any, *a: Any) -> None:
        if original is not None and original.runtime.powerState == "poweredOn":
            WaitForTask(original.PowerOffVM_Task())
        real(client, ds, vmx_path, target, original, *a)

    return {"_refuse_running": lambda vm, name: None, "_register": register}


def _half_made_vm(orch: ReferenceOrchestrator) -> Mapping[str, Any]:
    """Creates the VM it restores into before it looks at the original's power state, and on
    the refusal leaves it registered."""
    real = _wirerestore._refuse_running

    def refuse(vm: Any, name: str) -> None:
        if vm.runtime.powerState == "poweredOn":
            ds = vm.config.files.vmPathName.split("]", 1)[0] + "]"
            spec = vim.vm.ConfigSpec(name=f"{name}-new", guestId="winNetEnterpriseGuest",
                                     files=vim.vm.FileInfo(vmPathName=ds))
            WaitForTask(vm.parent.CreateVM_Task(spec, vm.resourcePool))
        real(vm, name)

    return {"_refuse_running": refuse}


def _placeholder_left_on_failure(orch: ReferenceOrchestrator | None) -> Mapping[str, Any]:
    """Reserves the restore with a placeholder VM (``CreateVM_Task`` of ``<name>-restoring``,
    no disks) before it uploads, and destroys it once the uploads are done; when an upload
    fails it reports the failure but leaves the placeholder registered. Every restore without
    a fault is right: only a fault during the restore (the exploration's
    ``fault_during_restore``) shows it."""
    real = _wirerestore._upload_all

    def upload_all(client: Any, ds: str, target: str, *a: Any) -> Any:
        folder = _wirerestore._vm_folder(client)
        spec = vim.vm.ConfigSpec(name=f"{target}-restoring", guestId="winNetEnterpriseGuest",
                                 files=vim.vm.FileInfo(vmPathName=f"[{ds}]"))
        placeholder = _wirerestore._wait(folder.CreateVM_Task(spec, _wirerestore._pool(client)))
        out = real(client, ds, target, *a)  # an upload that fails leaves the placeholder
        WaitForTask(placeholder.Destroy_Task())
        return out

    return {"_upload_all": upload_all}


def _hides_overwrites(orch: ReferenceOrchestrator) -> Mapping[str, Any]:
    """Its file restore never looks whether a file is already in the guest, so it reports
    nothing as overwritten."""
    return {"_in_guest": lambda *a: False}


#: mutant -> (patches, the rule it breaks)
RESTORE_MUTANTS: dict[str, tuple[Patches, str]] = {
    "restores-the-live-disk": (_live_disks, "RST-DISKS-EQUAL"),
    "ignores-the-asked-settings": (_ignores_settings, "RST-VMX-KEPT"),
    "overwrites-a-running-vm": (_overwrites_running, "RST-NO-RUNNING-OVERWRITE"),
    "leaves-a-half-made-vm": (_half_made_vm, "RST-NO-HALF-VM"),
    "file-restore-hides-overwrites": (_hides_overwrites, "RST-FILES-EXACT"),
    # passes the hand-written scenario: only the exploration's fault during a restore shows it
    "leaves-its-placeholder-after-a-failed-upload": (_placeholder_left_on_failure, "RST-NO-HALF-VM"),
}
#: the mutants the hand-written ``wire-restore`` scenario cannot reject (they need a fault
#: during the restore, which only the exploration arms)
EXPLORATION_ONLY = frozenset({"leaves-its-placeholder-after-a-failed-upload"})


def restore_mutant(name: str) -> type[ReferenceOrchestrator]:
    """An orchestrator factory class for ``run()``: the reference whose restore hooks run with
    mutant ``name``'s patches; importable by name so a printed regression test runs."""
    patches, _rule = RESTORE_MUTANTS[name]

    class Mutant(ReferenceOrchestrator):
        def __init__(self) -> None:
            super().__init__(name=f"reference+{name}")

        @contextlib.contextmanager
        def _patched(self) -> Iterator[None]:
            with contextlib.ExitStack() as stack:
                for attr, fn in patches(self).items():
                    stack.enter_context(mock.patch.object(_wirerestore, attr, fn))
                yield

        def restore_vm(self, *a: Any, **kw: Any) -> None:
            with self._patched():
                super().restore_vm(*a, **kw)

        def restore_files(self, *a: Any, **kw: Any) -> None:
            with self._patched():
                super().restore_files(*a, **kw)

    Mutant.__qualname__ = Mutant.__name__ = "ReferenceRestore_" + name.replace("-", "_")
    globals()[Mutant.__name__] = Mutant
    return Mutant

