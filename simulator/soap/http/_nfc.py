"""``GET /nfc/<token>/disk-N.vmdk``: a disk of a ready export lease (``mo/_nfclease.py``).

``PUT``/``POST`` of the same URL of an import lease (``ImportVApp``) uploads the disk: a
stream-optimized VMDK (or any VMDK ``read_vmdk`` reads) that becomes the new VM's disk.

The token names the lease and is its authorisation (as the ticket in a host's NFC URLs is);
the body is a stream-optimized VMDK produced as it is sent (chunked transfer encoding: its
length is known only at the end, as on a host's export). A lease that is not ready, ended or
timed out answers 403 with one line saying so; an unknown token 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ._files import FileResponse

if TYPE_CHECKING:
    from .._endpoint import Endpoint

__all__ = ["handle_nfc", "handle_nfc_upload", "NFC_PREFIX"]

NFC_PREFIX = "/nfc/"


def _text(status: int, message: str) -> FileResponse:
    body = (message + "\n").encode()
    return FileResponse(status, {"Content-Type": "text/plain; charset=utf-8"}, body, None, len(body))


def handle_nfc(ep: Endpoint, method: str, raw_path: str) -> FileResponse:
    path = unquote(urlsplit(raw_path).path)[len(NFC_PREFIX):]
    token, _, name = path.partition("/")
    with ep.lock:
        lease = ep.leases.by_token(token)
        if lease is None:
            return _text(404, "no export lease with this URL: unknown, completed, aborted or timed out")
        if lease.state != "ready":
            return _text(403, f"the export lease {lease.id} is {lease.state}; download when it is ready")
        if name is not None and name == lease.nvram_name:
            return _nvram(lease, method)
        disk = next((d for d in lease.disks if d.name == name), None)
        if disk is None:
            names = ", ".join([d.name for d in lease.disks] + ([lease.nvram_name] if lease.nvram_name else []))
            return _text(404, f"the lease {lease.id} has no disk {name!r}; it has {names}")
    headers = {"Content-Type": "application/x-vnd.vmware-streamVmdk"}
    if method == "HEAD":
        return FileResponse(200, headers, b"", None, -1)
    return FileResponse(200, headers, b"", ep.leases.download(lease, disk), -1)


def _nvram(lease: Any, method: str) -> FileResponse:
    """The VM's ``.nvram`` of an export lease (API 6.7 and later; ``mo/_nfclease.py``), its
    SHA-1 kept for ``HttpNfcLeaseGetManifest`` (the endpoint lock is held)."""
    import hashlib

    from ..mo._dsfiles import NVRAM

    headers = {"Content-Type": "application/octet-stream"}
    if method == "HEAD":
        return FileResponse(200, headers, b"", None, len(NVRAM))
    lease.files_sent[lease.nvram_name] = hashlib.sha1(NVRAM).hexdigest()  # noqa: S324 - the manifest's algorithm
    return FileResponse(200, headers, NVRAM, None, len(NVRAM))


def handle_nfc_upload(ep: Endpoint, raw_path: str, body: bytes) -> FileResponse:
    """An upload to an import lease's disk URL (``_export.ExportLease.upload``)."""
    import tempfile
    from pathlib import Path

    from pyVmomi import vmodl

    from ..._errors import InvalidInputError

    path = unquote(urlsplit(raw_path).path)[len(NFC_PREFIX):]
    token, _, name = path.partition("/")
    with ep.lock:
        lease = ep.leases.by_token(token)
        if lease is None:
            return _text(404, "no lease with this URL: unknown, completed, aborted or timed out")
        if lease.kind != "import" or lease.state != "ready":
            return _text(403, f"{lease.id} is a {lease.kind} lease, {lease.state}: only a ready import lease takes uploads")
        disk = next((d for d in lease.disks if d.name == name), None)
        if disk is None:
            return _text(404, f"the lease {lease.id} has no disk {name!r}")
    with tempfile.TemporaryDirectory(prefix="vcbsim-nfc-") as tmp:
        file = Path(tmp) / "upload.vmdk"
        file.write_bytes(body)
        try:
            with ep.lock:
                n = lease.upload(disk, file)
                ep.changed.notify_all()
        except InvalidInputError as exc:
            return _text(400, f"{name}: {exc}")
        except vmodl.MethodFault as exc:
            return _text(400, f"{name}: {type(exc).__name__.rsplit('.', 1)[-1]}: {getattr(exc, 'msg', '')}")
    return _text(200, f"wrote {n} bytes of data to disk {disk.device_key} of {lease.vm_name}")
