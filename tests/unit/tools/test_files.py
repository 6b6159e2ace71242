"""The in-memory guest files used by the Tools tests (and the REPL)."""

from __future__ import annotations

import pytest

from vcbsim.simulator import InvalidInputError, NotFoundError
from vcbsim.simulator.tools import GuestFiles, MemoryGuestFiles


def test_satisfies_the_protocol() -> None:
    assert isinstance(MemoryGuestFiles("linux"), GuestFiles)


def test_windows_paths_are_case_insensitive_and_case_preserving() -> None:
    f = MemoryGuestFiles("windows")
    f.write_bytes("C:\\Dir\\Sub\\File.TXT", b"x", parents=True)
    assert f.exists("c:/dir/sub/file.txt") and f.is_file("C:\\DIR\\SUB\\FILE.txt")
    assert f.is_dir("c:\\DIR") and not f.is_file("c:\\dir")
    assert f.listdir("C:\\dir\\sub") == ["File.TXT"]
    f.write_bytes("c:\\dir\\sub\\file.txt", b"y")
    assert f.listdir("C:\\dir\\sub") == ["File.TXT"] and f.read_bytes("C:\\Dir\\Sub\\File.TXT") == b"y"


def test_linux_paths_are_case_sensitive() -> None:
    f = MemoryGuestFiles("linux")
    f.write_bytes("/etc/a", b"1", parents=True)
    f.write_bytes("/etc/A", b"2")
    assert sorted(f.listdir("/etc")) == ["A", "a"]
    assert f.read_bytes("/etc/a") == b"1" and not f.exists("/ETC/a")


def test_errors() -> None:
    f = MemoryGuestFiles("linux")
    with pytest.raises(NotFoundError):
        f.write_bytes("/nope/x", b"")
    with pytest.raises(NotFoundError):
        f.read_bytes("/x")
    with pytest.raises(InvalidInputError):
        f.exists("relative/path")
    with pytest.raises(InvalidInputError):
        MemoryGuestFiles("beos")


def test_execute_bit() -> None:
    f = MemoryGuestFiles("linux")
    f.write_bytes("/usr/sbin/pre-freeze-script", b"exit 0", parents=True, executable=False)
    assert not f.is_executable("/usr/sbin/pre-freeze-script")
    f.set_executable("/usr/sbin/pre-freeze-script", True)
    assert f.is_executable("/usr/sbin/pre-freeze-script")
