"""Adapters: the seams through which the kit drives an implementation under test.

Two narrow protocols (httpx's transport idea):

- ``Orchestrator``: the backup product, proxy side. One call, ``backup(host, vm_name,
  policy) -> JobResult``, where ``host`` is the reference proxy's host-client seam
  (``vcbsim.reference.HostClient``: find VM, snapshot, read disks and volumes as of a
  snapshot, the trace to record ``op.*`` / ``mount`` events into).
- ``GuestAgent``: the guest side (what VMware Tools does). The simulator's
  ``VMwareTools`` is one; a vendor's agent replaces it on a VM and is certified on the
  guest-side rules (SCRIPT, QUIESCE, TIMEOUT families).

``FunctionOrchestrator(handler)`` turns a plain function into an orchestrator (for teachers,
tests and mutants); ``ReferenceOrchestrator`` wraps the reference proxy.

``CommandAdapter`` is the design of the adapter for products written in any language: the
kit starts the simulator's SOAP endpoint, runs the product's command with the endpoint's
address, and reads the result the command prints.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from ._capabilities import Capabilities
from ._errors import AdapterError, InvalidDefinition

if TYPE_CHECKING:
    from vcbsim.reference import HostClient

__all__ = [
    "BackupPolicy",
    "JobResult",
    "Orchestrator",
    "GuestAgent",
    "AgentRecorder",
    "FunctionOrchestrator",
    "ReferenceOrchestrator",
    "CommandAdapter",
    "call_adapter",
    "image_digest",
    "image_levels",
]

Mode = Literal["fullvm", "file"]
Level = Literal["full", "differential", "incremental"]
#: The kinds of restore a command may take (``CommandAdapter.restore``): a whole VM as a new VM,
#: over the (powered-off) original, files into the running guest.
RESTORE_KINDS: tuple[str, ...] = ("new", "over", "files")
#: The placeholders of a backup command (``_wire.py`` documents them) and those a restore
#: command takes besides (``{set}`` repeats its argument once per setting).
COMMAND_PLACEHOLDERS: tuple[str, ...] = ("url", "user", "password", "vm", "mode", "level", "kind", "trace", "control",
                                         "workdir")
RESTORE_PLACEHOLDERS: tuple[str, ...] = ("backup_id", "restore", "name", "datastore", "path", "guest_user",
                                         "guest_password", "settings", "set")
#: Every level a backup (file or image) can be asked for.
LEVELS: tuple[str, ...] = ("full", "differential", "incremental")


@dataclass(frozen=True, slots=True)
class BackupPolicy:
    """What one job is asked to do.

    ``mode``: ``fullvm`` (image-level) or ``file`` (file-level, Windows guests only);
    ``level``: ``full``, ``differential`` or ``incremental``. For an image-level job a level
    other than ``full`` (changed areas only, e.g. with changed block tracking) is asked only of
    an orchestrator that declares it in ``image_levels`` (see ``image_levels()``).
    """

    mode: Mode = "fullvm"
    level: Level = "full"

    def __post_init__(self) -> None:
        if self.mode not in ("fullvm", "file"):
            msg = "BackupPolicy.mode"
            raise InvalidDefinition(msg, expected="'fullvm' or 'file'", got=self.mode)
        if self.level not in ("full", "differential", "incremental"):
            msg = "BackupPolicy.level"
            raise InvalidDefinition(msg, expected="'full', 'differential' or 'incremental'", got=self.level)


@dataclass(frozen=True, slots=True)
class JobResult:
    """What the orchestrator reports about one job.

    ``ok``: the job completed and the backup is usable; a job that failed after its copy but
    left a complete backup says so with ``details={"usable": True}`` (it is then the base of
    the next incremental, as ``usable`` on the job's ``op.fail`` tells the checker). ``files``: for file-level backups,
    every file the backup holds, as guest path (``D:\\Data\\orders.csv``) to the SHA-256 of
    its content in the backup; the kit compares them with the guest as of the snapshot
    (CMT-BACKUP-CONTENT). ``disks``: for image-level backups, disk key to
    ``image_digest()`` of the disk image in the backup. ``copied``: for a file-level backup,
    the files this job itself copied (path to SHA-256): for an incremental or differential the
    changed files it stored, judged against the seed's bases (BK-INCR-SINCE-LAST,
    BK-DIFF-SINCE-FULL). ``details["excluded_disks"]``: the keys of the disks an image backup
    left out because no snapshot covers them (IMG-SAYS-UNSNAPSHOTTED, ``_check_disks``).
    ``None`` when the product cannot say: that check then has no occasion,
    and the run's evidence says so (a ``certify`` run fails on a rule nothing exercised).
    ``location``: for a product that declares a backup root (``Capabilities.backup_root``), the
    folder this job's backup was written to (absolute, or relative to the root); the kit reads
    it itself (``_restored``) instead of ``files`` / ``copied`` / ``disks``.
    """

    ok: bool
    error: str = ""
    files: Mapping[str, str] | None = None
    disks: Mapping[int, str] | None = None
    copied: Mapping[str, str] | None = None
    backup_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    location: str | None = None


@runtime_checkable
class Orchestrator(Protocol):
    """A backup product under test (proxy side).

    Optional attribute ``image_levels``: the levels of image-level (``fullvm``) backups the
    product can do, ``("full",)`` when absent; ``("full", "incremental", "differential")``
    lets the kit ask for incremental and differential image backups (``image_levels()``).

    Optional method ``restore(host, vm_name, backup_id, target) -> None``, with
    ``Capabilities(restore=True)``: write what backup ``backup_id`` (``JobResult.backup_id``)
    restores to into the new directory ``target``: for an image backup the VM's files
    (``<vm>.vmx``, one VMDK per disk, and ``<vm>.vmsd`` / ``<vm>.nvram`` where the product
    backs them up), for a file-level backup ``target/<letter>/<path>`` per file. The kit then
    judges what it reads there (``_restored``), not the digests the result reports.

    Optional methods, with ``Capabilities(wire_restore=True)`` (products that do not declare
    it are never asked): ``restore_vm(endpoint, vm_name, backup_id, *, name, over, settings)``
    restores image backup ``backup_id`` of ``vm_name`` through the endpoint
    (``_scenario_restore.RestoreEndpoint``) as a new VM ``name`` or, with ``over=True``, over
    the original (refusing, by raising, while it is powered on), with the ``.vmx`` settings
    ``settings`` changed; ``restore_files(endpoint, vm_name, backup_id, path)`` writes the files
    of file-level backup ``backup_id`` under guest ``path`` into the running guest. Failures
    raise; the kit judges the RESTORE rules (``_scenario_restore``).
    """

    name: str
    version: str

    def backup(self, host: HostClient, vm_name: str, policy: BackupPolicy) -> JobResult:
        """Run one backup job of ``vm_name`` through the seed's workflow. Host faults are the
        product's to handle: return ``JobResult(ok=False, ...)`` rather than raise."""
        ...


