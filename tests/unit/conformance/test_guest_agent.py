"""Guest agents certifiable as documented (issue 11 item 9): the GuestAgent protocol names what
the host passes, an agent built from public names only is certified, ``--guest-agent`` works."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from vcbsim.conformance import AgentRecorder, GuestAgent, ReferenceOrchestrator, check_trace, run
from vcbsim.conformance._cli import main_conformance
from vcbsim.simulator import Host


class Delegating:
    """A vendor's agent in front of the default Tools, written from the protocol alone: it
    counts the operations the host asks of it (no private class, no simulator internals)."""

    def __init__(self, tools: Any) -> None:
        self._tools = tools
        self.calls = 0

    @property
    def state(self) -> str:
        return str(self._tools.state)

    @property
    def frozen(self) -> bool:
        return bool(self._tools.frozen)

    @property
    def providers(self) -> Sequence[str]:
        return tuple(self._tools.providers)

    @property
    def busy_until(self) -> float | None:  # optional members the kit uses (GuestAgent docstring)
        return getattr(self._tools, "busy_until", None)

    def poll(self, now: float) -> None:
        self._tools.poll(now)

    def abort(self) -> None:
        self._tools.abort()

    def quiesced_snapshot(self, create: Callable[[], Any], rollback: Callable[[Any], Any], *, clock: Any,
                          trace: Any, faults: Any, profile: Any, vm: str, timeout: float | None = None,
                          on_step: Callable[[str], None] | None = None) -> Any:
        self.calls += 1
        return self._tools.quiesced_snapshot(create, rollback, clock=clock, trace=trace, faults=faults,
                                             profile=profile, vm=vm, timeout=timeout, on_step=on_step)


def test_the_simulators_tools_and_a_public_agent_satisfy_the_protocol() -> None:
    host = Host.demo()
    tools = host.find_vm("win2003-sql").tools
    assert isinstance(tools, GuestAgent)
    assert isinstance(Delegating(tools), GuestAgent)


def test_an_agent_written_to_the_protocol_is_certified_in_place_of_tools() -> None:
    made: list[Delegating] = []

    def factory(tools: Any) -> Delegating:
        made.append(Delegating(tools))
        return made[-1]

    result = run(ReferenceOrchestrator, profile="quick", seed=2, explore=False, guest_agent_factory=factory,
                 scenarios=["image-backup", "freeze-script-fails", "thaw-fails"], out=io.StringIO())
    assert result.ok and sum(a.calls for a in made) > 0


def test_agent_recorder_events_are_what_the_checker_consumes() -> None:
    """An agent that records with AgentRecorder (no VMwareTools) around a real snapshot."""
    host = Host.demo()
    vm = host.find_vm("rhel5-web")
    rec = AgentRecorder(host.trace, host.clock, vm.moref)
    rec.start("sync", "legacy", timeout=900)
    rec.script("/usr/sbin/pre-freeze-script", "freeze", 0, legacy=True)
    rec.engage("sync")
    rec.disengage("sync")
    rec.script("/usr/sbin/post-thaw-script", "thaw", 0, legacy=True, index=1)
    rec.end("done")
    kinds = [e.kind for e in host.trace.events[-6:]]
    assert kinds == ["quiesce.start", "script.run", "quiesce.engage", "quiesce.disengage", "script.run", "quiesce.end"]
    assert [e.step for e in host.trace.events[-6:]] == ["WF-1a", "WF-1a", "WF-1b", "WF-1d", "WF-1e", "WF-1e"]
    report = check_trace(host.trace.events)
    assert report.consumed == report.events, report.format()


def test_conform_takes_a_guest_agent(capsys: pytest.CaptureFixture[str]) -> None:
    ref = "tests.unit.conformance.test_guest_agent:Delegating"
    assert main_conformance(["--kit-profile", "quick", "--seed", "2", "--guest-agent", ref]) == 0
    assert "CONFORMANT" in capsys.readouterr().out
    assert main_conformance(["--guest-agent", "nosuch.module:Agent"]) == 2
    assert "--guest-agent" in capsys.readouterr().err
