"""HttpNfcLease: the export lease of ``ExportVm`` / ``ExportSnapshot`` (vSphere API 4.0 / 5.5).

What a real host does, and so what this does (API reference, ``HttpNfcLease``): the lease is
returned ``initializing`` while the export task prepares it, then becomes ``ready`` with
``info.deviceUrl`` (one URL per disk); the client downloads the disks, calls
``HttpNfcLeaseProgress`` "periodically to keep the lease alive" (otherwise it "times out and
enters the error state"), and ends it with ``HttpNfcLeaseComplete`` (``done``) or
``HttpNfcLeaseAbort`` (``error``). "While the lease is held, operations that alter the state
of the virtual machines covered by the lease are blocked": the host's hold
(``simulator/_holds.py``), so the seed's commit (3b, ``RemoveSnapshot_Task``) fails with
``TaskInProgress`` until the lease ends.

Each disk URL serves the disk as a stream-optimized VMDK (``disk/_streamvmdk.py``), as
an OVF export of a host does: the powered-off VM's disk for ``ExportVm``, the snapshot's view
for ``ExportSnapshot``. The URL names the lease's secret token (``/nfc/<token>/disk-N.vmdk``),
which is the authorisation, as the ticket in hostd's NFC URLs is.

Time: the lease timeout runs on the endpoint's clock (``Endpoint.clock``; a test passes a
``VirtualClock`` and advances it). ``LEASE_TIMEOUT_SECONDS`` (300, five minutes) is what no
source pins down exactly: the value ``info.leaseTimeout`` reports and a switch
(``Endpoint.leases.timeout``).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyVmomi import VmomiSupport, vim, vmodl

from ..._faults import make_fault
from ...disk import BlockReader, stream_optimized
from .._index import not_found
from ..wire import _codec
from ._base import MOImpl, soap

if TYPE_CHECKING:
    from .._endpoint import Context, Endpoint

__all__ = ["HttpNfcLeaseImpl", "LEASE_TIMEOUT_SECONDS", "LeaseTable", "NfcLease", "NfcDisk", "require_api", "start_export"]

#: seconds without ``HttpNfcLeaseProgress`` before a ready lease times out (a switch: see above)
LEASE_TIMEOUT_SECONDS = 300
_State: Any = vim.HttpNfcLease.State


def require_api(ep: Endpoint, method: Any, receiver: Any) -> None:
    """``MethodNotFound`` when the host's API predates ``method`` (an ESX 3.5 host, API 2.5, has
    no ``ExportVm``: it arrived with vSphere API 4.0; pyVmomi ``vim.version.version5``), as
    ``ConsolidateVMDisks_Task`` on such a host."""
    host_version = _codec.vim25_version(ep.host.profile.api_version)
    info = method.info
    if not VmomiSupport.IsChildVersion(host_version, info.version):
        raise make_fault(
            "MethodNotFound",
            f"{info.wsdlName} is not in vSphere API {ep.host.profile.api_version} "
            f"(this {ep.host.profile.product} {ep.host.profile.version} host).",
            method=info.wsdlName, receiver=receiver,
        )


@dataclass
class NfcDisk:
    """One disk of a lease: its device key on the VM, URL name and a reader of its bytes."""

    device_key: int
    unit: int
    name: str
    capacity: int
    view: Callable[[], BlockReader]
    sent: int = 0


@dataclass
class NfcLease:
    moid: str
    token: str
    vm: str
    vm_name: str
    snapshot: str | None
    disks: list[NfcDisk]
    timeout: int
    touched: float
    state: str = "initializing"
    error: Any = None
    percent: int = 0
    hold_id: str | None = None
    session: str = ""
    _ended: bool = field(default=False, repr=False)


class LeaseTable:
    """The endpoint's export leases (the endpoint lock guards it)."""

    def __init__(self, ep: Endpoint) -> None:
        self.ep = ep
        self.timeout = LEASE_TIMEOUT_SECONDS
        self._by_moid: dict[str, NfcLease] = {}
        self._by_token: dict[str, NfcLease] = {}
        self._ids = itertools.count(1)

    def __contains__(self, moid: object) -> bool:
        return moid in self._by_moid

    def get(self, moid: str) -> NfcLease | None:
        lease = self._by_moid.get(moid)
        if lease is not None:
            self.check(lease)
        return lease

    def by_token(self, token: str) -> NfcLease | None:
        lease = self._by_token.get(token)
        if lease is not None:
            self.check(lease)
        return lease

    def create(self, vm: str, vm_name: str, snapshot: str | None, disks: list[NfcDisk], session: str) -> NfcLease:
        lease = NfcLease(
            moid=f"nfclease-{next(self._ids)}", token=secrets.token_hex(16), vm=vm, vm_name=vm_name,
            snapshot=snapshot, disks=disks, timeout=self.timeout, touched=self.ep.clock(), session=session,
        )
        self._by_moid[lease.moid] = lease
        self._by_token[lease.token] = lease
        hold = self.ep.host.holds.add(
            "export", vm, snapshot, lease.moid, tuple(d.device_key for d in disks),
            alive=lambda: self.check(lease) in ("initializing", "ready"),
        )
        lease.hold_id = hold.id
        self._trace(lease, "initializing", disks=[d.device_key for d in disks])
        return lease

    def _trace(self, lease: NfcLease, state: str, **details: Any) -> None:
        if lease.snapshot is not None:
            details["snapshot"] = lease.snapshot
        self.ep.host.trace.emit("host", "nfc.lease", vm=lease.vm, lease=lease.moid, state=state, **details)

    def ready(self, lease: NfcLease) -> None:
        if lease.state == "initializing":
            lease.state = "ready"
            lease.touched = self.ep.clock()
            self._trace(lease, "ready")
            self.ep.changed.notify_all()

    def check(self, lease: NfcLease) -> str:
        """The lease's state now: a ready lease not kept alive for ``timeout`` seconds of the
        endpoint clock has timed out (error ``Timedout``)."""
        if lease.state == "ready" and self.ep.clock() - lease.touched > lease.timeout:
            self.end(lease, "error", make_fault("Timedout", "The lease timed out: no HttpNfcLeaseProgress "
                                                f"for {lease.timeout} seconds."), reason="timed out")
        return str(lease.state)

    def end(self, lease: NfcLease, state: str, error: Any = None, reason: str = "") -> None:
        lease.state = state
        lease.error = error
        if lease.hold_id is not None:
            self.ep.host.holds.release(lease.hold_id)
            lease.hold_id = None
        details: dict[str, Any] = {"reason": reason} if reason else {}
        self._trace(lease, state, **details)
        # the URLs die with the lease; the object stays readable (state, error)
        self._by_token.pop(lease.token, None)
        self.ep.changed.notify_all()

    def download(self, lease: NfcLease, disk: NfcDisk) -> Iterator[bytes]:
        """The disk as a stream-optimized VMDK, read under the endpoint lock piece by piece;
        the ``nfc.read`` event says how many bytes went out."""
        with self.ep.lock:
            view = disk.view()
        sent = 0
        try:
            for chunk in stream_optimized(view, disk.name, read_lock=self.ep.lock, level=1):
                sent += len(chunk)
                yield chunk
        finally:
            with self.ep.lock:
                disk.sent += sent
                details: dict[str, Any] = {"snapshot": lease.snapshot} if lease.snapshot else {}
                self.ep.host.trace.emit("host", "nfc.read", vm=lease.vm, lease=lease.moid, disk=disk.device_key,
                                        bytes=sent, **details)


