"""Pin the public surface: vendors and teachers import these names, so changes are deliberate.

A name added or removed here is an API change: update the expected set and the docs together.
"""

from __future__ import annotations

import importlib

import pytest

SIMULATOR = {
    "ACTORS", "EPOCH", "KINDS", "OPERATIONS", "PROFILES",
    "Datastore", "DatastoreStore", "DiskChangeInfo", "RecoveryReport", "Event", "FaultInjector", "FaultRule", "Host", "HostProfile",
    "InvalidInputError", "NotFoundError", "SimRandom", "SimulatedCrash", "Snapshot", "StateError",
    "Trace", "VM", "VcbsimError", "VirtualClock", "VirtualDiskDevice",
    "fault_name", "get_profile", "load_jsonl", "make_fault", "open_host", "raise_fault",
}


def test_simulator_exports_exactly_the_pinned_names() -> None:
    mod = importlib.import_module("vcbsim.simulator")
    assert set(mod.__all__) == SIMULATOR
    for name in mod.__all__:
        assert getattr(mod, name) is not None


@pytest.mark.parametrize(
    "package",
    [
        "vcbsim.simulator",
        "vcbsim.simulator.disk",
        "vcbsim.simulator.guest",
        "vcbsim.simulator.tools",
        "vcbsim.simulator.soap",
        "vcbsim.reference",
        "vcbsim.conformance",
    ],
)
def test_every_package_declares_and_resolves_all(package: str) -> None:
    mod = importlib.import_module(package)
    exported = getattr(mod, "__all__", None)
    assert exported, f"{package} must declare __all__"
    assert len(exported) == len(set(exported)), f"{package}.__all__ has duplicates"
    missing = [n for n in exported if not hasattr(mod, n)]
    assert not missing, f"{package}.__all__ names that do not resolve: {missing}"


def test_errors_form_one_hierarchy() -> None:
    from vcbsim.simulator import InvalidInputError, NotFoundError, StateError, VcbsimError

    for cls, builtin in ((InvalidInputError, ValueError), (NotFoundError, LookupError), (StateError, RuntimeError)):
        assert issubclass(cls, VcbsimError) and issubclass(cls, builtin)
