r"""The teaching session behind ``vcbsim repl`` and ``vcbsim demo``: no terminal, no rich.

A ``TeachSession`` holds the demo host, a reference proxy working in a scratch directory and a
backup medium (catalog). A ``GuidedBackup`` drives one reference backup run and hands it out one
*documented* step at a time (seed steps 1a-1f, 2, 3a, 3b), each with the trace events of the
step and the state of the VM recorded right after it: the quiesce state, the snapshot tree, the
redo-log chains with their sizes, and what is mounted on the proxy.

How the steps are cut: the proxy asks the host for a quiesced snapshot in one call (as VCB does
with one ``CreateSnapshot_Task``), and the host and VMware Tools run 1a-1e inside it. The
session runs the proxy on a worker thread and pauses it after each of 1a, 1b, 1c and 1d
(``Host.on_quiesce_step``, the same code path as every quiesced snapshot), so each step really
happens when ``step`` shows it: at 1a the snapshot does not exist yet, at 1c the guest is
frozen with the snapshot taken. Only one of the two threads runs at a time (a strict handoff
on a ``threading.Condition`` over the host's lock), so what a learner sees is deterministic.
While the proxy waits inside the snapshot call the VM is busy, as on a real host: removing
its snapshot by hand is refused with ``TaskInProgress``; a guest ``write`` while the guest is
frozen is held, as the frozen guest holds it, and lands when the guest thaws (1d). Steps 1f,
2, 3a and 3b run when they are asked for (3a and 3b are one proxy call, shown as two steps), so
a file written between two steps lands in the redo log while the backup reads the snapshot,
and a snapshot removed by hand after 1e is missing for 1f.

One concern, although over 700 lines: the teaching session (``TeachSession``, the guided run
``GuidedBackup`` with its thread ``Handoff``, and what a step shows); the commands that drive
it are ``_repl.py``, its rendering ``_teach_render.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcbsim.simulator import Event, FaultRule, Host

__all__ = [
    "DOC_STEPS",
    "STEP_TITLES",
    "DiskChain",
    "Frame",
    "GuidedBackup",
    "StepView",
    "TeachSession",
    "FAULT_PRESETS",
    "FaultPreset",
    "Handoff",
    "HeldWrite",
    "crash_points",
    "describe_error",
    "console_width",
    "piped_width",
    "error_code_note",
    "scripts_dir",
    "pipe_safe",
]

#: The documented steps a backup goes through, in order (docs/seed/vcb-workflow.txt).
DOC_STEPS: tuple[str, ...] = ("WF-1a", "WF-1b", "WF-1c", "WF-1d", "WF-1e", "WF-1f", "WF-2", "WF-3a", "WF-3b")

#: One line of the seed per step.
STEP_TITLES: dict[str, str] = {
    "WF-1": "pre-backup script",
    "WF-1a": "runs your custom pre-freeze scripts in the virtual machine",
    "WF-1b": "quiesces the virtual machine (SYNC driver or VSS)",
    "WF-1c": "puts the virtual machine into snapshot mode",
    "WF-1d": "unquiesces the virtual machine",
    "WF-1e": "runs your custom post-thaw scripts",
    "WF-1f": "makes the snapshot available to the backup software",
    "WF-2": "the backup software backs up the snapshot to the medium",
    "WF-3a": "unmounts the virtual machine snapshot from the backup proxy",
    "WF-3b": "takes the virtual machine out of snapshot mode, committing the changes",
}


@dataclass(frozen=True, slots=True)
class DiskChain:
    """One virtual disk's redo-log chain, writable layer first: ``(file, bytes held)``."""

    label: str
    layers: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Frame:
    """The state of one VM (and the proxy) at one moment."""

    seq: int
    time: float
    phase: str
    frozen: bool
    snapshots: tuple[tuple[str, str, str | None, bool], ...]  # (moref, name, parent moref, quiesced)
    current: str | None
    chains: tuple[DiskChain, ...]
    mounts: tuple[str, ...]

    def changes_since(self, before: Frame | None) -> list[str]:
        """What is different from ``before``, in words."""
        if before is None:
            return []
        out: list[str] = []
        if (before.phase, before.frozen) != (self.phase, self.frozen):
            out.append(
                f"quiesce state {before.phase}{' (frozen)' if before.frozen else ''} -> "
                f"{self.phase}{' (frozen)' if self.frozen else ''}"
            )
        old = {s[0]: s for s in before.snapshots}
        new = {s[0]: s for s in self.snapshots}
        for m in new.keys() - old.keys():
            out.append(f"snapshot {new[m][1]} ({m}) created{' quiesced' if new[m][3] else ''}")
        for m in old.keys() - new.keys():
            out.append(f"snapshot {old[m][1]} ({m}) removed")
        before_chains = {c.label: c for c in before.chains}
        for c in self.chains:
            b = before_chains.get(c.label)
            if b is None or b.layers == c.layers:
                continue
            bfiles = [f for f, _ in b.layers]
            files = [f for f, _ in c.layers]
            for f in files:
                if f not in bfiles:
                    out.append(f"{c.label}: new redo log {short_file(f)}")
            for f in bfiles:
                if f not in files:
                    out.append(f"{c.label}: {short_file(f)} merged away (committed)")
            sizes = dict(b.layers)
            for f, n in c.layers:
                if f in sizes and sizes[f] != n:
                    out.append(f"{c.label}: {short_file(f)} {human(sizes[f])} -> {human(n)}")
        for p in self.mounts:
            if p not in before.mounts:
                out.append(f"mounted {p}")
        for p in before.mounts:
            if p not in self.mounts:
                out.append(f"unmounted {p}")
        return out