class HttpNfcLeaseImpl(MOImpl):
    vim_type = vim.HttpNfcLease

    def lease(self) -> NfcLease:
        lease = self.ep.leases.get(self.moid)
        if lease is None:
            raise not_found(self.ref)
        return lease

    def p_state(self) -> Any:
        return getattr(_State, self.lease().state)

    def p_error(self) -> Any:
        return self.lease().error

    def p_initializeProgress(self) -> int:  # noqa: N802
        return 0 if self.lease().state == "initializing" else 100

    def p_transferProgress(self) -> int:  # noqa: N802
        return self.lease().percent

    def p_mode(self) -> str:
        return "push"  # the client downloads from the host's URLs (API 6.7: "push" mode)

    def p_info(self) -> Any:
        lease = self.lease()
        if lease.state != "ready":
            return None  # "info ... is only set when the lease is in the ready state"
        base = self.ep.base_url
        urls = [
            vim.HttpNfcLease.DeviceUrl(
                key=f"/{lease.vm}/VirtualLsiLogicController0:{d.unit}",
                importKey=f"/{lease.vm_name}/VirtualLsiLogicController0:{d.unit}",
                url=f"{base}/nfc/{lease.token}/{d.name}",
                sslThumbprint="",
                disk=True,
                targetId=d.name,
            )
            for d in lease.disks
        ]
        return vim.HttpNfcLease.Info(
            lease=self.ref,
            entity=vim.VirtualMachine(lease.vm),
            deviceUrl=urls,
            totalDiskCapacityInKB=sum(d.capacity for d in lease.disks) // 1024,
            leaseTimeout=lease.timeout,
        )

    def _timed_out(self, lease: NfcLease) -> None:
        if lease.state == "error" and lease.error is not None and type(lease.error).__name__.endswith("Timedout"):
            raise make_fault("Timedout", "The lease has timed out.")

    @soap
    def HttpNfcLeaseProgress(self, ctx: Context, percent: int) -> None:  # noqa: N802
        """Keeps the lease alive and reports progress (0-100); ``Timedout`` once it timed out."""
        lease = self.lease()
        self._timed_out(lease)
        if not isinstance(percent, int) or not 0 <= percent <= 100:
            raise vmodl.fault.InvalidArgument(msg=f"percent must be 0 to 100, got {percent!r}",
                                              invalidProperty="percent")
        if lease.state == "ready":
            lease.touched = self.ep.clock()
            lease.percent = percent
            self.ep.changed.notify_all()

    @soap
    def HttpNfcLeaseComplete(self, ctx: Context) -> None:  # noqa: N802
        lease = self.lease()
        self._timed_out(lease)
        if lease.state != "ready":
            raise make_fault("InvalidState", f"The lease is {lease.state}, not ready: it cannot be completed.")
        lease.percent = 100
        self.ep.leases.end(lease, "done")

    @soap
    def HttpNfcLeaseAbort(self, ctx: Context, fault: Any = None) -> None:  # noqa: N802
        lease = self.lease()
        self._timed_out(lease)
        if lease.state not in ("initializing", "ready"):
            raise make_fault("InvalidState", f"The lease is {lease.state}: it cannot be aborted.")
        error = fault if fault is not None else vmodl.fault.RequestCanceled(msg="The lease was aborted by the client.")
        self.ep.leases.end(lease, "error", error, reason="aborted")


