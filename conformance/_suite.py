"""The conformance suite: drive an implementation against a fresh simulated host, check
every step, shrink failures to a short step list.

``run(adapter_factory, profile=...)`` is the certification entry point (Hypothesis'
``run_conformance_test`` idea). A vendor adds one test::

    from vcbsim.conformance import run
    def test_conformance():
        run(MyOrchestrator, profile="certify")

Each case is a list of ``Step``s applied to a ``Scenario``: one simulated host (the demo
inventory: a Windows guest with C:, D: and a letterless volume, a Linux guest), one adapter,
guest writes, quiescing scripts, fault rules and backup jobs. After every job the scenario
checks

- the trace so far (``check_trace``, open-ended: leftovers a failed job *tried* to remove,
  or left by an injected crash, may wait for the next run);
- the data: the backup holds the guest's files as of the snapshot (CMT-BACKUP-CONTENT; for
  an incremental or differential image backup, the image restored through its chain:
  IMG-LEVEL-CONTENT), and the live guest still holds every write, including those made in
  snapshot mode (CMT-DATA);

and at the end (``finish``) faults are disarmed, every VM gets one clean run (which must also
clean up whatever an earlier failure left, spec F16), and the whole trace is checked with
nothing left behind.

Order of a run: saved failures from the replay directory first, then the built-in scenarios
(one per documented failure path), then Hypothesis' random exploration
(``RuleBasedStateMachine``). The seed, the kit and Hypothesis versions are printed; a
failure prints a pasteable pytest function and is saved to the replay directory.

Image levels: a ``backup`` step may ask for an ``incremental`` or ``differential`` image
(``fullvm``) backup. The orchestrator is asked for that level only when it declares it
(``image_levels``, ``_adapters.image_levels``); otherwise the job is asked as a ``full`` one, as a
product without changed block tracking would do it. The exploration draws image levels only
on host profiles with changed block tracking (``esxi-7.0``) and for orchestrators that declare
them.

Profiles (``KIT_PROFILES``): ``quick`` (a few examples, for every commit), ``dev`` (more, and
expectation files allowed), ``certify`` (many; refuses skips, filters and expectation files),
``teach`` (few, printing every step and the trace).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from vcbsim.simulator import Event

from ._adapters import BackupPolicy, JobResult, Orchestrator, call_adapter, image_levels
from ._capabilities import capabilities_of
from ._check_disks import UNSNAPSHOTTED_VM, add_unsnapshotted_vm, judge_unsnapshotted
from ._checker import CheckReport
from ._errors import (
    AdapterError,
    ConformanceViolation,
    FlakyAdapterError,
    InvalidDefinition,
    KitError,
)
from ._evidence import Evidence, evidence_case, merge_counts, occasions
from ._explore import _machine, explored_image_levels, restore_every
from ._guestfacts import GuestFacts
from ._judge import ScenarioBase, norm_path
from ._observed import ProxyFolder, junction_problem
from ._report import CaseResult, RunInfo, new_run_info, warning_rules, write_bundle
from ._restored import WrittenChain, backup_entries, locate, restored_files
from ._rules import HOST_PROFILES, KIT_VERSION

__all__ = [
    "KitProfile",
    "KIT_PROFILES",
    "Step",
    "Scenario",
    "SCENARIOS",
    "RunResult",
    "run",
    "pytest_source",
]

WINDOWS_VM = "win2003-sql"
#: a VM whose one disk is not a whole number of 64 KiB grains (64 MiB and three sectors, as a
#: converted appliance image often is), with data in its last, partial grain: a product that
#: reads whole grains only loses it (``image-partial-grain``)
PARTIAL_GRAIN_VM = "appliance-odd"
_PARTIAL_CAPACITY = (64 << 20) + 3 * 512
LINUX_VM = "rhel5-web"
VMS = (WINDOWS_VM, LINUX_VM)
WIN_SCRIPTS = "C:\\Program Files\\VMware\\VMware Tools\\backupScripts.d"


@dataclass(frozen=True, slots=True)
class KitProfile:
    """One named run mode."""

    name: str
    max_examples: int
    step_count: int
    allow_expectations: bool = False
    allow_skips: bool = False
    verbose: bool = False
    #: stop at the first failing case (quick feedback); certify always runs every case
    fail_fast: bool = False


KIT_PROFILES: dict[str, KitProfile] = {
    p.name: p
    for p in (
        KitProfile("quick", max_examples=8, step_count=6, allow_skips=True, fail_fast=True),
        KitProfile("dev", max_examples=40, step_count=10, allow_expectations=True, allow_skips=True),
        KitProfile("certify", max_examples=120, step_count=15),
        KitProfile("teach", max_examples=2, step_count=5, allow_skips=True, verbose=True, fail_fast=True),
    )
}


# ----------------------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True)
class Step:
    """One action of a case: ``op`` is a ``Scenario`` method, ``args`` its keyword arguments."""

    op: str
    args: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, op: str, **args: Any) -> Step:
        if op not in _STEP_OPS:
            msg = "step op"
            raise InvalidDefinition(msg, expected="one of " + ", ".join(_STEP_OPS), got=op)
        return cls(op, tuple(args.items()))

    def code(self) -> str:
        """The step as a line of Python against a ``Scenario`` named ``s``."""
        return f"s.{self.op}(" + ", ".join(f"{k}={v!r}" for k, v in self.args) + ")"

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "args": dict(self.args)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Step:
        def tup(v: Any) -> Any:
            return tuple(tup(x) for x in v) if isinstance(v, list | tuple) else v

        args = {k: tup(v) for k, v in dict(d.get("args", {})).items()}
        return cls.of(str(d["op"]), **args)


_STEP_OPS = ("write", "delete", "add_script", "remove_script", "arm_fault", "user_snapshot", "backup", "restore")


# ----------------------------------------------------------------------------- scenario


_norm = norm_path
#: seconds: FAT keeps modification times to 2 s (a restored time may be that far from the write)
_MTIME_SLACK = 2.0 + 1e-6


def _stamp(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
#: host events at which the kit looks at the proxy's mount root (besides every proxy event)
_LOOK_AT = frozenset({"snapshot.create.start", "snapshot.create", "snapshot.remove", "snapshot.rollback"})


def _add_partial_grain_vm(host: Any) -> None:
    """``PARTIAL_GRAIN_VM``: data at the start of its disk and in the partial grain at its end."""
    vm = host.add_vm(PARTIAL_GRAIN_VM, os_family="linux", disks=[_PARTIAL_CAPACITY])
    disk = vm.disks[0].disk
    disk.write(0, b"appliance boot block".ljust(512, b"\0"))
    disk.write(_PARTIAL_CAPACITY - 1024, b"appliance trailer: last partial grain".ljust(1024, b"\xa5"))


def _script_path(name: str) -> tuple[str, str]:
    """The guest and path of an ``add_script`` name: a bare name is in the Windows guest's
    backupScripts.d, an absolute path is where it says (``/...``: the Linux guest)."""
    if name.startswith("/"):
        return LINUX_VM, name
    if name[1:3] == ":\\":
        return WINDOWS_VM, name
    return WINDOWS_VM, f"{WIN_SCRIPTS}\\{name}"


def script_text(name: str, exit_code: int = 0, sleep: float = 0.0, phase: str = "") -> str:
    """The ``.bat`` quiescing script an ``add_script`` step installs: it logs its argument to
    ``C:\\vcb-quiesce.log``, then sleeps and exits as asked, in ``phase`` only when one is given
    (the script language: ``simulator/tools/_script.py``)."""
    tag = f"[{phase}] " if phase else ""
    lines = ["@echo off", f"echo {name} %1 >> C:\\vcb-quiesce.log"]
    if sleep:
        lines.append(f"{tag}sleep {sleep:g}")
    if exit_code:
        lines.append(f"{tag}exit {exit_code}")
    return "\r\n".join(lines) + "\r\n"


class Scenario(ScenarioBase):
    """One simulated host, one orchestrator, and the steps applied so far.

    Every method is one step and is recorded (``steps``), so a failing case prints as a
    pasteable test. Violations raise ``ConformanceViolation`` (FAIL); adapter misbehaviour
    raises ``AdapterError`` (ERROR). What is judged after each job beyond the trace, and the
    declaration gate, are ``ScenarioBase``'s (``_judge.py``), shared with the wire route.
    """

    def __init__(
        self,
        adapter_factory: Callable[[], Orchestrator],
        *,
        host_profile: str = "esx-3.5u2",
        seed: int = 0,
        guest_agent_factory: Callable[[Any], Any] | None = None,
        out: TextIO | None = None,
    ) -> None:
        from vcbsim.reference import InProcessHostClient
        from vcbsim.simulator import Host

        if host_profile not in HOST_PROFILES:
            msg = "host profile"
            raise InvalidDefinition(msg, expected="one of " + ", ".join(HOST_PROFILES), got=host_profile)
        self.host_profile = host_profile
        self.host = Host.demo(host_profile, seed=seed)
        #: the guest's own facts about quiescing, read with the simulator's Tools (the model,
        #: kept before a vendor's agent replaces them): ``_guestfacts``
        models = {vm.moref: vm.tools for vm in self.host.vms.values() if vm.tools is not None}
        self.guest_facts = GuestFacts(models, self.host.profile, self._vm_name)
        if guest_agent_factory is not None:
            for vm in self.host.vms.values():
                if vm.tools is not None:
                    vm.tools = guest_agent_factory(vm.tools)
        self.client = InProcessHostClient(self.host)
        try:
            self.adapter = adapter_factory()
        except Exception as exc:
            msg = f"adapter factory {adapter_factory!r} raised {type(exc).__name__}: {exc}"
            raise AdapterError(msg, operation="factory") from exc
        #: what the product declares (``Capabilities``); jobs outside it are not asked
        self.caps = capabilities_of(self.adapter)
        if "hotadd" in self.caps.transports:
            self._add_proxy_vm()
        add_unsnapshotted_vm(self.host)  # independent disks and RDMs (IMG-NO-UNSNAPSHOTTED)
        _add_partial_grain_vm(self.host)
        #: the image-backup levels the orchestrator declares (others are asked as full)
        self.image_levels = image_levels(self.adapter)
        self.out = out
        self._init_case()
        self.statistics: dict[str, int] = {"jobs": 0, "jobs_ok": 0, "faults_armed": 0, "writes": 0}
        self._during: list[tuple[str, str, str]] = []
        self._scripts: set[str] = set()
        self._user_snapshots: set[tuple[str, str]] = set()
        self._busy: str | None = None
        self._snap_digests: dict[str, dict[int, str]] = {}
        #: the VM's configuration files as of each snapshot (IMG-CONFIG): .vmx, .vmsd
        self._snap_config: dict[str, dict[str, str]] = {}
        self._restore_dir: Any = None
        #: the proxy's mount root, looked at by the kit (``_observed``); None: not declared
        root = getattr(self.adapter, "mount_root", None) or self.caps.mount_root
        self.folder: ProxyFolder | None = ProxyFolder(Path(root)) if root else None
        #: where the product writes its backups (``_restored``: the kit reads them); None: not declared
        written = getattr(self.adapter, "backup_root", None) or self.caps.backup_root
        self.backup_root: Path | None = Path(written) if written else None
        self._written = WrittenChain()
        #: what the kit could not read of what the product wrote, per job
        self.notes_written: list[str] = []
        #: what the folder held at each snapshot removal (WF-3a)
        self._held_at_remove: dict[int, frozenset[str]] = {}
        self._unsubscribe = self.host.trace.subscribe(self._on_event)

    def _add_proxy_vm(self) -> None:
        """A product that hot-adds gets a proxy VM in the inventory, marked as such
        (``simulator/_hotadd.py``); the scenarios never back it up (``VMS``)."""
        from vcbsim.simulator._hotadd import mark_proxy

        vm = self.host.add_vm("vcb-proxy", os_family="windows", disks=[64 << 20])
        mark_proxy(self.host, vm)

    # -- host access (ScenarioBase) ----------------------------------------------------
    def _events(self) -> Sequence[Event]:
        return self.host.trace.events

    def _read_guest(self, vm: str, path: str) -> bytes | None:
        try:
            return bytes(self.host.guest_fs(vm).read_bytes(path))
        except Exception:  # noqa: BLE001 - frozen guest, no such file: nothing to read now
            return None

    def _snapshot_ids(self, vm: str) -> set[str]:
        return {str(getattr(s, "moref", s.id)) for s in self.host.find_vm(vm).snapshots()}

    def _family(self, vm: str) -> str:
        return str(self.host.find_vm(vm).os_family)

    def _moref(self, vm: str) -> str | None:
        return str(self.host.find_vm(vm).moref)

    def _vm_names(self) -> Sequence[str]:
        return VMS

    def _tools_answer(self, vm: str) -> bool:
        tools = self.host.find_vm(vm).tools
        return tools is not None and getattr(tools, "state", "") == "running" and \
            self.host.find_vm(vm).power_state == "poweredOn"

    def _vm_name(self, moref: str | None) -> str:
        vm = self.host.vms.get(str(moref)) if moref is not None else None
        return f"{moref} ({vm.name!r})" if vm is not None else str(moref)

    def _checked_events(self) -> Sequence[Event]:
        """The trace, each quiesce operation's abort timer as the guest's facts give it when
        the agent announced a longer one (``GuestFacts.timers``)."""
        import dataclasses

        events = self.host.trace.events
        timers = self.guest_facts.timers
        if not timers:
            return events
        return [dataclasses.replace(e, details={**e.details, "timeout": timers[e.seq]}) if e.seq in timers else e
                for e in events]

    def _raise_guest_facts(self) -> None:
        problem = self.guest_facts.take()
        if problem is not None:
            raise problem

    # -- steps ------------------------------------------------------------------------
    def write(self, vm: str, path: str, text: str) -> None:
        """The guest writes a file (between jobs)."""
        self._record(Step.of("write", vm=vm, path=path, text=text))
        self._guest_write(vm, path, text)

    def _guest_write(self, vm: str, path: str, text: str) -> None:
        from vcbsim.simulator import StateError

        try:
            fs = self.host.guest_fs(vm)
        except StateError:
            return  # a frozen guest holds its writes; the workload retries later
        sep = "\\" if "\\" in path else "/"
        parts = path.split(sep)[:-1]
        for i in range(2, len(parts) + 1):  # every missing folder, outermost first
            parent = sep.join(parts[:i])
            if len(parent) > 2 and not fs.exists(parent):
                fs.mkdir(parent)
        fs.write_bytes(path, text.encode())
        self.statistics["writes"] += 1

    def delete(self, vm: str, path: str) -> None:
        """The guest deletes a file (between jobs): a later incremental or differential must not
        bring it back (CMT-BACKUP-CONTENT judges the restore against the guest)."""
        from vcbsim.simulator import StateError

        self._record(Step.of("delete", vm=vm, path=path))
        try:
            fs = self.host.guest_fs(vm)
        except StateError:
            return
        if fs.exists(path):
            fs.delete(path)

    def add_script(self, name: str, exit_code: int = 0, sleep: float = 0.0, phase: str = "") -> None:
        """Install a quiescing script in the Windows guest's backupScripts.d; ``name`` may also
        be an absolute guest path (a legacy script, ``C:\\Windows\\pre-freeze-script.bat``; a
        Linux one, ``/usr/sbin/post-thaw-script``), installed in that guest."""
        self._record(Step.of("add_script", name=name, exit_code=exit_code, sleep=sleep, phase=phase))
        vm, path = _script_path(name)
        fs = self.host.guest_fs(vm)
        sep = "/" if vm == LINUX_VM else "\\"
        parts = path.split(sep)[:-1]
        for i in range(2, len(parts) + 1):  # backupScripts.d, and a subfolder of it (spec R21)
            folder = sep.join(parts[:i])
            if len(folder) > 2 and not fs.exists(folder):
                fs.mkdir(folder)
        fs.write_bytes(path, script_text(name.rsplit(sep, 1)[-1], exit_code, sleep, phase).encode())
        self._scripts.add(name if vm == LINUX_VM else name.casefold())  # Windows names are case-insensitive
        # a failing, slow or unlaunchable script is a fault: a failed job then proves nothing
        unlaunchable = vm == WINDOWS_VM and not path.lower().endswith((".bat", ".cmd"))
        self.disturbed = self.disturbed or bool(exit_code or sleep) or unlaunchable

    def remove_script(self, name: str) -> None:
        self._record(Step.of("remove_script", name=name))
        vm, path = _script_path(name)
        fs = self.host.guest_fs(vm)
        if fs.exists(path):
            fs.delete(path)
        self._scripts.discard(name if vm == LINUX_VM else name.casefold())

    def arm_fault(self, operation: str, target: str = "*", fault: str | None = None, delay: float = 0.0,
                  exit_code: int | None = None, times: int = 1) -> None:
        """Arm one fault rule on the host (``vcbsim.simulator.FaultRule``)."""
        self._record(Step.of("arm_fault", operation=operation, target=target, fault=fault, delay=delay,
                             exit_code=exit_code, times=times))
        self.host.add_fault(operation=operation, target=target, fault=fault, delay=delay, exit_code=exit_code,
                            times=times, label=f"kit:{operation}")
        self.statistics["faults_armed"] += 1
        self.disturbed = True

    def user_snapshot(self, vm: str, name: str = "before-upgrade") -> None:
        """The VM's administrator takes a snapshot of their own; backups must leave it alone."""
        self._record(Step.of("user_snapshot", vm=vm, name=name))
        self.host.create_snapshot(vm, name, quiesce=False)
        self._user_snapshots.add((vm, name))

    def backup(self, vm: str, mode: str = "fullvm", level: str = "full",
               during: tuple[tuple[str, str], ...] = ()) -> JobResult | None:
        """Run one job through the adapter; ``during``: guest writes made once the snapshot is
        exposed (the VM keeps running in snapshot mode, seed step 2). Then check. An image
        ``level`` the orchestrator does not declare (``image_levels``) is asked as ``full``."""
        from vcbsim.simulator import SimulatedCrash

        self._record(Step.of("backup", vm=vm, mode=mode, level=level, during=tuple(tuple(d) for d in during)))
        asked = self.gate(vm, mode, level)
        if asked is None:
            return None
        policy = BackupPolicy(mode, asked)  # type: ignore[arg-type]
        mark = len(self.host.trace)
        before = backup_entries(self.backup_root) if self.backup_root is not None else set()
        self._during = [(vm, p, t) for p, t in during]
        self._busy = self.host.find_vm(vm).moref
        self.statistics["jobs"] += 1
        result: JobResult | None
        try:
            result = call_adapter(self.adapter, self.client, vm, policy)
        except SimulatedCrash:
            result = None
        finally:
            self._during = []
            self._busy = None
        if result is not None:
            self.results.append(result)
            self.statistics["jobs_ok"] += int(result.ok)
        self.check(open_ended=True)
        self._raise_guest_facts()
        if result is not None and result.ok:
            self._judge_folder(vm, policy, mark)
        if result is not None:
            result = self._restored(vm, policy, result, mark, before)
        self._check_data(vm, policy, result, mark)
        self.judge_job(vm, policy, result, mark)
        return result

    def restore(self, vm: str, kinds: tuple[str, ...] | None = None) -> None:
        """Back ``vm`` up, let the guest write, and ask the product's restore over the wire
        (a declared ``wire_restore``): judged on the RESTORE rules (``_scenario_restore``);
        ``kinds``: which restores (default all, ``RESTORE_KINDS``)."""
        from ._scenario_restore import RESTORE_KINDS, run_restore_step

        self._record(Step.of("restore", vm=vm) if kinds is None else Step.of("restore", vm=vm, kinds=tuple(kinds)))
        run_restore_step(self, vm, RESTORE_KINDS if kinds is None else tuple(kinds))
        self._rebase_guest_logs()

    def _rebase_guest_logs(self) -> None:
        """After a restore the guests' disks hold what the backup held, the scripts' log files
        included (a restore over the original brings back the log as it was): the comparison of
        the scripts' own record (``_judge_guest_log``) starts again from the log as it is now;
        runs it had not compared yet are not compared."""
        from ._judge import _first_echo

        events = self.host.trace.events
        self._log_mark = len(events)
        found = {log for _vm, log in self._log_lines}
        for path in {str(e.details.get("path", "")) for e in events if e.kind == "script.run"}:
            # the VM that ran it may be gone (a restore over it registers a new one): its guest
            # is the one whose paths look like it
            data = self._read_guest(LINUX_VM if path.startswith("/") else WINDOWS_VM, path)
            echo = _first_echo(data.decode("utf-8", "replace")) if data is not None else None
            if echo is not None:
                found.add(echo[1])
        for vm, log in {(vm, log) for vm in VMS for log in found}:
            data = self._read_guest(vm, log)
            lines = data.decode("utf-8", "replace").splitlines() if data is not None else []
            self._log_lines[(vm, log)] = sum(1 for ln in lines if ln.strip())

    # -- the proxy's file system, observed (``_observed``) --------------------------------
    def _judge_folder(self, vm: str, policy: BackupPolicy, mark: int) -> None:
        """A successful job judged from what appeared and disappeared under the proxy's mount
        root (``_observed``), whatever its ``mount`` / ``unmount`` events said."""
        folder = self.folder
        if folder is None:
            return
        folder.observe(len(self.host.trace))
        events = self.host.trace.events
        vmobj = self.host.find_vm(vm)
        mine = folder.since(mark)
        if not mine:
            return
        made = [e for e in events[mark:] if e.kind == "snapshot.create" and e.vm == vmobj.moref]
        removed = [e for e in events[mark:] if e.kind == "snapshot.remove" and e.vm == vmobj.moref]
        for path in mine:
            self.occasion("WF-1f")
            seen = folder.first_seen[path]
            if made and seen < made[0].seq:
                why = (f"{folder.display(path)} appeared on the proxy (seen at #{seen}) before the job's snapshot of "
                       f"{vm} existed (#{made[0].seq}); a mount or export exposes the snapshot, so it comes after it "
                       "(step 1f)")
                raise ConformanceViolation("WF-1f", why, witness=(events[seen], made[0]), vm=vmobj.moref)
            for rm in removed:
                self.occasion("WF-3a")
                if path in self._held_at_remove.get(rm.seq, frozenset()):
                    why = (f"{folder.display(path)} was still on the proxy when the snapshot of {vm} was removed "
                           f"(#{rm.seq}); the mounts go before the commit (step 3a before 3b)")
                    raise ConformanceViolation("WF-3a", why, witness=(rm,), vm=vmobj.moref)
            self.occasion("CLN-NO-MOUNT-LEFT")
            if path in folder.present:
                said = [e for e in events[mark:] if e.kind == "unmount" and e.vm == vmobj.moref
                        and str(e.details.get("path", "")).replace("\\", "/").endswith(path)]
                how = (f"the product announced its unmount (#{said[0].seq}) but the folder is still there" if said
                       else "nothing removed it")
                why = (f"the job of {vm} reported success, but {folder.display(path)}, which it mounted (seen at "
                       f"#{seen}), is still on the proxy: {how}; a job leaves no mount behind (steps 3a, F16)")
                raise ConformanceViolation("CLN-NO-MOUNT-LEFT", why, witness=tuple(said[:1]) or (events[seen],),
                                           vm=vmobj.moref)
            if policy.mode == "file" and "/letters/" in path:
                self._judge_junction(vm, folder, path, events[seen])

    def _judge_junction(self, vm: str, folder: ProxyFolder, path: str, seen: Event) -> None:
        """A ``letters\\<X>`` junction the kit saw: X is a drive letter of the VM (FILE-JUNCTION);
        a name that is no letter at all, on a VM with letterless volumes, is one of those
        mounted under ``letters\\`` (FILE-NO-LETTERLESS)."""
        self.occasion("FILE-JUNCTION")
        self.occasion("FILE-NO-LETTERLESS")
        volumes = self.host.guest_fs(vm).volumes
        problem = junction_problem(path, (str(v.letter) for v in volumes if v.letter), any(not v.letter for v in volumes))
        if problem is not None:
            raise ConformanceViolation(problem[0], f"the file-level mount of {vm} made {folder.display(path)}: "
                                       + problem[1], witness=(seen,), vm=self.host.find_vm(vm).moref)

    # -- the product's restore (Capabilities.restore) -----------------------------------
    def _restored(self, vm: str, policy: BackupPolicy, result: JobResult, mark: int,
                  before: set[str] | None = None) -> JobResult:
        """A product that declares a restore is judged on what it restores: its restore of this
        job's backup is read by the kit, whose data replaces what the result reports (the
        data checks then compare it with the snapshot), and an image backup's configuration
        files are compared with the host's as of the snapshot (IMG-CONFIG; ``_restored``)."""
        import dataclasses
        import shutil
        import tempfile

        usable = result.ok or result.details.get("usable") is True
        restore = getattr(self.adapter, "restore", None)
        if not self.caps.restore and self.backup_root is not None and usable:
            return self._written_backup(vm, policy, result, mark, before or set())
        if not (self.caps.restore and usable and result.backup_id is not None and callable(restore)):
            return result
        snap = self.job_snapshot(vm, mark)
        if snap is None:
            return result
        if self._restore_dir is None:
            from ._adapters import _scratch_dir

            self._restore_dir = tempfile.TemporaryDirectory(prefix="vcbsim-restore-", dir=_scratch_dir())
        target = Path(self._restore_dir.name) / f"backup-{len(self.results)}"
        moref = self.host.find_vm(vm).moref
        try:
            restore(self.client, vm, result.backup_id, target)
        except Exception as exc:
            why = (f"the product declares a restore (Capabilities.restore), but restoring backup {result.backup_id} of "
                   f"{vm} failed: {type(exc).__name__}: {exc}")
            raise ConformanceViolation("EV-DECLARED-WORKS", why, witness=(snap,), vm=moref) from exc
        try:
            if policy.mode == "file":
                self._judge_restored_times(vm, target, snap)
                return dataclasses.replace(result, files=restored_files(target))
            disks = self._restored_image(vm, target, snap)
            return dataclasses.replace(result, disks=disks)
        finally:
            shutil.rmtree(target, ignore_errors=True)

    def _judge_restored_times(self, vm: str, target: Path, snap: Event) -> None:
        """A file the product restores has the modification time the guest's file had at the
        snapshot (FAT keeps it to 2 s): a restore that loses it is not the guest as of the
        snapshot, and the next incremental of a restored guest copies every file again
        (CMT-BACKUP-CONTENT; judged only from the product's restore, ``Capabilities.restore``)."""
        moref = self.host.find_vm(vm).moref
        written: dict[str, float] = {}
        for e in self.host.trace.events[: snap.seq]:
            if e.vm == moref and e.kind == "guest.write":
                written[_norm(str(e.details["path"]))] = e.time
            elif e.vm == moref and e.kind == "guest.delete":
                written.pop(_norm(str(e.details["path"])), None)
        if not target.is_dir():
            return
        try:  # a restore with other content is the content check's to report (judge_job), first
            check_backup_content(self.model(vm, snap.seq), restored_files(target), _norm, level="", vm=vm, snap=snap,
                                 moref=moref)
        except ConformanceViolation:
            return
        self.occasion("CMT-BACKUP-CONTENT")
        for letter_dir in sorted(p for p in target.iterdir() if p.is_dir()):
            for path in sorted(letter_dir.rglob("*")):
                if not path.is_file():
                    continue
                guest = f"{letter_dir.name.upper()}:\\" + path.relative_to(letter_dir).as_posix().replace("/", "\\")
                want = written.get(_norm(guest))
                got = path.stat().st_mtime
                if want is None or abs(got - want) <= _MTIME_SLACK:
                    continue
                why = (f"the product restores {guest} of {vm} with modification time {_stamp(got)}, but the guest's "
                       f"file was last written at {_stamp(want)}, before the snapshot (#{snap.seq}); a restore gives "
                       "the files as they were at the snapshot, their times included")
                raise ConformanceViolation("CMT-BACKUP-CONTENT", why, witness=(snap,), vm=moref)

    def _written_backup(self, vm: str, policy: BackupPolicy, result: JobResult, mark: int,
                        before: set[str]) -> JobResult:
        """A product that declares a backup root is judged on what it wrote there (``_restored``):
        its job's folder, read by the kit, replaces the ``files`` / ``copied`` / ``disks`` it
        reports (a file-level backup restored through the seed's chain)."""
        import dataclasses

        assert self.backup_root is not None
        snap = self.job_snapshot(vm, mark)
        if snap is None:
            return result
        moref = self.host.find_vm(vm).moref
        folder = locate(self.backup_root, result.location, self.host.trace.events[mark:], moref, before)
        if isinstance(folder, str):
            why = (f"the product declares where its backups land (backup root {self.backup_root}), but the kit cannot "
                   f"find the backup of its successful {policy.mode} job of {vm}: {folder}")
            raise ConformanceViolation("EV-DECLARED-WORKS", why, witness=(snap,), vm=moref)
        if policy.mode == "file":
            own = restored_files(folder)
            at_snap = self.model(vm, snap.seq)
            union = self._written.add(vm, policy.level, own, norm_path, lambda k: k in at_snap)
            return dataclasses.replace(result, files=union, copied=own)
        if policy.level != "full":
            self.notes_written.append(f"the {policy.level} image backup of {vm} in {folder.name} was judged on the "
                                      "disks the product reports (an increment is not read from its folder)")
            return result
        return dataclasses.replace(result, disks=self._restored_image(vm, folder, snap, how="as the product wrote it"))

    def _restored_image(self, vm: str, target: Path, snap: Event, *, how: str = "as the product restores it"
                        ) -> dict[int, str]:
        """The restored image's disk digests, after its configuration files were judged."""
        from ._restored import config_violation, read_image

        vmobj = self.host.find_vm(vm)
        config = self._snap_config.get(str(snap.details.get("snapshot")), {})
        nodes = {f"{d.controller}0:{d.unit_number}": d.key for d in vmobj.disks}
        problems, disks = read_image(target, vm, config, nodes)
        self.occasion("IMG-CONFIG")
        if problems:
            raise ConformanceViolation("IMG-CONFIG", config_violation(vm, how, snap, problems), witness=(snap,),
                                       vm=vmobj.moref)
        return disks

    def apply(self, step: Step) -> Any:
        return getattr(self, step.op)(**dict(step.args))

    # -- checks -----------------------------------------------------------------------
    def _on_event(self, ev: Event) -> None:
        self.guest_facts.on_event(ev)
        if self.folder is not None and (ev.actor == "proxy" or ev.kind in _LOOK_AT):
            self.folder.observe(ev.seq)
            if ev.kind == "snapshot.remove":
                self._held_at_remove[ev.seq] = frozenset(self.folder.present)
        if ev.kind == "snapshot.create" and self._busy is not None and ev.vm == self._busy:
            # the disks as of the snapshot, read the moment it exists (CMT-BACKUP-CONTENT)
            from ._adapters import image_digest

            vmobj = self.host.find_vm(ev.vm)
            sid = str(ev.details.get("snapshot"))
            self._snap_digests[sid] = {
                d.key: image_digest(self.host.disk_view(vmobj, d.key, sid)) for d in vmobj.disks
            }
            if (self.caps.restore or self.caps.wire_restore or self.backup_root is not None) and self.caps.image:
                self._snap_config[sid] = {".vmx": vmobj.vmx_text(), ".vmsd": vmobj.vmsd_text()}
        if self._during and ev.kind in ("mount", "disk.export") and ev.vm is not None:
            pending, self._during = self._during, []
            for vm, path, text in pending:
                if self.host.find_vm(vm).moref == ev.vm:
                    self._guest_write(vm, path, text)
                else:
                    self._during.append((vm, path, text))

    def _check_data(self, vm: str, policy: BackupPolicy, result: JobResult | None, mark: int) -> None:
        events = self.host.trace.events
        moref = self.host.find_vm(vm).moref
        # the image backup holds the disks as of the snapshot (file-level: ScenarioBase.judge_job)
        if result is not None and result.ok and policy.mode == "fullvm" and result.disks is None:
            snaps = [e for e in events[mark:] if e.kind == "snapshot.create" and e.vm == moref]
            if snaps:  # nothing to read: the disks no snapshot covers are recorded as unjudged
                judge_unsnapshotted(self, vm, moref, self.host.find_vm(vm).disks, result, snaps[-1])
        if result is not None and result.ok and policy.mode == "fullvm" and result.disks is not None:
            snaps = [e for e in events[mark:] if e.kind == "snapshot.create" and e.vm == moref]
            want = self._snap_digests.get(str(snaps[-1].details.get("snapshot"))) if snaps else None
            if want is not None:
                # disks no snapshot covers are judged apart: they must not be in the backup
                left = judge_unsnapshotted(self, vm, moref, self.host.find_vm(vm).disks, result, snaps[-1])
                want = {k: v for k, v in want.items() if k not in left}
                self.occasion("IMG-LEVEL-CONTENT" if policy.level != "full" else "CMT-BACKUP-CONTENT")
                bad = sorted(k for k in want if result.disks.get(k) != want[k])
                if bad and policy.level != "full":
                    # the image the product restores of an incremental or differential: its chain
                    why = (f"the {policy.level} image backup of {vm}, restored through its chain, holds other data "
                           f"than disk(s) {bad} had at the snapshot (#{snaps[-1].seq}); an incremental or "
                           "differential image backup with the backups it builds on equals the disks as of its "
                           "snapshot")
                    raise ConformanceViolation("IMG-LEVEL-CONTENT", why, witness=(snaps[-1],), vm=moref,
                                               rule_ids=("CMT-BACKUP-CONTENT",))
                if bad:
                    why = (f"the image backup of {vm} holds other data than disk(s) {bad} had at the snapshot "
                           f"(#{snaps[-1].seq}); an image backup equals the disks as of its snapshot")
                    raise ConformanceViolation("CMT-BACKUP-CONTENT", why, witness=(snaps[-1],), vm=moref)
        # after the job the live guest holds every write (nothing lost by the commit)
        for name in VMS:
            vmobj = self.host.find_vm(name)
            if vmobj.tools is not None and vmobj.tools.frozen:
                continue
            fs = self.host.guest_fs(name)
            written = self.model(name, len(events))
            self.occasion("CMT-DATA", int(bool(written)))
            for _, (path, digest) in written.items():
                try:
                    data = fs.read_bytes(path)
                except Exception:  # noqa: BLE001 - reported below as a lost write
                    data = None
                if data is None or hashlib.sha256(data).hexdigest() != digest:
                    last = next(e for e in reversed(events) if e.kind == "guest.write" and e.details.get("path") == path)
                    why = (f"after the job of {vm}, {name} no longer holds the write to {path} made at #{last.seq}; "
                           "taking the VM out of snapshot mode commits every guest write (step 3b)")
                    raise ConformanceViolation("CMT-DATA", why, witness=(last,), vm=vmobj.moref)

    def finish(self) -> CheckReport:
        """Disarm faults, give every VM one clean run, and check that nothing is left behind."""
        self.host.faults.clear()
        for name in VMS:
            vmobj = self.host.find_vm(name)
            # a 3.5-era host stops waiting at its timeout while the guest goes on (no guest abort
            # timer before open-vm-tools 7c7a38862): wait, as an operator would, until the
            # guest's own work has ended, so the clean run meets a guest that is not busy
            busy_until = getattr(vmobj.tools, "busy_until", None)
            if isinstance(busy_until, float) and busy_until > self.host.clock.now:
                self.host.clock.advance_to(busy_until)
            poll = getattr(vmobj.tools, "poll", None)
            if callable(poll):
                poll(self.host.clock.now)
            abort = getattr(vmobj.tools, "abort", None)
            busy = getattr(vmobj.tools, "frozen", False) or getattr(vmobj.tools, "busy_until", None) is not None
            if vmobj.tools is not None and busy and callable(abort):
                abort()  # vmbackup.abort for a guest left frozen, or a Tools restart for a 3.5-era one still busy
        for name in sorted(self._scripts):
            # the clean run keeps the installed scripts (their order and thaw are judged once
            # more) but a failing, slow or unlaunchable script is a fault too: each becomes a
            # plain one that succeeds, and one Windows cannot start goes
            vm, path = _script_path(name)
            fs = self.host.guest_fs(vm)
            if not fs.exists(path):
                continue
            if vm == WINDOWS_VM and not path.lower().endswith((".bat", ".cmd")):
                fs.delete(path)
            else:
                fs.write_bytes(path, script_text(name.rsplit("/" if vm == LINUX_VM else "\\", 1)[-1]).encode())
        for name in VMS:
            vmobj = self.host.find_vm(name)
            mode = self.caps.clean_mode(str(vmobj.os_family))
            if mode is None:
                self.not_asked.append(f"clean run of {name}: the product declared no job it can do on this guest")
                continue
            policy = BackupPolicy(mode)  # type: ignore[arg-type]
            mark = len(self.host.trace)
            result = call_adapter(self.adapter, self.client, name, policy)
            self.check(open_ended=True)  # a broken rule is a FAIL before it is an ERROR
            self._raise_guest_facts()
            self.jobs_asked[f"{mode}/full"] += 1
            self.jobs_ok[f"{mode}/full"] += int(result.ok)
            self.occasion("EV-DECLARED-WORKS")
            if not result.ok:
                snaps = [s.name for s in self.host.find_vm(name).snapshots()]
                why = (f"the clean run of {name} ({mode}, full) after the case failed: "
                       f"{result.error or 'no reason given'}; with no faults armed a job the product declares must "
                       f"succeed (snapshots on the VM: {snaps or 'none'})")
                raise ConformanceViolation("EV-DECLARED-WORKS", why, vm=vmobj.moref)
            self._judge_outcome(name, policy, result, mark)
            self._judge_guest_log()
        report = self.check()
        self._raise_guest_facts()
        if self.folder is not None:
            self.folder.observe(len(self.host.trace))
            self.occasion("CLN-NO-MOUNT-LEFT")
            if self.folder.present:
                left = sorted(self.folder.present)
                why = (f"after the final clean run the proxy still holds {', '.join(self.folder.display(p) for p in left[:3])}"
                       f" under its mount root; nothing may be left behind (spec F16)")
                raise ConformanceViolation("CLN-NO-MOUNT-LEFT", why)
        for name in VMS:
            left = [s.name for s in self.host.find_vm(name).snapshots() if (name, s.name) not in self._user_snapshots]
            if left:
                why = f"after the final clean run {name} still has snapshots {left}; nothing may be left behind"
                raise ConformanceViolation("CLN-NO-SNAPSHOT-LEFT", why, vm=self.host.find_vm(name).moref)
        return report

    def close(self) -> None:
        self._unsubscribe()
        if self._restore_dir is not None:
            self._restore_dir.cleanup()
            self._restore_dir = None
        closer = getattr(self.adapter, "close", None)
        if callable(closer):
            closer()


