"""Restores over the wire, judged (issue 16): a trace model and two data checks.

The **trace model** (``RestoreModel``, one more model of ``check_trace``) follows the product's
restore operations, ``op="restore-vm"`` and ``op="restore-files"`` (``reference/_wirerestore.py``
records them; any product may), against the host's own facts:

- ``RST-NO-RUNNING-OVERWRITE``: while a restore is open, the VM it names (``op.invoke``'s
  ``vm``) is destroyed, unregistered, powered off or has a disk added or removed while the host
  last showed it powered on (``vm.create``/``vm.register`` ``power``, ``vm.power``);
- ``RST-NO-HALF-VM``: a restore that ends in ``op.fail`` leaves registered a VM the host created
  or registered during it (``vm.create``/``vm.register`` with no ``vm.destroy``/
  ``vm.unregister`` before the failure); a VM it unregistered and registered again (the
  original, put back after a failed restore over it) is not one it made;
- ``RST-FILES-EXACT``: the files the host put into the guest during a file restore
  (``guest.file.put``, with ``existed``) are exactly the ``written`` its ``op.ok`` reports, all
  under the ``path`` it was asked for, and those that ``existed`` are exactly ``overwritten``.

An operation that ends in ``op.info`` (outcome unknown) is not judged for RST-NO-HALF-VM (the
VM may be the restore's result). The **data checks** are for the suite and for tests that hold
the host: ``check_restored_disks`` (``RST-DISKS-EQUAL``) and ``check_restored_settings``
(``RST-VMX-KEPT``); each returns the violations it found (empty: the rule held).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vcbsim.simulator import Event

from ._check_base import Model, Violation

__all__ = ["RESTORE_OPS", "RestoreModel", "check_restored_disks", "check_restored_settings"]

RESTORE_OPS = frozenset({"restore-vm", "restore-files"})
#: host events that change a VM a restore may only change when it is powered off
_CHANGES = {"vm.destroy": "destroyed", "vm.unregister": "unregistered", "vm.disk.add": "given a disk",
            "vm.disk.remove": "had a disk removed"}


def _fold(path: str) -> str:
    """Guest paths as a Windows guest compares them (either slash, any case); POSIX as is."""
    return path.replace("/", "\\").casefold().rstrip("\\") if ":" in path[:3] or "\\" in path else path.rstrip("/")


def _under(path: str, root: str) -> bool:
    p, r = _fold(path), _fold(root)
    sep = "\\" if ":" in r[:3] or "\\" in r else "/"
    return p == r or p.startswith(r + sep) or (r.endswith(":") and p.startswith(r))


@dataclass
class _Restore:
    invoke: Event
    op: str
    target: str | None
    made: dict[str, Event] = field(default_factory=dict)
    puts: list[Event] = field(default_factory=list)
    #: VMs unregistered or destroyed during it (one registered again is put back, not made)
    removed: set[str] = field(default_factory=set)


class RestoreModel(Model):
    """The restore operations of a trace (module docstring)."""

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.power: dict[str, str] = {}
        self.open: dict[str, _Restore] = {}

    # host facts ------------------------------------------------------------------------------
    def on_vm_create(self, ev: Event) -> None:
        if ev.vm is not None and ev.details.get("power"):
            self.power[ev.vm] = str(ev.details["power"])
        for r in self.open.values():
            if r.op == "restore-vm" and ev.vm is not None and ev.vm not in r.removed:
                r.made[ev.vm] = ev

    def on_vm_register(self, ev: Event) -> None:
        name = ev.details.get("name")
        if ev.vm is not None and name:
            self.ctx.alias[str(name)] = ev.vm
            self.ctx.names[ev.vm] = str(name)
            self.ctx.os.setdefault(ev.vm, str(ev.details.get("os", "")))
        self.on_vm_create(ev)

    def on_vm_power(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        if vm is None:
            return
        if ev.details.get("state") == "poweredOff":
            self._check_running_change(ev, vm, "powered off")
        self.power[vm] = str(ev.details.get("state", ""))

    def _on_change(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        if vm is None:
            return
        self._check_running_change(ev, vm, _CHANGES[ev.kind])
        if ev.kind in ("vm.destroy", "vm.unregister"):
            for r in self.open.values():
                if r.made.pop(vm, None) is None:
                    r.removed.add(vm)

    on_vm_destroy = on_vm_unregister = on_vm_disk_add = on_vm_disk_remove = _on_change

    def _check_running_change(self, ev: Event, vm: str, what: str) -> None:
        if self.power.get(vm) != "poweredOn":
            return
        for r in self.open.values():
            if r.op == "restore-vm" and r.target == vm:
                self.add("RST-NO-RUNNING-OVERWRITE",
                         f"event #{ev.seq}: {self.show(vm)} was {what} during the restore begun at "
                         f"#{r.invoke.seq} while it was powered on; a restore never overwrites a running VM",
                         r.invoke, ev, vm=vm)

    def on_guest_file_put(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        for r in self.open.values():
            if r.op == "restore-files" and r.target == vm:
                r.puts.append(ev)

    # the product's operations ----------------------------------------------------------------
    def on_op_invoke(self, ev: Event) -> None:
        op = str(ev.details.get("op", ""))
        if op in RESTORE_OPS:
            self.open[str(ev.details.get("op_id", ""))] = _Restore(ev, op, self.vm_of(ev))

    def on_op_ok(self, ev: Event) -> None:
        r = self.open.pop(str(ev.details.get("op_id", "")), None)
        if r is not None and r.op == "restore-files":
            self._check_files(r, ev)

    def on_op_fail(self, ev: Event) -> None:
        r = self.open.pop(str(ev.details.get("op_id", "")), None)
        if r is None or r.op != "restore-vm":
            return
        for vm, made in r.made.items():
            self.add("RST-NO-HALF-VM",
                     f"the restore begun at #{r.invoke.seq} failed (#{ev.seq}) but {self.show(vm)}, "
                     f"{'registered' if made.kind == 'vm.register' else 'created'} during it (#{made.seq}), "
                     "is still registered", made, ev, vm=vm)

    def on_op_info(self, ev: Event) -> None:
        self.open.pop(str(ev.details.get("op_id", "")), None)

    def _check_files(self, r: _Restore, ok: Event) -> None:
        vm = r.target
        root = str(r.invoke.details.get("path", ""))
        put = {_fold(str(e.details.get("path", ""))): e for e in r.puts}
        existed = {p for p, e in put.items() if e.details.get("existed")}
        written = {_fold(str(p)) for p in ok.details.get("written", []) or []}
        overwritten = {_fold(str(p)) for p in ok.details.get("overwritten", []) or []}
        outside = sorted(p for p in put if root and not _under(p, root))
        if outside:
            self.add("RST-FILES-EXACT", f"the file restore begun at #{r.invoke.seq} wrote {outside[0]} into "
                     f"{self.show(vm)}, outside the chosen path {root}", r.invoke, put[outside[0]], vm=vm)
        if set(put) != written:
            extra = sorted(set(put) - written)
            missing = sorted(written - set(put))
            why = (f"wrote {extra[0]} without reporting it" if extra
                   else f"reports {missing[0]} as written but the guest got no such file")
            self.add("RST-FILES-EXACT", f"the file restore begun at #{r.invoke.seq} {why} ({len(put)} put into "
                     f"the guest, {len(written)} reported)", r.invoke, ok, vm=vm)
        if existed != overwritten:
            diff = sorted(existed ^ overwritten)
            self.add("RST-FILES-EXACT", f"the file restore begun at #{r.invoke.seq} reports overwritten "
                     f"{sorted(overwritten)} but the guest already had {sorted(existed)} (differs at {diff[0]})",
                     r.invoke, ok, vm=vm)


# -- data checks ------------------------------------------------------------------------------


def check_restored_disks(expected: Mapping[int, Callable[[int, int], bytes] | bytes], disks: list[tuple[int, int, Callable[[int, int], bytes]]],
                         *, vm: str | None = None, chunk: int = 1 << 20) -> list[Violation]:
    """``RST-DISKS-EQUAL``: ``expected`` maps each backed-up disk (in disk order) to its bytes
    as of the snapshot (bytes or ``read(offset, length)``); ``disks`` are the restored VM's
    ``(key, capacity, read)`` in the same order."""
    out: list[Violation] = []
    if len(expected) != len(disks):
        out.append(Violation("RST-DISKS-EQUAL", f"the restored VM has {len(disks)} disk(s), the backup {len(expected)}",
                             (), vm))
        return out
    for (key, want), (dkey, capacity, read) in zip(sorted(expected.items()), disks, strict=True):
        size = len(want) if isinstance(want, bytes) else capacity
        if capacity != size:
            out.append(Violation("RST-DISKS-EQUAL", f"disk {dkey} has {capacity} bytes, backed-up disk {key} {size}", (), vm))
            continue
        for off in range(0, capacity, chunk):
            n = min(chunk, capacity - off)
            a = want[off : off + n] if isinstance(want, bytes) else want(off, n)
            if read(off, n) != a:
                out.append(Violation("RST-DISKS-EQUAL", f"disk {dkey} differs from backed-up disk {key} in "
                                     f"[{off}, {off + n}) (as of the backup snapshot)", (), vm))
                break
    return out


def check_restored_settings(backed_up: Mapping[str, str], restored: Mapping[str, str], asked: Mapping[str, str],
                            *, new_vm: bool, vm: str | None = None) -> list[Violation]:
    """``RST-VMX-KEPT``: ``.vmx`` settings (``key -> value``, keys compared without case) of the
    backed-up VM, of the restored one, and those the restore was asked to set."""
    def folded(d: Mapping[str, str]) -> dict[str, str]:
        return {k.lower(): v for k, v in d.items()}

    before, after, want = folded(backed_up), folded(restored), folded(asked)
    out: list[Violation] = []
    for key, value in want.items():
        if after.get(key) != value:
            out.append(Violation("RST-VMX-KEPT", f"{key} was asked to be {value!r}, the restored VM has {after.get(key)!r}", (), vm))
    modes = [k for k in before if k.endswith(".mode") and k[:3] in ("scs", "ide", "sat", "nvm")]
    for key in ("memsize", "numvcpus", "guestos", *modes):
        if key.endswith(".mode") and key not in want:
            if after.get(key, "").replace("_", "-") != before[key].replace("_", "-"):
                out.append(Violation("RST-VMX-KEPT", f"disk {key[:-5]} was {before[key]!r} when backed up, the restored "
                                     f"VM has {after.get(key)!r}", (), vm))
            continue
        if key in before and key not in want and after.get(key) != before[key]:
            out.append(Violation("RST-VMX-KEPT", f"{key} was {before[key]!r} when backed up, the restored VM has "
                                 f"{after.get(key)!r} (not asked to change)", (), vm))
    if new_vm and "uuid.bios" in before and after.get("uuid.bios") == before["uuid.bios"] and "uuid.bios" not in want:
        out.append(Violation("RST-VMX-KEPT", "the new VM kept the original's uuid.bios (a copy gets a new one)", (), vm))
    return out
