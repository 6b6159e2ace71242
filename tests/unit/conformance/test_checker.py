"""The trace checker: the reference model, Jepsen semantics, full consumption, profiles."""

import json
from pathlib import Path

import pytest

from vcbsim.conformance import ConformanceViolation, InvalidDefinition, check_trace
from vcbsim.simulator import EPOCH, Event, load_jsonl

TRACES = Path(__file__).resolve().parents[2] / "data" / "traces"
SCRIPTS = "C:\\Program Files\\VMware\\VMware Tools\\backupScripts.d\\"


def ev(seq: int, actor: str, kind: str, vm: str | None = "vm-1", step: str | None = None, t: float = 0.0, /, **d) -> Event:
    return Event(seq, EPOCH + t, actor, kind, vm, step, d)


def seq(*items) -> list[Event]:
    """Number (actor, kind, vm, step, details) tuples, one virtual second apart."""
    return [Event(i, EPOCH + i, a, k, vm, st, d) for i, (a, k, vm, st, d) in enumerate(items)]


@pytest.mark.parametrize("path", sorted(TRACES.glob("*.jsonl")), ids=lambda p: p.stem)
def test_shipped_example_traces(path: Path) -> None:
    events = load_jsonl(path)
    recorded = [e.details["profile"] for e in events if e.kind == "host.reset"]
    report = check_trace(events, profile=recorded[0] if recorded else "esx-3.5u2")
    if path.name.startswith("good-"):
        assert report.ok, report.format()
    else:
        rule = path.name.split("--")[0]
        assert report.rule_ids() == [rule], report.format()


def test_empty_trace_passes_and_bad_input_is_refused() -> None:
    assert check_trace([]).ok
    with pytest.raises(InvalidDefinition, match="expected one of esx-3.5u1"):
        check_trace([], profile="esx-9")
    with pytest.raises(InvalidDefinition, match="load_jsonl"):
        check_trace([{"seq": 0}])  # type: ignore[list-item]


def test_explanation_names_steps_and_seed_order() -> None:
    report = check_trace(load_jsonl(TRACES / "WF-3a--commit-while-mounted.jsonl"))
    (v,) = report.violations
    assert v.rule_id == "WF-3a"
    assert [e.kind for e in v.witness] == ["mount", "snapshot.remove"]
    assert "3a unmount before 3b commit" in v.explanation
    assert "vm-1 ('win2003')" in v.explanation
    with pytest.raises(ConformanceViolation) as info:
        report.raise_for_violations()
    assert info.value.rule_id == "WF-3a" and len(info.value.witness) == 2


def test_unplaceable_event_is_never_a_pass() -> None:
    events = seq(("proxy", "unmount", "vm-1", None, {"path": "/mnt/x"}))
    report = check_trace(events)
    assert not report.ok
    assert report.consumed == 0
    assert report.rule_ids() == ["TRC-CONSUMED"]


def test_script_outside_quiesce_and_completion_without_invoke_are_unplaceable() -> None:
    events = seq(
        ("guest", "script.run", "vm-1", None, {"path": "/x", "arg": "freeze", "exit_code": 0, "duration": 0.0}),
        ("proxy", "op.ok", "vm-1", "WF-2", {"op": "copy", "op_id": "c9"}),
    )
    report = check_trace(events)
    assert report.rule_ids() == ["TRC-CONSUMED", "TRC-OP-PAIRED"]
    assert report.consumed == 0


def test_out_of_order_sequence_numbers() -> None:
    events = [ev(0, "host", "note", None, None, 0.0, text="a"), ev(2, "proxy", "note", None, None, 1.0, text="b")]
    report = check_trace(events)
    assert report.rule_ids() == ["TRC-WELL-FORMED"]