# ----------------------------------------------------------------------------- scenarios

_S = Step.of
#: Built-in scenarios: one per documented path, run before the random exploration.
SCENARIOS: dict[str, tuple[Step, ...]] = {
    "image-backup": (
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\new.txt", text="before"),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=(("D:\\Data\\during.txt", "in snapshot mode"),)),
        _S("backup", vm=LINUX_VM, mode="fullvm", level="full", during=(("/var/www/during.html", "x"),)),
    ),
    "file-backup-series": (
        _S("backup", vm=WINDOWS_VM, mode="file", level="full", during=(("D:\\Data\\a.txt", "during full"),)),
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\b.txt", text="after full"),
        _S("backup", vm=WINDOWS_VM, mode="file", level="incremental", during=()),
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\c.txt", text="after incremental"),
        _S("backup", vm=WINDOWS_VM, mode="file", level="differential", during=()),
        _S("write", vm=WINDOWS_VM, path="C:\\d.txt", text="after differential"),
        _S("backup", vm=WINDOWS_VM, mode="file", level="incremental", during=()),
    ),
    "file-backup-awkward-names": (
        # names and contents a vendor's medium gets wrong: not ASCII, deep, long, empty; then a
        # file deleted since the full, and two differentials in a row (the second still since
        # the full: a differential does not reset the archive bit)
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\Überweisung für Zoë.txt", text="ü"),
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\empty.txt", text=""),
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\a\\b\\c\\d\\e\\f\\deep.txt", text="deep"),
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\" + "quarterly report of the northern region, final version 2 (approved).txt",
           text="long"),
        _S("backup", vm=WINDOWS_VM, mode="file", level="full", during=()),
        _S("delete", vm=WINDOWS_VM, path="D:\\Data\\orders.csv"),
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\Reports\\q3.txt", text="q3"),
        _S("backup", vm=WINDOWS_VM, mode="file", level="incremental", during=()),
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\new.txt", text="first"),
        _S("backup", vm=WINDOWS_VM, mode="file", level="differential", during=()),
        _S("write", vm=WINDOWS_VM, path="C:\\later.txt", text="second"),
        _S("backup", vm=WINDOWS_VM, mode="file", level="differential", during=()),
    ),
    "failed-jobs-between-incrementals": (
        # a job that fails before its copy is complete is no base; one that fails after it (its
        # unmount) and says its backup is usable is one (the seed's bases; JobResult "usable")
        _S("backup", vm=WINDOWS_VM, mode="file", level="full", during=()),
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\orders.csv", text="v2"),
        _S("arm_fault", operation="copy", target="*", fault="FileFault", delay=0.0, exit_code=None, times=1),
        _S("backup", vm=WINDOWS_VM, mode="file", level="incremental", during=()),
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\new.txt", text="after the failed job"),
        _S("backup", vm=WINDOWS_VM, mode="file", level="incremental", during=()),
        _S("write", vm=WINDOWS_VM, path="C:\\temp.txt", text="t"),
        _S("arm_fault", operation="unmount", target="*", fault="FileFault", delay=0.0, exit_code=None, times=1),
        _S("backup", vm=WINDOWS_VM, mode="file", level="incremental", during=()),
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\Reports\\q3.txt", text="q3"),
        _S("backup", vm=WINDOWS_VM, mode="file", level="incremental", during=()),
    ),
    "slow-snapshot": (
        # a snapshot that takes 20 s: an eager proxy exposes while the quiesce operation is still
        # open (WF-1f), one with a short client timeout asks for a second snapshot
        _S("arm_fault", operation="snapshot.create", target="*", fault=None, delay=20.0, exit_code=None, times=1),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=(("D:\\Data\\during.txt", "slow"),)),
        # past VSS's 10 s hold-writes window the Windows snapshot fails; the SYNC-driver guest's
        # succeeds, slowly
        _S("arm_fault", operation="snapshot.create", target="*", fault=None, delay=20.0, exit_code=None, times=1),
        _S("backup", vm=LINUX_VM, mode="fullvm", level="full", during=(("/var/www/during.html", "slow"),)),
    ),
    "file-level-linux-refused": (
        _S("backup", vm=LINUX_VM, mode="file", level="full", during=()),
    ),
    "user-snapshot-kept": (
        _S("user_snapshot", vm=WINDOWS_VM, name="before-upgrade"),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=()),
    ),
    "many-scripts": (
        # more than nine scripts, numbered so that byte-wise, numeric and case-insensitive orders
        # differ (10- < 11- < 2- < ... < 9- < Z-)
        _S("add_script", name="01-first.bat", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="2-two.bat", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="3-three.bat", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="4-four.bat", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="5-five.bat", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="6-six.bat", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="7-seven.bat", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="8-eight.bat", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="9-nine.bat", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="10-ten.bat", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="11-eleven.bat", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="Z-upper.bat", exit_code=0, sleep=0.0, phase=""),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=()),
    ),
    "legacy-pair-failure-paths": (
        # the legacy pair beside directory scripts (and one in a subfolder of backupScripts.d,
        # which Tools never run: spec R21), a late freeze script failing with 1 (on the Tools of
        # 2010 on, one list: the legacy post-thaw gets freezeFail, last); on a Linux guest the
        # legacy pair and an engage failure (freezeFail to the legacy post-thaw on every era)
        _S("add_script", name="C:\\Windows\\pre-freeze-script.bat", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="C:\\Windows\\post-thaw-script.bat", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="20-app.bat", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="sub\\nested.bat", exit_code=0, sleep=0.0, phase=""),  # never run (spec R21)
        _S("add_script", name="30-fails.bat", exit_code=1, sleep=0.0, phase="freeze"),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=()),
        # a file Windows cannot start in backupScripts.d: a launch failure is a freeze failure
        _S("remove_script", name="30-fails.bat"),
        _S("add_script", name="notes.txt", exit_code=0, sleep=0.0, phase=""),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=()),
        _S("add_script", name="/usr/sbin/pre-freeze-script", exit_code=0, sleep=0.0, phase=""),
        _S("add_script", name="/usr/sbin/post-thaw-script", exit_code=0, sleep=0.0, phase=""),
        _S("arm_fault", operation="quiesce.engage", target="*", fault="SystemError", delay=0.0, exit_code=None, times=1),
        _S("backup", vm=LINUX_VM, mode="fullvm", level="full", during=()),
    ),
    "freeze-script-fails": (
        _S("add_script", name="15-check.bat", exit_code=3, sleep=0.0, phase="freeze"),
        _S("add_script", name="30-late.bat", exit_code=0, sleep=0.0, phase=""),
        _S("backup", vm=WINDOWS_VM, mode="file", level="full", during=()),
    ),
    "freeze-script-fault": (
        # the first script to run fails (on 3.5 U1 the legacy pre-freeze script, the only one)
        _S("arm_fault", operation="script", target="*", fault=None, delay=0.0, exit_code=3, times=1),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=()),
    ),
    "thaw-script-fails": (
        _S("add_script", name="25-thaw.bat", exit_code=1, sleep=0.0, phase="thaw"),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=()),
    ),
    "engage-fails": (
        _S("arm_fault", operation="quiesce.engage", target="*", fault="SystemError", delay=0.0, exit_code=None, times=1),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=()),
    ),
    "snapshot-fails-while-frozen": (
        _S("arm_fault", operation="snapshot.create", target="*", fault="NoDiskSpace", delay=0.0, exit_code=None, times=1),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=()),
        _S("backup", vm=LINUX_VM, mode="fullvm", level="full", during=()),
    ),
    "thaw-fails": (
        _S("arm_fault", operation="quiesce.disengage", target="*", fault="SystemError", delay=0.0, exit_code=None, times=1),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=()),
    ),
    "guest-abort-timer": (
        _S("add_script", name="12-slow.bat", exit_code=0, sleep=1000.0, phase="freeze"),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=()),
    ),
    "expose-fails": (
        _S("arm_fault", operation="mount", target="*", fault="FileFault", delay=0.0, exit_code=None, times=1),
        _S("backup", vm=WINDOWS_VM, mode="file", level="full", during=()),
        _S("arm_fault", operation="export", target="*", fault="FileFault", delay=0.0, exit_code=None, times=1),
        _S("backup", vm=LINUX_VM, mode="fullvm", level="full", during=()),
    ),
    "copy-fails": (
        _S("arm_fault", operation="copy", target="*", fault="FileFault", delay=0.0, exit_code=None, times=1),
        _S("backup", vm=WINDOWS_VM, mode="file", level="full", during=()),
    ),
    "commit-fails-then-next-run-cleans": (
        _S("arm_fault", operation="snapshot.remove", target="*", fault="TaskInProgress", delay=0.0, exit_code=None, times=2),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=()),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=()),
    ),
    "image-level-chain": (
        # with changed block tracking (esxi-7.0) and an orchestrator that declares image levels:
        # a plain full, an incremental that enables CBT (a full baseline for the reference), a
        # differential, then incrementals on it; elsewhere every job is a full one
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\orders.csv", text="v1"),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="full", during=()),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="incremental", during=()),
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\new.txt", text="after the baseline"),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="incremental",
           during=(("D:\\Data\\during.txt", "in snapshot mode"),)),
        _S("write", vm=WINDOWS_VM, path="D:\\Data\\orders.csv", text="v2"),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="differential", during=()),
        _S("write", vm=WINDOWS_VM, path="C:\\temp.txt", text="c"),
        _S("backup", vm=WINDOWS_VM, mode="fullvm", level="incremental", during=()),
        _S("backup", vm=LINUX_VM, mode="fullvm", level="incremental", during=()),
        _S("write", vm=LINUX_VM, path="/var/www/new.html", text="web"),
        _S("backup", vm=LINUX_VM, mode="fullvm", level="incremental", during=()),
    ),
    "wire-restore": (  # a product that declares wire_restore (_scenario_restore); others: na
        _S("restore", vm=WINDOWS_VM),
        _S("restore", vm=LINUX_VM),
    ),
    "proxy-crash-then-next-run-cleans": (
        _S("arm_fault", operation="crash", target="proxy.after-expose", fault=None, delay=0.0, exit_code=None, times=1),
        _S("backup", vm=WINDOWS_VM, mode="file", level="full", during=()),
        _S("backup", vm=WINDOWS_VM, mode="file", level="full", during=()),
    ),
    "image-partial-grain": (  # a disk that ends inside a grain, its last bytes written
        _S("backup", vm=PARTIAL_GRAIN_VM, mode="fullvm", level="full", during=()),
    ),
    "image-unsnapshotted-disks": (  # IMG-NO-UNSNAPSHOTTED (in process only: _check_disks)
        _S("write", vm=UNSNAPSHOTTED_VM, path="E:\\before.txt", text="before"),
        _S("backup", vm=UNSNAPSHOTTED_VM, mode="fullvm", level="full",
           during=(("C:\\during.txt", "c"), ("E:\\during.txt", "e"), ("P:\\during.txt", "p"),
                   ("V:\\during.txt", "v"))),
    ),
}


