"""Managed objects of the simulated ESX host: properties (``p_<name>``) and methods.

Each class implements one vSphere managed type. A property is a method ``p_<name>`` that
returns a pyVmomi value (or ``None`` when unset); a SOAP method is a method named exactly as
its WSDL operation (``CreateSnapshot_Task``) marked with ``@soap``; its keyword arguments are
the WSDL parameter names. ``docs/vsphere-coverage.md`` is generated from these marks.

Objects are cheap views: they hold the endpoint and a managed object id and ask the endpoint
(and through it the backend) for current state on every read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pyVmomi import VmomiSupport, vim, vmodl

from .. import _collector
from ..wire._anytype import typed_as

if TYPE_CHECKING:
    from .._endpoint import Endpoint

__all__ = ["MOIDS", "ManagedEntityImpl", "MOImpl", "soap"]

F = TypeVar("F", bound=Callable[..., Any])


def soap(fn: F) -> F:
    """Mark a method as the implementation of the SOAP operation of the same name."""
    fn._soap = True  # type: ignore[attr-defined]
    return fn


#: Managed object ids of the fixed inventory, as a standalone ESX host names them.
MOIDS = {
    "si": "ServiceInstance",
    "session": "ha-sessionmgr",
    "pc": "ha-property-collector",
    "views": "ViewManager",
    "search": "ha-searchindex",
    "taskmgr": "ha-taskmgr",
    "root": "ha-folder-root",
    "dc": "ha-datacenter",
    "vmfolder": "ha-folder-vm",
    "hostfolder": "ha-folder-host",
    "dsfolder": "ha-folder-datastore",
    "netfolder": "ha-folder-network",
    "compute": "ha-compute-res",
    "host": "ha-host",
    "pool": "ha-root-pool",
    "browser": "ha-host-datastorebrowser",
    "guestops": "ha-guest-operations-manager",
    "guestfiles": "ha-guest-operations-file-manager",
    "guestprocs": "ha-guest-operations-process-manager",
}


class MOImpl:
    vim_type: ClassVar[Any] = VmomiSupport.ManagedObject
    #: managed object ids this class serves in every host's fixed inventory (a class that
    #: declares them is found and registered without being listed anywhere: ``mo/__init__.py``)
    static_moids: ClassVar[tuple[str, ...]] = ()
    #: the ``ServiceContent`` property that names it (``fileManager``); set, and the object
    #: served, only on hosts whose API version has the type (the profile's ``api_version``)
    content_property: ClassVar[str | None] = None
    #: every class with ``static_moids``, in definition order
    registry: ClassVar[list[type[MOImpl]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("static_moids"):
            MOImpl.registry.append(cls)

    def __init__(self, ep: Endpoint, moid: str) -> None:
        self.ep = ep
        self.moid = moid
        # an implementation object lives for one call (under the endpoint lock): values read
        # for several paths of one object (config.name, config.uuid) are built once
        self._memo: dict[str, Any] = {}

    @property
    def ref(self) -> Any:
        return self.vim_type(self.moid)

    @classmethod
    def property_names(cls, version: str | None = None) -> list[str]:
        """Properties of the vSphere type that this class implements (those that exist in API
        ``version``, when given: a host answers an older client with that version's properties
        only, whose types the client knows)."""
        valid = {
            p.name for p in cls.vim_type._GetPropertyList()
            if version is None or VmomiSupport.IsChildVersion(version, p.version)
        }
        return [n[2:] for n in dir(cls) if n.startswith("p_") and n[2:] in valid]

    @classmethod
    def soap_methods(cls) -> list[str]:
        return sorted(n for n in dir(cls) if getattr(getattr(cls, n, None), "_soap", False))

    def get(self, name: str) -> Any:
        """A top-level property, typed; ``None`` when unset; ``InvalidProperty`` if unknown."""
        try:
            self.vim_type._GetPropertyInfo(name)  # InvalidProperty for a name the type lacks
        except AttributeError:
            raise vmodl.query.InvalidProperty(msg=f"invalid property {name!r}", name=name) from None
        if name in self._memo:
            return self._memo[name]
        getter = getattr(self, "p_" + name, None)
        value = None if getter is None else typed_as(getter(), _collector.declared_type(self.vim_type, name))
        self._memo[name] = value
        return value


class ManagedEntityImpl(MOImpl):
    vim_type = vim.ManagedEntity
    entity_name: str = ""
    parent_id: str | None = None
    parent_type: Any = vim.Folder

    def p_name(self) -> str:
        return self.entity_name

    def p_parent(self) -> Any:
        return self.parent_type(self.parent_id) if self.parent_id else None

    def p_overallStatus(self) -> str:  # noqa: N802
        return "green"

    def p_configStatus(self) -> str:  # noqa: N802
        return "green"

    def p_alarmActionsEnabled(self) -> bool:  # noqa: N802
        return True

    def p_declaredAlarmState(self) -> list[Any]:  # noqa: N802
        return []

    def p_triggeredAlarmState(self) -> list[Any]:  # noqa: N802
        return []

    def p_disabledMethod(self) -> list[Any]:  # noqa: N802
        return []

    def p_customValue(self) -> list[Any]:  # noqa: N802
        return []

    def p_tag(self) -> list[Any]:
        return []

    def p_recentTask(self) -> list[Any]:  # noqa: N802
        return self.ep.tasks.recent(entity=self.moid)

    def children(self) -> list[Any]:
        """Children in the inventory (for container views and inventory paths)."""
        return []


# --------------------------------------------------------------------------------------
# service objects
# --------------------------------------------------------------------------------------
