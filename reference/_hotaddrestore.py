"""A whole-VM restore over the wire through hot-add (``vcbsim restore --server ... --vm -m hotadd``).

What VADP products do to restore a VM through a proxy VM, each step a documented vSphere call:

1. ``Folder.CreateVM_Task``: the new VM, powered off, with new empty (thin) disks of the
   backup's capacities, the backup's ``guestId`` (its catalog's ``guest_os``), ``memsize``,
   ``numvcpus`` and disk modes (its ``.vmx``), and the ``--set`` settings as ``extraConfig``
   (``memsize``/``numvcpus`` given there change ``memoryMB``/``numCPUs``);
2. ``ReconfigVM_Task`` on the proxy VM: each new disk file added (``persistent``), so the
   host attaches it *writable* and it appears in the proxy's guest as a block device (an NBD
   socket in the device directory the proxy's ``config.extraConfig`` names,
   ``simulator/_hotadd.py``);
3. the backup's data written through those devices, only the allocated areas (a thin disk
   stays thin), then flushed;
4. ``ReconfigVM_Task`` removing them from the proxy (the files stay: they are the new VM's).

All or nothing (``RST-NO-HALF-VM``): a failure after the create detaches whatever is attached
to the proxy and destroys the new VM (``Destroy_Task``, its files with it), then the fault is
raised.

**Over the original** (``--over -m hotadd``, ``restore_vm_hotadd_over``): the in-place restore
of VADP products (VDDK's programming guide, "Restore": the disks of an existing VM, powered
off, written through a hot-added or NBD transport; a disk with snapshots is not written in
place, so they go first):

1. the original is refused while powered on (``RST-NO-RUNNING-OVERWRITE``, one line, nothing
   changed), as the upload route refuses it; a disk of the backup the VM no longer has, or of
   another size, is refused the same way before anything changes;
2. its snapshots are removed (``RemoveAllSnapshots_Task``: what the upload route's replacement
   does to them, the restored VM has none), so each disk is its base file again;
3. its own disk files added to the proxy (``persistent``: attached *writable*), and through
   each device: the backup's allocated areas written, and where the disk holds data the
   backup has not (``QueryChangedDiskAreas("*")`` / the disk's grain tables, asked before the
   attach), the disk read and zeroes written over whatever is not zero already (a thin disk
   keeps its zero grains unallocated); flushed, detached.

Only the disks are restored: the VM keeps its own configuration (name, moref, BIOS uuid,
settings), as an in-place disk restore through VDDK does; ``--set`` is refused in one line (the
upload route registers the backup's ``.vmx`` with it).

Its failure state (said in the one line raised): a failure after step 2 detaches every disk
from the proxy and leaves the VM registered, powered off, without its snapshots, its disks
partly restored; a new restore run finishes the job. Disks the backup left out (independent
ones) are left as they are, as the in-process restore does.

The trace: one proxy operation ``restore-vm`` (``transport="hotadd"``) with one nested
``write-disk`` per disk; the host records ``vm.create``, ``disk.hotadd`` (``writable``),
``disk.hotwrite`` (the bytes written) and ``disk.hotremove``.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from vcbsim.simulator import InvalidInputError, StateError

from ._cbt import merge_areas
from ._transports import _device_dir, _find_proxy, attach_files, detach_keys
from ._wirerestore import (
    ProgressFn,
    VmRestoreResult,
    _find_by_name,
    _pool,
    _refuse_running,
    _vm_folder,
    _vmx_of_backup,
    _wait,
)

if TYPE_CHECKING:
    from ._catalog import Catalog
    from ._vsphere import VSphereHostClient

__all__ = ["RESTORE_MARK", "RESTORE_MARK_KEY", "release_restore_leftovers", "restore_vm_hotadd", "restore_vm_hotadd_over"]

#: bytes per NBD write (the server's maximum request is 32 MiB)
WRITE_CHUNK = 4 << 20
#: the run's marker in the configuration of a VM a hot-add restore creates: a later run that
#: finds this VM's disks still attached to the proxy knows its own killed run attached them
RESTORE_MARK_KEY = "vcbsim.restoredBy"
RESTORE_MARK = "vcbsim reference proxy (hot-add restore)"
#: where a hot-add restore can be killed for crash tests (``VCBSIM_CRASH_AT``): before each
#: write through a device after the first
CRASH_DURING_WRITE = "restore.during-write"
_LINE = re.compile(r'^\s*([^=\s]+)\s*=\s*"(.*)"\s*$')
_DEVICE = re.compile(r"^(scsi|ide|sata|nvme)(\d+):(\d+)$")
_IDE_KEYS = {0: 200, 1: 201}


def _vmx_settings(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def _number(settings: dict[str, str], key: str, default: int) -> int:
    value = settings.get(key, "")
    if not value.isdigit() or int(value) <= 0:
        if key in settings:
            msg = f"--set {key}"
            raise InvalidInputError(msg, expected="a positive whole number", got=value)
        return default
    return int(value)


def _disk_slots(vmx: dict[str, str], file_name: str) -> tuple[str, int, int, str]:
    """The controller kind, bus, unit and mode the backed-up VM had for the disk whose
    exported file is ``file_name`` (``scsi``, 0, n, persistent when the ``.vmx`` does not say)."""
    base = file_name.rsplit("/", 1)[-1]
    for key, value in vmx.items():
        if key.endswith(".filename") and value.rsplit("/", 1)[-1] == base:
            m = _DEVICE.match(key[: -len(".filename")])
            if m is not None:
                dev = key[: -len(".filename")]
                return m.group(1), int(m.group(2)), int(m.group(3)), vmx.get(f"{dev}.mode", "persistent")
    return "scsi", 0, -1, "persistent"


def _config_spec(name: str, ds: str, meta: dict[str, str], vmx: dict[str, str], asked: dict[str, str],
                 images: dict[int, tuple[str, Any]]) -> Any:
    """The ``CreateVM_Task`` spec: the backup's VM with new empty disks of its capacities."""
    wanted = {**vmx, **{k.lower(): v for k, v in asked.items()}}
    extra = [vim.option.OptionValue(key=k, value=v) for k, v in asked.items()
             if k.lower() not in ("memsize", "numvcpus", "guestos", "displayname")]
    extra.append(vim.option.OptionValue(key=RESTORE_MARK_KEY, value=RESTORE_MARK))
    guest = meta.get("guest_os") or None
    changes = []
    for i, (_key, (fname, image)) in enumerate(sorted(images.items())):
        kind, bus, unit, mode = _disk_slots(vmx, fname)
        controller = _IDE_KEYS.get(bus, 200) if kind == "ide" else 1000
        disk = vim.vm.device.VirtualDisk(
            key=-(i + 1), controllerKey=controller, unitNumber=unit if unit >= 0 else None,
            capacityInKB=(image.size + 1023) // 1024,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                fileName=f"[{ds}]", diskMode=mode.replace("-", "_"), thinProvisioned=True),
        )
        changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk))
    return vim.vm.ConfigSpec(
        name=name, guestId=guest, memoryMB=_number(wanted, "memsize", 1024), numCPUs=_number(wanted, "numvcpus", 1),
        files=vim.vm.FileInfo(vmPathName=f"[{ds}]"), extraConfig=extra, deviceChange=changes,
    )


