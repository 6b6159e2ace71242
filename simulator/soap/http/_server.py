"""The HTTP(S) server: ``https://127.0.0.1:<port>/sdk`` on loopback only.

Why the standard library's ``ThreadingHTTPServer``: no extra dependency, HTTP/1.1 keep-alive
(pyVmomi keeps a pool of persistent connections), a thread per connection so a blocking
``WaitForUpdatesEx`` never stalls other clients, and TLS through ``ssl`` with the handshake
done in the connection's own thread (a slow client cannot block ``accept``). The load is a
handful of test clients on loopback; the endpoint serialises work on one lock anyway.

``serve(host)`` returns a ``RunningServer`` (a context manager) whose ``stop()`` closes the
listening socket, every open connection and the task worker, and joins the threads.

One concern, although over 700 lines: the HTTP front of one endpoint (connections and their
limits, request parsing, keep-alive, routing ``/sdk``, ``/folder``, ``/guestFile``, the WSDL and
the control API to their handlers, and the server's lifetime). What a request does is
elsewhere: SOAP in ``_endpoint.py``, files in ``_files.py``, the control API in ``control/``.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.utils
import functools
import http.client
import logging
import re
import socket
import socketserver
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pyVmomi import VmomiSupport

from ..._errors import InvalidInputError
from ..._host import Host
from .._endpoint import Endpoint
from .._host_adapter import HostAdapter
from .._tasks import DEFAULT_RETENTION
from .._throttle import ACCOUNT_LOCK_FAILURES, ACCOUNT_UNLOCK_SECONDS
from ..control._handlers import MAX_BODY_BYTES, PREFIX, handle_control
from ..wire import _codec
from ..wire._wsdl import DOCUMENT_NAMES, document
from ._cert import sha1_thumbprint, write_self_signed
from ._files import (
    DROP,
    FileResponse,
    _authorized,
    handle_folder,
    handle_folder_upload,
    handle_guest_file,
    transfer_pending,
)
from ._nfc import NFC_PREFIX, handle_nfc, handle_nfc_upload

__all__ = ["Limits", "RunningServer", "serve", "service_versions_xml", "LOOPBACK", "KEEPALIVE_IDLE_SECONDS"]

log = logging.getLogger("vcbsim.soap")

LOOPBACK = ("127.0.0.1", "::1", "localhost")
#: Largest datastore file accepted by PUT.
MAX_PUT_BYTES = 1024**3
#: An idle keep-alive connection is closed after this many seconds without a request. No
#: published source gives hostd's own window, so it is set above the client pool that keeps
#: connections longest: pyVmomi's ``CONNECTION_POOL_IDLE_TIMEOUT_SEC`` (900 s, pyVmomi's
#: ``SoapAdapter.py`` since its first release) drops a pooled connection idle that long before
#: reusing it, so no pyVmomi client ever sends on a connection this server has closed (the
#: ``SSLEOFError`` of a call after a long download with the old 120 s window). Counted on the
#: endpoint's clock (injectable: tests drive it); the socket's own timeout is the wall-clock
#: backstop that frees the thread.
KEEPALIVE_IDLE_SECONDS = 960.0
#: the longest wait for the rest of a request once its first line came
REQUEST_TIMEOUT_SECONDS = 120.0
#: the standard library's limits on request headers (``http.client``)
_MAX_HEADER_LINE = 65536
_MAX_HEADERS = 100
#: a header line the fast path takes as it is (the email parser's test, without folding)
_PLAIN_HEADER = re.compile(r"([\x21-\x39\x3b-\x7e]+):[ \t]*([^\r\n]*)\r?\n?")
#: a whole header block of such lines, each ending in CRLF, and the empty line
_PLAIN_BLOCK = re.compile(rb"(?:[\x21-\x39\x3b-\x7e]+:[ \t]*[^\r\n]*\r\n)*\r\n")


def service_versions_xml(version: str = _codec.DEFAULT_VERSION) -> bytes:
    """``/sdk/vimServiceVersions.xml``: the advertised version and every older vim25 one."""
    versions = VmomiSupport.GetServiceVersions("vim25")
    older = versions[versions.index(version) + 1 :] if version in versions else []
    prior = "".join(f"      <version>{_codec.wire_version(v)}</version>\n" for v in older)
    text = (
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        '<namespaces version="1.0">\n'
        "  <namespace>\n"
        "    <name>urn:vim25</name>\n"
        f"    <version>{_codec.wire_version(version)}</version>\n"
        "    <priorVersions>\n"
        f"{prior}"
        "    </priorVersions>\n"
        "  </namespace>\n"
        "</namespaces>\n"
    )
    return text.encode()


def _service_wsdl(url: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        '<definitions targetNamespace="urn:vim25Service"\n'
        '   xmlns="http://schemas.xmlsoap.org/wsdl/"\n'
        '   xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"\n'
        '   xmlns:interface="urn:vim25">\n'
        '   <import location="vim.wsdl" namespace="urn:vim25" />\n'
        '   <service name="VimService">\n'
        '      <port binding="interface:VimBinding" name="VimPort">\n'
        f'         <soap:address location="{url}" />\n'
        "      </port>\n"
        "   </service>\n"
        "</definitions>\n"
    ).encode()


#: reason phrases, as ``BaseHTTPRequestHandler.responses`` gives them
_PHRASES = {int(status): status.phrase for status in HTTPStatus}


@functools.lru_cache(maxsize=4)
def _http_date(second: int) -> str:
    return email.utils.formatdate(second, usegmt=True)


@functools.lru_cache(maxsize=64)
def _url_path(target: str) -> str:
    """The path of a request target (clients ask for the same few again and again)."""
    return urlsplit(target).path


@dataclass(frozen=True)
class Limits:
    """What one client may hold of the server (``serve(limits=...)``).

    ``max_connections`` bounds connections and so threads (one per connection), well under
    the usual 1,024 file descriptors; ``head_timeout`` is the time a request's head may take
    once its first byte came (slow-headers clients), the keep-alive window (``_Handler.timeout``)
    the time an idle connection may wait; ``body_timeout`` + one second per ``body_rate``
    bytes the time a body may take. ``anonymous_body_bytes`` bounds a SOAP body sent without
    a session (a Login is well under 4 KiB), checked from the headers before a byte is read.
    """

    max_connections: int = 256
    head_timeout: float = 20.0
    body_timeout: float = 60.0
    body_rate: float = 1024.0 * 1024.0
    anonymous_body_bytes: int = 256 * 1024


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    #: the listen backlog (socketserver's default is 5: a burst of connects then waits for
    #: SYN retransmits, a second or more each)
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], endpoint: Endpoint, tls: ssl.SSLContext | None,
                 limits: Limits | None = None) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.endpoint = endpoint
        self.tls = tls
        self.limits = limits or Limits()
        #: the time deadlines are measured on (seconds; tests drive a fake one and call reap)
        self.clock: Callable[[], float] = time.monotonic
        self.connections: set[socket.socket] = set()
        #: per open connection: (phase, since, deadline) — "idle" (waiting for a request),
        #: "head" (its first byte came: the rest of the head must follow), "body", "busy"
        self.phases: dict[socket.socket, tuple[str, float, float]] = {}
        self.refused = 0
        self.evicted = 0
        self.reaped = 0
        self.conn_lock = threading.Lock()
        self.idle = threading.Condition(self.conn_lock)
        super().__init__(address, _Handler)

    def set_phase(self, sock: socket.socket, phase: str, seconds: float | None = None) -> None:
        """Record what ``sock`` waits for, and until when (``None``: no deadline)."""
        now = self.clock()
        deadline = float("inf") if seconds is None else now + seconds
        with self.conn_lock:
            if sock in self.connections:
                self.phases[sock] = (phase, now, deadline)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Start a thread for the connection, within ``limits.max_connections``: at the cap
        the connection that has waited longest for a request (idle keep-alive, or a slow
        head) is closed to make room; if every one is busy the new one is refused (closed).
        So a flood of slow or idle connections never stops a client that sends requests."""
        with self.conn_lock:
            if len(self.connections) >= self.limits.max_connections:
                waiting = [(since, sock) for sock, (phase, since, _) in self.phases.items()
                           if phase in ("idle", "head")]
                if not waiting:
                    self.refused += 1
                    self.shutdown_request(request)
                    return
                _, oldest = min(waiting, key=lambda x: x[0])
                self.evicted += 1
                self._close(oldest)
            self.connections.add(request)
            self.phases[request] = ("idle", self.clock(), self.clock() + self.limits.head_timeout)
        super().process_request(request, client_address)

    def _close(self, sock: socket.socket) -> None:
        self.phases.pop(sock, None)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def reap(self) -> int:
        """Close every connection past its deadline (a head or body that does not come, a
        keep-alive connection idle past its window); returns how many."""
        now = self.clock()
        with self.conn_lock:
            late = [sock for sock, (_, _, deadline) in self.phases.items() if deadline < now]
            for sock in late:
                self._close(sock)
            self.reaped += len(late)
        return len(late)

    def reap_forever(self, stop: threading.Event, every: float = 0.5) -> None:
        while not stop.wait(every):
            self.reap()

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the address's FQDN (a reverse DNS lookup that can
        # stall where no resolver answers); loopback needs no name
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self, timeout: float = 5.0) -> None:
        with self.conn_lock:
            for sock in list(self.connections):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self.idle.wait_for(lambda: not self.connections, timeout=timeout)


