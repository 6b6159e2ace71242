"""``vcbsim serve``: the demo host over the vSphere SOAP API, on loopback.

    vcbsim serve                      # https://127.0.0.1:8989/sdk, user "user", password "pass"
    vcbsim serve --http --port 8080   # plain HTTP
    vcbsim serve --profile esxi-7.0   # changed block tracking, SEsparse redo logs
    vcbsim serve --datastore DIR      # VMs, disks and snapshots kept in DIR (survive restarts)
    vcbsim serve --inventory inv.json # the host a file describes (docs/control-api.md)
    vcbsim serve --trace-file t.jsonl # every trace event appended to a JSON Lines file

The control API (reset, VMs, guest files, fault rules, trace) is on the same port under
/vcbsim-api/ (docs/control-api.md).

Then, for instance::

    from pyVim.connect import SmartConnect
    si = SmartConnect(host="127.0.0.1", port=8989, user="user", pwd="pass",
                      disableSslCertValidation=True)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import IO
from urllib.parse import quote, urlsplit

__all__ = ["main", "build_parser", "connect_help", "DEFAULT_TRACE_LIMIT"]

#: events a long-running server keeps in memory (older ones stay in --trace-file)
DEFAULT_TRACE_LIMIT = 100_000


def connect_help(url: str, user: str, password: str) -> list[str]:
    """How to connect, as ``vcsim`` prints it: URL, credentials, govc, pyVmomi, the control API."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
    creds = f"{quote(user, safe='')}:{quote(password, safe='')}"
    govc = f"export GOVC_URL={parts.scheme}://{creds}@{parts.netloc}{parts.path}"
    if parts.scheme == "https":
        govc += " GOVC_INSECURE=1"
        conn = f"host={host!r}, port={port}, user={user!r}, pwd={password!r}, disableSslCertValidation=True"
    else:
        conn = f"protocol='http', host={host!r}, port={port}, user={user!r}, pwd={password!r}"
    base = f"{parts.scheme}://{parts.netloc}"
    return [
        f"URL:      {url}",
        f"user:     {user}",
        f"password: {password}",
        f"govc:     {govc} GOVC_SIM_PID={os.getpid()}",
        "pyVmomi:  python -c \"from pyVim.connect import SmartConnect; "
        f"si = SmartConnect({conn}); print(si.content.about.fullName)\"",
        f"control:  curl -s{'k' if parts.scheme == 'https' else ''} -u {creds} {base}/vcbsim-api/state",
    ]


