"""Benchmarks for vcbsim.simulator.disk: costs must follow the data, never the capacity.

Run: ``python benchmarks/bench_disk.py`` (prints tables; no assertions on time).

1. snapshot (freeze) + 64 MiB written + consolidation (release) on a 2 GiB and a 2 TiB disk,
   side by side with the ratio (should be ~1).
2. RSS of 1,000 disks of 100 GiB each with 64 KiB written (measured in a fresh child process;
   target < 512 MiB).
3. ``write_vmdk`` vs ``qemu-img convert -O vmdk`` of the same data (a sparse raw file made
   from the disk), for both sub-formats.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from vcbsim.simulator.disk import LayeredDisk, write_vmdk

MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def snapshot_cycle(capacity: int, seed: int = 1) -> dict[str, float]:
    rnd = random.Random(seed)
    disk = LayeredDisk(capacity)
    chunk = rnd.randbytes(MiB)
    # Some data in the base first, so the release has something to merge against.
    for _ in range(16):
        disk.write(rnd.randrange(0, capacity // MiB) * MiB, chunk)
    t0 = time.perf_counter()
    layer = disk.freeze()
    t1 = time.perf_counter()
    for _ in range(64):
        disk.write(rnd.randrange(0, capacity // MiB) * MiB, chunk)
    t2 = time.perf_counter()
    stats = disk.release(layer)
    t3 = time.perf_counter()
    assert disk.top is layer  # commit semantics (sanity, not timing)
    return {
        "freeze": (t1 - t0) * 1e3,
        "write 64 MiB": (t2 - t1) * 1e3,
        "release": (t3 - t2) * 1e3,
        "grains moved": float(stats.grains_moved),
    }


def best_of(run: Callable[[], dict[str, float]], times: int = 3) -> dict[str, float]:
    """Minimum of each figure over a few runs: the machine is shared, noise only adds."""
    results = [run() for _ in range(times)]
    return {key: min(r[key] for r in results) for key in results[0]}


def timed(run: Callable[[], object], times: int = 3) -> float:
    best = float("inf")
    for _ in range(times):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_snapshot() -> None:
    print("## 1. freeze + 64 MiB written + release (ms)\n")
    small = best_of(lambda: snapshot_cycle(2 * GiB))
    big = best_of(lambda: snapshot_cycle(2 * TiB))
    print("best of 3 runs")
    print(f"{'step':<16}{'2 GiB':>12}{'2 TiB':>12}{'ratio':>10}")
    for key in small:
        a, b = small[key], big[key]
        ratio = b / a if a else float("nan")
        print(f"{key:<16}{a:>12.3f}{b:>12.3f}{ratio:>10.2f}")
    print()


def rss_child() -> None:
    before = rss_mib()
    disks = []
    for i in range(1000):
        d = LayeredDisk(100 * GiB)
        d.write((i * 7919 % 1000) * 65536, b"\x5a" * 65536)
        disks.append(d)
    after = rss_mib()
    print(f"{before:.1f} {after:.1f} {len(disks)}")


def bench_rss() -> None:
    print("## 2. RSS of 1,000 disks x 100 GiB, 64 KiB written each\n")
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child"], capture_output=True, text=True, check=True
    ).stdout.split()
    before, after = float(out[0]), float(out[1])
    print(f"process RSS before: {before:.1f} MiB, after: {after:.1f} MiB")
    print(f"1,000 disks cost: {after - before:.1f} MiB (target < 512 MiB; data alone 62.5 MiB)\n")


def make_disk(capacity: int, data: int, seed: int = 2) -> LayeredDisk:
    rnd = random.Random(seed)
    disk = LayeredDisk(capacity)
    chunk = rnd.randbytes(4 * MiB)
    for _ in range(data // (4 * MiB)):
        disk.write(rnd.randrange(0, capacity // (4 * MiB)) * 4 * MiB, chunk)
    return disk


def raw_from_disk(disk: LayeredDisk, path: Path) -> None:
    with path.open("wb") as f:
        f.truncate(disk.capacity)
        for off, length in disk.allocated_areas():
            f.seek(off)
            f.write(disk.read(off, length))


def bench_vmdk() -> None:
    qemu = shutil.which("qemu-img")
    print("## 3. write_vmdk vs qemu-img convert -O vmdk (same data)\n")
    capacity, data = 16 * GiB, 256 * MiB
    disk = make_disk(capacity, data)
    print(
        f"disk: {capacity // GiB} GiB capacity, {disk.allocated_grains() * 64 // 1024} MiB "
        "allocated in 4 MiB runs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        raw = t / "src.raw"
        raw_from_disk(disk, raw)
        print(f"{'format':<22}{'write_vmdk s':>14}{'qemu-img s':>12}{'ratio':>8}  command")
        for split, sub in ((True, "twoGbMaxExtentSparse"), (False, "monolithicSparse")):
            target = t / f"ours-{sub}.vmdk"
            ours = timed(lambda s=split, p=target: write_vmdk(disk.view(), p, split=s))
            cmd = [
                "qemu-img",
                "convert",
                "-O",
                "vmdk",
                "-o",
                f"subformat={sub}",
                str(raw),
                str(t / f"qemu-{sub}.vmdk"),
            ]
            if qemu:
                theirs = timed(lambda c=cmd: subprocess.run(c, check=True))
                ratio = f"{theirs / ours:>8.2f}"
                shown = " ".join(cmd).replace(tmp, "$TMP")
            else:
                theirs, ratio, shown = float("nan"), "     n/a", "(qemu-img not installed)"
            print(f"{sub:<22}{ours:>14.3f}{theirs:>12.3f}{ratio}  {shown}")
    print("\nratio = qemu-img time / write_vmdk time (> 1: write_vmdk faster)")
    tib = LayeredDisk(4 * TiB)
    tib.write(3 * TiB, b"x" * MiB)
    with tempfile.TemporaryDirectory() as tmp:
        mono = timed(lambda: write_vmdk(tib.view(), Path(tmp) / "big.vmdk", split=False))
        spl = timed(lambda: write_vmdk(tib.view(), Path(tmp) / "bigs.vmdk", split=True))
        files = [Path(tmp) / "big.vmdk"]
        files2 = sorted(Path(tmp).glob("bigs*.vmdk"))
        size = sum(os.path.getsize(f) for f in files) / MiB
    print(
        f"4 TiB disk with 1 MiB data: monolithicSparse {mono * 1e3:.1f} ms ({size:.2f} MiB), "
        f"twoGbMaxExtentSparse {spl * 1e3:.1f} ms ({len(files2)} files)\n"
    )


def main() -> None:
    print(f"command: python benchmarks/bench_disk.py   (Python {sys.version.split()[0]})\n")
    bench_snapshot()
    bench_rss()
    bench_vmdk()


if __name__ == "__main__":
    if sys.argv[1:] == ["--rss-child"]:
        rss_child()
    else:
        main()
