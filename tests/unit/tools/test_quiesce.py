"""The five steps and every failure path (spec R15-R30, F1-F11, seed "When running the scripts")."""

from __future__ import annotations

import dataclasses

import pytest
from pyVmomi import vim

from vcbsim.simulator import FaultRule, StateError, get_profile, load_jsonl, make_fault
from vcbsim.simulator.tools import MSG, ToolsSwitches

NAMES = ["10-a.bat", "2-b.bat", "B.bat", "a.bat"]


def _exact_case(rig, profile: str):
    r = rig("windows", profile)
    for n in NAMES:
        r.script(r.in_dir(n), "echo %1 >> C:\\q.log")
    r.script(r.pre, "echo legacy-pre %1 >> C:\\q.log")
    r.script(r.post, "echo legacy-post %1 >> C:\\q.log")
    return r


def test_exact_case_tools_run_the_legacy_pair_and_the_directory(rig) -> None:
    """Tools of 2010 on (esxi-7.0) run the legacy slot and backupScripts.d as one list (R21)."""
    r = _exact_case(rig, "esxi-7.0")
    res = r.quiesce()
    d = r.in_dir
    assert r.calls() == [
        (r.pre, "freeze"),
        (d("10-a.bat"), "freeze"),
        (d("2-b.bat"), "freeze"),
        (d("B.bat"), "freeze"),
        (d("a.bat"), "freeze"),
        (d("a.bat"), "thaw"),
        (d("B.bat"), "thaw"),
        (d("2-b.bat"), "thaw"),
        (d("10-a.bat"), "thaw"),
        (r.post, "thaw"),
    ]
    assert res.outcome == "done" and res.quiesced and res.snapshot == "snapshot-1"
    assert r.frozen_during_create == [True] and not r.tools.frozen and r.tools.phase == "IDLE"
    log = r.files.read_text("C:\\q.log").split("\r\n")
    assert log[0] == "legacy-pre freeze" and log[-2] == "legacy-post thaw"
    # every step maps to the seed's step, and virtual time never goes back
    steps = [(e.kind, e.step) for e in r.trace if e.actor == "guest"]
    assert steps[0] == ("quiesce.start", "WF-1a")
    assert ("quiesce.engage", "WF-1b") in steps and ("quiesce.disengage", "WF-1d") in steps
    assert steps[-1] == ("quiesce.end", "WF-1e")
    runs = r.trace.of_kind("script.run")
    assert {e.step for e in runs[:5]} == {"WF-1a"} and {e.step for e in runs[5:]} == {"WF-1e"}
    times = [e.time for e in r.trace]
    assert times == sorted(times)
    kinds = r.kinds()
    assert kinds.index("quiesce.engage") < kinds.index("snapshot.create") < kinds.index("quiesce.disengage")
    # the trace is valid against the published schema
    assert len(load_jsonl(r.trace.to_jsonl().splitlines())) == len(r.trace)


def test_exact_case_3_5_u1_runs_only_the_legacy_files(rig) -> None:
    r = _exact_case(rig, "esx-3.5u1")
    res = r.quiesce()
    assert r.calls() == [(r.pre, "freeze"), (r.post, "thaw")]
    assert res.provider == "sync"  # no VSS before 3.5 U2 (KB 5962168)


def test_exact_case_3_5_u2_vss_guest_runs_only_the_directory(rig) -> None:
    """hostd ran the legacy pair on its SYNC-driver path only (OVT 1da06b950): a VSS guest on
    3.5 U2 runs backupScripts.d alone, in the same byte-wise order."""
    r = _exact_case(rig, "esx-3.5u2")
    res = r.quiesce()
    d = r.in_dir
    names = ["10-a.bat", "2-b.bat", "B.bat", "a.bat"]
    assert r.calls() == [(d(n), "freeze") for n in names] + [(d(n), "thaw") for n in reversed(names)]
    assert res.provider == "vss" and res.outcome == "done"
    assert r.trace.of_kind("quiesce.start")[0].details["layout"] == "directory"


def test_exact_case_3_5_u2_xp_guest_runs_only_the_legacy_pair(rig) -> None:
    """KB 1006671: Windows XP SP2 on 3.5 U2 still uses C:\\Windows\\*.bat (SYNC driver)."""
    r = rig("windows", "esx-3.5u2", providers=("sync",))
    for n in NAMES:
        r.script(r.in_dir(n), "")
    r.script(r.pre, "")
    r.script(r.post, "")
    res = r.quiesce()
    assert r.calls() == [(r.pre, "freeze"), (r.post, "thaw")] and res.provider == "sync"


