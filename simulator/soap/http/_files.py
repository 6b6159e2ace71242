"""Datastore files over HTTP: ``GET``/``HEAD``/``PUT /folder/<path>?dcPath=..&dsName=..``.

As on a real host, a session cookie (or HTTP Basic credentials) is required, ``Range``
requests get ``206 Partial Content``, and the bytes are the real files (``.vmx``, descriptors,
extents) as the host's datastore files are (``mo/_dsfiles.py``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from ..._errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from .._endpoint import Endpoint

__all__ = [
    "FileResponse",
    "handle_folder",
    "handle_folder_upload",
    "handle_guest_file",
    "transfer_pending",
    "CHUNK",
    "DROP",
]

CHUNK = 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class FileResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: for GET: chunks read lazily (the lock is taken per chunk, not for the whole file)
    stream: Iterator[bytes] | None = None
    length: int = 0


#: a response the server does not send: it closes the connection instead (an injected
#: ``datastore.put.drop``: the client sees the connection lost part way)
DROP = 0


def _put_fault(ep: Endpoint, ds: str, path: str) -> FileResponse | None:
    """A fault rule armed for a ``/folder`` PUT (``datastore.put``: the host's fault as its
    HTTP answer, ``NoDiskSpace`` 507 as a full file system answers, ``FileAlreadyExists`` 409,
    others 500; ``datastore.put.drop``: no answer at all). Checked before anything is kept, so
    a failed upload leaves no file. Call with ``ep.lock`` held."""
    faults = ep.host.faults
    if not faults.rules:
        return None
    target = f"[{ds}] {path}"
    if faults.check("datastore.put.drop", target) is not None:
        return FileResponse(DROP)
    rule = faults.check("datastore.put", target)
    if rule is None or not rule.fault:
        return None
    from ..._faults import make_fault

    fault = make_fault(rule.fault, rule.message, file=target, datastore=ds)
    status = {"NoDiskSpace": 507, "FileTooLarge": 413, "FileAlreadyExists": 409}.get(rule.fault, 500)
    return _text(status, f"{rule.fault}: {fault.msg}")


def _text(status: int, message: str, **headers: str) -> FileResponse:
    body = (message + "\n").encode()
    return FileResponse(status, {"Content-Type": "text/plain; charset=utf-8", **headers}, body, None, len(body))


def _authorized(ep: Endpoint, cookie: str | None, authorization: str | None) -> bool:
    with ep.lock:
        session = ep.sessions.from_cookie(cookie)
        if session is not None:
            ep.sessions.keep_alive(session)  # a file transfer keeps the session alive
            return True
    if authorization and authorization.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(authorization[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return ep.auth.credentials_ok(user, password)
    return False


def _target(raw_path: str) -> tuple[str, str] | FileResponse:
    parts = urlsplit(raw_path)
    path = unquote(parts.path[len("/folder") :]).lstrip("/")
    query = parse_qs(parts.query)
    dc = query.get("dcPath", ["ha-datacenter"])[0]
    ds = query.get("dsName", [None])[0]
    if dc.strip("/") != "ha-datacenter":
        return _text(404, f"no datacenter {dc!r}; this host has 'ha-datacenter'")
    if not ds:
        return _text(400, "the dsName query parameter is required")
    if not path or any(p in ("..", ".") for p in path.split("/")):
        return _text(400, f"bad datastore path {path!r}")
    return ds, path


def _range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """(start, end inclusive), None for the whole file, or "bad" when unsatisfiable."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # not understood (e.g. several ranges): the whole file, as RFC 9110 allows
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
    else:
        suffix = int(m.group(2))
        start, end = max(0, size - suffix), size - 1
    end = min(end, size - 1)
    if start >= size or start > end:
        return "bad"
    return start, end


