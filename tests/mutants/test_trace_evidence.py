"""BK-* judged and counted from the trace alone (issue 11, "evidence, not silence"): a product
that lists the files each job copied on its own events (the ``files`` of its WF-2 copy's and its
job's ``op.ok``), and reports no ``JobResult.copied``, has its incrementals and differentials
judged by the trace checker and counted as occasions, so ``certify`` does not fail it as never
exercised; the same product copying everything in an incremental is rejected naming the rule."""

from __future__ import annotations

import io

import pytest
from toy_proxy import toy

from vcbsim.conformance import SCENARIOS, ConformanceViolation, Scenario, run
from vcbsim.conformance._evidence import occasions


def _series(factory):  # type: ignore[no-untyped-def]
    s = Scenario(factory)
    try:
        for step in SCENARIOS["file-backup-series"]:
            s.apply(step)
        s.finish()
        return s.evidence(), occasions(s.host.trace.events)
    finally:
        s.close()


def test_a_trace_only_product_exercises_the_bk_rules() -> None:
    evidence, traced = _series(toy(copied_only_in_trace=True))
    # the series: full, incremental (base: the full), differential (base: the full), incremental
    # (base: the first incremental; the differential is none)
    assert traced["BK-INCR-SINCE-LAST"] == 2 and traced["BK-DIFF-SINCE-FULL"] == 1
    assert evidence["BK-INCR-SINCE-LAST"] == 2 and evidence["BK-DIFF-SINCE-FULL"] == 1


def test_a_job_judged_from_both_sources_is_one_occasion() -> None:
    evidence, traced = _series(toy())  # the plain toy lists its files on its events and in copied
    assert evidence["BK-INCR-SINCE-LAST"] == traced["BK-INCR-SINCE-LAST"] == 2


def test_a_trace_only_incremental_that_copies_everything_is_rejected() -> None:
    with pytest.raises(ConformanceViolation) as info:
        run(toy(copied_only_in_trace=True, incremental_copies_everything=True), profile="quick", seed=3,
            scenarios=["file-backup-series"], explore=False, out=io.StringIO())
    assert info.value.rule_id == "BK-INCR-SINCE-LAST"


def test_certify_evidence_of_a_trace_only_product_has_the_bk_rules() -> None:
    result = run(toy(copied_only_in_trace=True), profile="dev", seed=3, explore=False, out=io.StringIO())
    assert result.ok and result.evidence is not None
    assert result.evidence.exercised.get("BK-INCR-SINCE-LAST") and result.evidence.exercised.get("BK-DIFF-SINCE-FULL")
    assert "BK-INCR-SINCE-LAST" not in result.evidence.unexercised
