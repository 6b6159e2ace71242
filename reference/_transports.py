"""How the reference proxy reads a snapshot's disks: ``-m folder``, ``nfc`` or ``hotadd``.

* ``folder`` (the default): the snapshot's disk chain read as datastore files (``/folder``
  over ``--server``, the host's disk views in process): what VCB's ``cos`` mode did from the
  service console, reading ``/vmfs/volumes`` directly.
* ``nfc``: an export lease (``ExportSnapshot`` → ``HttpNfcLease``, vSphere API 5.5 / 4.0): each
  disk downloaded as a stream-optimized VMDK, ``HttpNfcLeaseProgress`` after each, then
  ``HttpNfcLeaseComplete`` (or ``HttpNfcLeaseAbort`` when the run failed). VCB's ``nbd`` and
  ``nbdssl`` map here: both are copies over the host's network file copy (NFC) service, the
  one the export lease's URLs are served by.
* ``hotadd``: the snapshot's disks attached read-only to the proxy VM (``simulator/_hotadd.py``;
  over ``--server`` a ``ReconfigVM_Task`` disk add of each snapshot file to the proxy VM, the
  VM marked ``vcbsim.backupProxy`` or ``--proxy-vm``), read through the block devices they
  become in the proxy's guest (NBD sockets, ``_nbdclient.py``), detached. VCB 1.5's
  ``hotadd`` is the same mode.
* ``san`` is refused: it reads the VMFS LUN over a storage fabric, which the simulator has not.

Seed order: the lease ends or the disks are detached at WF-3a (with the unmount), always
before the snapshot is removed (WF-3b): a lease held or a disk attached blocks or breaks the
commit on a real host (``simulator/_holds.py``), and the kit's ``TR-*`` rules judge it.
"""

from __future__ import annotations

import http.client
import time
from pathlib import Path
from typing import Any

from vcbsim.simulator import InvalidInputError, StateError
from vcbsim.simulator.disk import BlockReader, read_vmdk

from ._client import VMInfo

__all__ = [
    "TRANSPORTS", "MODES", "ALIASES", "RUN_MARK", "DiskSource", "attach_files", "detach_keys", "transport_mode",
    "holds_leftovers", "open_source", "release_leftovers",
]

#: the real transports
MODES: tuple[str, ...] = ("folder", "nfc", "hotadd")
#: VCB's ``vcbMounter -m`` names and what each maps to (``san`` is refused)
ALIASES: dict[str, str] = {"nbd": "nfc", "nbdssl": "nfc", "cos": "folder"}
#: every name ``-m`` accepts
TRANSPORTS: tuple[str, ...] = (*MODES, "nbd", "nbdssl", "cos", "san")


def transport_mode(name: str) -> str:
    """The real transport for a ``-m`` name; one clear error for ``san`` or an unknown name."""
    if name == "san":
        raise InvalidInputError(
            "transport (-m)", expected="folder, nfc or hotadd (nbd/nbdssl are nfc, cos is folder)", got="san",
            hint="SAN mode reads the VMFS LUN over a storage fabric, which vcbsim does not simulate",
        )
    mode = ALIASES.get(name, name)
    if mode not in MODES:
        raise InvalidInputError("transport (-m)", expected=" or ".join(TRANSPORTS), got=name)
    return mode


class DiskSource:
    """The disks of one VM as of one snapshot, through one transport."""

    mode = "folder"

    def __init__(self, client: Any, vm: VMInfo, snapshot_id: str) -> None:
        self.client = client
        self.vm = vm
        self.snapshot_id = snapshot_id
        self.released = False

    def details(self) -> dict[str, Any]:
        """What the proxy's ``op`` events record about the transport's own objects."""
        return {}

    def open(self, moref: str, disk_key: int, snapshot_id: str | None) -> BlockReader:
        return self.client.open_disk(moref, disk_key, snapshot_id)  # type: ignore[no-any-return]

    def release(self, ok: bool) -> None:
        self.released = True