def handle_folder(
    ep: Endpoint,
    method: str,
    raw_path: str,
    *,
    cookie: str | None,
    authorization: str | None,
    range_header: str | None = None,
    body: bytes = b"",
) -> FileResponse:
    if not _authorized(ep, cookie, authorization):
        return _text(401, "a vmware_soap_session cookie or Basic credentials are required",
                     **{"WWW-Authenticate": 'Basic realm="VMware HTTP server"'})
    target = _target(raw_path)
    if isinstance(target, FileResponse):
        return target
    ds, path = target
    if method == "PUT":
        try:
            with ep.lock:
                refused = _put_fault(ep, ds, path)
                if refused is not None:
                    return refused
                ep.files.write(ds, path, body)
                ep.changed.notify_all()
        except NotFoundError as exc:
            return _text(404, str(exc))
        except (InvalidInputError, ValueError) as exc:
            return _text(400, str(exc))
        return _text(201, f"wrote {len(body)} bytes to [{ds}] {path}")
    try:
        with ep.lock:
            # resolved once (O(1) of the inventory, mo/_dsfiles.py); the chunks read through it
            size, read = ep.files.open(ds, path)
    except NotFoundError as exc:
        return _text(404, str(exc))
    rng = _range(range_header, size)
    if rng == "bad":
        return _text(416, f"range not satisfiable for a {size}-byte file", **{"Content-Range": f"bytes */{size}"})
    headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
    if rng is None:
        start, end, status = 0, size - 1, 200
    else:
        assert isinstance(rng, tuple)
        start, end = rng
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(0, end - start + 1)

    def chunks() -> Iterator[bytes]:
        pos = start
        while pos <= end:
            n = min(CHUNK, end - pos + 1)
            with ep.lock:
                data = read(pos, n)
            if not data:
                return
            yield data
            pos += len(data)

    return FileResponse(status, headers, b"", chunks() if method == "GET" else None, length)


def handle_folder_upload(
    ep: Endpoint, raw_path: str, chunks: Iterator[bytes], length: int | None
) -> FileResponse | None:
    """``PUT /folder`` streamed to a datastore kept as files (``None``: the backend keeps
    uploads in memory; the caller reads the body and uses :func:`handle_folder`). The caller
    checked the credentials before reading a byte. A full file system answers ``507`` with
    the host's ``NoDiskSpace`` text, an upload over the limit ``413``; neither leaves a file."""
    from pyVmomi import vmodl

    write = getattr(ep.files, "write_stream", None)
    target = _target(raw_path)
    if isinstance(target, FileResponse):
        return target
    ds, path = target
    if write is None:
        return None
    with ep.lock:
        refused = _put_fault(ep, ds, path)
    if refused is not None:
        next(iter(chunks), None)  # part of the body came before it failed
        return refused
    try:
        n = write(ds, path, chunks, length)  # not under ep.lock: a big upload stalls no call
    except NotFoundError as exc:
        return _text(404, str(exc))
    except (InvalidInputError, ValueError) as exc:
        return _text(400, str(exc))
    except vmodl.MethodFault as exc:
        name = type(exc).__name__.rsplit(".", 1)[-1]
        status = {"NoDiskSpace": 507, "FileTooLarge": 413}.get(name, 500)
        return _text(status, f"{name}: {getattr(exc, 'msg', '')}")
    if n is None:
        return None
    with ep.lock:
        ep.changed.notify_all()
    return _text(201, f"wrote {n} bytes to [{ds}] {path}")


def transfer_pending(ep: Endpoint, raw_path: str, kind: str) -> bool:
    """Whether ``raw_path`` names a transfer URL that is still good (checked before an upload's
    body is read; ``handle_guest_file`` checks again and takes it)."""
    token = parse_qs(urlsplit(raw_path).query).get("token", [""])[0]
    with ep.lock:
        return ep.sessions.transfer_pending(token, kind)


def handle_guest_file(ep: Endpoint, method: str, raw_path: str, body: bytes = b"") -> FileResponse:
    """``GET``/``PUT /guestFile?id=..&token=..``: the URL ``InitiateFileTransfer*`` handed out.

    The token is the authorisation (as on a real host, no session cookie is needed) and is
    good for one transfer.
    """
    from pyVmomi import vmodl

    token = parse_qs(urlsplit(raw_path).query).get("token", [""])[0]
    kind = "to" if method == "PUT" else "from"
    with ep.lock:
        entry = ep.sessions.take_transfer(token, kind)
    if entry is None:
        return _text(404, "unknown, used or expired guest file transfer")
    be = ep.guest
    try:
        with ep.lock:
            if kind == "to":
                if entry.size and len(body) != entry.size:
                    return _text(400, f"expected {entry.size} bytes (fileSize), got {len(body)}")
                be.guest_write_file(entry.vm, entry.user, entry.password, entry.path, body, entry.overwrite)
                ep.changed.notify_all()
                return _text(200, f"wrote {len(body)} bytes to {entry.path}")
            data = be.guest_read_file(entry.vm, entry.user, entry.password, entry.path)
    except vmodl.MethodFault as exc:
        name = type(exc).__name__.rsplit(".", 1)[-1]
        status = 409 if name == "FileAlreadyExists" else 404 if name == "FileNotFound" else 403
        return _text(status, f"{name}: {getattr(exc, 'msg', '')}")
    except (NotFoundError, InvalidInputError) as exc:
        return _text(404 if isinstance(exc, NotFoundError) else 400, str(exc))
    headers = {"Content-Type": "application/octet-stream"}
    return FileResponse(200, headers, b"", iter([data]) if method == "GET" else None, len(data))
