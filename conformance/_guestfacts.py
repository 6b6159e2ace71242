"""The guest's own facts about quiescing, against what a guest agent traces (issue 11).

The trace checker judges a guest agent from the ``quiesce.*`` and ``script.run`` events the
agent records, and the scripts' log (``_judge._judge_guest_log``) shows that each traced run
happened with the traced argument. Neither sees what the agent *left out* or *misread*: a
script it never listed, a status it took for another, an abort timer it set from the wrong
unit. Those are facts of the guest, which the kit holds: the files in the guest when the
operation starts, the scripts' own text (the kit wrote them), the VM's Tools configuration and
the host's era. ``GuestFacts`` reads them with the simulator's own VMware Tools model (the
``VMwareTools`` the host had before a vendor's agent replaced it: ``discover_scripts``,
``script_layout``, ``abort_timeout``, ``run_script``), the reference of open-vm-tools'
behaviour, and judges each quiesce operation when it ends:

- ``SCR-ORDER-FREEZE``: the freeze scripts that ran are the guest's script list in byte-wise
  order (open-vm-tools scriptOps.c, VmBackupStringCompare), a prefix of it only when the last
  one failed or the operation did not end ``done``: a script the agent never listed (a tenth
  one, a legacy script beside the directory) or one it listed from elsewhere (a subdirectory,
  spec R21) is caught although the agent's trace is consistent with itself;
- ``SCR-FREEZEFAIL-NO-SNAPSHOT`` / ``QSC-REPORT-FAILURE``: each traced exit status is the one
  the script's text gives for the traced argument (``run_script`` on a scratch file system):
  an agent that takes status 1 for success, or does not list a file Windows cannot launch, is
  caught by what the script says, not by what the agent says;
- the abort timer of an operation is the one the guest's configuration and era give
  (``VMwareTools.abort_timeout``), never longer: ``timer_for`` corrects the ``timeout`` the
  agent announced before the trace checker judges TMO-GUEST-ABORT and TMO-NEAR-LIMIT.

Operations the kit disturbed on purpose (an injected ``script`` or ``script.launch`` fault
changes a status or a launch) are not compared on statuses.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vcbsim.simulator import Event

from ._errors import ConformanceViolation

__all__ = ["GuestFacts"]


def _norm(path: str, windows: bool) -> str:
    return path.replace("/", "\\").casefold() if windows else path


@dataclass(slots=True)
class _Operation:
    """One quiesce operation as the guest's facts predict it, and what the agent traced."""

    start: Event
    windows: bool
    freeze: list[str]
    texts: dict[str, str | None]
    timer: float
    runs: list[Event] = field(default_factory=list)
    disturbed: bool = False
    #: a script was added while the operation ran (a 3.5-era guest still busy with one the host
    #: stopped waiting for): the list at the start no longer says what runs (a rewritten one has
    #: its text dropped from ``texts``, a deleted one leaves ``freeze``)
    rewritten: bool = False


