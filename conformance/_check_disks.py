"""Disks a snapshot does not cover: what an image backup may present of them (IMG-NO-UNSNAPSHOTTED,
IMG-SAYS-UNSNAPSHOTTED).

A snapshot leaves out a VM's independent disks ("independent_persistent: Same as persistent,
but not affected by snapshots", API enum ``VirtualDiskMode``, since 2.0) and its physical-mode
RDMs (no redo log: "redo logs are not possible when raw device mapping is used in physical
compatibility mode", ESX Server "Using Raw Device Mapping"; the host models both,
``simulator/_vm.py`` and ``simulator/_rdm.py``). Read "as of" the snapshot, such a disk is its
live data, so an image backup that holds it presents bytes from after the snapshot as the
snapshot's. VADP products leave them out and say so (IBM Spectrum Protect for VMware: "Only
normal disk volumes are backed up. The data on independent disks is not backed up", option
``vmprocessvmwithindependent``; "pRDM volumes do not support snapshots ... vRDM volumes ...
are included", ``vmprocessvmwithprdm``; Hitachi Ops Center Protector: "Physical compatibility
mode RDM disks are not backed up because they are not included in a VMware snapshot").

The kit judges from the host's facts (which disks of the VM are independent or physical RDMs),
never from what the product says: after a successful image job, the backup's disks
(``JobResult.disks``, from the product's restore when it declares one) MUST NOT hold such a
disk (a digest other than ``(missing)``); the product SHOULD name each left-out disk key in
``JobResult.details["excluded_disks"]`` (a warning otherwise). The in-process kit's host has a
VM for it (``UNSNAPSHOTTED_VM``: a disk, an independent one, a physical and a virtual RDM), and
the scenario ``image-unsnapshotted-disks`` backs it up with guest writes on every disk while
the snapshot exists.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vcbsim.simulator import Event

from ._adapters import JobResult
from ._check_base import Violation
from ._errors import ConformanceViolation

__all__ = [
    "UNSNAPSHOTTED_VM",
    "add_unsnapshotted_vm",
    "judge_unsnapshotted",
    "reported_excluded",
    "uncovered_disks",
]

#: the kit's VM with disks a snapshot does not cover (in process only: ``_suite.Scenario``)
UNSNAPSHOTTED_VM = "sql-rdm"
#: its volumes, one per disk: C: (a disk), E: (independent_persistent), P: (physical RDM), V:
#: (virtual RDM, snapshotted like a disk); 36 MiB each, the smallest FAT32 allows plus room
_LAYOUT: dict[int, list[tuple[int | None, str | None, str]]] = {
    0: [(None, "C", "SYSTEM")], 1: [(None, "E", "TEMPDB")], 2: [(None, "P", "SANDATA")], 3: [(None, "V", "LOGS")],
}
#: what a digest in ``JobResult.disks`` says when the backup holds no such disk (``_suite``)
_ABSENT = (None, "(missing)")


def add_unsnapshotted_vm(host: Any) -> None:
    """Add ``UNSNAPSHOTTED_VM`` to an in-process host, with a file on each volume."""
    vm = host.add_vm(
        UNSNAPSHOTTED_VM, disks=[36 << 20] * 4, ip_address="192.0.2.31",
        disk_modes=["persistent", "independent_persistent", "independent_persistent", "persistent"],
        disk_rdms=[None, None, "physicalMode", "virtualMode"],
    )  # fmt: skip
    fs = host.add_guest_volumes(vm, _LAYOUT)
    for letter in "CEPV":
        fs.write_bytes(f"{letter}:\\kit-{letter.lower()}.txt", f"{letter}: as built\r\n".encode())


def uncovered_disks(disks: Iterable[Any]) -> dict[int, str]:
    """``{key: why}`` of the disks a snapshot does not cover (``simulator`` ``VirtualDisk``s)."""
    out: dict[int, str] = {}
    for d in disks:
        if getattr(d, "rdm", None) == "physicalMode":
            out[d.key] = "a physical-mode RDM"
        elif str(getattr(d, "disk_mode", "persistent")).startswith("independent"):
            out[d.key] = f"an {d.disk_mode} disk"
    return out


def reported_excluded(details: Mapping[str, Any]) -> set[int]:
    """The disk keys a product says it left out (``details["excluded_disks"]``: keys, or a
    mapping keyed by them); unparseable entries count as none."""
    said = details.get("excluded_disks") or ()
    out: set[int] = set()
    for k in said:
        try:
            out.add(int(k))
        except (TypeError, ValueError):
            continue
    return out


def judge_unsnapshotted(scenario: Any, vm: str, moref: str, disks: Iterable[Any], result: JobResult,
                        snap: Event) -> set[int]:
    """Judge one successful image job of ``vm`` (snapshot event ``snap``): raises
    IMG-NO-UNSNAPSHOTTED when the backup holds a disk the snapshot does not cover, records an
    IMG-SAYS-UNSNAPSHOTTED warning when the product does not name each one. Returns the keys
    of those disks (the content check, CMT-BACKUP-CONTENT, leaves them out)."""
    left = uncovered_disks(disks)
    if left and result.disks is None:
        why = (f"the product's image backup of {vm} gave the kit no disks to read (no JobResult.disks, no restore, "
               "no backup root), so what it holds of the disks no snapshot covers is unknown")
        for rid in ("IMG-NO-UNSNAPSHOTTED", "IMG-SAYS-UNSNAPSHOTTED"):
            scenario.unjudged.setdefault(rid, why)
    if not left or result.disks is None:
        return set(left)
    scenario.occasion("IMG-NO-UNSNAPSHOTTED")
    held = sorted(k for k in left if result.disks.get(k) not in _ABSENT)
    if held:
        what = "; ".join(f"disk {k} ({left[k]})" for k in held)
        why = (f"the image backup of {vm} holds {what}, which snapshot '{snap.details.get('name')}' (#{snap.seq}) "
               "does not cover: read as of the snapshot it is the live disk, so the backup presents data from "
               "after the snapshot as the snapshot's; an image backup leaves such disks out and says so")
        raise ConformanceViolation("IMG-NO-UNSNAPSHOTTED", why, witness=(snap,), vm=moref)
    scenario.occasion("IMG-SAYS-UNSNAPSHOTTED")
    unsaid = sorted(set(left) - reported_excluded(result.details))
    if unsaid:
        w = Violation(
            "IMG-SAYS-UNSNAPSHOTTED",
            f"the image backup of {vm} left out disk(s) {unsaid} ({', '.join(left[k] for k in unsaid)}) but its "
            "result does not say so (JobResult.details['excluded_disks']); a restore of it lacks them",
            (snap,), moref,
        )
        scenario.warnings.setdefault((w.rule_id, w.explanation), w.to_dict())
    return set(left)
