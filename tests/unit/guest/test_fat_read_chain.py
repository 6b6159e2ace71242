"""``FatFileSystem.read_chain``: a file read by the cluster chain its directory entry names."""

from __future__ import annotations

import pytest

from vcbsim.simulator import StateError, VirtualClock
from vcbsim.simulator.guest import GuestFileSystem, format_disk

disk_mod = pytest.importorskip("vcbsim.simulator.disk")
MiB = 1 << 20


def test_read_chain_gives_the_files_bytes_and_refuses_a_short_chain() -> None:
    disk = disk_mod.LayeredDisk(64 * MiB)
    vols = format_disk(disk, [(None, "C", "DATA")])
    g = GuestFileSystem("windows", vols, clock=VirtualClock())
    g.mkdir("C:\\d")
    big = bytes(range(256)) * 100  # several clusters
    g.write_bytes("C:\\d\\big.bin", big)
    g.write_bytes("C:\\empty.txt", b"")
    fs = vols[0].filesystem
    stats = {st.name: st for st in fs.scandir("/d")}
    st = stats["big.bin"]
    assert fs.read_chain(st.first_cluster, st.size) == big == fs.read_file("/d/big.bin")
    assert fs.read_chain(st.first_cluster, 100) == big[:100]
    empty = {s.name: s for s in fs.scandir("/")}["empty.txt"]
    assert fs.read_chain(empty.first_cluster, 0) == b""
    with pytest.raises(StateError, match="shorter than its size"):
        fs.read_chain(st.first_cluster, 64 * MiB)
