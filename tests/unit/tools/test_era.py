"""Era-true quiescing per host profile (issue 17): one test per profile-table row, every profile.

The table is in docs/architecture.md ("Host profiles"); each test names its row.
"""

from __future__ import annotations

import pytest
from pyVmomi import vim

from vcbsim.simulator import get_profile
from vcbsim.simulator.tools import MSG

PROFILES = ("esx-3.5u1", "esx-3.5u2", "esxi-7.0")


# -- row: Windows quiesce provider, VSS hold-writes window -----------------------------------


@pytest.mark.parametrize(("profile", "provider"), [("esx-3.5u1", "sync"), ("esx-3.5u2", "vss"), ("esxi-7.0", "vss")])
def test_windows_2003_provider_per_profile(rig, profile: str, provider: str) -> None:
    r = rig("windows", profile)
    res = r.quiesce()
    assert res.provider == provider and r.frozen_during_create == [True]


@pytest.mark.parametrize(("profile", "fails"), [("esx-3.5u1", False), ("esx-3.5u2", True), ("esxi-7.0", True)])
def test_vss_hold_writes_window_applies_only_where_vss_exists(rig, profile: str, fails: bool) -> None:
    """The SYNC driver has no 10 s hold-writes limit (KB 5962168 era: no VSS on 3.5 U1)."""
    r = rig("windows", profile, snapshot_duration=30.0)
    if fails:
        with pytest.raises(vim.fault.FilesystemQuiesceFault):
            r.quiesce()
        assert r.rolled_back == ["snapshot-1"]
    else:
        assert r.quiesce().outcome == "done" and r.rolled_back == []


# -- row: scripts of a Windows VSS guest on 3.5 U2 (switch) -------------------------------------


def test_vss_guest_legacy_pair_switch(rig) -> None:
    """The INFERRED 3.5 U2 case is a switch: on, a VSS guest runs the legacy pair too."""
    import dataclasses

    prof = dataclasses.replace(get_profile("esx-3.5u2"), vss_guest_legacy_pair=True)
    r = rig("windows", prof)
    d = r.script(r.in_dir("10-a.bat"), "")
    r.script(r.pre, "")
    r.script(r.post, "")
    r.quiesce()
    assert r.calls() == [(r.pre, "freeze"), (d, "freeze"), (d, "thaw"), (r.post, "thaw")]


# -- row: guest abort timer ------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "timer"), [("esx-3.5u1", 0.0), ("esx-3.5u2", 0.0), ("esxi-7.0", 900.0)])
def test_guest_abort_timer_per_profile(rig, profile: str, timer: float) -> None:
    """The timer and the [vmbackup] timeout key arrived in 2010 (OVT 7c7a38862)."""
    assert rig("linux").tools.abort_timeout(profile) == timer
    assert rig("linux", config={"timeout": 30}).tools.abort_timeout(profile) == (30.0 if timer else 0.0)
    assert rig("linux").tools.abort_timeout(profile, 60) == (60.0 if timer else 0.0)
    assert get_profile(profile).guest_abort_timer == bool(timer)


