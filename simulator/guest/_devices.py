"""Small in-memory block devices: for tests, teaching, and guests without a layered disk.

``SparseDevice`` stores only written 64 KiB chunks in a dict (unwritten areas read as zeros,
like the disk layer's grains), so a 100 GiB volume costs nothing until written. ``frozen()``
returns a read-only copy of its current contents - what a snapshot's view looks like to the
guest layer - and ``save_image`` writes it to a sparse image file for ``mtools``/``fsck.fat``.
"""

from __future__ import annotations

import os

from .._errors import InvalidInputError, StateError
from ..disk._device import BlockReader

__all__ = ["SparseDevice", "ReadOnlyDevice"]

CHUNK = 65536


class SparseDevice:
    """A dict-backed ``BlockDevice`` of ``size`` bytes; never-written chunks read as zeros."""

    def __init__(self, size: int, *, readonly: bool = False) -> None:
        if not isinstance(size, int) or size <= 0:
            raise InvalidInputError(
                what="device size", expected="a positive int of bytes", got=size
            )
        self._size = size
        self.chunks: dict[int, bytearray] = {}
        self.readonly = readonly
        self.reads = 0
        self.writes = 0
        self.bytes_written = 0

    @property
    def size(self) -> int:
        return self._size

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self._size:
            raise InvalidInputError(
                what="device access",
                expected=f"a range inside 0..{self._size}",
                got=(offset, length),
            )

    def read(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        self.reads += 1
        out = bytearray(length)
        pos = offset
        end = offset + length
        while pos < end:
            idx, within = divmod(pos, CHUNK)
            n = min(CHUNK - within, end - pos)
            chunk = self.chunks.get(idx)
            if chunk is not None:
                out[pos - offset : pos - offset + n] = chunk[within : within + n]
            pos += n
        return bytes(out)

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        if self.readonly:
            msg = "this device is a read-only view; it cannot be written"
            raise StateError(msg)
        self._check(offset, len(data))
        self.writes += 1
        self.bytes_written += len(data)
        pos = offset
        end = offset + len(data)
        mv = memoryview(data)
        while pos < end:
            idx, within = divmod(pos, CHUNK)
            n = min(CHUNK - within, end - pos)
            chunk = self.chunks.get(idx)
            if chunk is None:
                chunk = self.chunks[idx] = bytearray(CHUNK)
            chunk[within : within + n] = mv[pos - offset : pos - offset + n]
            pos += n

    def frozen(self) -> SparseDevice:
        """A read-only copy of the current contents (a snapshot as the guest layer sees it)."""
        copy = SparseDevice(self._size, readonly=True)
        copy.chunks = {k: bytearray(v) for k, v in self.chunks.items()}
        return copy

    def save_image(self, path: str | os.PathLike[str]) -> None:
        """Write the contents to a sparse image file of exactly ``size`` bytes."""
        with open(path, "wb") as f:
            for idx in sorted(self.chunks):
                f.seek(idx * CHUNK)
                f.write(self.chunks[idx][: max(0, min(CHUNK, self._size - idx * CHUNK))])
            f.truncate(self._size)

    @classmethod
    def from_image(cls, path: str | os.PathLike[str]) -> SparseDevice:
        """Load an image file (non-zero chunks only)."""
        size = os.path.getsize(path)
        dev = cls(size)
        with open(path, "rb") as f:
            idx = 0
            while block := f.read(CHUNK):
                if block.count(0) != len(block):
                    dev.chunks[idx] = bytearray(block.ljust(CHUNK, b"\0"))
                idx += 1
        return dev


class ReadOnlyDevice:
    """A read-only wrapper around any ``BlockDevice``: writes raise ``StateError``."""

    def __init__(self, device: BlockReader) -> None:
        self._device = device

    @property
    def size(self) -> int:
        return int(self._device.size)

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self._device.read(offset, length))

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        msg = "this device is a read-only view; it cannot be written"
        raise StateError(msg)
