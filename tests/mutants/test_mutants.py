"""The quick profile rejects every mutant, naming the rule it breaks; certify passes the
reference proxy, and quick passes it on every host profile and passes the unbroken toy proxy."""

from __future__ import annotations

import io

import pytest
from guest_agents import GUEST_AGENTS
from image_level_mutants import (
    CONFIG_MUTANTS,
    IMAGE_LEVEL_MUTANTS,
    AnnouncesTheUnmountButLeavesTheFolder,
    RestoresThePreviousFileBackup,
    image_level_mutant,
)
from toy_proxy import ToyProxy, toy
from transport_mutants import TRANSPORT_MUTANTS, transport_mutant

from vcbsim.conformance import ConformanceViolation, ReferenceOrchestrator, run

#: (mutant, orchestrator factory, guest agent factory, the rule it breaks)
PROXY_MUTANTS = [
    ("commits-before-the-copy-ends", toy(commit_before_copy_ends=True), "WF-3b"),
    ("skips-cleanup-after-a-failed-step", toy(skip_cleanup_after_failure=True), "CLN-NO-SNAPSHOT-LEFT"),
    ("treats-application-quiesce-fault-as-success", toy(appfault_as_success=True), "QSC-APPFAULT"),
    ("exports-before-the-snapshot-exists", toy(export_before_snapshot=True), "WF-1f"),
    ("unmounts-after-the-commit", toy(unmount_after_commit=True), "WF-3a"),
    ("mounts-letterless-volumes", toy(mount_letterless=True), "FILE-NO-LETTERLESS"),
    ("file-level-backup-of-a-linux-guest", toy(file_level_linux=True), "FILE-WINDOWS-ONLY"),
    ("differential-selects-like-incremental", toy(differential_like_incremental=True), "BK-DIFF-SINCE-FULL"),
    ("incremental-based-on-the-last-full", toy(incremental_since_full=True), "BK-INCR-SINCE-LAST"),
    ("leaves-the-redo-log-uncommitted", toy(redo_log_uncommitted=True), "CMT-CONSOLIDATE"),
    ("never-removes-the-snapshot", toy(never_remove_snapshot=True), "CLN-NO-SNAPSHOT-LEFT"),
    ("takes-an-unquiesced-snapshot", toy(unquiesced_snapshot=True), "WF-1b"),
    ("reverts-instead-of-committing", toy(revert_instead_of_commit=True), "CMT-DATA"),
    ("removes-the-users-snapshots", toy(remove_all_snapshots=True), "CMT-OWN-SNAPSHOT"),
    ("copies-before-exposing", toy(copy_before_expose=True), "WF-2"),
    ("mounts-at-the-wrong-junction", toy(wrong_junction=True), "FILE-JUNCTION"),
    ("reports-success-without-a-copy", toy(success_without_copy=True), "WF-2"),
    ("never-ends-the-job", toy(job_never_ends=True), "TRC-OP-PAIRED"),
    ("backs-up-live-files-not-the-snapshot", toy(backup_live_files=True), "CMT-BACKUP-CONTENT"),
    ("exports-only-the-first-disk", toy(export_first_disk_only=True), "IMG-ALL-DISKS"),
    ("exports-the-live-disk", toy(export_live_disk=True), "WF-1c"),
    ("post-backup-step-before-the-copy", toy(post_backup_before_copy=True), "WF-ORDER"),
    ("runs-a-nested-verify-job", toy(nested_verify_job=True), "WF-ONE-JOB"),
    ("never-unmounts", toy(never_unmounts=True), "CLN-NO-MOUNT-LEFT"),
    ("unmounts-an-unknown-path", toy(unmounts_unknown_path=True), "TRC-CONSUMED"),
    # a 2.5 host refuses consolidate=false (InvalidArgument, API 5.0) and records the refusal
    # (host.call.refused): CMT-CONSOLIDATE judges the call from the host's own fact
    ("relies-on-consolidate-disks-on-api-2.5", toy(relies_on_consolidate_disks=True), "CMT-CONSOLIDATE"),
    ("silent-crash-consistent-fallback", toy(silent_crash_consistent_fallback=True), "WF-1b"),
    ("incremental-copies-everything", toy(incremental_copies_everything=True), "BK-INCR-SINCE-LAST"),
    ("incremental-misses-the-newest-change", toy(incremental_skips_last_change=True), "BK-INCR-SINCE-LAST"),
]
GUEST_MUTANTS = [
    ("thaw-scripts-ascending", "SCR-ORDER-THAW"),
    ("passes-freezefail-lowercase", "SCR-ARG-EXACT"),
    ("freezefail-on-failed-script", "SCR-FREEZEFAIL-NOT-FAILED"),
    ("keeps-running-freeze-scripts", "SCR-FREEZE-STOP"),
    ("ignores-abort-timer", "TMO-GUEST-ABORT"),
    ("forgets-unquiesce-on-snapshot-failure", "QSC-UNQUIESCE"),
    ("legacy-post-thaw-first", "SCR-LEGACY-PLACEMENT"),
    ("no-freezefail-after-a-failed-script", "SCR-FREEZEFAIL-REVERSE"),
    ("freeze-scripts-case-insensitive", "SCR-ORDER-FREEZE"),
    ("freezefail-directory-ascending", "SCR-ORDER-FREEZEFAIL"),
    ("never-runs-legacy-post-thaw", "SCR-THAW-ALL"),
    ("quiesces-before-freeze-scripts", "WF-1a"),
    ("thaws-before-the-snapshot", "WF-1d"),
    ("runs-post-thaw-while-frozen", "WF-1e"),
    ("ignores-failed-freeze-script", "SCR-FREEZEFAIL-NO-SNAPSHOT"),
    ("ignores-engage-failure", "QSC-ENGAGE-FAIL"),
    ("thaw-after-snapshot-failure", "QSC-SNAPSHOT-FAIL-FREEZEFAIL"),
    ("reports-failure-as-done", "QSC-REPORT-FAILURE"),
    ("never-ends-failed-operation", "QSC-END"),
    ("scripts-overlap", "SCR-ONE-AT-A-TIME"),
    ("directory-scripts-on-3.5u1", "SCR-LAYOUT-LEGACY"),
    ("linux-scripts-from-a-directory", "SCR-LAYOUT-DIR"),
]
#: (mutant, the rule it breaks): run on esxi-7.0, the host profile with changed block tracking
IMAGE_LEVEL_RULES = [
    ("incremental-stores-one-changed-area-too-few", "IMG-LEVEL-CONTENT"),
    ("incremental-queries-with-the-wrong-change-id", "IMG-LEVEL-CONTENT"),
]