@pytest.mark.parametrize("profile", PROFILES)
def test_hung_freeze_script_and_the_retry(rig, profile: str) -> None:
    """3.5: the host gives up at 900 s, the guest is never told and keeps running the script; a
    retry gets "Quiesce operation already in progress." until the script ends. 7.0: the guest
    timer kills the script at 900 s and a retry works."""
    r = rig("windows", profile)
    hang = r.in_dir("05-hang.bat") if profile != "esx-3.5u1" else r.pre
    r.script(hang, "[freeze] echo start >> C:\\h.log\n[freeze] sleep 2000\n[freeze] echo end >> C:\\h.log")
    t0 = r.clock.now
    with pytest.raises(vim.fault.SnapshotFault) as exc:
        r.quiesce()
    assert "Timed out while quiescing" in exc.value.msg
    assert r.created == []
    if profile == "esxi-7.0":
        assert r.trace.of_kind("quiesce.abort")[0].time == t0 + 900
        assert r.tools.phase == "IDLE" and r.end()["outcome"] == "aborted"
        assert r.files.read_text("C:\\h.log") == "start\r\n"  # killed
        r.clock.advance(10)
        r.files.delete(hang)
        assert r.quiesce().outcome == "done"
        return
    # 3.5: no guest timer, no abort: the operation is still open, the script still running
    assert r.clock.now == t0 + 900
    assert r.trace.of_kind("quiesce.abort") == [] and r.trace.of_kind("quiesce.end") == []
    assert r.tools.phase == "SCRIPT_FREEZE" and r.tools.busy_until == t0 + 2000
    r.clock.advance(100)
    with pytest.raises(vim.fault.SnapshotFault) as busy:
        r.quiesce()
    assert MSG["busy"] in busy.value.msg and r.created == []
    # the script ends on its own; the guest then learns the host is gone (INFERRED: T7b)
    r.clock.advance_to(t0 + 2000)
    r.tools.poll(r.clock.now)  # what the next quiesce does first
    assert r.tools.phase == "IDLE" and r.tools.busy_until is None
    r.files.delete(hang)
    res = r.quiesce()
    assert res.outcome == "done" and r.created == ["snapshot-1"]
    ends = r.trace.of_kind("quiesce.end")
    assert [e.details["outcome"] for e in ends] == ["error", "done"]
    assert r.files.read_text("C:\\h.log") == "start\r\nend\r\n"
    runs = [(e.details["path"], e.details["arg"]) for e in r.trace.of_kind("script.run")]
    if profile == "esx-3.5u2":  # the directory script gets freezeFail when the guest gives up
        assert runs[:2] == [(hang, "freeze"), (hang, "freezeFail")]
    else:  # the legacy slot's freezeFail goes to the (absent) post-thaw script
        assert runs[:1] == [(hang, "freeze")] and ends[0].details["errors"] == []


@pytest.mark.parametrize("profile", ["esx-3.5u1", "esx-3.5u2"])
def test_host_abort_ends_a_detached_operation(rig, profile: str) -> None:
    """A Tools restart (``VMwareTools.abort``) ends the detached operation: the script is killed."""
    r = rig("linux", profile)
    r.script(r.pre, "[freeze] sleep 5000")
    with pytest.raises(vim.fault.SnapshotFault):
        r.quiesce()
    r.tools.abort()
    assert r.tools.phase == "IDLE" and r.end()["outcome"] == "aborted"
    assert r.trace.of_kind("script.run")[-1].details.get("killed") is True
    r.files.delete(r.pre)
    assert r.quiesce().outcome == "done"


# -- row: legacy-slot defect (R30) -----------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_legacy_slot_defect_per_profile(rig, profile: str) -> None:
    """Legacy pre-freeze, no legacy post-thaw, a directory script: Tools of 2010 on report every
    thaw as failed (fidelity review D1); before, hostd ran the legacy file apart from the list."""
    r = rig("linux", profile)
    r.script(r.pre, "")
    r.script(r.in_dir("a"), "")
    res = r.quiesce()
    if profile == "esxi-7.0":
        assert res.outcome == "error" and res.thaw_failed
        assert res.errors == [(2, MSG["script_failed"]), (5, MSG["on_thaw"])]
    else:
        assert res.outcome == "done" and not res.thaw_failed


# -- row: Tools not running ------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_tools_not_running_quiesce_faults(rig, profile: str) -> None:
    r = rig("windows", profile, state="not-running")
    with pytest.raises(vim.fault.ApplicationQuiesceFault) as exc:
        r.quiesce()
    assert "VMware Tools is not currently available" in exc.value.msg and r.created == []


