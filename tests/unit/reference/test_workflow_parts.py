"""The proxy's parts, one concern each: the op recorder, the crash-session store, the run.

``BackupRun`` drives ``BackupProxy``'s steps through its public surface only (``ops``,
``crash_sessions``, ``claim``/``release``, ``refuse_if_held``, ``fault_point``).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from vcbsim.reference import BackupProxy, InProcessHostClient
from vcbsim.reference._oprecorder import OpRecorder
from vcbsim.reference._outcome import RunOutcome
from vcbsim.reference._run import BackupRun
from vcbsim.reference._sessions import SessionStore
from vcbsim.simulator import Host, StateError, make_fault


def _client() -> InProcessHostClient:
    return InProcessHostClient(Host.demo())


def test_the_recorder_pairs_each_invoke_with_its_completion_and_records_the_step() -> None:
    client = _client()
    vm = client.find_vm("name:win2003-sql")
    ops = OpRecorder(client)
    result = RunOutcome(vm=vm.name, moref=vm.moref, type="fullvm")
    first = ops.invoke(vm, "WF-1", "pre-backup", quiesce=True)
    ops.ok(vm, "WF-1", "pre-backup", first, result, snapshot="s1")
    second = ops.invoke(vm, "WF-3b", "remove-snapshot")
    ops.failed(vm, "WF-3b", "remove-snapshot", second, result, make_fault("SnapshotFault", "busy"))
    proxy_events = [(e.kind, e.details["op_id"]) for e in client.trace if e.actor == "proxy"]
    assert proxy_events == [("op.invoke", first), ("op.ok", first), ("op.invoke", second), ("op.fail", second)]
    assert first != second
    assert [(s.step, s.ok) for s in result.steps] == [("WF-1", True), ("WF-3b", False)]
    assert result.status == "failed" and result.failed_step == "WF-3b" and result.fault == "SnapshotFault"


def test_an_unknown_outcome_is_op_info_and_need_not_fail_the_job() -> None:
    client = _client()
    vm = client.find_vm("name:win2003-sql")
    ops = OpRecorder(client)
    result = RunOutcome(vm=vm.name, moref=vm.moref, type="fullvm")
    op_id = ops.invoke(vm, "WF-3b", "remove-snapshot")
    ops.unknown(vm, "WF-3b", "remove-snapshot", op_id, result, StateError("timed out"), fail_job=False, resolved="removed")
    last = client.trace.events[-1]
    assert last.kind == "op.info" and last.details["resolved"] == "removed"
    assert result.status == "running" and result.steps[-1].detail.startswith("outcome unknown")


def test_the_session_store_keeps_one_record_per_vm_and_finds_a_mount(tmp_path: Path) -> None:
    client = _client()
    vm = client.find_vm("name:win2003-sql")
    store = SessionStore(tmp_path)
    assert store.get(vm.name) is None and store.all() == []
    result = RunOutcome(vm=vm.name, moref=vm.moref, type="file", path=str(tmp_path / vm.name))
    store.save(vm, "exposing", result)
    store.save(vm, "mounted", result)
    assert [s["state"] for s in store.all()] == ["mounted"]
    assert store.find(tmp_path / vm.name)["moref"] == vm.moref
    assert store.find(vm)["state"] == "mounted"
    with pytest.raises(StateError, match=r"nothing mounted at .*elsewhere; mounted: .*win2003-sql"):
        store.find(tmp_path / "elsewhere")
    store.drop(vm.name)
    assert store.get(vm.name) is None


def test_a_vm_has_one_run_at_a_time(tmp_path: Path) -> None:
    client = _client()
    proxy = BackupProxy(client, tmp_path)
    vm = client.find_vm("name:win2003-sql")
    proxy.claim(vm)
    with pytest.raises(StateError, match="already running"):
        proxy.claim(vm)
    with pytest.raises(StateError, match="already running"):
        proxy.backup(vm)
    proxy.release(vm)
    assert proxy.backup(vm).ok


def test_the_run_uses_no_private_member_of_the_proxy() -> None:
    source = inspect.getsource(BackupRun)
    assert re.findall(r"proxy\._\w+", source) == []
