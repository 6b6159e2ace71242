"""The inventory as the managed objects name it: datastores, networks, VMs and snapshots by id.

``InventoryIndex`` (``Endpoint.inventory``) answers "which host object is ``datastore-2`` /
``network-1`` / ``vm-7`` / ``snapshot-12``" and the reverse (a datastore's reference by name),
from the ``Host``'s current state. What it builds is memoised for one call only (the per-call
cache, emptied by ``begin_call``: the endpoint lock is held for a call, so a value built once
stays true until it ends, and is never reused after a change). One index outlives calls: who
holds each snapshot (``snapshot_owner``), a hint verified on every use.

Ids are a standalone host's: datastores and port groups are numbered in the host's order
(``datastore-1`` ...); VMs and snapshots carry the host's own morefs (``vm-N``, ``snapshot-N``).
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim, vmodl

from .._errors import NotFoundError
from .._host import Host
from .._vm import VM
from .mo._hostview import DatastoreInfo, HostAbout, datastore_infos, host_about
from .mo._vmprops import iter_snapshots
from .mo._vmview import SnapshotView, VMView, network_name

__all__ = ["InventoryIndex", "not_found"]


def not_found(ref: Any) -> Exception:
    """The fault a host answers for a reference to an object it does not have (any longer)."""
    return vmodl.fault.ManagedObjectNotFound(
        msg=f"The object '{ref._moId}' has already been deleted or has not been completely created",
        obj=ref,
    )


class InventoryIndex:
    """Host objects by managed object id, and references by name, for one host."""

    def __init__(self, host: Host) -> None:
        self.host = host
        #: snapshot moref -> the VM that held it when last seen (a hint: verified on use)
        self.snapshot_owner: dict[str, str] = {}
        self._call_cache: dict[str, Any] = {}

    def begin_call(self) -> None:
        """Forget values memoised for one call (whenever the endpoint lock is taken anew)."""
        self._call_cache.clear()

    def forget_all(self) -> None:
        """The inventory was rebuilt (a control API reset): nothing known about it holds."""
        self.snapshot_owner.clear()
        self._call_cache.clear()

    # the host ---------------------------------------------------------------------------
    def about(self) -> HostAbout:
        return host_about(self.host)

    def about_info(self) -> Any:
        """``ServiceContent.about`` and ``HostSystem.config.product``."""
        a = self.about()
        return vim.AboutInfo(
            name=a.name,
            fullName=a.full_name,
            vendor="VMware, Inc.",
            version=a.version,
            build=a.build,
            localeVersion="INTL",
            localeBuild="000",
            osType=a.os_type,
            productLineId=a.product_line,
            apiType="HostAgent",
            apiVersion=a.api_version,
            instanceUuid=a.instance_uuid or None,
            licenseProductName="VMware ESX Server",
            licenseProductVersion=a.version.split(".")[0] + ".0",
        )

    # datastores and networks --------------------------------------------------------------
    def datastore_list(self) -> list[tuple[str, DatastoreInfo]]:
        """(moid, datastore) in the host's order."""
        cached = self._call_cache.get("datastores")
        if cached is None:
            cached = [(f"datastore-{i}", ds) for i, ds in enumerate(datastore_infos(self.host), 1)]
            self._call_cache["datastores"] = cached
        return cached  # type: ignore[no-any-return]

    def datastore_refs(self) -> dict[str, Any]:
        return {ds.name: vim.Datastore(moid) for moid, ds in self.datastore_list()}

    def datastore_ref(self, name: str) -> Any:
        """The reference of datastore ``name`` (``None``: no such datastore)."""
        return self.datastore_refs().get(name)

    def datastore_info(self, moid: str) -> DatastoreInfo:
        for m, ds in self.datastore_list():
            if m == moid:
                return ds
        raise not_found(vim.Datastore(moid))

    def network_list(self) -> list[tuple[str, str]]:
        """(moid, name) of every port group: ``VM Network`` and those the VMs' adapters use."""
        cached = self._call_cache.get("networks")
        if cached is None:
            names = ["VM Network"]
            for vm in self.host.vms.values():
                name = network_name(vm)
                if name not in names:
                    names.append(name)
            cached = [(f"network-{i}", name) for i, name in enumerate(names, 1)]
            self._call_cache["networks"] = cached
        return cached  # type: ignore[no-any-return]

    def network_refs(self) -> dict[str, Any]:
        return {name: vim.Network(moid) for moid, name in self.network_list()}

    def network_ref(self, name: str) -> Any:
        """The reference of port group ``name`` (``None``: no VM uses it)."""
        return self.network_refs().get(name)

    def network_name(self, moid: str) -> str:
        for m, name in self.network_list():
            if m == moid:
                return name
        raise not_found(vim.Network(moid))

    def has_datastore(self, moid: str) -> bool:
        return moid.startswith("datastore-") and any(m == moid for m, _ in self.datastore_list())

    def has_network(self, moid: str) -> bool:
        return moid.startswith("network-") and any(m == moid for m, _ in self.network_list())

    # VMs ------------------------------------------------------------------------------------
    def has_vm(self, moid: str) -> bool:
        return moid in self.host.vms

    def host_vm(self, moid: str) -> VM:
        """The host's ``VM`` ``moid``, or ``NotFoundError``."""
        vm = self.host.vms.get(moid)
        if vm is None:
            raise NotFoundError("VM", moid, known=list(self.host.vms))
        return vm

    def vm_name(self, moid: str) -> str:
        """VM ``moid``'s name (``NotFoundError`` if there is none)."""
        return self.host_vm(moid).name

    def vm_view(self, moid: str) -> VMView:
        """VM ``moid`` as the properties read it, one view per call (the lock is held, so
        what a view built once stays true for the call)."""
        key = f"vm:{moid}"
        view = self._call_cache.get(key)
        if view is None:
            view = self._call_cache[key] = VMView(self.host, self.host_vm(moid))
        return view  # type: ignore[no-any-return]

    # snapshots ------------------------------------------------------------------------------
    def find_snapshot(self, moid: str) -> tuple[VMView, SnapshotView] | None:
        """The VM that holds snapshot ``moid``, and the snapshot; ``None`` if there is none."""
        key = f"snapshot:{moid}"
        memo = self._call_cache.get(key)
        if memo is not None:  # found earlier in this call (a lookup, then the method's own)
            return memo  # type: ignore[no-any-return]
        owner = self.snapshot_vm(moid)
        if owner is None:
            return None
        vm = self.vm_view(owner)
        for snap, _parent in iter_snapshots(vm.snapshots):
            if snap.moref == moid:
                self._call_cache[key] = vm, snap
                return vm, snap
        return None

    def snapshot_vm(self, moid: str) -> str | None:
        """The VM holding snapshot ``moid`` (``None``: no such snapshot).

        The owner seen last time is looked at first (one VM's snapshots instead of every
        VM's); a miss scans the VMs and remembers what it found, so the answer is always from
        current state."""
        key = f"snapshot-vm:{moid}"
        if key in self._call_cache:
            return self._call_cache[key]  # type: ignore[no-any-return]
        vms = self.host.vms
        hint = self.snapshot_owner.get(moid)
        order = [vms[hint]] if hint in vms else []
        found = None
        for vm in [*order, *vms.values()]:
            if any(s.moref == moid for s in vm.snapshots()):
                found = vm.moref
                break
        if found is None:
            self.snapshot_owner.pop(moid, None)
        else:
            self.snapshot_owner[moid] = found
        self._call_cache[key] = found
        return found

    def note_snapshot(self, snapshot: str, vm: str) -> None:
        """Remember who holds a snapshot just created (``find_snapshot`` verifies it)."""
        self.snapshot_owner[snapshot] = vm

    def forget_snapshots(self, vm: str, snapshot: str | None = None) -> None:
        """Drop the owner index's entries for a removed ``snapshot`` (or all of ``vm``'s), so
        the index does not grow with every create-and-remove cycle."""
        if snapshot is not None:
            self.snapshot_owner.pop(snapshot, None)
        else:
            for moid in [m for m, owner in self.snapshot_owner.items() if owner == vm]:
                del self.snapshot_owner[moid]
