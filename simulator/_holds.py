"""Who holds a VM's disks open besides the VM: export leases and hot-added disks.

Why the host keeps this: a backup transport other than ``/folder`` opens the snapshot's disk
files for as long as it reads them, and a real host then refuses what would change them.

* An **export lease** (``ExportVm`` / ``ExportSnapshot`` → ``HttpNfcLease``, vSphere API 4.0):
  "While the lease is held, operations that alter the state of the virtual machines covered by
  the lease are blocked" (API reference, ``HttpNfcLease``). Here every host operation on the
  VM answers ``TaskInProgress`` (the export task is running on it) until the lease is completed,
  aborted or times out.
* A **hot-added disk** (a proxy VM reconfigured to add the snapshot's base disk read-only, the
  successor of the seed's "mounts ... on the VCB proxy"): the disk file is open by another VM,
  so the commit of the snapshot (seed 3b), which writes the redo log into that base disk,
  fails with ``FileLocked`` ("Unable to access file ... since it is locked", KB 1004790 / KB
  2003638): the snapshot leaves the tree and its redo logs stay, ``consolidationNeeded`` on
  API 5.0 hosts and a ``Consolidate Helper-0`` snapshot before (R48, R49); removing the disk
  from the proxy and consolidating fixes it.

A hold may be dead without being released (a lease that timed out on the endpoint's clock):
``alive()`` is asked each time, so the host never needs to know that clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DiskHold", "DiskHolds", "HOLD_KINDS"]

#: what holds a disk: an NFC export lease, or a disk hot-added to a proxy VM
HOLD_KINDS = ("export", "hotadd")


def _always() -> bool:
    return True


@dataclass
class DiskHold:
    """One holder of a VM's disk files.

    ``vm`` is the VM whose disks are held, ``snapshot`` the snapshot whose view is read (or
    ``None``: the powered-off VM's own disks), ``holder`` who holds them (a lease's managed
    object id, a proxy VM's moref), ``disks`` the disk keys of ``vm`` held.
    """

    id: str
    kind: str
    vm: str
    snapshot: str | None
    holder: str
    disks: tuple[int, ...] = ()
    alive: Callable[[], bool] = field(default=_always, repr=False)
    #: the task that holds them (an export's ``ExportVm`` task), named by ``TaskInProgress``
    task: str | None = None
    #: the object that holds them (an export's ``ExportLease``), to end it from outside
    owner: Any = field(default=None, repr=False)


class DiskHolds:
    """The host's table of holds (the host lock guards it, as all host state)."""

    def __init__(self) -> None:
        self._holds: dict[str, DiskHold] = {}
        self._ids = itertools.count(1)
        #: proxy VM moref -> the disks hot-added to it (``_hotadd.HotAddedDisk``)
        self.attached: dict[str, list[Any]] = {}

    def add(
        self, kind: str, vm: str, snapshot: str | None, holder: str, disks: tuple[int, ...] = (),
        alive: Callable[[], bool] = _always,
    ) -> DiskHold:
        if kind not in HOLD_KINDS:
            msg = f"hold kind must be one of {HOLD_KINDS}, got {kind!r}"
            raise ValueError(msg)
        hold = DiskHold(f"hold-{next(self._ids)}", kind, vm, snapshot, holder, tuple(disks), alive)
        self._holds[hold.id] = hold
        return hold

    def get(self, hold_id: str) -> DiskHold | None:
        return self._holds.get(hold_id)

    def release(self, hold_id: str) -> DiskHold | None:
        return self._holds.pop(hold_id, None)

    def on(self, vm: str, kind: str | None = None) -> list[DiskHold]:
        """The live holds on ``vm``'s disks (of ``kind``); dead ones are dropped on the way."""
        out = []
        for hold in list(self._holds.values()):
            if not hold.alive():
                self._holds.pop(hold.id, None)  # alive() may have released it itself
                continue
            if hold.vm == vm and (kind is None or hold.kind == kind):
                out.append(hold)
        return out

    def by_holder(self, holder: str) -> list[DiskHold]:
        return [h for h in self._holds.values() if h.holder == holder]

    def clear(self) -> None:
        """Forget every hold; a hot-added disk's NBD device goes with it (its clients cut off)."""
        for disks in self.attached.values():
            for att in disks:
                export = getattr(att, "export", None)
                if export is not None:
                    export.close()
        self._holds.clear()
        self.attached.clear()

    def __len__(self) -> int:
        return len(self._holds)
