"""A Go client built on govmomi runs a backup-style snapshot workflow against ``vcbsim serve``
(and against vcsim, the govmomi simulator, side by side).

    python benchmarks/interop/run_interop.py                  # 200 timed cycles per server
    python benchmarks/interop/run_interop.py --cycles 1000 --json interop.json
    python benchmarks/interop/run_interop.py --vm win2003-sql --servers vcbsim --debug /tmp/soap

What it shows: that govmomi (the Go library under govc, Terraform's vSphere provider and many
backup products) works against vcbsim, not only pyVmomi and Ansible. ``govmomi_client.go`` (our
own program, next to this file) logs in with ``govmomi.NewClient``, finds the VM with
``find.Finder``, enables changed block tracking (``ReconfigVM_Task``; ``--no-cbt`` skips it and
the esx-3.5 profiles, which have no CBT, skip it by default), reads the disk backings
(fileName, ``parent`` chain, ``changeId``) and the snapshot tree, creates a quiesced snapshot
(``CreateSnapshot`` + ``task.WaitForResult``), reads the tree, the chain and the snapshot's own
``config.hardware.device`` again, checks that every disk now writes to ``<base>-000001.vmdk``
with ``<base>.vmdk`` as parent, removes the snapshot (``RemoveSnapshot`` + ``task.Wait``),
checks the chain is back to what it was, times ``--cycles`` plain create+remove cycles and
logs out. Then the same program runs twice more per server with a VM name that does not exist
and with a wrong password, and the table shows the errors govmomi reports.

Servers, each a fresh process on a free loopback port (plain HTTP unless ``--https``):

* vcbsim: ``python -m vcbsim serve --http --port <free> --profile esxi-7.0`` (``--profile``);
* vcsim: a binary found like ``benchmarks/bench_soap.py`` finds it (``--vcsim``, ``VCSIM``,
  ``benchmarks/.cache/vcsim``), else built into ``benchmarks/.cache`` with ``--build-script``,
  ``VCSIM_BUILD`` or ``shared/tools/build-vcsim.sh`` beside the checkout when that exists; otherwise the vcbsim
  column is printed alone. Run as ``vcsim -esx`` (a standalone ESX, as vcbsim is).

The client is built once with ``build_govmomi_client.sh`` into ``benchmarks/.cache/`` (git
ignores it) and rebuilt when ``govmomi_client.go`` changes (``--rebuild`` forces it).

Exit status: 0 when the vcbsim workflow passed every step and check and both error paths gave
the expected error; 1 otherwise. vcsim is the peer compared with: what it does not do (it has
no redo logs, so its ``check_redo_log`` fails) is reported in the table, never in the exit
status. No assertions on time: cycles/s are for people. When a vcbsim workflow fails, it is run
again with govmomi's SOAP capture (``-debug``) and the last request and response are printed,
so the failing exchange is on screen; ``--debug DIR`` captures every run into ``DIR/<server>/``.

Why this is not part of the CI test run (``tox``/pytest): it needs a Go toolchain and the govmomi
library sources, which come from Debian packages (``golang-go``,
``golang-github-vmware-govmomi-dev``; the build script installs them with apt-get when missing,
which needs root or sudo), not from PyPI. The Python test environments do not have them, and a
test that installs system packages, or silently skips, would not be an honest test. Run it by
hand (or in a job that has the packages) after changing the SOAP layer.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = HERE.parent / ".cache"
CLIENT_SRC = HERE / "govmomi_client.go"
BUILD_SCRIPT = HERE / "build_govmomi_client.sh"
CLIENT_BIN = CACHE / "govmomi_client"
CLIENT_STAMP = CACHE / "govmomi_client.stamp.json"
DEFAULT_VCSIM_BUILD = Path(__file__).resolve().parents[3] / "shared" / "tools" / "build-vcsim.sh"
USER, PASSWORD = "user", "pass"
START_TIMEOUT = 60.0
MISSING_VM = "no-such-vm-interop"

#: the client's steps in order (govmomi_client.go); enable_cbt only with -cbt
STEPS = ["login", "find_vm", "enable_cbt", "read_before", "create_snapshot", "read_during", "check_redo_log",
         "remove_snapshot", "read_after", "check_consolidated", "cycles", "logout"]


# --- building the client -----------------------------------------------------------------


def _source_digest() -> str:
    h = hashlib.sha256()
    for p in (CLIENT_SRC, BUILD_SCRIPT):
        h.update(p.read_bytes())
    return h.hexdigest()


def build_client(force: bool) -> dict[str, str]:
    """Build ``govmomi_client`` into the cache unless an up-to-date build is there."""
    digest = _source_digest()
    if not force and CLIENT_BIN.is_file() and CLIENT_STAMP.is_file():
        with contextlib.suppress(ValueError):
            stamp = json.loads(CLIENT_STAMP.read_text())
            if stamp.get("sha256") == digest:
                return stamp
    print(f"building {CLIENT_BIN.name} with {BUILD_SCRIPT.name} into {CACHE} ...", file=sys.stderr, flush=True)
    CACHE.mkdir(exist_ok=True)
    proc = subprocess.run([str(BUILD_SCRIPT), str(CACHE)], capture_output=True, text=True)  # noqa: S603
    sys.stderr.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{BUILD_SCRIPT.name} failed with exit status {proc.returncode}")
    match = re.search(r"go version (\S+)", proc.stdout)
    stamp = {"sha256": digest, "go": match.group(1) if match else "?", "govmomi": _govmomi_version()}
    CLIENT_STAMP.write_text(json.dumps(stamp, indent=2) + "\n")
    return stamp


def _govmomi_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "golang-github-vmware-govmomi-dev"],  # noqa: S607
                             capture_output=True, text=True, check=True).stdout
        return out.strip()
    return "?"


# --- servers: started as benchmarks/bench_soap.py starts them ----------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_soap import find_vcsim as _find_vcsim  # noqa: E402
from bench_soap import free_port  # noqa: E402 - the sibling benchmark's helpers
from bench_soap import start_server as _start_server  # noqa: E402


def start_server(name: str, argv: list[str], port: int, ready: re.Pattern[str]) -> Any:
    """``bench_soap.start_server`` run from the repository (vcbsim is run as a module)."""
    return _start_server(name, argv, port, ready, cwd=REPO)


def vcbsim_argv(port: int, https: bool, profile: str) -> list[str]:
    argv = [sys.executable, "-m", "vcbsim", "serve", "--port", str(port), "--profile", profile,
            "--user", USER, "--password", PASSWORD]
    return argv if https else [*argv, "--http"]


def vcsim_argv(binary: str, port: int, https: bool) -> list[str]:
    return [binary, "-esx", "-l", f"127.0.0.1:{port}", f"-tls={'true' if https else 'false'}",
            "-username", USER, "-password", PASSWORD]


READY = {
    "vcbsim": re.compile(r"https?://127\.0\.0\.1:\d+/sdk"),
    "vcsim": re.compile(r"GOVC_URL="),
}


def find_vcsim(explicit: str | None, build_script: str | None) -> str | None:
    """bench_soap.py's lookup; the default build script is the shared build-vcsim.sh when present."""
    script = build_script or os.environ.get("VCSIM_BUILD")
    if not script and DEFAULT_VCSIM_BUILD.is_file():
        script = str(DEFAULT_VCSIM_BUILD)
    return _find_vcsim(explicit, script)


