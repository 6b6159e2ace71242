"""The vSphere SOAP endpoint of the simulated ESX host (``vcbsim serve``).

``serve(host)`` starts ``https://127.0.0.1:<port>/sdk`` for a simulated ``Host``
(``serve(Host.demo())``); real vSphere clients (pyVmomi, Ansible's VMware modules, govc) talk
to it as to an ESX host. pyVmomi's own type system, serializer and deserializer are the schema.

The same port serves the control API (``/vcbsim-api/``: reset, seed, VMs, guest files, fault
rules, trace, state; ``docs/control-api.md``), and ``ControlClient`` is its Python client.
"""

from ._endpoint import COOKIE_NAME, Endpoint
from ._host_adapter import HostAdapter
from .control import ControlClient, ControlError
from .http._server import RunningServer, serve, service_versions_xml
from .wire._codec import DEFAULT_VERSION

__all__ = [
    "COOKIE_NAME",
    "DEFAULT_VERSION",
    "ControlClient",
    "ControlError",
    "Endpoint",
    "HostAdapter",
    "RunningServer",
    "serve",
    "service_versions_xml",
]
