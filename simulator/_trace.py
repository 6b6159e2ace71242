"""The event trace: every observable step of host, guest and proxy, in one log per host.

Why one log: the conformance checker judges order across actors (a proxy's commit against a
guest's thaw script), so events from all actors must share one sequence and one virtual clock.
The log exports as JSON Lines; ``schemas/trace.schema.json`` (shipped in the package) is the
published schema that traces recorded anywhere else must follow.

Event kinds (``kind``) and the details each carries are listed in ``KINDS``. Proxy-side
operations follow Jepsen's history model: ``op.invoke`` then exactly one of ``op.ok``,
``op.fail`` or ``op.info`` (outcome unknown, e.g. after a timeout) with the same ``op`` and
``op_id``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from ._clock import VirtualClock

__all__ = ["Event", "Trace", "KINDS", "ACTORS", "SCHEMA_VERSION", "load_jsonl", "schema"]

SCHEMA_VERSION = 1
Actor = Literal["host", "guest", "proxy"]
ACTORS: tuple[str, ...] = ("host", "guest", "proxy")

#: Every event kind, with the details it carries. The JSON Schema and the docs derive from it.
KINDS: dict[str, str] = {
    # host
    "host.reset": "the host was rebuilt from its profile {profile}",
    "vm.create": "a VM was registered {name, os, power?, disks?}",
    "vm.create.fail": "a VM create or register failed and left nothing registered {name, op}",
    "vm.register": "a VM's .vmx was registered {name, vmx?, os?, power?, disks}",
    "vm.unregister": "a VM left the inventory, its files kept {name, vmx}",
    "vm.destroy": "a VM left the inventory and its files were deleted {name}",
    "vm.disk.add": "a disk was added to a VM {disk, file, capacity, created}",
    "vm.disk.remove": "a disk was removed from a VM {disk, file, destroyed}",
    "vdisk.create": "a disk file no VM holds was created {name, capacity}",
    "vdisk.copy": "a disk file was copied {source, dest, capacity}",
    "vdisk.delete": "a disk file no VM holds was deleted {name}",
    "guest.file.put": "a file was put into the guest by guest operations {path, size, existed}",
    "vm.power": "power state changed {state}",
    "vm.reconfigure": "VM configuration changed {changes}",
    "task.start": "a host task started {task, op}",
    "task.end": "a host task ended {task, op, state: success|error, fault?}",
    "snapshot.create.start": "snapshot creation began {name, quiesce, memory}",
    "snapshot.create": "the snapshot exists and every disk has a new redo log {snapshot, name, quiesced, redo: [file]}",
    "snapshot.create.fail": "snapshot creation failed {name, fault, message}",
    "snapshot.rollback": "a just-created snapshot was rolled back (removed, redo logs merged) {snapshot, reason}",
    "snapshot.remove": "a snapshot was removed {snapshot, name, consolidate}",
    "snapshot.revert": "the VM was reverted to a snapshot {snapshot}",
    "disk.consolidate": "a redo-log layer was merged {disk, layer, into, grains}",
    "disk.export": "a disk was read out as of a snapshot {disk, snapshot, bytes}",
    "nfc.lease": "an NFC export lease changed state {lease, state: initializing|ready|done|error, snapshot?, disks?, reason?}",
    "nfc.read": "a disk was downloaded through an NFC lease as stream-optimized VMDK {lease, disk, snapshot?, bytes}",
    "nfc.write": "a disk was uploaded through an NFC import lease {lease, disk, bytes}",
    "disk.hotadd": "a VM's disk was attached to a proxy VM: as of a snapshot read-only, or live and writable (snapshot null) {proxy, disk, snapshot, proxy_disk, file, writable, device}",
    "disk.hotremove": "a hot-added disk was removed from the proxy VM {proxy, disk, snapshot, proxy_disk}",
    "disk.hotread": "the proxy VM read a hot-added disk (a read of the target's disk) {proxy, disk, snapshot, bytes}",
    "disk.hotwrite": "the proxy VM wrote a writable hot-added disk (a hot-add restore) {proxy, disk, bytes}",
    "disk.discard": "a nonpersistent disk's session redo log was deleted with its writes {disk, layer, grains, reason: power off|revert|disk removed}",
    "fault.injected": "a fault rule fired {rule, operation, target, fault?, delay?}",
    "crash": "an injected crash point fired {point}",
    "host.call.refused": "the host refused a call its profile's API lacks {method, api_version, since, parameter?}",
    # guest
    "guest.write": "a guest wrote a file {path, size, sha256}",
    "guest.delete": "a guest deleted a file {path}",
    "quiesce.start": "VMware Tools began a quiesce operation {provider, layout, timeout}",
    "script.run": "a quiescing script ran {path, arg, exit_code, duration, legacy} (exit_code null: could not launch)",
    "quiesce.engage": "the SYNC driver or VSS froze the guest {provider, ok, error?}",
    "quiesce.disengage": "the SYNC driver or VSS thawed the guest {provider, ok, error?}",
    "quiesce.abort": "the guest abort timer fired or the host aborted {state, reason}",
    "quiesce.end": "VMware Tools finished the operation {outcome: done|error|aborted, code, message}",
    # proxy
    "op.invoke": "the proxy began an operation {op, op_id, ...}",
    "op.ok": "the operation succeeded {op, op_id, ...}",
    "op.fail": "the operation failed and did not happen {op, op_id, error}",
    "op.info": "the operation's outcome is unknown (timeout, crash) {op, op_id, error}",
    "mount": "a snapshot volume or export is visible on the proxy {path, kind: fullvm|file, letter?}",
    "unmount": "it is gone from the proxy {path}",
    "note": "free text for teaching and debugging {text}",
}


@dataclass(frozen=True, slots=True)
class Event:
    """One observable step. ``step`` names the seed's step (``WF-1a`` ...) where one applies."""

    seq: int
    time: float
    actor: str
    kind: str
    vm: str | None = None
    step: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "kind": self.kind,
            "vm": self.vm,
            "step": self.step,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        return cls(
            seq=int(d["seq"]),
            time=float(d["time"]),
            actor=str(d["actor"]),
            kind=str(d["kind"]),
            vm=d.get("vm"),
            step=d.get("step"),
            details=dict(d.get("details") or {}),
        )

    def line(self) -> str:
        """One readable line, as the REPL and the demo print it."""
        where = f" {self.vm}" if self.vm else ""
        step = f" [{self.step}]" if self.step else ""
        det = " ".join(f"{k}={v}" for k, v in self.details.items())
        return f"#{self.seq:<4} t={self.time - _t0(self.time):>9.3f}s {self.actor:<5} {self.kind}{step}{where} {det}".rstrip()