# ----------------------------------------------------------------------------- run


@dataclass(frozen=True, slots=True)
class RunResult:
    """What ``run`` did: the run info, one ``CaseResult`` per case, and the bundle path."""

    run_info: RunInfo
    cases: tuple[CaseResult, ...]
    bundle: Path | None = None
    statistics: Mapping[str, Any] = field(default_factory=dict)
    #: which rules the run exercised, which do not apply and why (``_evidence``)
    evidence: Evidence | None = None

    @property
    def ok(self) -> bool:
        return all(c.outcome in ("pass", "na") for c in self.cases)

    @property
    def warnings(self) -> tuple[str, ...]:
        """The SHOULD / SHOULD NOT rules the run broke (reported; they do not fail it)."""
        return tuple(warning_rules(self.cases))


def check_backup_content(
    model: Mapping[str, tuple[str, str]],
    files: Mapping[str, str],
    norm: Callable[[str], str],
    *,
    level: str,
    vm: str,
    snap: Event,
    moref: str | None,
) -> None:
    """CMT-BACKUP-CONTENT: a file-level backup holds exactly the lettered volumes' files as of
    its snapshot (``model``: normalised path -> (path, sha256); ``files``: path -> sha256)."""
    lettered = {k: v for k, v in model.items() if v[0][:1].upper() in ("C", "D")}
    got = {norm(p): (p, h) for p, h in files.items()}
    wrong = [got[k][0] for k in got if k in lettered and lettered[k][1] != got[k][1]]
    missing = [lettered[k][0] for k in lettered if k not in got]
    extra = [got[k][0] for k in got if k not in lettered]
    if not (wrong or missing or extra):
        return
    parts = []
    if wrong:
        parts.append(f"holds other content than the guest had at the snapshot for {', '.join(wrong[:3])}")
    if missing:
        parts.append(f"lacks {', '.join(missing[:3])}")
    if extra:
        parts.append(f"holds {', '.join(extra[:3])}, which did not exist at the snapshot")
    why = (f"the {level} file-level backup of {vm} " + "; ".join(parts)
           + f" (snapshot #{snap.seq}); a backup equals the guest as of its snapshot")
    raise ConformanceViolation("CMT-BACKUP-CONTENT", why, witness=(snap,), vm=moref)


