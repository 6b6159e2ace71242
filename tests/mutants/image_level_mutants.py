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


class _ReadsTheVmxFiltered:
    """The host client, except that the ``.vmx`` it reads loses ``drop`` lines and has
    ``rewrite`` values replaced: a proxy that "cleans up" the configuration it backs up."""

    def __init__(self, client: Any, drop: tuple[str, ...], rewrite: dict[str, str]) -> None:
        self._client = client
        self._drop = drop
        self._rewrite = rewrite

    def read_vmx(self, moref: str) -> str:
        out = []
        for line in self._client.read_vmx(moref).splitlines(keepends=True):
            key = line.split("=", 1)[0].strip()
            if key.startswith(self._drop):
                continue
            out.append(f'{key} = "{self._rewrite[key]}"\n' if key in self._rewrite else line)
        return "".join(out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class DropsTheNetworkFromTheVmx(BackupProxy):
    """Backs up a ``.vmx`` without its network adapter (the ``ethernet0.*`` lines)."""

    def __init__(self, client: Any, root: Any, **kw: Any) -> None:
        super().__init__(_ReadsTheVmxFiltered(client, ("ethernet0.",), {}), root, **kw)


class RewritesTheMemorySize(BackupProxy):
    """Backs up a ``.vmx`` whose ``memsize`` is a "default" 512 MB, not the VM's."""

    def __init__(self, client: Any, root: Any, **kw: Any) -> None:
        super().__init__(_ReadsTheVmxFiltered(client, (), {"memsize": "512"}), root, **kw)


#: proxies whose image backups restore to another configuration than the VM's (IMG-CONFIG)
CONFIG_MUTANTS: dict[str, type[BackupProxy]] = {
    "backs-up-the-vmx-without-its-network": DropsTheNetworkFromTheVmx,
    "rewrites-the-memory-size-in-the-vmx": RewritesTheMemorySize,
}

IMAGE_LEVEL_MUTANTS: dict[str, type[BackupProxy]] = {
    "incremental-stores-one-changed-area-too-few": StoresOneAreaTooFew,
    "incremental-queries-with-the-wrong-change-id": QueriesWithTheWrongChangeId,
}


def image_level_mutant(name: str) -> type[ReferenceOrchestrator]:
    """An orchestrator factory class for ``run()``: the reference with mutant ``name``'s proxy,
    importable by name (``ReferenceProxy_incremental_...``) so a printed regression test runs."""
    proxy = IMAGE_LEVEL_MUTANTS.get(name) or CONFIG_MUTANTS[name]

    class Mutant(ReferenceOrchestrator):
        def __init__(self) -> None:
            super().__init__(lambda client, root: proxy(client, root), name=f"reference+{name}")

    Mutant.__qualname__ = Mutant.__name__ = "ReferenceProxy_" + name.replace("-", "_")
    globals()[Mutant.__name__] = Mutant
    return Mutant


class RestoresThePreviousFileBackup(ReferenceOrchestrator):
    """Its file-level restore gives the files of the backup *before* the one asked for (an
    off-by-one in the restore's catalog lookup); what the jobs report is right, so only a kit
    that reads the restore itself sees it."""

    def __init__(self) -> None:
        super().__init__(name="reference+restores-the-previous-file-backup")

    def restore(self, host: Any, vm_name: str, backup_id: str, target: Any) -> None:
        bid = int(backup_id)
        earlier = [b.id for b in self._catalog.backups(vm_name) if b.kind != "image" and b.id < bid]
        super().restore(host, vm_name, str(earlier[-1] if earlier else bid), target)


class _LeavesTheFolder(BackupProxy):
    """Announces its unmount (WF-3a ``unmount`` events) but removes nothing from the proxy."""

    def post_backup(self, vm: Any, result: Any) -> None:
        import vcbsim.reference._workflow as workflow

        real = workflow.force_remove
        workflow.force_remove = lambda path: None  # the unmount "succeeds" and leaves the folder
        try:
            super().post_backup(vm, result)
        finally:
            workflow.force_remove = real


class AnnouncesTheUnmountButLeavesTheFolder(ReferenceOrchestrator):
    """The kit looks at the proxy's mount root (``mount_root``): the folders stay."""

    def __init__(self) -> None:
        super().__init__(lambda client, root: _LeavesTheFolder(client, root),
                         name="reference+announces-the-unmount-but-leaves-the-folder")


class _QuietTrace:
    """A trace that drops the product's ``mount`` and ``unmount`` announcements."""

    def __init__(self, trace: Any) -> None:
        self._trace = trace

    def emit(self, actor: str, event: str, /, *args: Any, **kw: Any) -> Any:
        if actor == "proxy" and event in ("mount", "unmount"):
            return None
        return self._trace.emit(actor, event, *args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trace, name)

    def __iter__(self) -> Any:
        return iter(self._trace)

    def __len__(self) -> int:
        return len(self._trace)


class _QuietClient:
    def __init__(self, client: Any) -> None:
        self._client = client
        self.trace = _QuietTrace(client.trace)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class NeverAnnouncesMounts(ReferenceOrchestrator):
    """A correct variant: mounts and unmounts exactly as the reference does, but records no
    ``mount`` / ``unmount`` events; the kit judges its mounts from the folder it declares."""

    def __init__(self) -> None:
        super().__init__(lambda client, root: BackupProxy(_QuietClient(client), root),
                         name="reference+never-announces-mounts")
