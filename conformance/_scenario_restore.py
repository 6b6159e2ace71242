"""The kit's restore scenario (issue 16): a product that declares ``wire_restore`` is asked to
restore, over the simulator's endpoint, what it backed up, and the RESTORE rules are judged
from the host's own facts.

One ``restore`` step of a case (``Scenario.restore``, ``SCENARIOS["wire-restore"]``):

1. an image-level backup of the VM (and of a Windows guest a file-level one), judged as every
   job is; then the guest writes (the live disks now differ from the backup's snapshot);
2. the kit serves its host on a loopback port (``vcbsim.simulator.soap.serve``) and asks the
   product's optional restore hooks (``Orchestrator.restore_vm`` / ``restore_files``, with a
   ``RestoreEndpoint``):

   - a restore as a **new VM** with one setting changed (``memsize``): its disks must equal
     the backup's snapshot, not the live disks (RST-DISKS-EQUAL, by ``image_digest``), its
     ``.vmx`` must keep every other setting and take the one asked, with a new BIOS uuid
     (RST-VMX-KEPT, ``check_restored_settings``);
   - a restore **over the original while it runs**: it must be refused; the original must
     still be registered, powered on and hold its live data (RST-NO-RUNNING-OVERWRITE; the
     trace model judges the same rule on the product's ``op.*`` events);
   - a restore **over the powered-off original**: its disks equal the snapshot, its settings
     are kept (the original's uuid too);
   - of a Windows guest, the file-level backup's ``D:\\Data`` **into the running guest**: the
     files it holds are in the guest with the backup's content (RST-FILES-EXACT; the trace
     model judges what the host put into the guest against what the product reports).

   Every restore that fails (the refusal included) must leave no VM registered that was not
   there before (RST-NO-HALF-VM): a real host leaves a created or registered VM in the
   inventory until someone removes it (vSphere API: ``Folder.CreateVM_Task``,
   ``Folder.RegisterVM_Task``, ``VirtualMachine.Destroy_Task``).

3. after each restore the trace so far goes through ``check_trace`` (``RestoreModel``).

A product that does not declare ``wire_restore``, or has no hooks, is not asked: the step
backs nothing up and says why (``not_asked``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vcbsim.simulator import Event

from ._check_restore import check_restored_settings
from ._errors import ConformanceViolation

if TYPE_CHECKING:
    from ._suite import Scenario

__all__ = ["RestoreEndpoint", "run_restore_step", "vmx_settings"]

#: the guest accounts the served host accepts for guest operations (``serve``'s default)
GUEST_USER, GUEST_PASSWORD = "Administrator", "vmware"
#: the folder of the Windows guest restored from the file-level backup
FILE_RESTORE_PATH = "D:\\Data"


@dataclass(frozen=True, slots=True)
class RestoreEndpoint:
    """What a product's restore hook is given: the served host's SDK URL and accounts, and
    ``record`` for its proxy events (``op.invoke`` / ``op.ok`` / ``op.fail`` with
    ``op="restore-vm"`` or ``"restore-files"``), which go into the host's trace in order."""

    url: str
    user: str
    password: str
    guest_user: str
    guest_password: str
    record: Callable[[Event], None]


