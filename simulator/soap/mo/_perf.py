"""PerformanceManager (``ha-perfmgr``) of a standalone host.

Why a PerformanceManager: management and monitoring tools read ``content.perfManager`` as soon
as they connect and ask it for a VM's real-time statistics; an unset one crashes them. What is
here is what such a tool calls (vSphere API reference, ``PerformanceManager``, since API 2.0):
``perfCounter`` and ``historicalInterval``, ``QueryPerfProviderSummary`` (a standalone host
keeps real-time statistics only, every 20 s), ``QueryPerfCounter``, ``QueryAvailablePerfMetric``
and ``QueryPerf`` for the real-time interval.

What the values are: a model of the VM's state, not measurements. A powered-off VM has no
samples (as on a host, ``QueryPerf`` answers it with no values). A powered-on VM's samples are
at the 20-second boundaries of the host's virtual clock; ``cpu.usagemhz`` is a tenth of its vCPUs'
share of the host's clock rate, ``cpu.usage`` that as a percentage (hundredths, the API's unit),
``mem.consumed`` its configured memory in KB, ``mem.usage`` a quarter of it in hundredths of a
percent, ``sys.uptime`` the seconds since the host's start; the same state gives the same values.

OvfManager (``ha-ovf-manager``, since API 4.0) is ``_ovfmanager.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from ._base import MOImpl, soap
from ._hosthardware import hardware_for
from ._vmprops import ts

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["PerformanceManagerImpl"]

#: seconds between real-time samples (a host's refresh rate)
REFRESH = 20
#: samples a real-time query returns at most (one hour of 20-second samples, as hosts keep)
MAX_SAMPLES = 180

#: (key, group, name, rollup, unit, stats type, summary) of the counters kept; the keys are
#: those an ESXi host assigns (PerfCounterInfo.key is host-specific; tools look them up by name)
_COUNTERS = (
    (2, "cpu", "usage", "average", "percent", "rate", "CPU usage as a percentage during the interval"),
    (6, "cpu", "usagemhz", "average", "megaHertz", "rate", "CPU usage in megahertz during the interval"),
    (24, "mem", "usage", "average", "percent", "absolute", "Memory usage as percent of total configured or available memory"),
    (98, "mem", "consumed", "average", "kiloBytes", "absolute", "Amount of host physical memory consumed"),
    (155, "sys", "uptime", "latest", "second", "absolute", "Total time elapsed, in seconds, since last system startup"),
)


def _counter(key: int, group: str, name: str, rollup: str, unit: str, stats: str, summary: str) -> Any:
    def desc(label: str) -> Any:
        return vim.ElementDescription(key=label, label=label, summary=summary if label == name else label)

    return vim.PerformanceManager.CounterInfo(
        key=key, nameInfo=desc(name), groupInfo=desc(group), unitInfo=desc(unit),
        rollupType=rollup, statsType=stats, level=1, perDeviceLevel=3,
    )


class PerformanceManagerImpl(MOImpl):
    vim_type = vim.PerformanceManager
    static_moids = ("ha-perfmgr",)
    content_property = "perfManager"

    def p_perfCounter(self) -> list[Any]:  # noqa: N802
        return [_counter(*c) for c in _COUNTERS]

    def p_historicalInterval(self) -> list[Any]:  # noqa: N802
        return []  # a standalone host keeps no historical intervals (real-time only)

    def p_description(self) -> Any:
        # counterType describes the rollup types (PerfSummaryType), statsType the kinds of
        # statistic (PerfStatsType), as the API reference lists them
        element: Any = vim.ElementDescription

        def described(keys: tuple[str, ...]) -> Any:
            return element.Array([vim.ElementDescription(key=k, label=k, summary=k) for k in keys])

        return vim.PerformanceDescription(
            counterType=described(("average", "maximum", "minimum", "latest", "summation", "none")),
            statsType=described(("absolute", "delta", "rate")),
        )

    def _vm(self, entity: Any) -> Any:
        if not isinstance(entity, vim.VirtualMachine):
            raise vmodl.fault.InvalidArgument(msg="statistics are kept for virtual machines only",
                                            invalidProperty="entity")
        self.ep.registry.require(entity)
        return self.ep.host.vms[entity._moId]

    @soap
    def QueryPerfProviderSummary(self, ctx: Context, entity: Any) -> Any:  # noqa: N802
        self._vm(entity)
        return vim.PerformanceManager.ProviderSummary(entity=entity, currentSupported=True,
                                                      summarySupported=False, refreshRate=REFRESH)

    @soap
    def QueryPerfCounter(self, ctx: Context, counterId: list[int]) -> list[Any]:  # noqa: N802,N803
        known = {c[0]: c for c in _COUNTERS}
        return [_counter(*known[k]) for k in counterId if k in known]

    @soap
    def QueryAvailablePerfMetric(self, ctx: Context, entity: Any, beginTime: Any = None,  # noqa: N802,N803
                                 endTime: Any = None, intervalId: int | None = None) -> list[Any]:  # noqa: N803
        vm = self._vm(entity)
        if vm.power_state != "poweredOn" or intervalId not in (None, REFRESH):
            return []
        return [vim.PerformanceManager.MetricId(counterId=c[0], instance="") for c in _COUNTERS]

    @soap
    def QueryPerf(self, ctx: Context, querySpec: list[Any]) -> list[Any]:  # noqa: N802,N803
        out = []
        for spec in querySpec:
            vm = self._vm(spec.entity)
            if spec.intervalId not in (None, REFRESH):
                raise vmodl.fault.InvalidArgument(msg=f"interval {spec.intervalId}: a standalone host keeps "
                                                f"real-time statistics only (intervalId {REFRESH})",
                                                invalidProperty="intervalId")
            if vm.power_state != "poweredOn":
                out.append(vim.PerformanceManager.EntityMetric(entity=spec.entity, sampleInfo=[], value=[]))
                continue
            out.append(self._metric(spec, vm))
        return out

    def _metric(self, spec: Any, vm: Any) -> Any:
        now = int(self.ep.now()) // REFRESH * REFRESH
        boot = int(self.ep.boot_time)
        count = min(spec.maxSample or MAX_SAMPLES, MAX_SAMPLES)
        times = [t for t in range(now - (count - 1) * REFRESH, now + 1, REFRESH) if t >= boot]
        if spec.startTime is not None:
            times = [t for t in times if t > spec.startTime.timestamp()]
        if spec.endTime is not None:
            times = [t for t in times if t <= spec.endTime.timestamp()]
        hw = hardware_for(self.ep.inventory.about().version)
        mhz = max(1, vm.num_cpus * hw.mhz // 10)
        values = {
            2: lambda t: mhz * 10000 // (vm.num_cpus * hw.mhz),
            6: lambda t: mhz,
            24: lambda t: 2500,
            98: lambda t: vm.memory_mb * 1024,
            155: lambda t: t - boot,
        }
        wanted = [m.counterId for m in spec.metricId] if spec.metricId else [c[0] for c in _COUNTERS]
        series = [
            vim.PerformanceManager.IntSeries(id=vim.PerformanceManager.MetricId(counterId=k, instance=""),
                                             value=[values[k](t) for t in times])
            for k in wanted if k in values
        ]
        return vim.PerformanceManager.EntityMetric(
            entity=spec.entity,
            sampleInfo=[vim.PerformanceManager.SampleInfo(timestamp=ts(t), interval=REFRESH) for t in times],
            value=series,
        )

