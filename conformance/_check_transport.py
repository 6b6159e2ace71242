"""The transport model of the trace checker: export leases and hot-added disks against the commit.

A third model beside the job and quiesce models (``_checker``): it follows, per VM, the NFC
export leases (``nfc.lease``: ``initializing`` / ``ready`` hold the VM, ``done`` / ``error``
release it) and the disks hot-added to a proxy VM (``disk.hotadd`` / ``disk.hotremove``), and
judges them at the commit (step 3b: the proxy's ``op.invoke`` with ``step`` ``WF-3b``, or the
host's ``snapshot.remove`` in a trace without proxy events) and at the end of the trace:

- ``TR-NFC-LEASE-END``: no live lease on the VM when its snapshot is removed or the trace ends;
- ``TR-HOTADD-DETACH``: no disk of the VM still attached to the proxy then.

A trace open at its end (``open_ended``: the suite checks after every job) is judged at the
commits only.
"""

from __future__ import annotations

from vcbsim.simulator import Event

from ._check_base import Context, Model

__all__ = ["TransportModel"]


class TransportModel(Model):
    """Leases and hot-added disks per VM (the events that made them live, for the witness)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.leases: dict[str, dict[str, Event]] = {}  # vm -> lease id -> its latest live event
        self.attached: dict[str, dict[tuple[str, object], Event]] = {}  # vm -> (proxy, disk) -> hotadd
        self.proxy_steps = any(e.actor == "proxy" and e.kind == "op.invoke" for e in ctx.events)

    def _vm(self, ev: Event) -> str:
        return str(self.vm_of(ev))

    def on_nfc_lease(self, ev: Event) -> None:
        vm, lease = self._vm(ev), str(ev.details.get("lease", ""))
        if ev.details.get("state") in ("initializing", "ready"):
            self.leases.setdefault(vm, {})[lease] = ev
        else:
            self.leases.get(vm, {}).pop(lease, None)

    def on_disk_hotadd(self, ev: Event) -> None:
        self.attached.setdefault(self._vm(ev), {})[(str(ev.details.get("proxy")), ev.details.get("disk"))] = ev

    def on_disk_hotremove(self, ev: Event) -> None:
        self.attached.get(self._vm(ev), {}).pop((str(ev.details.get("proxy")), ev.details.get("disk")), None)

    def on_op_invoke(self, ev: Event) -> None:
        if ev.step == "WF-3b":
            self._judge(ev, "the proxy began removing the backup snapshot (step 3b)")

    def on_snapshot_remove(self, ev: Event) -> None:
        if not self.proxy_steps:
            self._judge(ev, "the backup snapshot was removed (step 3b)")

    def _judge(self, ev: Event, what: str, vm: str | None = None) -> None:
        vm = vm or self._vm(ev)
        for lease, held in self.leases.get(vm, {}).items():
            self.add("TR-NFC-LEASE-END", f"{what} at #{ev.seq} while export lease {lease} of {self.show(vm)} "
                     f"was still {held.details.get('state')} (#{held.seq}): complete or abort the lease first",
                     held, ev, vm=vm)
        for (proxy, disk), added in self.attached.get(vm, {}).items():
            self.add("TR-HOTADD-DETACH", f"{what} at #{ev.seq} while disk {disk} of {self.show(vm)} was still "
                     f"hot-added to the proxy VM {proxy} (#{added.seq}): remove it from the proxy first (step 3a)",
                     added, ev, vm=vm)

    def finish(self) -> None:
        if self.open_ended:
            return
        for vm, leases in self.leases.items():
            for lease, held in leases.items():
                self.add("TR-NFC-LEASE-END", f"export lease {lease} of {self.show(vm)} was never completed or "
                         f"aborted (live since #{held.seq})", held, vm=vm)
        for vm, disks in self.attached.items():
            for (proxy, disk), added in disks.items():
                self.add("TR-HOTADD-DETACH", f"disk {disk} of {self.show(vm)} was never removed from the proxy VM "
                         f"{proxy} (hot-added at #{added.seq})", added, vm=vm)
