"""The vSphere SOAP endpoint of the simulated ESX host (``vcbsim serve``).

``serve(host)`` starts ``https://127.0.0.1:<port>/sdk`` for a simulated ``Host``
(``serve(Host.demo())``); real vSphere clients (pyVmomi, Ansible's VMware modules, govc) talk
to it as to an ESX host. pyVmomi's own type system, serializer and deserializer are the schema.

The same port serves the control API (``/vcbsim-api/``: reset, seed, VMs, guest files, fault
rules, trace, state; ``docs/control-api.md``), and ``ControlClient`` is its Python client.
"""

from .._compat import deprecated_names
from .._host import DiskChangeInfo, Host
from . import _host_adapter
from ._endpoint import COOKIE_NAME, Endpoint
from .control import ControlClient, ControlError
from .http._server import RunningServer, serve, service_versions_xml
from .mo import _guestops, _hostview, _vmview
from .wire._codec import DEFAULT_VERSION

__all__ = [
    "COOKIE_NAME",
    "DEFAULT_VERSION",
    "ControlClient",
    "ControlError",
    "Endpoint",
    "RunningServer",
    "serve",
    "service_versions_xml",
]

# ``HostAdapter(host)`` was what ``serve`` took; ``serve(host)`` takes the host itself (and
# ``guest_credentials=``). It stays importable for one release, with a DeprecationWarning, and
# ``serve`` still unwraps it. The HostBackend protocol and its records are gone: the managed objects read the Host
# directly (mo/). Their names stay importable for one release, each answering the class that
# now plays its part, with a DeprecationWarning.
__getattr__ = deprecated_names(__name__, {
    "HostAdapter": ("serve(host, guest_credentials=...) (serve takes the simulated host)", _host_adapter.HostAdapter),
    "HostBackend": ("Host (serve takes the simulated host)", Host),
    "GuestBackend": ("mo._guestops.GuestOperations", _guestops.GuestOperations),
    "ChangedAreas": ("DiskChangeInfo (vcbsim.simulator)", DiskChangeInfo),
    "VMInfo": ("mo._vmview.VMView", _vmview.VMView),
    "BackendVMInfo": ("mo._vmview.VMView", _vmview.VMView),
    "SnapshotInfo": ("mo._vmview.SnapshotView", _vmview.SnapshotView),
    "BackendSnapshotInfo": ("mo._vmview.SnapshotView", _vmview.SnapshotView),
    "DiskInfo": ("mo._vmview.DiskInfo", _vmview.DiskInfo),
    "BackendDiskInfo": ("mo._vmview.DiskInfo", _vmview.DiskInfo),
    "DiskLayer": ("mo._vmview.DiskLayer", _vmview.DiskLayer),
    "NicInfo": ("mo._vmview.NicInfo", _vmview.NicInfo),
    "VMFile": ("mo._vmview.VMFile", _vmview.VMFile),
    "GuestFile": ("mo._guestops.GuestFile", _guestops.GuestFile),
    "BackendGuestFile": ("mo._guestops.GuestFile", _guestops.GuestFile),
    "GuestProcess": ("mo._guestops.GuestProcess", _guestops.GuestProcess),
    "HostAbout": ("mo._hostview.HostAbout", _hostview.HostAbout),
    "DatastoreInfo": ("mo._hostview.DatastoreInfo", _hostview.DatastoreInfo),
})