#: the narrowest output the tables and trace lines are laid out for
MIN_WIDTH = 40
#: the width when the output goes to a pipe or a file (rich would take 80, and cut trace lines)
PIPED_WIDTH = 120


def console_width(text: str) -> int:
    """``--width``: a number of columns, at least ``MIN_WIDTH`` (argparse type)."""
    try:
        width = int(text)
    except ValueError:
        width = 0
    if width < MIN_WIDTH or width > 1000:
        msg = f"expected a number of columns from {MIN_WIDTH} to 1000, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return width


def piped_width() -> int | None:
    """The width to render for: ``None`` (the terminal's, rich finds it) on a terminal or
    when ``COLUMNS`` says; ``PIPED_WIDTH`` when stdout is a pipe or a file."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return PIPED_WIDTH


def pipe_safe(on_broken_pipe: int) -> Callable[[Callable[[Sequence[str] | None], int]], Callable[[Sequence[str] | None], int]]:
    """Make a verb's ``main`` end quietly with ``on_broken_pipe`` when its reader goes away
    (``vcbsim demo | head``), instead of a traceback."""

    def wrap(main: Callable[[Sequence[str] | None], int]) -> Callable[[Sequence[str] | None], int]:
        @functools.wraps(main)
        def run(argv: Sequence[str] | None = None) -> int:
            try:
                return main(argv)
            except BrokenPipeError:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                return on_broken_pipe

        return run

    return wrap


def describe_error(exc: BaseException) -> str:
    """An error in a learner's terms: a vSphere fault by its vSphere name and message (what a
    real host answers), a crash point by its name, anything else by its message alone (no
    Python class names)."""
    from vcbsim.simulator import SimulatedCrash, fault_name

    msg = getattr(exc, "msg", None)
    if isinstance(msg, str):  # a vSphere fault (vim.fault.*)
        name = fault_name(exc)
        return f"{name}: {msg}" if msg else name
    if isinstance(exc, SimulatedCrash):
        return f"the proxy crashed at {exc.point} (injected)"
    text = str(exc)
    return text if text else "it failed without a reason"


#: VMware Tools' quiesce status codes (open-vm-tools ``services/plugins/vmbackup``, the
#: ``vmbackup.eventSet`` codes; spec guest-quiescing R2): what "The error code was: N" means
TOOLS_STATUS = {
    1: "INVALID_STATE",
    2: "SCRIPT_ERROR: a custom quiesce script failed",
    3: "SYNC_ERROR: the SYNC driver or VSS could not freeze or thaw",
    4: "REMOTE_ABORT: the host or the guest's timer aborted the operation",
    5: "UNEXPECTED_ERROR",
}


def error_code_note(reason: str) -> str | None:
    """Why a host message says "The error code was: 2" after a script exited 3: the code is
    VMware Tools' own quiesce status, not the script's exit code."""
    m = re.search(r"The error code was: (\d+)", reason)
    if m is None:
        return None
    code = int(m.group(1))
    meaning = TOOLS_STATUS.get(code, "a status VMware Tools does not define")
    return (f"The error code {code} is VMware Tools' quiesce status ({meaning}), not a script's exit "
            "code; each script's exit code is in its script.run line.")


def short_file(label: str) -> str:
    """``[datastore1] vm/vm-000001.vmdk`` -> ``vm-000001.vmdk``."""
    return label.rsplit("/", 1)[-1]


def human(n: int) -> str:
    """Bytes as ``0 B``, ``64 KiB``, ``1.5 MiB``."""
    size = float(n)
    unit = "B"
    for u in ("KiB", "MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size /= 1024
        unit = u
    if unit == "B":
        return f"{n} B"
    return f"{size:.0f} {unit}" if size == int(size) else f"{size:.1f} {unit}"


@dataclass(slots=True)
class StepView:
    """One documented step as shown to a learner."""

    step: str
    events: list[Event]
    before: Frame | None
    after: Frame
    skipped: tuple[str, ...] = ()
    #: what else happened right after the step (a write the frozen guest held, landing)
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return STEP_TITLES.get(self.step, "")

    @property
    def changes(self) -> list[str]:
        return self.after.changes_since(self.before)

    def script_runs(self) -> list[tuple[str, str, Any]]:
        """``(path, arg, exit_code)`` of each quiescing script run in this step, in order."""
        return [
            (str(e.details.get("path")), str(e.details.get("arg")), e.details.get("exit_code"))
            for e in self.events
            if e.kind == "script.run"
        ]


def scripts_dir(vm: Any) -> str:
    """Where the VM's quiescing scripts go (U2 and later: ``backupScripts.d``)."""
    if vm.os_family == "windows":
        return r"C:\Program Files\VMware\VMware Tools\backupScripts.d"
    return "/etc/vmware-tools/backupScripts.d"


