"""Operating-system I/O errors of the datastore turned into the faults a real host answers.

A real ESX host never answers ``SystemError: OSError ENOSPC``: a full VMFS volume gives
``NoDiskSpace`` (datastore name, file), a file larger than the file system allows gives
``FileTooLarge``, a missing file ``FileNotFound``, an unreadable or unwritable one
``CannotAccessFile``, and any other I/O error the generic ``FileFault`` (vSphere API reference,
``vim.fault.FileFault`` and its subtypes, all "since 2.0"). The datastore keeps files on the
machine's own file system (``simulator/_persist.py``), so the same conditions happen for real
(a full disk, a file system without sparse files of 64 TiB) and are answered the same way.
"""

from __future__ import annotations

import errno
from typing import Any

from ._faults import make_fault

__all__ = ["io_fault", "is_space_error", "SPACE_ERRNOS"]

#: errnos that mean "the datastore is full" (a quota counts as full, as VMFS reports it)
SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_ACCESS_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ETXTBSY})


def is_space_error(exc: BaseException) -> bool:
    """True for an ``OSError`` that says the file system is full."""
    return isinstance(exc, OSError) and exc.errno in SPACE_ERRNOS


def io_fault(exc: OSError, *, datastore: str, file: str, size: int | None = None) -> Any:
    """The ``vim.fault.*`` a host answers for ``exc`` on ``file`` (a ``[ds] dir/name`` path).

    ``size`` is the size the file needed (``FileTooLarge.fileSize``), when known.
    """
    code = exc.errno
    reason = exc.strerror or str(exc)
    if code in SPACE_ERRNOS:
        return make_fault(
            "NoDiskSpace",
            f"There is not enough space on the file system for the selected operation "
            f"(datastore '{datastore}', file '{file}'): {reason}.",
            datastore=datastore,
            file=file,
        )
    if code == errno.EFBIG or isinstance(exc, OverflowError):
        fields: dict[str, Any] = {"datastore": datastore, "file": file}
        if size is not None:
            fields["fileSize"] = size
        return make_fault(
            "FileTooLarge",
            f"File '{file}' is larger than the maximum size supported by datastore "
            f"'{datastore}': {reason}.",
            **fields,
        )
    if code == errno.ENOENT:
        return make_fault("FileNotFound", f"File '{file}' was not found.", file=file)
    if code in _ACCESS_ERRNOS:
        return make_fault(
            "CannotAccessFile", f"Cannot access file '{file}': {reason}.", file=file
        )
    return make_fault("FileFault", f"Error accessing file '{file}': {reason}.", file=file)
