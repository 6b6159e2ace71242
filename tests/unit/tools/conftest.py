"""A test rig for VMware Tools: an in-memory guest, a clock, a trace and a fake host callback."""

from __future__ import annotations

from typing import Any

import pytest

from vcbsim.simulator import FaultInjector, SimRandom, Trace, VirtualClock, get_profile
from vcbsim.simulator.tools import MemoryGuestFiles, QuiesceResult, VMwareTools

WIN_DIR = "C:\\Program Files\\VMware\\VMware Tools\\backupScripts.d"
LINUX_DIR = "/etc/vmware-tools/backupScripts.d"
WIN_PRE = "C:\\Windows\\pre-freeze-script.bat"
WIN_POST = "C:\\Windows\\post-thaw-script.bat"
LINUX_PRE = "/usr/sbin/pre-freeze-script"
LINUX_POST = "/usr/sbin/post-thaw-script"


class Rig:
    """One guest with Tools, and a host whose ``create()`` takes ``snapshot_duration`` seconds."""

    def __init__(
        self,
        os_family: str = "windows",
        profile: Any = "esxi-7.0",
        *,
        snapshot_duration: float = 1.0,
        create_fault: BaseException | None = None,
        **tools_kwargs: Any,
    ) -> None:
        self.files = MemoryGuestFiles(os_family)
        self.clock = VirtualClock()
        self.trace = Trace(self.clock)
        self.faults = FaultInjector(SimRandom(0), self.trace)
        self.profile = get_profile(profile)
        self.tools = VMwareTools(self.files, **tools_kwargs)
        self.snapshot_duration = snapshot_duration
        self.create_fault = create_fault
        self.created: list[str] = []
        self.rolled_back: list[str] = []
        self.frozen_during_create: list[bool] = []

    @property
    def dir(self) -> str:
        return WIN_DIR if self.files.os_family == "windows" else LINUX_DIR

    @property
    def pre(self) -> str:
        return WIN_PRE if self.files.os_family == "windows" else LINUX_PRE

    @property
    def post(self) -> str:
        return WIN_POST if self.files.os_family == "windows" else LINUX_POST

    def in_dir(self, name: str) -> str:
        sep = "\\" if self.files.os_family == "windows" else "/"
        return self.dir + sep + name

    def script(self, path: str, text: str = "", *, executable: bool = True) -> str:
        self.files.write_bytes(path, text.encode(), parents=True, executable=executable)
        return path

    def create(self) -> str:
        self.frozen_during_create.append(self.tools.frozen)
        self.trace.emit("host", "snapshot.create.start", step="WF-1c", name="s", quiesce=True, memory=False)
        self.clock.advance(self.snapshot_duration)
        if self.create_fault is not None:
            raise self.create_fault
        snap = f"snapshot-{len(self.created) + 1}"
        self.created.append(snap)
        self.trace.emit("host", "snapshot.create", step="WF-1c", snapshot=snap, name="s", quiesced=True, redo=[])
        return snap

    def rollback(self, snap: str) -> None:
        self.rolled_back.append(snap)
        self.trace.emit("host", "snapshot.rollback", snapshot=snap, reason="quiesce")

    def quiesce(self, **kw: Any) -> QuiesceResult:
        return self.tools.quiesced_snapshot(
            self.create,
            self.rollback,
            clock=self.clock,
            trace=self.trace,
            faults=self.faults,
            profile=self.profile,
            vm="vm-1",
            **kw,
        )

    def calls(self) -> list[tuple[str, str | None]]:
        """(path, arg) of every script.run event, in trace order."""
        return [(e.details["path"], e.details["arg"]) for e in self.trace.of_kind("script.run")]

    def kinds(self) -> list[str]:
        return [e.kind for e in self.trace]

    def end(self) -> dict[str, Any]:
        ends = self.trace.of_kind("quiesce.end")
        assert len(ends) == 1, ends
        return dict(ends[0].details)


@pytest.fixture(scope="session")
def rig() -> type[Rig]:
    return Rig
