"""The endpoint: SOAP dispatch, and the wiring of the parts the managed objects share.

``Endpoint.handle_soap(body, soap_action, cookie)`` is the whole SOAP service: decode with
pyVmomi, check the session, find the managed object, call the implementation, encode the
result or the fault. The HTTP server (``http/_server.py``) only moves bytes, so the endpoint
can be driven without sockets as well.

The managed objects (``mo/``) read and change the ``Host`` directly; what they share is an
attribute of the endpoint, each a small object with one job:

- ``registry`` (``_registry.py``): a reference to its implementation (``lookup``,
  ``require``), ``ServiceContent``, exceptions to faults (``to_fault``);
- ``inventory`` (``_index.py``): datastores, networks, VMs and snapshots by id, and the
  per-call memo of what was built from the host;
- ``sessions`` (``_sessions.py``): the sessions by key, clone tickets, transfer tokens;
- ``auth`` (``_auth.py``): login, clones, logout, the cookie, guest transfer URLs;
- ``scoped`` (``_scoped.py``): what a session makes (collectors, filters, views) and drops;
- ``tasks`` (``_tasks.py``), ``files`` (the datastores' files, ``mo/_dsfiles.py``),
  ``guest`` (guest operations, ``mo/_guestops.py``), ``leases`` (NFC export leases,
  ``mo/_nfclease.py``).

One re-entrant lock guards all state (sessions, filters, tasks, and every host call);
``changed`` is a condition on it that mutating operations notify, and on which
``WaitForUpdatesEx`` waits.

Time. Session idle expiry, clone tickets and guest file transfer URLs are timed by
``clock`` (seconds, any origin). By default it is the wall clock (``time.monotonic``), not the
host's virtual clock: hostd counts a session's idle time in real time, and the virtual clock
jumps by a whole operation at once (a quiesced snapshot whose scripts sleep 30 virtual minutes
would otherwise log out the client waiting for it). Tests and embedders pass a clock of their
own (``Endpoint(..., clock=...)``, ``serve(..., clock=...)``; a ``VirtualClock`` works) and
advance it instead of sleeping.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim, vmodl

from .._host import Host
from ._auth import Auth
from ._index import InventoryIndex
from ._registry import INTERNAL_ERROR, Registry
from ._scoped import SessionScoped, View
from ._sessions import COOKIE_NAME, Session, Sessions, clock_function
from ._tasks import DEFAULT_RETENTION, TaskRunner
from .mo._dsfiles import DatastoreFiles
from .mo._guestops import GuestOperations
from .mo._nfclease import LeaseTable
from .wire import _codec

__all__ = ["ANONYMOUS", "COOKIE_NAME", "INTERNAL_ERROR", "Context", "Endpoint", "Response", "Session", "View"]

log = logging.getLogger(__name__)
#: Calls allowed without a session (everything else answers ``NotAuthenticated``).
ANONYMOUS = frozenset({"RetrieveServiceContent", "Login", "CloneSession"})
#: Calls that may wait on ``changed`` (other calls run meanwhile). Every other call runs with
#: the cyclic garbage collector paused from dispatch until its answer is encoded and dropped
#: (issue 18): an answer's objects (a whole-inventory read makes hundreds of thousands) are
#: acyclic and reference counting frees them, but while they live each young-generation
#: collection their allocation triggers walks all of them and frees none; paused only while
#: the answer was built (``_collector._collection_paused``), the first collection after it
#: still walked them all, 10-15% of the server CPU of a read of 1,000 or 5,000 VMs' devices.
#: Paused until they are freed, the collector finds its count back where it was. A waiting
#: call keeps it on: a pause would span the wait and every call served meanwhile.
_MAY_WAIT = frozenset({"WaitForUpdates", "WaitForUpdatesEx"})


@dataclass
class Context:
    """One call: the caller's session (``None`` before Login) and the negotiated version."""

    session: Session | None
    version: str
    new_cookie: str | None = None
    logout: bool = False
    client: str | None = None

    @property
    def sess(self) -> Session:
        """The session (every call but the anonymous ones has one: checked at dispatch)."""
        if self.session is None:
            raise vim.fault.NotAuthenticated(msg="The session is not authenticated.")
        return self.session


@dataclass
class Response:
    status: int
    body: bytes
    set_cookie: str | None = None