# --- running the client --------------------------------------------------------------------


@dataclass
class ClientRun:
    """One run of govmomi_client: its exit status and the JSON object it printed."""

    server: str
    purpose: str
    argv: list[str]
    exit_code: int
    seconds: float
    report: dict[str, Any] | None
    stderr: str = ""
    stdout_tail: str = ""
    #: the last SOAP exchange (request and response bodies) when a capture was made
    last_exchange: dict[str, str] | None = None
    capture_dir: str | None = None

    @property
    def error(self) -> dict[str, Any] | None:
        if self.report is None:
            return {"step": "client", "message": f"no JSON from the client (exit {self.exit_code}): "
                    f"{(self.stderr or self.stdout_tail)[-500:]}", "go_type": "", "fault": ""}
        return self.report.get("error")


def run_client(server: str, purpose: str, url: str, vm: str, cycles: int, cbt: bool,
               capture: Path | None, timeout: float) -> ClientRun:
    argv = [str(CLIENT_BIN), "-url", url, "-insecure", "-vm", vm, "-cycles", str(cycles),
            "-timeout", f"{int(timeout)}s"]
    if cbt:
        argv.append("-cbt")
    if capture is not None:
        shutil.rmtree(capture, ignore_errors=True)
        capture.mkdir(parents=True)
        argv += ["-debug", str(capture)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30)  # noqa: S603
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout or ""
        out = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
        code, err = -1, f"timed out after {timeout + 30:.0f} s"
    seconds = time.perf_counter() - t0
    report = None
    with contextlib.suppress(ValueError):
        report = json.loads(out)
    shown = [a if not a.startswith("http") else re.sub(r":[^:@/]*@", ":xxxxx@", a) for a in argv]
    run = ClientRun(server, purpose, shown, code, seconds, report, err.strip()[-4000:], out[-2000:] if report is None else "")
    if capture is not None:
        run.capture_dir = str(capture)
        run.last_exchange = last_exchange(capture, (run.error or {}).get("step"))
    return run


