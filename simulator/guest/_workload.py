"""A seeded guest workload: the writes, overwrites and deletes a busy guest does during a backup.

``Workload(fs, random, clock)`` drives a ``GuestFileSystem``: each ``step()`` creates, overwrites
or deletes one file under ``root`` (``C:\\workload`` or ``/workload`` by default), advances the
virtual clock a little, and records what happened. ``expected`` maps every path the workload
touched to the sha256 of its current content, or ``None`` if it was deleted, so a test can check
"after commit the disk holds every write" and "the snapshot holds the files as of the snapshot".
The same seed gives the same operations; trace events come from ``GuestFileSystem`` itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .._clock import VirtualClock
from .._random import SimRandom
from ._filesystem import GuestFileSystem

__all__ = ["Workload", "WorkloadOp"]


@dataclass(frozen=True, slots=True)
class WorkloadOp:
    """One thing the workload did: ``kind`` is ``write`` (create or overwrite) or ``delete``."""

    kind: str
    path: str
    size: int = 0
    sha256: str | None = None


class Workload:
    """Seeded file activity on a guest (see the module docstring)."""

    def __init__(
        self,
        fs: GuestFileSystem,
        random: SimRandom,
        clock: VirtualClock | None = None,
        *,
        root: str | None = None,
        max_size: int = 64 * 1024,
        max_files: int = 40,
        step_seconds: tuple[float, float] = (0.5, 5.0),
    ) -> None:
        self.fs = fs
        self.random = random
        self.clock = clock
        self.root = root or ("C:\\workload" if fs.os_family == "windows" else "/workload")
        self.max_size = max_size
        self.max_files = max_files
        self.step_seconds = step_seconds
        self.sep = "\\" if fs.os_family == "windows" else "/"
        self.ops: list[WorkloadOp] = []
        self.expected: dict[str, str | None] = {}
        self._live: list[str] = []
        self.fs.mkdir(self.root, parents=True, exist_ok=True)
        self._dirs = [self.root, self.root + self.sep + "Sub Dir", self.root + self.sep + "logs.d"]
        for d in self._dirs[1:]:
            self.fs.mkdir(d, parents=True, exist_ok=True)

    def _payload(self, path: str) -> bytes:
        size = self.random.randint(0, self.max_size)
        head = f"{path} #{len(self.ops)}\n".encode()
        return (head + self.random.randbytes(max(0, size - len(head))))[:size] if size else b""

    def step(self) -> WorkloadOp:
        """Do one operation and return it."""
        r = self.random
        if self.clock is not None:
            self.clock.advance(r.uniform(*self.step_seconds))
        choice = r.random()
        if self._live and (choice < 0.2 or len(self._live) >= self.max_files):
            path = self._live.pop(r.randrange(len(self._live)))
            self.fs.delete(path)
            op = WorkloadOp("delete", path)
            self.expected[path] = None
        else:
            if self._live and choice < 0.5:
                path = r.choice(self._live)
            else:
                name = f"file-{len(self.ops):04d}-{r.hex_id(3)}" + r.choice(
                    [".txt", ".dat", ".log", " copy.bin", ""]
                )
                path = r.choice(self._dirs) + self.sep + name
                self._live.append(path)
            data = self._payload(path)
            self.fs.write_bytes(path, data)
            digest = hashlib.sha256(data).hexdigest()
            op = WorkloadOp("write", path, len(data), digest)
            self.expected[path] = digest
        self.ops.append(op)
        return op

    def run(self, steps: int) -> dict[str, str | None]:
        """Do ``steps`` operations; return what each touched path should now hold."""
        for _ in range(steps):
            self.step()
        return dict(self.expected)

    def verify(
        self,
        fs: GuestFileSystem | None = None,
        expected: dict[str, str | None] | None = None,
    ) -> list[str]:
        """Paths whose content in ``fs`` differs from ``expected``.

        Defaults: the live file system and the workload's current ``expected``; pass the
        result of an earlier ``run`` and a snapshot's file system to check a snapshot.
        """
        fs = fs or self.fs
        want = self.expected if expected is None else expected
        bad = []
        for path, digest in want.items():
            if digest is None:
                if fs.exists(path):
                    bad.append(path)
            elif not fs.is_file(path) or hashlib.sha256(fs.read_bytes(path)).hexdigest() != digest:
                bad.append(path)
        return bad
