"""A content-addressed store of blobs on the backup medium (``<medium>/blobs/ab/cdef...``).

Each blob is named by the sha256 of its bytes, so a file backed up twice is stored once and
a restore can verify every byte it reads. Writes go to a temporary file in the same directory
and are renamed into place: a crash never leaves a blob that does not match its name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from vcbsim.simulator import InvalidInputError, NotFoundError, VcbsimError

__all__ = ["BlobStore", "CorruptBlobError", "sha256_bytes"]

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class CorruptBlobError(VcbsimError):
    """A blob's bytes no longer match its name (the medium is damaged)."""


class BlobStore:
    """Blobs under ``root``; ``put_*`` return the sha256 hex digest that names the blob."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            msg = "blob digest"
            raise InvalidInputError(msg, expected="64 lowercase hex digits", got=digest)
        return self.root / digest[:2] / digest[2:]

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, str) and self.path(digest).is_file()

    def put_bytes(self, data: bytes) -> tuple[str, bool]:
        """Store ``data``; returns ``(digest, newly_written)``."""
        digest = sha256_bytes(data)
        target = self.path(digest)
        if target.is_file():
            return digest, False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest, True

    def put_file(
        self, source: str | Path, *, progress: Callable[[int], None] | None = None
    ) -> tuple[str, int, bool]:
        """Stream a proxy file into the store; returns ``(digest, size, newly_written)``."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        h = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                while chunk := src.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
            digest = h.hexdigest()
            target = self.path(digest)
            if target.is_file():
                Path(tmp).unlink()
                return digest, size, False
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            return digest, size, True
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def open(self, digest: str) -> BinaryIO:
        p = self.path(digest)
        if not p.is_file():
            msg = "blob"
            raise NotFoundError(msg, digest)
        return open(p, "rb")

    def get_bytes(self, digest: str) -> bytes:
        with self.open(digest) as fh:
            data = fh.read()
        if sha256_bytes(data) != digest:
            msg = f"blob {digest[:12]}... on the medium does not match its sha256; the medium is damaged"
            raise CorruptBlobError(msg, digest=digest)
        return data

    def copy_to(self, digest: str, target: str | Path) -> int:
        """Write the blob to ``target`` (verified); returns the size."""
        h = hashlib.sha256()
        size = 0
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self.open(digest) as src, open(target, "wb") as out:
            while chunk := src.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if h.hexdigest() != digest:
            target.unlink(missing_ok=True)
            msg = f"blob {digest[:12]}... on the medium does not match its sha256; the medium is damaged"
            raise CorruptBlobError(msg, digest=digest)
        return size

    def digests(self) -> Iterator[str]:
        for sub in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if sub.is_dir() and len(sub.name) == 2:
                for f in sorted(sub.iterdir()):
                    if not f.name.startswith("."):
                        yield sub.name + f.name
