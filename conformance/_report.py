"""Results bundles: the unit of submission and of debugging.

A bundle is a directory::

    results.json       machine summary; schema: conformance/schemas/results.schema.json
    junit.xml          xunit2 JUnit XML (kit statistics as testsuite properties only)
    summary.txt        the human-readable log: header (kit version, seed, Hypothesis version,
                       profiles, adapter, run UUID), one line per case, totals
    timelines/*.html   a static HTML timeline of the trace of every failing case

ERROR (the harness or the adapter misbehaved: no rule was judged) and FAIL (a rule was judged
and failed) are separate outcomes everywhere. ``verify_bundle`` checks a bundle the way
Kubernetes' ``verify-conformance`` checks a submission.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import html
import json
import platform
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree as ET

from vcbsim.simulator import Event

from ._errors import InvalidDefinition
from ._rules import KIT_VERSION, RULES

__all__ = [
    "RunInfo",
    "CaseResult",
    "write_bundle",
    "verify_bundle",
    "results_schema",
    "new_run_info",
    "diagnosis",
    "warning_rules",
]

Outcome = Literal["pass", "fail", "error", "skip", "na"]
#: ``na``: not applicable, the product's declaration leaves out every job of the case (not a
#: skip: certify accepts it, and the message says which declaration scoped it out)
OUTCOMES: tuple[str, ...] = ("pass", "fail", "error", "skip", "na")
RESULTS_SCHEMA_VERSION = 2


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a run was: enough to reproduce it and to judge whether it may certify."""

    kit_version: str
    kit_profile: str
    host_profile: str
    seed: int | None
    hypothesis_version: str
    adapter_name: str
    adapter_version: str
    run_uuid: str
    started: str
    finished: str = ""
    python: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kit_version": self.kit_version,
            "kit_profile": self.kit_profile,
            "host_profile": self.host_profile,
            "seed": self.seed,
            "hypothesis_version": self.hypothesis_version,
            "adapter_name": self.adapter_name,
            "adapter_version": self.adapter_version,
            "run_uuid": self.run_uuid,
            "started": self.started,
            "finished": self.finished,
            "python": self.python,
            "config": dict(self.config),
        }