@dataclass(frozen=True, slots=True)
class FaultPreset:
    """One of the REPL's one-command faults: ``fault NAME VM [ARG]``.

    ``arg`` names the optional argument (``""``: none), ``default`` its value when omitted;
    ``parse`` turns the text into a value (``ValueError`` with a sentence when it cannot);
    ``describe(host, vm, value)`` says what will happen with *this* value; ``build(host, vm,
    value)`` is the rule, labelled ``NAME VM`` so that each preset on each VM counts its own
    hits. ``host`` is ``None`` when the list of faults is shown without a VM."""

    name: str
    arg: str
    default: Any
    parse: Callable[[str], Any]
    describe: Callable[[Any, Any, Any], str]
    build: Callable[[Any, Any, Any], FaultRule]

    def usage(self) -> str:
        return f"fault {self.name} VM" + (f" [{self.arg}]" if self.arg else "")

    def label(self, vm: Any) -> str:
        return f"{self.name} {vm.name}"


def _exit_code(text: str) -> int:
    try:
        code = int(text)
    except ValueError:
        code = -1
    if not 1 <= code <= 255:
        msg = f"CODE: expected an exit code 1..255 (a script that fails), got {text!r}"
        raise ValueError(msg)
    return code


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400 or value != value:
        msg = f"SECONDS: expected virtual seconds above 0 (at most a day), got {text!r}"
        raise ValueError(msg)
    return value


def crash_points() -> tuple[str, ...]:
    """The proxy's crash points as the REPL names them (``after-expose``), in backup order."""
    from vcbsim.reference._workflow import CRASH_POINTS

    return tuple(p.removeprefix("proxy.") for p in CRASH_POINTS)