#: SHOULD / SHOULD NOT rules: (mutant, orchestrator factory, guest agent name or None, host
#: profile, the rule it breaks). A broken SHOULD is a warning, not a FAIL (docs/rules.md,
#: "Warnings"): quick passes the run and reports the rule.
SHOULD_MUTANTS = [
    ("names-its-own-snapshot-on-3.5", toy(snapshot_name="acme-backup"), None, "esx-3.5u2", "WF-SNAPSHOT-NAME"),
    ("never-resolves-an-unknown-commit", toy(unknown_commit_unresolved=True), None, "esx-3.5u2",
     "TMO-RESOLVE-UNKNOWN"),
    ("engages-near-the-abort-timer", ReferenceOrchestrator, "engages-near-the-abort-timer", "esxi-7.0",
     "TMO-NEAR-LIMIT"),
]


@pytest.mark.parametrize(("name", "factory", "agent", "host_profile", "rule"), SHOULD_MUTANTS,
                         ids=[m[0] for m in SHOULD_MUTANTS])
def test_quick_reports_a_should_mutant_naming_its_rule(name: str, factory, agent: str | None, host_profile: str,
                                                       rule: str, tmp_path) -> None:
    import json

    from vcbsim.conformance import verify_bundle

    out = io.StringIO()
    result = run(factory, profile="quick", seed=0, host_profile=host_profile, out=out, report=tmp_path,
                 guest_agent_factory=GUEST_AGENTS[agent] if agent else None)
    assert verify_bundle(tmp_path) == []  # the warnings fit the published schema
    doc = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert any(w["rule"] == rule for c in doc["cases"] for w in c["warnings"])
    assert f"WARN {rule}:" in (tmp_path / "summary.txt").read_text(encoding="utf-8")
    assert 'name="warnings" value="' in (tmp_path / "junit.xml").read_text(encoding="utf-8")
    assert result.ok, out.getvalue()[-3000:]  # a warning does not fail the run
    assert rule in result.warnings, (result.warnings, out.getvalue()[-3000:])
    printed = out.getvalue()
    assert f"[{rule}]" in printed and "WARN " in printed
    assert f"do not fail certification): {rule}" in printed or f", {rule}" in printed
    warned = [w for c in result.cases for w in c.warnings if w["rule"] == rule]
    assert warned and warned[0]["severity"] == "warn" and warned[0]["witness"]


