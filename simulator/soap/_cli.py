"""``vcbsim serve``: the demo host over the vSphere SOAP API, on loopback.

    vcbsim serve                      # https://127.0.0.1:8989/sdk, user "user", password "pass"
    vcbsim serve --http --port 8080   # plain HTTP
    vcbsim serve --profile esxi-7.0   # changed block tracking, SEsparse redo logs

Then, for instance::

    from pyVim.connect import SmartConnect
    si = SmartConnect(host="127.0.0.1", port=8989, user="user", pwd="pass",
                      disableSslCertValidation=True)
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

__all__ = ["main", "build_parser"]


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
    p.add_argument("--profile", default="esx-3.5u2", choices=sorted(PROFILES), help="host version profile")
    p.add_argument("--seed", type=int, default=0, help="seed of the host's randomness")
    p.add_argument("--api-version", default="8.0.3.0",
                   help="vim25 version to advertise (default 8.0.3.0; a real ESX 3.5 says 2.5u2)")
    p.add_argument("--cert", help="PEM certificate (default: a fresh self-signed one)")
    p.add_argument("--key", help="PEM private key for --cert")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if (args.cert is None) != (args.key is None):
        print("vcbsim serve: --cert and --key go together", file=sys.stderr)
        return 2
    from .._host import Host
    from ._host_adapter import HostAdapter
    from ._server import serve

    host = Host.demo(args.profile, seed=args.seed)
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
        )
    except ValueError as exc:
        print(f"vcbsim serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"vcbsim serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = signal.signal(signal.SIGTERM, _stop) if threading.current_thread() is threading.main_thread() else None
    print(f"vcbsim: {host.profile.product} {host.profile.version} ({args.profile}) at {running.url}")
    print(f"        user {args.user!r}; VMs: {', '.join(vm.name for vm in host.vms.values())}")
    print("        Ctrl-C to stop", flush=True)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
