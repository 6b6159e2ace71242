"""Conformance over the wire: the kit resets and configures ``vcbsim serve`` through its control
API, runs a product's *command* per job, and checks the host's trace merged with the events the
product recorded. The reference proxy's CLI (``vcbsim backup --server``) is certified this way;
deliberately broken products get the violated rule named."""

from __future__ import annotations

import io
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from vcbsim.conformance import SCENARIOS, CommandAdapter, verify_bundle
from vcbsim.conformance._wire import (
    WireEndpoint,
    WireScenario,
    certify_command,
    main_conform_command,
    merge_traces,
    wire_skip_reason,
)
from vcbsim.simulator import Event

HERE = Path(__file__).parent
REFERENCE = [sys.executable, "-m", "vcbsim", "backup", "--server", "{url}", "--user", "{user}",
             "--password", "{password}", "-a", "name:{vm}", "-t", "{mode}", "--kind", "{level}",
             "--state", "{workdir}", "--trace", "{trace}", "--no-progress"]
#: the plain reference CLI printing one JSON document: it reports what its backups hold
REFERENCE_JSON = [*REFERENCE, "--json"]
WIRE_SCENARIOS = [n for n, steps in SCENARIOS.items() if wire_skip_reason(steps) is None]
#: the scenarios of backups (the restore scenario, with restore commands: tests/mutants/test_wire_restore_mutants.py)
BACKUP_SCENARIOS = [n for n in WIRE_SCENARIOS if n != "wire-restore"]


def _product(behaviour: str) -> CommandAdapter:
    return CommandAdapter([sys.executable, str(HERE / "pyvmomi_proxy.py"), behaviour], name=f"pyvmomi-{behaviour}",
                          timeout=60)


def _between(events: list[Event], ev: Event, steps: frozenset[str]) -> bool:
    """``ev`` lies inside a proxy operation of one of ``steps`` (after its invoke, before its end)."""
    i = events.index(ev)
    open_ops = {}
    for e in events[:i]:
        if e.actor == "proxy" and e.kind == "op.invoke" and e.step in steps:
            open_ops[e.details["op_id"]] = e
        elif e.actor == "proxy" and e.kind in ("op.ok", "op.fail", "op.info"):
            open_ops.pop(e.details.get("op_id"), None)
    return bool(open_ops)


# -- the reference proxy ----------------------------------------------------------------------


def test_the_scenarios_the_wire_cannot_drive_are_the_product_side_faults() -> None:
    skipped = {n for n in SCENARIOS if n not in WIRE_SCENARIOS}
    # and the backup of the in-process kit's VM with disks no snapshot covers (_check_disks); the
    # restore scenario runs over the wire for a command that declares it (its restore commands);
    # and the in-process kit's discriminating cases: a VM whose disk ends inside a grain, legacy
    # scripts beside the directory, jobs failed in the product's own steps between incrementals
    assert skipped == {"expose-fails", "copy-fails", "proxy-crash-then-next-run-cleans", "image-unsnapshotted-disks",
                       "image-partial-grain", "legacy-pair-failure-paths", "failed-jobs-between-incrementals"}
    assert "image-backup" in WIRE_SCENARIOS and "commit-fails-then-next-run-cleans" in WIRE_SCENARIOS