@pytest.mark.parametrize("profile", ["esx-3.5u1", "esx-3.5u2"])
def test_linux_on_3_5_runs_only_usr_sbin(rig, profile: str) -> None:
    """Seed Table 2-3 "Other": /usr/sbin/pre-freeze-script and post-thaw-script on U1 and U2."""
    r = rig("linux", profile)
    r.script(r.in_dir("10-db"), "")
    r.script(r.pre, "")
    r.script(r.post, "")
    r.quiesce()
    assert r.calls() == [(r.pre, "freeze"), (r.post, "thaw")]
    r7 = rig("linux", "esxi-7.0")
    d = r7.script(r7.in_dir("10-db"), "")
    r7.script(r7.pre, "")
    r7.script(r7.post, "")
    r7.quiesce()
    assert r7.calls() == [(r7.pre, "freeze"), (d, "freeze"), (d, "thaw"), (r7.post, "thaw")]


def test_third_of_five_freeze_scripts_fails(rig) -> None:
    r = rig("windows")
    paths = [r.script(r.in_dir(f"{i}.bat"), "[freeze] exit 3" if i == 3 else "") for i in range(1, 6)]
    with pytest.raises(vim.fault.ApplicationQuiesceFault) as exc:
        r.quiesce()
    assert r.calls() == [
        (paths[0], "freeze"),
        (paths[1], "freeze"),
        (paths[2], "freeze"),
        (paths[1], "freezeFail"),
        (paths[0], "freezeFail"),
    ]
    assert "The error code was: 2" in exc.value.msg and MSG["script_failed"] in exc.value.msg
    assert r.created == [] and r.frozen_during_create == [] and not r.tools.frozen
    assert "quiesce.engage" not in r.kinds()
    end = r.end()
    assert end["outcome"] == "error" and end["code"] == 2
    assert end["errors"] == [[2, MSG["script_failed"]], [5, MSG["on_freeze"]]]
    assert r.tools.phase == "IDLE"


def test_failing_first_script_runs_no_freeze_fail_but_legacy_post_thaw_gets_it(rig) -> None:
    r = rig("linux")
    r.script(r.pre, "exit 1")
    r.script(r.post, "")
    r.script(r.in_dir("x"), "")
    with pytest.raises(vim.fault.ApplicationQuiesceFault):
        r.quiesce()
    assert r.calls() == [(r.pre, "freeze")]  # R26.5: index 0 failed, nothing before it

    r = rig("linux")
    r.script(r.post, "")  # slot kept for post-thaw only (R22)
    first = r.script(r.in_dir("a"), "")
    second = r.script(r.in_dir("b"), "exit 2")
    with pytest.raises(vim.fault.ApplicationQuiesceFault):
        r.quiesce()
    assert r.calls() == [(first, "freeze"), (second, "freeze"), (first, "freezeFail"), (r.post, "freezeFail")]


def test_first_script_cannot_launch_fails_initialisation(rig) -> None:
    r = rig("windows")
    first = r.script(r.in_dir("1.bat"), "")
    r.script(r.in_dir("2.bat"), "")
    r.faults.add(FaultRule("script.launch", target="*1.bat"))
    with pytest.raises(vim.fault.ApplicationQuiesceFault) as exc:
        r.quiesce()
    assert MSG["script_start"] in exc.value.msg
    assert r.calls() == [(first, "freeze")]  # the attempt is traced; no freezeFail (R27)
    assert r.trace.of_kind("script.run")[0].details["exit_code"] is None
    assert r.created == []


def test_later_script_cannot_launch_is_a_script_failure(rig) -> None:
    r = rig("windows")
    a = r.script(r.in_dir("1.bat"), "")
    r.script(r.in_dir("2.txt"), "")  # Windows cannot start a .txt (INFERRED switch)
    r.script(r.in_dir("3.bat"), "")
    with pytest.raises(vim.fault.ApplicationQuiesceFault) as exc:
        r.quiesce()
    assert MSG["script_failed"] in exc.value.msg
    assert r.calls() == [(a, "freeze"), (r.in_dir("2.txt"), "freeze"), (a, "freezeFail")]


