"""Declarative, deterministic fault injection (Jepsen's nemesis, vcsim's FaultInjectionRule).

A ``FaultRule`` says *which operation*, *which object*, *when* (skip the first ``after``
matches), *how often* (``times``; ``None`` is always), *with what probability* (drawn from the
host's one ``SimRandom``) and *what happens*: a vSphere fault, an extra virtual delay, a
script exit code, or a crash point. Code that can fail asks ``FaultInjector.check`` at the
point where the real host could fail.

Operations (``OPERATIONS``) are the places that consult the injector. A rule's ``target`` is a
glob matched against the object's name (a VM's display name, a script's path, a crash point)
or, for operations on a VM, against its moref (``vm-3``) as well.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ._errors import InvalidInputError
from ._random import SimRandom
from ._trace import Trace

__all__ = ["FaultRule", "FaultInjector", "OPERATIONS", "RESTORE_FAULTS"]

OPERATIONS: dict[str, str] = {
    "script": "a quiescing script runs (target: script path glob); exit_code or delay apply",
    "script.launch": "a quiescing script is launched (target: path glob); fault = cannot launch",
    "quiesce.engage": "the SYNC driver / VSS freezes the guest (target: VM name)",
    "quiesce.disengage": "the SYNC driver / VSS thaws the guest",
    "snapshot.create": "the host creates the snapshot; delay = how long it takes",
    "snapshot.remove": "the host removes a snapshot and consolidates",
    "consolidate": "a redo-log layer merges into its parent",
    "disk.write": "a guest write reaches the virtual disk (fault NoDiskSpace = datastore full)",
    "disk.read": "a disk is read as of a snapshot (export, mount)",
    "export": "the proxy exports a disk image",
    "mount": "the proxy mounts a snapshot volume",
    "unmount": "the proxy unmounts",
    "copy": "the backup software copies data to the medium",
    "crash": "a crash point (target: point name glob, e.g. 'proxy.after-snapshot')",
    # the restore calls (issue 16); a rule's fault must be one the method declares (RESTORE_FAULTS)
    "vm.create": "Folder.CreateVM_Task makes a VM (target: its name); nothing is registered or kept",
    "vm.register": "Folder.RegisterVM_Task adds the VM of a .vmx (target: the VM's name); nothing is registered",
    "vdisk.create": "VirtualDiskManager.CreateVirtualDisk_Task (target: the disk's datastore path)",
    "vdisk.copy": "VirtualDiskManager.CopyVirtualDisk_Task (target: the destination's datastore path)",
    "datastore.put": "a /folder PUT fails part way with the fault (NoDiskSpace: HTTP 507); nothing is kept "
                     "(target: the datastore path, [ds] dir/file)",
    "datastore.put.drop": "a /folder PUT loses its connection part way: no answer, nothing is kept "
                          "(target: the datastore path)",
}
#: the faults each restore call may raise, as the vSphere API reference lists them for the method
#: (a rule's fault must be one of these or a subclass: ``NoDiskSpace`` is a ``FileFault``):
#: Folder.CreateVM_Task, Folder.RegisterVM_Task, VirtualDiskManager.CreateVirtualDisk_Task and
#: CopyVirtualDisk_Task (API 2.5, "Faults" of each method); a /folder PUT answers HTTP errors, whose
#: causes are the host's file faults
RESTORE_FAULTS: dict[str, tuple[str, ...]] = {
    "vm.create": ("AlreadyExists", "DuplicateName", "FileFault", "InsufficientResourcesFault", "InvalidDatastore",
                  "InvalidName", "InvalidState", "NotSupported", "OutOfBounds", "VmConfigFault"),
    "vm.register": ("AlreadyExists", "DuplicateName", "FileFault", "InsufficientResourcesFault", "InvalidArgument",
                    "InvalidDatastore", "InvalidName", "InvalidState", "NotFound", "OutOfBounds", "VmConfigFault"),
    "vdisk.create": ("FileFault", "InvalidDatastore"),
    "vdisk.copy": ("FileFault", "InvalidDatastore", "InvalidDiskFormat"),
    "datastore.put": ("FileFault", "InvalidDatastore"),
}


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One injected fault. Frozen: the injector keeps the hit counts, not the rule."""

    operation: str
    target: str = "*"
    fault: str | None = None
    message: str | None = None
    delay: float = 0.0
    exit_code: int | None = None
    after: int = 0
    times: int | None = 1
    probability: float = 1.0
    label: str = ""

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            raise InvalidInputError(
                "FaultRule.operation",
                expected="one of " + ", ".join(sorted(OPERATIONS)),
                got=self.operation,
            )
        if not 0.0 <= self.probability <= 1.0:
            raise InvalidInputError(
                "FaultRule.probability", expected="a number from 0.0 to 1.0", got=self.probability
            )
        if self.delay < 0:
            raise InvalidInputError(
                "FaultRule.delay", expected="virtual seconds >= 0", got=self.delay
            )
        if self.times is not None and self.times < 1:
            raise InvalidInputError(
                "FaultRule.times", expected="None (always) or a count >= 1", got=self.times
            )
        if self.fault is not None:
            from ._faults import make_fault

            made = make_fault(self.fault)  # validates the fault name with a clear error
            allowed = RESTORE_FAULTS.get(self.operation)
            if allowed is not None and not _declared(made, allowed):
                msg = f"FaultRule.fault of {self.operation}"
                raise InvalidInputError(
                    msg,
                    expected="a fault the method declares: " + ", ".join(allowed) + " (or a subclass, "
                             "e.g. NoDiskSpace, FileAlreadyExists)",
                    got=self.fault,
                    hint="vSphere API reference, the method's Faults",
                )

    def matches(self, operation: str, target: str) -> bool:
        return operation == self.operation and fnmatch.fnmatchcase(target, self.target)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _declared(fault: Any, names: tuple[str, ...]) -> bool:
    from pyVmomi import vim, vmodl

    classes = [getattr(ns, n) for n in names for ns in (vim.fault, vmodl.fault) if hasattr(ns, n)]
    return any(isinstance(fault, c) for c in classes)


