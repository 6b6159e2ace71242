r"""The guest's own programs, as ``StartProgramInGuest`` finds and runs them.

Why: a product that drives a guest through VMware Tools does not only run its own scripts; it
starts the guest's shell and common tools (``/bin/sh -c "..."``, ``/bin/echo``,
``C:\Windows\System32\cmd.exe /c ...``) and reads their exit codes with
``ListProcessesInGuest``. On a real guest those files exist and run. The simulated guest's
file system holds only what was put on its volumes, so the system programs are modelled here,
per OS family, by their behaviour: what they do to the guest's files, how long they take in
virtual time and the exit status they end with (vSphere API reference,
``GuestProgramSpec`` and ``GuestProcessInfo.exitCode``).

What runs
=========

A program path is looked up as the guest would: an absolute path names the file (Windows:
case-insensitive, ``/`` or ``\``, ``.exe`` optional for a name on the ``PATH``); a bare name is
looked up on the ``PATH`` (``/bin``, ``/usr/bin``, ``/sbin``, ``/usr/sbin``;
``C:\Windows\System32``, ``C:\Windows``). A file that exists on the guest's volumes is run as
a script (``_script``'s language) before any system program of that name, as it would shadow
it. A path that is neither is not found (the caller answers ``FileNotFound``).

System programs (exit status as the real tool's):

* Linux: ``sh``, ``bash``, ``dash`` (``-c COMMANDS`` or a script file), ``echo``, ``true`` (0),
  ``false`` (1), ``sleep N``, ``mkdir [-p] DIR...``, ``rm [-f] [-r] PATH...``, ``touch FILE...``,
  ``cat FILE...`` (1 if one is missing), ``test`` / ``[`` with ``-e -f -d`` (0 or 1).
* Windows: ``cmd.exe`` (``/c COMMANDS``, ``/k`` as ``/c``; ``powershell.exe`` with
  ``-Command COMMANDS`` or ``-File SCRIPT`` is run the same way), with cmd's built-ins ``echo``,
  ``exit [/b] N``, ``mkdir``/``md``, ``del``/``erase``, ``rmdir``/``rd``, ``type``,
  ``timeout /t N``, ``rem``, ``ver``; ``whoami.exe`` and ``hostname.exe`` (0).

A command line (``sh -c``, ``cmd /c``) is split into commands at ``;`` / newlines (sh), ``&``
(cmd), ``&&`` and ``||`` (both), and run left to right with the shells' rules: ``&&`` runs the
next command only after a success, ``||`` only after a failure, ``exit N`` ends the line with
status ``N``; the line's status is the last command's. ``echo TEXT > FILE`` / ``>> FILE``
writes the file. A command that is not found ends with 127 (sh: "command not found") or 9009
(cmd: "is not recognized"). Anything more (pipes, variables, control flow) is outside the
model: such a command line is run command by command as written, and its status is that of
the last command.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from .._errors import VcbsimError
from ._files import GuestFiles
from ._script import ScriptOutcome, run_script

__all__ = ["find_program", "run_program"]

_LINUX_PATH = ("/bin", "/usr/bin", "/sbin", "/usr/sbin")
_WINDOWS_PATH = ("c:/windows/system32", "c:/windows", "c:/windows/system32/windowspowershell/v1.0")
_LINUX_SHELLS = {"sh", "bash", "dash"}
_LINUX_TOOLS = {"echo", "true", "false", "sleep", "mkdir", "rm", "touch", "cat", "test", "["}
_WINDOWS_TOOLS = {"cmd.exe", "powershell.exe", "whoami.exe", "hostname.exe"}
_WINDOWS_SHELLS = {"cmd.exe", "powershell.exe"}
#: exit status of a command the shell does not find
NOT_FOUND = {"linux": 127, "windows": 9009}


@dataclass(frozen=True)
class Program:
    """A resolved program: a guest file (run as a script) or a system program by name."""

    path: str
    system: str | None  # the system program's name, or None for a guest file


def _windows(files: GuestFiles) -> bool:
    return files.os_family == "windows"


def find_program(path: str, files: GuestFiles) -> Program | None:
    """The program ``path`` names in this guest, or ``None`` (not found)."""
    if not path:
        return None
    windows = _windows(files)
    try:
        if files.exists(path) and not files.is_dir(path):
            return Program(path, None)
    except (VcbsimError, ValueError, LookupError):
        pass
    norm = path.replace("\\", "/")
    if windows:
        norm = norm.lower()
        folder, _, name = norm.rpartition("/")
        candidates = [name] if name.endswith(".exe") else [name + ".exe", name]
        if folder and folder not in _WINDOWS_PATH:
            return None
        for cand in candidates:
            if cand in _WINDOWS_TOOLS:
                return Program(path, cand)
        return None
    folder, _, name = norm.rpartition("/")
    if folder and folder not in _LINUX_PATH:
        return None
    if name in _LINUX_SHELLS or name in _LINUX_TOOLS:
        return Program(path, name)
    return None


def run_program(program: Program, arguments: Sequence[str], files: GuestFiles) -> ScriptOutcome:
    """Run a found program with its arguments; what it did and its exit status."""
    if program.system is None:
        return run_script(files.read_bytes(program.path), arguments, files)
    if program.system in _LINUX_SHELLS or program.system in _WINDOWS_SHELLS:
        return _shell(program.system, list(arguments), files)
    return _tool(program.system, list(arguments), files)


# --- shells -------------------------------------------------------------------------------------


def _shell(name: str, args: list[str], files: GuestFiles) -> ScriptOutcome:
    windows = name in _WINDOWS_SHELLS
    flags = {"cmd.exe": ("/c", "/k"), "powershell.exe": ("-command", "-c")}.get(name, ("-c",))
    if name == "powershell.exe" and args and args[0].lower() == "-file":
        args = args[1:]
    elif args and args[0].lower() in flags:
        return run_command_line(" ".join(args[1:]) if windows else (args[1] if len(args) > 1 else ""), files)
    if args:  # a script file and its arguments
        script = find_program(args[0], files)
        if script is None or script.system is not None:
            return ScriptOutcome(NOT_FOUND["windows" if windows else "linux"], 0.0)
        return run_script(files.read_bytes(script.path), args[1:], files)
    return ScriptOutcome(0, 0.0)  # an interactive shell with no input ends at once


_SPLIT_SH = re.compile(r"(&&|\|\||;|\n)")
_SPLIT_CMD = re.compile(r"(&&|\|\||&|\n)")


def run_command_line(line: str, files: GuestFiles) -> ScriptOutcome:
    """A ``sh -c`` / ``cmd /c`` command line (see the module docstring)."""
    windows = _windows(files)
    parts = _SPLIT_CMD.split(line) if windows else _SPLIT_SH.split(line)
    status, elapsed = 0, 0.0
    writes: list[str] = []
    errors: list[str] = []
    op = ";"
    for part in parts:
        if part in ("&&", "||", ";", "&", "\n"):
            op = part
            continue
        command = part.strip()
        if not command or (op == "&&" and status != 0) or (op == "||" and status == 0):
            continue
        outcome, stop = _command(command, files)
        elapsed += outcome.duration
        writes += outcome.writes
        errors += outcome.errors
        status = outcome.exit_code if outcome.exit_code is not None else 1
        if stop:
            break
    return ScriptOutcome(status, elapsed, False, tuple(writes), tuple(errors))


def _words(command: str, windows: bool) -> list[str]:
    try:
        words = shlex.split(command, posix=not windows)
    except ValueError:
        words = command.split()
    return [w.strip('"') for w in words] if windows else words


def _command(command: str, files: GuestFiles) -> tuple[ScriptOutcome, bool]:
    """One command of a command line; ``True`` when it ends the line (``exit``)."""
    windows = _windows(files)
    lowered = command.lower()
    # exit, sleep/timeout and echo with a redirection: the script language's own statements
    if re.match(r"^(exit\b|sleep\s|timeout\s+/t\s|echo.*>)", lowered):
        outcome = run_script(command, (), files)
        return outcome, lowered.startswith("exit")
    words = _words(command, windows)
    if not words:
        return ScriptOutcome(0, 0.0), False
    head = words[0].lower() if windows else words[0]
    if windows and head in _CMD_BUILTINS:
        return ScriptOutcome(_CMD_BUILTINS[head](words[1:], files), 0.0), False
    found = find_program(words[0], files)
    if found is None:
        return ScriptOutcome(NOT_FOUND["windows" if windows else "linux"], 0.0), False
    return run_program(found, words[1:], files), False


# --- tools --------------------------------------------------------------------------------------


def _ok(fn: Callable[[], object]) -> bool:
    try:
        fn()
    except (VcbsimError, OSError, ValueError, LookupError):
        return False
    return True


def _mkdir(args: list[str], files: GuestFiles) -> int:
    fs: Any = files  # a GuestFileSystem (mkdir and delete are not in the GuestFiles protocol)
    parents = "-p" in args
    paths = [a for a in args if not a.startswith("-")]
    status = 0 if paths else 1
    for p in paths:
        if files.exists(p) and not parents:
            status = 1
        elif not _ok(partial(fs.mkdir, p, parents=parents, exist_ok=parents)):
            status = 1
    return status


def _rm(args: list[str], files: GuestFiles, *, force_flag: str = "-f", recursive_flags: tuple[str, ...] = ("-r", "-rf", "-fr")) -> int:
    force = any(a in (force_flag, "-rf", "-fr", "/f", "/q") for a in args)
    recursive = any(a.lower() in recursive_flags for a in args)
    # options: -x on Linux, /x on Windows (a Linux path starts with "/")
    flag = "/" if _windows(files) else "-"
    paths = [a for a in args if not a.startswith(flag)]
    status = 0
    for p in paths:
        if not files.exists(p):
            status = 0 if force else 1
            continue
        fs: Any = files
        if not _ok(partial(fs.delete, p, recursive=recursive)):
            status = 1
    return status if paths else 1


def _touch(args: list[str], files: GuestFiles) -> int:
    status = 0
    for p in args:
        if not files.exists(p) and not _ok(partial(files.write_bytes, p, b"")):
            status = 1
    return status


def _cat(args: list[str], files: GuestFiles) -> int:
    return 0 if all(files.exists(p) and not files.is_dir(p) for p in args) else 1


def _test(args: list[str], files: GuestFiles) -> int:
    args = [a for a in args if a != "]"]
    if len(args) == 2 and args[0] in ("-e", "-f", "-d"):
        path = args[1]
        if args[0] == "-e":
            return 0 if files.exists(path) else 1
        if args[0] == "-d":
            return 0 if files.exists(path) and files.is_dir(path) else 1
        return 0 if files.exists(path) and not files.is_dir(path) else 1
    return 0 if len(args) == 1 and args[0] else 1


def _sleep(args: list[str], files: GuestFiles) -> ScriptOutcome:
    try:
        seconds = float(args[0]) if args else -1.0
    except ValueError:
        seconds = -1.0
    return ScriptOutcome(0, seconds) if seconds >= 0 else ScriptOutcome(1, 0.0)


def _tool(name: str, args: list[str], files: GuestFiles) -> ScriptOutcome:
    if name == "sleep":
        return _sleep(args, files)
    status = {
        "echo": lambda: 0,
        "true": lambda: 0,
        "false": lambda: 1,
        "mkdir": lambda: _mkdir(args, files),
        "rm": lambda: _rm(args, files),
        "touch": lambda: _touch(args, files),
        "cat": lambda: _cat(args, files),
        "test": lambda: _test(args, files),
        "[": lambda: _test(args, files),
        "whoami.exe": lambda: 0,
        "hostname.exe": lambda: 0,
    }[name]()
    return ScriptOutcome(status, 0.0)


def _cmd_mkdir(args: list[str], files: GuestFiles) -> int:
    # cmd's mkdir makes the intermediate folders and fails (1) if the folder exists
    fs: Any = files
    return 0 if args and all(not files.exists(p) and _ok(partial(fs.mkdir, p, parents=True, exist_ok=False))
                             for p in args) else 1


def _cmd_type(args: list[str], files: GuestFiles) -> int:
    return 0 if args and all(files.exists(p) and not files.is_dir(p) for p in args) else 1


#: cmd.exe's built-in commands (no file of their own)
_CMD_BUILTINS: dict[str, Callable[[list[str], GuestFiles], int]] = {
    "echo": lambda a, f: 0,
    "echo.": lambda a, f: 0,
    "rem": lambda a, f: 0,
    "ver": lambda a, f: 0,
    "mkdir": _cmd_mkdir,
    "md": _cmd_mkdir,
    "del": lambda a, f: _rm(a, f, force_flag="/f", recursive_flags=("/s",)),
    "erase": lambda a, f: _rm(a, f, force_flag="/f", recursive_flags=("/s",)),
    "rmdir": lambda a, f: _rm(a, f, force_flag="/q", recursive_flags=("/s",)),
    "rd": lambda a, f: _rm(a, f, force_flag="/q", recursive_flags=("/s",)),
    "type": _cmd_type,
}

