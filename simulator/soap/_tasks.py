"""vSphere tasks: ``TaskInfo`` objects that go queued -> running -> success | error.

Why a worker thread: a client gets its ``Task`` reference back at once and watches it with a
property filter (``pyVim.task.WaitForTask``), as with a real host. Tasks run one at a time, in
order, with the endpoint lock held while the backend works (the host is not thread-safe);
their times are virtual (the backend's clock).

``TaskInfo.entity`` is always the VM, also for snapshot operations (vcsim's mistake was to set
the snapshot there). Finished tasks are kept for ``retention`` tasks and then forgotten
(``ManagedObjectNotFound``), so memory does not grow with every snapshot cycle.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from pyVmomi import VmomiSupport, vim, vmodl

from .._faults import make_fault
from ._vmprops import ts

if TYPE_CHECKING:
    from ._endpoint import Context, Endpoint

__all__ = ["TaskRunner", "DEFAULT_RETENTION"]

DEFAULT_RETENTION = 200


class TaskRunner:
    def __init__(self, ep: Endpoint, retention: int = DEFAULT_RETENTION) -> None:
        self.ep = ep
        self.retention = retention
        self._infos: OrderedDict[str, Any] = OrderedDict()
        self._finished: deque[str] = deque()
        #: entity moid -> its queued or running tasks, oldest first (the one-operation-per-VM
        #: check without a scan of every retained task on each submit)
        self._pending: dict[str, list[str]] = {}
        self._queue: queue.Queue[tuple[str, Callable[[], Any]] | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._chain = itertools.count(1)
        self._thread: threading.Thread | None = None
        #: tasks run so far, and how many ended in error (for reports and tests)
        self.completed = 0
        self.failed = 0
        self._running_allowed = threading.Event()
        self._running_allowed.set()

    # lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="vcbsim-soap-tasks", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep submitted tasks ``queued`` until the block ends (to show or test a busy host:
        a client that waits for a queued task, ``TaskInProgress`` for a second operation)."""
        self._running_allowed.clear()
        try:
            yield
        finally:
            self._running_allowed.set()

    def stop(self) -> None:
        self._running_allowed.set()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    # queries (endpoint lock held) ------------------------------------------------------------
    def info(self, moid: str) -> Any:
        try:
            return self._infos[moid]
        except KeyError:
            raise vmodl.fault.ManagedObjectNotFound(
                msg=f"The object '{moid}' has already been deleted or has not been completely created",
                obj=vim.Task(moid),
            ) from None

    def exists(self, moid: str) -> bool:
        return moid in self._infos

    def recent(self, entity: str | None = None) -> list[Any]:
        return [
            info.task
            for info in self._infos.values()
            if entity is None or (info.entity is not None and info.entity._moId == entity)
        ]

    def __len__(self) -> int:
        return len(self._infos)

    # submission (endpoint lock held) ---------------------------------------------------------
    def submit(self, ctx: Context, method: Any, vm_moid: str, fn: Callable[[], Any]) -> Any:
        """A task on a VM (its entity); one operation per VM at a time."""
        vm = self.ep.vm_info(vm_moid)
        return self._submit(ctx, method, vim.VirtualMachine(vm_moid), vm.name, fn, exclusive=True)

    def submit_for(self, ctx: Context, method: Any, entity: Any, entity_name: str, fn: Callable[[], Any]) -> Any:
        """A task on another entity (a datastore search); runs whenever its turn comes."""
        return self._submit(ctx, method, entity, entity_name, fn, exclusive=False)

    def _submit(
        self, ctx: Context, method: Any, entity: Any, entity_name: str, fn: Callable[[], Any], *, exclusive: bool
    ) -> Any:
        vm_moid = entity._moId
        n = next(self._ids)
        moid = f"haTask-{vm_moid}-{method.info.wsdlName}-{n}"
        user = ctx.session.user if ctx.session else "root"
        # as hostd names them: "VirtualMachine.createSnapshot", "vm.Snapshot.remove"
        type_name = VmomiSupport.GetVmodlName(method.info.type).removeprefix("vim.")
        info = vim.TaskInfo(
            key=moid,
            task=vim.Task(moid),
            name=method,
            descriptionId=f"{type_name}.{method.info.name[0].lower()}{method.info.name[1:]}",
            entity=entity,
            entityName=entity_name,
            state=vim.TaskInfo.State.queued,
            cancelled=False,
            cancelable=False,
            reason=vim.TaskReasonUser(userName=user),
            queueTime=ts(self.ep.now()),
            eventChainId=next(self._chain),
        )
        self._infos[moid] = info
        pending = self._pending.get(vm_moid)
        busy = self._infos.get(pending[0]) if exclusive and pending else None
        if busy is not None:
            # the host allows one operation per VM at a time: this one fails at once, as on
            # hostd, instead of silently waiting behind the other
            info.startTime = info.queueTime
            info.error = make_fault(
                "TaskInProgress",
                f"The operation is not allowed in the current state: task {busy.key} "
                f"({busy.name.info.wsdlName}) is in progress on {entity_name}.",
                task=busy.task,
            )
            info.state = vim.TaskInfo.State.error
            info.completeTime = info.queueTime
            self.failed += 1
            self.completed += 1
            self._finish(moid)
        else:
            self._pending.setdefault(vm_moid, []).append(moid)
            self._queue.put((moid, fn))
        self.ep.changed.notify_all()
        return vim.Task(moid)

    def _finish(self, moid: str) -> None:
        info = self._infos.get(moid)
        entity = info.entity._moId if info is not None and info.entity is not None else ""
        pending = self._pending.get(entity)
        if pending is not None and moid in pending:
            pending.remove(moid)
            if not pending:
                del self._pending[entity]
        self._finished.append(moid)
        while len(self._finished) > self.retention:
            self._infos.pop(self._finished.popleft(), None)

    # the worker --------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            moid, fn = item
            self._running_allowed.wait()
            with self.ep.lock:
                self.ep.begin_call()
                info = self._infos.get(moid)
                if info is None:
                    continue
                info.state = vim.TaskInfo.State.running
                info.startTime = ts(self.ep.now())
                info.progress = 0
                self.ep.changed.notify_all()
            # the lock is released here for a moment: a watcher may see "running"
            with self.ep.lock:
                self.ep.begin_call()
                try:
                    result = fn()
                except BaseException as exc:  # noqa: BLE001 - a task reports every failure
                    if not isinstance(exc, Exception):
                        info.error = vmodl.fault.SystemError(
                            msg=f"the host stopped: {exc}", reason=str(exc)
                        )
                    else:
                        info.error = self.ep.to_fault(exc)
                    info.state = vim.TaskInfo.State.error
                    self.failed += 1
                else:
                    info.result = result
                    info.progress = 100
                    info.state = vim.TaskInfo.State.success
                self.ep.begin_call()
                info.completeTime = ts(self.ep.now())
                self.completed += 1
                self._finish(moid)
                self.ep.changed.notify_all()