@runtime_checkable
class GuestAgent(Protocol):
    """The guest side of quiescing (VMware Tools' ``vmbackup``), exactly as the host calls it.

    ``Host.create_snapshot(..., quiesce=True)`` on a powered-on VM calls
    ``vm.tools.quiesced_snapshot(create, rollback, clock=..., trace=..., faults=..., profile=...,
    vm=..., on_step=...)``; the host also reads ``state`` (``"running"``: Tools answer; ``"not-running"``,
    ``"not-installed"``), ``frozen`` (the host holds guest writes while it is true) and
    ``providers`` (``("vss",)``, ``("sync",)``). The simulator's ``VMwareTools`` is one; a
    vendor's agent replaces it on every VM with ``run(..., guest_agent_factory=...)`` or
    ``vcbsim conform --guest-agent MODULE:FACTORY`` (``factory(default_tools) -> agent``).

    ``quiesced_snapshot`` runs the five steps of "When running the scripts" (seed) around
    ``create()`` (which makes the snapshot and returns it) and returns an object with
    ``snapshot`` (what ``create()`` returned, ``None`` if none was made), ``quiesced`` (bool)
    and ``message``, such as ``vcbsim.simulator.tools.QuiesceResult``; it raises the host's
    faults (``ApplicationQuiesceFault`` ...) as the spec says and calls ``rollback(snapshot)``
    to undo a snapshot it must not keep. It records what it does in ``trace`` (the kit judges
    the guest-side rules from those events and from what the scripts wrote in the guest):
    ``AgentRecorder(trace, clock, vm)`` emits them with the right kinds and steps, so an agent
    need not subclass anything of the simulator's.

    Members the host and the kit also use (``poll`` by the host before an operation on a VM;
    the others when present, before a case's final clean run): ``abort()``
    (the host's ``vmbackup.abort`` for a guest left frozen), ``busy_until`` (a float: virtual
    time until which the guest still works on an operation the host stopped waiting for, as
    3.5-era Tools without the guest abort timer do) and ``poll(now)`` (let the agent finish what
    is due by virtual time ``now``).
    """

    state: str
    frozen: bool
    providers: Sequence[str]

    def quiesced_snapshot(self, create: Callable[[], Any], rollback: Callable[[Any], Any], *, clock: Any,
                          trace: Any, faults: Any, profile: Any, vm: str, timeout: float | None = None,
                          on_step: Callable[[str], None] | None = None, vss_application: bool = True,
                          **options: Any) -> Any:
        """Quiesce, call ``create()``, unquiesce; see the class docstring. ``on_step(step)``,
        when given, is called after each of ``WF-1a`` ... ``WF-1d`` (the REPL steps through);
        ``vss_application``: an application-consistent VSS snapshot was asked (else file-system
        consistent). Accept ``**options`` and pass them on: a later host may add keywords."""
        ...