def _crash_point(text: str) -> str:
    points = crash_points()
    if text not in points:
        msg = f"POINT: expected one of {', '.join(points)}, got {text!r}"
        raise ValueError(msg)
    return text


def _fault_name(text: str) -> str:
    from vcbsim.simulator import make_fault

    try:
        make_fault(text)
    except Exception:
        msg = f"FAULT: expected a vSphere fault name such as GenericVmConfigFault or FileLocked, got {text!r}"
        raise ValueError(msg) from None
    return text


def _plain(text: str) -> str:
    return text


#: The one-command faults of the REPL, by name.
FAULT_PRESETS: dict[str, FaultPreset] = {
    p.name: p
    for p in (
        FaultPreset(
            "prefreeze", "CODE", 1, _exit_code,
            lambda host, vm, code: f"{_script_name(host, vm)} exits {code} when it runs with 'freeze': "
            "ApplicationQuiesceFault, freezeFail for the scripts that ran before it",
            lambda host, vm, code: FaultRule("script", target=_last_freeze_script(host, vm), exit_code=code,
                                       label=f"prefreeze {vm.name}"),
        ),
        FaultPreset(
            "slow-snapshot", "SECONDS", 60.0, _seconds,
            lambda host, vm, sec: f"the snapshot of {vm.name} takes {sec:g} s while the guest is frozen; VSS holds "
            "writes only so long (10 s on ESX 3.5 U2), then the thaw fails: FilesystemQuiesceFault",
            lambda host, vm, sec: FaultRule("snapshot.create", target=vm.name, delay=sec, label=f"slow-snapshot {vm.name}"),
        ),
        FaultPreset(
            "vss", "MESSAGE", "VSS writer failed", _plain,
            lambda host, vm, msg: f"the SYNC driver / VSS cannot freeze {vm.name} ({msg}): freezeFail for every "
            "script, no snapshot",
            lambda host, vm, msg: FaultRule("quiesce.engage", target=vm.name, message=msg, label=f"vss {vm.name}"),
        ),
        FaultPreset(
            "crash", "POINT", "after-expose", _crash_point,
            lambda host, vm, point: f"the proxy process dies at {point} in the next backup (of any VM: a crash point "
            "belongs to the proxy, not to a VM); the run after it cleans up what it left",
            lambda host, vm, point: FaultRule("crash", target=f"proxy.{point}", label=f"crash {vm.name}"),
        ),
        FaultPreset(
            "remove", "FAULT", "GenericVmConfigFault", _fault_name,
            lambda host, vm, fault: f"removing {vm.name}'s snapshot fails once with {fault} (the proxy retries)",
            lambda host, vm, fault: FaultRule("snapshot.remove", target=vm.name, fault=fault, label=f"remove {vm.name}"),
        ),
    )
}


def _script_name(host: Any, vm: Any) -> str:
    path = _last_freeze_script(host, vm)
    if path == "*":
        return "the VM's last pre-freeze script"
    return f"{path.replace(chr(92), '/').rsplit('/', 1)[-1]} (the last pre-freeze script of {vm.name})"


def _last_freeze_script(host: Any, vm: Any) -> str:
    """The path of the last script that runs with ``freeze`` on this host's profile (the one
    list VMware Tools builds for it: ``VMwareTools.script_plan``)."""
    tools = vm.tools
    plan = tools.script_plan(host.profile) if tools is not None and host is not None else None
    entries = plan.entries if plan is not None else ()
    return entries[-1].path if entries else "*"


