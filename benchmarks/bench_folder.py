"""Benchmark: ``/folder`` downloads against the size of the inventory (1, 100, 1,000 VMs).

Run: ``python benchmarks/bench_folder.py [--vms 1,100,1000] [--mib 64] [--repeat 3] [--json]``
(prints a table; no assertions on time).

For each inventory size a host gets that many VMs (the first one with a ``--mib`` MiB disk
holding data, the others with small disks), ``vcbsim serve`` runs in this process on
loopback, and the first VM's ``-flat.vmdk`` (the whole disk) and ``.vmx`` are downloaded with
``http.client`` (Basic credentials), ``--repeat`` times; the best run is kept. Figures: MiB/s
by wall time and by CPU time (this process: server and client threads together, so stable on
a shared machine), and each size's ratio to 1 VM. The issue's target: at 1,000 VMs within
10% of 1 VM. vcsim is not measured here (its ``/folder`` serves files of its own temporary
datastore, not a disk of the same data); the SOAP benchmark compares the two servers.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import ssl
import time
from typing import Any

from vcbsim.simulator._host import Host, MiB
from vcbsim.simulator.soap import serve

AUTH = {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()}
Q = "?dcPath=ha-datacenter&dsName=datastore1"


def build(n: int, mib: int) -> Host:
    host = Host("esx-3.5u2", seed=0)
    big = host.add_vm("vm0000", disks=[mib * MiB])
    for off in range(0, mib * MiB, 4 * MiB):
        big.disks[0].disk.write(off, bytes([off // MiB % 251]) * 65536)
    for i in range(1, n):
        host.add_vm(f"vm{i:04}", disks=[4 * MiB])
    return host


def download(port: int, path: str) -> tuple[int, float, float]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl._create_unverified_context())
    c0, w0 = time.process_time(), time.perf_counter()
    try:
        conn.request("GET", path, headers=AUTH)
        resp = conn.getresponse()
        n = 0
        while chunk := resp.read(1 << 20):
            n += len(chunk)
        assert resp.status == 200, resp.status
    finally:
        conn.close()
    return n, time.process_time() - c0, time.perf_counter() - w0


def measure(n: int, mib: int, repeat: int) -> dict[str, Any]:
    host = build(n, mib)
    out: dict[str, Any] = {"vms": n}
    with serve(host, port=0) as running:
        download(running.port, f"/folder/vm0000/vm0000.vmx{Q}")  # warm up (and the folder index)
        for name, path in (("flat", f"/folder/vm0000/vm0000-flat.vmdk{Q}"), ("vmx", f"/folder/vm0000/vm0000.vmx{Q}")):
            runs = [download(running.port, path) for _ in range(repeat)]
            size = runs[0][0]
            cpu, wall = min(r[1] for r in runs), min(r[2] for r in runs)
            out[name] = {"bytes": size, "cpu": cpu, "wall": wall,
                         "mib_s_cpu": size / MiB / cpu if cpu else None, "mib_s_wall": size / MiB / wall}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vms", default="1,100,1000")
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json-out", help="also write the JSON document to this file (the table is printed)")
    ap.add_argument("--json", action="store_true")
    ns = ap.parse_args()
    rows = [measure(int(v), ns.mib, ns.repeat) for v in ns.vms.split(",")]
    base = rows[0]
    for r in rows:
        r["flat_ratio_cpu"] = base["flat"]["cpu"] / r["flat"]["cpu"] if r["flat"]["cpu"] else None
        r["flat_ratio_wall"] = base["flat"]["wall"] / r["flat"]["wall"]
        r["vmx_ms_cpu"] = r["vmx"]["cpu"] * 1000
    if ns.json_out:
        with open(ns.json_out, "w") as fh:
            fh.write(json.dumps({"mib": ns.mib, "rows": rows}, indent=2) + "\n")
    if ns.json:
        print(json.dumps({"mib": ns.mib, "rows": rows}, indent=2))
        return 0
    print(f"/folder download of a {ns.mib} MiB -flat.vmdk and a .vmx (best of {ns.repeat})\n")
    print("| VMs | flat MiB/s (CPU) | flat MiB/s (wall) | throughput vs 1st row (CPU) | (wall) | .vmx CPU ms |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        f = r["flat"]
        print(f"| {r['vms']:,} | {f['mib_s_cpu']:.0f} | {f['mib_s_wall']:.0f} | {r['flat_ratio_cpu']:.2f} | "
              f"{r['flat_ratio_wall']:.2f} | {r['vmx_ms_cpu']:.2f} |")
    print("\nTarget: throughput at 1,000 VMs within 10% of 1 VM (ratio >= 0.90).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
