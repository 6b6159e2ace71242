"""SIGKILL ``vcbsim serve --datastore DIR`` at random moments; after a restart nothing acknowledged is lost.

A seeded client loop drives the server with pyvmomi and the control API: guest file writes on
``win2003-sql`` (acknowledged when the HTTP call returned 200), quiesced and plain
``CreateSnapshot_Task``, ``RemoveSnapshot_Task`` (mostly consolidating),
``ConsolidateVMDisks_Task`` and now and then ``RevertToSnapshot_Task``, each awaited with
``WaitForTask``. The test kills the server after a random delay, right after a random
acknowledged operation, or while a task is running (sometimes once more while it recovers),
restarts it on the same directory and checks the result against a model of the guest files
per snapshot: the one operation in flight may or may not have happened (both are accepted,
and the model follows the one that is there), nothing else. The disk chains of
``config.hardware.device``, ``layout`` and ``layoutEx`` must agree with the snapshot tree
(a child's chain on its parent's, the running one on the current snapshot's), and the
leftover snapshots can be removed until each chain is back on its base with
``runtime.consolidationNeeded`` false.

The directory carries on from kill to kill; it starts as a copy of a datastore prepared once.
``KIT_CRASH_ITERATIONS`` sets the number of kills (``tox -e crash`` runs a few hundred).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyVim.connect import Disconnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from vcbsim.simulator.soap import ControlClient, ControlError

ITERATIONS = int(os.environ.get("KIT_CRASH_ITERATIONS", "8"))
VM = "win2003-sql"
PATHS = [r"C:\crash\a.txt", r"C:\crash\b.txt", r"D:\crash\c.txt", r"D:\crash\d.txt"]
MAX_SNAPSHOTS = 4

_spec = importlib.util.spec_from_file_location(
    "vcbsim_serve_datastore", Path(__file__).parents[1] / "control" / "test_serve_datastore.py")
assert _spec is not None and _spec.loader is not None
served = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(served)


@dataclass
class Model:
    """What the guest must show: the live files, and the files as of each snapshot."""

    live: dict[str, bytes] = field(default_factory=dict)
    snaps: dict[str, tuple[str | None, dict[str, bytes]]] = field(default_factory=dict)  # name -> parent, files
    current: str | None = None

    def tree(self) -> list[tuple[str, str | None]]:
        return sorted((n, p) for n, (p, _) in self.snaps.items())

    def depth(self) -> int:
        d, s = 0, self.current
        while s is not None:
            d, s = d + 1, self.snaps[s][0]
        return d

    def apply(self, op: dict[str, Any]) -> Model:
        m = copy.deepcopy(self)
        kind = op["kind"]
        if kind == "write":
            m.live[op["path"]] = op["data"]
        elif kind == "create":
            m.snaps[op["name"]] = (m.current, dict(m.live))
            m.current = op["name"]
        elif kind == "remove":
            parent = m.snaps.pop(op["name"])[0]
            m.snaps = {n: (parent if p == op["name"] else p, f) for n, (p, f) in m.snaps.items()}
            if m.current == op["name"]:
                m.current = parent
        elif kind == "revert":
            m.live, m.current = dict(m.snaps[op["name"]][1]), op["name"]
        return m


def _start(ds: Path) -> Any:
    # esxi-7.0: the operations below include the 5.0 consolidation API, which a 3.5 host lacks
    return served._start("--profile", "esxi-7.0", "--datastore", str(ds))


def _stop(s: Any, sig: int = signal.SIGKILL) -> None:
    if s.proc.poll() is None:
        s.proc.send_signal(sig)
    s.proc.wait(30)
    if s.proc.stdout is not None:
        s.proc.stdout.close()


def _kill_while_starting(ds: Path, delay: float) -> None:
    """Start the server on ``ds`` and SIGKILL it ``delay`` seconds later, up or not."""
    proc = subprocess.Popen([sys.executable, "-m", "vcbsim", "serve", "--http", "--port", "0", "--profile", "esxi-7.0",
                             "--datastore", str(ds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(delay)
    finally:
        proc.kill()
        proc.wait(30)


def _prepare(ds: Path) -> None:
    """A datastore holding only a small ``win2003-sql`` (two 40 MiB disks, Tools, VSS, a script)."""
    s = _start(ds)
    try:
        ctl = ControlClient(s.url)
        ctl.reset(demo=False)
        ctl.add_vm(VM, os="windows", disks=["40MiB", "40MiB"], tools="running", providers=["vss"],
                   volumes={0: [[None, "C", "SYSTEM"]], 1: [[None, "D", "DATA"]]},
                   files={r"C:\Program Files\VMware\VMware Tools\backupScripts.d\10-flush.bat":
                          "@echo off\r\necho flush %1 >> C:\\quiesce.log\r\n"})
    finally:
        _stop(s, signal.SIGTERM)
    assert s.proc.returncode == 0


def _snapshots(vm: Any) -> dict[str, tuple[str | None, Any]]:
    out: dict[str, tuple[str | None, Any]] = {}

    def walk(nodes: Any, parent: str | None) -> None:
        for n in nodes:
            out[n.name] = (parent, n.snapshot)
            walk(n.childSnapshotList, n.name)

    if vm.snapshot is not None:
        walk(vm.snapshot.rootSnapshotList, None)
    return out


def _chains(vm: Any) -> list[list[str]]:
    chains = []
    for dev in vm.config.hardware.device:
        if isinstance(dev, vim.vm.device.VirtualDisk):
            chain, b = [], dev.backing
            while b is not None:
                chain.append(b.fileName)
                b = b.parent
            chains.append(chain)
    return chains


def _layout_chains(vm: Any) -> tuple[dict[int, list[str]], dict[str, dict[int, list[str]]]]:
    """``layoutEx``: the live chain of each disk and each snapshot's, top first, as descriptor names."""
    lx = vm.layoutEx
    names = {f.key: f.name for f in lx.file}

    def chain(d: Any) -> list[str]:
        units = [sorted(names[k] for k in u.fileKey) for u in d.chain]
        desc = [next(n for n in u if not n.endswith(("-flat.vmdk", "-delta.vmdk", "-sesparse.vmdk"))) for u in units]
        return desc if any(n.endswith("-flat.vmdk") for n in units[-1]) else desc[::-1]

    return ({d.key: chain(d) for d in lx.disk},
            {s.key._moId: {d.key: chain(d) for d in s.disk} for s in lx.snapshot})