def test_non_executable_linux_script_exits_126(rig) -> None:
    r = rig("linux")
    p = r.script(r.in_dir("s"), "", executable=False)
    with pytest.raises(vim.fault.ApplicationQuiesceFault):
        r.quiesce()
    assert r.trace.of_kind("script.run")[0].details["exit_code"] == 126
    r = rig("linux", switches=ToolsSwitches(noexec="launch-failure"))
    p = r.script(r.in_dir("s"), "", executable=False)
    with pytest.raises(vim.fault.ApplicationQuiesceFault) as exc:
        r.quiesce()
    assert MSG["script_start"] in exc.value.msg and r.calls() == [(p, "freeze")]


def test_vss_engage_failure_goes_to_step_5_with_freeze_fail(rig) -> None:
    r = rig("windows")
    a = r.script(r.in_dir("a.bat"), "")
    b = r.script(r.in_dir("b.bat"), "")
    r.faults.add(FaultRule("quiesce.engage", fault="SnapshotFault"))
    with pytest.raises(vim.fault.SnapshotFault) as exc:
        r.quiesce()
    assert "The error code was: 3" in exc.value.msg
    assert r.calls() == [(a, "freeze"), (b, "freeze"), (b, "freezeFail"), (a, "freezeFail")]
    assert r.created == [] and not r.tools.frozen
    eng = r.trace.of_kind("quiesce.engage")[0].details
    assert eng["ok"] is False and eng["provider"] == "vss"
    assert "quiesce.disengage" not in r.kinds()


def test_linux_without_freeze_backend_uses_null_or_fails(rig) -> None:
    r = rig("linux", providers=())
    res = r.quiesce()
    assert res.provider == "null" and r.frozen_during_create == [False] and res.quiesced
    r = rig("linux", providers=(), config={"enableNullDriver": False})
    with pytest.raises(vim.fault.SnapshotFault):
        r.quiesce()
    assert r.created == []


def test_provider_selection(rig) -> None:
    assert rig("windows").tools.select_provider("esx-3.5u1") == "sync"  # KB 5962168
    assert rig("windows").tools.select_provider("esx-3.5u2") == "vss"
    assert rig("windows", config={"enableSyncDriver": False}).tools.select_provider("esx-3.5u1") == "null"
    assert rig("windows").tools.select_provider() == "vss"
    assert rig("windows", providers=("sync",)).tools.select_provider() == "sync"
    assert rig("windows", config={"enableVSS": False}).tools.select_provider() == "null"
    assert rig("linux").tools.select_provider() == "sync"
    assert rig("linux", config={"enableSyncDriver": False}).tools.select_provider() == "null"


def test_slow_snapshot_exceeds_vss_hold_writes(rig) -> None:
    r = rig("windows", snapshot_duration=15.0)
    a = r.script(r.in_dir("a.bat"), "")
    with pytest.raises(vim.fault.FilesystemQuiesceFault):
        r.quiesce()
    assert r.created == ["snapshot-1"] and r.rolled_back == ["snapshot-1"]
    assert r.calls() == [(a, "freeze"), (a, "freezeFail")]  # not thaw (R36)
    dis = r.trace.of_kind("quiesce.disengage")[0].details
    assert dis["ok"] is False and not r.tools.frozen
    assert r.end()["code"] == 3 and r.tools.last_result is not None and r.tools.last_result.rolled_back


def test_slow_snapshot_within_window_or_without_vss_is_fine(rig) -> None:
    assert rig("windows", snapshot_duration=9.0).quiesce().outcome == "done"
    assert rig("windows", providers=("sync",), snapshot_duration=60.0).quiesce().outcome == "done"
    assert rig("linux", snapshot_duration=60.0).quiesce().outcome == "done"
    prof = dataclasses.replace(get_profile("esx-3.5u2"), vss_hold_writes=100.0)
    assert rig("windows", prof, snapshot_duration=60.0).quiesce().outcome == "done"


def test_linux_thaw_failure_by_fault_rule(rig) -> None:
    r = rig("linux")
    r.faults.add(FaultRule("quiesce.disengage", target="vm-1"))
    with pytest.raises(vim.fault.FilesystemQuiesceFault):
        r.quiesce()
    assert r.rolled_back == ["snapshot-1"] and not r.tools.frozen


