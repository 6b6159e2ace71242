"""The control API of ``vcbsim serve`` (``/vcbsim-api/``): the server side (``_handlers.py``)
and its Python client (``_client.py``)."""

from ._client import ControlClient, ControlError
from ._handlers import MAX_BODY_BYTES, PREFIX, VM_FIELDS, ControlResponse, handle_control

__all__ = ["MAX_BODY_BYTES", "PREFIX", "VM_FIELDS", "ControlClient", "ControlError", "ControlResponse", "handle_control"]
