"""The kit's ``wire-restore`` scenario (issue 16): ``quick`` passes the reference on both host
eras and exercises every RST-* rule; it rejects each restore mutant naming its rule; a product
that declares no restore over the wire is not asked (``na``); route 2 runs the scenario too."""

from __future__ import annotations

import io

import pytest
from restore_mutants import EXPLORATION_ONLY, RESTORE_MUTANTS, restore_mutant

from vcbsim.conformance import (
    SCENARIOS,
    Capabilities,
    ConformanceViolation,
    ReferenceOrchestrator,
    run,
)
from vcbsim.conformance._wire import wire_skip_reason

RST_RULES = {"RST-DISKS-EQUAL", "RST-VMX-KEPT", "RST-FILES-EXACT", "RST-NO-RUNNING-OVERWRITE", "RST-NO-HALF-VM"}


@pytest.mark.parametrize("host_profile", ["esx-3.5u2", "esxi-7.0"])
def test_quick_passes_the_reference_and_exercises_every_restore_rule(host_profile: str) -> None:
    result = run(ReferenceOrchestrator, profile="quick", seed=0, host_profile=host_profile, out=io.StringIO())
    assert result.ok, [(c.name, c.message) for c in result.cases if c.outcome != "pass"]
    case = next(c for c in result.cases if c.name == "scenario/wire-restore")
    assert case.outcome == "pass"
    assert {r for r, n in case.exercised.items() if n and r.startswith("RST-")} == RST_RULES


@pytest.mark.parametrize("name", sorted(set(RESTORE_MUTANTS) - EXPLORATION_ONLY))
def test_quick_rejects_a_restore_mutant_naming_its_rule(name: str) -> None:
    rule = RESTORE_MUTANTS[name][1]
    out = io.StringIO()
    with pytest.raises(ConformanceViolation) as info:
        run(restore_mutant(name), profile="quick", seed=0, out=out)
    assert info.value.rule_id == rule, str(info.value)
    printed = out.getvalue()
    assert "FAIL scenario/wire-restore" in printed and "def test_regression_scenario_wire_restore" in printed
    assert "s.restore(vm=" in printed


class _NoWireRestore(ReferenceOrchestrator):
    capabilities = Capabilities(image_levels=("full", "incremental", "differential"), restore=True)


def test_a_product_without_wire_restore_is_not_asked() -> None:
    result = run(_NoWireRestore, profile="quick", seed=0, scenarios=["wire-restore"], out=io.StringIO())
    case = next(c for c in result.cases if c.name == "scenario/wire-restore")
    assert case.outcome == "na" and "no restore over the wire" in case.message


def test_the_wire_route_runs_the_restore_scenario_too() -> None:
    """Route 2 asks a command's restore commands (``test_wire_restore_mutants.py``)."""
    assert wire_skip_reason(SCENARIOS["wire-restore"]) is None


@pytest.mark.parametrize("name", sorted(EXPLORATION_ONLY))
def test_only_the_exploration_finds_a_restore_bug_behind_a_fault(name: str) -> None:
    """The hand-written scenario passes it; the exploration's ``fault_during_restore`` (an
    upload that fails part way) makes it leave its placeholder VM, rejected naming the rule."""
    scenario = run(restore_mutant(name), profile="quick", seed=0, scenarios=["wire-restore"], explore=False,
                   out=io.StringIO())
    assert scenario.ok, [(c.name, c.message) for c in scenario.cases]
    out = io.StringIO()
    with pytest.raises(ConformanceViolation) as info:
        run(restore_mutant(name), profile="quick", seed=0, scenarios=["wire-restore"], out=out)
    assert info.value.rule_id == RESTORE_MUTANTS[name][1], str(info.value)
    printed = out.getvalue()
    assert "FAIL explore" in printed and "kinds=" in printed, printed[-2000:]
