"""The reference VCB backup proxy.

The proxy runs the documented VCB workflow (``docs/seed/vcb-workflow.txt``) against any host
reached through the ``HostClient`` seam: pre-backup (the quiesced ``_VCB-BACKUP_`` snapshot),
exposure (image export or file-level mount), backup to a medium (a SQLite catalog plus a
content-addressed store; full, differential and incremental file backups; full image
backups, and incremental/differential ones with changed block tracking, ``_cbt.py``),
post-backup (unmount, commit), restore, scheduled jobs, and ``vcbMounter``-style CLI verbs.

.. versionadded:: 0.1.0
"""

from vcbsim.simulator._compat import deprecated_names

from ._catalog import BACKUP_KINDS, BackupRecord, Catalog, FileEntry, ImageFile, select_changed
from ._cli import EXIT_CODES, main
from ._client import (
    BlockReader,
    ChangeTracking,
    DiskInfo,
    GuestFile,
    HostClient,
    InProcessHostClient,
    SnapshotInfo,
    VMInfo,
    VolumeInfo,
    VolumeReader,
    parse_selector,
)
from ._filelevel import FileMount, UnsupportedGuestError, mount_files
from ._image import ImageExport, export_image, read_export_catalog
from ._jobs import Job, JobRun, JobScheduler, Schedule
from ._run import BackupRun
from ._store import BlobStore, CorruptBlobError
from ._vsphere import VSphereHostClient
from ._workflow import SNAPSHOT_NAME, BackupProxy, RunOutcome, StepOutcome

__all__ = [
    "BACKUP_KINDS",
    "EXIT_CODES",
    "SNAPSHOT_NAME",
    "BackupProxy",
    "BackupRecord",
    "BackupRun",
    "BlobStore",
    "BlockReader",
    "Catalog",
    "ChangeTracking",
    "CorruptBlobError",
    "DiskInfo",
    "FileEntry",
    "FileMount",
    "GuestFile",
    "HostClient",
    "ImageExport",
    "ImageFile",
    "InProcessHostClient",
    "Job",
    "JobRun",
    "JobScheduler",
    "RunOutcome",
    "Schedule",
    "SnapshotInfo",
    "StepOutcome",
    "UnsupportedGuestError",
    "VMInfo",
    "VSphereHostClient",
    "VolumeInfo",
    "VolumeReader",
    "export_image",
    "main",
    "mount_files",
    "parse_selector",
    "read_export_catalog",
    "select_changed",
]

# One name per concept: vcbsim.conformance.JobResult is what an orchestrator reports about a
# job; the reference proxy's own record of one run is RunOutcome. The old name: one release.
__getattr__ = deprecated_names(__name__, {"JobResult": ("RunOutcome", RunOutcome)})
