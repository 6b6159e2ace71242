"""A call the host's API lacks is refused *and recorded* (``host.call.refused``), so the kit
judges a product relying on vSphere 5.0 consolidation on an ESX 3.5 host (API 2.5) from the
host's own fact (CMT-CONSOLIDATE), and the reference proxy never makes that call there."""

from __future__ import annotations

import pytest

from vcbsim.conformance import BackupPolicy, ReferenceOrchestrator, check_trace
from vcbsim.conformance._adapters import call_adapter
from vcbsim.reference import InProcessHostClient
from vcbsim.reference._client import api_at_least
from vcbsim.simulator import Host

VM = "win2003-sql"


def _refused(host: Host) -> list[dict]:
    return [dict(e.details) for e in host.trace.events if e.kind == "host.call.refused"]


def test_a_2_5_host_records_the_calls_it_refuses() -> None:
    host = Host.demo("esx-3.5u2", seed=0)
    snap = host.create_snapshot(VM, "_VCB-BACKUP_")
    with pytest.raises(Exception, match="consolidate"):
        host.remove_snapshot(VM, snap, consolidate=False)
    with pytest.raises(Exception, match="ConsolidateVMDisks_Task"):
        host.consolidate_disks(VM)
    assert _refused(host) == [
        {"method": "RemoveSnapshot_Task", "api_version": "2.5u2", "since": "5.0", "parameter": "consolidate"},
        {"method": "ConsolidateVMDisks_Task", "api_version": "2.5u2", "since": "5.0"},
    ]
    # the refused removal changed nothing: the snapshot is still there
    assert [s.name for s in host.find_vm(VM).snapshots()] == ["_VCB-BACKUP_"]


def test_a_7_0_host_refuses_nothing_of_the_5_0_calls() -> None:
    host = Host.demo("esxi-7.0", seed=0)
    snap = host.create_snapshot(VM, "_VCB-BACKUP_")
    host.remove_snapshot(VM, snap, consolidate=False)
    host.consolidate_disks(VM)
    assert _refused(host) == []


def test_the_checker_names_cmt_consolidate_from_the_refusal() -> None:
    host = Host.demo("esx-3.5u2", seed=0)
    with pytest.raises(Exception, match="ConsolidateVMDisks_Task"):
        host.consolidate_disks(VM)
    report = check_trace(host.trace.events, profile="esx-3.5u2")
    assert report.rule_ids() == ["CMT-CONSOLIDATE"]
    assert "refused" in report.violations[0].explanation and "since API 5.0" in report.violations[0].explanation


def test_the_reference_never_calls_consolidate_disks_on_api_2_5() -> None:
    """Even when the VM says it needs consolidation (a 5.0 property a 2.5 host has not got),
    the reference proxy does not call the 5.0 method there."""
    host = Host.demo("esx-3.5u2", seed=0)
    host.find_vm(VM).consolidation_needed = True
    result = call_adapter(ReferenceOrchestrator(), InProcessHostClient(host), VM, BackupPolicy("fullvm"))
    assert result.ok, result.error
    assert _refused(host) == []
    assert check_trace(host.trace.events, profile="esx-3.5u2").ok


@pytest.mark.parametrize(("version", "major", "expected"), [
    ("2.5u2", 5, False), ("2.5", 5, False), ("7.0.3.0", 5, True), ("5.0", 5, True), (None, 5, True),
])
def test_api_at_least(version: str | None, major: int, expected: bool) -> None:
    class C:
        api_version = version

    assert api_at_least(C(), major) is expected
