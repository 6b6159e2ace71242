"""``vcbsim serve``: the demo host over the vSphere SOAP API, on loopback.

    vcbsim serve                      # https://127.0.0.1:8989/sdk, user "user", password "pass"
    vcbsim serve --small              # the demo VMs with 64-96 MiB disks: quick to download
    vcbsim serve --http --port 8080   # plain HTTP
    vcbsim serve --port 0 --print-url # a free port; the SDK URL alone on stdout (for scripts)
    vcbsim serve --port 0 --ready-file ready.json   # written (url, port, pid) once serving
    VCBSIM_PASSWORD=s3cret vcbsim serve             # or --password-file FILE
    vcbsim serve --profile esxi-7.0   # changed block tracking, SEsparse redo logs
    vcbsim serve --datastore DIR      # VMs, disks and snapshots kept in DIR (survive restarts)
    vcbsim serve --inventory inv.json # the host a file describes (docs/control-api.md)
    vcbsim serve --trace-file t.jsonl # every trace event appended to a JSON Lines file

The control API (reset, VMs, guest files, fault rules, trace) is on the same port under
/vcbsim-api/ (docs/control-api.md).

The banner never prints the password: it says where the password came from (the default is
"pass"), and its govc, pyVmomi and curl lines read it from $VCBSIM_PASSWORD.

Then, for instance::

    from pyVim.connect import SmartConnect
    si = SmartConnect(host="127.0.0.1", port=8989, user="user", pwd="pass",
                      disableSslCertValidation=True)
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from .._host import Host
    from ._inventory import Inventory

__all__ = ["main", "build_parser", "connect_help", "small_inventory", "DEFAULT_TRACE_LIMIT", "PASSWORD_ENV"]

#: events a long-running server keeps in memory (older ones stay in --trace-file)
DEFAULT_TRACE_LIMIT = 100_000
#: the environment variable the password may come from (and the banner's lines read it from)
PASSWORD_ENV = "VCBSIM_PASSWORD"
DEFAULT_PASSWORD = "pass"
_PROG = "vcbsim serve"


class _Refused(Exception):
    """A bad option: one line for the user, and the exit status."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def connect_help(url: str, user: str, password_source: str) -> list[str]:
    """How to connect, as ``vcsim`` prints it: URL, user, govc, pyVmomi, the control API.

    The password itself is never printed (a terminal's scrollback and CI logs keep it):
    ``password_source`` says where it came from, and the command lines read it from
    ``$VCBSIM_PASSWORD``."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
    env = f"${PASSWORD_ENV}"
    govc = (f"export GOVC_URL={parts.scheme}://{parts.netloc}{parts.path} GOVC_USERNAME={quote(user, safe='')} "
            f'GOVC_PASSWORD="{env}"')
    pwd = f"os.environ['{PASSWORD_ENV}']"
    if parts.scheme == "https":
        govc += " GOVC_INSECURE=1"
        conn = f"host={host!r}, port={port}, user={user!r}, pwd={pwd}, disableSslCertValidation=True"
    else:
        conn = f"protocol='http', host={host!r}, port={port}, user={user!r}, pwd={pwd}"
    base = f"{parts.scheme}://{parts.netloc}"
    return [
        f"URL:      {url}",
        f"user:     {user}",
        f"password: not shown ({password_source}); the lines below read it from {env}",
        f"govc:     {govc} GOVC_SIM_PID={os.getpid()}",
        "pyVmomi:  python -c \"import os; from pyVim.connect import SmartConnect; "
        f"si = SmartConnect({conn}); print(si.content.about.fullName)\"",
        f"control:  curl -s{'k' if parts.scheme == 'https' else ''} -u \"{user}:{env}\" {base}/vcbsim-api/state",
    ]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        msg = f"expected a TCP port 0..65535 (0 picks a free one), got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def build_parser() -> argparse.ArgumentParser:
    from .._profiles import PROFILES

    p = argparse.ArgumentParser(
        prog=_PROG,
        description="Serve the simulated ESX host over the vSphere SOAP API (loopback only).",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=_port, default=8989, help="TCP port (0 picks a free one; default 8989)")
    p.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    p.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "::1", "localhost"],
                   help="loopback address to listen on")
    p.add_argument("--user", default="user", help="login user name (default: user)")
    p.add_argument("--password", default=None,
                   help=f"login password (default: ${PASSWORD_ENV}, else {DEFAULT_PASSWORD!r}); other users of "
                        "the machine see a command line: prefer --password-file or the environment")
    p.add_argument("--password-file", metavar="FILE",
                   help="read the login password from the first line of FILE")
    p.add_argument("--profile", default=None, choices=sorted(PROFILES),
                   help="host version profile (default esx-3.5u2, or the one --datastore was made with)")
    p.add_argument("--small", action="store_true",
                   help="the demo VMs with small thin disks (64-96 MiB instead of 4-8 GiB): a whole disk "
                        "downloads in a moment")
    p.add_argument("--datastore", metavar="DIR",
                   help="keep the host in DIR (VMs, disks, snapshots survive a restart or a kill); "
                        "a new or empty DIR gets the demo inventory")
    p.add_argument("--inventory", metavar="FILE",
                   help="build the host from FILE (JSON or TOML: profile, seed, demo, vms, faults, in the "
                        "control API's shapes; docs/control-api.md) instead of the demo inventory")
    p.add_argument("--proxy-vm", metavar="NAME",
                   help="mark VM NAME as the backup proxy (hot-add: products attach snapshot disks to it)")
    p.add_argument("--proxy-devices", metavar="DIR",
                   help="with --proxy-vm: where the proxy guest's block devices appear (a hot-added disk is an "
                        "NBD socket DIR/NAME/scsi0:N; default: a temporary directory removed at exit)")
    p.add_argument("--print-url", action="store_true",
                   help="print only the SDK URL on stdout once serving (the banner goes to stderr): "
                        "URL=$(vcbsim serve --port 0 --print-url | head -1)")
    p.add_argument("--ready-file", metavar="PATH",
                   help="once serving, write PATH (JSON: url, host, port, user, pid, control, cert); "
                        "removed when the server stops")
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


def _password(args: argparse.Namespace) -> tuple[str, str]:
    """The password and where it came from (what the banner says instead of the password)."""
    if args.password_file is not None and args.password is not None:
        raise _Refused("--password and --password-file both give the password: keep one")
    if args.password_file is not None:
        try:
            with open(args.password_file, encoding="utf-8") as f:
                password = f.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            msg = f"--password-file {args.password_file}: expected a readable text file, got: {reason}"
            raise _Refused(msg) from None
        if not password:
            msg = f"--password-file {args.password_file}: expected the password on the first line, got an empty line"
            raise _Refused(msg)
        return password, f"from --password-file {args.password_file}"
    if args.password is not None:
        if not args.password:
            raise _Refused("--password: expected a non-empty password, got ''")
        return args.password, "given with --password"
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env, f"from ${PASSWORD_ENV}"
    return DEFAULT_PASSWORD, "the default, in 'vcbsim serve --help'"


def small_inventory() -> Inventory:
    """``--small``: the demo's VMs, guests, files and quiescing scripts on small thin disks.

    Built from the demo host itself (its guest files are copied), so the two never drift; only
    the disk and volume sizes differ (FAT32 needs at least about 33 MiB per volume)."""
    from .._host import Host
    from ._inventory import Inventory

    demo = Host.demo()
    layouts: dict[str, tuple[list[str], dict[str, list[list[Any]]]]] = {
        "win2003-sql": (["64MiB", "96MiB"], {"0": [[None, "C", "SYSTEM"]],
                                              "1": [["48MiB", "D", "DATA"], [None, None, "RECOVERY"]]}),
        "rhel5-web": (["96MiB"], {"0": [["48MiB", "/", "ROOT"], [None, "/var/www", "WWW"]]}),
    }
    vms = []
    for vm in demo.vms.values():
        disks, volumes = layouts[vm.name]
        fs = demo.guest_fs(vm)
        files: list[dict[str, str]] = []
        tops = [f"{v.letter}:\\" if v.letter else v.mount_point for v in fs.volumes if v.letter or v.mount_point]
        for top in tops:  # each mounted volume (a walk does not cross into another one)
            for dirpath, _dirs, names in fs.walk(top):
                sep = "\\" if vm.os_family == "windows" else "/"
                for name in names:
                    path = dirpath.rstrip(sep) + sep + name
                    files.append({"path": path, "base64": base64.b64encode(fs.read_bytes(path)).decode()})
        vms.append({"name": vm.name, "os": vm.os_family, "disks": disks, "volumes": volumes,
                    "providers": list(vm.tools.providers) if vm.tools is not None else None,
                    "ip": vm.ip_address, "hostname": vm.hostname, "files": files})
    return Inventory("--small", vms=tuple(vms))


@dataclass
class _Output:
    """Where the banner goes: stdout, or stderr when stdout carries only the URL."""

    banner: IO[str]
    url: IO[str] | None


def main(argv: Sequence[str] | None = None) -> int:
    """``vcbsim serve``: one clear line for every refusal, a clean exit on SIGINT or SIGTERM."""
    done = threading.Event()
    handlers: dict[int, Any] = {}

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    try:
        return _main(list(sys.argv[1:] if argv is None else argv), done, handlers, _stop)
    except KeyboardInterrupt:  # before the server listened: nothing to stop yet
        print(f"{_PROG}: interrupted before serving", file=sys.stderr)
        return 130
    except _Refused as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return exc.status
    finally:
        for signum, previous in handlers.items():
            signal.signal(signum, previous)


def _main(argv: list[str], done: threading.Event, handlers: dict[int, Any], stop: Any) -> int:
    args = build_parser().parse_args(argv)
    if (args.cert is None) != (args.key is None):
        raise _Refused("--cert and --key go together")
    if args.session_idle_timeout is not None and not args.session_idle_timeout > 0:
        msg = f"--session-idle-timeout: expected seconds > 0, got {args.session_idle_timeout}"
        raise _Refused(msg)
    if args.trace_limit < 1:
        msg = f"--trace-limit: expected a count >= 1, got {args.trace_limit}"
        raise _Refused(msg)
    if args.proxy_devices and not args.proxy_vm:
        raise _Refused("--proxy-devices: expected --proxy-vm NAME too (the devices are that VM's)")
    if args.small and args.inventory:
        raise _Refused("--small and --inventory both say which VMs to build: keep one")
    password, password_source = _password(args)
    from .._errors import InvalidInputError
    from .http._server import serve

    inventory = None
    if args.inventory:
        from ._inventory import read_inventory

        try:
            inventory = read_inventory(args.inventory)
        except InvalidInputError as exc:
            msg = f"--inventory: {exc}"
            raise _Refused(msg) from None
    elif args.small:
        inventory = small_inventory()
    profile = args.profile or (inventory.profile if inventory else None)
    seed = args.seed if args.seed is not None else (inventory.seed if inventory and inventory.seed is not None else 0)

    sink: IO[str] | None = None
    if args.trace_file:
        try:
            # line-buffered: a killed server has written every event it emitted
            sink = open(args.trace_file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        except OSError as exc:
            msg = f"cannot write --trace-file {args.trace_file}: {exc.strerror or exc}"
            raise _Refused(msg) from None
    try:
        host = _build_host(args, inventory, profile, seed)
    except BaseException:
        if sink is not None:
            sink.close()
        raise
    if args.proxy_vm:
        from .._hotadd import mark_proxy

        try:
            mark_proxy(host, args.proxy_vm, args.proxy_devices)
        except Exception as exc:  # noqa: BLE001 - one line: which VMs there are
            msg = f"--proxy-vm {args.proxy_vm}: {exc}"
            raise _Refused(msg) from None
    if sink is not None:  # what the host did while it was built (or recovered)
        for ev in host.trace.events:
            sink.write(json.dumps(ev.to_dict(), default=str, sort_keys=True) + "\n")
    host.trace.limit, host.trace.sink = args.trace_limit, sink
    try:
        running = serve(
            host,
            port=args.port,
            http=args.http,
            user=args.user,
            password=password,
            host=args.host,
            certfile=args.cert,
            keyfile=args.key,
            api_version=args.api_version,
            session_idle_timeout=args.session_idle_timeout,
            async_tasks=args.async_tasks,
        )
    except ValueError as exc:
        _close(host, sink)
        raise _Refused(str(exc)) from None
    except OSError as exc:
        _close(host, sink)
        msg = f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        raise _Refused(msg, 1) from None
    except BaseException:
        _close(host, sink)
        raise
    ready: Path | None = None
    try:
        if threading.current_thread() is threading.main_thread():
            # from here a signal only asks the loop below to stop: stopping is never cut short
            for signum in (signal.SIGINT, signal.SIGTERM):
                handlers[signum] = signal.signal(signum, stop)
        if args.ready_file:  # first: whoever reads the URL or the banner finds the file too
            ready = Path(args.ready_file)
            _write_ready(ready, running, args.user)
        out = _Output(sys.stderr, sys.stdout) if args.print_url else _Output(sys.stdout, None)
        _banner(out.banner, host, running.url, args, password_source, inventory)
        if out.url is not None:
            print(running.url, file=out.url, flush=True)
        while not done.wait(0.5):
            pass
    finally:
        running.stop()
        _close(host, sink)
        if ready is not None:
            with contextlib.suppress(OSError):
                ready.unlink()
    return 0


def _build_host(args: argparse.Namespace, inventory: Inventory | None, profile: str | None, seed: int) -> Host:
    from pyVmomi import vmodl

    from .._errors import InvalidInputError, StateError
    from .._host import Host

    try:
        if args.datastore and inventory is not None:
            # a dry run in memory first: a bad entry must not leave a half-built datastore
            inventory.populate(Host(profile or "esx-3.5u2", seed=seed))
        if args.datastore:
            from .._persist import open_host

            try:
                host = open_host(args.datastore, profile, seed=seed,
                                 populate=inventory.populate if inventory else None)
            except (StateError, OSError, ValueError, vmodl.MethodFault) as exc:
                # a host's fault (NoDiskSpace, FileTooLarge ...) says it in its msg
                msg = f"--datastore {args.datastore}: {getattr(exc, 'msg', None) or exc}"
                raise _Refused(msg, 1) from None
            return host  # open_host keeps the file's populate: an existing datastore's reset rebuilds it
        if inventory is not None:
            return Host(profile or "esx-3.5u2", seed=seed, populate=inventory.populate)
        return Host.demo(profile or "esx-3.5u2", seed=seed)
    except InvalidInputError as exc:
        msg = f"--inventory: {exc}"
        raise _Refused(msg) from None


def _banner(out: IO[str], host: Host, url: str, args: argparse.Namespace, password_source: str,
            inventory: Inventory | None) -> None:
    print(f"vcbsim: {host.profile.product} {host.profile.version} ({host.profile.name}) at {url}", file=out)
    for line in connect_help(url, args.user, password_source):
        print(f"        {line}", file=out)
    print(f"        VMs: {', '.join(vm.name for vm in host.vms.values()) or '(none)'}", file=out)
    if args.small:
        print("        inventory: --small (the demo VMs on 64-96 MiB thin disks)", file=out)
    elif inventory is not None:
        report = host.recovery_report
        kept = report is not None and not report.created
        print(f"        inventory: {args.inventory}"
              + (" (the datastore already held a host: loaded as it is; a reset rebuilds the file's)" if kept else ""),
              file=out)
    if args.proxy_vm:
        from .._hotadd import device_dir

        where = device_dir(host.find_vm(args.proxy_vm))
        print(f"        proxy VM: {args.proxy_vm} (hot-added disks appear as NBD sockets in {where})", file=out)
    if host.store is not None:
        report = host.recovery_report
        print(f"        datastore: {args.datastore}" + (f" ({report.summary()})" if report is not None else ""),
              file=out)
        for line in report.problems() if report is not None else ():
            print(f"          {line}", file=out)  # each damaged or unaccounted file, and why
    print("        Ctrl-C to stop", file=out, flush=True)


def _write_ready(path: Path, running: Any, user: str) -> None:
    """The ready file, written whole or not at all (a reader never sees half of it)."""
    doc = {"url": running.url, "host": running.host, "port": running.port, "user": user, "pid": os.getpid(),
           "control": f"{running.base_url}/vcbsim-api/",
           "cert": str(running.cert_path) if running.cert_path is not None else None}
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        msg = f"--ready-file {path}: cannot write it: {exc.strerror or exc}"
        raise _Refused(msg, 1) from None


def _close(host: object, sink: IO[str] | None) -> None:
    store = getattr(host, "store", None)
    if store is not None:
        store.close()
    if sink is not None:
        with contextlib.suppress(OSError):
            sink.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