class Endpoint:
    """The SOAP service of one simulated host."""

    def __init__(
        self,
        host: Host,
        *,
        user: str = "user",
        password: str = "pass",
        task_retention: int = DEFAULT_RETENTION,
        secure_cookie: bool = True,
        api_version: str = _codec.DEFAULT_VERSION,
        session_idle_seconds: float | None = None,
        async_tasks: bool = False,
        clock: Callable[[], float] | Any = None,
        guest_credentials: Mapping[str, str] | None = None,
    ) -> None:
        self.host = host
        #: the vim25 version advertised and used for clients that name none (pyVmomi name)
        self.api_version = _codec.vim25_version(api_version)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.stopping = False
        self.boot_time = host.clock.now
        self._local = threading.local()
        #: seconds for session idle expiry, clone tickets and transfer URLs (module docstring)
        self.clock: Callable[[], float] = clock_function(clock)
        #: where the server listens (set by ``serve``), for the URLs the host hands out
        self.base_url = "https://127.0.0.1"
        #: the datastores' files (``/folder``, the datastore browser) and uploads
        self.files = DatastoreFiles(host)
        #: guest operations, with the guest accounts they accept (``guest_credentials``)
        self.guest = GuestOperations(host, guest_credentials)
        self.inventory = InventoryIndex(host)
        self.scoped = SessionScoped(self.changed, lambda key: self.sessions.get(key))
        #: ``session_idle_seconds`` (``None``: ``_sessions.SESSION_IDLE_SECONDS``, 30 minutes
        #: as on hostd) ends idle sessions; what a session made goes with it
        self.sessions = Sessions(self.clock, session_idle_seconds, self.scoped.session_dropped)
        self.auth = Auth(
            self.sessions, user=user, password=password, secure_cookie=secure_cookie,
            host_now=self.now, current_context=self.current_context, base_url=lambda: self.base_url,
        )
        self.registry = Registry(self, self.current_context)
        self.tasks = TaskRunner(self, task_retention, async_tasks=async_tasks)
        #: NFC export leases (``mo/_nfclease.py``), timed on ``clock``
        self.leases = LeaseTable(self)
        #: calls served and faults answered, by method name (for reports and tests)
        self.calls: dict[str, int] = {}
        self.faults: dict[str, int] = {}

    # lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self.tasks.start()

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            self.changed.notify_all()
        self.tasks.stop()

    # what a call shares ------------------------------------------------------------------
    def now(self) -> float:
        """The host's (virtual) time, for the times the API reports (task and session times)."""
        return float(self.host.clock.now)

    def current_context(self) -> Context | None:
        """The call being served by this thread (``None`` outside a SOAP call: a task, the
        control API)."""
        return getattr(self._local, "ctx", None)

    def begin_call(self) -> None:
        """Forget values memoised for one call (called whenever the lock is taken anew)."""
        self.inventory.begin_call()

    # SOAP ------------------------------------------------------------------------------------
    def handle_soap(
        self, body: bytes, soap_action: str | None, cookie: str | None, client: str | None = None
    ) -> Response:
        version = _codec.version_from_soap_action(soap_action, self.api_version)
        try:
            req = _codec.parse_request(body, version)
        except _codec.RequestError as exc:
            with self.lock:
                return self._fault("(unparsed)", vmodl.fault.InvalidRequest(msg=str(exc)), version)
        with self.lock:
            self.begin_call()
            ctx = Context(self.sessions.from_cookie(cookie), version)
            ctx.client = client  # the peer's address: login throttling counts per client
            self._local.ctx = ctx
            paused = req.wsdl_name not in _MAY_WAIT and gc.isenabled()
            if paused:
                gc.disable()  # until the answer is written and dropped: see _MAY_WAIT
            try:
                result = self._call(req, ctx)
                info = req.info
                payload = _codec.serialize_response(req.wsdl_name, info, result, version)
                result = None  # the answer's objects go now, while the collector is paused
            except Exception as exc:  # every failure is answered, the server keeps serving
                fault = self.registry.to_fault(exc, obj=req.this)
                return self._fault(req.wsdl_name, fault, version)
            finally:
                self._local.ctx = None
                self.inventory.begin_call()  # memoised values never outlive the call
                if paused:
                    gc.enable()
            self.calls[req.wsdl_name] = self.calls.get(req.wsdl_name, 0) + 1
            set_cookie = self.auth.cookie_header(ctx.new_cookie) if ctx.new_cookie else None
            return Response(200, payload, set_cookie)

    def _fault(self, method: str, fault: Any, version: str) -> Response:
        name = type(fault).__name__.rsplit(".", 1)[-1]
        self.faults[name] = self.faults.get(name, 0) + 1
        self.calls[method] = self.calls.get(method, 0) + 1
        try:
            body = _codec.serialize_fault(fault, version)
        except Exception:  # a fault that cannot be encoded still gets an answer
            log.error("cannot encode the fault %s", name, exc_info=True)
            body = _codec.serialize_fault(vmodl.fault.SystemError(msg=INTERNAL_ERROR, reason=INTERNAL_ERROR), version)
        return Response(500, body)

    def _call(self, req: _codec.Request, ctx: Context) -> Any:
        if req.wsdl_name not in ANONYMOUS and ctx.session is None:
            raise vim.fault.NotAuthenticated(
                msg="The session is not authenticated.",
                object=req.this,
                privilegeId="System.View",
            )
        if ctx.session is not None:
            self.sessions.touch(ctx.session)
            ctx.session.last_active = self.now()
        impl = self.registry.require(req.this)
        req.this = impl.ref  # a _this sent without its type attribute gets it here
        if req.wsdl_name == "Fetch":
            from ._collector import resolve_path

            return resolve_path(impl, req.args["prop"])
        declaring = req.info.type
        if not issubclass(impl.vim_type, declaring):
            raise vmodl.fault.MethodNotFound(
                msg=f"{req.wsdl_name} is not a method of {impl.vim_type._wsdlName}",
                receiver=impl.ref,
                method=req.wsdl_name,
            )
        handler: Callable[..., Any] | None = getattr(impl, req.wsdl_name, None)
        if handler is None or not getattr(handler, "_soap", False):
            raise vmodl.fault.NotSupported(
                msg=f"vcbsim does not simulate {impl.vim_type._wsdlName}.{req.wsdl_name}"
            )
        return handler(ctx, **req.args)
