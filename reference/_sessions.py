"""The proxy's crash-session store: what a run had started, so that the next run finds what
a killed one left (F16 in the seed's failure list).

One JSON file per VM under ``<root>/.vcb-sessions``, replaced atomically at each state change
(``pre-backup``, ``snapshot``, ``exposing``, ``exposed``/``mounted``, ``unmounted``) and removed
when the run ends clean. It names only what this proxy made (its export or mount directory, the
snapshot id), so cleanup never removes a directory the proxy did not create.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vcbsim.simulator import StateError

if TYPE_CHECKING:
    from ._client import VMInfo
    from ._outcome import RunOutcome

__all__ = ["SESSIONS_DIR", "SessionStore", "force_remove"]

#: The session folder under the proxy's root.
SESSIONS_DIR = ".vcb-sessions"


def force_remove(path: Path) -> None:
    """Remove a proxy directory tree even where the mount made it read-only."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_file() or path.is_symlink():
        path.unlink()
        return
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), stat.S_IRWXU)
    os.chmod(path, stat.S_IRWXU)
    shutil.rmtree(path)


class SessionStore:
    """The session records of the proxy whose working directory is ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def file(self, vm_name: str) -> Path:
        return self.root / SESSIONS_DIR / f"{vm_name}.json"

    def save(self, vm: VMInfo, state: str, result: RunOutcome) -> None:
        """Record that the run of ``vm`` reached ``state`` (atomic: a kill leaves the old
        record or the new one)."""
        p = self.file(vm.name)
        p.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "vm": vm.name,
            "moref": vm.moref,
            "uuid": vm.uuid,
            "type": result.type,
            "state": state,
            "snapshot_id": result.snapshot_id,
            "path": result.path,
            "letters": result.letters,
            "started": result.started,
            "disks": len(vm.disks),
        }
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, p)

    def get(self, vm_name: str) -> dict[str, Any] | None:
        p = self.file(vm_name)
        if not p.is_file():
            return None
        return json.loads(p.read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    def all(self) -> list[dict[str, Any]]:
        d = self.root / SESSIONS_DIR
        if not d.is_dir():
            return []
        return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(d.glob("*.json"))]

    def drop(self, vm_name: str) -> None:
        self.file(vm_name).unlink(missing_ok=True)

    def find(self, target: str | Path | VMInfo) -> dict[str, Any]:
        """The one session of a VM, or of the mount path ``target``; ``StateError`` naming
        what is mounted otherwise."""
        from ._client import VMInfo

        sessions = self.all()
        if isinstance(target, VMInfo):
            found = [s for s in sessions if s["moref"] == target.moref]
        else:
            want = Path(target).resolve()
            found = [s for s in sessions if s.get("path") and Path(s["path"]).resolve() == want]
        if len(found) != 1:
            known = [str(s.get("path")) for s in sessions]
            msg = f"nothing mounted at {target}; mounted: {', '.join(known) or 'nothing'}"
            raise StateError(msg, known=known)
        return found[0]
