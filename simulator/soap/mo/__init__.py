"""Managed objects of the simulated ESX host, one module per vSphere managed type (or family).

Each class implements one vSphere managed type. A property is a method ``p_<name>`` that
returns a pyVmomi value (or ``None`` when unset); a SOAP method is a method named exactly as
its WSDL operation (``CreateSnapshot_Task``) marked with ``@soap``; its keyword arguments are
the WSDL parameter names. ``docs/vsphere-coverage.md`` is generated from these marks.

Objects are cheap views: they hold the endpoint and a managed object id and ask the endpoint
(and through it the backend) for current state on every read.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._base import MOIDS, ManagedEntityImpl, MOImpl, soap
from ._datacenter import DatacenterImpl
from ._datastore import DatastoreBrowserImpl, DatastoreImpl
from ._folder import FolderImpl
from ._guest import GuestFileManagerImpl, GuestOperationsManagerImpl, GuestProcessManagerImpl
from ._hostsystem import ComputeResourceImpl, HostSystemImpl, ResourcePoolImpl
from ._network import NetworkImpl
from ._nfclease import HttpNfcLeaseImpl
from ._propertycollector import PropertyCollectorImpl, PropertyFilterImpl
from ._searchindex import SearchIndexImpl
from ._serviceinstance import ServiceInstanceImpl
from ._sessionmanager import SessionManagerImpl
from ._snapshot import SnapshotImpl
from ._task import TaskImpl, TaskManagerImpl
from ._view import ContainerViewImpl, ViewManagerImpl
from ._virtualmachine import VirtualMachineImpl

__all__ = [
    "HttpNfcLeaseImpl",
    "ALL_TYPES",
    "MOIDS",
    "STATIC_TYPES",
    "ComputeResourceImpl", "ContainerViewImpl", "DatacenterImpl", "DatastoreBrowserImpl", "DatastoreImpl", "FolderImpl", "GuestFileManagerImpl", "GuestOperationsManagerImpl", "GuestProcessManagerImpl", "HostSystemImpl", "MOImpl", "ManagedEntityImpl", "NetworkImpl", "PropertyCollectorImpl", "PropertyFilterImpl", "ResourcePoolImpl", "SearchIndexImpl", "ServiceInstanceImpl", "SessionManagerImpl", "SnapshotImpl", "TaskImpl", "TaskManagerImpl", "ViewManagerImpl", "VirtualMachineImpl", "soap",
]

#: Implementations of the fixed inventory, by managed object id.
STATIC_TYPES: dict[str, type[MOImpl]] = {
    MOIDS["si"]: ServiceInstanceImpl,
    MOIDS["session"]: SessionManagerImpl,
    MOIDS["pc"]: PropertyCollectorImpl,
    MOIDS["views"]: ViewManagerImpl,
    MOIDS["search"]: SearchIndexImpl,
    MOIDS["taskmgr"]: TaskManagerImpl,
    MOIDS["root"]: FolderImpl,
    MOIDS["vmfolder"]: FolderImpl,
    MOIDS["hostfolder"]: FolderImpl,
    MOIDS["dsfolder"]: FolderImpl,
    MOIDS["netfolder"]: FolderImpl,
    MOIDS["dc"]: DatacenterImpl,
    MOIDS["compute"]: ComputeResourceImpl,
    MOIDS["host"]: HostSystemImpl,
    MOIDS["pool"]: ResourcePoolImpl,
    MOIDS["browser"]: DatastoreBrowserImpl,
    MOIDS["guestops"]: GuestOperationsManagerImpl,
    MOIDS["guestfiles"]: GuestFileManagerImpl,
    MOIDS["guestprocs"]: GuestProcessManagerImpl,
}

ALL_TYPES: list[type[MOImpl]] = [
    ServiceInstanceImpl,
    SessionManagerImpl,
    PropertyCollectorImpl,
    PropertyFilterImpl,
    ViewManagerImpl,
    ContainerViewImpl,
    SearchIndexImpl,
    TaskManagerImpl,
    TaskImpl,
    DatastoreBrowserImpl,
    GuestOperationsManagerImpl,
    GuestFileManagerImpl,
    GuestProcessManagerImpl,
    FolderImpl,
    DatacenterImpl,
    ComputeResourceImpl,
    HostSystemImpl,
    ResourcePoolImpl,
    DatastoreImpl,
    NetworkImpl,
    VirtualMachineImpl,
    SnapshotImpl,
    HttpNfcLeaseImpl,
]


def _register_declared() -> None:
    """Import every module of this package and add the classes that declare ``static_moids``
    (a new managed type is one new module: nothing to list here)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    for cls in MOImpl.registry:
        if cls not in ALL_TYPES:
            ALL_TYPES.append(cls)
        for moid in cls.static_moids:
            STATIC_TYPES.setdefault(moid, cls)


_register_declared()
