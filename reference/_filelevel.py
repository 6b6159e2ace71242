"""File-level mount of a Windows VM's snapshot (seed: "Performing File-Level Virtual Machine
Backups"; spec R56).

Each guest volume with a drive letter appears at ``<root>/<vm>/letters/<L>/`` as a real
directory holding the files as of the snapshot: they are read through the guest file system
opened on the snapshot's read-only disk view and materialised on the proxy, with their guest
modification times, then made read-only. The cost grows with the data in the volumes.

- Only Windows guests (FAT/NTFS with drive letters) can be mounted this way;
  ``UnsupportedGuestError`` says so for any other guest, before a snapshot is taken.
- Volumes without a drive letter are invisible to VCB: they are not mounted and are reported
  (``FileMount.skipped``, a ``note`` event).
- Unmount removes the whole ``<root>/<vm>`` tree.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vcbsim.simulator import InvalidInputError, StateError

from ._client import HostClient, VMInfo, VolumeInfo

__all__ = ["FileMount", "UnsupportedGuestError", "mount_files"]


class UnsupportedGuestError(InvalidInputError):
    """File-level backup was asked for a VM whose guest is not Windows."""

    def __init__(self, vm: VMInfo) -> None:
        super().__init__(
            f"file-level backup (-t file) of VM {vm.name!r}",
            expected="a Microsoft Windows guest",
            got=f"{vm.os_family} guest ({vm.guest_id})",
            hint="VCB mounts only Windows volumes with drive letters; use an image-level "
            "backup (-t fullvm) for this VM",
        )
        self.vm = vm.name


@dataclass(frozen=True, slots=True)
class FileMount:
    path: Path
    letters: dict[str, Path]
    skipped: list[VolumeInfo] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


def _safe_join(root: Path, rel: str) -> Path:
    parts = [p for p in rel.split("/") if p]
    if any(p in (".", "..") for p in parts):
        msg = "guest path"
        raise InvalidInputError(msg, expected="a path inside the volume", got=rel)
    return root.joinpath(*parts)


def mount_files(
    client: HostClient,
    vm: VMInfo,
    snapshot_id: str,
    dest: Path,
    *,
    fault_point: Callable[[str, str], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> FileMount:
    """Mount every lettered volume of ``vm`` as of ``snapshot_id`` under ``dest/letters``."""
    from ._workflow import emit_event, force_remove

    if not vm.is_windows:
        raise UnsupportedGuestError(vm)
    if dest.exists():
        msg = f"mount point {dest} already exists; unmount the earlier mount first"
        raise StateError(msg, path=str(dest))
    letters: dict[str, Path] = {}
    skipped: list[VolumeInfo] = []
    nfiles = nbytes = 0
    mounted: list[Path] = []
    (dest / "letters").mkdir(parents=True)
    try:
        for vol in sorted(vm.volumes, key=lambda v: (v.letter or "~", v.index)):
            if not vol.letter:
                skipped.append(vol)
                client.trace.emit(
                    "proxy",
                    "note",
                    vm=vm.moref,
                    text=f"volume {vol.name} ({vol.label or 'no label'}) has no drive letter: "
                    "not mounted (VCB sees only volumes with drive letters)",
                )
                continue
            letter = vol.letter.upper().rstrip(":")
            if fault_point is not None:
                fault_point("mount", f"{vm.name}:{letter}")
            root = dest / "letters" / letter
            root.mkdir()
            mounted.append(root)
            reader = client.open_volume(vm.moref, snapshot_id, vol)
            dir_times: list[tuple[Path, float]] = []
            for entry in reader.walk():
                target = _safe_join(root, entry.path)
                if entry.is_dir:
                    target.mkdir(parents=True, exist_ok=True)
                    dir_times.append((target, entry.mtime))
                    continue
                data = reader.read_bytes(entry.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                os.utime(target, (entry.mtime, entry.mtime))
                os.chmod(target, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
                nfiles += 1
                nbytes += len(data)
                if progress is not None:
                    progress(f"{vm.name}: mount {letter}:", len(data), 0)
            for d, t in sorted(dir_times, key=lambda x: -len(x[0].parts)):
                os.chmod(d, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
                os.utime(d, (t, t))
            os.chmod(root, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
            letters[letter] = root
            emit_event(client.trace, "mount", vm=vm.moref, path=str(root), kind="file", letter=letter)
    except Exception:
        force_remove(dest)
        for root in mounted:
            if root.name in letters:
                client.trace.emit("proxy", "unmount", vm=vm.moref, path=str(root))
        raise
    return FileMount(dest, letters, skipped, nfiles, nbytes)
