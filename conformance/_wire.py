"""Conformance over the wire: certify a backup product that runs as a command, in any language,
against the simulator's vSphere endpoint (``vcbsim serve``) and its control API.

For each case (the built-in ``SCENARIOS`` the wire can drive) the kit

1. resets the endpoint through the control API (``POST /vcbsim-api/reset``) and gives it the
   kit's inventory (``WIRE_VMS``: the demo's two guests, ``win2003-sql`` and ``rhel5-web``,
   with their volumes, files and quiescing scripts, on small disks so image backups take
   moments), then applies the case's steps: guest writes and scripts (``/guests/<vm>/files``),
   fault rules (``/faults``), user snapshots (``CreateSnapshot_Task``);
2. runs the product's command once per backup job (``CommandAdapter``: ``argv`` with
   placeholders, and environment variables, below), with a wall-clock timeout;
3. fetches the host's trace (``GET /vcbsim-api/trace?since=N``) and merges the proxy events the
   product recorded (``merge_traces``), then checks the trace so far with ``check_trace``
   (open-ended after a job, closed at the end) and the data the trace cannot show: the live
   guest still holds every write the kit made (CMT-DATA), a file-level backup whose files the
   command reported holds the guest's files as of its snapshot (CMT-BACKUP-CONTENT), and at
   the end no snapshot is left but the user's (CLN-NO-SNAPSHOT-LEFT, ``GET /vcbsim-api/state``);
4. at the end disarms faults, removes the kit's scripts, and runs one clean image job of every
   VM the case backed up: it must succeed and leave nothing behind.

The command's inputs (placeholders in ``argv``, and the same values in the environment):

===============  ====================  =============================================================
placeholder      environment           value
===============  ====================  =============================================================
``{url}``        ``VCBSIM_URL``        the SDK URL, ``http://127.0.0.1:PORT/sdk``
``{user}``       ``VCBSIM_USER``       vSphere user (``user`` as ``vcbsim serve``)
``{password}``   ``VCBSIM_PASSWORD``   its password (``pass``)
``{vm}``         ``VCBSIM_VM``         the VM's display name
``{mode}``       ``VCBSIM_MODE``       ``fullvm`` (image) or ``file`` (file-level)
``{level}``      ``VCBSIM_LEVEL``      ``full``, ``differential`` or ``incremental`` (image jobs:
                                       only levels in ``CommandAdapter.image_levels``)
``{kind}``       ``VCBSIM_KIND``       ``image`` for a full image job, else the level
``{trace}``      ``VCBSIM_TRACE``      a file for the product's proxy events (JSON Lines, optional)
``{control}``    ``VCBSIM_CONTROL``    the control API (``.../vcbsim-api``), to post events live
``{workdir}``    ``VCBSIM_WORKDIR``    a directory kept for the whole case (catalogs, state)
(none)           ``VCBSIM_PROXY_FAULTS``  faults of the product's own steps to inject (JSON list;
                                       only for a product that declares ``proxy_faults``)
===============  ====================  =============================================================

``VCBSIM_INSECURE=1`` is set when the endpoint uses HTTPS with a self-signed certificate.

Restores (a product that declares ``wire_restore``; ``CommandAdapter.restore``: ``new``,
``over``, ``files`` commands; ``vcbsim conform --restore-command / --restore-over-command /
--restore-files-command``) take the placeholders above and:

====================  =========================  ========================================================
placeholder           environment                value
====================  =========================  ========================================================
``{backup_id}``       ``VCBSIM_BACKUP_ID``       the backup: ``backup_id`` of the job's JSON result, else
                                                 the last ``backup_id`` in the job's proxy events
``{name}``            ``VCBSIM_NAME``            the VM to make (``new``) or to restore over (``over``)
``{datastore}``       ``VCBSIM_DATASTORE``       the datastore of the backed-up VM's ``.vmx``
``{set}``             (none)                     one ``KEY=VALUE`` setting: an element holding ``{set}``
                                                 is repeated per setting asked, dropped when none
``{settings}``        ``VCBSIM_SETTINGS``        the settings as one JSON object (``{}``: none)
``{path}``            ``VCBSIM_PATH``            ``files``: the guest folder to restore
``{guest_user}``      ``VCBSIM_GUEST_USER``      ``files``: the guest account (``{guest_password}`` too)
(none)                ``VCBSIM_RESTORE``         ``new``, ``over`` or ``files``
====================  =========================  ========================================================

Exit code 0 is a restore that succeeded, 1 to 125 one that failed and said so (the refusal of
a restore over a running VM included), anything else an ``AdapterError``. The host's events
of a restore go inside the product's ``restore-vm`` / ``restore-files`` operation
(``merge_restore``); the RESTORE rules and IMG-CONFIG are judged from the host's facts through
the control API (``WireRestoreRoute``, ``_scenario_restore``).

The command's result: exit code 0 is a job that succeeded, 1 to 125 a job that failed and
said so, anything else (126/127: not runnable, killed by a signal, the timeout) an
``AdapterError``. A command may print one JSON object on its standard output in the shape of
``JobResult`` (``{"ok": ..., "error": ..., "files": {...}, "disks": {...}}``); its ``ok`` must
then agree with the exit code.

Proxy events (``op.invoke``/``op.ok``/``op.fail``/``op.info`` with ``op``, ``op_id`` and
``step``, ``mount``, ``unmount``, ``disk.export``; the published trace schema) make the
product's steps visible to the checker (an ``op_id`` need only be unique within one run of the
command: the kit prefixes it with the job's number). Either post them as they happen (``POST
{control}/trace``; they are then in exact order with the host's events) or write them to
``{trace}``; a trace file is merged by ``merge_traces``: each event keeps its virtual time
(the merged trace is time-ordered), and among events of equal time the host's events of a
snapshot creation go inside the product's snapshot operation (steps ``WF-1``..``WF-1e``), those
of a removal inside its commit operation (``WF-3b``), a failed attempt before the operation's
``op.fail``. A product that records no events is judged on the host's and guest's events.

Guest writes made "during" a job (the VM keeps running in snapshot mode) are written as soon as
the host's trace shows the job's snapshot (the kit watches it while the command runs).
Faults of the product's own steps (``mount``, ``export``, ``copy``, ``unmount``, proxy crash
points) are the product's to inject: a host cannot. A product that declares ``proxy_faults``
(``Capabilities``) gets them in ``VCBSIM_PROXY_FAULTS``, a JSON list of fault rules
(``{"operation", "target", "fault", "times"}``, as ``FaultRule``) armed for the jobs that
follow, and must fail the step as the host would have (a crash point: exit without cleaning
up, killed by signal 9 is reported as the crash). Cases that need them are ``na`` (not
applicable, with the reason) for a product that does not declare it; the in-process kit
(``run``) covers those paths.

``certify_command(adapter)`` runs the cases; ``vcbsim conform --command "..."``
(``main_conform_command``) is the command line.

One cohesive concern, although over 700 lines: route 2, driving a product as a command
against the endpoint and judging it; the scenarios themselves are shared with the in-process
route (``_judge.ScenarioBase``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from vcbsim.simulator import Event

from ._adapters import BackupPolicy, CommandAdapter, JobResult
from ._capabilities import Capabilities, capabilities_of
from ._checker import STEP_ORDER, CheckReport
from ._errors import AdapterError, ConformanceViolation, InvalidDefinition, KitError
from ._evidence import Evidence, evidence_case, occasions
from ._judge import ScenarioBase, norm_path
from ._observed import Look, judge_looks, junction_problem, mounts_under
from ._report import CaseResult, RunInfo, new_run_info, write_bundle
from ._restored import (
    WrittenChain,
    backup_entries,
    config_violation,
    locate,
    read_image,
    restored_files,
    vmx_disk_files,
)
from ._rules import HOST_PROFILES, KIT_VERSION
from ._scenario_restore import RestoreFailed, RestoreRoute, VmFacts, _rebase_logs
from ._suite import (
    KIT_PROFILES,
    LINUX_VM,
    SCENARIOS,
    WIN_SCRIPTS,
    WINDOWS_VM,
    RunResult,
    Step,
    case_warnings,
    script_text,
)

__all__ = [
    "PROXY_OPERATIONS",
    "WIRE_VMS",
    "WireEndpoint",
    "WireJob",
    "WireRunResult",
    "WireScenario",
    "certify_command",
    "main_conform_command",
    "merge_restore",
    "merge_traces",
    "run_command_job",
    "wire_skip_reason",
]

#: fault operations the product itself performs: a host cannot inject them into it
PROXY_OPERATIONS = frozenset({"mount", "export", "copy", "unmount", "crash", "disk.read"})
#: exit codes of a job that failed and said so (others are the adapter's misbehaviour)
REPORTED_FAILURE = range(1, 126)
#: how often the kit looks at the trace while a command runs (for writes in snapshot mode)
WATCH_SECONDS = 0.05
_CREATE_STEPS = frozenset(s for s in STEP_ORDER if s.startswith("WF-1") and s != "WF-1f")
_REMOVE_STEPS = frozenset({"WF-3b", "WF-3"})
_EPS = 1e-6

_WIN_SCRIPT_FILES = {
    # the legacy pair the demo has (simulator/_demo.py): on esx-3.5u1 the only scripts that run
    "C:\\Windows\\pre-freeze-script.bat":
        "@echo off\r\nREM legacy pre-freeze script (ESX 3.5 U1 and earlier)\r\necho legacy-pre %1 >> C:\\vcb-quiesce.log\r\n",
    "C:\\Windows\\post-thaw-script.bat":
        "@echo off\r\nREM legacy post-thaw script\r\necho legacy-post %1 >> C:\\vcb-quiesce.log\r\n",
    WIN_SCRIPTS + "\\10-sql-flush.bat":
        "@echo off\r\nREM flush SQL Server buffers before the snapshot\r\necho sql %1 >> C:\\vcb-quiesce.log\r\n",
    WIN_SCRIPTS + "\\20-app-pause.bat": "@echo off\r\necho app %1 >> C:\\vcb-quiesce.log\r\n",
}
#: the kit's inventory over the wire: the demo's guests (names, files, scripts, the Windows
#: guest's letterless volume) on the smallest disks FAT32 allows (33 MiB a volume), so that an
#: image backup, which reads every byte of a flat base disk, takes moments
WIRE_VMS: dict[str, dict[str, Any]] = {
    WINDOWS_VM: {
        "os": "windows", "disks": ["36MiB", "70MiB"], "providers": ["vss"], "ip": "192.0.2.11",
        "hostname": "win2003-sql.vcbsim.test",
        "volumes": {"0": [[None, "C", "SYSTEM"]], "1": [["34MiB", "D", "DATA"], [None, None, "RECOVERY"]]},
        "files": {
            "C:\\boot.ini": "[boot loader]\r\ntimeout=30\r\n",
            "C:\\Windows\\system.ini": "[drivers]\r\nwave=mmdrv.dll\r\n",
            "D:\\Data\\orders.csv": "id,item,qty\r\n1,disk,4\r\n2,tape,12\r\n",
            "D:\\Data\\Reports\\2008-Q2.txt": "Quarterly report: backups completed 91 of 91.\r\n",
            **_WIN_SCRIPT_FILES,
        },
    },
    LINUX_VM: {
        "os": "linux", "disks": ["36MiB"], "providers": ["sync"], "ip": "192.0.2.12",
        "hostname": "rhel5-web.vcbsim.test",
        "volumes": {"0": [[None, "/", "ROOT"]]},
        "files": {
            "/etc/hostname": "rhel5-web\n",
            "/var/log/messages": "",
            "/usr/sbin/pre-freeze-script": "#!/bin/sh\necho pre $1 >> /var/log/vcb-quiesce.log\n",
            "/usr/sbin/post-thaw-script": "#!/bin/sh\necho post $1 >> /var/log/vcb-quiesce.log\n",
            "/var/www/index.html": "<html><body>rhel5-web</body></html>\n",
        },
    },
}


def wire_skip_reason(steps: Sequence[Step], caps: Capabilities | None = None) -> str | None:
    """Why a case does not apply over the wire to a product with declaration ``caps``, or
    ``None`` when it does: a fault of the product's own steps needs ``proxy_faults``."""
    for st in steps:
        args = dict(st.args)
        if st.op == "backup" and args.get("vm") not in WIRE_VMS:
            return (f"it backs up {args.get('vm')}, which only the in-process kit's host has (WIRE_VMS has "
                    "no VM with disks no snapshot covers); the in-process kit (run) covers it")
        if st.op == "add_script" and any(c in str(args.get("name", "")) for c in "\\/"):
            return ("it installs a script outside backupScripts.d (a legacy script, a subfolder), which the wire "
                    "scenario does not drive yet; the in-process kit (run) covers it")
        if st.op == "arm_fault" and (args.get("operation") in PROXY_OPERATIONS) and not (caps and caps.proxy_faults):
            return (f"it injects a fault into the product's own {args['operation']!r} step, which a host cannot do "
                    "over the wire and the product declared no proxy_faults; the in-process kit (run) covers it")
    return None


