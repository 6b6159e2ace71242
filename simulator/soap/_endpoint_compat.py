"""Deprecated: the endpoint's former method names, each a one-line delegate to its new home.

The endpoint was one 40-method object; its concerns now live in ``registry``, ``inventory``,
``sessions``, ``auth`` and ``scoped`` (``_endpoint.py`` says which is which). These names keep
code written against the old surface working while it is ported (``ep.host_vm(m)`` is
``ep.inventory.host_vm(m)``); nothing in the package calls them, and a test pins that
(``tests/unit/soap/test_endpoint_parts.py``). New code uses the parts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._auth import Auth
    from ._collector import Collector, FilterState
    from ._endpoint import Context
    from ._index import InventoryIndex
    from ._registry import Registry
    from ._scoped import SessionScoped, View
    from ._sessions import Session, Sessions, Transfer
    from ._throttle import LoginThrottle
    from .mo import MOImpl
    from .mo._hostview import DatastoreInfo, HostAbout
    from .mo._vmview import SnapshotView, VMView

__all__ = ["DEPRECATED_NAMES", "EndpointCompat"]


class EndpointCompat:
    """The old names of ``Endpoint`` (a mixin: see the module docstring)."""

    registry: Registry
    inventory: InventoryIndex
    sessions: Sessions
    auth: Auth
    scoped: SessionScoped

    # registry
    def lookup(self, ref: Any) -> MOImpl | None:
        return self.registry.lookup(ref)

    def require(self, ref: Any) -> MOImpl:
        return self.registry.require(ref)

    def to_fault(self, exc: BaseException, obj: Any = None) -> Any:
        return self.registry.to_fault(exc, obj)

    @staticmethod
    def _not_found(ref: Any) -> Exception:
        from ._index import not_found

        return not_found(ref)

    def has_type(self, impl: type[MOImpl]) -> bool:
        return self.registry.has_type(impl)

    def service_content(self) -> Any:
        return self.registry.service_content()

    # inventory
    def about(self) -> HostAbout:
        return self.inventory.about()

    def about_info(self) -> Any:
        return self.inventory.about_info()

    def datastore_list(self) -> list[tuple[str, DatastoreInfo]]:
        return self.inventory.datastore_list()

    def datastore_refs(self) -> dict[str, Any]:
        return self.inventory.datastore_refs()

    def datastore_ref(self, name: str) -> Any:
        return self.inventory.datastore_ref(name)

    def datastore_info(self, moid: str) -> DatastoreInfo:
        return self.inventory.datastore_info(moid)

    def network_list(self) -> list[tuple[str, str]]:
        return self.inventory.network_list()

    def network_refs(self) -> dict[str, Any]:
        return self.inventory.network_refs()

    def network_ref(self, name: str) -> Any:
        return self.inventory.network_ref(name)

    def network_name(self, moid: str) -> str:
        return self.inventory.network_name(moid)

    def host_vm(self, moid: str) -> Any:
        return self.inventory.host_vm(moid)

    def vm_name(self, moid: str) -> str:
        return self.inventory.vm_name(moid)

    def vm_view(self, moid: str) -> VMView:
        return self.inventory.vm_view(moid)

    def find_snapshot(self, moid: str) -> tuple[VMView, SnapshotView] | None:
        return self.inventory.find_snapshot(moid)

    def snapshot_vm(self, moid: str) -> str | None:
        return self.inventory.snapshot_vm(moid)

    def note_snapshot(self, snapshot: str, vm: str) -> None:
        self.inventory.note_snapshot(snapshot, vm)

    def forget_snapshots(self, vm: str, snapshot: str | None = None) -> None:
        self.inventory.forget_snapshots(vm, snapshot)

    @property
    def _snapshot_owner(self) -> dict[str, str]:
        return self.inventory.snapshot_owner

    # sessions and auth
    @property
    def session_store(self) -> Sessions:
        return self.sessions

    @property
    def transfers(self) -> dict[str, Transfer]:
        return self.sessions.transfers

    @property
    def login_throttle(self) -> LoginThrottle:
        return self.auth.throttle

    @property
    def user(self) -> str:
        return self.auth.user

    @property
    def password(self) -> str:
        return self.auth.password

    def session_from_cookie(self, cookie_header: str | None) -> Session | None:
        return self.sessions.from_cookie(cookie_header)

    def live_session(self, key: str) -> Session | None:
        return self.sessions.live(key)

    def drop_session(self, key: str) -> None:
        self.sessions.drop(key)

    def take_transfer(self, token: str, kind: str) -> Transfer | None:
        return self.sessions.take_transfer(token, kind)

    def login(self, ctx: Context, user: str, password: str, locale: str | None) -> Any:
        return self.auth.login(ctx, user, password, locale)

    def acquire_clone_ticket(self, ctx: Context) -> str:
        return self.auth.acquire_clone_ticket(ctx)

    def clone_session(self, ctx: Context, ticket: str) -> Any:
        return self.auth.clone_session(ctx, ticket)

    def logout(self, ctx: Context) -> None:
        self.auth.logout(ctx)

    def cookie_header(self, key: str) -> str:
        return self.auth.cookie_header(key)

    def create_transfer(
        self, kind: str, vm: str, user: str, password: str, path: str, overwrite: bool, size: int
    ) -> str:
        return self.auth.create_transfer(kind, vm, user, password, path, overwrite, size)

    # what sessions make
    @property
    def filters(self) -> dict[str, FilterState]:
        return self.scoped.filters

    @property
    def views(self) -> dict[str, View]:
        return self.scoped.views

    @property
    def collectors(self) -> dict[str, Collector]:
        return self.scoped.collectors

    def find_filter(self, moid: str) -> FilterState:
        return self.scoped.find_filter(moid)

    def find_view(self, moid: str) -> View:
        return self.scoped.find_view(moid)

    def create_view(self, ctx: Context, container: Any, types: list[Any], recursive: bool) -> Any:
        return self.scoped.create_view(ctx.sess, container, types, recursive)

    def destroy_view(self, moid: str) -> None:
        self.scoped.destroy_view(moid)

    def create_collector(self, ctx: Context) -> Any:
        return self.scoped.create_collector(ctx.sess)

    def destroy_collector(self, ctx: Context, moid: str) -> None:
        self.scoped.destroy_collector(ctx.sess, moid)


#: every deprecated name (the test checks none is used inside the package)
DEPRECATED_NAMES = frozenset(n for n in vars(EndpointCompat) if not n.startswith("__"))
