"""The script interpreter: what a guest script does is read from its text."""

from __future__ import annotations

import pytest

from vcbsim.simulator.tools import MemoryGuestFiles, parse_script, run_script


@pytest.fixture
def win() -> MemoryGuestFiles:
    f = MemoryGuestFiles("windows")
    f.mkdir("C:\\logs")
    return f


@pytest.fixture
def lin() -> MemoryGuestFiles:
    f = MemoryGuestFiles("linux")
    f.mkdir("/var/log", parents=True)
    return f


def test_no_exit_means_zero_and_unknown_lines_are_ignored(win: MemoryGuestFiles) -> None:
    text = "@echo off\nREM stop the database\nnet stop MSSQLSERVER\nif errorlevel 1 goto end\n"
    out = run_script(text, ["freeze"], win)
    assert out.exit_code == 0 and out.duration == 0.0 and out.writes == ()


@pytest.mark.parametrize(
    ("text", "code"),
    [("exit 3", 3), ("EXIT /B 7", 7), ("exit", 0), ("sleep 1\nexit 4\nexit 5", 4), ("@exit 2", 2)],
)
def test_exit(win: MemoryGuestFiles, text: str, code: int) -> None:
    assert run_script(text, ["freeze"], win).exit_code == code


def test_linux_exit_status_is_modulo_256(lin: MemoryGuestFiles) -> None:
    assert run_script("exit -1", ["freeze"], lin).exit_code == 255
    assert run_script("exit 256", ["freeze"], lin).exit_code == 0


def test_tags_limit_a_line_to_one_argument(win: MemoryGuestFiles) -> None:
    text = "[freeze] exit 3\n[thaw] sleep 5\n[thaw,freezeFail] echo undo >> C:\\logs\\q.log\n"
    assert run_script(text, ["freeze"], win).exit_code == 3
    thaw = run_script(text, ["thaw"], win)
    assert (thaw.exit_code, thaw.duration) == (0, 5.0)
    fail = run_script(text, ["freezeFail"], win)
    assert fail.exit_code == 0 and fail.duration == 0.0
    assert win.read_bytes("C:\\logs\\q.log") == b"undo\r\nundo\r\n"
    # exact, case-sensitive comparison (R23, Q1)
    assert run_script("[freezefail] exit 9", ["freezeFail"], win).exit_code == 0


def test_sleep_and_timeout_idiom_add_virtual_seconds(win: MemoryGuestFiles) -> None:
    out = run_script("sleep 20\ntimeout /t 5 /nobreak\nsleep 0.5", ["freeze"], win)
    assert out.duration == 25.5


def test_echo_appends_replaces_and_expands_arguments(lin: MemoryGuestFiles) -> None:
    run_script('echo "phase $1 arg $2" >> /var/log/q.log', ["freeze", "nightly"], lin)
    run_script("echo $1 >> /var/log/q.log", ["thaw"], lin)
    assert lin.read_bytes("/var/log/q.log") == b"phase freeze arg nightly\nthaw\n"
    run_script("echo only > /var/log/q.log", ["thaw"], lin)
    assert lin.read_bytes("/var/log/q.log") == b"only\n"


def test_windows_echo_without_spaces_and_quoted_path(win: MemoryGuestFiles) -> None:
    win.mkdir("C:\\Program Files\\App", parents=True)
    run_script('echo %1>>"C:\\Program Files\\App\\x.log"', ["freeze"], win)
    assert win.read_bytes("c:\\program files\\app\\X.LOG") == b"freeze\r\n"


def test_a_failed_write_does_not_stop_the_script(win: MemoryGuestFiles) -> None:
    out = run_script("echo x >> C:\\missing\\f.txt\nexit 4", ["freeze"], win)
    assert out.exit_code == 4 and out.writes == () and len(out.errors) == 1


def test_budget_kills_the_script_and_keeps_only_earlier_writes(win: MemoryGuestFiles) -> None:
    text = "echo a >> C:\\logs\\k.log\nsleep 100\necho b >> C:\\logs\\k.log\nexit 0"
    out = run_script(text, ["freeze"], win, budget=30.0)
    assert out.killed and out.exit_code is None and out.duration == 30.0
    assert win.read_bytes("C:\\logs\\k.log") == b"a\r\n"


def test_parse_keeps_only_understood_statements() -> None:
    s = parse_script(b"@echo off\r\n[freeze] exit 3\r\nfoo bar\r\nsleep 2\r\n")
    assert [st.kind for st in s.statements] == ["exit", "sleep"]
    assert s.statements[0].tags == ("freeze",)
    assert [st.kind for st in s.effective("freeze")] == ["exit"]
    assert [st.kind for st in s.effective("thaw")] == ["sleep"]
