"""The block-device protocols: one family for every disk-shaped thing in vcbsim.

Why two levels: most code only *reads* a disk (a VMDK writer, a partition-table reader, a
file system opened on a snapshot, a backup proxy copying a disk it reached over the network),
and a snapshot's disk cannot be written at all. Typing those readers as ``BlockDevice`` made
every read-only source (``reference``'s disks over HTTP, a changed-areas overlay) a type error
although nothing writes to it; typing them as a separate, unrelated protocol made two
families. So::

    BlockReader            size, read(offset, length)            a snapshot view, a remote disk
    ├── BlockDevice        + write(offset, data)                 a live disk, a partition on it
    └── SparseBlockReader  + allocated_areas()                   a reader that knows where data is

A function asks for the least it needs: ``BlockReader`` to read, ``BlockDevice`` to write.
``LayerView`` (a snapshot) satisfies ``BlockDevice`` structurally but its ``write`` raises
``StateError``; that is a runtime rule, not a type.

This module is a leaf (no imports from vcbsim) so that ``guest``, ``disk`` and ``reference``
can all take these names from here without an import cycle.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["BlockReader", "BlockDevice", "SparseBlockReader", "SparseBlockDevice"]


@runtime_checkable
class BlockReader(Protocol):
    """What reading a disk needs: a size and byte-addressed reads."""

    @property
    def size(self) -> int:
        """Capacity in bytes."""
        ...

    def read(self, offset: int, length: int) -> bytes:
        """Return ``length`` bytes starting at ``offset``."""
        ...


@runtime_checkable
class BlockDevice(BlockReader, Protocol):
    """A disk that can also be written: what a file system being written needs."""

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Store ``data`` at ``offset``."""
        ...


@runtime_checkable
class SparseBlockReader(BlockReader, Protocol):
    """A reader that can say where its data is, so copies skip the never-written rest.

    ``write_vmdk`` uses this to run in time proportional to the data instead of the capacity.
    """

    def allocated_areas(self) -> list[tuple[int, int]]:
        """``(offset, length)`` areas that may hold non-zero data; everything else is zeros."""
        ...


#: The name this protocol had before readers and writers were split (it never needed
#: ``write``); kept importable for one release.
SparseBlockDevice = SparseBlockReader
