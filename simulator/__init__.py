"""The simulated VMware ESX host.

Public names are re-exported here; implementation modules start with an underscore.
"""

from ._clock import EPOCH, VirtualClock
from ._errors import InvalidInputError, NotFoundError, SimulatedCrash, StateError, VcbsimError
from ._faultrules import OPERATIONS, FaultInjector, FaultRule
from ._faults import fault_name, make_fault, raise_fault
from ._host import Datastore, DiskChangeInfo, Host, MorefCounters, Populate
from ._persist import DatastoreStore, RecoveryReport, open_host
from ._profiles import PROFILES, HostProfile, get_profile
from ._random import SimRandom
from ._trace import ACTORS, KINDS, Event, Trace, load_jsonl
from ._vm import VM, Snapshot, VirtualDiskDevice

__all__ = [
    "ACTORS",
    "EPOCH",
    "KINDS",
    "OPERATIONS",
    "PROFILES",
    "Datastore",
    "DatastoreStore",
    "DiskChangeInfo",
    "Event",
    "Host",
    "MorefCounters",
    "Populate",
    "FaultInjector",
    "FaultRule",
    "HostProfile",
    "InvalidInputError",
    "NotFoundError",
    "RecoveryReport",
    "SimRandom",
    "SimulatedCrash",
    "Snapshot",
    "StateError",
    "Trace",
    "VM",
    "VcbsimError",
    "VirtualDiskDevice",
    "VirtualClock",
    "fault_name",
    "get_profile",
    "load_jsonl",
    "make_fault",
    "open_host",
    "raise_fault",
]
