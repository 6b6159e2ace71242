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


def _rebuild(cls: type[q.VMwareTools], switches: q.ToolsSwitches | None = None) -> Callable[[Any], Any]:
    def factory(tools: Any) -> Any:
        new = cls(tools.guest, state=tools.state, version=tools.version, providers=tools.providers,
                  config=tools.config, install_path=tools.install_path, scripts_dir=tools.scripts_dir,
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
}
