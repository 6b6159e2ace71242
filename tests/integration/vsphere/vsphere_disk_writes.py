"""Random guest writes over a two-disk VM, shared by the hot-add round-trip properties
(a restore as a new VM and one over the original): the disk sizes, the Hypothesis strategy
and how a drawn write lands on a disk."""

from __future__ import annotations

from typing import Any

from vcbsim.simulator._host import MiB

#: the source VM's two disks (the second smaller, so an offset scaled per disk stays inside)
SIZES = (8 * MiB, 4 * MiB)


def writes() -> Any:
    """A few writes: (disk index, offset seed, data up to ~70 KB, several grains)."""
    from hypothesis import strategies as st

    return st.lists(st.tuples(st.integers(0, 1), st.integers(0, SIZES[1] - 1), st.binary(min_size=1, max_size=70_000)),
                    min_size=1, max_size=5)


def apply_writes(host: Any, vm: Any, drawn: list[tuple[int, int, bytes]]) -> None:
    """Write each drawn write through the guest's view of its disk (the running layer)."""
    for index, offset, data in drawn:
        d = vm.disks[index]
        host.guest_device(vm, d.key).write((offset * (index + 1)) % (d.capacity - len(data)), data)