class _InProcessNfc(DiskSource):
    mode = "nfc"

    def __init__(self, client: Any, vm: VMInfo, snapshot_id: str, spool: Path) -> None:
        from vcbsim.simulator._export import open_export

        super().__init__(client, vm, snapshot_id)
        self.spool = spool
        host = client.host
        with host.lock:
            self.lease = open_export(host, vm.moref, snapshot_id)
            self.lease.ready()  # the export task runs at once in process

    def details(self) -> dict[str, Any]:
        return {"lease": self.lease.id}

    def open(self, moref: str, disk_key: int, snapshot_id: str | None) -> BlockReader:
        disk = next((d for d in self.lease.disks if d.device_key == disk_key), None)
        if disk is None:
            return super().open(moref, disk_key, snapshot_id)  # not in the snapshot (independent)
        host = self.client.host
        self.spool.mkdir(parents=True, exist_ok=True)
        path = self.spool / f"{self.vm.moref}-{disk.name}"
        try:
            with host.lock, path.open("wb") as f:
                for chunk in self.lease.stream(disk):
                    f.write(chunk)
                done = sum(1 for d in self.lease.disks if d.sent)
                self.lease.progress(100 * done // max(1, len(self.lease.disks)))
            return read_vmdk(path).view(None)
        finally:
            path.unlink(missing_ok=True)

    def release(self, ok: bool) -> None:
        with self.client.host.lock:
            if self.lease.live:
                if ok and self.lease.state == "ready":
                    self.lease.complete()
                else:
                    self.lease.abort()
        self.released = True


class _WireNfc(DiskSource):
    """``ExportSnapshot`` over pyVmomi; the disks downloaded from ``info.deviceUrl``."""

    mode = "nfc"

    def __init__(self, client: Any, vm: VMInfo, snapshot_id: str, spool: Path) -> None:
        from pyVmomi import vim

        super().__init__(client, vm, snapshot_id)
        self.spool = spool
        snap = vim.vm.Snapshot(snapshot_id, client.si._stub)
        self.lease = snap.ExportSnapshot()
        for _ in range(3000):  # the host's export task makes it ready; bounded wait
            state = self.lease.state
            if state != vim.HttpNfcLease.State.initializing:
                break
            time.sleep(0.01)
        if self.lease.state != vim.HttpNfcLease.State.ready:
            err = self.lease.error
            msg = f"the export lease of {vm.name} is {self.lease.state}: {getattr(err, 'msg', err)}"
            raise StateError(msg)
        info: Any = self.lease.info
        vmobj: Any = vim.VirtualMachine(vm.moref, client.si._stub)
        unit_of = {d.key: d.unitNumber for d in vmobj.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)}
        by_unit = {}
        for u in info.deviceUrl:
            if not u.disk:
                continue  # a host of API 6.7 and later also lists the VM's .nvram
            by_unit[int(u.key.rsplit(":", 1)[1])] = u.url
        self.urls = {key: by_unit[unit] for key, unit in unit_of.items() if unit in by_unit}
        self.done = 0

    def details(self) -> dict[str, Any]:
        return {"lease": self.lease._moId}

    def open(self, moref: str, disk_key: int, snapshot_id: str | None) -> BlockReader:
        url = self.urls.get(disk_key)
        if url is None:
            return super().open(moref, disk_key, snapshot_id)
        self.spool.mkdir(parents=True, exist_ok=True)
        path = self.spool / f"{self.vm.moref}-{disk_key}.vmdk"
        try:
            self._download(url, path)
            self.done += 1
            self.lease.HttpNfcLeaseProgress(percent=100 * self.done // max(1, len(self.urls)))
            return read_vmdk(path).view(None)
        finally:
            path.unlink(missing_ok=True)

    def _download(self, url: str, path: Path) -> None:
        from urllib.parse import urlsplit

        folder = self.client.folder
        parts = urlsplit(url)
        if parts.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname or folder._host, parts.port, context=folder._context, timeout=300)
        else:
            conn = http.client.HTTPConnection(parts.hostname or folder._host, parts.port, timeout=300)
        try:
            conn.request("GET", parts.path, headers={"Cookie": folder._cookie()})
            resp = conn.getresponse()
            if resp.status != 200:
                msg = f"GET {parts.path}: HTTP {resp.status} {resp.read(200).decode(errors='replace').strip()}"
                raise StateError(msg)
            with path.open("wb") as f:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
        finally:
            conn.close()

    def release(self, ok: bool) -> None:
        from pyVmomi import vim

        state = self.lease.state
        if state in (vim.HttpNfcLease.State.ready, vim.HttpNfcLease.State.initializing):
            if ok and state == vim.HttpNfcLease.State.ready:
                self.lease.HttpNfcLeaseComplete()
            else:
                self.lease.HttpNfcLeaseAbort()
        self.released = True


