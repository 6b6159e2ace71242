"""Real VMDK files: hosted sparse extents (``KDMV``) written and read, plus descriptors.

Why real files: backup software under test copies a VM's disks to VMDK files and restores
from them; the kit has to check those files with independent tools (``qemu-img``), and the
reference proxy has to produce files the same tools accept. So the writer follows the VMDK
1.1 "hosted sparse extent" layout exactly: a 512-byte header, an (optional, monolithic only)
embedded descriptor, a grain directory (GD) of 32-bit sector offsets of grain tables (GT),
grain tables of 512 32-bit entries each pointing at 64 KiB grains (128 sectors).

Why only allocated grains: a 2 TiB disk with a few MiB of data must be written in
milliseconds. Grain tables are only created for the parts of the disk that hold data (a GD
entry of 0 means "no table: all zeros", which qemu and VMware's hosted products read as
unallocated), grains that are all zeros are not written at all, and the source is asked for
its allocated areas when it can tell (:class:`SparseBlockReader`).

``render_descriptor`` produces the text descriptors the simulated host serves as datastore
files: base disks (``vmfs``, sparse types) and redo logs (``vmfsSparse`` with a
``-delta.vmdk`` extent, ``seSparse`` with a ``-sesparse.vmdk`` extent), with ``CID`` /
``parentCID`` / ``parentFileNameHint`` linking a redo log to its parent as ESX does.
"""

from __future__ import annotations

import errno
import os
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NoReturn

from .._errors import InvalidInputError
from ._device import BlockReader
from ._model import SECTOR_SIZE, LayeredDisk

__all__ = [
    "VMDK_GRAIN_SIZE",
    "SPLIT_EXTENT_SIZE",
    "ADAPTER_TYPES",
    "CREATE_TYPES",
    "write_vmdk",
    "read_vmdk",
    "render_descriptor",
    "descriptor_cid",
]

VMDK_GRAIN_SIZE = 65536
GRAIN_SECTORS = VMDK_GRAIN_SIZE // SECTOR_SIZE  # 128
GTES_PER_GT = 512
GT_SECTORS = GTES_PER_GT * 4 // SECTOR_SIZE  # 4
# qemu and VMware both split twoGbMaxExtentSparse disks into extents of 2 GiB.
SPLIT_EXTENT_SIZE = 2 << 30
_EMBEDDED_DESC_SECTORS = 20

_MAGIC = 0x564D444B  # "KDMV" little-endian
_FLAG_NL_DETECT = 1 << 0
_FLAG_COMPRESS = 1 << 16
_GD_AT_END = 0xFFFFFFFFFFFFFFFF
_HEADER = struct.Struct("<IIIQQQQIQQQBccccH433x")
assert _HEADER.size == SECTOR_SIZE

ADAPTER_TYPES = ("ide", "buslogic", "lsilogic", "legacyESX")
#: createType -> (extent type keyword, extent file suffix; None: the descriptor itself)
CREATE_TYPES: dict[str, tuple[str, str | None]] = {
    "vmfs": ("VMFS", "-flat.vmdk"),
    "monolithicFlat": ("FLAT", "-flat.vmdk"),
    "monolithicSparse": ("SPARSE", None),
    "twoGbMaxExtentSparse": ("SPARSE", "-s{n:03d}.vmdk"),
    "vmfsSparse": ("VMFSSPARSE", "-delta.vmdk"),
    "seSparse": ("SESPARSE", "-sesparse.vmdk"),
}
_REDO_TYPES = ("vmfsSparse", "seSparse")


def _invalid(what: str, expected: str, got: object, hint: str = "") -> NoReturn:
    raise InvalidInputError(what, expected=expected, got=got, hint=hint)


def descriptor_cid(name: str) -> int:
    """Deterministic content ID for a descriptor named ``name`` (no wall clock, no RNG).

    A redo log's default ``parentCID`` is computed the same way from its parent's name, so
    descriptors rendered with defaults always link up.
    """
    cid = zlib.crc32(name.encode("utf-8")) & 0xFFFFFFFF
    return 0xFFFFFFFE if cid == 0xFFFFFFFF else cid