def restore_vm_hotadd(
    cat: Catalog,
    backup_id: int,
    client: VSphereHostClient,
    *,
    name: str | None = None,
    datastore: str | None = None,
    settings: dict[str, str] | None = None,
    proxy_vm: str | None = None,
    progress: ProgressFn | None = None,
) -> VmRestoreResult:
    """Restore image backup ``backup_id`` as a new VM ``name`` (default ``<vm>-restored``) on
    ``datastore`` (default the backed-up VM's), writing its disks through the proxy VM
    (``proxy_vm``, default the VM marked as the backup proxy) by hot-add: module docstring."""
    rec = cat.backup(backup_id)
    if rec.kind != "image" or rec.status != "complete":
        msg = (f"backup {backup_id} is a {rec.status} {rec.kind} backup; a VM restore needs a "
               "complete image backup")
        raise StateError(msg)
    target = name or f"{rec.vm_name}-restored"
    proxy = _find_proxy(client, proxy_vm)
    vmx = _vmx_settings(_vmx_of_backup(cat, backup_id))
    cleaned = release_restore_leftovers(client, proxy)
    if _find_by_name(client, target) is not None:  # after the cleanup: a half-made VM is gone
        raise InvalidInputError("--name", expected="a name no VM on the host has", got=target,
                                hint="choose another --name")
    trace = client.trace
    op_id = f"op-{len(trace)}"
    with tempfile.TemporaryDirectory(prefix="vcbsim-hotadd-restore-") as tmp:
        meta, images = cat.image_as_of_snapshot(backup_id, Path(tmp))
        m = re.match(r"\[([^\]]+)\]", meta.get("config.vmx", ""))
        ds = datastore or (m.group(1) if m else "datastore1")
        trace.emit("proxy", "op.invoke", op="restore-vm", op_id=op_id, backup_id=backup_id, target="new",
                   name=target, datastore=ds, transport="hotadd", proxy=proxy._moId)
        result = VmRestoreResult(backup_id, target, "", ds, False)
        result.cleaned = cleaned
        result.not_restored = {int(k.split(".")[1]): v for k, v in meta.items()
                               if k.startswith("disk.") and k.endswith(".excluded")}
        vm: Any = None
        attached: list[int] = []
        try:
            vm = _wait(_vm_folder(client).CreateVM_Task(
                config=_config_spec(target, ds, meta, vmx, settings or {}, images), pool=_pool(client)))
            files = [str(getattr(d.backing, "fileName", "")) for d in sorted(vm.config.hardware.device, key=lambda d: d.key)
                     if isinstance(d, vim.vm.device.VirtualDisk)]
            keys, units = attach_files(client, proxy, files, "persistent")
            attached = list(keys.values())
            devices = _device_dir(proxy)  # the proxy's config after the attach
            for (key, (_fname, image)), file in zip(sorted(images.items()), files, strict=True):
                _write_disk(client, devices / f"scsi0:{units[file]}", f"scsi0:{units[file]}", image, file, key,
                            op_id, result, progress)
                result.disks[key] = file
            detach_keys(client, proxy, attached)
            attached = []
        except BaseException as exc:
            _undo(client, proxy, attached, vm)
            trace.emit("proxy", "op.fail", op="restore-vm", op_id=op_id,
                       error=f"{type(exc).__name__}: {getattr(exc, 'msg', None) or exc}")
            raise
    result.moref = vm._moId
    trace.emit("proxy", "op.ok", vm=result.moref, op="restore-vm", op_id=op_id, backup_id=backup_id,
               name=target, disks={str(k): v for k, v in result.disks.items()})
    return result