def new_run_info(
    *,
    kit_profile: str,
    host_profile: str,
    seed: int | None,
    adapter_name: str,
    adapter_version: str = "",
    config: Mapping[str, Any] | None = None,
) -> RunInfo:
    """A ``RunInfo`` with a fresh run UUID, the installed Hypothesis version and the time now.

    Wall time appears only here, as a label of the report; it never drives the simulation.
    """
    import hypothesis

    return RunInfo(
        kit_version=KIT_VERSION,
        kit_profile=kit_profile,
        host_profile=host_profile,
        seed=seed,
        hypothesis_version=hypothesis.__version__,
        adapter_name=adapter_name,
        adapter_version=adapter_version,
        run_uuid=str(uuid.uuid4()),
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        python=platform.python_version(),
        config=dict(config or {}),
    )


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case of a run. ``rules`` are the failed rule ids (FAIL) or empty; ``steps`` the
    (shrunk) step list that reproduces it; ``trace`` the events for the timeline."""

    name: str
    outcome: Outcome
    message: str = ""
    rules: tuple[str, ...] = ()
    duration: float = 0.0
    steps: tuple[str, ...] = ()
    violations: tuple[Mapping[str, Any], ...] = ()
    trace: tuple[Event, ...] = ()
    #: occasions per rule in this case (``_evidence``): the rules it exercised, how often
    exercised: Mapping[str, int] = field(default_factory=dict)
    #: jobs of the case the declaration left out, with the reason
    not_asked: tuple[str, ...] = ()
    #: a pasteable pytest function that replays a failing case
    reproducer: str = ""
    #: SHOULD / SHOULD NOT rules the case broke (``severity: warn``): reported, never a FAIL
    warnings: tuple[Mapping[str, Any], ...] = ()
    #: rules an occasion of the case could not judge, with the reason (``ScenarioBase.unjudged``)
    unjudged: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            msg = f"case {self.name!r} outcome"
            raise InvalidDefinition(msg, expected="one of " + ", ".join(OUTCOMES), got=self.outcome)
        unknown = [r for r in self.rules if r not in RULES]
        if unknown:
            msg = f"case {self.name!r} rules"
            raise InvalidDefinition(msg, expected="rule ids from the catalogue", got=unknown)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "message": self.message,
            "rules": list(self.rules),
            "duration": round(self.duration, 6),
            "steps": list(self.steps),
            "violations": [dict(v) for v in self.violations],
            "events": len(self.trace),
            "timeline": f"timelines/{_slug(self.name)}.html" if self.outcome in ("fail", "error") else None,
            "exercised": dict(sorted(self.exercised.items())),
            "not_asked": list(self.not_asked),
            "reproducer": self.reproducer,
            "warnings": [dict(w) for w in self.warnings],
        }


def diagnosis(case: CaseResult) -> str:
    """A failing case as the pytest route prints it: the outcome, the rule (title, source),
    the sentence, the witness events with their text, and the reproducer."""
    lines = [f"{case.outcome.upper()} {case.name}" + (f" [{', '.join(case.rules)}]" if case.rules else "")]
    for v in case.violations or ({"rule": None, "explanation": case.message, "witness": []},):
        rid = v.get("rule")
        if rid in RULES:
            lines.append(f"  {rid}: {RULES[str(rid)].title} ({RULES[str(rid)].source})")
        lines.append(f"  why: {v.get('explanation') or case.message}")
        for w in v.get("witness", []):
            lines.append("  witness " + Event.from_dict(w).line())
    if case.reproducer:
        lines += ["Reproduce with:", "", case.reproducer]
    return "\n".join(lines)


def warning_rules(cases: Iterable[CaseResult]) -> list[str]:
    """The SHOULD / SHOULD NOT rules the cases broke, in order of first warning."""
    return list(dict.fromkeys(str(w.get("rule")) for c in cases for w in c.warnings))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "case"


def results_schema() -> dict[str, Any]:
    """The published JSON Schema of ``results.json``."""
    path = Path(__file__).with_name("schemas") / "results.schema.json"
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _totals(cases: Sequence[CaseResult]) -> dict[str, int]:
    totals = dict.fromkeys(OUTCOMES, 0)
    for c in cases:
        totals[c.outcome] += 1
    totals["total"] = len(cases)
    return totals


def write_bundle(
    path: str | Path,
    run_info: RunInfo,
    cases: Iterable[CaseResult],
    *,
    statistics: Mapping[str, Any] | None = None,
    evidence: Any = None,
) -> Path:
    """Write a results bundle to ``path`` (created; existing bundle files are replaced).
    ``evidence``: the run's ``_evidence.Evidence`` (declaration, rules exercised, not
    applicable, not exercised), written to results.json, junit.xml and summary.txt."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    case_list = list(cases)
    names = [c.name for c in case_list]
    if len(set(names)) != len(names):
        msg = "case names"
        raise InvalidDefinition(msg, expected="unique names", got=sorted({n for n in names if names.count(n) > 1}))
    stats = dict(statistics or {})
    totals = _totals(case_list)
    doc = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "run_info": run_info.to_dict(),
        "totals": totals,
        "statistics": stats,
        "cases": [c.to_dict() for c in case_list],
    }
    if evidence is not None:
        doc["evidence"] = evidence.to_dict()
    (root / "results.json").write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    (root / "junit.xml").write_bytes(_junit(run_info, case_list, stats, evidence))
    (root / "summary.txt").write_text(_summary(run_info, case_list, totals, stats, evidence), encoding="utf-8")
    tl = root / "timelines"
    for c in case_list:
        if c.outcome in ("fail", "error"):
            tl.mkdir(exist_ok=True)
            (tl / f"{_slug(c.name)}.html").write_text(_timeline(run_info, c), encoding="utf-8")
    return root


def _evidence_props(evidence: Any) -> dict[str, Any]:
    if evidence is None:
        return {}
    props: dict[str, Any] = {"declaration": json.dumps(dict(evidence.declaration), sort_keys=True)}
    if getattr(evidence, "content", ""):
        props["content"] = evidence.content
    for rid in RULES:
        if rid in evidence.not_applicable:
            props[f"rule.{rid}"] = "n/a: " + evidence.not_applicable[rid]
        else:
            props[f"rule.{rid}"] = evidence.exercised.get(rid, 0)
    return props


