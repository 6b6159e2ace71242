"""FatFileSystem: round trips, long names, limits, on-disk format checked by mtools/fsck.fat."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from vcbsim.simulator import InvalidInputError, NotFoundError, StateError, VirtualClock
from vcbsim.simulator.guest._devices import SparseDevice
from vcbsim.simulator.guest._fat import FatFileSystem, open_readonly, valid_name
from vcbsim.simulator.guest._partition import TYPE_FAT32_LBA, PartitionDevice, partition_disk

MiB = 1 << 20
GiB = 1 << 30

needs_mtools = pytest.mark.skipif(shutil.which("mdir") is None, reason="mtools not installed")
needs_fsck = pytest.mark.skipif(
    shutil.which("fsck.fat") is None, reason="fsck.fat (dosfstools) not installed"
)


def new_fs(size: int = 64 * MiB, clock: VirtualClock | None = None) -> FatFileSystem:
    return FatFileSystem.format(SparseDevice(size), "TESTVOL", clock=clock or VirtualClock())


def partitioned(size: int = 96 * MiB) -> tuple[SparseDevice, FatFileSystem]:
    disk = SparseDevice(size)
    (p,) = partition_disk(disk, [(None, TYPE_FAT32_LBA)])
    fs = FatFileSystem.format(PartitionDevice.of(disk, p), "WIN2K3", hidden_sectors=p.start // 512)
    return disk, fs


def mtools(tmp: Path, *args: str) -> str:
    return subprocess.run(
        list(args), capture_output=True, text=True, check=True, env={"MTOOLS_SKIP_CHECK": "1"}
    ).stdout


def fsck(image: Path) -> str:
    r = subprocess.run(["fsck.fat", "-n", "-v", str(image)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_round_trip_of_files_and_directories() -> None:
    fs = new_fs()
    fs.mkdir("dir")
    fs.write_file("dir/a.txt", b"alpha")
    fs.write_file("/top.bin", bytes(range(256)) * 1000)
    fs.write_file("empty", b"")
    assert fs.read_file("/dir/a.txt") == b"alpha"
    assert fs.read_file("top.bin") == bytes(range(256)) * 1000
    assert fs.read_file("empty") == b""
    assert sorted(fs.listdir("/")) == ["dir", "empty", "top.bin"]
    assert fs.listdir("dir") == ["a.txt"]
    assert fs.is_dir("dir") and not fs.is_file("dir")
    assert fs.is_file("dir/a.txt") and not fs.is_dir("dir/a.txt")
    assert fs.stat("top.bin").size == 256000
    assert not fs.exists("nope") and not fs.exists("nope/deeper")


def test_overwrite_shrink_and_grow_keeps_free_space_exact() -> None:
    fs = new_fs()
    free0 = fs.free_bytes
    cs = fs.cluster_size
    fs.write_file("f", b"x" * (10 * cs))
    assert fs.free_bytes == free0 - 10 * cs
    fs.write_file("F", b"y" * (cs + 1))  # same file: names are case-insensitive
    assert fs.listdir() == ["f"]
    assert fs.read_file("f") == b"y" * (cs + 1)
    assert fs.free_bytes == free0 - 2 * cs
    fs.write_file("f", b"")
    assert fs.free_bytes == free0
    fs.delete("f")
    assert fs.free_bytes == free0 and fs.listdir() == []


def test_long_names_and_short_aliases() -> None:
    fs = new_fs()
    fs.mkdir("Program Files/VMware/VMware Tools/backupScripts.d", parents=True)
    d = "Program Files/VMware/VMware Tools/backupScripts.d"
    fs.write_file(f"{d}/10-a.bat", b"exit 0\r\n")
    fs.write_file(f"{d}/a very long name with unicode \u00e9\u4e2d and dots.tar.gz", b"z")
    assert fs.listdir("/") == ["Program Files"]
    assert sorted(fs.listdir(d)) == [
        "10-a.bat",
        "a very long name with unicode \u00e9\u4e2d and dots.tar.gz",
    ]
    assert fs.stat("Program Files").short_name == "PROGRA~1"
    assert fs.stat(f"{d}").short_name == "BACKUP~1.D"
    assert fs.stat(f"{d}/10-a.bat").short_name == "10-A.BAT"
    assert fs.read_file("PROGRA~1/vmware/VMWARE TOOLS/BACKUP~1.D/10-A.BAT") == b"exit 0\r\n"


def test_many_similar_names_get_unique_short_names() -> None:
    fs = new_fs()
    names = [f"Document number {i}.txt" for i in range(30)]
    for n in names:
        fs.write_file(n, n.encode())
    shorts = {fs.stat(n).short_name for n in names}
    assert len(shorts) == 30
    assert all(fs.read_file(n) == n.encode() for n in names)


def test_directory_grows_past_one_cluster_and_reuses_deleted_slots() -> None:
    fs = FatFileSystem.format(SparseDevice(40 * MiB), "SMALL", cluster_size=512)
    for i in range(200):
        fs.write_file(f"file-with-a-long-name-{i:04d}.dat", str(i).encode())
    assert len(fs.listdir()) == 200
    for i in range(0, 200, 2):
        fs.delete(f"file-with-a-long-name-{i:04d}.dat")
    free = fs.free_bytes
    for i in range(0, 200, 2):
        fs.write_file(f"FILE-WITH-A-LONG-NAME-{i:04d}.DAT", b"again")
    assert fs.free_bytes == free - 100 * 512  # data only: the directory did not grow
    assert fs.read_file("file-with-a-long-name-0199.dat") == b"199"
    assert fs.read_file("file-with-a-long-name-0000.dat") == b"again"


def test_timestamps_come_from_the_clock_with_two_second_resolution() -> None:
    clock = VirtualClock()
    fs = new_fs(clock=clock)
    clock.advance(3601.7)
    fs.write_file("a", b"1")
    st = fs.stat("a")
    assert st.mtime == clock.now - 1.7  # FAT stores even seconds
    assert st.ctime == pytest.approx(clock.now, abs=0.011)
    clock.advance(10)
    fs.write_file("a", b"2")
    assert fs.stat("a").mtime == st.mtime + 10
    assert fs.stat("a").ctime == st.ctime


@pytest.mark.parametrize("name", ["", "a:b", "a*", 'q"', "trailing.", "trailing ", "x" * 256])
def test_bad_names_are_refused_and_change_nothing(name: str) -> None:
    fs = new_fs()
    before = fs.free_bytes
    assert valid_name(name) is not None
    with pytest.raises(InvalidInputError, match="expected"):
        fs.write_file("/" + name if name else "/", b"x")
    assert fs.listdir() == [] and fs.free_bytes == before


def test_errors_name_what_exists() -> None:
    fs = new_fs()
    fs.mkdir("dir")
    fs.write_file("dir/a", b"1")
    with pytest.raises(NotFoundError, match="known: 'a'"):
        fs.read_file("dir/b")
    with pytest.raises(NotFoundError, match="no directory named '/nodir'"):
        fs.write_file("nodir/x", b"")
    with pytest.raises(InvalidInputError, match="to be a directory"):
        fs.write_file("dir/a/x", b"")
    with pytest.raises(InvalidInputError, match="a file"):
        fs.read_file("dir")
    with pytest.raises(InvalidInputError, match="empty directory"):
        fs.delete("dir")
    with pytest.raises(InvalidInputError, match="does not exist yet"):
        fs.mkdir("dir")
    fs.mkdir("dir", exist_ok=True)
    fs.delete("dir", recursive=True)
    assert fs.listdir() == []


def test_write_beyond_free_space_fails_cleanly() -> None:
    fs = new_fs(40 * MiB)
    fs.write_file("keep", b"k" * 1000)
    free = fs.free_bytes
    with pytest.raises(InvalidInputError, match="free space"):
        fs.write_file("huge", bytes(free + 1))
    assert fs.listdir() == ["keep"] and fs.free_bytes == free
    # Overwriting a file may reuse its own clusters.
    fs.write_file("big", bytes(free - fs.cluster_size))
    fs.write_file("big", bytes(free - fs.cluster_size))
    assert fs.stat("big").size == free - fs.cluster_size


def test_not_a_fat_volume() -> None:
    with pytest.raises(InvalidInputError, match="FAT32 boot sector"):
        FatFileSystem(SparseDevice(64 * MiB))
    with pytest.raises(InvalidInputError, match="65525 clusters"):
        FatFileSystem.format(SparseDevice(8 * MiB), "TINY")
    with pytest.raises(InvalidInputError, match="volume label"):
        FatFileSystem.format(SparseDevice(64 * MiB), "much too long a label")


def test_read_only_view_refuses_writes_and_shows_the_old_files() -> None:
    dev = SparseDevice(64 * MiB)
    fs = FatFileSystem.format(dev, "SNAP")
    fs.write_file("a.txt", b"before")
    fs.mkdir("d")
    view = dev.frozen()
    fs.write_file("a.txt", b"after, and longer")
    fs.write_file("d/new.txt", b"new")
    fs.delete("d/new.txt")
    fs.write_file("b.txt", b"b")
    old = open_readonly(view)
    assert old.read_file("a.txt") == b"before"
    assert sorted(old.listdir()) == ["a.txt", "d"] and old.listdir("d") == []
    assert fs.read_file("a.txt") == b"after, and longer"
    for change in (
        lambda: old.write_file("x", b""),
        lambda: old.mkdir("y"),
        lambda: old.delete("a.txt"),
    ):
        with pytest.raises(StateError, match="read-only"):
            change()


def test_nothing_is_cached_a_reverted_device_shows_its_files() -> None:
    dev = SparseDevice(64 * MiB)
    fs = FatFileSystem.format(dev, "REVERT")
    fs.write_file("a", b"1")
    saved = {k: bytearray(v) for k, v in dev.chunks.items()}
    fs.write_file("b", b"2")
    fs.write_file("a", b"changed")
    dev.chunks = saved  # the host reverted the disk under the open file system
    assert fs.listdir() == ["a"] and fs.read_file("a") == b"1"
    fs.write_file("c", b"3")
    assert sorted(fs.listdir()) == ["a", "c"]


def test_costs_follow_the_data_not_the_volume_size() -> None:
    dev = SparseDevice(100 * GiB)
    fs = FatFileSystem.format(dev, "BIG")
    assert dev.bytes_written < 200_000  # boot sectors, first FAT sectors, root cluster
    assert fs.cluster_size == 32768
    dev.reads = dev.writes = dev.bytes_written = 0
    for i in range(20):
        fs.write_file(f"f{i}.bin", bytes([i]) * 100_000)
    # 20 files of 4 clusters: data, FAT pages, directory, FSInfo; nothing near the FAT size.
    assert dev.bytes_written <= 20 * (4 * 32768 + 2 * 4096 + 1024 + 512)
    assert dev.reads < 20 * 12
    assert fs.read_file("f19.bin") == bytes([19]) * 100_000


@needs_mtools
@needs_fsck
def test_mtools_and_fsck_read_what_we_wrote(tmp_path: Path) -> None:
    disk, fs = partitioned()
    d = "Program Files/VMware/VMware Tools/backupScripts.d"
    fs.mkdir(d, parents=True)
    fs.write_file(f"{d}/10-a.bat", b"echo freeze\n")
    big = bytes(range(251)) * 4001
    fs.write_file("big.bin", big)
    for i in range(50):
        fs.write_file(f"Program Files/file {i}.log", str(i).encode() * i)
    for i in range(0, 50, 3):
        fs.delete(f"Program Files/file {i}.log")
    image = tmp_path / "disk.img"
    disk.save_image(image)
    spec = f"{image}@@1M"
    listing = mtools(tmp_path, "mdir", "-i", spec, "-b", f"::/{d}")
    assert listing.splitlines() == [f"::/{d}/10-a.bat"]
    assert mtools(tmp_path, "mtype", "-i", spec, f"::/{d}/10-a.bat") == "echo freeze\n"
    out = subprocess.run(
        ["mcopy", "-i", spec, "::/big.bin", "-"],
        capture_output=True,
        check=True,
        env={"MTOOLS_SKIP_CHECK": "1"},
    ).stdout
    assert hashlib.sha256(out).digest() == hashlib.sha256(big).digest()
    assert "WIN2K3" in mtools(tmp_path, "mlabel", "-i", spec, "-s", "::")
    part = tmp_path / "part.img"
    with open(image, "rb") as src, open(part, "wb") as dst:
        src.seek(MiB)
        dst.write(src.read())
    report = fsck(part)
    assert "2048 hidden sectors" in report
    assert "40 files" in report  # root, 4 directories, 35 files


@needs_mtools
def test_we_read_what_mtools_wrote(tmp_path: Path) -> None:
    dev = SparseDevice(64 * MiB)
    FatFileSystem.format(dev, "MTOOLS")
    image = tmp_path / "vol.img"
    dev.save_image(image)
    src = tmp_path / "Hello World.txt"
    src.write_bytes(b"from mtools")
    env = {"MTOOLS_SKIP_CHECK": "1"}
    subprocess.run(["mmd", "-i", str(image), "::/Some Dir"], check=True, env=env)
    subprocess.run(["mcopy", "-i", str(image), str(src), "::/Some Dir/"], check=True, env=env)
    subprocess.run(["mcopy", "-i", str(image), str(src), "::/lower.txt"], check=True, env=env)
    fs = FatFileSystem(SparseDevice.from_image(image))
    assert sorted(fs.listdir()) == ["Some Dir", "lower.txt"]
    assert fs.read_file("some dir/hello world.TXT") == b"from mtools"
    assert fs.read_file("lower.txt") == b"from mtools"


class _Boom(Exception):
    pass


class _FailingDevice:
    """Passes ``after`` writes through, then fails every write (a disk-layer fault)."""

    def __init__(self, dev: SparseDevice, after: int) -> None:
        self.dev, self.after, self.n = dev, after, 0

    @property
    def size(self) -> int:
        return self.dev.size

    def read(self, offset: int, length: int) -> bytes:
        return self.dev.read(offset, length)

    def write(self, offset: int, data: bytes) -> None:
        if self.n >= self.after:
            raise _Boom
        self.n += 1
        self.dev.write(offset, data)


FSCK_CRASH_RESIDUE = ("Reclaimed", "Free cluster summary", "FATs differ", "Using first FAT")


@pytest.mark.parametrize("operation", ["overwrite", "create", "delete", "mkdir"])
def test_a_device_failure_part_way_leaves_old_or_new_never_a_mix(
    operation: str, tmp_path: Path
) -> None:
    for after in range(12):
        dev = SparseDevice(40 * MiB)
        fs = FatFileSystem.format(dev, "CRASH", cluster_size=512)
        for i in range(15):
            fs.write_file(f"file {i}.txt", b"o" * 3000)
        fs.write_file("a", b"old" * 1000)
        failing = FatFileSystem(_FailingDevice(dev, after))
        try:
            if operation == "overwrite":
                failing.write_file("a", b"new" * 3000)
            elif operation == "create":
                failing.write_file("brand new name.txt", b"n" * 5000)
            elif operation == "delete":
                failing.delete("a")
            else:
                failing.mkdir("a new directory")
            completed = True
        except _Boom:
            completed = False
        after_fs = FatFileSystem(dev)
        if operation == "delete" and not after_fs.exists("a"):
            pass  # deleted: the directory entry went
        else:
            assert after_fs.read_file("a") in (b"old" * 1000, b"new" * 3000)
        assert all(after_fs.read_file(f"file {i}.txt") == b"o" * 3000 for i in range(15))
        if after_fs.exists("brand new name.txt"):
            assert after_fs.read_file("brand new name.txt") == b"n" * 5000
        if shutil.which("fsck.fat"):
            image = tmp_path / f"{operation}-{after}.img"
            dev.save_image(image)
            r = subprocess.run(["fsck.fat", "-n", str(image)], capture_output=True, text=True)
            problems = [
                line
                for line in r.stdout.splitlines()[1:]
                if line.strip()
                and not line.startswith(("Checking", str(image), "  ", "Leaving"))
                and not line.startswith(FSCK_CRASH_RESIDUE)
            ]
            assert problems == [], r.stdout
        # The volume stays usable: the next change works (and would be fsck-clean).
        after_fs.write_file("after.txt", b"fine")
        assert after_fs.read_file("after.txt") == b"fine"
        if completed:
            assert after > 2  # at least data, FAT and directory were written
            break
    else:
        raise AssertionError(f"{operation} never completed within 12 writes")
