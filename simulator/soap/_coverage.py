"""Generate ``docs/vsphere-coverage.md`` from the code: every managed type, property and method
the endpoint serves. ``python -m vcbsim.simulator.soap._coverage > docs/vsphere-coverage.md``;
a test keeps the file in step with the code.
"""

from __future__ import annotations

from pyVmomi import VmomiSupport

from ._endpoint import ANONYMOUS
from .mo import ALL_TYPES
from .wire._codec import DEFAULT_VERSION, wire_version

__all__ = ["coverage_markdown"]

_HEADER = """# vSphere API coverage of the SOAP endpoint

Generated from `simulator/soap/mo/` by `python -m vcbsim.simulator.soap._coverage`;
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

HTTP: `GET /sdk/vimServiceVersions.xml`, `GET /sdk/vimService.wsdl` and `GET /sdk/vim.wsdl`
with its schemas (`vim-messages.xsd`, `vim-types.xsd`, `query-messages.xsd`, `query-types.xsd`,
`core-types.xsd`; generated from pyVmomi's types for the advertised version, so generic SOAP
clients such as zeep work from them alone), `POST /sdk` (SOAP),
`GET`/`HEAD`/`PUT /folder/<path>?dcPath=ha-datacenter&dsName=<datastore>` (session cookie or
Basic credentials; `Range` gives `206`).

## Where vcsim falls short (spec/vsphere-api.md), and what this endpoint does

| client need | vcsim | here (pinned by `tests/integration/soap/`) |
| --- | --- | --- |
| `Fetch` of an unset property (`vm.snapshot` with no snapshot) | crashed (0.24), later a wrong type | empty `<FetchResponse/>`, pyVmomi reads `None` (`test_fetch_of_unset_property_is_an_empty_fetch_response`) |
| `TaskInfo.entity` of snapshot remove/revert | the snapshot: `WaitForTask` raised and leaked a filter | always the VM; no filter left (`test_snapshot_create_and_remove_with_wait_for_task`) |
| finished tasks | about 25 KB more memory per snapshot cycle | kept for a bounded number of tasks (`test_finished_tasks_are_retained_within_a_bound`, `test_snapshot_cycles_do_not_accumulate_state`) |
| WSDL for generic SOAP clients | not served (404 on the 0.24 build) | `vim.wsdl` and schemas per API version; zeep logs in, lists VMs and follows a snapshot task from them (`test_zeep_logs_in_lists_vms_snapshots_and_follows_the_task_from_the_wsdl_alone`) |
| cancelling a task | - | a queued task ends with `RequestCanceled`; an ended one answers `InvalidState` (`test_a_queued_task_can_be_cancelled_and_then_never_runs`) |
| redo logs | none | `<base>-000001.vmdk` with `-delta`/`-sesparse` extents, `backing.parent` chain, `layoutEx.file[]`/`disk[].chain[]`, `.vmsd`; `-delta.vmdk` served as a COWD sparse extent (`test_quiesced_snapshot_runs_the_scripts_and_adds_redo_logs`, `test_vm_files_over_http_are_the_hosts_bytes`) |
| `QueryChangedDiskAreas` | not implemented | windows to the capacity, `"*"`, stale change id -> `InvalidArgument` (`test_changed_block_tracking_on_esxi`) |
| datastore files | served without a session | session cookie or Basic credentials; real bytes; `Range` (`test_vm_files_over_http_are_the_hosts_bytes`) |
| disk backing fields Ansible reads | partly unset | `fileName`, `diskMode`, `thinProvisioned`, `capacityInKB`/`InBytes`, `controllerKey`, `unitNumber`, `storageIOAllocation` (`test_vm_config_and_disk_backing`) |
| guest operations | need Docker containers | the guest's own file system on its virtual disks; a script uploaded with `InitiateFileTransferToGuest` runs at the next quiesced snapshot; guest credentials checked (`test_upload_download_and_the_script_runs_at_the_next_quiesced_snapshot`, `test_credentials_and_tools_are_checked`) |
| quiesced snapshots | no guest | VMware Tools runs the guest's scripts; `ApplicationQuiesceFault` on a failing script (`test_failing_pre_freeze_script_is_application_quiesce_fault`) |
| bad input | - | wrong password `InvalidLogin`, no session `NotAuthenticated`, unknown id `ManagedObjectNotFound`, malformed XML, entity expansion, external entities, unknown method `InvalidRequest` with HTTP 500; the server keeps serving (`test_soap_protocol.py`) |

## Wire fidelity for clients that are not pyVmomi (issue 13)

Pinned on the raw wire by `tests/integration/soap/test_wire_fidelity.py`, for every answer by
the schema walk `tests/integration/soap/test_schema_walk.py`, and end to end by zeep, node-soap
and govmomi running a backup flow (`tests/interop/`).

| what | here |
| --- | --- |
| `xsi:type` of `anyType` values | the declared type of the property path: `xsd:long` (also above 2^31), enum types (`VirtualMachinePowerState`, `ManagedEntityStatus`), `ArrayOf<declared item>`; every item of such an array carries its own `xsi:type` (`wire/_anytype.py`, `wire/_codec.HostSerializer`) |
| `Connection: close` | announced on every answer after which the server closes; keep-alive (pipelining too) otherwise |
| `_this` without a `type` attribute | found by its id (the schema's `type` is optional) |
| faults | never an internal exception's text: a defect is `SystemError` with the host's general message, the detail in the log |
| `HostSystem.hardware`, `summary.hardware` | `systemInfo` (BIOS uuid), `cpuInfo`, `cpuPkg`, `cpuFeature` (CPUID leaves 0 and 1), `memorySize`; one description per era, shared with `ComputeResource.summary` (`mo/_hosthardware.py`) |
| `VirtualMachine.config.bootOptions`, `layoutEx.file` | boot options set; the `.nvram` file listed and served over `/folder` |
| `content.perfManager` | `PerformanceManager`: counters, `QueryPerfProviderSummary`, `QueryAvailablePerfMetric`, `QueryPerf` (real-time, 20 s) (`mo/_perf.py`) |
| `content.ovfManager` | `OvfManager` where the host's API has it (4.0 and later) |
| `content.fileManager` | `FileManager`: delete, move, copy; `FileNotFound`, `FileAlreadyExists`, `CannotDeleteFile` for a VM's files, `InvalidDatastorePath`, `InvalidDatastore`, `FileTooLarge` (`mo/_filemanager.py`) |
| `StartProgramInGuest` | the guest's shells and common tools run with their real exit codes (`sh`/`bash -c`, `echo`, `true`, `false`, `mkdir`, `rm`, `test`, `cmd.exe /c` and its built-ins, ...) (`simulator/tools/_programs.py`) |
| `ReconfigVM_Task(changeTrackingEnabled)` twice before a stun | compared with the pending value: off then on ends on |

## NFC leases, OVF and Ansible's OVF modules (issue 16)

Pinned through pyVmomi by `tests/integration/soap/test_soap_nfclease.py` and
`test_soap_nfclease_fields.py`, and through `community.vmware` (5.x, Ansible 12) by
`tests/integration/ansible/test_vmware_ovf_modules.py` against an ESXi 7.0 host (`ExportVm`,
`ImportVApp` and `OvfManager` are API 4.0: an ESX 3.5 host answers `MethodNotFound`).

| what | here |
| --- | --- |
| `HttpNfcLease.info.deviceUrl` | `key` `/<vm id>/VirtualLsiLogicController0:<unit>` (`VirtualIDEController0` for an IDE disk), `importKey` the same by the VM's name, `targetId` `disk-N.vmdk`, `disk` true, `sslThumbprint` the SHA-1 thumbprint of the certificate served (`AB:CD:...`; empty over `--http`, "no SSL thumbprint is available"); `entity`, `totalDiskCapacityInKB`, `leaseTimeout` (300 s of the endpoint's clock); an export lease of a host of API 6.7 and later also lists the VM's `.nvram` after the disks (`disk-N.nvram`, `disk` false, `fileSize`, key `/<vm id>/nvram`), as `vmware_export_ovf` expects of such a host and govmomi downloads |
| `mode`, `capabilities` (API 6.7) | `pushOrGet`; `pullModeSupported` and `corsSupported` false, so `HttpNfcLeasePullFromUrls_Task` answers `NotSupported` |
| progress and end | `HttpNfcLeaseProgress` keeps a ready lease alive and sets `transferProgress` (`InvalidArgument` outside 0-100, `Timedout` once timed out); `HttpNfcLeaseComplete` / `HttpNfcLeaseAbort` (`InvalidState` on an ended lease); the lease holds the VM (`TaskInProgress` for a second export, power-on, the snapshot's removal) |
| `HttpNfcLeaseGetManifest` (API 4.1, `vim.version.version6`) | per disk downloaded to its end: `sha1` and `size` of the bytes sent, `capacity`, `populatedSize` (the disk's data); the `.nvram` once downloaded (`disk` false) |
| `OvfManager.CreateDescriptor` | an OVF 1.0 envelope: `vmw:osType`, CPUs, memory, `vmx-NN`, per disk the file (`ovfFiles`, by the lease's `key`), its size, capacity and `ovf:populatedSize`, the adapter on its port group; the downloaded `.nvram` as a `File` named by the `nvram` ExtraConfig (`ovf:/file/<id>`); the VM's other `vmw:ExtraConfig` only with `exportOption` `extraconfig` (listed in `ovfExportOption`) |
| `OvfManager.CreateImportSpec` | a `VirtualMachineImportSpec` with the OVF's hardware version; `fileItem` per disk with `create` false and `cimType` 17 (the import makes the disk; its content is POSTed); `diskProvisioning` thin/seSparse (thin), thick/flat/monolithicFlat/eagerZeroedThick (not thin); the hosted formats get `OvfUnsupportedDiskProvisioning` in `error`; a package's `.nvram` is not asked for (the new VM gets its own) |
| `ResourcePool.ImportVApp` | the VM is made at once, with the faults of `CreateVM_Task` (`DuplicateName`, `FileAlreadyExists`, `InvalidName`, ...; all listed for `ImportVApp` in the API reference), so nothing is left on a refusal; an aborted or timed-out import destroys the VM |
| `vmware_export_ovf` | a powered-off VM: VMDKs `qemu-img` reads equal to the VM's disks, an OVF that describes it, the `.mf`; a running VM is refused by the module itself (it never calls `ExportSnapshot`, so an export of a running VM through its snapshot is not something the module can do); a missing `moid` is `ManagedObjectNotFound`, a VM under another lease `TaskInProgress` |
| `vmware_deploy_ovf` | a local `.ovf` (or `.ova`): a new VM whose disks equal the exported ones; no `name` and the OVF's name taken: `DuplicateName` (the collection's documentation says ESXi allows duplicate names; this host keeps names unique in its VM folder, as `CreateVM_Task` here does); `url` (pull mode) is not offered (`pullModeSupported` false) |
| `vmware_guest` from existing disks | `disk.filename` on a new VM sends `fileOperation` `create` for the existing file: `FileAlreadyExists`, as on a host (govmomi issue 790); what works is `vsphere_copy` of the descriptor and its `-flat` extent, `vmware_guest` without disks, `vmware_guest_disk` with `filename` (`vsphere_copy` builds `https://<hostname><path>` without the port: give `hostname: 127.0.0.1:<port>`) |

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