class AgentRecorder:
    """Records a guest agent's quiesce operation in the host's trace, with the event kinds and
    seed steps the checker expects (``simulator/schemas/trace.schema.json``): the public way for
    an agent that does not build on ``VMwareTools`` to be traced.

    >>> from vcbsim.simulator import Trace, VirtualClock
    >>> rec = AgentRecorder(Trace(VirtualClock()), VirtualClock(), "vm-1")
    >>> rec.start("sync", "scripts.d", timeout=900).kind
    'quiesce.start'
    """

    def __init__(self, trace: Any, clock: Any, vm: str) -> None:
        self.trace, self.clock, self.vm = trace, clock, vm

    def _emit(self, kind: str, step: str, **details: Any) -> Any:
        return self.trace.emit("guest", kind, vm=self.vm, step=step, **details)

    def start(self, provider: str, layout: str, *, timeout: float = 0.0, scripts: int = 0) -> Any:
        """Step 1a begins: the operation, its provider (``vss``/``sync``), script layout
        (``scripts.d``/``legacy``) and abort timer."""
        return self._emit("quiesce.start", "WF-1a", provider=provider, layout=layout, timeout=timeout,
                          scripts=scripts)

    def script(self, path: str, arg: str, exit_code: int | None, *, duration: float = 0.0, legacy: bool = False,
               index: int = 0, error: str | None = None) -> Any:
        """A script ran with ``arg`` (``freeze``: step 1a; ``thaw``/``freezeFail``: step 1e);
        ``exit_code=None`` with ``error``: it could not be launched."""
        extra = {"error": error} if error is not None else {}
        return self._emit("script.run", "WF-1a" if arg == "freeze" else "WF-1e", path=path, arg=arg,
                          exit_code=exit_code, duration=duration, legacy=legacy, index=index, **extra)

    def engage(self, provider: str, ok: bool = True, error: str | None = None) -> Any:
        """Step 1b: the SYNC driver or VSS froze the guest (or failed to)."""
        return self._emit("quiesce.engage", "WF-1b", provider=provider, ok=ok,
                          **({"error": error} if error else {}))

    def disengage(self, provider: str, ok: bool = True, error: str | None = None) -> Any:
        """Step 1d: the guest is thawed."""
        return self._emit("quiesce.disengage", "WF-1d", provider=provider, ok=ok,
                          **({"error": error} if error else {}))

    def abort(self, state: str, reason: str) -> Any:
        """The abort timer fired (or the host aborted) in ``state``."""
        return self._emit("quiesce.abort", "WF-1e", state=state, reason=reason, fired_at=self.clock.now)

    def end(self, outcome: str, code: int = 0, message: str = "") -> Any:
        """The operation ended: ``done``, ``error`` or ``aborted``."""
        return self._emit("quiesce.end", "WF-1e", outcome=outcome, code=code, message=message)


