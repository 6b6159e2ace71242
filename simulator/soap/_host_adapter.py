"""Deprecated: ``HostAdapter``, kept importable for one release; ``serve(host)`` is the way now.

The endpoint used to reach the ``Host`` through a ``HostBackend`` protocol that this class
implemented; the managed objects now read and change the ``Host`` directly (``mo/``), so the
adapter only carries the host and its guest accounts to ``serve``. Nothing in vcbsim builds
one any more; ``vcbsim.simulator.soap.HostAdapter`` answers it with a ``DeprecationWarning``
and ``serve`` unwraps it (``tests/unit/soap/test_host_adapter_alias.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._host import Host

__all__ = ["HostAdapter"]


class HostAdapter:
    """Deprecated: ``serve(HostAdapter(host))`` is ``serve(host)``; ``guest_credentials``
    is ``serve(host, guest_credentials=...)``."""

    def __init__(self, host: Host, *, guest_credentials: Mapping[str, str] | None = None) -> None:
        self.host = host
        self.guest_credentials = None if guest_credentials is None else dict(guest_credentials)
