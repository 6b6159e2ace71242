"""Side-by-side benchmark of the SOAP endpoint: ``vcbsim serve`` against vcsim (govmomi).

    python benchmarks/bench_soap.py                   # 2,000 cycles per run
    python benchmarks/bench_soap.py --cycles 10000    # the issue's 10,000
    python benchmarks/bench_soap.py --json report.json --vcsim /path/to/vcsim

The same pyVmomi client code runs create-and-remove-snapshot cycles against each server, in
three ways of waiting for a task:

* ``WaitForTask``: ``pyVim.task.WaitForTask`` (a property filter and ``WaitForUpdatesEx``);
* ``poll task.info.state``: reading ``task.info.state`` until the task ends (pyVmomi fetches
  the whole ``TaskInfo``, as Ansible's modules do);
* ``poll info.state (collector)``: ``RetrievePropertiesEx`` of ``info.state`` only, which
  never deserialises ``TaskInfo.entity`` (the only way to use vcsim's remove tasks at all).

Every run gets a fresh server process (loopback, plain HTTP unless ``--https``), so the RSS
series of one run (sampled from ``/proc/<pid>/status`` every cycles/20) shows whether memory
stays flat. A cycle that raises counts as an error (the first message is reported); the run
goes on. vcsim is found with ``--vcsim``, the ``VCSIM`` environment variable, or
``benchmarks/.cache/vcsim``; ``--build-script`` (or ``VCSIM_BUILD``) names a script that builds
it into a directory (``build-vcsim.sh <outdir>``), run once and cached there. Without vcsim the
vcbsim column is printed alone.

No assertions: the figures are for people (the table) and for the benchmark report (``--json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
USER, PASSWORD = "user", "pass"
START_TIMEOUT = 60.0
#: a task that has not ended after this long is a hang, not slowness
TASK_TIMEOUT = 60.0

MODES: dict[str, str] = {
    "wait": "WaitForTask",
    "poll": "poll task.info.state",
    "collector": "poll info.state (collector)",
}


# --- servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[str]
    port: int
    output: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid


def _drain(proc: subprocess.Popen[str], sink: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if len(sink) < 200:
            sink.append(line.rstrip())


@contextlib.contextmanager
def start_server(
    name: str, argv: list[str], port: int, ready: re.Pattern[str], cwd: str | Path | None = None
) -> Iterator[Server]:
    """Start ``argv`` (in ``cwd``); ready when a line of its output matches ``ready``."""
    proc = subprocess.Popen(  # noqa: S603 - our own command lines, loopback only
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, cwd=cwd,
    )
    server = Server(name, proc, port)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{name} exited before it was ready: {' '.join(server.output)[-2000:]}")
            server.output.append(line.rstrip())
            if ready.search(line):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready after {START_TIMEOUT:.0f} s")
        threading.Thread(target=_drain, args=(proc, server.output), daemon=True).start()
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


#: events ``vcbsim serve`` keeps in memory for its control API. The trace is bounded anyway
#: (100,000 events by default, reached after some 10,000 cycles); a small bound makes it flat
#: from the start, so RSS growth over a run shows leaks, not the trace filling up.
TRACE_LIMIT = 1000


def vcbsim_argv(port: int, https: bool) -> list[str]:
    argv = [sys.executable, "-m", "vcbsim", "serve", "--port", str(port), "--user", USER, "--password", PASSWORD,
            "--trace-limit", str(TRACE_LIMIT)]
    return argv if https else [*argv, "--http"]


def vcsim_argv(binary: str, port: int, https: bool) -> list[str]:
    return [binary, "-esx", "-l", f"127.0.0.1:{port}", f"-tls={'true' if https else 'false'}",
            "-username", USER, "-password", PASSWORD]


SERVERS: dict[str, tuple[Callable[..., list[str]], re.Pattern[str]]] = {
    "vcbsim": (vcbsim_argv, re.compile(r"https?://127\.0\.0\.1:\d+/sdk")),
    "vcsim": (vcsim_argv, re.compile(r"GOVC_URL=")),
}


def find_vcsim(explicit: str | None, build_script: str | None) -> str | None:
    for candidate in (explicit, os.environ.get("VCSIM"), str(CACHE / "vcsim")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    if explicit:
        raise SystemExit(f"--vcsim {explicit}: not an executable file")
    script = build_script or os.environ.get("VCSIM_BUILD")
    if not script:
        return None
    print(f"building vcsim with {script} into {CACHE} (a minute or two) ...", file=sys.stderr)
    CACHE.mkdir(exist_ok=True)
    subprocess.run([script, str(CACHE)], check=True)  # noqa: S603 - the user's own script
    return str(CACHE / "vcsim")


# --- the client: the same code for both servers --------------------------------------------


class Client:
    def __init__(self, port: int, https: bool) -> None:
        kwargs: dict[str, Any] = {"disableSslCertValidation": True} if https else {"protocol": "http"}
        self.si = SmartConnect(host="127.0.0.1", port=port, user=USER, pwd=PASSWORD, **kwargs)
        content = self.si.RetrieveContent()
        self.pc = content.propertyCollector
        self.about = content.about.fullName
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        vms = sorted(view.view, key=lambda v: v.name)
        view.Destroy()
        if not vms:
            raise RuntimeError("the server has no VMs")
        self.vm = vms[0]
        self.vm_name = self.vm.name

    def close(self) -> None:
        with contextlib.suppress(Exception):
            Disconnect(self.si)

    # ways of waiting for a task -------------------------------------------------------------
    def wait(self, task: Any) -> Any:
        WaitForTask(task)
        return task.info.result

    def poll(self, task: Any) -> Any:
        deadline = time.monotonic() + TASK_TIMEOUT
        while True:
            info = task.info
            if info.state == "success":
                return info.result
            if info.state == "error":
                raise info.error
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task._moId} still {info.state}")

    def collector(self, task: Any) -> Any:
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=task, skip=False)],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.Task, pathSet=["info.state"])],
        )
        deadline = time.monotonic() + TASK_TIMEOUT
        while True:
            (obj,) = self.pc.RetrieveContents([spec])
            state = obj.propSet[0].val
            if state in ("success", "error"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task._moId} still {state}")
        paths = ["info.result"] if state == "success" else ["info.error"]
        spec.propSet[0].pathSet = paths
        (obj,) = self.pc.RetrieveContents([spec])
        val = obj.propSet[0].val if obj.propSet else None
        if state == "error":
            raise val
        return val

    def cycle(self, waiter: Callable[[Any], Any], n: int) -> None:
        snap = waiter(self.vm.CreateSnapshot_Task(f"bench-{n}", "bench_soap", False, False))
        if not isinstance(snap, vim.vm.Snapshot):
            raise TypeError(f"CreateSnapshot_Task result is {type(snap).__name__}, not a snapshot")
        waiter(snap.RemoveSnapshot_Task(removeChildren=False))

    def snapshot_count(self) -> int:
        """Snapshots left on the VM, read through the collector (vcsim cannot ``Fetch`` unset properties)."""
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=self.vm, skip=False)],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=["snapshot"])],
        )
        (obj,) = self.pc.RetrieveContents([spec])
        if not obj.propSet or obj.propSet[0].val is None:
            return 0
        stack = list(obj.propSet[0].val.rootSnapshotList)
        count = 0
        while stack:
            node = stack.pop()
            count += 1
            stack.extend(node.childSnapshotList)
        return count


# --- one run --------------------------------------------------------------------------------


@dataclass
class Run:
    server: str
    mode: str
    about: str = ""
    vm: str = ""
    cycles: int = 0
    planned: int = 0
    stopped_early: bool = False
    ok: int = 0
    errors: int = 0
    first_error: str | None = None
    seconds: float = 0.0
    cycles_per_s: float = 0.0
    #: rate over the first and the last tenth of the run (a server that slows down shows here)
    first_tenth_cycles_per_s: float = 0.0
    last_tenth_cycles_per_s: float = 0.0
    server_cpu_ms_per_cycle: float = 0.0
    #: samples (cycles done, server RSS in KiB, seconds since the timed run began)
    rss_kib: list[tuple[int, int, float]] = field(default_factory=list)
    rss_start_mib: float = 0.0
    rss_end_mib: float = 0.0
    rss_max_mib: float = 0.0
    rss_growth_kib_per_1000: float = 0.0
    snapshots_left: int | None = None


def run_one(
    name: str, mode: str, cycles: int, warmup: int, https: bool, vcsim: str | None, time_limit: float
) -> Run:
    argv_of, ready = SERVERS[name]
    port = free_port()
    argv = argv_of(vcsim, port, https) if name == "vcsim" else argv_of(port, https)
    with start_server(name, argv, port, ready) as server:
        client = Client(port, https)
        run = Run(server=name, mode=mode, about=client.about, vm=client.vm_name, planned=cycles)
        waiter = getattr(client, mode)
        try:
            for n in range(warmup):
                with contextlib.suppress(Exception):
                    client.cycle(waiter, -1 - n)
            every = max(1, cycles // 20)
            run.rss_kib.append((0, rss_kib(server.pid), 0.0))
            cpu0 = cpu_seconds(server.pid)
            t0 = time.perf_counter()
            tenth = max(1, cycles // 10)
            first_tenth = last_tenth_start = 0.0
            done = 0
            for n in range(cycles):
                try:
                    client.cycle(waiter, n)
                    run.ok += 1
                except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                    run.errors += 1
                    if run.first_error is None:
                        run.first_error = f"{type(exc).__name__}: {getattr(exc, 'msg', None) or exc}"[:300]
                done = n + 1
                elapsed = time.perf_counter() - t0
                if done == tenth:
                    first_tenth = elapsed
                if done == cycles - tenth:
                    last_tenth_start = elapsed
                if done % every == 0 or done == cycles:
                    if run.rss_kib[-1][0] != done:
                        run.rss_kib.append((done, rss_kib(server.pid), round(elapsed, 3)))
                if elapsed > time_limit and done < cycles:
                    run.stopped_early = True
                    if run.rss_kib[-1][0] != done:
                        run.rss_kib.append((done, rss_kib(server.pid), round(elapsed, 3)))
                    break
            run.cycles = done if cycles else 0
            run.seconds = time.perf_counter() - t0
            if first_tenth:
                run.first_tenth_cycles_per_s = tenth / first_tenth
            if not run.stopped_early and cycles > tenth:
                run.last_tenth_cycles_per_s = tenth / (run.seconds - last_tenth_start)
            run.server_cpu_ms_per_cycle = (cpu_seconds(server.pid) - cpu0) * 1000 / max(1, run.cycles)
            with contextlib.suppress(Exception):
                run.snapshots_left = client.snapshot_count()
        finally:
            client.close()
    run.cycles_per_s = run.cycles / run.seconds if run.seconds else 0.0
    values = [kib for _, kib, _ in run.rss_kib]
    run.rss_start_mib, run.rss_end_mib, run.rss_max_mib = values[0] / 1024, values[-1] / 1024, max(values) / 1024
    # growth over the second half of the run, so warm-up (caches, arenas) does not count
    half = run.rss_kib[len(run.rss_kib) // 2]
    span = run.rss_kib[-1][0] - half[0]
    run.rss_growth_kib_per_1000 = (run.rss_kib[-1][1] - half[1]) * 1000 / span if span else 0.0
    return run


# --- report ---------------------------------------------------------------------------------


def _fmt_rate(run: Run | None) -> str:
    if run is None:
        return "-"
    if run.ok == 0:
        return "fails*"
    return f"{run.cycles_per_s:,.0f}" + ("*" if run.errors else "") + ("+" if run.stopped_early else "")


def table(runs: list[Run], cycles: int, https: bool) -> str:
    by = {(r.server, r.mode): r for r in runs}
    servers = [s for s in SERVERS if any(r.server == s for r in runs)]
    lines = [
        f"snapshot create+remove cycles, pyVmomi {version('pyvmomi')}, "
        f"{'HTTPS' if https else 'HTTP'} on loopback, {cycles:,} cycles per run, a fresh server per run",
        "",
        f"{'mode':<30}" + "".join(f"{s + ' cycles/s':>18}" for s in servers)
        + (f"{'ratio':>9}" if len(servers) == 2 else ""),
    ]
    for mode, label in MODES.items():
        row = [by.get((s, mode)) for s in servers]
        if not any(row):
            continue
        text = f"{label:<30}" + "".join(f"{_fmt_rate(r):>18}" for r in row)
        if len(row) == 2 and row[0] and row[1] and row[0].ok and row[1].ok:
            text += f"{row[0].cycles_per_s / row[1].cycles_per_s:>8.2f}x"
        lines.append(text)
    lines += [
        "",
        "server process per run: RSS MiB start -> end (max), growth KiB per 1,000 cycles over the",
        "second half, cycles/s in the first -> last tenth, server CPU ms per cycle",
    ]
    for mode, label in MODES.items():
        for s in servers:
            r = by.get((s, mode))
            if r is None:
                continue
            last = f"{r.last_tenth_cycles_per_s:,.0f}" if r.last_tenth_cycles_per_s else "-"
            lines.append(
                f"  {s:<7} {label:<28} {r.rss_start_mib:6.1f} -> {r.rss_end_mib:6.1f} ({r.rss_max_mib:6.1f})"
                f" {r.rss_growth_kib_per_1000:+7.0f}   {r.first_tenth_cycles_per_s:6,.0f} -> {last:>6}"
                f"   {r.server_cpu_ms_per_cycle:5.2f}"
            )
    failures = [r for r in runs if r.errors]
    stopped = [r for r in runs if r.stopped_early]
    if stopped:
        lines += ["", "+ stopped at the time limit (--time-limit):"]
        for r in stopped:
            lines.append(f"  {r.server:<7} {MODES[r.mode]:<30} {r.cycles:,} of {r.planned:,} cycles in {r.seconds:,.0f} s")
    if failures:
        lines += ["", "* errors (cycles that raised; the run went on):"]
        for r in failures:
            lines.append(f"  {r.server:<7} {MODES[r.mode]:<30} {r.errors:,} of {r.cycles:,}: {r.first_error}")
    left = [r for r in runs if r.snapshots_left]
    for r in left:
        lines.append(f"  {r.server:<7} {MODES[r.mode]:<30} {r.snapshots_left} snapshots left on {r.vm}")
    lines += ["", "servers: " + "; ".join(sorted({f"{r.server}: {r.about}" for r in runs}))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--cycles", type=int, default=2000, help="snapshot cycles per run (default 2,000)")
    p.add_argument("--warmup", type=int, default=20, help="untimed cycles before each run (default 20)")
    p.add_argument("--time-limit", type=float, default=600.0,
                   help="stop a run after this many seconds and report the cycles done (default 600)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    p.add_argument("--servers", default="vcbsim,vcsim", help="comma-separated: vcbsim, vcsim")
    p.add_argument("--https", action="store_true", help="HTTPS for both servers (default plain HTTP)")
    p.add_argument("--vcsim", help="path of a vcsim binary (or VCSIM in the environment)")
    p.add_argument("--build-script", help="script building vcsim into a directory (or VCSIM_BUILD)")
    p.add_argument("--json", metavar="PATH", help="write the report as JSON ('-' for stdout)")
    args = p.parse_args(argv)
    if args.cycles < 1 or args.cycles > 1_000_000:
        p.error("--cycles must be from 1 to 1,000,000")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for m in modes:
        if m not in MODES:
            p.error(f"unknown mode {m!r}")
    for s in servers:
        if s not in SERVERS:
            p.error(f"unknown server {s!r}")
    vcsim = find_vcsim(args.vcsim, args.build_script) if "vcsim" in servers else None
    if "vcsim" in servers and vcsim is None:
        print("vcsim not found (--vcsim PATH, VCSIM=..., or --build-script build-vcsim.sh): vcbsim only",
              file=sys.stderr)
        servers.remove("vcsim")
    runs = []
    for mode in modes:
        for name in servers:
            print(f"{name}: {MODES[mode]}, {args.cycles:,} cycles ...", file=sys.stderr, flush=True)
            runs.append(run_one(name, mode, args.cycles, args.warmup, args.https, vcsim, args.time_limit))
    print(table(runs, args.cycles, args.https))
    if args.json:
        report = {
            "benchmark": "soap-snapshot-cycles",
            "cycles": args.cycles,
            "warmup": args.warmup,
            "time_limit_s": args.time_limit,
            "transport": "https" if args.https else "http",
            "client": {"pyvmomi": version("pyvmomi"), "python": platform.python_version()},
            "machine": {"cpus": os.cpu_count(), "system": platform.system(), "machine": platform.machine()},
            "vcsim": Path(vcsim).name if vcsim else None,
            "runs": [asdict(r) for r in runs],
        }
        text = json.dumps(report, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
