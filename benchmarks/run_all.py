"""Run every benchmark and write one report, in Markdown and JSON.

    python benchmarks/run_all.py [--out benchmarks/report] [--cycles 2000] [--vcsim PATH]

Each benchmark runs as its own process (fresh memory figures) and prints its tables; this
script keeps those tables verbatim, collects the machine-readable figures of the ones that
offer ``--json``, and puts the headline ratios (vcbsim against its peer, or the same code at a
larger size) at the top of ``report.md``. vcsim is taken from ``--vcsim`` / ``VCSIM``, or built
with the build script the shared folder ships when it sits next to the checkout; without it
the vcsim columns say so.

Nothing here asserts on time: the report is for people and for comparing runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def run(args: list[str], *, timeout: float) -> tuple[str, float, int]:
    """Run one benchmark script; return (stdout+stderr, seconds, exit code)."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
        )
        out, code = proc.stdout + (("\n" + proc.stderr) if proc.returncode else ""), proc.returncode
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        out, code = f"{partial}\n(stopped after {timeout:.0f} s)", -1
    return out, time.perf_counter() - t0, code


def conformance_rate() -> dict[str, Any]:
    """Conformance scenarios per second: a certify run of the reference proxy, in-process."""
    import io

    from vcbsim.conformance import ReferenceOrchestrator, run

    t0 = time.perf_counter()
    result = run(ReferenceOrchestrator, profile="certify", seed=20260101, out=io.StringIO())
    elapsed = time.perf_counter() - t0
    stats = dict(result.statistics)
    jobs = int(stats.get("jobs", 0))
    return {
        "profile": "certify",
        "seconds": elapsed,
        "cases": len(result.cases),
        "passed": result.ok,
        "examples": stats.get("examples"),
        "jobs": jobs,
        "jobs_per_second": jobs / elapsed if elapsed else None,
        "examples_per_second": (stats.get("examples") or 0) / elapsed if elapsed else None,
    }


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "n/a"


