"""``HostAdapter`` is a deprecated alias kept for one release: importing it warns, and
``serve`` still unwraps it into the host and its guest accounts."""

from __future__ import annotations

import importlib

import pytest

from vcbsim.simulator import Host
from vcbsim.simulator.soap import serve


def test_host_adapter_is_deprecated_and_serve_unwraps_it() -> None:
    soap = importlib.import_module("vcbsim.simulator.soap")
    assert "HostAdapter" not in soap.__all__
    with pytest.warns(DeprecationWarning, match=r"soap\.HostAdapter is deprecated.*serve\(host"):
        adapter_type = soap.HostAdapter
    host = Host("esx-3.5u2", seed=1)
    with serve(adapter_type(host, guest_credentials={"ops": "s3cret"}), http=True) as running:
        assert running.endpoint.host is host
        assert running.endpoint.guest.guest_credentials == {"ops": "s3cret"}


def test_serve_takes_the_host_itself() -> None:
    host = Host("esx-3.5u2", seed=1)
    with serve(host, http=True) as running:
        assert running.endpoint.host is host
        assert "Administrator" in running.endpoint.guest.guest_credentials  # the default accounts