def test_abort_timer_in_script_freeze(rig) -> None:
    r = rig("windows")
    a = r.script(r.in_dir("a.bat"), "")
    b = r.script(r.in_dir("b.bat"), "echo started >> C:\\t.log\n[freeze] sleep 2000\necho late >> C:\\t.log")
    c = r.script(r.in_dir("c.bat"), "")
    t0 = r.clock.now
    with pytest.raises(vim.fault.SnapshotFault) as exc:
        r.quiesce()
    assert "Timed out while quiescing" in exc.value.msg
    assert r.calls() == [(a, "freeze"), (b, "freeze"), (a, "freezeFail")]
    assert c not in [p for p, _ in r.calls()]
    abort = r.trace.of_kind("quiesce.abort")[0]
    assert abort.details["state"] == "SCRIPT_FREEZE" and abort.time == t0 + 900
    assert r.trace.of_kind("script.run")[1].details["killed"] is True
    assert r.files.read_text("C:\\t.log") == "started\r\n"
    assert r.end()["outcome"] == "aborted" and r.created == []
    assert r.end()["errors"] == [[4, MSG["canceled"]]]


def test_abort_timer_in_sync_freeze_fires_inside_the_snapshot(rig) -> None:
    """A snapshot slower than the timer: the timer fires at its own time while the host's
    create() runs (R15, F9); the guest thaws and aborts and the create stops there."""
    r = rig("linux", snapshot_duration=100.0)
    a = r.script(r.in_dir("a"), "")
    t0 = r.clock.now
    with pytest.raises(vim.fault.SnapshotFault):
        r.quiesce(timeout=30)
    assert r.created == [] and r.rolled_back == [] and not r.tools.frozen
    abort = r.trace.of_kind("quiesce.abort")[0]
    assert abort.details["state"] == "SYNC_FREEZE" and abort.time == pytest.approx(t0 + 30)
    assert r.calls() == [(a, "freeze"), (a, "freezeFail")]


def test_abort_timer_in_script_thaw_skips_the_rest(rig) -> None:
    r = rig("linux")
    a = r.script(r.in_dir("a"), "")
    b = r.script(r.in_dir("b"), "[thaw] sleep 5000")
    res = r.quiesce()
    assert r.calls() == [(a, "freeze"), (b, "freeze"), (b, "thaw")]
    assert res.outcome == "aborted" and res.snapshot == "snapshot-1"  # Q4 default: kept
    assert r.trace.of_kind("quiesce.abort")[0].details["state"] == "SCRIPT_THAW"

    r = rig("linux", switches=ToolsSwitches(thaw_failure="fail"))
    r.script(r.in_dir("b"), "[thaw] sleep 5000")
    with pytest.raises(vim.fault.SnapshotFault):
        r.quiesce()
    assert r.rolled_back == ["snapshot-1"]


def test_abort_timer_during_engage(rig) -> None:
    r = rig("linux")
    a = r.script(r.in_dir("a"), "")
    r.faults.add(FaultRule("quiesce.engage", delay=2000.0))
    with pytest.raises(vim.fault.SnapshotFault):
        r.quiesce()
    assert r.trace.of_kind("quiesce.abort")[0].details["state"] == "SYNC_FREEZE_WAIT"
    assert r.calls() == [(a, "freeze"), (a, "freezeFail")] and r.created == []


def test_timeout_precedence(rig) -> None:
    prof = get_profile("esxi-7.0")
    t = rig("linux").tools
    assert t.abort_timeout(prof) == 900.0
    assert t.abort_timeout(prof, 60) == 60.0
    assert t.abort_timeout(dataclasses.replace(prof, guest_abort_timeout=120.0)) == 120.0
    assert rig("linux", config={"timeout": 30}).tools.abort_timeout(prof) == 30.0
    assert rig("linux", config={"timeout": 30}).tools.abort_timeout(prof, 0) == 30.0
    assert rig("linux", config={"timeout": -5}).tools.abort_timeout(prof) == 900.0
    # timeout 0: no timer, a very slow script just runs
    r = rig("linux", config={"timeout": 0})
    r.script(r.in_dir("a"), "[freeze] sleep 5000")
    assert r.quiesce().outcome == "done" and r.trace.of_kind("quiesce.abort") == []