def _junit(info: RunInfo, cases: Sequence[CaseResult], stats: Mapping[str, Any], evidence: Any = None) -> bytes:
    totals = _totals(cases)
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="vcbsim-conformance",
        tests=str(totals["total"]),
        failures=str(totals["fail"]),
        errors=str(totals["error"]),
        skipped=str(totals["skip"] + totals["na"]),
        time=f"{sum(c.duration for c in cases):.3f}",
        timestamp=info.started,
        hostname="vcbsim",
    )
    props = ET.SubElement(suite, "properties")
    for k, v in {
        "run_uuid": info.run_uuid,
        "kit_version": info.kit_version,
        "kit_profile": info.kit_profile,
        "host_profile": info.host_profile,
        "seed": info.seed,
        "hypothesis_version": info.hypothesis_version,
        "adapter": f"{info.adapter_name} {info.adapter_version}".strip(),
        **{f"stat.{k}": v for k, v in stats.items()},
        **_evidence_props(evidence),
    }.items():
        ET.SubElement(props, "property", name=str(k), value=str(v))
    warned = warning_rules(cases)
    if warned:
        ET.SubElement(props, "property", name="warnings", value=",".join(warned))
    for c in cases:
        tc = ET.SubElement(suite, "testcase", classname="vcbsim.conformance", name=c.name, time=f"{c.duration:.3f}")
        if c.warnings:
            ET.SubElement(tc, "system-out").text = "\n".join(
                f"WARN {w.get('rule')}: {w.get('explanation')}" for w in c.warnings)
        body = "\n".join([*c.steps, *(f"{v.get('rule')}: {v.get('explanation')}" for v in c.violations)])
        if c.outcome == "fail":
            el = ET.SubElement(tc, "failure", message=c.message or ", ".join(c.rules), type=",".join(c.rules) or "ConformanceViolation")
            el.text = body
        elif c.outcome == "error":
            el = ET.SubElement(tc, "error", message=c.message, type="AdapterError")
            el.text = body
        elif c.outcome == "skip":
            ET.SubElement(tc, "skipped", message=c.message)
        elif c.outcome == "na":
            ET.SubElement(tc, "skipped", message=c.message, type="not-applicable")
    ET.indent(suites)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="utf-8") + b"\n"


