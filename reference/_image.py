"""Image-level export (seed: "Performing Image-Level Virtual Machine Backups"; spec R57).

``export_image`` writes ``<root>/<vm>-fullVM/`` with:

- ``<vm>.vmx``: the VM's configuration as the host reports it, its disks pointing at the
  exported VMDKs (not at the snapshot's redo logs);
- one VMDK per virtual disk, as of the snapshot, named like the disk's base file
  (``<vm>.vmdk``); by default VCB's 2 GB split sparse extents (``twoGbMaxExtentSparse``: a
  descriptor plus ``-s001.vmdk`` ... extents), or one ``monolithicSparse`` file;
- disks a snapshot does not cover are left out: independent disks ("not affected by
  snapshots", API enum ``VirtualDiskMode``) and physical-mode RDMs (no redo log, in no
  snapshot: ``simulator/_rdm.py``). Exporting their live data would present bytes from after
  the snapshot as part of it. VADP products do the same: IBM Spectrum Protect for VMware
  ("Independent disks cannot be backed up because they do not support snapshots ... Only
  normal disk volumes are backed up", option ``vmprocessvmwithindependent``; "pRDM volumes do
  not support snapshots ... vRDM volumes ... are included", ``vmprocessvmwithprdm``), Hitachi
  Ops Center Protector ("Physical compatibility mode RDM disks are not backed up because they
  are not included in a VMware snapshot"). The exported ``.vmx`` keeps their device lines
  unchanged (the configuration as of the snapshot, kit rule IMG-CONFIG: it names the disk,
  which is not in the export) and the catalog names each with ``disk.<key>.excluded=`` (the
  reason) instead of a ``filename``; a restore as a new VM drops those lines
  (``drop_vmx_disks``, ``_wirerestore.py``: such a disk "must be manually recreated on a
  restored machine"). A virtual-mode RDM is exported like a disk;
- ``catalog``: a text file in VCB's ``key= value`` style naming the VM, the host, the
  snapshot and each disk, written last, so an export without it is incomplete. Where the host
  tracks changed blocks it names each disk's ``changeId`` as of the snapshot.

An incremental or differential image backup (``_cbt.py``) exports the same files, but each
VMDK holds only the areas that changed since the reference backup (unchanged areas read as
zeros; one ``monolithicSparse`` file unless the changes pass 2 GiB), listed in ``<disk>.changed`` (``offset length`` lines, so an area that changed *to*
zeros is told apart from one that did not change); the catalog then says ``level=`` and, per
disk, ``sinceChangeId=`` and ``changedAreas=``.

Standard tools read the result (``qemu-img info``/``check``/``convert``). Any failure part-way
removes the half-written directory before the error propagates.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vcbsim.simulator import StateError
from vcbsim.simulator.disk import BlockReader

from ._cbt import AreasView, ImagePlan, write_areas_file
from ._client import DiskInfo, HostClient, VMInfo

__all__ = [
    "ImageExport",
    "disk_export_name",
    "drop_vmx_disks",
    "export_image",
    "read_export_catalog",
    "rewrite_vmx_disks",
    "snapshot_covered",
]


@dataclass(frozen=True, slots=True)
class ImageExport:
    path: Path
    vmx: Path
    disks: dict[int, Path]
    catalog: Path
    bytes_written: int
    #: disk key -> why the export left it out (``DiskInfo.snapshot_exclusion``)
    excluded: dict[int, str] = field(default_factory=dict)


def disk_export_name(disk: DiskInfo) -> str:
    """``[datastore1] vm1/vm1_1.vmdk`` -> ``vm1_1.vmdk``."""
    name = disk.file_name.split("]", 1)[-1].strip()
    base = posixpath.basename(name.replace("\\", "/")) or f"disk-{disk.key}.vmdk"
    return base if base.endswith(".vmdk") else base + ".vmdk"


_FILENAME = re.compile(r'^(?P<dev>\S+:\d+)\.fileName = "(?P<file>[^"]*)"\s*$', re.MULTILINE)
_REDO = re.compile(r"-\d{6}(?=\.vmdk$)")


def rewrite_vmx_disks(text: str, names: dict[str, str]) -> str:
    """Point each disk of an exported ``.vmx`` at its exported VMDK.

    While the backup snapshot exists the host's ``.vmx`` names the redo logs
    (``vm-000001.vmdk``), which are not part of the export; each such line is rewritten to
    the exported base disk (``vm.vmdk``) so the export is a consistent VM. ``names`` maps a
    disk's base file name to its exported name.
    """

    def fix(m: re.Match[str]) -> str:
        base = _REDO.sub("", posixpath.basename(m.group("file")))
        new = names.get(base)
        if new is None:
            return m.group(0)
        return f'{m.group("dev")}.fileName = "{new}"'

    return _FILENAME.sub(fix, text)


def drop_vmx_disks(text: str, base_names: set[str]) -> str:
    """Remove every ``<node>.*`` line of the devices whose ``fileName`` is one of ``base_names``
    (the disks an image export leaves out, so the exported VM does not point at them)."""
    nodes = {
        m.group("dev")
        for m in _FILENAME.finditer(text)
        if _REDO.sub("", posixpath.basename(m.group("file"))) in base_names
    }
    if not nodes:
        return text
    keep = [ln for ln in text.splitlines(keepends=True) if ln.split(".", 1)[0].strip() not in nodes]
    return "".join(keep)


def snapshot_covered(vm: VMInfo) -> tuple[VMInfo, dict[int, str]]:
    """The VM with only the disks a snapshot covers, and ``{key: reason}`` for the others."""
    excluded = {d.key: r for d in vm.disks if (r := d.snapshot_exclusion) is not None}
    if not excluded:
        return vm, {}
    return replace(vm, disks=tuple(d for d in vm.disks if d.key not in excluded)), excluded


def _q(value: object) -> str:
    return '"' + str(value).replace('"', "'") + '"'


def export_image(
    client: HostClient,
    vm: VMInfo,
    snapshot_id: str,
    dest: Path,
    *,
    split: bool = True,
    fault_point: Callable[[str, str], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    plan: ImagePlan | None = None,
    open_disk: Callable[[str, int, str | None], BlockReader] | None = None,
) -> ImageExport:
    """Export the VM as of ``snapshot_id`` into ``dest`` (which must not exist, R57).

    ``plan`` (``_cbt.plan_image``) records each disk's change id in the catalog and, for an
    incremental or differential, limits each VMDK to the disk's changed areas. ``open_disk``
    reads a disk through the run's transport (``_transports.py``; default the client's own)."""
    from vcbsim.simulator.disk import SPLIT_EXTENT_SIZE, write_vmdk

    if dest.exists():
        msg = (
            f"export destination {dest} already exists; VCB exports into a new directory "
            "(remove it, or unmount the earlier export first)"
        )
        raise StateError(msg, path=str(dest))
    full_vm = vm
    vm, excluded = snapshot_covered(vm)
    dest.mkdir(parents=True)
    try:
        disks: dict[int, Path] = {}
        names: dict[str, str] = {}
        total = 0
        exported = {}
        for disk in vm.disks:
            name = disk_export_name(disk)
            if name in names.values():
                name = f"{name[:-5]}-{disk.key}.vmdk"
            names[disk_export_name(disk)] = name
            exported[disk.key] = name
        vmx = dest / f"{vm.name}.vmx"
        vmx.write_text(rewrite_vmx_disks(client.read_vmx(vm.moref), names), encoding="utf-8")
        for disk in vm.disks:
            name = exported[disk.key]
            if fault_point is not None:
                fault_point("export", f"{vm.name}:{name}")
            view = (open_disk or client.open_disk)(vm.moref, disk.key, snapshot_id)
            target = dest / name
            dp = plan.disks.get(disk.key) if plan is not None else None
            # disk.export details (level, areas, since): never vm or step, which emit() takes itself
            extra: dict[str, Any] = {}
            if dp is not None and dp.areas is not None:
                # one monolithicSparse file while the changes fit in one 2 GiB extent: split,
                # a mostly empty delta of a 256 GiB disk would be 128 files, and its cost
                # would grow with the capacity instead of with the changes
                files = write_vmdk(
                    AreasView(view, dp.areas), target, split=split and dp.changed_bytes > SPLIT_EXTENT_SIZE
                )
                changed = target.with_suffix(".changed")
                write_areas_file(changed, dp.change_id, dp.since, dp.areas)
                files.append(changed)
                nbytes = dp.changed_bytes
                extra = {"level": plan.level if plan else "full", "areas": len(dp.areas), "since": dp.since}
            else:
                files = write_vmdk(view, target, split=split)
                nbytes = -1
            disks[disk.key] = target
            written = sum(p.stat().st_size for p in files)
            total += written
            if nbytes < 0:
                nbytes = sum(n for _, n in view.allocated_areas()) if hasattr(view, "allocated_areas") else written
            client.trace.emit(
                "proxy", "disk.export", vm=vm.moref, disk=disk.key, snapshot=snapshot_id,
                bytes=nbytes, **extra,
            )
            if progress is not None:
                progress(f"{vm.name}: export {name}", written, written)
        snap = next((s for s in client.list_snapshots(vm.moref) if s.id == snapshot_id), None)
        taken = snap.created if snap is not None else client.clock.now
        lines = [
            "version= vcbsim-1",
            "state= " + vm.power_state,
            "display_name= " + _q(vm.name),
            "uuid= " + _q(vm.uuid),
            "moref= " + _q(vm.moref),
            "guest_os= " + _q(vm.guest_id),
            "host= " + _q(client.host_name),
            "resourcepool= " + _q("/"),
            "config.vmx= " + _q(vm.vmx_path or vmx.name),
            "config.file= " + _q(vmx.name),
            "disktype= " + ("VM_DISK_TYPE_2GBSPARSE" if split else "VM_DISK_TYPE_SPARSE"),
            "snapshot= " + _q(snapshot_id),
            "timestamp= " + _q(datetime.fromtimestamp(taken, tz=UTC).strftime("%a %b %d %H:%M:%S %Y")),
        ]
        if plan is not None and plan.level != "full":
            lines.append("level= " + _q(plan.level))
        for disk in vm.disks:
            tag = f"disk.{disk.key}"
            lines += [
                f"{tag}.filename= " + _q(disks[disk.key].name),
                f"{tag}.diskname= " + _q(disk.file_name),
                f"{tag}.label= " + _q(disk.label),
                f"{tag}.capacity= {disk.capacity}",
            ]
            dp = plan.disks.get(disk.key) if plan is not None else None
            if dp is not None and dp.change_id:
                lines.append(f"{tag}.changeId= " + _q(dp.change_id))
            if dp is not None and dp.areas is not None:
                lines += [
                    f"{tag}.sinceChangeId= " + _q(dp.since),
                    f"{tag}.changedAreas= " + _q(disks[disk.key].with_suffix(".changed").name),
                ]
        for disk in full_vm.disks:
            if disk.key in excluded:
                tag = f"disk.{disk.key}"
                lines += [
                    f"{tag}.diskname= " + _q(disk.file_name),
                    f"{tag}.label= " + _q(disk.label),
                    f"{tag}.capacity= {disk.capacity}",
                    f"{tag}.excluded= " + _q(excluded[disk.key]),
                ]
                client.trace.emit(
                    "proxy", "note", vm=vm.moref,
                    text=f"disk {disk.key} ({disk.label}) left out of the image: {excluded[disk.key]}",
                )
        catalog = dest / "catalog"
        catalog.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except Exception:
        from ._workflow import force_remove

        force_remove(dest)
        raise
    return ImageExport(dest, vmx, disks, catalog, total, excluded)


def read_export_catalog(path: str | Path) -> dict[str, str]:
    """Parse an export's ``catalog`` file (``key= value`` lines; quotes removed)."""
    out: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        v = value.strip()
        if len(v) >= 2 and v[0] == v[-1] == '"':
            v = v[1:-1]
        out[key.strip()] = v
    return out
