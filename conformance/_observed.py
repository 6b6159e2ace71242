"""The proxy's file system as the kit sees it, not as the product announces it.

A product that mounts (file level: a folder with ``letters\\<X>`` junctions, seed file-level
step 1) or exports (image level) writes folders under its *mount root*; it declares that folder
with an attribute ``mount_root`` (a path; ``ReferenceOrchestrator`` has one). The kit then looks
at the folder itself at the moments that matter (every event the product records, and the
host's snapshot creation and removal) and judges what appears and disappears there, whatever
the product's ``mount`` / ``unmount`` events say:

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

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ProxyFolder", "mounts_under"]


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
