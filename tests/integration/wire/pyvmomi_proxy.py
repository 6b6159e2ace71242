"""A minimal image-level backup "product" written directly against pyVmomi, run by the kit as
a command (``python pyvmomi_proxy.py BEHAVIOUR``). It reads the kit's environment
(``VCBSIM_URL``, ``VCBSIM_USER``, ``VCBSIM_PASSWORD``, ``VCBSIM_VM``, ``VCBSIM_MODE``,
``VCBSIM_TRACE``) and records its steps as proxy events in ``VCBSIM_TRACE``.

Behaviours:

- ``correct``: quiesced snapshot (WF-1), export: fetch every disk extent of the VM over
  ``/folder`` into ``VCBSIM_WORKDIR`` (WF-1f), copy it to a "medium" (WF-2), remove the
  export (WF-3a), remove the snapshot (WF-3b);
- ``leak``: the same, but the snapshot is never removed;
- ``early-remove``: the snapshot is removed right after the export, before the copy;
- ``silent-leak``: leaks the snapshot and records no events at all;
- ``live``: as ``correct``, but the events are posted to the control API as they happen
  (``POST $VCBSIM_CONTROL/trace``) instead of written to ``VCBSIM_TRACE``;
- ``unmount-leaves-folder``: announces its unmount (the ``unmount`` event, the WF-3a op) but
  leaves the export folder on the proxy, and commits;
- ``quiet-mounts``: as ``correct``, but records no ``mount`` / ``unmount`` events (the kit sees
  the folder come and go under the declared mount root).

The export is ``$VCBSIM_WORKDIR/mnt/<vm>-fullVM`` (VCB's name; the mount root a declaration
names as ``{workdir}/mnt``), the "medium" ``$VCBSIM_WORKDIR/medium/<vm>``.

A fault the kit arms in the product's own ``export`` or ``copy`` step (``VCBSIM_PROXY_FAULTS``,
for a product declaring ``proxy_faults``) fails that step; the correct product still unmounts
and removes its snapshot.

Exit codes: 0 the job succeeded, 1 it failed, 5 a file-level job was asked (not supported).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import sys
from typing import Any
from urllib.parse import quote, urlsplit

from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

SNAPSHOT = "_VCB-BACKUP_"


class Recorder:
    def __init__(self, path: str, si: Any, vm: str, enabled: bool) -> None:
        self.path, self.si, self.vm, self.enabled = path, si, vm, enabled
        self.seq = 0
        self.ids = 0
        self.live: Any = None

    def emit(self, event: str, step: str | None = None, /, **details: Any) -> None:
        if not self.enabled:
            return
        ev = {"seq": self.seq, "time": self.si.CurrentTime().timestamp(), "actor": "proxy", "kind": event,
              "vm": self.vm, "step": step, "details": details}
        self.seq += 1
        if self.live is not None:
            self.live.post_events([ev])
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(ev) + "\n")

    def op(self, op: str, step: str | None, fn: Any, **details: Any) -> Any:
        op_id = f"op-{self.ids}"
        self.ids += 1
        self.emit("op.invoke", step, op=op, op_id=op_id, **details)
        try:
            result = fn()
        except vmodl.MethodFault as exc:
            self.emit("op.fail", step, op=op, op_id=op_id, error=type(exc).__name__.rsplit(".", 1)[-1])
            raise
        self.emit("op.ok", step, op=op, op_id=op_id)
        return result


def export_extents(url: str, cookie: str, vm: Any, target: str) -> dict[str, int]:
    """GET every disk extent of the VM (base disks and the snapshot's redo logs) into ``target``."""
    parts = urlsplit(url)
    os.makedirs(target, exist_ok=True)
    sizes = {}
    for f in vm.layoutEx.file:
        if f.type != "diskExtent":
            continue
        ds, path = f.name[1:].split("] ", 1)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            conn.request("GET", f"/folder/{quote(path)}?dcPath=ha-datacenter&dsName={quote(ds)}",
                         headers={"Cookie": cookie})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"GET {f.name}: HTTP {resp.status}")
        finally:
            conn.close()
        with open(os.path.join(target, path.replace("/", "_")), "wb") as fh:
            fh.write(data)
        sizes[f.name] = len(data)
    return sizes