class _StampedWriter:
    """The connection's writer, noting the time before each write: the idle window starts
    when the last piece of an answer goes out, and is noted before the client can have it."""

    __slots__ = ("_raw", "_stamp")

    def __init__(self, raw: Any, stamp: Callable[[], None]) -> None:
        self._raw, self._stamp = raw, stamp

    def write(self, data: Any) -> int:
        self._stamp()
        return int(self._raw.write(data))

    def __getattr__(self, name: str) -> Any:  # flush, close, closed, fileno ...
        return getattr(self._raw, name)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vcbsim-esx"
    sys_version = ""
    #: per receive while a request comes in; between requests, ``KEEPALIVE_IDLE_SECONDS``
    timeout = REQUEST_TIMEOUT_SECONDS
    #: headers and body go out in separate writes; without TCP_NODELAY the client's delayed
    #: ACK would add 40 ms to every call
    disable_nagle_algorithm = True
    server: _HTTPServer
    raw_requestline: bytes

    def setup(self) -> None:
        with self.server.conn_lock:
            self.server.connections.add(self.request)  # process_request did; direct use too
        try:
            self.request.settimeout(self.timeout)
            if isinstance(self.request, ssl.SSLSocket):
                self.request.do_handshake()
            super().setup()
            self.wfile = _StampedWriter(self.wfile, self._stamp)  # type: ignore[assignment]
        except BaseException:
            # finish() does not run when setup() fails: forget the connection here
            with self.server.conn_lock:
                self.server.connections.discard(self.request)
                self.server.idle.notify_all()
            raise

    def _stamp(self) -> None:
        self._idle_since = self.server.endpoint.clock()

    def handle(self) -> None:
        """Requests one after the other on a keep-alive connection; between two, the
        connection waits up to ``KEEPALIVE_IDLE_SECONDS`` from the last byte written
        (``parse_request`` checks the gap on the endpoint's clock)."""
        self.close_connection = True
        self._stamp()
        self.handle_one_request()
        while not self.close_connection:
            self.request.settimeout(KEEPALIVE_IDLE_SECONDS)
            self.handle_one_request()

    def _idle_too_long(self) -> bool:
        """A request that comes after the idle window finds the connection closed, as it
        would be on a host that closed it when the window ran out (the wall-clock timeout
        does that when the endpoint's clock is the wall clock)."""
        self.request.settimeout(self.timeout)
        if self.server.endpoint.clock() - self._idle_since > KEEPALIVE_IDLE_SECONDS:
            log.debug("%s idle longer than %g s: connection closed", self.address_string(), KEEPALIVE_IDLE_SECONDS)
            self.close_connection = True
            return True
        return False

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.conn_lock:
                self.server.connections.discard(self.request)
                self.server.phases.pop(self.request, None)
                self.server.idle.notify_all()

    def handle_one_request(self) -> None:
        """Wait for a request's first byte (idle, up to the keep-alive window), then give
        the whole head ``limits.head_timeout`` (a slow-headers client is cut off then)."""
        limits = self.server.limits
        # the first request of a connection within ``timeout``; a later one within the
        # keep-alive window ``handle`` set on the socket (the reaper used the first for both)
        self.server.set_phase(self.request, "idle", float(self.request.gettimeout() or self.timeout))
        try:
            if not self.rfile.peek(1):  # type: ignore[attr-defined]
                self.close_connection = True
                return
        except (OSError, ValueError):
            self.close_connection = True
            return
        self.server.set_phase(self.request, "head", limits.head_timeout)
        super().handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if log.isEnabledFor(logging.DEBUG):  # one per response: skip the formatting unless shown
            super().log_request(code, size)

    def date_time_string(self, timestamp: float | None = None) -> str:
        if timestamp is not None:
            return str(super().date_time_string(timestamp))
        return _http_date(int(time.time()))  # the Date header: formatted once a second

    # request parsing -------------------------------------------------------------------
    def parse_request(self) -> bool:
        # The common case, an HTTP/1.1 request line and plain header lines, without the email
        # package's parser (a sixth of the server's CPU per call); anything else (HTTP/1.0 and
        # 0.9, odd request lines, folded or unusual headers) the standard library's way.
        if self._idle_too_long():
            return False
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        self._first_values = None
        if len(words) != 3 or words[2] != "HTTP/1.1" or self.protocol_version < "HTTP/1.1":
            ok = bool(super().parse_request())
            if ok:
                self.server.set_phase(self.request, "busy")
            return ok
        self.requestline = requestline
        self.command, path, self.request_version = words
        if path.startswith("//"):
            path = "/" + path.lstrip("/")  # as the standard library does (gh-87389)
        self.path = path
        self.close_connection = False
        try:
            self._parse_headers()
        except http.client.LineTooLong as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers", str(err))
            return False
        conntype = (self._header("Connection") or "").lower()
        if conntype == "close":
            self.close_connection = True
        elif conntype == "keep-alive":
            self.close_connection = False
        self.server.set_phase(self.request, "busy")
        if (self._header("Expect") or "").lower() == "100-continue":
            return bool(self.handle_expect_100())
        return True

    def _parse_headers(self) -> None:
        """Read the header lines with ``http.client.parse_headers``'s limits. Plain lines (the
        email parser's test, without folding) go to a dict of first values, which is all the
        SOAP path reads; ``headers`` (an ``HTTPMessage``, as the standard library makes it)
        is built from the same lines only when something asks for it."""
        if self._parse_buffered_headers():
            return
        lines: list[bytes] = []
        while True:
            line = self.rfile.readline(_MAX_HEADER_LINE + 1)
            if len(line) > _MAX_HEADER_LINE:
                raise http.client.LineTooLong("header line")
            lines.append(line)
            if len(lines) > _MAX_HEADERS:
                too_many = f"got more than {_MAX_HEADERS} headers"
                raise http.client.HTTPException(too_many)
            if line in (b"\r\n", b"\n", b""):
                break
        self._header_lines = lines
        self._headers_message = None
        first: dict[str, str] = {}
        for line in lines[:-1]:
            m = _PLAIN_HEADER.fullmatch(line.decode("iso-8859-1"))
            if m is None:  # folded or unusual: the email parser decides, now
                self._first_values = None
                self._headers_message = self._message(lines)
                return
            name, value = m.group(1, 2)
            first.setdefault(name.lower(), value)
        self._first_values = first

    def _parse_buffered_headers(self) -> bool:
        """The common case in one step: the whole header block is already in the read buffer
        and every line is plain (one regular expression over the block instead of one per
        line). ``False`` (nothing consumed) sends the caller the line-by-line way."""
        peek = getattr(self.rfile, "peek", None)
        if peek is None:
            return False
        buffered = peek(_MAX_HEADER_LINE)
        if buffered.startswith(b"\r\n"):
            end = 2
        else:
            end = buffered.find(b"\r\n\r\n") + 4
            if end < 4:
                return False
        block = buffered[:end]
        if _PLAIN_BLOCK.fullmatch(block) is None or block.count(b"\n") > _MAX_HEADERS:
            return False
        self.rfile.read(end)
        raw = block.split(b"\r\n")[:-1]
        self._header_lines = [line + b"\r\n" for line in raw]
        self._headers_message = None
        first: dict[str, str] = {}
        for line in raw[:-1]:
            name, _, value = line.decode("iso-8859-1").partition(":")
            first.setdefault(name.lower(), value.lstrip(" \t"))
        self._first_values = first
        return True

    def _message(self, lines: list[bytes]) -> Any:
        text = b"".join(lines).decode("iso-8859-1")
        return email.parser.Parser(_class=self.MessageClass).parsestr(text)

    @property
    def headers(self) -> Any:  # type: ignore[override]
        """The request's headers as the standard library's ``HTTPMessage``."""
        if self._headers_message is None:
            self._headers_message = self._message(self._header_lines)
        return self._headers_message

    @headers.setter
    def headers(self, message: Any) -> None:
        self._headers_message = message

    _headers_message: Any = None
    _header_lines: list[bytes] = [b"\r\n"]
    #: the first value of each header (by lower-case name) when the fast path parsed them
    _first_values: dict[str, str] | None = None

    def _header(self, name: str, default: str | None = None) -> str | None:
        """``self.headers.get(name, default)``, from a dict when the fast path filled one."""
        if self._first_values is not None:
            return self._first_values.get(name.lower(), default)
        value = self.headers.get(name, default)
        return None if value is None else str(value)

    # plumbing --------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        """The status line, headers and body in one write (one segment on the wire, one
        release of the GIL around a send), formatted without the standard library's
        per-header calls; what it writes is what ``send_response`` + ``send_header`` write."""
        if self.request_version == "HTTP/0.9":  # no status line, no headers: the stdlib way
            self.send_response(status)
            if self.command != "HEAD":
                self._body = body
            self.end_headers()
            return
        self.log_request(status)
        phrase = _PHRASES.get(status, "")
        parts = [
            f"{self.protocol_version} {status} {phrase}\r\n"
            f"Server: {self.server_version}\r\n"
            f"Date: {self.date_time_string()}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
        ]
        announced = False
        for k, v in (headers or {}).items():
            parts.append(f"{k}: {v}\r\n")
            if k.lower() == "connection":
                announced = True
                if v.lower() == "close":
                    self.close_connection = True
                elif v.lower() == "keep-alive":
                    self.close_connection = False
        if self.close_connection and not announced:
            # RFC 9112 9.6: a server that closes after this response says so, or a keep-alive
            # client (Node's default agent) sends its next request into the closed socket
            parts.append("Connection: close\r\n")
        parts.append("\r\n")
        head = "".join(parts).encode("latin-1", "strict")
        self.wfile.write(head if self.command == "HEAD" else head + body)

    #: a response body that ``flush_headers`` sends along with the headers
    _body = b""

    def flush_headers(self) -> None:
        # one write per response, not two (see ``_send``)
        body, self._body = self._body, b""
        buffered: list[bytes] = getattr(self, "_headers_buffer", [])
        if buffered or body:
            self.wfile.write(b"".join([*buffered, body]))
        self._headers_buffer: list[bytes] = []

    def _read_body(self, limit: int) -> bytes | None:
        if "chunked" in (self._header("Transfer-Encoding") or "").lower():
            self._body_phase(limit)
            out = bytearray()
            while True:
                size_line = self.rfile.readline(1024)
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    self._send(400, b"bad chunked encoding\n", "text/plain")
                    return None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > limit:
                    self.close_connection = True
                    self._send(413, b"request too large\n", "text/plain")
                    return None
                out += self.rfile.read(size)
                self.rfile.readline(1024)
        length = self._header("Content-Length")
        if length is None:
            self.close_connection = True
            self._send(411, b"Content-Length required\n", "text/plain")
            return None
        try:
            n = int(length)
        except ValueError:
            n = -1
        if n < 0 or n > limit:
            self.close_connection = True
            self._send(413, b"request too large\n", "text/plain")
            return None
        self._body_phase(n)
        data = self.rfile.read(n)
        self.server.set_phase(self.request, "busy")
        if len(data) < n:  # cut off (the body deadline) or the client went away
            self.close_connection = True
            return None
        return data

    def _body_phase(self, n: int | None) -> None:
        """The body must arrive within ``body_timeout`` plus a second per ``body_rate`` bytes."""
        limits = self.server.limits
        self.server.set_phase(self.request, "body", limits.body_timeout + (n or 0) / limits.body_rate)

    def _path(self) -> str:
        return _url_path(self.path) if len(self.path) <= 256 else urlsplit(self.path).path

    # methods ---------------------------------------------------------------------------
    def _control(self) -> None:
        """``/vcbsim-api/...``: the control API (``_control.py``)."""
        body = b""
        ep = self.server.endpoint
        ok = _authorized(ep, self.headers.get("Cookie"), self.headers.get("Authorization"))
        if self.command in ("POST", "PUT", "DELETE"):
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            if not ok:
                self.close_connection = True  # refused from the headers: the body is not read
            elif chunked or self.headers.get("Content-Length") is not None:
                read = self._read_body(MAX_BODY_BYTES)
                if read is None:
                    return
                body = read
        resp = handle_control(ep, self.command, self.path, body, authorized=ok)
        self._send(resp.status, resp.body, resp.content_type, resp.headers)

    def _is_control(self) -> bool:
        path = self._path()
        return path == PREFIX or path.startswith(PREFIX + "/")

    def do_DELETE(self) -> None:  # noqa: N802
        if self._is_control():
            self._control()
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        if self._is_control():
            self._control()
            return
        if self._path().startswith(NFC_PREFIX):
            self._nfc_upload()
            return
        if self._path().rstrip("/") != "/sdk":
            self._send(404, b"not found\n", "text/plain")
            return
        endpoint = self.server.endpoint
        with endpoint.lock:  # the session, from the headers, before a byte of the body
            known = endpoint.sessions.from_cookie(self._header("Cookie")) is not None
        limit = _codec.MAX_REQUEST_BYTES if known else self.server.limits.anonymous_body_bytes
        body = self._read_body(limit)
        if body is None:
            return
        resp = endpoint.handle_soap(body, self._header("SOAPAction"), self._header("Cookie"),
                                    client=str(self.client_address[0]))
        headers = {"Set-Cookie": resp.set_cookie} if resp.set_cookie else {}
        try:
            self._send(resp.status, resp.body, "text/xml; charset=utf-8", headers)
        finally:
            # tasks the call queued run now, while the client reads the response
            endpoint.tasks.drain()

    def do_GET(self) -> None:  # noqa: N802
        path = self._path()
        if path == "/sdk/vimServiceVersions.xml":
            self._send(200, service_versions_xml(self.server.endpoint.api_version), "text/xml; charset=utf-8")
        elif path == "/sdk/vimService.wsdl":
            scheme = "https" if self.server.tls is not None else "http"
            host, port = str(self.server.server_address[0]), self.server.server_address[1]
            host = f"[{host}]" if ":" in host else host  # an IPv6 literal in a URL
            self._send(200, _service_wsdl(f"{scheme}://{host}:{port}/sdk"), "text/xml; charset=utf-8")
        elif path.startswith("/sdk/") and path[5:] in DOCUMENT_NAMES:  # vim.wsdl and its schemas
            self._send(200, document(path[5:], self.server.endpoint.api_version), "text/xml; charset=utf-8")
        elif path.startswith("/folder/"):
            self._folder()
        elif path == "/guestFile":
            self._reply(handle_guest_file(self.server.endpoint, "GET", self.path))
        elif path.startswith(NFC_PREFIX):
            self._reply(handle_nfc(self.server.endpoint, self.command, self.path))
        elif self._is_control():
            self._control()
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_HEAD(self) -> None:  # noqa: N802
        if self._path().startswith("/folder/"):
            self._folder()
        else:
            self.do_GET()

    def _nfc_upload(self) -> None:
        """``PUT``/``POST /nfc/<token>/disk-N.vmdk``: an import lease's upload (``_nfc.py``),
        refused from the URL before the body is read when no such ready lease exists."""
        ep = self.server.endpoint
        with ep.lock:
            token = self._path()[len(NFC_PREFIX):].partition("/")[0]
            live = ep.leases.by_token(token)
        if live is None or live.kind != "import":
            self.close_connection = True
            self._reply(handle_nfc_upload(ep, self.path, b""))
            return
        body = self._read_body(MAX_PUT_BYTES)
        if body is not None:
            self._reply(handle_nfc_upload(ep, self.path, body))

    def do_PUT(self) -> None:  # noqa: N802
        if self._is_control():
            self._control()
            return
        if self._path().startswith(NFC_PREFIX):
            self._nfc_upload()
            return
        path = self._path()
        if not path.startswith("/folder/") and path != "/guestFile":
            self._send(404, b"not found\n", "text/plain")
            return
        ep = self.server.endpoint
        if path == "/guestFile":
            allowed = transfer_pending(ep, self.path, "to")
        else:
            allowed = _authorized(ep, self.headers.get("Cookie"), self.headers.get("Authorization"))
        store = getattr(getattr(ep.files, "host", None), "store", None)
        if allowed and path != "/guestFile" and store is not None:
            self._folder_upload()  # streamed to the datastore's files, bounded by free space
            return
        if not allowed:
            # refused from the headers: an unauthenticated client cannot make the host buffer
            # up to MAX_PUT_BYTES; the unread body ends the connection
            self.close_connection = True
            body: bytes | None = b""
        else:
            body = self._read_body(MAX_PUT_BYTES)
        if body is None:
            return
        if path == "/guestFile":
            self._reply(handle_guest_file(self.server.endpoint, "PUT", self.path, body))
        else:
            self._folder(body)

    def _folder_upload(self) -> None:
        """``PUT /folder`` to a datastore kept as files: the body goes to the file as it
        arrives (never whole in memory); a refusal before the end closes the connection."""
        length_text = self._header("Content-Length")
        chunked = "chunked" in (self._header("Transfer-Encoding") or "").lower()
        length: int | None = None
        if not chunked:
            try:
                length = int(length_text) if length_text is not None else -1
            except ValueError:
                length = -1
            if length < 0:
                self._send(411, b"Content-Length required\n", "text/plain")
                self.close_connection = True
                return
        state = {"done": False}
        self._body_phase(length)

        def exactly(left: int) -> Any:
            """``left`` bytes of the body, in pieces of at most 1 MiB."""
            while left:
                data = self.rfile.read(min(left, 1 << 20))
                if not data:
                    raise ConnectionError("the client closed the upload")
                left -= len(data)
                yield data

        def chunks() -> Any:
            if chunked:
                while True:
                    size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    yield from exactly(size)
                    self.rfile.readline(1024)
            else:
                assert length is not None
                yield from exactly(length)
            state["done"] = True

        try:
            resp = handle_folder_upload(self.server.endpoint, self.path, chunks(), length)
        except (ConnectionError, ValueError):
            self.close_connection = True
            return
        if not state["done"]:
            self.close_connection = True  # refused before the end: the rest is not read
        if resp is not None and resp.status == DROP:
            self.close_connection = True  # an injected lost connection: no answer
            return
        if resp is not None:
            self._reply(resp)

    def _folder(self, body: bytes = b"") -> None:
        resp = handle_folder(
            self.server.endpoint,
            self.command,
            self.path,
            cookie=self.headers.get("Cookie"),
            authorization=self.headers.get("Authorization"),
            range_header=self.headers.get("Range"),
            body=body,
        )
        if resp.status == DROP:
            self.close_connection = True  # an injected lost connection: no answer
            return
        self._reply(resp)

    def _reply(self, resp: FileResponse) -> None:
        if resp.stream is None and resp.body:
            self._send(resp.status, resp.body, resp.headers.pop("Content-Type", "text/plain"), resp.headers)
            return
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if self.close_connection and not any(k.lower() == "connection" for k in resp.headers):
            self.send_header("Connection", "close")  # announced, as in _send
        if resp.length < 0:  # produced as it is sent (an NFC disk): chunked, length unknown
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command != "HEAD":
                for chunk in resp.stream or ():
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(resp.length))
        self.end_headers()
        sent = 0
        for chunk in resp.stream or ():
            self.wfile.write(chunk)
            sent += len(chunk)
        if self.command == "GET" and sent != resp.length:
            self.close_connection = True  # the file shrank while we sent it


class RunningServer:
    """A serving endpoint. ``url`` is the SDK URL (``https://127.0.0.1:<port>/sdk``)."""

    def __init__(self, httpd: _HTTPServer, endpoint: Endpoint, tmpdir: tempfile.TemporaryDirectory[str] | None,
                 cert_path: Path | None) -> None:
        self._httpd = httpd
        self.endpoint = endpoint
        self._tmpdir = tmpdir
        self.cert_path = cert_path
        self.host, self.port = str(httpd.server_address[0]), int(httpd.server_address[1])
        self.scheme = "https" if httpd.tls is not None else "http"
        host = f"[{self.host}]" if ":" in str(self.host) else self.host
        self.base_url = f"{self.scheme}://{host}:{self.port}"
        self.url = f"{self.base_url}/sdk"
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="vcbsim-soap-http", daemon=True
        )
        self._stopped = False
        self._thread.start()
        self._stop_reaper = threading.Event()
        self._reaper = threading.Thread(
            target=httpd.reap_forever, args=(self._stop_reaper,), name="vcbsim-soap-reaper", daemon=True
        )
        self._reaper.start()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stop_reaper.set()
        self.endpoint.stop()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections()
        self._thread.join(timeout=5)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()

    def wait(self) -> None:
        """Block until ``stop()`` is called from another thread (or the process is interrupted)."""
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningServer({self.url})"


