"""Independent vSphere clients (``README.md`` here) run the backup flow against ``vcbsim serve
--profile esxi-7.0``; every case of every client is one test.

Each client runs once per session against a fresh server process (``_run``, cached), so the
cases of one client share one flow, in order, as they would in a backup product. A client
whose toolchain is missing skips every case with the install command.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
NODE_DIR = HERE / "node"
GOVMOMI_SRC = Path("/usr/share/gocode/src/github.com/vmware/govmomi/vim25")
USER, PASSWORD, VM = "user", "pass", "win2003-sql"
TIMEOUT = 600

COMMON = ["connect", "list_vms", "host_hardware", "cbt_enable", "quiesced_snapshot", "disk_chain",
          "download_disk", "remove_snapshot", "cbt_reset", "logout"]
CASES = {
    "zeep": COMMON,
    "node-soap": [*COMMON[:-1], "keepalive_reuse", "logout"],
    "govmomi": COMMON,
}
#: govmomi_client's steps (benchmarks/interop/govmomi_client.go) behind each case
GO_STEPS = {
    "connect": ["login"],
    "list_vms": ["find_vm"],
    "host_hardware": ["host_hardware"],
    "cbt_enable": ["enable_cbt"],
    "quiesced_snapshot": ["create_snapshot", "read_during"],
    "disk_chain": ["read_before", "check_redo_log", "check_change_ids"],
    "download_disk": ["download_disk"],
    "remove_snapshot": ["remove_snapshot", "read_after", "check_consolidated"],
    "cbt_reset": ["cbt_reset"],
    "logout": ["logout"],
}


@contextlib.contextmanager
def _server() -> Iterator[str]:
    """``vcbsim serve --profile esxi-7.0`` on a free port; yields its base URL."""
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    argv = [sys.executable, "-m", "vcbsim", "serve", "--http", "--port", "0", "--profile", "esxi-7.0",
            "--user", USER, "--password", PASSWORD]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,  # noqa: S603
                            text=True, cwd=REPO, env=env)
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            match = re.search(r"URL:\s+(http://\S+)/sdk", line)
            if match:
                break
        else:
            raise RuntimeError(f"vcbsim serve exited before it was ready: {''.join(seen)[-2000:]}")
        # the rest of its output is read and dropped (a full pipe would block the server)
        threading.Thread(target=_drain, args=(proc,), daemon=True).start()
        yield match.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _drain(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    for _ in proc.stdout:
        pass


def _json(out: str, what: str, code: int, err: str) -> dict[str, Any]:
    try:
        return dict(json.loads(out))
    except ValueError:
        raise AssertionError(f"{what} printed no JSON (exit {code}): {(err or out)[-3000:]}") from None


# --- the clients -------------------------------------------------------------------------------


def _missing_zeep() -> str | None:
    return None if importlib.util.find_spec("zeep") else "pip install zeep  (the 'test' extra)"


def _run_zeep(base: str) -> list[dict[str, Any]]:
    proc = subprocess.run([sys.executable, str(HERE / "zeep_flow.py"), base, "--user", USER,  # noqa: S603
                           "--password", PASSWORD, "--vm", VM],
                          capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, "PYTHONSAFEPATH": "1"})
    return list(_json(proc.stdout, "zeep_flow.py", proc.returncode, proc.stderr)["cases"])


def _missing_node() -> str | None:
    if shutil.which("node") is None:
        return "apt-get install nodejs npm && npm ci --prefix tests/interop/node"
    if not (NODE_DIR / "node_modules" / "soap" / "package.json").is_file():
        return "npm ci --prefix tests/interop/node"
    return None


def _run_node(base: str) -> list[dict[str, Any]]:
    proc = subprocess.run(["node", str(NODE_DIR / "backup_flow.js"), base, USER, PASSWORD, VM],  # noqa: S603,S607
                          capture_output=True, text=True, timeout=TIMEOUT)
    return list(_json(proc.stdout, "backup_flow.js", proc.returncode, proc.stderr)["cases"])


def _missing_go() -> str | None:
    if shutil.which("go") is None or not GOVMOMI_SRC.is_dir():
        return "apt-get install golang-go golang-github-vmware-govmomi-dev"
    return None


@functools.cache
def _interop() -> Any:
    """``benchmarks/interop/run_interop.py``, which builds (and caches) the govmomi client."""
    spec = importlib.util.spec_from_file_location("_run_interop", REPO / "benchmarks" / "interop" / "run_interop.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _run_go(base: str) -> list[dict[str, Any]]:
    interop = _interop()
    interop.CACHE.mkdir(parents=True, exist_ok=True)
    # one build at a time: pytest-xdist workers may reach this together
    with open(interop.CACHE / "govmomi_client.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            interop.build_client(force=False)
        except SystemExit as exc:
            raise AssertionError(f"building the govmomi client failed: {exc}") from None
    url = base.replace("http://", f"http://{USER}:{PASSWORD}@") + "/sdk"
    proc = subprocess.run([str(interop.CLIENT_BIN), "-url", url, "-vm", VM, "-cycles", "0", "-cbt", "-backup",  # noqa: S603
                           "-timeout", f"{TIMEOUT}s"], capture_output=True, text=True, timeout=TIMEOUT + 30)
    report = _json(proc.stdout, "govmomi_client", proc.returncode, proc.stderr)
    steps = {s["name"]: s for s in report["steps"]}
    cases = []
    for case, names in GO_STEPS.items():
        done = [steps[n] for n in names if n in steps]
        bad = [f"{s['name']}: {s.get('detail', '')}" for s in done if not s["ok"]]
        if len(done) < len(names):
            missing = [n for n in names if n not in steps]
            bad.append(f"not reached ({', '.join(missing)}); the run stopped at {report.get('error')}")
        cases.append({"name": case, "ok": not bad, "detail": "; ".join(bad) or "; ".join(
            s.get("detail", "") for s in done)})
    return cases


CLIENTS: dict[str, tuple[Callable[[], str | None], Callable[[str], list[dict[str, Any]]]]] = {
    "zeep": (_missing_zeep, _run_zeep),
    "node-soap": (_missing_node, _run_node),
    "govmomi": (_missing_go, _run_go),
}


@functools.cache
def _run(client: str) -> dict[str, dict[str, Any]]:
    """The client's cases by name, from one run against a fresh server."""
    _, run = CLIENTS[client]
    with _server() as base:
        return {c["name"]: c for c in run(base)}


@pytest.mark.parametrize(("client", "case"), [(cl, case) for cl, cases in CASES.items() for case in cases])
def test_independent_client_case(client: str, case: str) -> None:
    missing, _ = CLIENTS[client]
    install = missing()
    if install is not None:
        pytest.skip(f"{client}'s toolchain is missing; install it with: {install}")
    results = _run(client)
    assert case in results, f"{client} did not report case {case!r} (it reported {sorted(results)})"
    result = results[case]
    assert result["ok"], f"{client} / {case}: {result['detail']}"
