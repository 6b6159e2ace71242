"""The endpoint as a small context object: each shared concern is one part with one job
(``registry``, ``inventory``, ``sessions``, ``auth``, ``scoped``), driven here without sockets;
the endpoint itself keeps only dispatch and the wiring."""

from __future__ import annotations

import pytest
from pyVmomi import vim, vmodl

from vcbsim.simulator import Host, VirtualClock
from vcbsim.simulator.soap import Endpoint
from vcbsim.simulator.soap._auth import Auth
from vcbsim.simulator.soap._endpoint import Context
from vcbsim.simulator.soap._index import InventoryIndex
from vcbsim.simulator.soap._registry import Registry
from vcbsim.simulator.soap._scoped import SessionScoped
from vcbsim.simulator.soap._sessions import Sessions
from vcbsim.simulator.soap.mo import SnapshotImpl, VirtualMachineImpl

MiB = 1024 * 1024


def _endpoint() -> tuple[Endpoint, VirtualClock]:
    host = Host("esxi-7.0", seed=3)
    host.add_vm("win-db", disks=[64 * MiB])
    host.add_vm("lin-web", os_family="linux", disks=[64 * MiB], power_state="poweredOff", tools="not-installed")
    clock = VirtualClock(1000.0)
    return Endpoint(host, user="u", password="p", clock=clock), clock


def _login(ep: Endpoint, client: str = "10.0.0.1") -> Context:
    ctx = Context(None, "vim.version.version13", client=client)
    ep.auth.login(ctx, "u", "p", None)
    return ctx


def test_the_endpoint_exposes_one_part_per_concern() -> None:
    ep, _clock = _endpoint()
    assert isinstance(ep.registry, Registry) and isinstance(ep.inventory, InventoryIndex)
    assert isinstance(ep.sessions, Sessions) and isinstance(ep.auth, Auth) and isinstance(ep.scoped, SessionScoped)
    # the parts share the endpoint's host, clock and lock rather than copies of them
    assert ep.inventory.host is ep.host and ep.sessions.clock is ep.clock and ep.scoped.changed is ep.changed


def test_the_registry_finds_inventory_objects_and_only_the_callers_own_views() -> None:
    ep, _clock = _endpoint()
    with ep.lock:
        ep.begin_call()
        assert isinstance(ep.registry.require(vim.VirtualMachine("vm-1")), VirtualMachineImpl)
        assert ep.registry.lookup(vim.Datastore("vm-1")) is None  # right id, wrong type
        with pytest.raises(vmodl.fault.ManagedObjectNotFound):
            ep.registry.require(vim.VirtualMachine("vm-99"))
        snap = ep.host.create_snapshot(ep.host.vms["vm-1"], "s1")
        ep.begin_call()
        assert isinstance(ep.registry.require(vim.vm.Snapshot(snap.moref)), SnapshotImpl)
        assert ep.inventory.snapshot_vm(snap.moref) == "vm-1"
        mine, other = _login(ep), _login(ep, "10.0.0.2")
        view = ep.scoped.create_view(mine.sess, vim.Folder("ha-folder-vm"), [], False)
        ep._local.ctx = other  # a call of the other session
        try:
            assert ep.registry.lookup(view) is None
        finally:
            ep._local.ctx = None


def test_the_end_of_a_session_drops_what_it_made() -> None:
    ep, clock = _endpoint()
    with ep.lock:
        ctx = _login(ep)
        coll = ep.scoped.create_collector(ctx.sess)
        view = ep.scoped.create_view(ctx.sess, vim.Folder("ha-folder-vm"), [], True)
        assert coll._moId in ep.scoped.collectors and view._moId in ep.scoped.views
        url = ep.auth.create_transfer("from", "vm-1", "root", "vmware", "/etc/hosts", False, 10)
        token = url.split("token=")[1]
        ep._local.ctx = None
        clock.advance(ep.sessions.idle_limit() + 1)
        ep.sessions.expire()  # idle too long: ends as a logout would
        assert ctx.sess.key not in ep.sessions
        assert ep.scoped.collectors == {} and ep.scoped.views == {}
        assert not ep.sessions.transfer_pending(token, "from")


def test_the_inventory_memo_lives_for_one_call() -> None:
    ep, _clock = _endpoint()
    with ep.lock:
        ep.begin_call()
        first = ep.inventory.vm_view("vm-1")
        assert ep.inventory.vm_view("vm-1") is first  # one view per call
        ep.host.add_datastore("datastore2", 1 << 30)
        ep.begin_call()
        assert ep.inventory.vm_view("vm-1") is not first
        assert "datastore2" in ep.inventory.datastore_refs()


def test_login_lockout_and_cookie_are_the_auths() -> None:
    ep, _clock = _endpoint()
    ep.auth.throttle.failures = 2
    ctx = Context(None, "vim.version.version13", client="10.0.0.9")
    for _ in range(2):
        with pytest.raises(vim.fault.InvalidLogin):
            ep.auth.login(ctx, "u", "wrong", None)
    with pytest.raises(vim.fault.InvalidLogin):  # locked: the right password is refused too
        ep.auth.login(ctx, "u", "p", None)
    assert ep.auth.credentials_ok("u", "p") and not ep.auth.credentials_ok("u", "x")
    assert ep.auth.cookie_header("k").endswith("; Secure")


def test_the_endpoint_itself_is_dispatch_and_wiring() -> None:
    """What the managed objects share is a part (``ep.inventory.host_vm``, not ``ep.host_vm``):
    a method added to the endpoint is a concern that belongs in a part, or a deliberate change
    of this list."""
    public = {n for n, v in vars(Endpoint).items() if callable(v) and not n.startswith("_")}
    assert public == {"start", "stop", "now", "current_context", "begin_call", "handle_soap"}
    ep, _clock = _endpoint()
    for old in ("host_vm", "lookup", "login", "create_view", "filters", "session_store", "datastore_refs"):
        assert not hasattr(ep, old), f"Endpoint.{old} is back: use the part that holds it"
