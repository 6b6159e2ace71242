"""The NBD export a hot-added disk becomes in the proxy's guest (``simulator/_nbd.py``): the
fixed newstyle handshake (GO, EXPORT_NAME, LIST, INFO, ABORT, unsupported options), reads,
writes refused on a read-only export (EPERM), out-of-range and oversized requests, the
connection cap, a device error as the client's NBD error, and the close that cuts a client
off; read by the project's own client and by real ones (``qemu-img``, ``nbdinfo``)."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from vcbsim.reference._nbdclient import NbdDisk, NbdError
from vcbsim.simulator import InvalidInputError, SimRandom
from vcbsim.simulator._nbd import (
    IHAVEOPT,
    NBDMAGIC,
    OPT_REPLY_MAGIC,
    REQUEST_MAGIC,
    SIMPLE_REPLY_MAGIC,
    NbdExport,
)
from vcbsim.simulator.disk import LayeredDisk

MiB = 1 << 20


@pytest.fixture
def sockdir() -> Iterator[Path]:
    # a short directory: a Unix socket's path holds 107 bytes, pytest's tmp_path may not fit
    where = Path(tempfile.mkdtemp(prefix="nbdt-"))
    yield where
    shutil.rmtree(where, ignore_errors=True)


def _disk(seed: int = 1) -> LayeredDisk:
    disk = LayeredDisk(8 * MiB)
    rnd = SimRandom(seed)
    for off in (0, 3 * MiB + 17, 7 * MiB):
        disk.write(off, rnd.randbytes(70_000))
    return disk


def _recv(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "the server closed the connection"
        buf += chunk
    return buf


def _hello(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    magic, opt, flags = struct.unpack(">QQH", _recv(s, 18))
    assert (magic, opt) == (NBDMAGIC, IHAVEOPT) and flags & 1  # fixed newstyle
    s.sendall(struct.pack(">I", 3))
    return s


def _option(s: socket.socket, option: int, data: bytes = b"") -> list[tuple[int, bytes]]:
    s.sendall(struct.pack(">QII", IHAVEOPT, option, len(data)) + data)
    replies = []
    while True:
        magic, opt, kind, length = struct.unpack(">QIII", _recv(s, 20))
        assert magic == OPT_REPLY_MAGIC and opt == option
        replies.append((kind, _recv(s, length)))
        if kind == 1 or kind & (1 << 31):
            return replies


def test_reads_equal_the_device_and_writes_are_refused_on_a_read_only_export(sockdir: Path) -> None:
    disk = _disk()
    view = disk.view(disk.freeze())
    with NbdExport(sockdir / "scsi0:1", "scsi0:1", view) as export, NbdDisk(sockdir / "scsi0:1", "scsi0:1") as c:
        assert (c.size, c.read_only, c.max_request) == (8 * MiB, True, 32 * MiB)
        assert c.read(0, c.size) == view.read(0, view.size)
        assert c.read(3 * MiB + 10, 100) == view.read(3 * MiB + 10, 100)
        with pytest.raises(NbdError, match="EPERM") as err:
            c.write(0, b"x" * 512)
        assert err.value.errno == 1
        c.flush()
        assert c.read(0, 4) == view.read(0, 4)  # the connection is still good after an error
        assert export.bytes_read == 8 * MiB + 104 and export.bytes_written == 0


def test_a_writable_export_writes_through_and_flushes(sockdir: Path) -> None:
    disk = LayeredDisk(4 * MiB)
    flushed: list[int] = []

    class Device:
        size = disk.capacity

        def read(self, offset: int, length: int) -> bytes:
            return disk.read(offset, length)

        def write(self, offset: int, data: bytes) -> None:
            disk.write(offset, data)

        def flush(self) -> None:
            flushed.append(1)

    with NbdExport(sockdir / "d", "d", Device(), writable=True), NbdDisk(sockdir / "d", "d") as c:
        assert not c.read_only
        c.write(MiB - 3, b"restored" * 1000)
        c.flush()
        assert disk.read(MiB - 3, 8000) == b"restored" * 1000 and flushed == [1]
        with pytest.raises(NbdError, match="ENOSPC"):  # past the end of the export
            c._request(1, 4 * MiB - 2, 4, b"abcd")


def test_out_of_range_and_oversized_requests_are_errors_not_crashes(sockdir: Path) -> None:
    disk = _disk()
    with NbdExport(sockdir / "e", "e", disk.view(disk.top), max_request=64 * 1024) as export:
        with NbdDisk(sockdir / "e", "e") as c:
            assert c.max_request == 64 * 1024
            with pytest.raises(NbdError, match="EINVAL"):
                c._request(0, 8 * MiB - 10, 20)  # past the end
            with pytest.raises(NbdError, match="EINVAL"):
                c._request(0, 0, 64 * 1024 + 1)  # longer than the advertised maximum
            assert len(c.read(0, 200_000)) == 200_000  # the client splits at the maximum
        # an oversized write payload is not read: EINVAL, then the server hangs up
        s = _hello(sockdir / "e")
        kinds = [k for k, _ in _option(s, 7, struct.pack(">I", 1) + b"e" + struct.pack(">H", 0))]
        assert kinds[-1] == 1
        s.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, 1, 9, 0, 1 << 30))
        magic, error, handle = struct.unpack(">IIQ", _recv(s, 16))
        assert (magic, error, handle) == (SIMPLE_REPLY_MAGIC, 22, 9)
        assert s.recv(1) == b""
        s.close()
        assert not export.closed


def test_the_handshake_options(sockdir: Path) -> None:
    disk = _disk()
    with NbdExport(sockdir / "scsi0:2", "scsi0:2", disk.view(disk.top)):
        s = _hello(sockdir / "scsi0:2")
        (server, ack) = _option(s, 3)  # NBD_OPT_LIST
        assert server[0] == 2 and server[1] == struct.pack(">I", 7) + b"scsi0:2" and ack[0] == 1
        assert _option(s, 8)[0][0] == (1 << 31) + 1  # STRUCTURED_REPLY: unsupported, simple replies
        unknown = _option(s, 6, struct.pack(">I", 4) + b"nope" + struct.pack(">H", 0))
        assert unknown[-1][0] == (1 << 31) + 6 and b"scsi0:2" in unknown[-1][1]
        info = _option(s, 6, struct.pack(">I", 0) + struct.pack(">H", 0))  # INFO of the default export
        size, flags = struct.unpack(">QH", info[0][1][2:12])
        assert (size, flags & 2) == (8 * MiB, 2)
        assert _option(s, 2) == [(1, b"")]  # ABORT is acknowledged, then the server hangs up
        assert s.recv(1) == b""
        s.close()
        s = _hello(sockdir / "scsi0:2")  # the old NBD_OPT_EXPORT_NAME: size, flags, no zeroes
        s.sendall(struct.pack(">QII", IHAVEOPT, 1, 7) + b"scsi0:2")
        size, flags = struct.unpack(">QH", _recv(s, 10))
        assert size == 8 * MiB and flags & 2
        s.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, 0, 5, 0, 16))
        assert struct.unpack(">IIQ", _recv(s, 16)) == (SIMPLE_REPLY_MAGIC, 0, 5)
        assert _recv(s, 16) == disk.read(0, 16)
        s.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, 2, 6, 0, 0))  # DISC
        assert s.recv(1) == b""
        s.close()


def test_close_removes_the_device_and_cuts_a_connected_client_off(sockdir: Path) -> None:
    disk = _disk()
    export = NbdExport(sockdir / "scsi0:1", "scsi0:1", disk.view(disk.top))
    c = NbdDisk(sockdir / "scsi0:1", "scsi0:1")
    assert c.read(0, 10) == disk.read(0, 10) and export.connections == 1
    export.close()
    assert not (sockdir / "scsi0:1").exists()
    with pytest.raises(NbdError, match="went away"):
        c.read(0, 10)
    c.close()
    with pytest.raises(NbdError, match="cannot open"):
        NbdDisk(sockdir / "scsi0:1", "scsi0:1")
    export.close()  # twice is fine


def test_the_connection_cap_and_a_device_error(sockdir: Path) -> None:
    class Failing:
        size = 1 * MiB

        def read(self, offset: int, length: int) -> bytes:
            msg = "the LUN is gone"
            raise OSError(5, msg)

    errors: list[str] = []
    with NbdExport(sockdir / "f", "f", Failing(), max_connections=1, on_error=errors.append) as export:
        first = NbdDisk(sockdir / "f", "f")
        with pytest.raises(NbdError):
            NbdDisk(sockdir / "f", "f", timeout=5)  # closed at once: one client at a time
        with pytest.raises(NbdError, match="EIO"):
            first.read(0, 512)
        assert errors and "LUN is gone" in errors[0] and export.refused == 1
        first.close()


def test_bad_arguments_are_one_clear_line(sockdir: Path) -> None:
    disk = _disk()
    with pytest.raises(InvalidInputError, match="107 bytes"):
        NbdExport(sockdir / ("x" * 120), "x", disk.view(disk.top))
    class ReadOnly:
        size = MiB

        def read(self, offset: int, length: int) -> bytes:
            return bytes(length)

    with pytest.raises(InvalidInputError, match="write"):
        NbdExport(sockdir / "w", "w", ReadOnly(), writable=True)
    (sockdir / "plain").write_text("not a socket")
    with pytest.raises(Exception, match="not a socket"):
        NbdExport(sockdir / "plain", "plain", disk.view(disk.top))


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")
def test_qemu_img_reads_the_export_byte_for_byte(sockdir: Path) -> None:
    disk = _disk(seed=5)
    view = disk.view(disk.freeze())
    with NbdExport(sockdir / "scsi0:1", "scsi0:1", view):
        out = sockdir / "copy.raw"
        subprocess.run(["qemu-img", "convert", "-O", "raw", f"nbd+unix:///scsi0:1?socket={sockdir}/scsi0:1",
                        str(out)], check=True, capture_output=True, timeout=60)
        assert out.read_bytes() == view.read(0, view.size)


@pytest.mark.skipif(shutil.which("nbdinfo") is None, reason="nbdinfo (libnbd-bin) is not installed")
def test_nbdinfo_and_nbdcopy_see_the_export(sockdir: Path) -> None:
    disk = _disk(seed=6)
    view = disk.view(disk.top)
    with NbdExport(sockdir / "scsi0:3", "scsi0:3", view):
        uri = f"nbd+unix:///scsi0:3?socket={sockdir}/scsi0:3"
        info = subprocess.run(["nbdinfo", "--json", uri], check=True, capture_output=True, text=True, timeout=30)
        assert '"export-size": 8388608' in info.stdout and '"is_read_only": true' in info.stdout
        listed = subprocess.run(["nbdinfo", "--list", f"nbd+unix:///?socket={sockdir}/scsi0:3"], check=True,
                                capture_output=True, text=True, timeout=30)
        assert 'export="scsi0:3"' in listed.stdout
        if shutil.which("nbdcopy") is not None:
            out = sockdir / "copy.raw"
            subprocess.run(["nbdcopy", uri, str(out)], check=True, capture_output=True, timeout=60)
            assert out.read_bytes() == view.read(0, view.size)
