"""Restores over the wire (``vcbsim restore --server ...``): a whole VM from an image backup,
as a new VM or over the original, and files into a running guest (issue 16).

Whole VM, in the order a VCB-era restore (``vcbRestore``) and today's products use, each step
a documented vSphere call:

1. the backup's disks are rebuilt as of its snapshot (the catalog's chain, as the in-process
   restore does) and each is written as a monolithic sparse VMDK;
2. each VMDK and a ``.vmx`` (the backup's own, its disks pointing at the uploads, its display
   name the one asked for, the settings ``--set`` changes) are put on the datastore with
   ``PUT /folder``;
3. over the original only: the original is refused while powered on (one line, nothing
   changed), else, after every upload succeeded, ``UnregisterVM`` takes it out of the
   inventory (its files stay);
4. ``Folder.RegisterVM_Task`` of the uploaded ``.vmx``: the host turns the uploads into the
   VM's disks. A new VM gets a new BIOS uuid (the uploads' ``uuid.bios`` is dropped, as
   vSphere does for a copied VM); over the original it keeps the original's. Over the
   original, only then are the original's files deleted; when the register fails the
   original is registered again from its own ``.vmx``, as it was.

A failure (an upload the host refuses or whose connection is lost, a fault of the register)
removes the uploads again (``DeleteDatastoreFile_Task``), registers nothing and leaves the
original as it was; the host's register is itself all or nothing. The error is one line (the
CLI prints it and exits non-zero). The restore is one proxy
operation (``op.invoke`` then ``op.ok`` / ``op.fail``, ``op="restore-vm"``) with one nested
operation per disk upload (``upload-disk``) and, over the original, ``replace-vm``; the kit
judges them (``conformance/_check_restore.py``).

Files into a guest: the chosen files of a file-level backup are written with guest operations
(``InitiateFileTransferToGuest`` and an HTTP ``PUT`` of the URL it returns), their folders made
with ``MakeDirectoryInGuest``; a file already there is listed as overwritten
(``ListFilesInGuest`` first), and the result says exactly which files were written.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import ssl
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from vcbsim.simulator import InvalidInputError, StateError

if TYPE_CHECKING:
    from ._catalog import Catalog
    from ._vsphere import VSphereHostClient

__all__ = ["GuestRestoreResult", "VmRestoreResult", "restore_files_into_guest", "restore_vm_over_wire"]

ProgressFn = Callable[[str, int, int], None]
CHUNK = 1 << 20


@dataclass
class VmRestoreResult:
    """What a whole-VM restore over the wire did."""

    backup_id: int
    name: str
    moref: str
    datastore: str
    over_original: bool
    disks: dict[int, str] = field(default_factory=dict)
    bytes_uploaded: int = 0
    replaced: str | None = None
    #: disks the image backup left out (``_image.py``), not in the restored VM: key -> reason
    not_restored: dict[int, str] = field(default_factory=dict)
    #: what an interrupted earlier restore had left and this one cleaned first (hot-add)
    cleaned: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup": self.backup_id, "restored": self.name, "moref": self.moref,
            "datastore": self.datastore, "over_original": self.over_original,
            "disks": {str(k): v for k, v in self.disks.items()}, "bytes_uploaded": self.bytes_uploaded,
            "replaced": self.replaced, "not_restored": {str(k): v for k, v in self.not_restored.items()},
            "cleaned": list(self.cleaned),
        }

    def summary(self) -> str:
        how = f"over the original ({self.replaced})" if self.over_original else "as a new VM"
        text = (f"{self.name} ({self.moref}) restored from backup {self.backup_id} {how} on "
                f"{self.datastore}: {len(self.disks)} disk(s), {self.bytes_uploaded} bytes uploaded")
        return "\n".join([f"cleaned: {c}" for c in self.cleaned] + [text]
                         + [f"  not restored (not in the backup): disk {k}: {v}"
                            for k, v in sorted(self.not_restored.items())])


@dataclass
class GuestRestoreResult:
    """What a file restore into a running guest wrote: every file, and those it overwrote."""

    backup_id: int
    vm: str
    written: list[str] = field(default_factory=list)
    overwritten: list[str] = field(default_factory=list)
    bytes_written: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"backup": self.backup_id, "vm": self.vm, "written": self.written,
                "overwritten": self.overwritten, "bytes": self.bytes_written}

    def summary(self) -> str:
        lines = [f"{len(self.written)} file(s) restored into {self.vm} from backup {self.backup_id}"]
        lines += [f"  overwrote {p}" for p in self.overwritten]
        return "\n".join(lines)


# -- HTTP -------------------------------------------------------------------------------------


def _connection(client: VSphereHostClient, url: str | None = None) -> tuple[http.client.HTTPConnection, str]:
    """A connection to the endpoint (or to the host of ``url``, ``*`` meaning the endpoint)."""
    base = urlsplit(client.server if "://" in client.server else f"https://{client.server}")
    target = urlsplit(url) if url else base
    host = base.hostname if not target.hostname or target.hostname == "*" else target.hostname
    port = target.port or base.port or (443 if target.scheme == "https" else 80)
    path = (target.path or "/") + (f"?{target.query}" if target.query else "")
    assert host is not None
    if (target.scheme or base.scheme) == "https":
        return http.client.HTTPSConnection(host, port, context=ssl._create_unverified_context(), timeout=120), path
    return http.client.HTTPConnection(host, port, timeout=120), path


def _put(client: VSphereHostClient, path_query: str | None, body: Path | bytes, *, url: str | None = None,
         cookie: bool = True, progress: Callable[[int], None] | None = None) -> None:
    """``PUT`` ``body`` (a file, streamed, or bytes) to ``/folder`` (``path_query``) or ``url``."""
    conn, path = _connection(client, url)
    headers = {"Content-Type": "application/octet-stream"}
    if cookie:
        headers["Cookie"] = client._session_cookie()
    size = body.stat().st_size if isinstance(body, Path) else len(body)
    headers["Content-Length"] = str(size)
    try:
        conn.putrequest("PUT", path_query if path_query is not None else path)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        for chunk in _chunks(body):
            conn.send(chunk)
            if progress is not None:
                progress(len(chunk))
        resp = conn.getresponse()
        text = resp.read()[:200].decode(errors="replace").strip()
    except (OSError, http.client.HTTPException) as exc:  # the connection lost part way
        msg = (f"upload to {path_query or url}: the connection was lost part way ({type(exc).__name__}: {exc}); "
               "nothing of it is kept on the datastore")
        raise StateError(msg) from exc
    finally:
        conn.close()
    if resp.status not in (200, 201, 204):
        msg = f"upload to {path_query or url}: HTTP {resp.status} {text}"
        raise StateError(msg)


def _chunks(body: Path | bytes) -> Iterator[bytes]:
    if isinstance(body, bytes):
        yield body
        return
    with open(body, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


# -- the .vmx ---------------------------------------------------------------------------------

_LINE = re.compile(r'^\s*([^=\s]+)\s*=\s*"(.*)"\s*$')


def restore_vmx(text: str, name: str, disk_files: dict[str, str], *, keep_uuid: bool,
                settings: dict[str, str] | None = None) -> str:
    """The ``.vmx`` to register: the backup's, with ``displayName`` = ``name``, each disk's
    ``fileName`` (by its exported file name) = its upload, ``uuid.bios``/``vc.uuid`` dropped
    unless ``keep_uuid``, and ``settings`` set (added when missing)."""
    from vcbsim.simulator._names import vmx_escape

    out: list[str] = []
    seen: set[str] = set()
    wanted = dict(settings or {})
    wanted["displayName"] = name
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None:
            out.append(line)
            continue
        key, value = m.group(1), m.group(2)
        low = key.lower()
        if not keep_uuid and low in ("uuid.bios", "vc.uuid", "uuid.location"):
            continue
        if low.endswith(".filename") and value.rsplit("/", 1)[-1] in disk_files:
            value = disk_files[value.rsplit("/", 1)[-1]]
            out.append(f'{key} = "{vmx_escape(value)}"')
            continue
        match = next((k for k in wanted if k.lower() == low), None)
        if match is not None:
            seen.add(match)
            out.append(f'{key} = "{vmx_escape(wanted[match])}"')
            continue
        out.append(line)
    out += [f'{k} = "{vmx_escape(v)}"' for k, v in wanted.items() if k not in seen]
    return "\n".join(out) + "\n"


def _vmx_of_backup(cat: Catalog, backup_id: int) -> str:
    for f in cat.image_files(backup_id):
        if f.name.endswith(".vmx"):
            return cat.store.get_bytes(f.sha256).decode("utf-8", "replace")
    full = cat.image_chain(backup_id)[0].id
    for f in cat.image_files(full):
        if f.name.endswith(".vmx"):
            return cat.store.get_bytes(f.sha256).decode("utf-8", "replace")
    msg = f"image backup {backup_id} holds no .vmx; it cannot be restored as a VM"
    raise StateError(msg)


def _wait(task: Any) -> Any:
    WaitForTask(task)
    return task.info.result


def _vm_folder(client: VSphereHostClient) -> Any:
    dc = next(e for e in client.content.rootFolder.childEntity if isinstance(e, vim.Datacenter))
    return dc.vmFolder


def _find_by_name(client: VSphereHostClient, name: str) -> Any:
    return client.content.searchIndex.FindByInventoryPath(f"{client.folder.dc}/vm/{name}")


# -- whole VM ---------------------------------------------------------------------------------


def restore_vm_over_wire(
    cat: Catalog,
    backup_id: int,
    client: VSphereHostClient,
    *,
    name: str | None = None,
    datastore: str | None = None,
    over: str | None = None,
    settings: dict[str, str] | None = None,
    progress: ProgressFn | None = None,
) -> VmRestoreResult:
    """Restore image backup ``backup_id`` over the wire (module docstring): as a new VM
    ``name`` (default ``<backed-up name>-restored``) on ``datastore`` (default the backed-up
    VM's), or, with ``over`` (a VM selector), over that VM once it is powered off."""
    rec = cat.backup(backup_id)
    if rec.kind != "image" or rec.status != "complete":
        msg = (f"backup {backup_id} is a {rec.status} {rec.kind} backup; a VM restore needs a "
               "complete image backup")
        raise StateError(msg)
    original = None
    if over is not None:
        info = client.find_vm(over)
        original = client._vm(info.moref)
        _refuse_running(original, info.name)
        target = info.name
    else:
        target = name or f"{rec.vm_name}-restored"
        if _find_by_name(client, target) is not None:
            raise InvalidInputError("--name", expected="a name no VM on the host has", got=target,
                                    hint="choose another --name, or restore over the VM with --over")
    trace = client.trace
    op_id = f"op-{len(trace)}"
    vmx_text = _vmx_of_backup(cat, backup_id)
    uploaded: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vcbsim-wire-restore-") as tmp:
        meta, images = cat.image_as_of_snapshot(backup_id, Path(tmp))
        if original is not None and any(k.startswith("disk.") and k.endswith(".excluded") for k in meta):
            # replacing the original destroys its files, the left-out disks' live data with them
            left_out = sorted(int(k.split(".")[1]) for k in meta if k.startswith("disk.") and k.endswith(".excluded"))
            raise InvalidInputError(
                "--over", expected="a backup that holds every disk of the VM", got=f"backup {backup_id}",
                hint=f"it left out disk(s) {left_out} (no snapshot covers them) and replacing the VM would "
                     "destroy them; restore as a new VM (--name) instead",
            )
        m = re.match(r"\[([^\]]+)\]", meta.get("config.vmx", ""))
        ds = datastore or _datastore_of_vmx(original) or (m.group(1) if m else "datastore1")
        trace.emit("proxy", "op.invoke", vm=original._moId if original is not None else None, op="restore-vm",
                   op_id=op_id, backup_id=backup_id, target="over" if original is not None else "new",
                   name=target, datastore=ds)
        result = VmRestoreResult(backup_id, target, "", ds, original is not None)
        left = {int(k.split(".")[1]): v for k, v in meta.items() if k.startswith("disk.") and k.endswith(".excluded")}
        if left:
            # the backup holds no data of these disks (``_image.py``): the VM is restored without
            # them, as VADP products do ("Independent disks must be manually recreated on a
            # restored machine", IBM Spectrum Protect for VMware, vmprocessvmwithindependent)
            from ._image import drop_vmx_disks

            result.not_restored = left
            files = {meta.get(f"disk.{k}.diskname", "").split("]")[-1].strip().rsplit("/", 1)[-1] for k in left}
            vmx_text = drop_vmx_disks(vmx_text, files)
        try:
            vmx_path = _upload_all(client, ds, target, original is not None, backup_id, images, vmx_text,
                                   settings, result, uploaded, progress, op_id)
            _register(client, ds, vmx_path, target, original, result, op_id)
        except BaseException as exc:
            if not result.moref:
                _delete_uploads(client, ds, uploaded)
            trace.emit("proxy", "op.fail", vm=original._moId if original is not None else None, op="restore-vm",
                       op_id=op_id, error=f"{type(exc).__name__}: {getattr(exc, 'msg', None) or exc}")
            raise
    trace.emit("proxy", "op.ok", vm=result.moref, op="restore-vm", op_id=op_id, backup_id=backup_id,
               name=target, disks={str(k): v for k, v in result.disks.items()})
    return result


def _upload_all(client: VSphereHostClient, ds: str, target: str, over: bool, backup_id: int,
                images: dict[int, tuple[str, Any]], vmx_text: str, settings: dict[str, str] | None,
                result: VmRestoreResult, uploaded: list[str], progress: ProgressFn | None, op_id: str) -> str:
    """Write and upload every disk and the ``.vmx``; returns the ``.vmx``'s path."""
    from vcbsim.simulator.disk import write_vmdk

    names: dict[str, str] = {}
    stem = f"{target}-r{backup_id}" if over else target
    with tempfile.TemporaryDirectory(prefix="vcbsim-wire-upload-") as tmp:
        for i, (key, (fname, image)) in enumerate(sorted(images.items())):
            upload = f"{stem}.vmdk" if i == 0 else f"{stem}_{i}.vmdk"
            local = Path(tmp) / upload
            write_vmdk(image, local, split=False)
            path = f"{target}/{upload}"

            def step(n: int, _what: str = f"{target}: upload {upload}") -> None:
                result.bytes_uploaded += n
                if progress is not None:
                    progress(_what, n, 0)

            sub = f"{op_id}-disk{key}"
            client.trace.emit("proxy", "op.invoke", op="upload-disk", op_id=sub, disk=key, file=f"[{ds}] {path}",
                              capacity=image.size)
            try:
                _put(client, client.folder.url(ds, path), local, progress=step)
            except BaseException as exc:
                client.trace.emit("proxy", "op.fail", op="upload-disk", op_id=sub, error=f"{type(exc).__name__}: {exc}")
                raise
            client.trace.emit("proxy", "op.ok", op="upload-disk", op_id=sub, bytes=local.stat().st_size)
            uploaded.append(path)
            names[fname.rsplit("/", 1)[-1]] = upload
            result.disks[key] = f"[{ds}] {path}"
    text = restore_vmx(vmx_text, target, names, keep_uuid=over, settings=settings)
    vmx_path = f"{target}/{stem}.vmx"
    _put(client, client.folder.url(ds, vmx_path), text.encode())
    uploaded.append(vmx_path)
    return vmx_path


def _register(client: VSphereHostClient, ds: str, vmx_path: str, target: str, original: Any,
              result: VmRestoreResult, op_id: str) -> None:
    """Register the uploaded ``.vmx``; over the original (powered off, checked again) the
    original is unregistered first (``UnregisterVM``: its files stay) and registered again
    (``RegisterVM_Task`` of its own ``.vmx``) when the register fails, so a failed restore
    leaves it as it was; only once the restored VM is registered are the original's files
    deleted (best effort: a file already gone is no failure)."""
    new_vmx = f"[{ds}] {vmx_path}"
    if original is None:
        vm = _wait(_vm_folder(client).RegisterVM_Task(new_vmx, target, False, _pool(client)))
        result.moref = vm._moId
        return
    _refuse_running(original, target)  # powered on meanwhile: still refused, nothing replaced
    sub = f"{op_id}-replace"
    moref = original._moId
    client.trace.emit("proxy", "op.invoke", vm=moref, op="replace-vm", op_id=sub)
    old_vmx = original.config.files.vmPathName
    old_files = _files_of(original)
    try:
        original.UnregisterVM()
        try:
            vm = _wait(_vm_folder(client).RegisterVM_Task(new_vmx, target, False, _pool(client)))
        except BaseException:
            _wait(_vm_folder(client).RegisterVM_Task(old_vmx, target, False, _pool(client)))  # as it was
            raise
    except BaseException as exc:
        client.trace.emit("proxy", "op.fail", vm=moref, op="replace-vm", op_id=sub,
                          error=f"{type(exc).__name__}: {getattr(exc, 'msg', None) or exc}")
        raise
    result.moref, result.replaced = vm._moId, moref
    _delete_files(client, [f for f in old_files if f not in set(_files_of(vm))])
    client.trace.emit("proxy", "op.ok", vm=moref, op="replace-vm", op_id=sub)


def _files_of(vm: Any) -> list[str]:
    """The datastore files of ``vm``: its ``.vmx`` and ``.vmsd`` and every disk's chain."""
    vmx = str(vm.config.files.vmPathName or "")
    out = [vmx, vmx[: -len(".vmx")] + ".vmsd"] if vmx.endswith(".vmx") else []
    for dev in vm.config.hardware.device:
        backing = getattr(dev, "backing", None) if isinstance(dev, vim.vm.device.VirtualDisk) else None
        while backing is not None:
            out.append(str(backing.fileName))
            backing = getattr(backing, "parent", None)
    return out


def _delete_files(client: VSphereHostClient, files: list[str]) -> None:
    """Delete the replaced original's files, disks with ``DeleteVirtualDisk_Task`` (descriptor
    and extents together); a file that is not there (any more) is no failure."""
    content = client.content
    for f in files:
        with contextlib.suppress(vmodl.MethodFault, OSError):
            if f.endswith(".vmdk") and content.virtualDiskManager is not None:
                WaitForTask(content.virtualDiskManager.DeleteVirtualDisk_Task(f, None))
            else:
                WaitForTask(content.fileManager.DeleteDatastoreFile_Task(f, None))


def _refuse_running(vm: Any, name: str) -> None:
    """A restore never overwrites a powered-on VM (RST-NO-RUNNING-OVERWRITE): one line."""
    if vm.runtime.powerState == "poweredOn":
        msg = (f"{name} is powered on: a restore never overwrites a running VM; power it off first, "
               "or restore as a new VM with --name")
        raise StateError(msg)


def _datastore_of_vmx(vm: Any) -> str | None:
    if vm is None:
        return None
    m = re.match(r"\[([^\]]+)\]", vm.config.files.vmPathName or "")
    return m.group(1) if m else None


def _pool(client: VSphereHostClient) -> Any:
    dc = next(e for e in client.content.rootFolder.childEntity if isinstance(e, vim.Datacenter))
    compute = dc.hostFolder.childEntity[0]
    return compute.resourcePool


def _delete_uploads(client: VSphereHostClient, ds: str, paths: list[str]) -> None:
    """Best effort: a failed restore leaves no uploads behind (what fails stays reported)."""
    fm = client.content.fileManager
    for path in paths:
        with contextlib.suppress(vmodl.MethodFault, OSError):
            WaitForTask(fm.DeleteDatastoreFile_Task(f"[{ds}] {path}", None))


# -- files into a running guest ---------------------------------------------------------------


def _in_guest(gom: Any, vm: Any, auth: Any, path: str) -> bool:
    """Whether ``path`` is in the guest already (what the restore reports as overwritten)."""
    try:
        gom.fileManager.ListFilesInGuest(vm, auth, path)
    except vim.fault.FileNotFound:
        return False
    return True


def restore_files_into_guest(
    cat: Catalog,
    backup_id: int,
    client: VSphereHostClient,
    path: str,
    *,
    vm_selector: str | None = None,
    progress: ProgressFn | None = None,
) -> GuestRestoreResult:
    """Write the files of file-level backup ``backup_id`` under guest path ``path`` (a file or
    a directory) back into the running guest (the backed-up VM, or ``vm_selector``'s) with
    guest operations; report every file written and those that were already there."""
    rec = cat.backup(backup_id)
    if not client.guest_user or client.guest_password is None:
        raise InvalidInputError("--into-guest", expected="--guest-user and --guest-password",
                                got=None, hint="guest operations log in to the guest")
    info = client.find_vm(vm_selector or f"uuid:{rec.vm_uuid}")
    vm = client._vm(info.moref)
    if vm.runtime.powerState != "poweredOn":
        msg = f"{info.name} is {vm.runtime.powerState}: files go into a running guest; power it on first"
        raise StateError(msg)
    gom = client.content.guestOperationsManager
    auth = vim.vm.guest.NamePasswordAuthentication(username=client.guest_user, password=client.guest_password)
    trace = client.trace
    op_id = f"op-{len(trace)}"
    result = GuestRestoreResult(backup_id, info.name)
    trace.emit("proxy", "op.invoke", vm=info.moref, op="restore-files", op_id=op_id, backup_id=backup_id, path=path)
    try:
        with tempfile.TemporaryDirectory(prefix="vcbsim-guest-restore-") as tmp:
            files = cat.restore_files(backup_id, path, tmp)
            for local in files:
                rel = local.relative_to(tmp)
                guest_path = str(PureWindowsPath(f"{rel.parts[0]}:\\", *rel.parts[1:]))
                parent = str(PureWindowsPath(guest_path).parent)
                with contextlib.suppress(vim.fault.FileAlreadyExists):
                    gom.fileManager.MakeDirectoryInGuest(vm, auth, parent, True)
                existed = _in_guest(gom, vm, auth, guest_path)
                data = local.read_bytes()
                url = gom.fileManager.InitiateFileTransferToGuest(
                    vm, auth, guest_path, vim.vm.guest.FileManager.FileAttributes(), len(data), True
                )
                _put(client, None, data, url=url, cookie=False)
                result.written.append(guest_path)
                if existed:
                    result.overwritten.append(guest_path)
                result.bytes_written += len(data)
                if progress is not None:
                    progress(f"{info.name}: files into the guest", len(data), 0)
    except BaseException as exc:
        trace.emit("proxy", "op.fail", vm=info.moref, op="restore-files", op_id=op_id,
                   error=f"{type(exc).__name__}: {getattr(exc, 'msg', None) or exc}",
                   written=list(result.written))
        raise
    trace.emit("proxy", "op.ok", vm=info.moref, op="restore-files", op_id=op_id, written=list(result.written),
               overwritten=list(result.overwritten))
    return result
