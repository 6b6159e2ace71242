"""Writing SOAP responses: the fast path (``_fastencode.encode_fast``) against pyVmomi's
serializer (``SoapAdapter.SerializeToStr``), per ``_codec.serialize_response``, single-threaded.

Run: ``python benchmarks/bench_encode.py [--repeat 7] [--number 0]`` (prints a table of µs
per ``serialize_response``, best of ``--repeat`` timeit runs of ``--number`` calls each; 0:
about 0.2 s a run; no assertions on time).

The results are the ones the endpoint answers a pyVmomi client with: a simulated host
(``Host.demo()``) is served in-process and driven through a snapshot create/remove cycle (a
removal that fails included), and the ``(method, info, result, version)`` each call hands to
``serialize_response`` is kept: polling a task's state and reading a VM's properties with the
property collector, pyVmomi 8's ``Fetch`` of a whole ``TaskInfo``, the ``Task`` a snapshot call
returns, a filter and its update set, the service content and the login session. Both paths
must write the same bytes for every result, and the fast path must take it (checked before
timing, so a result the fast path refused would show up as an error, not as a flattering
figure).
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from vcbsim.simulator import Host
from vcbsim.simulator.soap import serve
from vcbsim.simulator.soap.wire import _codec, _fastencode

PC = vmodl.query.PropertyCollector
Call = tuple[str, Any, Any, str]  # serialize_response's arguments


def capture(method: str, action: Callable[[], Any]) -> Call:
    """The last ``serialize_response`` call for ``method`` while ``action`` runs."""
    seen: list[Call] = []
    original = _codec.serialize_response

    def spy(wsdl_name: str, info: Any, result: Any, version: str) -> bytes:
        if wsdl_name == method:
            seen.append((wsdl_name, info, result, version))
        return original(wsdl_name, info, result, version)

    _codec.serialize_response = spy  # type: ignore[assignment]
    try:
        action()
    finally:
        _codec.serialize_response = original  # type: ignore[assignment]
    if not seen:
        raise SystemExit(f"no {method} call was made")
    return seen[-1]


def calls() -> dict[str, Call]:
    """The endpoint's results for the calls a backup product makes most."""
    out: dict[str, Call] = {}
    host = Host.demo()
    with serve(host, http=True) as srv:
        login = capture("Login", lambda: out.setdefault("si", SmartConnect(
            host="127.0.0.1", port=srv.port, user="user", pwd="pass", protocol="http")))
        si = out.pop("si")
        try:
            content = si.RetrieveContent()
            pc = content.propertyCollector
            vm = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True).view[0]

            def contents(obj: Any, typ: Any, paths: list[str], ex: bool = True) -> Any:
                spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=obj)],
                                     propSet=[PC.PropertySpec(type=typ, pathSet=paths)])
                if ex:
                    return pc.RetrievePropertiesEx([spec], PC.RetrieveOptions())
                return pc.RetrieveContents([spec])

            out["CreateSnapshot_Task (a Task)"] = capture(
                "CreateSnapshot_Task", lambda: out.setdefault(
                    "task", vm.CreateSnapshot_Task("backup", "by vcbsim", False, False)))
            task = out.pop("task")
            WaitForTask(task)
            snap = task.info.result
            out["RetrieveProperties info.state (enum)"] = capture(
                "RetrieveProperties", lambda: contents(task, vim.Task, ["info.state"], ex=False))
            out["RetrievePropertiesEx info.state (enum)"] = capture(
                "RetrievePropertiesEx", lambda: contents(task, vim.Task, ["info.state"]))
            out["RetrievePropertiesEx currentSnapshot (ref)"] = capture(
                "RetrievePropertiesEx", lambda: contents(vm, vim.VirtualMachine, ["snapshot.currentSnapshot"]))
            out["RetrievePropertiesEx info (TaskInfo)"] = capture(
                "RetrievePropertiesEx", lambda: contents(task, vim.Task, ["info"]))
            out["RetrievePropertiesEx snapshot (SnapshotInfo)"] = capture(
                "RetrievePropertiesEx", lambda: contents(vm, vim.VirtualMachine, ["snapshot"]))
            out["RetrievePropertiesEx config (ConfigInfo)"] = capture(
                "RetrievePropertiesEx", lambda: contents(vm, vim.VirtualMachine, ["config"]))
            out["Fetch info (TaskInfo)"] = capture("Fetch", lambda: task.info)
            spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=task)],
                                 propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info.state", "info.error"])])
            out["CreateFilter (a PropertyFilter)"] = capture(
                "CreateFilter", lambda: out.setdefault("filter", pc.CreateFilter(spec, True)))
            out["WaitForUpdatesEx (UpdateSet)"] = capture(
                "WaitForUpdatesEx", lambda: pc.WaitForUpdatesEx("", PC.WaitOptions(maxWaitSeconds=0)))
            out.pop("filter").Destroy()

            host.add_fault(operation="snapshot.remove", target="*", fault="SnapshotFault", times=1)
            failed = snap.RemoveSnapshot_Task(False)
            try:
                WaitForTask(failed)
            except vim.fault.SnapshotFault:
                pass
            out["Fetch info (TaskInfo, failed)"] = capture("Fetch", lambda: failed.info)
            out["RetrievePropertiesEx info.error (fault)"] = capture(
                "RetrievePropertiesEx", lambda: contents(failed, vim.Task, ["info.error"]))
            out["RemoveSnapshot_Task (a Task)"] = capture(
                "RemoveSnapshot_Task", lambda: out.setdefault("removed", snap.RemoveSnapshot_Task(False)))
            WaitForTask(out.pop("removed"))
            out["RetrieveServiceContent"] = capture("RetrieveServiceContent", si.RetrieveServiceContent)
            out["Login (UserSession)"] = login
        finally:
            Disconnect(si)
    return out


