"""Generate ``docs/vsphere-coverage.md`` from the code: every managed type, property and method
the endpoint serves. ``python -m vcbsim.simulator.soap._coverage > docs/vsphere-coverage.md``;
a test keeps the file in step with the code.
"""

from __future__ import annotations

from pyVmomi import VmomiSupport

from ._codec import DEFAULT_VERSION, wire_version
from ._endpoint import ANONYMOUS
from ._objects import ALL_TYPES

__all__ = ["coverage_markdown"]

_HEADER = """# vSphere API coverage of the SOAP endpoint

Generated from `simulator/soap/_objects.py` by `python -m vcbsim.simulator.soap._coverage`;
do not edit by hand (`tests/integration/soap/test_soap_coverage.py` checks it is current).

The endpoint advertises `urn:vim25` version {version} (and every older version) in
`/sdk/vimServiceVersions.xml`; values are serialised with pyVmomi for the version the client
names in `SOAPAction`. Without a session only {anonymous} are allowed; everything else answers
`NotAuthenticated`. A method of a type that is not listed here answers `NotSupported`; a method
of another type answers `MethodNotFound`; an unknown object id answers `ManagedObjectNotFound`;
malformed or hostile XML and unknown methods answer `InvalidRequest` (HTTP 500).

Every managed object also answers `Fetch` (how pyVmomi 8+ reads each attribute) for any of its
listed properties; an unset property is an empty `<FetchResponse/>`. Properties of the vSphere
type that are not listed are valid but unset.

HTTP: `GET /sdk/vimServiceVersions.xml`, `GET /sdk/vimService.wsdl`, `POST /sdk` (SOAP),
`GET`/`HEAD`/`PUT /folder/<path>?dcPath=ha-datacenter&dsName=<datastore>` (session cookie or
Basic credentials; `Range` gives `206`).

"""


def coverage_markdown() -> str:
    anonymous = ", ".join(f"`{m}`" for m in sorted(ANONYMOUS))
    out = [_HEADER.format(version=wire_version(DEFAULT_VERSION), anonymous=anonymous)]
    out.append("| managed type | methods | properties |\n| --- | --- | --- |\n")
    total_methods = 0
    for impl in sorted(ALL_TYPES, key=lambda t: VmomiSupport.GetWsdlName(t.vim_type)):
        name = VmomiSupport.GetWsdlName(impl.vim_type)
        methods = impl.soap_methods()
        total_methods += len(methods)
        props = sorted(impl.property_names())
        out.append(
            f"| `{name}` | {', '.join(f'`{m}`' for m in methods) or '-'} | "
            f"{', '.join(f'`{p}`' for p in props) or '-'} |\n"
        )
    out.append(f"\n{len(ALL_TYPES)} managed types, {total_methods} methods, plus `Fetch`.\n")
    return "".join(out)


if __name__ == "__main__":  # pragma: no cover
    print(coverage_markdown(), end="")
