"""HttpNfcLease: the export lease of ``ExportVm`` / ``ExportSnapshot`` (vSphere API 4.0 / 5.5).

What a real host does, and so what this does (API reference, ``HttpNfcLease``): the lease is
returned ``initializing`` while the export task prepares it, then becomes ``ready`` with
``info.deviceUrl`` (one URL per disk); the client downloads the disks, calls
``HttpNfcLeaseProgress`` "periodically to keep the lease alive" (otherwise it "times out and
enters the error state"), and ends it with ``HttpNfcLeaseComplete`` (``done``) or
``HttpNfcLeaseAbort`` (``error``). "While the lease is held, operations that alter the state
of the virtual machines covered by the lease are blocked": the host's hold
(``simulator/_holds.py``), so the seed's commit (3b, ``RemoveSnapshot_Task``) fails with
``TaskInProgress`` until the lease ends. The lease's host side (disks, state, hold, trace) is
``simulator/_export.py``; this module serves it.

Each disk URL serves the disk as a stream-optimized VMDK (``disk/_streamvmdk.py``), as
an OVF export of a host does: the powered-off VM's disk for ``ExportVm``, the snapshot's view
for ``ExportSnapshot``. The URL names the lease's secret token (``/nfc/<token>/disk-N.vmdk``),
which is the authorisation, as the ticket in hostd's NFC URLs is. Where a standalone host
writes ``https://*/nfc/...`` (the client substitutes the host it connected to), these URLs
carry the endpoint's own address, which every client can use as it is. Each URL's
``sslThumbprint`` is the SHA-1 thumbprint of the certificate the endpoint serves (``serve``
sets ``LeaseTable.ssl_thumbprint``; empty over plain HTTP), so a client that pins it, as
OVF tools do, checks the server it downloads from; ``key`` / ``importKey`` name each disk as
hostd does (``_export.device_id``). ``mode`` is ``pushOrGet`` and ``capabilities`` say pull
mode (the host fetching from URLs, ``HttpNfcLeasePullFromUrls_Task``, API 6.7) is not offered.

Time: the lease timeout runs on the endpoint's clock (``Endpoint.clock``; a test passes a
``VirtualClock`` and advances it); ``Endpoint.leases.timeout`` is the switch
(``_export.LEASE_TIMEOUT_SECONDS``, 300).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pyVmomi import VmomiSupport, vim, vmodl

from ..._export import (
    LEASE_TIMEOUT_SECONDS,
    ExportDisk,
    ExportLease,
    device_id,
    open_export,
    open_import,
)
from ..._faults import make_fault
from .._index import not_found
from ..wire import _codec
from ._base import MOImpl, soap
from ._dsfiles import NVRAM

if TYPE_CHECKING:
    from .._endpoint import Context, Endpoint

__all__ = ["HttpNfcLeaseImpl", "LeaseTable", "nvram_id", "require_api", "start_export", "start_import"]

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


class LeaseTable:
    """The endpoint's export leases (the endpoint lock guards it)."""

    def __init__(self, ep: Endpoint) -> None:
        self.ep = ep
        self.timeout = LEASE_TIMEOUT_SECONDS
        #: the SHA-1 thumbprint of the certificate the endpoint serves (``serve`` sets it; empty
        #: over plain HTTP), given in every ``deviceUrl``
        self.ssl_thumbprint = ""
        self._by_moid: dict[str, ExportLease] = {}
        self._ids = itertools.count(1)

    def __contains__(self, moid: object) -> bool:
        return moid in self._by_moid

    def get(self, moid: str) -> ExportLease | None:
        lease = self._by_moid.get(moid)
        if lease is not None:
            lease.check()
        return lease

    def by_token(self, token: str) -> ExportLease | None:
        """The lease whose URLs carry ``token``, while it is live (the URLs die with it)."""
        for lease in self._by_moid.values():
            if lease.token == token:
                return lease if lease.live else None
        return None

    def add(self, lease: ExportLease) -> None:
        lease.on_change = self.ep.changed.notify_all
        self._by_moid[lease.id] = lease
        # a finished lease is kept to be read (state, error) until many newer ones pushed it out
        if len(self._by_moid) > 1000:
            for moid in [m for m, v in self._by_moid.items() if not v.live][: len(self._by_moid) - 1000]:
                del self._by_moid[moid]

    def download(self, lease: ExportLease, disk: ExportDisk) -> Iterator[bytes]:
        """The disk's stream-optimized VMDK, read under the endpoint lock piece by piece."""

        def chunks() -> Iterator[bytes]:
            stream = lease.stream(disk, lock=self.ep.lock)
            try:
                yield from stream
            finally:
                with self.ep.lock:
                    stream.close()  # its nfc.read event under the lock, as every trace event

        return chunks()


