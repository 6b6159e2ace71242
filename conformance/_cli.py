"""Command-line verbs of the kit. The ``vcbsim`` command wires them in:

- ``vcbsim check-trace FILE``  -> ``main_check_trace(argv)``
- ``vcbsim verify-bundle DIR`` -> ``main_verify_bundle(argv)``
- ``vcbsim conformance``       -> ``main_conformance(argv)`` (run the suite against an adapter)

Exit codes: 0 conformant / valid, 1 violations (FAIL) / invalid bundle, 2 bad input
(unreadable file, not a trace, unknown profile), 3 the adapter misbehaved (ERROR), with a
message that says what was expected.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.markup import escape

from ._rules import HOST_PROFILES, RULES

__all__ = ["main_check_trace", "main_verify_bundle", "main_conformance", "main_conform_command"]


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with our message format on bad usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _console(file: IO[str] | None = None) -> Console:
    return Console(file=file or sys.stdout, highlight=False, soft_wrap=True)


def _profile_from_trace(events: list) -> str | None:  # type: ignore[type-arg]
    for ev in events:
        if ev.kind == "host.reset" and ev.details.get("profile") in HOST_PROFILES:
            return str(ev.details["profile"])
    return None


def main_check_trace(argv: list[str] | None = None) -> int:
    """``vcbsim check-trace FILE``: check a JSON Lines trace against the rule catalogue."""
    parser = _Parser(
        prog="vcbsim check-trace",
        description="Check a recorded JSON Lines trace against the conformance rules "
        "(docs/rules.md). Exit 0: conformant; 1: violations; 2: bad input.",
    )
    parser.add_argument("file", metavar="FILE", help="a JSON Lines trace ('-' reads standard input)")
    parser.add_argument(
        "--profile",
        choices=HOST_PROFILES,
        default=None,
        help="host profile the trace was recorded under (default: the trace's host.reset "
        "event, else esx-3.5u2)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    from vcbsim.simulator import load_jsonl

    from ._checker import check_trace

    err = _console(sys.stderr)
    try:
        if args.file == "-":
            events = load_jsonl(sys.stdin.read().splitlines())
        else:
            path = Path(args.file)
            if not path.is_file():
                err.print(f"vcbsim check-trace: expected a trace file, got {escape(str(path))!r}, which "
                          "does not exist or is not a file; record one with Trace.write_jsonl()")
                return 2
            events = load_jsonl(path.read_text(encoding="utf-8").splitlines())
    except (ValueError, UnicodeDecodeError) as exc:
        err.print(f"vcbsim check-trace: {escape(str(exc))}; each line must be one event object as "
                  "in simulator/schemas/trace.schema.json")
        return 2
    profile = args.profile or _profile_from_trace(events) or "esx-3.5u2"
    report = check_trace(events, profile=profile)
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
        return 0 if report.ok else 1
    out = _console()
    verdict = "[bold green]PASS[/]" if report.ok else "[bold red]FAIL[/]"
    out.print(f"{verdict} {escape(args.file)}: {len(report.violations)} violation(s), "
              f"{len(report.warnings)} warning(s); {report.consumed}/{report.events} events consumed; "
              f"profile {profile}")
    for v in (*report.violations, *report.warnings):
        colour = "red" if v.severity == "fail" else "yellow"
        rule = RULES[v.rule_id]
        out.print(f"\n[bold {colour}]{v.rule_id}[/] ({escape(rule.title)}; {escape(rule.source)})")
        out.print(f"  why: {escape(v.explanation)}")
        for e in v.witness:
            out.print(f"  witness {escape(e.line())}")
    for n in report.notes:
        out.print(f"[dim]note: {escape(n)}[/]")
    return 0 if report.ok else 1


def main_verify_bundle(argv: list[str] | None = None) -> int:
    """``vcbsim verify-bundle DIR``: check a results bundle is complete and consistent."""
    parser = _Parser(
        prog="vcbsim verify-bundle",
        description="Verify a conformance results bundle (results.json against its schema, "
        "junit.xml, summary.txt, timelines). Exit 0: valid; 1: invalid; 2: not a bundle.",
    )
    parser.add_argument("path", metavar="DIR", help="the bundle directory")
    parser.add_argument("--certified", action="store_true",
                        help="also require a certify-profile run with every case passing")
    args = parser.parse_args(argv)
    from ._report import verify_bundle

    out = _console()
    path = Path(args.path)
    if not path.is_dir():
        _console(sys.stderr).print(f"vcbsim verify-bundle: expected a bundle directory, got "
                                   f"{escape(str(path))!r}; write one with run(..., report=DIR)")
        return 2
    problems = verify_bundle(path, certified=args.certified)
    if problems:
        out.print(f"[bold red]INVALID[/] {escape(str(path))}: {len(problems)} problem(s)")
        for p in problems:
            out.print(f"  - {escape(p)}")
        return 1
    out.print(f"[bold green]VALID[/] {escape(str(path))}")
    return 0


def main_conformance(argv: list[str] | None = None) -> int:
    """``vcbsim conformance``: run the conformance suite against an orchestrator.

    With ``--command "CMD ..."`` the product is a command run over the wire against the SOAP
    endpoint (``main_conform_command``, ``conformance/_wire.py``)."""
    if argv is None:
        argv = sys.argv[1:]
    if any(a == "--command" or a.startswith("--command=") for a in argv):
        return main_conform_command(argv)
    parser = _Parser(
        prog="vcbsim conform",
        description="Run the conformance suite (scenarios, then Hypothesis exploration) against an "
        "orchestrator. Exit 0: conformant; 1: a rule failed; 2: bad input; 3: the adapter misbehaved.",
    )
    parser.add_argument("target", nargs="?", default=None, metavar="MODULE:FACTORY",
                        help="a callable returning an Orchestrator (default: the reference proxy)")
    parser.add_argument("--adapter", default=None, metavar="MODULE:FACTORY", help="the same, as an option")
    parser.add_argument("--profile", default="quick", choices=("quick", "dev", "certify", "teach"))
    parser.add_argument("--host-profile", default="esx-3.5u2", choices=HOST_PROFILES)
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: a random one, printed)")
    parser.add_argument("--report", metavar="DIR", default=None, help="write a results bundle here")
    parser.add_argument("--replay-dir", metavar="DIR", default=None,
                        help="saved failing step lists: replayed first, new failures saved")
    parser.add_argument("-n", "--workers", default="1", metavar="N",
                        help="run the cases (scenarios, exploration shards, saved failures) on N processes "
                        "and merge them into one bundle; 'auto': one per CPU (default: 1)")
    parser.add_argument("--command", metavar="CMD",
                        help="instead of an adapter: certify a product run as a command, over the wire against "
                        "the SOAP endpoint (vcbsim conform --command CMD --help)")
    args = parser.parse_args(argv)
    if args.target and args.adapter and args.target != args.adapter:
        parser.error(f"two adapters given: {args.target!r} and --adapter {args.adapter!r}; give one")
    args.adapter = args.target or args.adapter or "vcbsim.conformance:ReferenceOrchestrator"
    import importlib

    from ._errors import AdapterError, ConformanceViolation, InvalidDefinition

    err = _console(sys.stderr)
    module, _, attr = args.adapter.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr or "Orchestrator")
    except (ImportError, AttributeError, ValueError) as exc:
        err.print(f"vcbsim conformance: --adapter expected MODULE:FACTORY naming an importable callable, got "
                  f"{escape(args.adapter)!r} ({escape(str(exc))})")
        return 2
    from ._parallel import run_parallel

    try:
        result = run_parallel(factory, profile=args.profile, seed=args.seed, report=args.report,
                              host_profile=args.host_profile, replay_dir=args.replay_dir, workers=args.workers)
    except InvalidDefinition as exc:
        err.print(f"vcbsim conformance: {escape(str(exc))}")
        return 2
    except (ConformanceViolation, AdapterError) as exc:  # the harness itself, outside any case
        err.print(f"[bold red]ERROR[/] {escape(str(exc))}")
        return 3
    failing = [c for c in result.cases if c.outcome in ("fail", "error")]
    for case in failing:
        if case.outcome == "fail":
            why = str(case.violations[0].get("explanation", case.message)) if case.violations else case.message
            err.print(f"[bold red]FAIL[/] {escape(', '.join(case.rules))} in {escape(case.name)}: {escape(why)}")
        else:
            err.print(f"[bold red]ERROR[/] {escape(case.name)}: {escape(case.message)}")
    if failing:
        return 1 if failing[0].outcome == "fail" else 3
    _console().print("[bold green]CONFORMANT[/]" + (f"; bundle in {escape(args.report)}" if args.report else ""))
    return 0


def main_conform_command(argv: list[str] | None = None) -> int:
    """``vcbsim conform --command "CMD ..."``: certify a product run as a command, over the wire
    (``conformance/_wire.py``). Exit 0: conformant; 1: a rule failed; 2: bad input; 3: the
    command misbehaved."""
    from ._wire import main_conform_command as run_command

    return run_command(argv)
