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

Both routes run this one step through a ``RestoreRoute``: in process (``InProcessRoute``: the
hooks, the kit's own ``Host``) and over the wire (``_wire.WireRestoreRoute``: the product's
restore *commands*, ``CommandAdapter.restore``, and the host's facts through its control API:
``GET /vcbsim-api/vms/<vm>`` for a VM's ``.vmx`` and disk digests, ``/captures`` for the disks
and configuration as of the backup snapshot). Where the kit holds the VM's ``.vmx`` as of the
backup snapshot, the VM restored over the original (no setting asked) is also judged on
IMG-CONFIG: its configuration is the VM's as of the backup (``_restored.compare_vmx``; the
disks' ``fileName`` may name the restored disks).
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vcbsim.simulator import Event
from vcbsim.simulator._errors import VcbsimError

from ._check_restore import check_restored_settings
from ._errors import ConformanceViolation

if TYPE_CHECKING:
    from ._judge import ScenarioBase
    from ._suite import Scenario

__all__ = ["RestoreEndpoint", "RestoreFailed", "RestoreRoute", "InProcessRoute", "VmFacts", "run_restore_step",
           "vmx_settings"]

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


@dataclass(frozen=True, slots=True)
class VmFacts:
    """A VM as the host has it: what the RESTORE rules are judged from."""

    moref: str
    name: str
    power: str
    vmx: str
    #: ``(disk key, image_digest)`` in disk order
    disks: tuple[tuple[int, str], ...]
    #: the disks' file names (``[ds] dir/x.vmdk``)
    files: tuple[str, ...] = ()
    #: the ``.vmx``'s datastore path (``[ds] dir/x.vmx``)
    vmx_path: str = ""

    @property
    def datastore(self) -> str:
        """The datastore of the VM's ``.vmx`` (its home)."""
        m = re.match(r"\[([^\]]+)\]", self.vmx_path or (self.files[0] if self.files else ""))
        return m.group(1) if m else ""


class RestoreFailed(VcbsimError):  # noqa: N818 - the product's failure, not the kit's error
    """The product's restore failed (its hook raised, its command exited 1..125); the step
    judges it and never lets it out."""


def vmx_settings(text: str) -> dict[str, str]:
    """``key = "value"`` lines of a ``.vmx``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r'^\s*([^=\s]+)\s*=\s*"(.*)"\s*$', line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


class RestoreRoute(ABC):
    """What the restore step needs of a route (module docstring); ``s`` is the case."""

    s: ScenarioBase

    @abstractmethod
    def not_declared(self, vm: str) -> str | None:
        """Why the product is not asked for restores (``None``: it is)."""

    @abstractmethod
    def can_restore_files(self) -> bool:
        """The product has a file restore into a running guest."""

    @abstractmethod
    def at_snapshot(self, snap: Event) -> tuple[dict[int, str] | None, str | None]:
        """The VM's disk digests and ``.vmx`` as of backup snapshot ``snap`` (``None``: unknown)."""

    @abstractmethod
    def facts(self, vm: str) -> VmFacts | None:
        """The VM called ``vm`` as the host has it now (``None``: no such VM registered)."""

    @abstractmethod
    def registered(self) -> dict[str, str]:
        """Every registered VM: moref -> name."""

    @abstractmethod
    def set_power(self, vm: str, state: str) -> None:
        """Power the VM ``poweredOn`` / ``poweredOff`` (the kit's own action, as an operator's)."""

    @abstractmethod
    def restore_vm(self, vm: str, backup_id: str, *, name: str | None, over: bool,
                   settings: Mapping[str, str] | None) -> None:
        """Ask the product's whole-VM restore; ``RestoreFailed`` when it fails."""

    @abstractmethod
    def restore_files(self, vm: str, backup_id: str, path: str) -> None:
        """Ask the product's file restore into the running guest; ``RestoreFailed`` when it fails."""

    @abstractmethod
    def write_guest(self, vm: str, path: str, text: str) -> None:
        """The guest writes (after the backup)."""

    @abstractmethod
    def read_guest(self, vm: str, path: str) -> bytes | None:
        """A guest file (``None``: not there)."""

    def before_backup(self, vm: str) -> None:  # noqa: B027 - optional
        """Called before the restore step's image backup of ``vm``."""

    def replaced(self, vm: str) -> None:  # noqa: B027 - optional
        """The VM ``vm`` was restored over: the guest is the backup's again."""