def test_thaw_script_failure_does_not_stop_the_others(rig) -> None:
    r = rig("windows")
    a = r.script(r.in_dir("a.bat"), "")
    b = r.script(r.in_dir("b.bat"), "[thaw] exit 1")
    c = r.script(r.in_dir("c.bat"), "")
    res = r.quiesce()
    assert [x for x in r.calls() if x[1] == "thaw"] == [(c, "thaw"), (b, "thaw"), (a, "thaw")]
    assert res.outcome == "error" and res.thaw_failed and res.snapshot == "snapshot-1"
    assert res.errors == [(2, MSG["script_failed"]), (5, MSG["on_thaw"])]
    assert r.rolled_back == []

    r = rig("windows", switches=ToolsSwitches(thaw_failure="fail"))
    r.script(r.in_dir("b.bat"), "[thaw] exit 1")
    with pytest.raises(vim.fault.ApplicationQuiesceFault):
        r.quiesce()
    assert r.rolled_back == ["snapshot-1"]


def test_freeze_fail_exit_codes_are_ignored(rig) -> None:
    r = rig("linux")
    a = r.script(r.in_dir("a"), "[freezeFail] exit 9")
    b = r.script(r.in_dir("b"), "[freeze] exit 1")
    with pytest.raises(vim.fault.ApplicationQuiesceFault):
        r.quiesce()
    assert r.calls() == [(a, "freeze"), (b, "freeze"), (a, "freezeFail")]
    assert r.end()["errors"] == [[2, MSG["script_failed"]], [5, MSG["on_freeze"]]]


def test_tools_not_running(rig) -> None:
    for state in ("not-running", "not-installed"):
        r = rig("windows", state=state)
        r.script(r.in_dir("a.bat"), "")
        with pytest.raises(vim.fault.ApplicationQuiesceFault) as exc:
            r.quiesce()
        assert "VMware Tools is not currently available" in exc.value.msg
        assert r.created == [] and r.calls() == []
    prof = dataclasses.replace(get_profile("esx-3.5u2"), quiesce_without_tools="ignore")
    r = rig("windows", prof, state="not-running")
    r.script(r.in_dir("a.bat"), "")
    res = r.quiesce()
    assert res.snapshot == "snapshot-1" and not res.quiesced and res.outcome == "skipped"
    assert r.calls() == [] and r.frozen_during_create == [False]


def test_host_snapshot_failure_aborts_and_thaws(rig) -> None:
    r = rig("linux", create_fault=make_fault("NoDiskSpace"))
    a = r.script(r.in_dir("a"), "")
    with pytest.raises(vim.fault.NoDiskSpace):
        r.quiesce()
    assert r.frozen_during_create == [True] and not r.tools.frozen
    assert r.calls() == [(a, "freeze"), (a, "freezeFail")]
    ab = r.trace.of_kind("quiesce.abort")[0].details
    assert ab["state"] == "SYNC_FREEZE" and ab["reason"] == "host"


def test_host_that_never_aborts_leaves_guest_frozen_until_the_timer(rig) -> None:
    r = rig("linux", create_fault=make_fault("NoDiskSpace"), switches=ToolsSwitches(host_sends_abort=False))
    t0 = r.clock.now
    with pytest.raises(vim.fault.NoDiskSpace):
        r.quiesce(timeout=300)
    ab = r.trace.of_kind("quiesce.abort")[0]
    assert ab.details["reason"] == "timer" and ab.time >= t0 + 300 and not r.tools.frozen

    r = rig(
        "linux", create_fault=make_fault("NoDiskSpace"), config={"timeout": 0},
        switches=ToolsSwitches(host_sends_abort=False),
    )
    with pytest.raises(vim.fault.NoDiskSpace):
        r.quiesce()
    assert r.tools.frozen and r.tools.phase == "SYNC_FREEZE"  # F12: nothing thaws it
    with pytest.raises(vim.fault.TaskInProgress):
        r.quiesce()
    r.tools.abort()
    assert not r.tools.frozen and r.tools.phase == "IDLE" and r.end()["outcome"] == "aborted"
    with pytest.raises(StateError):
        r.tools.abort()


def test_scripts_removed_or_added_during_the_operation(rig) -> None:
    r = rig("linux")
    a = r.script(r.in_dir("a"), "")
    b = r.script(r.in_dir("b"), "")
    orig = r.create

    def create() -> str:
        r.files.delete(b)  # re-checked before it runs: skipped silently (R22)
        r.script(r.in_dir("c"), "")  # added after the list was built: never run
        return orig()

    r.create = create  # type: ignore[method-assign]
    res = r.quiesce()
    assert r.calls() == [(a, "freeze"), (b, "freeze"), (a, "thaw")] and res.outcome == "done"


