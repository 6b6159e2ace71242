"""The property collector: traversal, retrieval with paging, filters and update waits.

Semantics follow the vSphere API reference: an ``ObjectSpec`` names a start object (reported
unless ``skip``); ``TraversalSpec``s follow a property (``childEntity``, ``view`` ...) from
objects of their ``type``, recursively through their ``selectSet`` (a bare ``SelectionSpec``
refers to a named ``TraversalSpec``); an object is reported only when a ``PropertySpec`` names
its type or a base type. Unset properties are left out; an unknown property raises
``InvalidProperty``.

Updates: each filter remembers what it last reported (serialized values, so any change to a
nested data object shows); ``WaitForUpdatesEx`` reports the difference as ``enter`` /
``modify`` / ``leave`` object updates and waits on the endpoint's condition until something
changes, the wait times out, the session cancels it, or the server stops.
"""

from __future__ import annotations

import functools
import gc
import itertools
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pyVmomi import VmomiSupport, vmodl

from .wire._anytype import typed_as
from .wire._codec import comparable
from .wire._dataobj import make

if TYPE_CHECKING:
    from ._endpoint import Context, Endpoint, Session
    from .mo import MOImpl

__all__ = [
    "Collector",
    "FilterState",
    "cancel_retrieve",
    "cancel_wait",
    "continue_retrieve",
    "create_filter",
    "destroy_filter",
    "resolve_path",
    "retrieve",
    "retrieve_ex",
    "wait_for_updates",
]

PC = vmodl.query.PropertyCollector
_T = TypeVar("_T")
#: the collector's data object types, looked up once (a nested pyVmomi type is found through
#: its lazy parent on every access: some 7 µs, a tenth of a small read)
_TRAVERSAL_SPEC: Any = PC.TraversalSpec
_OBJECT_CONTENT: Any = PC.ObjectContent
_RETRIEVE_RESULT: Any = PC.RetrieveResult
_FILTER: Any = PC.Filter
_CHANGE: Any = PC.Change
_OBJECT_UPDATE: Any = PC.ObjectUpdate
_FILTER_UPDATE: Any = PC.FilterUpdate
_UPDATE_SET: Any = PC.UpdateSet
_DYNAMIC_PROPERTY: Any = vmodl.DynamicProperty
#: Objects per page when ``RetrieveOptions.maxObjects`` is not given: ``None``, every object
#: in one answer. The vSphere API reference (``RetrieveOptions.maxObjects``, since 4.1): "An
#: unset value indicates that there is no maximum. In this case PropertyCollector policy may
#: still limit the number of objects"; govmomi's vcsim (0.24, ``simulator/
#: property_collector.go``) answers everything at once, and no source says that a standalone
#: ESX host's policy pages. vCenter's does, at 100 objects (ManageIQ pull request 8211, 2016:
#: "RetrievePropertiesEx is truncating the RetrieveResult if there are more than 100 entries";
#: vsphere-automation-sdk-java issue 217, vSphere 8: 100 objects and a token): set this
#: switch to 100 to serve as vCenter pages, which a client that ignores the token gets wrong.
DEFAULT_PAGE: int | None = None
#: Most filters one session may hold (a leak in a client shows up as a fault, not as memory).
MAX_FILTERS_PER_SESSION = 1000
_filter_ids = itertools.count(1)


@dataclass
class FilterState:
    moid: str
    session_key: str
    collector: str
    spec: Any
    partial: bool
    #: moid -> (object reference, {path: serialized value})
    reported: dict[str, tuple[Any, dict[str, str]]] = field(default_factory=dict)


@dataclass
class Collector:
    """One property collector of one session: its filters and its update version.

    Every session has its own state for the service's collector (``ha-property-collector``);
    ``CreatePropertyCollector`` adds more (govmomi waits on a collector of its own).
    """

    moid: str
    session_key: str
    filters: dict[str, FilterState] = field(default_factory=dict)
    version: int = 0
    #: a ``CancelWaitForUpdates`` not yet consumed: it ends the wait in progress or, if none
    #: is, the next one (vSphere API reference, ``PropertyCollector.CancelWaitForUpdates``:
    #: "If a call to WaitForUpdates is not outstanding, the next call to WaitForUpdates will
    #: be canceled"); the wait that raises ``RequestCanceled`` clears it
    cancel_wait: bool = False