def _summary(info: RunInfo, cases: Sequence[CaseResult], totals: Mapping[str, int], stats: Mapping[str, Any],
             evidence: Any = None) -> str:
    lines = [
        f"vcbsim conformance kit {info.kit_version}  run {info.run_uuid}",
        f"kit profile: {info.kit_profile}   host profile: {info.host_profile}   seed: {info.seed}",
        f"hypothesis {info.hypothesis_version}   python {info.python}   adapter: {info.adapter_name} {info.adapter_version}".rstrip(),
        f"started {info.started}   finished {info.finished}",
        "",
    ]
    for c in cases:
        what = f" [{', '.join(c.rules)}]" if c.rules else ""
        lines.append(f"{c.outcome.upper():5} {c.name}{what}{': ' + c.message if c.message else ''}")
        lines += [f"      WARN {w.get('rule')}: {w.get('explanation')}" for w in c.warnings]
    lines += ["", "totals: " + ", ".join(f"{k} {v}" for k, v in totals.items())]
    warned = warning_rules(cases)
    if warned:
        lines.append(f"warnings (SHOULD rules broken; they do not fail certification): {', '.join(warned)}")
    if stats:
        lines.append("statistics: " + ", ".join(f"{k}={v}" for k, v in stats.items()))
    if evidence is not None:
        lines += ["", "declaration: " + json.dumps(dict(evidence.declaration), sort_keys=True),
                  *([f"backup content: {evidence.content}"] if getattr(evidence, "content", "") else []),
                  "rules exercised (occasions in the run; n/a: not applicable, with the reason):", *evidence.table()]
    verdict = "CONFORMANT" if totals["fail"] == totals["error"] == totals["skip"] == 0 else "NOT CONFORMANT"
    lines.append(f"verdict: {verdict}")
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}th{background:#eee}
tr.w td{background:#fdd}.host{color:#035}.guest{color:#350}.proxy{color:#530}code{font-size:12px}"""


def _timeline(info: RunInfo, case: CaseResult) -> str:
    esc = html.escape
    witness = {int(e["seq"]) for v in case.violations for e in v.get("witness", [])}
    t0 = case.trace[0].time if case.trace else 0.0
    rows = []
    for e in case.trace:
        cells = []
        for actor in ("host", "guest", "proxy"):
            if e.actor == actor:
                det = " ".join(f"{k}={v}" for k, v in e.details.items())
                cells.append(f'<td class="{actor}"><b>{esc(e.kind)}</b> {esc(e.step or "")} {esc(e.vm or "")}<br><code>{esc(det)}</code></td>')
            else:
                cells.append("<td></td>")
        cls = ' class="w"' if e.seq in witness else ""
        rows.append(f'<tr{cls} id="e{e.seq}"><td>#{e.seq}</td><td>{e.time - t0:.3f}</td>{"".join(cells)}</tr>')
    viol = "".join(
        f"<li><b>{esc(str(v.get('rule')))}</b>: {esc(str(v.get('explanation')))}</li>" for v in case.violations
    )
    steps = esc("\n".join(case.steps))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(case.name)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{esc(case.name)}: {esc(case.outcome.upper())}</h1>"
        f"<p>run {esc(info.run_uuid)}, kit {esc(info.kit_version)}, profile {esc(info.kit_profile)}, "
        f"host {esc(info.host_profile)}, seed {esc(str(info.seed))}</p><p>{esc(case.message)}</p>"
        f"<ul>{viol}</ul><h2>Steps</h2><pre>{steps}</pre><h2>Timeline</h2>"
        "<table><tr><th>seq</th><th>t (s)</th><th>host</th><th>guest</th><th>proxy</th></tr>"
        + "".join(rows)
        + "</table></body></html>\n"
    )


def verify_bundle(path: str | Path, *, certified: bool = False) -> list[str]:
    """Every problem found in the bundle at ``path`` (an empty list: the bundle is valid).

    With ``certified`` it must also be a ``certify`` run in which every case passed, with no
    skips, filters or expectation files.
    """
    import jsonschema
    from defusedxml import ElementTree as DET

    root = Path(path)
    problems: list[str] = []
    for name in ("results.json", "junit.xml", "summary.txt"):
        if not (root / name).is_file():
            problems.append(f"{name} is missing; a bundle holds results.json, junit.xml and summary.txt")
    if problems:
        return problems
    try:
        doc = json.loads((root / "results.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return [f"results.json is not JSON ({exc.msg} at line {exc.lineno})"]
    errors = sorted(jsonschema.Draft202012Validator(results_schema()).iter_errors(doc), key=str)
    for err in errors[:5]:
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        problems.append(f"results.json at {where}: {err.message}")
    if errors:
        return problems
    cases = doc["cases"]
    counted = dict.fromkeys(OUTCOMES, 0)
    for c in cases:
        counted[c["outcome"]] += 1
        for r in c["rules"]:
            if r not in RULES:
                problems.append(f"case {c['name']!r} names rule {r!r}, which is not in the catalogue")
        if c["outcome"] == "fail" and not c["rules"]:
            problems.append(f"case {c['name']!r} is a FAIL but names no rule")
        if c["outcome"] in ("fail", "error"):
            tl = c.get("timeline")
            if not tl or not (root / tl).is_file():
                problems.append(f"case {c['name']!r} failed but its timeline {tl!r} is missing")
    for k in OUTCOMES:
        if doc["totals"].get(k, 0) != counted[k]:
            problems.append(f"totals.{k} is {doc['totals'].get(k, 0)} but {counted[k]} case(s) have outcome {k!r}")
    if doc["totals"]["total"] != len(cases):
        problems.append(f"totals.total is {doc['totals']['total']} but there are {len(cases)} cases")
    try:
        tree = DET.parse(str(root / "junit.xml"))
    except Exception as exc:  # defusedxml raises several types
        problems.append(f"junit.xml does not parse: {exc}")
    else:
        suites = tree.getroot()
        suite = suites.find("testsuite") if suites.tag == "testsuites" else suites
        if suite is None:
            problems.append("junit.xml has no <testsuite>")
        else:
            want = {k: doc["totals"].get(k, 0) for k in OUTCOMES}
            want["total"] = doc["totals"]["total"]
            want["skipped"] = want["skip"] + want["na"]
            for attr, key in (("tests", "total"), ("failures", "fail"), ("errors", "error"), ("skipped", "skipped")):
                if suite.get(attr) != str(want[key]):
                    problems.append(f"junit.xml {attr}={suite.get(attr)!r} disagrees with results.json totals "
                                    f"({key}={want[key]})")
            props = {p.get("name"): p.get("value") for p in suite.iter("property")}
            if props.get("run_uuid") != doc["run_info"]["run_uuid"]:
                problems.append("junit.xml run_uuid property differs from results.json run_info.run_uuid")
            if any(tc.find("properties") is not None for tc in suite.iter("testcase")):
                problems.append("junit.xml has per-testcase <properties>, which xunit2 does not allow")
            if len(list(suite.iter("testcase"))) != len(cases):
                problems.append("junit.xml and results.json list a different number of cases")
    summary = (root / "summary.txt").read_text(encoding="utf-8")
    if doc["run_info"]["run_uuid"] not in summary:
        problems.append("summary.txt does not name the run UUID of results.json")
    if certified:
        ri = doc["run_info"]
        if ri["kit_profile"] != "certify":
            problems.append(f"run_info.kit_profile is {ri['kit_profile']!r}; certification needs a 'certify' run")
        if counted["fail"] or counted["error"] or counted["skip"]:
            problems.append(f"a certified bundle has no failures, errors or skips; this one has "
                            f"{counted['fail']} FAIL, {counted['error']} ERROR, {counted['skip']} SKIP")
        ev = doc.get("evidence")
        if ev is None:
            problems.append("results.json has no evidence (declaration and rules exercised); certify runs of kit "
                            "0.2 and later record it")
        elif ev.get("unexercised"):
            problems.append(f"rules that apply to the declaration were never exercised: {', '.join(ev['unexercised'])}")
        cfg = ri.get("config", {})
        for key in ("filters", "expectations", "skips"):
            if cfg.get(key):
                problems.append(f"run_info.config.{key} is set; certify runs refuse {key}")
    return problems
