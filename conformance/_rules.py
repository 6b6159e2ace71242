"""The rule catalogue: every checkable statement of the seed workflow and of the quiescing spec.

Each ``Rule`` has a stable id, a one-line title, RFC 2119 text, the source it is derived from
(``seed WF-3b`` for the seed's step 3b, ``spec R26/F1`` for the quiescing spec), the kit version
that introduced it, the host profiles it applies to, its family, and which part of the kit
checks it (``trace``: the trace checker; ``suite``: the state machine's data checks).

``docs/rules.md`` is generated from this module (``python -m vcbsim.conformance.rules_doc``);
a test keeps the two equal. Ids never change meaning; a rule that is withdrawn keeps its id.

>>> RULES["WF-3a"].level
'MUST'
>>> get_rule("WF-3a").family
'WF'
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ._errors import InvalidDefinition

__all__ = [
    "Rule",
    "RULES",
    "FAMILIES",
    "HOST_PROFILES",
    "KIT_VERSION",
    "get_rule",
    "rules_for",
]

KIT_VERSION = "0.1.0"
HOST_PROFILES: tuple[str, ...] = ("esx-3.5u1", "esx-3.5u2", "esxi-7.0")
_ALL = HOST_PROFILES
#: The VCB era (ESX 3.5, API 2.5): VCB 1.5's own limits (snapshot name, Windows-only file level,
#: one job per VM) describe these hosts, not VADP-era products on later ones.
_VCB = ("esx-3.5u1", "esx-3.5u2")
#: Tools of 2010 and later (open-vm-tools 7c7a38862 added the guest abort timer).
_TOOLS_2010 = ("esxi-7.0",)

#: Families, in the order the docs list them.
FAMILIES: dict[str, str] = {
    "WF": "the seed's workflow order (steps 1a to 3b)",
    "SCRIPT": "custom quiescing scripts: discovery, order, arguments, failure handling",
    "QUIESCE": "SYNC driver / VSS quiescing around the snapshot",
    "COMMIT": "taking the VM out of snapshot mode and committing the redo log",
    "IMAGE": "image-level (full VM) backups",
    "FILE": "file-level backups of Windows guests, full, differential and incremental",
    "CLEANUP": "nothing left behind: snapshots, mounts, frozen guests",
    "TIMEOUT": "timers and operations whose outcome is unknown",
    "TRACE": "the trace itself: complete, well formed, fully consumed by the model",
    "EVIDENCE": "what the product declares and reports, against what the host saw happen",
    "RESTORE": "restores over the wire: a whole VM (new or over the original) and files into a guest",
    "TRANSPORT": "how the proxy reads the snapshot's disks: NFC export leases, disks hot-added to the proxy VM",
}

Level = Literal["MUST", "MUST NOT", "SHOULD", "SHOULD NOT"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One conformance rule. Frozen: the catalogue is data."""

    id: str
    title: str
    text: str
    source: str
    family: str
    level: Level = "MUST"
    since: str = KIT_VERSION
    profiles: tuple[str, ...] = _ALL
    checked_by: tuple[str, ...] = ("trace",)
    #: the inputs that tell a correct implementation from a plausible wrong one (docs/rules.md)
    discriminating: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            msg = f"rule {self.id} family"
            raise InvalidDefinition(
                msg, expected="one of " + ", ".join(FAMILIES), got=self.family
            )
        if self.level not in self.text:
            msg = f"rule {self.id} text"
            raise InvalidDefinition(
                msg,
                expected=f"RFC 2119 text containing its level {self.level!r}",
                got=self.text,
            )
        unknown = [p for p in self.profiles if p not in HOST_PROFILES]
        if unknown:
            msg = f"rule {self.id} profiles"
            raise InvalidDefinition(
                msg, expected="names from " + ", ".join(HOST_PROFILES), got=unknown
            )

    @property
    def severity(self) -> Literal["fail", "warn"]:
        """``fail`` for MUST / MUST NOT, ``warn`` for SHOULD / SHOULD NOT."""
        return "fail" if self.level.startswith("MUST") else "warn"


def _r(*rules: Rule) -> dict[str, Rule]:
    out: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in out:
            msg = "rule id"
            raise InvalidDefinition(msg, expected="a unique id", got=rule.id)
        out[rule.id] = rule
    return out