def _invalid(path: str) -> Exception:
    return vmodl.query.InvalidProperty(msg=f"invalid property path {path!r}", name=path)


@functools.cache
def declared_type(vim_type: Any, name: str) -> Any:
    """The declared type of managed property ``name`` of ``vim_type``, read from pyVmomi's type
    definitions rather than from its ``PropertyInfo``.

    Why: pyVmomi's client, reading a property with ``Fetch``, replaces ``info.type`` in place
    for "legacy behaviour" (every reference-array property becomes ``ManagedObject[]``), so in
    a process that also runs a pyVmomi client (a test suite, a notebook) the shared
    ``PropertyInfo`` no longer says ``Datastore[]``; the definitions it was made from stay."""
    for cls in vim_type.__mro__:
        try:
            definition = VmomiSupport._managedDefMap.get(VmomiSupport.GetVmodlName(cls))
        except (KeyError, AttributeError, TypeError):
            definition = None
        if not definition:
            continue
        for prop in definition[4]:
            if prop[0] == name:
                return VmomiSupport.GetVmodlType(prop[1])
    return vim_type._GetPropertyInfo(name).type



@functools.cache
def _declared_path_type(vim_type: Any, path: str) -> Any:
    """The declared type at a dotted path whose every step is a declared data object property
    (the paths ``MOImpl`` answers with ``pp_`` getters)."""
    top, *rest = path.split(".")
    declared = declared_type(vim_type, top)
    for part in rest:
        declared = declared._GetPropertyInfo(part).type
    return declared


def resolve_path(impl: MOImpl, path: str, *, shortcuts: bool = True) -> Any:
    """The value at a dotted property path (``summary.runtime.powerState``), or ``None``.

    A path the object answers itself (a ``pp_<path with _ for .>`` getter: ``config.name``
    without building the whole ``config``) is read from that getter; the answer is the same
    value (``test_subpaths.py`` holds every getter equal to the full walk)."""
    if not path or "[" in path:
        raise _invalid(path)
    top, *rest = path.split(".")
    if rest and shortcuts:
        getter = getattr(impl, "pp_" + path.replace(".", "_"), None)
        if getter is not None:
            return _finish(getter(), _declared_path_type(impl.vim_type, path), rest=True)
    value = impl.get(top)
    declared = declared_type(impl.vim_type, top)
    for part in rest:
        if isinstance(declared, type) and issubclass(declared, list):
            raise _invalid(path)
        owner = type(value) if value is not None else declared
        if not (isinstance(owner, type) and issubclass(owner, VmomiSupport.DataObject)):
            raise _invalid(path)
        try:
            info = owner._GetPropertyInfo(part)
        except AttributeError:
            if value is None:
                return None  # a subtype might have it; unset either way
            raise _invalid(path) from None
        declared = info.type
        value = getattr(value, part) if value is not None else None
    return _finish(value, declared, rest=bool(rest))


def _finish(value: Any, declared: Any, *, rest: bool) -> Any:
    """A value as the collector answers it: an empty list below the top level is unset; any
    other value goes into an anyType position (DynamicProperty.val, a Fetch result), so it
    carries the declared type, which is all a client has to read it by (arrays as their
    declared array type, ``long``, enums: ``wire/_anytype.typed_as``)."""
    if isinstance(value, list) and not value and rest:
        return None
    return typed_as(value, declared)


def _named_specs(specs: Iterable[Any]) -> dict[str, Any]:
    named: dict[str, Any] = {}
    stack = list(specs)
    seen: set[int] = set()
    while stack:
        s = stack.pop()
        if id(s) in seen:
            continue
        seen.add(id(s))
        if isinstance(s, _TRAVERSAL_SPEC):
            if s.name:
                named[s.name] = s
            stack.extend(s.selectSet or [])
    return named


