"""Results bundles: results.json (schema), junit.xml (xunit2), summary.txt, timelines, verify."""

import json
from pathlib import Path

import pytest
from defusedxml import ElementTree as DET

from vcbsim.conformance import (
    CaseResult,
    InvalidDefinition,
    check_trace,
    verify_bundle,
    write_bundle,
)
from vcbsim.conformance._cli import main_verify_bundle
from vcbsim.conformance._report import new_run_info
from vcbsim.simulator import load_jsonl

TRACES = Path(__file__).resolve().parents[2] / "data" / "traces"


def _evidence(*, missing: tuple[str, ...] = ()):
    from vcbsim.conformance import RULES
    from vcbsim.conformance._capabilities import Capabilities
    from vcbsim.conformance._evidence import Evidence

    return Evidence.of(Capabilities(), "esx-3.5u2", [{r: 1 for r in RULES if r not in missing}])


def _bundle(tmp_path: Path, kit_profile: str = "quick", *, failing: bool = True, missing: tuple[str, ...] = ()) -> Path:
    info = new_run_info(kit_profile=kit_profile, host_profile="esx-3.5u2", seed=1234,
                        adapter_name="reference", adapter_version="0.1.0", config={"max_examples": 10})
    events = load_jsonl(TRACES / "WF-3a--commit-while-mounted.jsonl")
    report = check_trace(events)
    cases = [CaseResult("workflow/good", "pass", duration=0.5)]
    if failing:
        cases += [
            CaseResult("workflow/commit-while-mounted", "fail", message=report.violations[0].explanation,
                       rules=tuple(report.rule_ids()), steps=("state.backup(vm='win2003')",),
                       violations=tuple(v.to_dict() for v in report.violations), trace=tuple(events)),
            CaseResult("workflow/adapter-crash", "error", message="AdapterError: backup() returned None"),
        ]
    return write_bundle(tmp_path / "bundle", info, cases, statistics={"steps": 12}, evidence=_evidence(missing=missing))


def test_written_bundle_verifies(tmp_path: Path) -> None:
    root = _bundle(tmp_path)
    assert verify_bundle(root) == []
    doc = json.loads((root / "results.json").read_text())
    assert doc["totals"] == {"pass": 1, "fail": 1, "error": 1, "skip": 0, "na": 0, "total": 3}
    assert doc["run_info"]["seed"] == 1234 and doc["run_info"]["hypothesis_version"]
    html = (root / "timelines" / "workflow-commit-while-mounted.html").read_text()
    assert 'class="w" id="e17"' in html and "WF-3a" in html
    assert (root / "timelines" / "workflow-adapter-crash.html").is_file()
    summary = (root / "summary.txt").read_text()
    assert doc["run_info"]["run_uuid"] in summary and "NOT CONFORMANT" in summary


def test_junit_is_xunit2_shaped_and_keeps_error_apart_from_fail(tmp_path: Path) -> None:
    root = _bundle(tmp_path)
    suite = DET.parse(str(root / "junit.xml")).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = {tc.get("name"): tc for tc in suite.iter("testcase")}
    assert cases["workflow/commit-while-mounted"].find("failure").get("type") == "WF-3a"
    assert cases["workflow/adapter-crash"].find("error") is not None
    assert cases["workflow/adapter-crash"].find("failure") is None
    assert all(tc.find("properties") is None for tc in cases.values())
    assert {p.get("name") for p in suite.find("properties")} >= {"run_uuid", "seed", "kit_version", "stat.steps"}


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (lambda r: (r / "timelines" / "workflow-commit-while-mounted.html").unlink(), "timeline"),
        (lambda r: (r / "junit.xml").unlink(), "junit.xml is missing"),
        (lambda r: (r / "summary.txt").write_text("x"), "run UUID"),
        (lambda r: (r / "results.json").write_text(
            (r / "results.json").read_text().replace('"fail": 1', '"fail": 0', 1)), "totals.fail"),
        (lambda r: (r / "results.json").write_text("{"), "not JSON"),
    ],
)
def test_verify_finds_tampering(tmp_path: Path, tamper, expected: str) -> None:
    root = _bundle(tmp_path)
    tamper(root)
    problems = verify_bundle(root)
    assert any(expected in p for p in problems), problems


def test_certified_needs_a_clean_certify_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert any("certify" in p for p in verify_bundle(_bundle(tmp_path / "a", failing=False), certified=True))
    assert any("1 FAIL" in p for p in verify_bundle(_bundle(tmp_path / "b", "certify"), certified=True))
    clean = _bundle(tmp_path / "c", "certify", failing=False)
    assert verify_bundle(clean, certified=True) == []
    assert main_verify_bundle([str(clean), "--certified"]) == 0
    assert main_verify_bundle([str(_bundle(tmp_path / "d"))]) == 0
    assert "VALID" in capsys.readouterr().out
    # a certify run that left an applicable rule without an occasion certifies nothing
    thin = _bundle(tmp_path / "e", "certify", failing=False, missing=("BK-INCR-SINCE-LAST",))
    assert any("never exercised: BK-INCR-SINCE-LAST" in p for p in verify_bundle(thin, certified=True))


def test_evidence_is_in_every_part_of_the_bundle(tmp_path: Path) -> None:
    root = _bundle(tmp_path, failing=False, missing=("CMT-DATA",))
    doc = json.loads((root / "results.json").read_text())
    assert doc["schema_version"] == 2 and doc["evidence"]["unexercised"] == ["CMT-DATA"]
    assert doc["evidence"]["exercised"]["WF-3a"] == 1
    assert "SCR-LAYOUT-LEGACY" in doc["evidence"]["not_applicable"]
    props = {p.get("name"): p.get("value") for p in DET.parse(str(root / "junit.xml")).getroot().iter("property")}
    assert props["rule.WF-3a"] == "1" and props["rule.CMT-DATA"] == "0"
    assert props["rule.SCR-LAYOUT-LEGACY"].startswith("n/a: ")
    summary = (root / "summary.txt").read_text()
    assert "CMT-DATA" in summary and "NOT EXERCISED" in summary and "declaration:" in summary


def test_case_results_are_validated() -> None:
    with pytest.raises(InvalidDefinition, match="outcome"):
        CaseResult("x", "broken")  # type: ignore[arg-type]
    with pytest.raises(InvalidDefinition, match="catalogue"):
        CaseResult("x", "fail", rules=("NOPE",))
