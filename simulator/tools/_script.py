r"""Quiescing scripts: what a guest script *does*, read from its text.

Scripts are ordinary guest files (``C:\Windows\pre-freeze-script.bat``,
``/etc/vmware-tools/backupScripts.d/10-db``, ...). VMware Tools runs them with the phase as the
first argument (``freeze``, ``thaw`` or ``freezeFail``; spec R23) and, when the ``scriptArg``
setting is non-empty, that value as the second. The simulator does not run a shell: it reads
the file's text with the tiny interpreter below, so a file a product installs through guest
operations behaves as its content says.

The script language
===================

One statement a line. Lines are read top to bottom; the first ``exit`` ends the script.
**Every line that is not one of the statements below is ignored** (a real ``.bat`` or shell
script does many things the simulator does not model: ``@echo off``, ``REM``, ``net stop``,
``if``...). No ``exit`` at all means exit status 0. Keywords are case-insensitive.

``exit N`` (also ``exit /b N``; plain ``exit`` is ``exit 0``)
    End the script with status ``N``. Only 0 is success (R24). On Linux the status is taken
    modulo 256, as a shell does (``exit -1`` is 255).

``sleep SECONDS`` (also ``timeout /t SECONDS``, the ``.bat`` idiom)
    The script takes that many *virtual* seconds (a decimal number). Scripts have no timeout of
    their own; only the guest abort timer (R15, R25) can cut one short, and then the script is
    killed there and later lines never happen.

``echo TEXT >> PATH``
    Append ``TEXT`` and a line break (CRLF on Windows, LF on Linux) to the guest file ``PATH``
    (an absolute guest path; quotes around it are removed). The write is a real side effect on
    the guest's disk. ``echo TEXT > PATH`` replaces the file instead. If the write fails (for
    example the directory does not exist) the script goes on, as a shell would.
    In ``TEXT``, ``%1`` / ``$1`` stand for the first argument (the phase) and ``%2`` / ``$2``
    for the second (``scriptArg``, empty when unset).

``fsfreeze -f MOUNT`` / ``fsfreeze -u MOUNT`` (Linux)
    Freeze or thaw a mounted file system *outside* VMware Tools, as the KB's example pre-freeze
    script does. Tools of 12.2.0 on then find it frozen (EBUSY) and fail the freeze unless it is
    excluded or ``ignoreFrozenFileSystems`` is set (spec R34).

``[TAGS] STATEMENT``
    The statement applies only when the first argument is one of ``TAGS``, a comma-separated
    list compared exactly (``freezeFail`` is camel-case, R23 / Q1)::

        [freeze] echo stopping db >> C:\log.txt
        [freeze] exit 3
        [thaw,freezeFail] sleep 5
        [freezeFail] echo undo >> /var/log/q.log

Example (``C:\Program Files\VMware\VMware Tools\backupScripts.d\10-sql.bat``)::

    @echo off
    echo %1 >> C:\quiesce.log
    [freeze] sleep 20
    [freeze] exit 0
    [thaw] sleep 2

Launching is not the interpreter's business: a script that cannot be launched (fault rule
``script.launch``, a file type Windows cannot start) is decided by the caller, and is a
different outcome from a script that runs and exits non-zero (R26-R29).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._errors import VcbsimError
from ._files import GuestFiles, append_bytes

__all__ = ["Script", "Statement", "ScriptOutcome", "parse_script", "run_script"]

_TAGGED = re.compile(r"^\[(?P<tags>[^\]]*)\]\s*(?P<rest>.*)$")
_EXIT = re.compile(r"^exit(?:\s+/b)?(?:\s+(?P<code>[+-]?\d+))?\s*$", re.IGNORECASE)
_SLEEP = re.compile(
    r"^(?:sleep|timeout\s+/t)\s+(?P<secs>\d+(?:\.\d*)?|\.\d+)(?:\s+/nobreak)?\s*$", re.IGNORECASE
)
_FSFREEZE = re.compile(r"^fsfreeze\s+(?P<op>-f|--freeze|-u|--unfreeze)\s+(?P<path>/\S*)\s*$")
_ECHO = re.compile(r"^echo(?:\s|\.)(?P<text>.*?)\s*(?P<op>>>|>)\s*(?P<path>\S.*?)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Statement:
    """One understood line: ``kind`` is ``exit``, ``sleep``, ``echo`` or ``fsfreeze``."""

    kind: str
    tags: tuple[str, ...] | None = None
    code: int = 0
    seconds: float = 0.0
    text: str = ""
    path: str = ""
    append: bool = True
    line: int = 0

    def applies(self, arg: str) -> bool:
        return self.tags is None or arg in self.tags


@dataclass(frozen=True, slots=True)
class Script:
    """A parsed script: the statements the simulator understands, in order."""

    statements: tuple[Statement, ...]

    def effective(self, arg: str) -> tuple[Statement, ...]:
        """The statements that run for first argument ``arg``, up to and including an ``exit``."""
        out: list[Statement] = []
        for st in self.statements:
            if st.applies(arg):
                out.append(st)
                if st.kind == "exit":
                    break
        return tuple(out)


@dataclass(frozen=True, slots=True)
class ScriptOutcome:
    """What one run did. ``exit_code`` is ``None`` when the script was killed (``killed``)."""

    exit_code: int | None
    duration: float
    killed: bool = False
    writes: tuple[str, ...] = ()
    errors: tuple[str, ...] = field(default=())


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        return s[1:-1]
    return s


def parse_script(text: str | bytes) -> Script:
    """Parse a script's text (bytes are decoded as UTF-8, bad bytes replaced)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    out: list[Statement] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip().lstrip("@").strip()
        if not line:
            continue
        tags: tuple[str, ...] | None = None
        m = _TAGGED.match(line)
        if m:
            tags = tuple(t.strip() for t in m.group("tags").split(",") if t.strip())
            line = m.group("rest").strip().lstrip("@").strip()
        if (mx := _EXIT.match(line)) is not None:
            code = int(mx.group("code")) if mx.group("code") is not None else 0
            out.append(Statement("exit", tags, code=code, line=n))
        elif (ms := _SLEEP.match(line)) is not None:
            out.append(Statement("sleep", tags, seconds=float(ms.group("secs")), line=n))
        elif (mf := _FSFREEZE.match(line)) is not None:
            out.append(
                Statement("fsfreeze", tags, path=mf.group("path"), append=mf.group("op") in ("-f", "--freeze"), line=n)
            )
        elif (me := _ECHO.match(line)) is not None:
            out.append(
                Statement(
                    "echo",
                    tags,
                    text=me.group("text"),
                    path=_unquote(me.group("path")),
                    append=me.group("op") == ">>",
                    line=n,
                )
            )
        # anything else: ignored on purpose (see the module docstring)
    return Script(tuple(out))


