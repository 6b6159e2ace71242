r"""VMware Tools quiescing: the seed's five steps around the host's snapshot, with every fault path.

``VMwareTools.quiesced_snapshot(create, rollback, ...)`` runs "When running the scripts"
(seed, steps 1-5; workflow steps WF-1a ... WF-1e) as the open-vm-tools ``vmbackup`` state
machine does (spec section 2), synchronously and in virtual time:

=====  ==========================================  ===============  =======================
seed   what                                        trace step       guest state
=====  ==========================================  ===============  =======================
1      freeze scripts, ascending, ``freeze``        ``WF-1a``        SCRIPT_FREEZE
2      engage SYNC driver / VSS (or null)           ``WF-1b``        SYNC_FREEZE(_WAIT)
3      the host's ``create()``                      ``WF-1c``        SYNC_FREEZE
4      disengage (``snapshotDone``)                 ``WF-1d``        SYNC_THAW
5      thaw scripts, descending, ``thaw``           ``WF-1e``        SCRIPT_THAW
       (or ``freezeFail`` on the failure paths)
=====  ==========================================  ===============  =======================

Failure paths (spec section 3), each ending with ``quiesce.end`` and nothing left frozen:

- F1 / R26: freeze script k exits non-zero (or a later one cannot be launched): scripts k-1 … 0
  get ``freezeFail`` (the legacy slot's post-thaw last), later scripts never run, ``create``
  is never called, ``ApplicationQuiesceFault`` (code 2, "Custom quiesce script failed.").
- F2 / R6 / R27: the first freeze script cannot be launched: initialisation fails, no
  freezeFail, ``ApplicationQuiesceFault`` (code 2, "Error when starting custom quiesce
  scripts.").
- F3 / F4: engaging fails (fault rule ``quiesce.engage``, or Linux without a freeze backend and
  ``enableNullDriver=false``): straight to step 5 with ``freezeFail`` for all scripts, no
  snapshot; guest code 3 surfaces as ``ToolsSwitches.guest_error_fault`` (Q6).
- F6: ``create()`` raises: the host aborts (``vmbackup.abort``), the guest thaws, all scripts
  get ``freezeFail``, the host's fault is re-raised.
- F7 / R36 / R43: thawing fails (fault rule ``quiesce.disengage``, or on VSS the snapshot held
  writes longer than ``HostProfile.vss_hold_writes``): ``freezeFail`` for all scripts,
  ``rollback(snapshot)``, ``FilesystemQuiesceFault``.
- F8 / R28: a thaw script fails: the other thaw scripts still run; the host's reaction is Q4
  (``ToolsSwitches.thaw_failure``).
- F9 / R15: the guest abort timer fires (``timeout``, else ``[vmbackup] timeout``, else
  ``HostProfile.guest_abort_timeout``; 0 = no timer) in SCRIPT_FREEZE (script killed,
  freezeFail k-1 … 0), SYNC_FREEZE_WAIT / SYNC_FREEZE (thaw, freezeFail all, snapshot rolled
  back) or SCRIPT_THAW (script killed, the rest skipped). freezeFail (SCRIPT_ERROR) ignores the
  timer (T18).
- F11 / Q5: Tools not running or not installed: ``HostProfile.quiesce_without_tools``.

On every failure path the guest side finishes first (freezeFail scripts, ``quiesce.end``), then
the host's ``rollback(snapshot)`` is called if a snapshot exists, then the fault is raised, so
``quiesce.end`` always precedes ``snapshot.rollback`` in the trace. ``VMwareTools.last_result``
holds the ``QuiesceResult`` of the last operation, also when a fault was raised.

The host calls either ``tools.bind(clock=, trace=, faults=, profile=, vm=)`` once and then
``tools.quiesced_snapshot(create, rollback, timeout=None)``, or passes those five as keyword
arguments on each call.

Whether the guest is frozen right now is ``VMwareTools.frozen`` (the host holds guest writes
while it is true); ``VMwareTools.phase`` is the state-machine state.

Stepping: ``quiesced_snapshot(..., on_step=f)`` calls ``f(step)`` after each of ``WF-1a``,
``WF-1b``, ``WF-1c`` and ``WF-1d`` has completed and before the next begins, on the one code
path every quiesced snapshot takes; the guest is then exactly as that step left it (frozen,
with the snapshot taken, after ``WF-1c``). ``f`` may block: a teaching front end waits there
for its learner (``vcbsim repl``). Failure paths run to their end without stopping.

One concern, although over 700 lines: one quiescing operation as the Tools run it
(``VMwareTools`` holds the Tools' state and switches, ``_Operation`` is the ``vmbackup`` state
machine of one operation, with its timers and the SYNC driver/VSS providers it engages);
which scripts run and in what order is ``_discovery.py``, what a script does ``_script.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal

from .._clock import VirtualClock
from .._errors import InvalidInputError, StateError
from .._faultrules import FaultInjector, FaultRule
from .._faults import MESSAGES, make_fault
from .._profiles import HostProfile, get_profile
from .._trace import Trace
from ._discovery import WINDOWS_INSTALL_PATH, ScriptPlan, discover_scripts, legacy_paths
from ._files import GuestFiles, is_executable, is_file
from ._script import run_script, tick_round

__all__ = [
    "VMwareTools",
    "ToolsSwitches",
    "QuiesceResult",
    "ScriptRun",
    "quiesced_snapshot",
    "DEFAULT_CONFIG",
    "TOOLS_STATES",
    "PHASES",
    "MSG",
]

TOOLS_STATES: tuple[str, ...] = ("not-installed", "not-running", "running")
#: Guest state-machine states (spec section 2).
PHASES: tuple[str, ...] = (
    "IDLE",
    "SCRIPT_FREEZE",
    "SYNC_FREEZE_WAIT",
    "SYNC_FREEZE",
    "SYNC_THAW",
    "SCRIPT_THAW",
    "COMPLETE_WAIT",
    "SCRIPT_ERROR",
    "SYNC_ERROR",
)

#: ``[vmbackup]`` keys of ``tools.conf`` and their defaults (R13). ``None`` = unset.
DEFAULT_CONFIG: Mapping[str, Any] = {
    "enableSyncDriver": True,
    "enableVSS": True,
    "enableNullDriver": True,
    "execScripts": True,
    "scriptArg": None,
    "timeout": None,
    "quiesceApps": True,
    "quiesceFS": True,
    "allowHWProvider": True,
    "forceQuiesce": False,
    "excludedFileSystems": None,
    "ignoreFrozenFileSystems": False,
    "enableXmlManifest": True,
    "vssUseDefault": True,
    "enableNVMe": True,
    "vss.disableAppQuiescing": False,
}

#: Guest event descriptions (R2, R9, R26, R28, R36; exact strings).
MSG = {
    "script_failed": "Custom quiesce script failed.",
    "script_start": "Error when starting custom quiesce scripts.",
    "on_freeze": "'VmBackupOnFreeze' operation failed.",
    "on_thaw": "'VmBackupOnThaw' operation failed.",
    "sync_enable": "Error when enabling the sync provider.",
    "sync_notify": "Error when notifying the sync provider.",
    "canceled": "Quiesce canceled.",
    "init": "Error initializing quiesce operation.",
    "busy": "Quiesce operation already in progress.",
}

#: The host's text for a guest RPC that failed with a reply (R47's wording).
_GUEST_REPLY = (
    "An error occurred while quiescing the virtual machine. The guest OS has reported an error "
    "during quiescing. The error message was: {desc}"
)
_AQF = "ApplicationQuiesceFault"
_FQF = "FilesystemQuiesceFault"
_G_MAXINT_S = 2147483647 // 1000

_STEP = {
    "SCRIPT_FREEZE": "WF-1a",
    "SYNC_FREEZE_WAIT": "WF-1b",
    "SYNC_FREEZE": "WF-1c",
    "SYNC_THAW": "WF-1d",
    "SCRIPT_THAW": "WF-1e",
    "COMPLETE_WAIT": "WF-1e",
    "SCRIPT_ERROR": "WF-1e",
    "SYNC_ERROR": "WF-1e",
}


@dataclass(frozen=True, slots=True)
class ToolsSwitches:
    """Switches for spec rules marked INFERRED and for open questions, with the likeliest default."""

    #: R12 (INFERRED consequence): completion is noticed at the 1 s poll, so each script (and an
    #: empty script phase) costs at least one tick. 0 = exact durations.
    tick: float = 1.0
    #: R24 (INFERRED): a Linux script without the execute bit makes the shell exit 126 (a
    #: failed script, ``"exit126"``) rather than a launch failure (``"launch-failure"``).
    noexec: Literal["exit126", "launch-failure"] = "exit126"
    #: INFERRED: Windows starts only these file types; any other file in backupScripts.d fails
    #: to launch. ``None``: every file launches.
    windows_launchable: tuple[str, ...] | None = (".bat", ".cmd", ".exe", ".com")
    #: Q4: the host's reaction to a failed thaw phase (R28) or an abort after the snapshot
    #: exists: ``"keep"`` the snapshot (result says ``outcome="error"``) or ``"fail"`` (roll it
    #: back, raise ApplicationQuiesceFault / the abort fault).
    thaw_failure: Literal["keep", "fail"] = "keep"
    #: R30 / Q12: legacy pre-freeze present, legacy post-thaw absent, directory scripts present
    #: -> spurious thaw failure, and vmtoolsd aborts in the freezeFail phase (also when a
    #: freezeFail script cannot launch). The code path is deterministic (reproduced, fidelity
    #: review D1), so ``None`` follows ``HostProfile.legacy_slot_defect``: on for Tools that run
    #: the legacy pair themselves (2010 on), impossible before. True/False force it.
    legacy_slot_defect: bool | None = None
    #: F6: the host sends ``vmbackup.abort`` when ``create()`` fails. False models a host that
    #: does not: the guest stays frozen until its abort timer fires (ISS-27).
    host_sends_abort: bool = True
    #: Q1: the third phase's argument (the code passes ``freezeFail``).
    fail_arg: str = "freezeFail"
    #: Q3: on the ``legacy`` layout (hostd ran the scripts) pass the phase argument too.
    legacy_layout_args: bool = True
    #: Q6: the vSphere fault for a guest abort (timer) ...
    abort_fault: str = "SnapshotFault"
    #: ... and for guest codes 3 and 5 (sync errors).
    guest_error_fault: str = "SnapshotFault"


@dataclass(frozen=True, slots=True)
class ScriptRun:
    """One script invocation (or attempted launch) in an operation."""

    phase: str
    index: int
    path: str
    arg: str
    exit_code: int | None
    duration: float
    legacy: bool
    launched: bool = True
    killed: bool = False
    error: str | None = None


@dataclass(slots=True)
class QuiesceResult:
    """How an operation ended. Also kept as ``VMwareTools.last_result`` when a fault is raised."""

    snapshot: Any = None
    quiesced: bool = False
    provider: str | None = None
    outcome: str = "done"
    code: int = 0
    message: str = ""
    errors: list[tuple[int, str]] = field(default_factory=list)
    runs: list[ScriptRun] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    thaw_failed: bool = False
    rolled_back: bool = False
    tools_crashed: bool = False
    #: what the freeze gave: ``"application"`` (VSS with its writers), ``"filesystem"`` (VSS
    #: without application quiescing, the SYNC driver, FIFREEZE), None (null provider: sync only)
    consistency: str | None = None

    def calls(self, phase: str | None = None) -> list[tuple[str, str]]:
        """``(path, arg)`` of launched scripts, optionally of one phase."""
        return [(r.path, r.arg) for r in self.runs if r.launched and (phase is None or r.phase == phase)]


class VMwareTools:
    """VMware Tools in one guest: state, version, quiesce providers, ``[vmbackup]`` config.

    ``providers`` are the mechanisms the guest OS has: ``"vss"`` (Windows 2003 and later),
    ``"sync"`` (the Windows SYNC driver on XP/2000; FIFREEZE or vmsync on Linux). The null
    provider (``sync(2)`` only, nothing frozen) is always there as the last resort (R16, R31).
    Defaults: ``("vss",)`` on Windows, ``("sync",)`` on Linux.
    """

    def __init__(
        self,
        guest: GuestFiles,
        *,
        state: str = "running",
        version: str = "3.5.0-110268",
        providers: tuple[str, ...] | None = None,
        config: Mapping[str, Any] | None = None,
        install_path: str | None = WINDOWS_INSTALL_PATH,
        scripts_dir: str | None = None,
        switches: ToolsSwitches | None = None,
    ) -> None:
        if state not in TOOLS_STATES:
            raise InvalidInputError(what="VMware Tools state", expected=" | ".join(TOOLS_STATES), got=state)
        os_family = guest.os_family
        legacy_paths(os_family)  # validates
        if providers is None:
            providers = ("vss",) if os_family == "windows" else ("sync",)
        for p in providers:
            if p not in ("vss", "sync", "null"):
                raise InvalidInputError(what="quiesce provider", expected="'vss', 'sync' or 'null'", got=p)
            if p == "vss" and os_family != "windows":
                raise InvalidInputError(what="quiesce provider", expected="'sync' or 'null' on Linux", got=p)
        cfg = dict(DEFAULT_CONFIG)
        for k, v in (config or {}).items():
            if k not in DEFAULT_CONFIG:
                raise InvalidInputError(what=
                    "[vmbackup] config key", expected="one of " + ", ".join(DEFAULT_CONFIG), got=k
                )
            cfg[k] = v
        self.guest = guest
        self.state = state
        self.version = version
        self.providers = tuple(providers)
        self.config = cfg
        self.install_path = install_path
        self.scripts_dir = scripts_dir
        self.switches = switches or ToolsSwitches()
        self.frozen = False
        #: Linux mount points frozen outside Tools (a script's ``fsfreeze -f``), spec R34
        self.frozen_by_others: set[str] = set()
        self.phase = "IDLE"
        self.last_result: QuiesceResult | None = None
        self._op: _Operation | None = None
        self._env: dict[str, Any] = {}

    @property
    def os_family(self) -> str:
        return self.guest.os_family

    @property
    def running(self) -> bool:
        return self.state == "running"

    def select_provider(self, profile: HostProfile | str | None = None) -> str:
        """The provider the non-forced path picks (R16): VSS, then the sync driver, then null.

        On a host without VSS quiescing (``HostProfile.windows_vss`` false: ESX 3.5 U1, KB
        5962168) every Windows guest uses the SYNC driver, which Tools of that era installed
        on Windows 2000, XP and 2003 alike (spec R53: "through the SYNC driver; from ESX 3.5
        U2, VSS too"). ``profile=None``: a host of today.
        """
        c = self.config
        vss_host = profile is None or get_profile(profile).windows_vss
        if self.os_family == "windows":
            if not vss_host:
                return "sync" if c["enableSyncDriver"] else "null"
            if c["enableVSS"] and "vss" in self.providers:
                return "vss"
            if c["enableSyncDriver"] and "sync" in self.providers:
                return "sync"
            return "null"
        # Linux: the sync-driver provider always constructs (backends are compiled in); whether
        # it can really freeze is found out at engage time (R31).
        return "sync" if c["enableSyncDriver"] else "null"

    def scripts(self, layout: str) -> ScriptPlan:
        """The script list this guest would use under ``layout`` (R19-R22)."""
        return discover_scripts(
            self.guest, layout, scripts_dir=self.scripts_dir, install_path=self.install_path
        )

    def script_layout(self, profile: HostProfile | str, provider: str | None = None) -> str:
        """Which scripts a quiesce on ``profile`` runs in this guest (a ``discover_scripts`` layout).

        Tools that run the legacy pair themselves (``legacy_scripts_by="tools"``, open-vm-tools
        ``1da06b950``, 2010 on) use the profile's layout: the legacy slot plus the directory.
        Before that hostd ran the legacy pair on its "sync driver path" only, so a guest that
        quiesces with the SYNC driver (Linux, Windows XP/2000, every Windows guest on 3.5 U1)
        runs the legacy pair alone (seed Table 2-3 "Other"; KB 1006671 for XP SP2 on 3.5 U2),
        and a VSS guest runs ``backupScripts.d`` alone (``"directory"``).
        """
        prof = get_profile(profile)
        if prof.legacy_scripts_by == "tools":
            return prof.script_layout
        provider = provider if provider is not None else self.select_provider(prof)
        if self.os_family == "windows" and provider == "vss" and prof.script_layout == "scripts.d":
            return "scripts.d" if prof.vss_guest_legacy_pair else "directory"
        return "legacy"

    def script_plan(self, profile: HostProfile | str) -> ScriptPlan:
        """The script list a quiesced snapshot on ``profile`` would run now (REPL, teach)."""
        return self.scripts(self.script_layout(profile))

    def abort_timeout(self, profile: HostProfile | str, timeout: float | None = None) -> float:
        """Seconds on the guest abort timer, 0 = none (R15: argument, config, profile).

        Tools older than open-vm-tools ``7c7a38862`` (2010; ``HostProfile.guest_abort_timer``
        false) have no timer, no ``[vmbackup] timeout`` key and no ``startWithOpts`` timeout: 0.
        """
        if timeout is not None and timeout < 0:
            raise InvalidInputError(what="quiesce timeout", expected="seconds >= 0", got=timeout)
        if not get_profile(profile).guest_abort_timer:
            return 0.0
        if timeout is not None:
            if timeout:
                return float(timeout)
        conf = self.config["timeout"]
        default = float(get_profile(profile).guest_abort_timeout)
        if conf is None:
            return default
        try:
            value = float(conf)
        except (TypeError, ValueError):
            return default
        if value < 0 or value > _G_MAXINT_S:
            return default
        return value

    @property
    def busy_until(self) -> float | None:
        """When an operation the host stopped waiting for ends on its own (3.5 era), or None."""
        op = self._op
        return op.busy_until if op is not None and op.detached is not None else None

    def poll(self, now: float) -> None:
        """Let an operation the host stopped waiting for go on once its work has ended."""
        op = self._op
        if op is not None and op.detached is not None and op.busy_until is not None and now >= op.busy_until:
            op.resume()

    def abort(self) -> None:
        """The host's ``vmbackup.abort`` (R9) for an operation left open: a host that did not
        abort after a failed create (``ToolsSwitches.host_sends_abort=False``, no timer) or a
        crash in the host's callback. Thaws, runs freezeFail, ends the operation."""
        if self._op is None:
            msg = "Error: no quiesce operation in progress"
            raise StateError(msg)
        self._op.late_abort()

    def bind(
        self,
        *,
        clock: VirtualClock,
        trace: Trace,
        faults: FaultInjector | None = None,
        profile: HostProfile | str,
        vm: str | None = None,
    ) -> VMwareTools:
        """Remember the host's clock, trace, fault injector, profile and the VM's name, so the
        host can call ``quiesced_snapshot(create, rollback, timeout=...)`` alone. Returns self."""
        self._env = {"clock": clock, "trace": trace, "faults": faults, "profile": get_profile(profile), "vm": vm}
        return self

    def quiesced_snapshot(
        self,
        create: Callable[[], Any],
        rollback: Callable[[Any], Any],
        *,
        timeout: float | None = None,
        clock: VirtualClock | None = None,
        trace: Trace | None = None,
        faults: FaultInjector | None = None,
        profile: HostProfile | str | None = None,
        vm: str | None = None,
        on_step: Callable[[str], None] | None = None,
        vss_application: bool = True,
    ) -> QuiesceResult:
        """Run the five steps around ``create()``; see the module docstring for every path.

        ``vss_application``: the host's verdict on VSS application consistency for this VM
        (``Host.vss_consistency``); False makes a VSS freeze file-system consistent only.

        ``create()`` takes the snapshot (advancing ``clock`` by its duration) and returns it, or
        raises a vim fault. ``rollback(snapshot)`` removes a snapshot the quiesce failed after.
        ``clock``, ``trace``, ``faults``, ``profile`` and ``vm`` default to what ``bind()`` set.
        ``on_step(step)`` is called after each of WF-1a … WF-1d (module docstring, Stepping).
        Raises ``ApplicationQuiesceFault``, ``FilesystemQuiesceFault``, the abort fault, or the
        host's own fault; on success returns a ``QuiesceResult``.
        """
        env = self._env
        clock = clock if clock is not None else env.get("clock")
        trace = trace if trace is not None else env.get("trace")
        faults = faults if faults is not None else env.get("faults")
        profile = profile if profile is not None else env.get("profile")
        vm = vm if vm is not None else env.get("vm")
        if clock is None or trace is None or profile is None:
            raise InvalidInputError(
                what="VMwareTools.quiesced_snapshot",
                expected="clock, trace and profile (as arguments or through bind())",
                got={"clock": clock, "trace": trace, "profile": profile},
            )
        self.poll(clock.now)
        if self._op is not None and self._op.detached is not None:
            raise make_fault(self.switches.guest_error_fault, _GUEST_REPLY.format(desc=MSG["busy"]))
        if self.phase != "IDLE":
            name = "TaskInProgress"
            raise make_fault(name, MSG["busy"])
        op = _Operation(self, create, rollback, clock, trace, faults, get_profile(profile), vm, timeout)
        op.on_step = on_step
        op.vss_application = vss_application
        return op.run()


def quiesced_snapshot(
    create: Callable[[], Any],
    rollback: Callable[[Any], Any],
    *,
    guest_files: GuestFiles,
    clock: VirtualClock,
    trace: Trace,
    faults: FaultInjector | None,
    profile: HostProfile | str,
    vm: str | None = None,
    timeout: float | None = None,
    tools: VMwareTools | None = None,
) -> QuiesceResult:
    """Function form of ``VMwareTools.quiesced_snapshot`` (default Tools: running, R13 config)."""
    if tools is None:
        tools = VMwareTools(guest_files)
    elif tools.guest is not guest_files:
        raise InvalidInputError(what="tools", expected="VMwareTools of guest_files", got=tools)
    return tools.quiesced_snapshot(
        create, rollback, clock=clock, trace=trace, faults=faults, profile=profile, vm=vm, timeout=timeout
    )


class _TimerFired(Exception):
    """The guest abort timer fired while the host was still taking the snapshot."""


def _timer_fired() -> None:
    raise _TimerFired


class _Operation:
    """One quiesce operation (the guest's ``vmbackup`` state for its lifetime)."""

    def __init__(
        self,
        tools: VMwareTools,
        create: Callable[[], Any],
        rollback: Callable[[Any], Any],
        clock: VirtualClock,
        trace: Trace,
        faults: FaultInjector | None,
        profile: HostProfile,
        vm: str | None,
        timeout: float | None,
    ) -> None:
        self.tools = tools
        self.files = tools.guest
        self.sw = tools.switches
        self.create = create
        self.rollback = rollback
        self.clock = clock
        self.trace = trace
        self.faults = faults
        self.profile = profile
        self.vm = vm
        self.timeout = tools.abort_timeout(profile, timeout)
        self.deadline: float | None = None
        self.result = QuiesceResult(started=clock.now)
        self.plan: ScriptPlan | None = None
        self.script_arg = tools.config["scriptArg"]
        sw_defect = self.sw.legacy_slot_defect
        self.defect = profile.legacy_slot_defect if sw_defect is None else sw_defect
        # Without a guest timer (3.5 era) the host's own limit still ends its wait for the
        # guest's part before the snapshot; the guest is never told (``_detach``).
        self.host_deadline = not profile.guest_abort_timer and profile.host_quiesce_timeout > 0
        #: when the guest, left running by a host that gave up, finishes on its own (``_detach``)
        self.busy_until: float | None = None
        self.detached: tuple[str, int] | None = None
        self._pending: tuple[ScriptRun, str, str | None] | None = None
        self.vss_application = True
        #: called after each of WF-1a … WF-1d completes (module docstring, Stepping)
        self.on_step: Callable[[str], None] | None = None

    def _step_done(self, step: str) -> None:
        if self.on_step is not None:
            self.on_step(step)

    # -- small helpers ------------------------------------------------------------------
    def _emit(self, kind: str, step: str | None, **details: Any) -> None:
        self.trace.emit("guest", kind, vm=self.vm, step=step, **details)

    def _check(self, operation: str, target: str) -> FaultRule | None:
        if self.faults is None:
            return None
        return self.faults.check(operation, target, vm=self.vm)

    def _set_phase(self, phase: str) -> None:
        self.tools.phase = phase

    def _left(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.clock.now

    def _error(self, code: int, desc: str) -> None:
        """A guest ``req.error`` (recorded; ``quiesce.end`` carries the list)."""
        self.result.errors.append((code, desc))

    def _end(self, outcome: str, code: int, message: str) -> None:
        self.tools.frozen = False
        self._set_phase("IDLE")
        self.tools._op = None
        r = self.result
        r.outcome, r.code, r.message, r.ended = outcome, code, message, self.clock.now
        self._emit(
            "quiesce.end",
            "WF-1e",
            outcome=outcome,
            code=code,
            message=message,
            errors=[list(e) for e in r.errors],
        )
        self.tools.last_result = r

    def _thaw_now(self, provider: str, reason: str) -> None:
        """Undo a freeze on abort (T17); nothing stays frozen."""
        if self.tools.frozen:
            self.tools.frozen = False
            self._emit("quiesce.disengage", "WF-1d", provider=provider, ok=True, reason=reason)

    def _abort(self, state: str, reason: str, provider: str | None) -> None:
        """T16 / T17: cancel; ``req.aborted 4 "Quiesce canceled."``."""
        fired_at = self.deadline if reason == "timer" and self.deadline is not None else self.clock.now
        self._emit("quiesce.abort", _STEP[state], state=state, reason=reason, fired_at=fired_at)
        self.result.errors.append((4, MSG["canceled"]))
        if provider is not None:
            self._thaw_now(provider, "abort")

    def _abort_fault(self) -> Any:
        return make_fault(self.sw.abort_fault, MESSAGES["QuiesceTimeout"])

    def _guest_fault(self, code: int, desc: str, name: str = _AQF) -> Any:
        return make_fault(name, MESSAGES["ApplicationQuiesceFault"], code=code, desc=desc)

    def _detach(self, state: str, index: int) -> None:
        """3.5 era (no guest timer, open-vm-tools before ``7c7a38862``): the host's limit
        (``HostProfile.host_quiesce_timeout``) ends its wait, and "Tools would never be
        notified". The operation stays open in ``state`` until what it was doing ends on its own
        (``busy_until``); until then a new quiesce gets "Quiesce operation already in
        progress." (the commit's message). Raises the host's timeout fault."""
        self.detached = (state, index)
        self.deadline = None
        r = self.result
        r.outcome, r.message = "running", "the host stopped waiting; the guest was not told"
        self.tools.last_result = r
        raise self._abort_fault()

    def resume(self) -> None:
        """The detached operation's work ended (``busy_until`` passed): the guest goes on.

        INFERRED (no source describes it): a freeze script that exited 0 lets the remaining
        freeze scripts run and the guest freeze, but ``prov.snapshotCommit`` cannot be
        delivered to a host that no longer waits (T7b / F5), so the guest thaws at once and
        every script gets ``freezeFail``. A freeze script that failed takes F1's path.
        """
        assert self.detached is not None
        state, index = self.detached
        self.detached = None
        self.busy_until = None
        pending, self._pending = self._pending, None
        if pending is not None:
            run, step, shown_arg = pending
            self.result.runs.append(run)
            self._emit(
                "script.run", step, path=run.path, arg=shown_arg, exit_code=run.exit_code,
                duration=run.duration, legacy=run.legacy, index=run.index,
            )
            if run.exit_code != 0:  # F1 / R26
                self._error(2, MSG["script_failed"])
                self._error(5, MSG["on_freeze"])
                self._freeze_fail(below=index)
                self._end("error", 2, MSG["script_failed"])
                return
            failed = self._freeze_scripts(first=index + 1)
            if failed is not None:
                self._error(2, MSG["script_failed"])
                self._error(5, MSG["on_freeze"])
                self._freeze_fail(below=failed[1])
                self._end("error", 2, MSG["script_failed"])
                return
        provider = self.result.provider or "null"
        self._emit("quiesce.engage", "WF-1b", provider=provider, ok=False,
                   error="prov.snapshotCommit could not be sent: the host stopped waiting")
        self._set_phase("SYNC_ERROR")
        self._freeze_fail()
        self._end("error", 3, MSG["sync_enable"])

    def late_abort(self) -> None:
        """``vmbackup.abort`` for an operation left open (R9; ignored in the error states)."""
        state = self.tools.phase
        if state in ("SCRIPT_ERROR", "SYNC_ERROR"):
            return
        below: int | None = None
        if self.detached is not None:  # a 3.5-era operation the host had stopped waiting for
            below = self.detached[1] if state == "SCRIPT_FREEZE" else None
            ends = self.busy_until
            self.detached, self.busy_until = None, None
            pending, self._pending = self._pending, None
            if pending is not None and ends is not None:  # the running script is killed (R9)
                run, step, shown_arg = pending
                ran = self.clock.now - (ends - run.duration)
                self._emit("script.run", step, path=run.path, arg=shown_arg, exit_code=None,
                           duration=ran, legacy=run.legacy, index=run.index, killed=True)
            if state == "SCRIPT_FREEZE":
                self._abort(state, "host", None)
                self._freeze_fail(below=below)
                self._end("aborted", 4, MSG["canceled"])
                return
        self._abort(state, "host", self.result.provider)
        self._set_phase("SYNC_ERROR")
        self._freeze_fail()
        self._end("aborted", 4, MSG["canceled"])

    def _do_rollback(self, snapshot: Any) -> None:
        self.result.rolled_back = True
        self.result.snapshot = None
        self.rollback(snapshot)

    # -- scripts ------------------------------------------------------------------------
    def _args(self, phase_arg: str, legacy: bool = False) -> list[str]:
        if legacy and self.profile.legacy_scripts_by == "hostd" and not self.sw.legacy_layout_args:
            return []  # Q3: what hostd passed to the legacy pair is unknown
        args = [phase_arg]
        if self.script_arg:  # an empty scriptArg is not passed (R23, 12.3.5+)
            args.append(str(self.script_arg))
        return args

    def _launch_error(self, path: str) -> tuple[str | None, int | None]:
        """Why ``path`` cannot be launched (``(error, None)``) or a forced exit (``(None, 126)``)."""
        rule = self._check("script.launch", path)
        if rule is not None:
            return (rule.message or (f"cannot launch ({rule.fault})" if rule.fault else "cannot launch")), None
        if self.files.os_family == "windows":
            exts = self.sw.windows_launchable
            if exts is not None and not path.lower().endswith(tuple(e.lower() for e in exts)):
                return "not a program Windows can start", None
        elif not is_executable(self.files, path):
            if self.sw.noexec == "launch-failure":
                return "not executable", None
            return None, 126
        return None, None

    def _run(self, phase: str, index: int, path: str, legacy: bool, step: str, *, timed: bool) -> tuple[ScriptRun, bool]:
        """Run one script. Returns the run and whether the abort timer fired during it."""
        arg = self.sw.fail_arg if phase == "freezeFail" else phase
        args = self._args(arg, legacy)
        shown_arg = args[0] if args else None
        error, forced = self._launch_error(path)
        if error is not None:
            run = ScriptRun(phase, index, path, arg, None, 0.0, legacy, launched=False, error=error)
            self.result.runs.append(run)
            self._emit(
                "script.run", step, path=path, arg=shown_arg, exit_code=None, duration=0.0,
                legacy=legacy, index=index, error=error,
            )
            return run, False
        start = self.clock.now
        host_wait = timed and self.host_deadline and self.deadline is not None
        budget = self._left() if timed and not self.host_deadline else None
        rule = self._check("script", path)
        delay = rule.delay if rule is not None else 0.0
        if forced is not None:
            exit_code: int | None = forced
            duration, killed = 0.0, False
        elif budget is not None and delay > budget:
            exit_code, duration, killed = None, budget, True
        else:
            text = self.files.read_bytes(path)
            out = run_script(
                text, args, self.files, budget=None if budget is None else budget - delay,
                frozen=self.tools.frozen_by_others,
            )
            exit_code, duration, killed = out.exit_code, delay + out.duration, out.killed
        if not killed and rule is not None and rule.exit_code is not None:
            exit_code = rule.exit_code
        fired = killed
        if killed:
            assert self.deadline is not None
            self.clock.advance_to(self.deadline)
            exit_code = None
        else:
            observed = tick_round(duration, self.sw.tick)
            if host_wait and self.deadline is not None and start + observed > self.deadline:
                # 3.5 era: the host stops waiting, the script goes on (``_detach``); its exit is
                # traced when the guest notices it, at ``busy_until``.
                self.clock.advance_to(self.deadline)
                self.busy_until = start + observed
                run = ScriptRun(phase, index, path, arg, exit_code, observed, legacy)
                self._pending = (run, step, shown_arg)
                return run, True
            if timed and self.deadline is not None and start + observed > self.deadline:
                self.clock.advance_to(self.deadline)  # the timer fires before the exit is noticed
                fired = True
            else:
                self.clock.advance(observed)
        run = ScriptRun(phase, index, path, arg, exit_code, self.clock.now - start, legacy, killed=killed)
        self.result.runs.append(run)
        extra: dict[str, Any] = {"killed": True} if killed else {}
        self._emit(
            "script.run", step, path=path, arg=shown_arg, exit_code=exit_code,
            duration=run.duration, legacy=legacy, index=index, **extra,
        )
        return run, fired

    def _idle_tick(self) -> None:
        """An empty script phase still ends only at the next poll tick (R12, T-table note)."""
        if self.sw.tick > 0:
            self.clock.advance(self.sw.tick)

    def _defect_applies(self) -> bool:
        """R30's conditions: legacy pre-freeze yes, legacy post-thaw no, directory scripts yes."""
        plan = self.plan
        if not self.defect or plan is None or not plan.has_legacy_slot:
            return False
        pre, post = legacy_paths(plan.os_family)
        return is_file(self.files, pre) and not is_file(self.files, post) and len(plan.entries) > 1

    def _freeze_fail(self, below: int | None = None) -> None:
        """The freezeFail phase (SCRIPT_ERROR): descending, exit codes ignored (R29)."""
        self._set_phase("SCRIPT_ERROR")
        plan = self.plan
        ran = False
        if plan is not None:
            for index, path in plan.order("freezeFail", below):
                if not is_file(self.files, path):
                    continue
                ran = True
                run, _ = self._run("freezeFail", index, path, plan.entries[index].legacy, "WF-1e", timed=False)
                if not run.launched and self.defect:
                    self._crash("a freezeFail script could not be launched (R30)")
                    return
            if (below is None or below > 0) and self._defect_applies():
                self._crash("the freezeFail walk past the legacy slot failed (R30)")
                return
        if not ran:
            self._idle_tick()

    def _crash(self, why: str) -> None:
        """R30 (switch): ``g_error`` in ``VmBackupOnError`` for SCRIPT_ERROR: vmtoolsd aborts."""
        self.tools.state = "not-running"
        self.result.tools_crashed = True
        self._error(5, f"vmtoolsd aborted: {why}")

    # -- the operation ------------------------------------------------------------------
    def run(self) -> QuiesceResult:
        tools, r = self.tools, self.result
        if not tools.running:
            return self._without_tools()
        provider = tools.select_provider(self.profile)
        layout = tools.script_layout(self.profile, provider)
        # Anything unexpected escaping from here (an injected crash in the host's callback)
        # leaves the operation as it was at that moment: the guest may still be frozen, as after
        # a real hostd crash (F12), until ``VMwareTools.abort()``.
        tools._op = self
        r.provider = provider
        return self._run_steps(provider, layout)

    def _without_tools(self) -> QuiesceResult:
        """F11 / Q5: ``HostProfile.quiesce_without_tools``."""
        if self.profile.quiesce_without_tools == "fault":
            name = "ApplicationQuiesceFault"
            raise make_fault(name, MESSAGES["ToolsUnavailable"])
        r = self.result
        r.snapshot = self.create()
        r.quiesced = False
        r.outcome = "skipped"
        r.ended = self.clock.now
        self.tools.last_result = r
        return r

    def _run_steps(self, provider: str, layout: str) -> QuiesceResult:
        tools, clock, r = self.tools, self.clock, self.result
        self._set_phase("SCRIPT_FREEZE")
        exec_scripts = bool(tools.config["execScripts"])
        init_error = None
        if exec_scripts:
            if (
                layout in ("scripts.d", "directory")
                and tools.os_family == "windows"
                and tools.install_path is None
                and tools.scripts_dir is None
            ):
                init_error = "Tools install path unknown (R19)"
            else:
                self.plan = tools.scripts(layout)
        self._emit(
            "quiesce.start", "WF-1a", provider=provider, layout=layout, timeout=self.timeout,
            scripts=len(self.plan.entries) if self.plan else 0,
        )
        if init_error is not None:  # R19 INFERRED edge case -> R6
            self._error(2, MSG["script_start"])
            self._end("error", 2, MSG["script_start"])
            raise self._guest_fault(2, MSG["script_start"])
        if self.timeout > 0:  # T1: armed after the start (R4, R15)
            self.deadline = clock.now + self.timeout
        elif self.host_deadline:  # 3.5 era: only the host's own wait is limited (``_detach``)
            self.deadline = clock.now + self.profile.host_quiesce_timeout

        # Step 1 (WF-1a): freeze scripts, ascending (R21-R23).
        failed_at = self._freeze_scripts()
        if failed_at is not None:
            kind, k = failed_at
            if kind == "init":  # F2 / R6 / R27: no freezeFail, no req.done
                self._error(2, MSG["script_start"])
                self._end("error", 2, MSG["script_start"])
                raise self._guest_fault(2, MSG["script_start"])
            if kind == "abort" and self.host_deadline:  # 3.5 era: the host gives up alone
                self._detach("SCRIPT_FREEZE", k)
            if kind == "abort":  # F9, SCRIPT_FREEZE
                self._abort("SCRIPT_FREEZE", "timer", None)
                self._freeze_fail(below=k)
                self._end("aborted", 4, MSG["canceled"])
                raise self._abort_fault()
            # F1 / R26
            self._error(2, MSG["script_failed"])
            self._error(5, MSG["on_freeze"])
            self._freeze_fail(below=k)
            self._end("error", 2, MSG["script_failed"])
            raise self._guest_fault(2, MSG["script_failed"])
        self._step_done("WF-1a")

        # Step 2 (WF-1b): engage (R16, R31, R35, R40).
        engaged = self._engage(provider)
        if engaged is not None:
            return self._raise_after_fail(engaged)
        effective = r.provider or provider
        self._step_done("WF-1b")

        # Step 3 (WF-1c): the host's snapshot.
        frozen_at = clock.now
        try:
            # only the guest's own timer fires inside create(); a 3.5-era host deadline (no guest
            # timer, ``host_deadline``) is the host's wait, not the guest's abort
            guest_timer = self.deadline is not None and not self.host_deadline
            timer = clock.alarm(self.deadline, _timer_fired) if guest_timer and self.deadline is not None else nullcontext()
            with timer:
                snapshot = self.create()
        except _TimerFired:
            # F9 in SYNC_FREEZE while the host is still taking the snapshot: the guest's timer
            # fires at its own time (spec R15), the guest thaws and aborts; the host's create
            # stops there and fails with the abort fault
            self._abort("SYNC_FREEZE", "timer", effective)
            self._set_phase("SYNC_ERROR")
            self._freeze_fail()
            self._end("aborted", 4, MSG["canceled"])
            raise self._abort_fault() from None
        except Exception:
            self._host_failed(effective)
            raise
        r.snapshot = snapshot
        self._step_done("WF-1c")

        # Step 4 (WF-1d): snapshotDone -> thaw (T8 / T9).
        self._disengage(effective, snapshot, frozen_at)
        self._step_done("WF-1d")

        # Step 5 (WF-1e): thaw scripts, descending (R23, R28).
        return self._thaw(snapshot)

    def _freeze_scripts(self, first: int = 0) -> tuple[str, int] | None:
        plan = self.plan
        launched_any = first > 0
        if plan is None or not plan.entries:
            self._idle_tick()
            return None
        for index, path in plan.order("freeze"):
            if index < first or not is_file(self.files, path):  # R22: re-checked just before it runs
                continue
            run, fired = self._run("freeze", index, path, plan.entries[index].legacy, "WF-1a", timed=True)
            if not run.launched:
                return ("init", index) if not launched_any else ("fail", index)
            launched_any = True
            if fired:
                return ("abort", index)
            if run.exit_code != 0:
                return ("fail", index)
        if not launched_any:
            self._idle_tick()
        return None

    def _engage(self, provider: str) -> tuple[int, str, str] | None:
        """Step 2. Returns ``None`` when engaged, else the failure ``(code, desc, state)``."""
        tools, clock, r = self.tools, self.clock, self.result
        windows = tools.os_family == "windows"
        self._set_phase("SYNC_FREEZE" if windows else "SYNC_FREEZE_WAIT")
        rule = self._check("quiesce.engage", self.vm or "")
        delay = rule.delay if rule is not None else 0.0
        left = self._left()
        if left is not None and delay > left and self.host_deadline:
            self.busy_until = clock.now + delay
            clock.advance_to(clock.now + max(left, 0.0))
            self._detach(tools.phase, -1)
        if left is not None and delay > left:  # F9 / T16 in SYNC_FREEZE_WAIT
            clock.advance_to(clock.now + max(left, 0.0))
            self._abort(tools.phase, "timer", None)
            self._emit("quiesce.engage", "WF-1b", provider=provider, ok=False, error="canceled by the abort timer")
            self._set_phase("SYNC_ERROR")
            self._freeze_fail()
            self._end("aborted", 4, MSG["canceled"])
            raise self._abort_fault()
        clock.advance(delay)
        error: str | None = None
        effective = provider
        if rule is not None and (rule.fault or rule.exit_code is not None or not rule.delay):
            error = rule.message or f"injected {rule.fault or 'failure'}"
        elif provider == "sync" and not windows and "sync" not in tools.providers:
            # R31: no FIFREEZE and no vmsync; null driver only if allowed (F4).
            if tools.config["enableNullDriver"]:
                effective = "null"
            else:
                error = "no freeze backend and enableNullDriver=false"
        elif provider == "sync" and not windows and self.profile.linux_freeze_options:
            error = self._fifreeze_error()
        if error is not None:  # F3: straight to step 5 with freezeFail, no snapshot
            self._emit("quiesce.engage", "WF-1b", provider=provider, ok=False, error=error)
            self._error(3, MSG["sync_enable"])
            return (3, MSG["sync_enable"], "SYNC_ERROR")
        r.provider = effective
        if effective == "vss":
            app = self.vss_application and not tools.config["vss.disableAppQuiescing"]
            r.consistency = "application" if app else "filesystem"
        else:
            r.consistency = "filesystem" if effective == "sync" else None
        if self.host_deadline:
            self.deadline = None  # the host has what it waited for; nothing times the rest
        tools.frozen = effective in ("vss", "sync")
        self._set_phase("SYNC_FREEZE")
        self._emit("quiesce.engage", "WF-1b", provider=effective, ok=True, frozen=tools.frozen, consistency=r.consistency)
        return None

    def _mounts(self) -> list[str]:
        """The guest's local mount points in mount-table order ("/" for a guest without volumes)."""
        vols = getattr(self.files, "mounted", None)
        points = [v.mount_point for v in vols or () if getattr(v, "mount_point", None)]
        return points or ["/"]

    def _fifreeze_error(self) -> str | None:
        """R32-R34 with today's Linux Tools: ``excludedFileSystems`` globs (``*`` and ``?`` match
        ``/`` too) drop mount points, nothing left fails ("No file systems to freeze"); a file
        system frozen by someone else answers EBUSY, which fails the freeze unless
        ``ignoreFrozenFileSystems`` skips it. Reverse mount-table order (R33)."""
        import fnmatch

        conf = self.tools.config
        globs = [g.strip() for g in str(conf["excludedFileSystems"] or "").split(",") if g.strip()]
        wanted = [m for m in self._mounts() if not any(fnmatch.fnmatchcase(m, g) for g in globs)]
        if not wanted:
            return "No file systems to freeze"
        for mount in reversed(wanted):
            if mount in self.tools.frozen_by_others:
                if conf["ignoreFrozenFileSystems"]:
                    continue
                return f"{mount} appears locked or frozen by another process (EBUSY)"
        return None

    def _raise_after_fail(self, failure: tuple[int, str, str]) -> QuiesceResult:
        code, desc, state = failure
        self._set_phase(state)
        self._freeze_fail()
        self._end("error", code, desc)
        raise self._guest_fault(code, desc, self.sw.guest_error_fault)

    def _host_failed(self, provider: str) -> None:
        """F6: ``create()`` raised while the guest was frozen."""
        if self.sw.host_sends_abort:
            self._abort("SYNC_FREEZE", "host", provider)
        else:  # the guest stays frozen until its own timer fires (ISS-27); 0 = never
            if self.deadline is None:
                # Nothing ever thaws it (F12): stays SYNC_FREEZE until VMwareTools.abort().
                self.tools.last_result = self.result
                return
            self.clock.advance_to(self.deadline)
            self._abort("SYNC_FREEZE", "timer", provider)
        self._set_phase("SYNC_ERROR")
        self._freeze_fail()
        self._end("aborted", 4, MSG["canceled"])

    def _disengage(self, provider: str, snapshot: Any, frozen_at: float) -> None:
        tools, clock, prof = self.tools, self.clock, self.profile
        done_at = clock.now
        rule = self._check("quiesce.disengage", self.vm or "")
        if rule is not None and rule.delay:
            clock.advance(rule.delay)
        if self.deadline is not None and clock.now > self.deadline:  # F9, SYNC_FREEZE
            self._abort("SYNC_FREEZE", "timer", provider)
            self._set_phase("SYNC_ERROR")
            self._freeze_fail()
            self._end("aborted", 4, MSG["canceled"])
            self._do_rollback(snapshot)
            raise self._abort_fault()
        error: str | None = None
        if rule is not None and (rule.fault or rule.exit_code is not None or not rule.delay):
            error = rule.message or f"injected {rule.fault or 'failure'}"
        elif provider == "vss" and done_at - frozen_at > prof.vss_hold_writes:
            error = (
                f"VSS hold-writes window expired ({done_at - frozen_at:g} s > "
                f"{prof.vss_hold_writes:g} s)"
            )
        self._set_phase("SYNC_THAW")
        was_frozen = tools.frozen
        tools.frozen = False
        if error is not None:  # F7 / R36 / R43 / R46
            self._emit("quiesce.disengage", "WF-1d", provider=provider, ok=False, error=error)
            self._error(3, MSG["sync_notify"])
            self._set_phase("SYNC_ERROR")
            self._freeze_fail()
            self._end("error", 3, MSG["sync_notify"])
            self._do_rollback(snapshot)
            raise make_fault(_FQF)
        self._emit("quiesce.disengage", "WF-1d", provider=provider, ok=True, was_frozen=was_frozen)

    def _thaw(self, snapshot: Any) -> QuiesceResult:
        r, plan = self.result, self.plan
        self._set_phase("SCRIPT_THAW")
        failed = False
        ran = False
        if plan is not None:
            for index, path in plan.order("thaw"):
                if not is_file(self.files, path):
                    continue
                ran = True
                run, fired = self._run("thaw", index, path, plan.entries[index].legacy, "WF-1e", timed=True)
                if fired:  # F9, SCRIPT_THAW: the rest are skipped
                    self._abort("SCRIPT_THAW", "timer", None)
                    self._end("aborted", 4, MSG["canceled"])
                    return self._after_snapshot_error(snapshot, abort=True)
                if not run.launched or run.exit_code != 0:
                    failed = True  # R28: remembered; the others still run
            if self._defect_applies():
                failed = True  # R30 switch: spurious thaw failure
        if not ran:
            self._idle_tick()
        if failed:
            r.thaw_failed = True
            self._error(2, MSG["script_failed"])
            self._error(5, MSG["on_thaw"])
            self._end("error", 2, MSG["script_failed"])
            return self._after_snapshot_error(snapshot, abort=False)
        r.quiesced = True
        self._end("done", 0, "")
        return r

    def _after_snapshot_error(self, snapshot: Any, *, abort: bool) -> QuiesceResult:
        """Q4: keep the snapshot (default) or roll it back and fail."""
        r = self.result
        r.quiesced = not abort
        if self.sw.thaw_failure == "keep":
            return r
        self._do_rollback(snapshot)
        if abort:
            raise self._abort_fault()
        raise self._guest_fault(2, MSG["script_failed"])
