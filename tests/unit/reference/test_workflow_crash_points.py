"""Every crash point of the workflow is reached by a backup, and what a crash leaves is cleaned
by the next run; a catalog record a killed process left ``running`` is marked failed."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vcbsim.reference import BackupProxy, Catalog, InProcessHostClient, main
from vcbsim.reference._cli import CRASH_ENV
from vcbsim.reference._workflow import CRASH_POINTS
from vcbsim.simulator import FaultRule, SimulatedCrash
from vcbsim.simulator._host import Host


@pytest.mark.parametrize("type_", ["fullvm", "file"])
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_each_crash_point_is_reached_and_the_next_run_cleans_up(tmp_path: Path, point: str, type_: str) -> None:
    host = Host.demo()
    vm = host.find_vm("win2003-sql")
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        host.add_fault(FaultRule("crash", target=point))
        with pytest.raises(SimulatedCrash) as info:
            proxy.backup("name:win2003-sql", type_, catalog=cat)
        assert str(info.value) == f"simulated crash at {point}"
        assert proxy.session("win2003-sql") is not None  # a crash cleans nothing
        res = proxy.backup("name:win2003-sql", type_, catalog=cat)
        assert res.ok, res.summary()
        assert res.stale_cleaned
        assert vm.snapshots() == [] and proxy.sessions() == [] and not vm.consolidation_needed
        assert [p.name for p in (tmp_path / "proxy").iterdir()] == [".vcb-sessions"]
        assert cat.backups("win2003-sql", status="running") == []


def _cli(state: Path, *argv: str) -> Any:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--state", str(state), "--json"])
    assert code == 0, out.getvalue()
    return json.loads(out.getvalue())


def _kill(state: Path, vm: str, point: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vcbsim", "backup", "-a", f"name:{vm}", "--state", str(state), "--json"],
        env={**os.environ, CRASH_ENV: point}, capture_output=True, timeout=120, check=False,
    )
    assert proc.returncode == -9, proc.stderr.decode()


def test_a_backup_record_left_running_by_a_killed_process_is_failed_by_the_next_run_of_that_vm(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    _kill(state, "rhel5-web", "proxy.during-copy")
    _kill(state, "win2003-sql", "proxy.during-copy")
    with Catalog(state / "medium") as cat:
        running = {r.vm_name: r.id for r in cat.backups(status="running")}
    assert set(running) == {"rhel5-web", "win2003-sql"}
    (res,) = _cli(state, "backup", "-a", "name:win2003-sql")
    assert res["status"] == "ok"
    assert any(f"marked backup {running['win2003-sql']} of win2003-sql failed" in n for n in res["stale_cleaned"])
    with Catalog(state / "medium") as cat:
        # only that VM's record: the other VM's run is not this run's to judge
        assert [r.id for r in cat.backups(status="running")] == [running["rhel5-web"]]
        failed = cat.backup(running["win2003-sql"])
        assert failed.status == "failed" and "interrupted" in (failed.error or "")
        assert cat.entries(failed.id) == {} and cat.image_files(failed.id) == []
        assert [r.id for r in cat.backups("win2003-sql")] == [res["backup_id"]]
    (res,) = _cli(state, "backup", "-a", "name:rhel5-web")
    assert res["status"] == "ok"
    with Catalog(state / "medium") as cat:
        assert cat.backups(status="running") == []


@pytest.mark.parametrize("type_", ["fullvm", "file"])
def test_cleanup_says_unmount_only_of_what_its_trace_saw_mounted(tmp_path: Path, type_: str) -> None:
    from vcbsim.conformance._checker import check_trace
    from vcbsim.simulator._trace import load_jsonl

    # the crash in this process: the trace saw the mounts, the cleanup unmounts them
    host = Host.demo()
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy")
    with Catalog(tmp_path / "medium") as cat:
        host.add_fault(FaultRule("crash", target="proxy.after-expose"))
        with pytest.raises(SimulatedCrash):
            proxy.backup("name:win2003-sql", type_, catalog=cat)
        mounted = [e.details["path"] for e in host.trace.of_kind("mount")]
        assert mounted
        mark = len(host.trace)
        assert proxy.backup("name:win2003-sql", type_, catalog=cat).ok
    unmounted = [e.details["path"] for e in host.trace.since(mark) if e.kind == "unmount"]
    assert sorted(mounted) == sorted(unmounted[: len(mounted)])
    report = check_trace(host.trace.events)
    assert report.ok, "\n".join(v.format() for v in report.violations)

    # the crash in another process (killed): this trace never saw them mounted
    state = tmp_path / "state"
    proc = subprocess.run(
        [sys.executable, "-m", "vcbsim", "backup", "-a", "name:win2003-sql", "-t", type_, "--state", str(state)],
        env={**os.environ, CRASH_ENV: "proxy.after-expose"}, capture_output=True, timeout=120, check=False,
    )
    assert proc.returncode == -9, proc.stderr.decode()
    (res,) = _cli(state, "backup", "-a", "name:win2003-sql", "-t", type_, "--trace", str(tmp_path / "t.jsonl"))
    assert res["status"] == "ok" and any("left on the proxy" in n for n in res["stale_cleaned"])
    events = load_jsonl(tmp_path / "t.jsonl")
    assert any(e.kind == "op.ok" and e.details.get("op") == "cleanup-unmount" for e in events)
    report = check_trace(events)
    assert report.ok, "\n".join(v.format() for v in report.violations)


def test_unmount_in_another_process_and_after_a_kill_past_the_commit(tmp_path: Path) -> None:
    from vcbsim.conformance._checker import check_trace
    from vcbsim.simulator._trace import load_jsonl

    state, mnt = tmp_path / "state", tmp_path / "mnt"
    res = _cli(state, "mount", "-a", "name:win2003-sql", "-t", "file", "-r", str(mnt))
    assert res["status"] == "mounted"
    # unmount in a later invocation: its trace never saw the mounts, and conforms
    res = _cli(state, "unmount", "-r", str(mnt / "win2003-sql"), "--trace", str(tmp_path / "u.jsonl"))
    assert res["status"] == "ok" and all(s["ok"] for s in res["steps"])
    events = load_jsonl(tmp_path / "u.jsonl")
    assert not [e for e in events if e.kind == "unmount"]
    report = check_trace(events)
    assert report.ok, "\n".join(v.format() for v in report.violations)

    # an unmount killed after it removed the snapshot: the next unmount finishes it
    _cli(state, "mount", "-a", "name:win2003-sql", "-t", "file", "-r", str(mnt))
    proc = subprocess.run(
        [sys.executable, "-m", "vcbsim", "unmount", "-r", str(mnt / "win2003-sql"), "--state", str(state)],
        env={**os.environ, CRASH_ENV: "proxy.after-commit"}, capture_output=True, timeout=120, check=False,
    )
    assert proc.returncode == -9, proc.stderr.decode()
    res = _cli(state, "unmount", "-r", str(mnt / "win2003-sql"))
    assert res["status"] == "ok"
    assert [s["op"] for s in res["steps"]] == ["unmount"] and all(s["ok"] for s in res["steps"])
    assert any("already removed by an interrupted unmount" in n for n in res["stale_cleaned"])
    assert list((mnt / ".vcb-sessions").iterdir()) == []
