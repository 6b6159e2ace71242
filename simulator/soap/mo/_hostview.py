"""What the host-wide properties are built from: ``ServiceContent.about`` and the datastores
of the ``Host``, read when asked (a control API reset can change the profile in place)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..._host import Host

__all__ = ["DatastoreInfo", "HostAbout", "datastore_infos", "host_about"]


@dataclass(frozen=True, slots=True)
class HostAbout:
    """What ``ServiceContent.about`` reports (from the host profile)."""

    name: str
    full_name: str
    version: str
    build: str
    api_version: str
    product_line: str
    os_type: str
    instance_uuid: str
    host_name: str


@dataclass(frozen=True, slots=True)
class DatastoreInfo:
    name: str
    capacity: int
    free_space: int
    url: str = ""
    type: str = "VMFS"


def host_about(host: Host) -> HostAbout:
    p = host.profile
    esxi = "ESXi" in p.product
    return HostAbout(
        name=p.product,
        full_name=f"{p.product} {p.version} build-{p.build}",
        version=p.version,
        build=p.build,
        api_version=p.api_version,
        product_line="embeddedEsx" if esxi else "esx",
        os_type="vmnix-x86",
        instance_uuid=str(uuid.uuid5(uuid.NAMESPACE_DNS, host.name)),
        host_name=host.name,
    )


def datastore_infos(host: Host) -> list[DatastoreInfo]:
    return [
        DatastoreInfo(d.name, d.capacity, d.free, f"/vmfs/volumes/{d.name}", "VMFS")
        for d in host.datastores.values()
    ]