Handler = Callable[["HostClient", str, BackupPolicy], JobResult]


@dataclass(slots=True)
class FunctionOrchestrator:
    """An orchestrator backed by a plain function ``handler(host, vm_name, policy)``."""

    handler: Handler
    name: str = "function"
    version: str = "0"
    #: the image-backup levels ``handler`` can do (``image_levels()``)
    image_levels: tuple[str, ...] = ("full",)

    def backup(self, host: HostClient, vm_name: str, policy: BackupPolicy) -> JobResult:
        return self.handler(host, vm_name, policy)


def _excluded_keys(lines: Sequence[str]) -> list[int]:
    """The keys in the reference's ``RunOutcome.excluded_disks`` (``disk <key> (<label>): ...``)."""
    return [int(m.group(1)) for ln in lines if (m := re.match(r"disk (\d+) ", ln))]


class ReferenceOrchestrator:
    """The reference proxy (``vcbsim.reference.BackupProxy``) as an ``Orchestrator``.

    ``proxy_factory(client, root)`` builds the proxy (mutants pass a broken subclass); the
    proxy's working directory and the backup catalog live in a temporary directory owned by
    this object (``close()`` removes it). Image backups of every level are passed on as
    ``BackupProxy.backup(..., kind=level)``. It declares a restore (``restore``: the catalog's
    ``restore_image_files``, which rebuilds an incremental or differential through its chain,
    and ``restore_files``), so the kit judges what the reference restores, not what it reports.
    """

    image_levels: tuple[str, ...] = ("full", "incremental", "differential")

    #: every level of both kinds, and a restore (``Catalog.restore_image_files`` /
    #: ``restore_files``): the kit judges what the reference's own restore gives back
    capabilities: Any = Capabilities(image_levels=("full", "incremental", "differential"), restore=True,
                                     wire_restore=True)

    def __init__(self, proxy_factory: Callable[[Any, Path], Any] | None = None, *, name: str = "reference",
                 version: str | None = None, transport: str = "folder") -> None:
        from vcbsim.reference import BackupProxy

        self.name = name
        self.version = version or _version()
        #: ``transport``: how the proxy reads the disks (``BackupProxy(transport=...)``), declared
        #: as the one transport (the kit then judges its TR-* rule)
        self.transport = transport
        if transport != "folder" and type(self).capabilities is ReferenceOrchestrator.capabilities:
            # the reference's declaration with its transport (a subclass's own declaration wins)
            self.capabilities = replace(ReferenceOrchestrator.capabilities, transports=(transport,))
        self._factory = proxy_factory or (lambda client, root: BackupProxy(client, root, transport=transport))
        self._tmp = tempfile.TemporaryDirectory(prefix="vcbsim-kit-", dir=_scratch_dir())
        self._root = Path(self._tmp.name)
        self._catalog: Any = None
        self._proxy: Any = None
        self._client: Any = None

    def backup(self, host: HostClient, vm_name: str, policy: BackupPolicy) -> JobResult:
        from vcbsim.reference import Catalog

        if self._proxy is None or self._client is not host:
            self._client = host
            self._proxy = self._factory(host, self._root / "mnt")
        if self._catalog is None:
            self._catalog = Catalog(self._root / "catalog")
        from vcbsim.simulator import InvalidInputError

        kind = policy.level if policy.mode == "file" or policy.level != "full" else None
        try:
            r = self._proxy.backup(f"name:{vm_name}", policy.mode, catalog=self._catalog, kind=kind)
        except InvalidInputError as exc:  # refused before anything ran (e.g. file-level of Linux)
            return JobResult(ok=False, error=str(exc), details={"status": "refused"})
        # a job that failed after its copy (e.g. the unmount, WF-3a) may still leave a complete,
        # usable backup; the result says so, and the next incremental builds on it
        usable = r.backup_id is not None and self._catalog.backup(r.backup_id).status == "complete"
        files: dict[str, str] | None = None
        disks: dict[int, str] | None = None
        copied: dict[str, str] | None = None
        if usable and r.backup_id is not None and policy.mode == "file":
            entries = self._catalog.entries(r.backup_id).values()
            files = {e.path: e.sha256 for e in entries if not e.is_dir and e.sha256}
            copied = {e.path: e.sha256 for e in entries if not e.is_dir and e.sha256 and e.copied}
        return JobResult(ok=r.ok, error="" if r.ok else r.summary(), files=files, disks=disks, copied=copied,
                         backup_id=None if r.backup_id is None else str(r.backup_id),
                         details={"status": r.status, "failed_step": r.failed_step, "fault": r.fault,
                                  "usable": usable, "excluded_disks": _excluded_keys(r.excluded_disks)})

    @property
    def mount_root(self) -> Path:
        """Where the proxy mounts and exports (the kit looks at it: ``_observed``)."""
        return self._root / "mnt"

    def restore(self, host: HostClient, vm_name: str, backup_id: str, target: Path) -> None:
        """What backup ``backup_id`` restores to, written into ``target`` (``Orchestrator``):
        an image backup's files, or a file-level backup's files per volume letter."""
        bid = int(backup_id)
        if self._catalog.backup(bid).kind == "image":
            self._catalog.restore_image_files(bid, target)
            return
        target.mkdir(parents=True, exist_ok=True)
        letters = sorted({e.path[:1] for e in self._catalog.entries(bid).values() if e.path[1:3] == ":\\"})
        for letter in letters:
            self._catalog.restore_files(bid, f"{letter}:", target)

    def restore_vm(self, endpoint: Any, vm_name: str, backup_id: str, *, name: str | None = None,
                   over: bool = False, settings: Mapping[str, str] | None = None) -> None:
        """A whole-VM restore over the wire (``Orchestrator``): ``vcbsim restore --server``'s
        ``restore_vm_over_wire``, its proxy events into the kit's trace."""
        from vcbsim.reference._wirerestore import restore_vm_over_wire

        with self._wire_client(endpoint) as client:
            restore_vm_over_wire(self._catalog, int(backup_id), client, name=name,
                                 over=f"name:{vm_name}" if over else None,
                                 settings=dict(settings) if settings else None)

    def restore_files(self, endpoint: Any, vm_name: str, backup_id: str, path: str) -> None:
        """Files into the running guest over the wire (``restore_files_into_guest``)."""
        from vcbsim.reference._wirerestore import restore_files_into_guest

        with self._wire_client(endpoint) as client:
            restore_files_into_guest(self._catalog, int(backup_id), client, path)

    @staticmethod
    def _wire_client(endpoint: Any) -> Any:
        from vcbsim.reference import VSphereHostClient

        client = VSphereHostClient(endpoint.url, endpoint.user, endpoint.password, guest_user=endpoint.guest_user,
                                   guest_password=endpoint.guest_password)
        client.trace.subscribe(endpoint.record)
        return client

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None
        self._tmp.cleanup()