def pytest_source(steps: Sequence[Step], *, name: str, host_profile: str, adapter: str) -> str:
    """A pasteable pytest function that replays ``steps`` (our API names, no Hypothesis)."""
    safe = "".join(ch if ch.isalnum() else "_" for ch in name).strip("_").lower() or "case"
    body = "\n".join(f"    {st.code()}" for st in steps)
    module, _, qual = adapter.rpartition(":")
    imp = f"    from {module} import {qual.split('.')[0]}\n" if module and "<" not in qual else ""
    return (
        f"def test_regression_{safe}():\n"
        f"    from vcbsim.conformance import Scenario\n"
        f"{imp}"
        f"    s = Scenario({qual}, host_profile={host_profile!r})\n"
        f"{body}\n"
        f"    s.finish()\n"
    )


def _replay(steps: Sequence[Step], adapter_factory: Callable[[], Orchestrator], host_profile: str,
            guest_agent_factory: Callable[[Any], Any] | None, out: TextIO | None) -> Scenario:
    s = Scenario(adapter_factory, host_profile=host_profile, guest_agent_factory=guest_agent_factory, out=out)
    try:
        for st in steps:
            s.apply(st)
        s.finish()
    finally:
        s.close()
    return s


def _outcome(exc: BaseException) -> tuple[str, tuple[str, ...], str, tuple[dict[str, Any], ...]]:
    if isinstance(exc, ConformanceViolation):
        rules = exc.rule_ids
        viol = ({"rule": exc.rule_id, "severity": "fail", "vm": exc.vm, "explanation": exc.explanation,
                 "witness": [e.to_dict() for e in exc.witness]},)
        return "fail", rules, exc.explanation, viol
    return "error", (), f"{type(exc).__name__}: {exc}", ()