# ----------------------------------------------------------------------------- merge


def _host_groups(events: Sequence[Event]) -> list[list[Event]]:
    """Split host/guest events into the groups one host call made (a snapshot creation, a
    removal, a power operation ...), in order."""
    groups: list[list[Event]] = []
    family = ""
    for ev in events:
        op = str(ev.details.get("operation", "")) if ev.kind == "fault.injected" else ""
        current = groups[-1] if groups else None
        if ev.kind == "snapshot.create.start":
            new = "create"
        elif ev.kind in ("snapshot.revert", "vm.power", "vm.reconfigure"):
            new = "other"
        elif op == "snapshot.remove" or (op == "consolidate" and family != "remove"):
            new = "remove"  # a removal's fault fires before its events
        elif ev.kind == "snapshot.remove":
            # the same call if the group so far is only a fault rule that let it go on (a delay)
            same = (family == "remove" and current is not None
                    and all(e.kind == "fault.injected" and "fault" not in e.details for e in current))
            new = "" if same else "remove"
        else:
            new = "" if current is not None else "other"
        if new:
            groups.append([])
            family = new
        groups[-1].append(ev)
    return groups


def _family(group: Sequence[Event]) -> str:
    kinds = {e.kind for e in group}
    ops = {str(e.details.get("operation")) for e in group if e.kind == "fault.injected"}
    if "snapshot.create.start" in kinds:
        return "create"
    if "snapshot.remove" in kinds or ops & {"snapshot.remove", "consolidate"}:
        return "remove"
    return "other"


def _succeeded(group: Sequence[Event]) -> bool | None:
    kinds = {e.kind for e in group}
    fam = _family(group)
    if fam == "create":
        return "snapshot.create" in kinds and "snapshot.create.fail" not in kinds and "snapshot.rollback" not in kinds
    if fam == "remove":
        return "snapshot.remove" in kinds
    return None


@dataclass
class _Op:
    family: str
    invoke: int
    outcome: int | None = None
    ok: bool | None = None
    took_terminal: bool = False


def _proxy_ops(proxy: Sequence[Event]) -> list[_Op]:
    ops: list[_Op] = []
    open_ops: dict[str, _Op] = {}
    for i, ev in enumerate(proxy):
        op_id = str(ev.details.get("op_id", ""))
        if ev.kind == "op.invoke":
            fam = "create" if ev.step in _CREATE_STEPS else "remove" if ev.step in _REMOVE_STEPS else ""
            if fam:
                op = _Op(fam, i)
                ops.append(op)
                open_ops[op_id] = op
        elif ev.kind in ("op.ok", "op.fail", "op.info") and op_id in open_ops:
            op = open_ops.pop(op_id)
            op.outcome, op.ok = i, ev.kind == "op.ok"
    return ops


