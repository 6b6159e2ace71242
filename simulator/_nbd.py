"""An NBD export on a Unix socket: how a proxy VM's guest sees a hot-added disk (a block device).

Why hand-written: the bytes are the host's, in this process (a snapshot's layers, a new VM's
live disk, with the host lock held per request and every byte counted for the trace), so a
separate server (``nbdkit``, ``qemu-nbd``) would need them copied out first, which is what
hot-add exists to avoid. This module is one concern: the server side of the Network Block
Device protocol (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md), small
enough to read whole:

* handshake: "fixed newstyle" only (``NBDMAGIC``, ``IHAVEOPT``, ``NBD_FLAG_FIXED_NEWSTYLE`` |
  ``NBD_FLAG_NO_ZEROES``); options ``NBD_OPT_EXPORT_NAME``, ``NBD_OPT_GO``, ``NBD_OPT_INFO``
  (``NBD_INFO_EXPORT``, ``NBD_INFO_BLOCK_SIZE``), ``NBD_OPT_LIST`` and ``NBD_OPT_ABORT``;
  any other option (``STRUCTURED_REPLY``, ``STARTTLS``, meta contexts) is ``NBD_REP_ERR_UNSUP``,
  which every client takes as "use simple replies";
* transmission: ``NBD_CMD_READ``, ``NBD_CMD_WRITE``, ``NBD_CMD_FLUSH``, ``NBD_CMD_DISC``, with
  simple replies. A read-only export advertises ``NBD_FLAG_READ_ONLY`` and answers a write
  with ``NBD_EPERM`` (as the spec asks). A request past the end of the export is
  ``NBD_EINVAL`` (a write ``NBD_ENOSPC``), a read longer than ``max_request`` ``NBD_EINVAL``; a
  write payload longer than it ends the connection (the spec lets a server disconnect rather
  than read an oversized payload). A device error is ``NBD_EIO`` (``NoDiskSpace``:
  ``NBD_ENOSPC``).

Bounded: at most ``max_connections`` clients at once (one more is closed at once, before the
handshake), ``HANDSHAKE_TIMEOUT`` seconds for the handshake, at most ``_MAX_OPTIONS`` options
per handshake and ``_MAX_OPTION_DATA`` bytes each, requests of at most ``max_request`` bytes
(advertised as the maximum block size).

``close()`` is the hot-remove: the socket file goes, no new client gets in, and a client still
connected is cut off (its socket shut down; a request in flight answers ``NBD_ESHUTDOWN``). It
never waits for a client thread, so the host may call it with its lock held.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import struct
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Protocol

from ._errors import InvalidInputError, StateError

__all__ = ["NbdBackend", "NbdExport", "MAX_REQUEST", "SOCKET_PATH_MAX"]

#: the maximum block size advertised, and the longest request served (the spec's 32 MiB)
MAX_REQUEST = 32 << 20
#: ``sun_path`` holds 108 bytes on Linux, the last a NUL
SOCKET_PATH_MAX = 107
_MAX_OPTIONS = 64
#: seconds a client has for the whole handshake (a socket timeout: no test waits on it)
HANDSHAKE_TIMEOUT = 30.0
_MAX_OPTION_DATA = 4096

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698

FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2
FLAG_C_FIXED_NEWSTYLE = 1
FLAG_C_NO_ZEROES = 2

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_INFO, OPT_GO = 1, 2, 3, 6, 7
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
REP_ERR_UNSUP = (1 << 31) + 1
REP_ERR_INVALID = (1 << 31) + 3
REP_ERR_UNKNOWN = (1 << 31) + 6
INFO_EXPORT, INFO_BLOCK_SIZE = 0, 3

TFLAG_HAS_FLAGS, TFLAG_READ_ONLY, TFLAG_SEND_FLUSH = 1, 2, 4
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH = 0, 1, 2, 3

EPERM, EIO, EINVAL, ENOSPC, ENOTSUP, ESHUTDOWN = 1, 5, 22, 28, 95, 108


class NbdBackend(Protocol):
    """What an export serves: ``size`` bytes, ``read``; ``write`` only for a writable one."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes: ...


class _Closed(Exception):
    """The peer went away or the export was closed: end this connection quietly."""


