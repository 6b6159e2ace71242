"""No traceback for any input or signal (issue 15): every verb, given bad input, says what was
expected in one line and exits non-zero; SIGINT during ``serve``, ``conform``, ``demo`` and
``backup`` ends the command cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT = 300


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VCBSIM_DEBUG", "VCBSIM_PASSWORD", "VCBSIM_STATE")}
    env.update(PYTHONSAFEPATH="1", PYTHONUNBUFFERED="1", COLUMNS="120")
    return env


def _vcbsim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vcbsim", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=TIMEOUT, check=False, stdin=subprocess.DEVNULL)


#: (arguments, a phrase of the one-line answer); ``{tmp}`` is the test's folder, ``{file}`` a file in it
BAD_INPUTS: list[tuple[tuple[str, ...], str]] = [
    (("nosuchverb",), "invalid choice"),
    (("demo", "--width", "5"), "expected a number of columns from 40"),
    (("demo", "--out", "{file}"), "--out"),
    (("repl", "--width", "x"), "expected a number of columns"),
    (("repl", "-c", "backup nosuch"), "no VM named 'nosuch'"),
    (("inventory", "--width", "0"), "expected a number of columns"),
    (("mount", "-a", "name:nosuchvm"), "-a name:nosuchvm: no VM with name 'nosuchvm'"),
    (("mount", "-a", "nosuchvm"), "expected '<kind>:<value>'"),
    (("unmount", "-r", "{tmp}/nothing"), "nothing mounted"),
    (("backup", "--state", "{file}", "-a", "name:rhel5-web"), "--state"),
    (("backup", "-a", "name:rhel5-web", "-t", "tape"), "invalid choice"),
    (("restore", "--backup", "abc"), "invalid int value"),
    (("restore", "--list", "--medium", "{file}"), "give another path"),
    (("jobs", "run", "--until", "yesterday"), "expected +SECONDS"),
    (("jobs", "remove", "nosuch"), "no job named 'nosuch'"),
    (("serve", "--port", "99999"), "expected a TCP port"),
    (("serve", "--inventory", "{file}"), "--inventory"),
    (("conform", "nosuchmodule:factory"), "nosuchmodule"),
    (("check-trace", "{file}"), "trace line 1"),
    (("verify-bundle", "{tmp}/nothing"), "expected a bundle directory"),
]


@pytest.mark.parametrize(("args", "says"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_gets_one_clear_line(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    (tmp_path / "a-file").write_text("not what the option wants\n")
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{file}", str(tmp_path / "a-file")) for a in args]
    done = _vcbsim(*argv, cwd=tmp_path)
    text = done.stdout + done.stderr
    assert "Traceback" not in text, text
    assert done.returncode != 0, text
    assert says in text, text


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vcbsim", *args], cwd=cwd, env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def _interrupt_after_first_line(proc: subprocess.Popen[str], stream: str = "stdout") -> tuple[str, str]:
    """SIGINT once the command has said something (it is working), then collect its output."""
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    first = pipe.readline()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=TIMEOUT)
    return (first + out, err) if stream == "stdout" else (out, first + err)


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--port", "0", "--http"],
        ["serve", "--port", "0", "--small", "--print-url"],
        ["conform", "--profile", "dev", "--seed", "3"],
        ["demo"],
        ["backup", "-a", "name:win2003-sql", "-a", "name:rhel5-web", "-L", "6", "--no-progress"],
    ],
    ids=["serve", "serve-print-url", "conform", "demo", "backup"],
)
def test_sigint_while_working_ends_cleanly(tmp_path: Path, args: list[str]) -> None:
    proc = _start(args, tmp_path)
    stream = "stderr" if args[0] == "backup" else "stdout"  # backup -L 6 writes its trace to stderr
    out, err = _interrupt_after_first_line(proc, stream)
    assert "Traceback" not in out + err, out + err
    # finished its work before the signal came (0), or stopped by it: one line and 130 (or 1, a
    # job reported failed), or ended by the signal itself (-SIGINT), as the shell's convention allows
    assert proc.returncode in (0, 1, 130, -signal.SIGINT), (proc.returncode, err)


def test_an_interrupt_anywhere_in_a_verb_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C at any moment of any verb (here: raised where the verb starts): one line, 130.

    (A SIGINT while the interpreter itself is still starting, before any vcbsim code runs, is
    Python's own business: ``Fatal Python error: init_import_site``.)"""
    from vcbsim import _cli

    def interrupted(argv: list[str]) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(_cli, "_resolve", lambda verb: interrupted)
    for verb in _cli.VERBS:
        assert _cli.main([verb]) == 130
        err = capsys.readouterr().err
        assert err == f"vcbsim {verb}: interrupted\n", err


def test_serve_interrupted_while_it_builds_the_host(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from vcbsim.simulator.soap import _cli as serve_cli

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(serve_cli, "_build_host", interrupted)
    assert serve_cli.main(["--port", "0"]) == 130
    assert capsys.readouterr().err == "vcbsim serve: interrupted before serving\n"


def test_an_unexpected_error_is_one_line_and_debug_shows_it(tmp_path: Path) -> None:
    """The last resort of the ``vcbsim`` command: a bug is one line, status 70."""
    code = ("import sys; from vcbsim import _cli; _cli.VERBS['boom'] = ('json', 'loads', 'test'); "
            "sys.exit(_cli.main(['boom', 'x']))")
    env = _env()
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert done.returncode == 70 and "Traceback" not in done.stderr, done.stderr
    assert "unexpected error" in done.stderr and "VCBSIM_DEBUG=1" in done.stderr
    env["VCBSIM_DEBUG"] = "1"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert "Traceback" in done.stderr