@pytest.mark.parametrize("scenario", BACKUP_SCENARIOS)
def test_the_reference_cli_passes_every_scenario_over_the_wire(scenario: str, tmp_path: Path) -> None:
    with WireEndpoint() as ep:
        scen = WireScenario(CommandAdapter(REFERENCE, name="reference", timeout=120), ep, workdir=tmp_path)
        for step in SCENARIOS[scenario]:
            scen.apply(step)
        report = scen.finish()  # raises ConformanceViolation / AdapterError on any problem
        assert report.ok and report.consumed == report.events == len(scen.events)
        assert ep.control.state()["trace"]["next_seq"] == sum(1 for e in scen.events if e.actor != "proxy")
        # writes "during" a job were made while the VM ran in snapshot mode, and survived the commit
        for step in SCENARIOS[scenario]:
            args = dict(step.args)
            for path, text in args.get("during", ()):
                write = next(e for e in scen.events if e.kind == "guest.write" and e.details["path"] == path)
                snap = max(e.seq for e in scen.events[: write.seq] if e.kind == "snapshot.create")
                assert not any(e.kind == "snapshot.remove" for e in scen.events[snap : write.seq])
                assert scen.ctl.read_guest_file(args["vm"], path) == text.encode()
    # the product's own events were merged in, each host call inside the operation that made it
    proxy = [e for e in scen.events if e.actor == "proxy"]
    assert proxy and {e.kind for e in proxy} >= {"op.invoke", "op.ok"}
    assert [e.seq for e in scen.events] == list(range(len(scen.events)))
    assert all(a.time <= b.time + 1e-6 for a, b in zip(scen.events, scen.events[1:], strict=False))
    # a 3.5-era guest ends, on its own time, an operation the host had stopped waiting for
    gave_up = {e.vm for e in scen.events if e.kind == "quiesce.engage" and "stopped waiting" in str(e.details.get("error"))}
    for ev in scen.events:
        backup = ev.details.get("name") == "_VCB-BACKUP_"  # not the user's own snapshot
        late = ev.kind == "quiesce.end" and ev.vm in gave_up and ev.details.get("code") == 3
        if ev.kind in ("snapshot.create", "snapshot.create.fail") and backup or ev.kind == "quiesce.end" and not late:
            assert _between(scen.events, ev, frozenset({"WF-1"})), ev.line()
        if ev.kind == "snapshot.remove" and backup:
            assert _between(scen.events, ev, frozenset({"WF-3b"})), ev.line()
    assert len(scen.jobs) >= 2 and all(j.exit_code in (0, 1, 5) for j in scen.jobs)


def test_certify_command_writes_a_valid_bundle_and_skips_with_reasons(tmp_path: Path) -> None:
    out = io.StringIO()
    result = certify_command(CommandAdapter(REFERENCE, name="reference", version="0.1.0"),
                             scenarios=["file-level-linux-refused", "copy-fails"], report=tmp_path / "bundle",
                             out=out)
    assert result.ok, out.getvalue()
    assert [(c.name, c.outcome) for c in result.cases] == [("wire/file-level-linux-refused", "pass"),
                                                           ("wire/copy-fails", "na")]
    assert "the product's own 'copy' step" in result.cases[1].message
    assert "declared no proxy_faults" in result.cases[1].message
    assert result.statistics["jobs"] == 2 and result.statistics["jobs_ok"] == 1  # the refused job, the clean one
    assert verify_bundle(tmp_path / "bundle") == []
    doc = json.loads((tmp_path / "bundle" / "results.json").read_text())
    assert doc["run_info"]["config"]["transport"] == "wire"


# -- broken products -------------------------------------------------------------------------


def test_a_pyvmomi_product_that_follows_the_workflow_passes() -> None:
    result = certify_command(_product("correct"), scenarios=["image-backup"], out=io.StringIO())
    assert [c.outcome for c in result.cases] == ["pass"], [c.message for c in result.cases]
    assert result.statistics["jobs"] == result.statistics["jobs_ok"] == 4


def test_events_posted_live_are_judged_in_the_hosts_own_order(tmp_path: Path) -> None:
    with WireEndpoint() as ep:
        scen = WireScenario(_product("live"), ep, workdir=tmp_path)
        scen.backup("rhel5-web")
        scen.finish()
        host_trace = ep.control.trace()
    assert all(job.proxy_events == () for job in scen.jobs)  # nothing in the trace file
    posted = [e for e in host_trace if e.actor == "proxy"]
    assert len(posted) >= 2 * 12  # two jobs of six operations each, all stamped by the host
    # the host's sequence is the kit's: no merge was needed
    assert [(e.actor, e.kind) for e in scen.events] == [(e.actor, e.kind) for e in host_trace]
    create = next(e for e in host_trace if e.kind == "snapshot.create")
    assert _between(list(host_trace), create, frozenset({"WF-1"}))