def _write_disk(client: VSphereHostClient, device: Path, export: str, image: Any, file: str, key: int,
                op_id: str, result: VmRestoreResult, progress: ProgressFn | None, *,
                clear: list[tuple[int, int]] | None = None) -> None:
    """Write the allocated areas of ``image`` through the NBD device, then flush it; where the
    disk may hold data (``clear``, restoring over a disk) that the backup has not, zeroes over
    every chunk that reads back as not all zero (the bytes written count as ``written``)."""
    from ._nbdclient import NbdDisk

    sub = f"{op_id}-disk{key}"
    client.trace.emit("proxy", "op.invoke", op="write-disk", op_id=sub, disk=key, file=file, capacity=image.size,
                      device=export)
    written = 0
    try:
        with NbdDisk(device, export) as dev:
            if dev.read_only or dev.size < image.size:
                msg = f"{file} is attached to the proxy {'read-only' if dev.read_only else 'smaller than the backup'}"
                raise StateError(msg)
            for offset, length in image.allocated_areas():
                pos = offset
                while pos < offset + length:
                    n = min(WRITE_CHUNK, offset + length - pos)
                    if written:
                        client.check_fault("crash", CRASH_DURING_WRITE, vm=None)
                    dev.write(pos, image.read(pos, n))
                    pos += n
                    written += n
                    result.bytes_uploaded += n
                    if progress is not None:
                        progress(f"{result.name}: write {file}", n, 0)
            if clear:
                for offset, length in _subtract(clear, merge_areas(image.allocated_areas())):
                    pos = offset
                    while pos < offset + length:
                        n = min(WRITE_CHUNK, offset + length - pos)
                        if dev.read(pos, n).count(0) != n:
                            dev.write(pos, bytes(n))
                            written += n
                            result.bytes_uploaded += n
                            if progress is not None:
                                progress(f"{result.name}: clear {file}", n, 0)
                        pos += n
            dev.flush()
    except BaseException as exc:
        client.trace.emit("proxy", "op.fail", op="write-disk", op_id=sub, error=f"{type(exc).__name__}: {exc}")
        raise
    client.trace.emit("proxy", "op.ok", op="write-disk", op_id=sub, bytes=written)


