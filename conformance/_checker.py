"""The trace checker: replay a trace through the reference model of the seed workflow.

``check_trace(events, profile=...)`` walks the events once, in order, keeping per-VM state:

- a **job** model (proxy side): idle -> pre-backup -> snapshot -> exposed (exported or
  mounted) -> backed up -> unmounted -> committed, fed by ``op.*``, ``mount``/``unmount`` and
  the host's ``snapshot.*`` / ``disk.export`` events;
- a **quiesce operation** model (guest side): freeze scripts -> engage -> snapshot ->
  disengage -> thaw scripts, or the failure paths (freezeFail, abort), fed by ``quiesce.*``
  and ``script.run``.

Every rule it judges is in the catalogue (``RULES``); each violation carries the rule id, the
**minimal witness** (the few events that prove it) and a plain sentence saying why.

Jepsen semantics: an operation that ends with ``op.info`` (outcome unknown, e.g. a timeout)
may or may not have happened. Where the host's own events tell what happened the checker uses
them; where they do not, the state is "maybe" and the checker accepts both outcomes (and
warns, TMO-RESOLVE-UNKNOWN, if the job ended without resolving it).

A trace the model cannot fully consume (an event it cannot place, a job or quiesce operation
that never ended) is never a pass.

Proxy vocabulary the model understands (``op`` values; ``step`` names the seed step):

=============  =========  ====================================================================
op             step       meaning
=============  =========  ====================================================================
``job``        (none)     one whole job (``backup`` with no step is the same); details ``mode``
                          (``fullvm``/``file``), ``level`` (``full``/``differential``/
                          ``incremental``); its ``op.ok`` may carry ``files``
any            WF-1/1c    create the backup snapshot (``pre-backup``, ``snapshot``)
any            WF-1f      export (image level) or mount (file level) the snapshot
any            WF-2       the backup software copies the data; ``op.ok`` may carry ``files``
any            WF-3a      remove exports / mounts from the proxy
any            WF-3b      remove the snapshot, committing its redo log
=============  =========  ====================================================================

Ops are told apart by their ``step``; ``op`` names are free. A trace without ``job`` ops is
split into jobs per VM: a new job begins when a pre-backup step (WF-1...) follows a later step
and the previous job's snapshot is gone. A ``crash`` event turns the VM's pending operations
into unknown outcomes, as Jepsen does for a crashed process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from vcbsim.simulator import Event

from ._errors import ConformanceViolation, InvalidDefinition
from ._rules import HOST_PROFILES, RULES

__all__ = ["check_trace", "CheckReport", "Violation", "JOB_OPS", "STEP_ORDER", "VCB_SNAPSHOT_NAME"]

#: ``op`` values that open a whole backup job (when the ``op.invoke`` has no ``step``).
JOB_OPS = frozenset({"job", "backup"})
#: The seed's steps in order; a job may not go back to an earlier one (WF-ORDER).
STEP_ORDER: dict[str, int] = {
    "WF-1": 10, "WF-1a": 11, "WF-1b": 12, "WF-1c": 13, "WF-1d": 14, "WF-1e": 15, "WF-1f": 16,
    "WF-2": 20, "WF-3": 30, "WF-3a": 31, "WF-3b": 32,
}  # fmt: skip
VCB_SNAPSHOT_NAME = "_VCB-BACKUP_"
#: One poll tick of VMware Tools (spec R12): the slack allowed on guest timers.
TICK = 1.0
_EPS = 1e-6
_STEP_WORDS = {
    "WF-1": "1 (pre-backup)", "WF-1a": "1a (pre-freeze scripts)", "WF-1b": "1b (quiesce)",
    "WF-1c": "1c (snapshot)", "WF-1d": "1d (unquiesce)", "WF-1e": "1e (post-thaw scripts)",
    "WF-1f": "1f (export / mount)", "WF-2": "2 (copy)", "WF-3": "3 (post-backup)",
    "WF-3a": "3a (unmount)", "WF-3b": "3b (commit)",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Violation:
    """One failed rule: id, plain explanation, the events that prove it."""

    rule_id: str
    explanation: str
    witness: tuple[Event, ...]
    vm: str | None = None

    @property
    def severity(self) -> Literal["fail", "warn"]:
        return RULES[self.rule_id].severity

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "severity": self.severity,
            "vm": self.vm,
            "explanation": self.explanation,
            "witness": [e.to_dict() for e in self.witness],
        }

    def as_exception(self) -> ConformanceViolation:
        return ConformanceViolation(self.rule_id, self.explanation, witness=self.witness, vm=self.vm)

    def format(self) -> str:
        lines = [f"{self.rule_id} [{self.severity.upper()}] {self.explanation}"]
        lines += [f"    witness {e.line()}" for e in self.witness]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What ``check_trace`` found. ``ok`` is true only for a fully consumed trace with no
    MUST violation; SHOULD violations are ``warnings``."""

    profile: str
    events: int
    consumed: int
    violations: tuple[Violation, ...]
    warnings: tuple[Violation, ...]
    notes: tuple[str, ...] = ()
    rules_checked: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.violations and self.consumed == self.events

    def rule_ids(self) -> list[str]:
        """Ids of the failed rules, in order of first violation, without repeats."""
        return list(dict.fromkeys(v.rule_id for v in self.violations))

    def raise_for_violations(self) -> None:
        """Raise the first violation as ``ConformanceViolation`` naming every failed rule
        (``rule_ids``); the other violations become notes."""
        if not self.violations:
            return
        exc = self.violations[0].as_exception()
        exc.rule_ids = tuple(self.rule_ids())
        for other in self.violations[1:]:
            exc.add_note(other.format())
        raise exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "ok": self.ok,
            "events": self.events,
            "consumed": self.consumed,
            "violations": [v.to_dict() for v in self.violations],
            "warnings": [v.to_dict() for v in self.warnings],
            "notes": list(self.notes),
            "rules_checked": list(self.rules_checked),
        }

    def format(self) -> str:
        head = "PASS" if self.ok else "FAIL"
        out = [
            f"{head}: {len(self.violations)} violation(s), {len(self.warnings)} warning(s); "
            f"{self.consumed}/{self.events} events consumed (profile {self.profile})"
        ]
        out += [v.format() for v in self.violations]
        out += [w.format() for w in self.warnings]
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)


