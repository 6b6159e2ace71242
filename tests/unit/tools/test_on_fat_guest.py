"""Tools on the real guest file system (FAT on disk blocks): scripts read from, and logs
written to, the guest's disk."""

from __future__ import annotations

import pytest
from pyVmomi import vim

from vcbsim.simulator import FaultInjector, SimRandom, Trace, VirtualClock
from vcbsim.simulator.tools import GuestFiles, VMwareTools

guest = pytest.importorskip("vcbsim.simulator.guest")

MiB = 1024 * 1024


def _guest(os_family: str, where: str, clock: VirtualClock, trace: Trace):
    dev = guest.SparseDevice(256 * MiB)
    vols = guest.format_disk(dev, [(None, where, "SYS")], clock=clock)
    return guest.GuestFileSystem(os_family, vols, trace=trace, vm="vm-1", clock=clock)


@pytest.mark.parametrize(
    ("os_family", "where", "sdir", "log"),
    [
        ("windows", "C", "C:\\Program Files\\VMware\\VMware Tools\\backupScripts.d", "C:\\q.log"),
        ("linux", "/", "/etc/vmware-tools/backupScripts.d", "/var/log/q.log"),
    ],
)
def test_quiesce_with_scripts_on_fat(os_family: str, where: str, sdir: str, log: str) -> None:
    clock = VirtualClock()
    trace = Trace(clock)
    fs = _guest(os_family, where, clock, trace)
    assert isinstance(fs, GuestFiles)
    sep = "\\" if os_family == "windows" else "/"
    arg = "%1" if os_family == "windows" else "$1"
    fs.mkdir(sdir, parents=True)
    fs.mkdir(log.rsplit(sep, 1)[0] or "/", parents=True)
    ext = ".bat" if os_family == "windows" else ""
    for name in ("20-app", "10-db"):
        fs.write_bytes(f"{sdir}{sep}{name}{ext}", f"echo {name} {arg} >> {log}\n".encode())
    fs.write_bytes(f"{sdir}{sep}30-bad{ext}", b"[freeze] exit 4\n")
    tools = VMwareTools(fs)
    created: list[str] = []

    def create() -> str:
        created.append("snap")
        return "snap"

    with pytest.raises(vim.fault.ApplicationQuiesceFault):
        tools.quiesced_snapshot(
            create, lambda s: None, clock=clock, trace=trace,
            faults=FaultInjector(SimRandom(0), trace), profile="esxi-7.0", vm="vm-1",
        )
    nl = "\r\n" if os_family == "windows" else "\n"
    want = nl.join(["10-db freeze", "20-app freeze", "20-app freezeFail", "10-db freezeFail"]) + nl
    assert fs.read_bytes(log).decode() == want
    assert created == [] and not tools.frozen
    # the scripts' writes are ordinary guest writes on the trace
    assert any(e.kind == "guest.write" and e.details.get("path", "").lower() == log.lower() for e in trace)
