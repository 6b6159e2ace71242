"""The REPL's pre-backup steps happen when they are shown (issue 15): 1a … 1e each executed by
its ``step``, a write during 1c held by the frozen guest, a snapshot removed after 1e missing
for 1f, and ``status`` saying what comes next."""

from __future__ import annotations

import threading

from vcbsim._repl import Interpreter

WIN = "win2003-sql"


def _snapshots(repl: Interpreter) -> list[str]:
    return [s.name for s in repl.session.host.find_vm(f"name:{WIN}").snapshots()]


def _steps(repl: Interpreter, n: int) -> list[str]:
    return [repl.execute("step") for _ in range(n)]


def test_each_step_happens_when_it_is_shown(repl: Interpreter) -> None:
    vm = repl.session.host.find_vm(f"name:{WIN}")
    repl.execute(f"backup {WIN} image")
    assert _snapshots(repl) == [] and vm.tools.phase == "IDLE", "something ran before the first step"
    (a,) = _steps(repl, 1)
    assert a.startswith("WF-1a")
    assert _snapshots(repl) == [] and not vm.tools.frozen and vm.tools.phase == "SCRIPT_FREEZE"
    assert "_VCB-BACKUP_" not in repl.execute(f"tree {WIN}")
    (b,) = _steps(repl, 1)
    assert b.startswith("WF-1b") and vm.tools.frozen and _snapshots(repl) == []
    (c,) = _steps(repl, 1)
    assert c.startswith("WF-1c") and vm.tools.frozen and _snapshots(repl) == ["_VCB-BACKUP_"]
    (d,) = _steps(repl, 1)
    assert d.startswith("WF-1d") and not vm.tools.frozen and vm.tools.phase == "SYNC_THAW"
    # the thaw scripts have not run yet: their log lines are not in the guest
    log = repl.session.host.guest_fs(vm).read_bytes(r"C:\vcb-quiesce.log").decode()
    assert "thaw" not in log
    (e,) = _steps(repl, 1)
    assert e.startswith("WF-1e")
    assert "thaw" in repl.session.host.guest_fs(vm).read_bytes(r"C:\vcb-quiesce.log").decode()
    assert "backup finished: ok" in repl.execute("run")


def test_a_write_while_frozen_is_held_and_lands_after_the_thaw(repl: Interpreter) -> None:
    repl.execute(f"backup {WIN} file")
    _steps(repl, 3)  # paused after WF-1c: frozen, snapshot taken
    out = repl.execute(rf'write {WIN} D:\Data\during.txt "written while frozen"')
    assert "holds this write" in out and not repl.failed
    assert r"held until the guest thaws: 20 bytes to D:\Data\during.txt" in repl.execute("status")
    vm = repl.session.host.find_vm(f"name:{WIN}")
    assert not vm.guest.exists(r"D:\Data\during.txt"), "the write went through while frozen"
    (d,) = _steps(repl, 1)
    assert r"the write held while win2003-sql was frozen landed: 20 bytes to D:\Data\during.txt" in d
    snap = vm.snapshots()[0]
    assert vm.guest.read_bytes(r"D:\Data\during.txt") == b"written while frozen"
    assert not repl.session.host.guest_fs_at(vm, snap).exists(r"D:\Data\during.txt"), "the snapshot has it"
    out = repl.execute("run")
    assert "backup finished: ok" in out
    entries = repl.session.catalog.entries(repl.session.backup.result.backup_id)
    assert any("orders.csv" in path for path in entries), entries
    assert not any("during.txt" in path for path in entries), "the backup has a write made after the snapshot"


def test_the_busy_vm_refuses_removal_and_the_backup_goes_on(repl: Interpreter) -> None:
    repl.execute(f"backup {WIN} image")
    _steps(repl, 3)
    assert "TaskInProgress" in repl.execute(f"unsnapshot {WIN} _VCB-BACKUP_")
    assert _snapshots(repl) == ["_VCB-BACKUP_"]
    assert "backup finished: ok" in repl.execute("run")
    assert _snapshots(repl) == []


def test_a_snapshot_removed_after_1e_is_missing_for_1f(repl: Interpreter) -> None:
    repl.execute(f"backup {WIN} image")
    _steps(repl, 5)
    assert "snapshot _VCB-BACKUP_ removed" in repl.execute(f"unsnapshot {WIN} _VCB-BACKUP_")
    f = repl.execute("step")
    assert f.startswith("WF-1f") and "op.fail [WF-1f]" in f
    assert "nothing changed" not in f.lower()
    status = repl.execute("status")
    end = repl.execute("run")
    failed = next(line for line in end.splitlines() if line.startswith("backup FAILED"))
    assert failed == "backup FAILED at WF-1f"  # the proxy's Python error is not named as a fault
    assert "done: WF-1a, WF-1b, WF-1c, WF-1d, WF-1e, WF-1f" in status
    assert "failed at WF-1f" in repl.execute("status")


def test_status_says_what_comes_next(repl: Interpreter) -> None:
    repl.execute(f"backup {WIN} file")
    assert "next: WF-1a, runs your custom pre-freeze scripts" in repl.execute("status")
    _steps(repl, 2)
    status = repl.execute("status")
    assert "next: WF-1c, puts the virtual machine into snapshot mode" in status
    assert "paused after WF-1b" in status


def test_reset_and_close_while_paused_do_not_hang(repl: Interpreter) -> None:
    repl.execute(f"backup {WIN} image")
    _steps(repl, 3)
    assert "rebuilt" in repl.execute("reset")
    assert _snapshots(repl) == []
    assert not [t for t in threading.enumerate() if t.name == "vcbsim-teach-proxy"]
    repl.execute(f"backup {WIN} image")
    _steps(repl, 2)
    repl.close()
    assert not [t for t in threading.enumerate() if t.name == "vcbsim-teach-proxy"]


def test_a_hand_made_quiesced_snapshot_is_not_paused(repl: Interpreter) -> None:
    out = repl.execute(f"snapshot {WIN} by-hand")
    assert "created quiesced" in out and not repl.failed
