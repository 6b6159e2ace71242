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

How the proxy's guest sees an attached disk: as a block device. A real proxy finds a hot-added
disk among its own SCSI devices (``/dev/disk/by-path/...-scsi-0:0:N:0`` on a Linux proxy, the
disk VDDK's HotAdd opens); here the host exposes each attached disk as an NBD export on a Unix
socket ``<devices>/scsi0:N`` (``simulator/_nbd.py``), created at the attach and removed at the
detach (a client still connected is cut off, as a hot-removed disk vanishes from a guest).
``<devices>`` is the proxy VM's device directory, in its ``.vmx`` as ``vcbsim.guestDevices``
(``DEVICES_KEY``): a real proxy knows its ``/dev`` because it runs inside that guest, a proxy
process outside it reads where the guest's devices are from the VM's ``config.extraConfig``.

Two kinds of attach, as ``ReconfigVM_Task`` on the proxy asks (``hot_add_file``):

* a disk of another VM **as of a snapshot** (the snapshot's file): read-only (a write is
  ``NBD_EPERM``), the backup case;
* the **live disk of a powered-off VM without snapshots** (its base file, not
  ``independent_nonpersistent``): writable, the hot-add restore (VADP products create the VM
  with empty disks, attach them to the proxy and write the data through them). While it is
  attached, every host operation that opens or changes the owner's files (power on first of
  all, snapshots, reconfigure, destroy; not unregister) fails with ``FileLocked`` (the disk
  file is open by the proxy: "Unable to access file ... since it is locked", KB 10051); a
  powered-on owner's disk cannot be attached (its own lock).

Kept across a restart of the host (``vcbsim serve --datastore DIR``): a hot-added disk is part
of the proxy VM's configuration, and a real host keeps it attached when hostd restarts (the
management agents restart without touching running VMs); the proxy's state file lists them
(``attached_doc``) and loading the directory attaches them again (``reattach``: holds, device
keys, SCSI units and NBD devices as they were; a disk whose VM or snapshot is gone is dropped
and reported). Export leases are not kept: they are hostd's, bound to its export task, and go
with it (``simulator/_export.py``).

Observable steps: ``disk.hotadd`` per disk (with the proxy's new device key and the device
path), on removal ``disk.hotread`` (the bytes read through that disk: by the proxy's guest,
over the NBD device), ``disk.hotwrite`` (a writable one: the bytes written) and
``disk.hotremove``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import InvalidInputError, StateError
from ._faults import raise_fault
from ._nbd import SOCKET_PATH_MAX, NbdExport

if TYPE_CHECKING:
    from ._host import Host
    from ._vm import VM
    from .disk import BlockReader

__all__ = [
    "DEVICES_KEY", "PROXY_KEY", "HotAddedDisk", "attached_doc", "device_dir", "hot_add", "hot_add_file",
    "hot_remove", "hot_remove_key", "hot_added", "is_proxy", "mark_proxy", "reattach", "snapshot_file",
]

#: the ``.vmx`` key that marks the backup proxy VM
PROXY_KEY = "vcbsim.backupProxy"
#: the ``.vmx`` key that says where the proxy guest's block devices are (its ``/dev/disk/by-path``)
DEVICES_KEY = "vcbsim.guestDevices"
#: the longest device name in a device directory (``scsi0:63``)
_LONGEST_DEVICE = "scsi0:63"
#: each host's default device root (made at the first use, removed with the host)
_DEVICE_ROOTS: weakref.WeakKeyDictionary[Host, Path] = weakref.WeakKeyDictionary()
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
    #: the snapshot whose view is attached; None: the VM's live disk (a writable attach)
    snapshot: str | None
    file: str
    hold_id: str
    source: BlockReader = field(repr=False)
    bytes_read: int = 0
    #: the SCSI unit on the proxy's controller 0 (over the wire the proxy's config shows it)
    unit: int = 0
    writable: bool = False
    bytes_written: int = 0
    #: the NBD device the proxy's guest reads it through (None only while it is being attached)
    export: NbdExport | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return self.source.size

    @property
    def device(self) -> str:
        """The device's name in the proxy guest's device directory (``scsi0:1``)."""
        return f"scsi0:{self.unit}"

    def read(self, offset: int, length: int) -> bytes:
        data = self.source.read(offset, length)
        self.bytes_read += len(data)
        return data

    def write(self, offset: int, data: bytes) -> None:
        """A write through the proxy's device (writable attaches only: the export refuses
        others with ``NBD_EPERM`` before they get here)."""
        if not self.writable:
            msg = f"disk {self.disk} of {self.vm} is attached read-only to {self.proxy}"
            raise StateError(msg)
        self.source.write(offset, data)  # type: ignore[attr-defined]
        self.bytes_written += len(data)

    def allocated_areas(self) -> list[tuple[int, int]]:
        areas = getattr(self.source, "allocated_areas", None)
        return list(areas()) if callable(areas) else [(0, self.size)]