class _InProcessHotAdd(DiskSource):
    mode = "hotadd"

    def __init__(self, client: Any, vm: VMInfo, snapshot_id: str, proxy_vm: str | None) -> None:
        from vcbsim.simulator._hotadd import hot_add, is_proxy, mark_proxy

        super().__init__(client, vm, snapshot_id)
        host = client.host
        with host.lock:
            if proxy_vm is not None and not is_proxy(host.find_vm(proxy_vm)):
                mark_proxy(host, proxy_vm)  # the operator named it: the proxy is marked as such
            if proxy_vm is None:
                marked = [v.name for v in host.vms.values() if is_proxy(v)]
                if not marked:
                    raise InvalidInputError(
                        "proxy VM (hot-add)", expected="a VM marked as the backup proxy", got="none in the inventory",
                        hint="vcbsim serve --proxy-vm NAME, or give --proxy-vm NAME",
                    )
                proxy_vm = marked[0]
            self.proxy = host.find_vm(proxy_vm)
            self.disks = {a.disk: a for a in hot_add(host, self.proxy, vm.moref, snapshot_id)}

    def details(self) -> dict[str, Any]:
        return {"proxy": self.proxy.moref, "disks": sorted(a.proxy_key for a in self.disks.values())}

    def open(self, moref: str, disk_key: int, snapshot_id: str | None) -> BlockReader:
        att = self.disks.get(disk_key)
        return att if att is not None else super().open(moref, disk_key, snapshot_id)

    def release(self, ok: bool) -> None:
        from vcbsim.simulator._hotadd import hot_remove

        host = self.client.host
        with host.lock:
            hot_remove(host, self.proxy, self.vm.moref)
        self.released = True


class _WireHotAdd(DiskSource):
    """Hot-add over ``--server``: ``ReconfigVM_Task`` on the proxy VM adds each disk file of the
    snapshot (as the snapshot's configuration names it) read-only, the proxy reads each one
    as its guest would, as a block device, and the disks are removed at release.

    The host attaches them to the proxy (``simulator/_hotadd.py``: the lock on the commit, the
    trace, the proxy's devices) and exposes each as an NBD device in the proxy guest's device
    directory, which the proxy VM's ``config.extraConfig`` names (``vcbsim.guestDevices``, the
    proxy's ``/dev/disk/by-path``): ``<dir>/scsi0:<unit>``, the unit the proxy's new device has.
    Where the data is comes from the host (``QueryChangedDiskAreas``, as VDDK asks it; without
    changed block tracking, the redo logs' grain tables: metadata); every data byte comes
    through the device (NBD block status is not negotiated)."""

    mode = "hotadd"

    def __init__(self, client: Any, vm: VMInfo, snapshot_id: str, proxy_vm: str | None) -> None:
        from pyVmomi import vim

        super().__init__(client, vm, snapshot_id)
        stub = client.si._stub
        self.proxy = _find_proxy(client, proxy_vm)
        snap: Any = vim.vm.Snapshot(snapshot_id, stub)
        covered = {d.key for d in vm.disks if d.snapshot_exclusion is None}  # in the snapshot
        files = {d.key: getattr(d.backing, "fileName", "") for d in snap.config.hardware.device
                 if isinstance(d, vim.vm.device.VirtualDisk) and d.key in covered}
        self.keys, self.units = attach_files(client, self.proxy, list(files.values()), "independent_nonpersistent")
        self.by_disk = {key: name for key, name in files.items() if name in self.keys}
        try:
            self.devices = _device_dir(self.proxy)  # the proxy's config after the attach
        except BaseException:
            detach_keys(client, self.proxy, list(self.keys.values()))
            raise
        self.opened: list[Any] = []

    def details(self) -> dict[str, Any]:
        return {"proxy": self.proxy._moId, "disks": sorted(self.keys.values())}

    def open(self, moref: str, disk_key: int, snapshot_id: str | None) -> BlockReader:
        from ._nbdclient import NbdDisk

        name = self.by_disk.get(disk_key)
        if name is None:
            return super().open(moref, disk_key, snapshot_id)  # not in the snapshot (independent)
        device = f"scsi0:{self.units[name]}"
        areas = self.client.allocated_areas(moref, disk_key, snapshot_id)
        disk = NbdDisk(self.devices / device, device, areas=areas)
        self.opened.append(disk)
        return disk

    def release(self, ok: bool) -> None:
        for disk in self.opened:
            disk.close()
        self.opened.clear()
        detach_keys(self.client, self.proxy, list(self.keys.values()))
        self.released = True