class InProcessRoute(RestoreRoute):
    """The in-process route: the orchestrator's hooks and the kit's own ``Host``."""

    def __init__(self, s: Scenario) -> None:
        self.s = s
        self.sc = s
        self._url = ""

    def not_declared(self, vm: str) -> str | None:
        if not self.sc.caps.wire_restore or not callable(getattr(self.sc.adapter, "restore_vm", None)):
            return (f"restore of {vm}: the product declared no restore over the wire "
                    "(Capabilities.wire_restore and an Orchestrator.restore_vm hook)")
        return None

    def can_restore_files(self) -> bool:
        return callable(getattr(self.sc.adapter, "restore_files", None))

    def at_snapshot(self, snap: Event) -> tuple[dict[int, str] | None, str | None]:
        sid = str(snap.details.get("snapshot"))
        return self.sc._snap_digests.get(sid), self.sc._snap_config.get(sid, {}).get(".vmx")

    def facts(self, vm: str) -> VmFacts | None:
        from ._adapters import image_digest

        host = self.sc.host
        found = next((v for v in host.vms.values() if v.name == vm), None)
        if found is None:
            return None
        return VmFacts(found.moref, found.name, str(found.power_state), found.vmx_text(),
                       tuple((d.key, image_digest(host.disk_view(found, d.key))) for d in found.disks),
                       tuple(d.file_name for d in found.disks), str(found.vmx_path))

    def registered(self) -> dict[str, str]:
        return {v.moref: v.name for v in self.sc.host.vms.values()}

    def set_power(self, vm: str, state: str) -> None:
        found = self.sc.host.find_vm(vm)
        if found.power_state != state:
            (self.sc.host.power_on if state == "poweredOn" else self.sc.host.power_off)(found)

    def _endpoint(self) -> RestoreEndpoint:
        """A fresh endpoint per hook call: an ``op_id`` need only be unique within one call,
        the kit prefixes it with the call's number (as the wire route does per job)."""
        s = self.sc
        n = s.statistics["restores"] = s.statistics.get("restores", 0) + 1

        def record(ev: Event) -> None:
            details = dict(ev.details)
            if "op_id" in details:
                details["op_id"] = f"restore{n}-{details['op_id']}"
            s.host.trace.emit(ev.actor, ev.kind, vm=ev.vm, step=ev.step, **details)

        return RestoreEndpoint(self._url, "user", "pass", GUEST_USER, GUEST_PASSWORD, record)

    def restore_vm(self, vm: str, backup_id: str, *, name: str | None, over: bool,
                   settings: Mapping[str, str] | None) -> None:
        try:
            self.sc.adapter.restore_vm(self._endpoint(), vm, backup_id, name=name, over=over,
                                       settings=dict(settings) if settings else None)
        except Exception as exc:  # noqa: BLE001 - the product's failure, judged by the caller
            msg = f"{type(exc).__name__}: {exc}"
            raise RestoreFailed(msg) from exc

    def restore_files(self, vm: str, backup_id: str, path: str) -> None:
        try:
            self.sc.adapter.restore_files(self._endpoint(), vm, backup_id, path)
        except Exception as exc:  # noqa: BLE001
            msg = f"{type(exc).__name__}: {exc}"
            raise RestoreFailed(msg) from exc

    def write_guest(self, vm: str, path: str, text: str) -> None:
        self.sc._guest_write(vm, path, text)

    def read_guest(self, vm: str, path: str) -> bytes | None:
        return self.sc._read_guest(vm, path)

    def replaced(self, vm: str) -> None:
        _rebase_logs(self.sc, vm)


#: the restores one ``restore`` step asks, in this order (``kinds``): as a new VM, over the
#: running original (refused), over the powered-off original, files into the running guest
RESTORE_KINDS = ("new", "running", "over", "files")


