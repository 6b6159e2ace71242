"""A guest's view of its files: volumes, drive letters or mount points, and the OS's paths.

``GuestFileSystem(os_family, volumes)`` maps guest paths onto the FAT file systems of the
guest's volumes:

- **Windows**: ``C:\\Program Files\\VMware\\VMware Tools\\backupScripts.d\\a.bat``; drive
  letters and names are case-insensitive (FAT stores names case-preserving), ``/`` is accepted
  as a separator, ``..`` and ``.`` are resolved.
- **Linux**: POSIX paths resolved through a mount table (``/`` and e.g. ``/data``; the longest
  matching mount point wins). The volumes are FAT, and Linux's vfat driver looks names up
  case-insensitively too, so lookups stay case-insensitive here as well.

Path parsing is in ``_paths`` (pyfakefs's OS emulation). A volume with neither a letter nor a
mount point exists on disk (a recovery partition, say) but has no path: it is listed in
``volumes`` / ``unmounted`` and can be walked by passing the ``Volume`` itself.

Every write and delete through this class emits ``guest.write`` / ``guest.delete`` on the
``Trace`` if one is given, with the display path (``C:\\dir\\file``), so the conformance checker
can tell which files a backup must contain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from .._clock import VirtualClock
from .._errors import InvalidInputError, NotFoundError
from .._trace import Trace
from ._fat import FatFileSystem, FatStat
from ._partition import BlockDevice, Partition
from ._paths import GuestPath, normalize_os_family, parse_guest_path

__all__ = ["GuestFileSystem", "GuestStat", "Volume", "format_disk"]


@dataclass(eq=False)
class Volume:
    """A formatted partition as the guest sees it.

    ``letter`` (Windows, ``"C"``), ``mount_point`` (Linux, ``"/data"``), or neither: a volume
    without a path. ``fs`` is opened from ``device`` when not given. ``disk_index`` and
    ``partition`` say where the volume lies (set by whoever partitioned the disk).
    """

    device: BlockDevice
    letter: str | None = None
    mount_point: str | None = None
    label: str = ""
    fs: FatFileSystem | None = None
    disk_index: int | None = None
    partition: Partition | None = None

    def __post_init__(self) -> None:
        if self.letter is not None:
            letter = self.letter.rstrip(":\\/").upper() if isinstance(self.letter, str) else ""
            if len(letter) != 1 or not ("A" <= letter <= "Z"):
                raise InvalidInputError(
                    what="volume drive letter",
                    expected="one letter A-Z, such as 'C'",
                    got=self.letter,
                )
            self.letter = letter
        if self.mount_point is not None:
            mp = parse_guest_path("linux", self.mount_point)
            self.mount_point = mp.posix
        if self.fs is None:
            self.fs = FatFileSystem(self.device)
        if not self.label:
            self.label = self.fs.label

    @property
    def filesystem(self) -> FatFileSystem:
        assert self.fs is not None
        return self.fs

    @property
    def name(self) -> str:
        """``C:``, ``/data``, or ``<label>`` for a volume without a path."""
        if self.letter:
            return f"{self.letter}:"
        if self.mount_point:
            return self.mount_point
        return f"<{self.label or 'unnamed'}>"

    def __repr__(self) -> str:
        return f"Volume({self.name}, label={self.label!r})"


@dataclass(frozen=True, slots=True)
class GuestStat:
    """``stat`` of a guest path. Times are virtual Unix seconds (FAT: 2-second mtime)."""

    path: str
    is_dir: bool
    size: int
    mtime: float
    ctime: float
    short_name: str = ""
    volume: Volume | None = field(default=None, compare=False)


class GuestFileSystem:
    """The files of one guest, addressed with the guest OS's paths."""

    def __init__(
        self,
        os_family: str,
        volumes: Sequence[Volume],
        *,
        trace: Trace | None = None,
        vm: str | None = None,
        clock: VirtualClock | None = None,
    ) -> None:
        self.os_family = normalize_os_family(os_family)
        self.volumes: list[Volume] = list(volumes)
        self.trace = trace
        self.vm = vm
        seen: dict[str, Volume] = {}
        for v in self.volumes:
            if not isinstance(v, Volume):
                raise InvalidInputError(what="volumes", expected="Volume objects", got=v)
            if self.os_family == "windows" and v.mount_point is not None:
                raise InvalidInputError(
                    what=f"volume {v.label!r}",
                    expected="a drive letter (or none) on a Windows guest",
                    got=f"mount point {v.mount_point!r}",
                )
            if self.os_family == "linux" and v.letter is not None:
                raise InvalidInputError(
                    what=f"volume {v.label!r}",
                    expected="a mount point (or none) on a Linux guest",
                    got=f"drive letter {v.letter!r}",
                )
            key = (v.letter or v.mount_point or "").upper()
            if key and key in seen:
                raise InvalidInputError(
                    what="volumes", expected="distinct letters / mount points", got=v.name
                )
            if key:
                seen[key] = v
        if clock is not None:
            for v in self.volumes:
                v.filesystem.clock = lambda: clock.now

    # -- volumes ---------------------------------------------------------------------------
    @property
    def mounted(self) -> list[Volume]:
        """Volumes with a letter or mount point."""
        return [v for v in self.volumes if v.letter or v.mount_point]

    @property
    def unmounted(self) -> list[Volume]:
        """Volumes that exist on disk but have no path in the guest."""
        return [v for v in self.volumes if not (v.letter or v.mount_point)]

    def volume(self, name: str) -> Volume:
        """The volume for ``C`` / ``C:`` / ``C:\\`` (Windows) or a mount point (Linux)."""
        if self.os_family == "windows":
            key = name.rstrip(":\\/").upper() if isinstance(name, str) else name
            for v in self.volumes:
                if v.letter == key:
                    return v
        else:
            mp = parse_guest_path("linux", name).posix
            for v in self.volumes:
                if v.mount_point == mp:
                    return v
        raise NotFoundError(kind="volume", name=name, known=[v.name for v in self.mounted])

    def _resolve(self, path: str) -> tuple[Volume, GuestPath, str]:
        """(volume, parsed path, path inside the volume ``/a/b``)."""
        gp = parse_guest_path(self.os_family, path)
        if self.os_family == "windows":
            letter = gp.drive[0]
            for v in self.volumes:
                if v.letter == letter:
                    return v, gp, "/" + "/".join(gp.parts)
            raise NotFoundError(kind="drive", name=gp.drive, known=[v.name for v in self.mounted])
        posix = gp.posix
        best: Volume | None = None
        for v in self.volumes:
            mp = v.mount_point
            if mp is None:
                continue
            if (mp == "/" or posix == mp or posix.startswith(mp + "/")) and (
                best is None or len(mp) > len(best.mount_point or "")
            ):
                best = v
        if best is None:
            raise NotFoundError(
                kind="mount point for", name=posix, known=[v.name for v in self.mounted]
            )
        mp = best.mount_point or "/"
        inner = posix[len(mp) :] if mp != "/" else posix
        return best, gp, inner or "/"

    def _display(self, v: Volume, inner: str) -> str:
        parts = [p for p in inner.split("/") if p]
        if self.os_family == "windows":
            root = f"{v.letter}:" if v.letter else ""
            return root + "\\" + "\\".join(parts)
        base = v.mount_point or ""
        if base in ("", "/"):
            return "/" + "/".join(parts)
        return base + ("/" + "/".join(parts) if parts else "")

    def normpath(self, path: str) -> str:
        """The normalised display form of ``path`` (``c:/a/../b`` -> ``C:\\b``)."""
        return str(parse_guest_path(self.os_family, path))

    def realpath(self, path: str) -> str:
        """The normalised path with existing names spelled as stored (``C:\\Program Files``)."""
        v, _, inner = self._resolve(path)
        return self._display(v, v.filesystem.realpath(inner))

    # -- queries ---------------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        try:
            v, _, inner = self._resolve(path)
        except NotFoundError:
            return False
        return v.filesystem.exists(inner)

    def is_dir(self, path: str) -> bool:
        try:
            v, _, inner = self._resolve(path)
        except NotFoundError:
            return False
        return v.filesystem.is_dir(inner)

    def is_file(self, path: str) -> bool:
        try:
            v, _, inner = self._resolve(path)
        except NotFoundError:
            return False
        return v.filesystem.is_file(inner)

    def _child_mounts(self, v: Volume, inner: str) -> dict[str, Volume]:
        """Linux: volumes mounted directly below directory ``inner`` of ``v``, by name."""
        if self.os_family != "linux" or v.mount_point is None:
            return {}
        here = self._display(v, inner).rstrip("/") + "/"
        out: dict[str, Volume] = {}
        for other in self.volumes:
            mp = other.mount_point
            if other is v or mp is None or mp == "/" or not mp.startswith(here):
                continue
            child = mp[len(here) :]
            if "/" not in child:
                out[child] = other
        return out

    def listdir(self, path: str) -> list[str]:
        """Names in a directory (on Linux, mount points below it show up as directories)."""
        v, _, inner = self._resolve(path)
        names = v.filesystem.listdir(inner)
        folded = {n.casefold() for n in names}
        names.extend(m for m in self._child_mounts(v, inner) if m.casefold() not in folded)
        return names

    def stat(self, path: str) -> GuestStat:
        v, _, inner = self._resolve(path)
        st: FatStat = v.filesystem.stat(inner)
        return GuestStat(
            path=self._display(v, v.filesystem.realpath(inner)),
            is_dir=st.is_dir,
            size=st.size,
            mtime=st.mtime,
            ctime=st.ctime,
            short_name=st.short_name,
            volume=v,
        )

    def read_bytes(self, path: str) -> bytes:
        v, _, inner = self._resolve(path)
        return v.filesystem.read_file(inner)

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return self.read_bytes(path).decode(encoding)

    def read_tree(self, *tops: str) -> dict[str, bytes]:
        """Every file under the guest directories ``tops`` (``"C:\\"``, ``"/"``), keyed by
        its path case-folded (the way a Windows guest compares names), for comparing a guest
        with a backup or a restore."""
        out: dict[str, bytes] = {}
        for top in tops:
            for dirpath, _dirs, files in self.walk(top):
                sep = "\\" if "\\" in dirpath or dirpath.endswith(":") else "/"
                for name in files:
                    path = dirpath.rstrip(sep) + sep + name
                    out[path.casefold()] = self.read_bytes(path)
        return out

    def walk(self, top: str | Volume) -> Iterator[tuple[str, list[str], list[str]]]:
        """``os.walk``-style ``(dirpath, dirnames, filenames)`` with guest paths.

        ``top`` is a guest path or a ``Volume``; a volume without a path is walked with
        volume-relative paths (``\\dir`` on Windows, ``/dir`` on Linux).
        """
        if isinstance(top, Volume):
            v, inner = top, "/"
        else:
            v, _, inner = self._resolve(top)
            inner = v.filesystem.realpath(inner)
        if not v.filesystem.is_dir(inner):
            raise InvalidInputError(what="walk", expected="a directory", got=str(top))
        stack: list[tuple[Volume, str]] = [(v, inner)]
        while stack:
            vol, here = stack.pop()
            entries = vol.filesystem.scandir(here)
            dirs = [e.name for e in entries if e.is_dir]
            files = [e.name for e in entries if not e.is_dir]
            mounts = self._child_mounts(vol, here)
            # A mount point hides the directory it is mounted on, as on Linux.
            folded = {m.casefold() for m in mounts}
            dirs = [d for d in dirs if d.casefold() not in folded] + list(mounts)
            yield self._display(vol, here), dirs, files
            for name in reversed(dirs):  # dirnames may be pruned in place, as with os.walk
                if name in mounts:
                    stack.append((mounts[name], "/"))
                else:
                    stack.append((vol, here.rstrip("/") + "/" + name))

    # -- changes ---------------------------------------------------------------------------
    def mkdir(self, path: str, *, parents: bool = True, exist_ok: bool = True) -> None:
        v, _, inner = self._resolve(path)
        if inner == "/":
            return
        v.filesystem.mkdir(inner, parents=parents, exist_ok=exist_ok)

    def write_bytes(self, path: str, data: bytes) -> None:
        """Create or overwrite a file (its directory must exist)."""
        v, _, inner = self._resolve(path)
        v.filesystem.write_file(inner, data)
        if self.trace is not None:
            digest = hashlib.sha256(data).hexdigest()
            self.trace.emit(
                "guest",
                "guest.write",
                vm=self.vm,
                path=self._display(v, v.filesystem.realpath(inner)),
                size=len(data),
                sha256=digest,
            )

    def write_text(self, path: str, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(path, text.encode(encoding))

    def append(self, path: str, data: bytes) -> None:
        """Append to a file, creating it if missing (what ``echo x >> file`` does)."""
        old = self.read_bytes(path) if self.is_file(path) else b""
        self.write_bytes(path, old + bytes(data))

    def delete(self, path: str, *, recursive: bool = False) -> None:
        """Delete a file, or a directory (empty unless ``recursive``)."""
        v, _, inner = self._resolve(path)
        fs = v.filesystem
        files: list[str] = []
        if fs.is_dir(inner):
            if inner == "/":
                raise InvalidInputError(
                    what="delete", expected="a file or directory below the root", got=path
                )
            if recursive:
                for dpath, _dirs, names in fs.walk(fs.realpath(inner)):
                    files.extend(self._display(v, dpath.rstrip("/") + "/" + n) for n in names)
        else:
            files.append(self._display(v, fs.realpath(inner)))
        fs.delete(inner, recursive=recursive)
        if self.trace is not None:
            for f in files:
                self.trace.emit("guest", "guest.delete", vm=self.vm, path=f)

    # -- snapshots -------------------------------------------------------------------------
    def as_of(self, views: Mapping[Volume, BlockDevice] | Sequence[BlockDevice]) -> GuestFileSystem:
        """A read-only ``GuestFileSystem`` over snapshot views of this guest's volumes.

        ``views`` gives one read-only device per volume (a mapping, or a sequence in the order
        of ``volumes``): what the proxy's file-level mount sees. Volumes not given are left out.
        """
        if isinstance(views, Mapping):
            pairs = [(v, views[v]) for v in self.volumes if v in views]
        else:
            if len(views) != len(self.volumes):
                raise InvalidInputError(
                    what="snapshot views",
                    expected=f"{len(self.volumes)} devices, one per volume",
                    got=len(views),
                )
            pairs = list(zip(self.volumes, views, strict=True))
        vols = [
            Volume(
                view,
                letter=v.letter,
                mount_point=v.mount_point,
                label=v.label,
                fs=FatFileSystem(view, readonly=True),
                disk_index=v.disk_index,
                partition=v.partition,
            )
            for v, view in pairs
        ]
        return GuestFileSystem(self.os_family, vols, vm=self.vm)

    def __repr__(self) -> str:
        vols = ", ".join(v.name for v in self.volumes)
        return f"GuestFileSystem({self.os_family}, [{vols}])"


def format_disk(
    device: BlockDevice,
    layout: Sequence[tuple[int | None, str | None, str]],
    *,
    disk_index: int = 0,
    clock: VirtualClock | None = None,
    clear: bool = False,
) -> list[Volume]:
    """Partition ``device`` and format one FAT32 volume per ``(size, where, label)``.

    ``where`` is a drive letter (``"C"``), a mount point (``"/data"``) or ``None`` (a volume
    without a path); ``size`` ``None`` takes the rest of the disk (last entry only). Returns
    the volumes, ready for ``GuestFileSystem(os_family, volumes)``. Only a few sectors per
    volume are written, whatever the disk's size: the disk must read zeros (a new disk), or
    pass ``clear=True`` to zero the FATs of a disk that held data before.
    """
    from ._partition import TYPE_FAT32_LBA, PartitionDevice, partition_disk

    for _size, where, label in layout:
        if where is not None and not isinstance(where, str):
            raise InvalidInputError(
                what="volume location", expected="a drive letter, a mount point or None", got=where
            )
        from ._fat import _label_bytes

        _label_bytes(label)  # validate every label before the disk is touched
    parts = partition_disk(device, [(size, TYPE_FAT32_LBA) for size, _w, _l in layout])
    volumes = []
    for part, (_size, where, label) in zip(parts, layout, strict=True):
        pdev = PartitionDevice.of(device, part)
        fs = FatFileSystem.format(
            pdev, label or "NO NAME", clock=clock, hidden_sectors=part.start // 512, clear=clear
        )
        letter = where if where is not None and not where.startswith("/") else None
        mount = where if where is not None and where.startswith("/") else None
        volumes.append(
            Volume(pdev, letter, mount, label, fs, disk_index=disk_index, partition=part)
        )
    return volumes
