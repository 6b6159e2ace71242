"""The host's facts about a VM, for a client that judges (the conformance kit over the wire).

Two control API resources (``_handlers.py`` routes them):

- ``GET /vcbsim-api/vms/<vm>``: the VM as the host has it: its summary (each disk with its
  ``file`` and ``image_digest``, ``vcbsim.simulator.disk``), its ``vmx_path``, and its
  ``.vmx`` and ``.vmsd`` as the host writes them. A restored VM is judged from these, not from
  what the product that restored it says.
- ``POST /vcbsim-api/captures`` ``{"vm": name}`` arms a capture: at the VM's next
  ``snapshot.create`` the host records its disks' digests as of that snapshot and its
  configuration files, the moment the snapshot exists (the product removes it before a
  client could look). ``GET /vcbsim-api/captures`` returns ``{snapshot moref: {"vm", "name",
  "seq", "disks": {key: digest}, "vmx", "vmsd"}}``; ``DELETE`` forgets them and disarms.
  The in-process kit reads the same facts from its own host (``_suite.Scenario._on_event``).

A reset forgets the captures (``forget``): the trace they watch is rebuilt.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...disk import image_digest

if TYPE_CHECKING:
    from ..._host import Host
    from ..._trace import Event
    from ..._vm import VM

__all__ = ["vm_facts", "Captures", "captures_of", "forget"]


def vm_facts(host: Host, vm: VM) -> dict[str, Any]:
    """``GET /vcbsim-api/vms/<vm>`` (module docstring)."""
    data = vm.summary()
    by_key = {d.key: d for d in vm.disks}
    for disk in data["disks"]:
        d = by_key[disk["key"]]
        disk.setdefault("file", d.file_name)
        disk["digest"] = image_digest(host.disk_view(vm, d.key))
    return {**data, "vmx_path": vm.vmx_path, "vmx": vm.vmx_text(), "vmsd": vm.vmsd_text()}


@dataclass
class Captures:
    """The armed captures of one host and what they recorded."""

    host: Host
    armed: set[str] = field(default_factory=set)  # VM morefs
    taken: dict[str, dict[str, Any]] = field(default_factory=dict)
    _unsubscribe: Any = None
    _trace: Any = None

    def arm(self, vm: VM) -> None:
        self.armed.add(vm.moref)
        trace = self.host.trace
        if self._trace is not trace:  # the trace is rebuilt by a reset
            if self._unsubscribe is not None:
                self._unsubscribe()
            self._unsubscribe, self._trace = trace.subscribe(self._on_event), trace

    def _on_event(self, ev: Event) -> None:
        if ev.kind != "snapshot.create" or ev.vm not in self.armed:
            return
        vm = self.host.vms.get(ev.vm)
        sid = str(ev.details.get("snapshot"))
        if vm is None:
            return
        self.armed.discard(ev.vm)
        self.taken[sid] = {
            "vm": vm.name, "moref": vm.moref, "name": ev.details.get("name"), "seq": ev.seq,
            "disks": {str(d.key): image_digest(self.host.disk_view(vm, d.key, sid)) for d in vm.disks},
            "vmx": vm.vmx_text(), "vmsd": vm.vmsd_text(),
        }

    def clear(self) -> None:
        self.armed.clear()
        self.taken.clear()
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._unsubscribe = self._trace = None


_REGISTRY: weakref.WeakKeyDictionary[Any, Captures] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def captures_of(host: Host) -> Captures:
    with _LOCK:
        found = _REGISTRY.get(host)
        if found is None:
            found = _REGISTRY[host] = Captures(host)
        return found


def forget(host: Host) -> None:
    """A reset: the captures and their subscription go."""
    with _LOCK:
        found = _REGISTRY.pop(host, None)
    if found is not None:
        found.clear()