def test_the_reference_proxy_has_no_should_warnings() -> None:
    """The SHOULD mutants' warnings come from their defects: the reference gives none."""
    for host_profile in ("esx-3.5u2", "esxi-7.0"):
        result = run(ReferenceOrchestrator, profile="quick", seed=0, host_profile=host_profile, out=io.StringIO())
        assert result.ok and result.warnings == (), result.warnings


def _rejects(rule: str, **kwargs) -> ConformanceViolation:
    out = io.StringIO()
    with pytest.raises(ConformanceViolation) as info:
        run(profile="quick", seed=0, out=out, **kwargs)
    exc = info.value
    assert rule in exc.rule_ids, f"{exc.rule_ids}: {exc}"
    printed = out.getvalue()
    assert "seed 0" in printed
    assert "def test_regression_" in printed and "s.finish()" in printed
    return exc


#: orchestrator mutants judged on another host profile than esx-3.5u2: RemoveSnapshot_Task's
#: consolidate=false is API 5.0 (a 3.5 host refuses it, and the snapshot stays)
PROXY_MUTANT_PROFILES = {"leaves-the-redo-log-uncommitted": "esxi-7.0"}


@pytest.mark.parametrize(("name", "factory", "rule"), PROXY_MUTANTS, ids=[m[0] for m in PROXY_MUTANTS])
def test_quick_rejects_orchestrator_mutant(name: str, factory, rule: str) -> None:
    _rejects(rule, adapter_factory=factory, host_profile=PROXY_MUTANT_PROFILES.get(name, "esx-3.5u2"))


#: guest agent mutants judged on another host profile than esx-3.5u2 (the rule's era)
GUEST_MUTANT_PROFILES = {
    "ignores-abort-timer": "esxi-7.0",  # the guest timer came with the Tools of 2010
    "directory-scripts-on-3.5u1": "esx-3.5u1",
    # the Tools of 2010 and later run the legacy pair and the directory in one list; on 3.5 U2
    # hostd ran the legacy pair on the SYNC path only (open-vm-tools 1da06b950)
    "legacy-post-thaw-first": "esxi-7.0",
    "linux-scripts-from-a-directory": "esxi-7.0",
    # a 3.5-era operation the host stopped waiting for may still be running (no guest timer)
    "never-ends-failed-operation": "esxi-7.0",
}


@pytest.mark.parametrize(("name", "rule"), GUEST_MUTANTS, ids=[m[0] for m in GUEST_MUTANTS])
def test_quick_rejects_guest_agent_mutant(name: str, rule: str) -> None:
    _rejects(rule, adapter_factory=ReferenceOrchestrator, guest_agent_factory=GUEST_AGENTS[name],
             host_profile=GUEST_MUTANT_PROFILES.get(name, "esx-3.5u2"))


@pytest.mark.parametrize(("name", "rule"), IMAGE_LEVEL_RULES, ids=[m[0] for m in IMAGE_LEVEL_RULES])
def test_quick_rejects_image_level_mutant(name: str, rule: str) -> None:
    exc = _rejects(rule, adapter_factory=image_level_mutant(name), host_profile="esxi-7.0")
    assert exc.rule_id == rule and "restored through its chain" in str(exc)