def _undo(client: VSphereHostClient, proxy: Any, attached: list[int], vm: Any) -> None:
    """Best effort after a failure: nothing attached to the proxy, no half-made VM registered."""
    if attached:
        with contextlib.suppress(vmodl.MethodFault, OSError, StateError):
            detach_keys(client, proxy, attached)
    if vm is not None:
        with contextlib.suppress(vmodl.MethodFault, OSError):
            _wait(vm.Destroy_Task())


def _subtract(areas: list[tuple[int, int]], minus: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``areas`` outside every area of ``minus`` (both sorted, merged)."""
    out: list[tuple[int, int]] = []
    for off, n in areas:
        pos, end = off, off + n
        for m_off, m_n in minus:
            if m_off + m_n <= pos or m_off >= end:
                continue
            if m_off > pos:
                out.append((pos, m_off - pos))
            pos = max(pos, m_off + m_n)
        if pos < end:
            out.append((pos, end - pos))
    return out


def _disks_of(vm: Any) -> dict[int, Any]:
    return {int(d.key): d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)}


def restore_vm_hotadd_over(
    cat: Catalog,
    backup_id: int,
    client: VSphereHostClient,
    over: str,
    *,
    settings: dict[str, str] | None = None,
    proxy_vm: str | None = None,
    progress: ProgressFn | None = None,
) -> VmRestoreResult:
    """Restore image backup ``backup_id`` over the VM ``over`` (a selector) in place, its own
    disks written through the proxy VM by hot-add (module docstring, "Over the original")."""
    rec = cat.backup(backup_id)
    if rec.kind != "image" or rec.status != "complete":
        msg = (f"backup {backup_id} is a {rec.status} {rec.kind} backup; a VM restore needs a "
               "complete image backup")
        raise StateError(msg)
    if settings:
        raise InvalidInputError(
            "--set", expected="no --set with --over -m hotadd (the VM's own configuration is kept; only its "
            "disks are written)", got=", ".join(settings),
            hint="restore over the original with the default -m folder to register the backup's .vmx with --set",
        )
    info = client.find_vm(over)
    vm: Any = client._vm(info.moref)
    proxy = _find_proxy(client, proxy_vm)
    if proxy._moId == info.moref:
        raise InvalidInputError("--over", expected="a VM other than the proxy VM", got=info.name,
                                hint="name the VM to restore over with -a")
    _refuse_running(vm, info.name)
    cleaned = release_restore_leftovers(client, proxy)
    trace = client.trace
    op_id = f"op-{len(trace)}"
    with tempfile.TemporaryDirectory(prefix="vcbsim-hotadd-over-") as tmp:
        meta, images = cat.image_as_of_snapshot(backup_id, Path(tmp))
        own = _disks_of(vm)
        for key, (fname, image) in sorted(images.items()):
            dev = own.get(key)
            if dev is None:
                raise InvalidInputError("--over", expected=f"a VM with the backup's disk {key} ({fname})",
                                        got=f"{info.name} with disks {sorted(own)}",
                                        hint="restore as a new VM (--name) instead")
            capacity = int(dev.capacityInBytes or int(dev.capacityInKB) * 1024)
            if capacity != image.size:
                raise InvalidInputError("--over", expected=f"disk {key} of {image.size} bytes, as backed up",
                                        got=f"{capacity} bytes on {info.name}",
                                        hint="restore as a new VM (--name) instead")
        m = re.match(r"\[([^\]]+)\]", vm.config.files.vmPathName or "")
        result = VmRestoreResult(backup_id, info.name, info.moref, m.group(1) if m else "", True)
        result.replaced = info.moref
        result.cleaned = cleaned
        result.not_restored = {int(k.split(".")[1]): v for k, v in meta.items()
                               if k.startswith("disk.") and k.endswith(".excluded")}
        trace.emit("proxy", "op.invoke", vm=info.moref, op="restore-vm", op_id=op_id, backup_id=backup_id,
                   target="over", name=info.name, datastore=result.datastore, transport="hotadd",
                   proxy=proxy._moId)
        attached: list[int] = []
        changing = False
        try:
            _refuse_running(vm, info.name)  # powered on meanwhile: still refused, nothing changed
            changing = True
            if vm.snapshot is not None:
                _wait(vm.RemoveAllSnapshots_Task())
            own = _disks_of(vm)
            files = {key: str(own[key].backing.fileName) for key in sorted(images)}
            # where the disk holds data now: asked of the host before the disk is attached
            present = {key: merge_areas(client.allocated_areas(info.moref, key, None)) for key in files}
            keys, units = attach_files(client, proxy, list(files.values()), "persistent")
            attached = list(keys.values())
            devices = _device_dir(proxy)
            for key, file in files.items():
                device = f"scsi0:{units[file]}"
                _write_disk(client, devices / device, device, images[key][1], file, key, op_id, result, progress,
                            clear=present[key])
                result.disks[key] = file
            detach_keys(client, proxy, attached)
            attached = []
        except BaseException as exc:
            if attached:
                with contextlib.suppress(vmodl.MethodFault, OSError, StateError):
                    detach_keys(client, proxy, attached)
            error = f"{type(exc).__name__}: {getattr(exc, 'msg', None) or exc}"
            trace.emit("proxy", "op.fail", vm=info.moref, op="restore-vm", op_id=op_id, error=error)
            if not changing or not isinstance(exc, Exception):
                raise
            msg = (f"restore of backup {backup_id} over {info.name} failed part way ({error}); {info.name} stays "
                   "registered and powered off, without its snapshots, its disks partly restored and detached "
                   "from the proxy; run the restore again").replace("\n", " ")
            raise StateError(msg) from exc
    trace.emit("proxy", "op.ok", vm=info.moref, op="restore-vm", op_id=op_id, backup_id=backup_id,
               name=info.name, disks={str(k): v for k, v in result.disks.items()})
    return result


def release_restore_leftovers(client: VSphereHostClient, proxy: Any) -> list[str]:
    """What a killed hot-add restore of this proxy left, found by what the host shows and
    cleaned before a new restore (as a backup run cleans its stale snapshot, F16): a disk of
    another VM attached writable (``persistent``) to the proxy VM whose owner carries the run's
    marker (``RESTORE_MARK_KEY``, put in its configuration at ``CreateVM_Task``) is detached,
    and that owner, a VM the killed run created and never finished, is destroyed
    (``RST-NO-HALF-VM``). A disk of a VM without the marker is never touched: this proxy did
    not attach it. Returns one note each (also ``note`` events)."""
    trace = client.trace
    owners: dict[str, Any] = {}
    for vm in client._vms():
        if vm._moId == proxy._moId:
            continue
        extra = {o.key: str(o.value) for o in (vm.config.extraConfig or [])}
        if extra.get(RESTORE_MARK_KEY) == RESTORE_MARK:
            owners[vm._moId] = vm
    if not owners:
        return []
    files: dict[str, Any] = {}
    for vm in owners.values():
        for d in vm.config.hardware.device:
            if isinstance(d, vim.vm.device.VirtualDisk):
                files[str(getattr(d.backing, "fileName", ""))] = vm
    keys: list[int] = []
    half: dict[str, Any] = {}
    for d in proxy.config.hardware.device:
        if not isinstance(d, vim.vm.device.VirtualDisk):
            continue
        owner = files.get(str(getattr(d.backing, "fileName", "")))
        if owner is not None and getattr(d.backing, "diskMode", "") == "persistent":
            keys.append(int(d.key))
            half[owner._moId] = owner
    notes: list[str] = []
    if not keys:
        return notes
    op_id = f"op-{len(trace)}"
    trace.emit("proxy", "op.invoke", op="cleanup-release-disks", op_id=op_id, proxy=proxy._moId, stale=True)
    detach_keys(client, proxy, keys)
    trace.emit("proxy", "op.ok", op="cleanup-release-disks", op_id=op_id)
    notes.append(f"removed {len(keys)} disk(s) left hot-added to the proxy VM {proxy.name} by an interrupted restore")
    for vm in half.values():
        name = vm.name
        _wait(vm.Destroy_Task())
        notes.append(f"destroyed {name}, the VM an interrupted restore had made and not finished")
    for n in notes:
        trace.emit("proxy", "note", text=n)
    return notes
