"""Reading a large inventory through pyVmomi: paging as a host does, and what a read builds.

- ``RetrievePropertiesEx`` without ``maxObjects`` answers every object in one result (no
  token), also beyond the 1,000 objects the endpoint used to page at; with ``maxObjects`` it
  pages with tokens that ``ContinueRetrievePropertiesEx`` follows to the last object; a
  ``maxObjects`` of 0 or less is refused; the vCenter-like policy switch
  (``_collector.DEFAULT_PAGE``) pages an unset ``maxObjects`` and limits a larger one;
- a container-view read of name, power state and devices of every VM builds no VM ``config``
  and, read again with nothing changed, builds no device list (counted through the builders);
- no collection of the cyclic garbage collector runs inside a read (it is paused until the
  answer is encoded and dropped), and it is on again after the call;
- the inventory benchmark runs at its smallest size (``--quick``): every VM read, every
  client's reads answered. No figure is checked: speed belongs to ``benchmarks/``.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim, vmodl

from vcbsim.simulator import Host
from vcbsim.simulator.soap import _collector, serve
from vcbsim.simulator.soap.mo import _vmprops

from .conftest import connect

PC = vmodl.query.PropertyCollector
MiB = 1024**2
#: more than the 1,000 objects the endpoint used to page an unset maxObjects at
N = 1050
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def big() -> Host:
    host = Host("esx-3.5u2", seed=2)
    for i in range(N):
        host.add_vm(f"vm{i:04}", disks=[MiB], power_state="poweredOff" if i % 2 else "poweredOn")
    return host


@pytest.fixture(scope="module")
def big_si(big: Host) -> Iterator[Any]:
    with serve(big, port=0) as running:
        yield from connect(running)


def vm_spec(si: Any, paths: list[str]) -> Any:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[
            PC.TraversalSpec(name="toVms", type=vim.view.ContainerView, path="view", skip=False)])],
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=paths)],
    )


def names(result: Any) -> list[str]:
    return [o.propSet[0].val for o in result.objects]


def test_no_max_objects_answers_every_object_at_once(big_si: Any) -> None:
    result = big_si.content.propertyCollector.RetrievePropertiesEx([vm_spec(big_si, ["name"])], PC.RetrieveOptions())
    assert result.token is None
    assert sorted(names(result)) == [f"vm{i:04}" for i in range(N)]


def test_max_objects_pages_with_tokens_to_the_last_object(big_si: Any) -> None:
    pc = big_si.content.propertyCollector
    page = pc.RetrievePropertiesEx([vm_spec(big_si, ["name"])], PC.RetrieveOptions(maxObjects=400))
    sizes, seen = [], []
    while True:
        sizes.append(len(page.objects))
        seen += names(page)
        if page.token is None:
            break
        page = pc.ContinueRetrievePropertiesEx(page.token)
    assert sizes == [400, 400, 250]
    assert sorted(seen) == [f"vm{i:04}" for i in range(N)]


@pytest.mark.parametrize("bad", [0, -5])
def test_max_objects_of_zero_or_less_is_refused(big_si: Any, bad: int) -> None:
    with pytest.raises(vmodl.fault.InvalidArgument) as err:
        big_si.content.propertyCollector.RetrievePropertiesEx([vm_spec(big_si, ["name"])],
                                                              PC.RetrieveOptions(maxObjects=bad))
    assert "maxObjects" in str(err.value)


def test_the_vcenter_page_policy_switch(big_si: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_collector, "DEFAULT_PAGE", 100)
    pc = big_si.content.propertyCollector
    unset = pc.RetrievePropertiesEx([vm_spec(big_si, ["name"])], PC.RetrieveOptions())
    assert len(unset.objects) == 100 and unset.token
    pc.CancelRetrievePropertiesEx(unset.token)
    larger = pc.RetrievePropertiesEx([vm_spec(big_si, ["name"])], PC.RetrieveOptions(maxObjects=500))
    assert len(larger.objects) == 100  # "policy may still limit the count to something less"
    smaller = pc.RetrievePropertiesEx([vm_spec(big_si, ["name"])], PC.RetrieveOptions(maxObjects=30))
    assert len(smaller.objects) == 30
    for token in (larger.token, smaller.token):
        pc.CancelRetrievePropertiesEx(token)


def test_an_inventory_read_builds_no_config_and_unchanged_devices_once(
    big_si: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = {"config": 0, "devices": 0}

    def counting(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(_vmprops, "build_config", counting("config", _vmprops.build_config))
    monkeypatch.setattr(_vmprops, "_devices", counting("devices", _vmprops._devices))
    _vmprops._DEVICES.clear()
    pc = big_si.content.propertyCollector
    spec = vm_spec(big_si, ["name", "runtime.powerState", "config.hardware.device"])
    first = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions())
    assert first.token is None and len(first.objects) == N
    assert counts == {"config": 0, "devices": N}
    for obj in first.objects[:5]:
        values = {p.name: p.val for p in obj.propSet}
        assert any(isinstance(d, vim.vm.device.VirtualDisk) for d in values["config.hardware.device"])
    again = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions())
    assert counts == {"config": 0, "devices": N}  # nothing changed: nothing built again
    assert [repr(o.propSet) for o in again.objects[:3]] == [repr(o.propSet) for o in first.objects[:3]]


def test_the_inventory_benchmark_runs_at_its_smallest_size(tmp_path: Path) -> None:
    out = tmp_path / "inventory.json"
    env = dict(os.environ, PYTHONSAFEPATH="1")
    proc = subprocess.run(
        [sys.executable, "benchmarks/bench_inventory.py", "--quick", "--servers", "vcbsim", "--json-out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    (inv,) = doc["inventory"]
    assert inv["error"] is None and inv["objects"] == inv["vms"] == 20 and inv["pages"] == 1
    assert [c["clients"] for c in doc["concurrent"]] == [1, 2]
    assert all(c["error"] is None and c["reads"] > 0 for c in doc["concurrent"])
    assert "Inventory read" in proc.stdout


def test_a_read_is_encoded_with_the_collector_paused_and_leaves_no_cyclic_garbage(
    big: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cyclic collector is paused from dispatch until the answer is encoded and dropped
    (``_endpoint._MAY_WAIT``), and on again after the call, also after a fault; a read of
    every VM through a container view leaves no reference cycles behind (the traversal and
    the view's walk were closures calling themselves: 2,100 objects per read of 1,050 VMs
    lived until a collection). Observed through ``gc``, not timed."""
    from vcbsim.simulator.soap import _endpoint

    enabled_while_encoding: list[bool] = []
    encode = _endpoint._codec.serialize_response

    def observed(*args: Any, **kwargs: Any) -> Any:
        enabled_while_encoding.append(gc.isenabled())
        return encode(*args, **kwargs)

    with serve(big, port=0) as running:
        for si in connect(running):
            stub = si._stub
            spec = vm_spec(si, ["name", "runtime.powerState", "config.hardware.device"])
            method = PC._GetMethodInfo("RetrievePropertiesEx")
            body = stub.SerializeRequest(si.content.propertyCollector, method, [[spec], PC.RetrieveOptions()])
            body = body if isinstance(body, bytes) else body.encode()
            bad = body.replace(b"config.hardware.device", b"config.no.such.property")
            ep = running.endpoint
            monkeypatch.setattr(_endpoint._codec, "serialize_response", observed)
            answers, garbage = [], []
            threshold = gc.get_threshold()
            gc.set_threshold(10**7)  # no automatic collection: gc.collect() finds what is left
            try:
                for b in (body, body, bad):
                    gc.collect()
                    answers.append(ep.handle_soap(b, stub.versionId, stub.cookie))
                    garbage.append(gc.collect())
                    assert gc.isenabled()
            finally:
                gc.set_threshold(*threshold)
    assert [a.status for a in answers] == [200, 200, 500]
    assert answers[0].body.count(b'<obj type="VirtualMachine">') == N
    assert len(enabled_while_encoding) >= 2 and not any(enabled_while_encoding)
    assert garbage[:2] == [0, 0]