def merge_traces(host: Sequence[Event], proxy: Sequence[Event], *, first_seq: int = 0) -> list[Event]:
    """One time-ordered trace of a job: the host's and guest's events (``host``, in their order)
    and the product's proxy events (``proxy``, in their order), renumbered from ``first_seq``.

    Every event keeps its virtual time, and the result is ordered by it. Among events of equal
    time a host call's events go inside the proxy operation that made the call: a snapshot
    creation (``snapshot.create.start`` ... ``quiesce.end``) just before the outcome of the
    product's snapshot operation (step ``WF-1``..``WF-1e``), a removal (``snapshot.remove``,
    ``disk.consolidate``) before that of its commit (``WF-3b``); a successful call goes to an
    operation that succeeded, a failed one to one that failed. Other host events go as early
    as their time allows.
    """
    proxy = list(proxy)
    times = [e.time for e in proxy]
    ops = _proxy_ops(proxy)
    placed: list[tuple[int, list[Event]]] = []
    last_pos = 0
    last_op: dict[str, int] = {"create": 0, "remove": 0}
    for group in _host_groups(host):
        t0, t1 = group[0].time, group[-1].time
        lo = sum(1 for t in times if t < t0 - _EPS)  # after every proxy event that is earlier
        hi = sum(1 for t in times if t <= t0 + _EPS)  # before every one that is later
        want = lo
        fam = _family(group)
        if fam in ("create", "remove"):
            ok = _succeeded(group)
            cands = [k for k, op in enumerate(ops) if op.family == fam and k >= last_op[fam] and op.outcome is not None]
            pick: int | None = None
            for relax in (False, True):
                fitting = [k for k in cands if (relax or ((ops[k].ok == ok) and not (ok and ops[k].took_terminal)))]
                inside = [k for k in fitting
                          if times[ops[k].invoke] <= t0 + _EPS and times[ops[k].outcome or 0] + _EPS >= t1]
                if inside or fitting:
                    pick = (inside or fitting)[0]
                    break
            if pick is not None:
                op = ops[pick]
                want = op.outcome or 0
                last_op[fam] = pick
                if ok:
                    op.took_terminal = True
        pos = min(max(want, lo, last_pos), max(hi, last_pos))
        last_pos = pos
        placed.append((pos, group))
    out: list[Event] = []
    gi = 0
    for i in range(len(proxy) + 1):
        while gi < len(placed) and placed[gi][0] == i:
            out.extend(placed[gi][1])
            gi += 1
        if i < len(proxy):
            out.append(proxy[i])
    return [replace(e, seq=first_seq + n) for n, e in enumerate(out)]


def merge_restore(host: Sequence[Event], proxy: Sequence[Event], *, first_seq: int = 0) -> list[Event]:
    """One trace of a run of the product's restore command: the host's events go inside its
    restore operation (``op="restore-vm"`` / ``"restore-files"``), just before the operation's
    outcome, as late as their virtual time allows (they are what the operation made the host
    do: ``vm.register``, ``guest.file.put`` ...); with no such operation, after the product's
    events of equal or earlier time (``merge_traces``)."""
    proxy = list(proxy)
    opened = {str(e.details.get("op_id")): i for i, e in enumerate(proxy)
              if e.kind == "op.invoke" and e.details.get("op") in ("restore-vm", "restore-files")}
    end = next((i for i, e in enumerate(proxy) if e.kind in ("op.ok", "op.fail", "op.info")
                and str(e.details.get("op_id")) in opened), None)
    if end is None:
        return merge_traces(host, proxy, first_seq=first_seq)
    start = min(opened.values()) + 1
    out = proxy[:start]
    rest = proxy[start:]
    pos = end - start  # host events go before the operation's outcome ...
    later = [k for k, e in enumerate(rest[:pos]) if host and e.time > host[0].time + _EPS]
    if later:  # ... unless the product's events there are later than the host's
        pos = later[0]
    out += rest[:pos] + list(host) + rest[pos:]
    return [replace(e, seq=first_seq + n) for n, e in enumerate(out)]


# ----------------------------------------------------------------------------- endpoint


class WireEndpoint:
    """The endpoint the product talks to: ``url`` given (a running ``vcbsim serve``), or a
    simulated host served in this process on a free loopback port (plain HTTP)."""

    def __init__(self, url: str | None = None, *, user: str = "user", password: str = "pass",
                 host_profile: str = "esx-3.5u2") -> None:
        from vcbsim.simulator.soap import ControlClient

        self._running: Any = None
        if url is None:
            from vcbsim.simulator import Host
            from vcbsim.simulator.soap import serve

            self._running = serve(Host(host_profile), http=True, user=user, password=password)
            url = self._running.url
        self.url = url
        self.user, self.password = user, password
        self.control = ControlClient(url, user, password)
        self.control_url = self.control.base

    def close(self) -> None:
        if self._running is not None:
            self._running.stop()
            self._running = None

    def __enter__(self) -> WireEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- one job


@dataclass(frozen=True)
class WireJob:
    """One run of the product's command: its result, exit code, output and proxy events."""

    result: JobResult
    exit_code: int
    argv: tuple[str, ...]
    stdout: str
    stderr: str
    proxy_events: tuple[Event, ...]
    seconds: float


def _values(adapter: CommandAdapter, ep: WireEndpoint, vm: str, policy: BackupPolicy, trace: Path,
            workdir: Path) -> dict[str, str]:
    return {"url": ep.url, "user": ep.user, "password": ep.password, "vm": vm, "mode": policy.mode,
            "level": policy.level, "kind": "image" if policy.mode == "fullvm" and policy.level == "full" else policy.level,
            "trace": str(trace), "control": ep.control_url, "workdir": str(workdir)}


def _argv(adapter: CommandAdapter, template: Sequence[str], values: Mapping[str, str],
          lists: Mapping[str, Sequence[str]], what: str) -> list[str]:
    """``template`` with its placeholders filled in; an element holding a list placeholder
    (``{set}``) is repeated once per item, and dropped when the list is empty."""
    out: list[str] = []
    try:
        for a in template:
            listed = [k for k in lists if "{" + k + "}" in a]
            if not listed:
                out.append(a.format(**values))
                continue
            out += [a.format(**{**values, listed[0]: item}) for item in lists[listed[0]]]
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidDefinition(what, expected="placeholders from {" + "}, {".join([*values, *lists]) + "}",
                                got=list(template), hint=f"{type(exc).__name__}: {exc}; write a literal "
                                "brace as {{ or }}") from None
    return out


def run_command_job(adapter: CommandAdapter, ep: WireEndpoint, vm: str, policy: BackupPolicy, *,
                    workdir: Path, morefs: Mapping[str, str] | None = None,
                    watch: Callable[[], object] | None = None,
                    proxy_faults: Sequence[Mapping[str, Any]] = ()) -> WireJob:
    """Run the product's command for one job; ``AdapterError`` if it misbehaves.

    ``watch()`` is called every ``WATCH_SECONDS`` while the command runs (the kit's guest
    writes in snapshot mode)."""
    trace = workdir / f"proxy-trace-{time.monotonic_ns()}.jsonl"
    values = _values(adapter, ep, vm, policy, trace, workdir)
    argv = _argv(adapter, adapter.argv, values, {}, "CommandAdapter.argv")
    env = {f"VCBSIM_{k.upper()}": v for k, v in values.items()}
    if proxy_faults:
        env["VCBSIM_PROXY_FAULTS"] = json.dumps(list(proxy_faults))
    return _run(adapter, ep, argv, env, trace, morefs=morefs, watch=watch, proxy_faults=proxy_faults,
                operation="backup")


def run_command_restore(adapter: CommandAdapter, ep: WireEndpoint, kind: str, vm: str, backup_id: str, *,
                        workdir: Path, name: str = "", datastore: str = "", path: str = "",
                        settings: Mapping[str, str] | None = None,
                        morefs: Mapping[str, str] | None = None) -> WireJob:
    """Run the product's restore command of ``kind`` (``new``, ``over``, ``files``; "Restores"
    in the module docstring); ``AdapterError`` if it misbehaves. Exit code 0 is a restore
    that succeeded, 1 to 125 one that failed (a refusal included) and said so."""
    from ._scenario_restore import GUEST_PASSWORD, GUEST_USER

    trace = workdir / f"proxy-trace-{time.monotonic_ns()}.jsonl"
    mode = "file" if kind == "files" else "fullvm"
    values = {**_values(adapter, ep, vm, BackupPolicy(mode), trace, workdir),  # type: ignore[arg-type]
              "backup_id": backup_id, "restore": kind, "name": name or vm, "datastore": datastore, "path": path,
              "guest_user": GUEST_USER, "guest_password": GUEST_PASSWORD,
              "settings": json.dumps(dict(settings or {}), sort_keys=True)}
    pairs = [f"{k}={v}" for k, v in (settings or {}).items()]
    argv = _argv(adapter, adapter.restore[kind], values, {"set": pairs}, f"CommandAdapter.restore[{kind!r}]")
    env = {f"VCBSIM_{k.upper()}": v for k, v in values.items()}
    return _run(adapter, ep, argv, env, trace, morefs=morefs, operation=f"restore-{kind}")


