"""``vcbsim check-trace`` and ``vcbsim verify-bundle`` as functions: output and exit codes."""

from pathlib import Path

import pytest

from vcbsim.conformance._cli import main_check_trace, main_verify_bundle

TRACES = Path(__file__).resolve().parents[2] / "data" / "traces"


def test_good_trace_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_check_trace([str(TRACES / "good-image-level.jsonl")]) == 0
    assert "PASS" in capsys.readouterr().out


def test_violation_exits_1_and_prints_rule_witness_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_check_trace([str(TRACES / "WF-3b--commit-before-copy-ends.jsonl")]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "WF-3b" in out
    assert "why: " in out and "witness #" in out
    assert "Commit only after the copy ended" in out


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_check_trace([str(TRACES / "TRC-OP-PAIRED--job-never-ends.jsonl"), "--json"]) == 1
    assert '"rule": "TRC-OP-PAIRED"' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json\n", "invalid JSON"),
        ('{"seq": 0}\n', "does not match trace.schema.json"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text(content)
    assert main_check_trace([str(f)]) == 2
    assert expected in capsys.readouterr().err


def test_missing_file_and_bad_profile_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main_check_trace([str(tmp_path / "missing.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main_check_trace([str(TRACES / "good-image-level.jsonl"), "--profile", "esx-2"])
    assert info.value.code == 2


def test_verify_bundle_not_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main_verify_bundle([str(tmp_path / "nope")]) == 2
    assert "expected a bundle directory" in capsys.readouterr().err


def test_conformance_verb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vcbsim.conformance._cli import main_conformance

    assert main_conformance(["--profile", "teach", "--seed", "2", "--report", str(tmp_path / "b")]) == 0
    assert "CONFORMANT" in capsys.readouterr().out
    assert main_verify_bundle([str(tmp_path / "b")]) == 0
    assert main_conformance(["--adapter", "no.such.module:X"]) == 2
    assert "MODULE:FACTORY" in capsys.readouterr().err
