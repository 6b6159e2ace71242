r"""``vcbsim demo --inventory era``: one narrated image backup per era-specific case.

The era inventory (``Host.demo(profile, inventory="era")``, docs/architecture.md "Host
profiles") has a VM for each behaviour that differs by host era or disk kind. Each is backed up
with the reference proxy, step by step from the host's trace, and checked against what a host
of the chosen profile does:

* ``winxp-legacy``: only ``C:\Windows\pre-freeze-script.bat`` / ``post-thaw-script.bat`` run
  (KB 1006671; on 7.0 Tools runs the legacy slot with the directory, which is empty here);
* ``w2019-app``: application consistent on esxi-7.0 (``disk.EnableUUID``, the 4.1 rules),
  file-system consistent before;
* ``sql-indep``: the independent disk gets no redo log;
* ``web-2ds``: both redo logs in the working directory on ``datastore1``, whatever datastore
  the base disk is on (Broadcom KB 304387);
* ``notools``: a quiesced snapshot is refused, a crash-consistent one (quiesce off) works;
* ``db-rdm``: the physical RDM gets no redo log (its data is the LUN's, as it is now), the
  virtual RDM gets one; at power off the nonpersistent ``T:`` loses its session's writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text

from ._teach_core import TeachSession

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from ._demo import DemoReport

__all__ = ["run_era_demo"]


def _backup(n: Any, session: TeachSession, name: str, title: str) -> tuple[Any, list[Any]]:
    """One image backup of ``name``, narrated; returns its result and the host events."""
    from ._demo import _steps

    n.section(title)
    mark = len(session.host.trace)
    b = session.start_backup(name, "fullvm")
    _steps(n, name, b)
    n.print(Text(""))
    return b.result, [e for e in session.host.trace.since(mark) if e.actor == "host" or e.kind == "script.run"]


def _redo(events: list[Any]) -> list[str]:
    """The redo logs the backup's snapshot created (``snapshot.create``'s ``redo``)."""
    return [f for e in events if e.kind == "snapshot.create" for f in e.details.get("redo", [])]


def run_era_demo(out: Path, console: Console, *, seed: int = 0, quiet: bool = False, profile: str = "esx-3.5u2") -> DemoReport:
    """Back up each VM of the era inventory on ``profile`` and check what its case says."""
    from ._demo import DemoReport, _Narrator

    report = DemoReport(out=str(out))
    session = TeachSession(out, seed=seed, inventory="era", profile=profile)
    n = _Narrator(console, session, report, quiet)
    host = session.host
    modern = host.profile.vss_application_rules
    try:
        n.print(Text(f"host {host.name}: {host.profile.name} ({host.profile.product} {host.profile.version})", style="bold"))
        r, ev = _backup(n, session, "winxp-legacy", "1. winxp-legacy: Windows XP, the SYNC driver and the legacy script pair")
        runs = [(e.details["path"].rsplit("\\", 1)[-1], e.details["arg"]) for e in ev if e.kind == "script.run"]
        n.check(
            "only the legacy pair ran (KB 1006671)",
            r.status == "ok" and runs == [("pre-freeze-script.bat", "freeze"), ("post-thaw-script.bat", "thaw")],
            ", ".join(f"{p} {a}" for p, a in runs),
        )

        w2019 = session.vm("w2019-app")
        kind, why = host.vss_consistency(w2019)
        r, _ev = _backup(n, session, "w2019-app", "2. w2019-app: Windows Server 2019 with disk.EnableUUID")
        want = "application" if modern else "filesystem"
        n.check(f"VSS gives {want} consistency on {host.profile.name}", r.status == "ok" and kind == want, why)

        r, ev = _backup(n, session, "sql-indep", "3. sql-indep: an independent_persistent data disk")
        redo = _redo(ev)
        n.check(
            "the independent disk gets no redo log (it is in no snapshot)",
            r.status == "ok" and len(redo) == 1 and "sql-indep_1" not in redo[0],
            ", ".join(redo),
        )

        r, ev = _backup(n, session, "web-2ds", "4. web-2ds: a second disk on datastore2")
        redo = _redo(ev)
        n.check(
            "both redo logs go to the working directory on datastore1 (KB 304387)",
            r.status == "ok" and len(redo) == 2 and all(f.startswith("[datastore1] web-2ds/") for f in redo),
            ", ".join(redo),
        )

        r, _ev = _backup(n, session, "notools", "5. notools: VMware Tools not installed, a quiesced backup first")
        n.check("a quiesced snapshot is refused (ApplicationQuiesceFault)", r.fault == "ApplicationQuiesceFault", r.fault or r.status)
        session.proxy.quiesce = False
        try:
            r, ev = _backup(n, session, "notools", "5b. notools again, crash-consistent (quiesce off)")
        finally:
            session.proxy.quiesce = True
        quiesced = [e.details.get("quiesced") for e in ev if e.kind == "snapshot.create"]
        n.check("the crash-consistent backup succeeds", r.status == "ok" and quiesced == [False], r.status)

        rdm = session.vm("db-rdm")
        r, ev = _backup(n, session, "db-rdm", "6. db-rdm: E: on a physical RDM, F: on a virtual RDM, T: nonpersistent")
        redo = sorted(f.rsplit("/", 1)[-1] for f in _redo(ev))
        n.check(
            "redo logs for C: and the virtual RDM only (no redo log on a physical RDM)",
            r.status == "ok" and redo == ["db-rdm-000001.vmdk", "db-rdm_2-000001.vmdk"],
            ", ".join(redo),
        )
        fs = host.guest_fs(rdm)
        fs.write_bytes("T:\\scratch.tmp", b"written during the session")
        n.print(Text("       the guest writes T:\\scratch.tmp, then the VM is powered off", style="bold yellow"))
        mark = len(host.trace)
        host.power_off(rdm)
        discards = [e.details for e in host.trace.since(mark) if e.kind == "disk.discard"]
        for d in discards:
            n.print(Text(f"       disk.discard {d['layer']}: {d['grains']} grain(s), at {d['reason']}", style="dim"))
        left = ", ".join(host.guest_fs(rdm).listdir("T:\\"))
        n.check(
            "power off deletes the nonpersistent disk's redo log and its writes",
            len(discards) == 1 and not host.guest_fs(rdm).exists("T:\\scratch.tmp"),
            "T: holds " + left,
        )
        host.power_on(rdm)

        n.section("Nothing left behind")
        snaps = [f"{vm.name}:{s.name}" for vm in host.vms.values() for s in vm.snapshots()]
        n.check("no snapshot on any VM", not snaps, ", ".join(snaps) or "none")
    finally:
        session.close()
    return report
