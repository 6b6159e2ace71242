"""A proxy killed (SIGKILL) while it reads hot-added disks over ``--server``: the next run of
the reference proxy finds the disks its killed run left attached to the proxy VM (the proxy's
devices are backed by the files of its own ``_VCB-BACKUP_`` snapshot, whose description carries
the run's marker), detaches them, then removes the stale snapshot (the seed's cleanup,
CMT-OWN-SNAPSHOT), and backs up. A disk another product attached to the proxy stays."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vcbsim.reference import main
from vcbsim.reference._cli import CRASH_ENV
from vcbsim.reference._workflow import SNAPSHOT_NAME
from vcbsim.simulator._hotadd import hot_add, hot_added, mark_proxy

from .conftest import SMALL

MiB = 1 << 20

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL of a subprocess")


@pytest.fixture
def devices() -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="vcbsim-hk-"))  # short: a socket path holds 107 bytes
    yield where
    shutil.rmtree(where, ignore_errors=True)


def _remote(url: str, state: Path) -> list[str]:
    return ["--server", url, "--user", "user", "--password", "pass", "--insecure",
            "--state", str(state), "--json", "--no-progress"]  # fmt: skip


def test_the_next_run_detaches_what_a_killed_hotadd_run_left(host: Any, url: str, tmp_path: Path, capsys: Any,
                                                             devices: Path) -> None:
    from vcbsim.conformance import check_trace

    host.add_vm("vcb-proxy", os_family="linux", disks=[8 * MiB], tools="not-installed")
    mark_proxy(host, "vcb-proxy", devices)
    # another product's disk on the same proxy (a snapshot it made of another VM): not ours
    other = host.add_vm("other", disks=[4 * MiB], power_state="poweredOff", tools="not-installed")
    theirs = host.create_snapshot(other, SNAPSHOT_NAME, "another product's backup snapshot")
    (foreign,) = hot_add(host, "vcb-proxy", other, theirs.moref)
    state = tmp_path / "state"
    argv = ["backup", *_remote(url, state), "-a", f"name:{SMALL}", "-t", "fullvm", "-m", "hotadd"]
    env = {**os.environ, CRASH_ENV: "proxy.during-copy", "PYTHONSAFEPATH": "1"}
    killed = subprocess.run([sys.executable, "-m", "vcbsim", *argv], env=env, capture_output=True, timeout=300,
                            check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    vm = host.find_vm(SMALL)
    (left,) = [s for s in vm.snapshots() if s.name == SNAPSHOT_NAME]
    stale = [a for a in hot_added(host, "vcb-proxy") if a.vm == vm.moref]
    assert len(stale) == 2 and all(a.snapshot == left.moref for a in stale)  # the killed run's disks
    mark = len(host.trace.events)
    assert main(argv) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["status"] == "ok", run
    cleaned = " ".join(run["stale_cleaned"])
    assert "2 disk(s) of win-small left hot-added to the proxy VM vcb-proxy" in cleaned and left.moref in cleaned
    # its own disks detached, then its snapshot removed; the other product's disk is still there
    assert hot_added(host, "vcb-proxy") == [foreign] and foreign.export is not None and foreign.export.path.exists()
    assert vm.snapshots() == [] and not vm.consolidation_needed
    events = host.trace.events[mark:]
    removed = [e.seq for e in events if e.kind == "disk.hotremove" and e.vm == vm.moref]
    dropped = next(e.seq for e in events if e.kind == "snapshot.remove" and e.details.get("snapshot") == left.moref)
    assert len(removed) >= 4 and sorted(removed)[1] < dropped  # the stale two before the stale snapshot
    report = check_trace(host.trace.events[mark:], profile=host.profile.name)
    assert not [v for v in report.violations if v.rule_id.startswith(("TR-", "CMT-"))], \
        [v.format() for v in report.violations]


def test_the_next_restore_cleans_what_a_killed_hotadd_restore_left(host: Any, url: str, tmp_path: Path,
                                                                    capsys: Any, devices: Path) -> None:
    """A ``restore --server --vm -m hotadd`` killed between two writes through the proxy's
    devices leaves the new VM (marked as this proxy's restore in its configuration) with its
    disks attached; the next restore detaches them and destroys that half-made VM first, then
    restores; a writable disk another product attached stays."""
    from vcbsim.reference._hotaddrestore import CRASH_DURING_WRITE
    from vcbsim.simulator._vmlifecycle import DiskSpec

    host.add_vm("vcb-proxy", os_family="linux", disks=[8 * MiB], tools="not-installed")
    mark_proxy(host, "vcb-proxy", devices)
    state = tmp_path / "state"
    assert main(["backup", *_remote(url, state), "-a", f"name:{SMALL}", "-t", "fullvm"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    # another product's restore target, attached writable to the same proxy: not ours
    theirs = host.create_vm("theirs", datastore="datastore1", disks=[DiskSpec(capacity=4 * MiB)])
    from vcbsim.simulator._hotadd import hot_add_file

    foreign = hot_add_file(host, "vcb-proxy", theirs.disks[0].base_name)
    assert foreign is not None and foreign.writable
    argv = ["restore", *_remote(url, state), "--backup", str(run["backup_id"]), "--vm", "--name", "small-k",
            "-m", "hotadd"]
    env = {**os.environ, CRASH_ENV: CRASH_DURING_WRITE, "PYTHONSAFEPATH": "1"}
    killed = subprocess.run([sys.executable, "-m", "vcbsim", *argv], env=env, capture_output=True, timeout=300,
                            check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    half = host.find_vm("small-k")
    assert [a.vm for a in hot_added(host, "vcb-proxy")].count(half.moref) == 2
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert any("interrupted restore" in c for c in out["cleaned"]) and any("destroyed small-k" in c for c in out["cleaned"])
    assert hot_added(host, "vcb-proxy") == [foreign]
    restored = host.find_vm("small-k")
    assert restored.moref != half.moref and half.moref not in host.vms
    original = host.find_vm(SMALL)
    assert host.disk_view(restored, restored.disks[1].key).read(0, MiB) == \
        host.disk_view(original, original.disks[1].key).read(0, MiB)
