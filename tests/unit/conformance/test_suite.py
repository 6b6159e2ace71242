"""The suite: run() profiles and their refusals, replay, flaky detection, ERROR vs FAIL,
bundles, the teach profile's output, and a recorded reference trace through check-trace."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from vcbsim.conformance import (
    KIT_PROFILES,
    SCENARIOS,
    AdapterError,
    BackupPolicy,
    ConformanceViolation,
    FlakyAdapterError,
    FunctionOrchestrator,
    InvalidDefinition,
    JobResult,
    ReferenceOrchestrator,
    Scenario,
    Step,
    run,
    verify_bundle,
)
from vcbsim.conformance._cli import main_check_trace


def _never_removes(host, vm_name: str, policy: BackupPolicy) -> JobResult:
    """A plain-function orchestrator that takes the snapshot and walks away."""
    vm = host.find_vm(f"name:{vm_name}")
    try:
        host.create_snapshot(vm.moref, "_VCB-BACKUP_", quiesce=True)
    except Exception as exc:  # host faults are reported, not raised
        return JobResult(ok=False, error=str(exc))
    return JobResult(ok=False, error="gave up")


def test_certify_refuses_filters_and_expectations() -> None:
    with pytest.raises(InvalidDefinition, match="certify refuses skips and filters"):
        run(ReferenceOrchestrator, profile="certify", scenarios=["image-backup"])
    with pytest.raises(InvalidDefinition, match="certify refuses"):
        run(ReferenceOrchestrator, profile="certify", explore=False)
    with pytest.raises(InvalidDefinition, match="expectation files are for the 'dev' profile"):
        run(ReferenceOrchestrator, profile="certify", expectations={"scenario/image-backup": "fail"})
    with pytest.raises(InvalidDefinition, match="kit profile"):
        run(ReferenceOrchestrator, profile="fast")
    assert set(KIT_PROFILES) == {"quick", "dev", "certify", "teach"}


def test_function_orchestrator_fails_with_rule_and_pasteable_steps() -> None:
    out = io.StringIO()
    with pytest.raises(ConformanceViolation) as info:
        run(lambda: FunctionOrchestrator(_never_removes, name="walks-away"), profile="quick",
            scenarios=["image-backup"], explore=False, seed=5, out=out)
    assert info.value.rule_id == "CLN-NO-SNAPSHOT-LEFT"
    assert info.value.case == "scenario/image-backup"
    text = out.getvalue()
    assert "seed 5" in text and "hypothesis" in text
    repro = text.split("Reproduce with:")[1]
    assert repro.count("s.backup(") == 1 and "s.write(" not in repro  # minimised to the one job that fails


def test_adapter_that_raises_is_an_error_not_a_fail(tmp_path: Path) -> None:
    def boom(host, vm_name, policy):
        raise RuntimeError("lost connection")

    with pytest.raises(AdapterError, match="lost connection"):
        run(lambda: FunctionOrchestrator(boom), profile="quick", scenarios=["image-backup"], explore=False,
            seed=1, out=io.StringIO(), report=tmp_path / "b")
    doc = json.loads((tmp_path / "b" / "results.json").read_text())
    assert doc["totals"]["error"] == 1 and doc["totals"]["fail"] == 0
    assert verify_bundle(tmp_path / "b") == []


def test_flaky_adapter_is_named() -> None:
    calls = {"n": 0}

    def sometimes(host, vm_name, policy):
        calls["n"] += 1
        if calls["n"] == 1:
            return "not a JobResult"  # misbehaves once only
        return ReferenceOrchestrator().backup(host, vm_name, policy)

    with pytest.raises(AdapterError) as info:
        run(lambda: FunctionOrchestrator(sometimes), profile="quick", scenarios=["file-level-linux-refused"],
            explore=False, seed=1, out=io.StringIO())
    assert "not deterministic" in str(info.value)
    assert FlakyAdapterError.__mro__[1] is AdapterError


def test_saved_failures_replay_first_and_only_they_rerun(tmp_path: Path) -> None:
    replay = tmp_path / "replay"
    factory = lambda: FunctionOrchestrator(_never_removes)  # noqa: E731
    with pytest.raises(ConformanceViolation):
        run(factory, profile="quick", scenarios=["engage-fails"], explore=False, seed=1, replay_dir=replay,
            out=io.StringIO())
    saved = sorted(p.name for p in replay.glob("*.json"))
    assert saved == ["scenario-engage-fails.json"]
    doc = json.loads((replay / saved[0]).read_text())
    # minimised: the armed fault does not matter, the one job does
    assert doc["rules"][0] == "CLN-NO-SNAPSHOT-LEFT" and [st["op"] for st in doc["steps"]] == ["backup"]
    # rerun only the failures: no scenarios, no exploration, just the saved case
    result = run(ReferenceOrchestrator, profile="dev", scenarios=[], explore=False, seed=1,
                 replay_dir=replay, out=io.StringIO())
    assert [c.name for c in result.cases] == ["replay/scenario-engage-fails"] and result.ok
    # in a full run the saved case replays first
    result = run(ReferenceOrchestrator, profile="dev", scenarios=["thaw-fails"], explore=False, seed=1,
                 replay_dir=replay, out=io.StringIO())
    assert [c.name for c in result.cases] == ["replay/scenario-engage-fails", "scenario/thaw-fails"]


def test_dev_expectations_turn_a_known_failure_into_a_skip() -> None:
    result = run(lambda: FunctionOrchestrator(_never_removes), profile="dev", scenarios=["thaw-fails"],
                 explore=False, seed=1, expectations={"scenario/thaw-fails": "fail"}, out=io.StringIO())
    assert [c.outcome for c in result.cases] == ["skip"]


def test_quick_run_of_the_reference_writes_a_verifiable_bundle(tmp_path: Path) -> None:
    out = io.StringIO()
    result = run(ReferenceOrchestrator, profile="quick", seed=3, report=tmp_path / "bundle", out=out)
    assert result.ok and len(result.cases) == len(SCENARIOS) + 1
    assert result.statistics["jobs"] > 0
    assert verify_bundle(tmp_path / "bundle") == []
    summary = (tmp_path / "bundle" / "summary.txt").read_text()
    assert "verdict: CONFORMANT" in summary and "seed: 3" in summary


def test_teach_profile_prints_every_step() -> None:
    out = io.StringIO()
    run(ReferenceOrchestrator, profile="teach", scenarios=["freeze-script-fails"], explore=False, seed=1, out=out)
    assert "s.add_script(name='15-check.bat', exit_code=3" in out.getvalue()


def test_steps_round_trip_and_validate() -> None:
    st = Step.of("backup", vm="win2003-sql", mode="file", level="full", during=(("D:\\a.txt", "x"),))
    assert Step.from_dict(json.loads(json.dumps(st.to_dict()))) == st
    with pytest.raises(InvalidDefinition, match="step op"):
        Step.of("format_disk")
    with pytest.raises(InvalidDefinition, match="BackupPolicy.level"):
        BackupPolicy("fullvm", "weekly")
    with pytest.raises(InvalidDefinition, match="BackupPolicy.mode"):
        BackupPolicy("vmdk", "full")  # type: ignore[arg-type]
    assert BackupPolicy("fullvm", "incremental").level == "incremental"  # image levels (CBT)


def test_scenario_data_checks_catch_a_backup_of_live_files() -> None:
    def live_files(host, vm_name, policy):
        r = ReferenceOrchestrator()
        result = r.backup(host, vm_name, policy)
        files = dict(result.files or {})
        files["D:\\Data\\invented.txt"] = "0" * 64
        return JobResult(ok=result.ok, files=files)

    s = Scenario(lambda: FunctionOrchestrator(live_files))
    with pytest.raises(ConformanceViolation) as info:
        s.backup("win2003-sql", "file", "full")
    assert info.value.rule_id == "CMT-BACKUP-CONTENT"
    assert "did not exist at the snapshot" in info.value.explanation


def test_a_recorded_reference_trace_passes_check_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = Scenario(ReferenceOrchestrator, host_profile="esxi-7.0")
    s.add_script("15-check.bat", exit_code=3, phase="freeze")
    s.backup("win2003-sql", "file", "full")
    s.remove_script("15-check.bat")
    s.backup("win2003-sql", "file", "full", during=(("D:\\Data\\x.txt", "y"),))
    s.backup("rhel5-web", "fullvm")
    s.finish()
    f = tmp_path / "trace.jsonl"
    s.host.trace.write_jsonl(f)
    s.close()
    assert main_check_trace([str(f)]) == 0
    assert "profile esxi-7.0" in capsys.readouterr().out


def test_image_content_is_compared_with_the_disks_at_the_snapshot() -> None:
    s = Scenario(ReferenceOrchestrator)
    result = s.backup("win2003-sql", "fullvm", during=(("D:\\Data\\during.txt", "after the snapshot"),))
    assert result is not None and result.ok and result.disks and len(result.disks) == 2
    assert s._snap_digests and list(s._snap_digests.values())[-1] == dict(result.disks)
    s.close()

    def wrong_disk(host, vm_name, policy):
        r = ReferenceOrchestrator().backup(host, vm_name, policy)
        return JobResult(ok=r.ok, disks={k: "0" * 64 for k in (r.disks or {})})

    s = Scenario(lambda: FunctionOrchestrator(wrong_disk))
    with pytest.raises(ConformanceViolation) as info:
        s.backup("rhel5-web", "fullvm")
    assert info.value.rule_id == "CMT-BACKUP-CONTENT" and "as of its snapshot" in info.value.explanation


def _recording(levels: tuple[str, ...]):
    asked: list[BackupPolicy] = []

    def handler(host, vm_name, policy):
        asked.append(policy)
        return ReferenceOrchestrator().backup(host, vm_name, policy)

    return asked, (lambda: FunctionOrchestrator(handler, image_levels=levels))


def test_image_levels_are_asked_only_of_an_orchestrator_that_declares_them() -> None:
    from vcbsim.conformance._adapters import image_levels

    assert image_levels(object()) == ("full",)
    assert image_levels(ReferenceOrchestrator) == ("full", "incremental", "differential")
    with pytest.raises(InvalidDefinition, match="image_levels"):
        image_levels(FunctionOrchestrator(_never_removes, image_levels=("incremental",)))
    asked, factory = _recording(("full",))
    s = Scenario(factory, host_profile="esxi-7.0")
    s.backup("rhel5-web", "fullvm", "incremental")
    s.close()
    assert [(p.mode, p.level) for p in asked] == [("fullvm", "full")]
    assert s.steps[-1].code().count("level='incremental'") == 1  # the step keeps what was asked
    asked, factory = _recording(("full", "incremental"))
    s = Scenario(factory, host_profile="esxi-7.0")
    s.backup("rhel5-web", "fullvm", "incremental")
    s.backup("rhel5-web", "fullvm", "differential")
    s.close()
    assert [p.level for p in asked] == ["incremental", "full"]


def test_exploration_draws_image_levels_only_with_changed_block_tracking() -> None:
    from vcbsim.conformance._suite import explored_image_levels

    ref = ReferenceOrchestrator()
    try:
        assert explored_image_levels(ref, "esxi-7.0") == ("full", "incremental", "differential")
        assert explored_image_levels(ref, "esx-3.5u2") == ("full",)
    finally:
        ref.close()
    assert explored_image_levels(FunctionOrchestrator(_never_removes), "esxi-7.0") == ("full",)


def test_an_incremental_image_is_judged_through_its_restored_chain() -> None:
    """The reference restores the incremental from its chain; a product whose restored
    incremental misses a changed area fails IMG-LEVEL-CONTENT."""
    s = Scenario(ReferenceOrchestrator, host_profile="esxi-7.0")
    for level in ("full", "incremental"):  # the first incremental enables CBT: a baseline full
        s.backup("win2003-sql", "fullvm", level)
    s.write("win2003-sql", "D:\\Data\\new.txt", "changed")
    r = s.backup("win2003-sql", "fullvm", "incremental")
    assert r is not None and r.ok and r.disks
    catalog = s.adapter._catalog  # type: ignore[attr-defined]
    assert catalog.backup(int(r.backup_id)).level == "incremental"
    s.close()

    stale: dict[int, str] = {}

    def stale_incremental(host, vm_name, policy):
        r = ReferenceOrchestrator().backup(host, vm_name, policy)
        if policy.level == "full":
            stale.update(r.disks or {})
            return r
        return JobResult(ok=r.ok, disks=dict(stale))  # the base's image: the changes are missing

    s = Scenario(lambda: FunctionOrchestrator(stale_incremental, image_levels=("full", "incremental")),
                 host_profile="esxi-7.0")
    s.backup("win2003-sql", "fullvm", "full")
    s.write("win2003-sql", "D:\\Data\\new.txt", "changed")
    with pytest.raises(ConformanceViolation) as info:
        s.backup("win2003-sql", "fullvm", "incremental")
    s.close()
    assert info.value.rule_id == "IMG-LEVEL-CONTENT" and "CMT-BACKUP-CONTENT" in info.value.rule_ids
