"""The proxy verbs' polish (issue 15): help that describes each verb and option, readable
times, the state directory's default, and the serve banner and logs that never show the
password."""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from vcbsim.reference._cli import main as proxy_main
from vcbsim.reference._cli import show_time

VERBS = ("mount", "unmount", "backup", "restore", "jobs")


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = proxy_main(list(args))
    return code, out.getvalue(), err.getvalue()


def _verb_parsers() -> dict[str, argparse.ArgumentParser]:
    from vcbsim.reference._cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("verb", VERBS)
def test_each_verb_help_describes_the_verb_and_every_option(verb: str) -> None:
    parser = _verb_parsers()[verb]
    assert parser.description and len(parser.description) > 40, f"{verb} --help has no description"
    missing = [a.dest for a in parser._actions if not a.help]
    assert missing == [], f"{verb}: options without help: {missing}"
    done = subprocess.run([sys.executable, "-m", "vcbsim", verb, "--help"], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "PYTHONSAFEPATH": "1"})
    assert done.returncode == 0 and parser.description.split()[0] in done.stdout, done.stderr


def test_show_time_is_utc_and_readable() -> None:
    assert show_time(1216944002.0) == "2008-07-25 00:00:02 UTC"
    assert show_time(1216944063.0007324) == "2008-07-25 00:01:03.001 UTC"
    assert show_time(None) == "-"


def test_restore_list_and_jobs_print_dates_not_epoch_floats(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    code, _out, err = _run("backup", "--state", state, "-a", "name:rhel5-web", "--no-progress")
    assert code == 0, err
    code, out, _ = _run("restore", "--state", state, "--list")
    assert re.search(r"snapshot taken \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", out), out
    assert not re.search(r"\b1\d{9}\.\d", out), out
    assert _run("jobs", "--state", state, "add", "n1", "-a", "name:rhel5-web", "--at", "+60")[0] == 0
    code, out, _ = _run("jobs", "--state", state, "list")
    assert re.search(r"at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3})? UTC", out) and not re.search(r"\b1\d{9}\.\d", out)
    code, out, err = _run("jobs", "--state", state, "run", "--until", "+120", "--no-progress")
    assert code == 0, err
    assert re.search(r"n1 @ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3})? UTC: rhel5-web: ok", out), out
    code, out, _ = _run("restore", "--state", state, "--list", "--json")
    assert '"snapshot_time": 1' in out  # the JSON keeps seconds for scripts


def test_the_state_directory_default_is_env_then_cwd_and_ignored_by_git(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from vcbsim.reference._cli import build_parser

    monkeypatch.delenv("VCBSIM_STATE", raising=False)
    assert build_parser().parse_args(["restore", "--list"]).state == "vcbsim-state"
    monkeypatch.setenv("VCBSIM_STATE", str(tmp_path / "elsewhere"))
    assert build_parser().parse_args(["restore", "--list"]).state == str(tmp_path / "elsewhere")
    gitignore = (Path(__file__).resolve().parents[3] / ".gitignore").read_text()
    assert "/vcbsim-state/" in gitignore.splitlines()


def test_the_server_logs_never_show_the_password(caplog: pytest.LogCaptureFixture) -> None:
    """Debug logging of every request and the banner lines: the password appears in none."""
    from pyVim.connect import Disconnect, SmartConnect

    from vcbsim.simulator import Host
    from vcbsim.simulator.soap import serve
    from vcbsim.simulator.soap._cli import connect_help

    secret = "Zq9-secret-pw"
    caplog.set_level(logging.DEBUG)
    with serve(Host.demo(), http=True, password=secret) as running:
        si = SmartConnect(protocol="http", host=running.host, port=running.port, user="user", pwd=secret)
        assert si.content.about.apiType == "HostAgent"
        Disconnect(si)
        banner = "\n".join(connect_help(running.url, "user", "from $VCBSIM_PASSWORD"))
    assert caplog.records, "nothing was logged: the check would prove nothing"
    assert secret not in caplog.text and secret not in banner
