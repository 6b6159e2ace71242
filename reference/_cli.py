"""``vcbMounter``-style command-line verbs of the reference proxy.

::

    mount    -a name:<vm>|uuid:<uuid>|ipaddr:<ip>|moref:<id> -r <proxy dir> -t fullvm|file
             [-m san|hotadd|nbd|cos] [--monolithic] [--no-quiesce] [-L 6]
    unmount  -r <mount dir>              (the directory mount printed)
    backup   -a <selector> [-a ...] -t fullvm|file [--kind full|differential|incremental]
             (fullvm: an incremental/differential copies only the areas changed block tracking
             reports, enabling CBT first where the host has it; it falls back to a full backup,
             and says why, where it cannot)
    restore  --list [-a <selector>]
    restore  --backup <id> --path 'C:\\Dir' --to <dir>       (files or a directory)
    restore  --backup <id> --vm [<selector>]                  (a whole VM from an image backup)
    restore  --server URL --backup <id> --vm [--name N] [--datastore DS] [--set K=V]  (a new VM)
    restore  --server URL --backup <id> --vm -m hotadd [--name N | --over] [--proxy-vm P]  (hot-add)
    restore  --server URL --backup <id> --vm --over [-a <selector>]     (over the powered-off VM)
    restore  --server URL --backup <id> --path 'C:\\Dir' --into-guest  (into the running guest)
    jobs     add <name> -a <selector> ... -t fullvm|file [--kind K] --at <time> [--every S]
    jobs     list | run [--until <time>] [--concurrency N] | history [<name>] | remove <name>

Against a vSphere endpoint (``vcbsim serve``, or an ESX host): ``--server
https://127.0.0.1:8989/sdk --user U --password P [--insecure]`` runs the same verbs through
``VSphereHostClient`` (``--guest-user``/``--guest-password`` let it ask the guest for its drive
letters); ``--state`` then keeps only the proxy directory and medium, and a restore goes over
the wire (``_wirerestore.py``: the disks uploaded with ``PUT /folder`` and registered with
``RegisterVM_Task``; files through guest operations).

Otherwise the host is the demo inventory, kept between invocations in ``--state DIR`` (default
``$VCBSIM_STATE``, else ``./vcbsim-state``, which the checkout's ``.gitignore`` ignores) as a
persisted datastore (``STATE/datastore``, ``open_host``: real disk
files that survive a killed process; the profile and seed of its first use are recorded),
next to the proxy's own files: the proxy directory (``STATE/proxy``, with the session records
of interrupted runs in ``.vcb-sessions``) and the medium (``STATE/medium``: catalog, blobs, jobs
and their history). So ``mount`` then ``unmount``, or a full then an incremental backup, work
across invocations, and a backup killed at any point is cleaned up by the next one of that
VM. Nothing of the state is unpickled. Delete ``STATE`` to start again from the demo; one
invocation at a time uses it (the datastore is locked). The trace (``--trace``) is that of
the one invocation. ``VCBSIM_CRASH_AT=<crash point>`` in the environment kills the process
(SIGKILL) at that crash point, for crash-safety tests. ``--json`` prints one JSON
document for scripts. Times (``--at``/``--until``) are virtual:
``+3600`` (from now), seconds since the epoch, or an ISO date-time; the verbs print them as
UTC date-times (``2008-07-25 00:00:02 UTC``), the JSON as seconds since the epoch.

Exit codes (``EXIT_CODES``): 0 success; 1 a backup, mount or unmount failed (the output names
the seed step and the host's fault); 2 bad usage or input; 3 not found (VM, backup, file,
job, mount); 4 not allowed in the current state (already mounted, destination exists);
5 file-level backup asked for a guest that is not Windows.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from pyVmomi import vmodl

from vcbsim.simulator import InvalidInputError, NotFoundError, StateError

from ._workflow import TRANSPORTS

__all__ = [
    "EXIT_CODES",
    "build_parser",
    "main",
    "main_backup",
    "main_jobs",
    "main_mount",
    "main_restore",
    "main_unmount",
]

#: where the state verbs keep their host, proxy directory and medium (``--state``)
DEFAULT_STATE = "vcbsim-state"
STATE_ENV = "VCBSIM_STATE"

EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "a workflow step failed (the output names the step and the fault)",
    2: "bad usage or invalid input",
    3: "not found: VM, backup, file, job or mount",
    4: "not allowed in the current state (already mounted, destination exists)",
    5: "file-level backup of a guest that is not Windows",
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state", default=os.environ.get(STATE_ENV) or DEFAULT_STATE, metavar="DIR",
                        help=f"directory keeping the host, proxy directory and medium between runs "
                             f"(default: ${STATE_ENV}, else ./{DEFAULT_STATE}; created on first use)")
    common.add_argument("--json", action="store_true", help="print one JSON document")
    common.add_argument("--profile", default="esx-3.5u2", help="host profile of a new demo host")
    common.add_argument("--seed", type=int, default=0, help="seed of a new demo host")
    common.add_argument("--medium", metavar="DIR", help="backup medium (default: STATE/medium)")
    common.add_argument("--trace", metavar="FILE", help="write the host's trace as JSON Lines")
    common.add_argument("--no-progress", action="store_true", help="no progress bar")
    common.add_argument("-L", dest="log_level", type=int, default=0, metavar="LEVEL",
                        help="log level as vcbMounter's -L: 6 prints every trace event to stderr")
    common.add_argument("--server", metavar="URL",
                        help="a vSphere endpoint (https://127.0.0.1:8989/sdk) instead of the demo host")
    common.add_argument("--user", default="user", help="vSphere user name (with --server)")
    common.add_argument("--password", default=os.environ.get("VCBSIM_PASSWORD") or "pass",
                        help="vSphere password (with --server; default: $VCBSIM_PASSWORD, else 'pass')")
    common.add_argument("--insecure", action="store_true",
                        help="accept the endpoint's certificate without checking it (with --server)")
    common.add_argument("--guest-user", help="guest account, to read drive letters from the guest")
    common.add_argument("--guest-password", help="guest password (with --guest-user)")

    p = argparse.ArgumentParser(
        prog="vcbsim",
        description="The reference VCB proxy (vcbMounter-style verbs) on the simulated host.",
        epilog="exit codes: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items()),
    )
    sub = p.add_subparsers(dest="verb", required=True)

    sel = "VM selector: name:<vm>, uuid:<uuid>, ipaddr:<ip> or moref:<id> (name:win2003-sql)"
    types = ("fullvm: the VM's disks as VMDK files (any guest); file: each Windows volume "
             "with a drive letter, mounted under letters\\<X>")
    m = sub.add_parser(
        "mount", parents=[common], help="pre-backup: snapshot and expose a VM",
        description="vcbMounter's pre-backup (seed steps 1a-1f): take the _VCB-BACKUP_ snapshot "
        "(quiesced unless --no-quiesce) and expose it on the proxy; prints the mount directory, "
        "which 'vcbsim unmount -r DIR' takes back (steps 3a, 3b).",
    )
    m.add_argument("-a", dest="selector", required=True, help=sel)
    m.add_argument("-r", dest="root", help="proxy directory (default: STATE/proxy)")
    m.add_argument("-t", dest="type", choices=("fullvm", "file"), default="fullvm", help=types)
    m.add_argument("--monolithic", action="store_true", help="one sparse file per disk, not 2 GB splits")
    m.add_argument("--no-quiesce", action="store_true", help="crash-consistent snapshot (no scripts, no VSS)")
    m.add_argument("-m", dest="transport", choices=TRANSPORTS, default="folder",
                   help="transport mode, as vcbMounter -m: folder (default), nfc, hotadd; nbd/nbdssl are nfc, "
                        "cos is folder, san is refused")
    m.add_argument("--proxy-vm", help="the proxy VM for -m hotadd (default: the VM marked as the proxy)")

    u = sub.add_parser(
        "unmount", parents=[common], help="post-backup: unmount and commit",
        description="vcbMounter -U: unmount what 'vcbsim mount' exposed (step 3a) and remove the "
        "snapshot, committing its redo logs into the disks (step 3b).",
    )
    u.add_argument("-r", dest="root", required=True, help="the mount directory 'vcbsim mount' printed")

    b = sub.add_parser(
        "backup", parents=[common], help="the whole workflow into the medium",
        description="One backup job per -a: pre-backup (1a-1f), copy to the medium (2), "
        "post-backup (3a, 3b). The medium (STATE/medium) keeps the catalog that 'vcbsim restore' "
        "reads. Exit status 1 when a job failed; the output names the step and the host's fault.",
    )
    b.add_argument("-a", dest="selectors", action="append", required=True,
                   help=sel + "; repeat -a for several VMs")
    b.add_argument("-t", dest="type", choices=("fullvm", "file"), default="fullvm", help=types)
    b.add_argument("--kind", choices=("full", "differential", "incremental"), default=None,
                   help="backup level (default full); -t fullvm incremental/differential use changed "
                        "block tracking")
    b.add_argument("-r", dest="root", help="proxy directory (default: STATE/proxy)")
    b.add_argument("--monolithic", action="store_true", help="one sparse file per disk, not 2 GB splits")
    b.add_argument("--no-quiesce", action="store_true", help="crash-consistent snapshot (no scripts, no VSS)")
    b.add_argument("-m", dest="transport", choices=TRANSPORTS, default="folder",
                   help="transport mode, as vcbMounter -m: folder (default), nfc, hotadd; nbd/nbdssl are nfc, "
                        "cos is folder, san is refused")
    b.add_argument("--proxy-vm", help="the proxy VM for -m hotadd (default: the VM marked as the proxy)")

    r = sub.add_parser(
        "restore", parents=[common], help="list backups, restore files or a VM",
        description="Read the medium: --list shows the complete backups (times are the "
        "host's virtual UTC); --backup ID --path P --to DIR restores files; --backup ID --vm "
        "restores a whole VM from an image backup. With --server: --vm makes a new VM (--name, "
        "--datastore, --set KEY=VALUE for its .vmx) or, with --over, replaces the powered-off "
        "original; --path P --into-guest writes the files into the running guest (guest "
        "operations, --guest-user/--guest-password).",
    )
    r.add_argument("--list", action="store_true", help="list complete backups")
    r.add_argument("-a", dest="selector", help=sel + " (for --list or --vm)")
    r.add_argument("--backup", type=int, help="backup id, as --list shows it (#ID)")
    r.add_argument("--path", help="guest path of a file or directory (C:\\Dir\\f.txt)")
    r.add_argument("--to", help="target directory on the proxy for --path")
    r.add_argument("--vm", action="store_true", help="restore the whole VM from an image backup")
    r.add_argument("--name", help="with --server --vm: the new VM's name (default <vm>-restored)")
    r.add_argument("--datastore", help="with --server --vm: where the VM goes (default the backed-up VM's)")
    r.add_argument("--over", action="store_true",
                   help="with --server --vm: replace the original VM (-a, else the backed-up one); "
                   "it must be powered off")
    r.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="with --server --vm: a .vmx setting of the restored VM (repeatable)")
    r.add_argument("--into-guest", action="store_true",
                   help="with --server --path: write the files into the running guest")
    r.add_argument("-m", dest="transport", choices=("folder", "hotadd"), default="folder",
                   help="with --server --vm: folder (default: the disks uploaded with PUT /folder and the .vmx "
                        "registered) or hotadd (a new VM by CreateVM_Task, or with --over the original's own disks, "
                        "attached to the proxy VM and written through its block devices)")
    r.add_argument("--proxy-vm", help="with -m hotadd: the proxy VM (default: the VM marked as the proxy)")

    j = sub.add_parser(
        "jobs", parents=[common], help="scheduled backup jobs",
        description="Backup jobs on the host's virtual clock: 'add NAME -a SEL ... --at T "
        "[--every S]' schedules one, 'run [--until T]' runs what is due (the clock moves to T), "
        "'list', 'history [NAME]', 'remove NAME'. Times: +SECONDS from now, seconds since the "
        "epoch, or an ISO date-time (UTC unless it says otherwise).",
    )
    j.add_argument("action", choices=("add", "list", "run", "history", "remove"), help="what to do")
    j.add_argument("name", nargs="?", help="the job's name (add, remove; history: only this job)")
    j.add_argument("-a", dest="selectors", action="append", default=[], help=sel + " (add; repeatable)")
    j.add_argument("-t", dest="type", choices=("fullvm", "file"), default="fullvm", help=types)
    j.add_argument("--kind", choices=("image", "full", "differential", "incremental"),
                   help="backup level of the job (default: image for fullvm, full for file)")
    j.add_argument("--at", help="first run: +SECONDS, epoch seconds or ISO date-time (default: now)")
    j.add_argument("--every", type=float, help="repeat interval in seconds")
    j.add_argument("--count", type=int, help="at most this many runs")
    j.add_argument("--until", help="run jobs due up to this time (default: now)")
    j.add_argument("--concurrency", type=int, default=2, help="VMs backed up at once")
    j.add_argument("-r", dest="root", help="proxy directory (default: STATE/proxy)")
    return p


# -- state -------------------------------------------------------------------------------------


def _open_host(state: Path, profile: str, seed: int) -> Any:
    """The host of ``STATE/datastore`` (``open_host``): the demo inventory with ``profile``
    and ``seed`` on first use, afterwards the VMs, snapshots and disks as they were left,
    with the profile recorded in the directory. Holds the directory's lock until
    ``_close_host``. A ``host.pickle`` of an older vcbsim is never loaded (unpickling runs
    code); it is reported on stderr and left alone."""
    from vcbsim.simulator import open_host
    from vcbsim.simulator._persist import HOST_FILE

    legacy = state / "host.pickle"
    if legacy.exists():
        print(
            f"vcbsim: ignoring {legacy} (the old pickled host format is not loaded); "
            f"the host is kept in {state / 'datastore'}: delete {legacy}",
            file=sys.stderr,
        )
    directory = state / "datastore"
    recorded = (directory / HOST_FILE).is_file()
    host = open_host(directory, None if recorded else profile, seed=seed)
    crash_at = os.environ.get(CRASH_ENV)
    if crash_at:
        _arm_crash(host, crash_at)
    return host


def _close_host(host: Any) -> None:
    """Write the host state (the virtual clock moved) and release ``STATE/datastore``."""
    store = host.store
    if store is not None:
        try:
            store.save_host()
        finally:
            store.close()


#: ``VCBSIM_CRASH_AT=<crash point glob>``: the CLI process dies for real (SIGKILL) at the first
#: crash point that matches (``proxy.after-snapshot``, ``host.snapshot.after-freeze``, ...;
#: ``CRASH_POINTS`` in ``vcbsim.reference._workflow`` lists them), instead of raising
#: ``SimulatedCrash``. For crash-safety tests: nothing of the process runs after it.
CRASH_ENV = "VCBSIM_CRASH_AT"


def _arm_crash(host: Any, point: str) -> None:
    """``host``: the CLI's host, or over ``--server`` its wire client (the proxy's points)."""
    from vcbsim.simulator import FaultRule

    def kill(_point: str) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    host.faults.add(FaultRule("crash", target=point, label=CRASH_ENV))
    host.faults.on_crash = kill


def show_time(t: float | None) -> str:
    """A virtual time as people read it: ``2008-07-25 00:00:02 UTC`` (the JSON keeps seconds)."""
    if t is None:
        return "-"
    from datetime import UTC

    when = datetime.fromtimestamp(round(float(t), 3), UTC)
    ms = when.microsecond // 1000
    return when.strftime("%Y-%m-%d %H:%M:%S") + (f".{ms:03d}" if ms else "") + " UTC"


def _parse_time(text: str | None, now: float) -> float:
    if text is None:
        return now
    t = text.strip()
    try:
        if t.startswith("+"):
            return now + float(t[1:])
        return float(t)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise InvalidInputError(
            "time", expected="+SECONDS, seconds since the epoch, or an ISO date-time", got=text
        ) from None
    if dt.tzinfo is None:
        from datetime import UTC

        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    tasks: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:

        def update(description: str, advance: int, total: int) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total or None)
            bar.update(tasks[description], advance=advance)

        yield update


# -- verbs -------------------------------------------------------------------------------------


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(text)


def _run_verb(args: argparse.Namespace) -> int:
    from ._catalog import Catalog
    from ._client import InProcessHostClient
    from ._jobs import Job, JobScheduler, Schedule
    from ._workflow import BackupProxy

    state = Path(args.state)
    if state.exists() and not state.is_dir():
        msg = f"--state {state}"
        raise InvalidInputError(msg, expected="a directory (new or used before)",
                                got="a file", hint="give another path with --state DIR")
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"--state {state}"
        raise InvalidInputError(msg, expected="a directory vcbsim can create and write",
                                got=exc.strerror or str(exc), hint="give another path with --state DIR") from None
    host = None
    client: Any
    if args.server:
        from ._vsphere import VSphereHostClient

        client = VSphereHostClient(
            args.server, args.user, args.password, insecure=args.insecure,
            guest_user=args.guest_user, guest_password=args.guest_password, seed=args.seed,
        )
        crash_at = os.environ.get(CRASH_ENV)
        if crash_at:  # the proxy's own crash points (its client's fault injector)
            _arm_crash(client, crash_at)
    else:
        host = _open_host(state, args.profile, args.seed)
        client = InProcessHostClient(host)
    unsubscribe = None
    if args.log_level >= 6:
        unsubscribe = client.trace.subscribe(lambda ev: print(ev.line(), file=sys.stderr))
    root = Path(getattr(args, "root", None) or state / "proxy")
    medium = Path(args.medium or state / "medium")
    show = not args.json and not args.no_progress and sys.stderr.isatty()
    code = 0
    try:
        with _progress(show) as progress:
            proxy = BackupProxy(
                client,
                root if args.verb != "unmount" else Path(args.root).parent,
                split=not getattr(args, "monolithic", False),
                quiesce=not getattr(args, "no_quiesce", False),
                progress=progress,
                transport=getattr(args, "transport", "folder"),
                proxy_vm=getattr(args, "proxy_vm", None),
            )
            if args.verb == "mount":
                res = proxy.mount(args.selector, args.type)
                code = 0 if res.ok else 1
                lines = [res.summary()] + [f"  {k}: {v}" for k, v in sorted(res.letters.items())]
                lines += [f"  not mounted (no drive letter): {v}" for v in res.skipped_volumes]
                lines += [f"  not exported: {d}" for d in res.excluded_disks]
                lines += [f"  cleaned: {n}" for n in res.stale_cleaned]
                _emit(args, res.to_dict(), "\n".join(lines))
            elif args.verb == "unmount":
                res = proxy.unmount(Path(args.root))
                code = 0 if res.ok else 1
                _emit(args, res.to_dict(), res.summary())
            elif args.verb == "backup":
                with Catalog(medium) as cat:
                    results = [
                        proxy.backup(sel, args.type, catalog=cat, kind=args.kind) for sel in args.selectors
                    ]
                    docs = [_backup_doc(r, cat) for r in results]
                code = 0 if all(r.ok for r in results) else 1
                text = "\n".join(
                    "\n".join(
                        [r.summary() + (f" ({r.stored()})" if r.backup_id else "")]
                        + [f"  note: {n}" for n in r.notes]
                        + [f"  not backed up: {d}" for d in r.excluded_disks]
                        + [f"  cleaned: {n}" for n in r.stale_cleaned]
                    )
                    for r in results
                )
                _emit(args, docs, text)
            elif args.verb == "restore":
                code = _restore(args, client, medium, progress)
            elif args.verb == "jobs":
                with Catalog(medium) as cat:
                    sched = JobScheduler(proxy, cat, concurrency=args.concurrency)
                    now = client.clock.now
                    if args.action == "add":
                        if not args.name:
                            raise InvalidInputError("jobs add", expected="a job name", got=None)
                        kind = args.kind or ("image" if args.type == "fullvm" else "full")
                        job = sched.add(
                            Job(
                                args.name,
                                tuple(args.selectors),
                                args.type,
                                Schedule(_parse_time(args.at, now), args.every, args.count),
                                kind,
                            )
                        )
                        _emit(args, job.to_dict(), f"job {job.name} added")
                    elif args.action == "list":
                        jobs = sched.jobs()
                        _emit(
                            args,
                            [j.to_dict() for j in jobs],
                            "\n".join(
                                f"{j.name}: {j.type}/{j.kind} {' '.join(j.selectors)} at {show_time(j.schedule.at)}"
                                + (f" every {j.schedule.every}s" if j.schedule.every else "")
                                for j in jobs
                            )
                            or "no jobs",
                        )
                    elif args.action == "run":
                        runs = sched.run_until(_parse_time(args.until, now))
                        bad = [r for r in runs if r.result is None or not r.result.ok]
                        code = 1 if bad else 0
                        data = [
                            {"job": r.job, "selector": r.selector, "scheduled": r.scheduled,
                             "result": r.result.to_dict() if r.result else None, "error": r.error}
                            for r in runs
                        ]
                        text = "\n".join(
                            f"{r.job} @ {show_time(r.scheduled)}: " + (r.result.summary() if r.result else r.error)
                            for r in runs
                        )
                        _emit(args, data, text or "no job was due")
                    elif args.action == "history":
                        rows = sched.history(args.name)
                        _emit(
                            args,
                            rows,
                            "\n".join(
                                f"#{r['id']} {r['job']} {r['vm_name']} {r['type']} {r['status']}"
                                + (f" at {r['failed_step']}: {r['reason']}" if r["failed_step"] else "")
                                for r in rows
                            )
                            or "no runs yet",
                        )
                    else:
                        if not args.name:
                            raise InvalidInputError("jobs remove", expected="a job name", got=None)
                        sched.remove(args.name)
                        _emit(args, {"removed": args.name}, f"job {args.name} removed")
    finally:
        if unsubscribe is not None:
            unsubscribe()
        try:
            if args.trace:
                client.trace.write_jsonl(args.trace)
        finally:
            if host is not None:
                _close_host(host)
            else:
                client.close()
    return code


def _backup_doc(r: Any, cat: Any) -> dict[str, Any]:
    """One backup run as ``--json`` prints it: the run (``RunOutcome``), whether it succeeded
    (``ok``), whether the medium holds a complete backup (``usable``: a job that failed after
    its copy, e.g. at the unmount, may still leave one), and for a file-level backup what a
    restore of it gives (``files``: guest path to SHA-256, from the catalog) and what this job
    itself copied (``copied``). The conformance kit's command route reads ``ok``, ``files``,
    ``copied`` and ``usable`` (the shape of ``vcbsim.conformance.JobResult``)."""
    doc: dict[str, Any] = {**r.to_dict(), "ok": r.ok}
    usable = r.backup_id is not None and cat.backup(r.backup_id).status == "complete"
    doc["usable"] = usable
    if usable and r.type == "file":
        entries = cat.entries(r.backup_id).values()
        doc["files"] = {e.path: e.sha256 for e in entries if not e.is_dir and e.sha256}
        doc["copied"] = {e.path: e.sha256 for e in entries if not e.is_dir and e.sha256 and e.copied}
    return doc


def _settings(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError("--set", expected="KEY=VALUE (a .vmx setting)", got=pair)
        out[key.strip()] = value
    return out


def _restore_over_wire(args: argparse.Namespace, client: Any, cat: Any, progress: Any) -> int:
    """``restore --server``: a whole VM or files into the guest (``_wirerestore.py``)."""
    from ._wirerestore import restore_files_into_guest, restore_vm_over_wire

    if args.vm:
        if args.over and args.name:
            raise InvalidInputError("--name", expected="no --name with --over (the original keeps its name)",
                                    got=args.name)
        if getattr(args, "transport", "folder") == "hotadd":
            from ._hotaddrestore import restore_vm_hotadd, restore_vm_hotadd_over

            if args.over:
                res = restore_vm_hotadd_over(cat, args.backup, client,
                                             args.selector or f"uuid:{cat.backup(args.backup).vm_uuid}",
                                             settings=_settings(args.settings), proxy_vm=args.proxy_vm,
                                             progress=progress)
                _emit(args, res.to_dict(), res.summary())
                return 0
            res = restore_vm_hotadd(cat, args.backup, client, name=args.name, datastore=args.datastore,
                                    settings=_settings(args.settings), proxy_vm=args.proxy_vm, progress=progress)
            _emit(args, res.to_dict(), res.summary())
            return 0
        over = (args.selector or f"uuid:{cat.backup(args.backup).vm_uuid}") if args.over else None
        res = restore_vm_over_wire(cat, args.backup, client, name=args.name, datastore=args.datastore,
                                   over=over, settings=_settings(args.settings), progress=progress)
        _emit(args, res.to_dict(), res.summary())
        return 0
    if args.path and args.into_guest:
        out = restore_files_into_guest(cat, args.backup, client, args.path, vm_selector=args.selector,
                                       progress=progress)
        _emit(args, out.to_dict(), out.summary())
        return 0
    raise InvalidInputError("restore --server", expected="--vm, or --path with --into-guest (or --path --to)",
                            got=vars(args).get("path"))


def _restore(args: argparse.Namespace, client: Any, medium: Path, progress: Any = None) -> int:
    from ._catalog import Catalog

    with Catalog(medium) as cat:
        if args.server and args.backup is not None and not args.list and (args.vm or args.into_guest):
            return _restore_over_wire(args, client, cat, progress)
        if not args.server and (args.into_guest or args.over or args.name or args.datastore or args.settings):
            raise InvalidInputError("restore", expected="--name/--datastore/--over/--set/--into-guest with --server",
                                    got="no --server", hint="give --server URL to restore over the wire")
        if args.list or args.backup is None:
            vm_name = client.find_vm(args.selector).name if args.selector else None
            recs = cat.backups(vm_name)
            _emit(
                args,
                [r.to_dict() for r in recs],
                "\n".join(
                    f"#{r.id} {r.vm_name} {r.kind}"
                    + (f"/{r.level}" if r.kind == "image" and r.level else "")
                    + (f" on #{r.base_id}" if r.kind == "image" and r.base_id else "")
                    + f" files={r.files_copied}/{r.files_total} "
                    f"bytes={r.bytes_copied} snapshot taken {show_time(r.snapshot_time)}"
                    for r in recs
                )
                or "no backups",
            )
            return 0
        if args.vm:
            moref = client.find_vm(args.selector).moref if args.selector else None
            vm = cat.restore_vm(args.backup, client, moref)
            left = cat.excluded_disks(args.backup)
            _emit(
                args,
                {"restored": vm.name, "backup": args.backup, **({"left": {str(k): v for k, v in left.items()}} if left else {})},
                "\n".join(
                    [f"{vm.name} restored from backup {args.backup}"]
                    + [f"  left as it is (not in the backup): disk {k}: {v}" for k, v in sorted(left.items())]
                ),
            )
            return 0
        if not args.path or not args.to:
            raise InvalidInputError(
                "restore", expected="--path and --to, or --vm, or --list", got=vars(args).get("path")
            )
        files = cat.restore_files(args.backup, args.path, args.to)
        _emit(args, [str(f) for f in files], "\n".join(str(f) for f in files) or "(empty directory)")
        return 0


def main(argv: list[str] | None = None) -> int:
    """Run one verb; returns the exit code (see ``EXIT_CODES``)."""
    from ._filelevel import UnsupportedGuestError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    err: Exception
    try:
        return _run_verb(args)
    except KeyboardInterrupt:
        print(f"vcbsim {args.verb}: interrupted; a backup cut short is cleaned up by the next run of that VM",
              file=sys.stderr)
        return 130
    except UnsupportedGuestError as exc:
        code, err = 5, exc
    except (InvalidInputError, ValueError) as exc:
        code, err = 2, exc
    except (NotFoundError, LookupError) as exc:
        code, err = 3, exc
    except StateError as exc:
        code, err = 4, exc
    except vmodl.MethodFault as exc:  # a host fault outside the workflow (--server: login, restore)
        code, err = (3 if isinstance(exc, vmodl.fault.ManagedObjectNotFound) else 1), exc
    except sqlite3.DatabaseError as exc:  # the medium's catalog is not a catalog (damaged, or another file)
        code = 1
        err = StateError(f"the medium's catalog ({Path(args.medium or Path(args.state) / 'medium') / 'catalog.sqlite'}) "
                         f"cannot be read: {exc}; give another --medium, or move the damaged one away")
    except OSError as exc:  # a path the verb was given cannot be used (--trace, --medium, --to ...)
        code = 2
        where = exc.filename if exc.filename is not None else "a file"
        err = InvalidInputError(f"{where}", expected="a path vcbsim can create and write",
                                got=exc.strerror or str(exc), hint="give another path")
    name = type(err).__name__
    message = _vm_not_found(err) or str(err)
    if isinstance(err, vmodl.MethodFault):
        name = name.rsplit(".", 1)[-1]
        text = getattr(err, "msg", None)
        message = f"{name}: {text}" if text else name
    if args.json:
        print(json.dumps({"error": name, "message": message, "exit_code": code}))
    else:
        print(f"vcbsim {args.verb}: {message}", file=sys.stderr)
    return code


def _vm_not_found(err: Exception) -> str | None:
    """``-a name:nosuchvm``: say which VM was asked for and what a selector looks like,
    instead of the host's "no VM named 'name:nosuchvm'"."""
    if not isinstance(err, NotFoundError) or err.kind != "VM":
        return None
    asked = str(err.name)
    kind, _, value = asked.partition(":")
    what = f"no VM with {kind} {value!r}" if kind in ("name", "uuid", "ipaddr", "moref") and value else \
        f"no VM {asked!r}"
    known = err.fields.get("known") or []
    return (f"-a {asked}: {what} on this host (VMs: {', '.join(known) or 'none'}); "
            "a selector is name:<vm>, uuid:<uuid>, ipaddr:<ip> or moref:<id>")


def main_mount(argv: list[str] | None = None) -> int:
    """``vcbsim mount ...`` (the verb's own arguments)."""
    return main(["mount", *(sys.argv[1:] if argv is None else argv)])


def main_unmount(argv: list[str] | None = None) -> int:
    """``vcbsim unmount ...``."""
    return main(["unmount", *(sys.argv[1:] if argv is None else argv)])


def main_backup(argv: list[str] | None = None) -> int:
    """``vcbsim backup ...``."""
    return main(["backup", *(sys.argv[1:] if argv is None else argv)])


def main_restore(argv: list[str] | None = None) -> int:
    """``vcbsim restore ...``."""
    return main(["restore", *(sys.argv[1:] if argv is None else argv)])


def main_jobs(argv: list[str] | None = None) -> int:
    """``vcbsim jobs ...``."""
    return main(["jobs", *(sys.argv[1:] if argv is None else argv)])
