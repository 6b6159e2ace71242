"""The proxy side of the trace checker: backup jobs, their snapshots, mounts and files.

A job per VM (a ``job`` op, or split from the steps): pre-backup -> snapshot -> exposed
(exported or mounted) -> copied -> unmounted -> committed, fed by ``op.*``, ``mount`` /
``unmount``, ``crash`` and the host's ``snapshot.*``, ``disk.export`` and ``disk.consolidate``.
It judges the WF order rules, COMMIT, IMAGE, FILE, CLEANUP and the TRACE pairing, with
Jepsen's semantics for unknown outcomes. Of the guest it asks only whether a quiesce operation
is still running (``QuiesceModel.running``).

One cohesive concern, although over 700 lines: the proxy's job model of the checker (one
state machine per job); the guest's quiescing model is ``_check_quiesce.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from vcbsim.simulator import Event, get_profile

from ._check_base import (
    _HELPER,
    _STEP_WORDS,
    JOB_OPS,
    STEP_ORDER,
    VCB_SNAPSHOT_NAME,
    Context,
    Model,
    _crash,
    _norm_guest_path,
    _path,
)
from ._check_quiesce import QuiesceModel

__all__ = ["JobModel"]

#: the steps that create or remove the backup snapshot (an unknown outcome there leaves the
#: snapshot's existence in doubt)
_SNAPSHOT_STEPS = frozenset({"WF-1", "WF-1b", "WF-1c", "WF-3b"})


@dataclass(slots=True)
class _Snap:
    create: Event
    sid: str
    name: str
    vm: str | None
    owned: bool
    job: _Job | None
    state: Literal["exists", "removed", "maybe"] = "exists"
    unknown: Event | None = None
    quiesced: bool | None = None


@dataclass(slots=True)
class _Mount:
    event: Event
    path: str
    vm: str | None
    job: _Job | None = None


@dataclass(slots=True)
class _Op:
    invoke: Event
    op: str
    op_id: str
    step: str | None
    vm: str | None
    job: _Job | None
    end: Event | None = None


@dataclass(slots=True)
class _Job:
    vm: str | None
    op: _Op | None
    implicit: bool = False
    mode: str | None = None
    level: str | None = None
    max_rank: int = 0
    max_rank_event: Event | None = None
    snaps: list[_Snap] = field(default_factory=list)
    snap_fail: list[Event] = field(default_factory=list)
    exposed: bool = False
    exposed_maybe: bool = False
    copies: list[_Op] = field(default_factory=list)
    copy_ok: list[Event] = field(default_factory=list)
    exports: dict[str, Event] = field(default_factory=dict)
    infos: list[Event] = field(default_factory=list)
    file_mounts: list[Event] = field(default_factory=list)
    crashed: Event | None = None
    removal_attempts: set[str] = field(default_factory=set)
    unmount_attempted: bool = False
    last_start: Event | None = None
    #: consistency (WF-1b): the job was configured crash-consistent / a quiesced snapshot
    #: failed or came back unquiesced / the result said the backup is crash-consistent
    configured_crash: Event | None = None
    quiesce_failed: Event | None = None
    says_crash: Event | None = None
    #: removals without consolidation still waiting for ConsolidateVMDisks_Task (API 5.0+)
    unconsolidated: list[Event] = field(default_factory=list)
    #: snapshot steps that ended with an unknown outcome the proxy has not resolved yet
    unresolved: list[Event] = field(default_factory=list)



class JobModel(Model):
    """Jobs, snapshots, mounts and operations per VM."""

    def __init__(self, ctx: Context, guest: QuiesceModel) -> None:
        super().__init__(ctx)
        self.guest = guest
        self.ops: dict[str, _Op] = {}
        self.closed_ops: dict[str, _Op] = {}
        self.jobs: dict[str | None, _Job] = {}
        self.all_jobs: list[_Job] = []
        self.snaps: dict[str, _Snap] = {}
        self.mounts: dict[str, _Mount] = {}
        self.file_history: dict[str | None, list[tuple[str, Event]]] = {}
        #: API 2.5 (the ESX 3.5 profiles) has no RemoveSnapshot_Task(consolidate=) and no
        #: ConsolidateVMDisks_Task; both are "since 5.0" (spec R48)
        self.api25 = get_profile(ctx.profile).api_version.startswith("2.")
        #: names the product gave its backup snapshots (its stale ones may be cleaned up)
        self.own_names: set[str] = {VCB_SNAPSHOT_NAME}
        #: per VM, the removal whose redo logs the host is merging right now
        self.merging: dict[str | None, Event] = {}

    def see(self, ev: Event) -> None:
        """Every event, before its handler: a merge goes on only through its own events."""
        if ev.kind not in ("disk.consolidate", "note"):
            self.merging.pop(self.vm_of(ev), None)

    def job_for(self, vm: str | None, ev: Event) -> _Job:
        job = self.jobs.get(vm)
        if job is None:
            job = self._new_implicit_job(vm)
        return job

    def _new_implicit_job(self, vm: str | None) -> _Job:
        old = self.jobs.get(vm)
        if old is not None and old.implicit:
            self._implicit_end(old)
        job = _Job(vm=vm, op=None, implicit=True)
        self.jobs[vm] = job
        self.all_jobs.append(job)
        return job

    def _implicit_end(self, job: _Job) -> None:
        """A job without a ``job`` op ends when the next begins (or the trace ends)."""
        if job.unresolved:
            self._check_resolved(job, job.unresolved[-1])
        created = [s for s in job.snaps if s.create.kind != "op.info"]
        if created and job.crashed is None:
            self._check_consistency(job, created[-1], created[-1].create)
        if job.mode == "file" and job.copy_ok and job.snaps:
            created = [s for s in job.snaps if s.create.kind != "op.info"]
            if created:
                self._check_file_level(job, created[-1], job.copy_ok[-1])

    def live_snap(self, job: _Job | None) -> _Snap | None:
        if job is None:
            return None
        for s in reversed(job.snaps):
            if s.state in ("exists", "maybe"):
                return s
        return None

    def on_snapshot_create_start(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        job = self.jobs.get(vm)
        if job is None:
            return
        job.last_start = ev
        if ev.details.get("name") != VCB_SNAPSHOT_NAME:
            self.add("WF-SNAPSHOT-NAME", f"event #{ev.seq}: the backup snapshot of {self.show(vm)} is named "
                     f"'{ev.details.get('name')}', not '{VCB_SNAPSHOT_NAME}'; monitoring will not find it if it is left behind", ev, vm=vm)

    def on_snapshot_create(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        sid = str(ev.details.get("snapshot", f"#{ev.seq}"))
        name = str(ev.details.get("name", ""))
        job = self.jobs.get(vm)
        snap = _Snap(ev, sid, name, vm, owned=job is not None or name in self.own_names, job=job)
        self.snaps[sid] = snap
        quiesced = bool(ev.details.get("quiesced", False))
        if job is not None:
            job.snaps.append(snap)
            self.own_names.add(name)
            snap.quiesced = quiesced
            if not quiesced and job.last_start is not None and job.last_start.details.get("quiesce"):
                job.quiesce_failed = job.quiesce_failed or ev  # asked quiesced, came back unquiesced

    def on_snapshot_create_fail(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        job = self.jobs.get(vm)
        if job is not None:
            job.snap_fail.append(ev)
            if job.last_start is not None and job.last_start.details.get("quiesce"):
                job.quiesce_failed = job.quiesce_failed or ev

    def on_snapshot_rollback(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        sid = str(ev.details.get("snapshot"))
        snap = self.snaps.get(sid)
        if snap is None or snap.state == "removed":
            self.unplaced_event(ev, f"snapshot {sid!r} is not a live snapshot of {self.show(vm)}")
            return
        snap.state = "removed"
        self.merging[vm] = ev
        if snap.job is not None:
            snap.job.snap_fail.append(ev)
            snap.job.quiesce_failed = snap.job.quiesce_failed or ev

    def on_snapshot_remove(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        sid = str(ev.details.get("snapshot"))
        name = str(ev.details.get("name", ""))
        snap = self.snaps.get(sid)
        job = self.jobs.get(vm)
        if snap is None:
            # a snapshot older than the trace: a stale backup snapshot or a user's own
            stale = name in self.own_names or bool(_HELPER.match(name))
            snap = _Snap(ev, sid, name, vm, owned=stale, job=None, state="removed")
            self.snaps[sid] = snap
            self._removed(ev, vm, snap)
            if job is not None and not snap.owned:
                self.add("CMT-OWN-SNAPSHOT", f"event #{ev.seq}: the backup job of {self.show(vm)} removed snapshot '{name}', "
                         "which it did not create and which is neither a stale backup snapshot "
                         f"({', '.join(sorted(self.own_names))}) nor a Consolidate Helper", job.op.invoke if job.op else None, ev, vm=vm)
            return
        if snap.state == "removed":
            self.unplaced_event(ev, f"snapshot '{snap.name}' ({sid}) was already removed")
            return
        self._removed(ev, vm, snap)
        if job is not None and not snap.owned and not _HELPER.match(snap.name):
            self.add("CMT-OWN-SNAPSHOT", f"event #{ev.seq}: the backup job of {self.show(vm)} removed snapshot '{snap.name}' "
                     f"(created at #{snap.create.seq}, outside any backup job); a job may remove only its own snapshot",
                     snap.create, ev, vm=vm)
        if snap.owned:
            for m in self.mounts.values():
                if m.vm == vm:
                    letter = m.event.details.get("letter")
                    where = f"volume {letter}: ({m.path})" if letter else m.path
                    self.add("WF-3a", f"event #{ev.seq} committed snapshot '{snap.name}' of {self.show(vm)} while {where} was still "
                             f"mounted (#{m.event.seq}); the seed's order is 3a unmount before 3b commit", m.event, ev, vm=vm)
                    break
            owner = snap.job or job
            if owner is not None:
                for c in owner.copies:
                    if c.end is None:
                        self.add("WF-3b", f"event #{ev.seq} committed snapshot '{snap.name}' of {self.show(vm)} while the copy "
                                 f"started at #{c.invoke.seq} was still running; the seed commits (3b) only after the copy (2) ends",
                                 c.invoke, ev, vm=vm)
                        break
        snap.state = "removed"

    def _removed(self, ev: Event, vm: str | None, snap: _Snap) -> None:
        """A removal without consolidation (CMT-CONSOLIDATE): API 2.5 has no such call; on 5.0
        and later the redo logs must be consolidated (ConsolidateVMDisks_Task) before the job
        ends."""
        self.merging[vm] = ev
        if ev.details.get("consolidate") is not False or not snap.owned:
            return
        if self.api25:
            self.add("CMT-CONSOLIDATE", f"event #{ev.seq} removed snapshot '{snap.name}' of {self.show(vm)} without "
                     "consolidating; the host's API 2.5 has no such removal (RemoveSnapshot_Task's consolidate "
                     "parameter is since vSphere API 5.0), and the redo log is not committed (step 3b)", snap.create, ev, vm=vm)
            return
        owner = snap.job or self.jobs.get(vm)
        if owner is not None:
            owner.unconsolidated.append(ev)
        else:
            self.add("CMT-CONSOLIDATE", f"event #{ev.seq} removed snapshot '{snap.name}' of {self.show(vm)} without "
                     "consolidating: its redo log is not committed to the disks (step 3b)", snap.create, ev, vm=vm)

    def on_disk_consolidate(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        removal = self.merging.get(vm)
        if removal is not None and removal.details.get("consolidate") is not False:
            return  # the merge of the snapshot just removed (a removal without one merges nothing)
        if self.api25:
            self.add("CMT-CONSOLIDATE", f"event #{ev.seq}: the redo logs of {self.show(vm)} were consolidated outside a "
                     "snapshot removal (ConsolidateVMDisks_Task), a call of vSphere API 5.0 and later that an "
                     "ESX 3.5 host (API 2.5) does not have", ev, vm=vm)
        for job in self.all_jobs:
            if job.vm == vm:
                job.unconsolidated.clear()

    def on_note(self, ev: Event) -> None:
        pass  # a note keeps a merge going (the host's per-disk merge cost)

    def on_host_call_refused(self, ev: Event) -> None:
        """The host refused a call its API lacks (``host.call.refused``, the host's own fact).
        A removal without consolidation or ConsolidateVMDisks_Task refused by an API 2.5 host
        is a product relying on vSphere 5.0 calls (CMT-CONSOLIDATE), even though the call
        never ran; other refusals are the product's business (it may probe and fall back)."""
        vm = self.vm_of(ev)
        method = str(ev.details.get("method", ""))
        consolidating = method == "ConsolidateVMDisks_Task" or ev.details.get("parameter") == "consolidate"
        if not consolidating:
            return
        what = ("ConsolidateVMDisks_Task" if method == "ConsolidateVMDisks_Task"
                else f"{method} with consolidate=false")
        self.add("CMT-CONSOLIDATE", f"event #{ev.seq}: the product called {what} on {self.show(vm)}, and the host "
                 f"(vSphere API {ev.details.get('api_version')}) refused it: the call is since API "
                 f"{ev.details.get('since')}; on an ESX 3.5 host removing the snapshot commits its redo log, "
                 "and a Consolidate Helper snapshot is removed the same way (step 3b; spec R48, R49)", ev, vm=vm)

    def on_snapshot_revert(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        sid = str(ev.details.get("snapshot"))
        snap = self.snaps.get(sid)
        if snap is not None and snap.owned:
            self.add("CMT-DATA", f"event #{ev.seq} reverted {self.show(vm)} to backup snapshot '{snap.name}' (#{snap.create.seq}): "
                     "every guest write made in snapshot mode is lost instead of committed (step 3b)", snap.create, ev, vm=vm)

    def on_disk_export(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        sid = ev.details.get("snapshot")
        job = self.jobs.get(vm)
        snap = self.snaps.get(str(sid)) if sid is not None else None
        if snap is None or snap.state == "removed":
            if job is not None and job.snap_fail and self.live_snap(job) is None:
                self.add("QSC-APPFAULT", f"event #{ev.seq} read disk {ev.details.get('disk')} of {self.show(vm)} although the job's "
                         f"snapshot failed (#{job.snap_fail[-1].seq}); a failed snapshot ends the job", job.snap_fail[-1], ev, vm=vm)
            else:
                what = "the live disk (no snapshot)" if sid is None else f"snapshot {sid}, which does not exist"
                self.add("WF-1c", f"event #{ev.seq} read disk {ev.details.get('disk')} of {self.show(vm)} from {what}; "
                         "backups read the VM as of its snapshot (step 1c)", ev, vm=vm)
            return
        if job is not None:
            job.exports[str(ev.details.get("disk"))] = ev

    def on_op_invoke(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        op = str(ev.details.get("op", ""))
        op_id = str(ev.details.get("op_id", ""))
        if not op or not op_id:
            self.unplaced_event(ev, "op.invoke needs 'op' and 'op_id' details")
            return
        if op_id in self.ops or op_id in self.closed_ops:
            self.add("TRC-OP-PAIRED", f"op.invoke #{ev.seq} reuses op_id {op_id!r}", (self.ops.get(op_id) or self.closed_ops[op_id]).invoke, ev, vm=vm)
            self.ctx.unplaced += 1
            return
        if op in JOB_OPS and ev.step is None:
            self._job_invoke(ev, vm, op, op_id)
        else:
            job = self.jobs.get(vm)
            if job is not None and ev.step in _SNAPSHOT_STEPS:
                job.unresolved.clear()  # the proxy went back to the host about the snapshot
            self._step_invoke(ev, vm, op, op_id)

    def _job_invoke(self, ev: Event, vm: str | None, op: str, op_id: str) -> None:
        """A whole job begins (``job`` op without a step)."""
        cur = self.jobs.get(vm)
        if cur is not None and cur.implicit:
            self._implicit_end(cur)  # e.g. the leftover cleanup a job does before it starts
        if cur is not None and not cur.implicit and cur.op is not None:
            self.add("WF-ONE-JOB", f"a second backup job of {self.show(vm)} began (#{ev.seq}) while the job begun at "
                     f"#{cur.op.invoke.seq} was still running", cur.op.invoke, ev, vm=vm)
        o = _Op(ev, op, op_id, ev.step, vm, None)
        job = _Job(vm=vm, op=o, mode=ev.details.get("mode") or ev.details.get("type"), level=ev.details.get("level"))
        if _crash(ev):
            job.configured_crash = ev
        name = ev.details.get("snapshot_name")
        if name:
            self.own_names.add(str(name))
        o.job = job
        self.jobs[vm] = job
        self.all_jobs.append(job)
        self.ops[op_id] = o

    def _step_invoke(self, ev: Event, vm: str | None, op: str, op_id: str) -> None:
        """One step of a job begins: its order (WF-ORDER) and what it needs (1f, 2)."""
        rank = STEP_ORDER.get(ev.step or "")
        job = self.job_for(vm, ev)
        if job.implicit and rank is not None and rank < 20 and rank < job.max_rank and self.live_snap(job) is None:
            job = self._new_implicit_job(vm)
        o = _Op(ev, op, op_id, ev.step, vm, job)
        self.ops[op_id] = o
        if _crash(ev) and job.configured_crash is None:
            job.configured_crash = ev
        if ev.step == "WF-3b":
            sid = ev.details.get("snapshot")
            job.removal_attempts.add(str(sid) if sid is not None else "*")
        if ev.step == "WF-3a":
            job.unmount_attempted = True
        if job.mode is None and ev.step == "WF-1f":
            job.mode = ev.details.get("kind") or ev.details.get("mode") or ev.details.get("type")
        if ev.step == "WF-2" and job.level is None:
            job.level = ev.details.get("level") or ev.details.get("kind")
        self._check_order(job, ev, rank, vm)
        is_expose = ev.step == "WF-1f" or (ev.step is None and op in ("export", "mount", "expose"))
        is_copy = ev.step == "WF-2" or (ev.step is None and op == "copy")
        if is_expose or is_copy:
            self._check_expose_or_copy(job, o, ev, vm, op, is_copy)

    def _check_order(self, job: _Job, ev: Event, rank: int | None, vm: str | None) -> None:
        if rank is not None:
            parent_of_same_phase = rank % 10 == 0 and rank // 10 == job.max_rank // 10
            if rank < job.max_rank and job.max_rank_event is not None and not parent_of_same_phase:
                prev = job.max_rank_event
                self.add("WF-ORDER", f"event #{ev.seq} began step {_STEP_WORDS[ev.step or '']} of {self.show(vm)} after step "
                         f"{_STEP_WORDS[prev.step or '']} had begun (#{prev.seq}); the seed's steps run in order", prev, ev, vm=vm)
            if rank > job.max_rank:
                job.max_rank, job.max_rank_event = rank, ev

    def _check_expose_or_copy(self, job: _Job, o: _Op, ev: Event, vm: str | None, op: str, is_copy: bool) -> None:
        snap = self.live_snap(job)
        rule = "WF-2" if is_copy else "WF-1f"
        if snap is None and not self._maybe_snapshot(job):
            if job.snap_fail:
                self.add("QSC-APPFAULT", f"event #{ev.seq} began {op} of {self.show(vm)} although the job's snapshot failed "
                         f"(#{job.snap_fail[-1].seq}, {job.snap_fail[-1].details.get('fault', job.snap_fail[-1].kind)}); a "
                         "failed quiesced snapshot ends the job", job.snap_fail[-1], ev, vm=vm)
            else:
                self.add(rule, f"event #{ev.seq} began {op} of {self.show(vm)} before its backup snapshot existed; the seed "
                         "creates the snapshot (1c) before exposing (1f) and copying (2) it",
                         job.op.invoke if job.op else None, ev, vm=vm)
        q = self.guest.running(vm)
        if q is not None and not (snap is not None and snap.quiesced is False):
            # an unquiesced (crash-consistent) snapshot does not wait for a guest operation
            # left running by an earlier, failed quiesced attempt (3.5 era: no guest timer)
            self.add("WF-1f", f"event #{ev.seq} began {op} of {self.show(vm)} while the guest's quiesce operation "
                     f"(#{q.start.seq}) was still running; steps 1d-1e come before 1f", q.start, ev, vm=vm)
        if is_copy:
            job.copies.append(o)
            if snap is not None and not job.exposed and not job.exposed_maybe and not job.exports:
                self.add("WF-2", f"event #{ev.seq} began the copy of {self.show(vm)} before the snapshot was exported or "
                         "mounted (step 1f)", snap.create, ev, vm=vm)

    def _maybe_snapshot(self, job: _Job) -> bool:
        """Jepsen: a snapshot operation with unknown outcome may have created it."""
        if self.host_truth:
            return False
        return any(s.state == "maybe" for s in job.snaps)

    @staticmethod
    def _is_snapshot_op(o: _Op, ev: Event) -> bool:
        if o.op == "snapshot" or o.step == "WF-1c":
            return True
        return o.step == "WF-1" and ("snapshot" in ev.details or ev.kind != "op.ok")

    def _complete(self, ev: Event) -> _Op | None:
        op_id = str(ev.details.get("op_id", ""))
        o = self.ops.pop(op_id, None)
        if o is None:
            prior = self.closed_ops.get(op_id)
            why = f"op_id {op_id!r} already completed at #{prior.end.seq}" if prior and prior.end else f"no op.invoke with op_id {op_id!r}"
            self.add("TRC-OP-PAIRED", f"{ev.kind} #{ev.seq}: {why}", prior.end if prior else None, ev, vm=self.vm_of(ev))
            self.ctx.unplaced += 1
            return None
        if ev.details.get("op") not in (None, o.op):
            self.add("TRC-OP-PAIRED", f"{ev.kind} #{ev.seq} completes op {ev.details.get('op')!r} but op_id {op_id!r} was "
                     f"invoked as {o.op!r} (#{o.invoke.seq})", o.invoke, ev, vm=o.vm)
        o.end = ev
        self.closed_ops[op_id] = o
        return o

    def on_op_ok(self, ev: Event) -> None:
        o = self._complete(ev)
        if o is None:
            return
        if o.job is not None and _crash(ev) and o.job.says_crash is None:
            o.job.says_crash = ev
        if o.op in JOB_OPS and o.job is not None:
            self._job_end(o.job, ev, ok=True)
            return
        job = o.job
        if job is None:
            return
        if o.step == "WF-1f":
            job.exposed = True
        if o.step == "WF-2" or (o.step is None and o.op == "copy"):
            job.copy_ok.append(ev)
            done_as = ev.details.get("level") or ev.details.get("kind")
            if done_as in ("full", "differential", "incremental"):
                job.level = str(done_as)  # what was really done (a first incremental is a full)
        if not self.host_truth and self._is_snapshot_op(o, ev):
            sid = str(ev.details.get("snapshot", o.op_id))
            snap = _Snap(ev, sid, str(o.invoke.details.get("name", "")), o.vm, True, job)
            self.snaps[sid] = snap
            job.snaps.append(snap)
        if not self.host_truth and o.step == "WF-3b":
            live = self.live_snap(job)
            if live is not None:
                live.state = "removed"

    def on_op_fail(self, ev: Event) -> None:
        o = self._complete(ev)
        if o is None:
            return
        if o.op in JOB_OPS and o.job is not None:
            self._job_end(o.job, ev, ok=False)
        elif o.job is not None and self._is_snapshot_op(o, ev) and not self.host_truth:
            o.job.snap_fail.append(ev)

    def on_op_info(self, ev: Event) -> None:
        o = self._complete(ev)
        if o is None:
            return
        if o.op in JOB_OPS and o.job is not None:
            self._job_end(o.job, ev, ok=None)
            return
        if o.job is None:
            return
        o.job.infos.append(ev)
        if self.host_truth and o.step in _SNAPSHOT_STEPS and not ev.details.keys() & {"resolved", "snapshot"}:
            o.job.unresolved.append(ev)
        if not self.host_truth and self._is_snapshot_op(o, ev):
            snap = _Snap(ev, str(o.op_id), str(o.invoke.details.get("name", "")), o.vm, True, o.job, state="maybe", unknown=ev)
            self.snaps[snap.sid] = snap
            o.job.snaps.append(snap)
        if not self.host_truth and o.step == "WF-3b":
            live = self.live_snap(o.job)
            if live is not None:
                live.state, live.unknown = "maybe", ev
        if o.step == "WF-1f":
            o.job.exposed_maybe = True

    def on_mount(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        path = str(ev.details.get("path", ""))
        if path in self.mounts:
            self.unplaced_event(ev, f"{path} is already mounted (#{self.mounts[path].event.seq})")
            return
        job = self.jobs.get(vm)
        self.mounts[path] = _Mount(ev, path, vm, job)
        snap = self.live_snap(job)
        if snap is None and job is not None and not self._maybe_snapshot(job):
            if job.snap_fail:
                self.add("QSC-APPFAULT", f"event #{ev.seq} mounted {path} of {self.show(vm)} although the job's snapshot failed "
                         f"(#{job.snap_fail[-1].seq})", job.snap_fail[-1], ev, vm=vm)
            else:
                self.add("WF-1f", f"event #{ev.seq} mounted {path} of {self.show(vm)} before its backup snapshot existed; the seed "
                         "creates the snapshot (1c) before making it available (1f)", job.op.invoke if job.op else None, ev, vm=vm)
        q = self.guest.running(vm)
        if q is not None and not (snap is not None and snap.quiesced is False):
            self.add("WF-1f", f"event #{ev.seq} mounted {path} of {self.show(vm)} while the guest's quiesce operation "
                     f"(#{q.start.seq}) was still running; steps 1d-1e come before 1f", q.start, ev, vm=vm)
        if job is not None:
            job.exposed = True
        if ev.details.get("kind") == "file":
            if job is not None:
                job.file_mounts.append(ev)
            os_name = self.os.get(vm or "", "")
            if os_name and not os_name.lower().startswith("win"):
                self.add("FILE-WINDOWS-ONLY", f"event #{ev.seq} mounted {path} of {self.show(vm)} for a file-level backup, but the "
                         f"guest runs {os_name}; file-level backups are for Windows guests only", ev, vm=vm)
            letter = ev.details.get("letter")
            if not letter:
                if re.search(r"(^|[\\/])letters([\\/]|$)", path, re.IGNORECASE):
                    self.add("FILE-NO-LETTERLESS", f"event #{ev.seq} mounted {path} of {self.show(vm)}, a volume without a drive "
                             "letter, under letters\\; the junction points there are named after drive letters (seed "
                             "file-level step 1)", ev, vm=vm)
                else:
                    self.notes.append(f"#{ev.seq}: {path} of {self.show(vm)} is a letterless volume mounted outside letters\\ "
                                      "(allowed: the seed's caution is a limit of the letters\\ mount)")
            elif not re.search(r"[\\/]letters[\\/]" + re.escape(str(letter)) + r"[\\/]?$", path, re.IGNORECASE):
                self.add("FILE-JUNCTION", f"event #{ev.seq} mounted drive {letter}: of {self.show(vm)} at {path}; the junction point "
                         f"is <dest>\\letters\\{letter}", ev, vm=vm)

    def on_unmount(self, ev: Event) -> None:
        path = str(ev.details.get("path", ""))
        gone = [p for p in self.mounts if p == path or p.startswith(path.rstrip("/\\") + "/")
                or p.startswith(path.rstrip("/\\") + "\\")]
        if not gone:
            self.unplaced_event(ev, f"{path} is not mounted (nothing is mounted at or below it)")
        for p in gone:
            del self.mounts[p]

    def on_crash(self, ev: Event) -> None:
        """A crashed proxy's pending operations have unknown outcomes (Jepsen ``info``)."""
        vm = self.vm_of(ev)
        self.ctx.last_crash = ev
        for job in self.all_jobs:
            if vm is None or job.vm == vm:
                job.crashed = ev
        for op_id, o in list(self.ops.items()):
            if vm is None or o.vm == vm:
                del self.ops[op_id]
                o.end = ev
                self.closed_ops[op_id] = o
                if o.job is not None:
                    o.job.infos.append(ev)
                    if o.job.op is o and self.jobs.get(o.vm) is o.job:
                        del self.jobs[o.vm]

    def _check_resolved(self, job: _Job, ev: Event) -> None:
        """TMO-RESOLVE-UNKNOWN with the host's events at hand: the host shows what happened,
        but a proxy that never asked cannot know whether it left a snapshot behind. A snapshot
        step that ended ``op.info`` is resolved by the proxy going back to the host (a later
        WF-1 / WF-3b step of the job, e.g. a check or a retry) or by saying what it found on
        the ``op.info`` itself (``resolved``, or the ``snapshot`` it found)."""
        for info in job.unresolved:
            self.add("TMO-RESOLVE-UNKNOWN", f"the backup job of {self.show(job.vm)} ended (#{ev.seq}) after "
                     f"{info.details.get('op')} (#{info.seq}) ended with an unknown outcome "
                     f"({info.details.get('error', 'op.info')}), and the proxy never asked the host whether the "
                     "snapshot is there or gone (no later snapshot step, no 'resolved' on the op.info)", info, ev, vm=job.vm)
        job.unresolved.clear()

    def _job_end(self, job: _Job, ev: Event, ok: bool | None) -> None:
        vm = job.vm
        if self.jobs.get(vm) is job:
            del self.jobs[vm]
        self._check_resolved(job, ev)
        if ok is None:
            job.infos.append(ev)
        else:
            self._check_consolidated(job, ev)
        if not ok:
            if ok is False and ev.details.get("usable") is True and (job.mode or "") == "file":
                created = [s for s in job.snaps if s.create.kind != "op.info"]
                if created and job.copy_ok:
                    self._check_file_level(job, created[-1], ev)  # usable: it is a base
            return
        created = [s for s in job.snaps if s.create.kind != "op.info"]
        if not created:
            if job.snap_fail:
                f = job.snap_fail[-1]
                self.add("QSC-APPFAULT", f"the backup job of {self.show(vm)} reported success (#{ev.seq}) although its snapshot "
                         f"failed (#{f.seq}, {f.details.get('fault', f.kind)}) and no other snapshot was taken", f, ev, vm=vm)
            else:
                self.add("WF-1c", f"the backup job of {self.show(vm)} reported success (#{ev.seq}) without ever creating a "
                         "snapshot; the seed backs up the VM in snapshot mode (1c)", job.op.invoke if job.op else None, ev, vm=vm)
            return
        if not job.copy_ok:
            self.add("WF-2", f"the backup job of {self.show(vm)} reported success (#{ev.seq}) but no copy (step 2) completed",
                     job.op.invoke if job.op else None, ev, vm=vm)
        snap = created[-1]
        self._check_consistency(job, snap, ev)
        mode = job.mode or ("file" if job.file_mounts else None)
        redo = snap.create.details.get("redo")
        if mode == "fullvm" and isinstance(redo, list) and redo and job.exports:
            if len(job.exports) < len(redo):
                self.add("IMG-ALL-DISKS", f"the image backup of {self.show(vm)} exported {len(job.exports)} of the {len(redo)} disks "
                         f"of snapshot '{snap.name}' (#{snap.create.seq})", snap.create, ev, vm=vm)
        if mode == "file":
            self._check_file_level(job, snap, ev)

    def _check_consolidated(self, job: _Job, ev: Event) -> None:
        for rm in job.unconsolidated:
            self.add("CMT-CONSOLIDATE", f"the backup job of {self.show(job.vm)} ended (#{ev.seq}) after removing snapshot "
                     f"'{rm.details.get('name')}' without consolidation (#{rm.seq}) and never consolidated the disks "
                     "(ConsolidateVMDisks_Task): its redo log is not committed (step 3b)", rm, ev, vm=job.vm)
        job.unconsolidated.clear()

    def _check_consistency(self, job: _Job, snap: _Snap, ev: Event) -> None:
        """WF-1b: an unquiesced backup snapshot is fine when the job was configured
        crash-consistent or the VM could not be quiesced, and the result says so; a silent
        downgrade (reported as a normal backup) fails."""
        if snap.quiesced is not False:
            return
        vm = job.vm
        asked = job.quiesce_failed
        if job.says_crash is None:
            why = (f"asked for a quiesced snapshot, which failed (#{asked.seq}, "
                   f"{asked.details.get('fault') or asked.kind}), then" if asked is not None else "")
            self.add("WF-1b", f"the backup job of {self.show(vm)} {why} backed up unquiesced snapshot '{snap.name}' "
                     f"(#{snap.create.seq}) and reported it (#{ev.seq}) as a normal backup; a crash-consistent backup "
                     "must say so in its result (consistency: crash)",
                     job.op.invoke if job.op else None, asked, snap.create, ev, vm=vm)
        elif job.configured_crash is None and asked is None:
            self.add("WF-1b", f"the backup job of {self.show(vm)} took unquiesced snapshot '{snap.name}' (#{snap.create.seq}) "
                     "although it was not configured crash-consistent and never tried to quiesce the VM; step 1b "
                     "quiesces the VM when it can be (seed scripts step 2: \"(Optional)\" only where no SYNC "
                     "driver or VSS is available)", job.op.invoke if job.op else None, snap.create, ev, vm=vm)

    def _check_file_level(self, job: _Job, snap: _Snap, ev: Event) -> None:
        """BK-INCR-SINCE-LAST / BK-DIFF-SINCE-FULL. The base (the seed's types of backups): the
        last full for a differential; the last full or incremental for an incremental (a
        differential is not one). A file whose content changed since the base must be there
        (data loss otherwise); one unchanged in content and metadata must not (the seed's
        "only"); one only rewritten (same bytes, new mtime) may be either way."""
        vm = job.vm
        level = job.level or "full"
        history = self.file_history.setdefault(vm, [])
        history.append((level, snap.create))
        if level not in ("differential", "incremental"):
            return
        bases = ("full",) if level == "differential" else ("full", "incremental")
        base = next((sev for lvl, sev in reversed(history[:-1]) if lvl in bases), None)
        rule = "BK-DIFF-SINCE-FULL" if level == "differential" else "BK-INCR-SINCE-LAST"
        if base is None:
            self.notes.append(f"{rule} not checked for the job ending at #{ev.seq}: no earlier "
                              f"{' or '.join(bases)} file-level backup of {self.show(vm)} in the trace")
            return
        ends = [*job.copy_ok, *([job.op.end] if job.op is not None and job.op.end is not None else [])]
        lists = [e.details.get("files") for e in ends if isinstance(e.details.get("files"), list)]
        if not lists:
            self.notes.append(f"{rule} not checked for the job ending at #{ev.seq}: its copy op.ok carries no 'files' list")
            return
        windows = self.os.get(vm or "", "windows").lower().startswith("win")
        selected = {_norm_guest_path(str(p), windows) for ls in lists for p in (ls or [])}
        shown: dict[str, str] = {}
        for ls in lists:
            for p in ls or []:
                shown.setdefault(_norm_guest_path(str(p), windows), str(p))
        at_base: dict[str, Event] = {}  # the last change of each path before the base snapshot
        last: dict[str, Event] = {}  # ... between the base snapshot and this one
        for ch in self.guest_changes.get(vm, []):
            key = _norm_guest_path(_path(ch), windows)
            if ch.seq < base.seq:
                at_base[key] = ch
            elif ch.seq < snap.create.seq:
                last[key] = ch
                shown.setdefault(key, _path(ch))
        touched = {p for p, e in last.items() if e.kind == "guest.write"}  # content or metadata changed

        def same_bytes(p: str) -> bool:
            before = at_base.get(p)
            return (before is not None and before.kind == "guest.write"
                    and before.details.get("sha256") is not None
                    and before.details.get("sha256") == last[p].details.get("sha256"))

        content = {p for p in touched if not same_bytes(p)}  # unknown base content counts as changed
        missing = sorted(content - selected)
        extra = sorted(selected - touched)
        if not missing and not extra:
            return
        since = "the last full backup" if level == "differential" else "the last full or incremental backup"
        parts = []
        if missing:
            parts.append(f"misses {', '.join(shown[p] for p in missing[:3])}{' ...' if len(missing) > 3 else ''}, whose content "
                         f"changed since {since} (data loss)")
        if extra:
            parts.append(f"holds {', '.join(shown[p] for p in extra[:3])}{' ...' if len(extra) > 3 else ''}, unchanged in content "
                         f"and metadata since {since} (the seed: only changed files)")
        w = [last[p] for p in missing[:1] if p in last]
        self.add(rule, f"the {level} backup of {self.show(vm)} (#{ev.seq}) " + " and ".join(parts)
                 + f" (base snapshot #{base.seq}, this snapshot #{snap.create.seq})", base, *w, snap.create, ev, vm=vm)

    def finish(self) -> None:
        for job in list(self.jobs.values()):
            if job.implicit:
                self._implicit_end(job)
        if not self.open_ended:
            for job in self.all_jobs:
                if job.unconsolidated:
                    self._check_consolidated(job, job.unconsolidated[-1])
        for o in self.ops.values():
            what = "backup job" if o.op in JOB_OPS else f"operation {o.op!r}"
            self.add("TRC-OP-PAIRED", f"the {what} of {self.show(o.vm)} begun at #{o.invoke.seq} never ended (no op.ok, op.fail "
                     "or op.info); a trace with an unfinished job never passes", o.invoke, vm=o.vm)
            self.ctx.unplaced += 1
        self._finish_snapshots()
        self._finish_mounts()

    def _finish_snapshots(self) -> None:
        for snap in self.snaps.values():
            if not snap.owned:
                continue
            end = snap.job.op.end if snap.job and snap.job.op else None
            if self.open_ended and snap.job is not None and (
                snap.job.crashed is not None or snap.sid in snap.job.removal_attempts or "*" in snap.job.removal_attempts
            ):
                continue  # the job tried (or crashed): the next run must clean up (spec F16)
            if snap.state == "exists":
                self.add("CLN-NO-SNAPSHOT-LEFT", f"backup snapshot '{snap.name}' of {self.show(snap.vm)} created at "
                         f"#{snap.create.seq} was never removed; the VM is left in snapshot mode", snap.create, end, vm=snap.vm)
            elif snap.state == "maybe":
                u = snap.unknown or snap.create
                self.add("TMO-RESOLVE-UNKNOWN", f"backup snapshot {snap.name or snap.sid!r} of {self.show(snap.vm)} may still exist: "
                         f"#{u.seq} ({u.details.get('op')}) ended with an unknown outcome and nothing later made sure it is gone",
                         snap.create, u, end, vm=snap.vm)

    def _finish_mounts(self) -> None:
        for m in self.mounts.values():
            if self.open_ended and m.job is not None and (m.job.crashed is not None or m.job.unmount_attempted):
                continue
            self.add("CLN-NO-MOUNT-LEFT", f"{m.path} of {self.show(m.vm)} mounted at #{m.event.seq} was never unmounted",
                     m.event, vm=m.vm)