@pytest.mark.parametrize(
    ("behaviour", "rule", "words"),
    [
        ("leak", "CLN-NO-SNAPSHOT-LEFT", "was never removed"),
        ("silent-leak", "CLN-NO-SNAPSHOT-LEFT", "was never removed"),
        ("early-remove", "WF-ORDER", "3b"),
    ],
)
def test_a_broken_product_gets_the_violated_rule_named(behaviour: str, rule: str, words: str) -> None:
    out = io.StringIO()
    result = certify_command(_product(behaviour), scenarios=["image-backup"], out=out)
    (case,) = result.cases
    assert case.outcome == "fail" and rule in case.rules, (case.rules, case.message)
    assert words in case.message or any(words in str(v.get("explanation")) for v in case.violations)
    assert f"FAIL wire/image-backup: {', '.join(case.rules)}" in out.getvalue()
    assert case.trace and case.trace[-1].seq == len(case.trace) - 1  # the merged trace, for the timeline


def test_the_plain_reference_cli_reports_backup_content_the_kit_judges() -> None:
    """``vcbsim backup --json`` prints ``ok``, ``usable``, ``files`` and ``copied`` itself (no
    wrapper): the content rules and the seed's bases get their occasions over the wire."""
    out = io.StringIO()
    result = certify_command(CommandAdapter(REFERENCE_JSON, name="reference"), scenarios=["file-backup-series"],
                             out=out)
    assert result.ok, out.getvalue()
    assert result.evidence is not None
    for rule in ("CMT-BACKUP-CONTENT", "BK-INCR-SINCE-LAST", "BK-DIFF-SINCE-FULL"):
        assert result.evidence.exercised.get(rule, 0) > 0, (rule, result.evidence.exercised)


def test_files_a_product_reports_are_checked_against_the_guest_at_the_snapshot(tmp_path: Path) -> None:
    honest = CommandAdapter(REFERENCE_JSON, name="ref-files")
    with WireEndpoint() as ep:
        scen = WireScenario(honest, ep, workdir=tmp_path)
        scen.write("win2003-sql", "D:\\Data\\new.txt", "before the backup")
        result = scen.backup("win2003-sql", "file", "full")
        scen.finish()
    assert result.ok and result.files is not None
    assert "D:\\Data\\new.txt" in result.files and len(result.files) >= 6
    tampered = CommandAdapter([sys.executable, str(HERE / "reference_with_files.py"), "tamper"])
    (case,) = certify_command(tampered, scenarios=["file-backup-series"], out=io.StringIO()).cases
    assert case.outcome == "fail" and case.rules == ("CMT-BACKUP-CONTENT",), case.message
    assert "holds other content than the guest had at the snapshot" in case.message


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("import sys; sys.exit(130)", "exited with 130"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "killed by signal 9"),
        ("import json; print(json.dumps({{'ok': True}})); raise SystemExit(1)", "printed ok=True but exited with 1"),
        ("open(__import__('os').environ['VCBSIM_TRACE'], 'w').write('not json')", "not a vcbsim trace"),
        ("import time; time.sleep(30)", "did not finish within 1 s"),
    ],
    ids=["exit-130", "sigkill", "contradiction", "bad-trace", "timeout"],
)
def test_a_misbehaving_command_is_an_error_not_a_verdict(code: str, words: str) -> None:
    # a loaded machine may take a while to start Python: only the sleeping command gets 1 s
    adapter = CommandAdapter([sys.executable, "-c", code], name="odd", timeout=1.0 if "sleep" in code else 60.0)
    result = certify_command(adapter, scenarios=["file-level-linux-refused"], out=io.StringIO())
    (case,) = result.cases
    assert case.outcome == "error" and words in case.message, case.message
    assert not result.ok


def test_an_unknown_placeholder_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from vcbsim.conformance import InvalidDefinition

    with WireEndpoint() as ep, pytest.raises(InvalidDefinition) as err:
        scen = WireScenario(CommandAdapter(["echo", "{server}"]), ep, workdir=tmp_path)
        scen.backup("rhel5-web")
    assert "{url}" in str(err.value) and "{server}" in str(err.value)


# -- the command line ------------------------------------------------------------------------


