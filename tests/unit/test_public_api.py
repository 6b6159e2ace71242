"""Pin the public surface: vendors and teachers import these names, so changes are deliberate.

A name added or removed here is an API change: update the expected set and the docs together.
"""

from __future__ import annotations

import importlib

import pytest

SIMULATOR = {
    "ACTORS", "EPOCH", "KINDS", "OPERATIONS", "PROFILES",
    "Datastore", "DatastoreStore", "DiskChangeInfo", "RecoveryReport", "Event", "FaultInjector", "FaultRule", "Host", "HostProfile", "MorefCounters", "Populate",
    "InvalidInputError", "NotFoundError", "SimRandom", "SimulatedCrash", "Snapshot", "StateError",
    "Trace", "VM", "VcbsimError", "VirtualClock", "VirtualDiskDevice",
    "fault_name", "get_profile", "load_jsonl", "make_fault", "open_host", "raise_fault",
}


PACKAGES = [
    "vcbsim.simulator",
    "vcbsim.simulator.disk",
    "vcbsim.simulator.guest",
    "vcbsim.simulator.tools",
    "vcbsim.simulator.soap",
    "vcbsim.reference",
    "vcbsim.conformance",
]


def test_simulator_exports_exactly_the_pinned_names() -> None:
    mod = importlib.import_module("vcbsim.simulator")
    assert set(mod.__all__) == SIMULATOR
    for name in mod.__all__:
        assert getattr(mod, name) is not None


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_declares_and_resolves_all(package: str) -> None:
    mod = importlib.import_module(package)
    exported = getattr(mod, "__all__", None)
    assert exported, f"{package} must declare __all__"
    assert len(exported) == len(set(exported)), f"{package}.__all__ has duplicates"
    missing = [n for n in exported if not hasattr(mod, n)]
    assert not missing, f"{package}.__all__ names that do not resolve: {missing}"


def _exported() -> dict[str, dict[str, object]]:
    """name -> {package: object} over every package's ``__all__``."""
    out: dict[str, dict[str, object]] = {}
    for package in PACKAGES:
        mod = importlib.import_module(package)
        for name in mod.__all__:
            out.setdefault(name, {})[package] = getattr(mod, name)
    return out


def test_every_error_has_one_root_and_the_builtin_that_fits() -> None:
    from vcbsim._repl import CommandError
    from vcbsim.conformance import (
        AdapterError,
        ConformanceViolation,
        FlakyAdapterError,
        InvalidDefinition,
        KitError,
    )
    from vcbsim.reference import CorruptBlobError, UnsupportedGuestError
    from vcbsim.simulator import InvalidInputError, NotFoundError, StateError, VcbsimError
    from vcbsim.simulator.disk import GrainLogError
    from vcbsim.simulator.soap import ControlError
    from vcbsim.simulator.soap.wire._codec import RequestError

    kinds: list[tuple[type[BaseException], type[BaseException]]] = [
        (InvalidInputError, ValueError),
        (NotFoundError, LookupError),
        (StateError, RuntimeError),
        (KitError, VcbsimError),
        (AdapterError, RuntimeError),
        (FlakyAdapterError, AdapterError),
        (ConformanceViolation, AssertionError),
        (InvalidDefinition, InvalidInputError),
        (GrainLogError, InvalidInputError),
        (UnsupportedGuestError, InvalidInputError),
        (CorruptBlobError, VcbsimError),
        (RequestError, ValueError),
        (ControlError, VcbsimError),
        (CommandError, ValueError),
    ]
    for cls, builtin in kinds:
        assert issubclass(cls, VcbsimError) and issubclass(cls, builtin), cls
    assert issubclass(InvalidDefinition, KitError) and issubclass(InvalidDefinition, ValueError)
    bad = InvalidDefinition("rule id", expected="WF-<n><letter>", got="x", hint="see the catalogue")
    assert (bad.what, bad.expected, bad.got, bad.hint) == ("rule id", "WF-<n><letter>", "x", "see the catalogue")
    assert str(bad) == "rule id: expected WF-<n><letter>, got 'x'; see the catalogue"


def test_every_exported_exception_descends_from_the_one_root() -> None:
    from vcbsim.simulator import SimulatedCrash, VcbsimError

    errors = {
        f"{pkg}.{name}": obj
        for name, where in _exported().items()
        for pkg, obj in where.items()
        if isinstance(obj, type) and issubclass(obj, BaseException)
    }
    assert len(errors) >= 10
    # SimulatedCrash is a BaseException on purpose: ``except Exception`` must not catch it
    strays = [n for n, cls in errors.items() if cls is not SimulatedCrash and not issubclass(cls, VcbsimError)]
    assert strays == []


def test_one_name_is_one_class_across_packages() -> None:
    clashes = {
        name: sorted(where)
        for name, where in _exported().items()
        if len({id(obj) for obj in where.values()}) > 1
    }
    assert clashes == {}


@pytest.mark.parametrize(
    ("package", "old", "new"),
    [
        ("vcbsim.reference", "JobResult", "RunOutcome"),
    ],
)
def test_renamed_names_stay_importable_for_one_release_with_a_warning(package: str, old: str, new: str) -> None:
    mod = importlib.import_module(package)
    assert old not in mod.__all__ and new in mod.__all__
    with pytest.warns(DeprecationWarning, match=f"{package}.{old} is deprecated.*{package}.{new}"):
        assert getattr(mod, old) is getattr(mod, new)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        _ = mod.NoSuchName


@pytest.mark.parametrize(
    "old",
    ["HostBackend", "GuestBackend", "ChangedAreas", "VMInfo", "SnapshotInfo", "DiskInfo", "DiskLayer", "NicInfo",
     "VMFile", "GuestFile", "GuestProcess", "HostAbout", "DatastoreInfo"],
)
def test_the_soap_backend_names_stay_importable_for_one_release_with_a_warning(old: str) -> None:
    """The HostBackend protocol is gone (the managed objects read the Host); its names answer
    the class that now plays each part, with a warning."""
    mod = importlib.import_module("vcbsim.simulator.soap")
    assert old not in mod.__all__
    with pytest.warns(DeprecationWarning, match=f"vcbsim.simulator.soap.{old} is deprecated"):
        assert isinstance(getattr(mod, old), type)