def last_exchange(capture: Path, failed_step: str | None = None) -> dict[str, str] | None:
    """The last request/response pair govmomi's vim25/debug wrote (``N-NNNN.req.xml``/``.res.xml``).

    The client logs out when it stops early, so the Logout exchange is skipped unless logging out
    is what failed: the pair shown is the one the failing step sent.
    """
    reqs = sorted(capture.glob("*-*.req.xml"), key=lambda p: [int(x) for x in re.findall(r"\d+", p.name)])
    if failed_step != "logout":
        reqs = [p for p in reqs if "<Logout " not in p.read_text(errors="replace")] or reqs
    if not reqs:
        return None
    req = reqs[-1]
    res = req.with_name(req.name.replace(".req.xml", ".res.xml"))
    headers = req.with_name(req.name.replace(".req.xml", ".res.headers"))
    log = sorted(capture.glob("*-client.log"))
    return {
        "request_file": str(req),
        "request": req.read_text(errors="replace"),
        "response_headers": headers.read_text(errors="replace") if headers.is_file() else "",
        "response": res.read_text(errors="replace") if res.is_file() else "(no response captured)",
        "client_log_tail": "\n".join(log[-1].read_text(errors="replace").splitlines()[-5:]) if log else "",
    }


@dataclass
class ServerResult:
    server: str
    about: str = ""
    url: str = ""
    workflow: ClientRun | None = None
    #: the failing workflow run again with -debug (vcbsim only)
    workflow_debug: ClientRun | None = None
    missing_vm: ClientRun | None = None
    wrong_password: ClientRun | None = None
    server_output: list[str] = field(default_factory=list)
    start_error: str | None = None


def run_server(name: str, args: argparse.Namespace, vcsim: str | None, cbt: bool) -> ServerResult:
    result = ServerResult(name)
    port = free_port()
    argv = vcsim_argv(vcsim or "", port, args.https) if name == "vcsim" else vcbsim_argv(port, args.https, args.profile)
    scheme = "https" if args.https else "http"
    url = f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{port}/sdk"
    result.url = f"{scheme}://127.0.0.1:{port}/sdk"
    debug_root = Path(args.debug) if args.debug else None
    try:
        with start_server(name, argv, port, READY[name]) as server:
            capture = debug_root / name if debug_root else None
            print(f"{name}: workflow, {args.cycles:,} cycles ...", file=sys.stderr, flush=True)
            wf = result.workflow = run_client(name, "workflow", url, args.vm, args.cycles, cbt, capture, args.timeout)
            if wf.report:
                result.about = wf.report.get("server", "")
            if wf.error is not None and capture is None and name == "vcbsim":
                # the failing exchange: the same workflow again, with govmomi's SOAP capture on
                with tempfile.TemporaryDirectory(prefix="govmomi-debug-") as tmp:
                    dbg = run_client(name, "workflow (-debug capture)", url, args.vm, args.cycles, cbt,
                                     Path(tmp) / name, args.timeout)
                    dbg.capture_dir = None  # removed with the temporary directory; the exchange is kept
                    result.workflow_debug = dbg
            print(f"{name}: error paths ...", file=sys.stderr, flush=True)
            result.missing_vm = run_client(name, "missing VM", url, MISSING_VM, 0, False,
                                           debug_root / f"{name}-missing-vm" if debug_root else None, 60)
            bad = url.replace(f":{PASSWORD}@", ":wrong-password@")
            result.wrong_password = run_client(name, "wrong password", bad, args.vm, 0, False,
                                               debug_root / f"{name}-wrong-password" if debug_root else None, 60)
            result.server_output = server.output[-40:]
    except RuntimeError as exc:
        result.start_error = str(exc)
    return result


# --- report --------------------------------------------------------------------------------


def _short(path: str) -> str:
    """``[datastore1] vm/vm-000001.vmdk`` -> ``vm-000001.vmdk``."""
    return path.rsplit("/", 1)[-1].rsplit("] ", 1)[-1]