def _suffix(short: list[str], long: list[str]) -> bool:
    return len(short) <= len(long) and long[len(long) - len(short):] == short


class Session:
    """One running server with a pyvmomi session and a control client."""

    def __init__(self, ds: Path) -> None:
        self.server = _start(ds)
        self.ctl = ControlClient(self.server.url)
        self.si = served._connect(self.server)
        self.vm = served._vm(self.si, VM)

    def observe(self) -> tuple[list[tuple[str, str | None]], str | None, dict[str, bytes]]:
        snaps = _snapshots(self.vm)
        ref = self.vm.snapshot.currentSnapshot if self.vm.snapshot is not None else None
        cur = ref._moId if ref is not None else None
        current = next((n for n, (_, ref) in snaps.items() if ref._moId == cur), None)
        assert (cur is None) == (current is None), (cur, snaps)
        files = {}
        for p in PATHS:
            try:
                files[p] = self.ctl.read_guest_file(VM, p)
            except ControlError as exc:  # a file never written (or discarded by a revert)
                assert exc.status == 404, exc
        return sorted((n, p) for n, (p, _) in snaps.items()), current, files

    def close(self) -> None:
        try:
            Disconnect(self.si)
        except Exception:  # noqa: S110 - the server may be dead already
            pass


def _choose(rng: random.Random, model: Model, serial: int) -> dict[str, Any]:
    r = rng.random()
    if r < 0.5 or (not model.snaps and r < 0.7):
        data = f"w{serial}-{rng.getrandbits(32):08x}\n".encode()
        if rng.random() < 0.2:  # a bigger file: more grains for a merge to move
            data += rng.randbytes(rng.randint(64, 1024) * 1024)
        return {"kind": "write", "path": rng.choice(PATHS), "data": data}
    if r < 0.75 and len(model.snaps) < MAX_SNAPSHOTS:
        return {"kind": "create", "name": f"s{serial}", "quiesce": rng.random() < 0.5}
    if model.snaps and r < 0.88:
        return {"kind": "remove", "name": rng.choice(sorted(model.snaps)), "consolidate": rng.random() < 0.7}
    if r < 0.92:
        return {"kind": "consolidate"}
    if model.snaps:
        return {"kind": "revert", "name": rng.choice(sorted(model.snaps))}
    return {"kind": "write", "path": rng.choice(PATHS), "data": f"w{serial}\n".encode()}


