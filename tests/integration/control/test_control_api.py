"""The control API of ``vcbsim serve`` (``/vcbsim-api/...``): reset, seed, VMs, guest files,
fault rules, trace and state, authenticated like ``/folder``; what it sets up is what a
vSphere client then sees."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from vcbsim.simulator import Host, load_jsonl
from vcbsim.simulator.soap import COOKIE_NAME, ControlClient, ControlError, serve

SCRIPTS_D = r"C:\Program Files\VMware\VMware Tools\backupScripts.d"
SMALL_WIN: dict[str, Any] = {
    "os": "windows",
    "disks": ["96MiB", "96MiB"],
    "ip": "192.0.2.31",
    "volumes": {"0": [[None, "C", "SYSTEM"]], "1": [["48MiB", "D", "DATA"], [None, None, "RECOVERY"]]},
    "files": {r"D:\Data\orders.csv": "id,qty\r\n1,4\r\n"},
}


@pytest.fixture
def host() -> Host:
    return Host.demo(seed=5)


@pytest.fixture
def server(host: Host) -> Iterator[Any]:
    with serve(host, http=True) as running:
        yield running


@pytest.fixture
def ctl(server: Any) -> ControlClient:
    return ControlClient(server.url, "user", "pass")


def _raw(server: Any, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any] | str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read().decode()
        try:
            return resp.status, json.loads(data), resp.headers
        except json.JSONDecodeError:
            return resp.status, data, resp.headers
    finally:
        conn.close()


def _basic(user: str = "user", password: str = "pass") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _connect(server: Any) -> Any:
    return SmartConnect(protocol="http", host="127.0.0.1", port=server.port, user="user", pwd="pass")


def _vm(si: Any, name: str) -> Any:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next(v for v in view.view if v.name == name)
    finally:
        view.Destroy()


# -- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, _basic("user", "wrong"), {"Cookie": f'{COOKIE_NAME}="nope"'}],
                         ids=["none", "bad-password", "unknown-cookie"])
def test_requests_without_valid_credentials_get_401(server: Any, host: Host, headers: dict[str, str]) -> None:
    before = len(host.vms)
    status, body, resp_headers = _raw(server, "POST", "/vcbsim-api/reset", b"{}", headers)
    assert status == 401 and isinstance(body, dict) and body["error"] == "NotAuthenticated"
    assert resp_headers["WWW-Authenticate"].startswith("Basic")
    assert len(host.vms) == before and host.vms  # nothing was reset
    assert _raw(server, "GET", "/vcbsim-api/state", None, headers)[0] == 401


def test_the_soap_session_cookie_authenticates_and_logout_revokes_it(server: Any) -> None:
    si = _connect(server)
    cookie = si._stub.cookie
    status, state, _ = _raw(server, "GET", "/vcbsim-api/state", None, {"Cookie": cookie})
    assert status == 200 and isinstance(state, dict)
    assert {vm["name"] for vm in state["vms"]} == {"win2003-sql", "rhel5-web"}
    Disconnect(si)
    assert _raw(server, "GET", "/vcbsim-api/state", None, {"Cookie": cookie})[0] == 401


# -- reset, seed, clock --------------------------------------------------------------------


def test_reset_empties_or_rebuilds_the_inventory_and_soap_clients_see_it(ctl: ControlClient, server: Any) -> None:
    si = _connect(server)
    try:
        WaitForTask(_vm(si, "rhel5-web").CreateSnapshot_Task("s1", "", False, False))
        assert ctl.reset(demo=False)["vms"] == []
        assert si.content.rootFolder.childEntity[0].vmFolder.childEntity == []
        out = ctl.reset(demo=True, seed=9)
        assert out["vms"] == ["win2003-sql", "rhel5-web"] and out["seed"] == 9
        assert _vm(si, "rhel5-web").snapshot is None  # the snapshot went with the old host
    finally:
        Disconnect(si)


def test_reset_to_another_profile_changes_what_the_host_says_it_is(ctl: ControlClient, server: Any) -> None:
    ctl.reset(profile="esxi-7.0")
    si = _connect(server)
    try:
        assert si.content.about.version.startswith("7.")
    finally:
        Disconnect(si)
    assert ctl.state()["profile"] == "esxi-7.0"


def test_the_same_seed_gives_the_same_identities(ctl: ControlClient) -> None:
    ctl.reset(demo=False, seed=1)
    first = ctl.add_vm("a", disks=["1MiB"])["uuid"]
    ctl.reset(demo=False, seed=1)
    assert ctl.add_vm("a", disks=["1MiB"])["uuid"] == first
    ctl.reset(demo=False, seed=2)
    assert ctl.add_vm("a", disks=["1MiB"])["uuid"] != first
    ctl.seed(1)  # in place: the next draws restart from seed 1
    assert ctl.add_vm("b", disks=["1MiB"])["uuid"] == first
    assert ctl.state()["seed"] == 1


def test_clock_advance_moves_virtual_time(ctl: ControlClient, server: Any) -> None:
    si = _connect(server)
    try:
        before = si.CurrentTime()
        t = ctl.advance(3600)
        assert (si.CurrentTime() - before).total_seconds() == pytest.approx(3600, abs=1)
        assert t == pytest.approx(before.timestamp() + 3600, abs=1)
    finally:
        Disconnect(si)


# -- VMs and guest files ---------------------------------------------------------------------


def test_a_vm_added_with_volumes_and_files_is_what_pyvmomi_and_the_guest_see(ctl: ControlClient, server: Any) -> None:
    ctl.reset(demo=False)
    summary = ctl.add_vm("win-small", **SMALL_WIN)
    assert [d["capacity"] for d in summary["disks"]] == [96 * 2**20, 96 * 2**20]
    assert summary["os"] == "windows" and summary["tools"] == "running"
    si = _connect(server)
    try:
        vm = _vm(si, "win-small")
        disks = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        assert [d.capacityInKB for d in disks] == [96 * 1024, 96 * 1024]
        assert vm.guest.ipAddress == "192.0.2.31" and vm.runtime.powerState == "poweredOn"
    finally:
        Disconnect(si)
    assert ctl.read_guest_file("win-small", r"d:\DATA\orders.csv") == b"id,qty\r\n1,4\r\n"


def test_a_guest_script_written_through_the_api_runs_when_quiescing(ctl: ControlClient, server: Any,
                                                                     host: Host) -> None:
    ctl.reset(demo=False)
    ctl.add_vm("win-small", **SMALL_WIN)
    written = ctl.write_guest_files("win-small", {
        SCRIPTS_D + r"\10-fail.bat": "@echo off\r\n[freeze] exit 3\r\n",
        r"C:\bin\blob.dat": bytes(range(256)),
    })
    assert [w["size"] for w in written] == [len("@echo off\r\n[freeze] exit 3\r\n"), 256]
    assert ctl.read_guest_file("win-small", r"C:\bin\blob.dat") == bytes(range(256))
    si = _connect(server)
    try:
        task = _vm(si, "win-small").CreateSnapshot_Task("q", "", False, True)
        with pytest.raises(vim.fault.ApplicationQuiesceFault):
            WaitForTask(task)
    finally:
        Disconnect(si)
    runs = [e for e in ctl.trace() if e.kind == "script.run"]
    assert runs and runs[0].details["path"].endswith("10-fail.bat") and runs[0].details["exit_code"] == 3


def test_guest_file_listing_and_missing_files(ctl: ControlClient, server: Any) -> None:
    status, body, _ = _raw(server, "GET", "/vcbsim-api/guests/rhel5-web/files?path=/usr/sbin", None, _basic())
    assert status == 200 and isinstance(body, dict)
    assert {"pre-freeze-script", "post-thaw-script"} <= set(body["entries"])
    with pytest.raises(ControlError) as err:
        ctl.read_guest_file("rhel5-web", "/etc/none")
    assert err.value.status == 404
    ctl.delete_guest_file("rhel5-web", "/usr/sbin/pre-freeze-script")
    assert "pre-freeze-script" not in ctl.request("GET", "guests/rhel5-web/files?path=/usr/sbin")[1].decode()
    with pytest.raises(ControlError) as err:
        ctl.delete_guest_file("rhel5-web", "/usr/sbin/pre-freeze-script")
    assert err.value.status == 404
    with pytest.raises(ControlError) as err:
        ctl.delete_guest_file("rhel5-web", "/usr/sbin")
    assert err.value.status == 400 and "a file" in err.value.message
    with pytest.raises(ControlError) as err:
        ctl.read_guest_file("no-such-vm", "/etc/hostname")
    assert err.value.status == 404 and "rhel5-web" in err.value.message  # names the known VMs


@pytest.mark.parametrize(
    ("body", "expected", "got"),
    [
        ({"disks": ["1MiB"]}, "a VM name", "None"),
        ({"name": "x", "disks": [1.5]}, "a number of bytes", "1.5"),
        ({"name": "x", "disks": ["12 parsecs"]}, "'96MiB'", "'12 parsecs'"),
        ({"name": "x", "colour": "red"}, "fields name, os, disks", "'colour'"),
        ({"name": "x", "os": "beos"}, "'windows' or 'linux'", "'beos'"),
        ({"name": "x", "disks": ["1MiB"], "volumes": {"3": [[None, "C", "S"]]}}, "a disk index 0..0", "3"),
        ({"name": "x", "disks": ["96MiB"], "volumes": {"0": [["C", "S"]]}}, "[size | null", "['C', 'S']"),
        ({"name": "win2003-sql"}, "a name not used on this host", "'win2003-sql'"),
    ],
    ids=["no-name", "float-disk", "bad-unit", "unknown-field", "bad-os", "bad-disk-index", "short-volume",
         "duplicate"],
)
def test_bad_vm_requests_are_400_naming_expected_and_got(server: Any, host: Host, body: dict[str, Any],
                                                         expected: str, got: str) -> None:
    before = sorted(vm.name for vm in host.vms.values())
    status, doc, _ = _raw(server, "POST", "/vcbsim-api/vms", json.dumps(body).encode(), _basic())
    assert status == 400 and isinstance(doc, dict), doc
    assert doc["error"] == "InvalidInput"
    assert expected in doc["message"] and f"got {got}" in doc["message"], doc["message"]
    assert sorted(vm.name for vm in host.vms.values()) == before  # no half-made VM is left


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("POST", "/vcbsim-api/reset", b"[1, 2]", 400, "expected a JSON object, got 'list'"),
        ("POST", "/vcbsim-api/reset", b"{not json", 400, "invalid JSON"),
        ("POST", "/vcbsim-api/reset", b'{"seed": "x"}', 400, "reset.seed: expected an integer, got 'x'"),
        ("POST", "/vcbsim-api/reset", b'{"profile": "esx-9"}', 400, "one of esx-3.5u1"),
        ("POST", "/vcbsim-api/seed", b"{}", 400, "seed.seed: expected an integer"),
        ("POST", "/vcbsim-api/clock", b'{"advance": -1}', 400, "virtual seconds >= 0"),
        ("GET", "/vcbsim-api/trace?since=x", None, 400, "since: expected a sequence number"),
        ("DELETE", "/vcbsim-api/state", b"", 405, "accepts GET, not DELETE"),
        ("GET", "/vcbsim-api/nothing", None, 404, "/vcbsim-api/reset"),
        ("POST", "/vcbsim-api/faults", b"[" * 5000, 400, "invalid JSON"),
        ("POST", "/vcbsim-api/vms", b"[" * 5000, 400, "invalid JSON"),
        ("POST", "/vcbsim-api/trace", b"[" * 5000, 400, "nested too deeply"),
    ],
)
def test_malformed_requests_say_what_was_expected(server: Any, method: str, path: str, body: bytes | None,
                                                  status: int, words: str) -> None:
    got_status, doc, _ = _raw(server, method, path, body, _basic())
    assert got_status == status and isinstance(doc, dict), doc
    assert words in doc["message"], doc["message"]


# -- fault rules -----------------------------------------------------------------------------


def test_fault_rules_fire_for_soap_clients_and_can_be_listed_and_cleared(ctl: ControlClient, server: Any) -> None:
    rule = ctl.add_fault("snapshot.create", target="rhel5-web", fault="SnapshotFault", message="disk busy",
                         times=1, label="busy")
    assert rule == {"operation": "snapshot.create", "target": "rhel5-web", "fault": "SnapshotFault",
                    "message": "disk busy", "delay": 0.0, "exit_code": None, "after": 0, "times": 1,
                    "probability": 1.0, "label": "busy"}
    si = _connect(server)
    try:
        vm = _vm(si, "rhel5-web")
        with pytest.raises(vim.fault.SnapshotFault) as err:
            WaitForTask(vm.CreateSnapshot_Task("s", "", False, False))
        assert "disk busy" in err.value.msg
        assert [(r["label"], r["fired"]) for r in ctl.faults()] == [("busy", 1)]
        WaitForTask(vm.CreateSnapshot_Task("s", "", False, False))  # times=1: spent
        ctl.add_fault("snapshot.create", target="vm-*", fault="SnapshotFault", times=None)
        assert ctl.clear_faults() == 2 and ctl.faults() == []
        WaitForTask(vm.CreateSnapshot_Task("s2", "", False, False))
    finally:
        Disconnect(si)


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ({"operation": "snapshot.explode"}, "expected one of consolidate"),
        ({"operation": "snapshot.create", "fault": "NoSuchFault"}, "NoSuchFault"),
        ({"operation": "snapshot.create", "probability": 2}, "a number from 0.0 to 1.0"),
        ({"operation": "snapshot.create", "times": "often"}, "fault.times"),
        ({"operation": "snapshot.create", "when": "now"}, "unknown field 'when'"),
        ({"target": "x"}, "fault.operation: expected one of vcbsim.simulator.OPERATIONS"),
    ],
)
def test_bad_fault_rules_are_refused(ctl: ControlClient, rule: dict[str, Any], words: str) -> None:
    with pytest.raises(ControlError) as err:
        ctl.request("POST", "faults", rule)
    assert err.value.status == 400 and words in err.value.message, err.value.message
    assert ctl.faults() == []


def test_a_list_of_rules_is_armed_at_once(ctl: ControlClient) -> None:
    _status, body, _ = ctl.request("POST", "faults", [{"operation": "script", "target": "*10-*", "exit_code": 2},
                                                       {"operation": "snapshot.remove", "delay": 30}])
    assert [r["operation"] for r in json.loads(body)] == ["script", "snapshot.remove"]
    assert len(ctl.faults()) == 2


# -- trace and state ---------------------------------------------------------------------------


def test_trace_is_schema_valid_json_lines_and_since_returns_the_tail(ctl: ControlClient, server: Any) -> None:
    mark = ctl.state()["trace"]["next_seq"]
    si = _connect(server)
    try:
        vm = _vm(si, "rhel5-web")
        WaitForTask(vm.CreateSnapshot_Task("s", "", False, True))
    finally:
        Disconnect(si)
    status, _body, headers = _raw(server, "GET", f"/vcbsim-api/trace?since={mark}", None, _basic())
    assert status == 200 and headers["Content-Type"] == "application/x-ndjson"
    raw = ctl.request("GET", f"trace?since={mark}")[1].decode()
    events = load_jsonl(raw.splitlines())  # validates every line against trace.schema.json
    assert events[0].seq == mark and [e.seq for e in events] == list(range(mark, mark + len(events)))
    assert "snapshot.create" in [e.kind for e in events] and "script.run" in [e.kind for e in events]
    assert int(headers["X-Vcbsim-Next-Seq"]) == mark + len(events)
    assert [e.seq for e in ctl.trace()][: mark] == list(range(mark))


def test_proxy_events_posted_are_stamped_in_order_with_the_hosts(ctl: ControlClient, server: Any) -> None:
    seqs = ctl.post_events([{"kind": "op.invoke", "vm": "rhel5-web", "step": "WF-1",
                             "details": {"op": "pre-backup", "op_id": "p1"}}])
    si = _connect(server)
    try:
        WaitForTask(_vm(si, "rhel5-web").CreateSnapshot_Task("_VCB-BACKUP_", "", False, True))
    finally:
        Disconnect(si)
    seqs += ctl.post_events([{"kind": "op.ok", "vm": "vm-2", "step": "WF-1", "details": {"op": "pre-backup",
                                                                                         "op_id": "p1"}}])
    events = ctl.trace(since=seqs[0])
    assert events[0].kind == "op.invoke" and events[-1].kind == "op.ok" and events[-1].seq == seqs[1]
    assert "snapshot.create" in [e.kind for e in events[1:-1]]
    assert {events[0].vm, events[-1].vm} == {"vm-2"}  # names become morefs
    for bad, words in [({"kind": "snapshot.create"}, "expected one of op.invoke"),
                       ({"kind": "note", "actor": "host"}, "'proxy'"),
                       ({"kind": "note", "vm": "nope"}, "no VM named 'nope'")]:
        with pytest.raises(ControlError) as err:
            ctl.post_events([bad])
        assert words in err.value.message


def test_state_is_the_hosts_dump(ctl: ControlClient, host: Host) -> None:
    state = ctl.state()
    dump = host.dump()
    assert {k: state[k] for k in dump} == json.loads(json.dumps(dump, default=str))
    assert state["trace"]["next_seq"] == len(host.trace)


def test_reset_keeps_the_servers_trace_limit_and_sink(ctl: ControlClient, host: Host, tmp_path: Any) -> None:
    sink = (tmp_path / "trace.jsonl").open("w", encoding="utf-8")
    host.trace.limit, host.trace.sink = 50, sink
    ctl.reset(seed=3)
    assert (host.trace.limit, host.trace.sink) == (50, sink)
    for i in range(120):
        ctl.post_events([{"kind": "note", "details": {"text": str(i)}}])
    state = ctl.state()["trace"]
    assert state["dropped"] > 0 and state["next_seq"] == len(host.trace)
    kept = ctl.trace()
    assert len(kept) <= 50 and kept[-1].details["text"] == "119"
    sink.close()
    assert (tmp_path / "trace.jsonl").read_text().count("\n") == len(host.trace)


# -- the host's facts (the kit judges restores from them) -------------------------------------


def test_a_vms_facts_are_its_vmx_and_the_digests_of_its_disks(ctl: ControlClient, host: Host) -> None:
    from vcbsim.simulator.disk import image_digest

    facts = ctl.vm("win2003-sql")
    vm = host.find_vm("win2003-sql")
    assert facts["moref"] == vm.moref and facts["vmx"] == vm.vmx_text() and facts["vmx_path"] == vm.vmx_path
    assert [(d["key"], d["digest"]) for d in facts["disks"]] == [
        (d.key, image_digest(host.disk_view(vm, d.key))) for d in vm.disks]
    host.guest_fs("win2003-sql").write_bytes("D:\\Data\\new.txt", b"changed")
    assert ctl.vm("win2003-sql")["disks"][1]["digest"] != facts["disks"][1]["digest"]
    with pytest.raises(ControlError) as info:
        ctl.vm("no-such-vm")
    assert info.value.status == 404


def test_a_capture_records_the_disks_and_vmx_at_the_snapshot_the_moment_it_exists(ctl: ControlClient,
                                                                                   host: Host) -> None:
    from vcbsim.simulator.disk import image_digest

    vm = host.find_vm("win2003-sql")
    ctl.capture("win2003-sql")
    snap = host.create_snapshot(vm, "_VCB-BACKUP_")
    at_snapshot = {str(d.key): image_digest(host.disk_view(vm, d.key, snap.moref)) for d in vm.disks}
    host.guest_fs("win2003-sql").write_bytes("D:\\Data\\after.txt", b"after the snapshot")
    host.remove_snapshot(vm, snap)  # gone before a client could read it
    taken = ctl.captures()
    assert list(taken) == [snap.moref]
    assert taken[snap.moref]["disks"] == at_snapshot and taken[snap.moref]["vm"] == "win2003-sql"
    assert "_VCB-BACKUP_" in taken[snap.moref]["vmsd"]
    # one capture per arming; a reset forgets them
    host.remove_snapshot(vm, host.create_snapshot(vm, "again"))
    assert list(ctl.captures()) == [snap.moref]
    ctl.reset()
    assert ctl.captures() == {}
