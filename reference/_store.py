"""A content-addressed store of blobs on the backup medium (``<medium>/blobs/ab/cdef...``).

Each blob is named by the sha256 of its bytes, so a file backed up twice is stored once and
a restore can verify every byte it reads. Writes go to a temporary file in the same directory
and are renamed into place: a crash never leaves a blob that does not match its name.

A full backup of many small files writes one blob per file, so a blob's cost is kept to the
system calls that promise above needs (issue 18: a file-level full within 2x rsync, which
makes and renames a temporary file per file too): one ``stat`` for deduplication, then
open, write, close and rename of a temporary file. The fan-out folders are made once per
store (not checked per blob), and the temporary name is the process id and a counter rather
than ``tempfile``'s random one (``O_EXCL`` still refuses a name in use).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from vcbsim.simulator import InvalidInputError, NotFoundError, VcbsimError

__all__ = ["BlobStore", "CorruptBlobError", "sha256_bytes"]

_CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class CorruptBlobError(VcbsimError):
    """A blob's bytes no longer match its name (the medium is damaged)."""


class BlobStore:
    """Blobs under ``root``; ``put_*`` return the sha256 hex digest that names the blob."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)
        #: fan-out folders known to exist (made at most once per store, not per blob)
        self._dirs: set[str] = set()
        self._seq = itertools.count()

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or not _HEX.issuperset(digest):
            msg = "blob digest"
            raise InvalidInputError(msg, expected="64 lowercase hex digits", got=digest)
        return self.root / digest[:2] / digest[2:]

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, str) and self.path(digest).is_file()

    def put_bytes(self, data: bytes) -> tuple[str, bool]:
        """Store ``data``; returns ``(digest, newly_written)``."""
        digest = hashlib.sha256(data).hexdigest()
        folder = f"{self._root}/{digest[:2]}"
        target = f"{folder}/{digest[2:]}"
        if os.path.isfile(target):
            return digest, False
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)
        tmp = f"{folder}/.tmp-{os.getpid()}-{next(self._seq)}"
        try:
            fd = os.open(tmp, _TMP_FLAGS, 0o600)
        except FileExistsError:  # a leftover of a killed run with our pid: a fresh name
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        except FileNotFoundError:  # the folder was removed behind the store's back
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
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
