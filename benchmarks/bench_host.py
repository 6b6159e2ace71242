"""Host-level memory and snapshot-cost benchmark.

    python benchmarks/bench_host.py [--vms 1000]

Prints:
* RSS of a host with N VMs (default 1,000), each with a 100 GiB disk holding 64 KiB written,
  against the same interpreter before the host existed (target: under 512 MiB);
* a quiesced-free snapshot + 64 MiB written + commit on a VM with a 2 GiB disk and on one with a
  2 TiB disk, side by side (cost must follow the data written, not the capacity).

No assertions: figures are printed for people and for the benchmark report.
"""

from __future__ import annotations

import argparse
import gc
import json
import time

from vcbsim.simulator import Host

GiB = 1024**3
MiB = 1024**2


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_memory(n: int) -> dict[str, float]:
    gc.collect()
    before = rss_mib()
    t0 = time.perf_counter()
    host = Host("esxi-7.0", datastore_capacity=1024 * 1024 * GiB)
    for i in range(n):
        vm = host.add_vm(f"vm{i:04d}", os_family="linux", disks=[100 * GiB])
        vm.disks[0].disk.write(i * MiB, b"\xa5" * 65536)
    build = time.perf_counter() - t0
    gc.collect()
    after = rss_mib()
    return {"vms": n, "rss_before_mib": before, "rss_after_mib": after, "host_mib": after - before, "build_s": build}


def _commit_once(capacity: int) -> tuple[float, float, int]:
    host = Host("esxi-7.0")
    vm = host.add_vm("big", os_family="linux", disks=[capacity], tools="not-running")
    disk = vm.disks[0].disk
    chunk = b"\x5a" * MiB
    for i in range(128):  # the base holds 128 MiB, so the commit has to move real grains
        disk.write(i * 8 * MiB, chunk)
    t0 = time.perf_counter()
    snap = host.create_snapshot(vm, "_VCB-BACKUP_")
    t1 = time.perf_counter()
    for i in range(64):  # 64 MiB written in snapshot mode
        disk.write(i * 16 * MiB + 4 * MiB, chunk)
    t2 = time.perf_counter()
    stats = host.remove_snapshot(vm, snap)
    t3 = time.perf_counter()
    return (t1 - t0) * 1000, (t3 - t2) * 1000, stats.grains_moved


def bench_commit(capacity: int, repeat: int = 15) -> dict[str, float]:
    runs = sorted(_commit_once(capacity) for _ in range(repeat))
    snap_ms = min(r[0] for r in runs)
    commit_ms = min(r[1] for r in runs)
    return {"capacity_gib": capacity / GiB, "snapshot_ms": snap_ms, "commit_ms": commit_ms, "grains_moved": runs[0][2]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ns = ap.parse_args()
    # memory first: the commit runs allocate and free gigabytes, which the allocator may keep
    mem = bench_memory(ns.vms)
    small, large = bench_commit(2 * GiB), bench_commit(2 * 1024 * GiB)
    result = {"memory": mem, "commit_2GiB": small, "commit_2TiB": large,
              "commit_ratio_2TiB_over_2GiB": (large["snapshot_ms"] + large["commit_ms"]) / (small["snapshot_ms"] + small["commit_ms"])}
    if ns.json:
        print(json.dumps(result, indent=2))
        return
    print("snapshot + 64 MiB written + commit (remove snapshot)")
    print(f"{'capacity':>10} {'snapshot ms':>12} {'commit ms':>10} {'grains moved':>13}   (best of 15)")
    for r in (small, large):
        print(f"{r['capacity_gib']:>8.0f}Gi {r['snapshot_ms']:>12.3f} {r['commit_ms']:>10.2f} {r['grains_moved']:>13}")
    print(f"ratio (2 TiB / 2 GiB, snapshot+commit): {result['commit_ratio_2TiB_over_2GiB']:.2f}")
    print()
    print(f"host with {mem['vms']} VMs x 100 GiB disk, 64 KiB written each:")
    print(f"  RSS {mem['rss_after_mib']:.1f} MiB (interpreter before: {mem['rss_before_mib']:.1f} MiB; host: {mem['host_mib']:.1f} MiB); built in {mem['build_s']:.2f} s")


if __name__ == "__main__":
    main()
