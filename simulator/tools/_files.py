"""How VMware Tools sees the guest's files: a small protocol, and an in-memory implementation.

Tools only needs to look for scripts, read their text and let scripts write log files, so the
protocol is deliberately small. ``vcbsim.simulator.guest.GuestFileSystem`` (FAT on disk
blocks) satisfies it; ``MemoryGuestFiles`` is a dictionary-backed implementation for unit
tests, the REPL and anything that does not need the files on virtual disks.

Required members (``GuestFiles``): ``os_family`` (``'windows'`` or ``'linux'``), ``exists``,
``is_dir``, ``listdir`` (names, not paths), ``read_bytes``, ``write_bytes``.

Optional members, used when present (``hasattr``):

- ``is_file(path)``: a regular file. Without it, "exists and is not a directory" is used.
- ``append(path, data)``: append to a file. Without it, read + write is used.
- ``is_executable(path)``: the POSIX execute bit. Without it every file is executable (FAT
  has no execute bit).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from .._errors import InvalidInputError, NotFoundError

__all__ = ["GuestFiles", "MemoryGuestFiles", "is_file", "append_bytes", "is_executable", "join"]


@runtime_checkable
class GuestFiles(Protocol):
    """The guest file access VMware Tools needs (see the module docstring)."""

    @property
    def os_family(self) -> str: ...

    def exists(self, path: str) -> bool: ...

    def is_dir(self, path: str) -> bool: ...

    def listdir(self, path: str) -> list[str]: ...

    def read_bytes(self, path: str) -> bytes: ...

    def write_bytes(self, path: str, data: bytes) -> None: ...


def is_file(files: GuestFiles, path: str) -> bool:
    """A regular file (uses ``files.is_file`` when the implementation has one)."""
    fn = getattr(files, "is_file", None)
    if fn is not None:
        return bool(fn(path))
    return files.exists(path) and not files.is_dir(path)


def is_executable(files: GuestFiles, path: str) -> bool:
    """The execute bit (always true when the file system has none)."""
    fn = getattr(files, "is_executable", None)
    return True if fn is None else bool(fn(path))


def append_bytes(files: GuestFiles, path: str, data: bytes) -> None:
    """Append ``data`` to ``path``, creating the file (not its directory) if needed."""
    fn = getattr(files, "append", None)
    if fn is not None:
        fn(path, data)
        return
    old = files.read_bytes(path) if files.exists(path) else b""
    files.write_bytes(path, old + data)


def join(os_family: str, directory: str, name: str) -> str:
    """Join a directory and a name with the guest's separator."""
    sep = "\\" if os_family == "windows" else "/"
    return directory if not name else directory.rstrip(sep) + sep + name