def vmx_settings(text: str) -> dict[str, str]:
    """``key = "value"`` lines of a ``.vmx``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r'^\s*([^=\s]+)\s*=\s*"(.*)"\s*$', line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _digests(s: Scenario, vm: Any) -> list[str]:
    from ._adapters import image_digest

    return [image_digest(s.host.disk_view(vm, d.key)) for d in vm.disks]


def _registered(s: Scenario) -> dict[str, str]:
    return {v.moref: v.name for v in s.host.vms.values()}


def run_restore_step(s: Scenario, vm: str) -> None:
    """The ``restore`` step (module docstring)."""
    restore_vm = getattr(s.adapter, "restore_vm", None)
    restore_files = getattr(s.adapter, "restore_files", None)
    if not s.caps.wire_restore or not callable(restore_vm):
        s.not_asked.append(f"restore of {vm}: the product declared no restore over the wire "
                           "(Capabilities.wire_restore and an Orchestrator.restore_vm hook)")
        return
    vmobj = s.host.find_vm(vm)
    windows = str(vmobj.os_family) == "windows"
    before = vmx_settings(vmobj.vmx_text())
    mark = len(s.host.trace)
    image = s.backup(vm, "fullvm", "full")
    if image is None or not image.ok or image.backup_id is None:
        return  # judged as a job; a failed backup gives nothing to restore
    snap = s.job_snapshot(vm, mark)
    files = None
    if windows and callable(restore_files) and s.caps.file:
        files = s.backup(vm, "file", "full")
    s._guest_write(vm, f"{FILE_RESTORE_PATH}\\after-backup.txt" if windows else "/var/www/after-backup.html",
                   "written after the backup")
    want = s._snap_digests.get(str(snap.details.get("snapshot"))) if snap is not None else None

    from vcbsim.simulator.soap import serve

    with serve(s.host, http=True, user="user", password="pass") as running:
        r = _Restorer(s, vm, image.backup_id, running.url, restore_vm, snap)
        # as a new VM, one setting changed
        copy = f"{vm}-restored"
        asked = {"memsize": str(int(before.get("memsize", "1024")) + 512)}
        if r.call(name=copy, over=False, settings=asked):
            r.judge_vm(copy, want, before, asked, new_vm=True)
        # over the original while it runs: refused, nothing changed
        live = _digests(s, vmobj)
        r.call(name=None, over=True, settings=None, refusal=True)
        r.judge_untouched(vmobj, live)
        # over the powered-off original
        s.host.power_off(vm)
        if r.call(name=None, over=True, settings=None):
            r.judge_vm(vm, want, before, {}, new_vm=False)
        restored = s.host.find_vm(vm)
        if restored.power_state != "poweredOn":
            s.host.power_on(restored)
        _rebase_logs(s, vm)
        # files into the running guest
        if files is not None and files.ok and files.backup_id is not None and callable(restore_files):
            r.files(restore_files, files.backup_id, dict(files.files or {}))


class _Restorer:
    """One restore step's calls of the product's hooks and their judgement."""

    def __init__(self, s: Scenario, vm: str, backup_id: str, url: str, hook: Callable[..., Any],
                 snap: Event | None) -> None:
        self.s, self.vm, self.backup_id, self.url, self.hook, self.snap = s, vm, backup_id, url, hook, snap

    @property
    def ep(self) -> RestoreEndpoint:
        """A fresh endpoint per hook call: an ``op_id`` need only be unique within one call,
        the kit prefixes it with the call's number (as the wire route does per job)."""
        s = self.s
        n = s.statistics["restores"] = s.statistics.get("restores", 0) + 1

        def record(ev: Event) -> None:
            details = dict(ev.details)
            if "op_id" in details:
                details["op_id"] = f"restore{n}-{details['op_id']}"
            s.host.trace.emit(ev.actor, ev.kind, vm=ev.vm, step=ev.step, **details)

        return RestoreEndpoint(self.url, "user", "pass", GUEST_USER, GUEST_PASSWORD, record)

    def _witness(self) -> tuple[Event, ...]:
        return (self.snap,) if self.snap is not None else ()

    def call(self, *, name: str | None, over: bool, settings: Mapping[str, str] | None,
             refusal: bool = False) -> bool:
        """Ask one whole-VM restore; ``True`` when it succeeded. A failure (an exception from
        the hook) is judged for RST-NO-HALF-VM; only a refusal is expected to fail."""
        s = self.s
        had = _registered(s)
        mark = len(s.host.trace)
        what = "over the running original" if refusal else ("over the powered-off original" if over else f"as {name}")
        try:
            self.hook(self.ep, self.vm, self.backup_id, name=name, over=over,
                      settings=dict(settings) if settings else None)
        except Exception as exc:  # noqa: BLE001 - the product's failure, judged below
            s.occasion("RST-NO-HALF-VM")
            s.check(open_ended=True)
            made = {m: n for m, n in _registered(s).items() if m not in had}
            if made:
                moref, vname = next(iter(made.items()))
                ev = [e for e in s.host.trace.events[mark:] if e.vm == moref and e.kind in ("vm.create", "vm.register")]
                why = (f"the restore of {self.vm} {what} failed ({type(exc).__name__}: {exc}) but left {vname} "
                       f"({moref}) registered, which it made; a failed restore leaves no half-made VM")
                raise ConformanceViolation("RST-NO-HALF-VM", why, witness=tuple(ev[:1]), vm=moref) from exc
            if refusal:
                return False
            why = (f"the product declares a restore over the wire (Capabilities.wire_restore), but restoring backup "
                   f"{self.backup_id} of {self.vm} {what} failed: {type(exc).__name__}: {exc}")
            raise ConformanceViolation("EV-DECLARED-WORKS", why, witness=self._witness(),
                                       vm=s._moref(self.vm)) from exc
        s.check(open_ended=True)
        return True

    def judge_untouched(self, original: Any, live: list[str]) -> None:
        """The running original is still there, powered on, with its live data."""
        s = self.s
        s.occasion("RST-NO-RUNNING-OVERWRITE")
        now = next((v for v in s.host.vms.values() if v.moref == original.moref), None)
        problem = ""
        if now is None or now is not original:
            problem = "is no longer registered as it was (replaced)"
        elif original.power_state != "poweredOn":
            problem = f"is now {original.power_state}"
        elif _digests(s, original) != live:
            problem = "holds other data than before the restore"
        if problem:
            why = (f"asked to restore over {self.vm} while it was powered on, the product did not refuse: {self.vm} "
                   f"{problem}; a restore never overwrites a running VM")
            raise ConformanceViolation("RST-NO-RUNNING-OVERWRITE", why, witness=self._witness(), vm=original.moref)

    def judge_vm(self, name: str, want: Mapping[int, str] | None, before: Mapping[str, str],
                 asked: Mapping[str, str], *, new_vm: bool) -> None:
        """RST-DISKS-EQUAL and RST-VMX-KEPT of the VM the restore made."""
        from ._adapters import image_digest

        s = self.s
        restored = s.host.find_vm(name)
        if want is not None:
            s.occasion("RST-DISKS-EQUAL")
            got = [(d.key, image_digest(s.host.disk_view(restored, d.key))) for d in restored.disks]
            expected = sorted(want.items())
            if len(got) != len(expected):
                why = f"the VM restored as {name} has {len(got)} disk(s), the backup of {self.vm} {len(expected)}"
                raise ConformanceViolation("RST-DISKS-EQUAL", why, witness=self._witness(), vm=restored.moref)
            for (key, digest), (dkey, have) in zip(expected, got, strict=True):
                if digest != have:
                    why = (f"disk {dkey} of the VM restored as {name} differs from disk {key} of {self.vm} as of the "
                           "backup's snapshot; a restore gives back the backup, not the live disk")
                    raise ConformanceViolation("RST-DISKS-EQUAL", why, witness=self._witness(), vm=restored.moref)
        s.occasion("RST-VMX-KEPT")
        found = check_restored_settings(before, vmx_settings(restored.vmx_text()), asked, new_vm=new_vm,
                                        vm=restored.moref)
        if found:
            why = f"the VM restored as {name}: " + "; ".join(v.explanation for v in found[:3])
            raise ConformanceViolation("RST-VMX-KEPT", why, witness=self._witness(), vm=restored.moref)

    def files(self, hook: Callable[..., Any], backup_id: str, backed_up: Mapping[str, str]) -> None:
        """The file-level backup's ``D:\\Data`` into the running guest: each file there has the
        backup's content (the trace model judges written / overwritten)."""
        s = self.s
        try:
            hook(self.ep, self.vm, backup_id, FILE_RESTORE_PATH)
        except Exception as exc:
            why = (f"the product declares a restore over the wire (Capabilities.wire_restore), but restoring "
                   f"{FILE_RESTORE_PATH} of file-level backup {backup_id} into {self.vm} failed: "
                   f"{type(exc).__name__}: {exc}")
            raise ConformanceViolation("EV-DECLARED-WORKS", why, vm=s._moref(self.vm)) from exc
        s.check(open_ended=True)
        s.occasion("RST-FILES-EXACT")
        root = FILE_RESTORE_PATH.casefold() + "\\"
        for path, sha in sorted(backed_up.items()):
            if not path.casefold().startswith(root):
                continue
            data = s._read_guest(self.vm, path)
            if data is None or hashlib.sha256(data).hexdigest() != sha:
                why = (f"after the file restore of {FILE_RESTORE_PATH} from backup {backup_id}, {self.vm}'s {path} "
                       f"{'is missing' if data is None else 'holds other data than the backup'}; a file restore "
                       "writes exactly the chosen files, as backed up")
                raise ConformanceViolation("RST-FILES-EXACT", why, vm=s._moref(self.vm))


def _rebase_logs(s: Scenario, vm: str) -> None:
    """After a restore over the original the guest's script logs are the backup's again: the
    lines the kit has already compared (SCR-ARG-EXACT) are counted anew from what is there."""
    for key in [k for k in s._log_lines if k[0] == vm]:
        data = s._read_guest(vm, key[1])
        text = data.decode("utf-8", "replace") if data is not None else ""
        s._log_lines[key] = sum(1 for ln in text.splitlines() if ln.strip())
