"""GuestFileSystem: Windows and Linux path semantics over FAT volumes, trace events, snapshots."""

from __future__ import annotations

import hashlib

import pytest

from vcbsim.simulator import InvalidInputError, NotFoundError, StateError, Trace, VirtualClock
from vcbsim.simulator.guest import (
    GuestFileSystem,
    SparseDevice,
    Volume,
    format_disk,
    parse_guest_path,
    read_partitions,
)

MiB = 1 << 20
SCRIPTS = r"C:\Program Files\VMware\VMware Tools\backupScripts.d"


def windows(trace: Trace | None = None) -> tuple[SparseDevice, GuestFileSystem]:
    clock = trace.clock if trace is not None else VirtualClock()
    disk = SparseDevice(512 * MiB)
    vols = format_disk(
        disk, [(200 * MiB, "C", "SYSTEM"), (100 * MiB, "D", "DATA"), (None, None, "RECOVERY")]
    )
    return disk, GuestFileSystem("windows", vols, trace=trace, vm="vm-1", clock=clock)


def linux() -> GuestFileSystem:
    disk = SparseDevice(256 * MiB)
    vols = format_disk(disk, [(100 * MiB, "/", "ROOT"), (None, "/data", "DATA")])
    return GuestFileSystem("linux", vols)


@pytest.mark.parametrize(
    ("path", "drive", "parts"),
    [
        (r"C:\Program Files\a.bat", "C:", ("Program Files", "a.bat")),
        ("c:/x/y/../z/./w/", "C:", ("x", "z", "w")),
        ("C:", "C:", ()),
        ("d:\\", "D:", ()),
        (r"C:\..\..\x", "C:", ("x",)),
    ],
)
def test_windows_paths_parse_like_windows(path: str, drive: str, parts: tuple) -> None:
    gp = parse_guest_path("windows", path)
    assert (gp.drive, gp.parts) == (drive, parts)


@pytest.mark.parametrize(
    "path",
    ["relative\\x", r"\\server\share\x", r"\\?\C:\x", "C:file", "", 5, r"C:\con", r"C:\d\Nul.txt"],
)
def test_bad_windows_paths_say_what_is_expected(path: object) -> None:
    with pytest.raises(InvalidInputError, match="expected"):
        parse_guest_path("windows", path)  # type: ignore[arg-type]


@pytest.mark.parametrize(("path", "parts"), [("/a/../../b", ("b",)), ("//x//y/", ("x", "y"))])
def test_linux_paths(path: str, parts: tuple) -> None:
    assert parse_guest_path("linux", path).parts == parts
    with pytest.raises(InvalidInputError, match="absolute path"):
        parse_guest_path("linux", "a/b")
    with pytest.raises(InvalidInputError, match="'windows' or 'linux'"):
        parse_guest_path("solaris", "/a")


def test_windows_guest_is_case_insensitive_and_accepts_slashes() -> None:
    _, g = windows()
    g.mkdir(SCRIPTS)
    g.write_text(SCRIPTS + r"\10-a.bat", "exit 0\r\n")
    assert g.read_bytes("c:/program files/vmware/VMWARE TOOLS/BACKUPSCRIPTS.D/10-A.BAT") == (
        b"exit 0\r\n"
    )
    assert g.is_dir(r"c:\PROGRAM FILES") and g.is_file(SCRIPTS.lower() + r"\10-a.bat")
    assert g.listdir(SCRIPTS.upper()) == ["10-a.bat"]
    assert g.realpath(SCRIPTS.upper() + r"\10-A.BAT") == SCRIPTS + r"\10-a.bat"
    st = g.stat(r"c:\program files\vmware\vmware tools\backupscripts.d\10-A.bat")
    assert st.path == SCRIPTS + r"\10-a.bat" and st.size == 8 and not st.is_dir
    g.write_bytes(r"C:\PROGRAM FILES\VMWARE\VMWARE TOOLS\BACKUPSCRIPTS.D\10-A.BAT", b"x")
    assert g.listdir(SCRIPTS) == ["10-a.bat"] and g.read_bytes(SCRIPTS + r"\10-a.bat") == b"x"


def test_drive_letters_select_volumes_and_letterless_volumes_are_listed() -> None:
    _, g = windows()
    g.write_bytes(r"C:\c.txt", b"c")
    g.write_bytes(r"d:\d.txt", b"d")
    assert g.listdir("C:\\") == ["c.txt"] and g.listdir("D:") == ["d.txt"]
    assert [v.name for v in g.mounted] == ["C:", "D:"]
    (rec,) = g.unmounted
    assert rec.label == "RECOVERY" and rec.letter is None
    rec.filesystem.write_file("/boot.ini", b"[boot]")
    assert list(g.walk(rec)) == [("\\", [], ["boot.ini"])]
    assert g.volume("d").label == "DATA"
    with pytest.raises(NotFoundError, match="known: 'C:', 'D:'"):
        g.write_bytes(r"E:\x", b"")


