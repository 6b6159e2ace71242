"""The kit's random exploration: Hypothesis strategies and the rule-based state machine
that drives an orchestrator through guest writes, quiescing scripts, faults and jobs.

Split from ``_suite`` (which keeps the scenarios, the data checks and the run) so the search
can grow on its own. ``_suite`` is imported lazily here: it imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._adapters import Orchestrator, image_levels
from ._errors import ConformanceViolation

if TYPE_CHECKING:
    from ._suite import Scenario

__all__ = ["explored_image_levels"]



_FAULTS: tuple[dict[str, Any], ...] = (
    {"operation": "snapshot.create", "fault": "NoDiskSpace"},
    {"operation": "quiesce.engage", "fault": "SystemError"},
    {"operation": "quiesce.disengage", "fault": "SystemError"},
    {"operation": "mount", "fault": "FileFault"},
    {"operation": "export", "fault": "FileFault"},
    {"operation": "copy", "fault": "FileFault"},
    {"operation": "unmount", "fault": "FileFault"},
    {"operation": "snapshot.remove", "fault": "TaskInProgress"},
    {"operation": "crash", "target": "proxy.after-snapshot"},
    {"operation": "crash", "target": "proxy.after-expose"},
    {"operation": "snapshot.create", "delay": 20.0},
)


def _strategies(levels: Sequence[str] = ("full",)) -> tuple[Any, Any, Any, Any, Any]:
    """Hypothesis strategies of the exploration: script names (byte-wise order traps:
    upper/lower case, ``9`` after ``40``), file contents, guest paths, guest writes (the
    workload) and job policies (including requests the product must refuse); image jobs are
    drawn at ``levels`` (only ``full`` unless the host tracks changes and the orchestrator
    declares more)."""
    from hypothesis import strategies as st

    from ._suite import LINUX_VM, VMS, WINDOWS_VM

    names = st.sampled_from(["05-first.bat", "15-Mid.bat", "15-mid.bat", "40-last.cmd", "9-nine.bat"])
    text = st.text(alphabet="abcxyz0123 ", min_size=0, max_size=12)
    win_paths = st.sampled_from(["D:\\Data\\orders.csv", "D:\\Data\\new.txt", "C:\\temp.txt", "D:\\Data\\Reports\\q3.txt"])
    lin_paths = st.sampled_from(["/var/www/index.html", "/var/www/new.html"])
    writes = st.one_of(st.tuples(st.just(WINDOWS_VM), win_paths, text), st.tuples(st.just(LINUX_VM), lin_paths, text))
    policies = st.one_of(
        st.tuples(st.sampled_from(VMS), st.just("fullvm"),
                  st.just("full") if tuple(levels) == ("full",) else st.sampled_from(tuple(levels))),
        st.tuples(st.just(WINDOWS_VM), st.just("file"), st.sampled_from(["full", "incremental", "differential"])),
        st.tuples(st.just(LINUX_VM), st.just("file"), st.just("full")),
    )

    return names, text, win_paths, writes, policies


def explored_image_levels(adapter: Any, host_profile: str) -> tuple[str, ...]:
    """The image levels the exploration draws: those ``adapter`` declares, on a host profile
    with changed block tracking; ``("full",)`` otherwise."""
    from vcbsim.simulator import get_profile

    return image_levels(adapter) if get_profile(host_profile).change_tracking else ("full",)


def _machine(adapter_factory: Callable[[], Orchestrator], host_profile: str, sink: list[Scenario],
             guest_agent_factory: Callable[[Any], Any] | None, levels: Sequence[str] = ("full",)) -> type:
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

    from ._suite import WINDOWS_VM, Scenario

    names, text, win_paths, writes, policies = _strategies(levels)

    class KitMachine(RuleBasedStateMachine):
        """Drives the adapter: guest writes, scripts, faults and jobs; checks after each job."""

        def __init__(self) -> None:
            super().__init__()
            self.s = Scenario(adapter_factory, host_profile=host_profile, guest_agent_factory=guest_agent_factory)
            sink.append(self.s)
            self.scripts: set[str] = set()

        @rule(w=writes)
        def write(self, w: tuple[str, str, str]) -> None:
            self.s.write(*w)

        @rule(name=names, exit_code=st.sampled_from([0, 0, 0, 1, 3]), sleep=st.sampled_from([0.0, 0.0, 2.0, 700.0]),
              phase=st.sampled_from(["", "", "freeze", "thaw"]))
        def add_script(self, name: str, exit_code: int, sleep: float, phase: str) -> None:
            self.s.add_script(name, exit_code, sleep, phase)
            self.scripts.add(name.casefold())

        @precondition(lambda self: bool(self.scripts))
        @rule(data=st.data())
        def remove_script(self, data: Any) -> None:
            name = data.draw(st.sampled_from(sorted(self.scripts)))
            self.s.remove_script(name)
            self.scripts.discard(name)

        @rule(f=st.sampled_from(_FAULTS), times=st.sampled_from([1, 2]))
        def arm_fault(self, f: dict[str, Any], times: int) -> None:
            self.s.arm_fault(f["operation"], f.get("target", "*"), f.get("fault"), f.get("delay", 0.0), None, times)

        @rule(p=policies, during=st.lists(st.tuples(win_paths, text), max_size=2))
        def backup(self, p: tuple[str, str, str], during: list[tuple[str, str]]) -> None:
            vm, mode, level = p
            dur = tuple(during) if vm == WINDOWS_VM else ()
            self.s.backup(vm, mode, level, dur)

        @invariant()
        def no_guest_left_frozen_between_jobs(self) -> None:
            for vm in self.s.host.vms.values():
                if vm.tools is not None and getattr(vm.tools, "frozen", False) and getattr(vm.tools, "phase", "IDLE") == "IDLE":
                    why = f"{vm.name} is still frozen although no quiesce operation is running"
                    raise ConformanceViolation("QSC-UNQUIESCE", why, vm=vm.moref)

        def teardown(self) -> None:
            try:
                self.s.finish()
            finally:
                self.s.close()

    return KitMachine


