"""Deliberately broken guest agents: VMware Tools with one defect each.

Each is built from the simulator's own ``VMwareTools`` with the smallest change that breaks
one guest-side rule, so the kit is shown to certify a guest agent (spec R20-R36, F1-F9) and
not just an orchestrator. ``agent(name)`` returns a ``guest_agent_factory`` for ``run()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from vcbsim.simulator.tools import _quiesce as q
from vcbsim.simulator.tools._discovery import ScriptPlan


class _Plan:
    """A script plan whose run order is altered by ``order_fn(plan, phase, below)``."""

    def __init__(self, plan: ScriptPlan, order_fn: Callable[[ScriptPlan, str, int | None], list[tuple[int, str]]]) -> None:
        self._plan = plan
        self._order_fn = order_fn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._plan, name)

    def order(self, phase: str, below: int | None = None) -> list[tuple[int, str]]:
        return self._order_fn(self._plan, phase, below)


def _thaw_ascending(plan: ScriptPlan, phase: str, below: int | None) -> list[tuple[int, str]]:
    out = plan.order(phase, below)  # type: ignore[arg-type]
    return list(reversed(out)) if phase == "thaw" else out


def _freezefail_includes_failed(plan: ScriptPlan, phase: str, below: int | None) -> list[tuple[int, str]]:
    if phase == "freezeFail" and below is not None:
        below = min(below + 1, len(plan.entries))
    return plan.order(phase, below)  # type: ignore[arg-type]


def _legacy_thaw_first(plan: ScriptPlan, phase: str, below: int | None) -> list[tuple[int, str]]:
    out = plan.order(phase, below)  # type: ignore[arg-type]
    if phase == "thaw" and plan.has_legacy_slot and len(out) > 1:
        return [out[-1], *out[:-1]]
    return out


def _freeze_case_insensitive(plan: ScriptPlan, phase: str, below: int | None) -> list[tuple[int, str]]:
    """A vendor agent that sorts "alphabetically" as a person would (case-insensitive)."""
    out = plan.order(phase, below)  # type: ignore[arg-type]
    if phase != "freeze":
        return out
    legacy = [e for e in out if plan.entries[e[0]].legacy]
    rest = sorted((e for e in out if not plan.entries[e[0]].legacy), key=lambda e: e[1].casefold())
    return legacy + rest


def _freezefail_dir_ascending(plan: ScriptPlan, phase: str, below: int | None) -> list[tuple[int, str]]:
    out = plan.order(phase, below)  # type: ignore[arg-type]
    if phase != "freezeFail":
        return out
    legacy = [e for e in out if plan.entries[e[0]].legacy]
    return list(reversed([e for e in out if not plan.entries[e[0]].legacy])) + legacy


def _without_legacy_post(plan: ScriptPlan, phase: str, below: int | None) -> list[tuple[int, str]]:
    """Forgets the legacy post-thaw script (it never gets thaw or freezeFail)."""
    out = plan.order(phase, below)  # type: ignore[arg-type]
    return out if phase == "freeze" else [e for e in out if not plan.entries[e[0]].legacy]


def _no_freezefail_after_a_failed_script(plan: ScriptPlan, phase: str, below: int | None) -> list[tuple[int, str]]:
    """After a failed freeze script (``below`` set) the scripts before it never get freezeFail."""
    if phase == "freezeFail" and below is not None:
        return []
    return plan.order(phase, below)  # type: ignore[arg-type]


class _QuiescesBeforeScripts(q._Operation):
    """Engages the quiescing provider before the pre-freeze scripts run (1b before 1a)."""

    def _freeze_scripts(self) -> tuple[str, int] | None:
        self._emit("quiesce.engage", "WF-1b", provider="vss", ok=True, frozen=False)
        return super()._freeze_scripts()


class _ThawsBeforeSnapshot(q._Operation):
    """Releases the freeze right after engaging, before the host's snapshot (1d before 1c)."""

    def _engage(self, provider: str) -> tuple[int, str, str] | None:
        failed = super()._engage(provider)
        if failed is None:
            self.tools.frozen = False
            self._emit("quiesce.disengage", "WF-1d", provider=provider, ok=True, was_frozen=True)
        return failed


