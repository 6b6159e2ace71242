"""Stream-optimized VMDK (the NFC export's disk format), checked by qemu-img and by our reader."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcbsim.simulator import InvalidInputError
from vcbsim.simulator.disk import LayeredDisk, read_vmdk, stream_optimized

MiB = 1 << 20
QEMU_IMG = shutil.which("qemu-img")
needs_qemu = pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img not installed (apt-get install qemu-utils)")


def _write(disk: LayeredDisk, path: Path) -> Path:
    with path.open("wb") as f:
        for chunk in stream_optimized(disk.view(None), path.name):
            f.write(chunk)
    return path


def _sample(capacity: int = 80 * MiB) -> LayeredDisk:
    disk = LayeredDisk(capacity)
    disk.write(0, b"boot" * 128)
    disk.write(33 * MiB + 5, bytes(range(256)) * 900)  # across a grain table's span (32 MiB)
    disk.write(capacity - 512, b"last sector")
    return disk


@needs_qemu
def test_qemu_img_reads_it_as_stream_optimized_and_equal(tmp_path: Path) -> None:
    disk = _sample()
    vmdk = _write(disk, tmp_path / "d.vmdk")
    raw = tmp_path / "d.raw"
    raw.write_bytes(disk.read(0, disk.capacity))
    info = subprocess.run([QEMU_IMG, "info", str(vmdk)], capture_output=True, text=True, check=True).stdout
    assert "create type: streamOptimized" in info
    assert "compressed: true" in info
    subprocess.run([QEMU_IMG, "check", str(vmdk)], check=True, capture_output=True)
    cmp = subprocess.run([QEMU_IMG, "compare", "-f", "vmdk", "-F", "raw", str(vmdk), str(raw)],
                         capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr


def test_layout_header_footer_and_only_data_grains(tmp_path: Path) -> None:
    disk = _sample()
    data = _write(disk, tmp_path / "d.vmdk").read_bytes()
    magic, version, flags = struct.unpack_from("<III", data, 0)
    assert (magic, version, flags) == (0x564D444B, 3, 0x30001)
    assert struct.unpack_from("<Q", data, 56)[0] == 0xFFFFFFFFFFFFFFFF  # gdOffset: at the end
    assert data[-512:] == bytes(512)  # end-of-stream marker
    assert struct.unpack_from("<QII", data, len(data) - 1536) == (1, 0, 3)  # footer marker
    footer_gd = struct.unpack_from("<Q", data, len(data) - 1024 + 56)[0]
    assert footer_gd * 512 < len(data) - 1536
    # three data areas: far fewer bytes than the capacity
    assert len(data) < 2 * MiB
    assert read_vmdk(tmp_path / "d.vmdk").read(0, disk.capacity) == disk.read(0, disk.capacity)


def test_empty_disk_is_header_and_metadata_only(tmp_path: Path) -> None:
    disk = LayeredDisk(16 * MiB)
    data = _write(disk, tmp_path / "e.vmdk").read_bytes()
    assert len(data) == 128 * 512 + 512 + 512 + 512 + 512 + 512  # overhead, GD marker+GD, footer, EOS
    assert read_vmdk(tmp_path / "e.vmdk").read(0, 16 * MiB) == bytes(16 * MiB)


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="ending in .vmdk"):
        stream_optimized(LayeredDisk(MiB).view(None), "disk.img")
    with pytest.raises(InvalidInputError, match="adapter"):
        stream_optimized(LayeredDisk(MiB).view(None), "d.vmdk", adapter="scsi")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8 * MiB - 1), st.binary(min_size=1, max_size=70000)), max_size=6))
def test_round_trip_of_random_writes(tmp_path_factory: pytest.TempPathFactory, writes: list[tuple[int, bytes]]) -> None:
    disk = LayeredDisk(8 * MiB)
    for off, data in writes:
        disk.write(off, data[: 8 * MiB - off])
    path = _write(disk, tmp_path_factory.mktemp("rt") / "r.vmdk")
    assert read_vmdk(path).read(0, 8 * MiB) == disk.read(0, 8 * MiB)
