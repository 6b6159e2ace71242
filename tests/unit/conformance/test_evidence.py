"""Declared capabilities, evidence per rule, and jobs judged by what the host and the guest show
(issue 11 items 1-3): each test would fail if its feature were absent."""

from __future__ import annotations

import inspect
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from vcbsim.conformance import (
    RULES,
    BackupPolicy,
    ConformanceViolation,
    JobResult,
    ReferenceOrchestrator,
    Scenario,
    _evidence,
    run,
)
from vcbsim.conformance._capabilities import Capabilities
from vcbsim.conformance._cli import main_conformance, main_verify_bundle

WIN = "win2003-sql"


class FileOnly(ReferenceOrchestrator):
    """The reference proxy, declared as a file-level-only product for Windows guests."""

    capabilities = Capabilities(image_levels=(), guest_families=("windows",))


class RefusesFiles(ReferenceOrchestrator):
    """Declares file-level support (the default declaration) but refuses every file job."""

    def backup(self, host, vm_name: str, policy: BackupPolicy) -> JobResult:  # type: ignore[no-untyped-def]
        if policy.mode == "file":
            return JobResult(ok=False, error="file-level backups are not licensed")
        return super().backup(host, vm_name, policy)


class CopiesEverything(ReferenceOrchestrator):
    """Its incrementals claim to have copied every file (an 'incremental' that is a full)."""

    def backup(self, host, vm_name: str, policy: BackupPolicy) -> JobResult:  # type: ignore[no-untyped-def]
        r = super().backup(host, vm_name, policy)
        return replace(r, copied=r.files) if r.ok and policy.level != "full" else r


def test_every_rule_has_an_occasion() -> None:
    source = inspect.getsource(_evidence)
    missing = [r for r in RULES if r not in _evidence.SUITE_OCCASIONS and f'"{r}"' not in source]
    assert missing == [], f"rules the evidence cannot count (add an occasion in _evidence.py): {missing}"


def test_a_file_level_only_product_is_asked_only_file_jobs_and_passes() -> None:
    result = run(FileOnly, profile="quick", seed=3, explore=False, out=io.StringIO())
    by = {c.name: c for c in result.cases}
    assert by["scenario/image-backup"].outcome == "na"  # only image jobs: none asked
    assert by["scenario/file-level-linux-refused"].outcome == "na"
    assert "declared no support for linux" in by["scenario/file-level-linux-refused"].message
    assert result.evidence is not None
    assert "IMG-ALL-DISKS" in result.evidence.not_applicable
    assert result.evidence.exercised.get("BK-INCR-SINCE-LAST")


def test_a_product_that_refuses_declared_file_jobs_is_not_conformant() -> None:
    with pytest.raises(ConformanceViolation) as info:
        run(RefusesFiles, profile="quick", seed=3, explore=False, scenarios=["file-backup-series"], out=io.StringIO())
    assert info.value.rule_id == "EV-DECLARED-WORKS"
    assert "not licensed" in info.value.explanation


def test_an_incremental_that_copies_everything_fails_on_the_seeds_base() -> None:
    with pytest.raises(ConformanceViolation) as info:
        run(CopiesEverything, profile="quick", seed=3, explore=False, scenarios=["file-backup-series"],
            out=io.StringIO())
    assert info.value.rule_id == "BK-INCR-SINCE-LAST"
    assert "untouched since" in info.value.explanation


def test_ok_with_the_snapshot_left_is_judged_by_the_host() -> None:
    s = Scenario(ReferenceOrchestrator)
    try:
        mark = len(s.host.trace)
        s.host.create_snapshot(WIN, "_VCB-BACKUP_", quiesce=True)  # what a job did, and left
        with pytest.raises(ConformanceViolation) as info:
            s._judge_outcome(WIN, BackupPolicy("fullvm"), JobResult(ok=True), mark)
        assert info.value.rule_id == "EV-OUTCOME-TRUE" and "still on the VM" in info.value.explanation
        s._judge_outcome(WIN, BackupPolicy("fullvm"), JobResult(ok=False), len(s.host.trace))  # nothing claimed
    finally:
        s.close()


def test_the_scripts_own_log_is_compared_with_the_agents_trace() -> None:
    s = Scenario(ReferenceOrchestrator)
    try:
        s.add_script("20-x.bat")
        s.backup(WIN, "fullvm")
        log = s.host.guest_fs(WIN).read_bytes("C:\\vcb-quiesce.log").decode()
        assert "20-x.bat freeze" in log and "20-x.bat thaw" in log
        # a line no traced script.run explains: the agent's trace and the guest disagree
        s.write(WIN, "C:\\vcb-quiesce.log", log + "20-x.bat freezeFail\r\n")
        with pytest.raises(ConformanceViolation) as info:
            s.backup(WIN, "fullvm")
        assert info.value.rule_id == "SCR-ARG-EXACT" and "recorded" in info.value.explanation
    finally:
        s.close()


def test_cli_kit_profile_capabilities_verdict_and_diagnosis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    decl = json.dumps({"image_levels": [], "guest_families": ["windows"]})
    code = main_conformance(["tests.unit.conformance.test_evidence:RefusesFiles", "--kit-profile", "quick",
                             "--seed", "3", "--capabilities", decl])
    out = capsys.readouterr()
    assert code == 1
    assert "EV-DECLARED-WORKS" in out.err and "why:" in out.err and "Reproduce with:" in out.err
    assert "NOT CONFORMANT" in out.out and "\"image_levels\": []" in out.out
    assert main_conformance(["--profile", "quick", "--seed", "1", "--report", str(tmp_path / "b")]) == 0
    out = capsys.readouterr()
    assert "deprecated" in out.err and "CONFORMANT" in out.out and "WF-3a" in out.out
    assert main_verify_bundle([str(tmp_path)]) == 2  # a directory that is not a bundle
