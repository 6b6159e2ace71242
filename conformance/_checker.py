"""The trace checker: replay a trace through the reference model of the seed workflow.

``check_trace(events, profile=...)`` walks the events once, in order, through two
independent models (one module each, as Jepsen's elle has one checker per model) sharing one
``Context`` (``_check_base``):

- a **job** model (proxy side, ``_check_jobs``): idle -> pre-backup -> snapshot -> exposed (exported or
  mounted) -> backed up -> unmounted -> committed, fed by ``op.*``, ``mount``/``unmount`` and
  the host's ``snapshot.*`` / ``disk.export`` events;
- a **quiesce operation** model (guest side, ``_check_quiesce``): freeze scripts -> engage -> snapshot ->
  disengage -> thaw scripts, or the failure paths (freezeFail, abort), fed by ``quiesce.*``
  and ``script.run``;
- a **transport** model (``_check_transport``): export leases and hot-added disks, judged at
  the commit, fed by ``nfc.lease`` and ``disk.hotadd`` / ``disk.hotremove``.

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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from vcbsim.simulator import Event

from ._check_base import _EPS, JOB_OPS, STEP_ORDER, VCB_SNAPSHOT_NAME, Context, Violation
from ._check_jobs import JobModel
from ._check_quiesce import QuiesceModel
from ._check_restore import RestoreModel
from ._check_transport import TransportModel
from ._errors import InvalidDefinition
from ._rules import HOST_PROFILES, RULES

__all__ = ["check_trace", "CheckReport", "Violation", "JOB_OPS", "STEP_ORDER", "VCB_SNAPSHOT_NAME"]


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


def _run(events: Sequence[Event], profile: str, open_ended: bool) -> CheckReport:
    """One pass: the trace's own form, then each event to the context and both models."""
    ctx = Context(events, profile, open_ended)
    guest = QuiesceModel(ctx)
    jobs = JobModel(ctx, guest)
    restores = RestoreModel(ctx)  # restores over the wire (issue 16)
    transport = TransportModel(ctx)
    prev: Event | None = None
    for ev in events:
        if prev is not None and (ev.seq != prev.seq + 1 or ev.time + _EPS < prev.time):
            what = "sequence number" if ev.seq != prev.seq + 1 else "virtual time"
            ctx.add("TRC-WELL-FORMED", f"event #{ev.seq} follows #{prev.seq}: the {what} is out of order "
                    f"(expected seq {prev.seq + 1} at time >= {prev.time:.3f}, got seq {ev.seq} at {ev.time:.3f})", prev, ev)
        prev = ev
        jobs.see(ev)
        name = "on_" + ev.kind.replace(".", "_")
        for model in (ctx, jobs, guest, restores, transport):
            handler = getattr(model, name, None)
            if handler is not None:
                handler(ev)
    jobs.finish()
    guest.finish()
    transport.finish()
    fails = tuple(v for v in ctx.out if v.severity == "fail")
    warns = tuple(v for v in ctx.out if v.severity == "warn")
    checked = tuple(r.id for r in RULES.values() if profile in r.profiles and "trace" in r.checked_by)
    return CheckReport(profile, len(events), len(events) - ctx.unplaced, fails, warns, tuple(dict.fromkeys(ctx.notes)), checked)


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
    return _run(evs, profile, open_ended)
