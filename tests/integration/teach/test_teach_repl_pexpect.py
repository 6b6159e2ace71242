"""``vcbsim repl`` driven like a learner: through a terminal (prompt_toolkit) and through a pipe."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

pexpect = pytest.importorskip("pexpect")

REPO = Path(__file__).resolve().parents[3]
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\r")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)

STEPS = ("WF-1a", "WF-1b", "WF-1c", "WF-1d", "WF-1e", "WF-1f", "WF-2", "WF-3a", "WF-3b")


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HOME=str(tmp_path), PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", COLUMNS="160", LINES="50")
    env.pop("NO_COLOR", None)
    return env


def _command(child: Any, line: str, until: str) -> str:
    """Send one line, wait for ``until`` (a regex of its output) and the next prompt, and
    return the output. Waiting for the output first matters: prompt_toolkit redraws the
    prompt while the line is typed."""
    child.sendline(line)
    child.expect(until)
    out = child.before + child.after
    child.expect(r"vcbsim> ?")
    return strip_ansi(out + child.before)


STEP_END = r"next: WF-\S+ \('step'\)|left behind: [^\r\n]*"


def _freeze_fail_order(text: str) -> list[str]:
    return re.findall(r"([\w-]+\.bat)\s+freezeFail\s+0", text)


def test_repl_in_a_terminal_steps_through_a_backup_and_a_failure(tmp_path: Path) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "vcbsim", "repl", "--workdir", str(tmp_path / "work")],
        cwd=str(REPO),
        env=_env(tmp_path),
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 160),
    )
    try:
        child.expect("Type 'help'")
        child.expect(r"vcbsim> ?")
        assert "win2003-sql" in _command(child, "vms", "rhel5-web")
        # tab completion: 'bac' + TAB completes the command and adds a space, 'win' + TAB the VM
        child.send("bac\t")
        child.expect("backup")
        child.send("win\t")
        child.expect("win2003-sql")
        out = _command(child, "file", "prepared")
        assert "prepared (file-level, full)" in out
        seen: list[str] = []
        outputs: dict[str, str] = {}
        for _ in range(len(STEPS)):
            out = _command(child, "step", STEP_END)
            m = re.search(r"^(WF-[0-9][a-f]?)\s", out, re.M)
            assert m, out
            seen.append(m.group(1))
            outputs[m.group(1)] = out
        assert seen == list(STEPS)
        assert "quiesce: SYNC_FREEZE (guest frozen)" in outputs["WF-1b"]
        assert "_VCB-BACKUP_ (snapshot-1, quiesced)" in outputs["WF-1c"]
        assert "mounted <proxy>/win2003-sql/letters/D" in outputs["WF-1f"]
        assert "[WF-2]" in outputs["WF-2"]
        assert "backup finished: ok" in outputs["WF-3b"]
        assert "left behind: snapshots none; mounts none" in outputs["WF-3b"]

        # a failing pre-freeze script: freezeFail for the scripts that froze, descending
        out = _command(child, 'script add win2003-sql 30-mine.bat "[freeze] exit 3"', "added")
        assert "30-mine.bat" in out
        _command(child, "backup win2003-sql image", "prepared")
        out = _command(child, "step", STEP_END)
        assert re.search(r"30-mine\.bat\s+freeze\s+3", out)
        out = _command(child, "step", STEP_END)
        assert "not reached on this path: WF-1b, WF-1c, WF-1d" in out
        assert _freeze_fail_order(out) == ["20-app-pause.bat", "10-sql-flush.bat"]
        assert "backup FAILED at WF-1 (caused in WF-1a): ApplicationQuiesceFault" in out
        assert "rebuilt" in _command(child, "reset", "rebuilt")
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    history = (tmp_path / ".vcbsim_history").read_text(encoding="utf-8")
    assert "+backup win2003-sql file\n" in history and "+step\n" in history


@pytest.mark.filterwarnings("ignore:setDaemon:DeprecationWarning")
def test_repl_through_a_pipe_uses_plain_lines(tmp_path: Path) -> None:
    from pexpect.popen_spawn import PopenSpawn

    child = PopenSpawn(
        [sys.executable, "-m", "vcbsim", "repl", "--workdir", str(tmp_path / "work")],
        cwd=str(REPO),
        env=_env(tmp_path),
        encoding="utf-8",
        timeout=60,
    )
    child.expect("vcbsim> ")
    child.sendline("fault prefreeze win2003-sql 5")
    child.expect("armed prefreeze")
    child.expect("vcbsim> ")
    child.sendline("backup win2003-sql file")
    child.expect("vcbsim> ")
    child.sendline("run")
    child.expect("left behind: snapshots none; mounts none")
    out = child.before
    assert "\x1b[" not in out  # no colours into a pipe
    assert re.search(r"20-app-pause\.bat\s+freeze\s+5", out)
    assert _freeze_fail_order(out) == ["10-sql-flush.bat"]
    child.expect("vcbsim> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    assert child.wait() == 0
