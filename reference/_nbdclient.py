"""The proxy's side of a hot-added disk: an NBD client on the device's Unix socket.

A VADP proxy reads (or, restoring, writes) a hot-added disk as a local block device of its own
guest; over ``--server`` vcbsim's host exposes each one as an NBD export in the proxy VM's
device directory (``simulator/_nbd.py``), and this is the reader: fixed newstyle handshake,
``NBD_OPT_GO`` on the export name, then ``NBD_CMD_READ`` / ``WRITE`` / ``FLUSH`` / ``DISC`` with
simple replies (the protocol: https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md).
Requests are split at the server's advertised maximum block size. One connection, one request
at a time (a lock), which is how the proxy reads a disk: in order, a chunk at a time.

Hand-written because it is ~100 lines and the Debian ``python3-libnbd`` binding lives outside
the project's virtual environment; ``qemu-img`` and ``nbdinfo`` read the same sockets in the
tests, so this client is not the only judge of the server.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterable
from pathlib import Path

from vcbsim.simulator import StateError

__all__ = ["NbdDisk", "NbdError"]

_NBDMAGIC = 0x4E42444D41474943
_IHAVEOPT = 0x49484156454F5054
_OPT_REPLY_MAGIC = 0x3E889045565A9
_REQUEST_MAGIC = 0x25609513
_SIMPLE_REPLY_MAGIC = 0x67446698
_OPT_GO, _REP_ACK, _REP_INFO = 7, 1, 3
_INFO_EXPORT, _INFO_BLOCK_SIZE = 0, 3
_CMD_READ, _CMD_WRITE, _CMD_DISC, _CMD_FLUSH = 0, 1, 2, 3
_TFLAG_READ_ONLY = 2
_ERRNO = {1: "EPERM", 5: "EIO", 12: "ENOMEM", 22: "EINVAL", 28: "ENOSPC", 75: "EOVERFLOW", 95: "ENOTSUP",
          108: "ESHUTDOWN"}
_DEFAULT_MAX = 32 << 20


class NbdError(StateError):
    """The NBD server refused a request (``errno`` is the NBD error: 1 EPERM, 28 ENOSPC ...)."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message, errno=errno)
        self.errno = errno


class NbdDisk:
    """A disk read (and, when the export is writable, written) through an NBD socket: a
    ``BlockDevice`` for the image export and the hot-add restore.

    ``areas`` (optional) is what ``allocated_areas()`` answers: the proxy asks the host where
    the data is (``QueryChangedDiskAreas``), as a VADP proxy does; NBD's own block status is
    not negotiated."""

    def __init__(self, path: str | Path, export: str, *, areas: Iterable[tuple[int, int]] | None = None,
                 timeout: float = 120.0) -> None:
        self.path = str(path)
        self.export = export
        self._areas = list(areas) if areas is not None else None
        self._lock = threading.Lock()
        self._handle = 0
        self.bytes_read = 0
        self.bytes_written = 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(self.path)
            self.size, self.read_only, self.max_request = self._handshake()
        except OSError as exc:
            self._sock.close()
            msg = f"cannot open the hot-added disk at {self.path}: {exc.strerror or exc}"
            raise NbdError(msg) from None
        except BaseException:
            self._sock.close()
            raise

    # -- wire ------------------------------------------------------------------------------------

    def _recv(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self._sock.recv(min(n - len(buf), 1 << 20))
            except OSError as exc:
                msg = f"the hot-added disk at {self.path} went away ({exc.strerror or exc}: detached?)"
                raise NbdError(msg, 108) from None
            if not chunk:
                msg = f"the hot-added disk at {self.path} went away (the connection was closed: detached?)"
                raise NbdError(msg, 108)
            buf += chunk
        return bytes(buf)

    def _handshake(self) -> tuple[int, bool, int]:
        magic, opt, _flags = struct.unpack(">QQH", self._recv(18))
        if magic != _NBDMAGIC or opt != _IHAVEOPT:
            msg = f"{self.path} is not a fixed newstyle NBD server"
            raise NbdError(msg)
        self._sock.sendall(struct.pack(">I", 1 | 2))  # FIXED_NEWSTYLE | NO_ZEROES
        name = self.export.encode()
        data = struct.pack(">I", len(name)) + name + struct.pack(">HH", 1, _INFO_BLOCK_SIZE)
        self._sock.sendall(struct.pack(">QII", _IHAVEOPT, _OPT_GO, len(data)) + data)
        size, flags, max_request = -1, 0, _DEFAULT_MAX
        while True:
            magic, _opt, kind, length = struct.unpack(">QIII", self._recv(20))
            body = self._recv(length)
            if magic != _OPT_REPLY_MAGIC:
                msg = f"{self.path}: a bad option reply"
                raise NbdError(msg)
            if kind == _REP_ACK:
                break
            if kind & (1 << 31):
                msg = f"{self.path}: export {self.export!r} refused: {body.decode(errors='replace')}"
                raise NbdError(msg)
            if kind == _REP_INFO and len(body) >= 2:
                (info,) = struct.unpack(">H", body[:2])
                if info == _INFO_EXPORT:
                    size, flags = struct.unpack(">QH", body[2:12])
                elif info == _INFO_BLOCK_SIZE:
                    max_request = struct.unpack(">III", body[2:14])[2]
        if size < 0:
            msg = f"{self.path}: the server gave no export size"
            raise NbdError(msg)
        return size, bool(flags & _TFLAG_READ_ONLY), max(512, min(max_request, _DEFAULT_MAX))

    def _request(self, kind: int, offset: int, length: int, payload: bytes = b"") -> bytes:
        with self._lock:
            self._handle += 1
            handle = self._handle
            try:
                self._sock.sendall(struct.pack(">IHHQQI", _REQUEST_MAGIC, 0, kind, handle, offset, length) + payload)
            except OSError as exc:
                msg = f"the hot-added disk at {self.path} went away ({exc.strerror or exc}: detached?)"
                raise NbdError(msg, 108) from None
            magic, error, got = struct.unpack(">IIQ", self._recv(16))
            if magic != _SIMPLE_REPLY_MAGIC or got != handle:
                msg = f"{self.path}: a reply out of step (magic {magic:#x}, handle {got} for {handle})"
                raise NbdError(msg)
            if error:
                what = {_CMD_READ: "read", _CMD_WRITE: "write", _CMD_FLUSH: "flush"}.get(kind, str(kind))
                msg = (f"NBD {what} of {length} bytes at {offset} on {self.path}: "
                       f"{_ERRNO.get(error, error)}")
                raise NbdError(msg, error)
            return self._recv(length) if kind == _CMD_READ else b""

    # -- BlockDevice -------------------------------------------------------------------------------

    def read(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        out = bytearray()
        pos = offset
        while pos < offset + length:
            n = min(self.max_request, offset + length - pos)
            out += self._request(_CMD_READ, pos, n)
            pos += n
        self.bytes_read += len(out)
        return bytes(out)

    def write(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            chunk = bytes(view[pos : pos + self.max_request])
            self._request(_CMD_WRITE, offset + pos, len(chunk), chunk)
            pos += len(chunk)
        self.bytes_written += len(data)

    def flush(self) -> None:
        self._request(_CMD_FLUSH, 0, 0)

    def allocated_areas(self) -> list[tuple[int, int]]:
        return list(self._areas) if self._areas is not None else [(0, self.size)]

    def close(self) -> None:
        with self._lock, contextlib.suppress(OSError):
            self._sock.sendall(struct.pack(">IHHQQI", _REQUEST_MAGIC, 0, _CMD_DISC, 0, 0, 0))
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> NbdDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
