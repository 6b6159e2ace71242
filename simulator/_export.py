"""The host side of an NFC export: which disks a lease covers, its state, its hold, its trace.

``soap/mo/_nfclease.py`` serves it as the ``HttpNfcLease`` managed object (and the ``/nfc``
URLs); an in-process client (the reference proxy over ``InProcessHostClient``) uses it
directly. Either way the host's story is the same: ``nfc.lease`` events for every state
(``initializing`` → ``ready`` → ``done`` | ``error``), ``nfc.read`` per disk downloaded, and
an ``export`` hold on the VM (``_holds.py``) from creation to the end, so the VM's operations,
among them the seed's commit (3b), wait for the lease to end.

What a host refuses (API reference, ``ExportVm`` / ``ExportSnapshot`` faults): ``ExportVm`` of a
VM that is not powered off (``InvalidPowerState``; an export of a running VM goes through a
snapshot), a VM busy with another task or export (``TaskInProgress``), a VM whose files could
not be loaded (``InvalidState``).

Timeout: a ready lease not kept alive (``progress``) for ``timeout`` seconds of ``clock``
ends in ``error`` (``Timedout``). ``clock`` is the caller's: the endpoint's clock over SOAP,
the host's virtual clock in process.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._faults import make_fault
from .disk import BlockReader, stream_optimized

if TYPE_CHECKING:
    from ._host import Host

__all__ = ["ExportDisk", "ExportLease", "LEASE_TIMEOUT_SECONDS", "device_id", "exports_nvram", "open_export", "open_import"]

#: seconds without progress before a ready lease times out: what no source pins down exactly
#: (five minutes, the order of hostd's NFC lease timeout); ``info.leaseTimeout`` reports it
LEASE_TIMEOUT_SECONDS = 300
_ids = itertools.count(1)

#: the device class hostd names a disk's controller by in a lease and an OVF (the endpoint
#: serves every SCSI bus as an LSI Logic controller, ``soap/mo/_vmprops.py``)
_CONTROLLER_CLASS = {"scsi": "VirtualLsiLogicController", "ide": "VirtualIDEController"}


def exports_nvram(host: Host) -> bool:
    """Whether the host's export leases also carry the VM's ``.nvram`` (a ``deviceUrl`` with
    ``disk`` false, ``disk-N.nvram``): hosts of API 6.7 and later do, which is why
    ``community.vmware``'s ``vmware_export_ovf`` downloads a ``.nvram`` URL only from a host of
    6.7 or later, and why such a host's OVF names the file in the ``nvram`` ExtraConfig."""
    return _api(host) >= (6, 7)


def device_id(owner: str, controller: str, unit: int, bus: int = 0) -> str:
    """A disk's id in a lease and an OVF: ``/<owner>/<controller class><bus>:<unit>``.

    ``owner`` is the VM's id (``vm-N``) for ``HttpNfcLeaseDeviceUrl.key`` and the manifest,
    its name for ``importKey`` and an import spec's ``fileItem.deviceId``: the API reference
    (``HttpNfcLeaseDeviceUrl``) has "a single device id based on the object identifiers" for
    an export, and for an import also "one based on the object names used in the ImportSpec";
    ovftool's and pyVmomi's samples show the shape, e.g. ``/vm-42/VirtualLsiLogicController0:0``.
    """
    return f"/{owner}/{_CONTROLLER_CLASS.get(controller, _CONTROLLER_CLASS['scsi'])}{bus}:{unit}"


@dataclass
class ExportDisk:
    """One disk of a lease: its device key on the VM, unit, URL name and its bytes."""

    device_key: int
    unit: int
    name: str
    capacity: int
    view: Callable[[], BlockReader] = field(repr=False)
    sent: int = 0
    #: SHA-1 and size of the last download that went to its end (``HttpNfcLeaseGetManifest``)
    sha1: str | None = None
    size: int | None = None
    #: ``"scsi"`` or ``"ide"``: the controller in the disk's ``device_id``
    controller: str = "scsi"
    #: bytes of data the disk holds (allocated grains), the manifest's ``populatedSize``
    populated: int | None = None