def run_restore_step(s: Scenario, vm: str, kinds: tuple[str, ...] = RESTORE_KINDS) -> None:
    """The ``restore`` step in process (module docstring)."""
    from vcbsim.simulator.soap import serve

    route = InProcessRoute(s)
    if route.not_declared(vm) is not None:
        run_restore(route, vm, kinds)
        return
    with serve(s.host, http=True, user="user", password="pass") as running:
        route._url = running.url
        run_restore(route, vm, kinds)


def run_restore(route: RestoreRoute, vm: str, kinds: tuple[str, ...] = RESTORE_KINDS) -> None:
    """The ``restore`` step of ``vm`` through ``route`` (module docstring): the restores of
    ``kinds`` (``RESTORE_KINDS``), in their order. After a fault the case armed (the
    exploration's ``fault_during_restore``) a failed restore is the fault's doing: it is judged
    for RST-NO-HALF-VM (and the original for RST-NO-RUNNING-OVERWRITE), not as a declared
    capability that does not work."""
    s = route.s
    unknown = [k for k in kinds if k not in RESTORE_KINDS]
    if unknown or not kinds:
        from ._errors import InvalidDefinition

        msg = "restore kinds"
        raise InvalidDefinition(msg, expected="a non-empty list of " + ", ".join(RESTORE_KINDS), got=list(kinds))
    why = route.not_declared(vm)
    if why is not None:
        s.not_asked.append(why)
        return
    original = route.facts(vm)
    assert original is not None
    windows = s._family(vm) == "windows"
    before = vmx_settings(original.vmx)
    mark = len(s._events())
    route.before_backup(vm)
    image = s.backup(vm, "fullvm", "full")  # type: ignore[attr-defined]
    if image is None or not image.ok or image.backup_id is None:
        return  # judged as a job; a failed backup gives nothing to restore
    snap = s.job_snapshot(vm, mark)
    files = None
    if "files" in kinds and windows and route.can_restore_files() and s.caps.file:
        files = s.backup(vm, "file", "full")  # type: ignore[attr-defined]
    route.write_guest(vm, f"{FILE_RESTORE_PATH}\\after-backup.txt" if windows else "/var/www/after-backup.html",
                      "written after the backup")
    want, vmx_then = route.at_snapshot(snap) if snap is not None else (None, None)
    r = _Restorer(route, vm, image.backup_id, snap)
    if "new" in kinds:  # as a new VM, one setting changed
        copy = _free_name(route, f"{vm}-restored")
        asked = {"memsize": str(int(before.get("memsize", "1024")) + 512)}
        if r.call(name=copy, over=False, settings=asked):
            r.judge_vm(copy, want, before, asked, new_vm=True)
    if "running" in kinds:  # over the original while it runs: refused, nothing changed
        live = route.facts(vm)
        assert live is not None
        r.call(name=None, over=True, settings=None, refusal=True)
        r.judge_untouched(live)
    if "over" in kinds:  # over the powered-off original
        off = route.facts(vm)
        route.set_power(vm, "poweredOff")
        if r.call(name=None, over=True, settings=None):
            r.judge_vm(vm, want, before, {}, new_vm=False)
            r.judge_config(vm, vmx_then)
            if off is not None and snap is not None:
                s.restored_over(vm, off.moref, snap.seq)
            route.replaced(vm)
        else:
            r.judge_put_back(off)
        route.set_power(vm, "poweredOn")
    # files into the running guest
    if files is not None and files.ok and files.backup_id is not None:
        r.files(files.backup_id, dict(files.files or {}))


def _free_name(route: RestoreRoute, name: str) -> str:
    """``name``, or ``name-2``, ``name-3`` ... when an earlier restore step made that VM."""
    taken = set(route.registered().values())
    n = 1
    out = name
    while out in taken:
        n += 1
        out = f"{name}-{n}"
    return out