def build_parser() -> argparse.ArgumentParser:
    from .._profiles import PROFILES

    p = argparse.ArgumentParser(
        prog="vcbsim serve",
        description="Serve the simulated ESX host over the vSphere SOAP API (loopback only).",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=int, default=8989, help="TCP port (0 picks a free one; default 8989)")
    p.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    p.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "::1", "localhost"],
                   help="loopback address to listen on")
    p.add_argument("--user", default="user", help="login user name (default: user)")
    p.add_argument("--password", default="pass", help="login password (default: pass)")
    p.add_argument("--profile", default=None, choices=sorted(PROFILES),
                   help="host version profile (default esx-3.5u2, or the one --datastore was made with)")
    p.add_argument("--datastore", metavar="DIR",
                   help="keep the host in DIR (VMs, disks, snapshots survive a restart or a kill); "
                        "a new or empty DIR gets the demo inventory")
    p.add_argument("--inventory", metavar="FILE",
                   help="build the host from FILE (JSON or TOML: profile, seed, demo, vms, faults, in the "
                        "control API's shapes; docs/control-api.md) instead of the demo inventory")
    p.add_argument("--trace-limit", type=int, default=DEFAULT_TRACE_LIMIT, metavar="N",
                   help=f"events kept in memory for /vcbsim-api/trace (default {DEFAULT_TRACE_LIMIT})")
    p.add_argument("--trace-file", metavar="PATH", help="append every trace event to PATH (JSON Lines)")
    p.add_argument("--seed", type=int, default=None, help="seed of the host's randomness (default 0)")
    p.add_argument("--api-version", default="8.0.3.0",
                   help="vim25 version to advertise (default 8.0.3.0; a real ESX 3.5 says 2.5u2)")
    p.add_argument("--session-idle-timeout", type=float, default=None, metavar="SECONDS",
                   help="end sessions idle this long (default 1800, as hostd)")
    p.add_argument("--async-tasks", action="store_true",
                   help="run every task on the task thread, so clients see it queued and running "
                        "(default: a task runs right after the reply that returned it)")
    p.add_argument("--cert", help="PEM certificate (default: a fresh self-signed one)")
    p.add_argument("--key", help="PEM private key for --cert")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if (args.cert is None) != (args.key is None):
        print("vcbsim serve: --cert and --key go together", file=sys.stderr)
        return 2
    if args.session_idle_timeout is not None and not args.session_idle_timeout > 0:
        print(f"vcbsim serve: --session-idle-timeout: expected seconds > 0, got {args.session_idle_timeout}",
              file=sys.stderr)
        return 2
    if args.trace_limit < 1:
        print(f"vcbsim serve: --trace-limit: expected a count >= 1, got {args.trace_limit}", file=sys.stderr)
        return 2
    from .._errors import InvalidInputError, StateError
    from .._host import Host
    from ._host_adapter import HostAdapter
    from .http._server import serve

    inventory = None
    if args.inventory:
        from ._inventory import read_inventory

        try:
            inventory = read_inventory(args.inventory)
        except InvalidInputError as exc:
            print(f"vcbsim serve: --inventory: {exc}", file=sys.stderr)
            return 2
    profile = args.profile or (inventory.profile if inventory else None)
    seed = args.seed if args.seed is not None else (inventory.seed if inventory and inventory.seed is not None else 0)

    sink: IO[str] | None = None
    if args.trace_file:
        try:
            # line-buffered: a killed server has written every event it emitted
            sink = open(args.trace_file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        except OSError as exc:
            print(f"vcbsim serve: cannot write --trace-file {args.trace_file}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    try:
        if args.datastore and inventory is not None:
            # a dry run in memory first: a bad entry must not leave a half-built datastore
            inventory.populate(Host(profile or "esx-3.5u2", seed=seed))
        if args.datastore:
            from .._persist import open_host

            try:
                host = open_host(args.datastore, profile, seed=seed,
                                 populate=inventory.populate if inventory else None)
            except (StateError, OSError, ValueError) as exc:
                print(f"vcbsim serve: --datastore {args.datastore}: {exc}", file=sys.stderr)
                if sink is not None:
                    sink.close()
                return 1
            if inventory is not None:  # an existing datastore is loaded as it is; reset rebuilds the file's
                host._populate = inventory.populate  # type: ignore[attr-defined]
        elif inventory is not None:
            host = Host(profile or "esx-3.5u2", seed=seed)
            inventory.populate(host)
        else:
            host = Host.demo(profile or "esx-3.5u2", seed=seed)
    except InvalidInputError as exc:
        print(f"vcbsim serve: --inventory: {exc}", file=sys.stderr)
        if sink is not None:
            sink.close()
        return 2
    if sink is not None:  # what the host did while it was built (or recovered)
        for ev in host.trace.events:
            sink.write(json.dumps(ev.to_dict(), default=str, sort_keys=True) + "\n")
    host.trace.limit, host.trace.sink = args.trace_limit, sink
    try:
        running = serve(
            HostAdapter(host),
            port=args.port,
            http=args.http,
            user=args.user,
            password=args.password,
            host=args.host,
            certfile=args.cert,
            keyfile=args.key,
            api_version=args.api_version,
            session_idle_timeout=args.session_idle_timeout,
            async_tasks=args.async_tasks,
        )
    except ValueError as exc:
        _close(host, sink)
        print(f"vcbsim serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        _close(host, sink)
        print(f"vcbsim serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = signal.signal(signal.SIGTERM, _stop) if threading.current_thread() is threading.main_thread() else None
    print(f"vcbsim: {host.profile.product} {host.profile.version} ({host.profile.name}) at {running.url}")
    for line in connect_help(running.url, args.user, args.password):
        print(f"        {line}")
    print(f"        VMs: {', '.join(vm.name for vm in host.vms.values()) or '(none)'}")
    if inventory is not None:
        report = host.recovery_report
        kept = report is not None and not report.created
        print(f"        inventory: {args.inventory}"
              + (" (the datastore already held a host: loaded as it is; a reset rebuilds the file's)" if kept else ""))
    if host.store is not None:
        report = host.recovery_report
        print(f"        datastore: {args.datastore}" + (f" ({report.summary()})" if report is not None else ""))
    print("        Ctrl-C to stop", flush=True)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
        _close(host, sink)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _close(host: object, sink: IO[str] | None) -> None:
    store = getattr(host, "store", None)
    if store is not None:
        store.close()
    if sink is not None:
        with contextlib.suppress(OSError):
            sink.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