def _perform(sess: Session, op: dict[str, Any], on_task: Any) -> None:
    kind = op["kind"]
    if kind == "write":
        sess.ctl.write_guest_files(VM, {op["path"]: op["data"]})
        return
    if kind == "create":
        task = sess.vm.CreateSnapshot_Task(op["name"], "crash", False, op["quiesce"])
    elif kind == "consolidate":
        task = sess.vm.ConsolidateVMDisks_Task()
    else:
        ref = _snapshots(sess.vm)[op["name"]][1]
        task = (ref.RemoveSnapshot_Task(removeChildren=False, consolidate=op["consolidate"]) if kind == "remove"
                else ref.RevertToSnapshot_Task())
    on_task()
    WaitForTask(task)


def _check(sess: Session, candidates: list[Model]) -> Model:
    """The restarted server shows one of the candidates, with disk chains that match its tree."""
    tree, current, files = sess.observe()
    match = next((m for m in candidates if (m.tree(), m.current, m.live) == (tree, current, files)), None)
    assert match is not None, ("no acceptable outcome", tree, current, files,
                               [(m.tree(), m.current, m.live) for m in candidates])
    chains = _chains(sess.vm)
    assert len(chains) == 2
    for chain in chains:  # a branch point may keep a layer unmerged: at least one layer per ancestor
        assert len(chain) >= match.depth() + 1 and len(set(chain)) == len(chain), (chain, match.current, tree)
    layout = sess.vm.layout
    assert sorted(map(sorted, chains)) == sorted(sorted(d.diskFile) for d in layout.disk), (chains, layout.disk)
    live, held = _layout_chains(sess.vm)
    assert sorted(live.values()) == sorted(chains), (live, chains)
    snaps = _snapshots(sess.vm)
    assert sorted(held) == sorted(ref._moId for _, ref in snaps.values()), (held, tree)
    for name, (parent, ref) in snaps.items():  # a child's disks sit on its parent's
        if parent is not None:
            for key, chain in held[ref._moId].items():
                assert _suffix(held[snaps[parent][1]._moId][key], chain), (name, parent, held)
    if match.current is not None:  # and the running disks on the current snapshot's
        for key, chain in held[snaps[match.current][1]._moId].items():
            assert _suffix(chain, live[key][1:]), (match.current, chain, live[key])
    return match


def _clean_up(sess: Session, model: Model, bases: list[str]) -> Model:
    """Remove every leftover snapshot: the chain is back on its base, nothing to consolidate."""
    while model.snaps:
        name = sorted(model.snaps)[0]
        WaitForTask(_snapshots(sess.vm)[name][1].RemoveSnapshot_Task(removeChildren=False, consolidate=True))
        model = model.apply({"kind": "remove", "name": name})
    if sess.vm.runtime.consolidationNeeded:
        WaitForTask(sess.vm.ConsolidateVMDisks_Task())
    assert sess.vm.snapshot is None
    assert not sess.vm.runtime.consolidationNeeded
    assert [c for c in _chains(sess.vm)] == [[b] for b in bases]
    assert sess.observe()[2] == model.live
    return model