@dataclass
class ExportLease:
    host: Host = field(repr=False)
    id: str
    vm: str
    vm_name: str
    snapshot: str | None
    disks: list[ExportDisk]
    clock: Callable[[], float] = field(repr=False)
    timeout: int = LEASE_TIMEOUT_SECONDS
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    state: str = "initializing"
    error: Any = None
    percent: int = 0
    touched: float = 0.0
    hold_id: str | None = None
    #: called whenever the state changes (the endpoint wakes property waiters)
    on_change: Callable[[], None] = field(default=lambda: None, repr=False)
    #: "export", or "import" (``ImportVApp``: the disks are uploaded to a VM made for it,
    #: which an abort or a timeout destroys: no half-made VM stays registered)
    kind: str = "export"
    #: an import lease's ``importKey`` per disk (the import spec's ``fileItem.deviceId``)
    import_keys: dict[int, str] = field(default_factory=dict)
    #: SHA-1 of each file that is not a disk (the ``.nvram``) downloaded to its end, by name
    files_sent: dict[str, str] = field(default_factory=dict)

    @property
    def nvram_name(self) -> str | None:
        """The URL name of the VM's ``.nvram`` in an export lease (``exports_nvram``), after
        the disks' (``disk-<number of disks>.nvram``); ``None`` where the host has none."""
        if self.kind != "export" or not exports_nvram(self.host):
            return None
        return f"disk-{len(self.disks)}.nvram"

    def _trace(self, state: str, **details: Any) -> None:
        if self.snapshot is not None:
            details["snapshot"] = self.snapshot
        self.host.trace.emit("host", "nfc.lease", vm=self.vm, lease=self.id, state=state, **details)

    def check(self) -> str:
        """The state now (a ready lease not kept alive has timed out)."""
        if self.state == "ready" and self.clock() - self.touched > self.timeout:
            self.end("error", make_fault("Timedout", f"The lease timed out: no progress for {self.timeout} seconds."),
                     reason="timed out")
        return self.state

    def ready(self) -> None:
        if self.state == "initializing":
            self.state = "ready"
            self.touched = self.clock()
            self._trace("ready")
            self.on_change()

    def progress(self, percent: int) -> None:
        if self.check() == "ready":
            self.touched = self.clock()
            self.percent = percent

    def complete(self) -> None:
        self.percent = 100
        self.end("done")
        if self.kind == "import" and self.vm in self.host.vms:
            from ._vmlifecycle import mount_guest

            # the uploads brought the guest's disks: the new VM boots with its guest's file
            # systems (and the Tools on them), as a restore from its disks does
            mount_guest(self.host, self.host.vms[self.vm])

    def abort(self, error: Any = None) -> None:
        self.end("error", error if error is not None else make_fault("RequestCanceled", "The lease was aborted."),
                 reason="aborted")

    def end(self, state: str, error: Any = None, reason: str = "") -> None:
        self.state = state
        self.error = error
        if self.hold_id is not None:
            self.host.holds.release(self.hold_id)
            self.hold_id = None
        self._trace(state, **({"reason": reason} if reason else {}))
        if self.kind == "import" and state == "error" and self.vm in self.host.vms:
            from ._vmlifecycle import destroy_vm

            destroy_vm(self.host, self.host.vms[self.vm])  # an import that failed leaves no VM
        self.on_change()

    def upload(self, disk: ExportDisk, path: Any) -> int:
        """An import lease's disk: the VMDK file at ``path`` (stream-optimized, or any sparse
        or flat VMDK ``read_vmdk`` reads) becomes the disk's content; its bytes of data."""
        from .disk import read_vmdk

        if self.kind != "import":
            raise make_fault("InvalidState", f"{self.id} is an export lease: its disks are downloaded, not uploaded.")
        source = read_vmdk(path)
        if source.capacity > disk.capacity:
            raise make_fault("InvalidArgument", f"{disk.name} holds {source.capacity} bytes, the disk only "
                             f"{disk.capacity}.", invalidProperty="file")
        target = self.host.vms[self.vm].disk(disk.device_key)
        if target is None:
            raise make_fault("InvalidState", f"{self.vm_name} has no disk {disk.device_key} any more.")
        written = 0
        for offset, length in source.allocated_areas():
            target.disk.write(offset, source.read(offset, length))
            written += length
        disk.sent += written
        self.host.trace.emit("host", "nfc.write", vm=self.vm, lease=self.id, disk=disk.device_key, bytes=written)
        return written

    @property
    def live(self) -> bool:
        return self.check() in ("initializing", "ready")

    def stream(self, disk: ExportDisk, lock: Any = None) -> Generator[bytes, None, None]:
        """The disk as a stream-optimized VMDK (``lock`` taken around each read of the disk);
        an ``nfc.read`` event with the bytes sent when it ends."""
        view = disk.view()
        sent = 0
        digest = hashlib.sha1()  # noqa: S324 - the manifest's algorithm (API 4.1), not security
        try:
            for chunk in stream_optimized(view, disk.name, read_lock=lock, level=1):
                sent += len(chunk)
                digest.update(chunk)
                yield chunk
            disk.sha1, disk.size = digest.hexdigest(), sent
            areas = getattr(view, "allocated_areas", None)
            disk.populated = sum(length for _, length in areas()) if areas is not None else view.size
        finally:
            disk.sent += sent
            details: dict[str, Any] = {"snapshot": self.snapshot} if self.snapshot else {}
            self.host.trace.emit("host", "nfc.read", vm=self.vm, lease=self.id, disk=disk.device_key, bytes=sent,
                                 **details)