@dataclass(slots=True)
class _Armed:
    rule: FaultRule
    seen: int = 0
    fired: int = 0


@dataclass(slots=True)
class FaultInjector:
    """Holds the armed rules of one host and decides, deterministically, which fire.

    ``on_crash(target)`` is called when a ``crash`` rule fires, before ``check`` returns it
    (the caller would then raise ``SimulatedCrash``). ``None`` (the default) does nothing; a
    callback that does not return makes the crash real, e.g. ``os.kill(os.getpid(),
    signal.SIGKILL)`` (``VCBSIM_CRASH_AT`` in the CLI) for kill tests.
    """

    random: SimRandom
    trace: Trace | None = None
    #: moref -> display name, kept by the host, so a rule may name a VM either way.
    aliases: dict[str, str] = field(default_factory=dict)
    on_crash: Callable[[str], None] | None = None
    _armed: list[_Armed] = field(default_factory=list)

    def add(self, rule: FaultRule | None = None, /, **kwargs: Any) -> FaultRule:
        """Arm a rule (or build one from keyword arguments) and return it."""
        if rule is None:
            rule = FaultRule(**kwargs)
        elif kwargs:
            rule = replace(rule, **kwargs)
        self._armed.append(_Armed(rule))
        return rule

    def clear(self) -> None:
        self._armed.clear()

    @property
    def rules(self) -> list[FaultRule]:
        return [a.rule for a in self._armed]

    def hits(self) -> dict[str, int]:
        """How often each rule fired (by label or operation:target), for kit statistics."""
        return {(a.rule.label or f"{a.rule.operation}:{a.rule.target}"): a.fired for a in self._armed}

    def check(self, operation: str, target: str, *, vm: str | None = None) -> FaultRule | None:
        """Return the first rule that fires for this operation on this target, or ``None``."""
        names = {target}
        for ref in (target, vm):
            if ref is not None:
                names.add(ref)
                names.add(self.aliases.get(ref, ref))
        for armed in self._armed:
            rule = armed.rule
            if not any(rule.matches(operation, name) for name in names):
                continue
            if rule.times is not None and armed.fired >= rule.times:
                continue
            armed.seen += 1
            if armed.seen <= rule.after:
                continue
            if rule.probability < 1.0 and self.random.random() >= rule.probability:
                continue
            armed.fired += 1
            if self.trace is not None:
                details: dict[str, Any] = {"rule": rule.label or rule.operation, "operation": operation, "target": target}
                if rule.fault:
                    details["fault"] = rule.fault
                if rule.delay:
                    details["delay"] = rule.delay
                if rule.exit_code is not None:
                    details["exit_code"] = rule.exit_code
                self.trace.emit("host", "fault.injected", vm=vm, **details)
            if operation == "crash" and self.on_crash is not None:
                self.on_crash(target)
            return rule
        return None
