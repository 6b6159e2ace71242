"""Script discovery and order per layout (spec R19-R23, seed Table 2-3)."""

from __future__ import annotations

import pytest

from vcbsim.simulator import InvalidInputError
from vcbsim.simulator.tools import (
    MemoryGuestFiles,
    default_scripts_dir,
    discover_scripts,
    legacy_paths,
)

WIN_DIR = "C:\\Program Files\\VMware\\VMware Tools\\backupScripts.d"


def _win(*names: str, pre: bool = True, post: bool = True) -> MemoryGuestFiles:
    f = MemoryGuestFiles("windows")
    f.mkdir(WIN_DIR, parents=True)
    f.mkdir("C:\\Windows")
    for n in names:
        f.write_bytes(WIN_DIR + "\\" + n, b"")
    if pre:
        f.write_bytes("C:\\Windows\\pre-freeze-script.bat", b"")
    if post:
        f.write_bytes("C:\\Windows\\post-thaw-script.bat", b"")
    return f


def test_byte_order_and_legacy_slot_first() -> None:
    plan = discover_scripts(_win("a.bat", "B.bat", "2-b.bat", "10-a.bat"), "scripts.d")
    assert [e.path.rsplit("\\", 1)[1] for e in plan.entries] == [
        "pre-freeze-script.bat", "10-a.bat", "2-b.bat", "B.bat", "a.bat",
    ]
    assert plan.has_legacy_slot
    freeze = [p.rsplit("\\", 1)[1] for _, p in plan.order("freeze")]
    thaw = [p.rsplit("\\", 1)[1] for _, p in plan.order("thaw")]
    assert freeze == ["pre-freeze-script.bat", "10-a.bat", "2-b.bat", "B.bat", "a.bat"]
    assert thaw == ["a.bat", "B.bat", "2-b.bat", "10-a.bat", "post-thaw-script.bat"]
    assert [i for i, _ in plan.order("freezeFail", below=3)] == [2, 1, 0]


def test_legacy_layout_ignores_the_directory() -> None:
    plan = discover_scripts(_win("a.bat"), "legacy")
    assert [e.path for e in plan.entries] == ["C:\\Windows\\pre-freeze-script.bat"]
    assert plan.directory is None


def test_slot_kept_when_only_post_thaw_exists_and_absent_when_neither() -> None:
    plan = discover_scripts(_win("x.bat", pre=False), "scripts.d")
    assert plan.has_legacy_slot and plan.entries[0].path_for("thaw").endswith("post-thaw-script.bat")
    plan = discover_scripts(_win("x.bat", pre=False, post=False), "scripts.d")
    assert not plan.has_legacy_slot and len(plan.entries) == 1


def test_subdirectories_are_ignored_and_missing_directory_is_fine() -> None:
    f = _win("a.bat", pre=False, post=False)
    f.mkdir(WIN_DIR + "\\sub")
    f.write_bytes(WIN_DIR + "\\sub\\inner.bat", b"")
    assert [e.path for e in discover_scripts(f, "scripts.d").entries] == [WIN_DIR + "\\a.bat"]
    assert discover_scripts(MemoryGuestFiles("windows"), "scripts.d").entries == ()


def test_linux_directory_is_case_sensitive_byte_order() -> None:
    f = MemoryGuestFiles("linux")
    for n in ("b", "B", "a", "_x", "10"):
        f.write_bytes("/etc/vmware-tools/backupScripts.d/" + n, b"", parents=True)
    plan = discover_scripts(f, "scripts.d")
    assert [e.path.rsplit("/", 1)[1] for e in plan.entries] == ["10", "B", "_x", "a", "b"]


def test_directory_override_and_defaults() -> None:
    f = MemoryGuestFiles("linux")
    f.write_bytes("/etc/vmware-tools/backupScripts.d/s", b"", parents=True)
    assert discover_scripts(f, "scripts.d", scripts_dir="").entries == ()
    assert default_scripts_dir("linux") == "/etc/vmware-tools/backupScripts.d"
    assert default_scripts_dir("windows", "D:\\Tools\\") == "D:\\Tools\\backupScripts.d"
    assert default_scripts_dir("windows", None) is None
    assert legacy_paths("linux") == ("/usr/sbin/pre-freeze-script", "/usr/sbin/post-thaw-script")
    with pytest.raises(InvalidInputError):
        discover_scripts(f, "modern")