RULES: dict[str, Rule] = _r(
    # ------------------------------------------------------------------ WF: the seed's order
    Rule("WF-1a", "Pre-freeze scripts run before quiescing",
         "Custom pre-freeze scripts MUST run, each with `freeze`, before the guest is quiesced "
         "(step 1a before 1b); no `freeze` script may run once the SYNC driver or VSS is engaged.",
         "seed WF-1a; seed scripts step 1", "WF"),
    Rule("WF-1b", "No silent downgrade to a crash-consistent backup",
         "A quiesced snapshot MUST be created only while the guest is quiesced, and a job MUST "
         "NOT report a backup from an unquiesced snapshot as a normal one: quiescing is "
         "\"(Optional)\" (seed scripts step 2), so a job configured crash-consistent, or of a "
         "VM that cannot be quiesced (its quiesced snapshot failed or came back unquiesced), may "
         "use an unquiesced snapshot when its result says so (`consistency: crash` on its "
         "`op.ok`); a job that asked for quiescing, saw it fail and reports the crash-consistent "
         "backup as a quiesced one fails.",
         "seed WF-1b; seed scripts steps 2-3; vSphere API CreateSnapshot_Task (quiesce is "
         "ignored without Tools); fidelity review D7", "WF",
         discriminating="a freeze script that fails (the quiesced snapshot fails, a retry without "
         "quiescing must be announced); `engage-fails`; a job configured crash-consistent; a product "
         "declaring quiesced backups whose job takes an unquiesced snapshot without trying"),
    Rule("WF-1c", "Data is read from the snapshot",
         "Every disk read made for a backup MUST be made as of a snapshot that exists at that "
         "moment (step 1c, snapshot mode); reading the live disk or a removed snapshot is a "
         "violation.",
         "seed WF-1c", "WF"),
    Rule("WF-1d", "The guest is unquiesced after the snapshot",
         "The guest MUST be unquiesced (SYNC driver or VSS disengaged) after the snapshot is "
         "created and before post-thaw scripts run (step 1d).",
         "seed WF-1d; seed scripts step 4", "WF"),
    Rule("WF-1e", "Post-thaw scripts run after unquiescing",
         "Post-thaw scripts with `thaw` MUST run only after the snapshot exists and the guest is "
         "unquiesced (step 1e).",
         "seed WF-1e; seed scripts step 5", "WF"),
    Rule("WF-1f", "The snapshot is exposed only once it exists and the guest is thawed",
         "The proxy MUST export or mount the snapshot (step 1f) only after it exists and after "
         "the guest-side quiesce operation (steps 1a-1e) has ended.",
         "seed WF-1f", "WF"),
    Rule("WF-2", "The copy reads an exposed, existing snapshot",
         "The backup copy (step 2) MUST start only while the job's snapshot exists and has been "
         "exported or mounted (step 1f), and a job MUST NOT report success without a copy.",
         "seed WF-2", "WF"),
    Rule("WF-3a", "Unmount before commit",
         "Every volume or export of the snapshot MUST be unmounted from the proxy (step 3a) "
         "before the snapshot is removed and its redo log committed (step 3b).",
         "seed WF-3a", "WF"),
    Rule("WF-3b", "Commit only after the copy ended",
         "The snapshot MUST NOT be removed (step 3b) while a copy of it (step 2) is still "
         "running.",
         "seed WF-3b", "WF"),
    Rule("WF-ORDER", "Steps in the seed's order",
         "Within one job the proxy MUST invoke the seed's steps in order (1, 1a-1f, 2, 3, 3a, 3b) "
         "and MUST NOT go back to an earlier step once a later one began.",
         "seed WF-1..WF-3", "WF"),
    Rule("WF-ONE-JOB", "One backup job per VM at a time",
         "A proxy MUST NOT run two backup jobs (file-level or image-level) of the same VM at "
         "the same time. A VCB 1.5 limit: it applies to the VCB-era profiles only.",
         "spec R60 (VCB 1.5)", "WF", level="MUST NOT", profiles=_VCB),
    Rule("WF-SNAPSHOT-NAME", "The backup snapshot is named _VCB-BACKUP_",
         "On the VCB-era profiles the backup snapshot SHOULD be named `_VCB-BACKUP_`, so that "
         "monitoring finds stale ones (VADP-era products name their own).",
         "spec R59; VCB 1.5 config.js PREEXISTING_VCB_SNAPSHOT", "WF", level="SHOULD", profiles=_VCB),
    # ------------------------------------------------------------------ SCRIPT
    Rule("SCR-ARG-EXACT", "Script arguments are exact",
         "Each quiescing script MUST get exactly one of `freeze`, `thaw` or `freezeFail` "
         "(camel case) as its first argument.",
         "seed Table 2-3; spec R23, Q1", "SCRIPT"),
    Rule("SCR-ORDER-FREEZE", "Freeze scripts run in ascending order",
         "Freeze scripts MUST run in ascending byte-wise (strcmp) order of their paths, the "
         "legacy pre-freeze script first. Stricter than the seed's \"alphabetical\" but what "
         "VMware Tools does (open-vm-tools scriptOps.c, VmBackupStringCompare: strcmp).",
         "seed Table 2-3; spec R21, R23; open-vm-tools scriptOps.c:234-239", "SCRIPT",
         discriminating="names that sort differently by bytes, case and number: `10-x.bat` < "
         "`9-nine.bat` < `B.bat` < `a.bat`; more than nine scripts (`many-scripts`); a script in a "
         "subfolder of backupScripts.d and the legacy pair beside the directory "
         "(`legacy-pair-failure-paths`): judged against the guest's own script list, not the agent's"),
    Rule("SCR-ORDER-THAW", "Thaw scripts run in descending order",
         "Thaw scripts MUST run in descending byte-wise order of their paths, the legacy "
         "post-thaw script last (stricter than the seed's \"alphabetical\", as Tools does).",
         "seed Table 2-3; spec R22, R23; open-vm-tools scriptOps.c", "SCRIPT",
         discriminating="the same names as SCR-ORDER-FREEZE, each run with `thaw`"),
    Rule("SCR-ORDER-FREEZEFAIL", "freezeFail scripts run in descending order",
         "freezeFail scripts MUST run in descending byte-wise order of their paths, the legacy "
         "post-thaw script included and last.",
         "seed Table 2-3; spec R22, R23; open-vm-tools scriptOps.c:476-538", "SCRIPT",
         discriminating="a legacy pair and directory scripts, then an engage failure or a "
         "failing late freeze script"),
    Rule("SCR-FREEZE-STOP", "No freeze script after one failed",
         "Once a freeze script exits non-zero, later freeze scripts MUST NOT run.",
         "spec R26/F1", "SCRIPT", level="MUST NOT"),
    Rule("SCR-FREEZEFAIL-REVERSE", "Scripts before the failed one get freezeFail",
         "After freeze script k fails, exactly the scripts before it (k-1 down to 0) MUST run "
         "with `freezeFail`, in descending order; when the legacy slot exists (a legacy script "
         "is present) and k > 0, the legacy post-thaw script is among them, last.",
         "spec R21, R22, R26/F1; open-vm-tools scriptOps.c:293-296", "SCRIPT",
         discriminating="a failing freeze script after two others; a legacy pair with it"),
    Rule("SCR-FREEZEFAIL-NOT-FAILED", "The failed script gets no freezeFail",
         "The freeze script that failed MUST NOT itself be called with `freezeFail`.",
         "spec R26/F1", "SCRIPT", level="MUST NOT"),
    Rule("SCR-FREEZEFAIL-NO-SNAPSHOT", "A failed pre-freeze script fails the snapshot",
         "If a pre-freeze script exits non-zero, the guest MUST NOT be quiesced and the "
         "quiesced snapshot MUST NOT be created (it fails with ApplicationQuiesceFault).",
         "seed scripts step 1; spec R26, R46", "SCRIPT", level="MUST NOT"),
    Rule("SCR-THAW-ALL", "Every script gets its thaw",
         "After a successful snapshot, every script that ran with `freeze` (and still exists) "
         "MUST run with `thaw`, even when an earlier thaw script failed; the legacy post-thaw "
         "script, when present, runs with `thaw` too.",
         "seed scripts step 5; spec R22, R28/F8", "SCRIPT",
         discriminating="a failing thaw script before others; a legacy post-thaw script"),
    Rule("SCR-ONE-AT-A-TIME", "Scripts run strictly one at a time",
         "A quiescing script MUST NOT start before the previous one has exited.",
         "spec R25", "SCRIPT", level="MUST NOT"),
    Rule("SCR-LEGACY-PLACEMENT", "Legacy scripts keep their slot",
         "The legacy pre-freeze script MUST get only `freeze` and run first; the legacy "
         "post-thaw script MUST get only `thaw` or `freezeFail` and run last.",
         "spec R20, R22", "SCRIPT"),
    Rule("SCR-LAYOUT-LEGACY", "ESX 3.5 U1 runs only the legacy scripts",
         "On ESX Server 3.5 U1 and earlier only the legacy script files (`pre-freeze-script`, "
         "`post-thaw-script`) MUST run; scripts from `backupScripts.d` MUST NOT.",
         "seed Table 2-3", "SCRIPT", profiles=("esx-3.5u1",)),
    Rule("SCR-LAYOUT-DIR", "ESX 3.5 U2 and later run backupScripts.d",
         "On ESX Server 3.5 U2 and later, every non-legacy script that runs in a Windows guest "
         "MUST come from the Tools `backupScripts.d` directory; on 3.5 U2 a Linux (\"Other\") "
         "guest MUST run only `/usr/sbin/pre-freeze-script` and `/usr/sbin/post-thaw-script` "
         "(the directory came to Linux with the Tools of 2010).",
         "seed Table 2-3; spec R19; open-vm-tools 1da06b950; fidelity review D4", "SCRIPT",
         profiles=("esx-3.5u2", "esxi-7.0"),
         discriminating="a Linux guest with a script in /etc/vmware-tools/backupScripts.d on 3.5 U2"),
    # ------------------------------------------------------------------ QUIESCE
    Rule("QSC-ENGAGE-FAIL", "A failed engage skips the snapshot",
         "If engaging the SYNC driver or VSS fails, the quiesced snapshot MUST NOT be created "
         "and every freeze script MUST then run with `freezeFail` (the seed: proceed to step 5).",
         "seed scripts step 2; spec F3, R36", "QUIESCE"),
    Rule("QSC-UNQUIESCE", "Every engage is undone",
         "Once the guest is quiesced it MUST be unquiesced (disengaged or aborted) before the "
         "quiesce operation ends, whether or not the snapshot succeeded.",
         "seed WF-1d; spec F6, ISS-27", "QUIESCE"),
    Rule("QSC-SNAPSHOT-FAIL-FREEZEFAIL", "A failed snapshot gets freezeFail, not thaw",
         "If the quiesced snapshot fails or is rolled back, the scripts MUST run with "
         "`freezeFail`, not `thaw`.",
         "spec F6, F7, R36", "QUIESCE"),
    Rule("QSC-REPORT-FAILURE", "A failed quiesce is reported as failed",
         "A quiesce operation in which a script failed, the engage failed or the timer fired "
         "MUST end with outcome `error` or `aborted`, never `done`.",
         "spec R26, R28, R5", "QUIESCE"),
    Rule("QSC-APPFAULT", "ApplicationQuiesceFault fails the job",
         "When the quiesced snapshot fails (ApplicationQuiesceFault or another snapshot fault), "
         "the job MUST NOT expose, copy or report success from it.",
         "seed scripts step 1; spec R46", "QUIESCE"),
    Rule("QSC-END", "The quiesce operation ends",
         "Every quiesce operation that started MUST end (`quiesce.end`) before the trace ends; "
         "a guest left frozen is a violation.",
         "spec R5, F12", "QUIESCE"),
    # ------------------------------------------------------------------ COMMIT
    Rule("CMT-CONSOLIDATE", "Removing the snapshot commits the redo log",
         "The backup snapshot MUST be removed with consolidation, committing its redo log into "
         "the disks (step 3b). On API 5.0 and later a removal without consolidation MUST be "
         "followed by ConsolidateVMDisks_Task before the job ends; on the API 2.5 profiles "
         "neither the `consolidate` parameter nor ConsolidateVMDisks_Task exists, and a product "
         "relying on them fails.",
         "seed WF-3b; spec R48; vSphere API RemoveSnapshot_Task.consolidate and "
         "ConsolidateVMDisks_Task (since 5.0); fidelity review D6", "COMMIT",
         discriminating="a removal with consolidate=false or ConsolidateVMDisks_Task on esx-3.5u2 (the "
         "simulated 2.5 host refuses the call and records `host.call.refused`, the host's own fact), "
         "and on esxi-7.0 a removal without consolidation followed by ConsolidateVMDisks_Task"),
    Rule("CMT-DATA", "After commit the disks hold every guest write",
         "After the commit the virtual disks MUST hold every write the guest made, including "
         "those made in snapshot mode; the backup snapshot MUST NOT be reverted to.",
         "seed WF-1c, WF-3b", "COMMIT", checked_by=("trace", "suite")),
    Rule("CMT-OWN-SNAPSHOT", "Only the job's own snapshot is removed",
         "A backup job MUST NOT remove snapshots it did not create, other than stale backup "
         "snapshots of earlier jobs (`_VCB-BACKUP_` or the product's own snapshot name) and a "
         "leftover `Consolidate Helper-<n>` of a failed commit.",
         "seed WF-3b; spec R49, F16", "COMMIT", level="MUST NOT",
         discriminating="a user snapshot taken before the backup; a stale backup snapshot of "
         "the product's own name"),
    Rule("CMT-BACKUP-CONTENT", "The backup equals the disks as of the snapshot",
         "The data a backup holds MUST equal the VM's disks (image level) or files (file level) "
         "as of the backup snapshot.",
         "seed WF-2; seed image-level steps 1-2", "COMMIT", checked_by=("suite",)),
    # ------------------------------------------------------------------ IMAGE
    Rule("IMG-ALL-DISKS", "An image backup exports every disk",
         "An image-level backup MUST export every virtual disk of the VM as of the snapshot.",
         "seed image-level step 1; spec R57", "IMAGE"),
    Rule("IMG-LEVEL-CONTENT", "An incremental or differential image restores to the snapshot",
         "After an incremental or differential image-level backup, the image restored from it "
         "(laid over the backups it builds on) MUST equal the VM's disks as of its backup "
         "snapshot: every changed area MUST be taken, as of that snapshot.",
         "spec R51; seed image-level steps 1-2", "IMAGE", checked_by=("suite",)),
    # ------------------------------------------------------------------ FILE
    Rule("FILE-WINDOWS-ONLY", "File-level backups only for Windows guests",
         "On the VCB-era profiles the proxy MUST NOT mount the volumes of a non-Windows guest for "
         "a file-level backup (a VCB 1.5 limit; later products may back up Linux files).",
         "seed types of backups; spec R56", "FILE", level="MUST NOT", profiles=_VCB),
    Rule("FILE-NO-LETTERLESS", "No letterless volume under letters\\",
         "The proxy MUST NOT mount a volume that has no drive letter under `<dest>\\letters\\` "
         "(the junction points are named after drive letters); backing a letterless volume up "
         "elsewhere is allowed: the seed's caution states a limit of the `letters\\` mount, not "
         "a ban.",
         "seed file-level step 1 (caution); spec R56, Q9", "FILE", level="MUST NOT",
         discriminating="the demo's Windows guest has a letterless RECOVERY volume"),
    Rule("FILE-JUNCTION", "Volumes are mounted at letters\\X",
         "Each mounted volume MUST appear at a junction point `<dest>\\letters\\<X>` named after "
         "its drive letter.",
         "seed file-level step 1; spec R56", "FILE"),
    Rule("BK-DIFF-SINCE-FULL", "Differential: changed since the last full",
         "A differential file backup MUST hold every file whose content changed since the last "
         "full file backup of the VM (missing one is data loss), and MUST NOT hold a file whose "
         "content and metadata are both unchanged since then (the seed's \"only\"); a file "
         "whose metadata alone changed (rewritten, same bytes) may be included or left out.",
         "seed types of backups", "FILE",
         discriminating="a full, an incremental, then a differential: the differential must "
         "also hold what the incremental held; two differentials in a row (`file-backup-awkward-names`)"),
    Rule("BK-INCR-SINCE-LAST", "Incremental: changed since the last backup",
         "An incremental file backup MUST hold every file whose content changed since the last "
         "full or incremental file backup of the VM (a differential is not a base; a failed job "
         "is a base only when its result says the backup is usable: `usable: true`), and MUST "
         "NOT hold a file unchanged in both content and metadata since then; a file whose "
         "metadata alone changed may be included.",
         "seed types of backups (\"since the last backup, whether the last backup was full or "
         "incremental\")", "FILE",
         discriminating="a differential or a failed job between two incrementals (one failed before "
         "its copy, one after it: `failed-jobs-between-incrementals`); a byte-identical rewrite"),
    # ------------------------------------------------------------------ CLEANUP
    Rule("CLN-NO-SNAPSHOT-LEFT", "No backup snapshot is left behind",
         "When the trace ends, every snapshot a backup job created MUST have been removed or "
         "rolled back, also after failures.",
         "seed WF-3b; spec F16, R59", "CLEANUP"),
    Rule("CLN-NO-MOUNT-LEFT", "No mount is left behind",
         "When the trace ends, every export or volume mounted on the proxy MUST have been "
         "unmounted, also after failures.",
         "seed WF-3a; spec F16", "CLEANUP"),
    # ------------------------------------------------------------------ TIMEOUT
    Rule("TMO-GUEST-ABORT", "The guest abort timer is honoured",
         "When a quiesce operation outlives its abort timer (default 900 s), the guest MUST "
         "abort within one poll tick: no `thaw` script, snapshot or successful end after it. "
         "The timer came with the Tools of 2010; the 3.5-era guest had none.",
         "spec R15, F9, T16; open-vm-tools 7c7a38862 (2010)", "TIMEOUT", profiles=_TOOLS_2010,
         discriminating="a freeze script slower than the timer; a snapshot slower than the timer; the "
         "timer judged from the guest's configuration and era, not from the one the agent announces"),
    Rule("TMO-RESOLVE-UNKNOWN", "Unknown outcomes are resolved",
         "After an operation ends with an unknown outcome (`op.info`), the proxy SHOULD query "
         "the host before the job ends, so that no snapshot or mount may be left behind. A "
         "snapshot step (WF-1, WF-3b) that ended `op.info` is resolved by a later snapshot step "
         "of the job (a check, a retry, a cleanup) or by the `op.info` saying what the proxy "
         "found (`resolved`, or the `snapshot` it found).",
         "kit (Jepsen history model)", "TIMEOUT", level="SHOULD",
         discriminating="a commit fault (`snapshot.remove` TaskInProgress) that a proxy records "
         "as an unknown outcome; a proxy crash between steps (the next run must resolve)"),
    Rule("TMO-NEAR-LIMIT", "Steps stay clear of the timeout",
         "A quiesce operation SHOULD NOT use more than 80 % of its abort timer for the guest "
         "agent's own work: the time the scripts ran and the host's snapshot creation are not "
         "the agent's and are left out.",
         "spec R15; kit (wpt: flag steps close to a timeout)", "TIMEOUT", level="SHOULD NOT",
         discriminating="a guest agent slow to engage VSS in a run without slow scripts; freeze "
         "scripts of 700 s and close to the timer (their time is the scripts', not the agent's)"),
    # ------------------------------------------------------------------ TRACE
    Rule("TRC-WELL-FORMED", "The trace is well formed",
         "Event sequence numbers MUST increase by one from 0, and virtual time MUST NOT go "
         "backwards.",
         "kit (trace.schema.json)", "TRACE"),
    Rule("TRC-OP-PAIRED", "Every operation completes once",
         "Every `op.invoke` MUST be followed by exactly one `op.ok`, `op.fail` or `op.info` "
         "with the same `op_id`, and no completion may lack its invoke.",
         "kit (Jepsen history model)", "TRACE"),
    Rule("TRC-CONSUMED", "The model places every event",
         "Every event MUST fit the reference model (no unmount of an unknown path, no removal "
         "of an unknown snapshot, no guest event outside a quiesce operation); a trace the "
         "model cannot fully consume never passes.",
         "kit (TLA+ trace validation)", "TRACE"),
    # ------------------------------------------------------------------ EVIDENCE
    Rule("EV-DECLARED-WORKS", "A declared capability works",
         "A job the product declares it can do (its `Capabilities`) MUST succeed when no fault is "
         "armed, and every declared mode and level MUST succeed at least once in a run.",
         "kit (declared capabilities); seed types of backups", "EVIDENCE", since="0.2.0",
         checked_by=("suite",)),
    Rule("EV-OUTCOME-TRUE", "A reported success is what happened",
         "A job MUST NOT report success when the host shows otherwise: its backup snapshot still "
         "on the VM, or a fault in one of its steps with no backup content to show for it.",
         "seed WF-2, WF-3b", "EVIDENCE", since="0.2.0", checked_by=("suite",)),
    # ------------------------------------------------------------------ RESTORE (issue 16)
    Rule("RST-DISKS-EQUAL", "A restored VM's disks equal the backup's snapshot",
         "After a whole-VM restore every disk of the restored VM MUST read, byte for byte, as the "
         "backed-up disk did as of the backup snapshot, whatever the guest wrote since.",
         "seed WF-1c, WF-2 (the backup is the snapshot's data); issue 16", "RESTORE", since="0.3.0",
         checked_by=("suite",),
         discriminating="guest writes after the backup (a restore of the live disk or of a later "
                        "backup would hold them); two disks of different sizes"),
    Rule("RST-VMX-KEPT", "A restored VM keeps its settings, or takes those asked",
         "A restored VM's `.vmx` settings (memory, CPUs, guest OS, extra settings) MUST be the "
         "backed-up VM's, except those the restore was asked to change, which MUST be as asked; "
         "a restore as a new VM MUST NOT keep the original's BIOS uuid.",
         "issue 16; vSphere (a copied VM gets a new uuid.bios)", "RESTORE", since="0.3.0",
         checked_by=("suite",),
         discriminating="a restore asked to change memsize, beside settings it must keep"),
    Rule("RST-FILES-EXACT", "A file restore writes exactly the chosen files and says what it overwrote",
         "A restore of files into a guest MUST write exactly the files it reports (`written`), all "
         "under the path it was asked for, and MUST report as `overwritten` exactly those that "
         "were already in the guest.",
         "issue 16", "RESTORE", since="0.3.0",
         discriminating="a chosen folder beside files outside it; one file present in the guest, "
                        "one deleted since the backup"),
    Rule("RST-NO-RUNNING-OVERWRITE", "A restore never overwrites a powered-on VM",
         "A restore over an existing VM MUST NOT destroy, unregister, power off or change the disks "
         "of that VM while it is powered on: it fails and leaves the VM as it was.",
         "issue 16; vSphere (Destroy_Task and UnregisterVM refuse a powered-on VM)", "RESTORE",
         since="0.3.0",
         discriminating="a restore over the original while it runs (a product that powers it off "
                        "first would pass a check of the host's refusals alone)"),
    Rule("RST-NO-HALF-VM", "A failed restore leaves no half-made VM",
         "A whole-VM restore that fails MUST leave no VM it created or registered during it "
         "registered on the host; one over an existing (powered-off) VM that fails MUST leave that "
         "VM registered with the data it had.",
         "issue 16; vSphere (CreateVM_Task / RegisterVM_Task are all or nothing: a fault leaves "
         "nothing of the call)", "RESTORE",
         since="0.3.0", checked_by=("trace", "suite"),
         discriminating="a restore that fails after the VM was created (its data upload fails); "
                        "faults of the restore calls: RegisterVM_Task, CreateVM_Task, a disk copy, an "
                        "upload whose datastore fills part way or whose connection is lost (the "
                        "exploration's fault_during_restore)"),
    # ------------------------------------------------------------------ TRANSPORT
    Rule("TR-NFC-LEASE-END", "An NFC export lease ends before the commit",
         "An export lease on the job's VM (`ExportSnapshot` / `ExportVm` -> `HttpNfcLease`) MUST "
         "be completed (`HttpNfcLeaseComplete`) or aborted (`HttpNfcLeaseAbort`) before the proxy "
         "removes the backup snapshot (step 3b), and before the job ends: while the lease is "
         "held the host blocks the VM's operations, the commit among them (API reference, "
         "HttpNfcLease), and a lease left to time out holds the VM for its timeout.",
         "seed WF-3a, WF-3b; vSphere API HttpNfcLease (since 4.0), ExportSnapshot (5.5)", "TRANSPORT",
         since="0.2.0", profiles=("esxi-7.0",),
         discriminating="a backup through an export lease (`-m nfc`) whose commit comes before "
         "HttpNfcLeaseComplete"),
    Rule("TR-HOTADD-DETACH", "Hot-added disks are removed from the proxy before the commit",
         "Every disk of the backup snapshot hot-added to the proxy VM MUST be removed from it "
         "(step 3a, the successor of the seed's unmount) before the proxy removes the snapshot "
         "(step 3b), and before the job ends: an attached base disk is locked, and the commit "
         "fails with FileLocked, leaving the VM needing consolidation (7.0) or a Consolidate "
         "Helper snapshot (3.5).",
         "seed WF-3a, WF-3b (\"mounts ... on the VCB proxy\"); VCB 1.5 -m hotadd; KB 1004790", "TRANSPORT",
         since="0.2.0",
         discriminating="a backup through hot-added disks (`-m hotadd`) whose commit comes before "
         "the disks are removed from the proxy VM"),
    # ------------------------------------------------------------------ restored and observed
    # (what the product's restore gives back, and what its proxy's file system shows)
    Rule("IMG-CONFIG", "An image backup restores the VM's configuration",
         "The configuration an image-level backup restores to MUST be the VM's as of the backup "
         "snapshot: its `.vmx` holds every setting the host's `.vmx` had, with the same value, and "
         "no other (a disk's `fileName` may name the backed-up disk instead of the snapshot's redo "
         "log: the export is a consistent VM); a `.vmsd` or `.nvram` it backs up equals the host's. "
         "Judged on what the product's restore gives: its files (route 1, `restore`), or the VM it "
         "restores over the original with no setting asked (`wire_restore`, both routes; `vc.uuid`, "
         "`uuid.location` and `sched.swap.derivedName` are the registering host's).",
         "seed image-level step 1 (the export holds the .vmx with the disks); spec R57", "IMAGE",
         since="0.2.0", checked_by=("suite",),
         discriminating="the demo VM's .vmx has a network, a guest OS, two disks on one controller "
         "and its uuids: a proxy that drops or rewrites a line gives another configuration; the "
         "snapshot's redo-log names, which an export rewrites to the base disks"),
    # ------------------------------------------------------------------ disks no snapshot covers
    # (independent disks and physical RDMs: ``_check_disks``)
    Rule("IMG-NO-UNSNAPSHOTTED", "An image backup holds no disk the snapshot does not cover",
         "An image-level backup MUST NOT present data the backup snapshot does not cover as part of "
         "the snapshot: an independent disk (`independent_persistent`, `independent_nonpersistent`) "
         "or a physical-mode RDM, which a snapshot leaves out and which read as of the snapshot is "
         "the live disk, is left out of the backup.",
         "API enum VirtualDiskMode (2.0: \"not affected by snapshots\"); ESX Server \"Using Raw "
         "Device Mapping\" (no redo log in physical compatibility mode); VADP products (IBM Spectrum "
         "Protect vmprocessvmwithindependent / vmprocessvmwithprdm)", "IMAGE", level="MUST NOT",
         since="0.3.0", checked_by=("suite",),
         discriminating="a VM with a disk, an independent_persistent disk, a physical and a virtual "
         "RDM, each written while the snapshot exists: a proxy that exports every disk holds the "
         "live ones; the virtual RDM must be backed up like a disk"),
    Rule("IMG-SAYS-UNSNAPSHOTTED", "An image backup names the disks it left out",
         "An image-level backup that leaves out disks the snapshot does not cover SHOULD say which "
         "(`JobResult.details[\"excluded_disks\"]`: their keys), so that whoever restores it knows "
         "those disks must be recreated.",
         "IBM Spectrum Protect vmprocessvmwithindependent (\"Independent disks must be manually "
         "recreated on a restored machine\")", "IMAGE", level="SHOULD", since="0.3.0",
         checked_by=("suite",),
         discriminating="the same VM: a proxy that leaves the disks out silently"),
)


