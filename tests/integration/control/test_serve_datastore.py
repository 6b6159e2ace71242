"""``vcbsim serve --datastore DIR``: a snapshot and the disks' bytes survive a SIGKILL of the
server; ``--trace-file`` keeps every event; ``--inventory FILE`` builds the host (and a reset
rebuilds it); the startup banner says how to connect."""

from __future__ import annotations

import hashlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from vcbsim.simulator import load_jsonl
from vcbsim.simulator.soap import ControlClient
from vcbsim.simulator.soap._cli import connect_help

STARTUP_SECONDS = 30.0


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, banner: list[str]) -> None:
        self.proc, self.url, self.banner = proc, url, banner
        self.port = int(url.rsplit(":", 1)[1].split("/")[0])


def _start(*args: str) -> Served:
    """``python -m vcbsim serve --http --port 0 ...``; returns once the banner is printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vcbsim", "serve", "--http", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # unbuffered bytes: readline() takes no more than a line, so select() sees the rest
    assert proc.stdout is not None
    banner: list[str] = []
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline().decode()
            if not line:
                break
            banner.append(line.rstrip("\n"))
            if "Ctrl-C to stop" in line:
                url = banner[0].rsplit(" at ", 1)[1]
                return Served(proc, url, banner)
    proc.kill()
    proc.wait(5)
    pytest.fail("vcbsim serve did not start:\n" + "\n".join(banner))


@pytest.fixture
def servers() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
        s.proc.wait(10)
        if s.proc.stdout is not None:
            s.proc.stdout.close()


def _connect(s: Served) -> Any:
    return SmartConnect(protocol="http", host="127.0.0.1", port=s.port, user="user", pwd="pass")


def _vms(si: Any) -> dict[str, Any]:
    """The host's VMs by name, through a container view (as a client finds them)."""
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
    try:
        return {v.name: v for v in view.view}
    finally:
        view.Destroy()


def _vm(si: Any, name: str) -> Any:
    return _vms(si)[name]


def _extents(s: Served, si: Any, vm: Any) -> dict[str, str]:
    """SHA-256 of every disk extent of ``vm``, fetched with ``GET /folder`` and the session cookie."""
    import http.client
    from urllib.parse import quote

    out = {}
    for f in vm.layoutEx.file:
        if f.type != "diskExtent":
            continue
        ds, path = f.name[1:].split("] ", 1)
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        try:
            conn.request("GET", f"/folder/{quote(path)}?dcPath=ha-datacenter&dsName={ds}",
                         headers={"Cookie": si._stub.cookie})
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, (f.name, resp.status, body[:200])
        finally:
            conn.close()
        out[f.name] = hashlib.sha256(body).hexdigest()
    return out


def test_a_snapshot_and_the_disks_survive_a_sigkill_with_datastore(tmp_path: Path, servers: list[Served]) -> None:
    ds = tmp_path / "ds"
    first = _start("--datastore", str(ds), "--seed", "3")
    servers.append(first)
    ctl = ControlClient(first.url)
    ctl.reset(demo=False)
    ctl.add_vm("lin1", os="linux", disks=["40MiB"], volumes={0: [[None, "/", "ROOT"]]},
               files={"/etc/hostname": "lin1\n"})
    si = _connect(first)
    vm = _vm(si, "lin1")
    WaitForTask(vm.CreateSnapshot_Task("before-kill", "kept on disk", False, False))
    ctl.write_guest_files("lin1", {"/var/after.txt": "written after the snapshot\n"})  # into the redo log
    snap_moref = vm.snapshot.rootSnapshotList[0].snapshot._moId
    before = _extents(first, si, vm)
    assert len(before) == 2  # the base flat extent and the snapshot's redo log
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)

    second = _start("--datastore", str(ds))
    servers.append(second)
    assert any("datastore:" in line and str(ds) in line for line in second.banner), second.banner
    si2 = _connect(second)
    try:
        vm2 = _vm(si2, "lin1")
        tree = vm2.snapshot.rootSnapshotList
        assert [(t.name, t.description, t.snapshot._moId) for t in tree] == [("before-kill", "kept on disk",
                                                                              snap_moref)]
        assert vm2.snapshot.currentSnapshot._moId == snap_moref
        assert _extents(second, si2, vm2) == before
        ctl2 = ControlClient(second.url)
        assert ctl2.read_guest_file("lin1", "/var/after.txt") == b"written after the snapshot\n"
        assert [v["name"] for v in ctl2.vms()] == ["lin1"]
        # and the snapshot is still a working one: removing it commits the redo log
        WaitForTask(tree[0].snapshot.RemoveSnapshot_Task(removeChildren=False))
        assert ctl2.read_guest_file("lin1", "/var/after.txt") == b"written after the snapshot\n"
        assert vm2.snapshot is None
    finally:
        Disconnect(si2)


