"""The stepping API of a quiesced snapshot: ``Host.on_quiesce_step`` / ``on_step``.

The callback sees the guest exactly as each documented step left it, on the same code path as
every quiesced snapshot (so a front end that shows the steps shows what really happened).
"""

from __future__ import annotations

import threading

import pytest

from vcbsim.simulator import FaultRule, Host, fault_name


def _seen(host: Host) -> list[tuple[str, bool, list[str], str]]:
    seen: list[tuple[str, bool, list[str], str]] = []

    def look(vm, step: str) -> None:
        seen.append((step, bool(vm.tools.frozen), [s.name for s in vm.snapshots()], vm.tools.phase))

    host.on_quiesce_step(look)
    return seen


def test_each_step_is_seen_as_it_left_the_guest() -> None:
    host = Host.demo()
    seen = _seen(host)
    vm = host.find_vm("name:win2003-sql")
    host.create_snapshot(vm, "_VCB-BACKUP_", quiesce=True)
    assert [s[0] for s in seen] == ["WF-1a", "WF-1b", "WF-1c", "WF-1d"]
    after = {step: (frozen, snaps) for step, frozen, snaps, _phase in seen}
    assert after["WF-1a"] == (False, [])  # scripts ran; nothing frozen, no snapshot yet
    assert after["WF-1b"] == (True, [])  # frozen, no snapshot yet
    assert after["WF-1c"] == (True, ["_VCB-BACKUP_"])  # snapshot taken while frozen
    assert after["WF-1d"] == (False, ["_VCB-BACKUP_"])  # thawed


def test_a_failure_path_runs_to_its_end_without_stopping() -> None:
    host = Host.demo()
    seen = _seen(host)
    vm = host.find_vm("name:win2003-sql")
    host.add_fault(FaultRule("quiesce.engage", target=vm.name, message="VSS writer failed"))
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the vSphere fault, checked by name below
        host.create_snapshot(vm, "_VCB-BACKUP_", quiesce=True)
    assert fault_name(raised.value) in ("SnapshotFault", "ApplicationQuiesceFault")  # ToolsSwitches.guest_error_fault
    assert [s[0] for s in seen] == ["WF-1a"]
    assert vm.snapshots() == [] and not vm.tools.frozen


def test_no_callback_after_it_is_removed_and_none_without_quiesce() -> None:
    host = Host.demo()
    calls: list[str] = []
    stop = host.on_quiesce_step(lambda vm, step: calls.append(step))
    vm = host.find_vm("name:rhel5-web")
    host.create_snapshot(vm, "plain")  # not quiesced: no steps
    assert calls == []
    stop()
    host.create_snapshot(vm, "q", quiesce=True)
    assert calls == []


def test_a_waiting_callback_lets_other_threads_use_the_host() -> None:
    """Paused after WF-1c (guest frozen, snapshot taken), another thread reads the host and is
    refused an operation on the busy VM, as a real host refuses it (TaskInProgress)."""
    host = Host.demo()
    vm = host.find_vm("name:win2003-sql")
    cond = threading.Condition(host.lock)
    state = {"paused": None, "go": False}

    def pause(_vm, step: str) -> None:
        if step != "WF-1c":
            return
        with cond:
            state["paused"] = step
            cond.notify_all()
            cond.wait_for(lambda: state["go"])

    host.on_quiesce_step(pause)
    worker = threading.Thread(target=host.create_snapshot, args=(vm, "_VCB-BACKUP_"), kwargs={"quiesce": True})
    worker.start()
    with cond:
        cond.wait_for(lambda: state["paused"] is not None, timeout=60)
    try:
        assert state["paused"] == "WF-1c"
        assert vm.tools.frozen and [s.name for s in vm.snapshots()] == ["_VCB-BACKUP_"]
        try:
            host.remove_snapshot(vm, "_VCB-BACKUP_")
        except Exception as exc:
            assert type(exc).__name__.endswith("TaskInProgress"), exc
        else:
            raise AssertionError("the snapshot was removed while its create task was running")
    finally:
        with cond:
            state["go"] = True
            cond.notify_all()
        worker.join(60)
    assert not worker.is_alive() and not vm.tools.frozen
    assert [s.name for s in vm.snapshots()] == ["_VCB-BACKUP_"]