def _run(adapter: CommandAdapter, ep: WireEndpoint, argv: list[str], values_env: Mapping[str, str], trace: Path, *,
         morefs: Mapping[str, str] | None, operation: str, watch: Callable[[], object] | None = None,
         proxy_faults: Sequence[Mapping[str, Any]] = ()) -> WireJob:
    """Run one command: its result, exit code and the proxy events it wrote to ``trace``."""
    from vcbsim.simulator import load_jsonl

    trace.write_bytes(b"")
    env = {**os.environ, **values_env, **dict(adapter.env)}
    if ep.url.startswith("https:"):
        env["VCBSIM_INSECURE"] = "1"
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(argv, cwd=adapter.cwd, env=env, stdin=subprocess.DEVNULL,  # noqa: S603
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        msg = f"adapter {adapter.name!r}: cannot run {argv[0]!r}: no such program"
        raise AdapterError(msg, adapter=adapter.name, operation=operation) from None
    deadline = started + adapter.timeout
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=WATCH_SECONDS if watch is not None else adapter.timeout)
            break
        except subprocess.TimeoutExpired:
            if time.perf_counter() >= deadline:
                proc.kill()
                proc.communicate()
                msg = f"adapter {adapter.name!r}: {shlex.join(argv)} did not finish within {adapter.timeout:g} s"
                raise AdapterError(msg, adapter=adapter.name, operation=operation) from None
            if watch is not None:
                watch()
    seconds = time.perf_counter() - started
    rc = proc.returncode
    tail = (stderr or stdout).strip()[-600:]
    crashed = rc == -9 and any(f.get("operation") == "crash" for f in proxy_faults)
    if crashed:  # the product crashed itself at the kit's crash point, as asked
        return WireJob(JobResult(ok=False, error="crashed at the kit's crash point", details={"exit_code": rc}),
                       rc, tuple(argv), stdout, stderr, (), time.perf_counter() - started)
    if rc != 0 and rc not in REPORTED_FAILURE:
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited with {rc}"
        msg = f"adapter {adapter.name!r}: {shlex.join(argv)} {how}; output: {tail or '(none)'}"
        raise AdapterError(msg, adapter=adapter.name, operation=operation)
    result = JobResult(ok=rc == 0, error="" if rc == 0 else (tail or f"exit code {rc}"), details={"exit_code": rc})
    reported = _json_result(stdout)
    if reported is not None:
        if reported.ok != (rc == 0):
            msg = (f"adapter {adapter.name!r}: the command printed ok={reported.ok} but exited with {rc}; "
                   "exit code 0 is a job that succeeded")
            raise AdapterError(msg, adapter=adapter.name, operation=operation)
        result = replace(reported, details={**dict(reported.details), "exit_code": rc})
    try:
        text = trace.read_text(encoding="utf-8")
        events = load_jsonl(text.splitlines()) if text.strip() else []
    except (ValueError, UnicodeDecodeError) as exc:
        msg = f"adapter {adapter.name!r}: its trace file is not a vcbsim trace: {exc}"
        raise AdapterError(msg, adapter=adapter.name, operation="trace") from None
    finally:
        trace.unlink(missing_ok=True)
    bad = [e for e in events if e.actor != "proxy"]
    if bad:
        msg = (f"adapter {adapter.name!r}: its trace holds {bad[0].actor} events (#{bad[0].seq} {bad[0].kind}); "
               "a product records proxy events only, the host records its own")
        raise AdapterError(msg, adapter=adapter.name, operation="trace")
    if morefs:  # a product may name VMs by display name
        events = [replace(e, vm=morefs.get(e.vm, e.vm)) if e.vm else e for e in events]
    events.sort(key=lambda e: e.seq)
    if result.backup_id is None:  # the backup id from the product's trace, when its result has none
        said = [e.details["backup_id"] for e in events if e.details.get("backup_id") is not None]
        if said:
            result = replace(result, backup_id=str(said[-1]))
    return WireJob(result, rc, tuple(argv), stdout, stderr, tuple(events), seconds)


