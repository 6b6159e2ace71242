"""What a run of the reference proxy did: ``RunOutcome`` (one run) and ``StepOutcome`` (one
operation of it). Plain records, kept apart from the steps that fill them in (``_workflow``)
and the event recorder that reports them (``_oprecorder``), so that the CLI, the job scheduler
and the conformance adapter can read a run's outcome without the machinery behind it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from vcbsim.simulator import fault_name

__all__ = ["RunOutcome", "StepOutcome", "diagnose_pre_backup", "message_of"]


@dataclass(frozen=True, slots=True)
class StepOutcome:
    step: str
    op: str
    ok: bool
    detail: str = ""


@dataclass(slots=True)
class RunOutcome:
    """What one run did. ``status``: ``ok``, ``mounted`` (pre-backup only, held for a later
    unmount), ``failed``. ``failed_step`` is the first step that failed; ``cause_step`` is
    the sub-step of WF-1 that caused a pre-backup failure.

    Image backups (``kind`` ``image``): ``requested_level`` is the level asked for (``full``,
    ``incremental``, ``differential``), ``level`` the one done; ``fallback`` says why a
    requested incremental or differential was a full backup; ``base_backup_id`` is the backup
    an incremental or differential builds on; ``bytes_stored`` the bytes copied to the medium;
    ``notes`` what the proxy did besides the workflow (enabling changed block tracking)."""

    vm: str
    moref: str
    type: str
    kind: str | None = None
    status: str = "running"
    failed_step: str | None = None
    cause_step: str | None = None
    fault: str | None = None
    reason: str = ""
    snapshot_id: str | None = None
    path: str | None = None
    letters: dict[str, str] = field(default_factory=dict)
    skipped_volumes: list[str] = field(default_factory=list)
    backup_id: int | None = None
    stale_cleaned: list[str] = field(default_factory=list)
    steps: list[StepOutcome] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    requested_level: str | None = None
    level: str | None = None
    fallback: str = ""
    base_backup_id: int | None = None
    bytes_stored: int = 0
    notes: list[str] = field(default_factory=list)
    #: disks an image backup left out, one line each: ``disk <key> (<label>): <reason>``
    #: (independent disks and physical RDMs: no snapshot covers them, ``_image.py``)
    excluded_disks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "mounted")

    def fail(self, step: str, exc: BaseException) -> None:
        if self.failed_step is None:
            self.failed_step = step
            self.fault = fault_name(exc)
            self.reason = message_of(exc)
        self.status = "failed"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["steps"] = [asdict(s) for s in self.steps]
        return d

    def summary(self) -> str:
        if self.status == "failed":
            cause = f" ({self.cause_step})" if self.cause_step and self.cause_step != self.failed_step else ""
            return f"{self.vm}: failed at {self.failed_step}{cause}: {self.fault}: {self.reason}"
        where = f" at {self.path}" if self.path else ""
        return f"{self.vm}: {self.status}{where}"

    def stored(self) -> str:
        """What the backup put on the medium, in words (empty before WF-2)."""
        if self.backup_id is None:
            return ""
        if self.type != "fullvm":
            return f"backup {self.backup_id}, {self.kind}"
        level = self.level or "full"
        since = f" on backup {self.base_backup_id}" if self.base_backup_id is not None else ""
        text = f"backup {self.backup_id}, image {level}{since}, {self.bytes_stored} bytes stored"
        if self.fallback:
            text += f"; {self.requested_level} requested, full because {self.fallback}"
        return text


def message_of(exc: BaseException) -> str:
    """What a fault or error says: a vSphere fault's ``msg``, else the text, else its type."""
    msg = getattr(exc, "msg", None)
    if isinstance(msg, str) and msg:
        return msg
    return str(exc) or type(exc).__name__


def diagnose_pre_backup(events: list[Any], exc: BaseException) -> str:
    """Which sub-step of WF-1 failed: from the guest/host events of the attempt when the
    trace has them (in-process), else from the fault the host raised."""
    for ev in events:
        d = ev.details
        if ev.kind == "script.run" and (d.get("exit_code") is None or d.get("exit_code") != 0):
            return "WF-1e" if d.get("arg") == "thaw" else "WF-1a"
        if ev.kind == "quiesce.engage" and d.get("ok") is False:
            return "WF-1b"
        if ev.kind == "quiesce.disengage" and d.get("ok") is False:
            return "WF-1d"
    for ev in events:
        if ev.kind == "snapshot.create.fail":
            return "WF-1c"
    name = fault_name(exc)
    text = message_of(exc)
    if name == "ApplicationQuiesceFault":
        if "code was: 3" in text:
            return "WF-1b"
        return "WF-1e" if "Thaw" in text else "WF-1a"
    if name == "FilesystemQuiesceFault":
        return "WF-1d"
    if name == "SnapshotFault" and "code was: 3" in text:
        # guest code 3 is a sync-provider error (spec R47, F3/F7): the quiesce step itself
        return "WF-1b"
    return "WF-1c"
