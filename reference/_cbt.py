"""Incremental and differential image backups with changed block tracking (CBT).

An image backup (``-t fullvm``) has a *level*, like a file-level backup:

- **full**: every allocated area of every disk, as VCB always did;
- **incremental**: the areas that changed since the previous complete image backup of the
  VM (of any level);
- **differential**: the areas that changed since the last complete *full* image backup.

What changed comes from the host: ``QueryChangedDiskAreas(snapshot, deviceKey, 0, changeId)``
on the new backup snapshot, with the ``changeId`` each disk's backing had as of the *reference*
backup's snapshot (spec R51). Every image backup records those change ids per disk
(``Catalog.image_disks``), whatever its level, so any of them can be the next one's reference.
The host may over-report (areas that changed after the snapshot, or were written back to the
same bytes); it never under-reports, so reading the reported areas *as of the new snapshot*
and laying them over the reference's disks gives the disks exactly as of the new snapshot.

Rules the proxy follows (``plan_image``), chosen to match what backup products do on hosts
with CBT:

1. **Enabling CBT.** The proxy never changes a VM's configuration for a plain (full) image
   backup. When an incremental or differential is *asked for* and the host supports CBT
   (``capability.changeTrackingSupported``) but the VM does not have it enabled, the proxy
   enables it (``ReconfigVM_Task(changeTrackingEnabled=True)``, op ``enable-change-tracking``)
   before WF-1. Tracking starts at the VM's next stun, which the backup snapshot itself is, so
   that snapshot carries the baseline change ids; this run is a full backup (it says so), and
   the next incremental builds on it. A host without CBT (the ESX 3.5 profiles) is left as it
   is, and every image backup there is full.
2. **Falling back to full.** A requested incremental or differential becomes a full backup,
   with the reason in ``RunOutcome.fallback``, the catalog record, a ``note`` trace event and
   the CLI's output, when: the host or VM has no CBT, or tracking was only just enabled; there
   is no earlier complete image backup of the VM (no complete *full* one, for a differential);
   that backup recorded no change id for some disk (it was taken without CBT, or by an older
   vcbsim); the VM's disks are not the same (keys or capacities) as that backup's; a disk's
   change id on the new snapshot is not a continuation of the recorded one (its identity part
   differs, or its sequence went backwards: tracking was reset); or the host refuses a
   recorded change id (``InvalidArgument``, e.g. after CBT was reset or re-enabled, spec F17)
   or cannot answer (``NotSupported``). A revert to a snapshot is not a fallback case by
   itself: the host reports the grains a revert changed as changed (the simulator does, spec
   R51 "never under-reports"); a host that refuses the old change id after a revert falls
   under the ``InvalidArgument`` case.

Each decision is made on the new backup snapshot in WF-1f, before anything is exported.

Storage: the changed areas of an incremental are kept as content-addressed blobs in the
medium's existing ``BlobStore``, cut at 1 MiB boundaries (``CHUNK``), one catalog row per
piece (``image_extents``: disk, offset, length, sha256; an all-zero piece has no blob). A
sparse delta VMDK per backup would also cost O(changed data), but blobs reuse what the medium
already has: a restore verifies every byte against its name, an area written back to bytes
some backup already holds costs nothing, and deleting one backup of a chain never rewrites
another's file. The export an incremental leaves on the proxy in WF-1f is still a real VMDK
per disk (``qemu-img`` reads it) holding only the changed areas, next to a ``<disk>.changed``
text file listing them (so an area that changed *to* zeros is told apart from one that did not
change); WF-2 reads those areas from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vcbsim.simulator import fault_name

if TYPE_CHECKING:
    from ._catalog import Catalog
    from ._client import BlockReader, HostClient, VMInfo

__all__ = [
    "CHUNK",
    "IMAGE_LEVELS",
    "AreasView",
    "DiskPlan",
    "ImagePlan",
    "merge_areas",
    "plan_image",
    "read_areas_file",
    "split_chunks",
    "write_areas_file",
]

#: The levels of an image backup.
IMAGE_LEVELS: tuple[str, ...] = ("full", "differential", "incremental")
#: Changed areas are stored in pieces cut at multiples of this many bytes.
CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class DiskPlan:
    """What an image backup takes of one disk. ``change_id``: the disk backing's change id as
    of the backup snapshot (``None`` without CBT); ``since``: the reference backup's change id
    the areas were asked against; ``areas``: the changed ``(offset, length)`` areas (``None``
    for a full backup: every allocated area)."""

    key: int
    change_id: str | None
    since: str | None = None
    areas: tuple[tuple[int, int], ...] | None = None

    @property
    def changed_bytes(self) -> int:
        return sum(n for _, n in self.areas or ())


@dataclass(frozen=True, slots=True)
class ImagePlan:
    """The level an image backup runs at and why. ``requested`` is what was asked for,
    ``level`` what is done; ``fallback`` says why a requested incremental or differential is
    a full backup (empty otherwise); ``base_id`` is the catalog backup it builds on."""

    requested: str
    level: str
    base_id: int | None = None
    fallback: str = ""
    disks: Mapping[int, DiskPlan] = field(default_factory=dict)


def merge_areas(areas: Iterable[tuple[int, int]], capacity: int | None = None) -> list[tuple[int, int]]:
    """Sorted, non-overlapping areas (touching ones joined), clipped to ``capacity``."""
    out: list[tuple[int, int]] = []
    for off, n in sorted((int(o), int(n)) for o, n in areas):
        if capacity is not None:
            n = min(n, capacity - off)
        if n <= 0 or off < 0:
            continue
        if out and off <= out[-1][0] + out[-1][1]:
            last_off, last_n = out[-1]
            out[-1] = (last_off, max(last_n, off + n - last_off))
        else:
            out.append((off, n))
    return out


def split_chunks(areas: Iterable[tuple[int, int]], chunk: int = CHUNK) -> Iterator[tuple[int, int]]:
    """Cut areas at multiples of ``chunk``: ``(0, 3 MiB)`` -> three 1 MiB pieces."""
    for off, n in areas:
        pos, end = off, off + n
        while pos < end:
            stop = min(end, (pos // chunk + 1) * chunk)
            yield pos, stop - pos
            pos = stop


class AreasView:
    """A disk as of a snapshot that says only ``areas`` may hold data: ``write_vmdk`` of it
    writes a VMDK holding just those areas (grains reading as zeros stay unallocated)."""

    def __init__(self, view: BlockReader, areas: Iterable[tuple[int, int]]) -> None:
        self._view = view
        self._areas = list(areas)

    @property
    def size(self) -> int:
        return self._view.size

    def read(self, offset: int, length: int) -> bytes:
        return self._view.read(offset, length)

    def allocated_areas(self) -> list[tuple[int, int]]:
        return list(self._areas)


def write_areas_file(path: Any, change_id: str | None, since: str | None, areas: Iterable[tuple[int, int]]) -> None:
    """``<disk>.changed``: a header naming the change ids, then ``offset length`` per line."""
    lines = [
        "# changed areas of this disk (byte offset, length), as QueryChangedDiskAreas reported",
        f"# since changeId {since}",
        f"# to changeId {change_id}",
    ]
    lines += [f"{o} {n}" for o, n in areas]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def read_areas_file(path: Any) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            off, n = line.split()
            out.append((int(off), int(n)))
    return out


def _parse_change_id(change_id: str) -> tuple[str, int] | None:
    ident, sep, seq = change_id.rpartition("/")
    if not sep or not seq.isdigit():
        return None
    return ident, int(seq)


def _continues(since: str, now: str) -> bool:
    """Whether ``now`` can be a later change id of the tracking that issued ``since``: same
    identity part, sequence not lower. Unknown formats are left to the host to judge."""
    a, b = _parse_change_id(since), _parse_change_id(now)
    if a is None or b is None:
        return True
    return a[0] == b[0] and b[1] >= a[1]


def change_ids(client: HostClient, vm: VMInfo, snapshot_id: str) -> dict[int, str | None]:
    """The snapshot's change id per disk (``None`` each when the binding cannot say)."""
    get = getattr(client, "disk_change_ids", None)
    if get is None:
        return {d.key: None for d in vm.disks}
    ids = get(vm.moref, snapshot_id)
    return {d.key: ids.get(d.key) for d in vm.disks}


