"""What a session makes and owns: property collectors, their filters, container views.

``SessionScoped`` (``Endpoint.scoped``) keeps them by managed object id, makes and destroys
them, and drops all of a session's when the session ends (logout, idle expiry,
``TerminateSession``): a real host's objects of this kind live in their session
(``session[<key>]propertyCollector-N``, ``session[<key>]view-N``) and another session can
neither see nor use them (``Registry.lookup`` checks the owner). A session may hold at most
``MAX_PER_SESSION`` collectors and as many views, so a leaking client gets a fault, not the
host's memory. The collector's engine (``_collector.py``) adds and removes the filters.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from ._collector import Collector, FilterState
from ._index import not_found
from .mo._base import MOIDS

if TYPE_CHECKING:
    from ._sessions import Session

__all__ = ["MAX_PER_SESSION", "SessionScoped", "View"]

#: most collectors, and most views, one session may hold
MAX_PER_SESSION = 1000


@dataclass
class View:
    """A ``ContainerView``: what it contains, of which types, and who made it."""

    moid: str
    session_key: str
    container: Any
    types: list[Any]
    recursive: bool


class SessionScoped:
    """The collectors, filters and views of every session, by managed object id."""

    def __init__(self, changed: threading.Condition, session_of: Callable[[str], Session | None]) -> None:
        #: notified when a collector or a session goes, so that a wait on it ends
        self.changed = changed
        self._session_of = session_of
        #: collectors made with CreatePropertyCollector (the service's own is static)
        self.collectors: dict[str, Collector] = {}
        self.filters: dict[str, FilterState] = {}
        self.views: dict[str, View] = {}
        self._collector_ids = itertools.count(1)
        self._view_ids = itertools.count(1)

    # views ----------------------------------------------------------------------------------
    def create_view(self, session: Session, container: Any, types: list[Any], recursive: bool) -> Any:
        if len(session.views) >= MAX_PER_SESSION:
            raise vmodl.fault.NotSupported(
                msg=f"a session may hold at most {MAX_PER_SESSION} views; destroy unused ones"
            )
        moid = f"session[{session.key[:8]}]view-{next(self._view_ids)}"
        view = View(moid, session.key, container, types, recursive)
        session.views[moid] = view
        self.views[moid] = view
        return vim.view.ContainerView(moid)

    def find_view(self, moid: str) -> View:
        try:
            return self.views[moid]
        except KeyError:
            raise not_found(vim.view.ContainerView(moid)) from None

    def destroy_view(self, moid: str) -> None:
        view = self.views.pop(moid, None)
        session = None if view is None else self._session_of(view.session_key)
        if session is not None:
            session.views.pop(moid, None)

    # collectors and filters -----------------------------------------------------------------
    def create_collector(self, session: Session) -> Any:
        if len(session.collectors) >= MAX_PER_SESSION:
            raise vmodl.fault.NotSupported(
                msg=f"a session may hold at most {MAX_PER_SESSION} property collectors"
            )
        moid = f"session[{session.key[:8]}]propertyCollector-{next(self._collector_ids)}"
        coll = session.collectors[moid] = Collector(moid, session.key)
        self.collectors[moid] = coll
        return vmodl.query.PropertyCollector(moid)

    def destroy_collector(self, session: Session, moid: str) -> None:
        if moid == MOIDS["pc"]:
            raise vmodl.fault.NotSupported(msg="The service's property collector cannot be destroyed.")
        coll = session.collectors.pop(moid, None)
        if coll is not None:
            self._drop_collector(coll)
            self.changed.notify_all()  # a wait on it ends with RequestCanceled

    def find_filter(self, moid: str) -> FilterState:
        try:
            return self.filters[moid]
        except KeyError:
            raise not_found(vmodl.query.PropertyCollector.Filter(moid)) from None

    def _drop_collector(self, coll: Collector) -> None:
        for moid in coll.filters:
            self.filters.pop(moid, None)
        self.collectors.pop(coll.moid, None)

    # the end of a session -------------------------------------------------------------------
    def session_dropped(self, session: Session) -> None:
        """A session ended: its collectors, filters and views go (``Sessions``' ``on_drop``)."""
        for coll in session.collectors.values():
            self._drop_collector(coll)
        for moid in session.views:
            self.views.pop(moid, None)
        self.changed.notify_all()  # waits of this session end with RequestCanceled