@pytest.mark.parametrize("name", sorted(TRANSPORT_MUTANTS))
def test_quick_rejects_transport_mutant(name: str) -> None:
    _proxy, _transport, host_profile, rule = TRANSPORT_MUTANTS[name]
    exc = _rejects(rule, adapter_factory=transport_mutant(name), host_profile=host_profile)
    assert "while" in str(exc) and ("lease" in str(exc) or "hot-added" in str(exc))


@pytest.mark.parametrize("transport", ["nfc", "hotadd"])
def test_quick_passes_the_reference_on_each_transport(transport: str) -> None:
    import functools

    result = run(functools.partial(ReferenceOrchestrator, transport=transport), profile="quick", seed=0,
                 host_profile="esxi-7.0", out=io.StringIO())
    assert result.ok

@pytest.mark.parametrize("name", sorted(CONFIG_MUTANTS))
def test_quick_rejects_a_proxy_whose_image_backup_restores_another_configuration(name: str) -> None:
    """The kit restores the image through the product's restore and compares the .vmx with
    the host's as of the snapshot (IMG-CONFIG)."""
    exc = _rejects("IMG-CONFIG", adapter_factory=image_level_mutant(name))
    assert exc.rule_id == "IMG-CONFIG" and "as the product restores it" in str(exc)


def test_quick_rejects_a_restore_that_gives_back_another_backup() -> None:
    """The jobs report the right files; the restore gives the previous backup's: judged from
    what the kit reads in the restore, the backup lacks what the guest had at the snapshot."""
    exc = _rejects("CMT-BACKUP-CONTENT", adapter_factory=RestoresThePreviousFileBackup)
    assert "file-level backup" in str(exc)


def test_quick_rejects_a_proxy_that_announces_its_unmount_but_leaves_the_folder() -> None:
    """The kit looks at the proxy's mount root: the unmount events are there, the folder too."""
    exc = _rejects("WF-3a", adapter_factory=AnnouncesTheUnmountButLeavesTheFolder)
    assert "still on the proxy" in str(exc)


def test_every_image_level_mutant_is_listed() -> None:
    assert {m[0] for m in IMAGE_LEVEL_RULES} == set(IMAGE_LEVEL_MUTANTS)


def test_there_are_at_least_25_mutants() -> None:
    assert len(PROXY_MUTANTS) + len(GUEST_MUTANTS) >= 25


EXPECTED_REPRO = """\
def test_regression_scenario_image_backup():
    from vcbsim.conformance import Scenario
    from toy_proxy import ToyProxy_unmount_after_commit
    s = Scenario(ToyProxy_unmount_after_commit, host_profile='esx-3.5u2')
    s.backup(vm='rhel5-web', mode='fullvm', level='full', during=(('/var/www/during.html', 'x'),))
    s.finish()
"""


def test_printed_step_list_is_minimal_exact_and_replays_the_failure() -> None:
    out = io.StringIO()
    with pytest.raises(ConformanceViolation):
        run(toy(unmount_after_commit=True), profile="quick", seed=0, out=out)
    src = out.getvalue().split("Reproduce with:\n\n", 1)[1].split("\n\n", 1)[0] + "\n"
    assert src == EXPECTED_REPRO
    namespace: dict = {}
    exec(compile(src, "<printed>", "exec"), namespace)  # noqa: S102 - the kit's own output
    with pytest.raises(ConformanceViolation) as info:
        namespace["test_regression_scenario_image_backup"]()
    assert info.value.rule_id == "WF-3a"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_certify_passes_the_reference_proxy_for_several_seeds(seed: int) -> None:
    """A full certify run (every scenario, the exploration, the evidence), in CI, for seeds
    0, 1 and 2 on one host profile: seed 0 once rejected the reference itself (a full backup
    whose unmount failed was reported failed but kept as an incremental's base). The other
    profiles and route 2 are the slow matrix below."""
    out = io.StringIO()
    result = run(ReferenceOrchestrator, profile="certify", seed=seed, host_profile="esx-3.5u2", out=out)
    assert result.ok, out.getvalue()[-3000:]
    assert result.evidence is not None and result.evidence.unexercised == (), result.evidence.unexercised
    assert result.warnings == ()


