"""The ``vcbsim`` command: one entry point, one verb per job, each verb owned by its package.

Verbs are looked up lazily so that ``vcbsim --help`` and light verbs start fast (pyVmomi and
Hypothesis load only for the verbs that need them). Each verb's own parser (argparse) owns its
options and its ``--help``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from . import __version__

__all__ = ["main", "VERBS"]

#: verb -> (module, function, one-line help). The function takes ``argv`` and returns an exit code.
VERBS: dict[str, tuple[str, str, str]] = {
    "demo": ("vcbsim._demo", "main", "narrated end-to-end VCB backup on the demo host (start here)"),
    "repl": ("vcbsim._repl", "main", "interactive console: step through a backup one documented step at a time"),
    "inventory": ("vcbsim._inventory", "main", "show the demo host: VMs, disks, volumes, scripts"),
    "mount": ("vcbsim.reference._cli", "main_mount", "vcbMounter-style: snapshot a VM and expose it (-t fullvm|file)"),
    "unmount": ("vcbsim.reference._cli", "main_unmount", "unmount a snapshot and commit (post-backup)"),
    "backup": ("vcbsim.reference._cli", "main_backup", "run a backup job: image, full, differential, incremental"),
    "restore": ("vcbsim.reference._cli", "main_restore", "restore files or a whole VM from a backup"),
    "jobs": ("vcbsim.reference._cli", "main_jobs", "list backup jobs and their history"),
    "serve": ("vcbsim.simulator.soap._cli", "main", "serve the host over the vSphere SOAP API (pyvmomi, Ansible)"),
    "conform": ("vcbsim.conformance._cli", "main_conformance", "certify an orchestrator: vcbsim conform module:factory"),
    "check-trace": ("vcbsim.conformance._cli", "main_check_trace", "check a recorded JSON Lines trace against the rules"),
    "verify-bundle": ("vcbsim.conformance._cli", "main_verify_bundle", "verify a conformance result bundle"),
}


def _resolve(verb: str) -> Callable[[list[str]], int]:
    module, func, _ = VERBS[verb]
    mod = importlib.import_module(module)
    return getattr(mod, func)  # type: ignore[no-any-return]


def _parser() -> argparse.ArgumentParser:
    width = max(len(v) for v in VERBS)
    verbs = "\n".join(f"  {v:<{width}}  {h}" for v, (_, _, h) in VERBS.items())
    p = argparse.ArgumentParser(
        prog="vcbsim",
        description="A simulated VMware ESX host, a reference VCB backup proxy, and a conformance kit.",
        epilog=f"verbs:\n{verbs}\n\nRun 'vcbsim VERB --help' for a verb's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"vcbsim {__version__}")
    p.add_argument("verb", nargs="?", choices=list(VERBS), metavar="VERB", help="what to do")
    p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


#: set to 1 to see the Python traceback of an unexpected error instead of one line
DEBUG_ENV = "VCBSIM_DEBUG"
#: exit status of an unexpected error (sysexits.h EX_SOFTWARE) and of an interrupt (128 + SIGINT)
EXIT_INTERNAL, EXIT_INTERRUPTED = 70, 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vcbsim`` console script.

    Every verb reports its own errors in one line; what still escapes it becomes one line too:
    an interrupt (Ctrl-C) ends with status 130, an unexpected error with status 70 and a line
    that says how to see the traceback (``VCBSIM_DEBUG=1``), never a traceback by default."""
    args = list(sys.argv[1:] if argv is None else argv)
    verb = args[0] if args and args[0] in VERBS else None
    try:
        if verb is not None:
            return int(_resolve(verb)(args[1:]) or 0)
        parser = _parser()
        ns = parser.parse_args(args)
        if ns.verb is None:
            parser.print_help()
            return 0
        verb = ns.verb
        return int(_resolve(ns.verb)(ns.args) or 0)
    except KeyboardInterrupt:
        print(f"vcbsim{' ' + verb if verb else ''}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        what = str(exc) or type(exc).__name__
        print(f"vcbsim{' ' + verb if verb else ''}: unexpected error: {what} (a bug in vcbsim: "
              f"{DEBUG_ENV}=1 shows where; please report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