def test_vcbsim_conform_command_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    from vcbsim._cli import main as vcbsim

    ref = " ".join(REFERENCE)
    assert vcbsim(["conform", "--command", ref, "--scenario", "file-level-linux-refused"]) == 0
    assert "PASS wire/file-level-linux-refused" in capsys.readouterr().out
    odd = f"{sys.executable} -c 'raise SystemExit(200)'"
    assert main_conform_command(["--command", odd, "--scenario", "file-level-linux-refused"]) == 3
    assert "ERROR wire/file-level-linux-refused" in capsys.readouterr().out
    broken = f"{sys.executable} {HERE / 'pyvmomi_proxy.py'} silent-leak"
    assert main_conform_command(["--command", broken, "--scenario", "image-backup", "--json"]) == 1
    cases = json.loads(capsys.readouterr().out)
    assert cases[0]["outcome"] == "fail" and "CLN-NO-SNAPSHOT-LEFT" in cases[0]["rules"]
    assert main_conform_command(["--command", ref, "--scenario", "nope"]) == 2
    assert "names from SCENARIOS" in capsys.readouterr().err
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    url = f"http://127.0.0.1:{closed}/sdk"
    assert main_conform_command(["--command", ref, "--url", url, "--scenario", "thaw-fails"]) == 2
    assert f"cannot drive {url} through its control API" in capsys.readouterr().err


def test_a_running_server_is_used_when_given_its_url() -> None:
    from vcbsim.simulator import Host
    from vcbsim.simulator.soap import serve

    with serve(Host(), http=True, user="backup", password="s3cret") as running:
        adapter = CommandAdapter(REFERENCE, user="backup", password="s3cret")
        result = certify_command(adapter, url=running.url, scenarios=["file-level-linux-refused"],
                                 out=io.StringIO())
        assert result.ok
        assert sorted(vm.name for vm in running.endpoint.host.vms.values()) == ["rhel5-web", "win2003-sql"]


# -- merging a product's trace file with the host's ------------------------------------------


def _ev(seq: int, t: float, actor: str, kind: str, step: str | None = None, **details: Any) -> Event:
    return Event(seq, t, actor, kind, "vm-1", step, details)


def test_merge_puts_each_host_call_inside_the_operation_that_made_it() -> None:
    host = [
        _ev(0, 10, "host", "snapshot.create.start", name="s"),
        _ev(1, 12, "host", "snapshot.create", "WF-1c", snapshot="snapshot-1"),
        _ev(2, 12, "guest", "quiesce.end", "WF-1e"),
        _ev(3, 12, "host", "fault.injected", operation="snapshot.remove", fault="TaskInProgress"),
        _ev(4, 12, "host", "snapshot.remove", "WF-3b", snapshot="snapshot-1"),
        _ev(5, 12, "host", "disk.consolidate", disk=2000),
    ]
    proxy = [  # everything after the snapshot happens at the same virtual time, 12
        _ev(0, 10, "proxy", "op.invoke", "WF-1", op="snap", op_id="a"),
        _ev(1, 12, "proxy", "op.ok", "WF-1", op="snap", op_id="a"),
        _ev(2, 12, "proxy", "op.invoke", "WF-2", op="copy", op_id="b"),
        _ev(3, 12, "proxy", "op.ok", "WF-2", op="copy", op_id="b"),
        _ev(4, 12, "proxy", "op.invoke", "WF-3b", op="commit", op_id="c"),
        _ev(5, 12, "proxy", "op.fail", "WF-3b", op="commit", op_id="c"),
        _ev(6, 12, "proxy", "op.invoke", "WF-3b", op="commit", op_id="d"),
        _ev(7, 12, "proxy", "op.ok", "WF-3b", op="commit", op_id="d"),
    ]
    merged = merge_traces(host, proxy, first_seq=100)
    order = [(e.actor[0], e.kind, e.details.get("op_id", "")) for e in merged]
    assert order == [
        ("p", "op.invoke", "a"), ("h", "snapshot.create.start", ""), ("h", "snapshot.create", ""),
        ("g", "quiesce.end", ""), ("p", "op.ok", "a"),
        ("p", "op.invoke", "b"), ("p", "op.ok", "b"),
        ("p", "op.invoke", "c"), ("h", "fault.injected", ""), ("p", "op.fail", "c"),
        ("p", "op.invoke", "d"), ("h", "snapshot.remove", ""), ("h", "disk.consolidate", ""), ("p", "op.ok", "d"),
    ]
    assert [e.seq for e in merged] == list(range(100, 114))


