"""The REPL's command interpreter, without a terminal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vcbsim._repl import Interpreter, split_line
from vcbsim._teach_core import DOC_STEPS, TeachSession

SCRIPTS_D = r"C:\Program Files\VMware\VMware Tools\backupScripts.d"


def headings(out: str) -> list[str]:
    """The documented steps a command's output shows, in order."""
    return re.findall(r"^(WF-[0-9][a-f]?)\s", out, re.M)


def script_rows(out: str, arg: str) -> list[tuple[str, int]]:
    """``(script file name, exit code)`` of the 'scripts run' rows with argument ``arg``."""
    rows = []
    for m in re.finditer(rf"^\d+\s+(\S.*?)\s+{arg}\s+(-?\d+)\s*$", out, re.M):
        rows.append((m.group(1).rsplit("\\", 1)[-1], int(m.group(2))))
    return rows


def step_all(repl: Interpreter) -> list[str]:
    outs = []
    for _ in range(20):
        out = repl.execute("step")
        outs.append(out)
        if "backup finished" in out or "backup FAILED" in out:
            return outs
    raise AssertionError("the backup did not end within 20 steps")


def test_help_lists_every_command(repl: Interpreter) -> None:
    out = repl.execute("help")
    for name in ("vms", "script", "backup", "step", "fault", "reset", "trace", "mounts", "chains", "tree"):
        assert re.search(rf"^{name}\b", out, re.M), name
    assert "usage: backup" not in out
    assert "prepare a backup" in repl.execute("help backup")


def test_vms_lists_the_demo_inventory(repl: Interpreter) -> None:
    out = repl.execute("vms")
    assert "win2003-sql" in out and "rhel5-web" in out and "192.0.2.11" in out


def test_a_file_level_backup_goes_through_every_documented_step_in_order(repl: Interpreter) -> None:
    assert "prepared" in repl.execute("backup win2003-sql file")
    outs = step_all(repl)
    shown = [h for out in outs for h in headings(out)]
    assert shown == list(DOC_STEPS)
    by_step = dict(zip(shown, outs, strict=True))
    # 1a: the freeze scripts, ascending, with 'freeze' and their exit codes
    # (ESX 3.5 U2, a VSS guest: backupScripts.d alone, KB 1006671; the legacy pair is not run)
    assert script_rows(by_step["WF-1a"], "freeze") == [
        ("10-sql-flush.bat", 0),
        ("20-app-pause.bat", 0),
    ]
    assert "quiesce: SCRIPT_FREEZE" in by_step["WF-1a"]
    assert "quiesce: SYNC_FREEZE (guest frozen)" in by_step["WF-1b"]
    # 1c: the snapshot and one redo log per disk
    assert "snapshot _VCB-BACKUP_ (snapshot-1) created quiesced" in by_step["WF-1c"]
    assert "new redo log win2003-sql-000001.vmdk" in by_step["WF-1c"]
    assert "new redo log win2003-sql_1-000001.vmdk" in by_step["WF-1c"]
    assert "[WF-1c]" in by_step["WF-1c"]  # the trace line names its seed step
    # 1e: thaw scripts, descending
    assert [s for s, _ in script_rows(by_step["WF-1e"], "thaw")] == [
        "20-app-pause.bat",
        "10-sql-flush.bat",
    ]
    assert "mounted <proxy>/win2003-sql/letters/C" in by_step["WF-1f"]
    assert "mounted <proxy>/win2003-sql/letters/D" in by_step["WF-1f"]
    assert "no drive letter" in by_step["WF-1f"]  # RECOVERY is not mounted
    assert "unmounted <proxy>/win2003-sql/letters/D" in by_step["WF-3a"]
    assert "_VCB-BACKUP_ (snapshot-1) removed" in by_step["WF-3b"]
    assert "merged away (committed)" in by_step["WF-3b"]
    assert "backup finished: ok" in by_step["WF-3b"]
    assert "left behind: snapshots none; mounts none" in by_step["WF-3b"]
    assert "the backup is over" in repl.execute("step")


def test_a_write_during_the_backup_goes_to_the_redo_log_and_is_committed(repl: Interpreter) -> None:
    repl.execute("backup win2003-sql file")
    for _ in range(6):  # 1a-1f
        repl.execute("step")
    out = repl.execute(r'write win2003-sql D:\Data\new.txt "written during the backup"')
    assert "wrote 25 bytes" in out
    assert re.search(r"Hard disk 2: win2003-sql_1-000001\.vmdk 0 B -> \d+ KiB", out)
    repl.execute("run")
    session = repl.session
    catalog = session.catalog
    backup_id = session.backup.result.backup_id  # type: ignore[union-attr]
    assert not any("new.txt" in p for p in catalog.copied_paths(backup_id))
    assert repl.execute(r"cat win2003-sql D:\Data\new.txt") == "written during the backup"