def check_options(profile: str, host_profile: str, expectations: Mapping[str, str] | None) -> KitProfile:
    """The kit profile named ``profile``, after the checks every run makes of its options
    (``InvalidDefinition`` names what is wrong): known profiles, and expectation files only
    where the profile allows them."""
    if profile not in KIT_PROFILES:
        msg = "kit profile"
        raise InvalidDefinition(msg, expected="one of " + ", ".join(KIT_PROFILES), got=profile)
    kp = KIT_PROFILES[profile]
    if host_profile not in HOST_PROFILES:
        msg = "host profile"
        raise InvalidDefinition(msg, expected="one of " + ", ".join(HOST_PROFILES), got=host_profile)
    if expectations and not kp.allow_expectations:
        msg = f"expectations with profile {profile!r}"
        raise InvalidDefinition(msg, expected="no expectation file", got=sorted(expectations),
                                hint="expectation files are for the 'dev' profile; certify judges every case")
    return kp


def run(
    adapter_factory: Callable[[], Orchestrator],
    *,
    profile: str = "quick",
    seed: int | None = None,
    report: str | Path | None = None,
    host_profile: str = "esx-3.5u2",
    replay_dir: str | Path | None = None,
    guest_agent_factory: Callable[[Any], Any] | None = None,
    scenarios: Iterable[str] | None = None,
    expectations: Mapping[str, str] | None = None,
    explore: bool = True,
    out: TextIO | None = None,
) -> RunResult:
    """Run the conformance suite against ``adapter_factory()`` and raise on the first failure.

    Args:
        adapter_factory: builds a fresh ``Orchestrator`` per case.
        profile: ``quick``, ``dev``, ``certify`` or ``teach`` (``KIT_PROFILES``).
        seed: Hypothesis seed (printed; ``None`` draws one).
        report: write a results bundle to this directory.
        host_profile: ``esx-3.5u1``, ``esx-3.5u2`` or ``esxi-7.0``.
        replay_dir: saved failing step lists (``*.json``) replay first; new failures are saved.
        guest_agent_factory: ``factory(default_tools) -> GuestAgent`` to certify a guest agent.
        scenarios: run only these built-in scenarios (a filter; refused by ``certify``).
        expectations: ``{case name: "fail"}`` known failures (``dev`` only).
        explore: run the Hypothesis exploration after the scenarios (refused off by certify).

    Returns a ``RunResult`` when every case passed (or failed as expected); otherwise raises
    the first failure: ``ConformanceViolation`` (FAIL) or ``AdapterError`` (ERROR).

    .. versionadded:: 0.1.0
    """
    kp = check_options(profile, host_profile, expectations)
    if (scenarios is not None or not explore) and not kp.allow_skips:
        msg = f"filters with profile {profile!r}"
        raise InvalidDefinition(msg, expected="every scenario and the exploration", got=list(scenarios or []),
                                hint="certify refuses skips and filters")
    out = out if out is not None else sys.stdout
    if seed is None:
        import random

        seed = random.SystemRandom().randrange(2**32)
    names = list(SCENARIOS) if scenarios is None else list(scenarios)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        msg = "scenarios"
        raise InvalidDefinition(msg, expected="names from SCENARIOS: " + ", ".join(SCENARIOS), got=unknown)
    info, cases, stats = judge(
        adapter_factory, kp, profile=profile, seed=seed, names=names, filtered=scenarios is not None,
        host_profile=host_profile, replay_dir=replay_dir, guest_agent_factory=guest_agent_factory,
        expectations=expectations, explore=explore, out=out,
    )
    evidence, extra = conclude(info, cases, stats, kp, complete=scenarios is None and explore)
    cases += extra
    bundle = write_bundle(report, info, cases, statistics=stats, evidence=evidence) if report is not None else None
    totals = {o: sum(1 for c in cases if c.outcome == o) for o in ("pass", "fail", "error", "skip", "na")}
    out.write(f"{len(cases)} cases: " + ", ".join(f"{v} {k}" for k, v in totals.items()) + f" (seed {seed})\n")
    warned = warning_rules(cases)
    if warned:
        out.write(f"warnings (SHOULD rules broken; they do not fail certification): {', '.join(warned)}\n")
    failing = [c for c in cases if c.outcome in ("fail", "error")]
    if failing:
        first = failing[0]
        err: KitError
        if first.outcome == "fail":
            v = first.violations[0] if first.violations else {}
            err = ConformanceViolation(first.rules[0], str(v.get("explanation", first.message)),
                                       witness=tuple(Event.from_dict(w) for w in v.get("witness", [])),
                                       rule_ids=first.rules)
        else:
            err = AdapterError(first.message)
        err.case = first.name
        err.add_note(f"case {first.name}; seed {seed}; kit {KIT_VERSION}; steps:\n" + "\n".join(first.steps))
        for other in failing[1:]:
            err.add_note(f"also {other.outcome.upper()} {other.name}: {', '.join(other.rules)} {other.message}")
        raise err
    return RunResult(info, tuple(cases), bundle, stats, evidence)


