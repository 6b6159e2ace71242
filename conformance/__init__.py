"""The conformance kit: rules, trace checker, adapters, the Hypothesis suite and reports.

A vendor certifies an orchestrator with one test::

    from vcbsim.conformance import run
    def test_conformance():
        run(MyOrchestrator, profile="certify", report="kit-results")

Public names are re-exported here; implementation modules start with an underscore.
"""

from ._adapters import (
    BackupPolicy,
    CommandAdapter,
    FunctionOrchestrator,
    GuestAgent,
    JobResult,
    Orchestrator,
    ReferenceOrchestrator,
)
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
from ._suite import KIT_PROFILES, SCENARIOS, KitProfile, RunResult, Scenario, Step, run

__all__ = [
    "FAMILIES",
    "KIT_PROFILES",
    "KIT_VERSION",
    "RULES",
    "SCENARIOS",
    "AdapterError",
    "BackupPolicy",
    "CaseResult",
    "CheckReport",
    "CommandAdapter",
    "ConformanceViolation",
    "FlakyAdapterError",
    "FunctionOrchestrator",
    "GuestAgent",
    "InvalidDefinition",
    "JobResult",
    "KitError",
    "KitProfile",
    "Orchestrator",
    "ReferenceOrchestrator",
    "Rule",
    "RunInfo",
    "RunResult",
    "Scenario",
    "Step",
    "Violation",
    "check_trace",
    "get_rule",
    "rules_for",
    "run",
    "verify_bundle",
    "write_bundle",
]
