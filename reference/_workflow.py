"""The reference VCB proxy: the documented workflow (``docs/seed/vcb-workflow.txt``), step by step.

One backup of one VM::

    WF-1   pre-backup: create the ``_VCB-BACKUP_`` snapshot with quiescing; VMware Tools on
           the host runs 1a pre-freeze scripts, 1b SYNC/VSS, 1c snapshot, 1d unquiesce,
           1e post-thaw; the proxy records one operation and the host's fault
    WF-1f  expose the snapshot: image export (``<root>/<vm>-fullVM``) or file-level mount
           (``<root>/<vm>/letters/<L>``, Windows only); an image export first chooses its
           level (full, or incremental/differential with changed block tracking: ``_cbt.py``)
    WF-2   the backup software copies the exposed data to the medium
    WF-3a  unmount from the proxy
    WF-3b  remove the snapshot, committing the redo log

Each step is an ``op.invoke`` then ``op.ok``/``op.fail`` in the host's trace, with ``step``
naming the seed step (``op.info`` when a call raised although its effect happened), plus
``mount``/``unmount`` events for proxy paths; a whole run is one ``job`` op (no step, with
``mode`` and ``level``), whose ``op.ok`` lists the files copied (``files``). An incremental
or differential image backup may first enable changed block tracking (op
``enable-change-tracking``, no step, before WF-1); its job's ``op.ok`` says the ``level`` done
and, when it fell back to a full one, why (``fallback``, also a ``note`` event).

Failure paths always clean up: nothing exposed stays on the proxy, no ``_VCB-BACKUP_``
snapshot and no redo log stay on the VM (a removal that fails part-way is retried, then the
disks are consolidated). The ``RunOutcome`` names the failed step, the host's fault and, for
pre-backup, the sub-step that failed (read from the VM's events in the trace, else inferred
from the fault). A run killed by a crash (``SimulatedCrash``, or a real kill at one of the
``CRASH_POINTS``) cleans nothing, like a real process that dies; the next run of that VM
finds the leftovers (the session record the proxy keeps under ``<root>/.vcb-sessions`` and
the paths it names, half-written exports included, ``_VCB-BACKUP_`` snapshots, a VM that
needs consolidation, catalog records left ``running``), reports them and removes them first
(F16); a later ``unmount`` of a held mount finishes what a killed one left. Cleanup emits
``unmount`` events only for mounts its own trace announced (a killed process announced its
mounts in its own trace). A directory the proxy did not create is never removed: exposing
into it is refused before any snapshot.

One concern per module: this one holds ``BackupProxy`` and its steps; ``_run.BackupRun``
drives them in order (through the proxy's public surface), ``_oprecorder.OpRecorder`` writes
the op events, ``_sessions.SessionStore`` keeps the crash sessions, ``_outcome`` holds the
records (``RunOutcome``, ``StepOutcome``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vcbsim.simulator import (
    InvalidInputError,
    SimulatedCrash,
    StateError,
    fault_name,
    make_fault,
)

from ._client import HostClient, SnapshotInfo, VMInfo, VolumeReader, api_at_least
from ._oprecorder import OpRecorder, emit_event
from ._outcome import RunOutcome, StepOutcome, diagnose_pre_backup, message_of
from ._sessions import SessionStore, force_remove
from ._transports import (
    RUN_MARK,
    TRANSPORTS,
    DiskSource,
    holds_leftovers,
    open_source,
    release_leftovers,
    transport_mode,
)

if TYPE_CHECKING:
    from ._catalog import Catalog
    from ._cbt import ImagePlan
    from ._run import BackupRun

__all__ = [
    "CRASH_POINTS",
    "SNAPSHOT_NAME",
    "TRANSPORTS",
    "BackupProxy",
    "RunOutcome",
    "StepOutcome",
    "diagnose_pre_backup",
    "emit_event",
    "force_remove",
]

#: The name VCB gives its backup snapshot (spec R59).
SNAPSHOT_NAME = "_VCB-BACKUP_"
ExportType = Literal["fullvm", "file"]
ProgressFn = Callable[[str, int, int], None]
"""``progress(description, advance, total)``: bytes copied (``total`` 0 when unknown)."""

#: The proxy's crash points, in the order a backup reaches them (``FaultRule("crash",
#: target=...)``; the host adds ``host.snapshot.before-freeze`` and ``-after-freeze`` inside
#: WF-1). ``during-expose`` fires before the second and later disks (image) or volumes (file)
#: are exposed, ``during-copy`` before the second and later files are copied to the medium:
#: a kill there leaves a half-written export and a catalog record that never completes.
CRASH_POINTS: tuple[str, ...] = (
    "proxy.before-snapshot",
    "proxy.after-snapshot",
    "proxy.during-expose",
    "proxy.after-expose",
    "proxy.during-copy",
    "proxy.after-copy",
    "proxy.after-unmount",
    "proxy.after-commit",
)


class BackupProxy:
    """A VCB proxy with a working directory ``root`` on the proxy machine.

    Args:
        client: the host-client seam (``InProcessHostClient`` or another binding).
        root: where exports and mounts appear (``<root>/<vm>-fullVM``, ``<root>/<vm>``).
        split: image exports as 2 GB split sparse extents (VCB's default) or monolithic.
        quiesce: ask VMware Tools to quiesce (steps 1a-1e) when creating the snapshot.
        progress: ``progress(description, advance, total)`` for long copies.
        max_mounted_disks: VCB 1.5's limit of concurrently mounted VM disks (spec R60).
        transport: ``vcbMounter -m``: how an image export reads the snapshot's disks:
            ``folder`` (default), ``nfc`` (an export lease) or ``hotadd`` (attached to the
            proxy VM); VCB's ``nbd``/``nbdssl`` are ``nfc``, ``cos`` is ``folder``, ``san`` is
            refused (``_transports.py``). File-level mounts read through ``folder``.
        proxy_vm: the proxy VM for ``hotadd`` (default: the VM the inventory marks as the proxy).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        client: HostClient,
        root: str | Path,
        *,
        split: bool = True,
        quiesce: bool = True,
        progress: ProgressFn | None = None,
        max_mounted_disks: int = 60,
        transport: str = "folder",
        proxy_vm: str | None = None,
    ) -> None:
        #: the real transport (``transport_mode``: one clear error for ``san`` or a bad name)
        self.mode = transport_mode(transport)
        self.max_mounted_disks = max_mounted_disks
        self.transport = transport
        self.proxy_vm = proxy_vm
        #: the transport each run's image export reads through, until WF-3a releases it
        self._sources: dict[str, DiskSource] = {}
        self.client = client
        self.root = Path(root)
        self.split = split
        self.quiesce = quiesce
        self.progress = progress
        #: the op events of every step (``_oprecorder``)
        self.ops = OpRecorder(client)
        #: what each unfinished run had started, for the next run's cleanup (``_sessions``)
        self.crash_sessions = SessionStore(self.root)
        self._active: set[str] = set()
        #: the snapshot volumes each backup run's mount opened (WF-1f), read by WF-2
        self._file_volumes: dict[str, dict[str, VolumeReader]] = {}

    # -- one run per VM (spec R60) ----------------------------------------------------------

    def claim(self, vm: VMInfo) -> None:
        """Start a run of ``vm`` on this proxy; ``StateError`` if one is running (file-level
        and image-level backups of one VM cannot run at the same time, spec R60)."""
        if vm.moref in self._active:
            msg = (
                f"a backup of {vm.name} is already running on this proxy; file-level and "
                "image-level backups of one VM cannot run at the same time (spec R60)"
            )
            raise StateError(msg)
        self._active.add(vm.moref)

    def release(self, vm: VMInfo) -> None:
        """The run of ``vm`` ended (however it ended)."""
        self._active.discard(vm.moref)

    def fault_point(self, operation: str, target: str, vm: VMInfo) -> None:
        """Consult the fault injector where the proxy can fail. Targets (``FaultRule.target``
        globs) name the VM first:

        ==========  ==========================================  ==========================
        operation   target                                      step
        ==========  ==========================================  ==========================
        export      ``<vm>:<disk file>`` (``win1:win1_1.vmdk``)  WF-1f, per disk
        mount       ``<vm>:<letter>`` (``win1:D``)                WF-1f, per volume
        copy        ``<vm>:<guest path or export file>``        WF-2, per file copied
        unmount     ``<vm>:<mount directory>``                  WF-3a
        crash       ``CRASH_POINTS`` (``proxy.after-snapshot``  between and inside steps
                    ...)
        ==========  ==========================================  ==========================

        A rule's ``delay`` passes virtual time; its ``fault`` is raised as that vSphere fault.
        """
        rule = self.client.check_fault(operation, target, vm=vm.moref)
        if rule is None:
            return
        if rule.delay:
            self.client.clock.advance(rule.delay)
        if operation == "crash":
            self.client.trace.emit("proxy", "crash", vm=vm.moref, point=target)
            raise SimulatedCrash(target)
        if rule.fault:
            raise make_fault(rule.fault, rule.message)
        if rule.message:
            raise StateError(rule.message)

    # -- sessions (what a crashed run leaves) -------------------------------------------

    def session(self, vm_name: str) -> dict[str, Any] | None:
        """The session record of ``vm_name`` (``None``: no run of it is unfinished)."""
        return self.crash_sessions.get(vm_name)

    def sessions(self) -> list[dict[str, Any]]:
        return self.crash_sessions.all()

    def export_path(self, vm: VMInfo) -> Path:
        return self.root / f"{vm.name}-fullVM"

    def mount_path(self, vm: VMInfo) -> Path:
        return self.root / vm.name

    def leftovers(self, vm: VMInfo) -> tuple[list[SnapshotInfo], list[Path]]:
        """``_VCB-BACKUP_`` snapshots on the VM, and the paths an interrupted run of this
        proxy left (only paths its session record names: a directory the proxy did not
        create is never removed)."""
        snaps = [s for s in self.client.list_snapshots(vm.moref) if s.name == SNAPSHOT_NAME]
        sess = self.session(vm.name)
        paths: set[Path] = set()
        if sess is not None:
            own = self.export_path(vm) if sess.get("type") == "fullvm" else self.mount_path(vm)
            candidates = {own} | ({Path(sess["path"])} if sess.get("path") else set())
            paths = {p for p in candidates if p.exists()}
        return snaps, sorted(paths)

    def _traced_mounts(self, vm: VMInfo) -> set[str]:
        """Proxy paths of ``vm`` that this trace shows mounted now (a ``mount`` event and no
        ``unmount`` of the path or of a directory above it since)."""
        mounted: set[str] = set()
        for ev in self.client.trace:
            if ev.vm != vm.moref or ev.kind not in ("mount", "unmount"):
                continue
            path = str(ev.details.get("path", ""))
            if ev.kind == "mount":
                mounted.add(path)
                continue
            base = path.rstrip("/\\")
            mounted = {m for m in mounted if m != path and not m.startswith((base + "/", base + "\\"))}
        return mounted

    def clean_leftovers(self, vm: VMInfo, result: RunOutcome) -> bool:
        """Find and remove what an earlier, interrupted run of this VM left (F16): first the
        paths on the proxy (WF-3a), then the snapshots (WF-3b); each is reported in
        ``result.stale_cleaned`` and the trace. ``False`` if a snapshot could not be removed
        (the run must not go on: the VM would get a second backup snapshot)."""
        sess = self.session(vm.name)
        snaps, paths = self.leftovers(vm)
        notes: list[str] = []
        announced: list[Path] = []
        if sess is not None and sess.get("state") in ("exposed", "mounted"):
            announced = [Path(v) for v in (sess.get("letters") or {}).values()]
            if not announced and sess.get("path"):
                announced = [Path(sess["path"])]
        if sess is not None and not snaps and not paths:
            notes.append(f"removed the session record of an interrupted run of {vm.name}")
        ok = True
        traced = self._traced_mounts(vm)
        self._sources.pop(vm.moref, None)  # an interrupted run's transport: the host says what it left
        held = release_leftovers(self.client, vm, {s.id for s in snaps}) if snaps else []
        if held:
            op_id = self.ops.invoke(vm, "WF-3a", "cleanup-release-disks", stale=True)
            self.ops.ok(vm, "WF-3a", "cleanup-release-disks", op_id, result)
            notes.extend(held)
        for p in paths:
            op_id = self.ops.invoke(vm, "WF-3a", "cleanup-unmount", path=str(p), stale=True)
            force_remove(p)
            for m in announced:
                # the trace says unmount only of what it said was mounted: a run of an
                # earlier process (killed) announced its mounts in that process's trace
                if (m == p or p in m.parents) and str(m) in traced:
                    self.client.trace.emit("proxy", "unmount", vm=vm.moref, path=str(m))
            self.ops.ok(vm, "WF-3a", "cleanup-unmount", op_id, result)
            notes.append(f"removed {p} left on the proxy by an interrupted run")
        for s in snaps:
            op_id = self.ops.invoke(vm, "WF-3b", "cleanup-snapshot", snapshot=s.id, stale=True)
            try:
                self.client.remove_snapshot(vm.moref, s.id, consolidate=True)
            except Exception as exc:
                self.ops.failed(vm, "WF-3b", "cleanup-snapshot", op_id, result, exc)
                notes.append(f"could not remove snapshot {SNAPSHOT_NAME} ({s.id}) left on {vm.name}: {exc}")
                ok = False
                continue
            self.ops.ok(vm, "WF-3b", "cleanup-snapshot", op_id, result, snapshot=s.id)
            notes.append(f"removed snapshot {SNAPSHOT_NAME} ({s.id}) left on {vm.name} by an interrupted run")
        if ok and api_at_least(self.client, 5) and self.client.vm_info(vm.moref).consolidation_needed:
            self._consolidate_if_needed(vm, result)
            notes.append(f"consolidated the redo logs an interrupted removal left on {vm.name}")
        if ok:
            self.crash_sessions.drop(vm.name)
        for n in notes:
            self.client.trace.emit("proxy", "note", vm=vm.moref, text=n)
        result.stale_cleaned.extend(notes)
        return ok

    def fail_interrupted_backups(self, vm: VMInfo, catalog: Catalog, result: RunOutcome) -> list[int]:
        """Catalog records of this VM still ``running``: a process killed in WF-2 never
        completed or failed them. No run of this VM is active on this proxy (R60), so they
        are marked ``failed`` (never offered for restore nor used as a reference) and
        reported in ``result.stale_cleaned``. Returns their ids."""
        ids = []
        for rec in catalog.backups(vm.name, status="running"):
            if rec.vm_uuid != vm.uuid:
                continue
            # the catalog's own failure path: entries dropped, status and error set
            catalog.fail_backup(rec.id, self.client.clock.now, StateError("interrupted: the proxy died during WF-2"))
            note = f"marked backup {rec.id} of {vm.name} failed: an interrupted run left it incomplete"
            self.client.trace.emit("proxy", "note", vm=vm.moref, text=note)
            result.stale_cleaned.append(note)
            ids.append(rec.id)
        return ids

    # -- public entry points -------------------------------------------------------------

    def resolve(self, selector: str) -> VMInfo:
        return self.client.find_vm(selector)

    def run(
        self,
        selector: str | VMInfo,
        type: str = "fullvm",
        *,
        catalog: Catalog | None = None,
        kind: str | None = None,
        job: str = "",
        hold: bool = False,
    ) -> BackupRun:
        """Prepare one run; drive it with ``BackupRun.steps()`` or ``BackupRun.run()``.

        Args:
            selector: ``name:``/``uuid:``/``ipaddr:``/``moref:`` selector, or a ``VMInfo``.
            type: ``fullvm`` (image export) or ``file`` (file-level mount, Windows only).
            catalog: the backup medium for step 2; ``None`` skips step 2 (mount only).
            kind: ``full``/``differential``/``incremental`` for file backups (default full);
                for image backups the level (default full; ``image`` is full too): an
                incremental or differential copies only the areas changed block tracking
                reports changed (``_cbt.py``), falling back to full where it cannot.
            hold: stop after WF-1f and keep the snapshot exposed (``vcbMounter`` mount);
                ``unmount()`` finishes the run later.
        """
        if type not in ("fullvm", "file"):
            msg = "export type (-t)"
            raise InvalidInputError(msg, expected="'fullvm' or 'file'", got=type)
        if type == "file":
            kind = kind or "full"
            if kind not in ("full", "differential", "incremental"):
                msg = "file-level backup kind"
                raise InvalidInputError(
                    msg, expected="full, differential or incremental", got=kind
                )
        level: str | None = None
        if type == "fullvm":
            if kind not in (None, "image", "full", "differential", "incremental"):
                msg = "image-level backup kind"
                raise InvalidInputError(
                    msg, expected="full (or image), differential or incremental", got=kind
                )
            level = "full" if kind in (None, "image") else kind
            kind = "image"
        vm = selector if isinstance(selector, VMInfo) else self.resolve(selector)
        if type == "file" and not vm.is_windows:
            from ._filelevel import UnsupportedGuestError

            raise UnsupportedGuestError(vm)
        from ._run import BackupRun

        return BackupRun(self, vm, type, catalog=catalog, kind=kind, job=job, hold=hold, level=level)

    def backup(
        self,
        selector: str | VMInfo,
        type: str = "fullvm",
        *,
        catalog: Catalog | None = None,
        kind: str | None = None,
        job: str = "",
    ) -> RunOutcome:
        """Run the whole workflow (WF-1 ... WF-3b) for one VM; never raises for host faults."""
        return self.run(selector, type, catalog=catalog, kind=kind, job=job).run()

    def mount(self, selector: str | VMInfo, type: str = "fullvm") -> RunOutcome:
        """Pre-backup only (``vcbMounter -a ... -r ... -t ...``): snapshot and expose; the
        snapshot stays until ``unmount``. A failed mount cleans up like any run."""
        vm = selector if isinstance(selector, VMInfo) else self.resolve(selector)
        return self.run(vm, type, hold=True).run()

    def refuse_if_held(self, vm: VMInfo) -> None:
        """``StateError`` if ``vm`` is mounted and held for a later ``unmount``."""
        held = self.session(vm.name)
        if held is not None and held.get("state") == "mounted":
            msg = (
                f"{vm.name} is already mounted at {held.get('path')}; unmount it first "
                f"(unmount -r {held.get('path')})"
            )
            raise StateError(msg, path=held.get("path"))

    def mounted_disks(self, *, besides: str | None = None) -> int:
        """Virtual disks exposed on this proxy now (spec R60 allows at most 60)."""
        return sum(
            int(s.get("disks", 0))
            for s in self.sessions()
            if s.get("state") in ("exposing", "exposed", "mounted") and s.get("moref") != besides
        )

    def unmount(self, target: str | Path | VMInfo) -> RunOutcome:
        """Post-backup for a held mount (``vcbMounter -U``): unmount (WF-3a), then remove
        the snapshot (WF-3b). ``target`` is the mount path, or the VM."""
        sess = self.crash_sessions.find(target)
        vm = self.client.vm_info(sess["moref"])
        result = RunOutcome(
            vm=vm.name,
            moref=vm.moref,
            type=sess["type"],
            snapshot_id=sess.get("snapshot_id"),
            path=sess.get("path"),
            letters=dict(sess.get("letters") or {}),
            started=self.client.clock.now,
        )
        if result.snapshot_id is not None and all(
            s.id != result.snapshot_id for s in self.client.list_snapshots(vm.moref)
        ):
            # an unmount killed after WF-3b removed it: only the session record is left
            note = (
                f"snapshot {SNAPSHOT_NAME} ({result.snapshot_id}) of {vm.name} was already removed "
                "by an interrupted unmount"
            )
            self.client.trace.emit("proxy", "note", vm=vm.moref, text=note)
            result.stale_cleaned.append(note)
            result.snapshot_id = None
        self._active.add(vm.moref)
        try:
            if (result.snapshot_id is not None and vm.moref not in self._sources
                    and holds_leftovers(self.client, vm, {result.snapshot_id})):
                self._release_held_mount(vm, result)
            self.post_backup(vm, result)
        finally:
            self._active.discard(vm.moref)
        if result.status != "failed":
            result.status = "ok"
        result.finished = self.client.clock.now
        return result

    def _release_held_mount(self, vm: VMInfo, result: RunOutcome) -> None:
        """WF-3a of a held mount made by another process: the disks its mount attached to the
        proxy VM are still attached (a host keeps them, across its own restarts too), so
        they are found by what the host shows and detached before the snapshot is removed."""
        assert result.snapshot_id is not None
        op_id = self.ops.invoke(vm, "WF-3a", "release-disks", complete=True, held_by="another process")
        try:
            notes = release_leftovers(self.client, vm, {result.snapshot_id})
        except Exception as exc:
            self.ops.failed(vm, "WF-3a", "release-disks", op_id, result, exc)
            return
        self.ops.ok(vm, "WF-3a", "release-disks", op_id, result, released=notes)

    # -- the steps -----------------------------------------------------------------------

    def pre_backup(self, vm: VMInfo, result: RunOutcome) -> bool:
        """WF-1: the quiesced ``_VCB-BACKUP_`` snapshot. Returns whether it exists."""
        mark = len(self.client.trace)
        op_id = self.ops.invoke(
            vm, "WF-1", "pre-backup", name=SNAPSHOT_NAME, quiesce=self.quiesce, transport=self.transport
        )
        try:
            snap = self.client.create_snapshot(
                vm.moref,
                SNAPSHOT_NAME,
                description=f"VMware Consolidated Backup snapshot {RUN_MARK}",
                quiesce=self.quiesce,
                memory=False,
            )
        except Exception as exc:
            attempt = [e for e in self.client.trace.since(mark) if e.vm in (vm.moref, vm.name)]
            left = [s for s in self.client.list_snapshots(vm.moref) if s.name == SNAPSHOT_NAME]
            if left:
                # the call failed but the snapshot exists: the outcome was not what the
                # fault said (Jepsen's info); record that, then take it away again
                self.ops.unknown(vm, "WF-1", "pre-backup", op_id, result, exc, snapshot=left[-1].id)
            else:
                self.ops.failed(vm, "WF-1", "pre-backup", op_id, result, exc)
            result.cause_step = diagnose_pre_backup(attempt, exc)
            for s in left:
                result.snapshot_id = s.id
                self._remove_snapshot(vm, result, op="cleanup-snapshot")
            return False
        result.snapshot_id = snap.id
        self.crash_sessions.save(vm, "snapshot", result)
        # the result says what the backup is (rule WF-1b): a snapshot that came back
        # unquiesced (asked so, or a VM that cannot be quiesced) is a crash-consistent one
        self.ops.ok(vm, "WF-1", "pre-backup", op_id, result, snapshot=snap.id,
                    consistency="quiesced" if snap.quiesced else "crash")
        return True

    def prepare_change_tracking(self, vm: VMInfo, result: RunOutcome) -> bool:
        """Before WF-1 of a requested incremental or differential image backup: enable changed
        block tracking where the host supports it and the VM does not have it on (rule 1 of
        ``_cbt.py``). Returns whether it was enabled now (this backup is then the baseline). A
        failure is recorded and the backup goes on (it will be a full one)."""
        if not hasattr(self.client, "change_tracking") or not hasattr(self.client, "enable_change_tracking"):
            return False
        try:
            state = self.client.change_tracking(vm.moref)
        except Exception as exc:  # the VM's config could not be read: the plan will tell
            result.notes.append(f"could not read the changed block tracking of {vm.name}: {message_of(exc)}")
            return False
        if not state.supported or state.enabled:
            return False
        trace = self.client.trace
        op = "enable-change-tracking"
        op_id = self.ops.invoke(vm, None, op)
        try:
            self.client.enable_change_tracking(vm.moref)
        except Exception as exc:
            error = f"{fault_name(exc)}: {message_of(exc)}"
            trace.emit("proxy", "op.fail", vm=vm.moref, op=op, op_id=op_id, error=error, fault=fault_name(exc))
            result.steps.append(StepOutcome("prepare", op, False, error))
            result.notes.append(f"could not enable changed block tracking on {vm.name}: {error}")
            return False
        trace.emit("proxy", "op.ok", vm=vm.moref, op=op, op_id=op_id)
        result.steps.append(StepOutcome("prepare", op, True))
        note = (
            f"enabled changed block tracking on {vm.name} (ReconfigVM_Task); it takes effect with "
            "the backup snapshot"
        )
        trace.emit("proxy", "note", vm=vm.moref, text=note)
        result.notes.append(note)
        return True

    def plan_image(
        self, vm: VMInfo, result: RunOutcome, catalog: Catalog | None, *, enabled_now: bool = False
    ) -> ImagePlan:
        """The level of an image backup (``_cbt.plan_image``), recorded in ``result``; a
        fallback to full is said in the trace (``note``)."""
        from ._cbt import plan_image

        assert result.snapshot_id is not None
        plan = plan_image(
            self.client, vm, result.snapshot_id, catalog, result.requested_level or "full", enabled_now=enabled_now
        )
        result.level = plan.level
        result.fallback = plan.fallback
        result.base_backup_id = plan.base_id
        if plan.fallback:
            note = f"{plan.requested} image backup of {vm.name} is a full one: {plan.fallback}"
            self.client.trace.emit("proxy", "note", vm=vm.moref, text=note)
        return plan

    def expose(
        self, vm: VMInfo, result: RunOutcome, *, catalog: Catalog | None = None, enabled_now: bool = False
    ) -> ImagePlan | None:
        """WF-1f: export the image, or mount the volumes (raises; the caller cleans up). An
        image export first decides its level (``plan_image``): ``catalog`` holds the backups an
        incremental or differential builds on. Returns that plan (``None`` for file level)."""
        from ._filelevel import mount_files
        from ._image import export_image, snapshot_covered

        assert result.snapshot_id is not None
        self.root.mkdir(parents=True, exist_ok=True)
        busy = self.mounted_disks(besides=vm.moref)
        if busy + len(vm.disks) > self.max_mounted_disks:
            msg = (
                f"the proxy already has {busy} virtual disks mounted; {vm.name} needs "
                f"{len(vm.disks)} more and at most {self.max_mounted_disks} may be mounted at "
                "once (spec R60); unmount some or lower the job concurrency"
            )
            raise StateError(msg)
        exposed = 0

        def fault_point(op: str, target: str) -> None:
            nonlocal exposed
            if exposed:
                self.fault_point("crash", "proxy.during-expose", vm)
            exposed += 1
            self.fault_point(op, target, vm)

        plan: ImagePlan | None = None
        if result.type == "fullvm":
            # only the disks the snapshot covers are read (``_image.py``: independent disks
            # and physical RDMs are left out, and said so)
            covered, excluded = snapshot_covered(vm)
            result.excluded_disks = [
                f"disk {d.key} ({d.label}): {excluded[d.key]}" for d in vm.disks if d.key in excluded
            ]
            plan = self.plan_image(covered, result, catalog, enabled_now=enabled_now)
            dest = self.export_path(vm)
            result.path = str(dest)
            self.crash_sessions.save(vm, "exposing", result)
            source = self._attach(covered, result)
            export_image(
                self.client,
                vm,
                result.snapshot_id,
                dest,
                split=self.split,
                fault_point=fault_point,
                progress=self.progress,
                plan=plan,
                open_disk=source.open,
            )
            emit_event(self.client.trace, "mount", vm=vm.moref, path=str(dest), kind="fullvm")
        else:
            dest = self.mount_path(vm)
            result.path = str(dest)
            self.crash_sessions.save(vm, "exposing", result)
            m = mount_files(
                self.client,
                vm,
                result.snapshot_id,
                dest,
                fault_point=fault_point,
                progress=self.progress,
                # a held mount is read by whoever asked for it; a backup run reads the
                # snapshot volumes the mount opened (``_filelevel`` says why)
                materialise=result.status == "mounted",
            )
            self._file_volumes[vm.moref] = m.volumes
            result.letters = {k: str(v) for k, v in m.letters.items()}
            result.skipped_volumes = [f"{v.name} ({v.label})" if v.label else v.name for v in m.skipped]
        self.crash_sessions.save(vm, "mounted" if result.status == "mounted" else "exposed", result)
        return plan

    def _attach(self, vm: VMInfo, result: RunOutcome) -> DiskSource:
        """WF-1f: open the snapshot's disks through the transport (a ready export lease, the
        disks attached to the proxy VM); recorded as ``attach-disks`` for nfc and hotadd."""
        assert result.snapshot_id is not None
        if self.mode == "folder":
            return DiskSource(self.client, vm, result.snapshot_id)
        op_id = self.ops.invoke(vm, "WF-1f", "attach-disks", transport=self.mode, snapshot=result.snapshot_id)
        try:
            source = open_source(self.mode, self.client, vm, result.snapshot_id,
                                 spool=self.root / ".transport", proxy_vm=self.proxy_vm)
        except Exception as exc:
            self.ops.failed(vm, "WF-1f", "attach-disks", op_id, result, exc, fail_job=False)
            raise
        self._sources[vm.moref] = source
        self.ops.ok(vm, "WF-1f", "attach-disks", op_id, result, transport=self.mode, **source.details())
        return source

    def _detach(self, vm: VMInfo, result: RunOutcome) -> None:
        """WF-3a: complete (or, after a failure, abort) the export lease, or detach the disks
        from the proxy VM, before the snapshot is removed (seed 3a before 3b)."""
        source = self._sources.pop(vm.moref, None)
        if source is None or source.released:
            return
        ok = result.failed_step is None
        op_id = self.ops.invoke(vm, "WF-3a", "release-disks", transport=source.mode, complete=ok,
                                **source.details())
        try:
            source.release(ok)
        except Exception as exc:
            self.ops.failed(vm, "WF-3a", "release-disks", op_id, result, exc)
        else:
            self.ops.ok(vm, "WF-3a", "release-disks", op_id, result, transport=source.mode)

    def copy_to_medium(
        self, vm: VMInfo, result: RunOutcome, catalog: Catalog, job: str = "", *, plan: ImagePlan | None = None
    ) -> None:
        """WF-2: the backup software moves the exposed data to the medium (an image export
        at the level ``plan`` chose)."""
        assert result.path is not None

        copied = 0

        def before_copy(target: str) -> None:
            nonlocal copied
            if copied:
                self.fault_point("crash", "proxy.during-copy", vm)
            copied += 1
            self.fault_point("copy", f"{vm.name}:{target}", vm)

        def progress(n: int) -> None:
            if self.progress is not None:
                self.progress(f"{vm.name}: backup to medium", n, 0)

        snap_time = self._snapshot_time(vm, result)
        if result.type == "fullvm":
            rec = catalog.image_backup(
                vm_name=vm.name,
                vm_uuid=vm.uuid,
                export_dir=Path(result.path),
                snapshot_time=snap_time,
                now=lambda: self.client.clock.now,
                job=job,
                before_copy=before_copy,
                progress=progress,
                plan=plan,
            )
        else:
            from ._filelevel import open_volumes

            volumes = self._file_volumes.pop(vm.moref, None)
            if volumes is None:
                assert result.snapshot_id is not None
                volumes = open_volumes(self.client, vm, result.snapshot_id)
            rec = catalog.file_backup(
                vm_name=vm.name,
                vm_uuid=vm.uuid,
                kind=result.kind or "full",
                volumes={k: volumes[k] for k in result.letters},
                snapshot_time=snap_time,
                now=lambda: self.client.clock.now,
                job=job,
                before_copy=before_copy,
                progress=progress,
            )
        result.backup_id = rec.id
        result.kind = rec.kind
        result.bytes_stored = rec.bytes_copied
        if rec.kind == "image":
            result.level = rec.level
            result.fallback = rec.fallback
            result.base_backup_id = rec.base_id

    def _snapshot_time(self, vm: VMInfo, result: RunOutcome) -> float:
        for s in self.client.list_snapshots(vm.moref):
            if s.id == result.snapshot_id:
                return s.created
        return self.client.clock.now

    def post_backup(self, vm: VMInfo, result: RunOutcome) -> None:
        """WF-3a unmount, then WF-3b remove the snapshot (commit). Both always happen: a
        failed unmount is recorded, then the proxy removes the paths by force."""
        self._file_volumes.pop(vm.moref, None)
        self._detach(vm, result)
        if result.path is not None:
            path = Path(result.path)
            op_id = self.ops.invoke(vm, "WF-3a", "unmount", path=str(path))
            # what the trace said was mounted: an ``unmount`` of a held mount made by another
            # process (``vcbsim mount``, then ``vcbsim unmount``) is that process's to announce
            traced = self._traced_mounts(vm)
            gone = [p for p in [Path(v) for v in result.letters.values()] or [path] if str(p) in traced]
            try:
                self.fault_point("unmount", f"{vm.name}:{path.name}", vm)
                force_remove(path)
            except Exception as exc:
                self.ops.failed(vm, "WF-3a", "unmount", op_id, result, exc)
                op_id = self.ops.invoke(vm, "WF-3a", "force-unmount", path=str(path))
                force_remove(path)
                for p in gone:
                    self.client.trace.emit("proxy", "unmount", vm=vm.moref, path=str(p))
                self.ops.ok(vm, "WF-3a", "force-unmount", op_id, result)
            else:
                for p in gone:
                    self.client.trace.emit("proxy", "unmount", vm=vm.moref, path=str(p))
                self.ops.ok(vm, "WF-3a", "unmount", op_id, result)
            self.crash_sessions.save(vm, "unmounted", result)
        if result.snapshot_id is not None:
            if result.path is not None:
                self.fault_point("crash", "proxy.after-unmount", vm)
            self._remove_snapshot(vm, result, op="remove-snapshot")
        if result.snapshot_id is None:
            self._consolidate_if_needed(vm, result)
            self.fault_point("crash", "proxy.after-commit", vm)
            self.crash_sessions.drop(vm.name)

    def _consolidate_if_needed(self, vm: VMInfo, result: RunOutcome) -> None:
        """A removal that failed part-way leaves "Needs consolidation" (F16): merge the
        redo logs now (WF-3b), so every write reaches the base disk. Only on API 5.0 and later:
        an ESX 3.5 host (API 2.5) has neither ``runtime.consolidationNeeded`` nor
        ``ConsolidateVMDisks_Task`` (vSphere API reference, "since 5.0"); what its failed commit
        left waits below the ``Consolidate Helper-0`` snapshot, which the next removal commits
        (spec R49), so the proxy never calls the 5.0 method there (CMT-CONSOLIDATE)."""
        if not api_at_least(self.client, 5):
            return
        for attempt in (1, 2):
            if not self.client.vm_info(vm.moref).consolidation_needed:
                return
            op_id = self.ops.invoke(vm, "WF-3b", "consolidate", attempt=attempt)
            try:
                self.client.consolidate_disks(vm.moref)
            except Exception as exc:
                self.ops.failed(vm, "WF-3b", "consolidate", op_id, result, exc, fail_job=attempt == 2)
                continue
            self.ops.ok(vm, "WF-3b", "consolidate", op_id, result)

    def _remove_snapshot(self, vm: VMInfo, result: RunOutcome, *, op: str) -> None:
        """WF-3b. A failure is retried once (as an operator would; a retry that succeeds
        leaves the job successful, the failed attempt listed in its steps); a snapshot that
        still cannot be removed fails the job and is left for the next run's cleanup."""
        assert result.snapshot_id is not None
        for attempt in (1, 2):
            op_id = self.ops.invoke(vm, "WF-3b", op, snapshot=result.snapshot_id, attempt=attempt)
            try:
                self.client.remove_snapshot(vm.moref, result.snapshot_id, consolidate=True)
            except Exception as exc:
                if all(s.id != result.snapshot_id for s in self.client.list_snapshots(vm.moref)):
                    # it raised, yet the snapshot is gone: the commit happened after all
                    self.ops.unknown(vm, "WF-3b", op, op_id, result, exc, fail_job=False, resolved="removed")
                    result.snapshot_id = None
                    return
                self.ops.failed(vm, "WF-3b", op, op_id, result, exc, fail_job=attempt == 2)
                continue
            self.ops.ok(vm, "WF-3b", op, op_id, result, snapshot=result.snapshot_id)
            result.snapshot_id = None
            return
