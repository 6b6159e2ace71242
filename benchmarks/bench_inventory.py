"""Whole-inventory property reads and concurrent small reads: ``vcbsim`` against vcsim.

    python benchmarks/bench_inventory.py                       # 1k / 5k / 10k VMs, 1 / 4 / 16 clients
    python benchmarks/bench_inventory.py --quick               # smallest sizes (a smoke run)
    python benchmarks/bench_inventory.py --sizes 5000 --clients 1 --json-out inv.json

Two measures, each on a fresh server process per inventory size (plain HTTP on loopback), the
same client code for both servers:

* **Inventory read**: the name, power state and devices (``name``, ``runtime.powerState``,
  ``config.hardware.device``) of every VM through a ``ContainerView`` of the root folder and one
  ``RetrievePropertiesEx`` without ``maxObjects``, followed by ``ContinueRetrievePropertiesEx``
  while the answer carries a token (the loop pyVmomi's and govmomi's users write). The first
  read after the view is made is reported apart from the best of the later ones (a server that
  caches pays on the first).
* **Concurrent reads**: 1, 4 and 16 client processes (``--clients``), each with its own session,
  reading ``name`` and ``runtime.powerState`` of one VM (a different one each time) with
  ``RetrievePropertiesEx`` until ``--reads`` reads are done between them, on the smallest
  inventory: reads per second and server CPU per read.

Server CPU is the server process's user+system time from ``/proc/<pid>/stat`` over the reads
(stable on a shared machine where wall time is not). The clients log in and make their views
with pyVmomi; the timed requests are the bytes pyVmomi's own ``SerializeRequest`` writes, sent
with ``http.client`` and checked (status, object count, devices present) without being
deserialised, so client CPU, which would compete with the server for the cores, stays small.

vcsim (govmomi's simulator, ``-esx -vm N``) is found with ``--vcsim``, ``VCSIM`` or
``benchmarks/.cache/vcsim`` (``build-vcsim.sh`` from the shared tools builds it); without it the
vcbsim columns are printed alone. No assertions on time: the figures are for people and for the
report (``--json-out``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import re
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_soap import PASSWORD, USER, cpu_seconds, find_vcsim, free_port, rss_kib, start_server  # noqa: E402

PC = vmodl.query.PropertyCollector
INVENTORY_PATHS = ["name", "runtime.powerState", "config.hardware.device"]
SMALL_PATHS = ["name", "runtime.powerState"]
READY = {"vcbsim": re.compile(r"READY http://127\.0\.0\.1:\d+/sdk"), "vcsim": re.compile(r"GOVC_URL=")}
TOKEN = re.compile(rb"<token>([^<]+)</token>")
VM_OBJECT = b'<obj type="VirtualMachine">'


# --- servers ---------------------------------------------------------------------------------


def build_host(n: int) -> Any:
    """A host of ``n`` VMs (every third powered off), one small disk each."""
    from vcbsim.simulator._host import Host, MiB

    host = Host("esx-3.5u2", seed=0)
    for i in range(n):
        host.add_vm(f"vm{i:05}", disks=[4 * MiB], power_state="poweredOff" if i % 3 == 2 else "poweredOn",
                    tools="running" if i % 3 != 2 else "not-running")
    return host


def serve_vcbsim(n: int, port: int) -> int:
    """The vcbsim server process: an inventory of ``n`` VMs until terminated."""
    from vcbsim.simulator.soap import serve

    host = build_host(n)
    with serve(host, port=port, http=True, user=USER, password=PASSWORD) as running:
        print(f"READY {running.url}", flush=True)
        threading.Event().wait()
    return 0


def server_argv(name: str, n: int, port: int, vcsim: str | None) -> list[str]:
    if name == "vcsim":
        assert vcsim is not None
        return [vcsim, "-esx", "-vm", str(n), "-l", f"127.0.0.1:{port}", "-tls=false",
                "-username", USER, "-password", PASSWORD]
    return [sys.executable, str(Path(__file__).resolve()), "--serve-vcbsim", str(n), "--port", str(port)]


@contextlib.contextmanager
def running_server(name: str, n: int, vcsim: str | None) -> Iterator[tuple[Any, int, float]]:
    """(server, port, seconds to start) for a fresh server of ``n`` VMs."""
    port = free_port()
    t0 = time.perf_counter()
    with start_server(name, server_argv(name, n, port, vcsim), port, READY[name]) as server:
        yield server, port, time.perf_counter() - t0


# --- the client ------------------------------------------------------------------------------


class RawClient:
    """Sends requests pyVmomi serialises, on one keep-alive connection of a pyVmomi session."""

    def __init__(self, port: int) -> None:
        self.si = SmartConnect(host="127.0.0.1", port=port, user=USER, pwd=PASSWORD, protocol="http")
        self.stub = self.si._stub
        content = self.si.RetrieveContent()
        self.content = content
        self.pc = content.propertyCollector
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.headers = {"Cookie": self.stub.cookie, "SOAPAction": self.stub.versionId,
                        "Content-Type": "text/xml; charset=UTF-8"}
        self._retrieve = PC._GetMethodInfo("RetrievePropertiesEx")
        self._continue = PC._GetMethodInfo("ContinueRetrievePropertiesEx")

    def close(self) -> None:
        self.conn.close()
        with contextlib.suppress(Exception):
            Disconnect(self.si)

    def vm_view(self) -> Any:
        return self.content.viewManager.CreateContainerView(self.content.rootFolder, [vim.VirtualMachine], True)

    def retrieve_body(self, spec: Any) -> bytes:
        return _bytes(self.stub.SerializeRequest(self.pc, self._retrieve, [[spec], PC.RetrieveOptions()]))

    def post(self, body: bytes) -> bytes:
        self.conn.request("POST", "/sdk", body, self.headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {data[:600]!r}")
        return data

    def read_all(self, body: bytes) -> tuple[int, int, int, int]:
        """(objects, pages, bytes, disks seen) of one retrieval and its continuations."""
        data = self.post(body)
        objects, pages, size, disks = 0, 0, 0, 0
        while True:
            objects += data.count(VM_OBJECT)
            disks += data.count(b'type="VirtualDisk"')  # the device's xsi:type, whatever its prefix
            pages += 1
            size += len(data)
            m = TOKEN.search(data)
            if m is None:
                return objects, pages, size, disks
            body = _bytes(self.stub.SerializeRequest(self.pc, self._continue, [m.group(1).decode()]))
            data = self.post(body)


def _bytes(text: str | bytes) -> bytes:
    """``SerializeRequest`` answers bytes (pyVmomi 8) or text (older releases)."""
    return text if isinstance(text, bytes) else text.encode()


def inventory_spec(view: Any, paths: list[str]) -> Any:
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[
            PC.TraversalSpec(name="traverseEntities", type=vim.view.ContainerView, path="view", skip=False)])],
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, all=False, pathSet=paths)],
    )


def vm_spec(vm: Any, paths: list[str]) -> Any:
    return PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vm, skip=False)],
                         propSet=[PC.PropertySpec(type=vim.VirtualMachine, all=False, pathSet=paths)])


# --- measures --------------------------------------------------------------------------------


@dataclass
class InventoryRead:
    server: str
    vms: int
    start_s: float = 0.0
    rss_mib: float = 0.0
    objects: int = 0
    pages: int = 0
    mib: float = 0.0
    first_cpu_s: float = 0.0
    first_wall_s: float = 0.0
    best_cpu_s: float = 0.0
    best_wall_s: float = 0.0
    median_cpu_s: float = 0.0
    repeats: int = 0
    error: str | None = None


@dataclass
class Concurrent:
    server: str
    vms: int
    clients: int
    reads: int = 0
    wall_s: float = 0.0
    reads_per_s: float = 0.0
    server_cpu_us_per_read: float = 0.0
    error: str | None = None


@dataclass
class Report:
    sizes: list[int]
    clients: list[int]
    reads: int
    repeat: int
    inventory: list[InventoryRead] = field(default_factory=list)
    concurrent: list[Concurrent] = field(default_factory=list)


def measure_inventory(server: Any, port: int, name: str, n: int, repeat: int) -> InventoryRead:
    out = InventoryRead(server=name, vms=n, rss_mib=rss_kib(server.pid) / 1024)
    client = RawClient(port)
    try:
        body = client.retrieve_body(inventory_spec(client.vm_view(), INVENTORY_PATHS))
        runs: list[tuple[float, float]] = []
        for _ in range(1 + repeat):
            c0, w0 = cpu_seconds(server.pid), time.perf_counter()
            objects, pages, size, disks = client.read_all(body)
            runs.append((cpu_seconds(server.pid) - c0, time.perf_counter() - w0))
            if objects != n or disks < n:
                raise RuntimeError(f"read {objects} VMs and {disks} disks of {n} VMs")
            out.objects, out.pages, out.mib = objects, pages, size / 2**20
        out.first_cpu_s, out.first_wall_s = runs[0]
        later = runs[1:] or runs
        out.best_cpu_s = min(c for c, _ in later)
        out.best_wall_s = min(w for _, w in later)
        out.median_cpu_s = statistics.median(c for c, _ in later)
        out.repeats = len(later)
    finally:
        client.close()
    return out


def _worker(port: int, n: int, reads: int, offset: int, start: Any, done: Any) -> None:
    """One client process: log in, warm up, wait for the start, ``reads`` small reads."""
    try:
        client = RawClient(port)
        view = client.vm_view()
        vms = list(view.view)
        bodies = [client.retrieve_body(vm_spec(vms[(offset + i) % len(vms)], SMALL_PATHS))
                  for i in range(min(reads, 64))]
        for b in bodies[:5]:
            client.post(b)
        done.put(("ready", offset))
        start.wait()
        t0 = time.perf_counter()
        for i in range(reads):
            data = client.post(bodies[i % len(bodies)])
            if data.count(VM_OBJECT) != 1:
                raise RuntimeError(f"a small read answered {data[:300]!r}")
        done.put(("done", time.perf_counter() - t0))
        client.close()
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        done.put(("error", f"{type(exc).__name__}: {exc}"[:300]))


def measure_concurrent(server: Any, port: int, name: str, n: int, clients: int, reads: int) -> Concurrent:
    out = Concurrent(server=name, vms=n, clients=clients)
    ctx = mp.get_context("spawn")
    start, done = ctx.Event(), ctx.Queue()
    per = max(1, reads // clients)
    procs = [ctx.Process(target=_worker, args=(port, n, per, k * 997, start, done)) for k in range(clients)]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            kind, value = done.get(timeout=300)
            if kind == "error":
                raise RuntimeError(value)
        c0, w0 = cpu_seconds(server.pid), time.perf_counter()
        start.set()
        for _ in procs:
            kind, value = done.get(timeout=600)
            if kind == "error":
                raise RuntimeError(value)
        out.wall_s = time.perf_counter() - w0
        cpu = cpu_seconds(server.pid) - c0
        out.reads = per * clients
        out.reads_per_s = out.reads / out.wall_s
        out.server_cpu_us_per_read = cpu * 1e6 / out.reads
    except Exception as exc:  # noqa: BLE001 - a failed measure is reported, the others go on
        out.error = str(exc)[:300]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
    return out


def run(sizes: list[int], clients: list[int], reads: int, repeat: int, servers: list[str],
        vcsim: str | None) -> Report:
    report = Report(sizes=sizes, clients=clients, reads=reads, repeat=repeat)
    for n in sizes:
        for name in servers:
            print(f"{name}: {n:,} VMs ...", file=sys.stderr, flush=True)
            with running_server(name, n, vcsim) as (server, port, started):
                try:
                    inv = measure_inventory(server, port, name, n, repeat)
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    inv = InventoryRead(server=name, vms=n, error=f"{type(exc).__name__}: {exc}"[:300])
                inv.start_s = started
                report.inventory.append(inv)
                if n == sizes[0]:
                    for k in clients:
                        print(f"{name}: {k} client(s) ...", file=sys.stderr, flush=True)
                        report.concurrent.append(measure_concurrent(server, port, name, n, k, reads))
    return report


# --- report ----------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def ratios(report: Report) -> dict[str, float | None]:
    """vcbsim / vcsim server CPU (below 1: vcbsim is cheaper), by measure."""
    out: dict[str, float | None] = {}
    inv = {(r.server, r.vms): r for r in report.inventory if not r.error}
    for n in report.sizes:
        a, b = inv.get(("vcbsim", n)), inv.get(("vcsim", n))
        out[f"inventory {n} first (cpu)"] = a.first_cpu_s / b.first_cpu_s if a and b and b.first_cpu_s else None
        out[f"inventory {n} best (cpu)"] = a.best_cpu_s / b.best_cpu_s if a and b and b.best_cpu_s else None
    conc = {(r.server, r.clients): r for r in report.concurrent if not r.error}
    for k in report.clients:
        a2, b2 = conc.get(("vcbsim", k)), conc.get(("vcsim", k))
        ok = a2 and b2 and b2.server_cpu_us_per_read
        out[f"read x{k} cpu per read"] = a2.server_cpu_us_per_read / b2.server_cpu_us_per_read if ok else None  # type: ignore[union-attr]
        out[f"read x{k} throughput"] = a2.reads_per_s / b2.reads_per_s if ok else None  # type: ignore[union-attr]
    return out


def table(report: Report) -> str:
    lines = [
        "Inventory read: name, runtime.powerState, config.hardware.device of every VM",
        "(ContainerView + RetrievePropertiesEx without maxObjects, continued while a token comes;",
        f"server CPU and wall in seconds; best and median of {report.repeat} reads after the first)",
        "",
        "| VMs | server | start s | RSS MiB | pages | answer MiB | first CPU | first wall | best CPU | median CPU | best wall |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report.inventory:
        if r.error:
            lines.append(f"| {r.vms:,} | {r.server} | failed: {r.error} |")
            continue
        lines.append(f"| {r.vms:,} | {r.server} | {r.start_s:.1f} | {r.rss_mib:.0f} | {r.pages} | {r.mib:.1f} | "
                     f"{r.first_cpu_s:.3f} | {r.first_wall_s:.3f} | {r.best_cpu_s:.3f} | {r.median_cpu_s:.3f} | "
                     f"{r.best_wall_s:.3f} |")
    by = {(r.server, r.vms): r for r in report.inventory if not r.error}
    lines += ["", "| VMs | vcbsim / vcsim server CPU, first read | best read | best wall |", "| ---: | ---: | ---: | ---: |"]
    for n in report.sizes:
        a, b = by.get(("vcbsim", n)), by.get(("vcsim", n))
        if a and b:
            lines.append(f"| {n:,} | {_ratio(a.first_cpu_s, b.first_cpu_s)} | {_ratio(a.best_cpu_s, b.best_cpu_s)} | "
                         f"{_ratio(a.best_wall_s, b.best_wall_s)} |")
    if report.concurrent:
        n = report.concurrent[0].vms
        lines += [
            "",
            f"Concurrent reads: name + runtime.powerState of one VM per RetrievePropertiesEx, {n:,} VMs,",
            f"{report.reads:,} reads shared by the clients (one process and session each)",
            "",
            "| clients | server | reads/s | server CPU µs per read | vcbsim/vcsim CPU per read | throughput |",
            "| ---: | --- | ---: | ---: | ---: | ---: |",
        ]
        conc = {(c.server, c.clients): c for c in report.concurrent}
        for c in report.concurrent:
            if c.error:
                lines.append(f"| {c.clients} | {c.server} | failed: {c.error} |")
                continue
            peer = conc.get(("vcsim", c.clients))
            cmp = " | |"
            if c.server == "vcbsim" and peer is not None and not peer.error:
                cmp = (f" {_ratio(c.server_cpu_us_per_read, peer.server_cpu_us_per_read)} |"
                       f" {_ratio(c.reads_per_s, peer.reads_per_s)} |")
            lines.append(f"| {c.clients} | {c.server} | {c.reads_per_s:,.0f} | {c.server_cpu_us_per_read:,.0f} |{cmp}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sizes", default="1000,5000,10000", help="VMs per inventory, comma-separated")
    p.add_argument("--clients", default="1,4,16", help="concurrent clients, comma-separated (at most 32)")
    p.add_argument("--reads", type=int, default=4000, help="small reads per concurrency level (default 4,000)")
    p.add_argument("--repeat", type=int, default=3, help="inventory reads after the first (default 3)")
    p.add_argument("--quick", action="store_true", help="20 VMs, 1 and 2 clients, 40 reads (a smoke run)")
    p.add_argument("--servers", default="vcbsim,vcsim", help="comma-separated: vcbsim, vcsim")
    p.add_argument("--vcsim", help="path of a vcsim binary (or VCSIM in the environment)")
    p.add_argument("--build-script", help="script building vcsim into a directory (or VCSIM_BUILD)")
    p.add_argument("--json-out", metavar="PATH", help="also write the figures as JSON")
    p.add_argument("--serve-vcbsim", type=int, metavar="N", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_vcbsim is not None:
        return serve_vcbsim(args.serve_vcbsim, args.port)
    if args.quick:
        args.sizes, args.clients, args.reads, args.repeat = "20", "1,2", 40, 1
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        clients = [int(s) for s in args.clients.split(",") if s.strip()]
    except ValueError:
        p.error("--sizes and --clients take comma-separated whole numbers, e.g. --sizes 1000,5000")
    if not sizes or any(not 1 <= s <= 100_000 for s in sizes):
        p.error("--sizes: each from 1 to 100,000 VMs")
    if any(not 1 <= k <= 32 for k in clients):
        p.error("--clients: each from 1 to 32")
    if not 1 <= args.reads <= 1_000_000 or not 0 <= args.repeat <= 100:
        p.error("--reads from 1 to 1,000,000 and --repeat from 0 to 100")
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in servers:
        if s not in READY:
            p.error(f"unknown server {s!r} (vcbsim, vcsim)")
    vcsim = find_vcsim(args.vcsim, args.build_script) if "vcsim" in servers else None
    if "vcsim" in servers and vcsim is None:
        print("vcsim not found (--vcsim PATH, VCSIM=..., or --build-script): vcbsim only", file=sys.stderr)
        servers.remove("vcsim")
    report = run(sizes, clients, args.reads, args.repeat, servers, vcsim)
    print(table(report))
    if args.json_out:
        doc = {"benchmark": "inventory-read", **asdict(report), "ratios": ratios(report),
               "machine": {"cpus": os.cpu_count()}}
        Path(args.json_out).write_text(json.dumps(doc, indent=2) + "\n")
    failed = [r for r in report.inventory if r.error] + [r for r in report.concurrent if r.error]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
