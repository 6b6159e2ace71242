"""The acceptance run of issue 11, kept in the repo: every realistic bug of
``realistic_mutants.py`` (plugged in through the public adapter seams) is rejected by ``quick``
for seeds 0 to 3, naming a rule the bug breaks; ``certify`` (seed 1) rejects each too (slow)."""

from __future__ import annotations

import io

import pytest
from realistic_mutants import REALISTIC

from vcbsim.conformance import ConformanceViolation, run

SEEDS = (0, 1, 2, 3)


def test_there_are_at_least_25_realistic_bugs_each_documented() -> None:
    assert len(REALISTIC) >= 25
    for name, bug in REALISTIC.items():
        assert bug.doc and bug.rules, name
        assert any(r in bug.doc for r in bug.rules), f"{name}: its docstring names no rule it breaks"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(REALISTIC))
def test_quick_rejects_the_realistic_bug_naming_its_rule(name: str, seed: int) -> None:
    bug = REALISTIC[name]
    out = io.StringIO()
    with pytest.raises(ConformanceViolation) as info:
        run(bug.factory, profile="quick", seed=seed, host_profile=bug.host_profile, guest_agent_factory=bug.agent,
            out=out)
    exc = info.value
    assert set(exc.rule_ids) & set(bug.rules), f"{name}: rejected on {exc.rule_ids}, expected one of {bug.rules}: {exc}"
    assert "def test_regression_" in out.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REALISTIC))
def test_certify_rejects_the_realistic_bug(name: str) -> None:
    bug = REALISTIC[name]
    with pytest.raises(ConformanceViolation) as info:
        run(bug.factory, profile="certify", seed=1, host_profile=bug.host_profile, guest_agent_factory=bug.agent,
            out=io.StringIO())
    assert set(info.value.rule_ids) & set(bug.rules), info.value.rule_ids
