"""The proxy's file system as the kit sees it, not as the product announces it.

A product that mounts (file level: a folder with ``letters\\<X>`` junctions, seed file-level
step 1) or exports (image level) writes folders under its *mount root*; it declares that folder
with an attribute ``mount_root`` (a path; ``ReferenceOrchestrator`` has one). The kit then looks
at the folder itself at the moments that matter (every event the product records, and the
host's snapshot creation and removal) and judges what appears and disappears there, whatever
the product's ``mount`` / ``unmount`` events say (in process, ``_suite.Scenario``):

- WF-1f: nothing appears before the job's snapshot exists;
- WF-3a: nothing the job mounted is still there when the snapshot is removed;
- CLN-NO-MOUNT-LEFT: nothing the job mounted is left when a successful job ends, nor anything
  at all after the final clean run (an unmount announced while the folder stays fails);
- FILE-JUNCTION: the ``letters`` junctions of a file-level job are named after drive letters of
  the VM's volumes.

A mount is a folder directly under the root (an image export) or, in a folder that has a
``letters`` folder, each ``letters\\<X>`` (a file-level mount); names starting with ``.`` are the
product's own bookkeeping. A product that declares no mount root is judged on its announcements
alone (the trace checker), as before.

Over the wire (``_wire.WireScenario``) the product is a command on this machine and declares
its mount root in its declaration (``Capabilities.mount_root``, ``{workdir}`` allowed). The
kit's view of the host is the control API's trace, read while the command runs, so each look
at the folder (``Look``) sits between two reads of it, and a verdict holds only what that order
proves (``judge_looks``): a mount seen while the read *after* the look still had no snapshot
of the VM came before the snapshot (WF-1f); one seen while the read *before* the look already
had the snapshot's removal outlived the commit (WF-3a); one still there after a successful
command is left behind (CLN-NO-MOUNT-LEFT). A mount made and removed between two looks is
not seen: the looks sample the folder every ``_wire.WATCH_SECONDS``, around every command and
at its end.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vcbsim.simulator import Event

__all__ = ["ProxyFolder", "Look", "FolderVerdict", "mounts_under", "judge_looks", "junction_problem"]


def mounts_under(root: Path) -> set[str]:
    """The mounts under ``root`` now, as paths relative to it (``vm-fullVM``, ``vm/letters/C``)."""
    out: set[str] = set()
    try:
        entries = list(root.iterdir())
    except OSError:
        return out
    for d in entries:
        if d.name.startswith(".") or not d.is_dir():
            continue
        letters = d / "letters"
        if letters.is_dir():
            out.update(f"{d.name}/letters/{x.name}" for x in letters.iterdir())
            if not any(letters.iterdir()):
                out.add(d.name)
        else:
            out.add(d.name)
    return out


@dataclass(slots=True)
class ProxyFolder:
    """Observations of one mount root: when each mount was first seen and when it was gone
    (event sequence numbers of the observation points)."""

    root: Path
    present: set[str] = field(default_factory=set)
    first_seen: dict[str, int] = field(default_factory=dict)
    gone_at: dict[str, int] = field(default_factory=dict)
    #: observation points so far (an occasion count)
    looks: int = 0

    def observe(self, seq: int) -> None:
        """Look at the folder at event ``seq``."""
        self.looks += 1
        now = mounts_under(self.root)
        for path in now - self.present:
            self.first_seen[path] = seq
            self.gone_at.pop(path, None)
        for path in self.present - now:
            self.gone_at[path] = seq
        self.present = now

    def since(self, seq: int) -> list[str]:
        """Mounts that appeared at or after event ``seq`` (gone or not), in order."""
        return sorted((p for p, s in self.first_seen.items() if s >= seq), key=lambda p: (self.first_seen[p], p))

    def display(self, path: str) -> str:
        return str(self.root / path)


def junction_problem(path: str, letters: Iterable[str], letterless: bool) -> tuple[str, str] | None:
    """``(rule, why)`` when the ``letters\\<X>`` mount ``path`` is not named after a drive letter of
    the VM (``letters``, e.g. ``{"C", "D"}``): a name that is no letter at all, on a VM with a
    letterless volume, is that volume mounted under ``letters\\`` (FILE-NO-LETTERLESS, seed
    file-level step 1: the junctions are named after drive letters); any other is FILE-JUNCTION."""
    known = {str(x).upper().rstrip(":") for x in letters}
    name = path.rsplit("/", 1)[-1]
    if name.upper() in known:
        return None
    if not (len(name) == 1 and name.isalpha()) and letterless:
        return ("FILE-NO-LETTERLESS", f"a volume without a drive letter mounted under letters\\ (the junctions there "
                f"are named after drive letters: {', '.join(sorted(known))})")
    return ("FILE-JUNCTION", f"{name!r} is not a drive letter of the VM's volumes ({', '.join(sorted(known))}); "
            "each volume is mounted at letters\\<its drive letter>")


@dataclass(slots=True)
class Look:
    """One look at the mount root over the wire: what was there, and how many of the job's host
    events the kit had read before it (``before``) and by the next read (``after``; ``None``
    until that read)."""

    present: frozenset[str]
    before: int
    after: int | None = None


@dataclass(frozen=True, slots=True)
class FolderVerdict:
    """What the looks of one job prove: the mounts the job made, the occasions per rule, and
    the first violation (``rule``, ``why``, the host event that witnesses it), if any."""

    mounts: tuple[str, ...]
    occasions: dict[str, int]
    violation: tuple[str, str, Event | None] | None = None


def judge_looks(root: Path, looks: Sequence[Look], host: Sequence[Event], moref: str | None, *, ok: bool,
                vm: str) -> FolderVerdict:
    """Judge one job of ``vm`` (``moref``) from its ``looks`` at ``root`` (the first one taken
    before the command ran) and the host events read while it ran (``host``, in order). ``ok``:
    the job reported success (CLN-NO-MOUNT-LEFT applies to successful jobs only, as in process)."""
    if not looks:
        return FolderVerdict((), {})
    baseline = looks[0].present
    mine: list[str] = []
    for lk in looks[1:]:
        mine += sorted(p for p in lk.present - baseline if p not in mine)
    counts: dict[str, int] = {}

    def count(rule: str) -> None:
        counts[rule] = counts.get(rule, 0) + 1

    def first(kind: str, upto: int | None) -> Event | None:
        for e in host[: len(host) if upto is None else upto]:
            if e.kind == kind and e.vm == moref:
                return e
        return None

    created = {str(e.details.get("snapshot")) for e in host if e.kind == "snapshot.create" and e.vm == moref}

    def removal(upto: int | None) -> Event | None:
        """The removal of a snapshot the job made (a stale one it cleaned up first is none)."""
        for e in host[: len(host) if upto is None else upto]:
            if e.kind == "snapshot.remove" and e.vm == moref and str(e.details.get("snapshot")) in created:
                return e
        return None

    violation: tuple[str, str, Event | None] | None = None
    made = first("snapshot.create", None)
    for path in mine:
        shown = root / path
        count("WF-1f")
        seen = [lk for lk in looks[1:] if path in lk.present]
        early = next((lk for lk in seen if lk.after is not None and first("snapshot.create", lk.after) is None), None)
        if early is not None and violation is None:
            why = (f"{shown} was on the proxy while the host had not yet made the backup snapshot of {vm} (the kit "
                   "read the host's trace after seeing the folder: no snapshot yet); a mount or export exposes the "
                   "snapshot, so it comes after it (step 1f)")
            violation = ("WF-1f", why, made)
        if removal(None) is not None:
            count("WF-3a")
        late = next((lk for lk in seen if removal(lk.before) is not None), None)
        if late is not None and violation is None:
            rm = removal(late.before)
            why = (f"{shown} was still on the proxy after the host removed the backup snapshot of {vm} (host event "
                   f"#{rm.seq if rm else '?'}, read before the kit looked); the mounts go before the commit (step 3a "
                   "before 3b), whatever the product announced")
            violation = ("WF-3a", why, rm)
        if ok:
            count("CLN-NO-MOUNT-LEFT")
            if path in looks[-1].present and violation is None:
                why = (f"the job of {vm} reported success, but {shown}, which it mounted, is still on the proxy after "
                       "the command ended; a job leaves no mount behind (steps 3a, F16)")
                violation = ("CLN-NO-MOUNT-LEFT", why, None)
    return FolderVerdict(tuple(mine), counts, violation)
