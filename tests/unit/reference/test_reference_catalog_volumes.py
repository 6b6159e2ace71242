"""``Catalog.file_backup`` over snapshot volumes: metadata first, content where it cannot vouch."""

from __future__ import annotations

from pathlib import Path

import pytest

from vcbsim.reference import Catalog
from vcbsim.reference._client import GuestFile
from vcbsim.simulator import InvalidInputError


class Volume:
    """An in-memory volume: ``{path: (bytes, mtime)}``; counts content reads."""

    def __init__(self, files: dict[str, tuple[bytes, float]]) -> None:
        self.files = files
        self.reads: list[str] = []

    def walk(self) -> list[GuestFile]:
        dirs = sorted({p.rpartition("/")[0] for p in self.files if "/" in p})
        return [GuestFile(d, True, 0, 0.0) for d in dirs] + [
            GuestFile(p, False, len(b), t) for p, (b, t) in sorted(self.files.items())
        ]

    def read_bytes(self, path: str) -> bytes:
        self.reads.append(path)
        return self.files[path][0]


def backup(cat: Catalog, vol: Volume, kind: str, snap: float, **kw: object) -> int:
    rec = cat.file_backup(vm_name="w", vm_uuid="u", kind=kind, volumes={"C": vol}, snapshot_time=snap,
                          now=lambda: snap, **kw)  # type: ignore[arg-type]
    assert rec.status == "complete"
    return rec.id


def test_metadata_vouches_only_outside_the_mtime_window(tmp_path: Path) -> None:
    vol = Volume({"a": (b"a1", 100.0), "d/b": (b"b1", 100.0), "late": (b"l1", 199.0)})
    cat = Catalog(tmp_path / "m")
    full = backup(cat, vol, "full", 200.0)
    assert sorted(vol.reads) == ["a", "d/b", "late"] and len(cat.copied_paths(full)) == 3
    vol.reads.clear()
    vol.files["d/b"] = (b"b2", 300.0)  # metadata changed: read, copied
    vol.files["late"] = (b"l2", 199.0)  # same size and mtime, but 1 s before the snapshot: racy
    inc = backup(cat, vol, "incremental", 400.0)
    assert sorted(vol.reads) == ["d/b", "late"]  # "a" was never read
    assert cat.copied_paths(inc) == ["C:\\d\\b", "C:\\late"]
    assert cat.entries(inc)["c:\\a"].stored_in == full
    vol.reads.clear()
    inc2 = backup(cat, vol, "incremental", 500.0, verify="content")
    assert sorted(vol.reads) == ["a", "d/b", "late"] and cat.copied_paths(inc2) == []


def test_source_and_verify_are_checked_with_one_clear_error(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "m")
    vol = Volume({})
    with pytest.raises(InvalidInputError, match="either volumes="):
        cat.file_backup(vm_name="w", vm_uuid="u", kind="full", snapshot_time=1, now=lambda: 1.0)
    with pytest.raises(InvalidInputError, match="either volumes="):
        cat.file_backup(vm_name="w", vm_uuid="u", kind="full", volumes={"C": vol}, letters={"C": tmp_path},
                        snapshot_time=1, now=lambda: 1.0)
    with pytest.raises(InvalidInputError, match="'metadata' or 'content'"):
        cat.file_backup(vm_name="w", vm_uuid="u", kind="full", volumes={"C": vol}, snapshot_time=1,
                        now=lambda: 1.0, verify="sometimes")  # type: ignore[arg-type]
    assert cat.backups() == []