class _Restorer:
    """One restore step's calls of the product's restores and their judgement."""

    def __init__(self, route: RestoreRoute, vm: str, backup_id: str, snap: Event | None) -> None:
        self.route, self.s, self.vm, self.backup_id, self.snap = route, route.s, vm, backup_id, snap

    def _witness(self) -> tuple[Event, ...]:
        return (self.snap,) if self.snap is not None else ()

    def call(self, *, name: str | None, over: bool, settings: Mapping[str, str] | None,
             refusal: bool = False) -> bool:
        """Ask one whole-VM restore; ``True`` when it succeeded. A failure is judged for
        RST-NO-HALF-VM; only a refusal is expected to fail."""
        s = self.s
        had = self.route.registered()
        mark = len(s._events())
        what = "over the running original" if refusal else ("over the powered-off original" if over else f"as {name}")
        try:
            self.route.restore_vm(self.vm, self.backup_id, name=name, over=over, settings=settings)
        except RestoreFailed as exc:
            s.occasion("RST-NO-HALF-VM")
            s.check(open_ended=True)
            judge_no_half_vm(s, had, self.route.registered(), mark, f"the restore of {self.vm} {what}", str(exc))
            if refusal or s.disturbed:  # refused as it must be, or a fault the case armed
                return False
            why = (f"the product declares a restore over the wire (Capabilities.wire_restore), but restoring backup "
                   f"{self.backup_id} of {self.vm} {what} failed: {exc}")
            raise ConformanceViolation("EV-DECLARED-WORKS", why, witness=self._witness(),
                                       vm=s._moref(self.vm)) from exc
        s.check(open_ended=True)
        return True

    def judge_put_back(self, before: VmFacts | None) -> None:
        """A restore over the powered-off original failed (a fault the case armed): the
        original is still registered with the data it had (nothing half-replaced)."""
        if before is None:
            return
        s = self.s
        s.occasion("RST-NO-HALF-VM")
        now = self.route.facts(self.vm)
        if now is None or now.disks != before.disks:
            how = "is no longer registered" if now is None else "holds other data than before"
            why = (f"the restore over the powered-off {self.vm} failed, and {self.vm} {how}: a failed restore "
                   "leaves the VM it would replace as it was, not half-replaced")
            raise ConformanceViolation("RST-NO-HALF-VM", why, witness=self._witness(), vm=before.moref)

    def judge_untouched(self, live: VmFacts) -> None:
        """The running original is still there, powered on, with its live data."""
        s = self.s
        s.occasion("RST-NO-RUNNING-OVERWRITE")
        now = self.route.facts(self.vm)
        problem = ""
        if now is None or now.moref != live.moref:
            problem = "is no longer registered as it was (replaced)"
        elif now.power != "poweredOn":
            problem = f"is now {now.power}"
        elif now.disks != live.disks:
            problem = "holds other data than before the restore"
        if problem:
            why = (f"asked to restore over {self.vm} while it was powered on, the product did not refuse: {self.vm} "
                   f"{problem}; a restore never overwrites a running VM")
            raise ConformanceViolation("RST-NO-RUNNING-OVERWRITE", why, witness=self._witness(), vm=live.moref)

    def judge_vm(self, name: str, want: Mapping[int, str] | None, before: Mapping[str, str],
                 asked: Mapping[str, str], *, new_vm: bool) -> None:
        """RST-DISKS-EQUAL and RST-VMX-KEPT of the VM the restore made."""
        s = self.s
        restored = self.route.facts(name)
        if restored is None:
            why = f"the restore of {self.vm} as {name} reported success, but no VM called {name} is registered"
            raise ConformanceViolation("RST-DISKS-EQUAL", why, witness=self._witness(), vm=s._moref(self.vm))
        if want is not None:
            s.occasion("RST-DISKS-EQUAL")
            got = list(restored.disks)
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
        found = check_restored_settings(before, vmx_settings(restored.vmx), asked, new_vm=new_vm,
                                        vm=restored.moref)
        if found:
            why = f"the VM restored as {name}: " + "; ".join(v.explanation for v in found[:3])
            raise ConformanceViolation("RST-VMX-KEPT", why, witness=self._witness(), vm=restored.moref)

    def judge_config(self, name: str, vmx_then: str | None) -> None:
        """IMG-CONFIG of the VM restored over the original with no setting asked: the image
        backup restores the VM's configuration as of the snapshot (``compare_vmx``; the
        disks' ``fileName`` may name the restored disks)."""
        from ._restored import compare_vmx

        restored = self.route.facts(name)
        if vmx_then is None or restored is None:
            return
        s = self.s
        s.occasion("IMG-CONFIG")
        held = {f.replace("\\", "/").rsplit("/", 1)[-1] for f in restored.files}
        problems = compare_vmx(vmx_then, restored.vmx, held)
        problems = [p for p in problems if not _host_owned(p)]
        if problems:
            why = (f"the image backup of {self.vm}, restored over the original, does not give back the VM's "
                   f"configuration as of the snapshot: the .vmx " + "; ".join(problems[:4])
                   + (f" (and {len(problems) - 4} more)" if len(problems) > 4 else "")
                   + "; an image backup restores to the VM as it was")
            raise ConformanceViolation("IMG-CONFIG", why, witness=self._witness(), vm=restored.moref)

    def files(self, backup_id: str, backed_up: Mapping[str, str]) -> None:
        """The file-level backup's ``D:\\Data`` into the running guest: each file there has the
        backup's content (the trace model judges written / overwritten)."""
        s = self.s
        try:
            self.route.restore_files(self.vm, backup_id, FILE_RESTORE_PATH)
        except RestoreFailed as exc:
            why = (f"the product declares a restore over the wire (Capabilities.wire_restore), but restoring "
                   f"{FILE_RESTORE_PATH} of file-level backup {backup_id} into {self.vm} failed: {exc}")
            raise ConformanceViolation("EV-DECLARED-WORKS", why, vm=s._moref(self.vm)) from exc
        s.check(open_ended=True)
        s.occasion("RST-FILES-EXACT")
        root = FILE_RESTORE_PATH.casefold() + "\\"
        for path, sha in sorted(backed_up.items()):
            if not path.casefold().startswith(root):
                continue
            data = self.route.read_guest(self.vm, path)
            if data is None or hashlib.sha256(data).hexdigest() != sha:
                why = (f"after the file restore of {FILE_RESTORE_PATH} from backup {backup_id}, {self.vm}'s {path} "
                       f"{'is missing' if data is None else 'holds other data than the backup'}; a file restore "
                       "writes exactly the chosen files, as backed up")
                raise ConformanceViolation("RST-FILES-EXACT", why, vm=s._moref(self.vm))


