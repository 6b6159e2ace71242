"""COWD redo-log extents (``-delta.vmdk``), checked by an independent reader (qemu-img).

A descriptor chain (``vmfs`` base with its ``-flat.vmdk``, ``vmfsSparse`` redo logs with
their COWD extents) must convert to exactly the disk as of a layer, and ``CowdReader`` (the
client side) must map the same bytes.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import tracemalloc
from pathlib import Path

import pytest

from vcbsim.simulator import InvalidInputError
from vcbsim.simulator.disk import (
    COWD_GT_ENTRIES,
    COWD_HEADER_SIZE,
    CowdExtent,
    CowdHeader,
    CowdReader,
    LayeredDisk,
    SeSparseExtent,
    SeSparseReader,
    cowd_extent,
    render_descriptor,
)

MiB = 1024**2
GRAIN = 65536
QEMU_IMG = shutil.which("qemu-img")
needs_qemu = pytest.mark.skipif(
    QEMU_IMG is None, reason="qemu-img not installed (apt-get install qemu-utils)"
)


def qemu_img(*args: str) -> subprocess.CompletedProcess[str]:
    assert QEMU_IMG is not None
    return subprocess.run(
        [QEMU_IMG, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _disk() -> tuple[LayeredDisk, list]:
    """A 64 MiB disk with a base, two frozen redo layers and a live top."""
    disk = LayeredDisk(64 * MiB)
    disk.write(0, b"base" * 5000)
    disk.write(40 * MiB, b"deep in the base")
    disk.write(63 * MiB + 65000, b"tail")  # straddles a grain boundary
    base = disk.freeze()  # the first snapshot freezes the base disk itself
    disk.write(100, b"one" * 30)
    disk.write(17 * MiB + 3, b"redo-1 only")
    s1 = disk.freeze()
    disk.write(17 * MiB, b"redo-2 over redo-1")
    disk.write(33 * MiB, bytes(range(256)) * 300)
    disk.write(63 * MiB + 65530, b"end")
    s2 = disk.freeze()
    disk.write(5, b"top only, not in any snapshot")
    chain = disk.chain(s2)
    assert [layer is s for layer, s in zip(chain, [s2, s1, base], strict=True)] == [
        True,
        True,
        True,
    ]
    return disk, chain


def _write_chain(tmp: Path, disk: LayeredDisk, chain: list) -> Path:
    """Descriptors and extents of ``chain`` (top first) named like ESX names them."""
    names = ["vm.vmdk"] + [f"vm-{n:06d}.vmdk" for n in range(1, len(chain))]
    names = names[::-1]  # top first, like chain
    for i, layer in enumerate(chain):
        name = names[i]
        parent = names[i + 1] if i + 1 < len(chain) else None
        kind = "vmfsSparse" if parent else "vmfs"
        (tmp / name).write_text(
            render_descriptor(name, disk.capacity, create_type=kind, parent=parent)
        )
        stem = name[: -len(".vmdk")]
        if parent:
            ext = CowdExtent(
                layer.grains, disk.capacity, grain_size=disk.grain_size, parent=parent, name=name
            )
            (tmp / f"{stem}-delta.vmdk").write_bytes(ext.read(0, ext.size))
        else:
            (tmp / f"{stem}-flat.vmdk").write_bytes(disk.read(0, disk.capacity, at=layer))
    return tmp / names[0]


@needs_qemu
def test_qemu_converts_the_chain_to_the_disk_as_of_the_layer(tmp_path: Path) -> None:
    disk, chain = _disk()
    top = _write_chain(tmp_path, disk, chain)
    info = json.loads(qemu_img("info", "--output=json", "--backing-chain", str(top)).stdout)
    assert [i["filename"].rsplit("/", 1)[-1] for i in info] == [
        "vm-000002.vmdk",
        "vm-000001.vmdk",
        "vm.vmdk",
    ]
    assert info[0]["virtual-size"] == 64 * MiB and info[0]["backing-filename"] == "vm-000001.vmdk"
    raw = tmp_path / "out.raw"
    conv = qemu_img("convert", "-O", "raw", str(top), str(raw))
    assert conv.returncode == 0, conv.stderr
    want = disk.read(0, disk.capacity, at=chain[0])
    got = raw.read_bytes()
    assert got == want
    assert b"top only" not in got and got[17 * MiB : 17 * MiB + 18] == b"redo-2 over redo-1"
    # the middle of the chain converts to the older state
    conv = qemu_img("convert", "-O", "raw", str(tmp_path / "vm-000001.vmdk"), str(raw))
    assert conv.returncode == 0, conv.stderr
    assert raw.read_bytes() == disk.read(0, disk.capacity, at=chain[1])


@needs_qemu
def test_qemu_reads_one_sector_grains_as_esx_writes_them(tmp_path: Path) -> None:
    """ESX's own redo logs have 1-sector grains; the renderer and reader take any size."""
    cap = 4 * MiB
    base = bytes(cap)
    (tmp_path / "d.vmdk").write_text(render_descriptor("d.vmdk", cap))
    (tmp_path / "d-flat.vmdk").write_bytes(base)
    grains = {0: b"A" * 512, 1: b"B" * 512, 4095: b"C" * 512, 4096: b"D" * 512, 8191: b"E" * 512}
    ext = CowdExtent(grains, cap, grain_size=512, parent="d.vmdk")
    (tmp_path / "d-000001.vmdk").write_text(
        render_descriptor("d-000001.vmdk", cap, create_type="vmfsSparse", parent="d.vmdk")
    )
    (tmp_path / "d-000001-delta.vmdk").write_bytes(ext.read(0, ext.size))
    raw = tmp_path / "out.raw"
    conv = qemu_img("convert", "-O", "raw", str(tmp_path / "d-000001.vmdk"), str(raw))
    assert conv.returncode == 0, conv.stderr
    data = raw.read_bytes()
    for g, content in grains.items():
        assert data[g * 512 : (g + 1) * 512] == content
    assert data[2 * 512 : 4095 * 512] == bytes(4093 * 512)