class _ThawWhileFrozen(q._Operation):
    """Runs the post-thaw scripts before unquiescing the guest (1e before 1d)."""

    def _disengage(self, provider: str, snapshot: Any, frozen_at: float) -> None:
        plan = self.plan
        if plan is not None:
            for index, path in plan.order("thaw"):
                if q.is_file(self.files, path):
                    self._run("thaw", index, path, plan.entries[index].legacy, "WF-1e", timed=False)
        super()._disengage(provider, snapshot, frozen_at)

    def _thaw(self, snapshot: Any) -> Any:
        self._set_phase("SCRIPT_THAW")
        self.result.quiesced = True
        self._end("done", 0, "")
        return self.result


class _IgnoresFailedFreeze(q._Operation):
    """Stops at a failing pre-freeze script but quiesces and snapshots anyway."""

    def _freeze_scripts(self) -> tuple[str, int] | None:
        found = super()._freeze_scripts()
        return None if found is not None and found[0] == "fail" else found


class _IgnoresEngageFailure(q._Operation):
    """Goes on to the snapshot although engaging VSS / the SYNC driver failed."""

    def _engage(self, provider: str) -> tuple[int, str, str] | None:
        super()._engage(provider)
        return None


class _ThawAfterSnapshotFailure(q._Operation):
    """After the host's snapshot failed, runs the scripts with thaw instead of freezeFail."""

    def _host_failed(self, provider: str) -> None:
        self.sw = replace(self.sw, fail_arg="thaw")
        super()._host_failed(provider)


class _ReportsFailureAsDone(q._Operation):
    """Ends every operation 'done', also after a failed script."""

    def _end(self, outcome: str, code: int, message: str) -> None:
        super()._end("done" if outcome == "error" else outcome, 0 if outcome == "error" else code, message)


class _NeverEndsFailedOperation(q._Operation):
    """Forgets to end an operation that failed (the host's view: still running)."""

    def _end(self, outcome: str, code: int, message: str) -> None:
        if outcome == "error":
            self._set_phase("IDLE")
            return
        super()._end(outcome, code, message)


class _ScriptsOverlap(q._Operation):
    """Launches every freeze script at once (each reported when it exits)."""

    def _freeze_scripts(self) -> tuple[str, int] | None:
        plan, real = self.plan, self.clock
        if plan is None or not plan.entries:
            return super()._freeze_scripts()
        longest = 0.0
        try:
            for index, path in plan.order("freeze"):
                if not q.is_file(self.files, path):
                    continue
                self.clock = q.VirtualClock(real.now)  # each on its own time line
                run, _ = self._run("freeze", index, path, plan.entries[index].legacy, "WF-1a", timed=False)
                longest = max(longest, run.duration)
                if run.exit_code != 0:
                    return ("fail", index)
        finally:
            self.clock = real
            real.advance(longest)
        return None


class _FreezeContinues(q._Operation):
    """Runs every freeze script even after one failed, then reports the first failure."""

    def _freeze_scripts(self) -> tuple[str, int] | None:
        plan = self.plan
        if plan is None or not plan.entries:
            self._idle_tick()
            return None
        failed: int | None = None
        for index, path in plan.order("freeze"):
            if not q.is_file(self.files, path):
                continue
            run, _ = self._run("freeze", index, path, plan.entries[index].legacy, "WF-1a", timed=True)
            if failed is None and run.exit_code != 0:
                failed = index
        return None if failed is None else ("fail", failed)


class _IgnoresTimer(q._Operation):
    """Announces the abort timer but never arms it."""

    @property  # type: ignore[override]
    def deadline(self) -> float | None:
        return None

    @deadline.setter
    def deadline(self, value: float | None) -> None:
        pass


class _ForgetsUnquiesce(q._Operation):
    """When the host's snapshot fails while the guest is frozen, ends without thawing it."""

    def _host_failed(self, provider: str) -> None:
        self._set_phase("SYNC_ERROR")
        self._freeze_fail()
        self._end("error", 3, "snapshot failed")


class _SlowEngage(q._Operation):
    """Takes 85 % of the abort timer to engage the quiescing provider (slow VSS writers),
    then quiesces correctly: within the timer, but too close to it (TMO-NEAR-LIMIT)."""

    def _engage(self, provider: str) -> tuple[int, str, str] | None:
        left = self._left()
        delay = 0.85 * self.timeout if left is None else min(0.85 * self.timeout, left - 1.0)
        if self.timeout > 0 and delay > 0:
            self.clock.advance(delay)  # never past the timer: this agent is slow, not broken
        return super()._engage(provider)