def _recv(conn: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = conn.recv(min(n - len(buf), 1 << 20))
        except OSError as exc:
            raise _Closed from exc
        if not chunk:
            raise _Closed
        buf += chunk
    return bytes(buf)


def _fault_errno(exc: BaseException) -> int:
    """The NBD error for a device error: a full datastore is ``ENOSPC``, anything else ``EIO``."""
    name = type(exc).__name__
    return ENOSPC if name.endswith("NoDiskSpace") or getattr(exc, "errno", None) == errno.ENOSPC else EIO


class NbdExport:
    """One export named ``name`` on the Unix socket ``path``, serving ``device``.

    ``lock`` is held around each read or write of the device (the host's lock: the device is
    host state). ``writable`` needs a ``device.write``; ``device.flush`` is called on
    ``NBD_CMD_FLUSH`` when it has one. ``on_error(message)`` hears every device error (the
    host traces nothing for it; a proxy sees the NBD error).
    """

    def __init__(
        self,
        path: str | Path,
        name: str,
        device: NbdBackend,
        *,
        writable: bool = False,
        lock: AbstractContextManager[Any] | None = None,
        max_connections: int = 8,
        max_request: int = MAX_REQUEST,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path)
        if len(os.fsencode(str(self.path))) > SOCKET_PATH_MAX:
            raise InvalidInputError(
                "NBD socket path", expected=f"at most {SOCKET_PATH_MAX} bytes (a Unix socket's limit)",
                got=str(self.path), hint="give a shorter device directory (vcbsim serve --proxy-devices DIR)",
            )
        if writable and not callable(getattr(device, "write", None)):
            raise InvalidInputError("NBD export device", expected="a device with write() for a writable export",
                                    got=type(device).__name__)
        if max_connections < 1 or not 512 <= max_request <= MAX_REQUEST:
            raise InvalidInputError("NBD export limits", expected=f"max_connections >= 1, 512 <= max_request <= {MAX_REQUEST}",
                                    got=(max_connections, max_request))
        self.name = name
        self.device = device
        self.writable = writable
        self.max_connections = max_connections
        self.max_request = max_request
        self._lock: AbstractContextManager[Any] = lock if lock is not None else nullcontext()
        self._on_error = on_error
        self._conns: set[socket.socket] = set()
        self._guard = threading.Lock()
        self.closed = False
        #: what the export served: bytes read and written through it, connections refused
        self.bytes_read = 0
        self.bytes_written = 0
        self.refused = 0
        self.errors: list[str] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._listener.bind(str(self.path))
            self._listener.listen(max_connections)
        except OSError as exc:
            self._listener.close()
            msg = f"cannot listen on {self.path}: {exc.strerror or exc}"
            raise StateError(msg, path=str(self.path)) from None
        self._thread = threading.Thread(target=self._accept_loop, name=f"vcbsim-nbd-{name}", daemon=True)
        self._thread.start()

    def _remove_stale(self) -> None:
        """A socket file left by a host that stopped without detaching goes; anything else stays."""
        try:
            mode = self.path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            msg = f"{self.path} exists and is not a socket: the device directory holds something else"
            raise StateError(msg, path=str(self.path))
        self.path.unlink()

    @property
    def size(self) -> int:
        return int(self.device.size)

    @property
    def connections(self) -> int:
        with self._guard:
            return len(self._conns)

    def close(self) -> None:
        """Hot-remove: the socket file goes and every client is cut off (never waits)."""
        with self._guard:
            if self.closed:
                return
            self.closed = True
            conns = list(self._conns)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() on Linux
        with contextlib.suppress(OSError):
            self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    # -- connections ----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self.closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._guard:
                accept = not self.closed and len(self._conns) < self.max_connections
                if accept:
                    self._conns.add(conn)
                elif not self.closed:
                    self.refused += 1
            if not accept:
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name=f"vcbsim-nbd-{self.name}-conn",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            # a client that connects and says nothing gives its slot back (an idle client in
            # transmission keeps it, as a mounted block device does)
            conn.settimeout(HANDSHAKE_TIMEOUT)
            no_zeroes = self._handshake(conn)
            conn.settimeout(None)
            if no_zeroes is not None:
                self._transmission(conn)
        except _Closed:
            pass
        finally:
            with self._guard:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _send(self, conn: socket.socket, data: bytes) -> None:
        try:
            conn.sendall(data)
        except OSError as exc:
            raise _Closed from exc

    # -- handshake ------------------------------------------------------------------------------

    def _tflags(self) -> int:
        return TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | (0 if self.writable else TFLAG_READ_ONLY)

    def _reply(self, conn: socket.socket, option: int, kind: int, data: bytes = b"") -> None:
        self._send(conn, struct.pack(">QIII", OPT_REPLY_MAGIC, option, kind, len(data)) + data)

    def _handshake(self, conn: socket.socket) -> bool | None:
        """Option haggling; True/False (zeroes left out or not) when transmission starts, None
        when the client aborted."""
        self._send(conn, struct.pack(">QQH", NBDMAGIC, IHAVEOPT, FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))
        (cflags,) = struct.unpack(">I", _recv(conn, 4))
        if not cflags & FLAG_C_FIXED_NEWSTYLE:
            raise _Closed  # an old-style newstyle client: fixed newstyle only
        no_zeroes = bool(cflags & FLAG_C_NO_ZEROES)
        for _ in range(_MAX_OPTIONS):
            magic, option, length = struct.unpack(">QII", _recv(conn, 16))
            if magic != IHAVEOPT or length > _MAX_OPTION_DATA:
                raise _Closed
            data = _recv(conn, length)
            if option == OPT_EXPORT_NAME:
                if data.decode("utf-8", "replace") not in ("", self.name):
                    raise _Closed  # the only answer EXPORT_NAME allows for an unknown export
                tail = b"" if no_zeroes else bytes(124)
                self._send(conn, struct.pack(">QH", self.size, self._tflags()) + tail)
                return no_zeroes
            if option == OPT_ABORT:
                with contextlib.suppress(_Closed):
                    self._reply(conn, option, REP_ACK)
                return None
            if option == OPT_LIST:
                if data:
                    self._reply(conn, option, REP_ERR_INVALID, b"NBD_OPT_LIST takes no data")
                    continue
                name = self.name.encode()
                self._reply(conn, option, REP_SERVER, struct.pack(">I", len(name)) + name)
                self._reply(conn, option, REP_ACK)
                continue
            if option in (OPT_INFO, OPT_GO):
                if self._info(conn, option, data) and option == OPT_GO:
                    return no_zeroes
                continue
            self._reply(conn, option, REP_ERR_UNSUP, b"not supported by this server (simple replies only)")
        raise _Closed

    def _info(self, conn: socket.socket, option: int, data: bytes) -> bool:
        """``NBD_OPT_INFO`` / ``NBD_OPT_GO``: the export's size, flags and block sizes."""
        if len(data) < 6:
            self._reply(conn, option, REP_ERR_INVALID, b"truncated request")
            return False
        (nlen,) = struct.unpack(">I", data[:4])
        if 4 + nlen + 2 > len(data):
            self._reply(conn, option, REP_ERR_INVALID, b"truncated request")
            return False
        name = data[4 : 4 + nlen].decode("utf-8", "replace")
        if name not in ("", self.name):
            self._reply(conn, option, REP_ERR_UNKNOWN, f"no export {name!r}; this socket serves {self.name!r}".encode())
            return False
        self._reply(conn, option, REP_INFO, struct.pack(">HQH", INFO_EXPORT, self.size, self._tflags()))
        self._reply(conn, option, REP_INFO, struct.pack(">HIII", INFO_BLOCK_SIZE, 1, 4096, self.max_request))
        self._reply(conn, option, REP_ACK)
        return True

    # -- transmission -------------------------------------------------------------------------

    def _simple(self, conn: socket.socket, error: int, handle: int, data: bytes = b"") -> None:
        self._send(conn, struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, error, handle) + data)

    def _transmission(self, conn: socket.socket) -> None:
        while True:
            magic, _flags, kind, handle, offset, length = struct.unpack(">IHHQQI", _recv(conn, 28))
            if magic != REQUEST_MAGIC:
                raise _Closed
            if kind == CMD_DISC:
                return
            if kind == CMD_READ:
                self._read(conn, handle, offset, length)
            elif kind == CMD_WRITE:
                if length > self.max_request:
                    self._simple(conn, EINVAL, handle)
                    raise _Closed  # an oversized payload is not read (the spec allows a disconnect)
                data = _recv(conn, length)
                self._write(conn, handle, offset, data)
            elif kind == CMD_FLUSH:
                flush = getattr(self.device, "flush", None)
                error = self._device_call(flush) if callable(flush) else 0
                self._simple(conn, ESHUTDOWN if self.closed else error, handle)
            else:
                self._simple(conn, EINVAL, handle)

    def _device_call(self, fn: Callable[[], Any]) -> int:
        with self._lock:
            if self.closed:
                return ESHUTDOWN
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - a device error is the client's NBD error
                return self._failed(exc)
        return 0

    def _failed(self, exc: BaseException) -> int:
        text = f"{type(exc).__name__}: {getattr(exc, 'msg', None) or exc}"
        self.errors.append(text)
        if self._on_error is not None:
            self._on_error(text)
        return _fault_errno(exc)

    def _read(self, conn: socket.socket, handle: int, offset: int, length: int) -> None:
        if length > self.max_request or offset + length > self.size:
            self._simple(conn, EINVAL, handle)
            return
        out: list[bytes] = []

        def read() -> None:
            out.append(self.device.read(offset, length))

        error = self._device_call(read)
        if error:
            self._simple(conn, error, handle)
            return
        data = out[0]
        if len(data) != length:
            self._simple(conn, EIO, handle)
            return
        self.bytes_read += length
        self._simple(conn, 0, handle, data)

    def _write(self, conn: socket.socket, handle: int, offset: int, data: bytes) -> None:
        if not self.writable:
            self._simple(conn, EPERM, handle)
            return
        if offset + len(data) > self.size:
            self._simple(conn, ENOSPC, handle)
            return
        error = self._device_call(lambda: self.device.write(offset, data))  # type: ignore[attr-defined]
        if not error:
            self.bytes_written += len(data)
        self._simple(conn, error, handle)

    def __enter__(self) -> NbdExport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NbdExport({str(self.path)!r}, {self.name!r}, size={self.size}, writable={self.writable})"
