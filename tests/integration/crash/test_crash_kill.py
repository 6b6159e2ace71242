"""SIGKILL a host at random moments; after a restart every disk matches a reference model.

A child process (``crash_child.py``) opens a persisted host and performs seeded random
writes, snapshot creations, removals (with and without consolidation), consolidations and
reverts, acknowledging each completed operation on stdout. The parent kills it at a random
moment, reopens the directory in-process and compares every disk, live and as of every
snapshot, plus the snapshot tree, with an in-memory reference host that replayed the
acknowledged operations. The one operation in flight may or may not have happened: both
outcomes are accepted (and the reference follows the one that is there), nothing else is.
The same directory carries on to the next round, so leftovers of one kill meet the next.

``KIT_CRASH_ITERATIONS`` sets the number of kills (``tox -e crash`` runs a few hundred).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from vcbsim.simulator._host import Host

ITERATIONS = int(os.environ.get("KIT_CRASH_ITERATIONS", "24"))
CHILD = Path(__file__).with_name("crash_child.py")
_spec = importlib.util.spec_from_file_location("vcbsim_crash_child", CHILD)
assert _spec is not None and _spec.loader is not None
child = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(child)

GRAIN = 65536


def fingerprint(host: Host) -> dict[str, Any]:
    """What must survive: the snapshot tree and every disk, live and as of each snapshot."""
    vm = host.find_vm(child.VM)

    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()[:16]

    return {
        "tree": sorted((s.name, s.parent.name if s.parent else None) for s in vm.snapshots()),
        "current": vm.current_snapshot.name if vm.current_snapshot else None,
        "live": [digest(d.disk.read(0, d.capacity)) for d in vm.disks],
        "at": {
            s.name: [digest(host.disk_view(vm, d.key, s).read(0, d.capacity)) for d in vm.disks]
            for s in vm.snapshots()
        },
    }


def check_cbt(host: Host) -> None:
    """Changed areas since each snapshot cover every grain that differs from it (R51-R52)."""
    vm = host.find_vm(child.VM)
    if not vm.change_tracking:
        return
    for s in vm.snapshots():
        for d in vm.disks:
            then = host.disk_view(vm, d.key, s).read(0, d.capacity)
            now = d.disk.read(0, d.capacity)
            differ = {
                i // GRAIN
                for i in range(0, d.capacity, GRAIN)
                if then[i : i + GRAIN] != now[i : i + GRAIN]
            }
            cid = host.change_id(vm, d.key, s)
            assert cid is not None
            info = host.query_changed_disk_areas(vm, None, d.key, 0, cid)
            reported: set[int] = set()
            for off, length in info.changed_area:
                reported.update(range(off // GRAIN, (off + length - 1) // GRAIN + 1))
            assert differ <= reported, (
                f"CBT misses grains {sorted(differ - reported)} since {s.name}"
            )


def run_child(directory: Path, seed: int, rng: random.Random) -> tuple[list[dict[str, Any]], Any]:
    """Run the child until a random moment, kill it; return (acknowledged ops, op in flight)."""
    err_path = directory.parent / "child-stderr.txt"
    with open(err_path, "w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(directory), str(seed), "500"],
            stdout=subprocess.PIPE,
            stderr=err_file,
            text=True,
        )
        assert proc.stdout is not None
        lines: list[str] = []
        target = rng.randrange(0, 40)
        acks = 0
        while acks < target:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            acks += line.startswith("ack")
        time.sleep(rng.random() * 0.01)
        proc.kill()
        # read what is left through the same buffered reader (communicate() would skip the
        # lines readline() has already buffered)
        lines += proc.stdout.read().splitlines()
        proc.stdout.close()
        proc.wait()
    assert proc.returncode == -9, (
        f"child ended by itself ({proc.returncode}):\n{err_path.read_text()[-3000:]}"
    )
    acked: list[dict[str, Any]] = []
    pending: dict[str, Any] | None = None
    for line in lines:
        if line.startswith("begin "):
            pending = json.loads(line[6:])
        elif line.startswith("ack") and pending is not None:
            acked.append(pending)
            pending = None
    return acked, pending


def test_sigkill_at_random_moments(tmp_path: Path) -> None:
    directory = tmp_path / "ds"
    reference = Host(child.PROFILE)
    child.setup(reference)
    host = Host(child.PROFILE, datastore_dir=directory)
    child.setup(host)
    assert host.store is not None
    host.store.close()
    rng = random.Random(int(os.environ.get("KIT_CRASH_SEED", "20260")))
    seen: dict[str, int] = {}
    in_flight_happened = 0
    for round_no in range(ITERATIONS):
        acked, inflight = run_child(directory, rng.randrange(1 << 30), rng)
        for op in acked:
            child.apply(reference, op)
            seen[op["op"]] = seen.get(op["op"], 0) + 1
        recovered = Host(child.PROFILE, datastore_dir=directory)
        report = recovered.recovery_report
        assert report is not None and not report.errors, report
        got = fingerprint(recovered)
        if got != fingerprint(reference):
            assert inflight is not None, f"round {round_no}: state differs, nothing was in flight"
            child.apply(reference, inflight)
            assert got == fingerprint(reference), (
                f"round {round_no}: disks match neither before nor after {inflight}; {report}"
            )
            in_flight_happened += 1
        check_cbt(recovered)
        assert recovered.store is not None
        recovered.store.close()
    # the run must have exercised every kind of operation at least once
    if ITERATIONS >= 20:
        assert {"write", "snapshot", "remove", "revert"} <= set(seen), seen


@pytest.mark.parametrize("seed", [1, 2])
def test_child_runs_to_completion_and_matches(tmp_path: Path, seed: int) -> None:
    """Without a kill, a whole run reopens exactly as the reference replays it."""
    directory = tmp_path / "ds"
    proc = subprocess.run(
        [sys.executable, str(CHILD), str(directory), str(seed), "120"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    reference = Host(child.PROFILE)
    child.setup(reference)
    for line in proc.stdout.splitlines():
        if line.startswith("begin "):
            child.apply(reference, json.loads(line[6:]))
    assert proc.stdout.rstrip().endswith("done")
    recovered = Host(child.PROFILE, datastore_dir=directory)
    assert recovered.recovery_report is not None and recovered.recovery_report.clean
    assert fingerprint(recovered) == fingerprint(reference)
    check_cbt(recovered)
