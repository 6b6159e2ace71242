"""Random file operations on FatFileSystem read back like a dictionary model (Hypothesis)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcbsim.simulator import InvalidInputError, NotFoundError, VirtualClock
from vcbsim.simulator.guest import FatFileSystem, SparseDevice
from vcbsim.simulator.guest._fat import _parse_dir

MiB = 1 << 20
NAMES = [
    "a.txt",
    "A.TXT",
    "backupScripts.d",
    "10-a.bat",
    "Program Files",
    "PROGRA~1",
    "x" * 40,
    "caf\u00e9.log",
    "noext",
    "two.dots.tar",
]
DIRS = ["", "d1", "d1/d2", "Program Files"]

ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("write"),
            st.sampled_from(DIRS),
            st.sampled_from(NAMES),
            st.integers(0, 9000),
            st.integers(0, 255),
        ),
        st.tuples(st.just("delete"), st.sampled_from(DIRS), st.sampled_from(NAMES)),
        st.tuples(st.just("mkdir"), st.sampled_from(DIRS[1:])),
        st.tuples(st.just("rmdir"), st.sampled_from(DIRS[1:])),
    ),
    max_size=40,
)


def key(path: str) -> str:
    return path.casefold()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_random_operations_match_a_dict_model(operations: list[tuple]) -> None:
    clock = VirtualClock()
    dev = SparseDevice(40 * MiB)
    fs = FatFileSystem.format(dev, "MODEL", clock=clock, cluster_size=512)
    files: dict[str, bytes] = {}  # casefolded path -> content
    dirs: set[str] = {""}
    shorts = {"PROGRA~1"}  # a name that can alias "Program Files" by its short name
    for op in operations:
        clock.advance(1)
        if op[0] == "mkdir":
            path = op[1]
            parent = path.rsplit("/", 1)[0] if "/" in path else ""
            if key(parent) not in {key(x) for x in dirs}:
                try:
                    fs.mkdir(path, exist_ok=True)
                except NotFoundError:
                    continue
                raise AssertionError(f"mkdir {path!r} without its parent succeeded")
            if key(path) in files:
                try:
                    fs.mkdir(path, exist_ok=True)
                except InvalidInputError:
                    continue
                raise AssertionError(f"mkdir over the file {path!r} succeeded")
            fs.mkdir(path, exist_ok=True)
            if key(path) not in {key(x) for x in dirs}:
                dirs.add(path)
            continue
        if op[0] == "rmdir":
            path = op[1]
            if key(path) in files:
                continue  # a file of that name ("Program Files"): a file delete, covered below
            folded = {key(x): x for x in dirs}
            if key(path) not in folded:
                expect: type[Exception] | None = NotFoundError
            elif any(k.startswith(key(path) + "/") for k in [*files, *folded]):
                expect = InvalidInputError  # not empty
            else:
                expect = None
            if expect is None:
                fs.delete(path)
                dirs.discard(folded[key(path)])
            else:
                try:
                    fs.delete(path)
                except expect:
                    continue
                raise AssertionError(f"rmdir {path!r} should have raised {expect.__name__}")
            continue
        _, d, name = op[:3]
        if name in shorts or key(d) not in {key(x) for x in dirs}:
            continue  # aliasing through 8.3 names is checked in test_fat.py
        path = f"{d}/{name}" if d else name
        if key(path) in {key(x) for x in dirs}:
            continue  # a directory of that name: covered by the error tests
        if op[0] == "write":
            data = bytes([op[4]]) * op[3]
            fs.write_file(path, data)
            files[key(path)] = data
        else:
            if key(path) in files:
                fs.delete(path)
                del files[key(path)]
            else:
                try:
                    fs.delete(path)
                except NotFoundError:
                    pass
                else:
                    raise AssertionError(f"deleting missing {path!r} succeeded")
    # Directory parses updated in place after each change equal a fresh parse of the bytes.
    for raw, (entries, _index) in fs._parse_memo.items():
        assert _parse_dir(raw) == entries
    # Read everything back, from a fresh object over the same blocks.
    again = FatFileSystem(dev)
    seen: dict[str, bytes] = {}
    seen_dirs = set()
    for dpath, dnames, fnames in again.walk("/"):
        base = dpath.strip("/")
        for n in fnames:
            p = f"{base}/{n}" if base else n
            seen[key(p)] = again.read_file(p)
        for n in dnames:
            seen_dirs.add(key(f"{base}/{n}" if base else n))
    assert seen == files
    assert seen_dirs == {key(d) for d in dirs if d}
    used = sum(-(-len(v) // 512) for v in files.values())
    assert again.free_bytes <= again.size - 512 - used * 512
    if shutil.which("fsck.fat"):
        with tempfile.TemporaryDirectory() as tmp:
            img = Path(tmp) / "vol.img"
            dev.save_image(img)
            r = subprocess.run(["fsck.fat", "-n", str(img)], capture_output=True, text=True)
            assert r.returncode == 0, r.stdout