class TeachSession:
    """The demo host, a reference proxy in a scratch directory, and a backup medium.

    Args:
        workdir: where the proxy exposes snapshots (``<workdir>/proxy``) and keeps the medium
            (``<workdir>/medium``); a new temporary directory (removed by ``close``) if omitted.
        seed: the host's seed.
        inventory: ``"demo"`` (the default) or ``"era"``, the VM per era-specific case
            (``Host.demo(inventory=...)``).
        profile: the host profile (default: ``Host.demo``'s).
    """

    def __init__(
        self, workdir: str | Path | None = None, *, seed: int = 0, inventory: str = "demo", profile: str | None = None,
    ) -> None:
        self._own_workdir = workdir is None
        self.seed = seed
        self.host = Host.demo(seed=seed, inventory=inventory) if profile is None else Host.demo(
            profile, seed=seed, inventory=inventory
        )
        self.workdir = Path(tempfile.mkdtemp(prefix="vcbsim-teach-")) if workdir is None else Path(workdir)
        self._catalog: Any = None
        self.mounts: list[str] = []
        self.backup: GuidedBackup | None = None
        self._build()

    # -- construction ---------------------------------------------------------------------

    def _build(self) -> None:
        from vcbsim.reference import BackupProxy, InProcessHostClient

        self.client = InProcessHostClient(self.host)
        self.proxy = BackupProxy(self.client, self.workdir / "proxy")
        self.mounts = []
        self.held_writes: list[HeldWrite] = []
        self.host.trace.subscribe(self._track_mounts)
        self.handoff = Handoff(self.host)
        self.host.on_quiesce_step(self.handoff.pause)

    @property
    def proxy_root(self) -> Path:
        return self.workdir / "proxy"

    @property
    def catalog(self) -> Any:
        from vcbsim.reference import Catalog

        if self._catalog is None:
            self._catalog = Catalog(self.workdir / "medium")
        return self._catalog

    def _track_mounts(self, ev: Event) -> None:
        if ev.kind == "mount":
            self.mounts.append(self.show_path(str(ev.details.get("path"))))
        elif ev.kind == "unmount":
            p = self.show_path(str(ev.details.get("path")))
            if p in self.mounts:
                self.mounts.remove(p)
            else:  # unmounting a directory removes everything below it
                self.mounts = [m for m in self.mounts if not m.startswith(p + "/")]

    def show_path(self, path: str) -> str:
        """A proxy path as the learner sees it: ``<proxy>/win2003-sql/letters/C``."""
        root = str(self.proxy_root)
        return "<proxy>" + path[len(root) :] if path.startswith(root) else path

    def reset(self) -> None:
        """Rebuild the host from scratch, forget the backup, empty the proxy and the medium.

        A backup in progress is dropped where it stands: its host, proxy directory and medium
        are all rebuilt, so nothing it left matters."""
        if self.backup is not None and self.handoff.paused is not None:
            self.backup.finish_quietly()  # the proxy must leave the host before it is rebuilt
        self.backup = None
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None
        for sub in ("proxy", "medium"):
            p = self.workdir / sub
            if p.exists():
                from vcbsim.reference._workflow import force_remove

                force_remove(p)
        self.host.reset()
        self._build()

    def close(self) -> None:
        if self.backup is not None:
            with contextlib.suppress(Exception):  # closing: what the run did is not shown any more
                self.backup.finish_quietly()
            self.backup = None
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None
        if self._own_workdir and self.workdir.exists():
            from vcbsim.reference._workflow import force_remove

            force_remove(self.workdir)
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- state ------------------------------------------------------------------------------

    def vm(self, name: str) -> Any:
        return self.host.find_vm(name)

    def frame(self, vm: Any, seq: int | None = None) -> Frame:
        """The state of ``vm`` now."""
        tools = vm.tools
        chains = tuple(
            DiskChain(
                d.label,
                tuple((layer.label, layer.grain_count * d.disk.grain_size) for layer in d.disk.chain()),
            )
            for d in vm.disks
        )
        return Frame(
            seq=len(self.host.trace) if seq is None else seq,
            time=self.host.clock.now,
            phase=tools.phase if tools is not None else "IDLE",
            frozen=bool(tools.frozen) if tools is not None else False,
            snapshots=tuple(
                (s.moref, s.name, s.parent.moref if s.parent else None, s.quiesced) for s in vm.snapshots()
            ),
            current=vm.current_snapshot.moref if vm.current_snapshot else None,
            chains=chains,
            mounts=tuple(self.mounts),
        )

    def hold_write(self, vm: Any, path: str, data: bytes) -> None:
        """A guest write while the guest is frozen: held until the guest thaws."""
        self.held_writes.append(HeldWrite(vm, path, data))

    def land_held_writes(self) -> list[str]:
        """Write what the guest held, once it is no longer frozen; says what landed."""
        out: list[str] = []
        left: list[HeldWrite] = []
        for w in self.held_writes:
            if w.vm.tools is not None and w.vm.tools.frozen:
                left.append(w)
                continue
            self.host.guest_fs(w.vm).write_bytes(w.path, w.data)
            out.append(f"the write held while {w.vm.name} was frozen landed: {len(w.data)} bytes to {w.path}")
        self.held_writes = left
        return out

    def start_backup(self, vm_name: str, type: str = "fullvm", kind: str | None = None) -> GuidedBackup:
        """Prepare a backup; nothing happens until ``GuidedBackup.step()``."""
        if self.backup is not None and not self.backup.finished:
            from vcbsim.simulator import StateError

            msg = f"a backup of {self.backup.vm.name} is in progress: finish it with 'run' (or 'reset')"
            raise StateError(msg)
        vm = self.vm(vm_name)
        run = self.proxy.run(f"name:{vm.name}", type, catalog=self.catalog, kind=kind)
        self.backup = GuidedBackup(self, vm, run)
        return self.backup


