"""Decoding SOAP requests: the fast path (``_fastdecode.decode_fast``) against pyVmomi's
deserializer (``_codec._decode``), per request body, single-threaded.

Run: ``python benchmarks/bench_decode.py [--repeat 7] [--number 0]`` (prints a table of µs
per decode, best of ``--repeat`` timeit runs of ``--number`` decodes each; 0: about 0.2 s a
run; no assertions on time).

The bodies are what pyVmomi's own stub sends (``SoapStubAdapter.SerializeRequest``) for the
calls a backup product makes most: polling a task with the property collector, creating and
removing a snapshot, waiting for updates, and pyVmomi 8's ``Fetch`` of one property. Both
decoders must agree on every body (checked before timing, so a body the fast path refused
would show up as an error, not as a flattering figure).
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any

from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl

from vcbsim.simulator.soap.wire import _codec, _fastdecode

VERSION = _codec.DEFAULT_VERSION
PC = vmodl.query.PropertyCollector


def bodies() -> dict[str, bytes]:
    """Request bodies as pyVmomi's stub writes them."""
    stub = SoapAdapter.SoapStubAdapter("localhost", version=VERSION)  # serializes only

    def request(this: Any, method: str, args: list[Any]) -> bytes:
        if method == "Fetch":
            info = _codec.fetch_info(VERSION)
        else:
            info = VmomiSupport.GetWsdlMethod("urn:vim25", method).info
        return bytes(stub.SerializeRequest(this, info, args))

    pc = PC("ha-property-collector", stub)
    vm = vim.VirtualMachine("vm-1", stub)
    task_state = PC.FilterSpec(  # one ObjectSpec for a task, one PropertySpec: info.state
        objectSet=[PC.ObjectSpec(obj=vim.Task("haTask-1", stub))],
        propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info.state"])],
    )
    return {
        "RetrievePropertiesEx (task info.state)": request(
            pc, "RetrievePropertiesEx", [[task_state], PC.RetrieveOptions()]),
        "RetrieveProperties (task info.state)": request(pc, "RetrieveProperties", [[task_state]]),
        "CreateSnapshot_Task": request(vm, "CreateSnapshot_Task", ["backup", "by vcbsim", False, True]),
        "RemoveSnapshot_Task": request(vim.vm.Snapshot("snapshot-1", stub), "RemoveSnapshot_Task", [False, True]),
        "WaitForUpdatesEx": request(pc, "WaitForUpdatesEx", ["3", PC.WaitOptions(maxWaitSeconds=60)]),
        "CreateFilter": request(pc, "CreateFilter", [task_state, True]),
        "Fetch": request(vm, "Fetch", ["config.hardware.device"]),
    }


def same(fast: _codec.Request, slow: _codec.Request) -> bool:
    """The same call with the same arguments (compared as pyVmomi serializes them)."""
    def wire(req: _codec.Request) -> list[str]:
        values = [("_this", req.this), *req.args.items()]
        return [_codec.serialize_value(value, VERSION, name) for name, value in values]

    return fast.wsdl_name == slow.wsdl_name and list(fast.args) == list(slow.args) and wire(fast) == wire(slow)


def best_us(fn: Callable[[], Any], repeat: int, number: int) -> float:
    """µs per call: the best of ``repeat`` runs (the least disturbed by the machine)."""
    timer = timeit.Timer(fn)
    if number <= 0:
        number, _ = timer.autorange()  # at least 0.2 s a run
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7, help="timeit runs per figure (the best is kept)")
    ap.add_argument("--number", type=int, default=0, help="decodes per run (0: about 0.2 s a run)")
    ns = ap.parse_args()

    rows = []
    for name, body in bodies().items():
        fast = _fastdecode.decode_fast(body, VERSION)
        slow = _codec._decode(body, VERSION)
        if fast is None or not same(fast, slow):
            raise SystemExit(f"{name}: the fast path does not decode this body as pyVmomi does")
        fast_us = best_us(lambda b=body: _fastdecode.decode_fast(b, VERSION), ns.repeat, ns.number)
        slow_us = best_us(lambda b=body: _codec._decode(b, VERSION), ns.repeat, ns.number)
        total_us = best_us(lambda b=body: _codec.parse_request(b, VERSION), ns.repeat, ns.number)
        rows.append((name, len(body), fast_us, slow_us, total_us))

    print(f"µs per decode, best of {ns.repeat} runs (API version {_codec.wire_version(VERSION)})\n")
    head = f"{'request body':40} {'bytes':>6} {'fast path':>10} {'pyVmomi':>10} {'speed-up':>9} {'parse_request':>14}"
    print(head)
    print("-" * len(head))
    for name, size, fast_us, slow_us, total_us in rows:
        print(f"{name:40} {size:6d} {fast_us:10.1f} {slow_us:10.1f} {slow_us / fast_us:8.1f}x {total_us:14.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
