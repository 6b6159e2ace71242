"""Scheduled jobs on a proxy with a concurrency limit, and the vcbMounter-style CLI verbs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vcbsim.conformance._checker import check_trace
from vcbsim.reference import (
    EXIT_CODES,
    BackupProxy,
    Catalog,
    InProcessHostClient,
    Job,
    JobScheduler,
    Schedule,
    main,
)
from vcbsim.simulator import InvalidInputError
from vcbsim.simulator._host import Host, MiB


@pytest.fixture
def demo() -> Any:
    host = Host.demo()
    for i in range(3):
        host.add_vm(f"app{i}", os_family="windows", disks=[16 * MiB])
    return host


def test_jobs_start_at_their_time_respect_the_concurrency_limit_and_keep_history(demo: Any, tmp_path: Path) -> None:
    client = InProcessHostClient(demo)
    proxy = BackupProxy(client, tmp_path / "proxy")
    t0 = demo.clock.now
    with Catalog(tmp_path / "medium") as cat:
        sched = JobScheduler(proxy, cat, concurrency=2)
        sched.add(Job("images", ("name:app0", "name:app1", "name:app2", "name:rhel5-web"), "fullvm", Schedule(t0 + 3600, every=86400)))
        sched.add(Job("files", ("name:win2003-sql",), "file", Schedule(t0 + 3600), kind="full"))
        sched.add(Job("same-vm-image", ("name:win2003-sql",), "fullvm", Schedule(t0 + 3600)))
        assert sched.run_until(t0 + 60) == [] and sched.history() == []
        demo.add_fault(operation="export", target="app1:*", fault="NoDiskSpace")
        runs = sched.run_until(t0 + 3600 + 86400)
        assert demo.clock.now >= t0 + 3600 + 86400  # the last runs started then, and took time
        assert len(runs) == 10 and sched.max_active == 2
        hist = sched.history()
        assert len(hist) == 10
        assert all(r["started"] >= r["scheduled"] for r in hist)
        failed = [r for r in hist if r["status"] == "failed"]
        assert [(r["vm_name"], r["failed_step"]) for r in failed] == [("app1", "WF-1f")]
        assert "NoDiskSpace" in failed[0]["reason"]
        # the file and the image job of one VM never overlap (R60); both ran
        sql = [r for r in hist if r["vm_name"] == "win2003-sql"]
        assert sorted(r["type"] for r in sql) == ["file/full", "fullvm"]
        assert sql[0]["finished"] <= sql[1]["started"]
        assert sched.run_until(t0 + 3600 + 86400) == []  # nothing runs twice
        assert {r["vm_name"] for r in hist} == {"app0", "app1", "app2", "rhel5-web", "win2003-sql"}
        assert all(vm.snapshots() == [] for vm in demo.vms.values())
    report = check_trace(demo.trace.events)
    assert report.ok, "\n".join(v.format() for v in report.violations)


def test_job_definitions_are_validated() -> None:
    with pytest.raises(InvalidInputError):
        Job("x", ("win1",), "fullvm", Schedule(0))
    with pytest.raises(InvalidInputError):
        Job("x", ("name:win1",), "file", Schedule(0), kind="image")
    with pytest.raises(InvalidInputError):
        Schedule(0, every=0)
    assert Schedule(10, every=5, count=3).times(100) == [10, 15, 20]


def test_progress_is_reported_for_copies(demo: Any, tmp_path: Path) -> None:
    seen: dict[str, int] = {}

    def progress(what: str, advance: int, total: int) -> None:
        seen[what] = seen.get(what, 0) + advance

    proxy = BackupProxy(InProcessHostClient(demo), tmp_path / "p", progress=progress)
    with Catalog(tmp_path / "m") as cat:
        res = proxy.backup("name:win2003-sql", "fullvm", catalog=cat)
        assert res.ok
        assert seen["win2003-sql: backup to medium"] == cat.backup(res.backup_id or 0).bytes_copied
    assert any(k.startswith("win2003-sql: export") for k in seen)


# -- CLI ---------------------------------------------------------------------------------------


def cli(tmp: Path, *argv: str) -> tuple[int, Any]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--state", str(tmp / "state"), "--json"])
    return code, json.loads(out.getvalue())


def test_cli_mount_and_unmount_across_invocations(tmp_path: Path) -> None:
    code, res = cli(tmp_path, "mount", "-a", "name:win2003-sql", "-r", str(tmp_path / "mnt"), "-t", "file")
    assert code == 0 and res["status"] == "mounted"
    assert sorted(res["letters"]) == ["C", "D"] and res["skipped_volumes"] == ["disk 2001 partition 1 (RECOVERY)"]
    assert (tmp_path / "mnt" / "win2003-sql" / "letters" / "D" / "Data" / "orders.csv").is_file()
    code, err = cli(tmp_path, "mount", "-a", "name:win2003-sql", "-r", str(tmp_path / "mnt"), "-t", "fullvm")
    assert code == 4 and "already mounted" in err["message"]
    code, res = cli(tmp_path, "unmount", "-r", str(tmp_path / "mnt" / "win2003-sql"))
    assert code == 0 and res["status"] == "ok"
    assert [s["step"] for s in res["steps"]] == ["WF-3a", "WF-3b"]
    assert not (tmp_path / "mnt" / "win2003-sql").exists()
    code, err = cli(tmp_path, "unmount", "-r", str(tmp_path / "mnt" / "win2003-sql"))
    assert code == 4


def test_cli_exit_codes_and_errors(tmp_path: Path) -> None:
    assert set(EXIT_CODES) == {0, 1, 2, 3, 4, 5}
    code, err = cli(tmp_path, "mount", "-a", "name:rhel5-web", "-t", "file")
    assert code == 5 and "Windows" in err["message"]
    code, err = cli(tmp_path, "backup", "-a", "name:nosuch")
    assert code == 3 and "win2003-sql" in err["message"]
    code, err = cli(tmp_path, "backup", "-a", "nosuch")
    assert code == 2
    code, err = cli(tmp_path, "restore", "--backup", "7", "--path", "C:\\x", "--to", str(tmp_path))
    assert code == 3
    assert main(["frobnicate"]) == 2


def test_cli_backups_restore_and_jobs(tmp_path: Path) -> None:
    code, res = cli(tmp_path, "backup", "-a", "name:win2003-sql", "-t", "file", "--kind", "full")
    assert code == 0 and res[0]["kind"] == "full"
    # the demo's quiescing scripts log each run to C:\vcb-quiesce.log: the only change since
    code, res = cli(tmp_path, "backup", "-a", "name:win2003-sql", "-t", "file", "--kind", "incremental")
    assert code == 0 and res[0]["kind"] == "incremental"
    with Catalog(tmp_path / "state" / "medium") as cat:
        assert cat.copied_paths(res[0]["backup_id"]) == ["C:\\vcb-quiesce.log"]
    code, res = cli(tmp_path, "backup", "-a", "name:rhel5-web", "-t", "fullvm")
    assert code == 0 and res[0]["kind"] == "image"
    code, listed = cli(tmp_path, "restore", "--list")
    assert [b["kind"] for b in listed] == ["full", "incremental", "image"]
    code, files = cli(tmp_path, "restore", "--backup", "2", "--path", "d:\\data\\orders.csv", "--to", str(tmp_path / "out"))
    assert code == 0 and Path(files[0]).read_bytes().startswith(b"id,item,qty")
    code, res = cli(tmp_path, "restore", "--backup", "3", "--vm")
    assert code == 0 and res["restored"] == "rhel5-web"
    code, _ = cli(tmp_path, "jobs", "add", "nightly", "-a", "name:rhel5-web", "-t", "fullvm", "--at", "+3600", "--every", "86400")
    assert code == 0
    code, runs = cli(tmp_path, "jobs", "run", "--until", "+90000")
    assert code == 0 and len(runs) == 2 and all(r["result"]["status"] == "ok" for r in runs)
    code, hist = cli(tmp_path, "jobs", "history")
    assert [h["status"] for h in hist] == ["ok", "ok"]
    trace = tmp_path / "trace.jsonl"
    assert main(["jobs", "list", "--state", str(tmp_path / "state"), "--trace", str(trace)]) == 0
    from vcbsim.simulator import load_jsonl

    report = check_trace(load_jsonl(trace))
    assert report.ok, "\n".join(v.format() for v in report.violations)


def test_cli_verb_entry_points_for_the_vcbsim_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vcbsim.reference._cli import main_backup, main_jobs, main_mount, main_restore, main_unmount

    state = ["--state", str(tmp_path / "s")]
    assert main_mount(["-a", "name:rhel5-web", "-t", "fullvm", "-m", "san", *state]) == 2  # no SAN fabric
    assert "storage fabric" in capsys.readouterr().err
    assert main_mount(["-a", "name:rhel5-web", "-t", "fullvm", "-m", "cos", *state]) == 0
    assert "rhel5-web: mounted" in capsys.readouterr().out
    assert main_unmount(["-r", str(tmp_path / "s" / "proxy" / "rhel5-web-fullVM"), *state]) == 0
    assert main_backup(["-a", "name:rhel5-web", *state]) == 0
    assert main_restore(["--list", *state]) == 0
    assert "rhel5-web image" in capsys.readouterr().out
    assert main_jobs(["list", *state]) == 0
    assert main_mount(["--help"]) == 0
    assert "-t {fullvm,file}" in capsys.readouterr().out


def test_a_job_refused_for_a_held_mount_is_recorded_not_raised(demo: Any, tmp_path: Path) -> None:
    proxy = BackupProxy(InProcessHostClient(demo), tmp_path / "proxy")
    held = proxy.mount("name:rhel5-web", "fullvm")
    assert held.status == "mounted"
    with Catalog(tmp_path / "medium") as cat:
        sched = JobScheduler(proxy, cat, concurrency=3)
        sched.add(Job("nightly", ("name:rhel5-web", "name:app0", "name:nosuch"), "fullvm", Schedule(demo.clock.now)))
        runs = sched.run_until(demo.clock.now)
        by_sel = {r.selector: r for r in runs}
        assert by_sel["name:app0"].result is not None and by_sel["name:app0"].result.ok
        assert "already mounted" in by_sel["name:rhel5-web"].error
        assert "NotFoundError" in by_sel["name:nosuch"].error
        statuses = sorted((r["selector"], r["status"]) for r in sched.history())
        assert statuses == [("name:app0", "ok"), ("name:nosuch", "error"), ("name:rhel5-web", "error")]
    assert len(demo.find_vm("name:rhel5-web").snapshots()) == 1  # the held mount is untouched
    assert proxy.unmount(Path(held.path or "")).ok
