"""Trace-level mutants: hand-built event lists of one backup job, correct and broken.

``good_file_job()`` and ``good_image_job()`` are correct traces; each function in
``TRACE_MUTANTS`` edits a correct trace so that exactly one rule breaks. They are a fast,
scripted regression set for the checker (the orchestrator mutants in ``orchestrators.py``
break the same rules by running against the simulated host).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vcbsim.simulator import EPOCH, Event

WIN_SCRIPTS = "C:\\Program Files\\VMware\\VMware Tools\\backupScripts.d\\"
SNAP = "_VCB-BACKUP_"


@dataclass
class _Ev:
    actor: str
    kind: str
    vm: str | None
    step: str | None
    details: dict[str, Any]
    dt: float = 0.0


class TraceBuilder:
    """Append events with virtual time; ``events()`` numbers them."""

    def __init__(self) -> None:
        self.items: list[_Ev] = []

    def add(self, actor: str, kind: str, vm: str | None = "vm-1", step: str | None = None, /, dt: float = 0.0, **details: Any) -> TraceBuilder:
        self.items.append(_Ev(actor, kind, vm, step, details, dt))
        return self

    def events(self) -> list[Event]:
        t = EPOCH
        out = []
        for i, it in enumerate(self.items):
            t += it.dt
            out.append(Event(i, t, it.actor, it.kind, it.vm, it.step, dict(it.details)))
        return out


def renumber(events: list[Event]) -> list[Event]:
    """Sequence numbers 0.. and non-decreasing times after an edit."""
    out: list[Event] = []
    t = events[0].time if events else EPOCH
    for i, e in enumerate(events):
        t = max(t, e.time)
        out.append(Event(i, t, e.actor, e.kind, e.vm, e.step, dict(e.details)))
    return out


def _quiesce(b: TraceBuilder, scripts: list[str], *, vm: str = "vm-1", snapshot: str = "snapshot-1") -> None:
    b.add("host", "snapshot.create.start", vm, name=SNAP, quiesce=True, memory=False)
    b.add("guest", "quiesce.start", vm, "WF-1a", provider="vss", layout="scripts.d", timeout=900.0, scripts=len(scripts))
    for i, s in enumerate(scripts):
        b.add("guest", "script.run", vm, "WF-1a", dt=1.0, path=WIN_SCRIPTS + s, arg="freeze", exit_code=0, duration=1.0, legacy=False, index=i)
    b.add("guest", "quiesce.engage", vm, "WF-1b", provider="vss", ok=True)
    b.add("host", "snapshot.create", vm, "WF-1c", dt=1.0, snapshot=snapshot, name=SNAP, quiesced=True,
          redo=["win2003-000001.vmdk", "win2003_1-000001.vmdk"])
    b.add("guest", "quiesce.disengage", vm, "WF-1d", provider="vss", ok=True)
    for i, s in reversed(list(enumerate(scripts))):
        b.add("guest", "script.run", vm, "WF-1e", dt=1.0, path=WIN_SCRIPTS + s, arg="thaw", exit_code=0, duration=1.0, legacy=False, index=i)
    b.add("guest", "quiesce.end", vm, "WF-1e", outcome="done", code=0, message="")


def good_file_job(level: str = "full", *, job: str = "j1", snapshot: str = "snapshot-1", files: list[str] | None = None,
                  builder: TraceBuilder | None = None, header: bool = True) -> TraceBuilder:
    """A file-level backup of a Windows VM with two custom scripts, as the seed describes it."""
    b = builder or TraceBuilder()
    if header:
        b.add("host", "host.reset", None, profile="esx-3.5u2", seed=0)
        b.add("host", "vm.create", "vm-1", name="win2003", os="windows")
        b.add("guest", "guest.write", "vm-1", path="C:\\data\\a.txt", size=10, sha256="0" * 64)
    b.add("proxy", "op.invoke", "vm-1", None, dt=1.0, op="job", op_id=job, mode="file", level=level)
    b.add("proxy", "op.invoke", "vm-1", "WF-1", op="pre-backup", op_id=job + "-p", snapshot=SNAP, quiesce=True)
    _quiesce(b, ["10-sql.bat", "20-app.bat"], snapshot=snapshot)
    b.add("proxy", "op.ok", "vm-1", "WF-1", op="pre-backup", op_id=job + "-p", snapshot=snapshot)
    b.add("proxy", "op.invoke", "vm-1", "WF-1f", op="expose", op_id=job + "-e", kind="file")
    b.add("proxy", "mount", "vm-1", dt=1.0, path="C:\\mnt\\win2003\\letters\\C", kind="file", letter="C")
    b.add("proxy", "mount", "vm-1", path="C:\\mnt\\win2003\\letters\\D", kind="file", letter="D")
    b.add("proxy", "op.ok", "vm-1", "WF-1f", op="expose", op_id=job + "-e")
    b.add("guest", "guest.write", "vm-1", dt=1.0, path="C:\\data\\during.txt", size=10, sha256="1" * 64)
    b.add("proxy", "op.invoke", "vm-1", "WF-2", op="copy", op_id=job + "-c", kind=level)
    b.add("proxy", "op.ok", "vm-1", "WF-2", dt=5.0, op="copy", op_id=job + "-c", files=files if files is not None else ["C:\\data\\a.txt"])
    b.add("proxy", "op.invoke", "vm-1", "WF-3a", op="unmount", op_id=job + "-u")
    b.add("proxy", "unmount", "vm-1", path="C:\\mnt\\win2003\\letters\\C")
    b.add("proxy", "unmount", "vm-1", path="C:\\mnt\\win2003\\letters\\D")
    b.add("proxy", "op.ok", "vm-1", "WF-3a", op="unmount", op_id=job + "-u")
    b.add("proxy", "op.invoke", "vm-1", "WF-3b", op="remove-snapshot", op_id=job + "-r", snapshot=snapshot)
    b.add("host", "snapshot.remove", "vm-1", "WF-3b", dt=2.0, snapshot=snapshot, name=SNAP, consolidate=True)
    b.add("proxy", "op.ok", "vm-1", "WF-3b", op="remove-snapshot", op_id=job + "-r", snapshot=snapshot)
    b.add("proxy", "op.ok", "vm-1", None, op="job", op_id=job)
    return b


def good_image_job(profile: str = "esx-3.5u2") -> TraceBuilder:
    """An image-level backup of a Linux VM with the legacy scripts, on ESX 3.5 U2; on
    ESXi 7.0 (Tools of 2010 and later) with a backupScripts.d script as well."""
    dir_script = profile == "esxi-7.0"
    b = TraceBuilder()
    b.add("host", "host.reset", None, profile=profile, seed=0)
    b.add("host", "vm.create", "vm-2", name="rhel5", os="linux")
    b.add("proxy", "op.invoke", "vm-2", None, dt=1.0, op="job", op_id="j1", mode="fullvm")
    b.add("proxy", "op.invoke", "vm-2", "WF-1", op="pre-backup", op_id="p1", snapshot=SNAP, quiesce=True)
    b.add("host", "snapshot.create.start", "vm-2", name=SNAP, quiesce=True, memory=False)
    # on 3.5 U2 a Linux ("Other") guest runs only the /usr/sbin scripts (seed Table 2-3)
    b.add("guest", "quiesce.start", "vm-2", "WF-1a", provider="sync", layout="scripts.d", timeout=900.0, scripts=1 + dir_script)
    b.add("guest", "script.run", "vm-2", "WF-1a", dt=1.0, path="/usr/sbin/pre-freeze-script", arg="freeze", exit_code=0, duration=1.0, legacy=True, index=0)
    if dir_script:
        b.add("guest", "script.run", "vm-2", "WF-1a", dt=1.0, path="/etc/vmware-tools/backupScripts.d/db", arg="freeze", exit_code=0, duration=1.0, legacy=False, index=1)
    b.add("guest", "quiesce.engage", "vm-2", "WF-1b", provider="sync", ok=True)
    b.add("host", "snapshot.create", "vm-2", "WF-1c", dt=1.0, snapshot="snapshot-1", name=SNAP, quiesced=True, redo=["rhel5-000001.vmdk"])
    b.add("guest", "quiesce.disengage", "vm-2", "WF-1d", provider="sync", ok=True)
    if dir_script:
        b.add("guest", "script.run", "vm-2", "WF-1e", dt=1.0, path="/etc/vmware-tools/backupScripts.d/db", arg="thaw", exit_code=0, duration=1.0, legacy=False, index=1)
    b.add("guest", "script.run", "vm-2", "WF-1e", dt=1.0, path="/usr/sbin/post-thaw-script", arg="thaw", exit_code=0, duration=1.0, legacy=True, index=0)
    b.add("guest", "quiesce.end", "vm-2", "WF-1e", outcome="done", code=0, message="")
    b.add("proxy", "op.ok", "vm-2", "WF-1", op="pre-backup", op_id="p1", snapshot="snapshot-1")
    b.add("proxy", "op.invoke", "vm-2", "WF-1f", op="expose", op_id="e1", kind="fullvm")
    b.add("proxy", "mount", "vm-2", dt=3.0, path="/mnt/rhel5-fullVM", kind="fullvm")
    b.add("proxy", "op.ok", "vm-2", "WF-1f", op="expose", op_id="e1")
    b.add("proxy", "op.invoke", "vm-2", "WF-2", op="copy", op_id="c1", kind="image")
    b.add("proxy", "op.ok", "vm-2", "WF-2", dt=5.0, op="copy", op_id="c1")
    b.add("proxy", "op.invoke", "vm-2", "WF-3a", op="unmount", op_id="u1")
    b.add("proxy", "unmount", "vm-2", path="/mnt/rhel5-fullVM")
    b.add("proxy", "op.ok", "vm-2", "WF-3a", op="unmount", op_id="u1")
    b.add("proxy", "op.invoke", "vm-2", "WF-3b", op="remove-snapshot", op_id="r1", snapshot="snapshot-1")
    b.add("host", "snapshot.remove", "vm-2", "WF-3b", dt=2.0, snapshot="snapshot-1", name=SNAP, consolidate=True)
    b.add("proxy", "op.ok", "vm-2", "WF-3b", op="remove-snapshot", op_id="r1", snapshot="snapshot-1")
    b.add("proxy", "op.ok", "vm-2", None, op="job", op_id="j1")
    return b


def good_file_series() -> TraceBuilder:
    """Full, then incremental, then differential file backups with writes in between."""
    b = good_file_job("full", job="j1", snapshot="snapshot-1")
    b.add("guest", "guest.write", "vm-1", dt=10.0, path="C:\\data\\b.txt", size=10, sha256="2" * 64)
    good_file_job("incremental", job="j2", snapshot="snapshot-2", builder=b, header=False,
                  files=["C:\\data\\during.txt", "C:\\data\\b.txt"])
    b.add("guest", "guest.write", "vm-1", dt=10.0, path="C:\\data\\c.txt", size=10, sha256="3" * 64)
    good_file_job("differential", job="j3", snapshot="snapshot-3", builder=b, header=False,
                  files=["C:\\data\\during.txt", "C:\\data\\b.txt", "C:\\data\\during.txt", "C:\\data\\c.txt"])
    return b


def good_incremental_after_differential(files: list[str] | None = None) -> TraceBuilder:
    """A fourth job, an incremental after the differential: its base is the incremental j2
    (the seed: "since the last backup, whether the last backup was full or incremental"), so
    it holds c.txt (written before the differential) and d.txt; during.txt was only rewritten
    with the same bytes (metadata), and b.txt too, so either way is right."""
    b = good_file_series()
    b.add("guest", "guest.write", "vm-1", dt=10.0, path="C:\\data\\d.txt", size=10, sha256="4" * 64)
    b.add("guest", "guest.write", "vm-1", path="C:\\data\\b.txt", size=10, sha256="2" * 64)
    good_file_job("incremental", job="j4", snapshot="snapshot-4", builder=b, header=False,
                  files=files if files is not None else ["C:\\data\\c.txt", "C:\\data\\d.txt"])
    return b


# ------------------------------------------------------------------ edits


def _find(evs: list[Event], kind: str, **match: Any) -> int:
    for i, e in enumerate(evs):
        if e.kind == kind and all(e.details.get(k) == v for k, v in match.items()):
            return i
    raise LookupError(f"no {kind} {match}")


def _move(evs: list[Event], i: int, j: int) -> list[Event]:
    """Move event ``i`` to just before position ``j`` (indexes in the original list)."""
    ev = evs[i]
    rest = evs[:i] + evs[i + 1 :]
    j = j - 1 if j > i else j
    at = rest[j - 1].time if j > 0 else rest[0].time
    ev = Event(ev.seq, at, ev.actor, ev.kind, ev.vm, ev.step, dict(ev.details))
    return renumber(rest[:j] + [ev] + rest[j:])


def _insert(evs: list[Event], i: int, ev: Event, dt: float) -> list[Event]:
    """Insert ``ev`` at ``i``, ``dt`` seconds after its predecessor; later events shift by ``dt``."""
    base = evs[i - 1].time
    new = Event(0, base + dt, ev.actor, ev.kind, ev.vm, ev.step, dict(ev.details))
    later = [Event(e.seq, e.time + dt, e.actor, e.kind, e.vm, e.step, dict(e.details)) for e in evs[i:]]
    return renumber(evs[:i] + [new] + later)


def _set(evs: list[Event], i: int, **details: Any) -> list[Event]:
    e = evs[i]
    evs = list(evs)
    evs[i] = Event(e.seq, e.time, e.actor, e.kind, e.vm, e.step, {**e.details, **details})
    return evs


def commit_while_mounted() -> list[Event]:
    evs = good_file_job().events()
    remove = _find(evs, "snapshot.remove")
    first_unmount = _find(evs, "op.invoke", op="unmount")
    return _move(evs, remove, first_unmount)


def commit_before_copy_ends() -> list[Event]:
    evs = good_file_job().events()
    copy_ok = _find(evs, "op.ok", op="copy")
    return _move(evs, copy_ok, len(evs) - 1)


def thaw_ascending() -> list[Event]:
    evs = good_file_job().events()
    a = _find(evs, "script.run", arg="thaw", path=WIN_SCRIPTS + "20-app.bat")
    return _set(_set(evs, a, path=WIN_SCRIPTS + "10-sql.bat", index=0), a + 1, path=WIN_SCRIPTS + "20-app.bat", index=1)


def freezefail_lowercase() -> list[Event]:
    evs = freeze_script_fails()
    i = _find(evs, "script.run", arg="freezeFail")
    return _set(evs, i, arg="freezefail")


def freeze_script_fails() -> list[Event]:
    """Script 20 fails: 10 gets freezeFail, no snapshot, the job fails and cleans up (correct)."""
    b = TraceBuilder()
    b.add("host", "vm.create", "vm-1", name="win2003", os="windows")
    b.add("proxy", "op.invoke", "vm-1", None, dt=1.0, op="job", op_id="j1", mode="file", level="full")
    b.add("proxy", "op.invoke", "vm-1", "WF-1", op="pre-backup", op_id="p1", snapshot=SNAP, quiesce=True)
    b.add("host", "snapshot.create.start", "vm-1", name=SNAP, quiesce=True, memory=False)
    b.add("guest", "quiesce.start", "vm-1", "WF-1a", provider="vss", layout="scripts.d", timeout=900.0, scripts=3)
    b.add("guest", "script.run", "vm-1", "WF-1a", dt=1.0, path=WIN_SCRIPTS + "10-sql.bat", arg="freeze", exit_code=0, duration=1.0, legacy=False, index=0)
    b.add("guest", "script.run", "vm-1", "WF-1a", dt=1.0, path=WIN_SCRIPTS + "20-app.bat", arg="freeze", exit_code=3, duration=1.0, legacy=False, index=1)
    b.add("guest", "script.run", "vm-1", "WF-1e", dt=1.0, path=WIN_SCRIPTS + "10-sql.bat", arg="freezeFail", exit_code=0, duration=1.0, legacy=False, index=0)
    b.add("guest", "quiesce.end", "vm-1", "WF-1e", outcome="error", code=2, message="Custom quiesce script failed.")
    b.add("host", "snapshot.create.fail", "vm-1", name=SNAP, fault="ApplicationQuiesceFault", message="...")
    b.add("proxy", "op.fail", "vm-1", "WF-1", op="pre-backup", op_id="p1", error="ApplicationQuiesceFault")
    b.add("proxy", "op.fail", "vm-1", None, op="job", op_id="j1", error="ApplicationQuiesceFault")
    return b.events()


def freezefail_on_failed_script() -> list[Event]:
    evs = freeze_script_fails()
    i = _find(evs, "script.run", arg="freezeFail")
    extra = Event(0, 0.0, "guest", "script.run", "vm-1", "WF-1e",
                  {"path": WIN_SCRIPTS + "20-app.bat", "arg": "freezeFail", "exit_code": 0, "duration": 1.0, "legacy": False, "index": 1})
    return _insert(evs, i, extra, 1.0)


def freeze_continues_after_failure() -> list[Event]:
    evs = freeze_script_fails()
    i = _find(evs, "script.run", arg="freeze", exit_code=3)
    extra = Event(0, 0.0, "guest", "script.run", "vm-1", "WF-1a",
                  {"path": WIN_SCRIPTS + "30-web.bat", "arg": "freeze", "exit_code": 0, "duration": 1.0, "legacy": False, "index": 2})
    return _insert(evs, i + 1, extra, 1.0)


def appfault_backed_up_anyway() -> list[Event]:
    evs = freeze_script_fails()
    job_fail = len(evs) - 1
    evs = evs[:job_fail]
    b = TraceBuilder()
    b.add("proxy", "op.invoke", "vm-1", "WF-1f", op="expose", op_id="e1", kind="file")
    b.add("proxy", "op.fail", "vm-1", "WF-1f", op="expose", op_id="e1", error="snapshot not found")
    b.add("proxy", "op.ok", "vm-1", None, op="job", op_id="j1")
    tail = b.events()
    return renumber(evs + [Event(0, evs[-1].time, e.actor, e.kind, e.vm, e.step, dict(e.details)) for e in tail])


def snapshot_left_behind() -> list[Event]:
    evs = good_file_job().events()
    i = _find(evs, "op.invoke", op="remove-snapshot")
    return renumber(evs[:i] + evs[i + 3 :])


def job_never_ends() -> list[Event]:
    return renumber(good_file_job().events()[:-1])


def unmount_unknown_path() -> list[Event]:
    evs = good_file_job().events()
    i = _find(evs, "unmount", path="C:\\mnt\\win2003\\letters\\D")
    return _set(evs, i, path="C:\\mnt\\other\\letters\\D")


def letterless_mount() -> list[Event]:
    evs = good_file_job().events()
    i = _find(evs, "mount", letter="D")
    return _set(evs, i, letter=None)


def linux_file_level() -> list[Event]:
    evs = good_file_job().events()
    return _set(evs, _find(evs, "vm.create"), os="linux")


def forgets_unquiesce() -> list[Event]:
    evs = good_file_job().events()
    i = _find(evs, "quiesce.disengage")
    return renumber(evs[:i] + evs[i + 1 :])


def differential_like_incremental() -> list[Event]:
    b = good_file_series()
    evs = b.events()
    i = [k for k, e in enumerate(evs) if e.kind == "op.ok" and e.details.get("op") == "copy"][2]
    return _set(evs, i, files=["C:\\data\\c.txt", "C:\\data\\during.txt"])


def incremental_since_full() -> list[Event]:
    """The third job is an incremental that selects like a differential."""
    evs = good_file_series().events()
    j3 = _find(evs, "op.invoke", op="job", op_id="j3")
    evs = _set(evs, j3, level="incremental")
    return evs


def incremental_based_on_the_differential() -> list[Event]:
    """Takes the differential j3 as its base: misses c.txt."""
    return good_incremental_after_differential(["C:\\data\\d.txt"]).events()


def incremental_holds_an_unchanged_file() -> list[Event]:
    """Copies a.txt, unchanged in content and metadata since the base (an "incremental" that
    copies everything)."""
    return good_incremental_after_differential(["C:\\data\\a.txt", "C:\\data\\c.txt", "C:\\data\\d.txt"]).events()


def ignores_abort_timer() -> list[Event]:
    evs = good_file_job().events()
    i = _find(evs, "quiesce.start")
    return _set(evs, i, timeout=2.0)


def uncommitted_redo_log() -> list[Event]:
    evs = good_file_job().events()
    return _set(evs, _find(evs, "snapshot.remove"), consolidate=False)


def export_before_snapshot() -> list[Event]:
    evs = good_image_job().events()
    start = _find(evs, "op.invoke", op="expose")
    moved = _move(evs, start, _find(evs, "op.invoke", op="pre-backup"))
    return _move(moved, _find(moved, "mount"), _find(moved, "op.invoke", op="pre-backup"))


def legacy_script_not_last() -> list[Event]:
    evs = good_image_job("esxi-7.0").events()
    i = _find(evs, "script.run", path="/usr/sbin/post-thaw-script")
    return _move(evs, i, i - 1)


def scripts_overlap() -> list[Event]:
    evs = good_file_job().events()
    i = _find(evs, "script.run", arg="freeze", path=WIN_SCRIPTS + "20-app.bat")
    return _set(evs, i, duration=5.0)


# -- restores over the wire (issue 16: RST-*) -------------------------------------------------


def good_restore_vm(over: bool = False, fail: bool = False) -> TraceBuilder:
    """A whole-VM restore as ``reference/_wirerestore.py`` records it: uploads, then (over the
    original) the original powered off by the user and destroyed, then the register."""
    b = TraceBuilder()
    b.add("host", "host.reset", None, profile="esx-3.5u2", seed=0)
    b.add("host", "vm.create", "vm-1", name="win2003", os="windows", power="poweredOn")
    if over:
        b.add("host", "vm.power", "vm-1", state="poweredOff", dt=5.0)
    b.add("proxy", "op.invoke", "vm-1" if over else None, op="restore-vm", op_id="r1", backup_id=1,
          target="over" if over else "new", name="win2003" if over else "copy", datastore="datastore1", dt=1.0)
    b.add("proxy", "op.invoke", None, op="upload-disk", op_id="r1-disk2000", disk=2000, file="[datastore1] x/x.vmdk")
    b.add("proxy", "op.ok", None, op="upload-disk", op_id="r1-disk2000", bytes=65536, dt=1.0)
    if fail:
        b.add("proxy", "op.fail", None, op="restore-vm", op_id="r1", error="FileNotFound: x", dt=1.0)
        return b
    if over:
        b.add("proxy", "op.invoke", "vm-1", op="replace-vm", op_id="r1-replace")
        b.add("host", "vm.destroy", "vm-1", name="win2003", dt=1.0)
        b.add("proxy", "op.ok", "vm-1", op="replace-vm", op_id="r1-replace")
    b.add("host", "vm.register", "vm-2", name="win2003" if over else "copy", os="windows", power="poweredOff",
          disks=["[datastore1] x/x.vmdk"], dt=1.0)
    b.add("proxy", "op.ok", "vm-2", op="restore-vm", op_id="r1", backup_id=1, dt=1.0)
    return b


def good_restore_files() -> TraceBuilder:
    b = TraceBuilder()
    b.add("host", "host.reset", None, profile="esx-3.5u2", seed=0)
    b.add("host", "vm.create", "vm-1", name="win2003", os="windows", power="poweredOn")
    b.add("proxy", "op.invoke", "vm-1", op="restore-files", op_id="f1", backup_id=2, path="C:\\data", dt=1.0)
    b.add("host", "guest.file.put", "vm-1", path="C:\\data\\a.txt", size=3, existed=True, dt=1.0)
    b.add("host", "guest.file.put", "vm-1", path="C:\\data\\sub\\b.txt", size=3, existed=False, dt=1.0)
    b.add("proxy", "op.ok", "vm-1", op="restore-files", op_id="f1", written=["C:\\data\\a.txt", "C:\\DATA\\sub\\b.txt"],
          overwritten=["c:\\data\\a.txt"], dt=1.0)
    return b


def overwrites_the_running_original() -> list[Event]:
    """The proxy powers the running original off itself and replaces it."""
    evs = good_restore_vm(over=True).events()
    invoke = _find(evs, "op.invoke", op="restore-vm")
    return _move(evs, _find(evs, "vm.power"), invoke + 1)


def leaves_a_half_made_vm() -> list[Event]:
    """The VM was created before the data upload, which failed; the VM stays registered."""
    evs = good_restore_vm(fail=True).events()
    i = _find(evs, "op.fail", op="restore-vm")
    made = Event(0, evs[i].time, "host", "vm.create", "vm-3", None, {"name": "copy", "os": "windows", "power": "poweredOff"})
    return _insert(evs, i, made, 0.0)


def file_restore_writes_an_unreported_file() -> list[Event]:
    evs = good_restore_files().events()
    i = _find(evs, "op.ok", op="restore-files")
    extra = Event(0, evs[i].time, "host", "guest.file.put", "vm-1", None,
                  {"path": "C:\\data\\c.txt", "size": 1, "existed": False})
    return _insert(evs, i, extra, 0.0)


def file_restore_hides_an_overwrite() -> list[Event]:
    evs = good_restore_files().events()
    return _set(evs, _find(evs, "op.ok", op="restore-files"), overwritten=[])


@dataclass(frozen=True)
class TraceMutant:
    name: str
    rule: str
    build: Callable[[], list[Event]]
    profile: str = "esx-3.5u2"


TRACE_MUTANTS: tuple[TraceMutant, ...] = (
    TraceMutant("commit-while-mounted", "WF-3a", commit_while_mounted),
    TraceMutant("commit-before-copy-ends", "WF-3b", commit_before_copy_ends),
    TraceMutant("thaw-ascending", "SCR-ORDER-THAW", thaw_ascending),
    TraceMutant("freezefail-lowercase", "SCR-ARG-EXACT", freezefail_lowercase),
    TraceMutant("freezefail-on-failed-script", "SCR-FREEZEFAIL-NOT-FAILED", freezefail_on_failed_script),
    TraceMutant("freeze-continues-after-failure", "SCR-FREEZE-STOP", freeze_continues_after_failure),
    TraceMutant("appfault-backed-up-anyway", "QSC-APPFAULT", appfault_backed_up_anyway),
    TraceMutant("snapshot-left-behind", "CLN-NO-SNAPSHOT-LEFT", snapshot_left_behind),
    TraceMutant("job-never-ends", "TRC-OP-PAIRED", job_never_ends),
    TraceMutant("unmount-unknown-path", "TRC-CONSUMED", unmount_unknown_path),
    TraceMutant("letterless-mount", "FILE-NO-LETTERLESS", letterless_mount),
    TraceMutant("linux-file-level", "FILE-WINDOWS-ONLY", linux_file_level),
    TraceMutant("forgets-unquiesce", "QSC-UNQUIESCE", forgets_unquiesce),
    TraceMutant("differential-like-incremental", "BK-DIFF-SINCE-FULL", differential_like_incremental),
    TraceMutant("incremental-since-full", "BK-INCR-SINCE-LAST", incremental_since_full),
    TraceMutant("incremental-based-on-the-differential", "BK-INCR-SINCE-LAST", incremental_based_on_the_differential),
    TraceMutant("incremental-holds-an-unchanged-file", "BK-INCR-SINCE-LAST", incremental_holds_an_unchanged_file),
    TraceMutant("ignores-abort-timer", "TMO-GUEST-ABORT", ignores_abort_timer, profile="esxi-7.0"),
    TraceMutant("uncommitted-redo-log", "CMT-CONSOLIDATE", uncommitted_redo_log),
    TraceMutant("export-before-snapshot", "WF-1f", export_before_snapshot),
    TraceMutant("legacy-script-not-last", "SCR-LEGACY-PLACEMENT", legacy_script_not_last, profile="esxi-7.0"),
    TraceMutant("scripts-overlap", "SCR-ONE-AT-A-TIME", scripts_overlap),
    TraceMutant("overwrites-the-running-original", "RST-NO-RUNNING-OVERWRITE", overwrites_the_running_original),
    TraceMutant("leaves-a-half-made-vm", "RST-NO-HALF-VM", leaves_a_half_made_vm),
    TraceMutant("file-restore-writes-an-unreported-file", "RST-FILES-EXACT", file_restore_writes_an_unreported_file),
    TraceMutant("file-restore-hides-an-overwrite", "RST-FILES-EXACT", file_restore_hides_an_overwrite),
)