def main() -> int:
    behaviour = sys.argv[1]
    env = os.environ
    if env["VCBSIM_MODE"] != "fullvm":
        print(json.dumps({"ok": False, "error": "only image-level backups"}))
        return 5
    parts = urlsplit(env["VCBSIM_URL"])
    si = SmartConnect(protocol=parts.scheme, host=parts.hostname, port=parts.port, user=env["VCBSIM_USER"],
                      pwd=env["VCBSIM_PASSWORD"], disableSslCertValidation=True)
    try:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        vm = next(v for v in view.view if v.name == env["VCBSIM_VM"])
        view.Destroy()
        rec = Recorder(env["VCBSIM_TRACE"], si, vm._moId, enabled=behaviour != "silent-leak")
        if behaviour == "live":
            from vcbsim.simulator.soap import ControlClient

            rec.live = ControlClient(env["VCBSIM_CONTROL"], env["VCBSIM_USER"], env["VCBSIM_PASSWORD"])
        cookie = si._stub.cookie
        job = "op-job"
        rec.emit("op.invoke", None, op="job", op_id=job, mode="fullvm", level="full")
        try:
            def create() -> Any:
                WaitForTask(vm.CreateSnapshot_Task(SNAPSHOT, "", False, True))
                return vm.snapshot.currentSnapshot

            snap = rec.op("snapshot", "WF-1", create, name=SNAPSHOT, quiesce=True)

            snap_id = snap._moId
            export = os.path.join(env["VCBSIM_WORKDIR"], "mnt", f"{vm.name}-fullVM")
            medium = os.path.join(env["VCBSIM_WORKDIR"], "medium", vm.name)
            announce = behaviour != "quiet-mounts"

            def expose() -> None:
                export_extents(env["VCBSIM_URL"], cookie, vm, export)
                for d in snap.config.hardware.device:
                    if isinstance(d, vim.vm.device.VirtualDisk):
                        rec.emit("disk.export", None, disk=d.key, snapshot=snap_id, bytes=d.capacityInKB * 1024)
                if announce:
                    rec.emit("mount", None, kind="fullvm", path=export)

            def copy() -> None:
                shutil.rmtree(medium, ignore_errors=True)
                shutil.copytree(export, medium)

            def unmount() -> None:
                if behaviour != "unmount-leaves-folder":
                    shutil.rmtree(export)
                if announce:
                    rec.emit("unmount", None, path=export)

            def remove() -> None:
                WaitForTask(snap.RemoveSnapshot_Task(removeChildren=False))

            faults = {f["operation"] for f in json.loads(env.get("VCBSIM_PROXY_FAULTS") or "[]")}

            def step(name: str, fn: Any) -> Any:
                """A step that fails when the kit armed a fault of it (VCBSIM_PROXY_FAULTS)."""
                def run() -> Any:
                    if name in faults:
                        raise vim.fault.FileFault(msg=f"injected {name} fault")
                    return fn()
                return run

            exposed = False
            try:
                rec.op("export", "WF-1f", step("export", expose))
                exposed = True
                if behaviour == "early-remove":
                    rec.op("commit", "WF-3b", remove)
                rec.op("copy", "WF-2", step("copy", copy))
            finally:
                if exposed:
                    rec.op("unmount", "WF-3a", unmount)
                if behaviour in ("correct", "live", "unmount-leaves-folder", "quiet-mounts"):
                    rec.op("commit", "WF-3b", remove)
        except vmodl.MethodFault as exc:
            rec.emit("op.fail", None, op="job", op_id=job, error=type(exc).__name__.rsplit(".", 1)[-1])
            print(json.dumps({"ok": False, "error": str(getattr(exc, "msg", exc))}))
            return 1
        rec.emit("op.ok", None, op="job", op_id=job)
        print(json.dumps({"ok": True}))
        return 0
    finally:
        Disconnect(si)


if __name__ == "__main__":
    sys.exit(main())
