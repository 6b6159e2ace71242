"""Fixtures for running Ansible's VMware modules (``community.vmware``) against the endpoint.

The simulated host (``Host.demo()``) is served in-process over HTTPS on loopback; every module
runs for real through ``ansible-playbook`` (a localhost inventory, ``connection: local``) in a
subprocess that uses this interpreter, so the modules import the same pyVmomi. Results come
back through the ``ansible.posix.json`` stdout callback, one record per task.

The tests skip only when ``ansible-playbook`` is not installed (``pip install ansible``; the
``ansible`` package ships the ``community.vmware`` and ``ansible.posix`` collections).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vcbsim.simulator import Host
from vcbsim.simulator.soap import RunningServer, serve

#: the one installed next to this interpreter first (same environment, same pyVmomi)
ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or shutil.which(
    "ansible-playbook"
)

USER = "user"
PASSWORD = "pass"
DATACENTER = "ha-datacenter"
#: a module run should take about a second; this only stops a hung run
PLAYBOOK_TIMEOUT = 300


@dataclass
class Esx:
    """The served demo host: ``host`` for checking state, ``server`` for the port."""

    host: Host
    server: RunningServer

    def vm(self, name: str) -> Any:
        return self.host.find_vm(name)


@dataclass
class TaskResult:
    """One task's outcome as Ansible reports it (``result`` is the module's JSON)."""

    name: str
    result: dict[str, Any]

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed"))

    @property
    def changed(self) -> bool:
        return bool(self.result.get("changed"))


@pytest.fixture
def host_profile() -> str | None:
    """The served demo host's profile (``None``: ``Host.demo()``'s default, an ESX 3.5 host);
    a test module overrides this fixture for an era whose API has what it uses (``ExportVm``
    and ``ImportVApp`` arrived with API 4.0)."""
    return None


@pytest.fixture
def esx(host_profile: str | None) -> Iterator[Esx]:
    host = Host.demo() if host_profile is None else Host.demo(host_profile)
    with serve(host, port=0, user=USER, password=PASSWORD) as server:
        yield Esx(host, server)


def _connection(esx: Esx) -> dict[str, Any]:
    return {
        "hostname": "127.0.0.1",
        "port": esx.server.port,
        "username": USER,
        "password": PASSWORD,
        "validate_certs": False,
    }


def _module_name(task: dict[str, Any]) -> str:
    return next(k for k in task if k not in ("name", "ignore_errors", "register"))


@pytest.fixture
def playbook(esx: Esx, tmp_path: Path) -> Callable[..., list[TaskResult]]:
    """``playbook(task, ...)`` runs the tasks in one play and returns one ``TaskResult`` each.

    A task is ``{"community.vmware.<module>": {args}}`` (the connection arguments are added);
    every task gets ``ignore_errors: true`` so a failure is reported, not fatal to the play.
    """

    runs = iter(range(1_000))

    def run(*tasks: dict[str, Any]) -> list[TaskResult]:
        if ANSIBLE_PLAYBOOK is None:
            pytest.skip("ansible-playbook is not installed")
        n = next(runs)
        play_tasks = []
        for i, task in enumerate(tasks):
            module = _module_name(task)
            args = {**_connection(esx), **task[module]}
            play_tasks.append(
                {"name": task.get("name", f"task {i}: {module}"), module: args, "ignore_errors": True}
            )
        play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": play_tasks}]
        path = tmp_path / f"play{n}.yml"
        path.write_text(json.dumps(play, indent=2))  # JSON is YAML
        env = {
            **os.environ,
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
            "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        }
        proc = subprocess.run(  # noqa: S603 - our own playbook, loopback only
            [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(path)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=PLAYBOOK_TIMEOUT,
            check=False,
        )
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"ansible-playbook gave no JSON report (rc={proc.returncode}):\n"
                        f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        results = [
            TaskResult(t["task"]["name"], t["hosts"]["localhost"])
            for p in report["plays"]
            for t in p["tasks"]
        ]
        assert len(results) == len(tasks), (proc.stdout[-4000:], proc.stderr[-4000:])
        return results

    return run
