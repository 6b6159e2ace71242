"""Evidence, not silence: which rules a case and a run actually exercised.

A rule that never had an occasion in a run was not judged, however green the run looks: a
product that refuses every file-level job "passes" every file rule. So the kit counts, for
every rule, its *occasions*: the events (or the suite's own data checks) that gave the rule
something to decide, as Hypothesis' statistics count what a test did. Every rule of every case
is then either

- **exercised** ``n`` times (``n`` occasions; a pass means it held on every one), or
- **not applicable**, with the reason: the host profile (the rule's ``profiles``), the product's
  declaration (``Capabilities``: "the product declared no file-level support"), or
- **not exercised**: applicable, yet nothing in the run gave it an occasion. A ``certify`` run
  with such a rule is not a certification (``judge_evidence``).

The occasions are counted from the trace the host, the guest and the product recorded
(``occasions``), independently of the checker that judges them: they say what happened, not
what was concluded. The suite adds the occasions only it sees (``CMT-BACKUP-CONTENT``: a
backup's content compared with the snapshot; ``FILE-WINDOWS-ONLY``: a file-level job asked of a
Linux guest ...) with ``Scenario.occasion``.

Every rule of the catalogue has an occasion here; ``tests/unit/conformance/test_evidence.py``
keeps the two in step (a new rule needs a line in ``_TRACE_OCCASIONS`` or ``SUITE_OCCASIONS``).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vcbsim.simulator import Event

from ._capabilities import Capabilities
from ._rules import RULES

__all__ = [
    "SUITE_OCCASIONS",
    "Evidence",
    "occasions",
    "not_applicable",
    "content_source",
    "merge_counts",
    "evidence_case",
]

#: Rules whose occasions only the suite sees (its data checks and the jobs it asks), with
#: what an occasion is; ``Scenario.occasion(rule)`` counts them.
SUITE_OCCASIONS: dict[str, str] = {
    "CMT-DATA": "the live guest compared, after a job, with every write the kit made",
    "CMT-BACKUP-CONTENT": "a successful job's backup compared with the disks or files as of its snapshot",
    "IMG-LEVEL-CONTENT": "an incremental or differential image backup restored and compared with its snapshot",
    "FILE-WINDOWS-ONLY": "a file-level job asked of a non-Windows guest",
    "BK-DIFF-SINCE-FULL": ("a differential file backup completed after a full one, judged on JobResult.copied "
                           "(the trace's own occasions: its events list the files it copied)"),
    "BK-INCR-SINCE-LAST": ("an incremental file backup completed after a full or incremental one, judged on "
                           "JobResult.copied (the trace's own occasions: its events list the files it copied)"),
    "EV-DECLARED-WORKS": "a job within the declaration asked in a case with no fault armed",
    "EV-OUTCOME-TRUE": "a job's reported outcome compared with the host's facts",
    "RST-DISKS-EQUAL": "a whole-VM restore's disks compared with the backup's snapshot (check_restored_disks)",
    "RST-VMX-KEPT": "a whole-VM restore's .vmx settings compared with the backup's and those asked",
    "IMG-CONFIG": "an image backup restored by the product's restore and its configuration files compared",
    "IMG-NO-UNSNAPSHOTTED": "an image backup of a VM with independent disks or physical RDMs compared with them",
    "IMG-SAYS-UNSNAPSHOTTED": "an image backup that left out disks no snapshot covers, its result read",
}

#: rules about several scripts of one phase (their order, the ones after a failure)
_SEVERAL_SCRIPTS = frozenset({"SCR-ORDER-FREEZE", "SCR-ORDER-THAW", "SCR-ORDER-FREEZEFAIL", "SCR-FREEZE-STOP",
                              "SCR-ONE-AT-A-TIME"})
_QUIESCE_RULES = ("WF-1a", "WF-1d", "WF-1e", "QSC-", "SCR-", "TMO-GUEST-ABORT", "TMO-NEAR-LIMIT")


@dataclass(slots=True)
class _FileJob:
    """One file-level job as its trace shows it (for the BK-* occasions)."""

    level: str | None = None
    files: bool = False  # a ``files`` list on its WF-2 copy's or its own op.ok


def _file_level_end(c: Counter[str], history: dict[str | None, list[str]], vm: str | None, job: _FileJob) -> None:
    """A usable file-level job ended: an incremental or differential whose trace lists the files
    it copied, with a base before it (the seed's bases: the last full for a differential, the
    last full or incremental for an incremental), is an occasion of its BK-* rule, as the trace
    checker judges it (``_check_jobs.JobModel._check_file_level``)."""
    level = job.level or "full"
    earlier = history.setdefault(vm, [])
    if job.files and level in ("differential", "incremental"):
        bases = ("full",) if level == "differential" else ("full", "incremental")
        if any(lv in bases for lv in earlier):
            c["BK-DIFF-SINCE-FULL" if level == "differential" else "BK-INCR-SINCE-LAST"] += 1
    earlier.append(level)


@dataclass(slots=True)
class _Q:
    """One quiesce operation of one VM, as far as it went."""

    args: list[tuple[str, str, Any]] = field(default_factory=list)  # (path, arg, exit code)
    engaged: bool = False


def occasions(events: Iterable[Event]) -> Counter[str]:
    """Occasions per rule in one trace (rules with none are absent)."""
    c: Counter[str] = Counter()
    quiesce: dict[str | None, _Q] = {}
    last_q: dict[str | None, _Q] = {}  # the VM's latest quiesce operation, ended or not
    snaps: dict[str | None, int] = {}
    open_ops: dict[str, Event] = {}
    file_jobs: dict[str, _FileJob] = {}  # the job op's op_id -> its file-level job
    current_file: dict[str | None, _FileJob] = {}  # the VM's running file-level job
    file_history: dict[str | None, list[str]] = {}  # the levels of the VM's usable file-level jobs
    n = 0
    for ev in events:
        n += 1
        k, d, vm = ev.kind, ev.details, ev.vm
        if k == "op.invoke":
            c["TRC-OP-PAIRED"] += 1
            if d.get("op") == "restore-vm" and d.get("target") == "over":
                c["RST-NO-RUNNING-OVERWRITE"] += 1  # a restore that names a VM it may replace
            open_ops[str(d.get("op_id"))] = ev
            if ev.step is None and d.get("op") in ("job", "backup"):
                current_file.pop(vm, None)
                if (d.get("mode") or d.get("type")) == "file":
                    file_jobs[str(d.get("op_id"))] = current_file[vm] = _FileJob(d.get("level"))
            elif ev.step == "WF-2" and vm in current_file and current_file[vm].level is None:
                current_file[vm].level = d.get("level") or d.get("kind")
            if ev.step in ("WF-1", "WF-1b"):
                c["WF-ORDER"] += 1
                c["WF-ONE-JOB"] += 1
            if ev.step == "WF-2":
                c["WF-2"] += 1
            if ev.step == "WF-3b":
                c["WF-3b"] += 1
        elif k in ("op.ok", "op.fail", "op.info"):
            began = open_ops.pop(str(d.get("op_id")), None)
            fjob = file_jobs.pop(str(d.get("op_id")), None)
            if k == "op.ok" and isinstance(d.get("files"), list) and began is not None and vm in current_file \
                    and (fjob is not None or began.step == "WF-2"):
                current_file[vm].files = True
            if fjob is not None:
                if current_file.get(vm) is fjob:
                    del current_file[vm]
                if k == "op.ok" or (k == "op.fail" and d.get("usable") is True):
                    _file_level_end(c, file_history, vm, fjob)
            if began is not None and began.details.get("op") == "restore-vm":
                c["RST-NO-HALF-VM"] += int(k == "op.fail")  # the failure a half-made VM would follow
            elif began is not None and began.details.get("op") == "restore-files" and k == "op.ok":
                c["RST-FILES-EXACT"] += 1
            if k == "op.info":
                c["TMO-RESOLVE-UNKNOWN"] += 1
        elif k == "crash":
            c["TMO-RESOLVE-UNKNOWN"] += 1  # every operation the crash cut short ended unknown
        elif k == "snapshot.create.start":
            c["WF-1b"] += 1
            c["WF-SNAPSHOT-NAME"] += 1
        elif k == "snapshot.create":
            snaps[vm] = snaps.get(vm, 0) + 1
            c["CLN-NO-SNAPSHOT-LEFT"] += 1
            if vm in quiesce:
                c["QSC-UNQUIESCE"] += int(quiesce[vm].engaged)
        elif k in ("snapshot.create.fail", "snapshot.rollback"):
            c["QSC-APPFAULT"] += int(k == "snapshot.create.fail")
            q = quiesce.get(vm) or last_q.get(vm)
            if k == "snapshot.rollback" or (q is not None and q.engaged):
                c["QSC-SNAPSHOT-FAIL-FREEZEFAIL"] += 1  # the snapshot itself failed while quiesced
        elif k == "snapshot.remove":
            if snaps.get(vm, 0) > 1:
                c["CMT-OWN-SNAPSHOT"] += 1  # another snapshot on the VM: the job had to pick its own
            snaps[vm] = max(0, snaps.get(vm, 0) - 1)
            c["CMT-CONSOLIDATE"] += 1
            c["WF-3b"] += 1
        elif k == "host.call.refused":
            if d.get("method") == "ConsolidateVMDisks_Task" or d.get("parameter") == "consolidate":
                c["CMT-CONSOLIDATE"] += 1
        elif k == "disk.export":
            c["WF-1c"] += 1
            c["WF-1f"] += 1
            c["IMG-ALL-DISKS"] += 1
        elif k == "mount":
            c["WF-1f"] += 1
            c["WF-1c"] += 1
            c["CLN-NO-MOUNT-LEFT"] += 1
            if d.get("kind") == "file" or d.get("letter") is not None:
                c["FILE-JUNCTION"] += 1
                c["FILE-NO-LETTERLESS"] += 1
            elif d.get("kind") == "fullvm":
                c["IMG-ALL-DISKS"] += 1
        elif k == "unmount":
            c["WF-3a"] += 1
        elif k == "nfc.lease" and d.get("state") == "initializing":
            c["TR-NFC-LEASE-END"] += 1
        elif k == "disk.hotadd":
            c["TR-HOTADD-DETACH"] += 1
        elif k == "quiesce.start":
            quiesce[vm] = last_q[vm] = _Q()
            c["QSC-END"] += 1
            layout = str(d.get("layout", ""))
            c["SCR-LAYOUT-LEGACY" if layout == "legacy" else "SCR-LAYOUT-DIR"] += 1
            if d.get("timeout"):
                c["TMO-NEAR-LIMIT"] += 1
        elif k == "script.run" and vm in quiesce:
            q = quiesce[vm]
            arg = str(d.get("arg", ""))
            q.args.append((str(d.get("path", "")), arg, d.get("exit_code")))
            c["SCR-ARG-EXACT"] += 1
            c["SCR-ONE-AT-A-TIME"] += int(len(q.args) > 1)
            c["SCR-LEGACY-PLACEMENT"] += int(bool(d.get("legacy")))
            if arg == "freeze":
                c["WF-1a"] += 1
                if d.get("exit_code") not in (0, None):
                    c["SCR-FREEZE-STOP"] += 1
                    c["SCR-FREEZEFAIL-NO-SNAPSHOT"] += 1
                    c["SCR-FREEZEFAIL-NOT-FAILED"] += 1
                    c["QSC-REPORT-FAILURE"] += 1
            elif arg == "thaw":
                c["WF-1e"] += 1
                c["SCR-THAW-ALL"] += 1
            elif arg == "freezeFail":
                c["SCR-FREEZEFAIL-REVERSE"] += 1
        elif k == "quiesce.engage" and vm in quiesce:
            quiesce[vm].engaged = bool(d.get("ok", True))
            if not d.get("ok", True):
                c["QSC-ENGAGE-FAIL"] += 1
                c["QSC-REPORT-FAILURE"] += 1
        elif k == "quiesce.disengage":
            c["WF-1d"] += 1
        elif k == "quiesce.abort":
            c["TMO-GUEST-ABORT"] += 1
            c["QSC-REPORT-FAILURE"] += 1
        elif k == "quiesce.end":
            q = quiesce.pop(vm, _Q())
            for arg, rule in (("freeze", "SCR-ORDER-FREEZE"), ("thaw", "SCR-ORDER-THAW"),
                              ("freezeFail", "SCR-ORDER-FREEZEFAIL")):
                c[rule] += int(sum(1 for a in q.args if a[1] == arg) > 1)
    if n:
        c["TRC-WELL-FORMED"] += 1
        c["TRC-CONSUMED"] += 1
    return +c


def not_applicable(caps: Capabilities, host_profile: str, *, change_tracking: bool = True,
                   proxy_faults: bool = True, abort_timer: bool = True, restore: bool = True,
                   unsnapshotted: bool = True) -> dict[str, str]:
    """Rules that do not apply to this product on this host profile, each with the reason.
    ``proxy_faults``: the kit can inject faults into the product's own steps (in process it
    always can; over the wire only when the product declares ``proxy_faults``).
    ``unsnapshotted``: the run's inventory has a VM with disks no snapshot covers
    (``_check_disks``; the in-process kit's has)."""
    out: dict[str, str] = {}
    for rid, rule in RULES.items():
        if host_profile not in rule.profiles:
            out[rid] = f"the rule describes host profiles {', '.join(rule.profiles)}, not {host_profile}"
        elif rid in _SEVERAL_SCRIPTS and host_profile == "esx-3.5u1":
            out[rid] = ("on ESX 3.5 U1 only the single legacy pre-freeze and post-thaw scripts run (seed Table 2-3): "
                        "there is no order among scripts and no later script to stop")
        elif rule.family == "FILE" and not caps.file:
            out[rid] = "the product declared no file-level support"
        elif rid == "FILE-WINDOWS-ONLY" and "linux" not in caps.guest_families:
            out[rid] = "the product declared no support for Linux guests"
        elif rule.family == "FILE" and "windows" not in caps.guest_families:
            out[rid] = "the product declared no support for Windows guests (file-level backups are Windows-only)"
        elif rid == "BK-INCR-SINCE-LAST" and "incremental" not in caps.file_levels:
            out[rid] = "the product declared no incremental file-level backups"
        elif rid == "BK-DIFF-SINCE-FULL" and "differential" not in caps.file_levels:
            out[rid] = "the product declared no differential file-level backups"
        elif rule.family == "IMAGE" and not caps.image:
            out[rid] = "the product declared no image-level support"
        elif rid == "IMG-LEVEL-CONTENT" and set(caps.image_levels) <= {"full"}:
            out[rid] = "the product declared no incremental or differential image-level backups"
        elif rid == "IMG-CONFIG" and not (caps.restore or caps.wire_restore or caps.backup_root):
            out[rid] = ("the product declared neither a restore (Capabilities.restore or wire_restore) nor where its "
                        "backups land (Capabilities.backup_root): the kit compares the configuration files of what "
                        "it restores or wrote, and has none")
        elif rid == "IMG-CONFIG" and not restore and not caps.backup_root:
            out[rid] = ("over the wire the kit drives only restores a product declares (Capabilities.wire_restore) "
                        "and gives commands for (CommandAdapter.restore), and reads the image exports a product "
                        "writes under a declared backup root (Capabilities.backup_root); it has neither")
        elif rid in ("IMG-NO-UNSNAPSHOTTED", "IMG-SAYS-UNSNAPSHOTTED") and not unsnapshotted:
            out[rid] = ("the run's inventory has no VM with an independent disk or a physical RDM "
                        "(the in-process kit's host has one: _check_disks)")
        elif rid == "IMG-LEVEL-CONTENT" and not change_tracking:
            out[rid] = f"host profile {host_profile} has no changed block tracking"
        elif rid == "TMO-NEAR-LIMIT" and not abort_timer:
            out[rid] = (f"the Tools of host profile {host_profile} have no guest abort timer (added in 2010, "
                        "open-vm-tools 7c7a38862): there is no limit to come near")
        elif rule.family == "RESTORE" and not caps.wire_restore:
            out[rid] = "the product declared no restore over the wire (whole VM, files into a guest)"
        elif rid == "TR-NFC-LEASE-END" and not set(caps.transports) & {"nfc", "nbd", "nbdssl"}:
            out[rid] = "the product declared no NFC transport (nfc, or VCB's nbd / nbdssl)"
        elif rid == "TR-HOTADD-DETACH" and "hotadd" not in caps.transports:
            out[rid] = "the product declared no hot-add transport"
        elif rid.startswith(_QUIESCE_RULES) and not caps.quiesces:
            out[rid] = "the product declared crash-consistent backups: it never asks for quiescing"
        elif rid == "TMO-RESOLVE-UNKNOWN" and not (proxy_faults or caps.proxy_faults):
            out[rid] = ("its occasions (an operation of the product that ends unknown, e.g. after a crash) "
                        "need faults injected into the product's own steps, which it did not declare")
    return out


def content_source(caps: Capabilities, *, wire: bool = False) -> str:
    """How the run judged backup content (results.json ``evidence.content``): from what the kit
    read itself (the product's restore, or what it wrote under its backup root: ``_restored``),
    or only from the digests the product reports, saying what that leaves unread."""
    if caps.restore and not wire:
        return ("read by the kit from the product's own restore (Capabilities.restore): disks, files and "
                "configuration files compared with the snapshot")
    if caps.backup_root:
        if wire:
            return (f"read by the kit from what the product wrote under its backup root ({caps.backup_root}): "
                    "file-level backups restored through the seed's chains, full image exports against the host's "
                    "capture of the snapshot (disks and configuration files); incremental and differential image "
                    "backups were judged on the disks it reports")
        return (f"read by the kit from what the product wrote under its backup root ({caps.backup_root}): file-level "
                "backups restored through the seed's chains, full image backups with their configuration files; "
                "incremental and differential image backups were judged on the disks it reports")
    return ("NOT read from what the product wrote: it declared neither a restore (Capabilities.restore) nor where "
            "its backups land (Capabilities.backup_root, JobResult.location), so CMT-BACKUP-CONTENT, "
            "IMG-LEVEL-CONTENT, BK-INCR-SINCE-LAST and BK-DIFF-SINCE-FULL were judged only on the digests it "
            "reports (JobResult.files, disks, copied; the files on its events), and IMG-CONFIG not at all")


def merge_counts(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for p in parts:
        total.update({k: int(v) for k, v in p.items()})
    return dict(sorted(total.items()))


@dataclass(frozen=True, slots=True)
class Evidence:
    """The evidence of one run: the declaration, occasions per rule (summed over its cases),
    the rules not applicable and why, and the applicable rules nothing exercised."""

    declaration: Mapping[str, Any]
    exercised: Mapping[str, int]
    not_applicable: Mapping[str, str]
    unexercised: tuple[str, ...]
    jobs: Mapping[str, int] = field(default_factory=dict)
    #: how backup content was judged (``content_source``): read by the kit, or only reported
    content: str = ""

    @classmethod
    def of(cls, caps: Capabilities, host_profile: str, counts: Sequence[Mapping[str, int]],
           jobs: Mapping[str, int] | None = None, *, proxy_faults: bool = True, restore: bool = True,
           unsnapshotted: bool = True, wire: bool = False, unjudged: Mapping[str, str] | None = None) -> Evidence:
        from vcbsim.simulator import get_profile

        hp = get_profile(host_profile)
        na = not_applicable(caps, host_profile, change_tracking=hp.change_tracking, proxy_faults=proxy_faults,
                            abort_timer=bool(getattr(hp, "guest_abort_timer", True)), restore=restore,
                            unsnapshotted=unsnapshotted)
        ex = merge_counts(counts)
        ex = {r: n for r, n in ex.items() if r in RULES}
        for r, why in (unjudged or {}).items():  # its occasions came, but the kit could not judge them
            if r in RULES and r not in na and not ex.get(r):
                na[r] = why
        missing = tuple(r for r in RULES if r not in na and not ex.get(r))
        return cls(caps.to_dict(), ex, na, missing, dict(jobs or {}), content_source(caps, wire=wire))

    def to_dict(self) -> dict[str, Any]:
        return {
            "declaration": dict(self.declaration),
            "exercised": dict(self.exercised),
            "not_applicable": dict(self.not_applicable),
            "unexercised": list(self.unexercised),
            "jobs": dict(self.jobs),
            **({"content": self.content} if self.content else {}),
        }

    def table(self) -> list[str]:
        """One line per rule: ``RULE  n`` exercised, ``n/a (reason)``, ``NOT EXERCISED``."""
        width = max(len(r) for r in RULES)
        lines = []
        for rid in RULES:
            if rid in self.not_applicable:
                lines.append(f"  {rid:<{width}}  n/a: {self.not_applicable[rid]}")
            elif self.exercised.get(rid):
                lines.append(f"  {rid:<{width}}  {self.exercised[rid]:>6}")
            else:
                lines.append(f"  {rid:<{width}}  NOT EXERCISED")
        return lines


def evidence_case(evidence: Evidence, caps: Capabilities, host_profile: str, *, certify: bool) -> Any:
    """The run-level case the evidence adds to a complete run, or ``None`` when it adds none:

    - FAIL ``EV-DECLARED-WORKS`` when a declared mode and level was asked and never succeeded
      (a product that refuses every file-level job while declaring file-level support);
    - in ``certify``, ERROR (not judged, so not a certification) when a rule that applies to the
      declaration was never exercised, or a declared mode and level was never asked.
    """
    from vcbsim.simulator import get_profile

    from ._report import CaseResult

    cbt = get_profile(host_profile).change_tracking
    never_ok, never_asked = [], []
    for mode in ("fullvm", "file"):
        for level in caps.levels(mode):
            if mode == "fullvm" and level != "full" and not cbt:
                continue  # asked as full where the host cannot track changes
            key = f"{mode}/{level}"
            if not evidence.jobs.get(f"asked.{key}"):
                never_asked.append(key)
            elif not evidence.jobs.get(f"ok.{key}"):
                never_ok.append(f"{key} ({evidence.jobs[f'asked.{key}']} asked)")
    if never_ok:
        why = (f"the product declares {', '.join(k.split(' ')[0] for k in never_ok)} backups, but not one such job "
               f"succeeded in the run: {', '.join(never_ok)}; a declared capability must be shown to work "
               "(declare only what the product does)")
        return CaseResult("evidence", "fail", message=why, rules=("EV-DECLARED-WORKS",),
                          violations=({"rule": "EV-DECLARED-WORKS", "severity": "fail", "vm": None,
                                       "explanation": why, "witness": []},))
    if certify and (evidence.unexercised or never_asked):
        parts = []
        if evidence.unexercised:
            parts.append(f"{len(evidence.unexercised)} rule(s) that apply to the declaration were never exercised: "
                         + ", ".join(evidence.unexercised))
        if never_asked:
            parts.append("declared jobs never asked: " + ", ".join(never_asked))
        return CaseResult("evidence", "error", message="not a certification: " + "; ".join(parts)
                          + " (see the evidence table; a product that reports no content, e.g. no "
                          "JobResult.files / copied, leaves the content rules without an occasion)")
    return None
