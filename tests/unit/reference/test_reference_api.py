"""The public surface of ``vcbsim.reference`` is pinned: changing it is a deliberate act."""

from __future__ import annotations

import vcbsim.reference as ref
from vcbsim.reference._cli import _progress, build_parser


def test_public_names_are_pinned() -> None:
    assert sorted(ref.__all__) == sorted(
        [
            "BACKUP_KINDS", "EXIT_CODES", "SNAPSHOT_NAME", "BackupProxy", "BackupRecord", "BackupRun",
            "BlobStore", "BlockReader", "Catalog", "ChangeTracking", "CorruptBlobError", "DiskInfo", "FileEntry", "FileMount",
            "GuestFile", "HostClient", "ImageExport", "ImageFile", "InProcessHostClient", "Job",
            "JobRun", "JobScheduler", "RunOutcome", "Schedule", "SnapshotInfo", "StepOutcome", "UnsupportedGuestError",
            "VMInfo", "VSphereHostClient", "VolumeInfo", "VolumeReader", "export_image", "main", "mount_files", "parse_selector",
            "read_export_catalog", "select_changed",
        ]
    )  # fmt: skip
    for name in ref.__all__:
        assert getattr(ref, name) is not None
    assert ref.SNAPSHOT_NAME == "_VCB-BACKUP_"


def test_selector_parsing() -> None:
    import pytest

    from vcbsim.simulator import InvalidInputError

    assert ref.parse_selector("ipaddr:10.0.0.1") == ("ipaddr", "10.0.0.1")
    assert ref.parse_selector("name:a:b") == ("name", "a:b")
    for bad in ("vm1", "host:vm1", "name:", ""):
        with pytest.raises(InvalidInputError, match="name:"):
            ref.parse_selector(bad)


def test_cli_parser_and_progress_bar() -> None:
    args = build_parser().parse_args(["mount", "-a", "name:x", "-t", "file", "-m", "san"])
    assert (args.verb, args.selector, args.type, args.transport) == ("mount", "name:x", "file", "san")
    with _progress(True) as update:
        assert update is not None
        update("copy", 10, 100)
        update("copy", 90, 100)
    with _progress(False) as none:
        assert none is None
