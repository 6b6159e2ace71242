"""Layered sparse virtual disks: a tree of grain layers with one writable top.

Why a tree of layers: an ESX host keeps a VM's disk as a base file plus one redo log per
snapshot. A snapshot freezes the file that was being written and opens a new redo log above
it; reverting abandons the current redo log and opens a new one above an older file (which
makes the chain a tree); deleting a snapshot merges its file with a neighbour. Backup
software reads a frozen file while the VM keeps writing to the top, so modelling exactly
this structure is what lets the simulator show the same data, at the same cost, as a host.

Why grains in a dict: disks of 2 TiB and more must cost nothing until written. A layer
stores only the 64 KiB grains written to it, as ``bytearray`` objects keyed by grain index;
a grain nobody wrote reads as zeros. Each grain object lives in exactly one layer (merges
move references, they never share them), so the writable top may update its grains in place
and a merge costs one dict operation per grain moved, never anything proportional to the
capacity.

Changed-block tracking: every change of the top's view (a write, or a revert that swaps
the view for another) records the current *epoch* for the grains touched, keeping the
maximum. :meth:`LayeredDisk.freeze` bumps the epoch, and the frozen layer remembers
``change_epoch``, the epoch from which later changes are recorded. Because records only grow
and every change of content records the epoch in force, "grains recorded at or after E"
is a superset of "grains whose content differs from the state at E", across merges and
reverts alike. See :meth:`LayeredDisk.changed_areas`.

One cohesive concern, although over 700 lines: the layer tree and the grain moves that keep
it (freeze, revert, release, merge, CBT records). The device protocols are in ``_device``,
the files in ``_vmdk``/``_cowd``/``_sesparse``/``_persistent``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from .._errors import InvalidInputError, StateError
from ._device import BlockDevice, BlockReader, SparseBlockDevice, SparseBlockReader

__all__ = [
    "SECTOR_SIZE",
    "DEFAULT_GRAIN_SIZE",
    "BlockDevice",
    "BlockReader",
    "SparseBlockDevice",
    "SparseBlockReader",
    "Layer",
    "LayeredDisk",
    "LayerView",
    "MergeStats",
    "coalesce_grains",
]

SECTOR_SIZE = 512
DEFAULT_GRAIN_SIZE = 65536

_layer_ids = itertools.count(1)
# One shared zero grain per grain size: thousands of disks must not each hold 64 KiB of zeros.
_ZEROS: dict[int, bytes] = {}


def _invalid(what: str, expected: str, got: object, hint: str = "") -> NoReturn:
    """Raise an :class:`InvalidInputError` (a helper keeps every raise site one line)."""
    raise InvalidInputError(what, expected=expected, got=got, hint=hint)


def _check_int(what: str, value: object, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _invalid(what, f"an int >= {minimum}", value)
    return value


def coalesce_grains(
    grains: Iterable[int], grain_size: int, capacity: int, start_offset: int = 0
) -> list[tuple[int, int]]:
    """Turn grain indices into sorted ``(offset, length)`` areas, merging adjacent grains.

    Areas are clipped to ``[start_offset, capacity)`` so callers can hand them straight to a
    client (``QueryChangedDiskAreas`` answers in bytes, not grains).
    """
    first = start_offset // grain_size
    areas: list[tuple[int, int]] = []
    run_start = run_end = -1
    for g in sorted(g for g in grains if g >= first):
        if g == run_end:
            run_end += 1
            continue
        if run_start >= 0:
            areas.append((run_start, run_end))
        run_start, run_end = g, g + 1
    if run_start >= 0:
        areas.append((run_start, run_end))
    out: list[tuple[int, int]] = []
    for a, b in areas:
        lo = max(a * grain_size, start_offset)
        hi = min(b * grain_size, capacity)
        if hi > lo:
            out.append((lo, hi - lo))
    return out


class Layer:
    """One file of a disk's chain: the base disk or a redo log.

    Only its owning :class:`LayeredDisk` changes it. ``grains`` maps grain index to the
    grain's bytes for the grains written while this layer was the top (plus those merged in).
    ``label`` is free for the host: it names layers as VMware names files
    (``<base>.vmdk``, ``<base>-000001.vmdk``) so traces and datastore listings read right.
    """

    __slots__ = (
        "id",
        "label",
        "parent",
        "children",
        "grains",
        "frozen",
        "released",
        "change_epoch",
        "_disk",
    )

    def __init__(self, disk: LayeredDisk | None, parent: Layer | None, label: str = "") -> None:
        self.id: int = next(_layer_ids)
        self.label: str = label
        self.parent: Layer | None = parent
        self.children: list[Layer] = []
        self.grains: dict[int, bytearray] = {}
        self.frozen: bool = False
        self.released: bool = False
        # For a frozen layer: changes made after it froze are recorded at >= this epoch.
        self.change_epoch: int | None = None
        self._disk: LayeredDisk | None = disk

    @classmethod
    def gone(cls, label: str = "") -> Layer:
        """A layer that no longer exists (``alive`` is false): what a loader gives a snapshot
        whose redo log was merged away before the state was saved."""
        return cls(None, None, label)

    @property
    def grain_count(self) -> int:
        """Number of grains stored in this layer (its own data, not its parents')."""
        return len(self.grains)

    @property
    def is_top(self) -> bool:
        """True for the disk's single writable layer."""
        return self._disk is not None and self._disk.top is self

    @property
    def alive(self) -> bool:
        """False once the layer was merged away or discarded (by a merge or a revert)."""
        return self._disk is not None

    def __repr__(self) -> str:
        state = "top" if self.is_top else ("frozen" if self.alive else "gone")
        name = self.label or f"layer-{self.id}"
        return f"<Layer {name} {state} grains={len(self.grains)}>"


@dataclass(frozen=True)
class MergeStats:
    """What a :meth:`LayeredDisk.release` (or the merges a revert enabled) did.

    ``grains_moved`` is the cost measure: merges move the smaller side's grains, so it is
    bounded by data written, never by capacity. ``merges`` lists ``(merged_label,
    into_label)`` pairs, one per layer that went away (``into_label`` is ``""`` for a dead
    leaf whose grains were discarded). ``pending`` lists released layers still present:
    several branches depend on them (VMware keeps such redo logs until the branches go
    away; they merge automatically then) or they were released with ``merge=False`` and
    wait for :meth:`LayeredDisk.consolidate`.
    """

    grains_moved: int = 0
    grains_discarded: int = 0
    layers_removed: int = 0
    merges: tuple[tuple[str, str], ...] = ()
    pending: tuple[Layer, ...] = ()

    @property
    def merged(self) -> bool:
        """True when at least one layer went away."""
        return self.layers_removed > 0

    def __add__(self, later: MergeStats) -> MergeStats:
        """Totals of two merge passes; ``pending`` is the later pass's (what is still left)."""
        return MergeStats(
            self.grains_moved + later.grains_moved,
            self.grains_discarded + later.grains_discarded,
            self.layers_removed + later.layers_removed,
            self.merges + later.merges,
            later.pending,
        )


@dataclass
class _MergeLog:
    moved: int = 0
    discarded: int = 0
    removed: int = 0
    merges: list[tuple[str, str]] = field(default_factory=list)


class LayerView:
    """Read-only :class:`BlockDevice` over one layer of a disk (what a snapshot shows).

    Writes raise :class:`StateError`: a frozen redo log is immutable, and a backup proxy
    must never change what it backs up.
    """

    __slots__ = ("_disk", "_layer")

    def __init__(self, disk: LayeredDisk, layer: Layer) -> None:
        self._disk = disk
        self._layer = layer

    @property
    def size(self) -> int:
        return self._disk.capacity

    @property
    def layer(self) -> Layer:
        return self._layer

    @property
    def grain_size(self) -> int:
        return self._disk.grain_size

    def read(self, offset: int, length: int) -> bytes:
        return self._disk.read(offset, length, at=self._layer)

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        name = self._layer.label or f"layer-{self._layer.id}"
        msg = (
            f"view of {name} is read-only: a snapshot's disk cannot be written; "
            "write to the LayeredDisk (its top layer) instead"
        )
        raise StateError(msg)

    def allocated_areas(self) -> list[tuple[int, int]]:
        return self._disk.allocated_areas(self._layer)

    def __repr__(self) -> str:
        return f"<LayerView {self._layer!r} size={self.size}>"


class LayeredDisk:
    """A virtual disk as a tree of grain layers; see the module docstring for the model.

    ``capacity`` must be a positive multiple of 512 (disks are made of sectors);
    ``grain_size`` a power of two multiple of 512 (64 KiB, as VMware's sparse formats, by
    default; tests use small grains to explore many layouts quickly).
    """

    def __init__(self, capacity: int, *, grain_size: int = DEFAULT_GRAIN_SIZE) -> None:
        _check_int("capacity", capacity, 1)
        if capacity % SECTOR_SIZE:
            _invalid("capacity", "a multiple of 512 bytes", capacity)
        _check_int("grain_size", grain_size, SECTOR_SIZE)
        if grain_size & (grain_size - 1) or grain_size % SECTOR_SIZE:
            _invalid("grain_size", "a power of two multiple of 512", grain_size)
        self.capacity: int = capacity
        self.grain_size: int = grain_size
        self._shift = grain_size.bit_length() - 1
        self._mask = grain_size - 1
        self._zero = _ZEROS.setdefault(grain_size, bytes(grain_size))
        self.base: Layer = Layer(self, None)
        self.top: Layer = self.base
        self._epoch = 0
        self._tracking_start = 0
        self._changed: dict[int, int] = {}
        # Released layers that merge as soon as the tree allows (release(merge=True)); other
        # released layers wait for consolidate(), as redo logs left by
        # RemoveSnapshot_Task(consolidate=False) wait for ConsolidateVMDisks_Task.
        self._auto: set[Layer] = set()

    # -- introspection -------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Capacity in bytes (the :class:`BlockDevice` name for it)."""
        return self.capacity

    @property
    def epoch(self) -> int:
        """Current change-tracking epoch: writes now are recorded at this value."""
        return self._epoch

    @property
    def grain_count(self) -> int:
        """Number of grain slots the capacity spans (the last one may be partial)."""
        return (self.capacity + self._mask) >> self._shift

    def layers(self) -> list[Layer]:
        """Every live layer, base first (depth-first), for listings and dumps."""
        out: list[Layer] = []
        stack = [self.base]
        while stack:
            layer = stack.pop()
            out.append(layer)
            stack.extend(reversed(layer.children))
        return out

    def chain(self, layer: Layer | None = None) -> list[Layer]:
        """The layers a read of ``layer`` (default: the top) falls through, top first."""
        cur: Layer | None = self._own(layer) if layer is not None else self.top
        out: list[Layer] = []
        while cur is not None:
            out.append(cur)
            cur = cur.parent
        return out

    def allocated_grains(self, layer: Layer | None = None) -> int:
        """Distinct grains stored anywhere in ``layer``'s chain (what its view occupies)."""
        chain = self.chain(layer)
        if len(chain) == 1:
            return len(chain[0].grains)
        seen: set[int] = set()
        for lay in chain:
            seen.update(lay.grains)
        return len(seen)

    def allocated(self, layer: Layer | None = None) -> set[int]:
        """Grain indices stored anywhere in ``layer``'s chain (CBT's ``"*"``, in grains)."""
        seen: set[int] = set()
        for lay in self.chain(layer):
            seen.update(lay.grains)
        return seen

    def allocated_areas(self, at: Layer | None = None) -> list[tuple[int, int]]:
        """Areas ``at``'s view may hold data in (changeId ``"*"``); the rest reads as zeros."""
        return coalesce_grains(self.allocated(at), self.grain_size, self.capacity)

    def view(self, layer: Layer | None = None) -> LayerView:
        """A read-only :class:`BlockDevice` over ``layer`` (default: the current top).

        The view is bound to the layer, not to "whatever is the top": after a freeze it keeps
        showing that (now frozen) layer. To write, or to follow the top, use the disk itself,
        which is a :class:`BlockDevice` too.
        """
        return LayerView(self, self._own(layer) if layer is not None else self.top)

    def _own(self, layer: object) -> Layer:
        if not isinstance(layer, Layer):
            _invalid("layer", "a Layer of this disk", layer)
        if layer._disk is not self:
            hint = (
                "it was merged away or discarded"
                if layer._disk is None
                else "it belongs to another disk"
            )
            _invalid("layer", "a live Layer of this disk", layer, hint)
        return layer

    # -- I/O -----------------------------------------------------------------------------

    def _check_range(self, offset: object, length: object) -> None:
        _check_int("offset", offset)
        _check_int("length", length)
        assert isinstance(offset, int) and isinstance(length, int)
        if offset + length > self.capacity:
            _invalid(
                "offset + length",
                f"<= capacity {self.capacity}",
                offset + length,
                f"offset={offset}, length={length}",
            )

    def read(self, offset: int, length: int, at: Layer | None = None) -> bytes:
        """Read ``length`` bytes at ``offset`` as ``at`` (default: the top) shows them."""
        self._check_range(offset, length)
        top = self._own(at) if at is not None else self.top
        if length == 0:
            return b""
        shift, mask, gsize = self._shift, self._mask, self.grain_size
        first = offset >> shift
        last = (offset + length - 1) >> shift
        if first == last:
            # Hot path: sector-sized reads by guest file systems.
            lay: Layer | None = top
            while lay is not None:
                g = lay.grains.get(first)
                if g is not None:
                    start = offset & mask
                    return bytes(memoryview(g)[start : start + length])
                lay = lay.parent
            return bytes(length)
        chain = self.chain(top)
        parts: list[bytes | bytearray | memoryview] = []
        pos = offset
        end = offset + length
        for idx in range(first, last + 1):
            gstart = idx << shift
            a = pos - gstart
            b = min(end - gstart, gsize)
            data: bytearray | None = None
            for lay2 in chain:
                data = lay2.grains.get(idx)
                if data is not None:
                    break
            if data is None:
                parts.append(self._zero if b - a == gsize else memoryview(self._zero)[: b - a])
            elif a == 0 and b == gsize:
                parts.append(data)
            else:
                parts.append(memoryview(data)[a:b])
            pos = gstart + b
        return b"".join(parts)

    def _below(self, layer: Layer, idx: int) -> bytearray | None:
        lay = layer.parent
        while lay is not None:
            g = lay.grains.get(idx)
            if g is not None:
                return g
            lay = lay.parent
        return None

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` at ``offset`` into the top layer.

        A write that covers part of a grain copies the grain from the chain first
        (read-modify-write), as a redo log does. Zeros are stored like any data: writing
        zeros over data must hide the data below.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            _invalid("data", "bytes, bytearray or memoryview", type(data).__name__)
        mv = memoryview(data)
        if mv.ndim != 1 or mv.itemsize != 1:
            mv = mv.cast("B")
        length = mv.nbytes
        self._check_range(offset, length)
        if length == 0:
            return
        top = self.top
        grains = top.grains
        changed = self._changed
        epoch = self._epoch
        shift, mask, gsize = self._shift, self._mask, self.grain_size
        pos = offset
        end = offset + length
        while pos < end:
            idx = pos >> shift
            a = pos & mask
            b = min(gsize, a + (end - pos))
            src = mv[pos - offset : pos - offset + (b - a)]
            if a == 0 and b == gsize:
                grains[idx] = bytearray(src)
            else:
                g = grains.get(idx)
                if g is None:
                    below = self._below(top, idx)
                    g = bytearray(below) if below is not None else bytearray(gsize)
                    grains[idx] = g
                g[a:b] = src
            changed[idx] = epoch
            pos += b - a

    # -- snapshots -----------------------------------------------------------------------

    def freeze(self) -> Layer:
        """Make the top read-only and return it; open a new empty top above it. O(1).

        This is what a snapshot does to each disk: the snapshot keeps the returned layer.
        The change epoch advances, so ``changed_areas(layer.change_epoch)`` later reports
        what changed after this snapshot.
        """
        old = self.top
        old.frozen = True
        self._epoch += 1
        old.change_epoch = self._epoch
        new = Layer(self, old)
        old.children.append(new)
        self.top = new
        return old

    def new_epoch(self) -> int:
        """Advance the change epoch without a snapshot (e.g. when tracking is (re)enabled)."""
        self._epoch += 1
        return self._epoch

    def revert(self, layer: Layer) -> MergeStats:
        """Discard the top and open a new empty top above ``layer`` (revert to snapshot).

        ``layer`` must be a live frozen layer still held (not released). Grains whose
        content differs between the old and the new view are recorded as changed now, so
        CBT never misses what a revert changed. Released layers that now have a single
        child merge, and the result says so.
        """
        target = self._own(layer)
        if not target.frozen:
            msg = "revert target must be a frozen layer (a snapshot's), not the writable top"
            raise StateError(msg)
        if target.released:
            msg = f"revert target {target!r} was released; no snapshot holds it any more"
            raise StateError(msg)
        old = self.top
        # Grains that may differ between the old view and the target's view: those stored
        # on the two paths up to their common ancestor.
        target_chain = self.chain(target)
        ancestors = {id(x) for x in target_chain}
        differing: set[int] = set()
        lay: Layer | None = old
        while lay is not None and id(lay) not in ancestors:
            differing.update(lay.grains)
            lay = lay.parent
        lca = lay
        for lay2 in target_chain:
            if lay2 is lca:
                break
            differing.update(lay2.grains)
        epoch = self._epoch
        for idx in differing:
            self._changed[idx] = epoch
        log = _MergeLog(discarded=len(old.grains), removed=1)
        self._detach(old)
        new = Layer(self, target)
        target.children.append(new)
        self.top = new
        self._settle(log, everything=False)
        return self._stats(log)

    def release(self, layer: Layer, *, merge: bool = True) -> MergeStats:
        """The snapshot holding ``layer`` is gone: merge the layer away where the tree allows.

        * one child: the smaller side's grains move into the other. If the child is the top,
          the layer absorbs it and becomes the writable top again (commit: the base then
          holds every write). Otherwise the child (which a snapshot or a branch still uses)
          survives in the layer's place and takes its label, as VMware keeps the parent's
          file name for the merged redo log.
        * no child (a frozen leaf left by a revert): its grains are discarded.
        * several children: it stays, listed in ``pending``, and merges by itself once
          only one branch is left.

        ``merge=False`` only marks the layer released (``RemoveSnapshot_Task`` with
        ``consolidate=False``): it stays, listed in ``pending``, until :meth:`consolidate`.
        """
        target = self._own(layer)
        if target is self.top:
            msg = "cannot release the writable top layer; freeze() it first"
            raise StateError(msg)
        if target.released:
            msg = f"layer {target!r} was already released"
            raise StateError(msg)
        target.released = True
        log = _MergeLog()
        if merge:
            self._auto.add(target)
            self._settle(log, everything=False)
        return self._stats(log)

    def consolidate(self) -> MergeStats:
        """Merge every released layer that can be merged (ConsolidateVMDisks_Task).

        This includes layers released with ``merge=False`` and layers whose ``released``
        flag the host set directly.
        """
        log = _MergeLog()
        self._settle(log, everything=True)
        return self._stats(log)

    # -- merging internals ---------------------------------------------------------------

    def _stats(self, log: _MergeLog) -> MergeStats:
        pending = tuple(x for x in self.layers() if x.released)
        return MergeStats(log.moved, log.discarded, log.removed, tuple(log.merges), pending)

    def _detach(self, layer: Layer) -> None:
        parent = layer.parent
        if parent is not None:
            parent.children.remove(layer)
        layer.grains = {}
        layer.children = []
        layer.parent = None
        layer._disk = None
        self._auto.discard(layer)

    def _settle(self, log: _MergeLog, *, everything: bool) -> None:
        """Merge released layers until none can merge (cost: grains moved, not capacity).

        ``everything=False`` merges only layers released with ``merge=True``.
        """
        progress = True
        while progress:
            progress = False
            for lay in self.layers():
                if lay.released and len(lay.children) <= 1 and (everything or lay in self._auto):
                    self._merge(lay, log)
                    progress = True
                    break

    def _merge(self, layer: Layer, log: _MergeLog) -> None:
        if not layer.children:
            # A released frozen leaf (its branch was reverted away): nothing reads it.
            log.discarded += len(layer.grains)
            log.removed += 1
            log.merges.append((layer.label, ""))
            self._detach(layer)
            return
        child = layer.children[0]
        # Combine: child's grains win. Move the smaller side's grains into the larger dict.
        if len(child.grains) <= len(layer.grains):
            merged = layer.grains
            merged.update(child.grains)
            log.moved += len(child.grains)
        else:
            merged = child.grains
            for idx, g in layer.grains.items():
                if idx not in merged:
                    merged[idx] = g
            log.moved += len(layer.grains)
        if child is self.top:
            # Commit: the released layer absorbs the top and is writable again.
            layer.grains = merged
            layer.children = []
            layer.frozen = False
            layer.released = False
            self._auto.discard(layer)
            layer.change_epoch = None
            child.grains = {}
            child.parent = None
            child._disk = None
            self.top = layer
            log.merges.append((child.label, layer.label))
        else:
            # The child survives in the layer's place (snapshots hold the child object).
            parent = layer.parent
            child.grains = merged
            child.parent = parent
            if parent is not None:
                parent.children[parent.children.index(layer)] = child
            else:
                self.base = child
            log.merges.append((child.label, layer.label))
            if layer.label:
                child.label = layer.label
            layer.grains = {}
            layer.children = []
            layer.parent = None
            layer._disk = None
            self._auto.discard(layer)
        log.removed += 1

    # -- changed-block tracking ----------------------------------------------------------

    def changed_grains(self, since_epoch: int, at: Layer | None = None) -> set[int]:
        """Grain indices that may differ between the state at ``since_epoch`` and ``at``.

        Over-reports (a grain written twice back to the same value, grains changed after
        ``at`` froze) but never under-reports.
        """
        _check_int("since_epoch", since_epoch)
        if since_epoch > self._epoch:
            _invalid("since_epoch", f"<= current epoch {self._epoch}", since_epoch)
        if since_epoch < self._tracking_start:
            _invalid(
                "since_epoch",
                f">= {self._tracking_start} (tracking was reset then)",
                since_epoch,
                "changes before a reset are unknown; read all allocated areas instead",
            )
        threshold = since_epoch
        if at is not None:
            lay = self._own(at)
            if lay.change_epoch is not None:
                threshold = min(threshold, lay.change_epoch)
        return {idx for idx, ep in self._changed.items() if ep >= threshold}

    def changed_areas(
        self, since_epoch: int, at: Layer | None = None, start_offset: int = 0
    ) -> list[tuple[int, int]]:
        """Byte areas (coalesced, sorted) that changed since ``since_epoch`` as seen at ``at``.

        ``since_epoch`` is a frozen layer's ``change_epoch`` (or :attr:`epoch` when
        tracking starts). Areas start at or after ``start_offset``.
        """
        _check_int("start_offset", start_offset)
        if start_offset > self.capacity:
            _invalid("start_offset", f"<= capacity {self.capacity}", start_offset)
        grains = self.changed_grains(since_epoch, at)
        return coalesce_grains(grains, self.grain_size, self.capacity, start_offset)

    @property
    def tracking_start(self) -> int:
        """Oldest epoch ``changed_areas`` can answer for (moves on :meth:`reset_tracking`)."""
        return self._tracking_start

    def reset_tracking(self) -> int:
        """Forget all change records (CBT reset, e.g. after a power failure).

        Returns the new epoch; older epochs are refused from now on, since the changes
        made before the reset are no longer known (the host answers ``InvalidArgument``).
        """
        self._changed.clear()
        self._tracking_start = self.new_epoch()
        return self._tracking_start

    # -- seam for loaders (``disk/_persistent.py``) ----------------------------------------

    @property
    def auto_merge(self) -> frozenset[Layer]:
        """Released layers that merge as soon as the tree allows (``release(merge=True)``)."""
        return frozenset(self._auto)

    def restore(
        self,
        *,
        epoch: int | None = None,
        tracking_start: int | None = None,
        auto_merge: Iterable[Layer] | None = None,
        changed: Mapping[int, int] | None = None,
    ) -> None:
        """Give a disk rebuilt from saved state (its layers already in place) the rest of
        that state: the change epoch, the oldest epoch tracking answers for, the released
        layers that merge on their own, and the changed-grain records (grain index to
        epoch). ``None`` keeps what is there. The records are stored as they are, not as
        changes (a subclass that logs changes does not log them again)."""
        if epoch is not None:
            self._epoch = _check_int("epoch", epoch)
        if tracking_start is not None:
            if tracking_start > self._epoch:
                _invalid("tracking_start", f"<= the epoch {self._epoch}", tracking_start)
            self._tracking_start = tracking_start
        if auto_merge is not None:
            auto = set(auto_merge)
            for layer in auto:
                self._own(layer)
            self._auto = auto
        if changed is not None:
            for idx, ep in changed.items():
                dict.__setitem__(self._changed, idx, ep)

    def __repr__(self) -> str:
        return (
            f"<LayeredDisk capacity={self.capacity} layers={len(self.layers())} top={self.top!r}>"
        )
