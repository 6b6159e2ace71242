r"""The embedded default inventory: what ``vcbsim demo``, the REPL and the CLI start from.

* ``win2003-sql`` — Windows Server 2003 with VMware Tools running and VSS: disk 1 holds
  ``C:``; disk 2 holds ``D:`` (data) and a volume with **no drive letter** (``RECOVERY``),
  which VCB cannot mount (seed: "make sure that each volume on a virtual disk has a drive
  letter"). Two quiescing scripts in ``backupScripts.d`` log their argument to
  ``C:\vcb-quiesce.log``, and the legacy pre-freeze/post-thaw pair sits in ``C:\Windows``.
* ``rhel5-web`` — Red Hat Enterprise Linux 5 with the SYNC driver: ``/`` and ``/var/www``
  on one disk, and ``/usr/sbin/pre-freeze-script`` / ``post-thaw-script``.

Addresses are from the documentation range 192.0.2.0/24: no traffic ever goes there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._host import Host

__all__ = ["populate_demo", "DEMO_WINDOWS", "DEMO_LINUX"]

DEMO_WINDOWS = "win2003-sql"
DEMO_LINUX = "rhel5-web"

GiB = 1024**3

_WIN_SCRIPTS_D = r"C:\Program Files\VMware\VMware Tools\backupScripts.d"


def _put(fs: Any, path: str, data: str | bytes) -> None:
    """Write a file, creating its directory first (as an installer would)."""
    sep = "\\" if "\\" in path else "/"
    parent = path.rsplit(sep, 1)[0]
    if parent and parent not in ("C:", "D:") and not fs.exists(parent):
        fs.mkdir(parent)
    fs.write_bytes(path, data.encode() if isinstance(data, str) else data)


def populate_demo(host: Host) -> None:
    """Add the two demo VMs, their volumes, files and quiescing scripts to ``host``."""
    win = host.add_vm(
        DEMO_WINDOWS,
        os_family="windows",
        disks=[8 * GiB, 4 * GiB],
        providers=("vss",),
        ip_address="192.0.2.11",
        hostname="win2003-sql.vcbsim.test",
    )
    fs = host.add_guest_volumes(
        win,
        {0: [(None, "C", "SYSTEM")], 1: [(3 * GiB, "D", "DATA"), (None, None, "RECOVERY")]},
    )
    _put(fs, r"C:\boot.ini", "[boot loader]\r\ntimeout=30\r\n")
    _put(fs, r"C:\Windows\system.ini", "[drivers]\r\nwave=mmdrv.dll\r\n")
    _put(fs,
        r"C:\Windows\pre-freeze-script.bat",
        "@echo off\r\nREM legacy pre-freeze script (ESX 3.5 U1 and earlier)\r\necho legacy-pre %1 >> C:\\vcb-quiesce.log\r\n",
    )
    _put(fs,
        r"C:\Windows\post-thaw-script.bat",
        "@echo off\r\nREM legacy post-thaw script\r\necho legacy-post %1 >> C:\\vcb-quiesce.log\r\n",
    )
    _put(fs,
        _WIN_SCRIPTS_D + r"\10-sql-flush.bat",
        "@echo off\r\nREM flush SQL Server buffers before the snapshot\r\necho sql %1 >> C:\\vcb-quiesce.log\r\n[freeze] sleep 2\r\n",
    )
    _put(fs,
        _WIN_SCRIPTS_D + r"\20-app-pause.bat",
        "@echo off\r\necho app %1 >> C:\\vcb-quiesce.log\r\n",
    )
    _put(fs, r"D:\Data\orders.csv", "id,item,qty\r\n1,disk,4\r\n2,tape,12\r\n")
    _put(fs, r"D:\Data\Reports\2008-Q2.txt", "Quarterly report: backups completed 91 of 91.\r\n")
    _put(fs, r"D:\Data\db\sales.mdf", bytes(range(256)) * 1024)
    recovery = fs.unmounted[0]
    recovery.filesystem.write_file("/RECOVERY.TXT", b"OEM recovery image - no drive letter\r\n")

    lin = host.add_vm(
        DEMO_LINUX,
        os_family="linux",
        disks=[8 * GiB],
        providers=("sync",),
        ip_address="192.0.2.12",
        hostname="rhel5-web.vcbsim.test",
    )
    lfs = host.add_guest_volumes(lin, {0: [(6 * GiB, "/", "ROOT"), (None, "/var/www", "WWW")]})
    _put(lfs, "/etc/hostname", "rhel5-web\n")
    lfs.mkdir("/var/log")
    _put(lfs, "/usr/sbin/pre-freeze-script", "#!/bin/sh\necho pre $1 >> /var/log/vcb-quiesce.log\n")
    _put(lfs, "/usr/sbin/post-thaw-script", "#!/bin/sh\necho post $1 >> /var/log/vcb-quiesce.log\n")
    _put(lfs, "/var/www/index.html", "<html><body>rhel5-web</body></html>\n")
