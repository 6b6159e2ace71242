"""Layered sparse virtual disks (grains, redo layers, consolidation, CBT) and VMDK files.

Public names are re-exported here; implementation modules start with an underscore.
``vmdk`` is the VMDK module itself, so ``disk.vmdk.write_vmdk(...)`` (the spelling of
docs/architecture.md) and ``disk.write_vmdk(...)`` are the same function.
"""

from . import _vmdk as vmdk
from ._cowd import (
    COWD_GT_ENTRIES,
    COWD_HEADER_SIZE,
    COWD_MAGIC,
    CowdExtent,
    CowdHeader,
    CowdReader,
    cowd_extent,
)
from ._digest import DIGEST_GRAIN, image_digest
from ._model import (
    DEFAULT_GRAIN_SIZE,
    SECTOR_SIZE,
    BlockDevice,
    BlockReader,
    Layer,
    LayeredDisk,
    LayerView,
    MergeStats,
    SparseBlockDevice,
    SparseBlockReader,
    coalesce_grains,
)
from ._persistent import GrainLogError, PersistentLayeredDisk
from ._sesparse import SeSparseExtent, SeSparseReader, sesparse_extent
from ._streamvmdk import stream_optimized
from ._vmdk import (
    ADAPTER_TYPES,
    CREATE_TYPES,
    SPLIT_EXTENT_SIZE,
    VMDK_GRAIN_SIZE,
    descriptor_cid,
    read_vmdk,
    render_descriptor,
    write_vmdk,
)

__all__ = [
    "DIGEST_GRAIN",
    "image_digest",
    "COWD_GT_ENTRIES",
    "COWD_HEADER_SIZE",
    "COWD_MAGIC",
    "CowdExtent",
    "CowdHeader",
    "CowdReader",
    "cowd_extent",
    "SeSparseExtent",
    "SeSparseReader",
    "sesparse_extent",
    "ADAPTER_TYPES",
    "CREATE_TYPES",
    "SPLIT_EXTENT_SIZE",
    "VMDK_GRAIN_SIZE",
    "descriptor_cid",
    "read_vmdk",
    "render_descriptor",
    "vmdk",
    "write_vmdk",
    "stream_optimized",
    "DEFAULT_GRAIN_SIZE",
    "SECTOR_SIZE",
    "BlockDevice",
    "BlockReader",
    "Layer",
    "LayerView",
    "LayeredDisk",
    "MergeStats",
    "SparseBlockDevice",
    "SparseBlockReader",
    "coalesce_grains",
    "GrainLogError",
    "PersistentLayeredDisk",
]
