"""The trace's published schema, JSON Lines round trip, and fault rules at the host level."""

from __future__ import annotations

import io
import json
from importlib import resources

import pytest
from pyVmomi import vim

from vcbsim.simulator import (
    KINDS,
    FaultRule,
    Host,
    InvalidInputError,
    SimulatedCrash,
    load_jsonl,
)
from vcbsim.simulator._trace import build_schema

WIN = "win2003-sql"


def test_shipped_schema_is_generated_from_kinds() -> None:
    shipped = json.loads(
        resources.files("vcbsim.simulator").joinpath("schemas/trace.schema.json").read_text()
    )
    assert shipped == build_schema(), "regenerate simulator/schemas/trace.schema.json from build_schema()"
    assert sorted(KINDS) == shipped["properties"]["kind"]["enum"]


def test_jsonl_round_trip_validates_every_line() -> None:
    host = Host.demo()
    host.create_snapshot(WIN, "_VCB-BACKUP_", quiesce=True)
    buf = io.StringIO()
    host.trace.write_jsonl(buf)
    events = load_jsonl(buf.getvalue())
    assert [e.to_dict() for e in events] == [e.to_dict() for e in host.trace]
    bad = buf.getvalue().replace('"actor": "guest"', '"actor": "robot"', 1)
    with pytest.raises(ValueError, match=r"trace line \d+: does not match"):
        load_jsonl(bad)
    with pytest.raises(ValueError, match="invalid JSON"):
        load_jsonl("{not json\n")


def test_vss_engage_failure_goes_straight_to_post_thaw_and_leaves_no_snapshot() -> None:
    host = Host.demo()
    vm = host.find_vm(WIN)
    host.add_fault(FaultRule("quiesce.engage", target="*", fault="SnapshotFault"))
    with pytest.raises(vim.fault.SnapshotFault):
        host.create_snapshot(vm, "_VCB-BACKUP_", quiesce=True)
    assert vm.snapshots() == [] and not vm.tools.frozen
    kinds = [e.kind for e in host.trace if e.vm == vm.moref]
    assert "snapshot.create" not in kinds
    args = [e.details["arg"] for e in host.trace.of_kind("script.run")]
    assert args[-1] == "freezeFail" and "thaw" not in args


def test_guest_abort_timer_fires_on_a_hung_freeze_script() -> None:
    host = Host.demo("esxi-7.0")  # the guest timer exists from 2010 (OVT 7c7a38862)
    vm = host.find_vm(WIN)
    host.guest_fs(vm).write_text(
        r"C:\Program Files\VMware\VMware Tools\backupScripts.d\05-hang.bat", "[freeze] sleep 5000\r\n"
    )
    t0 = host.clock.now
    with pytest.raises(vim.fault.SnapshotFault):
        host.create_snapshot(vm, "_VCB-BACKUP_", quiesce=True)
    assert 900 <= host.clock.now - t0 < 5000  # the 900 s guest abort timer, in virtual time
    assert host.trace.of_kind("quiesce.abort") and vm.snapshots() == []


def test_datastore_full_on_guest_write() -> None:
    host = Host.demo()
    vm = host.find_vm(WIN)
    fs = host.guest_fs(vm)
    host.add_fault(FaultRule("disk.write", target=WIN, fault="NoDiskSpace"))
    with pytest.raises(vim.fault.NoDiskSpace):
        fs.write_text(r"D:\Data\big.bin", "x" * 100_000)
    assert fs.read_text(r"D:\Data\orders.csv").startswith("id,item")


def test_crash_point_is_not_caught_by_except_exception() -> None:
    host = Host.demo()
    host.add_fault(FaultRule("crash", target="host.snapshot.after-freeze"))
    with pytest.raises(SimulatedCrash):
        try:
            host.create_snapshot(WIN, "_VCB-BACKUP_")
        except Exception:  # an orchestrator's cleanup must not run after a crash
            pytest.fail("a crash must not be an Exception")
    assert host.trace.of_kind("crash")
    # the host is left as a crash leaves it: the snapshot exists and can be cleaned up
    vm = host.find_vm(WIN)
    assert [s.name for s in vm.snapshots()] == ["_VCB-BACKUP_"]
    host.remove_snapshot(vm, "_VCB-BACKUP_")


def test_fault_rules_validate_and_count() -> None:
    host = Host()
    with pytest.raises(InvalidInputError, match="operation"):
        FaultRule("snapshot.explode")
    with pytest.raises(ValueError, match="fault name"):
        FaultRule("snapshot.create", fault="NoSuchFault")
    rule = host.add_fault(operation="snapshot.create", fault="NoDiskSpace", after=1, times=2, label="full")
    vm = host.add_vm("a", disks=[1 << 30])
    host.create_snapshot(vm, "s1")  # skipped by after=1
    for name in ("s2", "s3"):
        with pytest.raises(vim.fault.NoDiskSpace):
            host.create_snapshot(vm, name)
    host.create_snapshot(vm, "s4")  # times=2 used up
    assert host.faults.hits() == {"full": 2} and rule.label == "full"


def test_fault_targets_match_vm_name_or_moref() -> None:
    host = Host.demo()
    vm = host.find_vm(WIN)
    host.add_fault(FaultRule("quiesce.engage", target=WIN, fault="SnapshotFault"))
    with pytest.raises(vim.fault.SnapshotFault):
        host.create_snapshot(vm, "by-name", quiesce=True)
    host.add_fault(FaultRule("quiesce.engage", target=vm.moref, fault="SnapshotFault"))
    with pytest.raises(vim.fault.SnapshotFault):
        host.create_snapshot(vm, "by-moref", quiesce=True)
    assert vm.snapshots() == []


def test_linux_demo_scripts_log_their_arguments() -> None:
    host = Host.demo()
    host.create_snapshot("rhel5-web", "q", quiesce=True)
    log = host.guest_fs("rhel5-web").read_text("/var/log/vcb-quiesce.log")
    assert log.splitlines() == ["pre freeze", "post thaw"]


def test_bounded_trace_keeps_newest_and_streams_everything() -> None:
    from vcbsim.simulator import Trace, VirtualClock

    sink = io.StringIO()
    trace = Trace(VirtualClock(), limit=50, sink=sink)
    for i in range(500):
        trace.emit("host", "note", text=str(i))
    assert len(trace) == 500 and len(trace.events) <= 50
    assert trace.events[-1].seq == 499 and trace.events[-1].details["text"] == "499"
    assert [e.seq for e in trace.since(495)] == [495, 496, 497, 498, 499]
    assert len(load_jsonl(sink.getvalue())) == 500