@dataclass(frozen=True, slots=True)
class HeldWrite:
    """A guest write made while the guest was frozen: it lands when the guest thaws."""

    vm: Any
    path: str
    data: bytes


class Handoff:
    """Runs the proxy on a worker thread that pauses after each quiesce step (WF-1a … WF-1d).

    A strict handoff: the learner's thread waits while the worker runs and the worker waits
    while the learner looks, so one thread runs at a time and the outcome never depends on
    scheduling. The waits are on a ``threading.Condition`` over the host's lock, which the
    waiting worker thereby releases (it holds it inside ``create_snapshot``).
    """

    def __init__(self, host: Host) -> None:
        self._cond = threading.Condition(host.lock)
        self._turn = "learner"
        #: the step the worker is paused after, or ``None`` (not started, or not in a snapshot)
        self.paused: str | None = None
        self._thread: threading.Thread | None = None
        self._outcome: tuple[bool, Any] | None = None

    def pause(self, vm: Any, step: str) -> None:
        """``Host.on_quiesce_step`` callback: hand over to the learner (only on the worker)."""
        if threading.current_thread() is not self._thread:
            return  # a snapshot the learner takes by hand runs through
        with self._cond:
            self.paused = step
            self._turn = "learner"
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._turn == "worker")
            self.paused = None

    def run(self, work: Callable[[], Any]) -> tuple[bool, Any]:
        """Start ``work`` on the worker, or resume it where it paused; returns ``(True,
        result)`` once it returned, ``(False, step)`` when it paused after ``step``. What it
        raised is raised here."""
        with self._cond:
            if self._thread is None:
                self._outcome = None
                self._thread = threading.Thread(target=self._work, args=(work,), name="vcbsim-teach-proxy",
                                                daemon=True)
                self._turn = "worker"
                self._thread.start()
            else:
                self._turn = "worker"
                self._cond.notify_all()
            self._cond.wait_for(lambda: self._turn == "learner")
            if self.paused is not None:
                return False, self.paused
            outcome, self._outcome, thread, self._thread = self._outcome, None, self._thread, None
        thread.join()
        assert outcome is not None
        ok, value = outcome
        if not ok:
            raise value
        return True, value

    def _work(self, work: Callable[[], Any]) -> None:
        try:
            outcome: tuple[bool, Any] = (True, work())
        except BaseException as exc:  # handed to the learner's thread, raised there
            outcome = (False, exc)
        with self._cond:
            self._outcome = outcome
            self._turn = "learner"
            self._cond.notify_all()