#: The discriminating inputs of the rules whose entry above does not name them: what the
#: kit's scenarios and exploration (``_explore``) do so that a plausible wrong implementation
#: gives a different trace (docs/rules.md lists them with each rule).
_DISCRIMINATING: dict[str, str] = {
    "WF-1a": "two directory scripts and the legacy pair in the Windows guest (the demo), so a "
             "provider engaged before them shows",
    "WF-1c": "two disks of different sizes (8 and 4 GiB); guest writes made in snapshot mode "
             "(`during`), which a live-disk read would contain",
    "WF-1d": "a VSS guest (10 s hold-writes window) and a SYNC-driver guest",
    "WF-1e": "thaw scripts in both guests; a failing thaw script",
    "WF-1f": "a slow snapshot (`snapshot.create` delay) so the quiesce operation is still open "
             "when an eager proxy exposes",
    "WF-2": "jobs with faults after the snapshot (`fault_after_snapshot`)",
    "WF-3a": "file-level jobs (one mount per lettered volume) and image jobs (one export)",
    "WF-3b": "a copy fault; a commit fault (`snapshot.remove` TaskInProgress) twice in a row",
    "WF-ORDER": "every job runs all steps; a fault in each step after the snapshot",
    "WF-SNAPSHOT-NAME": "a user snapshot (`before-upgrade`) beside the backup snapshot",
    "WF-ONE-JOB": "file-level and image-level jobs of the same VM back to back",
    "SCR-ARG-EXACT": "a failing freeze script after others (`freezeFail` arguments)",
    "SCR-FREEZE-STOP": "a failing freeze script with later scripts (`freeze-script-fails`)",
    "SCR-FREEZEFAIL-NOT-FAILED": "a failing freeze script that is not the first",
    "SCR-FREEZEFAIL-NO-SNAPSHOT": "a freeze script exiting 3, and one exiting 1 (each traced status judged "
    "against the script's own text); an unlaunchable `notes.txt` in backupScripts.d",
    "SCR-ONE-AT-A-TIME": "scripts that sleep (2 s, 700 s)",
    "SCR-LEGACY-PLACEMENT": "the legacy pair together with directory scripts, in both guests",
    "SCR-LAYOUT-LEGACY": "the demo's directory scripts on esx-3.5u1",
    "QSC-ENGAGE-FAIL": "`quiesce.engage` SystemError (`engage-fails`)",
    "QSC-UNQUIESCE": "a snapshot that fails while the guest is frozen (NoDiskSpace)",
    "QSC-SNAPSHOT-FAIL-FREEZEFAIL": "a snapshot that fails while frozen; a thaw that fails (rollback)",
    "QSC-REPORT-FAILURE": "a failing thaw script (the snapshot is kept, the operation is an error)",
    "QSC-APPFAULT": "a failing freeze script, then a job that must not go on",
    "QSC-END": "every failure path of the quiesce operation, then a further job of the same VM",
    "CMT-DATA": "guest writes in snapshot mode (`during`) that must survive the commit",
    "CMT-BACKUP-CONTENT": "guest writes in snapshot mode, which a backup of live files would contain; "
    "file names that are not ASCII, long, or six folders deep, an empty file and a file deleted since "
    "the full (`file-backup-awkward-names`); restored files' modification times; a disk that ends "
    "inside a 64 KiB grain, written there (`image-partial-grain`); a slow snapshot (`slow-snapshot`)",
    "IMG-ALL-DISKS": "a VM with two disks of different sizes",
    "IMG-LEVEL-CONTENT": "a full, incrementals and a differential image on esxi-7.0 with writes between",
    "FILE-WINDOWS-ONLY": "a file-level job of the Linux guest (`file-level-linux-refused`)",
    "FILE-JUNCTION": "two lettered volumes (C:, D:) and a letterless one",
    "CLN-NO-SNAPSHOT-LEFT": "a commit fault twice in a row, a proxy crash after the snapshot",
    "CLN-NO-MOUNT-LEFT": "an unmount fault; a proxy crash after the expose",
    "TRC-WELL-FORMED": "recorded traces (check-trace); the host's own trace cannot break it",
    "TRC-OP-PAIRED": "a crash in the middle of a job",
    "TRC-CONSUMED": "cleanup of leftovers from a crashed run (unmounts of earlier mounts)",
}
RULES = {rid: replace(r, discriminating=r.discriminating or _DISCRIMINATING.get(rid, "")) for rid, r in RULES.items()}


def get_rule(rule_id: str) -> Rule:
    """The rule with this id; a clear error lists close ids when it does not exist."""
    try:
        return RULES[rule_id]
    except KeyError:
        import difflib

        same_case = [r for r in RULES if r.upper() == str(rule_id).upper()]
        close = same_case or difflib.get_close_matches(str(rule_id), list(RULES), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see docs/rules.md for the catalogue"
        msg = "rule id"
        raise InvalidDefinition(msg, expected="an id from the catalogue", got=rule_id, hint=hint) from None


def rules_for(profile: str) -> list[Rule]:
    """The rules that apply to one host profile, in catalogue order."""
    if profile not in HOST_PROFILES:
        msg = "host profile"
        raise InvalidDefinition(msg, expected="one of " + ", ".join(HOST_PROFILES), got=profile)
    return [r for r in RULES.values() if profile in r.profiles]