def serve(
    host_or_adapter: Host | HostAdapter,  # HostAdapter: deprecated, unwrapped below
    *,
    port: int = 0,
    http: bool = False,
    user: str = "user",
    password: str = "pass",
    host: str = "127.0.0.1",
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    task_retention: int = DEFAULT_RETENTION,
    api_version: str = _codec.DEFAULT_VERSION,
    session_idle_timeout: float | None = None,
    async_tasks: bool = False,
    clock: Callable[[], float] | Any = None,
    guest_credentials: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    login_lock_failures: int = ACCOUNT_LOCK_FAILURES,
    login_unlock_seconds: float = ACCOUNT_UNLOCK_SECONDS,
) -> RunningServer:
    """Serve a simulated ``Host`` on loopback; HTTPS with a fresh self-signed certificate unless
    ``http=True`` or ``certfile``/``keyfile`` are given. ``port=0`` picks a free port.

    ``guest_credentials`` (user -> password) are the guest accounts guest operations accept
    (default ``Administrator``/``vmware`` and ``root``/``vmware``). ``api_version``
    (``8.0.3.0`` by default, so that modern clients read every property) is the vim25 version advertised; ``2.5u2`` is what a real ESX 3.5 host says, and
    pyVmomi then leaves out every property newer than that (``capacityInBytes`` ...).
    ``session_idle_timeout`` (seconds; ``None``: 30 minutes, as hostd) ends idle sessions: a
    call, a ``/folder`` request or a guest file transfer URL of such a session is refused.
    ``async_tasks=True`` runs every task on the task thread, so clients see it ``queued`` and
    ``running`` before it ends; by default a task submitted to an idle host ends before the
    call returns (its work takes virtual time; see ``_tasks.py``). ``clock`` times session
    expiry, clone tickets and transfer URLs (default the wall clock; ``_endpoint.py`` says why);
    pass a ``VirtualClock`` or a function to drive them from a test. ``limits`` bounds what
    a client may hold (:class:`Limits`: connections, head and body deadlines, anonymous body
    size); ``login_lock_failures`` failed logins from one client for one user lock that pair
    out for ``login_unlock_seconds`` (ESXi's ``Security.AccountLockFailures`` 5 and
    ``AccountUnlockTime`` 900 s; ``0`` turns locking off).
    """
    if isinstance(host_or_adapter, HostAdapter):  # the deprecated wrapper
        if guest_credentials is None:
            guest_credentials = host_or_adapter.guest_credentials
        host_or_adapter = host_or_adapter.host
    if not isinstance(host_or_adapter, Host):
        raise InvalidInputError(
            "serve host", expected="a simulated host (vcbsim.simulator.Host)", got=type(host_or_adapter).__name__,
            hint="build one with Host(profile) and add_vm(), or Host.demo()",
        )
    try:
        api_version = _codec.vim25_version(api_version)
    except ValueError as exc:
        raise InvalidInputError("serve api_version", expected="a vim25 API version such as 8.0.3.0",
                                got=api_version) from exc
    if host not in LOOPBACK:
        raise InvalidInputError(
            "serve host", expected="a loopback address (127.0.0.1, ::1, localhost)", got=host,
            hint="the simulated host accepts any client that knows the password; keep it local",
        )
    if (certfile is None) != (keyfile is None):
        raise InvalidInputError("serve certificate", expected="both certfile and keyfile, or neither",
                                got=(certfile, keyfile))
    tls = None
    tmpdir = None
    cert_path: Path | None = None
    if not http:
        if certfile is None:
            tmpdir = tempfile.TemporaryDirectory(prefix="vcbsim-tls-")
            cert_path, key_path = write_self_signed(tmpdir.name)
        else:
            cert_path, key_path = Path(certfile), Path(str(keyfile))
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.load_cert_chain(cert_path, key_path)
    endpoint = Endpoint(host_or_adapter, user=user, password=password, task_retention=task_retention,
                        secure_cookie=not http, api_version=api_version,
                        session_idle_seconds=session_idle_timeout, async_tasks=async_tasks, clock=clock,
                        guest_credentials=guest_credentials)
    endpoint.auth.throttle.failures = login_lock_failures
    endpoint.auth.throttle.unlock_seconds = login_unlock_seconds
    bind = "127.0.0.1" if host == "localhost" else host
    try:
        httpd = _HTTPServer((bind, port), endpoint, tls, limits)
    except BaseException:
        if tmpdir is not None:
            tmpdir.cleanup()
        raise
    endpoint.start()
    running = RunningServer(httpd, endpoint, tmpdir, cert_path)
    endpoint.base_url = running.base_url
    # the lease URLs' sslThumbprint (empty over plain HTTP: "no SSL thumbprint is available")
    endpoint.leases.ssl_thumbprint = sha1_thumbprint(cert_path) if cert_path is not None else ""
    return running