def _tools_class(op_cls: type[q._Operation] | None = None, order_fn: Any = None) -> type[q.VMwareTools]:
    class Broken(q.VMwareTools):
        def scripts(self, layout: str) -> ScriptPlan:
            plan = super().scripts(layout)
            return plan if order_fn is None else _Plan(plan, order_fn)  # type: ignore[return-value]

        def quiesced_snapshot(self, create: Any, rollback: Any, *, timeout: float | None = None, **kw: Any) -> Any:
            if op_cls is None:
                return super().quiesced_snapshot(create, rollback, timeout=timeout, **kw)
            env = {**self._env, **{k: v for k, v in kw.items() if v is not None}}
            if self.phase != "IDLE":
                raise q.make_fault("TaskInProgress")
            op = op_cls(self, create, rollback, env["clock"], env["trace"], env.get("faults"),
                        q.get_profile(env["profile"]), env.get("vm"), timeout)
            return op.run()

    return Broken


class _AlwaysScriptsDir(q.VMwareTools):
    """Runs backupScripts.d whatever the host's era (the layout of 3.5 U2 on 3.5 U1)."""

    def scripts(self, layout: str) -> ScriptPlan:
        return super().scripts("scripts.d")


def _rebuild(cls: type[q.VMwareTools], switches: q.ToolsSwitches | None = None,
             scripts_dir: str | None = None) -> Callable[[Any], Any]:
    def factory(tools: Any) -> Any:
        where = scripts_dir if scripts_dir is not None and tools.os_family == "linux" else tools.scripts_dir
        new = cls(tools.guest, state=tools.state, version=tools.version, providers=tools.providers,
                  config=tools.config, install_path=tools.install_path, scripts_dir=where,
                  switches=switches or tools.switches)
        new._env = dict(tools._env)
        return new

    return factory


GUEST_AGENTS: dict[str, Callable[[Any], Any]] = {
    "thaw-scripts-ascending": _rebuild(_tools_class(order_fn=_thaw_ascending)),
    "passes-freezefail-lowercase": _rebuild(q.VMwareTools, replace(q.ToolsSwitches(), fail_arg="freezefail")),
    "freezefail-on-failed-script": _rebuild(_tools_class(order_fn=_freezefail_includes_failed)),
    "keeps-running-freeze-scripts": _rebuild(_tools_class(_FreezeContinues)),
    "ignores-abort-timer": _rebuild(_tools_class(_IgnoresTimer)),
    "forgets-unquiesce-on-snapshot-failure": _rebuild(_tools_class(_ForgetsUnquiesce)),
    "legacy-post-thaw-first": _rebuild(_tools_class(order_fn=_legacy_thaw_first)),
    "no-freezefail-after-a-failed-script": _rebuild(_tools_class(order_fn=_no_freezefail_after_a_failed_script)),
    "freeze-scripts-case-insensitive": _rebuild(_tools_class(order_fn=_freeze_case_insensitive)),
    "freezefail-directory-ascending": _rebuild(_tools_class(order_fn=_freezefail_dir_ascending)),
    "never-runs-legacy-post-thaw": _rebuild(_tools_class(order_fn=_without_legacy_post)),
    "quiesces-before-freeze-scripts": _rebuild(_tools_class(_QuiescesBeforeScripts)),
    "thaws-before-the-snapshot": _rebuild(_tools_class(_ThawsBeforeSnapshot)),
    "runs-post-thaw-while-frozen": _rebuild(_tools_class(_ThawWhileFrozen)),
    "ignores-failed-freeze-script": _rebuild(_tools_class(_IgnoresFailedFreeze)),
    "ignores-engage-failure": _rebuild(_tools_class(_IgnoresEngageFailure)),
    "thaw-after-snapshot-failure": _rebuild(_tools_class(_ThawAfterSnapshotFailure)),
    "reports-failure-as-done": _rebuild(_tools_class(_ReportsFailureAsDone)),
    "never-ends-failed-operation": _rebuild(_tools_class(_NeverEndsFailedOperation)),
    "scripts-overlap": _rebuild(_tools_class(_ScriptsOverlap)),
    "directory-scripts-on-3.5u1": _rebuild(_AlwaysScriptsDir),
    "linux-scripts-from-a-directory": _rebuild(q.VMwareTools, scripts_dir="/usr/sbin"),
    "engages-near-the-abort-timer": _rebuild(_tools_class(_SlowEngage)),
}