def _proxy_only(commit_end: str) -> list[Event]:
    """A trace recorded on the proxy only: the host's own events are missing."""
    return seq(
        ("proxy", "op.invoke", "vm-1", None, {"op": "job", "op_id": "j", "mode": "fullvm"}),
        ("proxy", "op.invoke", "vm-1", "WF-1c", {"op": "snapshot", "op_id": "s"}),
        ("proxy", "op.ok", "vm-1", "WF-1c", {"op": "snapshot", "op_id": "s", "snapshot": "snap-1"}),
        ("proxy", "op.invoke", "vm-1", "WF-1f", {"op": "export", "op_id": "e"}),
        ("proxy", "mount", "vm-1", None, {"path": "/mnt/vm1-fullVM", "kind": "fullvm"}),
        ("proxy", "op.ok", "vm-1", "WF-1f", {"op": "export", "op_id": "e"}),
        ("proxy", "op.invoke", "vm-1", "WF-2", {"op": "copy", "op_id": "c"}),
        ("proxy", "op.ok", "vm-1", "WF-2", {"op": "copy", "op_id": "c"}),
        ("proxy", "op.invoke", "vm-1", "WF-3a", {"op": "unmount", "op_id": "u"}),
        ("proxy", "unmount", "vm-1", None, {"path": "/mnt/vm1-fullVM"}),
        ("proxy", "op.ok", "vm-1", "WF-3a", {"op": "unmount", "op_id": "u"}),
        ("proxy", "op.invoke", "vm-1", "WF-3b", {"op": "commit", "op_id": "r"}),
        ("proxy", commit_end, "vm-1", "WF-3b", {"op": "commit", "op_id": "r", "error": "timeout"}),
        ("proxy", "op.ok", "vm-1", None, {"op": "job", "op_id": "j"}),
    )


def test_jepsen_info_may_or_may_not_have_happened() -> None:
    assert check_trace(_proxy_only("op.ok")).ok
    # the commit timed out: it may have happened, so no FAIL; the kit warns it was not resolved
    report = check_trace(_proxy_only("op.info"))
    assert report.ok, report.format()
    assert [w.rule_id for w in report.warnings] == ["TMO-RESOLVE-UNKNOWN"]
    # a failed commit definitely did not happen: the snapshot is left
    report = check_trace(_proxy_only("op.fail"))
    assert report.rule_ids() == ["CLN-NO-SNAPSHOT-LEFT"]


def test_snapshot_timeout_then_export_is_accepted_without_host_events() -> None:
    events = seq(
        ("proxy", "op.invoke", "vm-1", None, {"op": "job", "op_id": "j"}),
        ("proxy", "op.invoke", "vm-1", "WF-1c", {"op": "snapshot", "op_id": "s"}),
        ("proxy", "op.info", "vm-1", "WF-1c", {"op": "snapshot", "op_id": "s", "error": "timeout"}),
        ("proxy", "op.invoke", "vm-1", "WF-1f", {"op": "export", "op_id": "e"}),
        ("proxy", "op.fail", "vm-1", "WF-1f", {"op": "export", "op_id": "e", "error": "no snapshot"}),
        ("proxy", "op.fail", "vm-1", None, {"op": "job", "op_id": "j", "error": "no snapshot"}),
    )
    report = check_trace(events)
    assert report.ok and [w.rule_id for w in report.warnings] == ["TMO-RESOLVE-UNKNOWN"]


def test_crash_makes_pending_operations_indeterminate() -> None:
    crashed = [
        ("proxy", "op.invoke", "vm-1", "WF-1", {"op": "pre-backup", "op_id": "p"}),
        ("host", "snapshot.create", "vm-1", "WF-1c", {"snapshot": "s1", "name": "_VCB-BACKUP_", "quiesced": False}),
        ("proxy", "op.ok", "vm-1", "WF-1", {"op": "pre-backup", "op_id": "p"}),
        ("proxy", "op.invoke", "vm-1", "WF-1f", {"op": "expose", "op_id": "e"}),
        ("proxy", "crash", "vm-1", None, {"point": "proxy.export"}),
    ]
    # the pending expose is not "a job that never ended", but the snapshot is left ...
    assert check_trace(seq(*crashed)).rule_ids() == ["CLN-NO-SNAPSHOT-LEFT"]
    # ... until the next run cleans it up
    cleanup = [
        ("proxy", "op.invoke", "vm-1", "WF-3b", {"op": "cleanup-snapshot", "op_id": "c"}),
        ("host", "snapshot.remove", "vm-1", "WF-3b", {"snapshot": "s1", "name": "_VCB-BACKUP_", "consolidate": True}),
        ("proxy", "op.ok", "vm-1", "WF-3b", {"op": "cleanup-snapshot", "op_id": "c"}),
    ]
    report = check_trace(seq(*crashed, *cleanup))
    assert report.ok, report.format()


def _legacy_u1(path: str, legacy: bool) -> list[Event]:
    return seq(
        ("guest", "quiesce.start", "vm-1", None, {"provider": "sync", "layout": "legacy", "timeout": 900}),
        ("guest", "script.run", "vm-1", None, {"path": path, "arg": None, "exit_code": 0, "duration": 0.0, "legacy": legacy}),
        ("guest", "quiesce.engage", "vm-1", None, {"provider": "sync", "ok": True}),
        ("host", "snapshot.create", "vm-1", None, {"snapshot": "s1", "name": "n", "quiesced": True}),
        ("guest", "quiesce.disengage", "vm-1", None, {"provider": "sync", "ok": True}),
        ("guest", "quiesce.end", "vm-1", None, {"outcome": "done"}),
    )


