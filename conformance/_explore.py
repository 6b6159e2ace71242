"""The kit's search: Hypothesis strategies and the rule-based state machine that drives an
orchestrator through guest writes, quiescing scripts, faults and jobs.

Split from ``_suite`` (which keeps the scenarios, the data checks and the run). ``_suite`` is
imported lazily here: it imports this module.

Why rule-driven generation: bugs hide behind preconditions a random walk of single steps
rarely reaches in a few dozen examples (issue 11: 15 of 25 realistic bugs passed because
nothing set them up). Besides the single steps, the machine has *macro rules* that build
those states on purpose, each a short, replayable list of ordinary steps:

- ``scripts_then_backup``: scripts whose names sort differently by bytes, case and number
  (``10-x.bat`` < ``9-nine.bat`` < ``B.bat`` < ``_u.bat`` < ``a.bat``), sometimes one that
  fails in a phase, then a backup of that guest;
- ``legacy_pair``: the legacy pre-freeze / post-thaw pair, with or without directory scripts,
  in the Windows or the Linux guest (Linux directory scripts only where the era has them);
- ``failed_job_between_levels``: a full, a job that fails after copying or before, then an
  incremental or differential (the base rules' hard case);
- ``fault_after_snapshot``: a fault in a step after the snapshot (expose, copy, unmount,
  commit, a proxy crash), then a backup;
- ``long_snapshot_with_timer``: a freeze script close to the abort timer and a slow snapshot,
  so the timer fires while the guest is frozen;
- ``restore`` (a product that declares ``wire_restore``; at most one restore step per example:
  each backs a VM up and restores it whole up to twice): a backup, guest writes, then some of
  the restores (as a new VM, over the running original, over the powered-off original, files
  into the guest: ``_scenario_restore.RESTORE_KINDS``), so a restore bug is found by the search
  and not only by the hand-written ``wire-restore`` scenario;
- ``fault_during_restore``: the same with a fault of a restore call armed first (the register,
  the create, a disk copy, an upload whose datastore fills part way or whose connection is
  lost: ``_RESTORE_FAULTS``), so the restore fails and RST-NO-HALF-VM is judged on it.

``hypothesis.target`` steers the search towards runs that reach more distinct states (quiesce
outcomes, job outcomes, levels, script phases) per example.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._adapters import Orchestrator, image_levels
from ._errors import ConformanceViolation

if TYPE_CHECKING:
    from ._suite import Scenario

__all__ = ["explored_image_levels", "SCRIPT_NAMES", "LEGACY_SCRIPTS", "LINUX_DIR"]

#: Script names that tell sort orders apart: byte-wise (what Tools does: strcmp) puts digits
#: before upper case before ``_`` before lower case and ``10`` before ``9``; a case-insensitive
#: or numeric sort gives another order. ``15-Mid.bat`` / ``15-mid.bat`` are one file on Windows.
SCRIPT_NAMES = ("10-x.bat", "9-nine.bat", "B.bat", "a.bat", "_u.bat", "15-Mid.bat", "15-mid.bat", "40-last.cmd")
#: A file in backupScripts.d that Windows cannot start (a launch failure is a freeze failure).
UNLAUNCHABLE = "notes.txt"
#: The legacy pre-freeze / post-thaw scripts per guest (seed Table 2-3; spec R20).
LEGACY_SCRIPTS = {
    "win2003-sql": ("C:\\Windows\\pre-freeze-script.bat", "C:\\Windows\\post-thaw-script.bat"),
    "rhel5-web": ("/usr/sbin/pre-freeze-script", "/usr/sbin/post-thaw-script"),
}
#: Linux directory scripts exist only with the Tools of 2010 and later (seed Table 2-3: on 3.5
#: U2 "Other" guests run only /usr/sbin; open-vm-tools 1da06b950).
LINUX_DIR = "/etc/vmware-tools/backupScripts.d/"
_LINUX_DIR_PROFILES = ("esxi-7.0",)

_FAULTS: tuple[dict[str, Any], ...] = (
    {"operation": "snapshot.create", "fault": "NoDiskSpace"},
    {"operation": "quiesce.engage", "fault": "SystemError"},
    {"operation": "quiesce.disengage", "fault": "SystemError"},
    {"operation": "mount", "fault": "FileFault"},
    {"operation": "export", "fault": "FileFault"},
    {"operation": "copy", "fault": "FileFault"},
    {"operation": "unmount", "fault": "FileFault"},
    {"operation": "snapshot.remove", "fault": "TaskInProgress"},
    {"operation": "crash", "target": "proxy.after-snapshot"},
    {"operation": "crash", "target": "proxy.after-expose"},
    {"operation": "snapshot.create", "delay": 20.0},
)
#: Faults of the restore calls (``simulator/_faultrules.py``: each a fault the vSphere API
#: reference lists for the method; ``*_1.vmdk``: the second disk's upload, so the datastore
#: fills part way through the restore).
_RESTORE_FAULTS: tuple[dict[str, Any], ...] = (
    {"operation": "datastore.put", "target": "*_1.vmdk", "fault": "NoDiskSpace"},
    {"operation": "datastore.put", "fault": "NoDiskSpace"},
    {"operation": "datastore.put.drop"},
    {"operation": "vm.register", "fault": "DuplicateName"},
    {"operation": "vm.register", "fault": "InsufficientResourcesFault"},
    {"operation": "vm.create", "fault": "InvalidDatastore"},
    {"operation": "vdisk.copy", "fault": "NoDiskSpace"},
)
#: Faults in a step after the snapshot exists.
_AFTER_SNAPSHOT = tuple(f for f in _FAULTS if f["operation"] in ("mount", "export", "copy", "unmount", "snapshot.remove", "crash"))
#: Faults that fail a file-level job between two levels: before the copy, in it, after it.
_BETWEEN_LEVELS = tuple(f for f in _FAULTS if f["operation"] in ("mount", "copy", "unmount", "snapshot.remove"))


def _strategies(levels: Sequence[str] = ("full",)) -> tuple[Any, Any, Any, Any, Any]:
    """Hypothesis strategies of the exploration: script names (``SCRIPT_NAMES``), file
    contents, guest paths, guest writes (the workload) and job policies (including requests
    the product must refuse); image jobs are drawn at ``levels`` (only ``full`` unless the host
    tracks changes and the orchestrator declares more)."""
    from hypothesis import strategies as st

    from ._suite import LINUX_VM, VMS, WINDOWS_VM

    names = st.sampled_from(SCRIPT_NAMES)
    text = st.text(alphabet="abcxyz0123 ", min_size=0, max_size=12)
    win_paths = st.sampled_from(["D:\\Data\\orders.csv", "D:\\Data\\new.txt", "C:\\temp.txt", "D:\\Data\\Reports\\q3.txt"])
    lin_paths = st.sampled_from(["/var/www/index.html", "/var/www/new.html"])
    writes = st.one_of(st.tuples(st.just(WINDOWS_VM), win_paths, text), st.tuples(st.just(LINUX_VM), lin_paths, text))
    policies = st.one_of(
        st.tuples(st.sampled_from(VMS), st.just("fullvm"),
                  st.just("full") if tuple(levels) == ("full",) else st.sampled_from(tuple(levels))),
        st.tuples(st.just(WINDOWS_VM), st.just("file"), st.sampled_from(["full", "incremental", "differential"])),
        st.tuples(st.just(LINUX_VM), st.just("file"), st.just("full")),
    )

    return names, text, win_paths, writes, policies


def explored_image_levels(adapter: Any, host_profile: str) -> tuple[str, ...]:
    """The image levels the exploration draws: those ``adapter`` declares, on a host profile
    with changed block tracking; ``("full",)`` otherwise."""
    from vcbsim.simulator import get_profile

    return image_levels(adapter) if get_profile(host_profile).change_tracking else ("full",)


def reached(scenario: Scenario) -> set[tuple[str, ...]]:
    """The distinct states a run reached, read from its trace: quiesce outcomes, script phases,
    job outcomes by mode and level, faults fired. ``hypothesis.target`` maximises their count."""
    out: set[tuple[str, ...]] = set()
    for ev in scenario.host.trace.events:
        d = ev.details
        if ev.kind == "quiesce.end":
            out.add(("quiesce", str(d.get("outcome"))))
        elif ev.kind == "script.run":
            out.add(("script", str(d.get("arg")), "legacy" if d.get("legacy") else "dir", "ok" if d.get("exit_code") == 0 else "failed"))
        elif ev.kind in ("op.ok", "op.fail", "op.info") and d.get("op") in ("job", "backup"):
            out.add(("job", ev.kind))
        elif ev.kind == "op.invoke" and d.get("op") in ("job", "backup"):
            out.add(("level", str(d.get("mode")), str(d.get("level"))))
        elif ev.kind in ("op.ok", "op.fail") and d.get("op") in ("restore-vm", "restore-files"):
            out.add(("restore", str(d.get("op")), ev.kind))
        elif ev.kind in ("fault.injected", "quiesce.abort", "snapshot.rollback", "crash"):
            out.add((ev.kind, str(d.get("operation") or d.get("reason") or "")))
    return out


def _machine(adapter_factory: Callable[[], Orchestrator], host_profile: str, sink: list[Scenario],
             guest_agent_factory: Callable[[Any], Any] | None, levels: Sequence[str] = ("full",)) -> type:
    from hypothesis import strategies as st
    from hypothesis import target
    from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

    from ._suite import LINUX_VM, WINDOWS_VM, Scenario

    names, text, win_paths, writes, policies = _strategies(levels)
    file_levels = st.sampled_from(["incremental", "differential"])
    exit_codes = st.sampled_from([0, 0, 0, 1, 3])
    phases = st.sampled_from(["", "", "freeze", "thaw"])
    linux_dir = host_profile in _LINUX_DIR_PROFILES
    from ._scenario_restore import RESTORE_KINDS

    # some of the restores, in their order; one that writes the VM (new or over) more often
    restore_kinds = st.lists(st.sampled_from(RESTORE_KINDS), min_size=1, max_size=3, unique=True).map(
        lambda ks: tuple(k for k in RESTORE_KINDS if k in ks) if set(ks) & {"new", "over"} else (*ks, "new"))

    class KitMachine(RuleBasedStateMachine):
        """Drives the adapter: guest writes, scripts, faults and jobs; checks after each job."""

        def __init__(self) -> None:
            super().__init__()
            self.s = Scenario(adapter_factory, host_profile=host_profile, guest_agent_factory=guest_agent_factory)
            sink.append(self.s)
            self.scripts: set[str] = set()  # removable directory scripts (case-folded)
            self.legacy: set[str] = set()  # guests with the legacy pair installed
            self.restores = 0  # restore steps so far (at most one: each backs up and restores whole VMs)

        # -- single steps ----------------------------------------------------------------
        @rule(w=writes)
        def write(self, w: tuple[str, str, str]) -> None:
            self.s.write(*w)

        @rule(name=names, exit_code=exit_codes, sleep=st.sampled_from([0.0, 0.0, 2.0, 700.0]), phase=phases)
        def add_script(self, name: str, exit_code: int, sleep: float, phase: str) -> None:
            self.s.add_script(name, exit_code, sleep, phase)
            self.scripts.add(name.casefold())

        @rule()
        def add_unlaunchable_script(self) -> None:
            """A file Windows cannot start in backupScripts.d: a freeze failure at its place."""
            self.s.add_script(UNLAUNCHABLE)
            self.scripts.add(UNLAUNCHABLE)

        @precondition(lambda self: bool(self.scripts))
        @rule(data=st.data())
        def remove_script(self, data: Any) -> None:
            name = data.draw(st.sampled_from(sorted(self.scripts)))
            self.s.remove_script(name)
            self.scripts.discard(name)

        @rule(f=st.sampled_from(_FAULTS), times=st.sampled_from([1, 2]))
        def arm_fault(self, f: dict[str, Any], times: int) -> None:
            self._arm(f, times)

        @rule(p=policies, during=st.lists(st.tuples(win_paths, text), max_size=2))
        def backup(self, p: tuple[str, str, str], during: list[tuple[str, str]]) -> None:
            vm, mode, level = p
            dur = tuple(during) if vm == WINDOWS_VM else ()
            self.s.backup(vm, mode, level, dur)

        # -- macro rules: the preconditions bugs need ----------------------------------------
        @rule(picked=st.lists(names, min_size=2, max_size=4, unique_by=str.casefold), failing=st.integers(-1, 3),
              exit_code=st.sampled_from([1, 3]), phase=st.sampled_from(["freeze", "thaw", ""]),
              mode=st.sampled_from(["fullvm", "file"]))
        def scripts_then_backup(self, picked: list[str], failing: int, exit_code: int, phase: str, mode: str) -> None:
            for i, name in enumerate(picked):
                self.s.add_script(name, exit_code if i == failing else 0, 0.0, phase if i == failing else "")
                self.scripts.add(name.casefold())
            self.s.backup(WINDOWS_VM, mode, "full", ())

        @precondition(lambda self: len(self.legacy) < 2)
        @rule(vm=st.sampled_from(sorted(LEGACY_SCRIPTS)), with_dir=st.booleans(), fail_freeze=st.booleans(),
              name=names)
        def legacy_pair(self, vm: str, with_dir: bool, fail_freeze: bool, name: str) -> None:
            """The legacy pair (never one without the other: the legacy-slot defect of 2010+
            Tools is a guest bug, not the product's), with or without directory scripts."""
            if vm in self.legacy:
                return
            pre, post = LEGACY_SCRIPTS[vm]
            self.s.add_script(pre)
            self.s.add_script(post)
            self.legacy.add(vm)
            if with_dir and vm == WINDOWS_VM:
                self.s.add_script(name, 3 if fail_freeze else 0, 0.0, "freeze" if fail_freeze else "")
                self.scripts.add(name.casefold())
            elif with_dir and vm == LINUX_VM and linux_dir:
                path = LINUX_DIR + "20-db"
                self.s.add_script(path, 3 if fail_freeze else 0, 0.0, "freeze" if fail_freeze else "")
                self.scripts.add(path)
            self.s.backup(vm, "fullvm", "full", ())

        @rule(f=st.sampled_from(_BETWEEN_LEVELS), second=file_levels, third=file_levels, w=st.tuples(win_paths, text),
              w2=st.tuples(win_paths, text))
        def failed_job_between_levels(self, f: dict[str, Any], second: str, third: str, w: tuple[str, str],
                                      w2: tuple[str, str]) -> None:
            self.s.backup(WINDOWS_VM, "file", "full", ())
            self.s.write(WINDOWS_VM, *w)
            self._arm(f, 1)
            self.s.backup(WINDOWS_VM, "file", second, ())
            self.s.write(WINDOWS_VM, *w2)
            self.s.backup(WINDOWS_VM, "file", third, ())

        @rule(f=st.sampled_from(_AFTER_SNAPSHOT), p=policies)
        def fault_after_snapshot(self, f: dict[str, Any], p: tuple[str, str, str]) -> None:
            self._arm(f, 1)
            vm, mode, level = p
            self.s.backup(vm, mode, level, ())

        @rule(margin=st.sampled_from([5.0, 50.0]), delay=st.sampled_from([20.0, 200.0]))
        def long_snapshot_with_timer(self, margin: float, delay: float) -> None:
            """A freeze script that ends ``margin`` s before the abort timer and a snapshot that
            takes ``delay`` s: the timer fires while the guest is frozen when delay > margin."""
            from vcbsim.simulator import get_profile

            timeout = float(getattr(get_profile(host_profile), "guest_abort_timeout", 0.0) or 900.0)
            self.s.add_script("05-slow.bat", 0, max(timeout - margin, 0.0), "freeze")
            self.scripts.add("05-slow.bat")
            self._arm({"operation": "snapshot.create", "delay": delay}, 1)
            self.s.backup(WINDOWS_VM, "fullvm", "full", ())

        # -- restores (a product that declares them) -------------------------------------
        @precondition(lambda self: self.restores < 1 and self.s.caps.wire_restore)
        @rule(vm=st.sampled_from(sorted(LEGACY_SCRIPTS)), kinds=restore_kinds, w=writes)
        def restore(self, vm: str, kinds: tuple[str, ...], w: tuple[str, str, str]) -> None:
            """A guest write, then a backup and the restores ``kinds`` of it."""
            self.restores += 1
            self.s.write(*w)
            self.s.restore(vm, kinds)

        @precondition(lambda self: self.restores < 1 and self.s.caps.wire_restore)
        @rule(vm=st.sampled_from(sorted(LEGACY_SCRIPTS)), kinds=restore_kinds, f=st.sampled_from(_RESTORE_FAULTS))
        def fault_during_restore(self, vm: str, kinds: tuple[str, ...], f: dict[str, Any]) -> None:
            """A fault of a restore call, then the restores: the one it hits fails, and must
            leave no half-made VM (RST-NO-HALF-VM) nor a half-replaced original."""
            self.restores += 1
            self._arm(f, 1)
            self.s.restore(vm, kinds)

        def _arm(self, f: dict[str, Any], times: int) -> None:
            self.s.arm_fault(f["operation"], f.get("target", "*"), f.get("fault"), f.get("delay", 0.0), None, times)

        @invariant()
        def no_guest_left_frozen_between_jobs(self) -> None:
            for vm in self.s.host.vms.values():
                if vm.tools is not None and getattr(vm.tools, "frozen", False) and getattr(vm.tools, "phase", "IDLE") == "IDLE":
                    why = f"{vm.name} is still frozen although no quiesce operation is running"
                    raise ConformanceViolation("QSC-UNQUIESCE", why, vm=vm.moref)

        def teardown(self) -> None:
            try:
                target(float(len(reached(self.s))), label="distinct states reached")
                self.s.finish()
            finally:
                self.s.close()

    return KitMachine
