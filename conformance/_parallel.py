"""Conformance runs spread over processes that still produce one results bundle.

The unit of parallel work is a *case* (``KitCase``):

- ``scenario/NAME``: one built-in scenario from ``SCENARIOS``;
- ``explore/K``: one exploration shard, a Hypothesis run of the state machine with the seed
  ``derive_seed(seed, K)`` and a share of the profile's examples (the shares add up to the
  profile's ``max_examples``);
- ``replay/STEM``: one saved failing step list from the replay directory.

``plan_cases`` lists the cases of a run. The list depends only on the profile, the seed, the
scenario filter and the replay directory, never on the number of workers, so a run with
``--workers 2`` judges exactly the cases a 1-worker run judges, each exactly once.

``run_case`` runs one case through ``vcbsim.conformance.run`` itself (restricted to that one
scenario, shard or saved case), so the suite's logic (replay, shrinking, the flakiness check,
expectations, the printed reproduction) is not duplicated here. ``run_parallel`` runs every
case on ``workers`` processes and merges the results into one bundle with ``write_bundle``:
one run UUID, one ``run_info`` (seed, worker count and shard count in ``config``), totals over
all cases, one ``junit.xml``, one ``summary.txt``, a timeline for every failing case.

Why ``concurrent.futures.ProcessPoolExecutor`` and not pytest-xdist: a case is a plain
function call whose result (``CaseResult`` objects with their traces, the statistics, the
printed output) comes back as a picklable value, so the controller merges real objects
rather than reparsing per-worker files or JUnit properties; ``vcbsim conform`` does not need
a pytest session, a generated test module or an importable adapter path; and a worker that
dies is reported as an ERROR case of the same bundle instead of a lost file. On POSIX the
workers are forked, so the adapter factory (for instance a class made at run time) need not be
importable; elsewhere they are spawned and it must be picklable. The parallel path never
filters or skips anything: in ``certify`` every case of the plan runs, whatever the worker
count, and a filter is refused as ``run`` refuses it. A ``fail_fast`` profile (``quick``,
``teach``) stops, as ``run`` does, after the first failing case in plan order, with any
number of workers.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TextIO

from . import _suite
from ._errors import InvalidDefinition, KitError
from ._report import CaseResult, RunInfo, new_run_info, write_bundle
from ._rules import KIT_VERSION

__all__ = [
    "EXPLORE_SHARDS",
    "KitCase",
    "CaseRun",
    "derive_seed",
    "plan_cases",
    "run_case",
    "run_cases",
    "run_parallel",
    "resolve_workers",
]

#: How many exploration shards a run has (fewer when the profile has fewer examples). Fixed,
#: so that the case list does not depend on the worker count.
EXPLORE_SHARDS = 4

CaseKind = Literal["scenario", "explore", "replay"]


@dataclass(frozen=True, slots=True)
class KitCase:
    """One unit of parallel work: a scenario, an exploration shard or a saved failure."""

    name: str
    kind: CaseKind
    seed: int
    scenario: str = ""
    shard: int = 0
    examples: int = 0
    replay_file: str = ""


@dataclass(frozen=True, slots=True)
class CaseRun:
    """What running one ``KitCase`` gave: its results, statistics and printed output."""

    case: KitCase
    results: tuple[CaseResult, ...]
    statistics: Mapping[str, int] = field(default_factory=dict)
    output: str = ""
    adapter_name: str = ""
    adapter_version: str = ""


def derive_seed(seed: int, shard: int) -> int:
    """The Hypothesis seed of exploration shard ``shard`` of a run seeded ``seed``."""
    digest = hashlib.sha256(f"vcbsim-kit:{seed}:explore:{shard}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _profile(profile: str) -> _suite.KitProfile:
    if profile not in _suite.KIT_PROFILES:
        msg = "kit profile"
        raise InvalidDefinition(msg, expected="one of " + ", ".join(_suite.KIT_PROFILES), got=profile)
    return _suite.KIT_PROFILES[profile]


def plan_cases(
    *,
    profile: str,
    seed: int,
    scenarios: Sequence[str] | None = None,
    replay_dir: str | Path | None = None,
    explore: bool = True,
) -> tuple[KitCase, ...]:
    """Every case of a run, in report order: saved failures, scenarios, exploration shards.

    ``scenarios`` / ``explore=False`` are filters and are refused by profiles that refuse
    skips (``certify``), as ``run`` refuses them.
    """
    kp = _profile(profile)
    if (scenarios is not None or not explore) and not kp.allow_skips:
        msg = f"filters with profile {profile!r}"
        raise InvalidDefinition(msg, expected="every scenario and the exploration", got=list(scenarios or []),
                                hint="certify refuses skips and filters")
    names = list(_suite.SCENARIOS) if scenarios is None else list(scenarios)
    unknown = [n for n in names if n not in _suite.SCENARIOS]
    if unknown:
        msg = "scenarios"
        raise InvalidDefinition(msg, expected="names from SCENARIOS: " + ", ".join(_suite.SCENARIOS), got=unknown)
    cases: list[KitCase] = []
    if replay_dir is not None and Path(replay_dir).is_dir():
        cases += [KitCase(f"replay/{f.stem}", "replay", seed, replay_file=str(f))
                  for f in sorted(Path(replay_dir).glob("*.json"))]
    cases += [KitCase(f"scenario/{n}", "scenario", seed, scenario=n) for n in names]
    if explore:
        shards = max(1, min(EXPLORE_SHARDS, kp.max_examples))
        base, extra = divmod(kp.max_examples, shards)
        cases += [KitCase(f"explore/{k}", "explore", derive_seed(seed, k), shard=k,
                          examples=base + (1 if k < extra else 0)) for k in range(shards)]
    return tuple(cases)


_HEADER = re.compile(r"^vcbsim conformance kit .*\n", re.MULTILINE)


def run_case(
    adapter_factory: Callable[[], Any],
    case: KitCase,
    *,
    profile: str,
    host_profile: str = "esx-3.5u2",
    replay_dir: str | Path | None = None,
    guest_agent_factory: Callable[[Any], Any] | None = None,
    expectations: Mapping[str, str] | None = None,
    shrink: bool = True,
) -> CaseRun:
    """Judge one case (the suite's ``judge``, as ``run`` does) and return its ``CaseResult`` (named
    ``case.name``), statistics and output. Never raises for a FAIL or an ERROR of the case:
    they are in the result. A new failure is saved to ``replay_dir`` as ``run`` saves it."""
    kp = _profile(profile)
    shard_kp = replace(kp, allow_skips=True, fail_fast=False,
                       max_examples=case.examples if case.kind == "explore" else kp.max_examples)
    sink: list[Any] = []
    out = io.StringIO()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vcbsim-kit-case-") as tmp:
        private = Path(tmp) / "replay"
        private.mkdir()
        if case.kind == "replay":
            shutil.copy2(case.replay_file, private / Path(case.replay_file).name)
        before = {p.name for p in private.glob("*.json")}
        problem: BaseException | None = None
        # the plan already checked the profile's filters: judge this one case directly
        try:
            sink.append(_suite.judge(
                adapter_factory, shard_kp, profile=profile, seed=case.seed,
                names=[case.scenario] if case.kind == "scenario" and case.scenario else [], filtered=True,
                host_profile=host_profile, replay_dir=private, guest_agent_factory=guest_agent_factory,
                expectations=expectations, explore=case.kind == "explore", out=out, shrink=shrink,
            ))
        except Exception as exc:  # noqa: BLE001 - e.g. the adapter factory raised while probed
            problem = exc
        if replay_dir is not None:
            saved = [p for p in sorted(private.glob("*.json")) if p.name not in before]
            if saved:
                Path(replay_dir).mkdir(parents=True, exist_ok=True)
                for p in saved:
                    shutil.copy2(p, Path(replay_dir) / p.name)
    text = _HEADER.sub("", out.getvalue(), count=1)
    if not sink:
        why = f"{type(problem).__name__}: {problem}" if problem is not None else "the case produced no result"
        err = CaseResult(case.name, "error", message=why, duration=time.perf_counter() - started)
        return CaseRun(case, (err,), {}, text + f"\nERROR {case.name}: {why}\n")
    info, results, stats = sink[-1]
    renamed = tuple(replace(r, name=case.name) for r in results)
    if len(renamed) != 1:
        msg = f"case {case.name!r}: expected one result from run(), got {len(renamed)}"
        raise KitError(msg)
    return CaseRun(case, renamed, stats, text, info.adapter_name, info.adapter_version)


def _failed(r: CaseRun) -> bool:
    return any(c.outcome in ("fail", "error") for c in r.results)


def run_cases(adapter_factory: Callable[[], Any], cases: Sequence[KitCase], *, fail_fast: bool = False,
              **options: Any) -> list[CaseRun]:
    """Run a subset of a run's cases in this process, in order (``options``: as ``run_case``);
    with ``fail_fast``, stop after the first failing case. Once an exploration shard failed
    (with a shrunk witness), later shards still run every example but do not shrink again: a
    failing certify costs about what a passing one does, and the CLI prints each distinct
    failure once."""
    runs: list[CaseRun] = []
    shrunk = False  # an exploration shard already failed with a shrunk witness
    for c in cases:
        runs.append(run_case(adapter_factory, c, shrink=not shrunk, **options))
        if fail_fast and _failed(runs[-1]):
            break
        shrunk = shrunk or (c.kind == "explore" and _failed(runs[-1]))
    return runs


# ----------------------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _init_worker(adapter_factory: Callable[[], Any], options: Mapping[str, Any]) -> None:
    _WORKER["factory"] = adapter_factory
    _WORKER["options"] = dict(options)


def _worker_case(case: KitCase) -> CaseRun:
    return run_case(_WORKER["factory"], case, **_WORKER["options"])


def resolve_workers(value: int | str | None) -> int:
    """``--workers``: a positive count, or ``auto`` (the CPUs this process may use)."""
    if value is None:
        return 1
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            try:
                return max(1, len(os.sched_getaffinity(0)))
            except AttributeError:  # not on Linux
                return max(1, os.cpu_count() or 1)
        if not value.strip().isdigit():
            msg = "workers"
            raise InvalidDefinition(msg, expected="a positive count or 'auto'", got=value)
        value = int(value)
    if value < 1:
        msg = "workers"
        raise InvalidDefinition(msg, expected="a positive count or 'auto'", got=value)
    return value


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _run_pool(adapter_factory: Callable[[], Any], cases: Sequence[KitCase], workers: int,
              options: Mapping[str, Any], *, fail_fast: bool = False) -> list[CaseRun]:
    """Results merge in plan order. Without ``fail_fast`` the longest cases (exploration
    shards) start first; with it, cases start in plan order and the first failing case (in
    plan order) cancels the cases after it, so the bundle holds what a 1-worker run holds."""
    order = (range(len(cases)) if fail_fast
             else sorted(range(len(cases)), key=lambda i: (cases[i].kind != "explore", i)))
    futures: dict[int, Future[CaseRun]] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_init_worker,
                             initargs=(adapter_factory, options)) as pool:
        for i in order:
            futures[i] = pool.submit(_worker_case, cases[i])
        runs: list[CaseRun] = []
        for i, case in enumerate(cases):
            try:
                runs.append(futures[i].result())
            except Exception as exc:  # noqa: BLE001 - a worker died or a result did not pickle
                why = f"the worker running this case failed: {type(exc).__name__}: {exc}"
                runs.append(CaseRun(case, (CaseResult(case.name, "error", message=why),), {},
                                    f"\nERROR {case.name}: {why}\n"))
            if fail_fast and _failed(runs[-1]):
                for f in futures.values():
                    f.cancel()
                break
    return runs


def run_parallel(
    adapter_factory: Callable[[], Any],
    *,
    profile: str = "quick",
    seed: int | None = None,
    report: str | Path | None = None,
    host_profile: str = "esx-3.5u2",
    replay_dir: str | Path | None = None,
    guest_agent_factory: Callable[[Any], Any] | None = None,
    scenarios: Sequence[str] | None = None,
    expectations: Mapping[str, str] | None = None,
    explore: bool = True,
    workers: int | str = 1,
    out: TextIO | None = None,
) -> _suite.RunResult:
    """Run every case of the plan on ``workers`` processes (1: in this process) and merge the
    results into one ``RunResult`` and, with ``report``, one bundle. Unlike ``run`` it does not
    raise for FAIL / ERROR cases: look at ``result.ok`` and ``result.cases``. Bad arguments
    raise ``InvalidDefinition``."""
    kp = _suite.check_options(profile, host_profile, expectations)
    n = resolve_workers(workers)
    out = out if out is not None else sys.stdout
    if seed is None:
        import random

        seed = random.SystemRandom().randrange(2**32)
    cases = plan_cases(profile=profile, seed=seed, scenarios=scenarios, replay_dir=replay_dir, explore=explore)
    n = min(n, len(cases)) or 1
    started = new_run_info(kit_profile=profile, host_profile=host_profile, seed=seed, adapter_name="?")
    import hypothesis

    adapter_ref = getattr(adapter_factory, "__qualname__", type(adapter_factory).__name__)
    out.write(f"vcbsim conformance kit {KIT_VERSION}, hypothesis {hypothesis.__version__}, profile {profile}, "
              f"host {host_profile}, adapter {adapter_ref}, seed {seed}, {len(cases)} cases on {n} worker(s)\n")
    options = {"profile": profile, "host_profile": host_profile, "replay_dir": replay_dir,
               "guest_agent_factory": guest_agent_factory, "expectations": dict(expectations or {}) or None}
    if n == 1:
        runs = run_cases(adapter_factory, cases, fail_fast=kp.fail_fast, **options)
    else:
        runs = _run_pool(adapter_factory, cases, n, options, fail_fast=kp.fail_fast)
    results: list[CaseResult] = []
    stats: dict[str, int] = {}
    for r in runs:
        results += r.results
        for k, v in r.statistics.items():
            stats[k] = stats.get(k, 0) + int(v)
        out.write(r.output)
    named = next((r for r in runs if r.adapter_name), None)
    names = [c.scenario for c in cases if c.kind == "scenario"]
    declaration = _declaration(adapter_factory)
    info = RunInfo(**{
        **started.to_dict(),
        "adapter_name": named.adapter_name if named else adapter_ref,
        "adapter_version": named.adapter_version if named else "",
        "finished": _suite._now(),
        "config": {"max_examples": kp.max_examples, "step_count": kp.step_count, "scenarios": names,
                   "explore": explore, "filters": None if scenarios is None else names,
                   "expectations": dict(expectations or {}), "replay_dir": str(replay_dir or ""),
                   "workers": n, "explore_shards": sum(1 for c in cases if c.kind == "explore"),
                   "cases": [c.name for c in cases], "declaration": declaration},
    })
    ran_all = scenarios is None and explore and len(runs) == len(cases)
    evidence, extra = _suite.conclude(info, results, stats, kp, complete=ran_all)
    results += extra
    for c in extra:
        out.write(f"\n{c.outcome.upper()} {c.name}: {c.message}\n")
    bundle = (write_bundle(report, info, results, statistics=stats, evidence=evidence)
              if report is not None else None)
    totals = {o: sum(1 for c in results if c.outcome == o) for o in ("pass", "fail", "error", "skip", "na")}
    out.write(f"{len(results)} cases: " + ", ".join(f"{v} {k}" for k, v in totals.items())
              + f" (seed {seed}, {n} worker(s))\n")
    return _suite.RunResult(info, tuple(results), bundle, stats, evidence)


def _declaration(adapter_factory: Callable[[], Any]) -> dict[str, Any]:
    """The adapter's declaration (``Capabilities``), read from one instance."""
    from ._capabilities import capabilities_of

    probe = adapter_factory()
    try:
        return capabilities_of(probe).to_dict()
    finally:
        closer = getattr(probe, "close", None)
        if callable(closer):
            closer()