def is_proxy(vm: VM) -> bool:
    return vm.extra_config.get(PROXY_KEY, "").upper() == "TRUE"


def device_dir(vm: VM) -> Path | None:
    """The proxy VM's device directory (``vcbsim.guestDevices``), or None."""
    value = vm.extra_config.get(DEVICES_KEY, "")
    return Path(value) if value else None


def _default_devices(host: Host) -> Path:
    """A short per-host directory under the system's temporary one (a Unix socket path holds
    107 bytes), removed with the host."""
    root = _DEVICE_ROOTS.get(host)
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="vcbsim-dev-"))
        _DEVICE_ROOTS[host] = root
        weakref.finalize(host, shutil.rmtree, str(root), True)
    return root


def mark_proxy(host: Host, vm: VM | str, devices: str | Path | None = None) -> Path:
    """Mark ``vm`` as the backup proxy VM (the ``.vmx`` key ``vcbsim.backupProxy``) whose
    guest's block devices are in ``devices/<vm name>`` (default: a directory of the host's
    under the system's temporary one); returns that directory (``vcbsim.guestDevices``)."""
    with host.lock:
        target = host.find_vm(vm)
        root = Path(devices) if devices is not None else _default_devices(host)
        where = (root / target.name).absolute()
        longest = len(os.fsencode(str(where / _LONGEST_DEVICE)))
        if longest > SOCKET_PATH_MAX:
            raise InvalidInputError(
                "proxy device directory", expected=f"a path whose device sockets fit in {SOCKET_PATH_MAX} bytes",
                got=str(where), hint=f"its {_LONGEST_DEVICE} would be {longest} bytes; give a shorter directory",
            )
        target.extra_config[PROXY_KEY] = "TRUE"
        target.extra_config[DEVICES_KEY] = str(where)
        if host.store is not None:
            host.store.save_vm(target)
        return where


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


def live_file(host: Host, ds_path: str) -> tuple[VM, int] | None:
    """The VM and disk key whose live disk is the file ``ds_path`` (its base file, the disk
    having no redo log), or ``None``."""
    for vm in host.vms.values():
        for d in vm.disks:
            if d.base_name == ds_path and len(d.disk.chain()) == 1:
                return vm, d.key
    return None


def hot_add_file(host: Host, proxy: VM | str, ds_path: str, mode: str = "persistent") -> HotAddedDisk | None:
    """``ReconfigVM_Task`` on the proxy adding the existing file ``ds_path`` that is a disk of
    another VM: as of one of its snapshots (read-only), or the live disk of a powered-off VM
    (writable, unless ``mode`` is ``independent_nonpersistent``). ``None``: the file is no
    such disk (or the VM is not the proxy), the caller treats it as an ordinary disk add."""
    with host.lock:
        p = host.find_vm(proxy)
        if not is_proxy(p):
            return None
        found = snapshot_file(host, ds_path)
        if found is not None and found[0].moref != p.moref:
            target, key, snap = found
            return _attach_disks(host, p, target, snap, [key])[0]
        live = live_file(host, ds_path)
        if live is None or live[0].moref == p.moref:
            return None
        owner, key = live
        if owner.power_state != "poweredOff":
            raise_fault("FileLocked", f"Unable to access file {ds_path} since it is locked ({owner.name} is "
                        f"{owner.power_state} and has it open).", file=ds_path)
        return _attach_disks(host, p, owner, None, [key], writable=mode != "independent_nonpersistent")[0]


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