def _chains(disks: list[dict[str, Any]] | None) -> list[str]:
    if not disks:
        return ["-"]
    lines = []
    for d in disks:
        files = [_short(f["fileName"]) for f in d["chain"]]
        text = " -> ".join(files)
        if len(files) == 1:
            text += " (no parent)"
        lines.append(text)
    return lines


def _change_ids(disks: list[dict[str, Any]] | None) -> list[str]:
    ids = [d["chain"][0].get("changeId") or "-" for d in disks or [] if d["chain"]]
    return ids or ["-"]


def steps_passed(run: ClientRun | None, cbt: bool) -> str:
    if run is None:
        return "-"
    planned = [s for s in STEPS if cbt or s != "enable_cbt"]
    steps = (run.report or {}).get("steps") or []
    ok = sum(1 for s in steps if s.get("ok"))
    text = f"{ok}/{len(planned)}"
    failed = [s["name"] for s in steps if not s.get("ok")]
    if failed:
        text += " (failed: " + ", ".join(failed) + ")"
    if run.report is None or len(steps) < len(planned):
        text += " (stopped)"
    return text


def _error_text(run: ClientRun | None) -> list[str]:
    if run is None:
        return ["-"]
    err = run.error
    if err is None:
        return [f"no error (exit {run.exit_code})"]
    kind = err.get("fault") or err.get("go_type") or ""
    return [f"{err['step']}: {err['message']}", f"  [{kind}], exit {run.exit_code}"]


def _cell_rows(results: list[ServerResult], cbt: bool) -> list[tuple[str, list[list[str]]]]:
    rows: list[tuple[str, list[list[str]]]] = []

    def add(label: str, fn: Any) -> None:
        rows.append((label, [fn(r) for r in results]))

    def rep(r: ServerResult) -> dict[str, Any]:
        return (r.workflow.report if r.workflow else None) or {}

    add("server", lambda r: [r.about or (r.start_error or "-")[:80]])
    add("VM", lambda r: [rep(r).get("vm") or "-"])
    add("workflow steps passed", lambda r: [steps_passed(r.workflow, cbt)])
    add("chain before", lambda r: _chains(rep(r).get("chain_before")))
    add("chain during the snapshot", lambda r: _chains(rep(r).get("chain_during")))
    add("snapshot's own disks", lambda r: _chains(rep(r).get("snapshot_disks")))
    add("changeId during", lambda r: _change_ids(rep(r).get("chain_during")))
    add("snapshot tree during", lambda r: [
        f"{s['name']} ({s['ref']}, quiesced={str(s['quiesced']).lower()})" for s in rep(r).get("snapshots_during") or []
    ] or ["-"])
    add("chain after removal", lambda r: _chains(rep(r).get("chain_after")))
    add("cycles/s (create+remove)", lambda r: [
        f"{rep(r)['cycles_per_s']:,.0f} ({rep(r)['cycles']:,} cycles)" if rep(r).get("cycles") else "-"])
    add("first error", lambda r: _error_text(r.workflow) if r.workflow and r.workflow.error else ["-"])
    add("failed checks", lambda r: [
        f"{c['step']}: {c['message']}" for c in rep(r).get("failed_checks") or []] or ["-"])
    add(f"-vm {MISSING_VM}", lambda r: _error_text(r.missing_vm))
    add("wrong password", lambda r: _error_text(r.wrong_password))
    return rows


#: cells wider than this wrap onto more lines
CELL_WIDTH = 60


def _wrap(cell: list[str]) -> list[str]:
    out: list[str] = []
    for line in cell:
        indent = line[: len(line) - len(line.lstrip())]
        out += textwrap.wrap(line, CELL_WIDTH, subsequent_indent=indent + "  ", break_on_hyphens=False) or [""]
    return out