def test_script_arg_and_fault_rules_on_scripts(rig) -> None:
    r = rig("windows", config={"scriptArg": "nightly"})
    p = r.script(r.in_dir("a.bat"), "echo %1 %2 >> C:\\arg.log")
    r.faults.add(FaultRule("script", target=p, delay=30.0))
    t0 = r.clock.now
    r.quiesce()
    assert r.files.read_text("C:\\arg.log") == "freeze nightly\r\nthaw nightly\r\n"
    assert r.trace.of_kind("script.run")[0].details["duration"] == 30.0
    assert r.trace.of_kind("script.run")[0].time == t0 + 30.0

    r = rig("windows")
    r.script(r.in_dir("a.bat"), "")
    r.faults.add(FaultRule("script", target="*a.bat", exit_code=5))
    with pytest.raises(vim.fault.ApplicationQuiesceFault):
        r.quiesce()


def test_exec_scripts_false_runs_no_scripts(rig) -> None:
    r = rig("windows", config={"execScripts": False})
    r.script(r.in_dir("a.bat"), "exit 1")
    assert r.quiesce().outcome == "done" and r.calls() == []


def test_unknown_install_path_fails_initialisation(rig) -> None:
    r = rig("windows", install_path=None)
    with pytest.raises(vim.fault.ApplicationQuiesceFault) as exc:
        r.quiesce()
    assert MSG["script_start"] in exc.value.msg and r.created == []


def test_each_script_costs_at_least_one_tick(rig) -> None:
    r = rig("linux")
    r.script(r.in_dir("a"), "sleep 0.2")
    r.quiesce()
    assert r.trace.of_kind("script.run")[0].details["duration"] == 1.0
    r = rig("linux", switches=ToolsSwitches(tick=0))
    r.script(r.in_dir("a"), "sleep 0.2")
    r.quiesce()
    assert r.trace.of_kind("script.run")[0].details["duration"] == pytest.approx(0.2)


def test_legacy_slot_defect_switch(rig) -> None:
    def build(**kw):
        r = rig("linux", **kw)
        r.script(r.pre, "")
        r.script(r.in_dir("a"), "")
        return r

    assert build(switches=ToolsSwitches(legacy_slot_defect=False)).quiesce().outcome == "done"
    res = build().quiesce()  # on by default for Tools that run the legacy pair (esxi-7.0)
    assert res.outcome == "error" and res.thaw_failed  # spurious thaw failure (R30)
    r = build()
    r.script(r.in_dir("b"), "[freeze] exit 1")
    with pytest.raises(vim.fault.ApplicationQuiesceFault):
        r.quiesce()
    assert r.tools.state == "not-running" and r.tools.last_result is not None
    assert r.tools.last_result.tools_crashed


def test_reentrant_quiesce_is_refused(rig) -> None:
    r = rig("windows")
    seen: list[BaseException] = []
    orig = r.create

    def create() -> str:
        try:
            r.quiesce()
        except vim.fault.TaskInProgress as exc:
            seen.append(exc)
        return orig()

    r.create = create  # type: ignore[method-assign]
    assert r.quiesce().outcome == "done" and len(seen) == 1


def test_invalid_configuration_is_rejected(rig) -> None:
    from vcbsim.simulator import InvalidInputError

    with pytest.raises(InvalidInputError):
        rig("windows", config={"enableVss": True})
    with pytest.raises(InvalidInputError):
        rig("linux", providers=("vss",))
    with pytest.raises(InvalidInputError):
        rig("linux", state="sleeping")


def test_bound_tools_need_only_the_callbacks_and_function_form(rig) -> None:
    from vcbsim.simulator import InvalidInputError
    from vcbsim.simulator.tools import quiesced_snapshot

    r = rig("linux")
    a = r.script(r.in_dir("a"), "")
    with pytest.raises(InvalidInputError):
        r.tools.quiesced_snapshot(r.create, r.rollback)
    r.tools.bind(clock=r.clock, trace=r.trace, faults=r.faults, profile="esxi-7.0", vm="vm-1")
    assert r.tools.quiesced_snapshot(r.create, r.rollback, timeout=60).outcome == "done"
    assert r.trace.of_kind("quiesce.start")[0].details["timeout"] == 60.0
    assert r.trace.of_kind("quiesce.start")[0].vm == "vm-1"
    res = quiesced_snapshot(
        r.create, r.rollback, guest_files=r.files, clock=r.clock, trace=r.trace,
        faults=None, profile="esx-3.5u1", vm="vm-1",
    )
    assert res.outcome == "done" and (a, "freeze") not in res.calls()