def test_header_fields() -> None:
    disk, chain = _disk()
    ext = CowdExtent(chain[0].grains, disk.capacity, parent="vm-000001.vmdk", name="vm-000002.vmdk")
    head = ext.read(0, COWD_HEADER_SIZE)
    assert head[:4] == b"COWD"
    version, flags, sectors, grain, gd, gd_entries, free = struct.unpack_from("<7I", head, 4)
    assert (version, flags, sectors, grain, gd) == (1, 3, 64 * MiB // 512, 128, 4)
    assert gd_entries == 1  # 64 MiB / (4096 grains of 64 KiB) rounded up
    assert free * 512 == ext.size
    assert head[32:46] == b"vm-000001.vmdk" and head[46] == 0  # child: parentFileName
    parsed = CowdHeader.parse(head)
    assert parsed.capacity == disk.capacity and parsed.grain_size == GRAIN
    assert parsed.parent_file_name == "vm-000001.vmdk"
    # the GD points at one grain table; the table at each grain in ascending order
    (gt_sector,) = struct.unpack("<I", ext.read(4 * 512, 4))
    assert gt_sector == ext.gt_start
    gt = struct.unpack(f"<{COWD_GT_ENTRIES}I", ext.read(gt_sector * 512, COWD_GT_ENTRIES * 4))
    allocated = [i for i, s in enumerate(gt) if s]
    assert allocated == sorted(chain[0].grains)
    assert [gt[i] for i in allocated] == [ext.data_start + k * 128 for k in range(len(allocated))]
    g = allocated[0]
    assert ext.read(gt[g] * 512, GRAIN) == bytes(chain[0].grains[g])
    assert ext.size == (ext.data_start + 128 * len(allocated)) * 512


def test_reads_of_any_range_match_the_whole_file() -> None:
    disk, chain = _disk()
    ext = CowdExtent(chain[1].grains, disk.capacity)
    whole = ext.read(0, ext.size)
    assert len(whole) == ext.size
    for off, n in [
        (0, 1),
        (2040, 20),
        (2047, 3000),
        (ext.gt_start * 512 - 3, 10),
        (ext.data_start * 512 - 7, GRAIN + 9),
        (ext.size - 5, 100),
        (ext.size, 10),
    ]:
        assert ext.read(off, n) == whole[off : off + n], (off, n)
    with pytest.raises(InvalidInputError):
        ext.read(-1, 5)


def test_cost_follows_grains_not_capacity() -> None:
    """A redo log of a (2 TiB - 512 B) disk holding three grains is built without anything
    proportional to the capacity: a table with an entry per grain would be 128 MiB (33.5
    million 4-byte entries); the memory it takes is measured instead of the time (the speed
    figure is benchmarks/bench_disk.py's)."""
    cap = 2 * 1024**4 - 512 * 128
    grains = {
        0: bytearray(b"a" * GRAIN),
        7_000_000: bytearray(b"b" * GRAIN),
        33_554_430: bytearray(b"c" * GRAIN),
    }
    tracemalloc.start()
    try:
        ext = CowdExtent(grains, cap)
        head = ext.read(0, ext.data_start * 512)
        reader = CowdReader(ext.read)
        runs = reader.map(7_000_000 * GRAIN - 10, GRAIN + 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * MiB, f"{peak} bytes allocated for three grains"
    assert ext.size < 4 * MiB and len(head) == ext.data_start * 512
    assert runs[0] == (7_000_000 * GRAIN - 10, 10, None)
    assert runs[1][1] == GRAIN and ext.read(runs[1][2], 3) == b"bbb"
    assert reader.allocated() == [
        (0, GRAIN),
        (7_000_000 * GRAIN, GRAIN),
        (33_554_430 * GRAIN, GRAIN),
    ]


def test_reader_maps_runs_and_merges_contiguous_grains() -> None:
    grains = {i: bytearray(bytes([i % 251]) * GRAIN) for i in (2, 3, 4, 9, 5000)}
    ext = CowdExtent(grains, 1024 * MiB)
    reader = CowdReader(ext.read)
    runs = reader.map(0, 12 * GRAIN)
    assert [(o // GRAIN, n // GRAIN, f is None) for o, n, f in runs] == [
        (0, 2, True),
        (2, 3, False),
        (5, 4, True),
        (9, 1, False),
        (10, 2, True),
    ]
    for off, n, f in runs:
        if f is not None:
            assert ext.read(f, n) == b"".join(
                bytes(grains[off // GRAIN + k]) for k in range(n // GRAIN)
            )
    assert reader.grain_sector(5000) == ext.grain_sector(5000) != 0
    assert reader.grain_sector(6000) == 0 == ext.grain_sector(6000)
    assert reader.map(5 * GRAIN, 4000 * GRAIN) == [
        (5 * GRAIN, 4 * GRAIN, None),
        (9 * GRAIN, GRAIN, ext.grain_sector(9) * 512),
        (10 * GRAIN, 3995 * GRAIN, None),
    ]
    # a whole absent table is one run, and reading it fetches no table
    fetched: list[int] = []
    counting = CowdReader(lambda off, n: fetched.append(off) or ext.read(off, n))
    fetched.clear()
    assert counting.map(8192 * GRAIN, 8192 * GRAIN) == [(8192 * GRAIN, 8192 * GRAIN, None)]
    assert fetched == []


def test_cached_extent_follows_the_layer() -> None:
    disk = LayeredDisk(8 * MiB)
    disk.write(0, b"x")
    layer = disk.top
    a = cowd_extent(layer, disk.capacity)
    assert cowd_extent(layer, disk.capacity) is a
    disk.write(3 * GRAIN, b"y")
    b = cowd_extent(layer, disk.capacity)
    assert b is not a and b.indexes == [0, 3]
    disk.write(1, b"z")  # same grain set: the same extent reads the new bytes
    assert cowd_extent(layer, disk.capacity) is b
    assert b.read(b.grain_sector(0) * 512, 2) == b"xz"


def test_validation() -> None:
    with pytest.raises(InvalidInputError):
        CowdExtent({}, 1000)
    with pytest.raises(InvalidInputError):
        CowdExtent({}, 4 * 1024**4)
    with pytest.raises(InvalidInputError):
        CowdExtent({}, MiB, grain_size=1000)
    with pytest.raises(InvalidInputError, match="magic"):
        CowdHeader.parse(b"KDMV" + bytes(COWD_HEADER_SIZE))
    with pytest.raises(InvalidInputError):
        CowdHeader.parse(b"COWD")
    empty = CowdExtent({}, MiB)
    assert CowdReader(empty.read).map(0, MiB) == [(0, MiB, None)]
    assert CowdReader(empty.read).allocated() == []


# -- SEsparse -------------------------------------------------------------------------------------


@needs_qemu
def test_qemu_converts_an_sesparse_chain_to_the_disk_as_of_the_layer(tmp_path: Path) -> None:
    disk, chain = _disk()
    names = ["vm-000002.vmdk", "vm-000001.vmdk", "vm.vmdk"]
    for i, layer in enumerate(chain):
        parent = names[i + 1] if i + 1 < len(chain) else None
        kind = "seSparse" if parent else "vmfs"
        (tmp_path / names[i]).write_text(
            render_descriptor(names[i], disk.capacity, create_type=kind, parent=parent)
        )
        stem = names[i][: -len(".vmdk")]
        if parent:
            ext = SeSparseExtent(layer.grains, disk.capacity)
            (tmp_path / f"{stem}-sesparse.vmdk").write_bytes(ext.read(0, ext.size))
        else:
            (tmp_path / f"{stem}-flat.vmdk").write_bytes(disk.read(0, disk.capacity, at=layer))
    info = json.loads(
        qemu_img("info", "--output=json", "--backing-chain", str(tmp_path / names[0])).stdout
    )
    assert info[0]["format-specific"]["data"]["create-type"] == "seSparse"
    raw = tmp_path / "out.raw"
    conv = qemu_img("convert", "-O", "raw", str(tmp_path / names[0]), str(raw))
    assert conv.returncode == 0, conv.stderr
    assert raw.read_bytes() == disk.read(0, disk.capacity, at=chain[0])


def test_sesparse_reader_maps_what_the_extent_holds() -> None:
    grains = {i: bytearray(bytes([i % 251]) * GRAIN) for i in (0, 1, 7, 300)}
    ext = SeSparseExtent(grains, 64 * MiB)
    head = ext.read(0, 1024)
    assert struct.unpack_from("<QQQQQ", head) == (0xCAFEBABE, 0x200000001, 64 * MiB // 512, 8, 64)
    assert struct.unpack_from("<Q", head, 512)[0] == 0xCAFECAFE
    reader = SeSparseReader(ext.read)
    assert reader.capacity == 64 * MiB
    assert reader.allocated() == [(0, 2 * GRAIN), (7 * GRAIN, GRAIN), (300 * GRAIN, GRAIN)]
    runs = reader.map(GRAIN - 100, 3 * GRAIN)
    assert [(o, n) for o, n, _ in runs] == [(GRAIN - 100, GRAIN + 100), (2 * GRAIN, 2 * GRAIN - 100)]
    assert runs[1][2] is None and runs[0][2] is not None  # grains 0 and 1 are contiguous in the file
    assert ext.read(runs[0][2], GRAIN + 100) == bytes(grains[0][-100:]) + bytes(grains[1])
    whole = ext.read(0, ext.size)
    for off, n in [(0, 3), (1500, 700), (ext.data_offset * 512 - 5, 10), (ext.size - 3, 9)]:
        assert ext.read(off, n) == whole[off : off + n]
    fetched: list[int] = []
    counting = SeSparseReader(lambda off, n: fetched.append(off) or ext.read(off, n))
    fetched.clear()
    assert counting.map(32 * MiB, 32 * MiB) == [(32 * MiB, 32 * MiB, None)]  # no table there
    assert fetched == []
    with pytest.raises(InvalidInputError):
        SeSparseExtent({}, MiB, grain_size=512)
    with pytest.raises(InvalidInputError, match="SEsparse"):
        SeSparseReader(CowdExtent({}, MiB).read)
    big = SeSparseExtent({3_000_000: bytearray(GRAIN)}, 2 * 1024**4)  # 2 TiB: cost is the grains
    assert big.size < 2 * MiB