def _expand(text: str, args: Sequence[str]) -> str:
    a1 = args[0] if args else ""
    a2 = args[1] if len(args) > 1 else ""
    for k, v in (("%1", a1), ("$1", a1), ("%2", a2), ("$2", a2)):
        text = text.replace(k, v)
    return text


def run_script(
    script: Script | str | bytes,
    args: Sequence[str],
    files: GuestFiles,
    *,
    budget: float | None = None,
    frozen: set[str] | None = None,
) -> ScriptOutcome:
    """Run ``script`` with ``args`` against the guest's files.

    ``budget`` is how many virtual seconds may pass before the script is killed (the time left
    on the guest abort timer; ``None`` means no limit). Nothing here moves the clock: the
    caller advances it by ``duration``. Side effects (``echo``) happen in order, so a killed
    script leaves exactly the writes made before the kill. ``frozen`` is the set of mount points
    frozen outside Tools that ``fsfreeze`` updates (None: ``fsfreeze`` does nothing).
    """
    if not isinstance(script, Script):
        script = parse_script(script)
    linux = files.os_family != "windows"
    newline = b"\n" if linux else b"\r\n"
    arg = args[0] if args else ""
    elapsed = 0.0
    writes: list[str] = []
    errors: list[str] = []
    for st in script.effective(arg):
        if st.kind == "sleep":
            if budget is not None and elapsed + st.seconds > budget:
                return ScriptOutcome(None, max(budget, elapsed), True, tuple(writes), tuple(errors))
            elapsed += st.seconds
        elif st.kind == "echo":
            text = _expand(st.text, args)
            if linux:
                text = _unquote(text)
            data = text.encode("utf-8") + newline
            try:
                if st.append:
                    append_bytes(files, st.path, data)
                else:
                    files.write_bytes(st.path, data)
                writes.append(st.path)
            except (VcbsimError, OSError, ValueError, LookupError) as exc:
                errors.append(f"line {st.line}: cannot write {st.path}: {exc}")
        elif st.kind == "fsfreeze":
            if frozen is not None and linux:
                (frozen.add if st.append else frozen.discard)(st.path.rstrip("/") or "/")
        elif st.kind == "exit":
            code = st.code % 256 if linux else st.code
            return ScriptOutcome(code, elapsed, False, tuple(writes), tuple(errors))
    return ScriptOutcome(0, elapsed, False, tuple(writes), tuple(errors))


def tick_round(duration: float, tick: float) -> float:
    """Completion is noticed at the next poll tick, so each script costs >= one tick (R12)."""
    if tick <= 0:
        return duration
    return max(tick, math.ceil(duration / tick - 1e-9) * tick)
