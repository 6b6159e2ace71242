"""The restore rules' trace side (issue 16): correct restore traces pass, each restore mutant of
``trace_mutants.TRACE_MUTANTS`` (RST-*) is rejected naming its rule (test_trace_mutants.py)."""

import pytest
import trace_mutants as tm

from vcbsim.conformance import check_trace


@pytest.mark.parametrize(
    "build",
    [tm.good_restore_vm, lambda: tm.good_restore_vm(over=True), lambda: tm.good_restore_vm(fail=True),
     tm.good_restore_files],
    ids=["new-vm", "over-the-powered-off-original", "failed-without-a-vm", "files-into-the-guest"],
)
def test_correct_restore_traces_pass(build) -> None:
    report = check_trace(build().events())
    assert report.ok, report.format()
    assert not report.warnings


def test_the_restore_family_has_a_trace_mutant_per_trace_rule() -> None:
    from vcbsim.conformance import RULES

    trace_rules = {r.id for r in RULES.values() if r.family == "RESTORE" and "trace" in r.checked_by}
    assert trace_rules == {m.rule for m in tm.TRACE_MUTANTS if m.rule.startswith("RST-")}
