"""The CLI keeps its host as a persisted datastore under ``--state``, never as a pickle, and
``VCBSIM_CRASH_AT`` turns a crash point into a real SIGKILL (through ``FaultInjector.on_crash``)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vcbsim.reference import main
from vcbsim.reference._cli import CRASH_ENV
from vcbsim.simulator import FaultInjector, FaultRule, SimRandom, open_host


def cli(state: Path, *argv: str) -> tuple[int, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--state", str(state), "--json"])
    return code, json.loads(out.getvalue())


def test_the_host_is_a_persisted_datastore_with_the_profile_of_its_first_use(tmp_path: Path) -> None:
    state = tmp_path / "state"
    code, res = cli(state, "mount", "-a", "name:rhel5-web", "--profile", "esxi-7.0")
    assert code == 0 and res["status"] == "mounted"
    assert not list(state.rglob("*.pickle"))
    assert (state / "datastore" / "vcbsim-host.json").is_file()
    assert (state / "proxy" / ".vcb-sessions" / "rhel5-web.json").is_file()
    # the lock was released at the end of the invocation; the snapshot is on the disk files
    host = open_host(state / "datastore")
    try:
        assert host.profile.name == "esxi-7.0"
        assert [s.name for s in host.find_vm("rhel5-web").snapshots()] == ["_VCB-BACKUP_"]
        clock = host.clock.now
    finally:
        host.store.close()
    # a later invocation keeps the recorded profile whatever --profile says, and the clock
    code, res = cli(state, "unmount", "-r", str(state / "proxy" / "rhel5-web-fullVM"), "--profile", "esx-3.5u1")
    assert code == 0 and res["status"] == "ok"
    host = open_host(state / "datastore")
    try:
        assert host.profile.name == "esxi-7.0"
        assert host.find_vm("rhel5-web").snapshots() == []
        assert host.clock.now >= clock
    finally:
        host.store.close()


class _Exploit:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


def test_a_pickled_host_of_an_older_version_is_never_loaded(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    marker = tmp_path / "code-ran"
    (state / "host.pickle").write_bytes(pickle.dumps(_Exploit(marker)))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code, res = cli(state, "restore", "--list")
    assert code == 0 and res == []
    assert not marker.exists()
    assert "host.pickle" in err.getvalue() and "not loaded" in err.getvalue()
    assert (state / "host.pickle").exists()  # left for its owner to delete


def test_the_state_lock_is_released_when_a_verb_fails(tmp_path: Path) -> None:
    state = tmp_path / "state"
    code, _ = cli(state, "backup", "-a", "name:nosuch")
    assert code == 3
    code, res = cli(state, "backup", "-a", "name:rhel5-web")
    assert code == 0 and res[0]["status"] == "ok"


def test_on_crash_is_called_when_a_crash_rule_fires_and_only_then() -> None:
    seen: list[str] = []
    inj = FaultInjector(SimRandom(0), on_crash=seen.append)
    inj.add(FaultRule("crash", target="proxy.after-*"))
    inj.add(FaultRule("export", target="*", fault="NoDiskSpace"))
    assert inj.check("export", "vm1:a.vmdk") is not None
    assert inj.check("crash", "host.snapshot.after-freeze") is None
    assert seen == []
    assert inj.check("crash", "proxy.after-copy") is not None
    assert seen == ["proxy.after-copy"]
    assert inj.check("crash", "proxy.after-copy") is None  # times=1
    assert seen == ["proxy.after-copy"]


def test_vcbsim_crash_at_kills_the_cli_process_for_real(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, CRASH_ENV: "proxy.after-expose"}
    proc = subprocess.run(
        [sys.executable, "-m", "vcbsim", "backup", "-a", "name:rhel5-web", "--state", str(state), "--json"],
        env=env, capture_output=True, timeout=120, check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert proc.stdout == b""  # no result was printed: the process died in the workflow
    code, res = cli(state, "backup", "-a", "name:rhel5-web")
    assert code == 0 and res[0]["status"] == "ok"
    assert any("_VCB-BACKUP_" in n for n in res[0]["stale_cleaned"])


@pytest.mark.parametrize("point", ["", "no.such.point"])
def test_an_unmatched_or_empty_crash_point_does_not_kill(tmp_path: Path, point: str) -> None:
    env = {**os.environ, CRASH_ENV: point}
    proc = subprocess.run(
        [sys.executable, "-m", "vcbsim", "backup", "-a", "name:rhel5-web", "--state", str(tmp_path / "s"), "--json"],
        env=env, capture_output=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)[0]["status"] == "ok"
