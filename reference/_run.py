"""One run of the reference proxy's workflow for one VM, as a sequence of steps.

``BackupRun`` drives the steps ``BackupProxy`` implements (``_workflow``) in the seed's order
(WF-1, WF-1f, WF-2, WF-3), through the proxy's public surface only: its op recorder
(``proxy.ops``), its session store (``proxy.crash_sessions``), ``claim``/``release`` (one run
per VM) and its crash points (``fault_point``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vcbsim.simulator import StateError

from ._outcome import RunOutcome

if TYPE_CHECKING:
    from ._catalog import Catalog
    from ._cbt import ImagePlan
    from ._client import VMInfo
    from ._workflow import BackupProxy

__all__ = ["BackupRun"]


class BackupRun:
    """One run of the workflow for one VM, as a sequence of steps.

    ``steps()`` yields the name of each step after it finished, so a scheduler can interleave
    several runs (the proxy's concurrency) and a test can let the guest write between steps.
    ``run()`` drives all steps and returns the ``RunOutcome``.
    """

    def __init__(
        self,
        proxy: BackupProxy,
        vm: VMInfo,
        type: str,
        *,
        catalog: Catalog | None,
        kind: str | None,
        job: str,
        hold: bool,
        level: str | None = None,
    ) -> None:
        self.proxy = proxy
        self.vm = vm
        self.catalog = catalog
        self.hold = hold
        self.result = RunOutcome(vm=vm.name, moref=vm.moref, type=type, kind=kind, requested_level=level)
        self.job = job
        self.plan: ImagePlan | None = None
        self.files: list[str] | None = None
        self._iter: Iterator[str] | None = None

    def run(self) -> RunOutcome:
        while self.advance():
            pass
        return self.result

    def advance(self) -> bool:
        """Do the next step; ``False`` once the run has finished."""
        if self._iter is None:
            self._iter = self.steps()
        try:
            next(self._iter)
        except StopIteration:
            return False
        return True

    def steps(self) -> Iterator[str]:
        proxy, vm, result = self.proxy, self.vm, self.result
        client = proxy.client
        proxy.claim(vm)
        try:
            result.started = client.clock.now
            vm = self.vm = client.vm_info(vm.moref)
            proxy.refuse_if_held(vm)
            if not proxy.clean_leftovers(vm, result):
                result.status = "failed"
                return
            if self.catalog is not None:
                proxy.fail_interrupted_backups(vm, self.catalog, result)
            dest = proxy.export_path(vm) if result.type == "fullvm" else proxy.mount_path(vm)
            if dest.exists():
                msg = (
                    f"{dest} already exists and is not a leftover of this proxy; VCB exposes a "
                    "snapshot in a new directory (spec R57): move it away or use another -r"
                )
                raise StateError(msg, path=str(dest))
            job_id: str | None = None
            if not self.hold:
                details: dict[str, Any] = {"mode": result.type, "job": self.job}
                if result.type == "file":
                    details["level"] = result.kind
                elif result.requested_level not in (None, "full"):
                    details["level"] = result.requested_level
                job_id = proxy.ops.invoke(vm, None, "job", **details)
            yield from self._steps(vm, result)
            if result.status != "failed":
                result.status = "mounted" if self.hold else "ok"
            if job_id is not None:
                if result.status == "failed":
                    error = f"{result.failed_step}: {result.fault}: {result.reason}"
                    usable: dict[str, Any] = {}
                    if result.backup_id is not None and self.catalog is not None:
                        # a step after the copy failed (unmount, commit): the catalog keeps
                        # the backup complete and later ones build on it; the report says so
                        # (rules BK-INCR-SINCE-LAST, BK-DIFF-SINCE-FULL)
                        usable = {"usable": self.catalog.backup(result.backup_id).status == "complete",
                                  "backup_id": result.backup_id}
                        if self.files is not None:
                            usable["files"] = self.files
                    client.trace.emit(
                        "proxy", "op.fail", vm=vm.moref, op="job", op_id=job_id, error=error,
                        failed_step=result.failed_step, **usable,
                    )
                else:
                    extra: dict[str, Any] = {"backup_id": result.backup_id}
                    if self.files is not None:
                        extra["files"] = self.files
                    if result.type == "fullvm" and result.requested_level not in (None, "full"):
                        extra["level"] = result.level
                        if result.fallback:
                            extra["fallback"] = result.fallback
                    client.trace.emit("proxy", "op.ok", vm=vm.moref, op="job", op_id=job_id, **extra)
        finally:
            proxy.release(vm)
            result.finished = client.clock.now

    def _steps(self, vm: VMInfo, result: RunOutcome) -> Iterator[str]:
        proxy = self.proxy
        enabled_now = False
        wants_cbt = result.requested_level in ("incremental", "differential")
        if result.type == "fullvm" and wants_cbt and self.catalog is not None and not self.hold:
            enabled_now = proxy.prepare_change_tracking(vm, result)
        proxy.crash_sessions.save(vm, "pre-backup", result)
        proxy.fault_point("crash", "proxy.before-snapshot", vm)
        if not proxy.pre_backup(vm, result):
            proxy.crash_sessions.drop(vm.name)
            yield "WF-1"
            return
        yield "WF-1"
        proxy.fault_point("crash", "proxy.after-snapshot", vm)
        op_id = proxy.ops.invoke(vm, "WF-1f", "expose", type=result.type)
        try:
            if self.hold:
                result.status = "mounted"
            self.plan = proxy.expose(
                vm, result, catalog=None if self.hold else self.catalog, enabled_now=enabled_now
            )
        except Exception as exc:
            proxy.ops.failed(vm, "WF-1f", "expose", op_id, result, exc)
            if result.path is not None and not Path(result.path).exists():
                result.path = None
            proxy.post_backup(vm, result)
            yield "WF-1f"
            return
        level: dict[str, Any] = {}
        if self.plan is not None and self.plan.requested != "full":
            level = {"level": self.plan.level}
            if self.plan.fallback:
                level["fallback"] = self.plan.fallback
        proxy.ops.ok(
            vm,
            "WF-1f",
            "expose",
            op_id,
            result,
            path=result.path,
            letters=sorted(result.letters),
            skipped=result.skipped_volumes,
            **level,
        )
        yield "WF-1f"
        proxy.fault_point("crash", "proxy.after-expose", vm)
        if self.hold:
            return
        if self.catalog is not None:
            op_id = proxy.ops.invoke(vm, "WF-2", "copy", level=result.kind)
            try:
                proxy.copy_to_medium(vm, result, self.catalog, self.job, plan=self.plan)
            except Exception as exc:
                proxy.ops.failed(vm, "WF-2", "copy", op_id, result, exc)
            else:
                extra: dict[str, Any] = {"level": result.kind, "backup_id": result.backup_id}
                if result.type == "file" and result.backup_id is not None:
                    self.files = self.catalog.copied_paths(result.backup_id)
                    extra["files"] = self.files
                proxy.ops.ok(vm, "WF-2", "copy", op_id, result, **extra)
            yield "WF-2"
            proxy.fault_point("crash", "proxy.after-copy", vm)
        proxy.post_backup(vm, result)
        yield "WF-3"
