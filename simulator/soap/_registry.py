"""Which managed object a reference names, what a host serves, and how an error reaches a client.

``Registry`` (``Endpoint.registry``) turns a ``ManagedObjectReference`` (or a bare id) into the
implementation that answers for it (``lookup``, ``require``), from current state only: the
fixed inventory (``mo.STATIC_TYPES``, less the managers the host's API version predates), the
calling session's own collectors, filters and views (``SessionScoped``), tasks, then the
inventory's datastores, networks, VMs and snapshots (``InventoryIndex``). A reference of the
right id but the wrong type is not found, as on a real host. ``service_content`` is what
``RetrieveServiceContent`` answers; ``to_fault`` turns any exception into the fault the
client receives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyVmomi import VmomiSupport, vim, vmodl

from .._errors import InvalidInputError, NotFoundError, StateError
from ._index import not_found
from .mo import (
    ALL_TYPES,
    MOIDS,
    STATIC_TYPES,
    ContainerViewImpl,
    DatastoreImpl,
    HttpNfcLeaseImpl,
    MOImpl,
    NetworkImpl,
    PropertyCollectorImpl,
    PropertyFilterImpl,
    SnapshotImpl,
    TaskImpl,
    VirtualMachineImpl,
)
from .wire import _codec

if TYPE_CHECKING:
    from ._endpoint import Context, Endpoint

__all__ = ["INTERNAL_ERROR", "Registry"]

#: the message of the fault a client gets for a defect of the endpoint (hostd's words for a
#: SystemError; what went wrong is in the log, not in the answer)
INTERNAL_ERROR = "A general system error occurred: internal error in the simulated host; see its log"
log = logging.getLogger(__name__)


class Registry:
    """Managed object references to implementations, for one endpoint."""

    def __init__(self, ep: Endpoint, current_context: Callable[[], Context | None]) -> None:
        #: the implementations hold the endpoint (their whole context)
        self.ep = ep
        self._current_context = current_context

    def has_type(self, impl: type[MOImpl]) -> bool:
        """Whether this host's API version has ``impl``'s managed type (a type the profile's API
        predates is not in its ServiceContent and not served)."""
        host_version = _codec.vim25_version(self.ep.host.profile.api_version)
        return bool(VmomiSupport.IsChildVersion(host_version, impl.vim_type._version))

    def service_content(self) -> Any:
        content = vim.ServiceInstanceContent(
            rootFolder=vim.Folder(MOIDS["root"]),
            propertyCollector=vmodl.query.PropertyCollector(MOIDS["pc"]),
            viewManager=vim.view.ViewManager(MOIDS["views"]),
            about=self.ep.inventory.about_info(),
            sessionManager=vim.SessionManager(MOIDS["session"]),
            searchIndex=vim.SearchIndex(MOIDS["search"]),
            taskManager=vim.TaskManager(MOIDS["taskmgr"]),
            guestOperationsManager=vim.vm.guest.GuestOperationsManager(MOIDS["guestops"]),
        )
        for impl in ALL_TYPES:  # the managers that declare their ServiceContent property
            if impl.content_property and impl.static_moids and self.has_type(impl):
                setattr(content, impl.content_property, impl.vim_type(impl.static_moids[0]))
        return content

    def lookup(self, ref: Any) -> MOImpl | None:
        """The implementation behind a managed object reference (or a bare id), or ``None``."""
        moid = ref if isinstance(ref, str) else ref._moId
        ep = self.ep
        scoped, inventory = ep.scoped, ep.inventory
        impl: MOImpl | None = None
        static = STATIC_TYPES.get(moid)
        if static is not None:
            if static.content_property is not None and not self.has_type(static):
                return None  # a manager this host's API predates
            impl = static(ep, moid)
        elif moid in scoped.collectors and self._mine(scoped.collectors[moid].session_key):
            impl = PropertyCollectorImpl(ep, moid)
        elif moid in scoped.filters and self._mine(scoped.filters[moid].session_key):
            impl = PropertyFilterImpl(ep, moid)
        elif moid in scoped.views and self._mine(scoped.views[moid].session_key):
            impl = ContainerViewImpl(ep, moid)
        elif ep.tasks.exists(moid):
            impl = TaskImpl(ep, moid)
        elif moid in ep.leases:
            impl = HttpNfcLeaseImpl(ep, moid)
        elif inventory.has_datastore(moid):
            impl = DatastoreImpl(ep, moid)
        elif inventory.has_network(moid):
            impl = NetworkImpl(ep, moid)
        elif inventory.has_vm(moid):
            impl = VirtualMachineImpl(ep, moid)
        elif inventory.snapshot_vm(moid) is not None:
            impl = SnapshotImpl(ep, moid)
        if impl is None:
            return None
        if not isinstance(ref, str) and not issubclass(impl.vim_type, type(ref)):
            return None  # right id, wrong type: not the object the caller means
        return impl

    def require(self, ref: Any) -> MOImpl:
        """``lookup``, or the ``ManagedObjectNotFound`` a host answers."""
        impl = self.lookup(ref)
        if impl is None:
            raise not_found(ref)
        return impl

    def _mine(self, session_key: str) -> bool:
        """Filters and views belong to the session that made them, as on a real host."""
        ctx = self._current_context()
        return ctx is None or (ctx.session is not None and ctx.session.key == session_key)

    @staticmethod
    def not_found(ref: Any) -> Exception:
        """The fault for a reference to an object the host does not have."""
        return not_found(ref)

    @staticmethod
    def to_fault(exc: BaseException, obj: Any = None) -> Any:
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