def _disks(keys: Iterable[int]) -> str:
    ks = sorted(keys)
    return ("disk " if len(ks) == 1 else "disks ") + ", ".join(str(k) for k in ks)


def plan_image(
    client: HostClient,
    vm: VMInfo,
    snapshot_id: str,
    catalog: Catalog | None,
    requested: str,
    *,
    enabled_now: bool = False,
) -> ImagePlan:
    """Decide the level of an image backup of ``vm`` from ``snapshot_id`` (the module's rule 2)
    and, for an incremental or differential, ask the host for each disk's changed areas."""
    ids = change_ids(client, vm, snapshot_id)

    def full(reason: str = "") -> ImagePlan:
        disks = {d.key: DiskPlan(d.key, ids.get(d.key)) for d in vm.disks}
        return ImagePlan(requested, "full", None, reason, disks)

    if requested not in ("incremental", "differential"):
        return full()
    if catalog is None:
        return full("there is no backup medium to find an earlier image backup on")
    if enabled_now:
        return full(
            f"changed block tracking was off on {vm.name}; the proxy enabled it and it took effect "
            "with this backup's snapshot, so this full backup is the baseline for the next "
            f"{requested}"
        )
    missing = [k for k, c in ids.items() if not c]
    if missing:
        state = getattr(client, "change_tracking", None)
        ct = state(vm.moref) if state is not None else None
        if ct is None or not ct.supported:
            return full(
                f"changed block tracking is not available on {client.host_name} for {vm.name} "
                "(ESX 3.5 hosts have none)"
            )
        return full(f"changed block tracking is not active on {_disks(missing)} of {vm.name}")
    base = catalog.image_reference(vm.uuid, requested)
    if base is None:
        which = "full image backup" if requested == "differential" else "image backup"
        return full(f"there is no earlier complete {which} of {vm.name} to build on")
    recorded = {d.key: d for d in catalog.image_disks(base.id)}
    if not recorded:
        return full(f"backup {base.id} recorded no disks nor change ids (an older vcbsim took it)")
    now = {d.key: d.capacity for d in vm.disks}
    then = {k: d.capacity for k, d in recorded.items()}
    if now != then:
        gone, new = sorted(set(then) - set(now)), sorted(set(now) - set(then))
        resized = sorted(k for k in set(now) & set(then) if now[k] != then[k])
        parts = [f"{what} {_disks(ks)}" for what, ks in (("removed", gone), ("added", new), ("resized", resized)) if ks]
        return full(f"the disks of {vm.name} changed since backup {base.id}: " + "; ".join(parts))
    no_id = [k for k, d in recorded.items() if not d.change_id]
    if no_id:
        return full(
            f"backup {base.id} recorded no change id for {_disks(no_id)} (it was taken without "
            "changed block tracking)"
        )
    disks: dict[int, DiskPlan] = {}
    for d in vm.disks:
        since = recorded[d.key].change_id
        cur = ids[d.key]
        assert since is not None and cur is not None
        if not _continues(since, cur):
            return full(
                f"disk {d.key} now has change id {cur!r}, which does not continue {since!r} recorded "
                f"by backup {base.id}: changed block tracking was reset"
            )
        try:
            areas = client.query_changed_areas(vm.moref, snapshot_id, d.key, 0, since)
        except Exception as exc:
            name = fault_name(exc)
            if name not in ("InvalidArgument", "NotSupported"):
                raise
            msg = getattr(exc, "msg", None) or str(exc)
            return full(
                f"the host refused change id {since!r} of disk {d.key} recorded by backup {base.id} "
                f"({name}: {msg}); changed block tracking was reset since"
            )
        disks[d.key] = DiskPlan(d.key, cur, since, tuple(merge_areas(areas, d.capacity)))
    return ImagePlan(requested, requested, base.id, "", disks)