def collect_objects(ep: Endpoint, spec: Any, *, missing_ok: bool = False) -> list[MOImpl]:
    """The objects a filter spec reaches, in traversal order, each once."""
    named = _named_specs(s for o in spec.objectSet for s in (o.selectSet or []))
    found: dict[str, MOImpl] = {}
    visited: set[tuple[str, int]] = set()
    for ospec in spec.objectSet:
        impl = ep.registry.lookup(ospec.obj)
        if impl is None:
            if missing_ok:
                continue
            raise vmodl.fault.ManagedObjectNotFound(
                msg=f"The object '{ospec.obj._moId}' has already been deleted or has not been completely created",
                obj=ospec.obj,
            )
        if not ospec.skip:
            found.setdefault(impl.moid, impl)
        _visit(ep, named, found, visited, impl, ospec.selectSet or [])
    return list(found.values())


def _visit(
    ep: Endpoint,
    named: dict[str, Any],
    found: dict[str, MOImpl],
    visited: set[tuple[str, int]],
    impl: MOImpl,
    selections: Iterable[Any],
) -> None:
    """Follow ``selections`` from ``impl`` (depth first), adding what they reach to ``found``.

    A module function, not a closure that calls itself: such a closure is a reference cycle
    (the function, its cell, the function) that kept every object a read reached alive until
    the cyclic collector ran, 2,100 objects per read of 1,050 VMs (issue 18)."""
    for sel in selections:
        ts = sel if isinstance(sel, _TRAVERSAL_SPEC) else named.get(sel.name)
        if ts is None:
            raise vmodl.fault.InvalidArgument(
                msg=f"selection spec {sel.name!r} names no traversal spec",
                invalidProperty="selectSet",
            )
        if ts.type is None or not issubclass(impl.vim_type, ts.type):
            continue
        key = (impl.moid, id(ts))
        if key in visited:
            continue
        visited.add(key)
        value = resolve_path(impl, ts.path)
        targets = value if isinstance(value, list) else ([value] if value is not None else [])
        for target in targets:
            if not isinstance(target, VmomiSupport.ManagedObject):
                continue
            timpl = ep.registry.lookup(target)
            if timpl is None:
                continue
            if not ts.skip:
                found.setdefault(timpl.moid, timpl)
            _visit(ep, named, found, visited, timpl, ts.selectSet or [])


def _paths(impl: MOImpl, prop_specs: Iterable[Any]) -> list[str] | None:
    """Paths to report for ``impl`` or ``None`` if no property spec names its type."""
    matched = False
    paths: dict[str, None] = {}
    for ps in prop_specs:
        if ps.type is None or not issubclass(impl.vim_type, ps.type):
            continue
        matched = True
        if ps.all:
            ctx = impl.ep.current_context()
            for name in impl.property_names(ctx.version if ctx is not None else None):
                paths.setdefault(name)
        for p in ps.pathSet or []:
            paths.setdefault(p)
    return list(paths) if matched else None


def object_values(impl: MOImpl, prop_specs: Iterable[Any]) -> dict[str, Any] | None:
    paths = _paths(impl, prop_specs)
    if paths is None:
        return None
    values: dict[str, Any] = {}
    for path in paths:
        value = resolve_path(impl, path)
        if value is not None:
            values[path] = value
    return values


def _collection_paused(build: Callable[..., _T], *args: Any) -> _T:
    """``build(*args)`` with the cyclic garbage collector paused.

    Why: an answer's objects (one ``ObjectContent`` and its ``DynamicProperty`` values per
    object, device lists built for the first time) are acyclic and all live until the answer
    is written, so a collection their allocation triggers frees none of them, but each full
    one walks every object of the inventory: half the server CPU of a first read of 5,000 VMs'
    devices (``benchmarks/bench_inventory.py``). Reference counting still frees everything as
    usual; a cycle made meanwhile waits for the next collection. Calls run one at a time under
    the endpoint lock, and a collector the process had turned off stays off."""
    if not gc.isenabled():
        return build(*args)
    gc.disable()
    try:
        return build(*args)
    finally:
        gc.enable()


