"""VMDK files written by vcbsim, checked by an independent implementation (qemu-img).

qemu-img must accept what ``write_vmdk`` writes (``info``, ``check``) and read back exactly
the device's bytes; ``read_vmdk`` must read our files and qemu's.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from vcbsim.simulator import InvalidInputError
from vcbsim.simulator.disk import (
    LayeredDisk,
    descriptor_cid,
    read_vmdk,
    render_descriptor,
    write_vmdk,
)

QEMU_IMG = shutil.which("qemu-img")
QEMU_IO = shutil.which("qemu-io")
needs_qemu = pytest.mark.skipif(
    QEMU_IMG is None, reason="qemu-img not installed (apt-get install qemu-utils)"
)
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40


def qemu_img(*args: str) -> subprocess.CompletedProcess[str]:
    assert QEMU_IMG is not None
    return subprocess.run([QEMU_IMG, *args], capture_output=True, text=True, timeout=120)


def scattered_disk(capacity: int, seed: int, writes: int = 40) -> LayeredDisk:
    """A disk with random data at random places, across a snapshot, plus the last sector."""
    rnd = random.Random(seed)
    disk = LayeredDisk(capacity)
    for i in range(writes):
        if i == writes // 2:
            disk.freeze()
        length = rnd.randrange(1, 200_000)
        offset = rnd.randrange(0, capacity - length)
        disk.write(offset, rnd.randbytes(length))
    disk.write(capacity - 512, b"\xee" * 512)
    disk.write(5 * 65536, bytes(65536))  # a stored all-zero grain: must not be written
    return disk


def assert_raw_equal(raw: Path, disk: LayeredDisk) -> None:
    """Byte-equality without reading gigabytes of zeros.

    Holes of the (sparse) raw file read as zeros, so comparing the raw file's data segments
    and the disk's allocated areas against each other covers every byte.
    """
    assert raw.stat().st_size == disk.capacity
    fd = os.open(raw, os.O_RDONLY)
    try:
        segments = []
        pos = 0
        while pos < disk.capacity:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            segments.append((start, end - start))
            pos = end
        for off, length in segments + disk.allocated_areas():
            for sub in range(off, off + length, 64 * MiB):
                n = min(64 * MiB, off + length - sub)
                assert os.pread(fd, n, sub) == disk.read(sub, n), f"mismatch in [{sub}, {sub + n})"
    finally:
        os.close(fd)


@needs_qemu
@pytest.mark.parametrize("split", [True, False], ids=["twoGbMaxExtentSparse", "monolithicSparse"])
def test_round_trip_through_qemu_img_3gib(tmp_path: Path, split: bool) -> None:
    disk = scattered_disk(3 * GiB, seed=7)
    target = tmp_path / "disk.vmdk"
    files = write_vmdk(disk.view(), target, split=split)
    assert files[0] == target and all(f.exists() for f in files)
    if split:
        assert [f.name for f in files] == ["disk.vmdk", "disk-s001.vmdk", "disk-s002.vmdk"]
        text = target.read_text()
        assert 'createType="twoGbMaxExtentSparse"' in text
        assert 'RW 4194304 SPARSE "disk-s001.vmdk"' in text
        assert 'RW 2097152 SPARSE "disk-s002.vmdk"' in text
    else:
        assert files == [target]
        assert target.read_bytes()[:4] == b"KDMV"
    info = json.loads(qemu_img("info", "--output=json", str(target)).stdout)
    assert info["format"] == "vmdk" and info["virtual-size"] == 3 * GiB
    expected = "twoGbMaxExtentSparse" if split else "monolithicSparse"
    assert info["format-specific"]["data"]["create-type"] == expected
    check = qemu_img("check", str(target))
    assert check.returncode == 0, check.stdout + check.stderr
    # Sparse: only the data is stored (no all-zero grains, no 3 GiB file).
    stored = sum(f.stat().st_size for f in files)
    assert stored < disk.allocated_grains() * 65536 + 2 * MiB
    raw = tmp_path / "disk.raw"
    conv = qemu_img("convert", "-O", "raw", str(target), str(raw))
    assert conv.returncode == 0, conv.stderr
    assert_raw_equal(raw, disk)
    back = read_vmdk(target)
    assert back.capacity == disk.capacity
    for off, length in disk.allocated_areas():
        assert back.read(off, length) == disk.read(off, length)
    assert back.allocated_grains() <= disk.allocated_grains()


@needs_qemu
@pytest.mark.skipif(QEMU_IO is None, reason="qemu-io not installed (part of qemu-utils)")
@pytest.mark.parametrize("split", [True, False], ids=["split", "monolithic"])
def test_beyond_2tib_capacity_with_little_data(tmp_path: Path, split: bool) -> None:
    capacity = 2 * TiB + 3 * GiB + 512 * 7  # > 2 TiB, not a multiple of a grain
    disk = LayeredDisk(capacity)
    marks = {0: 0x11, TiB + 12345: 0x22, 2 * TiB + 65536 * 3: 0x33, capacity - 4096: 0x44}
    for off, byte in marks.items():
        disk.write(off, bytes([byte]) * 4096)
    target = tmp_path / "big.vmdk"
    files = write_vmdk(disk.view(), target, split=split)
    assert len(files) == (1 + 1026 if split else 1)
    assert sum(f.stat().st_size for f in files) < 8 * MiB
    info = json.loads(qemu_img("info", "--output=json", str(target)).stdout)
    assert info["virtual-size"] == capacity
    check = qemu_img("check", str(target))
    assert check.returncode == 0, check.stdout + check.stderr
    assert QEMU_IO is not None
    cmds: list[str] = []
    for off, byte in marks.items():
        cmds += ["-c", f"read -P {byte:#x} {off} 4096"]
    cmds += ["-c", f"read -P 0 {TiB} 12345", "-c", f"read -P 0 {capacity - 8192} 4096"]
    out = subprocess.run(
        [QEMU_IO, "-r", "-f", "vmdk", *cmds, str(target)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "Pattern verification failed" not in out.stdout, out.stdout
    assert out.stdout.count("read 4096/4096") == 5
    back = read_vmdk(target)
    assert back.capacity == capacity
    assert back.allocated_areas() == disk.allocated_areas()
    for off in marks:
        assert back.read(off, 4096) == disk.read(off, 4096)


@needs_qemu
@pytest.mark.parametrize(
    "subformat", ["monolithicSparse", "twoGbMaxExtentSparse", "streamOptimized"]
)
def test_read_vmdk_reads_qemu_files(tmp_path: Path, subformat: str) -> None:
    rnd = random.Random(3)
    raw = tmp_path / "src.raw"
    size = 2 * GiB + 4 * MiB
    blobs = {
        rnd.randrange(0, size - MiB) & ~511: rnd.randbytes(rnd.randrange(1, MiB)) for _ in range(12)
    }
    with raw.open("wb") as f:
        f.truncate(size)
        for off, blob in blobs.items():
            f.seek(off)
            f.write(blob)
    target = tmp_path / "q.vmdk"
    conv = qemu_img("convert", "-O", "vmdk", "-o", f"subformat={subformat}", str(raw), str(target))
    assert conv.returncode == 0, conv.stderr
    back = read_vmdk(target)
    assert back.capacity == size
    with raw.open("rb") as f:
        for off, length in back.allocated_areas():
            f.seek(off)
            assert f.read(length) == back.read(off, length)
        for off, blob in blobs.items():
            f.seek(off)
            assert back.read(off, len(blob)) == f.read(len(blob))


def test_read_vmdk_flat_descriptor(tmp_path: Path) -> None:
    flat = tmp_path / "vm-flat.vmdk"
    with flat.open("wb") as f:
        f.truncate(8 * MiB)
        f.seek(3 * MiB + 100)
        f.write(b"flat data")
    (tmp_path / "vm.vmdk").write_text(render_descriptor("vm.vmdk", 8 * MiB, create_type="vmfs"))
    back = read_vmdk(tmp_path / "vm.vmdk")
    assert back.read(3 * MiB + 100, 9) == b"flat data"
    assert back.allocated_grains() == 1


def test_write_vmdk_skips_zero_grains_and_empty_disk(tmp_path: Path) -> None:
    disk = LayeredDisk(10 * MiB)
    disk.write(0, bytes(3 * 65536))
    files = write_vmdk(disk, tmp_path / "z.vmdk", split=False)
    assert files[0].stat().st_size <= 65536  # header, descriptor, directory: no grain
    back = read_vmdk(files[0])
    assert back.allocated_grains() == 0 and back.capacity == 10 * MiB


def test_write_vmdk_works_on_a_plain_block_device(tmp_path: Path) -> None:
    class Raw:
        def __init__(self, data: bytearray) -> None:
            self.data = data

        @property
        def size(self) -> int:
            return len(self.data)

        def read(self, offset: int, length: int) -> bytes:
            return bytes(self.data[offset : offset + length])

        def write(self, offset: int, data: bytes) -> None:
            self.data[offset : offset + len(data)] = data

    dev = Raw(bytearray(4 * MiB))
    dev.write(MiB + 7, b"plain")
    files = write_vmdk(dev, tmp_path / "p.vmdk")
    back = read_vmdk(files[0])
    assert back.read(MiB + 7, 5) == b"plain" and back.allocated_grains() == 1


def test_header_fields(tmp_path: Path) -> None:
    disk = LayeredDisk(3 * MiB)
    disk.write(MiB, b"x")
    (path,) = write_vmdk(disk.view(), tmp_path / "h.vmdk", split=False)
    head = path.read_bytes()[:512]
    magic, version, _flags, capacity, grain, desc_off, desc_size, gtes = struct.unpack_from(
        "<IIIQQQQI", head
    )
    assert head[:4] == b"KDMV" and magic == 0x564D444B
    assert (version, capacity, grain, gtes) == (1, 3 * MiB // 512, 128, 512)
    assert desc_off == 1 and desc_size >= 1
    assert b'createType="monolithicSparse"' in path.read_bytes()[512 : 512 * (1 + desc_size)]


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"split": True, "adapter": "scsi"}, "a.vmdk"),
        ({}, "a.img"),
        ({}, "missing-dir/a.vmdk"),
    ],
)
def test_write_vmdk_validates(tmp_path: Path, kwargs: dict, path: str) -> None:
    with pytest.raises(InvalidInputError):
        write_vmdk(LayeredDisk(MiB), tmp_path / path, **kwargs)
    assert not (tmp_path / "a.vmdk").exists()


def test_read_vmdk_refuses_redo_logs_and_garbage(tmp_path: Path) -> None:
    redo = tmp_path / "vm-000001.vmdk"
    redo.write_text(
        render_descriptor("vm-000001.vmdk", MiB, create_type="vmfsSparse", parent="vm.vmdk")
    )
    with pytest.raises(InvalidInputError, match="redo log"):
        read_vmdk(redo)
    junk = tmp_path / "junk.vmdk"
    junk.write_bytes(os.urandom(1000))
    with pytest.raises(InvalidInputError):
        read_vmdk(junk)
    with pytest.raises(InvalidInputError):
        read_vmdk(tmp_path / "absent.vmdk")


def test_render_descriptor_base_and_redo_logs() -> None:
    base = render_descriptor("vm.vmdk", 16 * GiB, create_type="vmfs")
    assert 'createType="vmfs"' in base and "parentCID=ffffffff" in base
    assert 'RW 33554432 VMFS "vm-flat.vmdk"' in base
    assert f"CID={descriptor_cid('vm.vmdk'):08x}" in base
    assert 'ddb.adapterType = "lsilogic"' in base
    delta = render_descriptor(
        "vm-000001.vmdk", 16 * GiB, create_type="vmfsSparse", parent="vm.vmdk"
    )
    assert 'createType="vmfsSparse"' in delta
    assert 'parentFileNameHint="vm.vmdk"' in delta
    assert f"parentCID={descriptor_cid('vm.vmdk'):08x}" in delta
    assert 'RW 33554432 VMFSSPARSE "vm-000001-delta.vmdk"' in delta
    se = render_descriptor(
        "vm-000002.vmdk",
        3 * TiB,
        create_type="seSparse",
        parent="vm-000001.vmdk",
        cid=0x1234,
        parent_cid=0xABCDEF01,
    )
    assert 'RW 6442450944 SESPARSE "vm-000002-sesparse.vmdk"' in se
    assert "CID=00001234" in se and "parentCID=abcdef01" in se
    with pytest.raises(InvalidInputError, match="parent"):
        render_descriptor("vm-000001.vmdk", GiB, create_type="seSparse")
    with pytest.raises(InvalidInputError):
        render_descriptor("vm.vmdk", GiB, create_type="vmfsThin")
    with pytest.raises(InvalidInputError):
        render_descriptor("dir/vm.vmdk", GiB)
    with pytest.raises(InvalidInputError):
        render_descriptor("vm.vmdk", 1000)


@needs_qemu
def test_qemu_follows_rendered_sparse_chain(tmp_path: Path) -> None:
    """A monolithicSparse redo log naming its parent is read through by qemu (CID link)."""
    base = LayeredDisk(4 * MiB)
    base.write(0, b"B" * 100)
    base.write(2 * MiB, b"only in base")
    write_vmdk(base, tmp_path / "base.vmdk", split=True)
    text = render_descriptor(
        "child.vmdk", 4 * MiB, create_type="twoGbMaxExtentSparse", parent="base.vmdk"
    )
    (tmp_path / "child.vmdk").write_text(text)
    child = LayeredDisk(4 * MiB)
    child.write(0, base.read(0, 65536))  # a redo log holds whole grains (copy on write)
    child.write(50, b"C" * 10)
    # Reuse write_vmdk's extent for the child's data, then point the descriptor at it.
    write_vmdk(child, tmp_path / "tmp.vmdk", split=True)
    (tmp_path / "tmp-s001.vmdk").rename(tmp_path / "child-s001.vmdk")
    info = json.loads(qemu_img("info", "--output=json", str(tmp_path / "child.vmdk")).stdout)
    assert info["backing-filename"] == "base.vmdk"
    raw = tmp_path / "out.raw"
    conv = qemu_img("convert", "-O", "raw", str(tmp_path / "child.vmdk"), str(raw))
    assert conv.returncode == 0, conv.stderr
    data = raw.read_bytes()
    assert data[:100] == b"B" * 50 + b"C" * 10 + b"B" * 40
    assert data[2 * MiB : 2 * MiB + 12] == b"only in base"  # read through the parent