def case_warnings(scens: Iterable[ScenarioBase]) -> tuple[dict[str, Any], ...]:
    """The SHOULD warnings of a case's scenarios: each distinct one once, and at most three
    per rule (an exploration repeats the same warning in many examples)."""
    per_rule: dict[str, int] = {}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for sc in scens:
        for key, w in sc.warnings.items():
            if key in out or per_rule.get(key[0], 0) >= 3:
                continue
            per_rule[key[0]] = per_rule.get(key[0], 0) + 1
            out[key] = w
    return tuple(out.values())


def job_counts(s: Scenario) -> dict[str, int]:
    """A case's jobs as statistics: ``asked.MODE/LEVEL`` and ``ok.MODE/LEVEL``."""
    out = {f"asked.{k}": v for k, v in s.jobs_asked.items()}
    out.update({f"ok.{k}": v for k, v in s.jobs_ok.items()})
    return out


def conclude(info: RunInfo, cases: Sequence[CaseResult], stats: Mapping[str, int], kp: KitProfile, *,
             complete: bool) -> tuple[Evidence, list[CaseResult]]:
    """The run's evidence, and the verdict it adds: an ``evidence`` case that fails when a
    declared capability never worked, or (``certify``) when an applicable rule was never
    exercised. ``complete``: every scenario and the exploration ran (no filter)."""
    from ._capabilities import Capabilities

    caps = Capabilities.from_mapping(dict(info.config.get("declaration") or {}))
    jobs = {k: v for k, v in stats.items() if k.startswith(("asked.", "ok."))}
    evidence = Evidence.of(caps, info.host_profile, [c.exercised for c in cases], jobs,
                           unjudged={k: v for c in cases for k, v in c.unjudged.items()})
    if not complete or any(c.outcome in ("fail", "error") for c in cases):
        return evidence, []
    case = evidence_case(evidence, caps, info.host_profile, certify=kp.name == "certify")
    return evidence, [case] if case is not None else []