def _attach_disks(host: Host, p: VM, t: VM, snapshot: str | None, keys: list[int], *,
                  writable: bool = False) -> list[HotAddedDisk]:
    """Attach disks ``keys`` of ``t`` (as of ``snapshot``, or live) to ``p``, each with its
    NBD device when ``p`` has a device directory; all or nothing."""
    snap = host.find_snapshot(t, snapshot) if snapshot is not None else None
    attached = host.holds.attached.setdefault(p.moref, [])
    first = next(d for d in t.disks if d.key == keys[0])
    first_file = snap.layers[first.key].label if snap is not None else first.base_name
    if any(a.vm == t.moref and a.snapshot == snapshot and a.disk in keys for a in attached):
        what = f"as of {snap.name} " if snap is not None else ""
        raise_fault("FileLocked", f"A disk of {t.name} {what}is already attached to {p.name}.", file=first_file)
    busy = [h for h in host.holds.on(t.moref, "hotadd") if h.snapshot is None and set(h.disks) & set(keys)]
    if snapshot is None and busy:
        raise_fault("FileLocked", f"Unable to access file {first_file} since it is locked (attached to "
                    f"{busy[0].holder}).", file=first_file)
    # a proxy marked by its .vmx alone gets the host's default device directory at its first attach
    devices = device_dir(p) or mark_proxy(host, p)
    hold = host.holds.add("hotadd", t.moref, snapshot, p.moref, tuple(keys))
    used = {d.key for d in p.disks} | {a.proxy_key for a in attached}
    out: list[HotAddedDisk] = []
    try:
        for d in t.disks:
            if d.key not in keys:
                continue
            key = next(k for k in range(_FIRST_KEY, _FIRST_KEY + 1000) if k not in used)
            used.add(key)
            source: BlockReader
            if snap is not None:
                layer = snap.layers[d.key]
                label, source = layer.label, d.disk.view(layer)
            else:
                label, source = d.base_name, host.guest_device(t, d.key)
            att = HotAddedDisk(p.moref, key, t.moref, d.key, snapshot, label, hold.id, source,
                               unit=_free_unit(p, attached), writable=writable)
            att.export = _export(host, devices, att)
            attached.append(att)
            out.append(att)
            host.trace.emit("host", "disk.hotadd", vm=t.moref, proxy=p.moref, disk=d.key, snapshot=snapshot,
                            proxy_disk=key, file=label, writable=writable,
                            device=str(att.export.path) if att.export is not None else None)
    except BaseException:
        for att in out:
            attached.remove(att)
            if att.export is not None:
                att.export.close()
        host.holds.release(hold.id)
        if not attached:
            host.holds.attached.pop(p.moref, None)
        raise
    if host.store is not None:
        host.store.save_vm(p)  # the proxy's configuration lists its hot-added disks
    return out


def _export(host: Host, devices: Path, att: HotAddedDisk) -> NbdExport:
    """The attached disk's NBD device in the proxy's device directory (a fault the client
    understands when the socket cannot be made)."""
    try:
        return NbdExport(devices / att.device, att.device, att, writable=att.writable, lock=host.lock)
    except (InvalidInputError, StateError, OSError) as exc:
        raise_fault("GenericVmConfigFault", f"The disk could not be hot-plugged into the proxy VM: {exc}",
                    reason=str(exc))


def _detach(host: Host, p: VM, gone: list[HotAddedDisk]) -> None:
    attached = host.holds.attached.get(p.moref, [])
    owners: dict[str, VM] = {}
    for a in gone:
        attached.remove(a)
        if a.export is not None:
            a.export.close()  # the device leaves the proxy's guest; a reader still on it is cut off
        host.trace.emit("host", "disk.hotread", vm=a.vm, proxy=p.moref, disk=a.disk, snapshot=a.snapshot,
                        bytes=a.bytes_read)
        if a.writable:
            host.trace.emit("host", "disk.hotwrite", vm=a.vm, proxy=p.moref, disk=a.disk, bytes=a.bytes_written)
            owner = host.vms.get(a.vm)
            if owner is not None:
                owners[owner.moref] = owner
        host.trace.emit("host", "disk.hotremove", vm=a.vm, proxy=p.moref, disk=a.disk, snapshot=a.snapshot,
                        proxy_disk=a.proxy_key)
    for hold_id in {a.hold_id for a in gone}:
        if not any(a.hold_id == hold_id for a in attached):
            host.holds.release(hold_id)
    if not attached:
        host.holds.attached.pop(p.moref, None)
    if host.store is not None and gone:
        host.store.save_vm(p)
    for owner in owners.values():
        _written(host, owner)