def test_esx35u1_runs_legacy_scripts_without_arguments() -> None:
    assert check_trace(_legacy_u1("C:\\Windows\\pre-freeze-script.bat", True), profile="esx-3.5u1").ok
    report = check_trace(_legacy_u1(SCRIPTS + "10.bat", False), profile="esx-3.5u1")
    assert "SCR-LAYOUT-LEGACY" in report.rule_ids()
    # on 3.5 U2 a missing argument is a violation
    assert "SCR-ARG-EXACT" in check_trace(_legacy_u1(SCRIPTS + "10.bat", False), profile="esx-3.5u2").rule_ids()


def test_removing_a_users_snapshot_during_a_job() -> None:
    events = seq(
        ("host", "snapshot.create", "vm-1", None, {"snapshot": "s1", "name": "before-upgrade", "quiesced": False}),
        ("proxy", "op.invoke", "vm-1", None, {"op": "job", "op_id": "j"}),
        ("host", "snapshot.remove", "vm-1", None, {"snapshot": "s1", "name": "before-upgrade", "consolidate": True}),
        ("proxy", "op.fail", "vm-1", None, {"op": "job", "op_id": "j", "error": "x"}),
    )
    assert check_trace(events).rule_ids() == ["CMT-OWN-SNAPSHOT"]


def test_report_round_trips_to_json() -> None:
    report = check_trace(load_jsonl(TRACES / "SCR-ORDER-THAW--thaw-ascending.jsonl"))
    doc = json.loads(json.dumps(report.to_dict(), default=str))
    assert doc["ok"] is False and doc["violations"][0]["rule"] == "SCR-ORDER-THAW"
    assert "descending" in doc["violations"][0]["explanation"]


def test_the_guest_abort_timer_fires_inside_a_long_snapshot() -> None:
    """A snapshot slower than the guest's abort timer (esxi-7.0, Tools of 2010 and later):
    the timer fires at its own virtual time while the host's create() runs, the guest thaws
    and aborts, the create fails; the reference Tools model keeps TMO-GUEST-ABORT."""
    from vcbsim.simulator import Host

    host = Host.demo("esxi-7.0", seed=0)
    host.add_fault(operation="snapshot.create", target="*", delay=1000.0)
    with pytest.raises(Exception, match="(?i)quiesce|cancel|timeout"):
        host.create_snapshot("win2003-sql", "_VCB-BACKUP_", quiesce=True)
    evs = host.trace.events
    start = next(e for e in evs if e.kind == "quiesce.start")
    abort = next(e for e in evs if e.kind == "quiesce.abort")
    assert abort.details["reason"] == "timer"
    assert abort.time == pytest.approx(start.time + start.details["timeout"])
    assert [e.kind for e in evs if e.kind.startswith("snapshot.create")] == ["snapshot.create.start", "snapshot.create.fail"]
    assert not host.find_vm("win2003-sql").snapshots()
    report = check_trace(evs, profile="esxi-7.0")
    assert report.ok, report.format()
    assert "TMO-GUEST-ABORT" in report.rules_checked


def test_guest_abort_timer_is_not_judged_on_the_3_5_profiles() -> None:
    """The timer came with the Tools of 2010 (open-vm-tools 7c7a38862): a 2008 guest that
    never aborts is not a TMO-GUEST-ABORT violation on esx-3.5u2, and is one on esxi-7.0."""
    late = load_jsonl(TRACES / "TMO-GUEST-ABORT--ignores-abort-timer.jsonl")
    assert check_trace(late, profile="esxi-7.0").rule_ids() == ["TMO-GUEST-ABORT"]
    assert "TMO-GUEST-ABORT" not in check_trace(late, profile="esx-3.5u2").rule_ids()


@pytest.mark.parametrize("profile", ["esx-3.5u2", "esxi-7.0"])
def test_a_second_quiesce_operation_while_one_is_open_is_qsc_end(profile: str) -> None:
    """Even in the 3.5 era (no guest timer: an operation the host stopped waiting for may still
    run), a guest never starts a second operation over an open one (spec R3)."""
    evs = seq(
        ("guest", "quiesce.start", "vm-1", None, {"provider": "vss", "layout": "scripts.d", "timeout": 900}),
        ("guest", "quiesce.start", "vm-1", None, {"provider": "vss", "layout": "scripts.d", "timeout": 900}),
    )
    report = check_trace(evs, profile=profile, open_ended=True)
    assert "QSC-END" in report.rule_ids(), report.format()
