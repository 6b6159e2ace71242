"""Broken transports: the reference proxy reading through an export lease or hot-added disks,
with the release moved after the commit (seed 3a after 3b).

Each mutant is a ``BackupProxy`` subclass run through ``ReferenceOrchestrator(proxy_factory,
transport=...)``, so it declares its transport and the kit judges the TR-* rule of it. On the
host the defect fails the commit (an export lease blocks it with TaskInProgress; a hot-added
base disk is locked, FileLocked); the trace shows the commit begun while the lease was live or
the disk attached, which names the rule. ``transport_mutant(name)`` is an orchestrator factory
for ``run()``, importable by name so a printed regression test runs.
"""

from __future__ import annotations

from typing import Any

from vcbsim.conformance import ReferenceOrchestrator
from vcbsim.reference import BackupProxy


class _ReleasesAfterTheCommit(BackupProxy):
    """WF-3a leaves the lease / the attached disks alone; they are released only after WF-3b."""

    def _detach(self, vm: Any, result: Any) -> None:
        pass

    def post_backup(self, vm: Any, result: Any) -> None:
        super().post_backup(vm, result)
        source = self._sources.pop(vm.moref, None)
        if source is not None and not source.released:
            source.release(result.failed_step is None)


class CompletesTheLeaseAfterTheCommit(_ReleasesAfterTheCommit):
    pass


class DetachesAfterTheCommit(_ReleasesAfterTheCommit):
    pass


#: name -> (proxy class, transport, host profile, the rule it breaks)
TRANSPORT_MUTANTS: dict[str, tuple[type[BackupProxy], str, str, str]] = {
    "completes-the-nfc-lease-after-the-commit": (CompletesTheLeaseAfterTheCommit, "nfc", "esxi-7.0",
                                                 "TR-NFC-LEASE-END"),
    "detaches-hot-added-disks-after-the-commit": (DetachesAfterTheCommit, "hotadd", "esx-3.5u2",
                                                  "TR-HOTADD-DETACH"),
}


def transport_mutant(name: str) -> type[ReferenceOrchestrator]:
    proxy, transport, _profile, _rule = TRANSPORT_MUTANTS[name]

    class Mutant(ReferenceOrchestrator):
        def __init__(self) -> None:
            super().__init__(lambda client, root: proxy(client, root, transport=transport),
                             name=f"reference+{name}", transport=transport)

    Mutant.__qualname__ = Mutant.__name__ = "ReferenceProxy_" + name.replace("-", "_")
    globals()[Mutant.__name__] = Mutant
    return Mutant