@dataclass(slots=True)
class GuidedBackup:
    """One reference backup run, handed out one documented step at a time."""

    session: TeachSession
    vm: Any
    run: Any
    pending: list[StepView] = field(default_factory=list)
    done: list[StepView] = field(default_factory=list)
    engine_done: bool = False
    tail: list[Event] = field(default_factory=list)
    died: str | None = None
    _frames: dict[int, Frame] = field(default_factory=dict)
    _last: Frame | None = None

    @property
    def type(self) -> str:
        return str(self.run.result.type)

    @property
    def result(self) -> Any:
        return self.run.result

    @property
    def finished(self) -> bool:
        return self.engine_done and not self.pending

    def step(self) -> StepView | None:
        """Do (or reveal) the next documented step; ``None`` when the backup is over."""
        while not self.pending and not self.engine_done:
            self._advance()
        if not self.pending:
            return None
        view = self.pending.pop(0)
        self.done.append(view)
        if not self.pending:  # the guest is as this step left it: a thawed guest's held writes land
            view.notes.extend(self.session.land_held_writes())
        r = self.run.result
        if not self.pending and (
            view.step == "WF-3b" or (r.status == "failed" and r.failed_step in ("WF-1", "WF-1f"))
        ):
            # nothing documented is left: let the run close its job now, so it is over
            self.finish_quietly()
        return view

    def run_all(self) -> list[StepView]:
        out: list[StepView] = []
        while (v := self.step()) is not None:
            out.append(v)
        return out

    def finish_quietly(self) -> None:
        """Finish the run (cleanup included) without showing anything."""
        while not self.engine_done:
            self._advance()

    def _advance(self) -> None:
        host = self.session.host
        # the state now (the guest may have written since the last step shown)
        self._last = self.session.frame(self.vm)
        mark = len(host.trace)

        def record(ev: Event) -> None:
            if ev.vm in (None, self.vm.moref):
                self._frames[ev.seq] = self.session.frame(self.vm, ev.seq + 1)

        unsubscribe = host.trace.subscribe(record)
        try:
            returned, more = self.session.handoff.run(self.run.advance)
        except BaseException as exc:
            # the run died (an injected crash, or the proxy refused): it cannot go on; what
            # it recorded before dying is still shown
            self.engine_done = True
            self.died = describe_error(exc)
            self._group([e for e in host.trace.since(mark) if e.vm in (None, self.vm.moref)])
            raise
        finally:
            unsubscribe()
        if returned and not more:
            self.engine_done = True
        events = [e for e in host.trace.since(mark) if e.vm in (None, self.vm.moref)]
        self._group(events, paused=not returned)

    def _group(self, events: list[Event], *, paused: bool = False) -> None:
        """Cut events into documented steps.

        An event without a step (a guest write, a mount, a merge) belongs to the step of the
        next event that names one, if that event continues the same step or starts a new one;
        the pre-backup call's own events (step ``WF-1``) join the step in progress.
        """
        groups: list[tuple[str, list[Event]]] = []
        buffered: list[Event] = []
        for ev in events:
            s = ev.step
            if s in DOC_STEPS:
                if not groups or groups[-1][0] != s:
                    groups.append((s, buffered + [ev]))
                else:
                    groups[-1][1].extend(buffered + [ev])
                buffered = []
            elif s is not None and groups:
                groups[-1][1].extend(buffered + [ev])
                buffered = []
            else:
                buffered.append(ev)
        if buffered:
            if groups:
                groups[-1][1].extend(buffered)
            elif self.pending:
                self.pending[-1].events.extend(buffered)
            elif self.done:
                # after the last step (the job's op.ok / op.fail): shown when the run is over
                self.tail.extend(buffered)
            else:
                groups.append(("WF-1", buffered))
        previous = self.pending[-1].step if self.pending else (self.done[-1].step if self.done else None)
        for i, (step, evs) in enumerate(groups):
            last = i == len(groups) - 1
            # paused after a step: the state now is that step's, exactly
            after = self.session.frame(self.vm) if paused and last else (
                self._frames.get(evs[-1].seq) or self.session.frame(self.vm))
            skipped: tuple[str, ...] = ()
            if step in DOC_STEPS:
                i = DOC_STEPS.index(previous) if previous in DOC_STEPS else -1
                j = DOC_STEPS.index(step)
                skipped = DOC_STEPS[i + 1 : j] if j > i + 1 else ()
            self.pending.append(StepView(step, evs, self._last, after, skipped))
            self._last = after
            previous = step
