"""Concurrent load: 16 pyVmomi clients, each with its own session and VM, on one served host.

Each client runs a bounded number of snapshot cycles on its own VM (``KIT_LOAD_CYCLES``, 10 by
default; 100 for the full run): create a snapshot, let the "guest" write a marker into the
new redo log, check the snapshot tree, remove the snapshot (every fifth cycle: two snapshots
and ``RemoveAllSnapshots``). Half the clients wait with ``pyVim.task.WaitForTask``, half poll
``task.info.state`` as Ansible does. Afterwards: no client saw an error, no snapshot is left,
every disk chain is back to its base and holds the last marker, every task succeeded and is
kept (``retention`` per session) until it is older than ``max_age`` on the endpoint clock
(injected, held still, then moved on), the trace is consistent (each VM's creates and
removes pair up, in order), and the server's RSS is printed (bounded only loosely: < 2x).

Loopback only; the loops are bounded; no timing assertions.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from vcbsim.simulator import Host
from vcbsim.simulator.soap import RunningServer, serve

CLIENTS = 16
CYCLES = int(os.environ.get("KIT_LOAD_CYCLES", "10"))
MiB = 1 << 20
DISK = 64 * MiB
#: a client stuck this long is a deadlock, not slowness
JOIN_TIMEOUT = 600.0
USER, PASSWORD = "user", "pass"


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class FrozenClock:
    """The endpoint's clock (session idle time, task age), held still: which tasks are kept
    must not depend on how long the run takes on the wall clock; the test moves it on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def marker(vm: str, cycle: int) -> bytes:
    return f"{vm}:cycle={cycle:05d}".encode().ljust(64, b".")


