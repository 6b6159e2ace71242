"""Proxies that mishandle the disks a snapshot does not cover (independent disks, physical
RDMs; ``vcbsim.conformance._check_disks``).

Each is the reference proxy with one defect, run through ``ReferenceOrchestrator``:

- ``exports-disks-no-snapshot-covers``: sees every disk as a plain persistent one (it ignores
  ``diskMode`` and the RDM mode), so its image backup holds the independent disk and the
  physical RDM as they are live: IMG-NO-UNSNAPSHOTTED (MUST NOT).
- ``leaves-out-disks-silently``: leaves them out as the reference does but does not say which
  (``JobResult.details["excluded_disks"]``): IMG-SAYS-UNSNAPSHOTTED (SHOULD, a warning).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vcbsim.conformance import JobResult, ReferenceOrchestrator
from vcbsim.reference import BackupProxy


class _SeesNoDiskModes:
    """The host client, except that every disk it reports is a plain persistent virtual disk."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _plain(self, info: Any) -> Any:
        return replace(info, disks=tuple(replace(d, disk_mode="persistent", rdm=None) for d in info.disks))

    def find_vm(self, selector: str) -> Any:
        return self._plain(self._client.find_vm(selector))

    def vm_info(self, moref: str) -> Any:
        return self._plain(self._client.vm_info(moref))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class ExportsDisksNoSnapshotCovers(ReferenceOrchestrator):
    def __init__(self) -> None:
        super().__init__(lambda client, root: BackupProxy(_SeesNoDiskModes(client), root),
                         name="reference+exports-disks-no-snapshot-covers")


class LeavesOutDisksSilently(ReferenceOrchestrator):
    def __init__(self) -> None:
        super().__init__(name="reference+leaves-out-disks-silently")

    def backup(self, host: Any, vm_name: str, policy: Any) -> JobResult:
        r = super().backup(host, vm_name, policy)
        return replace(r, details={k: v for k, v in r.details.items() if k != "excluded_disks"})
