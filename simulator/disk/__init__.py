"""Layered sparse virtual disks (grains, redo layers, consolidation, CBT) and VMDK files.

Public names are re-exported here; implementation modules start with an underscore.
"""

from ._model import (
    DEFAULT_GRAIN_SIZE,
    SECTOR_SIZE,
    BlockDevice,
    Layer,
    LayeredDisk,
    LayerView,
    MergeStats,
    SparseBlockDevice,
    coalesce_grains,
)

__all__ = [
    "DEFAULT_GRAIN_SIZE",
    "SECTOR_SIZE",
    "BlockDevice",
    "Layer",
    "LayerView",
    "LayeredDisk",
    "MergeStats",
    "SparseBlockDevice",
    "coalesce_grains",
]