def _round(sess: Session, model: Model, rng: random.Random, serial: int,
           counts: dict[str, int]) -> tuple[Model, dict[str, Any] | None, int]:
    """Operations until the kill; returns the acknowledged model, the operation in flight, the serial."""
    mode = rng.choice(["by_delay", "after_ack", "in_task"])
    counts[mode] += 1
    killed = threading.Event()
    proc = sess.server.proc

    def kill() -> None:
        if not killed.is_set():
            killed.set()
            proc.send_signal(signal.SIGKILL)

    stop_after, task_at, task_delay = rng.randint(1, 12), rng.randint(1, 12), rng.choice([0.0, rng.uniform(0.0, 0.01)])
    acknowledged = 0

    def on_task() -> None:
        if mode == "in_task" and acknowledged + 1 >= task_at:
            time.sleep(task_delay)
            kill()

    timer = threading.Timer(rng.uniform(0.05, 1.5), kill) if mode == "by_delay" else None
    if timer is not None:
        timer.start()
    try:
        for _ in range(5000):  # bounded: the kill comes long before (the timer within 1.5 s)
            serial += 1
            op = _choose(rng, model, serial)
            try:
                _perform(sess, op, on_task)
            except Exception:
                if not killed.is_set():
                    raise
                return model, op, serial
            model = model.apply(op)
            acknowledged += 1
            counts["acknowledged"] += 1
            if killed.is_set():
                return model, None, serial  # acknowledged just before the kill landed
            if mode == "after_ack" and acknowledged >= stop_after:
                kill()
                return model, None, serial
        raise AssertionError("no kill within 5000 operations")
    finally:
        if timer is not None:
            timer.cancel()
        kill()
        sess.close()
        _stop(sess.server)


def test_sigkill_the_server_at_random_moments(tmp_path: Path, tmp_path_factory: Any) -> None:
    started = time.monotonic()
    template = tmp_path_factory.getbasetemp() / "server-crash-template"
    if not template.exists():
        _prepare(template)
    ds = tmp_path / "ds"
    subprocess.run(["cp", "-a", "--sparse=always", str(template), str(ds)], check=True)
    rng = random.Random(int(os.environ.get("KIT_CRASH_SEED", "20261124")))
    model = Model()
    counts = dict.fromkeys(["kills", "acknowledged", "in_flight", "happened", "not_happened", "ambiguous",
                            "by_delay", "after_ack", "in_task", "recovery_kills"], 0)
    outcomes: dict[str, int] = {}
    serial = 0
    sess = Session(ds)
    bases = [c[0] for c in _chains(sess.vm)]
    try:
        for _ in range(ITERATIONS):
            model, in_flight, serial = _round(sess, model, rng, serial, counts)
            counts["kills"] += 1
            if rng.random() < 0.2:  # and once more while it recovers
                _kill_while_starting(ds, rng.uniform(0.0, 0.8))
                counts["recovery_kills"] += 1
            sess = Session(ds)
            candidates = [model] if in_flight is None else [model, model.apply(in_flight)]
            match = _check(sess, candidates)
            if in_flight is not None:
                counts["in_flight"] += 1
                same = (candidates[0].tree(), candidates[0].current, candidates[0].live) == (
                    candidates[1].tree(), candidates[1].current, candidates[1].live)
                outcome = "ambiguous" if same else "happened" if match is candidates[1] else "not_happened"
                counts[outcome] += 1
                outcomes[f"{in_flight['kind']}/{outcome}"] = outcomes.get(f"{in_flight['kind']}/{outcome}", 0) + 1
            model = match
            if rng.random() < 0.3:
                model = _clean_up(sess, model, bases)
        model = _clean_up(sess, model, bases)
    finally:
        sess.close()
        _stop(sess.server)
        shutil.rmtree(ds, ignore_errors=True)
    print(f"\nserver crash: {counts}; in flight: {dict(sorted(outcomes.items()))}; "
          f"{time.monotonic() - started:.1f} s")
    assert counts["kills"] == ITERATIONS
