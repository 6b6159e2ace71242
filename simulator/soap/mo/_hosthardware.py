"""The simulated host's hardware: ``HostSystem.hardware``, ``summary.hardware`` and the
``ComputeResource`` totals, from one description per era.

Why one description: management tools read the CPU and memory from several places (the host's
``hardware.cpuInfo`` and ``memorySize``, ``summary.hardware``, the compute resource's
``summary.totalCpu``); they must agree. Why per era: a host of the ESX 3.5 profile is a server
of 2008 (two quad-core Xeon 5300 without Hyper-Threading), one of the ESXi 7.0 profile a
current two-socket server; a tool that shows or licenses by CPU sees plausible numbers.

What real hosts report, and what this follows (vSphere API reference, ``HostHardwareInfo``
and ``HostHardwareSummary``, both since API 2.0; ``HostCpuIdInfo``): ``cpuInfo`` counts
packages, cores and threads and gives ``hz``; ``memorySize`` is in bytes; ``systemInfo.uuid``
is the BIOS UUID; ``cpuFeature`` is the CPUID leaves 0 and 1 with each register written as 32
bits in groups of four, most significant first (``"0000:0000:0000:0000:0000:0000:0000:1011"``).
The register values are those of the named processors (leaf 0: the highest leaf and
"GenuineIntel"; leaf 1: family, model and stepping, and the feature flags).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

__all__ = ["HostHardware", "hardware_for", "hardware_info", "hardware_summary"]


@dataclass(frozen=True)
class HostHardware:
    vendor: str
    model: str
    cpu_model: str
    mhz: int
    bus_mhz: int
    packages: int
    cores: int  # in all packages
    threads: int
    memory: int  # bytes
    nics: int
    hbas: int
    #: CPUID (level, eax, ebx, ecx, edx)
    cpuid: tuple[tuple[int, int, int, int, int], ...]


#: "Genu" "ineI" "ntel" in ebx, edx, ecx
_INTEL = (0x756E6547, 0x6C65746E, 0x49656E69)

_ESX35 = HostHardware(
    vendor="Dell Inc.", model="PowerEdge 2950", cpu_model="Intel(R) Xeon(R) CPU           E5345  @ 2.33GHz",
    mhz=2333, bus_mhz=333, packages=2, cores=8, threads=8, memory=16 * 1024**3, nics=2, hbas=3,
    cpuid=((0, 0x0000000A, _INTEL[0], _INTEL[2], _INTEL[1]),
           (1, 0x000006F7, 0x00040800, 0x0004E3BD, 0xBFEBFBFF)),
)
_ESXI70 = HostHardware(
    vendor="Dell Inc.", model="PowerEdge R640", cpu_model="Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz",
    mhz=2095, bus_mhz=100, packages=2, cores=40, threads=80, memory=384 * 1024**3, nics=4, hbas=4,
    cpuid=((0, 0x00000016, _INTEL[0], _INTEL[2], _INTEL[1]),
           (1, 0x00050657, 0x00400800, 0x7FFEFBFF, 0xBFEBFBFF)),
)


def hardware_for(version: str) -> HostHardware:
    """The hardware of a host of product ``version`` (``AboutInfo.version``)."""
    major = int(version.split(".", 1)[0]) if version[:1].isdigit() else 0
    return _ESX35 if major < 5 else _ESXI70


def _bits(value: int) -> str:
    text = f"{value & 0xFFFFFFFF:032b}"
    return ":".join(text[i : i + 4] for i in range(0, 32, 4))


def system_uuid(host_name: str) -> str:
    """The BIOS UUID: stable for a host name (the instance UUID is another one)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"vcbsim-bios:{host_name}"))


def hardware_info(hw: HostHardware, host_name: str) -> Any:
    """``HostSystem.hardware``."""
    return vim.host.HardwareInfo(
        systemInfo=vim.host.SystemInfo(vendor=hw.vendor, model=hw.model, uuid=system_uuid(host_name)),
        cpuInfo=vim.host.CpuInfo(numCpuPackages=hw.packages, numCpuCores=hw.cores, numCpuThreads=hw.threads,
                                 hz=hw.mhz * 1_000_000),
        cpuPkg=[
            vim.host.CpuPackage(index=i, vendor="intel", hz=hw.mhz * 1_000_000, busHz=hw.bus_mhz * 1_000_000,
                                description=hw.cpu_model,
                                threadId=list(range(i * hw.threads // hw.packages, (i + 1) * hw.threads // hw.packages)))
            for i in range(hw.packages)
        ],
        cpuFeature=[vim.host.CpuIdInfo(level=lvl, vendor="intel", eax=_bits(a), ebx=_bits(b), ecx=_bits(c), edx=_bits(d))
                    for lvl, a, b, c, d in hw.cpuid],
        memorySize=hw.memory,
        biosInfo=vim.host.BIOSInfo(biosVersion="2.7.0", releaseDate=None),
    )


def hardware_summary(hw: HostHardware, host_name: str) -> Any:
    """``HostSystem.summary.hardware``."""
    return vim.host.Summary.HardwareSummary(
        vendor=hw.vendor, model=hw.model, uuid=system_uuid(host_name), memorySize=hw.memory,
        cpuModel=hw.cpu_model, cpuMhz=hw.mhz, numCpuPkgs=hw.packages, numCpuCores=hw.cores,
        numCpuThreads=hw.threads, numNics=hw.nics, numHBAs=hw.hbas,
    )