def _scratch_dir() -> str | None:
    """A memory-backed temporary directory when the system has one: the proxy's exports and
    catalog are scratch data, and fsync on a real disk dominates a run's time."""
    import os

    shm = "/dev/shm"  # noqa: S108 - a standard tmpfs mount, used only if present and writable
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def _version() -> str:
    from ._rules import KIT_VERSION

    return KIT_VERSION


def image_levels(adapter: Any) -> tuple[str, ...]:
    """The image-backup levels ``adapter`` declares (its optional ``image_levels`` attribute):
    ``("full",)`` when it declares none. The kit asks an orchestrator for an incremental or
    differential image backup only when it declares that level; a declaration that is not a
    subset of ``full``, ``incremental``, ``differential`` holding ``full`` is refused."""
    if getattr(adapter, "capabilities", None) is not None:
        from ._capabilities import capabilities_of

        return capabilities_of(adapter).image_levels or ("full",)
    declared = getattr(adapter, "image_levels", None)
    if declared is None:
        return ("full",)
    levels = (declared,) if isinstance(declared, str) else tuple(declared)
    if "full" not in levels or any(lv not in LEVELS for lv in levels):
        msg = f"{getattr(adapter, 'name', type(adapter).__name__)}.image_levels"
        raise InvalidDefinition(msg, expected="'full' and any of 'incremental', 'differential'", got=declared,
                                hint='for example image_levels = ("full", "incremental", "differential")')
    return tuple(dict.fromkeys(levels))