#: ``.vmx`` keys the host writes for a VM it registers (the restore does not choose them)
_HOST_KEYS = ("uuid.location", "vc.uuid", "sched.swap.derivedname")


def _host_owned(problem: str) -> bool:
    return any(f" {k} " in f" {problem} " or problem.split(" = ", 1)[0].endswith(k) for k in _HOST_KEYS)


def judge_no_half_vm(s: ScenarioBase, had: Mapping[str, str], now: Mapping[str, str], mark: int, what: str,
                     error: str) -> None:
    """RST-NO-HALF-VM from the host's inventory: a restore that failed left registered no VM
    that was not there before it."""
    made = {m: n for m, n in now.items() if m not in had}
    if not made:
        return
    moref, vname = next(iter(made.items()))
    ev = [e for e in s._events()[mark:] if e.vm == moref and e.kind in ("vm.create", "vm.register")]
    why = (f"{what} failed ({error}) but left {vname} ({moref}) registered, which it made; a failed restore "
           "leaves no half-made VM")
    raise ConformanceViolation("RST-NO-HALF-VM", why, witness=tuple(ev[:1]), vm=moref)


def _rebase_logs(s: ScenarioBase, vm: str) -> None:
    """After a restore over the original the guest's script logs are the backup's again: the
    lines the kit has already compared (SCR-ARG-EXACT) are counted anew from what is there."""
    for key in [k for k in s._log_lines if k[0] == vm]:
        data = s._read_guest(vm, key[1])
        text = data.decode("utf-8", "replace") if data is not None else ""
        s._log_lines[key] = sum(1 for ln in text.splitlines() if ln.strip())
