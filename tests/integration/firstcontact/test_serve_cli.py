"""``vcbsim serve`` for scripts and quick pokes: --small, --print-url, --ready-file, the
password's sources (never printed), a bad port, and SIGINT (one line or a clean exit, never a
traceback)."""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

STARTUP_SECONDS = 120


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VCBSIM_PASSWORD"}
    env.update(PYTHONSAFEPATH="1", PYTHONUNBUFFERED="1", **extra)
    return env


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vcbsim", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or _env())


def _get(url: str, path: str, password: str = "pass") -> tuple[dict[str, str], int]:
    """GET a datastore file; returns its headers and the number of bytes read."""
    req = urllib.request.Request(url.replace("/sdk", f"/folder/{path}?dcPath=ha-datacenter&dsName=datastore1"))
    req.add_header("Authorization", "Basic " + base64.b64encode(f"user:{password}".encode()).decode())
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    n = 0
    with urllib.request.urlopen(req, context=ctx, timeout=60) as resp:  # noqa: S310 - loopback
        while chunk := resp.read(1 << 20):
            n += len(chunk)
        return dict(resp.headers), n


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return out, err


def test_print_url_ready_file_and_small_disks(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    proc = _serve("--small", "--print-url", "--ready-file", str(ready))
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # the first (and only) line on stdout
        assert url.startswith("https://127.0.0.1:") and url.endswith("/sdk"), url
        doc = json.loads(ready.read_text())  # written before the URL was printed
        assert doc["url"] == url and doc["pid"] == proc.pid and doc["user"] == "user"
        assert doc["control"] == url.replace("/sdk", "/vcbsim-api/")
        headers, n = _get(url, "win2003-sql/win2003-sql-flat.vmdk")
        # a thin disk's flat extent is served whole, as ESX serves it: Content-Length is the capacity
        assert int(headers["Content-Length"]) == n == 64 * 1024 * 1024
        _, n_data = _get(url, "win2003-sql/win2003-sql_1-flat.vmdk")
        assert n_data == 96 * 1024 * 1024
    finally:
        out, err = _stop(proc)
    assert proc.returncode == 0, err
    assert out == "", "stdout carries the URL only"
    assert "inventory: --small" in err and "Traceback" not in err
    assert not ready.exists(), "the ready file outlived the server"


def test_small_inventory_is_the_demo_on_small_disks() -> None:
    from vcbsim.simulator import Host
    from vcbsim.simulator.soap._cli import small_inventory

    demo, small = Host.demo(), Host()
    small_inventory().populate(small)
    assert [vm.name for vm in small.vms.values()] == [vm.name for vm in demo.vms.values()]
    for vm in small.vms.values():
        assert all(d.capacity <= 96 * 1024 * 1024 for d in vm.disks)
        twin = demo.find_vm(f"name:{vm.name}")
        assert small.guest_fs(vm).read_tree(*_tops(vm)) == demo.guest_fs(twin).read_tree(*_tops(twin))
    snap = small.create_snapshot(small.find_vm("name:win2003-sql"), "_VCB-BACKUP_", quiesce=True)
    assert snap.quiesced
    small.reset()  # a reset rebuilds the small inventory, not the demo
    assert all(d.capacity <= 96 * 1024 * 1024 for vm in small.vms.values() for d in vm.disks)


def _tops(vm) -> list[str]:
    return ["C:\\", "D:\\"] if vm.os_family == "windows" else ["/", "/var/www"]


@pytest.mark.parametrize("source", ["env", "file"])
def test_the_password_comes_from_a_file_or_the_environment_and_is_never_printed(tmp_path: Path, source: str) -> None:
    secret = "s3cret-Zq9"
    env = _env()
    args = ["--http", "--print-url"]
    if source == "env":
        env["VCBSIM_PASSWORD"] = secret
    else:
        (tmp_path / "pw").write_text(secret + "\n")
        args += ["--password-file", str(tmp_path / "pw")]
    proc = _serve(*args, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        _get(url, "rhel5-web/rhel5-web.vmx", password=secret)
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(url, "rhel5-web/rhel5-web.vmx", password="pass")
        assert refused.value.code == 401
    finally:
        out, err = _stop(proc)
    assert secret not in out + err
    expected = "from $VCBSIM_PASSWORD" if source == "env" else f"from --password-file {tmp_path / 'pw'}"
    assert f"password: not shown ({expected})" in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--port", "99999"], "expected a TCP port 0..65535"),
        (["--port", "http"], "expected a TCP port 0..65535"),
        (["--password", "a", "--password-file", "x"], "keep one"),
        (["--password-file", "/nonexistent/pw"], "expected a readable text file"),
        (["--small", "--inventory", "x.json"], "keep one"),
        (["--inventory", "/nonexistent/inv.json"], "--inventory"),
    ],
)
def test_bad_options_get_one_line(args: list[str], says: str) -> None:
    done = subprocess.run([sys.executable, "-m", "vcbsim", "serve", *args], capture_output=True, text=True,
                          env=_env(), timeout=STARTUP_SECONDS, check=False)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("vcbsim serve: "), done.stderr


def test_an_empty_password_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("\n")
    done = subprocess.run([sys.executable, "-m", "vcbsim", "serve", "--password-file", str(tmp_path / "pw")],
                          capture_output=True, text=True, env=_env(), timeout=STARTUP_SECONDS, check=False)
    assert done.returncode == 2 and "got an empty line" in done.stderr and "Traceback" not in done.stderr