def call_adapter(adapter: Orchestrator, host: HostClient, vm_name: str, policy: BackupPolicy) -> JobResult:
    """Call ``adapter.backup`` and turn adapter misbehaviour into ``AdapterError`` (ERROR).

    Simulated crashes (``SimulatedCrash``) pass through: they are the kit's own fault
    injection, not the adapter's misbehaviour.
    """
    from vcbsim.simulator import SimulatedCrash

    name = getattr(adapter, "name", type(adapter).__name__)
    try:
        result = adapter.backup(host, vm_name, policy)
    except SimulatedCrash:
        raise
    except Exception as exc:
        msg = (f"adapter {name!r}: backup({vm_name!r}, {policy}) raised {type(exc).__name__}: {exc}; "
               "an orchestrator reports host faults in JobResult(ok=False, error=...) instead of raising")
        raise AdapterError(msg, adapter=name, operation="backup") from exc
    if not isinstance(result, JobResult):
        msg = (f"adapter {name!r}: backup() returned {type(result).__name__}, expected "
               "vcbsim.conformance.JobResult")
        raise AdapterError(msg, adapter=name, operation="backup")
    return result


GRAIN = 64 * 1024


def image_digest(device: Any) -> str:
    """A canonical digest of a disk image: SHA-256 over every 64 KiB grain that holds non-zero
    data, with its offset. Equal for a sparse and a flat copy of the same disk, so a product
    can compute it over its own backup format. ``device`` has ``size`` and
    ``read(offset, length)``, and optionally ``allocated_areas()`` (else every grain is read).
    The simulator's own function (``vcbsim.simulator.disk.image_digest``): the host's control
    API gives the same digest of a VM's disks (``GET /vcbsim-api/vms/<vm>``).
    """
    from vcbsim.simulator.disk import image_digest as digest

    return digest(device)


def _check_placeholders(what: str, argv: Sequence[str], known: Sequence[str]) -> None:
    """Every ``{name}`` in ``argv`` is one the kit fills in (one line naming it otherwise)."""
    import string

    for a in argv:
        try:
            names = [f for _t, f, _s, _c in string.Formatter().parse(a) if f is not None]
        except ValueError as exc:
            raise InvalidDefinition(what, expected="an argument with {placeholders}", got=a,
                                    hint=f"{exc}; write a literal brace as {{{{ or }}}}") from None
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InvalidDefinition(what, expected="placeholders from {" + "}, {".join(known) + "}", got=a,
                                    hint=f"{{{unknown[0]}}} is not one; write a literal brace as {{{{ or }}}}")


