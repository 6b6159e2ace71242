"""The proxy's operation events: each step is an ``op.invoke`` then ``op.ok`` / ``op.fail`` /
``op.info`` in the host's trace (``actor="proxy"``), in the shape the conformance checker reads
(Jepsen's history: an invocation, then its completion, or ``info`` when the call raised although
its effect happened).

Kept apart from the steps (``_workflow``) so that the event vocabulary lives in one place and a
step reads as what it does: ``ops.invoke(...)``, then ``ops.ok(...)`` or ``ops.failed(...)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vcbsim.simulator import fault_name

from ._outcome import RunOutcome, StepOutcome, message_of

if TYPE_CHECKING:
    from ._client import HostClient, VMInfo

__all__ = ["OpRecorder", "emit_event"]


def emit_event(trace: Any, event: str, /, *, vm: str | None, step: str | None = None, **details: Any) -> Any:
    """Emit a proxy event (details may include ``kind``: ``mount`` events carry ``fullvm|file``)."""
    return trace.emit("proxy", event, vm=vm, step=step, **details)


class OpRecorder:
    """Records a proxy's operations in its host client's trace, and each outcome in the
    run's ``RunOutcome.steps``. The trace is read from the client on every call: a host reset
    replaces it."""

    def __init__(self, client: HostClient) -> None:
        self.client = client

    def invoke(self, vm: VMInfo, step: str | None, op: str, **details: Any) -> str:
        """``op.invoke``; returns the op id its completion names."""
        op_id = f"op-{len(self.client.trace)}"
        self.client.trace.emit("proxy", "op.invoke", vm=vm.moref, step=step, op=op, op_id=op_id, **details)
        return op_id

    def ok(self, vm: VMInfo, step: str, op: str, op_id: str, result: RunOutcome, **details: Any) -> None:
        """``op.ok``: the call returned and did what it says."""
        self.client.trace.emit("proxy", "op.ok", vm=vm.moref, step=step, op=op, op_id=op_id, **details)
        result.steps.append(StepOutcome(step, op, True))

    def failed(
        self,
        vm: VMInfo,
        step: str,
        op: str,
        op_id: str,
        result: RunOutcome,
        exc: BaseException,
        *,
        fail_job: bool = True,
    ) -> None:
        """``op.fail``: the call raised and did not happen."""
        self._ended("op.fail", vm, step, op, op_id, result, exc, fail_job=fail_job)

    def unknown(
        self,
        vm: VMInfo,
        step: str,
        op: str,
        op_id: str,
        result: RunOutcome,
        exc: BaseException,
        *,
        fail_job: bool = True,
        **details: Any,
    ) -> None:
        """``op.info``: the call raised, but what it did is not what the error says."""
        self._ended("op.info", vm, step, op, op_id, result, exc, fail_job=fail_job, **details)

    def _ended(
        self,
        kind: str,
        vm: VMInfo,
        step: str,
        op: str,
        op_id: str,
        result: RunOutcome,
        exc: BaseException,
        *,
        fail_job: bool,
        **details: Any,
    ) -> None:
        error = f"{fault_name(exc)}: {message_of(exc)}"
        self.client.trace.emit(
            "proxy", kind, vm=vm.moref, step=step, op=op, op_id=op_id, error=error,
            fault=fault_name(exc), **details,
        )
        shown = error if kind == "op.fail" else f"outcome unknown: {error}"
        result.steps.append(StepOutcome(step, op, False, shown))
        if fail_job:
            result.fail(step, exc)