# ----------------------------------------------------------------------------- model state


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


@dataclass(slots=True)
class _Quiesce:
    start: Event
    timeout: float | None
    freeze: list[Event] = field(default_factory=list)
    failed_freeze: Event | None = None
    engage: Event | None = None
    engage_failed: Event | None = None
    disengage: Event | None = None
    disengage_failed: Event | None = None
    abort: Event | None = None
    snapshot: Event | None = None
    snapshot_failed: Event | None = None
    thaw: list[Event] = field(default_factory=list)
    thaw_failed: Event | None = None
    freezefail: list[Event] = field(default_factory=list)
    last_script: Event | None = None
    timer_reported: bool = False
    reported: set[str] = field(default_factory=set)


def _failed(ev: Event) -> bool:
    return ev.details.get("exit_code") != 0


def _path(ev: Event) -> str:
    return str(ev.details.get("path", ""))


def _is_legacy(ev: Event) -> bool:
    if "legacy" in ev.details:
        return bool(ev.details["legacy"])
    p = _path(ev).lower()
    return p.endswith(("pre-freeze-script.bat", "post-thaw-script.bat", "/pre-freeze-script", "/post-thaw-script"))


def _legacy_kind(ev: Event) -> str:
    return "pre" if "pre-freeze" in _path(ev).lower() else "post"


def _norm_guest_path(p: str, windows: bool) -> str:
    return p.replace("/", "\\").casefold() if windows else p


