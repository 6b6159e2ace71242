"""The wire route with a product that reads through an export lease or hot-added disks: the
reference CLI (``vcbsim backup --server ... -m nfc | -m hotadd``) passes the image scenario, the
declared transport's TR-* rule is exercised over the merged trace, and a hot-adding product
finds the marked proxy VM in the kit's inventory."""

from __future__ import annotations

import io
import sys

import pytest

from vcbsim.conformance import Capabilities, CommandAdapter
from vcbsim.conformance._wire import certify_command

REFERENCE = [sys.executable, "-m", "vcbsim", "backup", "--server", "{url}", "--user", "{user}",
             "--password", "{password}", "-a", "name:{vm}", "-t", "{mode}", "--kind", "{level}",
             "--state", "{workdir}", "--trace", "{trace}", "--no-progress"]


@pytest.mark.parametrize(("transport", "rule"), [("nfc", "TR-NFC-LEASE-END"), ("hotadd", "TR-HOTADD-DETACH")])
def test_the_reference_cli_passes_over_the_wire_on_each_transport(transport: str, rule: str) -> None:
    adapter = CommandAdapter([*REFERENCE, "-m", transport], name=f"reference-{transport}", timeout=120,
                             capabilities=Capabilities(transports=(transport,)))
    out = io.StringIO()
    result = certify_command(adapter, scenarios=["image-backup"], host_profile="esxi-7.0", out=out)
    assert result.ok, out.getvalue()[-3000:]
    assert [c.outcome for c in result.cases] == ["pass"]
    assert result.cases[0].exercised.get(rule), result.cases[0].exercised
