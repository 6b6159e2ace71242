r"""The teaching session behind ``vcbsim repl`` and ``vcbsim demo``: no terminal, no rich.

A ``TeachSession`` holds the demo host, a reference proxy working in a scratch directory and a
backup medium (catalog). A ``GuidedBackup`` drives one reference backup run and hands it out one
*documented* step at a time (seed steps 1a-1f, 2, 3a, 3b), each with the trace events of the
step and the state of the VM recorded right after it: the quiesce state, the snapshot tree, the
redo-log chains with their sizes, and what is mounted on the proxy.

How the steps are cut: the proxy asks the host for a quiesced snapshot in one call (as VCB does
with one ``CreateSnapshot_Task``), and the host and VMware Tools run 1a-1e inside it. The
session therefore records the state at every trace event while the call runs, and ``step``
shows 1a, 1b, 1c, 1d and 1e one after the other from those records. Steps 1f, 2, 3a and 3b run
when they are asked for (3a and 3b are one proxy call, shown as two steps the same way), so a
file written between two steps lands in the redo log while the backup reads the snapshot.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
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


#: The one-command faults of the REPL: name -> (what it does, builder(vm, arg) -> FaultRule).
FAULT_PRESETS: dict[str, tuple[str, Callable[[Any, str | None], FaultRule]]] = {
    "prefreeze": (
        "the VM's last pre-freeze script exits non-zero (default 1): ApplicationQuiesceFault, freezeFail",
        lambda vm, arg: FaultRule(
            "script",
            target=_last_freeze_script(vm),
            exit_code=int(arg) if arg else 1,
            label="prefreeze",
        ),
    ),
    "slow-snapshot": (
        "the snapshot takes SECONDS (default 60) while the guest is frozen: VSS gives up, FilesystemQuiesceFault",
        lambda vm, arg: FaultRule(
            "snapshot.create", target=vm.name, delay=float(arg) if arg else 60.0, label="slow-snapshot"
        ),
    ),
    "vss": (
        "the SYNC driver / VSS cannot freeze the guest: freezeFail for every script, no snapshot",
        # the quiesce operations are checked against the VM's moref; '*' with times=1 is the
        # next quiesce on this host, whichever VM it is
        lambda vm, arg: FaultRule(
            "quiesce.engage", target="*", fault=None, message=arg or "VSS writer failed", label="vss"
        ),
    ),
    "crash": (
        "the proxy process dies at a point (after-snapshot, after-expose (default), after-copy); the next run cleans up",
        lambda vm, arg: FaultRule("crash", target=f"proxy.{arg or 'after-expose'}", label="crash"),
    ),
    "remove": (
        "removing the snapshot fails once (the proxy retries)",
        lambda vm, arg: FaultRule("snapshot.remove", target=vm.name, fault=arg or "GenericVmConfigFault", label="remove"),
    ),
}


def _last_freeze_script(vm: Any) -> str:
    tools = vm.tools
    plan = tools.scripts("scripts.d") if tools is not None else None
    entries = [e for e in (plan.entries if plan is not None else ()) if not e.legacy]
    if entries:
        return entries[-1].path
    if plan is not None and plan.entries:
        return plan.entries[0].path
    return "*"


class TeachSession:
    """The demo host, a reference proxy in a scratch directory, and a backup medium.

    Args:
        workdir: where the proxy exposes snapshots (``<workdir>/proxy``) and keeps the medium
            (``<workdir>/medium``); a new temporary directory (removed by ``close``) if omitted.
        seed: the host's seed.
    """

    def __init__(self, workdir: str | Path | None = None, *, seed: int = 0) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="vcbsim-teach-")) if workdir is None else Path(workdir)
        self.seed = seed
        self.host = Host.demo(seed=seed)
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
        self.host.trace.subscribe(self._track_mounts)

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
            more = self.run.advance()
        except BaseException as exc:
            # the run died (an injected crash, or the proxy refused): it cannot go on; what
            # it recorded before dying is still shown
            self.engine_done = True
            self.died = f"{type(exc).__name__}: {exc}"
            self._group([e for e in host.trace.since(mark) if e.vm in (None, self.vm.moref)])
            raise
        finally:
            unsubscribe()
        if not more:
            self.engine_done = True
        events = [e for e in host.trace.since(mark) if e.vm in (None, self.vm.moref)]
        self._group(events)

    def _group(self, events: list[Event]) -> None:
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
        for step, evs in groups:
            after = self._frames.get(evs[-1].seq) or self.session.frame(self.vm)
            skipped: tuple[str, ...] = ()
            if step in DOC_STEPS:
                i = DOC_STEPS.index(previous) if previous in DOC_STEPS else -1
                j = DOC_STEPS.index(step)
                skipped = DOC_STEPS[i + 1 : j] if j > i + 1 else ()
            self.pending.append(StepView(step, evs, self._last, after, skipped))
            self._last = after
            previous = step
