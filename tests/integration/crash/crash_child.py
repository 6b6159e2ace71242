"""Child process of the crash tests: open a persisted host and run seeded random operations.

Usage: ``python crash_child.py DIR SEED COUNT``. Each operation is announced on stdout as
``begin <json>`` before it starts and ``ack <n>`` after it returned, flushed at once, so the
parent (which SIGKILLs this process at a random moment) knows which operations completed
and which one may have been in flight. The JSON says exactly what to replay (VM, disk,
offset, data seed, snapshot name), so the parent needs no knowledge of this file's choices.
"""

from __future__ import annotations

import json
import random
import sys

from vcbsim.simulator._host import Host, MiB

VM = "crashvm"
PROFILE = "esxi-7.0"  # has changed-block tracking
DISKS = (4 * MiB, 2 * MiB + 512 * 3)  # the second one ends in a partial grain
MAX_SNAPSHOTS = 6


def payload(seed: int, length: int) -> bytes:
    """Deterministic data for a write (the parent recomputes it from the seed)."""
    return random.Random(seed).randbytes(length)


def setup(host: Host) -> None:
    """The VM every run works on (created by the first run)."""
    host.add_vm(VM, disks=list(DISKS), power_state="poweredOff", tools="not-installed")
    host.reconfigure(VM, change_tracking=True)


def choose(rng: random.Random, host: Host, n: int) -> dict[str, object]:
    vm = host.find_vm(VM)
    snaps = [s.name for s in vm.snapshots()]
    roll = rng.random()
    if snaps and roll < 0.12:
        return {"op": "remove", "name": rng.choice(snaps), "children": rng.random() < 0.2}
    if snaps and roll < 0.17:
        return {"op": "remove-later", "name": rng.choice(snaps)}
    if roll < 0.20:
        return {"op": "consolidate"}
    if snaps and roll < 0.27:
        return {"op": "revert", "name": rng.choice(snaps)}
    if roll < 0.36 and len(snaps) < MAX_SNAPSHOTS:
        return {"op": "snapshot", "name": f"s{n}-{rng.randrange(1 << 30):x}"}
    disk = rng.randrange(len(vm.disks))
    cap = vm.disks[disk].capacity
    kind = rng.random()
    if kind < 0.4:  # small, sector-ish (what a file system does)
        length = rng.choice((512, 1024, 4096))
        offset = rng.randrange(0, cap - length + 1) // 512 * 512
    elif kind < 0.8:  # unaligned, across grain boundaries
        length = rng.randrange(1, 200_000)
        offset = rng.randrange(0, cap - length + 1)
    else:  # large, many grains
        length = rng.randrange(200_000, min(cap, 1_500_000))
        offset = rng.randrange(0, cap - length + 1)
    return {
        "op": "write",
        "disk": disk,
        "offset": offset,
        "length": length,
        "seed": rng.randrange(1 << 62),
    }


def apply(host: Host, op: dict[str, object]) -> None:
    """Perform one operation (the parent calls this too, on its in-memory reference host)."""
    vm = host.find_vm(VM)
    kind = op["op"]
    if kind == "write":
        d = vm.disks[int(op["disk"])]  # type: ignore[call-overload]
        data = payload(int(op["seed"]), int(op["length"]))  # type: ignore[call-overload]
        host.guest_device(vm, d.key).write(int(op["offset"]), data)  # type: ignore[call-overload]
    elif kind == "snapshot":
        host.create_snapshot(vm, str(op["name"]))
    elif kind == "remove":
        host.remove_snapshot(vm, str(op["name"]), remove_children=bool(op["children"]))
    elif kind == "remove-later":
        host.remove_snapshot(vm, str(op["name"]), consolidate=False)
    elif kind == "consolidate":
        host.consolidate_disks(vm)
    elif kind == "revert":
        host.revert_to_snapshot(vm, str(op["name"]))
    else:
        raise ValueError(kind)


def main(directory: str, seed: int, count: int) -> None:
    host = Host(PROFILE, datastore_dir=directory)
    if not host.vms:
        setup(host)
    print("ready", flush=True)
    rng = random.Random(seed)
    for n in range(count):
        op = choose(rng, host, n)
        print("begin " + json.dumps(op), flush=True)
        apply(host, op)
        print(f"ack {n}", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