@pytest.fixture
def loaded() -> Iterator[tuple[Host, RunningServer, FrozenClock]]:
    assert 1 <= CYCLES <= 10_000, "KIT_LOAD_CYCLES must be from 1 to 10,000"
    host = Host(seed=7)
    for i in range(CLIENTS):
        host.add_vm(f"load-{i:02d}", os_family="windows" if i % 2 else "linux", disks=(DISK, DISK // 2))
    clock = FrozenClock()
    with serve(host, port=0, user=USER, password=PASSWORD, clock=clock) as server:
        yield host, server, clock


def wait_for_task(task: Any) -> Any:
    WaitForTask(task)
    return task.info.result


def poll_task(task: Any) -> Any:
    while True:
        info = task.info
        if info.state == "success":
            return info.result
        if info.state == "error":
            raise info.error


def client(
    port: int, name: str, waiter: Callable[[Any], Any], guest_write: Callable[[str, int], None],
    start: threading.Barrier,
) -> Counter[str]:
    """One client: its own session; returns how many tasks of each kind it ran."""
    tasks: Counter[str] = Counter()
    si = SmartConnect(host="127.0.0.1", port=port, user=USER, pwd=PASSWORD, disableSslCertValidation=True)
    try:
        vm = si.content.searchIndex.FindByInventoryPath(f"ha-datacenter/vm/{name}")
        assert vm is not None and vm.name == name
        assert vm.snapshot is None
        start.wait(timeout=60)
        for n in range(CYCLES):
            snap = waiter(vm.CreateSnapshot_Task(f"c{n}", f"cycle {n}", False, False))
            tasks["create"] += 1
            assert isinstance(snap, vim.vm.Snapshot)
            guest_write(name, n)
            tree = vm.snapshot
            assert tree.currentSnapshot == snap and [s.name for s in tree.rootSnapshotList] == [f"c{n}"]
            if n % 5 == 4:
                second = waiter(vm.CreateSnapshot_Task(f"c{n}b", "", False, False))
                tasks["create"] += 1
                assert vm.snapshot.currentSnapshot == second
                waiter(vm.RemoveAllSnapshots_Task())
                tasks["remove_all"] += 1
            else:
                waiter(snap.RemoveSnapshot_Task(removeChildren=False))
                tasks["remove"] += 1
            assert vm.snapshot is None
            assert vm.runtime.consolidationNeeded is False
    finally:
        with contextlib.suppress(Exception):
            Disconnect(si)
    return tasks


def test_sixteen_clients_snapshot_cycles_leave_a_consistent_host(loaded) -> None:
    host, server, clock = loaded
    names = [vm.name for vm in host.vms.values()]
    base = {vm.name: {d.key: d.disk.chain()[-1].label for d in vm.disks} for vm in host.vms.values()}
    first_event = len(host.trace.events)
    ep_lock = server.endpoint.lock

    def guest_write(name: str, cycle: int) -> None:
        # the guest writes while the snapshot exists: the marker lands in the redo log, and
        # removing the snapshot must consolidate it into the base
        with ep_lock:
            vm = host.find_vm(name)
            for d in vm.disks:
                host.guest_device(vm, d.key).write(d.capacity // 2, marker(name, cycle))

    start = threading.Barrier(CLIENTS)
    errors: list[str] = []
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def run(i: int) -> None:
        waiter = wait_for_task if i % 2 == 0 else poll_task
        try:
            done = client(server.port, names[i], waiter, guest_write, start)
        except BaseException as exc:  # noqa: BLE001 - reported below with the client's name
            with lock:
                errors.append(f"{names[i]}: {type(exc).__name__}: {exc}")
            start.abort()
        else:
            with lock:
                counts.update(done)

    rss_before = rss_kib()
    threads = [threading.Thread(target=run, args=(i,), name=f"load-client-{i}", daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a client hung"
    rss_after = rss_kib()
    print(
        f"\n{CLIENTS} clients x {CYCLES} cycles: {sum(counts.values())} tasks; "
        f"server process RSS {rss_before / 1024:.1f} MiB -> {rss_after / 1024:.1f} MiB"
    )
    assert errors == []

    # every task ran and succeeded
    per_client_creates = CYCLES + CYCLES // 5
    assert counts["create"] == CLIENTS * per_client_creates
    assert counts["remove_all"] == CLIENTS * (CYCLES // 5)
    assert counts["remove"] == CLIENTS * (CYCLES - CYCLES // 5)
    runner = server.endpoint.tasks
    assert runner.failed == 0 and runner.completed == sum(counts.values())
    # WaitForTask's filters were destroyed, every client logged out
    assert server.endpoint.scoped.filters == {}
    assert server.endpoint.sessions == {}
    # finished tasks are kept per session (``retention`` each, so one busy client cannot push
    # another's out of sight) and by age on the endpoint clock, not ``retention`` in all: with
    # the clock still, each client's newest ``retention`` tasks are all there
    per_client_tasks = per_client_creates + CYCLES
    assert len(runner) == CLIENTS * min(per_client_tasks, runner.retention)

    # no snapshot left, every chain back to its base, holding the last marker
    for vm in host.vms.values():
        assert vm.root_snapshots == [] and vm.current_snapshot is None
        assert vm.consolidation_needed is False
        for d in vm.disks:
            chain = d.disk.chain()
            assert len(chain) == 1 and chain[0].label == base[vm.name][d.key]
            last = marker(vm.name, CYCLES - 1)
            assert host.read_disk(vm, d.key, d.capacity // 2, len(last)) == last

    # the trace: ordered, and per VM every snapshot created once, removed once, after creation
    events = host.trace.events[first_event:]
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    live: dict[str, set[str]] = {vm.moref: set() for vm in host.vms.values()}
    created: Counter[str] = Counter()
    for e in events:
        if e.kind == "snapshot.create":
            assert e.details["snapshot"] not in live[e.vm]
            live[e.vm].add(e.details["snapshot"])
            created[e.vm] += 1
        elif e.kind == "snapshot.remove":
            live[e.vm].remove(e.details["snapshot"])  # KeyError: removed before created
        assert e.kind not in ("snapshot.create.fail", "snapshot.rollback"), e
    assert all(not s for s in live.values())
    assert set(created.values()) == {per_client_creates}

    # nothing accumulates: once they are older than ``max_age`` on the endpoint clock, the next
    # finished task takes them all away (this comes after the checks that count snapshots)
    clock.now += runner.max_age + 1
    si = SmartConnect(host="127.0.0.1", port=server.port, user=USER, pwd=PASSWORD, disableSslCertValidation=True)
    try:
        late = si.content.searchIndex.FindByInventoryPath(f"ha-datacenter/vm/{names[0]}")
        WaitForTask(late.CreateSnapshot_Task("late", "", False, False))
        WaitForTask(late.RemoveAllSnapshots_Task())
    finally:
        Disconnect(si)
    assert len(runner) == 2 and runner.failed == 0

    # memory: printed above; only a loose bound (the trace grows with every event by design)
    assert rss_after < 2 * rss_before