def best_us(fn: Callable[[], Any], repeat: int, number: int) -> float:
    """µs per call: the best of ``repeat`` runs (the least disturbed by the machine)."""
    timer = timeit.Timer(fn)
    if number <= 0:
        number, _ = timer.autorange()  # at least 0.2 s a run
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def _no_fast_path(result: Any, info: Any, version: str) -> str | None:
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7, help="timeit runs per figure (the best is kept)")
    ap.add_argument("--number", type=int, default=0, help="calls per run (0: about 0.2 s a run)")
    ns = ap.parse_args()

    encode_fast = _fastencode.encode_fast
    rows = []
    for name, (wsdl_name, info, result, version) in calls().items():
        def respond(w: str = wsdl_name, i: Any = info, r: Any = result, v: str = version) -> bytes:
            return _codec.serialize_response(w, i, r, v)

        fast_body = respond()
        _fastencode.encode_fast = _no_fast_path  # type: ignore[assignment]
        try:
            slow_body = respond()
            slow_us = best_us(respond, ns.repeat, ns.number)
        finally:
            _fastencode.encode_fast = encode_fast  # type: ignore[assignment]
        if encode_fast(result, info, version) is None:
            raise SystemExit(f"{name}: the fast path refused this result")
        if fast_body != slow_body:
            raise SystemExit(f"{name}: the fast path does not write this result as pyVmomi does")
        fast_us = best_us(respond, ns.repeat, ns.number)
        rows.append((name, len(fast_body), fast_us, slow_us))

    print(f"µs per serialize_response, best of {ns.repeat} runs (API version {_codec.wire_version(_codec.DEFAULT_VERSION)})\n")
    head = f"{'response':46} {'bytes':>6} {'fast path':>10} {'pyVmomi':>10} {'speed-up':>9}"
    print(head)
    print("-" * len(head))
    for name, size, fast_us, slow_us in rows:
        print(f"{name:46} {size:6d} {fast_us:10.1f} {slow_us:10.1f} {slow_us / fast_us:8.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