# -- row: VSS writer failure (the freeze cannot engage) -----------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_writer_failure_fails_the_engage_on_every_profile(rig, profile: str) -> None:
    """A failed VSS writer (or SYNC driver on 3.5 U1) fails the engage: req.error 3, every
    script gets freezeFail, no snapshot (spec F3; the API fault is Q6's switch)."""
    from vcbsim.simulator import FaultRule

    r = rig("windows", profile)
    a = r.script(r.pre if profile == "esx-3.5u1" else r.in_dir("a.bat"), "")
    if profile == "esx-3.5u1":
        r.script(r.post, "")
    r.faults.add(FaultRule("quiesce.engage", target="vm-1", fault="SystemError", message="VSS writer 'SqlServerWriter' failed"))
    with pytest.raises(vim.fault.SnapshotFault):
        r.quiesce()
    assert r.created == [] and not r.tools.frozen
    assert r.end()["errors"] == [[3, MSG["sync_enable"]]]
    engage = r.trace.of_kind("quiesce.engage")[0].details
    assert engage["ok"] is False and "SqlServerWriter" in engage["error"]
    assert r.calls()[-1][1] == "freezeFail" and r.calls()[0] == (a, "freeze")


# -- row: Linux freeze options ------------------------------------------------------------------


def _linux_fat(profile: str, **tools_kw):
    """A Linux guest with "/" and "/var/www" mounted (the demo's layout), on ``profile``."""
    from vcbsim.simulator import Host

    host = Host(profile)
    vm = host.add_vm("lin", os_family="linux", disks=[2 * 1024**3])
    host.add_guest_volumes(vm, {0: [(1024**3, "/", "ROOT"), (None, "/var/www", "WWW")]})
    assert vm.tools is not None
    vm.tools.config.update(tools_kw)
    return host, vm


def _install(fs, path: str, text: str) -> None:
    parent = path.rsplit("/", 1)[0]
    if not fs.exists(parent):
        fs.mkdir(parent, parents=True)
    fs.write_bytes(path, text.encode())


@pytest.mark.parametrize("profile", PROFILES)
def test_pre_freeze_script_that_froze_a_file_system(profile: str) -> None:
    """The KB's example pre-freeze script runs ``fsfreeze -f``: Tools of 12.2.0 on get EBUSY and
    fail the freeze (F3, error 3), unless ``ignoreFrozenFileSystems`` (12.3.0) or
    ``excludedFileSystems`` covers it. The 3.5 era's vmsync driver has no such rule."""
    script = "#!/bin/sh\n[freeze] fsfreeze -f /var/www\n[thaw,freezeFail] fsfreeze -u /var/www\n"
    host, vm = _linux_fat(profile)
    where = "/usr/sbin/pre-freeze-script" if profile != "esxi-7.0" else "/etc/vmware-tools/backupScripts.d/10-www"
    _install(host.guest_fs(vm), where, script)
    if profile != "esxi-7.0":
        assert host.create_snapshot(vm, "q", quiesce=True).quiesced
        return
    with pytest.raises(vim.fault.SnapshotFault) as exc:
        host.create_snapshot(vm, "q", quiesce=True)
    assert "error code was: 3" in exc.value.msg and vm.snapshots() == []
    engage = host.trace.of_kind("quiesce.engage")[-1].details
    assert engage["ok"] is False and "EBUSY" in engage["error"] and "/var/www" in engage["error"]
    assert vm.tools.frozen_by_others == set()  # its freezeFail thawed it again
    for option in ({"ignoreFrozenFileSystems": True}, {"excludedFileSystems": "/var/*"}):
        host2, vm2 = _linux_fat(profile, **option)
        _install(host2.guest_fs(vm2), where, script)
        assert host2.create_snapshot(vm2, "q", quiesce=True).quiesced, option


@pytest.mark.parametrize("profile", PROFILES)
def test_excluded_file_systems(profile: str) -> None:
    """Excluding every mount leaves nothing to freeze: the freeze fails on 10.3.0+ Tools; the
    key does not exist in the 3.5 era."""
    host, vm = _linux_fat(profile, excludedFileSystems="/,/var/www")
    if profile != "esxi-7.0":
        assert host.create_snapshot(vm, "q", quiesce=True).quiesced
        return
    with pytest.raises(vim.fault.SnapshotFault):
        host.create_snapshot(vm, "q", quiesce=True)
    assert host.trace.of_kind("quiesce.engage")[-1].details["error"] == "No file systems to freeze"
    host2, vm2 = _linux_fat(profile, excludedFileSystems="/var/w?w")
    assert host2.create_snapshot(vm2, "q", quiesce=True).quiesced
