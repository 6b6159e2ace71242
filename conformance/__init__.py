"""The conformance kit: rules, trace checker, adapters, the Hypothesis suite and reports.

Public names are re-exported here; implementation modules start with an underscore.
"""

from ._checker import CheckReport, Violation, check_trace
from ._errors import (
    AdapterError,
    ConformanceViolation,
    FlakyAdapterError,
    InvalidDefinition,
    KitError,
)
from ._report import CaseResult, RunInfo, verify_bundle, write_bundle
from ._rules import FAMILIES, KIT_VERSION, RULES, Rule, get_rule, rules_for

__all__ = [
    "FAMILIES",
    "KIT_VERSION",
    "RULES",
    "AdapterError",
    "CaseResult",
    "CheckReport",
    "ConformanceViolation",
    "FlakyAdapterError",
    "InvalidDefinition",
    "KitError",
    "Rule",
    "RunInfo",
    "Violation",
    "check_trace",
    "get_rule",
    "rules_for",
    "verify_bundle",
    "write_bundle",
]
