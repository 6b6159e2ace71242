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


def _faulted_restore(adapter: object, tmp_path: object, rule: dict[str, object]) -> object:
    from pathlib import Path

    from vcbsim.conformance._wire import WireEndpoint, WireScenario

    with WireEndpoint() as ep:
        scen = WireScenario(adapter, ep, workdir=Path(str(tmp_path)))  # type: ignore[arg-type]
        scen.arm_fault(str(rule["operation"]), str(rule.get("target", "*")), rule.get("fault"))  # type: ignore[arg-type]
        scen.restore("win2003-sql", ("new", "over"))
        scen.finish()
        return scen


@pytest.mark.parametrize("rule", [{"operation": "datastore.put", "target": "*_1.vmdk", "fault": "NoDiskSpace"},
                                  {"operation": "datastore.put.drop"}], ids=["disk-full-part-way", "connection-lost"])
def test_a_fault_during_a_restore_over_the_wire_is_judged_for_half_made_vms(rule: dict[str, object],
                                                                           tmp_path: object) -> None:
    """The reference's restore command fails under the fault and leaves nothing; the mutant
    that reserves a placeholder VM first leaves it, rejected naming RST-NO-HALF-VM."""
    from vcbsim.conformance import ConformanceViolation

    scen = _faulted_restore(wire_restore_adapter(), tmp_path, rule)
    failed = [j for j in scen.restores if j.exit_code != 0]  # type: ignore[attr-defined]
    assert len(failed) == 1 and "\n" not in failed[0].stderr.strip(), failed
    assert scen.evidence()["RST-NO-HALF-VM"] >= 1  # type: ignore[attr-defined]
    with pytest.raises(ConformanceViolation) as info:
        _faulted_restore(wire_restore_adapter("leaves-its-placeholder-after-a-failed-upload"), tmp_path, rule)
    assert info.value.rule_id == "RST-NO-HALF-VM" and "win2003-sql-restored-restoring" in str(info.value)


def _argv(adapter: object) -> list[str]:
    import json
    import shlex

    restore = adapter.restore  # type: ignore[attr-defined]
    return ["--command", shlex.join(adapter.argv),  # type: ignore[attr-defined]
            "--restore-command", shlex.join(restore["new"]), "--restore-over-command", shlex.join(restore["over"]),
            "--restore-files-command", shlex.join(restore["files"]),
            "--capabilities", json.dumps({"wire_restore": True})]


def test_vcbsim_conform_takes_the_restore_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from vcbsim.conformance._wire import main_conform_command

    assert main_conform_command([*_argv(wire_restore_adapter()), "--scenario", "wire-restore"]) == 0
    assert "PASS wire/wire-restore" in capsys.readouterr().out
    # a template with a placeholder the kit does not know: one line, exit 2
    argv = _argv(wire_restore_adapter())
    argv[argv.index("--restore-command") + 1] += " {no_such_placeholder}"
    assert main_conform_command([*argv, "--scenario", "wire-restore"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no_such_placeholder" in err and "{backup_id}" in err and "\n" not in err


@pytest.mark.slow
def test_route_2_certify_with_restore_commands_gives_a_bundle_verify_bundle_certifies(
        tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    """Route 2 certify of the reference CLI as backup and restore command: the restore case runs
    (it is not N/A), every RST-* rule and IMG-CONFIG are exercised, and the bundle certifies."""
    import json
    from pathlib import Path

    from vcbsim.conformance._cli import main_verify_bundle
    from vcbsim.conformance._wire import main_conform_command

    report = Path(str(tmp_path))
    code = main_conform_command([*_argv(wire_restore_adapter()), "--kit-profile", "certify", "--report", str(report)])
    out = capsys.readouterr().out
    assert code == 0 and "PASS wire/wire-restore" in out, out[-3000:]
    assert main_verify_bundle(["--certified", str(report)]) == 0
    doc = json.loads((report / "results.json").read_text())
    assert doc["evidence"]["unexercised"] == []
    assert {r for r in JUDGED if doc["evidence"]["exercised"].get(r)} == JUDGED