def test_an_image_backup_of_the_linux_guest(repl: Interpreter) -> None:
    repl.execute("backup rhel5-web image")
    out = "\n".join(step_all(repl))
    assert "mounted <proxy>/rhel5-web-fullVM" in out
    assert "disk.export" in out
    assert "/usr/sbin/pre-freeze-script" in out
    assert "backup finished: ok" in out


def test_a_failing_pre_freeze_script_gets_freeze_fail_in_descending_order(repl: Interpreter) -> None:
    out = repl.execute('script add win2003-sql 30-mine.bat "@echo off" "[freeze] exit 3"')
    assert SCRIPTS_D + r"\30-mine.bat" in out
    assert repl.execute("script show win2003-sql 30-mine.bat") == "@echo off\n[freeze] exit 3"
    assert "[freeze] exit 3" in repl.execute("scripts win2003-sql")
    repl.execute("backup win2003-sql image")
    first = repl.execute("step")
    assert headings(first) == ["WF-1a"]
    assert script_rows(first, "freeze")[-1] == ("30-mine.bat", 3)
    second = repl.execute("step")
    assert headings(second) == ["WF-1e"]
    assert "not reached on this path: WF-1b, WF-1c, WF-1d" in second
    assert script_rows(second, "freezeFail") == [
        ("20-app-pause.bat", 0),
        ("10-sql-flush.bat", 0),
    ]
    assert "backup FAILED at WF-1 (caused in WF-1a): ApplicationQuiesceFault" in second
    assert "left behind: snapshots none; mounts none" in second
    assert "removed" in repl.execute("script rm win2003-sql 30-mine.bat")
    assert "30-mine" not in repl.execute("scripts win2003-sql")


def test_fault_prefreeze_in_one_command(repl: Interpreter) -> None:
    out = repl.execute("fault prefreeze win2003-sql 7")
    assert "armed prefreeze" in out and "20-app-pause.bat" in out
    assert "prefreeze win2003-sql: script on" in repl.execute("fault list")
    repl.execute("backup win2003-sql file")
    out = repl.execute("run")
    assert script_rows(out, "freeze")[-1] == ("20-app-pause.bat", 7)
    assert [s for s, _ in script_rows(out, "freezeFail")] == ["10-sql-flush.bat"]
    assert "ApplicationQuiesceFault" in out
    assert "(fired 1x)" in repl.execute("fault list")


def test_fault_slow_snapshot_makes_vss_give_up(repl: Interpreter) -> None:
    repl.execute("fault slow-snapshot win2003-sql 120")
    repl.execute("backup win2003-sql image")
    out = repl.execute("run")
    assert "WF-1c" in out and "snapshot.rollback" in out
    assert [s for s, _ in script_rows(out, "freezeFail")] == [
        "20-app-pause.bat",
        "10-sql-flush.bat",
    ]
    assert "backup FAILED at WF-1 (caused in WF-1d): FilesystemQuiesceFault" in out
    assert "snapshots none" in out


def test_fault_vss_fails_before_the_snapshot(repl: Interpreter) -> None:
    repl.execute("fault vss win2003-sql")
    repl.execute("backup win2003-sql image")
    out = repl.execute("run")
    assert "not reached on this path: WF-1c, WF-1d" in out
    assert "backup FAILED at WF-1 (caused in WF-1b)" in out
    assert "snapshot.create [WF-1c]" not in out
    assert "all faults cleared" in repl.execute("fault clear")
    assert "no faults armed" in repl.execute("fault list")


def test_reset_rebuilds_the_host(repl: Interpreter) -> None:
    repl.execute('script add win2003-sql 30-mine.bat "[freeze] exit 3"')
    repl.execute("fault slow-snapshot win2003-sql")
    repl.execute("backup win2003-sql file")
    repl.execute("step")
    assert "rebuilt" in repl.execute("reset")
    assert "30-mine" not in repl.execute("scripts win2003-sql")
    assert "no faults armed" in repl.execute("fault list")
    assert "no backup yet" in repl.execute("status")
    assert repl.session.host.trace.events[-1].kind != "op.invoke"
    repl.execute("backup win2003-sql image")
    assert "backup finished: ok" in repl.execute("run")