def _t0(_: float) -> float:
    from ._clock import EPOCH

    return EPOCH


class Trace:
    """Append-only event log with subscribers (the REPL and the checker listen live)."""

    def __init__(self, clock: VirtualClock, *, limit: int | None = None, sink: IO[str] | None = None) -> None:
        """``limit`` keeps only the newest events in memory (a long-running ``vcbsim serve``);
        ``sink`` receives every event as a JSON line as it happens, so nothing is lost."""
        if limit is not None and limit < 1:
            msg = f"trace limit: expected None or a count >= 1, got {limit!r}"
            raise ValueError(msg)
        self.clock = clock
        self.limit = limit
        self.sink = sink
        self.events: list[Event] = []
        self.dropped = 0
        self._subscribers: list[Callable[[Event], None]] = []

    def emit(
        self,
        actor: str,
        kind: str,
        /,
        *,
        vm: str | None = None,
        step: str | None = None,
        **details: Any,
    ) -> Event:
        """Append one event stamped with the current virtual time and notify subscribers."""
        if actor not in ACTORS:
            msg = f"trace actor: expected one of {ACTORS}, got {actor!r}"
            raise ValueError(msg)
        if kind not in KINDS:
            msg = f"trace kind: expected one of the kinds in vcbsim.simulator.KINDS, got {kind!r}"
            raise ValueError(msg)
        ev = Event(self.dropped + len(self.events), self.clock.now, actor, kind, vm, step, details)
        self.events.append(ev)
        if self.sink is not None:
            self.sink.write(json.dumps(ev.to_dict(), default=str, sort_keys=True) + "\n")
        if self.limit is not None and len(self.events) > self.limit:
            # drop the oldest tenth at once: amortised O(1) per event
            cut = max(1, self.limit // 10)
            del self.events[:cut]
            self.dropped += cut
        for fn in list(self._subscribers):
            fn(ev)
        return ev

    def subscribe(self, fn: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``fn`` for every new event; returns a function that unsubscribes."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    def since(self, seq: int) -> list[Event]:
        """Events with ``seq`` at or after ``seq`` that are still kept (``len(trace)`` is a mark)."""
        return self.events[max(0, seq - self.dropped) :]

    def of_kind(self, *kinds: str, vm: str | None = None) -> list[Event]:
        return [e for e in self.events if e.kind in kinds and (vm is None or e.vm == vm)]

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        """Events emitted so far (kept or dropped): the next event's ``seq``."""
        return self.dropped + len(self.events)

    def write_jsonl(self, target: str | Path | IO[str]) -> None:
        """Export as JSON Lines: one event object per line, in ``seq`` order."""
        if isinstance(target, str | Path):
            with open(target, "w", encoding="utf-8") as fh:
                self.write_jsonl(fh)
            return
        for ev in self.events:
            target.write(json.dumps(ev.to_dict(), default=str, sort_keys=True) + "\n")

    def to_jsonl(self) -> str:
        return "".join(json.dumps(e.to_dict(), default=str, sort_keys=True) + "\n" for e in self.events)


def load_jsonl(source: str | Path | Iterable[str]) -> list[Event]:
    """Read a JSON Lines trace; each line is validated against the published schema."""
    import jsonschema

    lines: Iterable[str]
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and len(source) < 4096 and Path(source).exists()
    ):
        lines = Path(source).read_text(encoding="utf-8").splitlines()
    elif isinstance(source, str):
        lines = source.splitlines()
    else:
        lines = source  # type: ignore[assignment]
    validator = jsonschema.Draft202012Validator(schema())
    out: list[Event] = []
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            msg = f"trace line {n}: expected one JSON object, got invalid JSON ({exc.msg})"
            raise ValueError(msg) from None
        errors = sorted(validator.iter_errors(obj), key=str)
        if errors:
            msg = f"trace line {n}: does not match trace.schema.json: {errors[0].message}"
            raise ValueError(msg)
        out.append(Event.from_dict(obj))
    return out


def schema() -> dict[str, Any]:
    """The published JSON Schema of one trace line."""
    from importlib import resources

    text = resources.files(__package__).joinpath("schemas/trace.schema.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def build_schema() -> dict[str, Any]:
    """Generate the schema from ``KINDS`` (a test keeps the shipped file equal to this)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://vcbsim.invalid/schemas/trace.schema.json",
        "title": "vcbsim trace event",
        "description": f"One line of a vcbsim JSON Lines trace (schema version {SCHEMA_VERSION}).",
        "type": "object",
        "required": ["seq", "time", "actor", "kind", "details"],
        "additionalProperties": False,
        "properties": {
            "seq": {"type": "integer", "minimum": 0},
            "time": {"type": "number", "description": "virtual seconds since the Unix epoch"},
            "actor": {"enum": list(ACTORS)},
            "kind": {"enum": sorted(KINDS)},
            "vm": {"type": ["string", "null"]},
            "step": {"type": ["string", "null"]},
            "details": {"type": "object"},
        },
    }