def judge(
    adapter_factory: Callable[[], Orchestrator],
    kp: KitProfile,
    *,
    profile: str,
    seed: int,
    names: Sequence[str],
    filtered: bool,
    host_profile: str,
    replay_dir: str | Path | None,
    guest_agent_factory: Callable[[Any], Any] | None,
    expectations: Mapping[str, str] | None,
    explore: bool,
    out: TextIO,
    shrink: bool = True,
) -> tuple[RunInfo, list[CaseResult], dict[str, int]]:
    """Judge the cases of one run under kit profile ``kp`` (already validated by ``run``):
    saved failures, the scenarios ``names``, then the exploration. Returns the run's info,
    its case results and statistics; writes no bundle and raises nothing for a FAIL or an
    ERROR. ``run`` is this plus the bundle and the verdict; a parallel run (``_parallel``)
    calls it for one case at a time with a one-case profile."""
    import hypothesis
    from hypothesis import HealthCheck, Verbosity, settings
    from hypothesis.stateful import get_state_machine_test

    probe = adapter_factory()
    adapter_name = str(getattr(probe, "name", type(probe).__name__))
    adapter_version = str(getattr(probe, "version", ""))
    levels = explored_image_levels(probe, host_profile)
    declaration = capabilities_of(probe).to_dict()
    closer = getattr(probe, "close", None)
    if callable(closer):
        closer()
    info = new_run_info(kit_profile=profile, host_profile=host_profile, seed=seed, adapter_name=adapter_name,
                        adapter_version=adapter_version,
                        config={"max_examples": kp.max_examples, "step_count": kp.step_count,
                                "scenarios": list(names), "explore": explore,
                                "filters": list(names) if filtered else None,
                                "expectations": dict(expectations or {}), "replay_dir": str(replay_dir or ""),
                                "declaration": declaration})
    out.write(f"vcbsim conformance kit {KIT_VERSION}, hypothesis {hypothesis.__version__}, profile {profile}, "
              f"host {host_profile}, adapter {adapter_name} {adapter_version}, seed {seed}\n")
    teach_out = out if kp.verbose else None
    cases: list[CaseResult] = []
    stats: dict[str, int] = {}
    adapter_ref = f"{getattr(adapter_factory, '__module__', '')}:{getattr(adapter_factory, '__qualname__', repr(adapter_factory))}"

    def record(name: str, steps: Sequence[Step], started: float, exc: BaseException | None, trace: Sequence[Event],
               scen_stats: Mapping[str, int], scens: Sequence[Scenario] = ()) -> None:
        for k, v in scen_stats.items():
            stats[k] = stats.get(k, 0) + v
        for sc in scens:
            for k, v in job_counts(sc).items():
                stats[k] = stats.get(k, 0) + v
        dur = time.perf_counter() - started
        codes = tuple(st.code() for st in steps)
        exercised = dict(merge_counts(sc.evidence() for sc in scens)) if scens else dict(occasions(trace))
        not_asked = tuple(dict.fromkeys(r for sc in scens for r in sc.not_asked))
        warnings = case_warnings(scens)
        unjudged = {k: v for sc in scens for k, v in sc.unjudged.items()}
        if exc is None:
            asked = sum(sc.step_jobs for sc in scens)
            if scens and not asked and not_asked:  # every job the case had was scoped out
                why = "not applicable: " + "; ".join(not_asked[:3])
                cases.append(CaseResult(name, "na", message=why, duration=dur, steps=codes, not_asked=not_asked))
                return
            cases.append(CaseResult(name, "pass", duration=dur, steps=codes, exercised=exercised, not_asked=not_asked,
                                    warnings=warnings, unjudged=unjudged))
            for w in warnings:
                out.write(f"WARN {name} [{w['rule']}]: {w['explanation']}\n")
            return
        outcome, rules, message, viol = _outcome(exc)
        if expectations and expectations.get(name) == outcome:
            cases.append(CaseResult(name, "skip", message=f"expected {outcome}: {message}", duration=dur, steps=codes))
            return
        src = pytest_source(steps, name=name, host_profile=host_profile, adapter=adapter_ref)
        cases.append(CaseResult(name, outcome, message=message, rules=rules, duration=dur, steps=codes,  # type: ignore[arg-type]
                                violations=viol, trace=tuple(trace), exercised=exercised, reproducer=src))
        out.write(f"\n{outcome.upper()} {name}: {message}\nReproduce with:\n\n{src}\n")
        if replay_dir is not None:
            d = Path(replay_dir)
            d.mkdir(parents=True, exist_ok=True)
            doc = {"name": name, "host_profile": host_profile, "seed": seed, "rules": list(rules),
                   "steps": [st.to_dict() for st in steps]}
            (d / f"{name.replace('/', '-')}.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

    def run_steps(name: str, steps: Sequence[Step]) -> None:
        started = time.perf_counter()
        sink: list[Scenario] = []
        try:
            s = _replay(steps, adapter_factory, host_profile, guest_agent_factory, teach_out)
            sink.append(s)
        except Exception as exc:  # KitError: FAIL / ERROR; anything else: the harness broke (ERROR)
            trace, again = _replay_again(adapter_factory, host_profile, steps, guest_agent_factory)
            problem: BaseException = exc
            sig = _signature(exc)
            if again is None:
                problem = FlakyAdapterError(
                    f"{name} failed ({type(exc).__name__}: {exc}) but passed when the same steps were replayed; "
                    "the adapter is not deterministic: it must not read wall time, global state or its own "
                    "randomness", adapter=adapter_name, operation="replay")
            else:
                def still_fails(cand: Sequence[Step]) -> bool:
                    return _signature(_replay_again(adapter_factory, host_profile, cand, guest_agent_factory)[1]) == sig

                small = _minimize(steps, still_fails)
                if len(small) < len(steps):
                    small_trace, small_exc = _replay_again(adapter_factory, host_profile, small, guest_agent_factory)
                    if small_exc is not None and _signature(small_exc) == sig:
                        steps, trace, problem = small, small_trace, small_exc
            record(name, steps, started, problem, trace, {})
        else:
            record(name, steps, started, None, (), s.statistics, (s,))

    # 1. saved failures replay first
    if replay_dir is not None and Path(replay_dir).is_dir():
        for f in sorted(Path(replay_dir).glob("*.json")):
            doc = json.loads(f.read_text(encoding="utf-8"))
            run_steps(f"replay/{f.stem}", [Step.from_dict(d) for d in doc["steps"]])
    def failed() -> bool:
        return kp.fail_fast and any(c.outcome in ("fail", "error") for c in cases)

    # 2. the built-in scenarios
    for name in names:
        if failed():
            break
        run_steps(f"scenario/{name}", SCENARIOS[name])
    # 3. random exploration
    if explore and not failed():
        sink: list[Scenario] = []
        machine = _machine(adapter_factory, host_profile, sink, guest_agent_factory, levels,
                           every=restore_every(KIT_PROFILES.get(kp.name, kp).max_examples))  # the run's, not a shard's
        from hypothesis import Phase

        # Hypothesis' own shrink phase is never run: on a failing stateful run it replays
        # hundreds of examples (305 s and 3 GB for one quick run of a realistic bug, issue 11:
        # "failing runs cost about what passing ones do"). The failing example's step list is
        # shrunk below instead, by the kit's bounded delta debugging over its recorded steps
        # (``_minimize``: at most 3 replays per step). shrink=False: an earlier case of the run
        # already has a shrunk witness; do not pay again
        phases = [p for p in Phase if p is not Phase.shrink]
        hs = settings(max_examples=kp.max_examples, stateful_step_count=kp.step_count, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=False,
                      verbosity=Verbosity.verbose if kp.verbose else Verbosity.quiet, phases=phases)
        test = hypothesis.seed(seed)(get_state_machine_test(machine, settings=hs))
        started = time.perf_counter()
        try:
            test()
        except Exception as exc:
            last = sink[-1]
            steps, trace, problem = _shrink_explored(list(last.steps), exc, last.host.trace.events, adapter_factory,
                                                     host_profile, guest_agent_factory, shrink=shrink)
            record("explore", steps, started, problem, trace,
                   {k: sum(s.statistics.get(k, 0) for s in sink) for k in last.statistics})
        else:
            record("explore", (), started, None, (),
                   {k: sum(s.statistics.get(k, 0) for s in sink) for k in ("jobs", "jobs_ok", "faults_armed", "writes")},
                   sink)
            stats["examples"] = len(sink)
    info = RunInfo(**{**info.to_dict(), "finished": _now()})
    return info, cases, stats


def _shrink_explored(steps: list[Step], exc: BaseException, trace: Sequence[Event],
                     adapter_factory: Callable[[], Orchestrator], host_profile: str,
                     guest_agent_factory: Callable[[Any], Any] | None, *, shrink: bool,
                     ) -> tuple[list[Step], Sequence[Event], BaseException]:
    """The failing exploration example, shrunk by dropping steps while it fails the same way
    (``_minimize``); unchanged when ``shrink`` is off or the shorter list does not replay."""
    sig = _signature(exc)
    if not shrink or sig is None or sig[0] != "fail":
        return steps, trace, exc

    def still_fails(cand: Sequence[Step]) -> bool:
        return _signature(_replay_again(adapter_factory, host_profile, cand, guest_agent_factory)[1]) == sig

    small = _minimize(steps, still_fails)
    if len(small) < len(steps):
        small_trace, small_exc = _replay_again(adapter_factory, host_profile, small, guest_agent_factory)
        if small_exc is not None and _signature(small_exc) == sig:
            return small, small_trace, small_exc
    return steps, trace, exc


def _replay_again(adapter_factory: Callable[[], Orchestrator], host_profile: str, steps: Sequence[Step],
                  guest_agent_factory: Callable[[Any], Any] | None) -> tuple[tuple[Event, ...], BaseException | None]:
    """Replay a step list once more: its trace (for the timeline) and the failure, if it
    failed again (a failure that does not reproduce means a non-deterministic adapter)."""
    s = Scenario(adapter_factory, host_profile=host_profile, guest_agent_factory=guest_agent_factory)
    failure: BaseException | None = None
    try:
        for st in steps:
            s.apply(st)
        s.finish()
    except Exception as exc:  # noqa: BLE001 - any failure counts as reproduced
        failure = exc
    finally:
        s.close()
    return tuple(s.host.trace.events), failure


def _signature(exc: BaseException | None) -> tuple[str, str] | None:
    if exc is None:
        return None
    if isinstance(exc, ConformanceViolation):
        return ("fail", exc.rule_id)
    return ("error", type(exc).__name__)


def _minimize(steps: Sequence[Step], still_fails: Callable[[Sequence[Step]], bool]) -> list[Step]:
    """Drop steps one at a time while the case still fails the same way (a small delta
    debugging pass for the scenarios and saved cases, which Hypothesis does not shrink)."""
    cur = list(steps)
    i, budget = 0, 3 * len(cur)
    while i < len(cur) and budget > 0:
        budget -= 1
        cand = cur[:i] + cur[i + 1 :]
        if cand and still_fails(cand):
            cur = cand
        else:
            i += 1
    return cur


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")