def test_merge_keeps_time_order_over_the_heuristic() -> None:
    """A host event later than a proxy event never goes before it, whatever the ops say."""
    host = [_ev(0, 20, "host", "snapshot.remove", "WF-3b", snapshot="s")]
    proxy = [_ev(0, 10, "proxy", "op.invoke", "WF-3b", op="commit", op_id="a"),
             _ev(1, 15, "proxy", "op.ok", "WF-3b", op="commit", op_id="a"),
             _ev(2, 30, "proxy", "note", text="later")]
    merged = merge_traces(host, proxy)
    assert [e.kind for e in merged] == ["op.invoke", "op.ok", "snapshot.remove", "note"]
    assert merge_traces(host, []) == [host[0]] and [e.kind for e in merge_traces([], proxy)] == [
        "op.invoke", "op.ok", "note"]


@pytest.mark.slow
def test_route_2_certify_gives_a_bundle_verify_bundle_certifies(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The plain reference CLI over --server (``--json``: it reports what its backups hold),
    certified over the wire: the product-side fault scenarios are 'na' by its declaration (no
    proxy_faults), not skips."""
    from vcbsim.conformance._cli import main_verify_bundle

    command = shlex.join(REFERENCE_JSON)
    code = main_conform_command(["--command", command, "--kit-profile", "certify", "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "CONFORMANT" in out and "N/A  wire/copy-fails" in out and "BK-INCR-SINCE-LAST" in out
    assert main_verify_bundle(["--certified", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["run_info"]["kit_profile"] == "certify" and doc["evidence"]["unexercised"] == []
    na = sorted(c["name"] for c in doc["cases"] if c["outcome"] == "na")
    # not applicable, each for its reason: the product-side fault scenarios (the reference
    # declares no proxy_faults), the kit VM whose disks no snapshot covers (not in the wire
    # inventory), the in-process kit's discriminating cases (a disk ending inside a grain, legacy
    # scripts beside the directory, failures of the product's own steps between incrementals), and
    # the restore scenario (this command declares no restore over the wire)
    assert doc["totals"]["skip"] == 0 and na == [
        "wire/copy-fails", "wire/expose-fails", "wire/failed-jobs-between-incrementals",
        "wire/image-partial-grain", "wire/image-unsnapshotted-disks", "wire/legacy-pair-failure-paths",
        "wire/proxy-crash-then-next-run-cleans", "wire/wire-restore",
    ], na


def test_route_2_certify_refuses_filters_and_a_silent_product_is_no_certification(
        capsys: pytest.CaptureFixture[str]) -> None:
    ref = shlex.join(REFERENCE)
    assert main_conform_command(["--command", ref, "--kit-profile", "certify", "--scenario", "image-backup"]) == 2
    assert "certify refuses" in capsys.readouterr().err
    # the reference CLI alone reports no backup content: the content rule gets no occasion; its
    # trace lists the files each job copied, so BK-* are judged and counted from it all the same
    result = certify_command(CommandAdapter(REFERENCE, name="reference"), scenarios=["file-backup-series"],
                             out=io.StringIO())
    assert result.evidence is not None and "CMT-BACKUP-CONTENT" in result.evidence.unexercised
    assert result.evidence.exercised["BK-INCR-SINCE-LAST"] == 2 and result.evidence.exercised["BK-DIFF-SINCE-FULL"] == 1


def test_a_product_declaring_proxy_faults_gets_them_and_is_judged_on_them() -> None:
    from vcbsim.conformance import Capabilities

    caps = Capabilities(image_levels=("full",), file_levels=(), proxy_faults=True)
    adapter = CommandAdapter([sys.executable, str(HERE / "pyvmomi_proxy.py"), "correct"], name="pyvmomi-faults",
                             timeout=60, capabilities=caps)
    out = io.StringIO()
    result = certify_command(adapter, scenarios=["expose-fails"], out=out)
    (case,) = result.cases
    assert case.outcome == "pass", out.getvalue()
    assert any("file-level" in r for r in case.not_asked)  # its file-level job was not asked
    assert result.statistics["jobs"] > result.statistics["jobs_ok"]  # the export fault failed a job