@pytest.mark.slow
@pytest.mark.parametrize("host_profile", ["esx-3.5u1", "esx-3.5u2", "esxi-7.0"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_certify_passes_the_reference_proxy_for_any_seed(seed: int, host_profile: str) -> None:
    out = io.StringIO()
    assert run(ReferenceOrchestrator, profile="certify", seed=seed, host_profile=host_profile, out=out).ok, out.getvalue()[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("host_profile", ["esx-3.5u1", "esx-3.5u2", "esxi-7.0"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_certify_passes_the_plain_reference_cli_over_the_wire(seed: int, host_profile: str, tmp_path) -> None:
    """Route 2: the reference's own command line (``vcbsim backup --json``), every scenario,
    certified into a bundle ``verify-bundle --certified`` accepts."""
    import sys

    from vcbsim.conformance import CommandAdapter, certify_command, verify_bundle

    argv = [sys.executable, "-m", "vcbsim", "backup", "--server", "{url}", "--user", "{user}", "--password",
            "{password}", "-a", "name:{vm}", "-t", "{mode}", "--kind", "{level}", "--state", "{workdir}", "--trace",
            "{trace}", "--no-progress", "--json"]
    out = io.StringIO()
    result = certify_command(CommandAdapter(argv, name="reference", version="0.1.0"), host_profile=host_profile,
                             seed=seed, kit_profile="certify", report=tmp_path, out=out)
    assert result.ok, out.getvalue()[-3000:]
    assert verify_bundle(tmp_path, certified=True) == [], out.getvalue()[-3000:]


@pytest.mark.slow
def test_certify_passes_the_reference_proxy(tmp_path) -> None:
    result = run(ReferenceOrchestrator, profile="certify", seed=20260101, host_profile="esx-3.5u2",
                 report=tmp_path / "bundle", out=io.StringIO())
    assert result.ok
    from vcbsim.conformance import verify_bundle

    assert verify_bundle(tmp_path / "bundle", certified=True) == []


@pytest.mark.parametrize("host_profile", ["esx-3.5u1", "esxi-7.0"])
def test_quick_passes_the_reference_proxy_on_the_other_host_profiles(host_profile: str) -> None:
    assert run(ReferenceOrchestrator, profile="quick", seed=11, host_profile=host_profile, out=io.StringIO()).ok


@pytest.mark.slow
def test_certify_passes_the_reference_proxy_with_changed_block_tracking() -> None:
    """On esxi-7.0 the scenarios and the exploration ask the reference for incremental and
    differential image backups, and it passes."""
    result = run(ReferenceOrchestrator, profile="certify", seed=20260101, host_profile="esxi-7.0",
                 out=io.StringIO())
    assert result.ok


@pytest.mark.slow
@pytest.mark.parametrize(("transport", "host_profile"),
                         [("nfc", "esxi-7.0"), ("hotadd", "esxi-7.0"), ("hotadd", "esx-3.5u2")])
def test_certify_passes_the_reference_proxy_on_each_transport(transport: str, host_profile: str) -> None:
    """Declared as reading through an export lease or hot-added disks, the reference proxy is
    certified: the TR-* rule of its transport is exercised and holds (folder: the tests above)."""
    import functools

    out = io.StringIO()
    result = run(functools.partial(ReferenceOrchestrator, transport=transport), profile="certify", seed=0,
                 host_profile=host_profile, out=out)
    assert result.ok, out.getvalue()[-3000:]


def test_quick_passes_the_toy_proxy() -> None:
    """A second, independent implementation passes: the kit judges behaviour, not code."""
    assert run(ToyProxy, profile="quick", seed=7, out=io.StringIO()).ok
