"""Route 2 restores (issue 16): the reference CLI as the restore command passes the
``wire/wire-restore`` case with every RST-* rule and IMG-CONFIG judged from the host's facts;
each wire restore mutant is rejected naming its rule."""

from __future__ import annotations

import io

import pytest
from wire_restore_mutants import WIRE_RESTORE_MUTANTS, wire_restore_adapter

from vcbsim.conformance._wire import certify_command

JUDGED = {"RST-DISKS-EQUAL", "RST-VMX-KEPT", "RST-FILES-EXACT", "RST-NO-RUNNING-OVERWRITE", "RST-NO-HALF-VM",
          "IMG-CONFIG"}


def test_the_reference_cli_restores_over_the_wire_and_every_restore_rule_is_judged() -> None:
    out = io.StringIO()
    result = certify_command(wire_restore_adapter(), scenarios=["wire-restore"], out=out)
    (case,) = result.cases
    assert case.outcome == "pass", out.getvalue()
    assert {r for r, n in case.exercised.items() if n} >= JUDGED, case.exercised
    # both VMs: a new VM, the refusal, over the original; files into the Windows guest
    assert result.statistics["restores"] == 7


@pytest.mark.parametrize("name", sorted(WIRE_RESTORE_MUTANTS))
def test_a_wire_restore_mutant_is_rejected_naming_its_rule(name: str) -> None:
    out = io.StringIO()
    result = certify_command(wire_restore_adapter(name), scenarios=["wire-restore"], out=out)
    (case,) = result.cases
    assert case.outcome == "fail" and case.rules[0] == WIRE_RESTORE_MUTANTS[name], (case.rules, case.message)
    assert f"FAIL wire/wire-restore: {WIRE_RESTORE_MUTANTS[name]}" in out.getvalue()


def test_a_command_that_declares_no_restore_is_not_asked() -> None:
    (case,) = certify_command(wire_restore_adapter(declared=False), scenarios=["wire-restore"],
                              out=io.StringIO()).cases
    assert case.outcome == "na" and "declared no restore over the wire" in case.message