def _contents(ep: Endpoint, specs: Iterable[Any]) -> list[Any]:
    return _collection_paused(_contents_now, ep, specs)


def _contents_now(ep: Endpoint, specs: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for spec in specs:
        missing_ok = bool(spec.reportMissingObjectsInResults)
        for impl in collect_objects(ep, spec, missing_ok=missing_ok):
            try:
                values = object_values(impl, spec.propSet)
            except vmodl.fault.ManagedObjectNotFound:
                continue  # gone while we looked (a snapshot removed by a task)
            if values is None:
                continue
            out.append(
                make(
                    _OBJECT_CONTENT,
                    obj=impl.ref,
                    propSet=[make(_DYNAMIC_PROPERTY, name=k, val=v) for k, v in values.items()],
                )
            )
    return out


def retrieve(ep: Endpoint, specs: list[Any]) -> list[Any]:
    return _contents(ep, specs)


def _page(session: Session, objects: list[Any], size: int) -> Any:
    if not objects:
        return None
    size = max(1, size)
    head, rest = objects[:size], objects[size:]
    token = None
    if rest:
        token = uuid.uuid4().hex
        session.retrieve_tokens[token] = (rest, size)
    return make(_RETRIEVE_RESULT, token=token, objects=head)


def retrieve_ex(ep: Endpoint, session: Session, specs: list[Any], options: Any) -> Any:
    asked = options.maxObjects if options is not None else None
    if asked is not None and asked <= 0:
        # "A value less than or equal to 0 is illegal" (RetrieveOptions.maxObjects)
        raise vmodl.fault.InvalidArgument(msg=f"maxObjects must be positive, not {asked}", invalidProperty="maxObjects")
    size = asked if asked is not None else DEFAULT_PAGE
    if DEFAULT_PAGE is not None and size is not None:
        size = min(size, DEFAULT_PAGE)  # "policy may still limit the count to something less"
    objects = _contents(ep, specs)
    return _page(session, objects, len(objects) if size is None else size)


def continue_retrieve(session: Session, token: str) -> Any:
    entry = session.retrieve_tokens.pop(token, None)
    if entry is None:
        raise vmodl.fault.InvalidArgument(msg=f"unknown or used token {token!r}", invalidProperty="token")
    rest, size = entry
    return _page(session, rest, size)


def cancel_retrieve(session: Session, token: str) -> None:
    if session.retrieve_tokens.pop(token, None) is None:
        raise vmodl.fault.InvalidArgument(msg=f"unknown or used token {token!r}", invalidProperty="token")


# ---------------------------------------------------------------------------------------
# filters and updates
# ---------------------------------------------------------------------------------------


def create_filter(ep: Endpoint, session: Session, coll: Collector, spec: Any, partial: bool) -> Any:
    if sum(len(c.filters) for c in session.collectors.values()) >= MAX_FILTERS_PER_SESSION:
        raise vmodl.fault.NotSupported(
            msg=f"a session may hold at most {MAX_FILTERS_PER_SESSION} property filters; destroy unused ones"
        )
    # validate now, as a real host does: unknown objects and properties fail CreateFilter
    for impl in collect_objects(ep, spec):
        object_values(impl, spec.propSet)
    moid = f"session[{session.key[:8]}]filter-{next(_filter_ids)}"
    state = FilterState(moid, session.key, coll.moid, spec, bool(partial))
    coll.filters[moid] = state
    ep.scoped.filters[moid] = state
    return _FILTER(moid)


def destroy_filter(ep: Endpoint, moid: str) -> None:
    state = ep.scoped.filters.pop(moid, None)
    if state is not None:
        sess = ep.sessions.get(state.session_key)
        coll = sess.collectors.get(state.collector) if sess is not None else None
        if coll is not None:
            coll.filters.pop(moid, None)


def _current(ep: Endpoint, f: FilterState, version: str) -> dict[str, tuple[Any, dict[str, tuple[str, Any]]]]:
    return _collection_paused(_current_now, ep, f, version)


def _current_now(ep: Endpoint, f: FilterState, version: str) -> dict[str, tuple[Any, dict[str, tuple[str, Any]]]]:
    state: dict[str, tuple[Any, dict[str, tuple[str, Any]]]] = {}
    for impl in collect_objects(ep, f.spec, missing_ok=True):
        try:
            values = object_values(impl, f.spec.propSet)
        except vmodl.fault.ManagedObjectNotFound:
            continue
        if values is None:
            continue
        state[impl.moid] = (
            impl.ref,
            {k: (comparable(v, version), v) for k, v in values.items()},
        )
    return state


def _diff(ep: Endpoint, f: FilterState, version: str) -> Any:
    current = _current(ep, f, version)
    updates = []
    for moid, (ref, values) in current.items():
        old = f.reported.get(moid)
        if old is None:
            changes = [make(_CHANGE, name=k, op="assign", val=v) for k, (_, v) in values.items()]
            updates.append(make(_OBJECT_UPDATE, kind="enter", obj=ref, changeSet=changes))
            continue
        changes = [
            make(_CHANGE, name=k, op="assign", val=v)
            for k, (ser, v) in values.items()
            if old[1].get(k) != ser
        ]
        changes.extend(make(_CHANGE, name=k, op="assign") for k in old[1] if k not in values)
        if changes:
            updates.append(make(_OBJECT_UPDATE, kind="modify", obj=ref, changeSet=changes))
    for moid, (ref, _) in f.reported.items():
        if moid not in current:
            updates.append(make(_OBJECT_UPDATE, kind="leave", obj=ref))
    f.reported = {m: (ref, {k: ser for k, (ser, _) in vals.items()}) for m, (ref, vals) in current.items()}
    if not updates:
        return None
    return make(_FILTER_UPDATE, filter=_FILTER(f.moid), objectSet=updates)


def wait_for_updates(ep: Endpoint, ctx: Context, coll: Collector, version: str | None, max_wait: int | None) -> Any:
    """Called with the endpoint lock held; waits on ``ep.changed`` (which releases it)."""
    session = ctx.sess
    if not version:
        for f in coll.filters.values():
            f.reported = {}
    elif not version.isdigit() or int(version) > coll.version:
        # an older version we issued is fine: another waiter of this session (pyVim's
        # WaitForTask shares the collector) may have moved on; changes since then that it
        # already reported are not repeated, as with one collector on a real host
        raise vmodl.query.InvalidCollectorVersion(
            msg=f"unknown collector version {version!r}; start again with an empty version"
        )
    deadline = None if max_wait is None else time.monotonic() + max(0, max_wait)
    while True:
        ep.begin_call()  # the lock was released while waiting: state may have changed
        # a cancel is looked at first: one that came before this wait started cancels it
        # (it is not lost, whatever the order the two calls were scheduled in)
        gone = session.key not in ep.sessions or session.collectors.get(coll.moid) is not coll
        if coll.cancel_wait or ep.stopping or gone:
            coll.cancel_wait = False
            raise vmodl.fault.RequestCanceled(msg="The wait for updates was cancelled.")
        filter_updates = [
            u for u in (_diff(ep, f, ctx.version) for f in list(coll.filters.values())) if u is not None
        ]
        if filter_updates:
            coll.version += 1
            return make(_UPDATE_SET, version=str(coll.version), filterSet=filter_updates)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ep.changed.wait(min(left, 5.0))
        else:
            ep.changed.wait(5.0)


def cancel_wait(ep: Endpoint, coll: Collector) -> None:
    coll.cancel_wait = True
    ep.changed.notify_all()
