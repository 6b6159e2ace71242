"""What the trace checker's models share: the vocabulary, the ``Violation``, the context.

The checker (``_checker``) replays a trace through two independent models, as Jepsen's elle
has one checker per consistency model: the guest's quiesce operations (``_check_quiesce``)
and the proxy's jobs (``_check_jobs``). Both report through one ``Context``: the naming of
VMs, the violations (scoped to the rules' profiles) and the count of events no model could
place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vcbsim.simulator import Event

from ._errors import ConformanceViolation
from ._rules import RULES

__all__ = ["JOB_OPS", "STEP_ORDER", "VCB_SNAPSHOT_NAME", "Violation", "Context", "Model"]

#: ``op`` values that open a whole backup job (when the ``op.invoke`` has no ``step``).
JOB_OPS = frozenset({"job", "backup"})
#: The seed's steps in order; a job may not go back to an earlier one (WF-ORDER).
STEP_ORDER: dict[str, int] = {
    "WF-1": 10, "WF-1a": 11, "WF-1b": 12, "WF-1c": 13, "WF-1d": 14, "WF-1e": 15, "WF-1f": 16,
    "WF-2": 20, "WF-3": 30, "WF-3a": 31, "WF-3b": 32,
}  # fmt: skip
VCB_SNAPSHOT_NAME = "_VCB-BACKUP_"
#: What ESX leaves when a commit fails part-way (spec R49, F16): a cleanup may remove it.
_HELPER = re.compile(r"^Consolidate Helper-\d+$")
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



def _crash(ev: Event) -> bool:
    """The event says the backup is (or is configured) crash-consistent (WF-1b)."""
    return ev.details.get("consistency") == "crash" or ev.details.get("quiesce") is False \
        or ev.details.get("quiesced") is False


def _failed(ev: Event) -> bool:
    return ev.details.get("exit_code") != 0


def _path(ev: Event) -> str:
    return str(ev.details.get("path", ""))


def _is_legacy(ev: Event) -> bool:
    if "legacy" in ev.details:
        return bool(ev.details["legacy"])
    p = _path(ev).lower()
    return p.endswith(("pre-freeze-script.bat", "post-thaw-script.bat", "/pre-freeze-script", "/post-thaw-script"))


#: the legacy post-thaw scripts (spec R20), case-folded
_LEGACY_POST = frozenset({"c:\\windows\\post-thaw-script.bat", "/usr/sbin/post-thaw-script"})


def _fold(p: str) -> str:
    """A guest path compared as its file system does (Windows paths case-insensitively)."""
    return p.casefold() if "\\" in p or p[1:2] == ":" else p


def _legacy_kind(ev: Event) -> str:
    return "pre" if "pre-freeze" in _path(ev).lower() else "post"


def _norm_guest_path(p: str, windows: bool) -> str:
    return p.replace("/", "\\").casefold() if windows else p



class Context:
    """The state both models share: the trace, the profile, VM names and OS, the guest's file
    changes, and what was found (violations, notes, events no model could place)."""

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
        self.guest_changes: dict[str | None, list[Event]] = {}
        self.host_truth = any(e.actor == "host" and e.kind.startswith("snapshot.") for e in events)
        self.guest_events = any(e.kind == "quiesce.start" for e in events)

    def vm_of(self, ev: Event) -> str | None:
        return None if ev.vm is None else self.alias.get(ev.vm, ev.vm)

    def show(self, vm: str | None) -> str:
        if vm is None:
            return "the VM"
        name = self.names.get(vm)
        return f"{vm} ('{name}')" if name and name != vm else vm

    def add(self, rule_id: str, why: str, *witness: Event | None, vm: str | None = None) -> None:
        if self.profile not in RULES[rule_id].profiles:
            return  # the rule describes another era's hosts (its ``profiles``)
        wit = tuple(sorted({e.seq: e for e in witness if e is not None}.values(), key=lambda e: e.seq))
        self.out.append(Violation(rule_id, why, wit, vm))

    def unplaced_event(self, ev: Event, why: str) -> None:
        self.unplaced += 1
        self.add("TRC-CONSUMED", f"event #{ev.seq} ({ev.kind}) cannot be placed in the model: {why}", ev, vm=self.vm_of(ev))

    def on_vm_create(self, ev: Event) -> None:
        if ev.vm is not None:
            name = ev.details.get("name")
            if name:
                self.alias[str(name)] = ev.vm
                self.names[ev.vm] = str(name)
            self.os[ev.vm] = str(ev.details.get("os", ""))

    def on_guest_write(self, ev: Event) -> None:
        self.guest_changes.setdefault(self.vm_of(ev), []).append(ev)

    on_guest_delete = on_guest_write


class Model:
    """One model of the checker: ``on_<kind>`` handlers for the events it places, reporting
    through the shared ``Context``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def profile(self) -> str:
        return self.ctx.profile

    @property
    def open_ended(self) -> bool:
        return self.ctx.open_ended

    @property
    def notes(self) -> list[str]:
        return self.ctx.notes

    @property
    def os(self) -> dict[str, str]:
        return self.ctx.os

    @property
    def guest_changes(self) -> dict[str | None, list[Event]]:
        return self.ctx.guest_changes

    @property
    def host_truth(self) -> bool:
        return self.ctx.host_truth

    @property
    def guest_events(self) -> bool:
        return self.ctx.guest_events

    @property
    def last_crash(self) -> Event | None:
        return self.ctx.last_crash

    def vm_of(self, ev: Event) -> str | None:
        return self.ctx.vm_of(ev)

    def show(self, vm: str | None) -> str:
        return self.ctx.show(vm)

    def add(self, rule_id: str, why: str, *witness: Event | None, vm: str | None = None) -> None:
        self.ctx.add(rule_id, why, *witness, vm=vm)

    def unplaced_event(self, ev: Event, why: str) -> None:
        self.ctx.unplaced_event(ev, why)

    def finish(self) -> None:
        """At the end of the trace: what never ended, what was left behind."""