class HttpNfcLeaseImpl(MOImpl):
    vim_type = vim.HttpNfcLease

    def lease(self) -> ExportLease:
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
        # API 6.7 ``HttpNfcLeaseMode``: the client GETs (export) or PUTs/POSTs (import) the
        # URLs itself; "pull" (the host fetching from URLs, HttpNfcLeasePullFromUrls_Task) is
        # not offered, which ``capabilities`` says
        return "pushOrGet"

    def p_capabilities(self) -> Any:
        return vim.HttpNfcLease.Capabilities(pullModeSupported=False, corsSupported=False)

    def p_info(self) -> Any:
        lease = self.lease()
        if lease.state != "ready":
            return None  # set once the lease is ready (API reference, HttpNfcLease.info)
        base = self.ep.base_url
        # ``key`` names the device by the VM's id, ``importKey`` by its name (for an import:
        # the spec's ``fileItem.deviceId``); ``sslThumbprint`` is the served certificate's
        # (API reference: "SSL thumbprint for the host the URL refers to", empty over HTTP)
        urls = [
            vim.HttpNfcLease.DeviceUrl(
                key=device_id(lease.vm, d.controller, d.unit),
                importKey=lease.import_keys.get(d.device_key) or device_id(lease.vm_name, d.controller, d.unit),
                url=f"{base}/nfc/{lease.token}/{d.name}",
                sslThumbprint=self.ep.leases.ssl_thumbprint,
                disk=True,
                targetId=d.name,
            )
            for d in lease.disks
        ]
        if lease.nvram_name is not None:
            # the VM's BIOS settings (API 6.7 and later exports): a file, not a disk, its size
            # given (``fileSize``, "only set for non-disk file backings")
            urls.append(vim.HttpNfcLease.DeviceUrl(
                key=nvram_id(lease.vm), importKey=nvram_id(lease.vm_name),
                url=f"{base}/nfc/{lease.token}/{lease.nvram_name}", sslThumbprint=self.ep.leases.ssl_thumbprint,
                disk=False, fileSize=len(NVRAM)))
        return vim.HttpNfcLease.Info(
            lease=self.ref,
            entity=vim.VirtualMachine(lease.vm),
            deviceUrl=urls,
            totalDiskCapacityInKB=sum(d.capacity for d in lease.disks) // 1024,
            leaseTimeout=lease.timeout,
        )

    @staticmethod
    def _timed_out(lease: ExportLease) -> None:
        if lease.state == "error" and type(lease.error).__name__.endswith("Timedout"):
            raise make_fault("Timedout", "The lease has timed out.")

    @soap
    def HttpNfcLeaseProgress(self, ctx: Context, percent: int) -> None:  # noqa: N802
        """Keeps the lease alive and reports progress (0-100); ``Timedout`` once it timed out."""
        lease = self.lease()
        self._timed_out(lease)
        if not isinstance(percent, int) or not 0 <= percent <= 100:
            raise vmodl.fault.InvalidArgument(msg=f"percent must be 0 to 100, got {percent!r}",
                                              invalidProperty="percent")
        lease.progress(percent)
        self.ep.changed.notify_all()

    @soap
    def HttpNfcLeaseComplete(self, ctx: Context) -> None:  # noqa: N802
        lease = self.lease()
        self._timed_out(lease)
        if lease.state != "ready":
            raise make_fault("InvalidState", f"The lease is {lease.state}, not ready: it cannot be completed.")
        lease.complete()

    @soap
    def HttpNfcLeaseGetManifest(self, ctx: Context) -> list[Any]:  # noqa: N802
        """SHA-1 and size of each disk downloaded to its end through this lease (API 4.1: what
        an OVF export writes to its ``.mf``); ``InvalidState`` unless the lease is ready."""
        lease = self.lease()
        self._timed_out(lease)
        if lease.state != "ready":
            raise make_fault("InvalidState", f"The lease is {lease.state}, not ready.")
        return _manifest_entries(lease)

    @soap
    def HttpNfcLeaseAbort(self, ctx: Context, fault: Any = None) -> None:  # noqa: N802
        lease = self.lease()
        self._timed_out(lease)
        if lease.state not in ("initializing", "ready"):
            raise make_fault("InvalidState", f"The lease is {lease.state}: it cannot be aborted.")
        lease.abort(fault if fault is not None else vmodl.fault.RequestCanceled(
            msg="The lease was aborted by the client."))