def _json_result(stdout: str) -> JobResult | None:
    """The ``JobResult`` a command printed: one JSON object, or a list holding exactly one
    (a product whose command takes several VMs prints one object per VM, as the reference's
    ``vcbsim backup --json`` does)."""
    text = stdout.strip()
    if not text.startswith(("{", "[")):
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(doc, list) and len(doc) == 1:
        doc = doc[0]
    if not isinstance(doc, dict) or not isinstance(doc.get("ok"), bool):
        return None
    files = doc.get("files")
    disks = doc.get("disks")
    copied = doc.get("copied")
    return JobResult(
        ok=doc["ok"], error=str(doc.get("error", "")),
        files={str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else None,
        disks={int(k): str(v) for k, v in disks.items()} if isinstance(disks, dict) else None,
        copied={str(k): str(v) for k, v in copied.items()} if isinstance(copied, dict) else None,
        backup_id=None if doc.get("backup_id") is None else str(doc["backup_id"]),
        details={"usable": doc["usable"]} if isinstance(doc.get("usable"), bool) else {},
        location=str(doc["location"]) if isinstance(doc.get("location"), str) and doc["location"] else None,
    )


# ----------------------------------------------------------------------------- scenario


class WireScenario(ScenarioBase):
    """One case over the wire: the endpoint reset to the kit's inventory, the product's
    command, and the steps so far (the methods are ``Scenario``'s steps; what is judged after a
    job, and the declaration gate, are ``ScenarioBase``'s, shared with the in-process route)."""

    def __init__(self, adapter: CommandAdapter, ep: WireEndpoint, *, host_profile: str = "esx-3.5u2",
                 seed: int = 0, workdir: Path, out: TextIO | None = None) -> None:
        if host_profile not in HOST_PROFILES:
            msg = "host profile"
            raise InvalidDefinition(msg, expected="one of " + ", ".join(HOST_PROFILES), got=host_profile)
        self.adapter, self.ep, self.host_profile = adapter, ep, host_profile
        self.caps = capabilities_of(adapter)
        self.ctl = ep.control
        self.workdir = workdir
        self.out = out
        self._init_case()
        self.jobs: list[WireJob] = []
        #: runs of the product's restore commands (``restore`` steps)
        self.restores: list[WireJob] = []
        self.events: list[Event] = []
        self._mark = 0
        self._writes: dict[tuple[str, str], tuple[str, str]] = {}  # (vm, normalised path) -> (path, sha256)
        self._scripts: set[str] = set()
        self._user_snapshots: set[tuple[str, str]] = set()
        self._backed_up: list[str] = []
        self._proxy_faults: list[dict[str, Any]] = []  # armed for the product (proxy_faults)
        #: the product's declared mount root, looked at around and during each command (``_observed``)
        self.mount_root = Path(self.caps.mount_root.format(workdir=workdir)) if self.caps.mount_root else None
        #: where the product writes its backups, read by the kit (``_restored``; file-level over the wire)
        self.backup_root = Path(self.caps.backup_root.format(workdir=workdir)) if self.caps.backup_root else None
        self._written = WrittenChain()
        self.ctl.reset(profile=host_profile, demo=False, seed=seed)
        for name, spec in WIRE_VMS.items():
            self.ctl.add_vm(name, **json.loads(json.dumps(spec)))
        if "hotadd" in self.caps.transports:
            # a product that hot-adds gets a proxy VM, marked as such (simulator/_hotadd.py)
            self.ctl.add_vm("vcb-proxy", os="windows", disks=["64MiB"], extra_config={"vcbsim.backupProxy": "TRUE"})
        self.morefs = {vm["name"]: vm["moref"] for vm in self.ctl.vms()}
        self._sync()

    # -- host access (ScenarioBase) ----------------------------------------------------
    def _events(self) -> Sequence[Event]:
        return self.events

    def _read_guest(self, vm: str, path: str) -> bytes | None:
        from vcbsim.simulator.soap import ControlError

        try:
            return self.ctl.read_guest_file(vm, path)
        except ControlError:
            return None

    def _snapshot_ids(self, vm: str) -> set[str]:
        return {str(sn["moref"]) for v in self.ctl.state()["vms"] if v["name"] == vm for sn in v["snapshots"]}

    def _family(self, vm: str) -> str:
        return str(WIRE_VMS[vm]["os"])

    def _moref(self, vm: str) -> str | None:
        return self.morefs.get(vm)

    def _vm_names(self) -> Sequence[str]:
        return tuple(WIRE_VMS)

    # -- the trace --------------------------------------------------------------------
    def _sync(self, proxy: Sequence[Event] = (), tag: str | None = None,
              merge: Callable[..., list[Event]] = merge_traces) -> list[Event]:
        new = self.ctl.trace(since=self._mark)
        if new:
            self._mark = new[-1].seq + 1
        # each run of the command numbers its operations afresh: keep them apart
        job = tag or f"job{len(self.jobs)}"

        def own(events: Iterable[Event]) -> list[Event]:
            return [replace(e, details={**e.details, "op_id": f"{job}:{e.details['op_id']}"})
                    if e.actor == "proxy" and "op_id" in e.details else e for e in events]

        live_proxy = any(e.actor == "proxy" for e in new)
        merged = merge(own(new), [] if live_proxy else own(proxy), first_seq=len(self.events))
        self.events.extend(merged)
        return merged

    # -- steps ----------------------------------------------------------------------------
    def write(self, vm: str, path: str, text: str) -> None:
        self._record(Step.of("write", vm=vm, path=path, text=text))
        data = text.encode()
        self.ctl.write_guest_files(vm, {path: data})
        self._writes[(vm, norm_path(path))] = (path, hashlib.sha256(data).hexdigest())
        self._sync()

    def delete(self, vm: str, path: str) -> None:
        """The guest deletes a file (``Scenario.delete``), through the control API."""
        from vcbsim.simulator.soap import ControlError

        self._record(Step.of("delete", vm=vm, path=path))
        with contextlib.suppress(ControlError):
            self.ctl.delete_guest_file(vm, path)
        self._writes.pop((vm, norm_path(path)), None)
        self._sync()

    def add_script(self, name: str, exit_code: int = 0, sleep: float = 0.0, phase: str = "") -> None:
        self._record(Step.of("add_script", name=name, exit_code=exit_code, sleep=sleep, phase=phase))
        self.ctl.write_guest_files(WINDOWS_VM, {f"{WIN_SCRIPTS}\\{name}": script_text(name, exit_code, sleep, phase)})
        self._scripts.add(name.casefold())
        self.disturbed = self.disturbed or bool(exit_code or sleep)
        self._sync()

    def remove_script(self, name: str) -> None:
        from vcbsim.simulator.soap import ControlError

        self._record(Step.of("remove_script", name=name))
        with contextlib.suppress(ControlError):
            self.ctl.delete_guest_file(WINDOWS_VM, f"{WIN_SCRIPTS}\\{name}")
        self._scripts.discard(name.casefold())
        self._sync()

    def arm_fault(self, operation: str, target: str = "*", fault: str | None = None, delay: float = 0.0,
                  exit_code: int | None = None, times: int = 1) -> None:
        """Arm a fault: a host operation through the control API; one of the product's own
        steps (``PROXY_OPERATIONS``) for a product that declares ``proxy_faults``, handed to
        its next jobs in ``VCBSIM_PROXY_FAULTS``."""
        self._record(Step.of("arm_fault", operation=operation, target=target, fault=fault, delay=delay,
                             exit_code=exit_code, times=times))
        self.disturbed = True
        if operation in PROXY_OPERATIONS:
            if not self.caps.proxy_faults:
                msg = "arm_fault operation over the wire"
                raise InvalidDefinition(msg, expected="a host operation (" + ", ".join(sorted(
                    {"snapshot.create", "snapshot.remove", "quiesce.engage", "quiesce.disengage", "script",
                     "consolidate", "disk.write"})) + ")", got=operation,
                    hint="faults of the product's own steps need a product that declares proxy_faults")
            self._proxy_faults.append({"operation": operation, "target": target, "fault": fault, "times": times})
            return
        self.ctl.add_fault(operation, target=target, fault=fault, delay=delay, exit_code=exit_code, times=times,
                           label=f"kit:{operation}")

    def user_snapshot(self, vm: str, name: str = "before-upgrade") -> None:
        from pyVim.task import WaitForTask

        self._record(Step.of("user_snapshot", vm=vm, name=name))
        with self.soap_vm(vm) as target:
            WaitForTask(target.CreateSnapshot_Task(name, "", False, False))
        self._user_snapshots.add((vm, name))
        self._sync()

    @contextlib.contextmanager
    def soap_vm(self, vm: str) -> Iterator[Any]:
        """The VM called ``vm`` through a SOAP session of the kit's own (what an operator's
        client does: a user snapshot, powering a VM off before a restore over it)."""
        from pyVim.connect import Disconnect, SmartConnect
        from pyVmomi import vim

        parts = self.ep.url.split("://", 1)[1].split("/", 1)[0]
        host, port = parts.rsplit(":", 1)
        si = SmartConnect(protocol="http" if self.ep.url.startswith("http:") else "https", host=host,
                          port=int(port), user=self.ep.user, pwd=self.ep.password, disableSslCertValidation=True)
        try:
            view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
            target = next(v for v in view.view if v.name == vm)
            view.Destroy()
            yield target
        finally:
            Disconnect(si)

    def restore(self, vm: str, kinds: tuple[str, ...] | None = None) -> None:
        """Back ``vm`` up, let the guest write, and ask the product's restore commands
        (``CommandAdapter.restore``, a declared ``wire_restore``): judged on the RESTORE rules
        and IMG-CONFIG from the host's facts (``_scenario_restore``); ``kinds`` as in process."""
        from ._scenario_restore import RESTORE_KINDS, run_restore

        self._record(Step.of("restore", vm=vm) if kinds is None else Step.of("restore", vm=vm, kinds=tuple(kinds)))
        run_restore(WireRestoreRoute(self), vm, RESTORE_KINDS if kinds is None else tuple(kinds))

    def backup(self, vm: str, mode: str = "fullvm", level: str = "full",
               during: tuple[tuple[str, str], ...] = ()) -> JobResult | None:
        self._record(Step.of("backup", vm=vm, mode=mode, level=level, during=tuple(tuple(d) for d in during)))
        asked = self.gate(vm, mode, level)
        if asked is None:
            return None
        policy = BackupPolicy(mode, asked)  # type: ignore[arg-type]
        self._sync()
        pending = list(during)
        mark = [self._mark]
        moref = self.morefs.get(vm)
        host: list[Event] = []  # the host's events of this job, as the kit read them while it ran
        looks: list[Look] = []

        def read() -> list[Event]:
            new = self.ctl.trace(since=mark[0])
            if new:
                mark[0] = new[-1].seq + 1
                host.extend(new)
            if looks and looks[-1].after is None:
                looks[-1].after = len(host)
            return new

        def look() -> None:
            if self.mount_root is not None:
                looks.append(Look(frozenset(mounts_under(self.mount_root)), len(host)))

        def watch() -> None:
            """Look at the mount root, then read the host's trace (``_observed``: a look between two
            reads). Once the VM runs in snapshot mode (the host's ``snapshot.create``), the guest
            keeps writing (seed step 2): the writes must reach the live disk, not the backup."""
            nonlocal pending
            look()
            new = read()
            if pending and any(e.kind == "snapshot.create" and e.vm == moref for e in new):
                writes, pending = pending, []
                self.ctl.write_guest_files(vm, {p: t.encode() for p, t in writes})
                for p, t in writes:
                    self._writes[(vm, norm_path(p))] = (p, hashlib.sha256(t.encode()).hexdigest())

        faults = self._take_proxy_faults()
        written_before = backup_entries(self.backup_root) if self.backup_root is not None else set()
        if self.backup_root is not None and policy.mode == "fullvm" and policy.level == "full":
            self.ctl.capture(vm)  # the host records the disks and configuration as of the snapshot
        look()
        read()
        job = run_command_job(self.adapter, self.ep, vm, policy, workdir=self.workdir, morefs=self.morefs,
                              watch=watch if pending or self.mount_root is not None else None, proxy_faults=faults)
        self.jobs.append(job)
        read()
        look()
        read()
        crashed = job.exit_code == -9 and any(f["operation"] == "crash" for f in faults)
        result = None if crashed else job.result
        if result is not None:
            self.results.append(result)
        if vm not in self._backed_up:
            self._backed_up.append(vm)
        first = len(self.events)
        self._sync(job.proxy_events)
        self.check(open_ended=True)
        self._judge_folder(vm, looks, host, ok=result is not None and result.ok)
        if result is not None:
            result = self._written_backup(vm, policy, result, first, written_before)
        self.judge_job(vm, policy, result, first)
        self._check_writes(vm)
        return result

    def _written_backup(self, vm: str, policy: BackupPolicy, result: JobResult, first: int,
                        before: set[str]) -> JobResult:
        """A backup the product wrote under its declared backup root, read by the kit
        (``_restored``) in place of what it printed: a file-level one restored through the seed's
        chain, a full image one against the host's capture of the snapshot (``_written_image``).
        Incremental and differential image backups are judged on the disks it reports."""
        usable = result.ok or result.details.get("usable") is True
        if self.backup_root is None or not usable or (policy.mode == "fullvm" and policy.level != "full"):
            return result
        snap = self.job_snapshot(vm, first)
        if snap is None:
            return result
        moref = self.morefs.get(vm)
        folder = locate(self.backup_root, result.location, self.events[first:], moref, before)
        if isinstance(folder, str):
            why = (f"the product declares where its backups land (backup root {self.caps.backup_root}), but the kit "
                   f"cannot find the backup of its successful {policy.mode} job of {vm}: {folder}")
            raise ConformanceViolation("EV-DECLARED-WORKS", why, witness=(snap,), vm=moref)
        if policy.mode == "fullvm":
            return self._written_image(vm, result, snap, folder)
        own = restored_files(folder)
        at_snap = self.model(vm, snap.seq)
        union = self._written.add(vm, policy.level, own, norm_path, lambda k: k in at_snap)
        return replace(result, files=union, copied=own)

    def _written_image(self, vm: str, result: JobResult, snap: Event, folder: Path) -> JobResult:
        """A full image backup the product wrote, judged against what the host captured the moment
        the snapshot existed (``POST /vcbsim-api/captures``): its configuration files
        (IMG-CONFIG) and each disk (CMT-BACKUP-CONTENT)."""
        taken = self.ctl.captures().get(str(snap.details.get("snapshot")))
        redo = [str(r).rsplit("/", 1)[-1] for r in snap.details.get("redo") or []]
        keys = [int(k) for k in (taken or {}).get("disks", {})]
        if taken is None or len(redo) != len(keys):
            return result  # no capture of this snapshot (or disks no snapshot covers): judged as reported
        by_file = dict(zip(redo, keys, strict=True))
        nodes = {node: by_file[name.replace("\\", "/").rsplit("/", 1)[-1]]
                 for node, name in vmx_disk_files(str(taken["vmx"])).items()
                 if name.replace("\\", "/").rsplit("/", 1)[-1] in by_file}
        problems, disks = read_image(folder, vm, {".vmx": str(taken["vmx"]), ".vmsd": str(taken["vmsd"])}, nodes)
        moref = self.morefs.get(vm)
        self.occasion("IMG-CONFIG")
        if problems:
            raise ConformanceViolation("IMG-CONFIG", config_violation(vm, "as the product wrote it", snap, problems),
                                       witness=(snap,), vm=moref)
        self.occasion("CMT-BACKUP-CONTENT")
        bad = sorted(k for k in keys if disks.get(k) != str(taken["disks"][str(k)]))
        if bad:
            why = (f"the image backup of {vm}, as the product wrote it, holds other data than disk(s) {bad} had at the "
                   f"snapshot (#{snap.seq}); an image backup equals the disks as of its snapshot")
            raise ConformanceViolation("CMT-BACKUP-CONTENT", why, witness=(snap,), vm=moref)
        return replace(result, disks=disks)

    def _judge_folder(self, vm: str, looks: Sequence[Look], host: Sequence[Event], *, ok: bool) -> None:
        """The job judged from what appeared and disappeared under the declared mount root
        (``_observed.judge_looks``), whatever its ``mount`` / ``unmount`` events said."""
        if self.mount_root is None:
            return
        moref = self.morefs.get(vm)
        verdict = judge_looks(self.mount_root, looks, host, moref, ok=ok, vm=vm)
        for rule, n in verdict.occasions.items():
            self.occasion(rule, n)
        if verdict.violation is not None:
            rule, why, seen = verdict.violation
            witness = [e for e in self.events if seen is not None and e.kind == seen.kind and e.vm == seen.vm
                       and e.details.get("snapshot") == seen.details.get("snapshot")][-1:]
            raise ConformanceViolation(rule, why, witness=tuple(witness), vm=moref)
        windows = WIRE_VMS.get(vm, {}).get("volumes", {})
        letters = {str(v[1]) for vols in windows.values() for v in vols if v[1]}
        letterless = any(not v[1] for vols in windows.values() for v in vols)
        for path in verdict.mounts:
            if "/letters/" not in path:
                continue
            self.occasion("FILE-JUNCTION")
            self.occasion("FILE-NO-LETTERLESS")
            problem = junction_problem(path, letters, letterless)
            if problem is not None:
                raise ConformanceViolation(problem[0], f"the file-level mount of {vm} made {self.mount_root / path}: "
                                           + problem[1], vm=moref)

    def _take_proxy_faults(self) -> list[dict[str, Any]]:
        """The product-step faults for the next job (each used once per ``times``)."""
        out = [dict(f) for f in self._proxy_faults]
        for f in self._proxy_faults:
            f["times"] -= 1
        self._proxy_faults = [f for f in self._proxy_faults if f["times"] > 0]
        return out

    # -- data checks ----------------------------------------------------------------------
    def _check_writes(self, after: str) -> None:
        """The live guests still hold every write the kit made (the commit lost nothing)."""
        self.occasion("CMT-DATA", int(bool(self._writes)))
        for (vm, _key), (path, digest) in self._writes.items():
            data = self._read_guest(vm, path)
            if data is None or hashlib.sha256(data).hexdigest() != digest:
                last = next((e for e in reversed(self.events) if e.kind == "guest.write"
                             and str(e.details.get("path", "")).casefold() == path.casefold()), None)
                why = (f"after the job of {after}, {vm} no longer holds the write to {path}"
                       + (f" made at #{last.seq}" if last else "")
                       + "; taking the VM out of snapshot mode commits every guest write (step 3b)")
                raise ConformanceViolation("CMT-DATA", why, witness=(last,) if last else (), vm=self.morefs.get(vm))

    def finish(self) -> CheckReport:
        """Disarm faults, remove the kit's scripts, give every VM the case backed up one clean
        job of a declared mode, and check that nothing is left behind."""
        from vcbsim.simulator.soap import ControlError

        self.ctl.clear_faults()
        self._proxy_faults.clear()
        now = self.ctl.advance(0)
        busy = [float(v["tools_busy_until"]) for v in self.ctl.vms() if v.get("tools_busy_until")]
        if busy and max(busy) > now:  # a 3.5-era guest finishes what the host stopped waiting for
            self.ctl.advance(max(busy) - now)
        for name in sorted(self._scripts):
            with contextlib.suppress(ControlError):
                self.ctl.delete_guest_file(WINDOWS_VM, f"{WIN_SCRIPTS}\\{name}")
        self._scripts.clear()
        self._sync()
        for vm in self._backed_up or [WINDOWS_VM]:
            mode = self.caps.clean_mode(self._family(vm))
            if mode is None:
                self.not_asked.append(f"clean run of {vm}: the product declared no job it can do on this guest")
                continue
            policy = BackupPolicy(mode)  # type: ignore[arg-type]
            job = run_command_job(self.adapter, self.ep, vm, policy, workdir=self.workdir, morefs=self.morefs)
            self.jobs.append(job)
            first = len(self.events)
            self._sync(job.proxy_events)
            self.check(open_ended=True)
            self.jobs_asked[f"{mode}/full"] += 1
            self.jobs_ok[f"{mode}/full"] += int(job.result.ok)
            self.occasion("EV-DECLARED-WORKS")
            if not job.result.ok:
                why = (f"the clean run of {vm} ({mode}, full) after the case failed: "
                       f"{job.result.error or 'no reason given'}; with no faults armed a job the product declares "
                       "must succeed")
                raise ConformanceViolation("EV-DECLARED-WORKS", why, vm=self.morefs.get(vm))
            self._judge_outcome(vm, policy, job.result, first)
            self._judge_guest_log()
        report = self.check()
        if self.mount_root is not None:
            self.occasion("CLN-NO-MOUNT-LEFT")
            left = sorted(mounts_under(self.mount_root))
            if left:
                why = (f"after the final clean run the proxy still holds {', '.join(str(self.mount_root / p) for p in left[:3])}"
                       " under its declared mount root; nothing may be left behind (spec F16)")
                raise ConformanceViolation("CLN-NO-MOUNT-LEFT", why)
        self._check_writes("the final clean run")
        for vm in self.ctl.state()["vms"]:
            left = [sn["name"] for sn in vm["snapshots"] if (vm["name"], sn["name"]) not in self._user_snapshots]
            if left:
                why = f"after the final clean run {vm['name']} still has snapshots {left}; nothing may be left behind"
                raise ConformanceViolation("CLN-NO-SNAPSHOT-LEFT", why, vm=vm["moref"])
        return report


class WireRestoreRoute(RestoreRoute):
    """The restore step over the wire (``_scenario_restore.RestoreRoute``): the product's
    restore commands, judged from the host's facts read through the control API."""

    def __init__(self, scen: WireScenario) -> None:
        self.s = scen
        self.w = scen

    def not_declared(self, vm: str) -> str | None:
        if not self.w.caps.wire_restore:
            return f"restore of {vm}: the product declared no restore over the wire (Capabilities.wire_restore)"
        missing = [k for k in ("new", "over") if k not in self.w.adapter.restore]
        if missing:
            return (f"restore of {vm}: the product declares wire_restore but gave no {' or '.join(missing)} restore "
                    "command (CommandAdapter.restore; vcbsim conform --restore-command / --restore-over-command)")
        return None

    def can_restore_files(self) -> bool:
        return "files" in self.w.adapter.restore

    def before_backup(self, vm: str) -> None:
        self.w.ctl.capture(vm)

    def at_snapshot(self, snap: Event) -> tuple[dict[int, str] | None, str | None]:
        taken = self.w.ctl.captures().get(str(snap.details.get("snapshot")))
        if taken is None:
            return None, None
        return {int(k): str(v) for k, v in taken["disks"].items()}, str(taken["vmx"])

    def facts(self, vm: str) -> VmFacts | None:
        from vcbsim.simulator.soap import ControlError

        try:
            doc = self.w.ctl.vm(vm)
        except ControlError as exc:
            if exc.status == 404:
                return None
            raise
        return VmFacts(str(doc["moref"]), str(doc["name"]), str(doc["power"]), str(doc["vmx"]),
                       tuple((int(d["key"]), str(d["digest"])) for d in doc["disks"]),
                       tuple(str(d["file"]) for d in doc["disks"]), str(doc.get("vmx_path") or ""))

    def registered(self) -> dict[str, str]:
        return {str(v["moref"]): str(v["name"]) for v in self.w.ctl.vms()}

    def set_power(self, vm: str, state: str) -> None:
        from pyVim.task import WaitForTask

        with self.w.soap_vm(vm) as target:
            if target.runtime.powerState != state:
                WaitForTask(target.PowerOnVM_Task() if state == "poweredOn" else target.PowerOffVM_Task())
        self.w._sync()

    def _restore(self, kind: str, vm: str, backup_id: str, **fields: Any) -> None:
        w = self.w
        job = run_command_restore(w.adapter, w.ep, kind, vm, backup_id, workdir=w.workdir, morefs=w.morefs,
                                  **fields)
        w.restores.append(job)
        w.morefs = {v["name"]: v["moref"] for v in w.ctl.vms()}
        w._sync(job.proxy_events, tag=f"restore{len(w.restores)}", merge=merge_restore)
        if job.exit_code != 0:
            msg = f"exit code {job.exit_code}: {job.result.error or '(no output)'}"
            raise RestoreFailed(msg)

    def restore_vm(self, vm: str, backup_id: str, *, name: str | None, over: bool,
                   settings: Mapping[str, str] | None) -> None:
        facts = self.facts(vm)
        ds = facts.datastore if facts is not None else ""
        self._restore("over" if over else "new", vm, backup_id, name=name or vm, datastore=ds,
                      settings=settings)

    def restore_files(self, vm: str, backup_id: str, path: str) -> None:
        self._restore("files", vm, backup_id, path=path)

    def write_guest(self, vm: str, path: str, text: str) -> None:
        # not among the kit's recorded writes (CMT-DATA): a restore over the VM rolls it back
        self.w.ctl.write_guest_files(vm, {path: text.encode()})
        self.w._sync()

    def read_guest(self, vm: str, path: str) -> bytes | None:
        return self.w._read_guest(vm, path)

    def replaced(self, vm: str) -> None:
        _rebase_logs(self.w, vm)


# ----------------------------------------------------------------------------- run


@dataclass(frozen=True, slots=True)
class WireRunResult(RunResult):
    """What ``certify_command`` did: a ``RunResult`` of the wire cases."""

    def failures(self) -> list[CaseResult]:
        return [c for c in self.cases if c.outcome in ("fail", "error")]


def _outcome(exc: BaseException) -> tuple[str, tuple[str, ...], str, tuple[dict[str, Any], ...]]:
    if isinstance(exc, ConformanceViolation):
        viol = ({"rule": exc.rule_id, "severity": "fail", "vm": exc.vm, "explanation": exc.explanation,
                 "witness": [e.to_dict() for e in exc.witness]},)
        return "fail", exc.rule_ids, exc.explanation, viol
    return "error", (), f"{type(exc).__name__}: {exc}", ()


def _reproducer(adapter: CommandAdapter, name: str, host_profile: str) -> str:
    restore = "".join(f" --{opt} {shlex.quote(shlex.join(adapter.restore[kind]))}"
                      for kind, opt in (("new", "restore-command"), ("over", "restore-over-command"),
                                        ("files", "restore-files-command")) if kind in adapter.restore)
    caps = "" if adapter.capabilities is None else \
        f" --capabilities {shlex.quote(json.dumps(capabilities_of(adapter).to_dict()))}"
    return (f"vcbsim conform --command {shlex.quote(shlex.join(adapter.argv))}{restore}{caps} --kit-profile dev "
            f"--host-profile {host_profile} --scenario {name.removeprefix('wire/')}")


def certify_command(
    adapter: CommandAdapter,
    *,
    url: str | None = None,
    scenarios: Iterable[str] | None = None,
    host_profile: str = "esx-3.5u2",
    report: str | Path | None = None,
    out: TextIO | None = None,
    seed: int = 0,
    kit_profile: str = "dev",
) -> WireRunResult:
    """Run the built-in scenarios over the wire against ``adapter``'s command.

    ``url``: a running ``vcbsim serve`` (its user and password are the adapter's); by default
    a host is served in this process for the run. ``scenarios``: names from ``SCENARIOS``
    (default: all; a filter, refused by ``certify``). A scenario the declaration leaves out
    (``adapter.capabilities``; faults of the product's own steps without ``proxy_faults``) is
    ``na`` with the reason. ``kit_profile``: ``certify`` refuses filters and, with the evidence,
    fails the run when an applicable rule was never exercised. Returns a ``WireRunResult``
    (with ``evidence``); ``report`` writes a results bundle there.
    """
    if kit_profile not in KIT_PROFILES:
        msg = "kit profile"
        raise InvalidDefinition(msg, expected="one of " + ", ".join(KIT_PROFILES), got=kit_profile)
    kp = KIT_PROFILES[kit_profile]
    if scenarios is not None and not kp.allow_skips:
        msg = f"filters with profile {kit_profile!r}"
        raise InvalidDefinition(msg, expected="every scenario", got=list(scenarios),
                                hint="certify refuses skips and filters")
    names = list(SCENARIOS) if scenarios is None else list(scenarios)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        msg = "scenarios"
        raise InvalidDefinition(msg, expected="names from SCENARIOS: " + ", ".join(SCENARIOS), got=unknown)
    caps = capabilities_of(adapter)
    out = out if out is not None else sys.stdout
    info = new_run_info(kit_profile=kit_profile, host_profile=host_profile, seed=seed, adapter_name=adapter.name,
                        adapter_version=adapter.version,
                        config={"transport": "wire", "command": list(adapter.argv), "scenarios": names,
                                "filters": None if scenarios is None else names, "url": url or "(in process)",
                                "declaration": caps.to_dict()})
    out.write(f"vcbsim conformance kit {KIT_VERSION} over the wire, profile {kit_profile}, host {host_profile}, "
              f"adapter {adapter.name} {adapter.version}: {shlex.join(adapter.argv)}\n")
    cases: list[CaseResult] = []
    stats: dict[str, Any] = {"jobs": 0, "jobs_ok": 0, "command_seconds": 0.0}
    with WireEndpoint(url, user=adapter.user, password=adapter.password, host_profile=host_profile) as ep, \
            tempfile.TemporaryDirectory(prefix="vcbsim-wire-", ignore_cleanup_errors=True) as tmp:
        # the cases' work folders are scratch: a file appearing while they are removed (seen twice
        # under load, "Directory not empty") must not turn a finished run's verdict into a traceback
        for n, name in enumerate(names):
            steps = SCENARIOS[name]
            case = f"wire/{name}"
            scoped = wire_skip_reason(steps, caps)
            if scoped is not None:
                cases.append(CaseResult(case, "na", message=f"not applicable: {scoped}"))
                out.write(f"N/A  {case}: {scoped}\n")
                continue
            workdir = Path(tmp) / f"case-{n}"
            workdir.mkdir()
            started = time.perf_counter()
            scen: WireScenario | None = None
            try:
                scen = WireScenario(adapter, ep, host_profile=host_profile, seed=seed, workdir=workdir)
                for st in steps:
                    scen.apply(st)
                scen.finish()
            except KitError as exc:
                outcome, rules, message, viol = _outcome(exc)
                trace = tuple(scen.events) if scen is not None else ()
                done = tuple(st.code() for st in (scen.steps if scen is not None else steps))
                cases.append(CaseResult(case, outcome, message=message, rules=rules,  # type: ignore[arg-type]
                                        duration=time.perf_counter() - started, steps=done, violations=viol,
                                        trace=trace, exercised=dict(occasions(trace)),
                                        reproducer=_reproducer(adapter, case, host_profile)))
                out.write(f"{outcome.upper()} {case}: {', '.join(rules)} {message}\n")
            else:
                if scen.step_jobs == 0 and scen.not_asked:
                    why = "not applicable: " + "; ".join(scen.not_asked[:3])
                    cases.append(CaseResult(case, "na", message=why, not_asked=tuple(scen.not_asked)))
                    out.write(f"N/A  {case}: {why}\n")
                else:
                    warnings = case_warnings([scen])
                    cases.append(CaseResult(case, "pass", duration=time.perf_counter() - started,
                                            steps=tuple(st.code() for st in scen.steps), exercised=scen.evidence(),
                                            not_asked=tuple(scen.not_asked), warnings=warnings))
                    out.write(f"PASS {case} ({len(scen.jobs)} jobs)\n")
                    for w in warnings:
                        out.write(f"WARN {case} [{w['rule']}]: {w['explanation']}\n")
            if scen is not None:
                stats["restores"] = stats.get("restores", 0) + len(scen.restores)
                stats["jobs"] += len(scen.jobs)
                stats["jobs_ok"] += sum(1 for j in scen.jobs if j.result.ok)
                stats["command_seconds"] += sum(j.seconds for j in scen.jobs)
                for k, v in scen.jobs_asked.items():
                    stats[f"asked.{k}"] = stats.get(f"asked.{k}", 0) + v
                for k, v in scen.jobs_ok.items():
                    stats[f"ok.{k}"] = stats.get(f"ok.{k}", 0) + v
    info = RunInfo(**{**info.to_dict(), "finished": _now()})
    jobs = {k: int(v) for k, v in stats.items() if k.startswith(("asked.", "ok."))}
    evidence = Evidence.of(caps, host_profile, [c.exercised for c in cases], jobs, proxy_faults=caps.proxy_faults,
                           restore=caps.wire_restore and bool(adapter.restore), unsnapshotted=False, wire=True)
    if scenarios is None and not any(c.outcome in ("fail", "error") for c in cases):
        extra = evidence_case(evidence, caps, host_profile, certify=kit_profile == "certify")
        if extra is not None:
            cases.append(extra)
            out.write(f"{extra.outcome.upper()} {extra.name}: {extra.message}\n")
    bundle = write_bundle(report, info, cases, statistics=stats, evidence=evidence) if report is not None else None
    totals = {o: sum(1 for c in cases if c.outcome == o) for o in ("pass", "fail", "error", "skip", "na")}
    out.write(f"{len(cases)} cases: " + ", ".join(f"{v} {k}" for k, v in totals.items())
              + f"; {stats['jobs']} jobs\n")
    return WireRunResult(info, tuple(cases), bundle, stats, evidence)


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- command line


def main_conform_command(argv: list[str] | None = None) -> int:
    """``vcbsim conform --command "CMD ..."``: certify a product run as a command, over the wire.

    Exit codes (as ``vcbsim conform``): 0 conformant (every case passed or is not applicable to
    the declaration), 1 a rule failed (FAIL) or a case was skipped, 2 bad usage, 3 an ERROR only
    (the command misbehaved, or a certify run left a rule unexercised), 130 interrupted.
    """
    p = argparse.ArgumentParser(
        prog="vcbsim conform",
        description="Certify a backup product that runs as a command (any language) against the simulator's "
                    "vSphere endpoint: each scenario resets the endpoint through its control API, runs the "
                    "command once per job, and checks the host's trace merged with the proxy events the "
                    "command wrote to {trace}. Placeholders: {url} {user} {password} {vm} {mode} {level} "
                    "{kind} {trace} {control} {workdir} (also VCBSIM_URL ... in the environment).",
    )
    p.add_argument("--command", required=True, metavar="CMD",
                   help="the product's command line (split like a shell does), with placeholders")
    p.add_argument("--url", help="a running 'vcbsim serve' (default: one is served in this process)")
    p.add_argument("--user", default="user", help="vSphere user (default: user, as vcbsim serve)")
    p.add_argument("--password", default="pass", help="vSphere password (default: pass)")
    p.add_argument("--scenario", action="append", dest="scenarios", metavar="NAME",
                   help=f"run only this scenario (repeatable; refused by certify): {', '.join(SCENARIOS)}")
    p.add_argument("--kit-profile", default=None, choices=tuple(KIT_PROFILES),
                   help="the kit's test profile (default: dev); certify is the result you hand over")
    p.add_argument("--profile", default=None, choices=tuple(KIT_PROFILES),
                   help="deprecated alias of --kit-profile (elsewhere --profile names a host profile)")
    p.add_argument("--host-profile", default="esx-3.5u2", choices=HOST_PROFILES,
                   help="the simulated host's profile (default: esx-3.5u2)")
    p.add_argument("--restore-command", metavar="CMD",
                   help="the product's restore of a whole VM as a new VM, with placeholders ({backup_id} {name} "
                        "{datastore} {set} ...; see the module's table); with wire_restore declared")
    p.add_argument("--restore-over-command", metavar="CMD",
                   help="its restore of a whole VM over the (powered-off) original")
    p.add_argument("--restore-files-command", metavar="CMD",
                   help="its restore of files ({path}) into the running guest")
    p.add_argument("--capabilities", metavar="FILE|JSON",
                   help="the product's declaration (Capabilities fields as JSON, or a file of it)")
    p.add_argument("--timeout", type=float, default=600.0, help="wall-clock seconds per job (default 600)")
    p.add_argument("--name", default="command", help="product name for the report")
    p.add_argument("--version", default="0", dest="product_version", help="product version for the report")
    p.add_argument("--report", metavar="DIR", help="write a results bundle to DIR")
    p.add_argument("--json", action="store_true", help="print the cases as JSON")
    args = p.parse_args(argv)
    from vcbsim.simulator.soap import ControlError

    from ._cli import load_capabilities, print_verdict

    if args.profile and args.kit_profile and args.profile != args.kit_profile:
        p.error(f"--profile {args.profile} and --kit-profile {args.kit_profile} disagree; give --kit-profile")
    if args.profile and not args.kit_profile:
        print("vcbsim conform: --profile is deprecated here (it names a host profile in other verbs); use "
              "--kit-profile", file=sys.stderr)
    kit_profile = args.kit_profile or args.profile or "dev"
    try:
        caps = load_capabilities(args.capabilities) if args.capabilities else None
        restore = {kind: shlex.split(cmd) for kind, cmd in (("new", args.restore_command),
                                                             ("over", args.restore_over_command),
                                                             ("files", args.restore_files_command)) if cmd}
        adapter = CommandAdapter(shlex.split(args.command), name=args.name, version=args.product_version,
                                 timeout=args.timeout, user=args.user, password=args.password, capabilities=caps,
                                 restore=restore)
        quiet = open(os.devnull, "w", encoding="utf-8") if args.json else None  # noqa: SIM115
        with quiet if quiet is not None else contextlib.nullcontext():
            result = certify_command(adapter, url=args.url, scenarios=args.scenarios, host_profile=args.host_profile,
                                     report=args.report, out=quiet, kit_profile=kit_profile)
    except KeyboardInterrupt:
        print("vcbsim conform: interrupted; no verdict (run again to certify)", file=sys.stderr)
        return 130
    except (InvalidDefinition, ValueError) as exc:
        print(f"vcbsim conform: {exc}", file=sys.stderr)
        return 2
    except (ControlError, OSError) as exc:  # the endpoint is not there, or refused the kit
        where = args.url or "the endpoint served in this process"
        print(f"vcbsim conform: cannot drive {where} through its control API: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([{k: v for k, v in c.to_dict().items() if k != "trace"} for c in result.cases],
                         indent=2, default=str))
        outcomes = {c.outcome for c in result.cases}
        return 1 if "fail" in outcomes or "skip" in outcomes else 3 if "error" in outcomes else 0
    return print_verdict(result, report=args.report)