class GuestFacts:
    """Watches a host's trace (``on_event``) and judges each ended quiesce operation against
    the guest's own facts; ``problems`` holds the violations found, in order."""

    def __init__(self, models: Mapping[str, Any], profile: Any, names: Callable[[str | None], str]) -> None:
        #: VM moref -> the simulator's own Tools of that VM (the model, never the agent)
        self._models = dict(models)
        self._profile = profile
        self._name = names
        self._open: dict[str | None, _Operation] = {}
        #: quiesce.start seq -> the abort timer the guest's facts give (when the agent said longer)
        self.timers: dict[int, float] = {}
        self.problems: list[ConformanceViolation] = []

    def on_event(self, ev: Event) -> None:
        if ev.kind == "quiesce.start":
            self._start(ev)
            return
        op = self._open.get(ev.vm)
        if op is None:
            return
        if ev.kind == "script.run":
            op.runs.append(ev)
        elif ev.kind == "fault.injected" and str(ev.details.get("operation", "")).startswith("script"):
            op.disturbed = True
        elif ev.kind == "guest.write" and _norm(str(ev.details.get("path", "")), op.windows) in op.texts:
            # a script rewritten while the operation runs (a 3.5-era guest still busy with one
            # the host stopped waiting for): Tools read it when they run it, not its text at the start
            op.texts[_norm(str(ev.details.get("path", "")), op.windows)] = None
        elif ev.kind == "guest.write" and self._is_script(op, str(ev.details.get("path", ""))):
            # a script added while the operation runs: whether Tools run it depends on when the
            # guest lists its scripts, which no source here settles, so the operation is not judged
            op.rewritten = True
        elif ev.kind == "guest.delete":
            # a script deleted while the operation runs (a 3.5-era guest still busy with one the
            # host stopped waiting for) is skipped when its turn comes: Tools re-check each entry
            # just before running it (spec R22)
            path = _norm(str(ev.details.get("path", "")), op.windows)
            ran = {_norm(str(e.details.get("path", "")), op.windows) for e in op.runs if e.details.get("arg") == "freeze"}
            if path not in ran:
                op.freeze = [p for p in op.freeze if p != path]
        elif ev.kind == "quiesce.end":
            del self._open[ev.vm]
            try:
                self._judge(op, ev)
            except ConformanceViolation as exc:
                self.problems.append(exc)

    def take(self) -> ConformanceViolation | None:
        """The first violation found since the last call (then forgotten), or ``None``."""
        if not self.problems:
            return None
        first, self.problems = self.problems[0], []
        return first

    # -- the prediction, when the operation starts ------------------------------------
    def _start(self, ev: Event) -> None:
        from vcbsim.simulator.tools._files import is_file

        tools = self._models.get(str(ev.vm))
        if tools is None or getattr(tools, "state", "") != "running":
            return
        try:
            plan = tools.scripts(tools.script_layout(self._profile))
            files = tools.guest
            freeze = [p for _, p in plan.order("freeze") if is_file(files, p)]
            texts: dict[str, str | None] = {}
            for entry in plan.entries:
                for path in {entry.path, entry.path_for("thaw")}:
                    texts[_norm(path, tools.os_family == "windows")] = _read(files, path)
            timer = float(tools.abort_timeout(self._profile))
        except Exception:  # noqa: BLE001 - a guest the model cannot read now is not judged
            return
        windows = tools.os_family == "windows"
        self._open[ev.vm] = _Operation(ev, windows, [_norm(p, windows) for p in freeze], texts, timer)
        announced = ev.details.get("timeout")
        if timer > 0 and (not announced or float(announced) > timer):
            self.timers[ev.seq] = timer

    @staticmethod
    def _is_script(op: _Operation, path: str) -> bool:
        p = _norm(path, op.windows)
        sep = "\\" if op.windows else "/"
        folders = {k.rsplit(sep, 1)[0] for k in [*op.texts, *op.freeze] if sep in k}
        return p in op.texts or p.rsplit(sep, 1)[0] in folders

    # -- the judgement, when it ends --------------------------------------------------
    def _judge(self, op: _Operation, end: Event) -> None:
        if op.rewritten:
            return
        vm = str(op.start.vm)
        name = self._name(op.start.vm)
        ran = [e for e in op.runs if e.details.get("arg") == "freeze"]
        got = [_norm(str(e.details.get("path", "")), op.windows) for e in ran]
        if got != op.freeze[: len(got)]:
            why = (f"the guest agent of {name} ran the freeze scripts {_show(got)}, but the guest's scripts when the "
                   f"quiesce operation began (#{op.start.seq}), in byte-wise order, are {_show(op.freeze)}; Tools run "
                   "the legacy pre-freeze script, then the regular files of backupScripts.d (no subdirectory) sorted "
                   "by strcmp")
            raise ConformanceViolation("SCR-ORDER-FREEZE", why, witness=(op.start, *ran[:3]), vm=vm)
        stopped = bool(ran) and (ran[-1].details.get("exit_code") != 0 or "error" in ran[-1].details
                                 or bool(ran[-1].details.get("killed")))
        if len(got) < len(op.freeze) and end.details.get("outcome") == "done" and not stopped:
            missing = op.freeze[len(got):]
            why = (f"the quiesce operation of {name} (#{op.start.seq}) ended done, but the freeze scripts "
                   f"{_show(missing)}, in the guest when it began, never ran (it ran {_show(got)}); every regular "
                   "file of backupScripts.d and the legacy pre-freeze script runs with freeze")
            raise ConformanceViolation("SCR-ORDER-FREEZE", why, witness=(op.start, end), vm=vm)
        if op.disturbed:
            return
        for e in op.runs:
            self._judge_status(op, e, name, vm)

    def _judge_status(self, op: _Operation, e: Event, name: str, vm: str) -> None:
        from vcbsim.simulator.tools import MemoryGuestFiles, run_script

        d = e.details
        if "error" in d or d.get("killed") or d.get("exit_code") is None:
            return
        text = op.texts.get(_norm(str(d.get("path", "")), op.windows))
        if text is None:
            return
        arg = str(d.get("arg", ""))
        try:
            outcome = run_script(text, [arg], MemoryGuestFiles("windows" if op.windows else "linux"))
        except Exception:  # noqa: BLE001 - a text the model cannot run is not compared
            return
        if outcome.exit_code is None or outcome.killed or outcome.exit_code == d.get("exit_code"):
            return
        rule = "SCR-FREEZEFAIL-NO-SNAPSHOT" if arg == "freeze" else "QSC-REPORT-FAILURE"
        why = (f"{d.get('path')} of {name} exits {outcome.exit_code} when run with {arg!r} (its own text says so), "
               f"but the guest agent traced exit status {d.get('exit_code')} (#{e.seq}); only 0 is success (spec R24), "
               + ("and a failed pre-freeze script fails the snapshot" if arg == "freeze"
                  else "and a failed script makes the operation an error"))
        raise ConformanceViolation(rule, why, witness=(op.start, e), vm=vm)


def _read(files: Any, path: str) -> str | None:
    try:
        return bytes(files.read_bytes(path)).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - no such file
        return None


def _show(paths: list[str]) -> str:
    names = [p.replace("/", "\\").rsplit("\\", 1)[-1] for p in paths]
    return "[" + ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") + "]"