def _find_proxy(client: Any, name: str | None) -> Any:
    """The proxy VM: ``name``, else the VM marked ``vcbsim.backupProxy``."""
    for candidate in client._vms():
        if name is not None:
            if candidate.name == name:
                return candidate
            continue
        extra = {o.key: str(o.value) for o in (candidate.config.extraConfig or [])}
        if extra.get("vcbsim.backupProxy", "").upper() == "TRUE":
            return candidate
    raise InvalidInputError(
        "proxy VM (hot-add)", expected="a VM marked as the backup proxy" if name is None else f"a VM named {name}",
        got="none in the inventory", hint="vcbsim serve --proxy-vm NAME, or give --proxy-vm NAME",
    )


def _device_dir(proxy: Any) -> Path:
    """Where the proxy guest's block devices are (``vcbsim.guestDevices`` in its config)."""
    extra = {o.key: str(o.value) for o in (proxy.config.extraConfig or [])}
    where = extra.get("vcbsim.guestDevices", "")
    if not where:
        raise InvalidInputError(
            "proxy VM (hot-add)", expected="a proxy VM whose config names its guest's device directory "
            "(vcbsim.guestDevices)", got=f"{proxy.name} without one",
            hint="serve the host with vcbsim serve --proxy-vm NAME (--proxy-devices DIR)",
        )
    return Path(where)


def attach_files(client: Any, proxy: Any, files: list[str], mode: str) -> tuple[dict[str, int], dict[str, int]]:
    """``ReconfigVM_Task`` on the proxy adding each existing disk file (``mode``: the backing's
    ``diskMode``); returns ``file -> device key`` and ``file -> SCSI unit`` of the new devices."""
    from pyVmomi import vim

    changes = [
        vim.vm.device.VirtualDeviceSpec(
            operation="add",
            device=vim.vm.device.VirtualDisk(
                key=-(i + 1), controllerKey=1000, capacityInKB=0,
                backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=name, diskMode=mode),
            ),
        )
        for i, name in enumerate(files)
    ]
    client._wait(proxy.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes)), "VM", proxy.name)
    keys: dict[str, int] = {}
    units: dict[str, int] = {}
    for d in proxy.config.hardware.device:
        name = getattr(d.backing, "fileName", "") if isinstance(d, vim.vm.device.VirtualDisk) else ""
        if name in files:
            keys[name], units[name] = int(d.key), int(d.unitNumber)
    return keys, units


def detach_keys(client: Any, proxy: Any, keys: list[int]) -> None:
    """``ReconfigVM_Task`` on the proxy removing the devices ``keys`` (the files stay)."""
    from pyVmomi import vim

    changes = [
        vim.vm.device.VirtualDeviceSpec(operation="remove", device=vim.vm.device.VirtualDisk(
            key=key, controllerKey=1000, capacityInKB=0))
        for key in keys
    ]
    if changes:
        client._wait(proxy.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes)), "VM", proxy.name)


def open_source(
    mode: str, client: Any, vm: VMInfo, snapshot_id: str, *, spool: Path, proxy_vm: str | None = None
) -> DiskSource:
    """Start reading ``vm``'s disks as of ``snapshot_id`` through ``mode``: a lease made ready,
    or the disks attached to the proxy VM. Raises what the host answers (the caller records the
    failed step and cleans up)."""
    in_process = hasattr(client, "host")
    if mode == "folder":
        return DiskSource(client, vm, snapshot_id)
    if mode == "nfc":
        return _InProcessNfc(client, vm, snapshot_id, spool) if in_process else _WireNfc(client, vm, snapshot_id, spool)
    if mode == "hotadd":
        if not in_process:
            return _WireHotAdd(client, vm, snapshot_id, proxy_vm)
        return _InProcessHotAdd(client, vm, snapshot_id, proxy_vm)
    raise InvalidInputError("transport", expected=" or ".join(MODES), got=mode)




