"""A second, deliberately small implementation of the seed's workflow, and its mutants.

``ToyProxy`` drives the host only through the host-client seam (``vcbsim.reference.
HostClient``) and records its own ``op.*`` / ``mount`` events. Unbroken it passes the kit;
each mutant flips one switch (``Breaks``) that breaks exactly one documented rule. It is
independent of the reference proxy's internals on purpose: the kit must judge behaviour,
not code.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from vcbsim.conformance import BackupPolicy, Capabilities, JobResult
from vcbsim.simulator import SimulatedCrash, make_fault

SNAP = "_VCB-BACKUP_"


@dataclass(frozen=True)
class Breaks:
    """One switch per deliberate defect; all off is a correct proxy."""

    commit_before_copy_ends: bool = False
    skip_cleanup_after_failure: bool = False
    appfault_as_success: bool = False
    export_before_snapshot: bool = False
    unmount_after_commit: bool = False
    mount_letterless: bool = False
    file_level_linux: bool = False
    differential_like_incremental: bool = False
    incremental_since_full: bool = False
    redo_log_uncommitted: bool = False
    never_remove_snapshot: bool = False
    unquiesced_snapshot: bool = False
    revert_instead_of_commit: bool = False
    remove_all_snapshots: bool = False
    copy_before_expose: bool = False
    wrong_junction: bool = False
    success_without_copy: bool = False
    job_never_ends: bool = False
    backup_live_files: bool = False
    export_first_disk_only: bool = False
    export_live_disk: bool = False
    post_backup_before_copy: bool = False
    nested_verify_job: bool = False
    never_unmounts: bool = False
    unmounts_unknown_path: bool = False
    relies_on_consolidate_disks: bool = False
    silent_crash_consistent_fallback: bool = False
    incremental_copies_everything: bool = False
    incremental_skips_last_change: bool = False
    #: a failed commit is recorded as an unknown outcome (op.info) and never looked into
    unknown_commit_unresolved: bool = False
    # -- correct variants: different but valid implementations (all off: the plain toy) --
    #: its own snapshot name (VADP-era products on esxi-7.0)
    snapshot_name: str = ""
    #: select changed files by content only (skips byte-identical rewrites)
    select_by_content: bool = False
    #: also back up the letterless volume, mounted outside letters\
    letterless_outside_letters: bool = False
    #: a job configured crash-consistent: an unquiesced snapshot, announced in the result
    crash_consistent: bool = False
    #: when quiescing fails, retry unquiesced and say so (consistency: crash)
    crash_consistent_fallback: bool = False
    #: mount volumes in descending letter order
    descending_mounts: bool = False
    #: poll the snapshot list until the snapshot shows up, instead of trusting the call
    poll_for_snapshot: bool = False
    #: report the files each job copied only on its trace events (no ``JobResult.copied``)
    copied_only_in_trace: bool = False
    #: write each backup into a folder under a declared backup root (the kit reads it:
    #: ``_restored``), and name it in ``JobResult.location``
    writes_backups: bool = False
    #: ... and name it nowhere: the kit takes the folder that appeared during the job
    location_unnamed: bool = False
    # -- mutants of a product that writes its backups --
    #: one file written with other bytes than the guest had, its reported digest still right
    writes_wrong_file: bool = False
    #: the exported .vmx of an image backup loses a setting (memsize)
    writes_vmx_without_memsize: bool = False

    def active(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name)]

    @property
    def snap(self) -> str:
        return self.snapshot_name or SNAP


class ToyProxy:
    """A correct-by-default orchestrator (``vcbsim.conformance.Orchestrator``)."""

    version = "1.0"

    def __init__(self, breaks: Breaks | None = None) -> None:
        self.breaks = breaks or Breaks()
        if self.breaks.crash_consistent:
            # a product whose jobs are configured crash-consistent declares so: the quiescing
            # and script rules are then not applicable to it (Capabilities.consistency)
            self.capabilities = Capabilities(consistency="crash")
        self.name = "toy" + "".join(f"+{b}" for b in self.breaks.active())
        self._data: dict[str, bytes] = {}  # guest path -> bytes read from the snapshot (last job)
        self._readers: dict[int, Any] = {}  # disk key -> the snapshot's disk (last image job)
        if self.breaks.writes_backups:
            self._tmp = tempfile.TemporaryDirectory(prefix="vcbsim-toy-backups-")
            #: where the toy writes its backups; the kit reads them there (``_restored``)
            self.backup_root = Path(self._tmp.name)
        self.history: dict[str, list[tuple[str, dict[str, tuple[str, int, float]]]]] = {}
        self.mounted: dict[str, list[str]] = {}
        self._n = 0

    def close(self) -> None:
        """Remove the backups the toy wrote (``writes_backups``)."""
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            tmp.cleanup()

    # -- trace helpers -------------------------------------------------------------------
    def _invoke(self, host: Any, vm: Any, step: str | None, op: str, **d: Any) -> str:
        self._n += 1
        op_id = f"toy-{self._n}"
        host.trace.emit("proxy", "op.invoke", vm=vm.moref, step=step, op=op, op_id=op_id, **d)
        return op_id

    def _end(self, host: Any, vm: Any, step: str | None, op: str, op_id: str, kind: str = "op.ok", **d: Any) -> None:
        host.trace.emit("proxy", kind, vm=vm.moref, step=step, op=op, op_id=op_id, **d)

    def _fault(self, host: Any, operation: str, target: str, vm: Any) -> None:
        rule = host.check_fault(operation, target, vm=vm.moref)
        if rule is None:
            return
        if operation == "crash":
            host.trace.emit("proxy", "crash", vm=vm.moref, point=target)
            raise SimulatedCrash(target)
        if rule.fault:
            raise make_fault(rule.fault, rule.message)

    # -- the job ---------------------------------------------------------------------------
    def backup(self, host: Any, vm_name: str, policy: BackupPolicy) -> JobResult:
        b = self.breaks
        vm = host.find_vm(f"name:{vm_name}")
        self._cleanup_leftovers(host, vm)
        extra_job: dict[str, Any] = {"consistency": "crash"} if b.crash_consistent else {}
        if b.snapshot_name:
            extra_job["snapshot_name"] = b.snapshot_name
        job = self._invoke(host, vm, None, "job", mode=policy.mode, level=policy.level, **extra_job)
        if b.nested_verify_job:
            verify = self._invoke(host, vm, None, "job", mode="verify")
            self._end(host, vm, None, "job", verify)
        if policy.mode == "file" and not vm.is_windows and not b.file_level_linux:
            self._end(host, vm, None, "job", job, "op.fail", error="file-level backups are for Windows guests")
            return JobResult(ok=False, error="refused: not a Windows guest")
        snap_id: str | None = None
        mounts: list[str] = []
        try:
            if b.export_before_snapshot:
                mounts, files = self._expose(host, vm, policy, None)
            quiesce = not (b.unquiesced_snapshot or b.crash_consistent)
            pre = self._invoke(host, vm, "WF-1", "pre-backup", snapshot=b.snap, quiesce=quiesce)
            try:
                snap = host.create_snapshot(vm.moref, b.snap, quiesce=quiesce)
                snap_id = snap.id
                if b.poll_for_snapshot:
                    while all(s.id != snap_id for s in host.list_snapshots(vm.moref)):
                        pass  # the host lists it once the task is done
            except Exception as exc:
                self._end(host, vm, "WF-1", "pre-backup", pre, "op.fail", error=type(exc).__name__)
                fallback = b.crash_consistent_fallback or b.silent_crash_consistent_fallback
                if fallback and "Quiesce" in type(exc).__name__ + str(exc) and not host.list_snapshots(vm.moref):
                    # the VM cannot be quiesced: a crash-consistent backup, announced (or not)
                    pre = self._invoke(host, vm, "WF-1", "pre-backup", snapshot=b.snap, quiesce=False)
                    try:
                        snap = host.create_snapshot(vm.moref, b.snap, quiesce=False)
                    except Exception as again:
                        self._end(host, vm, "WF-1", "pre-backup", pre, "op.fail", error=type(again).__name__)
                        self._remove_leftovers(host, vm)
                        self._end(host, vm, None, "job", job, "op.fail", error=str(again))
                        return JobResult(ok=False, error=str(again))
                    snap_id = snap.id
                    said = {"consistency": "crash"} if b.crash_consistent_fallback else {}
                    self._end(host, vm, "WF-1", "pre-backup", pre, snapshot=snap_id, **said)
                elif not b.appfault_as_success:
                    self._remove_leftovers(host, vm)
                    self._end(host, vm, None, "job", job, "op.fail", error=str(exc))
                    return JobResult(ok=False, error=str(exc))
            else:
                said = {"consistency": "crash"} if b.crash_consistent else {}
                self._end(host, vm, "WF-1", "pre-backup", pre, snapshot=snap_id, **said)
            self._fault(host, "crash", "proxy.after-snapshot", vm)
            if b.post_backup_before_copy:
                pb = self._invoke(host, vm, "WF-3", "post-backup-check")
                self._end(host, vm, "WF-3", "post-backup-check", pb)
            if b.copy_before_expose:
                c0 = self._invoke(host, vm, "WF-2", "copy")
                self._end(host, vm, "WF-2", "copy", c0)
            if not b.export_before_snapshot:
                mounts, files = self._expose(host, vm, policy, snap_id)
            self._fault(host, "crash", "proxy.after-expose", vm)
            selected = self._select(vm, policy, files)
            copy = None
            location = None
            if not b.success_without_copy:
                copy = self._invoke(host, vm, "WF-2", "copy", level=policy.level)
                try:
                    for path in selected:
                        self._fault(host, "copy", f"{vm.name}:{path}", vm)
                except Exception as exc:
                    self._end(host, vm, "WF-2", "copy", copy, "op.fail", error=type(exc).__name__)
                    raise
                # the copy writes the medium while the snapshot is there to read
                location = self._write(host, vm, policy, selected, snap_id) if b.writes_backups else None
                if not b.commit_before_copy_ends:
                    self._end(host, vm, "WF-2", "copy", copy, level=self._level(vm, policy), files=selected)
        except SimulatedCrash:
            raise
        except Exception as exc:
            if b.skip_cleanup_after_failure:
                self._end(host, vm, None, "job", job, "op.fail", error=str(exc))
                return JobResult(ok=False, error=str(exc))
            self._post_backup(host, vm, snap_id, mounts)
            self._end(host, vm, None, "job", job, "op.fail", error=str(exc))
            return JobResult(ok=False, error=f"{type(exc).__name__}: {exc}")
        level = self._level(vm, policy)
        committed = self._post_backup(host, vm, snap_id, mounts)
        if copy is not None and b.commit_before_copy_ends:
            self._end(host, vm, "WF-2", "copy", copy, level=level, files=selected)
        if not committed:  # the VM is still in snapshot mode: the job failed (the next run cleans up)
            self._end(host, vm, None, "job", job, "op.fail", error="commit failed")
            return JobResult(ok=False, error="the backup snapshot could not be removed (commit failed)")
        if policy.mode == "file":
            self.history.setdefault(vm.moref, []).append((level, files))
        if not b.job_never_ends:
            self._end(host, vm, None, "job", job, files=selected if policy.mode == "file" else None)
        out = {p: v[0] for p, v in files.items()} if policy.mode == "file" else None
        # what this job itself stored: the kit judges the seed's bases from it (BK-*)
        copied = {p: files[p][0] for p in selected if p in files} if policy.mode == "file" else None
        said = ({"excluded_disks": [d.key for d in vm.disks if d.snapshot_exclusion is not None]}
                if b.writes_backups and policy.mode == "fullvm" else {})
        return JobResult(ok=True, files=out, copied=None if b.copied_only_in_trace else copied,
                         location=None if b.location_unnamed else location, details=said)

    def _write(self, host: Any, vm: Any, policy: BackupPolicy, selected: list[str], snap_id: str | None) -> str:
        """The backup as written to the medium: ``<letter>/<path>`` per copied file, or the VM's
        export (``<vm>.vmx``, a VMDK per disk named as the .vmx names it, ``<vm>.vmsd``)."""
        from vcbsim.simulator.disk import write_vmdk

        self._n += 1
        folder = self.backup_root / f"{vm.name}-{self._n}"
        folder.mkdir()
        if policy.mode == "file":
            for i, path in enumerate(selected):
                data = self._data[path]
                if self.breaks.writes_wrong_file and i == 0:
                    data = data + b" (torn write)"
                out = folder / path[0] / path[3:].replace("\\", "/")
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data)
            return folder.name
        vmobj = host.host.find_vm(vm.moref)
        vmx = self._vmx_at_snapshot
        if self.breaks.writes_vmx_without_memsize:
            vmx = "".join(ln for ln in vmx.splitlines(keepends=True) if not ln.lower().startswith("memsize"))
        (folder / f"{vm.name}.vmx").write_text(vmx, encoding="utf-8")
        (folder / f"{vm.name}.vmsd").write_text(self._vmsd_at_snapshot, encoding="utf-8")
        from vcbsim.conformance._restored import vmx_disk_files

        names = vmx_disk_files(vmx)
        covered = {d.key for d in vm.disks if d.snapshot_exclusion is None}  # an independent disk or RDM: left out
        for d in vmobj.disks:
            name = names.get(f"{d.controller}0:{d.unit_number}")
            if name is not None and d.key in self._readers and d.key in covered:
                write_vmdk(self._readers[d.key], folder / name.replace("\\", "/").rsplit("/", 1)[-1])
        return folder.name

    def _level(self, vm: Any, policy: BackupPolicy) -> str:
        if policy.mode != "file":
            return "image"
        return policy.level if self.history.get(vm.moref) else "full"

    def _select(self, vm: Any, policy: BackupPolicy, files: dict[str, tuple[str, int, float]]) -> list[str]:
        if policy.mode != "file":
            return []
        hist = self.history.get(vm.moref, [])
        base: dict[str, tuple[str, int, float]] | None = None
        level = policy.level
        if level == "differential" and self.breaks.differential_like_incremental:
            level = "incremental"
        elif level == "incremental" and self.breaks.incremental_since_full:
            level = "differential"
        # the seed's bases: the last full (differential), the last full or incremental
        # (incremental; a differential is not one)
        bases = ("full",) if level == "differential" else ("full", "incremental")
        for lvl, snap_files in reversed(hist):
            if lvl in bases:
                base = snap_files
                break
        if level == "full" or base is None or self.breaks.incremental_copies_everything:
            return sorted(files)
        if self.breaks.select_by_content:
            return sorted(p for p, v in files.items() if base.get(p, (None,))[0] != v[0])
        out = sorted(p for p, v in files.items() if base.get(p) != v)
        if self.breaks.incremental_skips_last_change and level == "incremental" and out:
            latest = max(out, key=lambda p: files[p][2])
            out.remove(latest)  # a time-window bug: the newest change falls outside it
        return out

    def _expose(self, host: Any, vm: Any, policy: BackupPolicy, snap_id: str | None) -> tuple[list[str], dict[str, tuple[str, int, float]]]:
        b = self.breaks
        op = self._invoke(host, vm, "WF-1f", "expose", kind=policy.mode)
        mounts: list[str] = []
        files: dict[str, tuple[str, int, float]] = {}
        try:
            if policy.mode == "fullvm":
                disks = vm.disks[:1] if b.export_first_disk_only else vm.disks
                for d in disks:
                    self._fault(host, "export", f"{vm.name}:{d.key}", vm)
                    at = None if b.export_live_disk else snap_id
                    reader = host.open_disk(vm.moref, d.key, at)
                    self._readers[d.key] = reader
                    areas = host.allocated_areas(vm.moref, d.key, at)
                    n = sum(len(reader.read(off, ln)) for off, ln in areas)
                    host.trace.emit("proxy", "disk.export", vm=vm.moref, disk=d.key, snapshot=at, bytes=n)
                vmobj = host.host.find_vm(vm.moref)
                self._vmx_at_snapshot, self._vmsd_at_snapshot = vmobj.vmx_text(), vmobj.vmsd_text()
                path = f"/toy/{vm.name}-fullVM"
                host.trace.emit("proxy", "mount", vm=vm.moref, path=path, kind="fullvm")
                mounts.append(path)
            else:
                vols = list(enumerate(vm.volumes))
                for i, vol in reversed(vols) if b.descending_mounts else vols:
                    outside = not vol.letter and b.letterless_outside_letters
                    if not vol.letter and not b.mount_letterless and vm.is_windows and not outside:
                        continue
                    letter = vol.letter or f"vol{i}"
                    self._fault(host, "mount", f"{vm.name}:{letter}", vm)
                    path = f"/toy/{vm.name}/{letter}" if b.wrong_junction else f"/toy/{vm.name}/letters/{letter}"
                    if outside or not vm.is_windows:
                        path = f"/toy/{vm.name}/volumes/{letter}"
                    host.trace.emit("proxy", "mount", vm=vm.moref, path=path, kind="file", letter=vol.letter)
                    mounts.append(path)
                    if not vol.letter:
                        continue
                    if b.backup_live_files or snap_id is None:
                        fs = host.host.guest_fs(vm.name)
                        for dirpath, _dirs, names in fs.walk(f"{vol.letter}:\\"):
                            for name in names:
                                gp = f"{dirpath.rstrip(chr(92))}\\{name}"
                                data = fs.read_bytes(gp)
                                self._data[gp] = bytes(data)
                                st = fs.stat(gp)
                                files[gp] = (hashlib.sha256(data).hexdigest(), len(data), float(st.mtime))
                        continue
                    reader = host.open_volume(vm.moref, snap_id, vol)
                    for e in reader.walk():
                        if e.is_dir:
                            continue
                        gp = f"{vol.letter}:\\" + e.path.replace("/", "\\")
                        data = reader.read_bytes(e.path)
                        self._data[gp] = data
                        files[gp] = (hashlib.sha256(data).hexdigest(), e.size, e.mtime)
        except Exception as exc:
            self.mounted[vm.moref] = mounts
            self._end(host, vm, "WF-1f", "expose", op, "op.fail", error=type(exc).__name__)
            raise
        self.mounted[vm.moref] = mounts
        self._end(host, vm, "WF-1f", "expose", op)
        return mounts, files

    def _unmount(self, host: Any, vm: Any, mounts: list[str]) -> None:
        if not mounts or self.breaks.never_unmounts:
            return
        op = self._invoke(host, vm, "WF-3a", "unmount")
        for p in mounts:
            host.trace.emit("proxy", "unmount", vm=vm.moref, path=p)
        if self.breaks.unmounts_unknown_path:
            host.trace.emit("proxy", "unmount", vm=vm.moref, path=f"/toy/{vm.name}/scratch")
        self.mounted.pop(vm.moref, None)
        self._end(host, vm, "WF-3a", "unmount", op)

    def _post_backup(self, host: Any, vm: Any, snap_id: str | None, mounts: list[str]) -> bool:
        """Unmount and commit; whether the snapshot is gone (or was never there to remove)."""
        b = self.breaks
        committed = True
        if not b.unmount_after_commit:
            self._unmount(host, vm, mounts)
        if snap_id is not None and not b.never_remove_snapshot:
            op = self._invoke(host, vm, "WF-3b", "commit", snapshot=snap_id)
            try:
                if b.revert_instead_of_commit:
                    host.host.revert_to_snapshot(vm.moref, snap_id)
                if b.remove_all_snapshots:
                    host.host.remove_all_snapshots(vm.moref)
                elif b.relies_on_consolidate_disks:
                    # the vSphere 5.0 way: remove without consolidating, then ConsolidateVMDisks_Task
                    host.remove_snapshot(vm.moref, snap_id, consolidate=False)
                    host.host.consolidate_disks(vm.moref)
                else:
                    host.remove_snapshot(vm.moref, snap_id, consolidate=not b.redo_log_uncommitted)
            except Exception as exc:
                kind = "op.info" if b.unknown_commit_unresolved else "op.fail"
                self._end(host, vm, "WF-3b", "commit", op, kind, error=type(exc).__name__)
                committed = False
            else:
                self._end(host, vm, "WF-3b", "commit", op, snapshot=snap_id)
        if b.unmount_after_commit:
            self._unmount(host, vm, mounts)
        return committed

    def _remove_leftovers(self, host: Any, vm: Any) -> None:
        for s in host.list_snapshots(vm.moref):
            if s.name == self.breaks.snap:
                op = self._invoke(host, vm, "WF-3b", "cleanup-snapshot", snapshot=s.id)
                try:
                    host.remove_snapshot(vm.moref, s.id)
                except Exception as exc:
                    self._end(host, vm, "WF-3b", "cleanup-snapshot", op, "op.fail", error=type(exc).__name__)
                else:
                    self._end(host, vm, "WF-3b", "cleanup-snapshot", op)

    def _cleanup_leftovers(self, host: Any, vm: Any) -> None:
        """What an earlier, failed or crashed run left (spec F16)."""
        left = self.mounted.pop(vm.moref, [])
        if left:
            op = self._invoke(host, vm, "WF-3a", "cleanup-unmount")
            for p in left:
                host.trace.emit("proxy", "unmount", vm=vm.moref, path=p)
            self._end(host, vm, "WF-3a", "cleanup-unmount", op)
        self._remove_leftovers(host, vm)


def toy(**breaks: Any) -> type[ToyProxy]:
    """A factory class for ``run()``: ``toy(commit_before_copy_ends=True)``."""
    b = replace(Breaks(), **breaks)

    class Mutant(ToyProxy):
        def __init__(self) -> None:
            super().__init__(b)

    Mutant.__qualname__ = Mutant.__name__ = "ToyProxy_" + "_".join(b.active() or ["correct"])
    globals()[Mutant.__name__] = Mutant  # importable by name, so a printed regression test runs
    return Mutant
