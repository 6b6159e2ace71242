"""One scenario protocol for both routes: what the kit asks, records and judges in a case,
whatever carries the host (in process: ``_suite.Scenario``; over the wire: ``_wire.WireScenario``).

``ScenarioBase`` holds the parts the two routes used to implement twice: the step record (a
failing case prints as a pasteable test), the declaration gate (``Capabilities.ask``: a job
outside the declaration is not asked, and the case says so), the occasions counted for the
evidence (``_evidence``), and the judgement of each job from what the host and the guest show
rather than from what the product says:

- ``EV-OUTCOME-TRUE``: a job reported ``ok`` while its backup snapshot is still on the VM, or
  after a fault in one of its steps with no backup content to show for it;
- ``CMT-BACKUP-CONTENT``: the files a file-level backup restores to (``JobResult.files``) equal
  the guest's files as of the job's snapshot;
- ``BK-INCR-SINCE-LAST`` / ``BK-DIFF-SINCE-FULL``: the files a job itself copied
  (``JobResult.copied``; the trace checker judges the ``files`` its events list as well, and a
  job judged from both is one occasion) against the guest as of this snapshot and as of its base, the seed's
  bases: the last usable full backup for a differential, the last usable full *or
  incremental* one for an incremental (a differential in between is no base); usable: ``ok``,
  or failed after a complete copy with ``details["usable"]``, as the product says. Every file whose
  content changed MUST be there (else data is lost); a file whose content is the same but was
  rewritten (its metadata changed) MAY be; a file untouched since the base MUST NOT;
- ``SCR-ARG-EXACT``: the scripts' own record in the guest (each kit script appends ``NAME ARG``
  to a log file in the guest) agrees with the ``script.run`` events the guest agent traced;
- ``EV-DECLARED-WORKS``: a job within the declaration, asked in a case with no fault armed and no
  failing script, succeeds.

A subclass supplies the host access: ``_events()``, ``_read_guest()``, ``_snapshot_ids()``,
``_family()`` and ``_moref()``.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from vcbsim.simulator import Event

from ._adapters import BackupPolicy, JobResult
from ._capabilities import Capabilities
from ._checker import CheckReport, check_trace
from ._errors import ConformanceViolation
from ._evidence import occasions

__all__ = ["ScenarioBase", "norm_path", "PRODUCT_STEP_FAULTS"]

#: fault operations of the product's own steps (a fault there must show in the job's outcome)
PRODUCT_STEP_FAULTS = frozenset({"mount", "export", "copy", "disk.read"})
#: an unconditional ``echo TAG %1 >> LOG`` (Windows) or ``echo TAG $1 >> LOG`` (POSIX) line
_ECHO_ARG = re.compile(r"^echo\s+(?P<tag>.*?)\s*(?:%1|\$1)\s*>>\s*(?P<log>\S.*?)\s*$", re.IGNORECASE)


def norm_path(path: str) -> str:
    """A guest path as the guest compares it: case-insensitive with backslashes on Windows."""
    return path.replace("/", "\\").casefold() if ":" in path[:2] else path


def _lettered(model: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    return {k: v for k, v in model.items() if v[0][1:2] == ":"}


class ScenarioBase(ABC):
    """The shared half of a case. Subclasses set ``adapter``, ``caps``, ``host_profile``,
    ``out`` and call ``_init_case()``."""

    adapter: Any
    caps: Capabilities
    host_profile: str
    out: TextIO | None

    def _init_case(self) -> None:
        from ._suite import Step

        self.steps: list[Step] = []
        self.results: list[JobResult] = []
        #: suite-side occasions (``_evidence.SUITE_OCCASIONS``)
        self.counts: Counter[str] = Counter()
        #: jobs asked and succeeded, by ``mode/level`` (within the declaration only)
        self.jobs_asked: Counter[str] = Counter()
        self.jobs_ok: Counter[str] = Counter()
        #: steps the declaration left out, with the reason
        self.not_asked: list[str] = []
        #: backup steps asked of the product (the final clean runs aside)
        self.step_jobs = 0
        #: a fault was armed or a failing script installed: a failed job proves nothing
        self.disturbed = False
        self._file_bases: dict[str, list[tuple[str, int]]] = {}  # vm -> [(level, snapshot seq)]
        self._log_lines: dict[tuple[str, str], int] = {}  # (vm, log path) -> lines judged
        self._log_mark = 0  # events up to here have had their scripts' log compared
        #: a VM restored over another (new moref) -> (the old moref, the backup snapshot's event,
        #: the event the restore ended at): its guest files start as the backup's (``model``)
        self.restored_from: dict[str, tuple[str, int, int]] = {}
        #: SHOULD / SHOULD NOT violations seen by any check of the case, once each (warnings:
        #: reported, never a FAIL; docs/rules.md "Warnings")
        self.warnings: dict[tuple[str, str], dict[str, Any]] = {}
        #: rules an occasion of the case could not judge, with the reason (e.g. an image backup whose
        #: disks the kit cannot read): a rule never exercised for that reason is not applicable
        #: in the run's evidence, with it, instead of NOT EXERCISED
        self.unjudged: dict[str, str] = {}

    # -- host access (subclasses) -----------------------------------------------------
    @abstractmethod
    def _events(self) -> Sequence[Event]:
        """Supplied by the route (in process or over the wire)."""

    @abstractmethod
    def _read_guest(self, vm: str, path: str) -> bytes | None:
        """Supplied by the route (in process or over the wire)."""

    @abstractmethod
    def _snapshot_ids(self, vm: str) -> set[str]:
        """Supplied by the route (in process or over the wire)."""

    @abstractmethod
    def _family(self, vm: str) -> str:
        """Supplied by the route (in process or over the wire)."""

    @abstractmethod
    def _moref(self, vm: str) -> str | None:
        """Supplied by the route (in process or over the wire)."""

    # -- steps ------------------------------------------------------------------------
    def _record(self, step: Any) -> None:
        self.steps.append(step)
        if self.out is not None:
            self.out.write(step.code() + "\n")

    def apply(self, step: Any) -> Any:
        return getattr(self, step.op)(**dict(step.args))

    def occasion(self, rule: str, n: int = 1) -> None:
        """Count ``n`` suite-side occasions of ``rule`` (the evidence)."""
        if n:
            self.counts[rule] += n

    def evidence(self) -> dict[str, int]:
        """Occasions per rule in this case so far: the trace's and the suite's."""
        total = occasions(self._events())
        total.update(self.counts)
        return dict(total)

    def gate(self, vm: str, mode: str, level: str) -> str | None:
        """The level to ask a job at, or ``None`` (recorded in ``not_asked``) when the
        declaration leaves it out."""
        asked, why = self.caps.ask(mode, level, self._family(vm))
        if asked is None:
            self.not_asked.append(f"{mode} {level} backup of {vm}: {why}")
        else:
            self.step_jobs += 1
        return asked

    def _checked_events(self) -> Sequence[Event]:
        """The trace the checker judges (a route may correct what the guest's facts contradict)."""
        return self._events()

    def check(self, *, open_ended: bool = False) -> CheckReport:
        report = check_trace(self._checked_events(), profile=self.host_profile, open_ended=open_ended)
        for w in report.warnings:
            self.warnings.setdefault((w.rule_id, w.explanation), w.to_dict())
        report.raise_for_violations()
        return report

    # -- the guest as the trace says it was ---------------------------------------------
    def model(self, vm: str, upto: int) -> dict[str, tuple[str, str]]:
        """Guest files of ``vm`` before event ``upto``: normalised path -> (path, sha256)."""
        return self._model_of(self._moref(vm), upto)

    def _model_of(self, moref: str | None, upto: int) -> dict[str, tuple[str, str]]:
        # a VM restored over another starts with that VM's files as of the backup's snapshot
        origin = self.restored_from.get(moref or "")
        files = self._model_of(origin[0], origin[1]) if origin is not None else {}
        for e in self._events()[:upto]:
            if e.vm != moref:
                continue
            if e.kind == "guest.write":
                files[norm_path(str(e.details["path"]))] = (str(e.details["path"]), str(e.details.get("sha256")))
            elif e.kind == "guest.delete":
                files.pop(norm_path(str(e.details["path"])), None)
        return files

    def _touched(self, vm: str, start: int, end: int) -> set[str]:
        moref = self._moref(vm)
        out = {norm_path(str(e.details["path"])) for e in self._events()[start:end]
               if e.vm == moref and e.kind in ("guest.write", "guest.delete")}
        origin = self.restored_from.get(moref or "")
        if origin is not None and start <= origin[2] < end:  # the restore rewrote the guest
            out |= set(self._model_of(origin[0], origin[1])) | set(self._model_of(origin[0], start))
        return out

    def restored_over(self, vm: str, old_moref: str, snapshot_seq: int) -> None:
        """``vm`` (now a new VM) was restored over ``old_moref`` from the image backup whose
        snapshot is event ``snapshot_seq``: its guest files are that VM's as of it."""
        moref = self._moref(vm)
        if moref is not None and moref != old_moref:
            self.restored_from[moref] = (old_moref, snapshot_seq, len(self._events()))

    def job_snapshot(self, vm: str, mark: int) -> Event | None:
        """The last backup snapshot the job begun at event ``mark`` created."""
        moref = self._moref(vm)
        snaps = [e for e in self._events()[mark:] if e.kind == "snapshot.create" and e.vm == moref]
        return snaps[-1] if snaps else None

    # -- judging one job --------------------------------------------------------------
    def judge_job(self, vm: str, policy: BackupPolicy, result: JobResult | None, mark: int) -> None:
        """Everything the kit judges about one job beyond the trace check (module docstring)."""
        in_domain = not (policy.mode == "file" and self._family(vm) != "windows")
        if not in_domain:
            self.occasion("FILE-WINDOWS-ONLY")
        key = f"{policy.mode}/{policy.level}"
        if in_domain:
            self.jobs_asked[key] += 1
            self.jobs_ok[key] += int(result is not None and result.ok)
        if result is None:
            return  # the kit crashed the product on purpose: the next run cleans up (and is judged)
        snap = self.job_snapshot(vm, mark)
        self._judge_consistency(vm, mark)
        if result.ok:
            self._judge_outcome(vm, policy, result, mark)
        usable = result.ok or result.details.get("usable") is True  # failed after a complete copy
        if usable and policy.mode == "file" and snap is not None:
            self._judge_files(vm, policy, result, snap, mark)
        self._judge_guest_log()
        if in_domain and not self.disturbed:
            self.occasion("EV-DECLARED-WORKS")
            if not result.ok:
                why = (f"the {policy.level} {'image' if policy.mode == 'fullvm' else 'file'}-level backup of {vm} "
                       f"failed ({result.error or 'no reason given'}) with no fault armed and no failing script; "
                       f"the product declares {key} backups ({self.caps.to_dict()}), so they must work")
                raise ConformanceViolation("EV-DECLARED-WORKS", why, witness=(snap,) if snap else (),
                                           vm=self._moref(vm))

    def _judge_consistency(self, vm: str, mark: int) -> None:
        """WF-1b from the host's facts and the declaration: a product that declares quiesced
        backups (``Capabilities.consistency`` other than ``crash``) takes an unquiesced snapshot of
        a VM whose Tools answer only after quiescing it failed in the same job (the seed's
        "(Optional)" step 2 is the product's configuration, and this one declared it on);
        announcing the crash-consistent snapshot in its own trace does not make it one the
        declaration allows."""
        if not self.caps.quiesces:
            return
        moref = self._moref(vm)
        events = self._events()[mark:]
        tried = False
        for e in events:
            if e.vm != moref:
                continue
            if e.kind in ("snapshot.create.fail", "snapshot.rollback") or (
                    e.kind == "quiesce.end" and e.details.get("outcome") != "done"):
                tried = True
            elif e.kind == "snapshot.create" and not e.details.get("quiesced") and not tried and self._tools_answer(vm):
                self.occasion("WF-1b")
                why = (f"the job of {vm} took snapshot '{e.details.get('name')}' unquiesced (#{e.seq}) without trying to "
                       f"quiesce the guest, whose VMware Tools run, while the product declares {self.caps.consistency}-"
                       "consistent backups; quiescing is skipped only by a product configured crash-consistent, or "
                       "after it failed")
                raise ConformanceViolation("WF-1b", why, witness=(e,), vm=moref)

    def _tools_answer(self, vm: str) -> bool:
        """Whether the VM's Tools run (a route that cannot tell says no: nothing is judged)."""
        return False

    def _judge_outcome(self, vm: str, policy: BackupPolicy, result: JobResult, mark: int) -> None:
        moref = self._moref(vm)
        events = self._events()[mark:]
        self.occasion("EV-OUTCOME-TRUE")
        made = [e for e in events if e.kind == "snapshot.create" and e.vm == moref]
        left = [e for e in made if str(e.details.get("snapshot")) in self._snapshot_ids(vm)]
        if left:
            why = (f"the job of {vm} reported success, but its backup snapshot "
                   f"'{left[-1].details.get('name')}' (#{left[-1].seq}) is still on the VM; a successful job "
                   "takes the VM out of snapshot mode (step 3b)")
            raise ConformanceViolation("EV-OUTCOME-TRUE", why, witness=(left[-1],), vm=moref)
        faults = [e for e in events if e.kind == "fault.injected" and "fault" in e.details
                  and e.details.get("operation") in PRODUCT_STEP_FAULTS]
        content = result.files if policy.mode == "file" else result.disks
        if faults and content is None:
            f = faults[0]
            why = (f"the job of {vm} reported success, but its {f.details.get('operation')} step failed with "
                   f"{f.details.get('fault')} (#{f.seq}) and the product showed no backup content (JobResult."
                   f"{'files' if policy.mode == 'file' else 'disks'}) that the kit could compare; a job that "
                   "lost its copy reports failure")
            raise ConformanceViolation("EV-OUTCOME-TRUE", why, witness=(f,), vm=moref)

    def _judge_files(self, vm: str, policy: BackupPolicy, result: JobResult, snap: Event, mark: int = 0) -> None:
        from ._suite import check_backup_content

        moref = self._moref(vm)
        at_snap = self.model(vm, snap.seq)
        if result.files is not None:
            self.occasion("CMT-BACKUP-CONTENT")
            check_backup_content(at_snap, result.files, norm_path, level=policy.level, vm=vm, snap=snap, moref=moref)
        bases = self._file_bases.setdefault(vm, [])
        if policy.level != "full" and result.copied is not None:
            usable = ("full",) if policy.level == "differential" else ("full", "incremental")
            base = next((seq for lv, seq in reversed(bases) if lv in usable), None)
            if base is not None:
                # one occasion per job: the trace's (``_evidence.occasions``) when the job's own
                # events list its files too, else the suite's
                traced = any(e.kind == "op.ok" and e.actor == "proxy" and e.vm == moref
                             and isinstance(e.details.get("files"), list) for e in self._events()[mark:])
                self._judge_copied(vm, policy.level, result.copied, base, snap, at_snap, count=not traced)
        bases.append((policy.level, snap.seq))

    def _judge_copied(self, vm: str, level: str, copied: Mapping[str, str], base: int, snap: Event,
                      at_snap: Mapping[str, tuple[str, str]], *, count: bool = True) -> None:
        rule = "BK-DIFF-SINCE-FULL" if level == "differential" else "BK-INCR-SINCE-LAST"
        self.occasion(rule, int(count))
        before, now = _lettered(self.model(vm, base)), _lettered(at_snap)
        changed = {k for k, v in now.items() if k not in before or before[k][1] != v[1]}
        touched = self._touched(vm, base, snap.seq)
        got = {norm_path(p): p for p in copied}
        missing = sorted(now[k][0] for k in changed - set(got))
        extra = sorted(got[k] for k in set(got) - changed - touched)
        if not (missing or extra):
            return
        since = "the last full backup" if level == "differential" else "the last full or incremental backup"
        parts = []
        if missing:
            parts.append(f"did not copy {', '.join(missing[:3])}, whose content changed since {since} (data loss)")
        if extra:
            parts.append(f"copied {', '.join(extra[:3])}, untouched since {since}")
        events = self._events()
        why = (f"the {level} file-level backup of {vm} " + " and ".join(parts)
               + f" (base snapshot #{base}, this snapshot #{snap.seq}); the seed's {level} holds the files changed "
               f"since {since}")
        raise ConformanceViolation(rule, why, witness=(events[base], snap) if base < len(events) else (snap,),
                                   vm=self._moref(vm))

    def _judge_guest_log(self) -> None:
        """The scripts' own record in the guest against the agent's ``script.run`` events
        since the last comparison. A log that cannot be read now (a frozen guest) waits for
        the next job; a script whose text is gone is not compared."""
        events = self._events()
        start = self._log_mark
        expected: dict[tuple[str, str], list[str]] = {}
        unknown: set[tuple[str, str]] = set()
        texts: dict[tuple[str, str], str | None] = {}
        runs: dict[str, list[Event]] = {}
        names = {self._moref(n): n for n in self._vm_names()}
        # the last write of each guest file: a script rewritten after it ran (a later add_script)
        # no longer has the text it ran with, so its runs are not compared
        rewritten = {(e.vm, norm_path(str(e.details.get("path", "")))): e.seq for e in events[start:]
                     if e.kind == "guest.write"}
        for e in events[start:]:
            if e.kind != "script.run" or "error" in e.details or e.vm not in names:
                continue  # a script that could not be launched wrote nothing
            vm, path = names[e.vm], str(e.details.get("path", ""))
            if rewritten.get((e.vm, norm_path(path)), -1) > e.seq:
                unknown.add((vm, "*"))
                continue
            if (vm, path) not in texts:
                data = self._read_guest(vm, path)
                texts[(vm, path)] = data.decode("utf-8", "replace") if data is not None else None
            text = texts[(vm, path)]
            echo = _first_echo(text) if text is not None else None
            runs.setdefault(vm, []).append(e)
            if text is None or e.details.get("killed"):
                unknown.add((vm, "*"))  # gone, or killed by the timer before or after its echo
            elif echo is not None:
                expected.setdefault((vm, echo[1]), []).append(f"{echo[0]} {e.details.get('arg')}".strip())
        open_ops: Counter[str | None] = Counter()
        for e in events:
            if e.kind == "quiesce.start":
                open_ops[e.vm] += 1
            elif e.kind == "quiesce.end":
                open_ops[e.vm] -= 1
        if any(open_ops[self._moref(vm)] > 0 for vm in names.values()):
            return  # a quiesce operation still runs (a 3.5-era guest the host stopped waiting for)
        logs: dict[tuple[str, str], list[str]] = {}
        for vm, log in expected:
            data = self._read_guest(vm, log)
            if data is None:
                return  # frozen or gone: compare at the next job
            logs[(vm, log)] = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
        self._log_mark = len(events)
        for (vm, log), lines in logs.items():
            got = lines[self._log_lines.get((vm, log), 0):]
            self._log_lines[(vm, log)] = len(lines)
            want = expected[(vm, log)]
            if (vm, "*") in unknown:
                continue
            self.occasion("SCR-ARG-EXACT", len(want))
            if [g.casefold() for g in got] != [w.casefold() for w in want]:
                why = (f"the scripts of {vm} recorded {got} in {log}, but the guest agent traced {want}: the "
                       "scripts' own record is what ran, with which argument")
                raise ConformanceViolation("SCR-ARG-EXACT", why, witness=tuple(runs.get(vm, [])[:4]),
                                           vm=self._moref(vm))

    @abstractmethod
    def _vm_names(self) -> Sequence[str]:
        """Supplied by the route (in process or over the wire)."""


def _first_echo(text: str) -> tuple[str, str] | None:
    """``(tag, log path)`` of a script whose first action logs its argument, else ``None``."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.casefold().startswith(("@echo off", "rem ", "#")):
            continue
        m = _ECHO_ARG.match(line)
        return (m["tag"], m["log"]) if m else None
    return None
