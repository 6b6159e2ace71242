"""Broken incremental image backups: the reference proxy with one defect in how it takes the
changed areas of an incremental or differential image backup (changed block tracking,
``vcbsim.reference._cbt``).

Each mutant is a ``BackupProxy`` subclass run through ``ReferenceOrchestrator(proxy_factory)``,
so it declares every image level and is asked for them on a host with changed block tracking
(``esxi-7.0``). The backups it stores look fine (the job succeeds, the trace is in order); only
the image restored through the chain differs from the disks as of the snapshot, which the kit's
IMG-LEVEL-CONTENT data check catches. ``image_level_mutant(name)`` is an orchestrator factory
for ``run()``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vcbsim.conformance import ReferenceOrchestrator
from vcbsim.reference import BackupProxy


class StoresOneAreaTooFew(BackupProxy):
    """Of the first disk with changed areas, the last changed area is neither exported nor stored."""

    def plan_image(self, vm: Any, result: Any, catalog: Any, *, enabled_now: bool = False) -> Any:
        plan = super().plan_image(vm, result, catalog, enabled_now=enabled_now)
        if plan.level == "full":
            return plan
        for key, disk in sorted(plan.disks.items()):
            if disk.areas:
                return replace(plan, disks={**plan.disks, key: replace(disk, areas=disk.areas[:-1])})
        return plan


class _AsksSinceTheNewSnapshot:
    """The host client, except that QueryChangedDiskAreas is asked with the change id each disk
    has at the *new* snapshot instead of the one the reference backup recorded."""

    def __init__(self, client: Any, vm: Any, snapshot_id: str) -> None:
        self._client = client
        self._ids = client.disk_change_ids(vm.moref, snapshot_id)

    def query_changed_areas(self, moref: str, snapshot_id: str, key: int, start: int, since: str) -> Any:
        return self._client.query_changed_areas(moref, snapshot_id, key, start, self._ids.get(key, since))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class QueriesWithTheWrongChangeId(BackupProxy):
    """Asks the host for the areas changed since the new snapshot's own change id (so: none)."""

    def plan_image(self, vm: Any, result: Any, catalog: Any, *, enabled_now: bool = False) -> Any:
        real = self.client
        self.client = _AsksSinceTheNewSnapshot(real, vm, result.snapshot_id)
        try:
            return super().plan_image(vm, result, catalog, enabled_now=enabled_now)
        finally:
            self.client = real


IMAGE_LEVEL_MUTANTS: dict[str, type[BackupProxy]] = {
    "incremental-stores-one-changed-area-too-few": StoresOneAreaTooFew,
    "incremental-queries-with-the-wrong-change-id": QueriesWithTheWrongChangeId,
}


def image_level_mutant(name: str) -> type[ReferenceOrchestrator]:
    """An orchestrator factory class for ``run()``: the reference with mutant ``name``'s proxy,
    importable by name (``ReferenceProxy_incremental_...``) so a printed regression test runs."""
    proxy = IMAGE_LEVEL_MUTANTS[name]

    class Mutant(ReferenceOrchestrator):
        def __init__(self) -> None:
            super().__init__(lambda client, root: proxy(client, root), name=f"reference+{name}")

    Mutant.__qualname__ = Mutant.__name__ = "ReferenceProxy_" + name.replace("-", "_")
    globals()[Mutant.__name__] = Mutant
    return Mutant