def _geometry(sectors: int, adapter: str) -> tuple[int, int, int]:
    heads = 16 if adapter == "ide" else 255
    cylinders = min(max(sectors // (heads * 63), 1), 16383 if adapter == "ide" else 65535)
    return cylinders, heads, 63


def _split_extents(sectors: int) -> list[int]:
    step = SPLIT_EXTENT_SIZE // SECTOR_SIZE
    return [min(step, sectors - start) for start in range(0, sectors, step)]


def render_descriptor(
    name: str,
    capacity: int,
    *,
    create_type: str = "vmfs",
    parent: str | None = None,
    cid: int | None = None,
    parent_cid: int | None = None,
    adapter: str = "lsilogic",
    hw_version: int = 7,
) -> str:
    """Text of the descriptor file ``name`` (e.g. ``vm.vmdk``, ``vm-000001.vmdk``).

    ``create_type`` picks the extent line: ``vmfs`` (``<stem>-flat.vmdk``), ``vmfsSparse``
    (``<stem>-delta.vmdk``), ``seSparse`` (``<stem>-sesparse.vmdk``), ``monolithicSparse``,
    ``monolithicFlat`` or ``twoGbMaxExtentSparse`` (``<stem>-s001.vmdk`` ...). Redo-log
    types need ``parent`` (the parent descriptor's file name: ``parentFileNameHint``).
    ``cid`` / ``parent_cid`` default to :func:`descriptor_cid` of ``name`` / ``parent``.
    """
    if not isinstance(name, str) or not name.endswith(".vmdk") or "/" in name or '"' in name:
        _invalid("name", "a file name ending in .vmdk, without directories or quotes", name)
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0:
        _invalid("capacity", "a positive int (bytes)", capacity)
    if capacity % SECTOR_SIZE:
        _invalid("capacity", "a multiple of 512 bytes", capacity)
    if create_type not in CREATE_TYPES:
        _invalid("create_type", f"one of {sorted(CREATE_TYPES)}", create_type)
    if adapter not in ADAPTER_TYPES:
        _invalid("adapter", f"one of {ADAPTER_TYPES}", adapter)
    if create_type in _REDO_TYPES and not parent:
        _invalid(
            "parent",
            "the parent descriptor's file name",
            parent,
            f"a {create_type} redo log always has a parent",
        )
    if parent is not None and (not isinstance(parent, str) or '"' in parent):
        _invalid("parent", "a file name without quotes", parent)
    for what, value in (("cid", cid), ("parent_cid", parent_cid)):
        if value is not None and (not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF):
            _invalid(what, "a 32-bit unsigned int", value)
    sectors = capacity // SECTOR_SIZE
    stem = name[: -len(".vmdk")]
    keyword, suffix = CREATE_TYPES[create_type]
    if create_type == "twoGbMaxExtentSparse":
        extents = [
            f'RW {n} SPARSE "{stem}{(suffix or "").format(n=i + 1)}"'
            for i, n in enumerate(_split_extents(sectors))
        ]
    elif suffix is None:
        extents = [f'RW {sectors} {keyword} "{name}"']
    elif keyword == "FLAT":
        extents = [f'RW {sectors} FLAT "{stem}{suffix}" 0']
    else:
        extents = [f'RW {sectors} {keyword} "{stem}{suffix}"']
    own_cid = descriptor_cid(name) if cid is None else cid
    if parent:
        pcid = descriptor_cid(parent) if parent_cid is None else parent_cid
    else:
        pcid = 0xFFFFFFFF if parent_cid is None else parent_cid
    lines = [
        "# Disk DescriptorFile",
        "version=1",
        'encoding="UTF-8"',
        f"CID={own_cid:08x}",
        f"parentCID={pcid:08x}",
        'isNativeSnapshot="no"',
        f'createType="{create_type}"',
    ]
    if parent:
        lines.append(f'parentFileNameHint="{parent}"')
    lines += ["", "# Extent description", *extents, "", "# The Disk Data Base", "#DDB", ""]
    if parent:
        lines.append(f'ddb.longContentID = "{own_cid:08x}{zlib.crc32(stem.encode()):08x}"')
    else:
        cyl, heads, secs = _geometry(sectors, adapter)
        lines += [
            f'ddb.adapterType = "{adapter}"',
            f'ddb.geometry.cylinders = "{cyl}"',
            f'ddb.geometry.heads = "{heads}"',
            f'ddb.geometry.sectors = "{secs}"',
            f'ddb.virtualHWVersion = "{hw_version}"',
        ]
    return "\n".join(lines) + "\n"


# -- writing ------------------------------------------------------------------------------


def _data_grains(device: BlockReader) -> Iterator[tuple[int, int]]:
    """Yield ``(first, last_exclusive)`` VMDK-grain runs that may hold data, ascending."""
    size = device.size
    areas_fn = getattr(device, "allocated_areas", None)
    areas: Iterable[tuple[int, int]]
    areas = areas_fn() if callable(areas_fn) else [(0, size)]
    run: tuple[int, int] | None = None
    for off, length in sorted(areas):
        if length <= 0:
            continue
        a = off // VMDK_GRAIN_SIZE
        b = (min(off + length, size) + VMDK_GRAIN_SIZE - 1) // VMDK_GRAIN_SIZE
        if run is not None and a <= run[1]:
            run = (run[0], max(run[1], b))
            continue
        if run is not None:
            yield run
        run = (a, b)
    if run is not None:
        yield run


class _ExtentWriter:
    """Lays out one hosted sparse extent file and streams its grains in ascending order."""

    def __init__(
        self,
        path: Path,
        sectors: int,
        candidate_gts: list[int],
        descriptor: bytes | None,
    ) -> None:
        self.path = path
        self.sectors = sectors
        num_gtes = -(-sectors // GRAIN_SECTORS)
        self.num_gdes = -(-num_gtes // GTES_PER_GT)
        self.desc_sectors = 0
        if descriptor is not None:
            self.desc_sectors = max(_EMBEDDED_DESC_SECTORS, -(-len(descriptor) // SECTOR_SIZE))
        self.descriptor = descriptor
        self.gd_offset = 1 + self.desc_sectors
        gd_sectors = -(-self.num_gdes * 4 // SECTOR_SIZE)
        first_gt = self.gd_offset + gd_sectors
        self.gt_offset = {gt: first_gt + i * GT_SECTORS for i, gt in enumerate(candidate_gts)}
        meta_end = first_gt + len(candidate_gts) * GT_SECTORS
        # Align the first grain to a grain boundary when there is data (as VMware does).
        self.overhead = -(-meta_end // GRAIN_SECTORS) * GRAIN_SECTORS if candidate_gts else meta_end
        self.tables: dict[int, list[int]] = {}
        self.next_sector = self.overhead
        # Consecutive grains are written with one pwritev per batch (fewer syscalls).
        self.pending: list[bytes | memoryview] = []
        self.pending_at = self.overhead
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def add_grain(self, grain: int, data: bytes | memoryview) -> None:
        if self.next_sector + GRAIN_SECTORS > 0xFFFFFFFF:
            # Grain table entries are 32-bit sector numbers: one extent holds < 2 TiB of data.
            _invalid(
                "device",
                "less than 2 TiB of data per sparse extent",
                f"{self.path.name} would pass sector 2**32",
                "use split=True (2 GiB extents)",
            )
        gt, gte = divmod(grain, GTES_PER_GT)
        table = self.tables.get(gt)
        if table is None:
            table = self.tables[gt] = [0] * GTES_PER_GT
        table[gte] = self.next_sector
        self.pending.append(data)
        self.next_sector += GRAIN_SECTORS
        if len(self.pending) >= 256:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            os.pwritev(self.fd, self.pending, self.pending_at * SECTOR_SIZE)
            self.pending = []
        self.pending_at = self.next_sector

    def close(self) -> None:
        try:
            self.flush()
            header = _HEADER.pack(
                _MAGIC,
                1,
                _FLAG_NL_DETECT,
                self.sectors,
                GRAIN_SECTORS,
                1 if self.descriptor is not None else 0,
                self.desc_sectors,
                GTES_PER_GT,
                0,
                self.gd_offset,
                self.overhead,
                0,
                b"\n",
                b" ",
                b"\r",
                b"\n",
                0,
            )
            meta = bytearray(self.overhead * SECTOR_SIZE)
            meta[0:SECTOR_SIZE] = header
            if self.descriptor is not None:
                meta[SECTOR_SIZE : SECTOR_SIZE + len(self.descriptor)] = self.descriptor
            gd = [0] * self.num_gdes
            for gt, table in self.tables.items():
                sector = self.gt_offset[gt]
                gd[gt] = sector
                start = sector * SECTOR_SIZE
                meta[start : start + GT_SECTORS * SECTOR_SIZE] = struct.pack(
                    f"<{GTES_PER_GT}I", *table
                )
            gd_start = self.gd_offset * SECTOR_SIZE
            meta[gd_start : gd_start + 4 * self.num_gdes] = struct.pack(f"<{self.num_gdes}I", *gd)
            os.pwrite(self.fd, meta, 0)
            os.ftruncate(self.fd, self.next_sector * SECTOR_SIZE)
        finally:
            os.close(self.fd)


def write_vmdk(
    device: BlockReader,
    path: str | os.PathLike[str],
    *,
    split: bool = True,
    adapter: str = "lsilogic",
) -> list[Path]:
    """Write ``device`` as a sparse VMDK at ``path``; return the files written, descriptor first.

    ``split=True`` writes ``twoGbMaxExtentSparse`` (a text descriptor ``<name>.vmdk`` and
    extents ``<name>-s001.vmdk`` ... of at most 2 GiB each), ``split=False`` one
    ``monolithicSparse`` file with an embedded descriptor. Only grains holding non-zero
    data are stored; a device offering ``allocated_areas()`` (a disk view) is only read
    there, so the time grows with the data, not the capacity.
    """
    size = getattr(device, "size", None)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        _invalid("device", "a BlockReader (size, read) with a positive int size", device)
    if size % SECTOR_SIZE:
        _invalid("device.size", "a multiple of 512 bytes", size)
    if adapter not in ADAPTER_TYPES:
        _invalid("adapter", f"one of {ADAPTER_TYPES}", adapter)
    out = Path(path)
    if out.suffix != ".vmdk":
        _invalid("path", "a file name ending in .vmdk", str(path))
    if not out.parent.is_dir():
        _invalid("path", "a file in an existing directory", str(path))
    sectors = size // SECTOR_SIZE
    name = out.name
    stem = out.stem
    runs = list(_data_grains(device))

    if split:
        extent_sizes = _split_extents(sectors)
        grains_per_extent = SPLIT_EXTENT_SIZE // VMDK_GRAIN_SIZE
        ext_paths = [out.with_name(f"{stem}-s{i + 1:03d}.vmdk") for i in range(len(extent_sizes))]
        descriptor_text = render_descriptor(
            name, size, create_type="twoGbMaxExtentSparse", adapter=adapter
        )
        out.write_text(descriptor_text, encoding="utf-8")
    else:
        extent_sizes = [sectors]
        grains_per_extent = -(-size // VMDK_GRAIN_SIZE)
        ext_paths = [out]
        descriptor_text = render_descriptor(
            name, size, create_type="monolithicSparse", adapter=adapter
        )

    # Grain tables that may be needed, per extent (from the allocated runs).
    candidates: list[set[int]] = [set() for _ in extent_sizes]
    grains_per_gt_span = GTES_PER_GT
    for a, b in runs:
        g = a
        while g < b:
            ext, local = divmod(g, grains_per_extent)
            gt = local // grains_per_gt_span
            candidates[ext].add(gt)
            g = ext * grains_per_extent + (gt + 1) * grains_per_gt_span
            g = min(g, (ext + 1) * grains_per_extent)

    writers: dict[int, _ExtentWriter] = {}

    def writer(ext: int) -> _ExtentWriter:
        w = writers.get(ext)
        if w is None:
            w = writers[ext] = _ExtentWriter(
                ext_paths[ext],
                extent_sizes[ext],
                sorted(candidates[ext]),
                None if split else descriptor_text.encode("utf-8"),
            )
        return w

    zero = bytes(VMDK_GRAIN_SIZE)
    batch = 256  # grains per device read (16 MiB)
    try:
        for a, b in runs:
            for start in range(a, b, batch):
                stop = min(b, start + batch)
                off = start * VMDK_GRAIN_SIZE
                length = min(stop * VMDK_GRAIN_SIZE, size) - off
                buf = memoryview(device.read(off, length))
                for g in range(start, stop):
                    rel = (g - start) * VMDK_GRAIN_SIZE
                    chunk = buf[rel : rel + VMDK_GRAIN_SIZE]
                    if chunk == zero[: len(chunk)]:
                        continue
                    if len(chunk) < VMDK_GRAIN_SIZE:
                        chunk = memoryview(bytes(chunk) + zero[len(chunk) :])
                    ext, local = divmod(g, grains_per_extent)
                    writer(ext).add_grain(local, chunk)
        for ext in range(len(extent_sizes)):
            writer(ext)  # every extent file must exist, even an empty one
    finally:
        for w in writers.values():
            w.close()
    return ([out] if split else []) + ext_paths


# -- reading ------------------------------------------------------------------------------

_EXTENT_RE = re.compile(
    r'^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)(?:\s+"([^"]*)")?(?:\s+(\d+))?\s*$'
)


def _parse_descriptor(text: str) -> tuple[dict[str, str], list[tuple[int, str, str, int]]]:
    fields: dict[str, str] = {}
    extents: list[tuple[int, str, str, int]] = []
    for line in text.splitlines():
        m = _EXTENT_RE.match(line)
        if m:
            extents.append((int(m.group(2)), m.group(3), m.group(4) or "", int(m.group(5) or 0)))
            continue
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            fields[key.strip()] = value.strip().strip('"')
    return fields, extents


def _check_no_parent(fields: dict[str, str], path: Path) -> None:
    pcid = fields.get("parentCID", "ffffffff").lower()
    if pcid != "ffffffff" or fields.get("parentFileNameHint"):
        _invalid(
            "path",
            "a VMDK without a parent (a base disk)",
            str(path),
            f"it is a redo log of {fields.get('parentFileNameHint', '?')!r}; read the chain "
            "with read_vmdk on each file and layer them",
        )


def _read_sparse_extent(disk: LayeredDisk, path: Path, base: int, sectors: int) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        raw = os.pread(fd, SECTOR_SIZE, 0)
        if len(raw) < SECTOR_SIZE:
            _invalid("extent", "a sparse extent with a 512-byte header", str(path))
        (
            magic,
            version,
            flags,
            capacity,
            grain_sectors,
            _desc_off,
            _desc_size,
            gtes,
            _rgd,
            gd_offset,
            _overhead,
            _unclean,
            *_chars,
            compress,
        ) = _HEADER.unpack(raw)
        if magic != _MAGIC:
            _invalid("extent", "a hosted sparse extent (magic KDMV)", str(path))
        if gd_offset == _GD_AT_END:
            # streamOptimized: the real header is the footer, 1024 bytes before the end.
            end = os.fstat(fd).st_size
            footer = _HEADER.unpack(os.pread(fd, SECTOR_SIZE, end - 2 * SECTOR_SIZE))
            if footer[0] != _MAGIC:
                _invalid("extent", "a streamOptimized extent with a footer", str(path))
            gd_offset = footer[9]
        compressed = bool(flags & _FLAG_COMPRESS)
        if version not in (1, 2, 3) or compress not in (0, 1) or compressed != (compress == 1):
            _invalid(
                "extent",
                "a hosted sparse extent (version 1-3, uncompressed or deflate)",
                f"{path}: version {version}, flags {flags:#x}, compression {compress}",
            )
        if gd_offset == _GD_AT_END or grain_sectors <= 0 or gtes <= 0:
            _invalid("extent", "a grain directory and sane grain sizes", str(path))
        capacity = min(capacity, sectors)
        grain_bytes = grain_sectors * SECTOR_SIZE
        span = grain_sectors * gtes
        num_gdes = -(-capacity // span)
        gd = struct.unpack(f"<{num_gdes}I", os.pread(fd, 4 * num_gdes, gd_offset * SECTOR_SIZE))
        limit = capacity * SECTOR_SIZE
        zero = bytes(grain_bytes)
        for gdi, gt_sector in enumerate(gd):
            if not gt_sector:
                continue
            table = struct.unpack(f"<{gtes}I", os.pread(fd, 4 * gtes, gt_sector * SECTOR_SIZE))
            for gti, sector in enumerate(table):
                if sector <= 1:  # 0: unallocated, 1: zeroed grain (zero-grain flag)
                    continue
                rel = (gdi * gtes + gti) * grain_bytes
                if rel >= limit:
                    break
                n = min(grain_bytes, limit - rel)
                if compressed:
                    # Grain marker: uint64 lba, uint32 size, then zlib-deflated data.
                    _lba, csize = struct.unpack("<QI", os.pread(fd, 12, sector * SECTOR_SIZE))
                    packed = os.pread(fd, csize, sector * SECTOR_SIZE + 12)
                    data = zlib.decompress(packed)[:n]
                else:
                    data = os.pread(fd, n, sector * SECTOR_SIZE)
                if data != zero[: len(data)]:
                    disk.write(base + rel, data)
    finally:
        os.close(fd)


def _read_flat_extent(disk: LayeredDisk, path: Path, base: int, sectors: int, skip: int) -> None:
    """Copy a raw extent, skipping holes (SEEK_DATA) and all-zero grains, so it stays sparse."""
    chunk = 1 << 20
    gsize = disk.grain_size
    zero = bytes(max(chunk, gsize))
    total = sectors * SECTOR_SIZE
    start = skip * SECTOR_SIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        while pos < total:
            try:
                data_at = os.lseek(fd, start + pos, os.SEEK_DATA) - start
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole from here to the end of file
                    break
                data_at = pos  # SEEK_DATA unsupported here: read everything
            if data_at >= total:
                break
            if data_at > pos:
                pos = data_at - data_at % gsize
            data = os.pread(fd, min(chunk, total - pos), start + pos)
            if not data:
                break
            if data != zero[: len(data)]:
                view = memoryview(data)
                for rel in range(0, len(data), gsize):
                    piece = view[rel : rel + gsize]
                    if piece != zero[: len(piece)]:
                        disk.write(base + pos + rel, piece)
            pos += len(data)
    finally:
        os.close(fd)


def read_vmdk(path: str | os.PathLike[str]) -> LayeredDisk:
    """Read a VMDK (sparse, split sparse or flat; no parent) into a new :class:`LayeredDisk`.

    Used for restores: the result is an ordinary disk whose base holds the file's data
    (zero grains stay unallocated). streamOptimized (deflate) extents are read too; redo
    logs (files with a parent) and VMFSSPARSE/SESPARSE extents are refused with a clear
    error.
    """
    src = Path(path)
    if not src.is_file():
        _invalid("path", "an existing VMDK file", str(path))
    with open(src, "rb") as f:
        head = f.read(SECTOR_SIZE)
    if len(head) == SECTOR_SIZE and struct.unpack_from("<I", head)[0] == _MAGIC:
        fields_header = _HEADER.unpack(head)
        capacity, desc_off, desc_size = fields_header[3], fields_header[5], fields_header[6]
        if desc_off:
            with open(src, "rb") as f:
                f.seek(desc_off * SECTOR_SIZE)
                text = f.read(desc_size * SECTOR_SIZE).split(b"\0", 1)[0].decode("utf-8", "replace")
            _check_no_parent(_parse_descriptor(text)[0], src)
        if capacity <= 0:
            _invalid("path", "a sparse extent with a positive capacity", str(path))
        disk = LayeredDisk(capacity * SECTOR_SIZE)
        _read_sparse_extent(disk, src, 0, capacity)
        return disk
    if src.stat().st_size > 1 << 20:
        _invalid("path", "a VMDK descriptor or sparse extent", str(path))
    text = src.read_text(encoding="utf-8", errors="replace")
    fields, extents = _parse_descriptor(text)
    if not extents or "createType" not in fields:
        _invalid("path", "a VMDK descriptor with createType and extent lines", str(path))
    _check_no_parent(fields, src)
    total = sum(n for n, *_ in extents)
    if total <= 0:
        _invalid("path", "extents with a positive total size", str(path))
    disk = LayeredDisk(total * SECTOR_SIZE)
    base = 0
    for n, kind, fname, skip in extents:
        file = src.with_name(fname) if fname else src
        if kind == "SPARSE":
            _read_sparse_extent(disk, file, base, n)
        elif kind in ("FLAT", "VMFS"):
            _read_flat_extent(disk, file, base, n, skip)
        elif kind != "ZERO":
            _invalid(
                "extent type",
                "SPARSE, FLAT, VMFS or ZERO",
                kind,
                f"in {src.name}; VMFSSPARSE/SESPARSE redo logs only exist on a host",
            )
        base += n * SECTOR_SIZE
    return disk
