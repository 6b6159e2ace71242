"""Conformance runs spread over worker processes still produce one results bundle."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from defusedxml import ElementTree as DET

from vcbsim.conformance import (
    SCENARIOS,
    InvalidDefinition,
    ReferenceOrchestrator,
    verify_bundle,
)
from vcbsim.conformance._cli import main_conformance
from vcbsim.conformance._parallel import (
    EXPLORE_SHARDS,
    derive_seed,
    plan_cases,
    resolve_workers,
    run_parallel,
)
from vcbsim.conformance._suite import KIT_PROFILES

MUTANTS = Path(__file__).resolve().parents[2] / "mutants"


def _doc(bundle: Path) -> dict:
    return json.loads((bundle / "results.json").read_text(encoding="utf-8"))


def test_the_plan_is_every_scenario_and_the_shards_whatever_the_worker_count() -> None:
    cases = plan_cases(profile="certify", seed=11)
    names = [c.name for c in cases]
    assert len(set(names)) == len(names)
    assert [c.scenario for c in cases if c.kind == "scenario"] == list(SCENARIOS)
    shards = [c for c in cases if c.kind == "explore"]
    assert len(shards) == EXPLORE_SHARDS
    assert sum(c.examples for c in shards) == KIT_PROFILES["certify"].max_examples
    assert len({c.seed for c in shards}) == len(shards)
    assert [c.seed for c in shards] == [derive_seed(11, k) for k in range(len(shards))]
    assert plan_cases(profile="certify", seed=11) == cases
    assert [c.seed for c in plan_cases(profile="certify", seed=12) if c.kind == "explore"] != [c.seed for c in shards]
    teach = [c for c in plan_cases(profile="teach", seed=1) if c.kind == "explore"]
    assert sum(c.examples for c in teach) == KIT_PROFILES["teach"].max_examples and all(c.examples for c in teach)


def test_certify_refuses_filters_with_workers_too() -> None:
    with pytest.raises(InvalidDefinition, match="certify refuses"):
        run_parallel(ReferenceOrchestrator, profile="certify", seed=1, scenarios=["image-backup"], workers=2,
                     out=io.StringIO())
    with pytest.raises(InvalidDefinition, match="certify refuses"):
        run_parallel(ReferenceOrchestrator, profile="certify", seed=1, explore=False, workers=2, out=io.StringIO())
    with pytest.raises(InvalidDefinition, match="positive count"):
        resolve_workers("0")
    assert resolve_workers("auto") >= 1
    assert resolve_workers("3") == 3


def test_two_workers_give_one_valid_bundle_with_the_cases_of_a_one_worker_run(tmp_path: Path) -> None:
    one = run_parallel(ReferenceOrchestrator, profile="quick", seed=5, report=tmp_path / "w1", workers=1,
                       out=io.StringIO())
    two = run_parallel(ReferenceOrchestrator, profile="quick", seed=5, report=tmp_path / "w2", workers=2,
                       out=io.StringIO())
    assert one.ok and two.ok
    planned = [c.name for c in plan_cases(profile="quick", seed=5)]
    assert [c.name for c in two.cases] == planned == [c.name for c in one.cases]
    assert one.statistics == two.statistics  # the same examples ran, on one process or two
    for d, workers in ((tmp_path / "w1", 1), (tmp_path / "w2", 2)):
        assert verify_bundle(d) == []
        doc = _doc(d)
        assert [c["name"] for c in doc["cases"]] == planned
        assert doc["totals"]["total"] == len(planned) == doc["totals"]["pass"]
        ri = doc["run_info"]
        assert ri["seed"] == 5 and ri["config"]["workers"] == workers
        assert ri["adapter_name"] and ri["kit_profile"] == "quick"
        suite = DET.parse(str(d / "junit.xml")).getroot()
        assert len(list(suite.iter("testcase"))) == len(planned)
        assert ri["run_uuid"] in (d / "summary.txt").read_text(encoding="utf-8")
    assert _doc(tmp_path / "w1")["run_info"]["run_uuid"] != _doc(tmp_path / "w2")["run_info"]["run_uuid"]


def test_certify_with_two_workers_passes_the_reference_proxy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # how long this takes is a figure for benchmarks/bench_certify.py, not an assertion here
    assert main_conformance(["--profile", "certify", "--seed", "7", "--workers", "2", "--report", str(tmp_path)]) == 0
    assert verify_bundle(tmp_path, certified=True) == []
    doc = _doc(tmp_path)
    assert [c["name"] for c in doc["cases"]] == [c.name for c in plan_cases(profile="certify", seed=7)]
    assert doc["run_info"]["config"]["workers"] == 2 and doc["run_info"]["config"]["filters"] is None
    assert doc["statistics"]["examples"] >= KIT_PROFILES["certify"].max_examples
    assert "CONFORMANT" in capsys.readouterr().out


def test_a_mutant_on_two_workers_gives_one_bundle_naming_the_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.syspath_prepend(str(MUTANTS))
    from toy_proxy import toy

    mutant = toy(commit_before_copy_ends=True)
    saved = tmp_path / "replay"
    result = run_parallel(mutant, profile="quick", seed=0, report=tmp_path / "b", replay_dir=saved, workers=2,
                          out=io.StringIO())
    assert not result.ok
    bundle = tmp_path / "b"
    assert verify_bundle(bundle) == []
    assert "a certified bundle has no failures" in " ".join(verify_bundle(bundle, certified=True))
    doc = _doc(bundle)
    failed = [c for c in doc["cases"] if c["outcome"] == "fail"]
    assert failed and all("WF-3b" in c["rules"] for c in failed)
    for c in failed:
        assert (bundle / c["timeline"]).is_file()
    assert "WF-3b" in (bundle / "summary.txt").read_text(encoding="utf-8")
    assert "WF-3b" in (bundle / "junit.xml").read_text(encoding="utf-8")
    # new failures are saved, and replay first (as cases of their own) in the next run
    assert sorted(saved.glob("*.json"))
    again = run_parallel(mutant, profile="quick", seed=0, replay_dir=saved, workers=2, out=io.StringIO())
    replayed = [c for c in again.cases if c.name.startswith("replay/")]
    assert replayed and all(c.outcome == "fail" and "WF-3b" in c.rules for c in replayed)
    # the command line says FAIL with the rule and exits 1
    module = f"{mutant.__module__}:{mutant.__name__}"
    assert main_conformance([module, "--profile", "quick", "--seed", "0", "-n", "2", "--report",
                             str(tmp_path / "cli")]) == 1
    assert "WF-3b" in capsys.readouterr().err
    assert verify_bundle(tmp_path / "cli") == []


class _DiesInWorkers:
    """An adapter factory whose process exits unless it is the controller's."""

    def __init__(self) -> None:
        if os.getpid() != _CONTROLLER[0]:
            os._exit(7)
        self.inner = ReferenceOrchestrator()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


