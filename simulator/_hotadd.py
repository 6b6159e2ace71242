"""Hot-add: a backup proxy VM reads a target VM's snapshot disks attached to itself.

Why: VCB 1.5's ``-m hotadd`` and every VADP product after it read a snapshot's disks by
attaching them to the proxy VM (a ``ReconfigVM_Task`` disk add of the existing file,
read-only), reading them as local disks, and detaching them (the successor of the seed's
"mounts ... on the VCB proxy"). While attached, the base disk file is open by the proxy, so
the target's commit (seed 3b) fails with ``FileLocked`` and leaves the consolidation pending
(``simulator/_holds.py`` says how, per profile); that is the failure a product that removes
the snapshot before detaching meets on a real host.

The proxy is an ordinary VM of the inventory, marked as the backup proxy by the ``.vmx`` key
``vcbsim.backupProxy = "TRUE"`` (``mark_proxy``; ``vcbsim serve --proxy-vm NAME``): a real
host does not care which VM hot-adds, the mark tells products and the kit which VM is the
proxy. It must be powered on (a hot add; VDDK's HotAdd needs the proxy running) and may not be
the target.

Observable steps: ``disk.hotadd`` per disk (with the proxy's new device key), on removal
``disk.hotread`` (the bytes the proxy read through that disk: reads of the target's disk by
the proxy VM) and ``disk.hotremove``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._errors import InvalidInputError
from ._faults import raise_fault

if TYPE_CHECKING:
    from ._host import Host
    from ._vm import VM
    from .disk import BlockReader

__all__ = [
    "PROXY_KEY", "HotAddedDisk", "hot_add", "hot_add_file", "hot_remove", "hot_remove_key", "hot_added",
    "is_proxy", "mark_proxy", "snapshot_file",
]

#: the ``.vmx`` key that marks the backup proxy VM
PROXY_KEY = "vcbsim.backupProxy"
#: device keys of hot-added disks on the proxy start here (clear of the VM's own 2000 + n)
_FIRST_KEY = 2100


@dataclass
class HotAddedDisk:
    """A target's disk as of a snapshot, attached read-only to the proxy as ``proxy_key``.

    It is a ``BlockReader``: reads go to the snapshot's view of the target's disk, and are
    counted (``bytes_read``) for the trace."""

    proxy: str
    proxy_key: int
    vm: str
    disk: int
    snapshot: str
    file: str
    hold_id: str
    source: BlockReader = field(repr=False)
    bytes_read: int = 0
    #: the SCSI unit on the proxy's controller 0 (over the wire the proxy's config shows it)
    unit: int = 0

    @property
    def size(self) -> int:
        return self.source.size

    def read(self, offset: int, length: int) -> bytes:
        data = self.source.read(offset, length)
        self.bytes_read += len(data)
        return data

    def allocated_areas(self) -> list[tuple[int, int]]:
        areas = getattr(self.source, "allocated_areas", None)
        return list(areas()) if callable(areas) else [(0, self.size)]


def is_proxy(vm: VM) -> bool:
    return vm.extra_config.get(PROXY_KEY, "").upper() == "TRUE"


def mark_proxy(host: Host, vm: VM | str) -> None:
    """Mark ``vm`` as the backup proxy VM (the ``.vmx`` key ``vcbsim.backupProxy``)."""
    with host.lock:
        target = host.find_vm(vm)
        target.extra_config[PROXY_KEY] = "TRUE"
        if host.store is not None:
            host.store.save_vm(target)


def hot_added(host: Host, proxy: VM | str) -> list[HotAddedDisk]:
    """The disks attached to ``proxy`` now, in the order they were added."""
    p = host.find_vm(proxy)
    return list(host.holds.attached.get(p.moref, []))


def _free_unit(p: VM, attached: list[HotAddedDisk]) -> int:
    used = {d.unit_number for d in p.disks if d.controller == "scsi"} | {a.unit for a in attached}
    return next(u for u in range(64) if u != 7 and u not in used)


def snapshot_file(host: Host, ds_path: str) -> tuple[VM, int, str] | None:
    """The VM, disk key and snapshot whose frozen layer is the file ``ds_path`` (a snapshot's
    disk as its configuration names it), or ``None``."""
    for vm in host.vms.values():
        for snap in vm.snapshots():
            for key, layer in snap.layers.items():
                if layer.label == ds_path and layer.alive:
                    return vm, key, snap.moref
    return None


def hot_add_file(host: Host, proxy: VM | str, ds_path: str) -> HotAddedDisk | None:
    """``ReconfigVM_Task`` on the proxy adding the existing file ``ds_path`` that is a disk of
    another VM as of one of its snapshots: that one disk is hot-added (``None``: the file is
    no such disk, the caller treats it as an ordinary disk add)."""
    with host.lock:
        p = host.find_vm(proxy)
        found = snapshot_file(host, ds_path)
        if found is None or not is_proxy(p) or found[0].moref == p.moref:
            return None
        target, key, snap = found
        return _attach_disks(host, p, target, snap, [key])[0]


def hot_remove_key(host: Host, proxy: VM | str, proxy_key: int) -> HotAddedDisk | None:
    """``ReconfigVM_Task`` on the proxy removing device ``proxy_key`` when it is a hot-added disk."""
    with host.lock:
        p = host.find_vm(proxy)
        att = next((a for a in host.holds.attached.get(p.moref, []) if a.proxy_key == proxy_key), None)
        if att is None:
            return None
        _detach(host, p, [att])
        return att


def hot_add(host: Host, proxy: VM | str, target: VM | str, snapshot: str) -> list[HotAddedDisk]:
    """Attach every disk of ``target`` as of ``snapshot`` to ``proxy``, read-only.

    Refused as a host refuses: a proxy that is not powered on (``InvalidPowerState``), the
    target itself, a VM not marked as the proxy (one line saying how to mark it), a disk of
    that snapshot already attached (``FileLocked``: one writer or reader per open file)."""
    with host.lock:
        p = host.find_vm(proxy)
        t = host.find_vm(target)
        if not is_proxy(p):
            raise InvalidInputError(
                "proxy VM", expected=f"a VM marked as the backup proxy ({PROXY_KEY} = \"TRUE\" in its .vmx)",
                got=p.name, hint="vcbsim serve --proxy-vm NAME, or simulator._hotadd.mark_proxy(host, vm)",
            )
        if p.moref == t.moref:
            raise InvalidInputError("hot-add target", expected="another VM than the proxy", got=t.name)
        if p.power_state != "poweredOn":
            raise_fault("InvalidPowerState", f"The proxy VM {p.name} is {p.power_state}: hot-add needs it powered on.",
                        requestedState="poweredOn", existingState=p.power_state)
        snap = host.find_snapshot(t, snapshot)
        return _attach_disks(host, p, t, snap.moref, [d.key for d in t.disks if d.key in snap.layers])


def _attach_disks(host: Host, p: VM, t: VM, snapshot: str, keys: list[int]) -> list[HotAddedDisk]:
    snap = host.find_snapshot(t, snapshot)
    attached = host.holds.attached.setdefault(p.moref, [])
    if any(a.vm == t.moref and a.snapshot == snap.moref and a.disk in keys for a in attached):
        raise_fault("FileLocked", f"A disk of {t.name} as of {snap.name} is already attached to {p.name}.",
                    file=snap.layers[keys[0]].label)
    hold = host.holds.add("hotadd", t.moref, snap.moref, p.moref, tuple(keys))
    used = {d.key for d in p.disks} | {a.proxy_key for a in attached}
    out = []
    for d in t.disks:
        if d.key not in keys:
            continue
        key = next(k for k in range(_FIRST_KEY, _FIRST_KEY + 1000) if k not in used)
        used.add(key)
        layer = snap.layers[d.key]
        att = HotAddedDisk(p.moref, key, t.moref, d.key, snap.moref, layer.label, hold.id, d.disk.view(layer),
                           unit=_free_unit(p, attached))
        attached.append(att)
        out.append(att)
        host.trace.emit("host", "disk.hotadd", vm=t.moref, proxy=p.moref, disk=d.key, snapshot=snap.moref,
                        proxy_disk=key, file=layer.label)
    return out


def _detach(host: Host, p: VM, gone: list[HotAddedDisk]) -> None:
    attached = host.holds.attached.get(p.moref, [])
    for a in gone:
        attached.remove(a)
        host.trace.emit("host", "disk.hotread", vm=a.vm, proxy=p.moref, disk=a.disk, snapshot=a.snapshot,
                        bytes=a.bytes_read)
        host.trace.emit("host", "disk.hotremove", vm=a.vm, proxy=p.moref, disk=a.disk, snapshot=a.snapshot,
                        proxy_disk=a.proxy_key)
    for hold_id in {a.hold_id for a in gone}:
        if not any(a.hold_id == hold_id for a in attached):
            host.holds.release(hold_id)
    if not attached:
        host.holds.attached.pop(p.moref, None)


def hot_remove(host: Host, proxy: VM | str, target: VM | str | None = None) -> list[HotAddedDisk]:
    """Detach the disks hot-added to ``proxy`` (those of ``target``, or all); the holds go."""
    with host.lock:
        p = host.find_vm(proxy)
        t = host.find_vm(target) if target is not None else None
        gone = [a for a in host.holds.attached.get(p.moref, []) if t is None or a.vm == t.moref]
        _detach(host, p, gone)
        return gone