@dataclass(frozen=True, slots=True)
class CommandAdapter:
    """The adapter for a product in any language, run over the wire by ``conformance/_wire.py``
    (``certify_command(adapter)``, ``vcbsim conform --command``), which documents the
    placeholders, environment variables and exit codes in full.

    For each job the kit

    1. makes sure the simulator's vSphere SOAP endpoint (``vcbsim serve``) serves the
       example's host, and resets it through the control API;
    2. runs ``argv`` with ``{url}``, ``{user}``, ``{password}``, ``{vm}``, ``{mode}``,
       ``{level}`` and ``{trace}`` substituted, in ``cwd``, with ``env`` added and a
       wall-clock ``timeout`` (the simulated clock is separate);
    3. reads one JSON object from the command's standard output, in the shape of
       ``JobResult`` (``{"ok": true, "files": {...}}``); exit code 0 with ``ok: false`` is a
       reported job failure, any other exit code or unreadable output is an ``AdapterError``;
    4. appends the proxy events the product wrote to ``{trace}`` (JSON Lines, the published
       trace schema, ``actor: "proxy"``) to the host's trace, ordered by their virtual time,
       so the checker sees proxy, host and guest events in one log. A product that records no
       events is judged on the host's and guest's events alone.

    The product talks to the endpoint with any vSphere client (pyvmomi, govmomi, rbvmomi);
    the host behaves and faults exactly as in-process.

    ``restore``: the product's restore commands by kind (``RESTORE_KINDS``), with the restore
    placeholders (``{backup_id}``, ``{name}``, ``{datastore}``, ``{path}``, ``{set}`` ...;
    ``_wire.py`` documents them). A product that declares ``wire_restore`` and gives them is
    asked for restores over the wire and judged on the RESTORE rules and IMG-CONFIG.
    """

    argv: Sequence[str]
    name: str = "command"
    version: str = "0"
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 600.0
    #: the image-backup levels the command can do (``image_levels()``): ``{level}`` of an
    #: image job is ``incremental`` or ``differential`` only when declared here
    image_levels: tuple[str, ...] = ("full",)
    user: str = "user"
    password: str = "pass"  # noqa: S105 - the simulator's test credential (``vcbsim serve``'s default)
    #: what the command declares (``Capabilities``; ``None``: the legacy default declaration)
    capabilities: Any = None
    #: the product's restore commands over the wire (``_wire.py`` "Restores"), by kind:
    #: ``"new"`` (a whole VM as a new VM), ``"over"`` (over the powered-off original),
    #: ``"files"`` (files into the running guest); with ``Capabilities(wire_restore=True)``
    restore: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.argv or not all(isinstance(a, str) for a in self.argv):
            msg = "CommandAdapter.argv"
            raise InvalidDefinition(msg, expected="a non-empty list of strings", got=self.argv,
                                    hint='for example ["./mybackup", "--server", "{url}", "--vm", "{vm}"]')
        for kind, argv in self.restore.items():
            if kind not in RESTORE_KINDS or isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
                msg = "CommandAdapter.restore"
                raise InvalidDefinition(msg, expected="{kind: argv} with kinds " + ", ".join(RESTORE_KINDS)
                                        + " and each argv a non-empty list of strings", got={kind: argv},
                                        hint='for example {"new": ["./myrestore", "--backup", "{backup_id}", '
                                             '"--name", "{name}"]}')
            _check_placeholders(f"CommandAdapter.restore[{kind!r}]", argv, COMMAND_PLACEHOLDERS + RESTORE_PLACEHOLDERS)

    def command(self, *, url: str, vm: str, policy: BackupPolicy, trace: str) -> list[str]:
        """The command line for one job, placeholders filled in."""
        values = {"url": url, "user": self.user, "password": self.password, "vm": vm,
                  "mode": policy.mode, "level": policy.level, "trace": trace}
        return [a.format(**values) for a in self.argv]
