"""The rule catalogue: ids, RFC 2119 text, sources, and the generated docs page."""

from pathlib import Path

import pytest

from vcbsim.conformance import (
    FAMILIES,
    RULES,
    InvalidDefinition,
    Rule,
    get_rule,
    rules_doc,
    rules_for,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "rules.md"


def test_docs_page_is_generated_from_the_catalogue() -> None:
    assert DOCS.read_text(encoding="utf-8") == rules_doc.render(), (
        "docs/rules.md is stale: run python -m vcbsim.conformance.rules_doc --write docs/rules.md"
    )


def test_every_seed_step_has_a_rule() -> None:
    for step in ("WF-1a", "WF-1b", "WF-1c", "WF-1d", "WF-1e", "WF-1f", "WF-2", "WF-3a", "WF-3b"):
        assert step in RULES
        assert f"seed {step}" in RULES[step].source


@pytest.mark.parametrize("rule", list(RULES.values()), ids=lambda r: r.id)
def test_rule_is_well_formed(rule: Rule) -> None:
    assert rule.level in rule.text
    assert rule.family in FAMILIES
    assert rule.source
    assert rule.checked_by and set(rule.checked_by) <= {"trace", "suite"}
    assert rule.severity == ("fail" if rule.level.startswith("MUST") else "warn")


def test_profile_specific_rules() -> None:
    u1 = {r.id for r in rules_for("esx-3.5u1")}
    u2 = {r.id for r in rules_for("esx-3.5u2")}
    assert "SCR-LAYOUT-LEGACY" in u1 and "SCR-LAYOUT-LEGACY" not in u2
    assert "SCR-LAYOUT-DIR" in u2 and "SCR-LAYOUT-DIR" not in u1


def test_unknown_rule_id_suggests_close_ids() -> None:
    with pytest.raises(InvalidDefinition, match="did you mean WF-3a"):
        get_rule("WF-3A")
    with pytest.raises(ValueError, match="expected one of"):
        rules_for("esx-4.0")


def test_rule_text_must_carry_its_level() -> None:
    with pytest.raises(InvalidDefinition, match="RFC 2119"):
        Rule("X-1", "t", "lower case must is not enough", "kit", "WF")
    with pytest.raises(InvalidDefinition, match="family"):
        Rule("X-1", "t", "It MUST.", "kit", "NOPE")
