"""Benchmarks for the persisted datastore: what keeping disks as files costs.

Run: ``python benchmarks/bench_persist.py`` (prints a table; no assertions on time).

1. write throughput (MiB/s, writes/s) of 4 KiB and 256 KiB random writes: in memory, persisted
   to the flat base (WAL + in-place), persisted to a redo log (grain log), and with
   ``sync_writes`` (an fsync per write);
2. snapshot + 64 MiB written + commit (remove snapshot) on a 2 GiB and a 2 TiB disk, persisted:
   the ratio should be ~1 (cost follows the data, not the capacity);
3. reopening a datastore directory (load + recovery) with that data.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from vcbsim.simulator._host import Host
from vcbsim.simulator.disk import LayeredDisk
from vcbsim.simulator.disk._persistent import PersistentLayeredDisk

MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40


def throughput(disk: LayeredDisk, size: int, total: int, seed: int = 1) -> tuple[float, float]:
    """(MiB/s, writes/s) of random ``size``-byte writes adding up to ``total`` bytes."""
    rng = random.Random(seed)
    data = rng.randbytes(size)
    span = 256 * MiB - size
    offsets = [rng.randrange(0, span) // 512 * 512 for _ in range(total // size)]
    t = time.perf_counter()
    for off in offsets:
        disk.write(off, data)
    dt = time.perf_counter() - t
    return total / MiB / dt, len(offsets) / dt


def bench_writes() -> None:
    print("random writes over 256 MiB         4 KiB: MiB/s  writes/s   256 KiB: MiB/s  writes/s")
    with tempfile.TemporaryDirectory() as tmp:
        cases: list[tuple[str, object]] = [
            ("in memory", None),
            ("flat base (WAL)", "flat"),
            ("redo log", "delta"),
            ("redo log, fsync each", "sync"),
        ]
        for name, kind in cases:
            row = []
            for size, total in ((4096, 16 * MiB), (256 * 1024, 128 * MiB)):
                if kind is None:
                    disk: LayeredDisk = LayeredDisk(1 * GiB)
                else:
                    d = Path(tmp) / f"{kind}-{size}"
                    pdisk = PersistentLayeredDisk(1 * GiB, d, sync=kind == "sync")
                    pdisk.base.label = "b.vmdk"
                    if kind != "flat":
                        pdisk.freeze()
                        pdisk.top.label = "b-000001.vmdk"
                    disk = pdisk
                if kind == "sync":
                    total //= 16
                row += throughput(disk, size, total)
                if isinstance(disk, PersistentLayeredDisk):
                    disk.close()
            print(f"{name:<34} {row[0]:>10.1f} {row[1]:>9.0f}   {row[2]:>14.1f} {row[3]:>9.0f}")


def commit_cycle(capacity: int, tmp: Path) -> tuple[float, float, float]:
    """(write s, commit s, reopen s) for 64 MiB written under a snapshot, persisted."""
    host = Host(datastore_dir=tmp)
    vm = host.add_vm("bench", disks=[capacity], power_state="poweredOff", tools="not-installed")
    dev = host.guest_device(vm, vm.disks[0].key)
    rng = random.Random(2)
    chunk = rng.randbytes(MiB)
    for _n in range(16):
        dev.write(rng.randrange(0, capacity - MiB) // 512 * 512, chunk)
    host.create_snapshot(vm, "_VCB-BACKUP_")
    t = time.perf_counter()
    for _n in range(64):
        dev.write(rng.randrange(0, capacity - MiB) // 512 * 512, chunk)
    t_write = time.perf_counter() - t
    t = time.perf_counter()
    host.remove_snapshot(vm, "_VCB-BACKUP_")
    t_commit = time.perf_counter() - t
    assert host.store is not None
    host.store.close()
    t = time.perf_counter()
    Host(datastore_dir=tmp)
    return t_write, t_commit, time.perf_counter() - t


def bench_commit() -> None:
    print("\nsnapshot + 64 MiB + commit, persisted   write s   commit s   reopen s")
    results = {}
    for label, cap in (("2 GiB", 2 * GiB), ("2 TiB", 2 * TiB)):
        with tempfile.TemporaryDirectory() as tmp:
            results[label] = commit_cycle(cap, Path(tmp))
        w, c, r = results[label]
        print(f"{label:<39} {w:>8.3f} {c:>10.3f} {r:>10.3f}")
    ratio = results["2 TiB"][1] / max(results["2 GiB"][1], 1e-9)
    print(f"commit time ratio 2 TiB / 2 GiB: {ratio:.2f}")


if __name__ == "__main__":
    bench_writes()
    bench_commit()