def start_export(ep: Endpoint, ctx: Context, method: Any, vm_moid: str, snapshot: str | None) -> Any:
    """``ExportVm`` (``snapshot=None``: the powered-off VM's disks) or ``ExportSnapshot``: a new
    lease, ``initializing``; the export task that follows the reply makes it ``ready``.

    Refused as a host refuses: the method on a host whose API predates it (``MethodNotFound``),
    ``ExportVm`` of a VM that is not powered off (``InvalidPowerState``; the API reference lists
    it, and an OVF export of a running VM exports a snapshot or a clone instead), a VM busy
    with another task or lease (``TaskInProgress``), a VM whose files are not accessible
    (``InvalidState``).
    """
    host = ep.host
    vm = host.find_vm(vm_moid)
    receiver = vim.VirtualMachine(vm_moid) if snapshot is None else vim.vm.Snapshot(snapshot)
    require_api(ep, method, receiver)
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
        raise make_fault("TaskInProgress", f"The operation is not allowed: {vm.name} is busy "
                         f"({vm.busy or 'an export lease is held'}).",
                         task=vim.Task(held[0].task if held and held[0].task else f"haTask-{vm.moref}-{vm.busy}"))
    snap = host.find_snapshot(vm, snapshot) if snapshot is not None else None
    disks: list[NfcDisk] = []
    for i, d in enumerate(vm.disks):
        if snap is not None and d.key not in snap.layers:
            continue  # an independent disk is in no snapshot: not part of its export
        key = d.key

        def view(key: int = key) -> BlockReader:
            return host.disk_view(vm.moref, key, snap.moref if snap is not None else None)

        disks.append(NfcDisk(d.key, d.unit_number, f"disk-{i}.vmdk", d.capacity, view))
    session = ctx.session.key if ctx.session is not None else ""
    lease = ep.leases.create(vm.moref, vm.name, snapshot, disks, session)
    task = ep.tasks.submit(ctx, method, vm.moref, lambda: ep.leases.ready(lease))
    if lease.hold_id is not None:
        hold = host.holds.get(lease.hold_id)
        if hold is not None:
            hold.task = task._moId
    ep.changed.notify_all()
    return vim.HttpNfcLease(lease.moid)
