"""The endpoint: SOAP dispatch and the context the managed objects share, independent of HTTP.

``Endpoint.handle_soap(body, soap_action, cookie)`` is the whole SOAP service: decode with
pyVmomi, check the session, find the managed object, call the implementation, encode the
result or the fault. The HTTP server (``_server.py``) only moves bytes, so the endpoint can be
driven without sockets as well.

The managed objects (``mo/``) read and change the ``Host`` directly; the endpoint holds
what they share: sessions (``session_store``, ``_sessions.py``), the collectors' filters and
views, tasks (``tasks``, ``_tasks.py``), the datastores' files (``files``) and the guests
(``guest``).

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

import hmac
import itertools
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyVmomi import VmomiSupport, vim, vmodl

from .._errors import InvalidInputError, NotFoundError, StateError
from .._host import Host
from ._collector import Collector, FilterState
from ._sessions import COOKIE_NAME, Session, Sessions, Transfer, clock_function
from ._tasks import DEFAULT_RETENTION, TaskRunner
from ._throttle import LoginThrottle
from .mo import (
    ALL_TYPES,
    MOIDS,
    STATIC_TYPES,
    ContainerViewImpl,
    DatastoreImpl,
    MOImpl,
    NetworkImpl,
    PropertyCollectorImpl,
    PropertyFilterImpl,
    SnapshotImpl,
    TaskImpl,
    VirtualMachineImpl,
)
from .mo._dsfiles import DatastoreFiles
from .mo._guestops import GuestOperations
from .mo._hostview import DatastoreInfo, HostAbout, datastore_infos, host_about
from .mo._nfclease import HttpNfcLeaseImpl, LeaseTable
from .mo._vmprops import iter_snapshots
from .mo._vmview import SnapshotView, VMView, network_name
from .wire import _codec

__all__ = ["COOKIE_NAME", "Context", "Endpoint", "Response", "Session"]

#: the message of the fault a client gets for a defect of the endpoint (hostd's words for a
#: SystemError; what went wrong is in the log, not in the answer)
INTERNAL_ERROR = "A general system error occurred: internal error in the simulated host; see its log"
log = logging.getLogger(__name__)
#: Calls allowed without a session (everything else answers ``NotAuthenticated``).
ANONYMOUS = frozenset({"RetrieveServiceContent", "Login", "CloneSession"})
MAX_VIEWS_PER_SESSION = 1000


@dataclass
class View:
    moid: str
    session_key: str
    container: Any
    types: list[Any]
    recursive: bool


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
        #: the datastores' files (``/folder``, the datastore browser) and uploads
        self.files = DatastoreFiles(host)
        #: guest operations, with the guest accounts they accept (``guest_credentials``)
        self.guest = GuestOperations(host, guest_credentials)
        #: seconds for session idle expiry, clone tickets and transfer URLs (module docstring)
        self.clock: Callable[[], float] = clock_function(clock)
        #: sessions, clone tickets and transfer URLs; ``session_idle_seconds`` (``None``:
        #: ``_sessions.SESSION_IDLE_SECONDS``, 30 minutes as on hostd) ends idle sessions
        self.session_store = Sessions(self.clock, session_idle_seconds, self._session_dropped)
        self.sessions = self.session_store.by_key
        self.transfers = self.session_store.transfers
        #: the vim25 version advertised and used for clients that name none (pyVmomi name)
        self.api_version = _codec.vim25_version(api_version)
        self.user = user
        self.password = password
        self.secure_cookie = secure_cookie
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.filters: dict[str, FilterState] = {}
        #: collectors made with CreatePropertyCollector (the service's own is static)
        self.collectors: dict[str, Collector] = {}
        self._collector_ids = itertools.count(1)
        self.views: dict[str, View] = {}
        self.tasks = TaskRunner(self, task_retention, async_tasks=async_tasks)
        #: NFC export leases (``mo/_nfclease.py``), timed on ``clock``
        self.leases = LeaseTable(self)
        #: failed logins per (client, user), ESXi's account lockout (``_throttle.py``);
        #: ``serve(login_lock_failures=0)`` turns it off
        self.login_throttle = LoginThrottle(self.clock)
        self.stopping = False
        self.boot_time = host.clock.now
        self._view_ids = itertools.count(1)
        self._snapshot_owner: dict[str, str] = {}
        self._call_cache: dict[str, Any] = {}
        self._transfer_ids = itertools.count(1)
        #: where the server listens (set by ``serve``), for the transfer URLs
        self.base_url = "https://127.0.0.1"
        self._local = threading.local()
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

    # helpers used by the managed objects --------------------------------------------------
    def now(self) -> float:
        return float(self.host.clock.now)

    def about(self) -> HostAbout:
        return host_about(self.host)

    def about_info(self) -> Any:
        a = self.about()
        return vim.AboutInfo(
            name=a.name,
            fullName=a.full_name,
            vendor="VMware, Inc.",
            version=a.version,
            build=a.build,
            localeVersion="INTL",
            localeBuild="000",
            osType=a.os_type,
            productLineId=a.product_line,
            apiType="HostAgent",
            apiVersion=a.api_version,
            instanceUuid=a.instance_uuid or None,
            licenseProductName="VMware ESX Server",
            licenseProductVersion=a.version.split(".")[0] + ".0",
        )

    def has_type(self, impl: type[MOImpl]) -> bool:
        """Whether this host's API version has ``impl``'s managed type (a type the profile's API
        predates is not in its ServiceContent and not served)."""
        host_version = _codec.vim25_version(self.host.profile.api_version)
        return bool(VmomiSupport.IsChildVersion(host_version, impl.vim_type._version))

    def service_content(self) -> Any:
        content = vim.ServiceInstanceContent(
            rootFolder=vim.Folder(MOIDS["root"]),
            propertyCollector=vmodl.query.PropertyCollector(MOIDS["pc"]),
            viewManager=vim.view.ViewManager(MOIDS["views"]),
            about=self.about_info(),
            sessionManager=vim.SessionManager(MOIDS["session"]),
            searchIndex=vim.SearchIndex(MOIDS["search"]),
            taskManager=vim.TaskManager(MOIDS["taskmgr"]),
            guestOperationsManager=vim.vm.guest.GuestOperationsManager(MOIDS["guestops"]),
        )
        for impl in ALL_TYPES:  # the managers that declare their ServiceContent property
            if impl.content_property and impl.static_moids and self.has_type(impl):
                setattr(content, impl.content_property, impl.vim_type(impl.static_moids[0]))
        return content

    def current_context(self) -> Context | None:
        return getattr(self._local, "ctx", None)

    def begin_call(self) -> None:
        """Forget values memoised for one call (called whenever the lock is taken anew)."""
        self._call_cache.clear()

    def datastore_list(self) -> list[tuple[str, DatastoreInfo]]:
        cached = self._call_cache.get("datastores")
        if cached is None:
            cached = [(f"datastore-{i}", ds) for i, ds in enumerate(datastore_infos(self.host), 1)]
            self._call_cache["datastores"] = cached
        return cached  # type: ignore[no-any-return]

    def datastore_refs(self) -> dict[str, Any]:
        return {ds.name: vim.Datastore(moid) for moid, ds in self.datastore_list()}

    def network_list(self) -> list[tuple[str, str]]:
        """(moid, name) of every port group: ``VM Network`` and those the VMs' adapters use."""
        cached = self._call_cache.get("networks")
        if cached is None:
            names = ["VM Network"]
            for vm in self.host.vms.values():
                name = network_name(vm)
                if name not in names:
                    names.append(name)
            cached = [(f"network-{i}", name) for i, name in enumerate(names, 1)]
            self._call_cache["networks"] = cached
        return cached  # type: ignore[no-any-return]

    def network_refs(self) -> dict[str, Any]:
        return {name: vim.Network(moid) for moid, name in self.network_list()}

    def network_ref(self, name: str) -> Any:
        return self.network_refs().get(name)

    def network_name(self, moid: str) -> str:
        for m, name in self.network_list():
            if m == moid:
                return name
        raise self._not_found(vim.Network(moid))

    def datastore_ref(self, name: str) -> Any:
        return self.datastore_refs().get(name)

    def datastore_info(self, moid: str) -> DatastoreInfo:
        for m, ds in self.datastore_list():
            if m == moid:
                return ds
        raise vmodl.fault.ManagedObjectNotFound(
            msg=f"The object '{moid}' has already been deleted or has not been completely created",
            obj=vim.Datastore(moid),
        )

    def find_snapshot(self, moid: str) -> tuple[VMView, SnapshotView] | None:
        """The VM that holds snapshot ``moid``, and the snapshot; ``None`` if there is none."""
        key = f"snapshot:{moid}"
        memo = self._call_cache.get(key)
        if memo is not None:  # found earlier in this call (a lookup, then the method's own)
            return memo  # type: ignore[no-any-return]
        owner = self.snapshot_vm(moid)
        if owner is None:
            return None
        vm = self.vm_view(owner)
        for snap, _parent in iter_snapshots(vm.snapshots):
            if snap.moref == moid:
                self._call_cache[key] = vm, snap
                return vm, snap
        return None

    def snapshot_vm(self, moid: str) -> str | None:
        """The VM holding snapshot ``moid`` (``None``: no such snapshot).

        The owner seen last time is looked at first (one VM's snapshots instead of every
        VM's); a miss scans the VMs and remembers what it found, so the answer is always from
        current state."""
        key = f"snapshot-vm:{moid}"
        if key in self._call_cache:
            return self._call_cache[key]  # type: ignore[no-any-return]
        vms = self.host.vms
        hint = self._snapshot_owner.get(moid)
        order = [vms[hint]] if hint in vms else []
        found = None
        for vm in [*order, *vms.values()]:
            if any(s.moref == moid for s in vm.snapshots()):
                found = vm.moref
                break
        if found is None:
            self._snapshot_owner.pop(moid, None)
        else:
            self._snapshot_owner[moid] = found
        self._call_cache[key] = found
        return found

    def vm_name(self, moid: str) -> str:
        """VM ``moid``'s name (``NotFoundError`` if there is none)."""
        return self.host_vm(moid).name

    def host_vm(self, moid: str) -> Any:
        """The host's ``VM`` ``moid``, or ``NotFoundError``."""
        vm = self.host.vms.get(moid)
        if vm is None:
            raise NotFoundError("VM", moid, known=list(self.host.vms))
        return vm

    def vm_view(self, moid: str) -> VMView:
        """VM ``moid`` as the properties read it, one view per call (the lock is held, so
        what a view built once stays true for the call)."""
        key = f"vm:{moid}"
        view = self._call_cache.get(key)
        if view is None:
            view = self._call_cache[key] = VMView(self.host, self.host_vm(moid))
        return view  # type: ignore[no-any-return]

    def note_snapshot(self, snapshot: str, vm: str) -> None:
        """Remember who holds a snapshot just created (``find_snapshot`` verifies it)."""
        self._snapshot_owner[snapshot] = vm

    def forget_snapshots(self, vm: str, snapshot: str | None = None) -> None:
        """Drop the owner index's entries for a removed ``snapshot`` (or all of ``vm``'s), so
        the index does not grow with every create-and-remove cycle."""
        if snapshot is not None:
            self._snapshot_owner.pop(snapshot, None)
        else:
            for moid in [m for m, owner in self._snapshot_owner.items() if owner == vm]:
                del self._snapshot_owner[moid]

    def find_filter(self, moid: str) -> FilterState:
        try:
            return self.filters[moid]
        except KeyError:
            raise self._not_found(vmodl.query.PropertyCollector.Filter(moid)) from None

    def find_view(self, moid: str) -> View:
        try:
            return self.views[moid]
        except KeyError:
            raise self._not_found(vim.view.ContainerView(moid)) from None

    def create_view(self, ctx: Context, container: Any, types: list[Any], recursive: bool) -> Any:
        assert ctx.session is not None
        if len(ctx.session.views) >= MAX_VIEWS_PER_SESSION:
            raise vmodl.fault.NotSupported(
                msg=f"a session may hold at most {MAX_VIEWS_PER_SESSION} views; destroy unused ones"
            )
        moid = f"session[{ctx.session.key[:8]}]view-{next(self._view_ids)}"
        view = View(moid, ctx.session.key, container, types, recursive)
        ctx.session.views[moid] = view
        self.views[moid] = view
        return vim.view.ContainerView(moid)

    def destroy_view(self, moid: str) -> None:
        self.views.pop(moid, None)
        for s in self.sessions.values():
            s.views.pop(moid, None)

    @staticmethod
    def _not_found(ref: Any) -> Exception:
        return vmodl.fault.ManagedObjectNotFound(
            msg=f"The object '{ref._moId}' has already been deleted or has not been completely created",
            obj=ref,
        )

    def lookup(self, ref: Any) -> MOImpl | None:
        """The implementation behind a managed object reference (or a bare id), or ``None``."""
        moid = ref if isinstance(ref, str) else ref._moId
        impl: MOImpl | None = None
        static = STATIC_TYPES.get(moid)
        if static is not None:
            if static.content_property is not None and not self.has_type(static):
                return None  # a manager this host's API predates
            impl = static(self, moid)
        elif moid in self.collectors and self._mine(self.collectors[moid].session_key):
            impl = PropertyCollectorImpl(self, moid)
        elif moid in self.filters and self._mine(self.filters[moid].session_key):
            impl = PropertyFilterImpl(self, moid)
        elif moid in self.views and self._mine(self.views[moid].session_key):
            impl = ContainerViewImpl(self, moid)
        elif self.tasks.exists(moid):
            impl = TaskImpl(self, moid)
        elif moid in self.leases:
            impl = HttpNfcLeaseImpl(self, moid)
        elif moid.startswith("datastore-") and any(m == moid for m, _ in self.datastore_list()):
            impl = DatastoreImpl(self, moid)
        elif moid.startswith("network-") and any(m == moid for m, _ in self.network_list()):
            impl = NetworkImpl(self, moid)
        elif self._vm_exists(moid):
            impl = VirtualMachineImpl(self, moid)
        elif self.snapshot_vm(moid) is not None:
            impl = SnapshotImpl(self, moid)
        if impl is None:
            return None
        if not isinstance(ref, str) and not issubclass(impl.vim_type, type(ref)):
            return None  # right id, wrong type: not the object the caller means
        return impl

    def _mine(self, session_key: str) -> bool:
        """Filters and views belong to the session that made them, as on a real host."""
        ctx = self.current_context()
        return ctx is None or (ctx.session is not None and ctx.session.key == session_key)

    def _vm_exists(self, moid: str) -> bool:
        return moid in self.host.vms

    def require(self, ref: Any) -> MOImpl:
        impl = self.lookup(ref)
        if impl is None:
            raise self._not_found(ref)
        return impl

    def to_fault(self, exc: BaseException, obj: Any = None) -> Any:
        """Any exception as the vSphere fault a client receives."""
        if isinstance(exc, vmodl.MethodFault):
            return exc
        if isinstance(exc, NotFoundError):
            if obj is not None:
                return vmodl.fault.ManagedObjectNotFound(msg=str(exc), obj=obj)
            return vim.fault.NotFound(msg=str(exc))
        if isinstance(exc, InvalidInputError | ValueError):
            return vmodl.fault.InvalidArgument(msg=str(exc))
        if isinstance(exc, StateError):
            return vim.fault.InvalidState(msg=str(exc))
        # anything else is a defect of the endpoint: logged here, and the client gets the
        # host's general fault, never the internal exception's text
        log.error("internal error answered as SystemError", exc_info=exc)
        return vmodl.fault.SystemError(msg=INTERNAL_ERROR, reason=INTERNAL_ERROR)

    # sessions ----------------------------------------------------------------------------
    def login(self, ctx: Context, user: str, password: str, locale: str | None) -> Any:
        client = getattr(ctx, "client", None) or "-"
        refused = vim.fault.InvalidLogin(msg="Cannot complete login due to an incorrect user name or password.")
        if self.login_throttle.locked(client, user):
            raise refused  # locked out: the same answer as a wrong password, as on ESXi
        ok_user = hmac.compare_digest(user.encode(), self.user.encode())
        ok_pass = hmac.compare_digest(password.encode(), self.password.encode())
        if not (ok_user and ok_pass):
            self.login_throttle.failed(client, user)
            raise refused
        self.login_throttle.succeeded(client, user)
        if ctx.session is not None:
            self.session_store.drop(ctx.session.key)
        return self._new_session(ctx, user, locale or "en")

    def _new_session(self, ctx: Context, user: str, locale: str) -> Any:
        session = self.session_store.open(user, locale, self.now())
        ctx.session = session
        ctx.new_cookie = session.key
        return session.user_session()

    def acquire_clone_ticket(self, ctx: Context) -> str:
        """A one-time ticket another connection turns into a session of the same user."""
        return self.session_store.acquire_clone_ticket(ctx.sess.user)

    def clone_session(self, ctx: Context, ticket: str) -> Any:
        user = self.session_store.take_clone_ticket(ticket)
        return self._new_session(ctx, user, ctx.session.locale if ctx.session else "en")

    def drop_session(self, key: str) -> None:
        self.session_store.drop(key)

    def live_session(self, key: str) -> Session | None:
        """The session ``key`` if it exists and has not been idle too long (else drop it)."""
        return self.session_store.live(key)

    def logout(self, ctx: Context) -> None:
        if ctx.session is not None:
            self.session_store.drop(ctx.session.key)
            ctx.logout = True

    def create_transfer(
        self, kind: str, vm: str, user: str, password: str, path: str, overwrite: bool, size: int
    ) -> str:
        """A one-shot URL for ``/guestFile`` (valid for ``_sessions.TRANSFER_SECONDS``)."""
        ctx = self.current_context()
        owner = ctx.session.key if ctx is not None and ctx.session is not None else ""
        token = self.session_store.create_transfer(kind, vm, user, password, path, overwrite, size, owner)
        return f"{self.base_url}/guestFile?id={next(self._transfer_ids)}&token={token}"

    def take_transfer(self, token: str, kind: str) -> Transfer | None:
        return self.session_store.take_transfer(token, kind)

    def create_collector(self, ctx: Context) -> Any:
        session = ctx.sess
        if len(session.collectors) >= MAX_VIEWS_PER_SESSION:
            raise vmodl.fault.NotSupported(
                msg=f"a session may hold at most {MAX_VIEWS_PER_SESSION} property collectors"
            )
        moid = f"session[{session.key[:8]}]propertyCollector-{next(self._collector_ids)}"
        coll = session.collectors[moid] = Collector(moid, session.key)
        self.collectors[moid] = coll
        return vmodl.query.PropertyCollector(moid)

    def destroy_collector(self, ctx: Context, moid: str) -> None:
        if moid == MOIDS["pc"]:
            raise vmodl.fault.NotSupported(msg="The service's property collector cannot be destroyed.")
        coll = ctx.sess.collectors.pop(moid, None)
        if coll is not None:
            self._drop_collector(coll)
            self.changed.notify_all()  # a wait on it ends with RequestCanceled

    def _drop_collector(self, coll: Collector) -> None:
        for moid in coll.filters:
            self.filters.pop(moid, None)
        self.collectors.pop(coll.moid, None)

    def _session_dropped(self, session: Session) -> None:
        """A session ended (logout, expiry, termination): its collectors, filters and views go."""
        for coll in session.collectors.values():
            self._drop_collector(coll)
        for moid in session.views:
            self.views.pop(moid, None)
        self.changed.notify_all()  # waits of this session end with RequestCanceled

    def session_from_cookie(self, cookie_header: str | None) -> Session | None:
        return self.session_store.from_cookie(cookie_header)

    def cookie_header(self, key: str) -> str:
        secure = "; Secure" if self.secure_cookie else ""
        return f'{COOKIE_NAME}="{key}"; Path=/; HttpOnly{secure}'

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
            ctx = Context(self.session_from_cookie(cookie), version)
            ctx.client = client  # the peer's address: login throttling counts per client
            self._local.ctx = ctx
            try:
                result = self._call(req, ctx)
                info = req.info
                payload = _codec.serialize_response(req.wsdl_name, info, result, version)
            except Exception as exc:  # every failure is answered, the server keeps serving
                fault = self.to_fault(exc, obj=req.this)
                return self._fault(req.wsdl_name, fault, version)
            finally:
                self._local.ctx = None
                self._call_cache.clear()  # memoised values never outlive the call
            self.calls[req.wsdl_name] = self.calls.get(req.wsdl_name, 0) + 1
            set_cookie = self.cookie_header(ctx.new_cookie) if ctx.new_cookie else None
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
            self.session_store.touch(ctx.session)
            ctx.session.last_active = self.now()
        impl = self.require(req.this)
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