def _written(host: Host, owner: VM) -> None:
    """A VM whose disks were written through the proxy: the guest on them is opened (a restored
    VM's file systems) and its state saved."""
    from ._vmlifecycle import mount_guest

    if owner.guest is None:
        mount_guest(host, owner)
    if host.store is not None:
        host.store.save_vm(owner)


def hot_remove(host: Host, proxy: VM | str, target: VM | str | None = None) -> list[HotAddedDisk]:
    """Detach the disks hot-added to ``proxy`` (those of ``target``, or all); the holds go."""
    with host.lock:
        p = host.find_vm(proxy)
        t = host.find_vm(target) if target is not None else None
        gone = [a for a in host.holds.attached.get(p.moref, []) if t is None or a.vm == t.moref]
        _detach(host, p, gone)
        return gone


def attached_doc(host: Host, proxy: VM) -> list[dict[str, object]]:
    """The disks hot-added to ``proxy`` as its saved state lists them (``_persist.py``)."""
    return [
        {"vm": a.vm, "disk": a.disk, "snapshot": a.snapshot, "file": a.file, "proxy_key": a.proxy_key,
         "unit": a.unit, "writable": a.writable}
        for a in host.holds.attached.get(proxy.moref, [])
    ]


def reattach(host: Host, proxy: VM, entries: list[dict[str, object]]) -> tuple[list[str], list[str]]:
    """Attach again, after a restart of the host, the disks ``proxy``'s saved state lists
    (``attached_doc``): each with its device key, SCSI unit, hold and NBD device as before.
    Returns ``(attached, dropped)``: one line per disk attached again, one per disk that could
    not be (its VM, disk or snapshot is gone, or the device could not be made) with why."""
    done: list[str] = []
    dropped: list[str] = []
    with host.lock:
        attached = host.holds.attached.setdefault(proxy.moref, [])
        for e in entries:
            what = f"{proxy.name}: hot-added {e.get('file')}"
            try:
                att = _reattach_one(host, proxy, e, attached)
            except Exception as exc:  # noqa: BLE001 - reported, the rest still loads
                dropped.append(f"{what} not attached again: {exc}")
                continue
            attached.append(att)
            done.append(f"{what} attached again as {att.device} ({'writable' if att.writable else 'read-only'})")
        if not attached:
            host.holds.attached.pop(proxy.moref, None)
    return done, dropped


def _reattach_one(host: Host, p: VM, e: dict[str, object], attached: list[HotAddedDisk]) -> HotAddedDisk:
    t = host.vms.get(str(e["vm"]))
    if t is None:
        msg = f"its VM {e['vm']} is no longer on the host"
        raise StateError(msg)
    d = t.disk(int(str(e["disk"])))
    if d is None:
        msg = f"{t.name} has no disk {e['disk']} any more"
        raise StateError(msg)
    snapshot = str(e["snapshot"]) if e.get("snapshot") is not None else None
    writable = bool(e.get("writable"))
    source: BlockReader
    if snapshot is not None:
        snap = t.find_snapshot(snapshot)
        layer = snap.layers.get(d.key) if snap is not None else None
        if layer is None or not layer.alive:
            msg = f"the snapshot {snapshot} of {t.name} is gone"
            raise StateError(msg)
        label, source = layer.label, d.disk.view(layer)
    else:
        if t.power_state != "poweredOff" or len(d.disk.chain()) != 1:
            msg = f"{t.name}'s disk is no longer the powered-off VM's own base disk"
            raise StateError(msg)
        label, source = d.base_name, host.guest_device(t, d.key)
    key, unit = int(str(e["proxy_key"])), int(str(e["unit"]))
    if any(a.proxy_key == key or a.unit == unit for a in attached) or any(x.key == key for x in p.disks):
        msg = f"device {key} (scsi0:{unit}) of {p.name} is taken"
        raise StateError(msg)
    hold = host.holds.add("hotadd", t.moref, snapshot, p.moref, (d.key,))
    att = HotAddedDisk(p.moref, key, t.moref, d.key, snapshot, label, hold.id, source, unit=unit, writable=writable)
    try:
        att.export = _export(host, device_dir(p) or mark_proxy(host, p), att)
    except BaseException:
        host.holds.release(hold.id)
        raise
    return att
