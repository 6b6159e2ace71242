"""``vcbsim repl --inventory era`` and ``vcbsim demo --inventory era`` (issue 17): the era
inventory's VMs are shown, and the era demo's checks hold on every profile."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from vcbsim import _demo, _repl
from vcbsim._demo_era import run_era_demo
from vcbsim._repl import Interpreter
from vcbsim._teach_core import TeachSession

PROFILES = ("esx-3.5u1", "esx-3.5u2", "esxi-7.0")
ERA_VMS = ["winxp-legacy", "w2019-app", "sql-indep", "web-2ds", "notools", "db-rdm"]


def test_repl_opens_the_era_inventory(capsys: pytest.CaptureFixture[str]) -> None:
    assert _repl.main(["--inventory", "era", "--profile", "esxi-7.0", "-c", "vms", "-c", "inventory"]) == 0
    out = capsys.readouterr().out
    for name in ERA_VMS:
        assert name in out
    # the cases are visible: the XP guest, no Tools, the disk modes, RDMs and the second datastore
    for word in ("winXPPro", "not-installed", "indep-persistent", "indep-nonpersistent", "RDM physical",
                 "RDM virtual", "datastore2", "pre-freeze-script.bat"):
        assert word in out, word


def test_repl_default_inventory_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    assert _repl.main(["-c", "vms"]) == 0
    out = capsys.readouterr().out
    assert "win2003-sql" in out and "db-rdm" not in out


def test_repl_reset_switches_the_inventory(tmp_path: Path) -> None:
    interp = Interpreter(TeachSession(tmp_path / "work"), width=160)
    try:
        assert "db-rdm" in interp.execute("reset era") and not interp.failed
        assert [vm.name for vm in interp.session.host.vms.values()] == ERA_VMS
        assert "win2003-sql" in interp.execute("reset demo")
        out = interp.execute("reset tomorrow")
        assert interp.failed and "expected no argument or one of demo, era" in out
        assert "win2003-sql" in interp.execute("vms")  # a refused reset changed nothing
    finally:
        interp.close()


@pytest.mark.parametrize("profile", PROFILES)
def test_era_demo_checks_pass_on_every_profile(tmp_path: Path, profile: str) -> None:
    with open(tmp_path / "log.txt", "w") as log:
        report = run_era_demo(tmp_path / "out", Console(file=log, width=120), profile=profile)
    assert report.ok, [c for c in report.checks if not c.ok]
    names = [c.name for c in report.checks]
    assert f"VSS gives {'application' if profile == 'esxi-7.0' else 'filesystem'} consistency on {profile}" in names
    assert "power off deletes the nonpersistent disk's redo log and its writes" in names
    assert len(names) == 9


def test_era_demo_cli_json(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import sys

    monkeypatch.setattr(sys, "argv", ["vcbsim"])
    assert _demo.main(["--inventory", "era", "--profile", "esxi-7.0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and {s["backup"] for s in report["steps"]} == set(ERA_VMS)