def test_trace_file_and_trace_limit(tmp_path: Path, servers: list[Served]) -> None:
    trace_file = tmp_path / "trace.jsonl"
    s = _start("--trace-file", str(trace_file), "--trace-limit", "20")
    servers.append(s)
    ctl = ControlClient(s.url)
    for i in range(60):
        ctl.post_events([{"kind": "note", "details": {"text": f"n{i}"}}])
    state = ctl.state()["trace"]
    assert state["limit"] == 20 and state["dropped"] > 0
    kept = ctl.trace()
    assert len(kept) <= 20 and kept[-1].details["text"] == "n59"
    s.proc.send_signal(signal.SIGKILL)  # line-buffered: nothing emitted is lost
    s.proc.wait(10)
    events = load_jsonl(trace_file)
    assert [e.seq for e in events] == list(range(state["next_seq"]))
    assert events[0].kind == "host.reset" and events[-1].details["text"] == "n59"


def test_bad_options_exit_2_with_a_message(tmp_path: Path) -> None:
    for args, words in [(["--trace-limit", "0"], "--trace-limit: expected a count >= 1, got 0"),
                        (["--session-idle-timeout", "0"], "--session-idle-timeout: expected seconds > 0, got 0.0"),
                        (["--trace-file", str(tmp_path / "no" / "dir" / "t.jsonl")], "cannot write --trace-file")]:
        proc = subprocess.run([sys.executable, "-m", "vcbsim", "serve", "--port", "0", *args],
                              capture_output=True, text=True, timeout=30, check=False)
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr


def test_a_datastore_in_use_is_refused(tmp_path: Path, servers: list[Served]) -> None:
    ds = tmp_path / "ds"
    servers.append(_start("--datastore", str(ds)))
    proc = subprocess.run([sys.executable, "-m", "vcbsim", "serve", "--port", "0", "--datastore", str(ds)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 1 and "in use by another vcbsim" in proc.stderr, proc.stderr


@pytest.mark.parametrize("url", ["https://127.0.0.1:8989/sdk", "http://127.0.0.1:18080/sdk"])
def test_the_banner_lines_work_as_printed(url: str) -> None:
    lines = connect_help(url, "user", "from $VCBSIM_PASSWORD")
    text = "\n".join(lines)
    assert f"URL:      {url}" in text and "password: not shown (from $VCBSIM_PASSWORD)" in text
    scheme, rest = url.split("://")
    assert f'export GOVC_URL={scheme}://{rest} GOVC_USERNAME=user GOVC_PASSWORD="$VCBSIM_PASSWORD"' in text
    assert ("GOVC_INSECURE=1" in text) == (scheme == "https")
    code = next(line for line in lines if line.startswith("pyVmomi:")).split('python -c "', 1)[1].rstrip('"')
    compile(code, "<banner>", "exec")  # the one-liner is valid Python
    assert "pwd=os.environ['VCBSIM_PASSWORD']" in code
    assert ("protocol='http'" in code) == (scheme == "http")


def test_async_tasks_and_session_idle_timeout_reach_the_endpoint(servers: list[Served]) -> None:
    s = _start("--async-tasks", "--session-idle-timeout", "0.5")
    servers.append(s)
    si = _connect(s)
    try:
        vm = _vm(si, "win2003-sql")
        assert WaitForTask(vm.CreateSnapshot_Task("via-worker", "", False, False)) == "success"
        time.sleep(1.0)  # idle for longer than the timeout: the session is gone
        with pytest.raises(vim.fault.NotAuthenticated):
            vm.snapshot  # noqa: B018
    finally:
        with __import__("contextlib").suppress(Exception):
            Disconnect(si)


# --- --inventory FILE ------------------------------------------------------------------------

SCRIPT = "C:\\Program Files\\VMware\\VMware Tools\\backupScripts.d\\10-flush.bat"
INVENTORY = {
    "profile": "esxi-7.0",
    "seed": 5,
    "vms": [
        {"name": "win-small", "os": "windows", "disks": ["96MiB"], "volumes": {"0": [[None, "C", "SYSTEM"]]},
         "files": {SCRIPT: "exit 0\r\n"}},
        {"name": "lin1", "os": "linux", "disks": ["64MiB"], "power": "poweredOff",
         "volumes": {"0": [[None, "/", "ROOT"]]}},
    ],
    "faults": [{"operation": "script", "target": "*10-flush.bat", "exit_code": 3, "label": "flush fails"}],
}


def _names(si: Any) -> list[str]:
    return sorted(_vms(si))


def test_inventory_file_builds_the_host_and_reset_rebuilds_it(tmp_path: Path, servers: list[Served]) -> None:
    import json

    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps(INVENTORY))
    s = _start("--inventory", str(inv))
    servers.append(s)
    assert any(line.strip() == f"inventory: {inv}" for line in s.banner)
    si = _connect(s)
    try:
        assert "7.0" in si.content.about.version
        assert _names(si) == ["lin1", "win-small"]
        vm = _vm(si, "win-small")
        # the file's fault rule: the pre-freeze script exits 3, the quiesced snapshot fails
        with pytest.raises(vim.fault.ApplicationQuiesceFault):
            WaitForTask(vm.CreateSnapshot_Task("q", "", False, True))
        ctl = ControlClient(s.url)
        ctl.add_vm("extra", os="linux", disks=["64MiB"])
        assert _names(si) == ["extra", "lin1", "win-small"]
        assert sorted(ctl.reset()["vms"]) == ["lin1", "win-small"]  # the file's VMs again
        assert [r["label"] for r in ctl.faults()] == ["flush fails"]
        assert sorted(ctl.reset(demo=True)["vms"]) == ["rhel5-web", "win2003-sql"]
    finally:
        Disconnect(si)


def test_inventory_in_toml_equals_json(tmp_path: Path) -> None:
    from vcbsim.simulator.soap._inventory import read_inventory

    toml = tmp_path / "inv.toml"
    toml.write_text(
        'profile = "esxi-7.0"\nseed = 5\n\n[[vms]]\nname = "lin1"\nos = "linux"\ndisks = ["64MiB"]\n'
        '[vms.volumes]\n"0" = [["64MiB", "/", "ROOT"]]\n'
    )
    inv = read_inventory(toml)
    assert inv.profile == "esxi-7.0" and inv.seed == 5
    assert inv.vms == ({"name": "lin1", "os": "linux", "disks": ["64MiB"], "volumes": {"0": [["64MiB", "/", "ROOT"]]}},)


@pytest.mark.parametrize(("text", "words"), [
    ('{"vms": [{"name": "a"}, {"name": "b", "disks": "8GiB"}]}', "vms[1]"),
    ('{"vms": [{"name": "a", "colour": "red"}]}', "unknown field 'colour'"),
    ('{"faults": [{"target": "*"}]}', "faults[0].operation"),
    ('{"profile": "esx-9"}', "profile: expected one of"),
    ('{"machines": []}', "machines"),
    ("[1, 2]", "expected an object"),
    ("{not json", "expected a JSON document"),
])
def test_a_bad_inventory_exits_2_naming_the_entry_and_builds_nothing(tmp_path: Path, text: str, words: str) -> None:
    inv = tmp_path / "bad.json"
    inv.write_text(text)
    ds = tmp_path / "ds"
    proc = subprocess.run([sys.executable, "-m", "vcbsim", "serve", "--port", "0", "--inventory", str(inv),
                           "--datastore", str(ds)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "--inventory" in proc.stderr and words in proc.stderr, proc.stderr
    assert not ds.exists() or not any(ds.iterdir())  # no half-built datastore


def test_inventory_with_a_datastore_persists_and_a_restart_loads_it_as_it_is(tmp_path: Path,
                                                                             servers: list[Served]) -> None:
    import json

    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps({**INVENTORY, "faults": []}))
    ds = tmp_path / "ds"
    first = _start("--inventory", str(inv), "--datastore", str(ds))
    servers.append(first)
    ctl = ControlClient(first.url)
    ctl.add_vm("added-later", os="linux", disks=["64MiB"])
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    again = _start("--inventory", str(inv), "--datastore", str(ds))
    servers.append(again)
    assert any("loaded as it is" in line for line in again.banner), again.banner
    si = _connect(again)
    try:
        assert _names(si) == ["added-later", "lin1", "win-small"]
    finally:
        Disconnect(si)
    assert sorted(ControlClient(again.url).reset()["vms"]) == ["lin1", "win-small"]
