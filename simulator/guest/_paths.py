"""Guest path syntax: Windows drive-letter paths and POSIX paths, parsed as the guest would.

Parsing and normalisation use pyfakefs's OS emulation (a ``FakeFilesystem`` switched to
``OSType.WINDOWS`` or ``OSType.LINUX``: ``splitroot`` and ``normpath``), as DESIGN.md asks, so
``c:/Program Files/../x``, ``C:\\a\\.\\b\\`` and ``//srv/x`` mean what they mean to the guest.
Only the rules pyfakefs does not cover are written here: which roots a guest accepts
(absolute paths with a drive letter on Windows; no UNC, ``\\\\?\\`` or drive-relative paths)
and how a path is displayed back.

A parsed path is a ``GuestPath``: the volume key (``"C:"`` on Windows, the absolute POSIX path
on Linux, matched against the mount table by ``GuestFileSystem``) and the name components.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pyfakefs.fake_filesystem import FakeFilesystem, OSType

from .._errors import InvalidInputError

__all__ = ["OS_FAMILIES", "GuestPath", "normalize_os_family", "parse_guest_path"]

#: Accepted spellings of the two guest families (vSphere's guestFamily values included).
OS_FAMILIES: dict[str, str] = {
    "windows": "windows",
    "windowsguest": "windows",
    "win": "windows",
    "linux": "linux",
    "linuxguest": "linux",
}


def normalize_os_family(os_family: str) -> str:
    """``"windows"`` or ``"linux"`` for any accepted spelling; InvalidInputError otherwise."""
    key = os_family.lower() if isinstance(os_family, str) else ""
    if key not in OS_FAMILIES:
        raise InvalidInputError(
            what="guest OS family",
            expected="'windows' or 'linux' (or vSphere's 'windowsGuest' / 'linuxGuest')",
            got=os_family,
        )
    return OS_FAMILIES[key]


@cache
def _emulator(family: str) -> FakeFilesystem:
    fs = FakeFilesystem()
    fs.os = OSType.WINDOWS if family == "windows" else OSType.LINUX
    return fs


@dataclass(frozen=True, slots=True)
class GuestPath:
    """A parsed absolute guest path.

    ``drive`` is ``"C:"`` (upper case) on Windows and ``""`` on Linux; ``parts`` are the name
    components below the root, as typed (case preserved).
    """

    family: str
    drive: str
    parts: tuple[str, ...]

    def __str__(self) -> str:
        if self.family == "windows":
            return self.drive + "\\" + "\\".join(self.parts)
        return "/" + "/".join(self.parts)

    @property
    def posix(self) -> str:
        """The absolute POSIX form (``/a/b``), used to match Linux mount points."""
        return "/" + "/".join(self.parts)


def parse_guest_path(family: str, path: str) -> GuestPath:
    """Parse and normalise an absolute guest path for ``family`` (``windows``/``linux``)."""
    family = normalize_os_family(family)
    if not isinstance(path, str) or not path or "\x00" in path:
        raise InvalidInputError(
            what="guest path",
            expected=_example(family),
            got=path,
        )
    emu = _emulator(family)
    drive, root, _rest = emu.splitroot(path)
    if family == "windows":
        if len(drive) != 2 or drive[1] != ":" or not drive[0].isascii() or not drive[0].isalpha():
            raise InvalidInputError(
                what="Windows guest path",
                expected="an absolute path with a drive letter, such as C:\\dir\\file.txt",
                got=path,
                hint="UNC (\\\\server\\share), \\\\?\\ and relative paths are not guest paths",
            )
        if not root and _rest:
            raise InvalidInputError(
                what="Windows guest path",
                expected=f"an absolute path such as {drive}\\{_rest}",
                got=path,
                hint="drive-relative paths (C:file) depend on a current directory",
            )
        norm = emu.normpath(path)
        rest = norm[2:]
        parts = tuple(p for p in rest.replace("/", "\\").split("\\") if p)
        for p in parts:
            if p.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_DEVICES:
                raise InvalidInputError(
                    what="Windows guest path",
                    expected="file names that are not device names (CON, NUL, COM1, ...)",
                    got=path,
                )
        return GuestPath("windows", drive.upper(), parts)
    if not root:
        raise InvalidInputError(what="Linux guest path", expected=_example(family), got=path)
    norm = emu.normpath(path)
    parts = tuple(p for p in norm.split("/") if p)
    return GuestPath("linux", "", parts)


_WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)


def _example(family: str) -> str:
    if family == "windows":
        return "an absolute path such as C:\\dir\\file.txt"
    return "an absolute path such as /dir/file.txt"