class MemoryGuestFiles:
    """A guest's files in a dictionary, with the guest OS's path rules.

    Windows: paths like ``C:\\Dir\\f.txt``, ``/`` accepted as a separator, case-insensitive,
    case-preserving (``listdir`` returns names as created). Linux: POSIX, case-sensitive.
    Parent directories must exist to create a file (``mkdir(parents=True)`` or
    ``write_bytes(..., parents=True)`` creates them). ``executable`` marks Linux execute bits.
    """

    def __init__(self, os_family: str = "windows") -> None:
        if os_family not in ("windows", "linux"):
            raise InvalidInputError(what="os_family", expected="'windows' or 'linux'", got=os_family)
        self._os = os_family
        # key: normalised path; value: (display name, data or None for a directory, exec bit)
        self._nodes: dict[str, tuple[str, bytes | None, bool]] = {}
        for root in self._roots():
            self._nodes[root] = (root, None, True)

    @property
    def os_family(self) -> str:
        return self._os

    # -- path handling --------------------------------------------------------------
    def _roots(self) -> Iterable[str]:
        return ("c:",) if self._os == "windows" else ("/",)

    def _split(self, path: str) -> list[str]:
        """Path components as written (first one is the root)."""
        if self._os == "windows":
            p = path.replace("/", "\\")
            if len(p) < 2 or p[1] != ":" or not p[0].isalpha():
                raise InvalidInputError(what=
                    "guest path", expected="an absolute Windows path like C:\\Dir\\f.txt", got=path
                )
            parts = [p[:2]] + [c for c in p[2:].split("\\") if c]
        else:
            if not path.startswith("/"):
                raise InvalidInputError(what=
                    "guest path", expected="an absolute POSIX path like /etc/f", got=path
                )
            parts = ["/"] + [c for c in path.split("/") if c]
        return parts

    def _key(self, parts: list[str]) -> str:
        if self._os == "windows":
            return "\\".join(parts).lower()
        return "/" + "/".join(parts[1:])

    def _norm(self, path: str) -> str:
        return self._key(self._split(path))

    def _parent_key(self, path: str) -> tuple[str, str]:
        parts = self._split(path)
        if len(parts) == 1:
            raise InvalidInputError(what="guest path", expected="a path below the root", got=path)
        return self._key(parts[:-1]), parts[-1]

    def _ensure_drive(self, path: str) -> None:
        if self._os == "windows":
            drive = self._split(path)[0]
            self._nodes.setdefault(drive.lower(), (drive.upper(), None, True))

    # -- GuestFiles -------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        return self._norm(path) in self._nodes

    def is_dir(self, path: str) -> bool:
        node = self._nodes.get(self._norm(path))
        return node is not None and node[1] is None

    def is_file(self, path: str) -> bool:
        node = self._nodes.get(self._norm(path))
        return node is not None and node[1] is not None

    def is_executable(self, path: str) -> bool:
        node = self._nodes.get(self._norm(path))
        return node is not None and node[2]

    def listdir(self, path: str) -> list[str]:
        key = self._norm(path)
        node = self._nodes.get(key)
        if node is None or node[1] is not None:
            raise NotFoundError(kind="guest directory", name=path)
        out = []
        for k, (name, _, _) in self._nodes.items():
            if k != key and self._parent_of(k) == key:
                out.append(name)
        return sorted(out)

    def _parent_of(self, key: str) -> str | None:
        sep = "\\" if self._os == "windows" else "/"
        if self._os == "linux" and key == "/":
            return None
        if sep not in key:
            return None
        head = key.rsplit(sep, 1)[0]
        return head or "/"

    def read_bytes(self, path: str) -> bytes:
        node = self._nodes.get(self._norm(path))
        if node is None or node[1] is None:
            raise NotFoundError(kind="guest file", name=path)
        return node[1]

    def write_bytes(self, path: str, data: bytes, *, parents: bool = False, executable: bool | None = None) -> None:
        self._ensure_drive(path)
        parent, name = self._parent_key(path)
        if parent not in self._nodes and parents:
            self.mkdir(self._parent_path(path), parents=True)
        pnode = self._nodes.get(parent)
        if pnode is None or pnode[1] is not None:
            raise NotFoundError(kind="guest directory", name=self._parent_path(path))
        key = self._norm(path)
        old = self._nodes.get(key)
        if old is not None and old[1] is None:
            raise InvalidInputError(what="guest file", expected="a file path", got=f"{path} (a directory)")
        display = old[0] if old is not None else name
        exe = executable if executable is not None else (old[2] if old is not None else True)
        self._nodes[key] = (display, bytes(data), exe)

    def append(self, path: str, data: bytes) -> None:
        old = self.read_bytes(path) if self.is_file(path) else b""
        self.write_bytes(path, old + data)

    # -- extras -----------------------------------------------------------------------
    def _parent_path(self, path: str) -> str:
        parts = self._split(path)[:-1]
        if self._os == "windows":
            return parts[0] + "\\" + "\\".join(parts[1:])
        return "/" + "/".join(parts[1:])

    def mkdir(self, path: str, *, parents: bool = False) -> None:
        self._ensure_drive(path)
        parts = self._split(path)
        for i in range(2, len(parts) + 1):
            key = self._key(parts[:i])
            node = self._nodes.get(key)
            if node is not None:
                if node[1] is not None:
                    raise InvalidInputError(what="guest directory", expected="a directory path", got=path)
                continue
            if i < len(parts) and not parents:
                raise NotFoundError(kind="guest directory", name=self._key(parts[:i]))
            self._nodes[key] = (parts[i - 1], None, True)

    def set_executable(self, path: str, executable: bool) -> None:
        key = self._norm(path)
        name, data, _ = self._nodes[key]
        self._nodes[key] = (name, data, executable)

    def delete(self, path: str) -> None:
        key = self._norm(path)
        if key not in self._nodes:
            raise NotFoundError(kind="guest file", name=path)
        del self._nodes[key]

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8", errors="replace")