def test_hand_made_snapshots_show_in_the_tree_and_chains(repl: Interpreter) -> None:
    out = repl.execute("snapshot rhel5-web before-upgrade noquiesce")
    assert "snapshot before-upgrade (snapshot-1) created" in out and "quiesced" not in out
    tree = repl.execute("tree rhel5-web")
    assert "before-upgrade (snapshot-1)" in tree and "You are here" in tree
    assert "rhel5-web-000001.vmdk (writable)" in repl.execute("chains rhel5-web")
    assert "merged away" in repl.execute("unsnapshot rhel5-web before-upgrade")
    assert "before-upgrade" not in repl.execute("tree rhel5-web")


def test_status_trace_and_mounts(repl: Interpreter) -> None:
    repl.execute("backup win2003-sql file")
    for _ in range(6):
        repl.execute("step")
    assert "done: WF-1a, WF-1b, WF-1c, WF-1d, WF-1e, WF-1f" in repl.execute("status")
    assert "<proxy>/win2003-sql/letters/C" in repl.execute("mounts")
    lines = repl.execute("trace 3").splitlines()
    assert len(lines) == 3 and "[WF-1f]" in lines[-1]
    assert "a backup of win2003-sql is in progress" in repl.execute("backup rhel5-web")
    repl.execute("run")
    assert "nothing is mounted" in repl.execute("mounts")


def test_errors_are_reported_and_change_nothing(repl: Interpreter) -> None:
    assert "unknown command 'bakup'" in repl.execute("bakup win2003-sql")
    assert repl.execute("step").startswith("usage: step\nno backup in progress")
    assert repl.execute("backup no-such-vm") == "error: no VM named 'no-such-vm'; known: 'win2003-sql', 'rhel5-web'"
    assert repl.failed
    assert "usage: backup" in repl.execute("backup")
    assert "expected image or file" in repl.execute("backup win2003-sql tape")
    assert "Windows guest" in repl.execute("backup rhel5-web file")
    assert repl.execute(r"cat win2003-sql C:\nothing.txt") == (
        "error: win2003-sql has no C:\\nothing.txt; 'ls win2003-sql C:\\' lists what is there"
    )
    assert "quote" in repl.execute('write win2003-sql C:\\x.txt "unterminated')
    assert repl.execute("") == "" and not repl.failed
    assert repl.session.host.find_vm("win2003-sql").snapshots() == []
    repl.execute("quit")
    assert repl.done


def test_completion_of_commands_vms_words_and_paths(repl: Interpreter) -> None:
    assert repl.complete("ba") == ["backup"]
    assert repl.complete("backup w") == ["win2003-sql"]
    assert repl.complete("backup win2003-sql f") == ["file"]
    assert repl.complete("fault p") == ["prefreeze"]
    assert repl.complete("ls win2003-sql ") == ["C:\\", "D:\\"]
    assert repl.complete("ls win2003-sql D:\\Da") == ["D:\\Data\\"]
    assert "D:\\Data\\orders.csv" in repl.complete("cat win2003-sql D:\\Data\\")
    assert repl.complete("cat rhel5-web /var/www/in") == ["/var/www/index.html"]
    assert repl.complete("script rm win2003-sql 1") == ["10-sql-flush.bat"]


def test_split_line_keeps_windows_paths() -> None:
    assert split_line(r'write vm D:\Data\new.txt "two words"') == ["write", "vm", r"D:\Data\new.txt", "two words"]


def test_calling_the_interpreter_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    interp = Interpreter(TeachSession(tmp_path / "w"), width=80)
    try:
        interp("vms")
    finally:
        interp.close()
    assert "win2003-sql" in capsys.readouterr().out
    assert not (tmp_path / "w" / "proxy").exists() or not any((tmp_path / "w" / "proxy").iterdir())


def test_a_proxy_crash_leaves_the_snapshot_and_the_next_run_cleans_up(repl: Interpreter) -> None:
    assert "armed crash" in repl.execute("fault crash win2003-sql after-expose")
    repl.execute("backup win2003-sql file")
    outs = [repl.execute("step") for _ in range(7)]
    assert "the proxy crashed at" in outs[-1]
    status = repl.execute("status")
    assert "the run died: the proxy crashed at proxy.after-expose (injected)" in status
    state = repl.execute("state win2003-sql")
    assert "_VCB-BACKUP_ (snapshot-1, quiesced)" in state and "<proxy>/win2003-sql/letters/C" in state
    repl.execute("backup win2003-sql file")
    out = repl.execute("run")
    assert "op=cleanup-unmount" in out and "op=cleanup-snapshot" in out
    assert "backup finished: ok" in out and "left behind: snapshots none; mounts none" in out
