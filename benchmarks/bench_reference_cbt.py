"""Benchmark: full against incremental image backups (changed block tracking) by disk capacity.

Run: ``python benchmarks/bench_reference_cbt.py`` (prints a table; ``--json`` for a document,
``--repeat N`` for the median of N runs; no assertions on time).

On an ``esxi-7.0`` host, one VM with a 16 GiB disk and one with a 256 GiB disk, each holding
the same 64 MiB of data (1 MiB blocks spread evenly over the disk). For each: the proxy's
first ``--kind incremental`` backup (it enables CBT, so it is the baseline full), then ~1 MiB
changes (16 writes of 64 KiB spread over the disk), then

- a **full** image backup of that state (``kind=full``: every allocated area exported as
  VMDK and stored), and
- an **incremental** of the same state (``kind=incremental``, on its own medium that holds
  only the baseline: only the areas ``QueryChangedDiskAreas`` reports).

Columns: wall seconds of the whole workflow (WF-1 ... WF-3b), the bytes the catalog records as
copied to the medium, and how much the medium's blob store really grew (after dedup). The
incremental's figures should not grow with the capacity; the full's bytes follow the data,
its time a little the capacity (one VMDK extent file per 2 GiB).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from vcbsim.reference import BackupProxy, Catalog, InProcessHostClient
from vcbsim.simulator._host import Host

MiB = 1 << 20
GiB = 1 << 30
CAPACITIES = (16 * GiB, 256 * GiB)


def store_bytes(cat: Catalog) -> int:
    return sum(p.stat().st_size for p in cat.store.root.rglob("*") if p.is_file())


def fill(host: Any, vm: Any, capacity: int, blocks: int, size: int, tag: int) -> None:
    """``blocks`` writes of ``size`` bytes, spread evenly, 64 KiB aligned (CBT's grain)."""
    dev = host.guest_device(vm, 2000)
    step = capacity // blocks
    for i in range(blocks):
        off = i * step + (tag * 7919 * 65536) % (step - size) // 65536 * 65536
        dev.write(off, bytes([tag, i % 251]) * (size // 2))


def timed_backup(proxy: BackupProxy, cat: Catalog, vm: str, kind: str) -> tuple[float, int, int, Any]:
    before = store_bytes(cat)
    t = time.perf_counter()
    res = proxy.backup(f"name:{vm}", "fullvm", catalog=cat, kind=kind)
    dt = time.perf_counter() - t
    assert res.ok, res.summary()
    return dt, res.bytes_stored, store_bytes(cat) - before, res


def one_run(tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for capacity in CAPACITIES:
        name = f"cbt-{capacity // GiB}g"
        host = Host("esxi-7.0")
        vm = host.add_vm(name, disks=[capacity])
        fill(host, vm, capacity, blocks=64, size=MiB, tag=1)  # 64 MiB of data
        base = tmp / name
        proxy = BackupProxy(InProcessHostClient(host), base / "proxy")
        with Catalog(base / "medium-full") as full_cat, Catalog(base / "medium-incr") as incr_cat:
            for cat in (full_cat, incr_cat):  # the baseline on both media (enables CBT once)
                _dt, _b, _g, res = timed_backup(proxy, cat, name, "incremental")
                assert res.level == "full"
            fill(host, vm, capacity, blocks=16, size=64 * 1024, tag=2)  # ~1 MiB changes
            f_dt, f_bytes, f_grew, f_res = timed_backup(proxy, full_cat, name, "full")
            # the incremental of the same state, on the medium whose last backup is the baseline
            i_dt, i_bytes, i_grew, i_res = timed_backup(proxy, incr_cat, name, "incremental")
            assert f_res.level == "full" and i_res.level == "incremental", i_res.stored()
        rows.append({"capacity_gib": capacity // GiB, "kind": "full", "seconds": f_dt, "bytes_stored": f_bytes, "medium_grew": f_grew})
        rows.append({"capacity_gib": capacity // GiB, "kind": "incremental", "seconds": i_dt, "bytes_stored": i_bytes, "medium_grew": i_grew})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs; the median is shown")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ns = ap.parse_args()
    runs = []
    for _ in range(ns.repeat):
        with tempfile.TemporaryDirectory(prefix="vcbsim-bench-cbt-") as tmp:
            runs.append(one_run(Path(tmp)))
    rows = []
    for i, first in enumerate(runs[0]):
        rows.append({**first, "seconds": statistics.median(r[i]["seconds"] for r in runs)})
    if ns.json:
        print(json.dumps(rows, indent=2))
        return
    print("image backup after ~1 MiB changed (64 MiB of data on the disk); median of", ns.repeat, "runs")
    print(f"{'disk':>8}  {'kind':<12} {'seconds':>9} {'bytes stored':>14} {'medium grew':>13}")
    for r in rows:
        print(f"{r['capacity_gib']:>5} GiB  {r['kind']:<12} {r['seconds']:>9.3f} {r['bytes_stored']:>14,} {r['medium_grew']:>13,}")
    by = {(r["capacity_gib"], r["kind"]): r for r in rows}
    lo, hi = (c // GiB for c in CAPACITIES)
    for kind in ("full", "incremental"):
        a, b = by[(lo, kind)], by[(hi, kind)]
        print(f"{kind}: {hi} GiB / {lo} GiB = {b['seconds'] / a['seconds']:.2f}x time, "
              f"{b['bytes_stored'] / a['bytes_stored']:.2f}x bytes")


if __name__ == "__main__":
    main()
