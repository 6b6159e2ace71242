"""The kit's pytest plugin (entry point ``pytest11``: ``vcbsim.conformance._pytest_plugin``).

Light to import: pytest loads this module in every session of every project that has vcbsim
installed, so nothing heavy (the simulator, Hypothesis strategies) is imported at load time.

Fixtures:

- ``esx_host``: a fresh simulated host per test (function scope), built from the
  ``--kit-host-profile`` option (default ``esx-3.5u2``).
- ``esx_host_session``: one host for the whole session; ``reset()`` it if a test needs a
  clean one.
- ``kit_profile``: the value of ``--kit-profile`` (``quick``, ``dev``, ``certify``, ``teach``).
- ``kit_report``: the ``--kit-report`` path (a results-bundle directory) or ``None``.
- ``kit_run``: ``kit_run(adapter_factory, **kwargs)`` calls ``vcbsim.conformance.run`` with
  the options above (a bundle per test under ``--kit-report``) and records the run's seed,
  profile and statistics as JUnit testsuite properties (xunit2-valid; skipped under
  pytest-xdist, where pytest cannot record them).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["pytest_addoption", "esx_host", "esx_host_session", "kit_profile", "kit_report", "kit_run"]

_KIT_PROFILES = ("quick", "dev", "certify", "teach")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vcbsim", "vcbsim conformance kit")
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
        help="host profile for the esx_host fixtures: esx-3.5u1, esx-3.5u2 or esxi-7.0",
    )


def _new_host(config: pytest.Config, seed: int = 0) -> Any:
    from vcbsim.simulator import Host  # imported here: keep the plugin light

    return Host(config.getoption("--kit-host-profile"), seed=seed)


@pytest.fixture
def esx_host(request: pytest.FixtureRequest) -> Any:
    """A fresh simulated ESX host for one test."""
    return _new_host(request.config)


@pytest.fixture(scope="session")
def esx_host_session(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One simulated ESX host shared by the whole session (call ``reset()`` for a clean one)."""
    yield _new_host(request.config)


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
