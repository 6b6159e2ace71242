"""The conformance kit: rules, trace checker, adapters, the Hypothesis suite and reports.

A vendor certifies an orchestrator with one test::

    from vcbsim.conformance import run
    def test_conformance():
        run(MyOrchestrator, profile="certify", report="kit-results")

Public names are re-exported here; implementation modules start with an underscore.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._adapters import (
        AgentRecorder,
        BackupPolicy,
        CommandAdapter,
        FunctionOrchestrator,
        GuestAgent,
        JobResult,
        Orchestrator,
        ReferenceOrchestrator,
    )
    from ._capabilities import Capabilities
    from ._checker import CheckReport, Violation, check_trace
    from ._errors import (
        AdapterError,
        ConformanceViolation,
        FlakyAdapterError,
        InvalidDefinition,
        KitError,
    )
    from ._evidence import Evidence
    from ._judge import ScenarioBase
    from ._parallel import run_parallel
    from ._report import CaseResult, RunInfo, diagnosis, verify_bundle, write_bundle
    from ._rules import FAMILIES, KIT_VERSION, RULES, Rule, get_rule, rules_for
    from ._suite import KIT_PROFILES, SCENARIOS, KitProfile, RunResult, Scenario, Step, run
    from ._wire import certify_command

#: Where each public name lives. Resolved on first use (PEP 562), so importing the package,
#: as pytest does for the plugin, stays light.
_LAZY = {
    "BackupPolicy": "_adapters", "CommandAdapter": "_adapters", "FunctionOrchestrator": "_adapters",
    "GuestAgent": "_adapters", "JobResult": "_adapters", "Orchestrator": "_adapters",
    "ReferenceOrchestrator": "_adapters", "AgentRecorder": "_adapters", "Capabilities": "_capabilities", "Evidence": "_evidence",
    "ScenarioBase": "_judge", "diagnosis": "_report", "certify_command": "_wire",
    "CheckReport": "_checker", "Violation": "_checker", "check_trace": "_checker",
    "AdapterError": "_errors", "ConformanceViolation": "_errors", "FlakyAdapterError": "_errors",
    "InvalidDefinition": "_errors", "KitError": "_errors",
    "CaseResult": "_report", "RunInfo": "_report", "verify_bundle": "_report", "write_bundle": "_report",
    "FAMILIES": "_rules", "KIT_VERSION": "_rules", "RULES": "_rules", "Rule": "_rules", "get_rule": "_rules",
    "rules_for": "_rules",
    "KIT_PROFILES": "_suite", "SCENARIOS": "_suite", "KitProfile": "_suite", "RunResult": "_suite",
    "Scenario": "_suite", "Step": "_suite", "run": "_suite", "run_parallel": "_parallel",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'vcbsim.conformance' has no attribute {name!r}"
        raise AttributeError(msg)
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "FAMILIES",
    "KIT_PROFILES",
    "KIT_VERSION",
    "RULES",
    "SCENARIOS",
    "AdapterError",
    "AgentRecorder",
    "BackupPolicy",
    "Capabilities",
    "CaseResult",
    "CheckReport",
    "CommandAdapter",
    "ConformanceViolation",
    "Evidence",
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
    "ScenarioBase",
    "Step",
    "Violation",
    "certify_command",
    "check_trace",
    "diagnosis",
    "get_rule",
    "rules_for",
    "run",
    "run_parallel",
    "verify_bundle",
    "write_bundle",
]
