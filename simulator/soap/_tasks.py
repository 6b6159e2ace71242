"""vSphere tasks: ``TaskInfo`` objects that go queued -> running -> success | error.

A client gets its ``Task`` reference back and watches it with a property filter
(``pyVim.task.WaitForTask``) or by polling ``info.state``, as with a real host. Tasks run one
at a time, in the order submitted, with the endpoint lock held while the backend works (the
host is not thread-safe); their times are virtual (the backend's clock).

When a task runs. A submitted task is ``queued`` in one ordered queue. By default the thread
that served the call runs the queue right after it has sent the response, as a host replies
with the task and then does the work: the work overlaps the client reading the reply, and
the client's first look normally finds the task ended (no extra round trip, no handoff to
another thread). The worker thread runs what no serving thread picks up (tasks submitted
outside a SOAP call, tasks left when a connection broke, tasks released by ``hold()``).
With ``async_tasks=True`` (``vcbsim serve --async-tasks``) every task goes to the worker and
the lock is let go between ``running`` and the work, so clients see ``queued`` and
``running``, as on a busy host. A task still queued can be cancelled (``CancelTask``).

``TaskInfo.entity`` is always the VM, also for snapshot operations (vcsim's mistake was to set
the snapshot there). Finished tasks are kept for ``retention`` tasks and then forgotten
(``ManagedObjectNotFound``), so memory does not grow with every snapshot cycle.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from pyVmomi import VmomiSupport, vim, vmodl

from .._faults import make_fault
from .mo._vmprops import ts
from .wire._dataobj import make

if TYPE_CHECKING:
    from ._endpoint import Context, Endpoint

__all__ = ["TaskRunner", "DEFAULT_RETENTION"]

DEFAULT_RETENTION = 200
#: finished tasks are kept per session (``retention`` each) and for at most this many seconds
#: of the endpoint clock; what no source decides (hostd shows recent tasks for about ten
#: minutes) is this switch: ``TaskRunner.max_age``
TASK_MAX_AGE = 600.0
#: finished tasks kept in all, whatever the sessions (a bound on memory)
MAX_FINISHED = 20_000

#: bound once: every ``vim.TaskInfo.State`` lookup goes through pyVmomi's lazy type loader
_State: Any = vim.TaskInfo.State


class TaskRunner:
    def __init__(self, ep: Endpoint, retention: int = DEFAULT_RETENTION, *, async_tasks: bool = False) -> None:
        self.ep = ep
        self.retention = retention
        #: every task through the worker thread (clients see ``queued`` and ``running``)
        self.async_tasks = async_tasks
        self._infos: OrderedDict[str, Any] = OrderedDict()
        #: finished tasks, oldest first: (moid, finished at on the endpoint clock)
        self._finished: deque[tuple[str, float]] = deque()
        #: the session each task was submitted by, and each session's finished tasks: one
        #: busy client cannot push another client's task out of sight
        self._owner: dict[str, str] = {}
        self._finished_by: dict[str, deque[str]] = {}
        self.max_age = TASK_MAX_AGE
        #: entity moid -> its queued or running tasks, oldest first (the one-operation-per-VM
        #: check without a scan of every retained task on each submit)
        self._pending: dict[str, list[str]] = {}
        #: queued tasks in submission order (endpoint lock held to touch it)
        self._queue: deque[tuple[str, Callable[[], Any]]] = deque()
        #: queued tasks a serving thread will run after its response (moid -> that thread):
        #: the worker's periodic look leaves them to it, so which thread runs a task does not
        #: depend on scheduling
        self._owners: dict[str, threading.Thread] = {}
        #: wakes the worker (on the endpoint lock)
        self._work_ready = threading.Condition(ep.lock)
        self._stopping = False
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
        a client that waits for a queued task, ``TaskInProgress`` for a second operation,
        ``CancelTask``); the worker runs them when it ends."""
        self._running_allowed.clear()
        try:
            yield
        finally:
            self._running_allowed.set()
            with self.ep.lock:
                self._owners.clear()  # the serving threads have answered: the worker runs them
                self._work_ready.notify_all()

    def stop(self) -> None:
        self._running_allowed.set()
        with self.ep.lock:
            self._stopping = True
            self._work_ready.notify_all()
        if self._thread is not None:
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
        name = self.ep.inventory.vm_name(vm_moid)
        return self._submit(ctx, method, vim.VirtualMachine(vm_moid), name, fn, exclusive=True)

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
        info = make(
            vim.TaskInfo,
            key=moid,
            task=vim.Task(moid),
            name=method,
            descriptionId=f"{type_name}.{method.info.name[0].lower()}{method.info.name[1:]}",
            entity=entity,
            entityName=entity_name,
            state=_State.queued,
            cancelled=False,
            cancelable=True,  # while queued
            reason=make(vim.TaskReasonUser, userName=user),
            queueTime=ts(self.ep.now()),
            eventChainId=next(self._chain),
        )
        self._infos[moid] = info
        self._owner[moid] = ctx.session.key if ctx.session else ""
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
            info.state = _State.error
            info.cancelable = False
            info.completeTime = info.queueTime
            self.failed += 1
            self.completed += 1
            self._finish(moid)
        else:
            self._pending.setdefault(vm_moid, []).append(moid)
            self._queue.append((moid, fn))
            if self.async_tasks or self.ep.current_context() is None:
                self._work_ready.notify()  # no serving thread will run it after a response
            else:
                self._owners[moid] = threading.current_thread()
        self.ep.changed.notify_all()
        return vim.Task(moid)

    def cancel(self, moid: str) -> None:
        """``CancelTask``: a queued task ends in error with ``RequestCanceled``. As the API
        reference says, an ended task answers ``InvalidState``; a running one is not
        cancelable here (its work is one step of the host), so ``NotSupported``."""
        info = self.info(moid)
        if info.state in (_State.success, _State.error):
            raise vim.fault.InvalidState(msg=f"The task has already ended ({info.state}).")
        if info.state != _State.queued:
            raise vmodl.fault.NotSupported(msg="The task is running and cannot be cancelled.")
        for item in self._queue:
            if item[0] == moid:
                self._queue.remove(item)
                break
        self._owners.pop(moid, None)
        info.cancelled = True
        info.cancelable = False
        info.error = vmodl.fault.RequestCanceled(msg="The task was canceled by a user.")
        info.state = _State.error
        info.completeTime = ts(self.ep.now())
        self.failed += 1
        self.completed += 1
        self._finish(moid)
        self.ep.changed.notify_all()

    def _finish(self, moid: str) -> None:
        info = self._infos.get(moid)
        entity = info.entity._moId if info is not None and info.entity is not None else ""
        pending = self._pending.get(entity)
        if pending is not None and moid in pending:
            pending.remove(moid)
            if not pending:
                del self._pending[entity]
        now = self.ep.clock()
        self._finished.append((moid, now))
        owner = self._owner.get(moid, "")
        mine = self._finished_by.setdefault(owner, deque())
        mine.append(moid)
        while len(mine) > self.retention:  # this session's oldest finished task goes
            self._forget(mine.popleft())
        while self._finished and (
            now - self._finished[0][1] > self.max_age or len(self._finished) > MAX_FINISHED
        ):
            self._forget(self._finished.popleft()[0])

    def _forget(self, moid: str) -> None:
        self._infos.pop(moid, None)
        owner = self._owner.pop(moid, None)
        if owner is not None:
            mine = self._finished_by.get(owner)
            if mine is not None and not mine:
                del self._finished_by[owner]

    # running a task (endpoint lock held) -----------------------------------------------------
    def _start(self, info: Any) -> None:
        self.ep.begin_call()
        info.cancelable = False
        info.state = _State.running
        info.startTime = ts(self.ep.now())
        info.progress = 0
        self.ep.changed.notify_all()

    def _run(self, info: Any, moid: str, fn: Callable[[], Any], *, started: bool = False) -> None:
        """Run ``fn`` as task ``moid`` to its end: ``TaskInfo`` to running, then to success with
        its result or to error with the fault the failure maps to."""
        if not started:
            self._start(info)
        self.ep.begin_call()
        try:
            result = fn()
        except BaseException as exc:  # noqa: BLE001 - a task reports every failure
            if not isinstance(exc, Exception):
                info.error = vmodl.fault.SystemError(msg=f"the host stopped: {exc}", reason=str(exc))
            else:
                info.error = self.ep.registry.to_fault(exc)
            info.state = _State.error
            self.failed += 1
        else:
            info.result = result
            info.progress = 100
            info.state = _State.success
        self.ep.begin_call()
        info.completeTime = ts(self.ep.now())
        self.completed += 1
        self._finish(moid)
        self.ep.changed.notify_all()

    def drain(self) -> None:
        """Run every queued task, in order (a serving thread calls this after each response;
        cheap when nothing is queued)."""
        if not self._queue or self.async_tasks or not self._running_allowed.is_set():
            return
        with self.ep.lock:
            self._run_queued()

    def _runnable(self) -> bool:
        """Whether the worker has a task to run: the first queued one, unless a live serving
        thread will run it after its response."""
        if not self._queue:
            return False
        if self.async_tasks:
            return True
        owner = self._owners.get(self._queue[0][0])
        return owner is None or not owner.is_alive()

    def _run_queued(self, *, orphans_only: bool = False) -> None:
        """Run queued tasks in order; ``orphans_only``: stop at the first one a live serving
        thread will still run after its response (order is kept: nothing overtakes it)."""
        while self._queue and self._running_allowed.is_set() and not self._stopping:
            moid, fn = self._queue[0]
            owner = self._owners.get(moid)
            if orphans_only and owner is not None and owner.is_alive():
                return
            self._queue.popleft()
            self._owners.pop(moid, None)
            info = self._infos.get(moid)
            if info is not None:
                self._run(info, moid, fn)

    # the worker --------------------------------------------------------------------------
    def _work(self) -> None:
        with self.ep.lock:
            while True:
                # the timeout is a safety net: every path that queues a task either drains it
                # (a serving thread, after its response, even a failed one) or wakes this thread;
                # if one ever did neither, the task would still run within 50 ms
                self._work_ready.wait_for(
                    lambda: self._stopping or (self._runnable() and self._running_allowed.is_set()), timeout=0.05
                )
                if self._stopping:
                    return
                if not self.async_tasks:
                    # a task a serving thread owns is that thread's to run, unless the thread
                    # has gone (its connection broke) or tasks were held (the hold's end and
                    # the stop hand them over by clearing the owners)
                    self._run_queued(orphans_only=True)
                    continue
                while self._queue and self._running_allowed.is_set() and not self._stopping:
                    moid, fn = self._queue.popleft()
                    self._owners.pop(moid, None)
                    info = self._infos.get(moid)
                    if info is None:
                        continue
                    self._start(info)
                    # let go of the lock for a moment: a watcher may see "running"
                    self.ep.lock.release()
                    try:
                        time.sleep(0)
                    finally:
                        self.ep.lock.acquire()
                    self._run(info, moid, fn, started=True)
