"""The vSphere SOAP endpoint of the simulated ESX host (``vcbsim serve``).

``serve(backend)`` starts ``https://127.0.0.1:<port>/sdk`` for any object implementing
``HostBackend`` (``HostAdapter(Host.demo())`` serves the simulated host); real vSphere clients (pyVmomi, Ansible's VMware modules, govc) talk to it as
to an ESX host. pyVmomi's own type system, serializer and deserializer are the schema.

The same port serves the control API (``/vcbsim-api/``: reset, seed, VMs, guest files, fault
rules, trace, state; ``docs/control-api.md``), and ``ControlClient`` is its Python client.
"""

from ._backend import (
    ChangedAreas,
    DatastoreInfo,
    DiskInfo,
    DiskLayer,
    GuestBackend,
    GuestFile,
    GuestProcess,
    HostAbout,
    HostBackend,
    NicInfo,
    SnapshotInfo,
    VMFile,
    VMInfo,
)
from ._endpoint import COOKIE_NAME, Endpoint
from ._host_adapter import HostAdapter
from .control import ControlClient, ControlError
from .http._server import RunningServer, serve, service_versions_xml
from .wire._codec import DEFAULT_VERSION

__all__ = [
    "COOKIE_NAME",
    "DEFAULT_VERSION",
    "ChangedAreas",
    "ControlClient",
    "ControlError",
    "DatastoreInfo",
    "DiskInfo",
    "DiskLayer",
    "Endpoint",
    "GuestBackend",
    "GuestFile",
    "GuestProcess",
    "HostAbout",
    "HostAdapter",
    "HostBackend",
    "NicInfo",
    "RunningServer",
    "SnapshotInfo",
    "VMFile",
    "VMInfo",
    "serve",
    "service_versions_xml",
]
