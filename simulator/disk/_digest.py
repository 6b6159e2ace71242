"""A canonical digest of a disk image, the same whatever format holds it.

SHA-256 over every 64 KiB grain that holds non-zero data, with its offset: equal for a sparse
and a flat copy of the same disk, so the host (its control API), the conformance kit and a
product can each compute it over their own copy and compare. Defined here, beside the disk
model, so the simulator's control API need not import the kit
(``vcbsim.conformance.image_digest`` is this function).
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["DIGEST_GRAIN", "image_digest"]

DIGEST_GRAIN = 64 * 1024


def image_digest(device: Any) -> str:
    """The digest of ``device`` (``size``, ``read(offset, length)``, optionally
    ``allocated_areas()``; without it every grain is read)."""
    size = int(device.size)
    areas = device.allocated_areas() if hasattr(device, "allocated_areas") else [(0, size)]
    h = hashlib.sha256()
    zero = bytes(DIGEST_GRAIN)
    seen: set[int] = set()
    for off, length in sorted(areas):
        first, end = off - off % DIGEST_GRAIN, min(off + length, size)
        for g in range(first, end, DIGEST_GRAIN):
            if g in seen:
                continue
            seen.add(g)
            data = bytes(device.read(g, min(DIGEST_GRAIN, size - g)))
            if data != zero[: len(data)]:
                h.update(g.to_bytes(8, "little") + data)
    return h.hexdigest()
