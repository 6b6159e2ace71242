"""vcbsim's pytest plugin (entry point ``pytest11``: ``vcbsim.conformance._pytest_plugin``).

Light to import: pytest loads this module in every session of every project that has vcbsim
installed, so nothing heavy (the simulator, pyVmomi, Hypothesis strategies) is imported at load
time; each fixture imports what it needs when a test asks for it.

Fixtures for testing your own code against a simulated host (``docs/pytest-fixtures.md``), as
moto's ``mock_aws`` / ``ThreadedMotoServer`` and vcsim's ``simulator.Test`` give one:

- ``esx_host``: a fresh demo host (``Host.demo()``: ``win2003-sql`` and ``rhel5-web``) per
  test, of the ``--kit-host-profile`` profile (default ``esx-3.5u2``); ``--kit-small-disks``
  puts its VMs on 64-96 MiB disks (every host and server fixture).
- ``esx_host_empty``: a fresh host with no VMs, for a test that builds its own inventory.
- ``esx_host_module`` / ``esx_host_session``: one demo host per module / per session, rebuilt
  (``reset()``) before each test that uses it: cheaper when many tests need a host.
- ``vsphere_server``: the demo host served over the vSphere SOAP API in a thread, on a free
  loopback port, for one test: a ``VSphereServer`` with ``url``, ``host``, ``port``, ``user``,
  ``password``, a logged-in pyVmomi ``ServiceInstance`` (``si``), the control API client
  (``control``) and the served ``Host`` itself (``esx_host``).
- ``vsphere_server_module`` / ``vsphere_server_session``: one server per module / session,
  reset through the control API before each test (same URL and ``si``; fresh inventory,
  faults, trace and clock).

``VSphereServer`` also works without pytest, as a context manager (``with VSphereServer() as
srv: ...``), as moto's ``ThreadedMotoServer`` does.

Fixtures of the conformance kit:

- ``kit_profile``: the value of ``--kit-profile`` (``quick``, ``dev``, ``certify``, ``teach``).
- ``kit_report``: the ``--kit-report`` path (a results-bundle directory) or ``None``.
- ``kit_run``: ``kit_run(adapter_factory, **kwargs)`` calls ``vcbsim.conformance.run`` with
  the options above (a bundle per test under ``--kit-report``) and records the run's seed,
  profile and statistics as JUnit testsuite properties (xunit2-valid; skipped under
  pytest-xdist, where pytest cannot record them).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from vcbsim.simulator import Host
    from vcbsim.simulator.soap import ControlClient, RunningServer

__all__ = [
    "VSphereServer",
    "esx_host",
    "esx_host_empty",
    "esx_host_module",
    "esx_host_session",
    "kit_profile",
    "kit_report",
    "kit_run",
    "pytest_addoption",
    "vsphere_server",
    "vsphere_server_module",
    "vsphere_server_session",
]

_KIT_PROFILES = ("quick", "dev", "certify", "teach")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vcbsim", "vcbsim simulated host and conformance kit")
    group.addoption(
        "--kit-profile",
        action="store",
        default="quick",
        choices=_KIT_PROFILES,
        help="conformance run profile: quick, dev, certify or teach (default: quick)",
    )
    group.addoption(
        "--kit-report",
        action="store",
        default=None,
        metavar="PATH",
        help="write a conformance results bundle to this directory",
    )
    group.addoption(
        "--kit-host-profile",
        action="store",
        default="esx-3.5u2",
        help="host profile of the esx_host and vsphere_server fixtures: esx-3.5u1, esx-3.5u2 or esxi-7.0",
    )
    group.addoption(
        "--kit-small-disks",
        action="store_true",
        default=False,
        help="the demo VMs of the esx_host and vsphere_server fixtures on 64-96 MiB disks instead of "
             "4-8 GiB (as 'vcbsim serve --small'): a test that downloads whole disks stays quick",
    )


class VSphereServer:
    """A simulated ESX host served over the vSphere SOAP API in a background thread.

    Args:
        host: the ``Host`` to serve; the demo host of ``profile`` if omitted.
        profile: host profile for the demo host (``esx-3.5u1``, ``esx-3.5u2``, ``esxi-7.0``).
        user, password: the login the server accepts.
        http: plain HTTP instead of HTTPS (a fresh self-signed certificate).
        small: the demo VMs on 64-96 MiB disks (``vcbsim serve --small``).

    ``start()`` (or ``with``) listens on a free loopback port; then ``url``
    (``https://127.0.0.1:PORT/sdk``), ``host``, ``port``, ``user``, ``password`` say how to
    connect, ``si`` is a logged-in pyVmomi ``ServiceInstance`` (made on first use),
    ``connect()`` makes another one, ``control`` is the control API client
    (``docs/control-api.md``) and ``esx_host`` the served ``Host`` (for in-process checks).
    ``reset()`` rebuilds the host through the control API and keeps ``si`` logged in.
    ``stop()`` logs out and closes the server.
    """

    def __init__(self, host: Host | None = None, *, profile: str = "esx-3.5u2", user: str = "user",
                 password: str = "pass", http: bool = False, small: bool = False) -> None:
        self._host_arg = host
        self.profile = profile
        self.small = small
        self.user = user
        self.password = password
        self.http = http
        self._running: RunningServer | None = None
        self._si: Any = None
        self._sis: list[Any] = []
        self._control: ControlClient | None = None
        self._esx_host: Host | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> VSphereServer:
        """Build the host (unless given) and serve it; returns ``self``."""
        from vcbsim.simulator.soap import serve

        if self._running is not None:
            return self
        host = self._host_arg if self._host_arg is not None else _new_demo(self.profile, small=self.small)
        self._esx_host = host
        self._running = serve(host, port=0, http=self.http, user=self.user, password=self.password)
        return self

    def logout(self) -> None:
        """Log out every session ``si`` and ``connect()`` opened."""
        for si in self._sis:
            with contextlib.suppress(Exception):  # the server may already be gone
                si.content.sessionManager.Logout()
        self._sis.clear()
        self._si = None

    def stop(self) -> None:
        """Log the sessions out (``logout()``), then stop the server (idempotent)."""
        self.logout()
        if self._running is not None:
            self._running.stop()
            self._running = None

    def __enter__(self) -> VSphereServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._running is not None else "stopped"
        return f"VSphereServer({where})"

    # -- how to connect -------------------------------------------------------------------------

    @property
    def running(self) -> RunningServer:
        """The ``RunningServer`` (``vcbsim.simulator.soap.serve``'s result)."""
        if self._running is None:
            msg = "the VSphereServer is not started: call start() or use it in a 'with' block"
            raise RuntimeError(msg)
        return self._running

    @property
    def url(self) -> str:
        """The SDK URL, ``https://127.0.0.1:PORT/sdk``."""
        return self.running.url

    @property
    def host(self) -> str:
        """The address to connect to (``127.0.0.1``)."""
        return self.running.host

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def esx_host(self) -> Host:
        """The served simulated ``Host`` (in-process: its trace, clock, guest files)."""
        self.running  # noqa: B018 - raises when not started
        assert self._esx_host is not None
        return self._esx_host

    @property
    def control(self) -> ControlClient:
        """The control API client (reset, VMs, guest files, fault rules, trace, clock)."""
        if self._control is None:
            from vcbsim.simulator.soap import ControlClient

            self._control = ControlClient(self.url, self.user, self.password)
        return self._control

    def connect(self) -> Any:
        """A new logged-in pyVmomi ``ServiceInstance`` (logged out by ``stop()``)."""
        from pyVim.connect import SmartConnect

        if self.http:
            si = SmartConnect(protocol="http", host=self.host, port=self.port, user=self.user, pwd=self.password)
        else:
            si = SmartConnect(host=self.host, port=self.port, user=self.user, pwd=self.password,
                              disableSslCertValidation=True)
        self._sis.append(si)
        return si

    @property
    def si(self) -> Any:
        """A logged-in pyVmomi ``ServiceInstance``, made on first use and kept."""
        if self._si is None:
            self._si = self.connect()
        return self._si

    def reset(self, *, seed: int | None = None) -> None:
        """Rebuild the served host as it was built (the demo's inventory, a new trace and
        clock, no faults) through the control API; sessions stay logged in."""
        self.control.reset(seed=seed)


def _host_profile(config: pytest.Config) -> str:
    return str(config.getoption("--kit-host-profile"))


def _new_demo(profile: str, *, small: bool = False) -> Host:
    from vcbsim.simulator import Host  # imported here: keep the plugin light

    if not small:
        return Host.demo(profile)
    from vcbsim.simulator.soap._cli import small_inventory

    return Host(profile, populate=small_inventory().populate)


def _small(config: pytest.Config) -> bool:
    return bool(config.getoption("--kit-small-disks"))


def _demo_host(config: pytest.Config) -> Host:
    return _new_demo(_host_profile(config), small=_small(config))


# -- in-process hosts ---------------------------------------------------------------------------


@pytest.fixture
def esx_host(request: pytest.FixtureRequest) -> Host:
    """A fresh demo host (``Host.demo()``: ``win2003-sql``, ``rhel5-web``) for one test."""
    return _demo_host(request.config)


@pytest.fixture
def esx_host_empty(request: pytest.FixtureRequest) -> Host:
    """A fresh host with no VMs for one test (``esx_host_empty.add_vm(...)`` builds one)."""
    from vcbsim.simulator import Host

    return Host(_host_profile(request.config))


@pytest.fixture(scope="module")
def _vcbsim_module_host(request: pytest.FixtureRequest) -> Host:
    return _demo_host(request.config)


@pytest.fixture(scope="session")
def _vcbsim_session_host(request: pytest.FixtureRequest) -> Host:
    return _demo_host(request.config)


@pytest.fixture
def esx_host_module(_vcbsim_module_host: Host) -> Host:
    """One demo host for the module, rebuilt from scratch (``reset()``) before this test."""
    _vcbsim_module_host.reset()
    return _vcbsim_module_host


@pytest.fixture
def esx_host_session(_vcbsim_session_host: Host) -> Host:
    """One demo host for the session, rebuilt from scratch (``reset()``) before this test."""
    _vcbsim_session_host.reset()
    return _vcbsim_session_host


# -- served hosts ---------------------------------------------------------------------------------


@pytest.fixture
def vsphere_server(request: pytest.FixtureRequest) -> Iterator[VSphereServer]:
    """The demo host served over the vSphere API for one test (``url``, ``si``, ``control``)."""
    with VSphereServer(profile=_host_profile(request.config), small=_small(request.config)) as server:
        yield server


@pytest.fixture(scope="module")
def _vcbsim_module_server(request: pytest.FixtureRequest) -> Iterator[VSphereServer]:
    with VSphereServer(profile=_host_profile(request.config), small=_small(request.config)) as server:
        yield server


@pytest.fixture(scope="session")
def _vcbsim_session_server(request: pytest.FixtureRequest) -> Iterator[VSphereServer]:
    with VSphereServer(profile=_host_profile(request.config), small=_small(request.config)) as server:
        yield server


@pytest.fixture
def vsphere_server_module(_vcbsim_module_server: VSphereServer) -> VSphereServer:
    """One served demo host for the module, reset through the control API before this test."""
    _vcbsim_module_server.reset()
    return _vcbsim_module_server


@pytest.fixture
def vsphere_server_session(_vcbsim_session_server: VSphereServer) -> VSphereServer:
    """One served demo host for the session, reset through the control API before this test."""
    _vcbsim_session_server.reset()
    return _vcbsim_session_server


# -- the conformance kit ----------------------------------------------------------------------------


@pytest.fixture
def kit_profile(request: pytest.FixtureRequest) -> str:
    """The conformance run profile chosen with ``--kit-profile``."""
    return str(request.config.getoption("--kit-profile"))


@pytest.fixture
def kit_report(request: pytest.FixtureRequest) -> str | None:
    """The results-bundle directory chosen with ``--kit-report``, or ``None``."""
    value = request.config.getoption("--kit-report")
    return None if value is None else str(value)


@pytest.fixture
def kit_run(request: pytest.FixtureRequest) -> Any:
    """Run the conformance suite with this session's ``--kit-profile`` / ``--kit-report``."""
    from pathlib import Path

    def _run(adapter_factory: Any, **kwargs: Any) -> Any:
        from vcbsim.conformance import run

        kwargs.setdefault("profile", request.config.getoption("--kit-profile"))
        report = request.config.getoption("--kit-report")
        if report is not None:
            safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in request.node.name)
            kwargs.setdefault("report", Path(report) / safe)
        result = run(adapter_factory, **kwargs)
        if not hasattr(request.config, "workerinput"):  # not an xdist worker
            record = request.getfixturevalue("record_testsuite_property")
            record("vcbsim_kit_seed", str(result.run_info.seed))
            record("vcbsim_kit_profile", result.run_info.kit_profile)
            for key, value in result.statistics.items():
                record(f"vcbsim_kit_{key}", str(value))
        return result

    return _run