_CONTROLLER = [0]


def test_a_worker_that_dies_is_an_error_case_of_the_same_bundle(tmp_path: Path) -> None:
    _CONTROLLER[0] = os.getpid()
    result = run_parallel(_DiesInWorkers, profile="dev", seed=1, report=tmp_path, scenarios=["image-backup", "copy-fails"],
                          explore=False, workers=2, out=io.StringIO())
    assert [c.name for c in result.cases] == ["scenario/image-backup", "scenario/copy-fails"]
    assert all(c.outcome == "error" and "worker" in c.message for c in result.cases)
    assert verify_bundle(tmp_path) == []


def test_after_a_failing_shard_later_shards_do_not_shrink_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_cases' policy alone (judge stubbed): once an exploration shard failed with its
    shrunk witness, the later shards run without Hypothesis' shrink phase."""
    from vcbsim.conformance import CaseResult, _suite
    from vcbsim.conformance._parallel import KitCase, run_cases
    from vcbsim.conformance._report import new_run_info

    seen: list[bool] = []

    def judge(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs["shrink"])
        info = new_run_info(kit_profile="dev", host_profile="esx-3.5u2", seed=1, adapter_name="stub")
        return info, [CaseResult("explore", "fail", message="left", rules=("CLN-NO-SNAPSHOT-LEFT",))], {}

    monkeypatch.setattr(_suite, "judge", judge)
    cases = [KitCase(f"explore/{k}", "explore", 100 + k, shard=k, examples=2) for k in range(3)]
    runs = run_cases(ReferenceOrchestrator, cases, profile="dev")
    assert [r.results[0].outcome for r in runs] == ["fail"] * 3
    assert seen == [True, False, False]