class _Checker:
    def __init__(self, events: Sequence[Event], profile: str, open_ended: bool = False) -> None:
        self.events = events
        self.profile = profile
        self.open_ended = open_ended
        self.last_crash: Event | None = None
        self.out: list[Violation] = []
        self.notes: list[str] = []
        self.unplaced = 0
        self.alias: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.os: dict[str, str] = {}
        self.ops: dict[str, _Op] = {}
        self.closed_ops: dict[str, _Op] = {}
        self.jobs: dict[str | None, _Job] = {}
        self.all_jobs: list[_Job] = []
        self.snaps: dict[str, _Snap] = {}
        self.mounts: dict[str, _Mount] = {}
        self.quiesce: dict[str | None, _Quiesce] = {}
        self.file_history: dict[str | None, list[tuple[str, Event]]] = {}
        self.guest_changes: dict[str | None, list[Event]] = {}
        self.host_truth = any(e.actor == "host" and e.kind.startswith("snapshot.") for e in events)
        self.guest_events = any(e.kind == "quiesce.start" for e in events)

    # ------------------------------------------------------------------ helpers
    def vm_of(self, ev: Event) -> str | None:
        return None if ev.vm is None else self.alias.get(ev.vm, ev.vm)

    def show(self, vm: str | None) -> str:
        if vm is None:
            return "the VM"
        name = self.names.get(vm)
        return f"{vm} ('{name}')" if name and name != vm else vm

    def add(self, rule_id: str, why: str, *witness: Event | None, vm: str | None = None) -> None:
        wit = tuple(sorted({e.seq: e for e in witness if e is not None}.values(), key=lambda e: e.seq))
        self.out.append(Violation(rule_id, why, wit, vm))

    def unplaced_event(self, ev: Event, why: str) -> None:
        self.unplaced += 1
        self.add("TRC-CONSUMED", f"event #{ev.seq} ({ev.kind}) cannot be placed in the model: {why}", ev, vm=self.vm_of(ev))

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

    # ------------------------------------------------------------------ main loop
    def run(self) -> CheckReport:
        prev: Event | None = None
        for ev in self.events:
            if prev is not None and (ev.seq != prev.seq + 1 or ev.time + _EPS < prev.time):
                what = "sequence number" if ev.seq != prev.seq + 1 else "virtual time"
                self.add("TRC-WELL-FORMED", f"event #{ev.seq} follows #{prev.seq}: the {what} is out of order "
                         f"(expected seq {prev.seq + 1} at time >= {prev.time:.3f}, got seq {ev.seq} at {ev.time:.3f})", prev, ev)
            prev = ev
            handler = getattr(self, "on_" + ev.kind.replace(".", "_"), None)
            if handler is not None:
                handler(ev)
        self.finish()
        fails = tuple(v for v in self.out if v.severity == "fail")
        warns = tuple(v for v in self.out if v.severity == "warn")
        checked = tuple(r.id for r in RULES.values() if self.profile in r.profiles and "trace" in r.checked_by)
        return CheckReport(self.profile, len(self.events), len(self.events) - self.unplaced, fails, warns,
                           tuple(dict.fromkeys(self.notes)), checked)

    # ------------------------------------------------------------------ host
    def on_vm_create(self, ev: Event) -> None:
        if ev.vm is not None:
            name = ev.details.get("name")
            if name:
                self.alias[str(name)] = ev.vm
                self.names[ev.vm] = str(name)
            self.os[ev.vm] = str(ev.details.get("os", ""))

    def on_snapshot_create_start(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        job = self.jobs.get(vm)
        if job is None:
            return
        if not ev.details.get("quiesce", False):
            self.add("WF-1b", f"event #{ev.seq}: the backup job of {self.show(vm)} asked for snapshot "
                     f"'{ev.details.get('name')}' with quiesce=false; step 1b quiesces the VM before step 1c "
                     "puts it into snapshot mode", job.op.invoke if job.op else None, ev, vm=vm)
        if ev.details.get("name") != VCB_SNAPSHOT_NAME:
            self.add("WF-SNAPSHOT-NAME", f"event #{ev.seq}: the backup snapshot of {self.show(vm)} is named "
                     f"'{ev.details.get('name')}', not '{VCB_SNAPSHOT_NAME}'; monitoring will not find it if it is left behind", ev, vm=vm)

    def on_snapshot_create(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        sid = str(ev.details.get("snapshot", f"#{ev.seq}"))
        name = str(ev.details.get("name", ""))
        job = self.jobs.get(vm)
        snap = _Snap(ev, sid, name, vm, owned=job is not None or name == VCB_SNAPSHOT_NAME, job=job)
        self.snaps[sid] = snap
        if job is not None:
            job.snaps.append(snap)
        q = self.quiesce.get(vm)
        quiesced = bool(ev.details.get("quiesced", False))
        if q is not None:
            q.snapshot = ev
            if q.abort is not None:
                self.add("TMO-GUEST-ABORT", f"event #{ev.seq}: snapshot '{name}' of {self.show(vm)} was created after the guest "
                         f"aborted the quiesce operation (#{q.abort.seq}); an aborted guest is no longer frozen", q.abort, ev, vm=vm)
            elif q.failed_freeze is not None:
                self.add("SCR-FREEZEFAIL-NO-SNAPSHOT", f"event #{ev.seq}: snapshot '{name}' of {self.show(vm)} was created although "
                         f"pre-freeze script {_path(q.failed_freeze)} exited {q.failed_freeze.details.get('exit_code')} "
                         f"(#{q.failed_freeze.seq}); the seed says a failing pre-freeze script fails the snapshot", q.failed_freeze, ev, vm=vm)
            elif q.engage_failed is not None:
                self.add("QSC-ENGAGE-FAIL", f"event #{ev.seq}: snapshot '{name}' of {self.show(vm)} was created although engaging "
                         f"{q.engage_failed.details.get('provider', 'the quiescing provider')} failed (#{q.engage_failed.seq}); "
                         "the seed proceeds to step 5 (post-thaw) without a snapshot", q.engage_failed, ev, vm=vm)
            elif quiesced and q.engage is None:
                self.add("WF-1b", f"event #{ev.seq}: quiesced snapshot '{name}' of {self.show(vm)} was created but the guest was "
                         f"never quiesced in this operation (#{q.start.seq}); step 1b comes before 1c", q.start, ev, vm=vm)
            elif quiesced and q.engage is not None and q.disengage is not None:
                self.add("WF-1b", f"event #{ev.seq}: quiesced snapshot '{name}' of {self.show(vm)} was created after the guest "
                         f"was already unquiesced (#{q.disengage.seq}); it must be taken while the guest is quiesced (1b, 1c, then 1d)",
                         q.disengage, ev, vm=vm)
        elif quiesced and self.guest_events:
            self.add("WF-1b", f"event #{ev.seq}: snapshot '{name}' of {self.show(vm)} claims to be quiesced but no quiesce "
                     "operation of VMware Tools was running", ev, vm=vm)

    def on_snapshot_create_fail(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        job = self.jobs.get(vm)
        if job is not None:
            job.snap_fail.append(ev)
        q = self.quiesce.get(vm)
        if q is not None and q.snapshot_failed is None:
            q.snapshot_failed = ev

    def on_snapshot_rollback(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        sid = str(ev.details.get("snapshot"))
        snap = self.snaps.get(sid)
        if snap is None or snap.state == "removed":
            self.unplaced_event(ev, f"snapshot {sid!r} is not a live snapshot of {self.show(vm)}")
            return
        snap.state = "removed"
        if snap.job is not None:
            snap.job.snap_fail.append(ev)
        q = self.quiesce.get(vm)
        if q is not None and q.snapshot_failed is None:
            q.snapshot_failed = ev

    def on_snapshot_remove(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        sid = str(ev.details.get("snapshot"))
        name = str(ev.details.get("name", ""))
        snap = self.snaps.get(sid)
        job = self.jobs.get(vm)
        if snap is None:
            # a snapshot older than the trace: a stale backup snapshot or a user's own
            snap = _Snap(ev, sid, name, vm, owned=name == VCB_SNAPSHOT_NAME, job=None, state="removed")
            self.snaps[sid] = snap
            if job is not None and not snap.owned:
                self.add("CMT-OWN-SNAPSHOT", f"event #{ev.seq}: the backup job of {self.show(vm)} removed snapshot '{name}', "
                         "which it did not create and which is not a stale backup snapshot", job.op.invoke if job.op else None, ev, vm=vm)
            return
        if snap.state == "removed":
            self.unplaced_event(ev, f"snapshot '{snap.name}' ({sid}) was already removed")
            return
        if job is not None and not snap.owned:
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
            if ev.details.get("consolidate") is False:
                self.add("CMT-CONSOLIDATE", f"event #{ev.seq} removed snapshot '{snap.name}' of {self.show(vm)} without "
                         "consolidating: its redo log is not committed to the disks (step 3b)", snap.create, ev, vm=vm)
        snap.state = "removed"

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

    # ------------------------------------------------------------------ guest
    def on_guest_write(self, ev: Event) -> None:
        self.guest_changes.setdefault(self.vm_of(ev), []).append(ev)

    on_guest_delete = on_guest_write

    def on_quiesce_start(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        if vm in self.quiesce:
            self.unplaced_event(ev, f"the quiesce operation begun at #{self.quiesce[vm].start.seq} has not ended "
                                "(only one operation runs at a time, spec R3)")
            return
        t = ev.details.get("timeout")
        self.quiesce[vm] = _Quiesce(ev, float(t) if t else None)

    def _check_timer(self, q: _Quiesce, ev: Event, vm: str | None) -> None:
        if q.timeout is None or q.abort is not None or q.timer_reported:
            return
        if self._failure_cause(q) is not None:
            return  # SCRIPT_ERROR / SYNC_ERROR: the abort timer no longer applies (spec T16, T18)
        deadline = q.start.time + q.timeout
        if ev.time > deadline + TICK + _EPS:
            q.timer_reported = True
            self.add("TMO-GUEST-ABORT", f"event #{ev.seq} ({ev.kind}) of {self.show(vm)} happened {ev.time - q.start.time:.1f} s "
                     f"into a quiesce operation whose abort timer is {q.timeout:g} s (#{q.start.seq}), and the guest never "
                     "aborted; the timer must abort the operation within one poll tick", q.start, ev, vm=vm)

    def on_script_run(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        q = self.quiesce.get(vm)
        if q is None:
            self.unplaced_event(ev, f"script {_path(ev)} ran outside any quiesce operation of {self.show(vm)}")
            return
        self._check_timer(q, ev, vm)
        arg = ev.details.get("arg")
        path = _path(ev)
        legacy = _is_legacy(ev)
        # one at a time: the event is stamped when the script ends
        if q.last_script is not None:
            start = ev.time - float(ev.details.get("duration") or 0.0)
            if start + _EPS < q.last_script.time:
                self.add("SCR-ONE-AT-A-TIME", f"script {path} (#{ev.seq}) started at +{start - q.start.time:.1f} s, before "
                         f"{_path(q.last_script)} (#{q.last_script.seq}) exited at +{q.last_script.time - q.start.time:.1f} s",
                         q.last_script, ev, vm=vm)
        # the host profile's script layout (seed Table 2-3)
        if self.profile == "esx-3.5u1" and not legacy:
            self.add("SCR-LAYOUT-LEGACY", f"script {path} (#{ev.seq}) ran on an ESX 3.5 U1 host, which runs only the legacy "
                     "pre-freeze-script / post-thaw-script files", ev, vm=vm)
        if self.profile != "esx-3.5u1" and not legacy and "backupscripts.d" not in path.lower():
            self.add("SCR-LAYOUT-DIR", f"script {path} (#{ev.seq}) is not in the Tools backupScripts.d directory", ev, vm=vm)
        q.last_script = ev
        if arg is None and legacy and self.profile == "esx-3.5u1":
            # spec Q3: what arguments the legacy scripts got on 3.5 U1 is unknown; infer the phase
            arg = "freeze" if _legacy_kind(ev) == "pre" else ("freezeFail" if self._failure_cause(q) else "thaw")
        elif arg not in ("freeze", "thaw", "freezeFail"):
            hint = " (the spelling is camel case: freezeFail)" if str(arg).lower() == "freezefail" else ""
            self.add("SCR-ARG-EXACT", f"script {path} (#{ev.seq}) got first argument {arg!r}; expected 'freeze', 'thaw' or "
                     f"'freezeFail'{hint}", ev, vm=vm)
            if str(arg).lower() == "freezefail":
                arg = "freezeFail"
            else:
                return
        if legacy:
            kind = _legacy_kind(ev)
            if (kind == "pre") != (arg == "freeze"):
                self.add("SCR-LEGACY-PLACEMENT", f"legacy script {path} (#{ev.seq}) got {arg!r}; the legacy pre-freeze script "
                         "gets only 'freeze', the legacy post-thaw script only 'thaw' or 'freezeFail'", ev, vm=vm)
        if arg == "freeze":
            self._freeze_script(q, ev, vm, path, legacy)
        elif arg == "thaw":
            self._thaw_script(q, ev, vm, path, legacy)
        else:
            self._freezefail_script(q, ev, vm, path, legacy)

    def _freeze_script(self, q: _Quiesce, ev: Event, vm: str | None, path: str, legacy: bool) -> None:
        if q.failed_freeze is not None:
            self.add("SCR-FREEZE-STOP", f"freeze script {path} (#{ev.seq}) ran after {_path(q.failed_freeze)} failed with exit "
                     f"code {q.failed_freeze.details.get('exit_code')} (#{q.failed_freeze.seq}); the freeze phase stops at the "
                     "first failure", q.failed_freeze, ev, vm=vm)
        elif q.engage is not None or q.engage_failed is not None or q.thaw or q.freezefail:
            first = q.engage or q.engage_failed or (q.thaw or q.freezefail)[0]
            self.add("WF-1a", f"freeze script {path} (#{ev.seq}) ran after the quiesce had moved on (#{first.seq}, {first.kind}); "
                     "pre-freeze scripts run before the guest is quiesced (step 1a before 1b)", first, ev, vm=vm)
        if q.freeze:
            prev = q.freeze[-1]
            if legacy and not _is_legacy(prev):
                self.add("SCR-LEGACY-PLACEMENT", f"legacy pre-freeze script {path} (#{ev.seq}) ran after {_path(prev)} "
                         f"(#{prev.seq}); it runs first", prev, ev, vm=vm)
            elif not legacy and not _is_legacy(prev) and path.encode() < _path(prev).encode():
                self.add("SCR-ORDER-FREEZE", f"freeze script {path} (#{ev.seq}) ran after {_path(prev)} (#{prev.seq}); freeze "
                         "scripts run in ascending alphabetical (byte-wise) order", prev, ev, vm=vm)
        q.freeze.append(ev)
        if _failed(ev) and q.failed_freeze is None:
            q.failed_freeze = ev

    def _phase_order(self, q: _Quiesce, ev: Event, vm: str | None, path: str, legacy: bool,
                     done: list[Event], rule: str, word: str) -> None:
        if done:
            prev = done[-1]
            if _is_legacy(prev) and not legacy:
                self.add("SCR-LEGACY-PLACEMENT", f"{word} script {path} (#{ev.seq}) ran after the legacy post-thaw script "
                         f"{_path(prev)} (#{prev.seq}); the legacy script runs last", prev, ev, vm=vm)
            elif not legacy and not _is_legacy(prev) and path.encode() > _path(prev).encode():
                self.add(rule, f"{word} script {path} (#{ev.seq}) ran after {_path(prev)} (#{prev.seq}); {word} scripts run in "
                         "descending alphabetical (byte-wise) order", prev, ev, vm=vm)
        done.append(ev)

    def _failure_cause(self, q: _Quiesce) -> tuple[str, Event] | None:
        if q.failed_freeze is not None:
            return "SCR-FREEZEFAIL-REVERSE", q.failed_freeze
        if q.engage_failed is not None:
            return "QSC-ENGAGE-FAIL", q.engage_failed
        if q.abort is not None:
            timer = q.abort.details.get("reason", "timer") == "timer"
            return ("TMO-GUEST-ABORT" if timer else "QSC-SNAPSHOT-FAIL-FREEZEFAIL"), q.abort
        if q.snapshot_failed is not None:
            return "QSC-SNAPSHOT-FAIL-FREEZEFAIL", q.snapshot_failed
        if q.disengage_failed is not None:
            return "QSC-SNAPSHOT-FAIL-FREEZEFAIL", q.disengage_failed
        return None

    def _thaw_script(self, q: _Quiesce, ev: Event, vm: str | None, path: str, legacy: bool) -> None:
        cause = self._failure_cause(q)
        if cause is not None:
            rule, why = cause
            self.add(rule, f"script {path} (#{ev.seq}) got 'thaw' after the quiesce failed (#{why.seq}, {why.kind}); on a failure "
                     "path the scripts get 'freezeFail'", why, ev, vm=vm)
        elif q.engage is not None and q.disengage is None:
            self.add("WF-1e", f"post-thaw script {path} (#{ev.seq}) ran while the guest was still quiesced (engaged at "
                     f"#{q.engage.seq}); step 1e follows 1d (unquiesce)", q.engage, ev, vm=vm)
        elif q.snapshot is None:
            self.add("WF-1e", f"post-thaw script {path} (#{ev.seq}) ran before any snapshot of {self.show(vm)} existed; step 1e "
                     "follows 1c", q.start, ev, vm=vm)
        self._phase_order(q, ev, vm, path, legacy, q.thaw, "SCR-ORDER-THAW", "thaw")
        if _failed(ev) and q.thaw_failed is None:
            q.thaw_failed = ev

    def _freezefail_script(self, q: _Quiesce, ev: Event, vm: str | None, path: str, legacy: bool) -> None:
        if q.failed_freeze is not None and not legacy and path == _path(q.failed_freeze):
            self.add("SCR-FREEZEFAIL-NOT-FAILED", f"script {path} got 'freezeFail' (#{ev.seq}) although it is the freeze script "
                     f"that failed (#{q.failed_freeze.seq}); only the scripts before it get freezeFail", q.failed_freeze, ev, vm=vm)
        elif self._failure_cause(q) is None and q.snapshot is not None:
            self.add("SCR-THAW-ALL", f"script {path} got 'freezeFail' (#{ev.seq}) although the snapshot succeeded "
                     f"(#{q.snapshot.seq}) and nothing failed; it should get 'thaw'", q.snapshot, ev, vm=vm)
        self._phase_order(q, ev, vm, path, legacy, q.freezefail, "SCR-ORDER-FREEZEFAIL", "freezeFail")

    def on_quiesce_engage(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        q = self.quiesce.get(vm)
        if q is None:
            self.unplaced_event(ev, f"{self.show(vm)} was quiesced outside any quiesce operation")
            return
        self._check_timer(q, ev, vm)
        if q.failed_freeze is not None:
            self.add("SCR-FREEZEFAIL-NO-SNAPSHOT", f"the guest {self.show(vm)} was quiesced (#{ev.seq}) although pre-freeze script "
                     f"{_path(q.failed_freeze)} failed (#{q.failed_freeze.seq})", q.failed_freeze, ev, vm=vm)
        if q.abort is not None and ev.details.get("ok", True):
            self.add("TMO-GUEST-ABORT", f"the guest {self.show(vm)} was quiesced (#{ev.seq}) after the operation was aborted "
                     f"(#{q.abort.seq})", q.abort, ev, vm=vm)
        if ev.details.get("ok", True):
            q.engage = ev
        else:
            q.engage_failed = ev

    def on_quiesce_disengage(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        q = self.quiesce.get(vm)
        if q is None:
            self.unplaced_event(ev, f"{self.show(vm)} was unquiesced outside any quiesce operation")
            return
        if q.engage is None:
            self.unplaced_event(ev, f"{self.show(vm)} was unquiesced but never quiesced in this operation (#{q.start.seq})")
            return
        if q.abort is None:
            self._check_timer(q, ev, vm)
        if q.snapshot is None and q.snapshot_failed is None and q.abort is None:
            self.add("WF-1d", f"the guest {self.show(vm)} was unquiesced (#{ev.seq}) before any snapshot was taken or failed; "
                     "step 1d follows 1c", q.engage, ev, vm=vm)
        q.disengage = ev
        if not ev.details.get("ok", True):
            q.disengage_failed = ev

    def on_quiesce_abort(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        q = self.quiesce.get(vm)
        if q is None:
            self.unplaced_event(ev, f"abort for {self.show(vm)} outside any quiesce operation")
            return
        if q.timeout is not None and q.abort is None and not q.timer_reported:
            deadline = q.start.time + q.timeout
            if ev.time > deadline + TICK + _EPS:
                q.timer_reported = True
                self.add("TMO-GUEST-ABORT", f"the guest {self.show(vm)} aborted at +{ev.time - q.start.time:.1f} s (#{ev.seq}) but its "
                         f"abort timer is {q.timeout:g} s (#{q.start.seq}); it must fire within one poll tick", q.start, ev, vm=vm)
        q.abort = q.abort or ev

    def on_quiesce_end(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        q = self.quiesce.pop(vm, None)
        if q is None:
            self.unplaced_event(ev, f"{self.show(vm)} ended a quiesce operation that never started")
            return
        self._check_timer(q, ev, vm)
        outcome = ev.details.get("outcome")
        if q.engage is not None and q.disengage is None and q.abort is None:
            after = " after the snapshot failed" if q.snapshot_failed is not None else ""
            self.add("QSC-UNQUIESCE", f"the quiesce operation of {self.show(vm)} ended (#{ev.seq}){after} without unquiescing the "
                     f"guest engaged at #{q.engage.seq}; the guest stays frozen", q.engage, q.snapshot_failed, ev, vm=vm)
        failed = q.failed_freeze or q.engage_failed or q.abort or q.thaw_failed or q.disengage_failed
        if failed is not None and outcome == "done":
            self.add("QSC-REPORT-FAILURE", f"the quiesce operation of {self.show(vm)} ended 'done' (#{ev.seq}) although "
                     f"#{failed.seq} ({failed.kind}) failed; a failed quiesce ends with 'error' or 'aborted'", failed, ev, vm=vm)
        if q.timeout and ev.time - q.start.time > 0.8 * q.timeout and q.abort is None and not q.timer_reported:
            self.add("TMO-NEAR-LIMIT", f"the quiesce operation of {self.show(vm)} took {ev.time - q.start.time:.1f} s of its "
                     f"{q.timeout:g} s abort timer", q.start, ev, vm=vm)
        deleted = {_path(e) for e in self.guest_changes.get(vm, []) if e.kind == "guest.delete" and e.seq > q.start.seq}
        cause = self._failure_cause(q)
        if q.failed_freeze is not None:
            k = q.freeze.index(q.failed_freeze)
            expected = [_path(e) for e in reversed(q.freeze[:k]) if not _is_legacy(e)]
        elif cause is not None and not (q.abort is not None and q.thaw):
            expected = [_path(e) for e in reversed(q.freeze) if not _is_legacy(e)]
        else:
            expected = None
        if expected is not None:
            got = [_path(e) for e in q.freezefail if not _is_legacy(e)]
            missing = [p for p in expected if p not in got and p not in deleted]
            extra = [p for p in got if p not in expected and (q.failed_freeze is None or p != _path(q.failed_freeze))]
            if missing or extra:
                rule = cause[0] if cause and cause[0] != "SCR-FREEZEFAIL-REVERSE" else "SCR-FREEZEFAIL-REVERSE"
                parts = []
                if missing:
                    parts.append("never got freezeFail: " + ", ".join(missing))
                if extra:
                    parts.append("got freezeFail but never ran freeze before the failure: " + ", ".join(extra))
                w = next((e for e in q.freezefail if _path(e) in extra), None)
                self.add(rule, f"after the quiesce of {self.show(vm)} failed (#{cause[1].seq if cause else ev.seq}), "
                         + "; ".join(parts), cause[1] if cause else None, w, ev, vm=vm)
        elif q.snapshot is not None and q.abort is None:
            expected_thaw = [_path(e) for e in q.freeze if not _is_legacy(e)]
            thawed = {_path(e) for e in q.thaw}
            missing = [p for p in expected_thaw if p not in thawed and p not in deleted]
            if missing:
                self.add("SCR-THAW-ALL", f"after the snapshot of {self.show(vm)} (#{q.snapshot.seq}) these scripts ran with "
                         f"'freeze' but never with 'thaw': {', '.join(missing)}", q.thaw_failed or q.snapshot, ev, vm=vm)

    # ------------------------------------------------------------------ proxy
    def on_op_invoke(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        op = str(ev.details.get("op", ""))
        op_id = str(ev.details.get("op_id", ""))
        if not op or not op_id:
            self.unplaced_event(ev, "op.invoke needs 'op' and 'op_id' details")
            return
        if op_id in self.ops or op_id in self.closed_ops:
            self.add("TRC-OP-PAIRED", f"op.invoke #{ev.seq} reuses op_id {op_id!r}", (self.ops.get(op_id) or self.closed_ops[op_id]).invoke, ev, vm=vm)
            self.unplaced += 1
            return
        if op in JOB_OPS and ev.step is None:
            cur = self.jobs.get(vm)
            if cur is not None and cur.implicit:
                self._implicit_end(cur)  # e.g. the leftover cleanup a job does before it starts
            if cur is not None and not cur.implicit and cur.op is not None:
                self.add("WF-ONE-JOB", f"a second backup job of {self.show(vm)} began (#{ev.seq}) while the job begun at "
                         f"#{cur.op.invoke.seq} was still running", cur.op.invoke, ev, vm=vm)
            o = _Op(ev, op, op_id, ev.step, vm, None)
            job = _Job(vm=vm, op=o, mode=ev.details.get("mode") or ev.details.get("type"), level=ev.details.get("level"))
            o.job = job
            self.jobs[vm] = job
            self.all_jobs.append(job)
            self.ops[op_id] = o
            return
        rank = STEP_ORDER.get(ev.step or "")
        job = self.job_for(vm, ev)
        if job.implicit and rank is not None and rank < 20 and rank < job.max_rank and self.live_snap(job) is None:
            job = self._new_implicit_job(vm)
        o = _Op(ev, op, op_id, ev.step, vm, job)
        self.ops[op_id] = o
        if ev.step == "WF-3b":
            sid = ev.details.get("snapshot")
            job.removal_attempts.add(str(sid) if sid is not None else "*")
        if ev.step == "WF-3a":
            job.unmount_attempted = True
        if job.mode is None and ev.step == "WF-1f":
            job.mode = ev.details.get("kind") or ev.details.get("mode") or ev.details.get("type")
        if ev.step == "WF-2" and job.level is None:
            job.level = ev.details.get("level") or ev.details.get("kind")
        if rank is not None:
            parent_of_same_phase = rank % 10 == 0 and rank // 10 == job.max_rank // 10
            if rank < job.max_rank and job.max_rank_event is not None and not parent_of_same_phase:
                prev = job.max_rank_event
                self.add("WF-ORDER", f"event #{ev.seq} began step {_STEP_WORDS[ev.step or '']} of {self.show(vm)} after step "
                         f"{_STEP_WORDS[prev.step or '']} had begun (#{prev.seq}); the seed's steps run in order", prev, ev, vm=vm)
            if rank > job.max_rank:
                job.max_rank, job.max_rank_event = rank, ev
        is_expose = ev.step == "WF-1f" or (ev.step is None and op in ("export", "mount", "expose"))
        is_copy = ev.step == "WF-2" or (ev.step is None and op == "copy")
        if is_expose or is_copy:
            snap = self.live_snap(job)
            rule = "WF-1f" if is_expose else "WF-2"
            if snap is None and not self._maybe_snapshot(job):
                if job.snap_fail:
                    self.add("QSC-APPFAULT", f"event #{ev.seq} began {op} of {self.show(vm)} although the job's snapshot failed "
                             f"(#{job.snap_fail[-1].seq}, {job.snap_fail[-1].details.get('fault', job.snap_fail[-1].kind)}); a "
                             "failed quiesced snapshot ends the job", job.snap_fail[-1], ev, vm=vm)
                else:
                    self.add(rule, f"event #{ev.seq} began {op} of {self.show(vm)} before its backup snapshot existed; the seed "
                             "creates the snapshot (1c) before exposing (1f) and copying (2) it",
                             job.op.invoke if job.op else None, ev, vm=vm)
            q = self.quiesce.get(vm)
            if q is not None:
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
            self.unplaced += 1
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
        q = self.quiesce.get(vm)
        if q is not None:
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
                self.add("FILE-NO-LETTERLESS", f"event #{ev.seq} mounted {path} of {self.show(vm)}, a volume without a drive letter; "
                         "the proxy recognizes only volumes that have drive letters", ev, vm=vm)
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
        self.last_crash = ev
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

    # ------------------------------------------------------------------ job end and trace end
    def _job_end(self, job: _Job, ev: Event, ok: bool | None) -> None:
        vm = job.vm
        if self.jobs.get(vm) is job:
            del self.jobs[vm]
        if ok is None:
            job.infos.append(ev)
        if not ok:
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
        mode = job.mode or ("file" if job.file_mounts else None)
        redo = snap.create.details.get("redo")
        if mode == "fullvm" and isinstance(redo, list) and redo and job.exports:
            if len(job.exports) < len(redo):
                self.add("IMG-ALL-DISKS", f"the image backup of {self.show(vm)} exported {len(job.exports)} of the {len(redo)} disks "
                         f"of snapshot '{snap.name}' (#{snap.create.seq})", snap.create, ev, vm=vm)
        if mode == "file":
            self._check_file_level(job, snap, ev)

    def _check_file_level(self, job: _Job, snap: _Snap, ev: Event) -> None:
        vm = job.vm
        level = job.level or "full"
        history = self.file_history.setdefault(vm, [])
        history.append((level, snap.create))
        if level not in ("differential", "incremental"):
            return
        base: Event | None = None
        for lvl, sev in reversed(history[:-1]):
            if lvl == "full" or (level == "incremental" and lvl == "incremental"):  # seed: no differential base
                base = sev
                break
        rule = "BK-DIFF-SINCE-FULL" if level == "differential" else "BK-INCR-SINCE-LAST"
        if base is None:
            self.notes.append(f"{rule} not checked for the job ending at #{ev.seq}: no earlier "
                              f"{'full' if level == 'differential' else 'file-level'} backup of {self.show(vm)} in the trace")
            return
        ends = [*job.copy_ok, *([job.op.end] if job.op is not None and job.op.end is not None else [])]
        lists = [e.details.get("files") for e in ends if isinstance(e.details.get("files"), list)]
        if not lists:
            self.notes.append(f"{rule} not checked for the job ending at #{ev.seq}: its copy op.ok carries no 'files' list")
            return
        windows = self.os.get(vm or "", "windows").lower().startswith("win")
        selected = {_norm_guest_path(str(p), windows) for ls in lists for p in (ls or [])}
        last: dict[str, Event] = {}
        shown: dict[str, str] = {}
        for ls in lists:
            for p in ls or []:
                shown.setdefault(_norm_guest_path(str(p), windows), str(p))
        for ch in self.guest_changes.get(vm, []):
            if base.seq < ch.seq < snap.create.seq:
                last[_norm_guest_path(_path(ch), windows)] = ch
                shown.setdefault(_norm_guest_path(_path(ch), windows), _path(ch))
        expected = {p for p, e in last.items() if e.kind == "guest.write"}
        missing = sorted(expected - selected)
        extra = sorted(selected - expected)
        if not missing and not extra:
            return
        since = "the last full backup" if level == "differential" else "the last backup"
        parts = []
        if missing:
            parts.append(f"misses {', '.join(shown[p] for p in missing[:3])}{' ...' if len(missing) > 3 else ''}, changed since {since}")
        if extra:
            parts.append(f"holds {', '.join(shown[p] for p in extra[:3])}{' ...' if len(extra) > 3 else ''}, unchanged since {since}")
        w = [last[p] for p in missing[:1] if p in last]
        self.add(rule, f"the {level} backup of {self.show(vm)} (#{ev.seq}) " + " and ".join(parts)
                 + f" (base snapshot #{base.seq}, this snapshot #{snap.create.seq})", base, *w, snap.create, ev, vm=vm)

    def finish(self) -> None:
        for job in list(self.jobs.values()):
            if job.implicit:
                self._implicit_end(job)
        for o in self.ops.values():
            what = "backup job" if o.op in JOB_OPS else f"operation {o.op!r}"
            self.add("TRC-OP-PAIRED", f"the {what} of {self.show(o.vm)} begun at #{o.invoke.seq} never ended (no op.ok, op.fail "
                     "or op.info); a trace with an unfinished job never passes", o.invoke, vm=o.vm)
            self.unplaced += 1
        for vm, q in self.quiesce.items():
            if self.open_ended and self.last_crash is not None and self.last_crash.seq > q.start.seq:
                continue  # a crash left it; the host aborts it before the next operation
            self.add("QSC-END", f"the quiesce operation of {self.show(vm)} begun at #{q.start.seq} never ended; the guest may be "
                     "left frozen", q.start, q.engage, vm=vm)
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
        for m in self.mounts.values():
            if self.open_ended and m.job is not None and (m.job.crashed is not None or m.job.unmount_attempted):
                continue
            self.add("CLN-NO-MOUNT-LEFT", f"{m.path} of {self.show(m.vm)} mounted at #{m.event.seq} was never unmounted",
                     m.event, vm=m.vm)


def check_trace(events: Iterable[Event], *, profile: str = "esx-3.5u2", open_ended: bool = False) -> CheckReport:
    """Check one trace against every rule the trace can decide.

    ``events`` come from ``Host.trace``, ``load_jsonl()`` or anywhere else; ``profile`` is the
    host profile the trace was recorded under (it selects profile-specific rules).
    ``open_ended``: the trace is a prefix of a run that goes on (the suite checks after every
    job): a snapshot or mount whose job tried to remove it, or crashed, may wait for the next
    run's cleanup. The final check of a run is never open-ended.

    >>> check_trace([], profile="esx-3.5u2").ok
    True
    """
    if profile not in HOST_PROFILES:
        msg = "profile"
        raise InvalidDefinition(msg, expected="one of " + ", ".join(HOST_PROFILES), got=profile)
    evs = list(events)
    for i, ev in enumerate(evs):
        if not isinstance(ev, Event):
            msg = f"events[{i}]"
            raise InvalidDefinition(msg, expected="vcbsim.simulator.Event", got=type(ev).__name__,
                                    hint="load files with vcbsim.simulator.load_jsonl")
    return _Checker(evs, profile, open_ended).run()
