"""The vSphere SOAP endpoint of the simulated ESX host (``vcbsim serve``).

``serve(backend)`` starts ``https://127.0.0.1:<port>/sdk`` for any object implementing
``HostBackend`` (``HostAdapter(Host.demo())`` serves the simulated host); real vSphere clients (pyVmomi, Ansible's VMware modules, govc) talk to it as
to an ESX host. pyVmomi's own type system, serializer and deserializer are the schema.

The same port serves the control API (``/vcbsim-api/``: reset, seed, VMs, guest files, fault
rules, trace, state; ``docs/control-api.md``), and ``ControlClient`` is its Python client.
"""

from .._compat import deprecated_names
from ._backend import (
    ChangedAreas,
    DatastoreInfo,
    DiskLayer,
    GuestBackend,
    GuestProcess,
    HostAbout,
    HostBackend,
    NicInfo,
    VMFile,
)
from ._backend import DiskInfo as BackendDiskInfo
from ._backend import GuestFile as BackendGuestFile
from ._backend import SnapshotInfo as BackendSnapshotInfo
from ._backend import VMInfo as BackendVMInfo
from ._endpoint import COOKIE_NAME, Endpoint
from ._host_adapter import HostAdapter
from .control import ControlClient, ControlError
from .http._server import RunningServer, serve, service_versions_xml
from .wire._codec import DEFAULT_VERSION

__all__ = [
    "COOKIE_NAME",
    "DEFAULT_VERSION",
    "BackendDiskInfo",
    "BackendGuestFile",
    "BackendSnapshotInfo",
    "BackendVMInfo",
    "ChangedAreas",
    "ControlClient",
    "ControlError",
    "DatastoreInfo",
    "DiskLayer",
    "Endpoint",
    "GuestBackend",
    "GuestProcess",
    "HostAbout",
    "HostAdapter",
    "HostBackend",
    "NicInfo",
    "RunningServer",
    "VMFile",
    "serve",
    "service_versions_xml",
]

# One name per concept: VMInfo, SnapshotInfo, DiskInfo and GuestFile are the host-client
# seam's records (vcbsim.reference); the backend's records are Backend*. Old names: one release.
__getattr__ = deprecated_names(__name__, {
    "VMInfo": ("BackendVMInfo", BackendVMInfo),
    "SnapshotInfo": ("BackendSnapshotInfo", BackendSnapshotInfo),
    "DiskInfo": ("BackendDiskInfo", BackendDiskInfo),
    "GuestFile": ("BackendGuestFile", BackendGuestFile),
})