def _api(host: Host) -> tuple[int, ...]:
    """The profile's vSphere API version as numbers (``2.5u2`` → ``(2, 5)``)."""
    return tuple(int(n) for n in re.findall(r"\d+", host.profile.api_version.split("u")[0]))


def open_export(
    host: Host, vm_ref: str, snapshot: str | None, *, clock: Callable[[], float] | None = None,
    timeout: int = LEASE_TIMEOUT_SECONDS, lease_id: str | None = None,
) -> ExportLease:
    """A new lease on ``vm_ref``'s disks as of ``snapshot`` (``None``: the powered-off VM),
    ``initializing``, holding the VM (see the module docstring for what is refused)."""
    with host.lock:
        vm = host.find_vm(vm_ref)
        method, since = ("ExportSnapshot", (5, 5)) if snapshot is not None else ("ExportVm", (4, 0))
        if _api(host) < since:
            from pyVmomi import vim

            raise make_fault(
                "MethodNotFound",
                f"{method} is not in vSphere API {host.profile.api_version} (it arrived in "
                f"{since[0]}.{since[1]}; pyVmomi vim.version.version{'9' if snapshot else '5'}).",
                method=method,
                receiver=vim.vm.Snapshot(snapshot) if snapshot is not None else vim.VirtualMachine(vm.moref),
            )
        if vm.connection_state != "connected":
            raise make_fault("InvalidState", f"{vm.name} is {vm.connection_state}: its files could not be loaded.")
        if snapshot is None and vm.power_state != "poweredOff":
            raise make_fault(
                "InvalidPowerState",
                f"The attempted operation cannot be performed in the current state ({vm.power_state}): "
                "ExportVm needs a powered-off VM; export a snapshot (ExportSnapshot) of a running one.",
                requestedState="poweredOff", existingState=vm.power_state,
            )
        held = host.holds.on(vm.moref, "export")
        if vm.busy is not None or held:
            from pyVmomi import vim

            task = held[0].task if held and held[0].task else f"haTask-{vm.moref}-{vm.busy or 'ExportVm'}"
            raise make_fault("TaskInProgress", f"The operation is not allowed: {vm.name} is busy "
                             f"({vm.busy or 'an export lease is held'}).", task=vim.Task(task))
        snap = host.find_snapshot(vm, snapshot) if snapshot is not None else None
        disks: list[ExportDisk] = []
        for i, d in enumerate(vm.disks):
            if snap is not None and d.key not in snap.layers:
                continue  # an independent disk is in no snapshot: not part of its export

            def view(key: int = d.key) -> BlockReader:
                return host.disk_view(vm.moref, key, snap.moref if snap is not None else None)

            disks.append(ExportDisk(d.key, d.unit_number, f"disk-{i}.vmdk", d.capacity, view, controller=d.controller))
        tick = clock or (lambda: float(host.clock.now))
        lease = ExportLease(
            host=host, id=lease_id or f"nfclease-{next(_ids)}", vm=vm.moref, vm_name=vm.name,
            snapshot=snap.moref if snap is not None else None, disks=disks, clock=tick, timeout=timeout,
        )
        lease.touched = tick()
        hold = host.holds.add("export", vm.moref, lease.snapshot, lease.id, tuple(d.device_key for d in disks),
                              alive=lambda: lease.live)
        lease.hold_id = hold.id
        hold.owner = lease
        lease._trace("initializing", disks=[d.device_key for d in disks])
        return lease


def open_import(host: Host, vm_ref: str, *, clock: Callable[[], float] | None = None,
                timeout: int = LEASE_TIMEOUT_SECONDS, lease_id: str | None = None) -> ExportLease:
    """An import lease on the VM ``ImportVApp`` just made: one upload per disk (``disk-N.vmdk``),
    the VM held until the lease ends; an abort or a timeout destroys it."""
    with host.lock:
        vm = host.find_vm(vm_ref)
        disks = [ExportDisk(d.key, d.unit_number, f"disk-{i}.vmdk", d.capacity, lambda: None,  # type: ignore[arg-type,return-value]
                            controller=d.controller)
                 for i, d in enumerate(vm.disks)]
        tick = clock or (lambda: float(host.clock.now))
        lease = ExportLease(host=host, id=lease_id or f"nfclease-{next(_ids)}", vm=vm.moref, vm_name=vm.name,
                            snapshot=None, disks=disks, clock=tick, timeout=timeout, kind="import")
        lease.touched = tick()
        hold = host.holds.add("export", vm.moref, None, lease.id, tuple(d.device_key for d in disks),
                              alive=lambda: lease.live)
        lease.hold_id = hold.id
        hold.owner = lease
        lease._trace("initializing", disks=[d.device_key for d in disks], kind="import")
        return lease
