"""How tasks run: after the response on an idle host, on the worker with ``async_tasks``,
queued while held (and then cancellable), in submission order; and the snapshot index that
must not grow with create-and-remove cycles."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from vcbsim.simulator import Host
from vcbsim.simulator.soap import serve

from .conftest import connect, find_vm, small_host

WORKER = "vcbsim-soap-tasks"


class Recording:
    """A ``small_host()`` whose snapshot and power-on operations record, in order, what they
    did and on which thread (the host's own operations do the work)."""

    def __init__(self) -> None:
        self.host = small_host()
        self.threads: list[str] = []
        self.done: list[str] = []
        create, power_on = self.host.create_snapshot, self.host.power_on

        def create_snapshot(vm: object, name: str, *args: object, **kwargs: object) -> object:
            self.threads.append(threading.current_thread().name)
            self.done.append(f"snapshot {name}")
            return create(vm, name, *args, **kwargs)  # type: ignore[arg-type]

        def power(vm: object) -> None:
            self.done.append(f"power on {self.host.find_vm(vm).moref}")  # type: ignore[arg-type]
            power_on(vm)  # type: ignore[arg-type]

        self.host.create_snapshot = create_snapshot  # type: ignore[method-assign]
        self.host.power_on = power  # type: ignore[method-assign]


def _vm(si: object) -> object:
    return find_vm(si, "win-db")


@pytest.fixture
def recording() -> Recording:
    return Recording()


def test_on_an_idle_host_a_task_has_ended_when_the_client_first_looks(recording: Recording) -> None:
    with serve(recording.host) as running:
        for si in connect(running):
            vm = _vm(si)
            for i in range(5):
                task = vm.CreateSnapshot_Task(f"s{i}", "", False, False)
                info = task.info
                assert info.state == "success", info.state
                assert info.queueTime <= info.startTime <= info.completeTime
                assert info.cancelable is False
    # the serving thread ran it, after its response (not the worker thread)
    assert recording.threads and WORKER not in recording.threads


def test_async_tasks_run_on_the_worker(recording: Recording) -> None:
    with serve(recording.host, async_tasks=True) as running:
        assert running.endpoint.tasks.async_tasks
        for si in connect(running):
            vm = _vm(si)
            for i in range(3):
                assert WaitForTask(vm.CreateSnapshot_Task(f"s{i}", "", False, False)) == "success"
    assert recording.threads == [WORKER] * 3


def test_tasks_run_in_the_order_submitted(recording: Recording) -> None:
    with serve(recording.host) as running:
        for si in connect(running):
            vm = _vm(si)
            other = vim.VirtualMachine("vm-2", vm._stub)
            with running.endpoint.tasks.hold():
                tasks = [other.PowerOnVM_Task(), vm.CreateSnapshot_Task("a", "", False, False)]
                assert [t.info.state for t in tasks] == ["queued", "queued"]
            for t in tasks:
                WaitForTask(t)
            assert tasks[0].info.completeTime <= tasks[1].info.startTime
    assert recording.done == ["power on vm-2", "snapshot a"]


def test_a_queued_task_can_be_cancelled_and_then_never_runs(server: object) -> None:
    for si in connect(server):
        vm = _vm(si)
        with server.endpoint.tasks.hold():  # type: ignore[attr-defined]
            task = vm.CreateSnapshot_Task("never", "", False, False)
            assert task.info.cancelable is True
            task.CancelTask()
            info = task.info
            assert info.state == "error" and info.cancelled is True and info.cancelable is False
            assert isinstance(info.error, vmodl.fault.RequestCanceled)
            with pytest.raises(vim.fault.InvalidState):
                task.CancelTask()  # already ended
        with pytest.raises(vmodl.fault.RequestCanceled):
            WaitForTask(task)
        assert vm.snapshot is None  # the cancelled task did nothing
        done = vm.CreateSnapshot_Task("done", "", False, False)
        assert WaitForTask(done) == "success"
        with pytest.raises(vim.fault.InvalidState):
            done.CancelTask()


@pytest.fixture
def demo_server() -> Iterator[object]:
    with serve(Host.demo(seed=3)) as running:
        yield running


def test_the_snapshot_index_holds_live_snapshots_only(demo_server: object) -> None:
    ep = demo_server.endpoint  # type: ignore[attr-defined]
    for si in connect(demo_server):
        vm = find_vm(si, "win2003-sql")
        for i in range(30):
            task = vm.CreateSnapshot_Task(f"c{i}", "", False, False)
            WaitForTask(task)
            snap = task.info.result
            assert snap.vm == vm
            WaitForTask(snap.RemoveSnapshot_Task(removeChildren=False))
        assert len(ep.inventory.snapshot_owner) == 0
        for i in range(3):
            WaitForTask(vm.CreateSnapshot_Task(f"k{i}", "", False, False))
        assert len(ep.inventory.snapshot_owner) == 3
        WaitForTask(vm.RemoveAllSnapshots_Task())
        assert len(ep.inventory.snapshot_owner) == 0
        with pytest.raises(vmodl.fault.ManagedObjectNotFound):
            snap.RemoveSnapshot_Task(removeChildren=False)


def test_a_running_task_is_not_cancelable(server: object) -> None:
    ep = server.endpoint  # type: ignore[attr-defined]
    for si in connect(server):
        vm = _vm(si)
        with ep.tasks.hold():
            task = vm.CreateSnapshot_Task("busy", "", False, False)
            with ep.lock:  # as the worker leaves it between "running" and the work
                ep.tasks._start(ep.tasks.info(task._moId))
            assert task.info.state == "running" and task.info.cancelable is False
            with pytest.raises(vmodl.fault.NotSupported):
                task.CancelTask()
        assert WaitForTask(task) == "success"