def issue18_rows(data: dict[str, Any]) -> list[str]:
    """Headline rows for issue 18's figures against their peers: server CPU per snapshot cycle
    and per 2-property read, the inventory read, memory per VM and start-up (vcsim), file-level
    full against tar, image backup against qemu-img."""
    lines: list[str] = []
    soap = data.get("soap")
    if isinstance(soap, dict):
        by = {(r["server"], r["mode"]): r for r in soap.get("runs", [])}
        ours, peer = by.get(("vcbsim", "collector")), by.get(("vcsim", "collector"))
        if ours:
            p = f" vs vcsim {peer['server_cpu_ms_per_cycle']:.2f} ms, ratio {_ratio(ours['server_cpu_ms_per_cycle'], peer['server_cpu_ms_per_cycle'])}" if peer else ""
            lines.append(f"| server CPU per snapshot cycle (collector polling) | {ours['server_cpu_ms_per_cycle']:.2f} ms{p} |")
    inv = data.get("inventory")
    if isinstance(inv, dict):
        conc = {(r["server"], r["clients"]): r for r in inv.get("concurrent", []) if not r.get("error")}
        for k in inv.get("clients", []):
            a, b = conc.get(("vcbsim", k)), conc.get(("vcsim", k))
            if a:
                p = (f" vs vcsim {b['server_cpu_us_per_read']:.0f} µs, {b['reads_per_s']:,.0f}/s; CPU ratio "
                     f"{_ratio(a['server_cpu_us_per_read'], b['server_cpu_us_per_read'])}") if b else ""
                lines.append(f"| server CPU per 2-property read, {k} client(s) | {a['server_cpu_us_per_read']:.0f} µs, "
                             f"{a['reads_per_s']:,.0f} reads/s{p} |")
        reads = {(r["server"], r["vms"]): r for r in inv.get("inventory", []) if not r.get("error")}
        for n in inv.get("sizes", []):
            a, b = reads.get(("vcbsim", n)), reads.get(("vcsim", n))
            if a:
                p = (f" vs vcsim {b['first_cpu_s']:.2f} / {b['best_cpu_s']:.2f} s; ratio "
                     f"{_ratio(a['first_cpu_s'], b['first_cpu_s'])} / {_ratio(a['best_cpu_s'], b['best_cpu_s'])}") if b else ""
                lines.append(f"| server CPU to read name, power state, devices of {n:,} VMs (first / later) | "
                             f"{a['first_cpu_s']:.2f} / {a['best_cpu_s']:.2f} s{p} |")
        sizes = inv.get("sizes", [])
        if len(sizes) >= 2:
            lo, hi = sizes[0], sizes[-1]
            for server in ("vcbsim", "vcsim"):
                a, b = reads.get((server, lo)), reads.get((server, hi))
                if a and b:
                    per = (b["rss_mib"] - a["rss_mib"]) * 1024 / (hi - lo)
                    lines.append(f"| {server}: memory per extra VM ({lo:,} -> {hi:,} VMs) / start-up at {hi:,} VMs | "
                                 f"{per:.1f} KiB / {b['start_s']:.1f} s |")
    fl = data.get("filelevel", {})
    tools, ours_fl = fl.get("tools", {}), fl.get("vcbsim", {})
    if "tar full" in tools and "full" in ours_fl:
        lines.append(f"| file-level full / tar full, same files (CPU) | {_ratio(ours_fl['full']['cpu'], tools['tar full']['cpu'])} |")
    img = data.get("image")
    if isinstance(img, dict) and img.get("vcbsim"):
        peer = img.get("peer")
        p = f" vs qemu-img convert + sha256sum + cp {peer['cpu']:.2f} s CPU, {peer['wall']:.2f} s wall; CPU ratio {_ratio(img['vcbsim']['cpu'], peer['cpu'])}" if peer else ""
        lines.append(f"| image backup, {img['data_mib']} MiB of data on a {img['capacity_gib']} GiB disk | "
                     f"{img['vcbsim']['cpu']:.2f} s CPU, {img['vcbsim']['wall']:.2f} s wall{p} |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "report"), help="directory for report.md and report.json")
    ap.add_argument("--cycles", type=int, default=2000, help="SOAP snapshot cycles per run (default 2,000; 10,000 for the issue's memory figure)")
    ap.add_argument("--vcsim", default=os.environ.get("VCSIM"), help="path of a vcsim binary")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per benchmark")
    ns = ap.parse_args()
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)

    sections: list[tuple[str, str, str, float, int]] = []
    data: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }

    host_json, secs, code = run(["benchmarks/bench_host.py", "--json"], timeout=ns.timeout)
    try:
        data["host"] = json.loads(host_json)
    except json.JSONDecodeError:
        data["host"] = {"error": host_json[-2000:]}
    host_text, _, _ = run(["benchmarks/bench_host.py"], timeout=ns.timeout)
    sections.append(("Host: memory per VM, snapshot + commit against capacity", "python benchmarks/bench_host.py", host_text, secs, code))

    for title, script in (
        ("Disks: layers, RSS, VMDK export against qemu-img convert", "benchmarks/bench_disk.py"),
        ("Persisted datastore: write throughput and commit cost", "benchmarks/bench_persist.py"),
        ("SOAP requests: the fast decoder against pyVmomi's", "benchmarks/bench_decode.py"),
        ("SOAP responses: the fast encoder against pyVmomi's", "benchmarks/bench_encode.py"),
        ("Image backups: full against incremental (changed block tracking) by disk size",
         "benchmarks/bench_reference_cbt.py"),
    ):
        text, secs, code = run([script], timeout=ns.timeout)
        sections.append((title, f"python {script}", text, secs, code))

    soap_json = out / "soap.json"
    soap_args = ["benchmarks/bench_soap.py", "--cycles", str(ns.cycles), "--json", os.path.relpath(soap_json, REPO)]
    if ns.vcsim:
        soap_args += ["--vcsim", ns.vcsim]
    else:
        build = REPO.parent / "shared" / "tools" / "build-vcsim.sh"
        if build.exists():
            soap_args += ["--build-script", os.path.relpath(build, REPO)]
    text, secs, code = run(soap_args, timeout=ns.timeout * 2)
    sections.append(("SOAP: snapshot cycles per second against vcsim", "python " + " ".join(soap_args), text, secs, code))
    if soap_json.exists():
        data["soap"] = json.loads(soap_json.read_text())

    # a Go client (govmomi) against both servers: needs Go and govmomi from Debian packages, so
    # it runs only where the client is built or can be (benchmarks/interop/run_interop.py)
    go_ready = (HERE / ".cache" / "govmomi_client").exists() or shutil.which("go") is not None
    if go_ready:
        interop_args = ["benchmarks/interop/run_interop.py", "--cycles", "1000"]
        text, secs, code = run(interop_args, timeout=ns.timeout)
        sections.append(("Interop: a govmomi (Go) client against vcbsim and vcsim", "python " + " ".join(interop_args),
                         text, secs, code))
    else:
        sections.append(("Interop: a govmomi (Go) client against vcbsim and vcsim", "python benchmarks/interop/run_interop.py",
                         "skipped: no Go toolchain and no built client (see benchmarks/interop/run_interop.py)", 0.0, 0))

    # issue 18: file-level backups against rsync/tar, /folder against the inventory size, an
    # image backup against qemu-img
    for key, title, script in (
        ("filelevel", "File-level backups: full and 1%-changed incremental against rsync and tar",
         "benchmarks/bench_filelevel.py"),
        ("folder", "/folder downloads at 1, 100 and 1,000 VMs", "benchmarks/bench_folder.py"),
        # issue 16: a whole-VM restore over the wire against qemu-img convert of the same data
        ("restore", "Whole-VM restore over the wire against qemu-img convert", "benchmarks/bench_restore.py"),
        # issue 16: the transports a backup reads disks with
        ("transports", "Transports: an image backup through folder, nfc and hotadd against qemu-img convert",
         "benchmarks/bench_transports.py"),
        ("image", "Image backup against qemu-img convert + sha256sum + cp on the same data", "benchmarks/bench_image.py"),
    ):
        doc = out / f"{key}.json"
        doc.unlink(missing_ok=True)
        text, secs, code = run([script, "--json-out", os.path.relpath(doc, REPO)], timeout=ns.timeout)
        if doc.exists():
            data[key] = json.loads(doc.read_text())
        sections.append((title, f"python {script}", text, secs, code))

    # issue 18: the whole-inventory read and concurrent small reads against vcsim
    doc = out / "inventory.json"
    doc.unlink(missing_ok=True)
    inv_args = ["benchmarks/bench_inventory.py", "--json-out", os.path.relpath(doc, REPO)]
    if ns.vcsim:
        inv_args += ["--vcsim", ns.vcsim]
    else:
        build = REPO.parent / "shared" / "tools" / "build-vcsim.sh"
        if build.exists():
            inv_args += ["--build-script", os.path.relpath(build, REPO)]
    text, secs, code = run(inv_args, timeout=ns.timeout * 3)
    if doc.exists():
        data["inventory"] = json.loads(doc.read_text())
    sections.append(("Inventory reads (1k / 5k / 10k VMs) and 1 / 4 / 16 concurrent clients against vcsim",
                     "python " + " ".join(inv_args), text, secs, code))

    data["conformance"] = conformance_rate()

    (out / "report.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    lines = [
        "# vcbsim benchmark report",
        "",
        f"Run {data['when']} on {data['machine']}, Python {data['python']}, by `python benchmarks/run_all.py`.",
        "Figures vary with machine load; compare ratios, not absolute times.",
        "",
        "## Headline figures",
        "",
        "| figure | value |",
        "| --- | --- |",
    ]
    host = data.get("host", {})
    if "memory" in host:
        m = host["memory"]
        lines.append(f"| memory, {m['vms']} VMs x 100 GiB disk | {m['host_mib']:.1f} MiB ({m['host_mib'] * 1024 / m['vms']:.0f} KiB per VM) |")
        lines.append(f"| snapshot+commit, 2 TiB over 2 GiB (same 64 MiB written) | {host['commit_ratio_2TiB_over_2GiB']:.2f}x |")
    conf = data["conformance"]
    lines.append(
        f"| conformance, certify on the reference proxy | {conf['examples_per_second']:.1f} scenarios/s, "
        f"{conf['jobs_per_second']:.1f} backup jobs/s ({conf['cases']} cases, {conf['seconds']:.1f} s, "
        f"{'pass' if conf['passed'] else 'FAIL'}) |"
    )
    soap = data.get("soap")
    if isinstance(soap, dict):
        by: dict[tuple[str, str], dict[str, Any]] = {(r["server"], r["mode"]): r for r in soap.get("runs", [])}
        for mode in sorted({m for _, m in by}):
            ours, peer = by.get(("vcbsim", mode)), by.get(("vcsim", mode))
            if ours is None:
                continue
            text = f"{ours['cycles_per_s']:.0f}/s ({ours['errors']} errors)"
            if peer is not None:
                text += f" vs vcsim {peer['cycles_per_s']:.0f}/s ({peer['errors']} errors)"
                if peer["cycles_per_s"] and not peer["errors"]:
                    text += f", ratio {ours['cycles_per_s'] / peer['cycles_per_s']:.2f}"
            else:
                text += "; vcsim not available"
            lines.append(f"| snapshot create+remove cycles, {mode} | {text} |")
    fl = data.get("filelevel", {}).get("ratios")
    if isinstance(fl, dict):
        def fmt(v: Any) -> str:
            return "n/a" if v is None else f"{v:.3f}"

        lines.append(f"| file-level full / rsync full, 20,000 x 1 KiB (CPU) | {fmt(fl.get('vcbsim full / rsync full (cpu)'))} (target <= 2) |")
        lines.append(f"| file-level 1%-changed incremental / its full (CPU) | {fmt(fl.get('vcbsim incremental / full (cpu)'))} "
                     f"(target <= 0.15; rsync {fmt(fl.get('rsync incremental / full (cpu)'))}) |")
    rows = data.get("folder", {}).get("rows")
    if isinstance(rows, list) and rows:
        for row in rows:
            lines.append(f"| /folder download at {row['vms']:,} VMs, MiB/s (CPU) | {row['flat']['mib_s_cpu']:.0f} "
                         f"({row['flat_ratio_cpu']:.2f} of {rows[0]['vms']:,} VM; target >= 0.90) |")
    trows = data.get("transports", {}).get("rows")
    if isinstance(trows, list):
        for r in trows:
            if r.get("cpu_over_qemu") is not None and not r["path"].startswith("qemu-img"):
                lines.append(f"| image backup {r['path']}, CPU / qemu-img convert of the same data | "
                             f"{r['cpu_over_qemu']:.2f} ({r['mib_per_s_cpu']:.0f} MiB/s of CPU) |")
    lines += issue18_rows(data)
    lines.append("")
    for title, cmd, text, secs, code in sections:
        status = "" if code == 0 else f" (exit {code})"
        lines += [f"## {title}", "", f"`{cmd}` — {secs:.1f} s{status}", "", "```", text.rstrip(), "```", ""]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'report.md'} and {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
