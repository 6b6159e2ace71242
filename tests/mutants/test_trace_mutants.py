"""Every trace-level mutant is rejected, naming exactly the rule it breaks, with a short witness."""

import pytest
import trace_mutants as tm

from vcbsim.conformance import check_trace


@pytest.mark.parametrize("mutant", tm.TRACE_MUTANTS, ids=lambda m: m.name)
def test_checker_rejects_trace_mutant(mutant: tm.TraceMutant) -> None:
    report = check_trace(mutant.build(), profile=mutant.profile)
    assert not report.ok
    assert mutant.rule in report.rule_ids(), report.format()
    v = next(v for v in report.violations if v.rule_id == mutant.rule)
    assert 1 <= len(v.witness) <= 4, v.format()
    assert v.explanation and "#" in v.explanation


@pytest.mark.parametrize(
    ("build", "profile"),
    [(tm.good_file_job, "esx-3.5u2"), (tm.good_image_job, "esx-3.5u2"),
     (lambda: tm.good_image_job("esxi-7.0"), "esxi-7.0"), (tm.good_file_series, "esx-3.5u2"),
     (tm.good_incremental_after_differential, "esx-3.5u2"),
     (lambda: tm.good_incremental_after_differential(["C:\\data\\b.txt", "C:\\data\\c.txt", "C:\\data\\d.txt",
                                                      "C:\\data\\during.txt"]), "esx-3.5u2")],
    ids=["file", "image", "image-7.0", "file-series", "incremental-after-differential", "with-metadata-changed-files"],
)
def test_correct_traces_pass(build, profile: str) -> None:
    report = check_trace(build().events(), profile=profile)
    assert report.ok, report.format()
    assert report.consumed == report.events
    assert not report.warnings


def test_correct_failure_path_passes() -> None:
    report = check_trace(tm.freeze_script_fails())
    assert report.ok, report.format()


def test_mutants_break_distinct_rules_and_cover_the_families() -> None:
    from vcbsim.conformance import RULES

    families = {RULES[m.rule].family for m in tm.TRACE_MUTANTS}
    assert {"WF", "SCRIPT", "QUIESCE", "COMMIT", "FILE", "CLEANUP", "TIMEOUT", "TRACE"} <= families


def _renamed_snapshot() -> list:
    evs = tm.good_file_job().events()
    return tm._set(evs, tm._find(evs, "snapshot.create.start"), name="acme-backup")


def _near_the_timer() -> list:
    """The guest agent itself takes 90 s to engage (the scripts' time and the host's snapshot
    are not the agent's, TMO-NEAR-LIMIT), with a timer it uses 90 % of."""
    from vcbsim.simulator import Event

    evs = tm.good_file_job().events()
    start = tm._find(evs, "quiesce.start")
    engage = tm._find(evs, "quiesce.engage")
    evs = [e if i < engage else Event(e.seq, e.time + 90.0, e.actor, e.kind, e.vm, e.step, e.details)
           for i, e in enumerate(evs)]
    return tm._set(evs, start, timeout=90.0 / 0.9)  # 90 % of the timer used by the agent


@pytest.mark.parametrize(
    ("build", "rule"),
    [(_renamed_snapshot, "WF-SNAPSHOT-NAME"), (_near_the_timer, "TMO-NEAR-LIMIT")],
    ids=["renamed-snapshot", "near-the-timer"],
)
def test_should_rules_warn_and_do_not_fail(build, rule: str) -> None:
    """A SHOULD rule is a warning, never a FAIL: the trace passes and names it."""
    report = check_trace(build(), profile="esx-3.5u2")
    assert report.ok, report.format()
    assert [w.rule_id for w in report.warnings] == [rule]