def _manifest_entries(lease: ExportLease) -> list[Any]:
    entries = [
        vim.HttpNfcLease.ManifestEntry(key=device_id(lease.vm, d.controller, d.unit), sha1=d.sha1,
                                       size=d.size, disk=True, capacity=d.capacity, populatedSize=d.populated)
        for d in lease.disks if d.sha1 is not None
    ]
    if lease.nvram_name in lease.files_sent:
        entries.append(vim.HttpNfcLease.ManifestEntry(key=nvram_id(lease.vm), sha1=lease.files_sent[lease.nvram_name],
                                                      size=len(NVRAM), disk=False))
    return entries


def nvram_id(owner: str) -> str:
    """The device id of a VM's ``.nvram`` in a lease and an OVF (``/<vm id or name>/nvram``:
    no source pins hostd's exact string; clients match it only against what the lease gave)."""
    return f"/{owner}/nvram"


def start_export(ep: Endpoint, ctx: Context, method: Any, vm_moid: str, snapshot: str | None) -> Any:
    """``ExportVm`` (``snapshot=None``: the powered-off VM's disks) or ``ExportSnapshot``: a new
    lease, ``initializing``; the export task that runs right after the reply makes it ``ready``
    (hostd's export task runs on until the lease ends; here it ends when the lease is ready, and
    the lease's hold keeps the VM's other operations out). What is refused: ``_export.py``, and
    the method on a host whose API predates it (``MethodNotFound``)."""
    receiver = vim.VirtualMachine(vm_moid) if snapshot is None else vim.vm.Snapshot(snapshot)
    require_api(ep, method, receiver)
    lease = open_export(ep.host, vm_moid, snapshot, clock=ep.clock, timeout=ep.leases.timeout,
                        lease_id=f"nfclease-{next(ep.leases._ids)}")
    ep.leases.add(lease)
    task = ep.tasks.submit(ctx, method, lease.vm, lease.ready)
    hold = ep.host.holds.get(lease.hold_id) if lease.hold_id is not None else None
    if hold is not None:
        hold.task = task._moId
    ep.changed.notify_all()
    return vim.HttpNfcLease(lease.id)


def start_import(ep: Endpoint, ctx: Context, spec: Any, folder: Any) -> Any:
    """``ResourcePool.ImportVApp`` (API 4.0) of a ``VirtualMachineImportSpec``
    (``OvfManager.CreateImportSpec``): the VM is made now, powered off, with the spec's new
    disks (``Host.create_vm``: its faults, all or nothing); the lease's uploads fill them.
    The lease's ``importKey`` per disk is the ``fileItem.deviceId`` of the spec
    (``/<vm name>/VirtualLsiLogicController0:<unit>``). An abort or a timeout destroys the VM."""
    from . import _devicechange

    require_api(ep, vim.ResourcePool.ImportVApp, vim.ResourcePool("ha-root-pool"))
    if not isinstance(spec, vim.vm.VmImportSpec) or spec.configSpec is None:
        raise vmodl.fault.NotSupported(msg="ImportVApp: vcbsim imports a VirtualMachineImportSpec (one VM), "
                                       f"got {type(spec).__name__}.")
    if folder is not None and folder._moId != "ha-folder-vm":
        raise vmodl.fault.NotSupported(msg="ImportVApp: the VM goes to the VM folder (ha-folder-vm).")
    config = spec.configSpec
    vmx = (config.files.vmPathName if config.files is not None else None) or ""
    datastore = vmx[1: vmx.index("]")] if vmx.startswith("[") and "]" in vmx else None
    if not config.name or datastore is None:
        raise vmodl.fault.InvalidArgument(msg="configSpec: a name and files.vmPathName '[datastore]' are needed.",
                                          invalidProperty="configSpec")
    disks = [c.spec for c in _devicechange.disk_changes(config, creating=True) if c.spec is not None]
    vm = ep.host.create_vm(
        config.name, datastore=datastore, guest_id=config.guestId or None, memory_mb=int(config.memoryMB or 1024),
        num_cpus=int(config.numCPUs or 1), disks=disks,
        extra_config={o.key: str(o.value) for o in (config.extraConfig or [])},
    )
    lease = open_import(ep.host, vm.moref, clock=ep.clock, timeout=ep.leases.timeout,
                        lease_id=f"nfclease-{next(ep.leases._ids)}")
    lease.import_keys = {d.key: device_id(vm.name, d.controller, d.unit_number) for d in vm.disks}
    ep.leases.add(lease)
    ep.tasks.submit(ctx, vim.ResourcePool.ImportVApp, vm.moref, lease.ready)
    ep.changed.notify_all()
    return vim.HttpNfcLease(lease.id)
