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
import io
import json
import sys
from pathlib import Path
from typing import IO, Any

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
    if not path.is_dir() or not (path / "results.json").is_file():
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
    parser.add_argument("--kit-profile", default=None, choices=("quick", "dev", "certify", "teach"),
                        help="the kit's test profile (default: quick); certify is the result you hand over")
    parser.add_argument("--profile", default=None, choices=("quick", "dev", "certify", "teach"),
                        help="deprecated alias of --kit-profile (elsewhere --profile names a host profile)")
    parser.add_argument("--host-profile", default="esx-3.5u2", choices=HOST_PROFILES,
                        help="the simulated host's profile (default: esx-3.5u2)")
    parser.add_argument("--guest-agent", default=None, metavar="MODULE:FACTORY",
                        help="certify a guest agent: factory(default_tools) -> GuestAgent on every VM")
    parser.add_argument("--capabilities", default=None, metavar="FILE|JSON",
                        help="the product's declaration (Capabilities fields as JSON, or a file of it); "
                        "default: the adapter's own 'capabilities' attribute")
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
    kit_profile = _kit_profile(args, parser)
    from ._errors import AdapterError, ConformanceViolation, InvalidDefinition

    err = _console(sys.stderr)
    try:
        factory = _load(args.adapter, "--adapter", "Orchestrator")
        agent = _load(args.guest_agent, "--guest-agent", "GuestAgent") if args.guest_agent else None
        if args.capabilities:
            factory = _declared(factory, load_capabilities(args.capabilities))
    except InvalidDefinition as exc:
        err.print(f"vcbsim conform: {escape(str(exc))}")
        return 2
    from ._parallel import run_parallel

    try:
        result = run_parallel(factory, profile=kit_profile, seed=args.seed, report=args.report,
                              host_profile=args.host_profile, replay_dir=args.replay_dir, workers=args.workers,
                              guest_agent_factory=agent, out=io.StringIO())
    except KeyboardInterrupt:
        err.print("vcbsim conform: interrupted; no verdict (run again to certify)")
        return 130
    except InvalidDefinition as exc:
        err.print(f"vcbsim conform: {escape(str(exc))}")
        return 2
    except (ConformanceViolation, AdapterError) as exc:  # the harness itself, outside any case
        err.print(f"[bold red]ERROR[/] {escape(str(exc))}")
        return 3
    return print_verdict(result, report=args.report)


def _kit_profile(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """``--kit-profile``, or its deprecated alias ``--profile`` (with a note)."""
    if args.profile and args.kit_profile and args.profile != args.kit_profile:
        parser.error(f"--profile {args.profile} and --kit-profile {args.kit_profile} disagree; give --kit-profile")
    if args.profile and not args.kit_profile:
        sys.stderr.write("vcbsim conform: --profile is deprecated here (it names a host profile in other verbs); "
                         "use --kit-profile\n")
    return str(args.kit_profile or args.profile or "quick")


def _load(ref: str, option: str, default_attr: str) -> Any:
    import importlib

    from ._errors import InvalidDefinition

    module, _, attr = ref.partition(":")
    try:
        return getattr(importlib.import_module(module), attr or default_attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidDefinition(option, expected="MODULE:FACTORY naming an importable callable", got=ref,
                                hint=str(exc)) from None


def load_capabilities(text: str) -> Any:
    """A declaration from ``--capabilities``: inline JSON or a file holding it."""
    from ._capabilities import Capabilities
    from ._errors import InvalidDefinition

    raw = text
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise InvalidDefinition("--capabilities", expected="a JSON object or a file holding one", got=text)
        raw = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidDefinition("--capabilities", expected="JSON", got=raw[:60], hint=exc.msg) from None
    if not isinstance(doc, dict):
        raise InvalidDefinition("--capabilities", expected="a JSON object of Capabilities fields", got=doc)
    return Capabilities.from_mapping(doc)


def _declared(factory: Any, caps: Any) -> Any:
    """``factory`` whose products carry the declaration ``caps``."""
    def make() -> Any:
        product = factory()
        product.capabilities = caps
        return product

    make.__qualname__ = getattr(factory, "__qualname__", "adapter")
    make.__module__ = getattr(factory, "__module__", __name__)
    return make


def print_verdict(result: Any, *, report: str | None, out: IO[str] | None = None) -> int:
    """The CLI's end of a run, the same for both routes: the diagnosis of every failure
    (rule, title and source, the sentence, the witness events with their text, the reproducer),
    each distinct failure once with the cases that share it, the rules exercised, and the
    verdict. Returns the exit code: 0 conformant, 1 a rule failed, 3 an ERROR only."""
    from ._report import diagnosis

    con, err = _console(out), _console(out or sys.stderr)
    failing = [c for c in result.cases if c.outcome in ("fail", "error")]
    seen: dict[tuple[str, ...], list[str]] = {}
    for case in failing:
        v = case.violations[0] if case.violations else {}
        key = (case.outcome, *case.rules, str(v.get("explanation", case.message)))
        if key in seen:
            seen[key].append(case.name)
            continue
        seen[key] = [case.name]
        err.print(escape(diagnosis(case)))
    for key, names in seen.items():
        if len(names) > 1:
            err.print(f"(the same {key[0].upper()} in {len(names)} cases: {escape(', '.join(names))})")
    if result.evidence is not None:
        con.print("declaration: " + escape(json.dumps(dict(result.evidence.declaration), sort_keys=True)))
        if result.evidence.content:
            con.print("backup content: " + escape(result.evidence.content))
        con.print("rules exercised (occasions; n/a: not applicable):")
        for line in result.evidence.table():
            con.print(escape(line))
    totals = {o: sum(1 for c in result.cases if c.outcome == o) for o in ("pass", "fail", "error", "skip", "na")}
    warned: dict[str, str] = {}
    for c in result.cases:
        for w in c.warnings:
            warned.setdefault(str(w.get("rule")), f"{c.name}: {w.get('explanation')}")
    for rid, first in warned.items():
        con.print(f"[yellow]WARN[/] {escape(rid)} (SHOULD; does not fail certification) {escape(first)}")
    con.print(f"{len(result.cases)} cases: " + ", ".join(f"{v} {k}" for k, v in totals.items() if v))
    where = f"; bundle in {escape(report)}" if report else ""
    if failing:
        con.print(f"[bold red]NOT CONFORMANT[/]{where}")
        return 1 if any(c.outcome == "fail" for c in failing) else 3
    if totals["skip"]:
        con.print(f"[bold yellow]NOT CONFORMANT[/] ({totals['skip']} skipped){where}")
        return 1
    con.print(f"[bold green]CONFORMANT[/]{where}")
    return 0


def main_conform_command(argv: list[str] | None = None) -> int:
    """``vcbsim conform --command "CMD ..."``: certify a product run as a command, over the wire
    (``conformance/_wire.py``). Exit 0: conformant; 1: a rule failed; 2: bad input; 3: the
    command misbehaved."""
    from ._wire import main_conform_command as run_command

    return run_command(argv)
