"""LayeredDisk against a plain reference model: one bytearray per snapshot state.

The state machine drives random writes, freezes (snapshots), reverts, releases of any held
layer (mid-chain, base, the top's parent = commit) and consolidations, and checks after every
step that the top and every held layer read exactly as the reference says, and that changed
block tracking covers every difference between any two known states.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from vcbsim.simulator import InvalidInputError, StateError
from vcbsim.simulator.disk import BlockDevice, Layer, LayeredDisk, MergeStats

GRAIN = 512
CAPACITY = GRAIN * 12


def diff_offsets(a: bytes, b: bytes) -> set[int]:
    """Grain indices where two images differ (reference side of the CBT check)."""
    return {i // GRAIN for i in range(0, len(a), GRAIN) if a[i : i + GRAIN] != b[i : i + GRAIN]}


def covered(areas: list[tuple[int, int]]) -> set[int]:
    out: set[int] = set()
    for off, length in areas:
        out.update(range(off // GRAIN, (off + length + GRAIN - 1) // GRAIN))
    return out


class DiskMachine(RuleBasedStateMachine):
    held = Bundle("held")

    def __init__(self) -> None:
        super().__init__()
        self.disk = LayeredDisk(CAPACITY, grain_size=GRAIN)
        self.current = bytearray(CAPACITY)
        # held layer -> (image at freeze, change_epoch)
        self.snaps: dict[int, tuple[Layer, bytes, int]] = {}

    @rule(
        offset=st.integers(0, CAPACITY - 1),
        length=st.integers(0, 3 * GRAIN),
        byte=st.integers(0, 255),
    )
    def write(self, offset: int, length: int, byte: int) -> None:
        length = min(length, CAPACITY - offset)
        data = bytes([byte]) * length
        self.disk.write(offset, data)
        self.current[offset : offset + length] = data

    @rule(offset=st.integers(0, CAPACITY - 1))
    def write_zeros(self, offset: int) -> None:
        length = min(GRAIN, CAPACITY - offset)
        self.disk.write(offset, bytes(length))
        self.current[offset : offset + length] = bytes(length)

    @precondition(lambda self: len(self.snaps) < 6)
    @rule(target=held)
    def freeze(self) -> Layer:
        layer = self.disk.freeze()
        assert layer.change_epoch is not None
        self.snaps[layer.id] = (layer, bytes(self.current), layer.change_epoch)
        assert self.disk.top.grain_count == 0
        return layer

    @rule(layer=held)
    def revert(self, layer: Layer) -> None:
        assert layer.id in self.snaps
        stats = self.disk.revert(layer)
        assert isinstance(stats, MergeStats)
        self.current = bytearray(self.snaps[layer.id][1])

    @rule(layer=consumes(held), merge=st.booleans())
    def release(self, layer: Layer, merge: bool) -> None:
        del self.snaps[layer.id]
        stats = self.disk.release(layer, merge=merge)
        assert stats.grains_moved >= 0
        if not merge:
            assert stats.layers_removed == 0 and layer in stats.pending
        # A held layer is never removed by a merge.
        for lay, _, _ in self.snaps.values():
            assert lay.alive

    @rule()
    def consolidate(self) -> None:
        stats = self.disk.consolidate()
        assert stats.grains_moved >= 0
        for lay in self.disk.layers():
            assert not lay.released or len(lay.children) >= 2
        assert set(stats.pending) == {x for x in self.disk.layers() if x.released}

    @invariant()
    def reads_match(self) -> None:
        assert self.disk.read(0, CAPACITY) == bytes(self.current)
        for layer, image, _ in self.snaps.values():
            assert self.disk.read(0, CAPACITY, at=layer) == image

    @invariant()
    def unaligned_read_matches(self) -> None:
        off = GRAIN // 2 + 3
        assert self.disk.read(off, GRAIN * 2 + 5) == bytes(self.current[off : off + GRAIN * 2 + 5])

    @invariant()
    def exactly_one_top(self) -> None:
        tops = [x for x in self.disk.layers() if not x.frozen]
        assert tops == [self.disk.top]
        for lay in self.disk.layers():
            for child in lay.children:
                assert child.parent is lay

    @invariant()
    def cbt_never_under_reports(self) -> None:
        current = bytes(self.current)
        for _layer, image, epoch in self.snaps.values():
            assert diff_offsets(image, current) <= covered(self.disk.changed_areas(epoch))
            for other, other_image, _ in self.snaps.values():
                got = covered(self.disk.changed_areas(epoch, at=other))
                assert diff_offsets(image, other_image) <= got

    @invariant()
    def allocated_covers_data(self) -> None:
        current = bytes(self.current)
        nonzero = {i // GRAIN for i in range(0, CAPACITY, GRAIN) if any(current[i : i + GRAIN])}
        assert nonzero <= covered(self.disk.allocated_areas())


DiskMachine.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDiskMachine = DiskMachine.TestCase


# -- commit semantics ---------------------------------------------------------------------


def test_snapshot_writes_land_in_top_and_commit_moves_them_to_base() -> None:
    disk = LayeredDisk(4 << 20)
    base = disk.base
    base.label = "vm.vmdk"
    disk.write(0, b"A" * 70000)
    before = disk.read(0, 4 << 20)
    snap = disk.freeze()
    assert snap is base and base.frozen
    disk.top.label = "vm-000001.vmdk"
    disk.write(65536, b"B" * 100)
    disk.write(3 << 20, b"C" * 5)
    # Writes landed in the top; the base is unchanged until release.
    assert disk.top.grain_count == 2
    assert disk.read(0, 4 << 20, at=base) == before
    assert base.grain_count == 2
    stats = disk.release(base)
    assert stats.merged and stats.layers_removed == 1
    assert stats.grains_moved == 2
    # After release (commit) the base is the writable top and holds every write.
    assert disk.top is base and not base.frozen
    assert disk.chain() == [base]
    assert disk.read(65536, 100) == b"B" * 100
    assert disk.read(3 << 20, 5) == b"C" * 5
    assert disk.read(0, 65536) == b"A" * 65536
    assert base.label == "vm.vmdk"
    disk.write(0, b"Z")
    assert disk.read(0, 2) == b"ZA"


def test_mid_chain_release_keeps_child_object_and_parent_label() -> None:
    disk = LayeredDisk(1 << 20)
    disk.base.label = "vm.vmdk"
    s1 = disk.freeze()
    disk.top.label = "vm-000001.vmdk"
    disk.write(0, b"1" * 10)
    s2 = disk.freeze()
    disk.top.label = "vm-000002.vmdk"
    disk.write(0, b"2" * 5)
    img2 = disk.read(0, 1 << 20, at=s2)
    stats = disk.release(s1)
    assert stats.layers_removed == 1
    assert s2.alive and not s1.alive
    assert s2.parent is None and disk.base is s2
    assert s2.label == "vm.vmdk"
    assert disk.read(0, 1 << 20, at=s2) == img2
    assert disk.read(0, 10) == b"22222" + b"1" * 5


def test_branched_layer_stays_pending_until_one_branch_left() -> None:
    disk = LayeredDisk(1 << 20, grain_size=4096)
    disk.write(0, b"base")
    s1 = disk.freeze()
    disk.write(0, b"one!")
    s2 = disk.freeze()  # branch 1 held by s2
    disk.revert(s1)
    disk.write(4096, b"two")
    stats = disk.release(s1)
    assert not stats.merged
    assert stats.pending == (s1,)
    assert s1.alive and len(s1.children) == 2
    assert disk.read(0, 4, at=s2) == b"one!"
    # Releasing s2: it is a leaf on a dead branch, so it goes, and then s1 merges.
    stats = disk.release(s2)
    assert stats.layers_removed == 2 and stats.pending == ()
    assert disk.chain() == [disk.top]
    assert disk.read(0, 4) == b"base" and disk.read(4096, 3) == b"two"


def test_release_without_merge_waits_for_consolidate() -> None:
    disk = LayeredDisk(1 << 20, grain_size=4096)
    disk.base.label = "vm.vmdk"
    s1 = disk.freeze()
    disk.top.label = "vm-000001.vmdk"
    disk.write(0, b"one")
    s2 = disk.freeze()
    disk.top.label = "vm-000002.vmdk"
    stats = disk.release(s1, merge=False)
    assert stats.pending == (s1,) and not stats.merged and s1.alive
    # An automatic merge elsewhere leaves the deferred layer alone.
    stats = disk.release(s2)
    assert stats.merges == (("vm-000002.vmdk", "vm-000001.vmdk"),)
    assert s1.alive and stats.pending == (s1,)
    stats = disk.consolidate()
    assert stats.merges == (("vm-000001.vmdk", "vm.vmdk"),) and stats.pending == ()
    assert disk.chain() == [disk.top] and disk.top.label == "vm.vmdk"
    assert disk.read(0, 3) == b"one"


def test_merge_moves_fewer_grains() -> None:
    disk = LayeredDisk(64 << 20)
    disk.write(0, bytes(range(256)) * 256 * 100)  # 100 grains in the base
    base = disk.freeze()
    disk.write(0, b"x")  # 1 grain in the top
    assert disk.release(base).grains_moved == 1
    disk2 = LayeredDisk(64 << 20)
    disk2.write(0, b"y")
    base2 = disk2.freeze()
    disk2.write(0, b"\x01" * (100 * 65536))
    assert disk2.release(base2).grains_moved == 1
    assert disk2.read(0, 2) == b"\x01\x01"


def test_huge_capacity_costs_nothing_until_written() -> None:
    disk = LayeredDisk(4 << 40)  # 4 TiB
    assert disk.allocated_grains() == 0
    assert disk.read((4 << 40) - 10, 10) == bytes(10)
    disk.write((4 << 40) - 3, b"end")
    s = disk.freeze()
    disk.write(0, b"start")
    assert disk.allocated_grains() == 2 and disk.allocated_grains(s) == 1
    assert disk.release(s).grains_moved == 1
    assert disk.read((4 << 40) - 3, 3) == b"end"


def test_zero_write_over_data_is_stored() -> None:
    disk = LayeredDisk(1 << 20)
    disk.write(0, b"\xff" * 65536)
    s = disk.freeze()
    disk.write(0, bytes(65536))
    assert disk.top.grain_count == 1
    assert disk.read(0, 4) == bytes(4)
    assert disk.read(0, 4, at=s) == b"\xff" * 4


def test_view_is_read_only_block_device() -> None:
    disk = LayeredDisk(1 << 20)
    disk.write(10, b"hello")
    s = disk.freeze()
    disk.write(10, b"HELLO")
    v = disk.view(s)
    assert isinstance(v, BlockDevice)
    assert v.size == 1 << 20 and v.read(10, 5) == b"hello"
    with pytest.raises(StateError, match="read-only"):
        v.write(0, b"x")
    assert disk.view().read(10, 5) == b"HELLO"


def test_memoryview_and_bytearray_writes() -> None:
    disk = LayeredDisk(1 << 20, grain_size=1024)
    disk.write(1000, memoryview(bytearray(b"abcdef")))
    disk.write(2000, bytearray(b"ghi"))
    assert disk.read(1000, 6) == b"abcdef" and disk.read(2000, 3) == b"ghi"


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda d, s: d.read(-1, 1), InvalidInputError),
        (lambda d, s: d.read(0, (1 << 20) + 1), InvalidInputError),
        (lambda d, s: d.read(1 << 20, 1), InvalidInputError),
        (lambda d, s: d.read(0, -1), InvalidInputError),
        (lambda d, s: d.read(True, 1), InvalidInputError),
        (lambda d, s: d.write((1 << 20) - 1, b"ab"), InvalidInputError),
        (lambda d, s: d.write(0, "text"), InvalidInputError),
        (lambda d, s: d.release(d.top), StateError),
        (lambda d, s: d.revert(d.top), StateError),
        (lambda d, s: d.release(LayeredDisk(512).base), InvalidInputError),
        (lambda d, s: d.view("vm.vmdk"), InvalidInputError),
        (lambda d, s: d.read(0, 1, at=LayeredDisk(512).base), InvalidInputError),
        (lambda d, s: d.changed_areas(d.epoch + 1), InvalidInputError),
        (lambda d, s: d.changed_areas(0, start_offset=(1 << 20) + 1), InvalidInputError),
    ],
)
def test_invalid_arguments_leave_state_unchanged(call, exc) -> None:
    disk = LayeredDisk(1 << 20)
    disk.write(0, b"data")
    snap = disk.freeze()
    disk.write(4, b"more")
    layers = [(x, x.grain_count, x.frozen) for x in disk.layers()]
    image = disk.read(0, 1 << 20)
    with pytest.raises(exc):
        call(disk, snap)
    assert [(x, x.grain_count, x.frozen) for x in disk.layers()] == layers
    assert disk.read(0, 1 << 20) == image


def test_release_twice_and_merged_layer_rejected() -> None:
    disk = LayeredDisk(1 << 20)
    s1 = disk.freeze()
    s2 = disk.freeze()
    disk.release(s1)
    assert not s1.alive
    with pytest.raises(InvalidInputError, match="merged away"):
        disk.release(s1)
    disk.revert(s2)
    s3 = disk.freeze()
    disk.revert(s2)
    disk.release(s2)  # two children (s3 branch, top): pending
    with pytest.raises(StateError, match="already released"):
        disk.release(s2)
    with pytest.raises(StateError, match="released"):
        disk.revert(s2)
    assert s3.alive


@pytest.mark.parametrize("capacity", [0, -512, 1000, 1.5])
def test_bad_capacity(capacity) -> None:
    with pytest.raises(InvalidInputError):
        LayeredDisk(capacity)


def test_bad_grain_size() -> None:
    with pytest.raises(InvalidInputError):
        LayeredDisk(1 << 20, grain_size=3 * 512)


def test_changed_areas_coalesce_and_start_offset() -> None:
    disk = LayeredDisk(10 << 20)
    s = disk.freeze()
    disk.write(65536, b"x" * (3 * 65536))  # grains 1..3
    disk.write(8 * 65536 + 5, b"y")  # grain 8
    epoch = s.change_epoch
    assert epoch is not None
    assert disk.changed_areas(epoch) == [(65536, 3 * 65536), (8 * 65536, 65536)]
    assert disk.changed_areas(epoch, start_offset=2 * 65536 + 7) == [
        (2 * 65536 + 7, 2 * 65536 - 7),
        (8 * 65536, 65536),
    ]
    assert disk.changed_areas(epoch, at=s) == disk.changed_areas(epoch)  # over-reports
    assert disk.changed_areas(disk.epoch + 0) != []  # current epoch: writes since the freeze


def test_tracking_reset_refuses_old_epochs() -> None:
    disk = LayeredDisk(1 << 20)
    s = disk.freeze()
    disk.write(0, b"x")
    start = disk.reset_tracking()
    assert disk.tracking_start == start
    assert s.change_epoch is not None
    with pytest.raises(InvalidInputError, match="reset"):
        disk.changed_areas(s.change_epoch)
    disk.write(65536, b"y")
    assert disk.changed_areas(start) == [(65536, 65536)]


def test_allocated_and_public_names() -> None:
    import vcbsim.simulator.disk as pkg

    disk = LayeredDisk(1 << 20, grain_size=4096)
    disk.write(5000, b"x")
    s = disk.freeze()
    disk.write(9000, b"y")
    assert disk.allocated(s) == {1} and disk.allocated() == {1, 2}
    assert disk.allocated_areas() == [(4096, 8192)]
    assert pkg.vmdk.write_vmdk is pkg.write_vmdk
    for name in pkg.__all__:
        assert hasattr(pkg, name), name
