"""The pytest plugin's fixtures and options, and the pinned public surface of the kit."""

import sys

import vcbsim.conformance as kit

EXPECTED = {
    "FAMILIES", "KIT_PROFILES", "KIT_VERSION", "RULES", "SCENARIOS",
    "AdapterError", "BackupPolicy", "CaseResult", "CheckReport", "CommandAdapter", "ConformanceViolation",
    "FlakyAdapterError", "FunctionOrchestrator", "GuestAgent", "InvalidDefinition", "JobResult", "KitError",
    "KitProfile", "Orchestrator", "ReferenceOrchestrator", "Rule", "RunInfo", "RunResult", "Scenario", "Step",
    "Violation", "check_trace", "get_rule", "rules_for", "run", "run_parallel", "verify_bundle", "write_bundle",
    # declared capabilities, evidence per rule, one scenario protocol, route 2, traced guest agents
    "AgentRecorder", "Capabilities", "Evidence", "ScenarioBase", "certify_command", "diagnosis",
}


def test_conformance_exports_exactly_the_pinned_names() -> None:
    assert set(kit.__all__) == EXPECTED


def test_error_hierarchy() -> None:
    assert issubclass(kit.AdapterError, kit.KitError)
    assert issubclass(kit.ConformanceViolation, kit.KitError)
    assert issubclass(kit.InvalidDefinition, kit.KitError) and issubclass(kit.InvalidDefinition, ValueError)
    assert issubclass(kit.FlakyAdapterError, kit.AdapterError)


def test_esx_host_fixture_is_a_fresh_host(esx_host_empty) -> None:
    assert esx_host_empty.profile.name == "esx-3.5u2"
    assert len(esx_host_empty.trace) == 1 and esx_host_empty.trace.events[0].kind == "host.reset"


def test_session_host_is_shared(esx_host_session, request) -> None:
    assert request.getfixturevalue("esx_host_session") is esx_host_session


def test_kit_options_have_defaults(kit_profile, kit_report) -> None:
    assert kit_profile == "quick"
    assert kit_report is None


def test_plugin_module_imports_nothing_heavy() -> None:
    import importlib
    import subprocess

    code = (
        "import sys, importlib; importlib.import_module('vcbsim.conformance._pytest_plugin');"
        "heavy = [m for m in ('hypothesis', 'vcbsim.simulator._host', 'vcbsim.reference', 'pyVmomi') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"the plugin imported {out} at load time"
    assert importlib.import_module("vcbsim.conformance._pytest_plugin").__doc__


def test_kit_run_fixture_uses_the_options(kit_run, tmp_path) -> None:
    import io

    from vcbsim.conformance import ReferenceOrchestrator

    result = kit_run(ReferenceOrchestrator, scenarios=["thaw-fails"], explore=False, seed=9, out=io.StringIO(),
                     report=tmp_path / "b")
    assert result.ok and result.run_info.kit_profile == "quick" and result.run_info.seed == 9
    assert (tmp_path / "b" / "results.json").is_file()


def test_vmware_tools_is_a_guest_agent_and_the_reference_an_orchestrator() -> None:
    from vcbsim.conformance import GuestAgent, Orchestrator, ReferenceOrchestrator
    from vcbsim.simulator import Host

    host = Host.demo()
    assert isinstance(host.find_vm("win2003-sql").tools, GuestAgent)
    ref = ReferenceOrchestrator()
    assert isinstance(ref, Orchestrator)
    ref.close()


def test_command_adapter_design_fills_placeholders_and_validates() -> None:
    import pytest

    from vcbsim.conformance import BackupPolicy, CommandAdapter, InvalidDefinition

    cmd = CommandAdapter(["./mybackup", "--server", "{url}", "--vm", "{vm}", "-t", "{mode}", "--trace", "{trace}"])
    assert cmd.command(url="https://127.0.0.1:8443/sdk", vm="win2003-sql", policy=BackupPolicy("file", "incremental"),
                       trace="t.jsonl") == ["./mybackup", "--server", "https://127.0.0.1:8443/sdk", "--vm", "win2003-sql",
                                            "-t", "file", "--trace", "t.jsonl"]
    with pytest.raises(InvalidDefinition, match="non-empty list of strings"):
        CommandAdapter([])
