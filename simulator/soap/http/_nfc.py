"""``GET /nfc/<token>/disk-N.vmdk``: a disk of a ready export lease (``mo/_nfclease.py``).

The token names the lease and is its authorisation (as the ticket in a host's NFC URLs is);
the body is a stream-optimized VMDK produced as it is sent (chunked transfer encoding: its
length is known only at the end, as on a host's export). A lease that is not ready, ended or
timed out answers 403 with one line saying so; an unknown token 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from ._files import FileResponse

if TYPE_CHECKING:
    from .._endpoint import Endpoint

__all__ = ["handle_nfc", "NFC_PREFIX"]

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
        disk = next((d for d in lease.disks if d.name == name), None)
        if disk is None:
            names = ", ".join(d.name for d in lease.disks)
            return _text(404, f"the lease {lease.id} has no disk {name!r}; it has {names}")
    headers = {"Content-Type": "application/x-vnd.vmware-streamVmdk"}
    if method == "HEAD":
        return FileResponse(200, headers, b"", None, -1)
    return FileResponse(200, headers, b"", ep.leases.download(lease, disk), -1)
