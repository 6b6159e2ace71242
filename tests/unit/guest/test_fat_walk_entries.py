"""``FatFileSystem.walk_entries``: every directory once, in ``walk``'s order, saying of each entry
what ``scandir`` says (name, directory or not, size, mtime, first cluster), on trees with
nested folders, long and short names, empty folders and deleted entries."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcbsim.simulator import VirtualClock
from vcbsim.simulator.guest import GuestFileSystem, format_disk

disk_mod = pytest.importorskip("vcbsim.simulator.disk")
MiB = 1 << 20


def by_walk_and_scandir(fs: Any) -> list[tuple[str, list[tuple[str, bool, int, float, int]]]]:
    out = []
    for dirpath, _dirs, _files in fs.walk("/"):
        out.append((dirpath, [(s.name, s.is_dir, s.size, s.mtime, s.first_cluster) for s in fs.scandir(dirpath)]))
    return out


#: (folder depth 0-2, folder, subfolder, file, delete it again): folders "dir<a>" and
#: "sub folder <b>" (a long name), files "F<c>.TXT" (a short name) or "file <c> long.txt"
layouts = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 3), st.integers(0, 7),
                             st.booleans()), max_size=30)


@settings(max_examples=25, deadline=None)
@given(layouts)
def test_walk_entries_says_what_walk_and_scandir_say(ops: list[tuple[int, int, int, int, bool]]) -> None:
    clock = VirtualClock()
    vols = format_disk(disk_mod.LayeredDisk(64 * MiB), [(None, "C", "DATA")], clock=clock)
    g = GuestFileSystem("windows", vols, clock=clock)
    for depth, a, b, c, delete in ops:
        clock.advance(3)
        folder = "\\".join([f"dir{a}", f"sub folder {b}"][:depth])
        if folder:
            g.mkdir("C:\\" + folder)
        name = f"F{c}.TXT" if c % 2 else f"file {c} long.txt"
        path = "C:\\" + (folder + "\\" if folder else "") + name
        g.write_bytes(path, b"x" * (len(path) * 37 * c))
        if delete:
            g.delete(path)
    fs = vols[0].filesystem
    assert list(fs.walk_entries("/")) == by_walk_and_scandir(fs)