def table(results: list[ServerResult], args: argparse.Namespace, stamp: dict[str, str], cbt: bool) -> str:
    rows = [(label, [_wrap(c) for c in cells]) for label, cells in _cell_rows(results, cbt)]
    label_w = max(len(label) for label, _ in rows) + 2
    widths = [max(len(line) for _, cells in rows for line in cells[i]) + 2 for i in range(len(results))]
    head = (f"govmomi {stamp.get('govmomi', '?')} client ({stamp.get('go', '?')}), backup-style snapshot workflow, "
            f"{'HTTPS' if args.https else 'HTTP'} on loopback, vcbsim --profile {args.profile}, "
            f"CBT {'on' if cbt else 'off'}, {args.cycles:,} timed cycles")
    lines = [head, "", (" " * label_w + "".join(f"{r.server:<{w}}" for r, w in zip(results, widths, strict=True))).rstrip(),
             (" " * label_w + "".join(f"{'-' * (w - 2):<{w}}" for w in widths)).rstrip()]
    for label, cells in rows:
        height = max(len(c) for c in cells)
        for i in range(height):
            text = (label if i == 0 else "").ljust(label_w)
            text += "".join(f"{(c[i] if i < len(c) else ''):<{w}}" for c, w in zip(cells, widths, strict=True))
            lines.append(text.rstrip())
    for r in results:
        for run in (r.workflow_debug,):
            if run is None or run.last_exchange is None:
                continue
            ex = run.last_exchange
            lines += ["", f"{r.server}: the failing exchange (govmomi -debug capture, {Path(ex['request_file']).name}):",
                      "  client log: " + ex["client_log_tail"].replace("\n", "\n              "),
                      "  request:  " + ex["request"][:3000], "  response: " + ex["response_headers"].splitlines()[0]
                      if ex["response_headers"] else "  response:", "  " + ex["response"][:6000]]
    return "\n".join(lines)


def vcbsim_ok(r: ServerResult) -> bool:
    wf = r.workflow
    if r.start_error or wf is None or wf.exit_code != 0 or not (wf.report or {}).get("ok"):
        return False
    missing = r.missing_vm.error if r.missing_vm else None
    wrong = r.wrong_password.error if r.wrong_password else None
    return bool(missing and missing["step"] == "find_vm" and wrong and wrong["step"] == "login"
                and wrong.get("fault") == "InvalidLogin")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--cycles", type=int, default=200, help="timed create+remove cycles per server (default 200)")
    p.add_argument("--vm", default="", help="VM name on both servers (default: each server's first VM by name)")
    p.add_argument("--profile", default="esxi-7.0", help="vcbsim serve --profile (default esxi-7.0)")
    cbt = p.add_mutually_exclusive_group()
    cbt.add_argument("--cbt", dest="cbt", action="store_true", default=None,
                     help="enable changed block tracking first (default unless the profile is esx-3.5*)")
    cbt.add_argument("--no-cbt", dest="cbt", action="store_false")
    p.add_argument("--servers", default="vcbsim,vcsim", help="comma-separated: vcbsim, vcsim")
    p.add_argument("--https", action="store_true", help="HTTPS for both servers (the client skips verification)")
    p.add_argument("--vcsim", help="path of a vcsim binary (or VCSIM in the environment)")
    p.add_argument("--build-script", help="script building vcsim into a directory (or VCSIM_BUILD; "
                   "default: shared/tools/build-vcsim.sh beside the checkout, when present)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the Go client even if the cached one is current")
    p.add_argument("--debug", metavar="DIR", help="govmomi SOAP capture of every run into DIR/<server>[-case]/")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds one client run may take (default 600)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON ('-' for stdout)")
    args = p.parse_args(argv)
    if args.cycles < 0 or args.cycles > 1_000_000:
        p.error("--cycles must be from 0 to 1,000,000")
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in servers:
        if s not in READY:
            p.error(f"unknown server {s!r}")
    use_cbt = args.cbt if args.cbt is not None else not args.profile.startswith("esx-3.5")

    stamp = build_client(args.rebuild)
    vcsim = find_vcsim(args.vcsim, args.build_script) if "vcsim" in servers else None
    if "vcsim" in servers and vcsim is None:
        print("vcsim not found (--vcsim PATH, VCSIM=..., or --build-script build-vcsim.sh): vcbsim only",
              file=sys.stderr)
        servers.remove("vcsim")

    results = [run_server(name, args, vcsim, use_cbt) for name in servers]
    print(table(results, args, stamp, use_cbt))
    ok = all(vcbsim_ok(r) for r in results if r.server == "vcbsim")
    print(f"\nvcbsim: {'PASS' if ok else 'FAIL'} (workflow, checks and error paths; vcsim is compared, not judged)")
    if args.json:
        report = {
            "benchmark": "govmomi-interop",
            "cycles": args.cycles,
            "vm": args.vm or None,
            "profile": args.profile,
            "cbt": use_cbt,
            "transport": "https" if args.https else "http",
            "client": {"program": "benchmarks/interop/govmomi_client.go", **stamp},
            "machine": {"cpus": os.cpu_count(), "system": platform.system(), "machine": platform.machine()},
            "vcsim": Path(vcsim).name if vcsim else None,
            "vcbsim_ok": ok,
            "servers": [asdict(r) for r in results],
        }
        text = json.dumps(report, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
