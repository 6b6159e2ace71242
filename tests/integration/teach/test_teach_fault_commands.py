"""The REPL's one-command faults and its errors, as issue 15 found them: a rule per VM, the
value echoed back, unknown arguments refused, counts kept, errors in the learner's terms, a
failing ``-c`` command is a failing exit status, and tab completion adds a space."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from vcbsim._repl import Interpreter, completion_text


def test_vss_is_armed_for_the_named_vm_only(repl: Interpreter) -> None:
    out = repl.execute("fault vss rhel5-web")
    assert "armed vss on rhel5-web" in out and "target=rhel5-web" in out
    repl.execute("backup win2003-sql image")
    assert "backup finished: ok" in repl.execute("run"), "the fault armed on rhel5-web hit win2003-sql"
    repl.execute("backup rhel5-web image")
    assert "backup FAILED at WF-1 (caused in WF-1b)" in repl.execute("run")


def test_the_echo_says_the_value_given(repl: Interpreter) -> None:
    out = repl.execute("fault slow-snapshot win2003-sql 30")
    assert "takes 30 s" in out and "SECONDS" not in out and "default" not in out
    out = repl.execute("fault prefreeze win2003-sql 7")
    assert "20-app-pause.bat (the last pre-freeze script of win2003-sql) exits 7" in out
    assert "delay=30.0" in repl.execute("fault list")


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("fault crash win2003-sql nowhere", "POINT: expected one of before-snapshot, after-snapshot"),
        ("fault prefreeze win2003-sql x", "CODE: expected an exit code 1..255"),
        ("fault prefreeze win2003-sql 0", "CODE: expected an exit code 1..255"),
        ("fault slow-snapshot win2003-sql -4", "SECONDS: expected virtual seconds above 0"),
        ("fault slow-snapshot win2003-sql nan", "SECONDS: expected virtual seconds above 0"),
        ("fault remove win2003-sql NoSuchFault", "FAULT: expected a vSphere fault name"),
        ("fault vss", "which VM?"),
        ("fault nosuch win2003-sql", "no fault 'nosuch'"),
        ("fault crash win2003-sql after-copy extra", "at most one argument"),
    ],
)
def test_bad_fault_arguments_are_refused_and_nothing_is_armed(repl: Interpreter, line: str, says: str) -> None:
    out = repl.execute(line)
    assert says in out and repl.failed
    assert repl.session.host.faults.rules == []
    assert "invalid literal" not in out and "FaultRule" not in out


def test_every_crash_point_the_proxy_has_is_accepted(repl: Interpreter) -> None:
    from vcbsim._teach_core import crash_points

    for point in crash_points():
        assert "armed crash" in repl.execute(f"fault crash win2003-sql {point}"), point
        repl.execute("fault clear")


def test_arming_one_rule_keeps_the_others_counts(repl: Interpreter) -> None:
    repl.execute("fault prefreeze win2003-sql 3")
    repl.execute("backup win2003-sql file")
    assert "ApplicationQuiesceFault" in repl.execute("run")
    assert "prefreeze win2003-sql:" in repl.execute("fault list") and "(fired 1x)" in repl.execute("fault list")
    repl.execute("fault prefreeze rhel5-web 4")
    listing = repl.execute("fault list")
    assert re.search(r"prefreeze win2003-sql: .*\(fired 1x\)", listing.replace("\n", " ")), listing
    assert re.search(r"prefreeze rhel5-web: .*\(fired 0x\)", listing), listing
    assert "already armed" in repl.execute("fault prefreeze win2003-sql 5")


def test_errors_name_no_python_classes_and_no_internal_paths(repl: Interpreter) -> None:
    outputs = [
        repl.execute(r"cat win2003-sql D:\nope.txt"),
        repl.execute(r"ls win2003-sql Q:\\"),
        repl.execute("rm rhel5-web /nope"),
        repl.execute("cat rhel5-web /etc"),
        repl.execute("unsnapshot win2003-sql nosnap"),
        repl.execute("scripts nosuch"),
        repl.execute("script show win2003-sql 99-none.bat"),
    ]
    text = "\n".join(outputs)
    assert not re.search(r"\b\w+Error\b", text), text
    assert "'/nope.txt'" not in text and r"D:\nope.txt" in text
    assert "has no drive Q:; its drives: C:, D:" in text
    assert "/etc on rhel5-web is a folder" in text


def _repl_c(*commands: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "vcbsim", "repl"]
    for c in commands:
        args += ["-c", c]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONSAFEPATH": "1"})


def test_a_failing_command_line_command_exits_non_zero() -> None:
    bad = _repl_c("vms", "backup nosuch")
    assert bad.returncode == 1 and "no VM named 'nosuch'" in bad.stdout
    good = _repl_c("vms", "fault list")
    assert good.returncode == 0, good.stdout + good.stderr


def test_tab_completion_inserts_a_space_after_a_word_not_after_a_folder(repl: Interpreter) -> None:
    assert completion_text("backup") == "backup "
    assert completion_text("D:\\Data\\") == "D:\\Data\\"
    assert completion_text("/var/www/") == "/var/www/"
    assert [completion_text(c) for c in repl.complete("ba")] == ["backup "]
    # the terminal front end inserts these texts: test_teach_repl_pexpect types 'bac' TAB 'win'
