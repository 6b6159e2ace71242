"""The backup flow (``README.md`` here) with zeep, a Python SOAP stack that knows the vSphere
API only from the WSDL the endpoint serves (``/sdk/vimService.wsdl``), never from pyVmomi.

    python zeep_flow.py http://127.0.0.1:8989 [--user U --password P --vm NAME]

Prints one JSON object: ``{"client": ..., "cases": [{"name", "ok", "detail"}, ...]}``; the
cases are those of ``README.md``, in order, and a case that fails leaves the later ones
``ok: false`` with ``detail: "not reached"`` when they depend on it. Exit status 0 when every
case passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import requests
import zeep
from zeep.helpers import serialize_object
from zeep.transports import Transport

VIM = "urn:vim25"
CASES = ["connect", "list_vms", "host_hardware", "cbt_enable", "quiesced_snapshot", "disk_chain", "download_disk",
         "remove_snapshot", "cbt_reset", "logout"]


class Flow:
    def __init__(self, base: str, user: str, password: str, vm_name: str) -> None:
        self.base, self.user, self.password, self.vm_name = base, user, password, vm_name
        self.http = requests.Session()
        self.http.trust_env = False
        self.client: Any = None
        self.vim: Any = None
        self.content: Any = None
        self.vm: Any = None
        self.snapshot: Any = None
        self.base_disks: list[str] = []

    # helpers ------------------------------------------------------------------------------
    def t(self, name: str) -> Any:
        return self.client.get_type(f"{{{VIM}}}{name}")

    def ref(self, typ: str, value: str) -> Any:
        return self.t("ManagedObjectReference")(value, type=typ)

    def props(self, obj: Any, typ: str, paths: list[str]) -> dict[str, Any]:
        spec = self.t("PropertyFilterSpec")(
            propSet=[self.t("PropertySpec")(type=typ, all=False, pathSet=paths)],
            objectSet=[self.t("ObjectSpec")(obj=obj, skip=False)])
        res = self.vim.RetrievePropertiesEx(_this=self.content.propertyCollector, specSet=[spec],
                                            options=self.t("RetrieveOptions")())
        if res is None:
            return {}
        return {p.name: p.val for oc in res.objects for p in (oc.propSet or [])}

    def objects(self, typ: str, paths: list[str]) -> list[tuple[Any, dict[str, Any]]]:
        view = self.vim.CreateContainerView(_this=self.content.viewManager, container=self.content.rootFolder,
                                            type=[typ], recursive=True)
        try:
            spec = self.t("PropertyFilterSpec")(
                propSet=[self.t("PropertySpec")(type=typ, all=False, pathSet=paths)],
                objectSet=[self.t("ObjectSpec")(obj=view, skip=True, selectSet=[
                    self.t("TraversalSpec")(name="view", type="ContainerView", path="view", skip=False)])])
            res = self.vim.RetrievePropertiesEx(_this=self.content.propertyCollector, specSet=[spec],
                                                options=self.t("RetrieveOptions")())
            return [(oc.obj, {p.name: p.val for p in (oc.propSet or [])}) for oc in (res.objects if res else [])]
        finally:
            self.vim.DestroyView(_this=view)

    def wait(self, task: Any) -> Any:
        deadline = time.monotonic() + 120
        while True:
            info = self.props(task, "Task", ["info"])["info"]
            if info.state in ("success", "error"):
                if info.state == "error":
                    fault = info.error.fault
                    raise RuntimeError(f"task {task._value_1} failed: {type(fault).__name__} "
                                       f"{getattr(info.error, 'localizedMessage', '')}")
                return info
            if time.monotonic() > deadline:
                raise RuntimeError(f"task {task._value_1} still {info.state} after 120 s")
            time.sleep(0.05)

    def disks(self, obj: Any, typ: str) -> list[list[dict[str, Any]]]:
        """Each virtual disk's chain (writable file first) with its change ids."""
        devices = self.props(obj, typ, ["config.hardware.device"])["config.hardware.device"]
        chains = []
        for dev in devices.VirtualDevice:
            if type(dev).__name__ != "VirtualDisk":
                continue
            chain, backing = [], dev.backing
            while backing is not None:
                chain.append({"fileName": backing.fileName, "changeId": getattr(backing, "changeId", None)})
                backing = getattr(backing, "parent", None)
            chains.append(chain)
        return chains

    # the cases --------------------------------------------------------------------------
    def connect(self) -> str:
        self.client = zeep.Client(f"{self.base}/sdk/vimService.wsdl", transport=Transport(session=self.http))
        self.vim = self.client.service
        self.content = self.vim.RetrieveServiceContent(_this=self.ref("ServiceInstance", "ServiceInstance"))
        self.vim.Login(_this=self.content.sessionManager, userName=self.user, password=self.password)
        return f"{self.content.about.fullName} (API {self.content.about.apiVersion})"

    def list_vms(self) -> str:
        vms = self.objects("VirtualMachine", ["name", "runtime.powerState", "config.hardware.numCPU",
                                              "config.hardware.memoryMB", "summary.storage.committed"])
        assert vms, "no VirtualMachine in the inventory"
        for obj, p in vms:
            assert p.get("runtime.powerState") in ("poweredOn", "poweredOff", "suspended"), p
            assert p.get("config.hardware.numCPU", 0) > 0 and p.get("config.hardware.memoryMB", 0) > 0, p
            if p["name"] == self.vm_name:
                self.vm = obj
        assert self.vm is not None, f"no VM named {self.vm_name!r}"
        return ", ".join(sorted(p["name"] for _, p in vms))

    def host_hardware(self) -> str:
        paths = ["hardware.cpuInfo.numCpuCores", "hardware.memorySize", "hardware.systemInfo.uuid",
                 "summary.hardware.cpuModel"]
        hosts = self.objects("HostSystem", ["name", *paths])
        assert hosts, "no HostSystem in the inventory"
        for _obj, p in hosts:
            missing = [k for k in paths if p.get(k) is None]
            assert not missing, f"host {p.get('name')}: {', '.join(missing)} unset"
            assert p["hardware.memorySize"] > 0
        return "; ".join(f"{p['name']}: {p['summary.hardware.cpuModel']}, {p['hardware.memorySize']} bytes"
                         for _, p in hosts)

    def cbt_enable(self) -> str:
        if not self.props(self.vm, "VirtualMachine", ["config.changeTrackingEnabled"]).get("config.changeTrackingEnabled"):
            spec = self.t("VirtualMachineConfigSpec")(changeTrackingEnabled=True)
            self.wait(self.vim.ReconfigVM_Task(_this=self.vm, spec=spec))
        on = self.props(self.vm, "VirtualMachine", ["config.changeTrackingEnabled"]).get("config.changeTrackingEnabled")
        assert on is True, f"config.changeTrackingEnabled is {on!r} after ReconfigVM_Task"
        return "on"

    def quiesced_snapshot(self) -> str:
        self.base_disks = [c[0]["fileName"] for c in self.disks(self.vm, "VirtualMachine")]
        info = self.wait(self.vim.CreateSnapshot_Task(_this=self.vm, name="zeep-backup", description="",
                                                      memory=False, quiesce=True))
        self.snapshot = info.result
        assert self.snapshot.type == "VirtualMachineSnapshot", self.snapshot
        tree = self.props(self.vm, "VirtualMachine", ["snapshot"])["snapshot"]
        node = next(n for n in tree.rootSnapshotList if n.snapshot._value_1 == self.snapshot._value_1)
        assert node.quiesced is True and node.state == "poweredOff", serialize_object(node)
        return f"{self.snapshot._value_1} quiesced"

    def disk_chain(self) -> str:
        live = self.disks(self.vm, "VirtualMachine")
        frozen = self.disks(self.snapshot, "VirtualMachineSnapshot")
        assert live and len(live) == len(self.base_disks)
        for chain, base in zip(live, self.base_disks, strict=True):
            assert chain[0]["fileName"] == base[: -len(".vmdk")] + "-000001.vmdk", chain
            assert chain[1]["fileName"] == base, chain
            assert chain[0]["changeId"], f"the writable link has no changeId: {chain}"
        assert [c[0]["fileName"] for c in frozen] == self.base_disks, frozen
        assert all(c[0]["changeId"] for c in frozen), f"a snapshot disk without a changeId: {frozen}"
        return "; ".join(" < ".join(f"{link['fileName']} ({link['changeId']})" for link in c) for c in live)

    def download_disk(self) -> str:
        ds, path = self.base_disks[0][1:].split("] ", 1)
        params = {"dcPath": "ha-datacenter", "dsName": ds}
        desc = self.http.get(f"{self.base}/folder/{path}", params=params, timeout=60)
        assert desc.status_code == 200, (desc.status_code, desc.text[:200])
        extent = next(line.split('"')[1] for line in desc.text.splitlines() if line.startswith(("RW ", "RDONLY ")))
        folder = path.rsplit("/", 1)[0]
        part = self.http.get(f"{self.base}/folder/{folder}/{extent}", params=params,
                             headers={"Range": "bytes=0-65535"}, timeout=60)
        assert part.status_code == 206 and len(part.content) == 65536, (part.status_code, len(part.content))
        assert part.content[510:512] == b"\x55\xaa", "the extent's first sector is no MBR"
        return f"{path} ({len(desc.content)} bytes) and 64 KiB of {extent}"

    def remove_snapshot(self) -> str:
        self.wait(self.vim.RemoveSnapshot_Task(_this=self.snapshot, removeChildren=False, consolidate=True))
        chains = self.disks(self.vm, "VirtualMachine")
        assert [c[0]["fileName"] for c in chains] == self.base_disks, chains
        assert self.props(self.vm, "VirtualMachine", ["snapshot"]).get("snapshot") is None
        return "consolidated"

    def cbt_reset(self) -> str:
        for value in (False, True):
            spec = self.t("VirtualMachineConfigSpec")(changeTrackingEnabled=value)
            self.wait(self.vim.ReconfigVM_Task(_this=self.vm, spec=spec))
        on = self.props(self.vm, "VirtualMachine", ["config.changeTrackingEnabled"]).get("config.changeTrackingEnabled")
        assert on is True, f"config.changeTrackingEnabled is {on!r} after off then on"
        return "off, on"

    def logout(self) -> str:
        self.vim.Logout(_this=self.content.sessionManager)
        return "logged out"


def run(flow: Flow, cases: list[str], client: str) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    broken: str | None = None
    for name in cases:
        if broken is not None and name != "logout":
            results.append({"name": name, "ok": False, "detail": f"not reached ({broken} failed)"})
            continue
        fn: Callable[[], str] = getattr(flow, name)
        try:
            results.append({"name": name, "ok": True, "detail": fn()})
        except Exception as exc:  # a case's failure is reported, the flow goes on where it can
            text = f"{type(exc).__name__}: {exc}".strip()
            results.append({"name": name, "ok": False, "detail": text[:2000]})
            if name in ("connect", "list_vms", "quiesced_snapshot"):
                broken = name
    return {"client": client, "cases": results}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", help="http://host:port")
    ap.add_argument("--user", default="user")
    ap.add_argument("--password", default="pass")
    ap.add_argument("--vm", default="win2003-sql")
    a = ap.parse_args()
    report = run(Flow(a.base.rstrip("/"), a.user, a.password, a.vm), CASES, f"zeep {zeep.__version__}")
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0 if all(c["ok"] for c in report["cases"]) else 1


if __name__ == "__main__":
    sys.exit(main())