#: what the reference proxy writes in its backup snapshot's description (``_workflow.py``): the
#: run's marker in the snapshot's configuration, so a later run knows the snapshot, and the
#: disks attached from it, are its own
RUN_MARK = "(vcbsim reference proxy)"


def release_leftovers(client: Any, vm: VMInfo, snapshots: set[str]) -> list[str]:
    """End what an interrupted run left holding ``vm``'s ``snapshots``: export leases aborted,
    its disks hot-added to the proxy VM removed. In process the host says who holds what;
    over ``--server`` (``_release_wire``) the proxy VM's devices say it. A leftover lease over
    ``--server`` times out on the host. Returns one note each."""
    host = getattr(client, "host", None)
    if host is None:
        return _release_wire(client, vm, snapshots) if hasattr(client, "si") else []
    from vcbsim.simulator._hotadd import hot_remove

    notes = []
    with host.lock:
        for hold in host.holds.on(vm.moref):
            if hold.snapshot not in snapshots:
                continue  # not the backup snapshot an interrupted run of this proxy left
            if hold.kind == "export" and hold.owner is not None:
                hold.owner.abort()
                notes.append(f"aborted export lease {hold.holder} of {vm.name} left by an interrupted run")
            elif hold.kind == "hotadd":
                gone = hot_remove(host, hold.holder, vm.moref)
                notes.append(f"removed {len(gone)} disk(s) of {vm.name} left hot-added to the proxy VM by an "
                             "interrupted run")
    return notes


def holds_leftovers(client: Any, vm: VMInfo, snapshots: set[str]) -> bool:
    """Whether something an interrupted run (or another process) left holds ``vm``'s
    ``snapshots``: what ``release_leftovers`` would end."""
    host = getattr(client, "host", None)
    if host is None:
        return bool(_wire_leftovers(client, vm, snapshots)) if hasattr(client, "si") else False
    with host.lock:
        return any(h.snapshot in snapshots for h in host.holds.on(vm.moref))


def _wire_leftovers(client: Any, vm: VMInfo, snapshots: set[str]) -> list[tuple[Any, list[int]]]:
    """Over ``--server``: the disks a run of this proxy left attached to a proxy VM, found by
    what the host shows: ``(proxy VM, device keys)`` each.

    A disk is this proxy's leftover when both hold: the proxy VM's device is backed by a disk
    file of one of ``snapshots`` (the ``_VCB-BACKUP_`` snapshots left on ``vm``), and that
    snapshot's description carries the run's marker (``RUN_MARK``: the reference proxy made
    it). A disk of any other snapshot, or of a snapshot another product made under the same
    name, is never detached: this proxy did not attach it. The proxy VMs are those the
    inventory marks (``vcbsim.backupProxy``: the host hot-adds to no other)."""
    from pyVmomi import vim

    ours = {s.id for s in client.list_snapshots(vm.moref) if s.id in snapshots and RUN_MARK in (s.description or "")}
    files: set[str] = set()
    for sid in sorted(ours):
        snap: Any = vim.vm.Snapshot(sid, client.si._stub)
        files |= {str(getattr(d.backing, "fileName", "")) for d in snap.config.hardware.device
                  if isinstance(d, vim.vm.device.VirtualDisk)}
    files.discard("")
    if not files:
        return []
    out = []
    for proxy in client._vms():
        if proxy._moId == vm.moref:
            continue
        extra = {o.key: str(o.value) for o in (proxy.config.extraConfig or [])}
        if extra.get("vcbsim.backupProxy", "").upper() != "TRUE":
            continue
        keys = [int(d.key) for d in proxy.config.hardware.device
                if isinstance(d, vim.vm.device.VirtualDisk) and str(getattr(d.backing, "fileName", "")) in files]
        if keys:
            out.append((proxy, keys))
    return out


def _release_wire(client: Any, vm: VMInfo, snapshots: set[str]) -> list[str]:
    """Over ``--server``: detach what ``_wire_leftovers`` finds (``ReconfigVM_Task`` remove,
    the files kept)."""
    notes = []
    for proxy, keys in _wire_leftovers(client, vm, snapshots):
        detach_keys(client, proxy, keys)
        notes.append(f"removed {len(keys)} disk(s) of {vm.name} left hot-added to the proxy VM {proxy.name} "
                     "by an interrupted run")
    return notes