def test_linux_mount_table_picks_the_longest_mount_point() -> None:
    g = linux()
    g.mkdir("/etc/vmware-tools/backupScripts.d")
    g.write_bytes("/data/db.bin", b"db")
    g.write_bytes("/etc/vmware-tools/backupScripts.d/S10x", b"#!/bin/sh\n")
    assert g.volume("/data").filesystem.listdir("/") == ["db.bin"]
    assert g.volume("/").filesystem.listdir("/") == ["etc"]
    assert sorted(g.listdir("/")) == ["data", "etc"]
    assert g.stat("/data/../data/db.bin").path == "/data/db.bin"
    assert g.read_bytes("/etc/vmware-tools/backupScripts.d/S10x") == b"#!/bin/sh\n"
    assert list(g.walk("/data")) == [("/data", [], ["db.bin"])]
    g.volume("/").filesystem.mkdir("/data")  # the directory under the mount, hidden by it
    g.volume("/").filesystem.write_file("/data/hidden", b"under the mount")
    assert sorted(g.listdir("/")) == ["data", "etc"]
    assert list(g.walk("/")) == [
        ("/", ["etc", "data"], []),
        ("/etc", ["vmware-tools"], []),
        ("/etc/vmware-tools", ["backupScripts.d"], []),
        ("/etc/vmware-tools/backupScripts.d", [], ["S10x"]),
        ("/data", [], ["db.bin"]),
    ]
    with pytest.raises(InvalidInputError, match="mount point"):
        GuestFileSystem("linux", [Volume(g.volumes[0].device, letter="C")])


def test_missing_files_and_bad_names_are_clear_errors() -> None:
    _, g = windows()
    with pytest.raises(NotFoundError, match="no file named"):
        g.read_bytes(r"C:\nope.txt")
    with pytest.raises(NotFoundError, match="no directory named"):
        g.write_bytes(r"C:\no dir\x.txt", b"")
    with pytest.raises(InvalidInputError, match="cannot contain"):
        g.write_bytes(r"C:\a?b", b"")
    with pytest.raises(InvalidInputError, match="below the root"):
        g.delete("C:\\")
    assert not g.exists(r"Q:\x") and not g.exists(r"C:\nope")


def test_writes_and_deletes_are_traced_with_stored_names() -> None:
    trace = Trace(VirtualClock())
    _, g = windows(trace)
    g.mkdir(r"C:\Logs")
    g.write_bytes(r"c:\logs\A.log", b"hello")
    g.append(r"C:\LOGS\a.LOG", b" world")
    g.mkdir(r"C:\Logs\old")
    g.write_bytes(r"C:\Logs\old\x.txt", b"")
    g.delete(r"C:\logs", recursive=True)
    kinds = [(e.kind, e.details["path"]) for e in trace.events]
    assert kinds == [
        ("guest.write", r"C:\Logs\A.log"),
        ("guest.write", r"C:\Logs\A.log"),
        ("guest.write", r"C:\Logs\old\x.txt"),
        ("guest.delete", r"C:\Logs\A.log"),
        ("guest.delete", r"C:\Logs\old\x.txt"),
    ]
    assert trace.events[1].details["sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert trace.events[1].details["size"] == 11 and trace.events[1].vm == "vm-1"


def test_mtime_comes_from_the_virtual_clock() -> None:
    trace = Trace(VirtualClock())
    _, g = windows(trace)
    trace.clock.advance(86400 * 365 + 7)
    g.write_bytes(r"C:\t.txt", b"")
    assert g.stat(r"C:\t.txt").mtime == trace.clock.now - 1


def test_snapshot_view_shows_the_files_as_of_the_snapshot() -> None:
    disk, g = windows()
    g.mkdir(SCRIPTS)
    g.write_bytes(SCRIPTS + r"\a.bat", b"v1")
    g.write_bytes(r"D:\data.bin", b"d1" * 5000)
    frozen = disk.frozen()  # what the disk layer's view(layer) is to us
    g.write_bytes(SCRIPTS + r"\a.bat", b"v2 longer")
    g.write_bytes(r"C:\new.txt", b"new")
    g.delete(r"D:\data.bin")
    from vcbsim.simulator.guest import PartitionDevice

    views = [PartitionDevice(frozen, v.partition.start, v.partition.size) for v in g.volumes]
    old = g.as_of(views)
    assert old.read_bytes(SCRIPTS + r"\a.bat") == b"v1"
    assert old.read_bytes(r"D:\data.bin") == b"d1" * 5000
    assert not old.exists(r"C:\new.txt")
    assert g.read_bytes(SCRIPTS + r"\a.bat") == b"v2 longer"
    with pytest.raises(StateError, match="read-only"):
        old.write_bytes(r"C:\x", b"")
    assert [p.start for p in read_partitions(frozen)] == [v.partition.start for v in g.volumes]


def test_open_readonly_takes_a_whole_disk_view_and_a_partition() -> None:
    from vcbsim.simulator.guest import open_readonly

    disk, g = windows()
    g.write_bytes(r"D:\report.txt", b"as of the snapshot")
    frozen = disk.frozen()
    g.delete(r"D:\report.txt")
    d = g.volume("D")
    assert d.partition is not None
    old = open_readonly(frozen, d.partition)
    assert old.label == "DATA" and old.read_file("report.txt") == b"as of the snapshot"
    assert not g.exists(r"D:\report.txt")


def test_reformatting_a_used_disk_needs_clear() -> None:
    from vcbsim.simulator.guest._fat import _Op

    disk = SparseDevice(128 * MiB)
    (v,) = format_disk(disk, [(None, "C", "FIRST")])
    g = GuestFileSystem("windows", [v])
    for i in range(20):
        g.write_bytes(rf"C:\f{i}", b"x" * 50_000)
    (v2,) = format_disk(disk, [(None, "C", "SECOND")], clear=True)
    fresh = GuestFileSystem("windows", [v2])
    assert fresh.listdir("C:\\") == [] and v2.label == "SECOND"
    fs = v2.filesystem
    assert fs.free_bytes == fs.size - fs.cluster_size
    fresh.write_bytes(r"C:\new", b"n" * 300_000)
    assert fresh.read_bytes(r"C:\new") == b"n" * 300_000
    # No stale FAT chains: the new file takes the clusters right after the root, in one run.
    chain = _Op(fs).chain(fs.stat("new").first_cluster)
    assert chain == list(range(3, 3 + -(-300_000 // fs.cluster_size)))
