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

__all__ = ["populate_demo", "populate_era_demo", "INVENTORIES", "DEMO_WINDOWS", "DEMO_LINUX"]

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


# -- the era inventory (issue 17): one VM per era-specific case ---------------------------------

ERA_XP = "winxp-legacy"
ERA_W2019 = "w2019-app"
ERA_INDEPENDENT = "sql-indep"
ERA_TWO_DATASTORES = "web-2ds"
ERA_NO_TOOLS = "notools"
ERA_RDM = "db-rdm"


def populate_era_demo(host: Host) -> None:
    r"""A second named inventory (``Host.demo(profile, inventory="era")``; the default demo stays
    as it is): a VM for each behaviour that differs by host era (docs/architecture.md, "Host
    profiles").

    * ``winxp-legacy`` — Windows XP: the SYNC driver and only ``C:\Windows\pre-freeze-script.bat``
      / ``post-thaw-script.bat`` (KB 1006671: XP SP2 on 3.5 U2 keeps the legacy location).
    * ``w2019-app`` — Windows Server 2019 with ``disk.EnableUUID``: application-consistent VSS
      on esxi-7.0, file-system consistent before 4.1 (spec R42).
    * ``sql-indep`` — a data disk in ``independent_persistent`` mode: in no snapshot.
    * ``web-2ds`` — Linux with its second disk on ``datastore2``; redo logs go to the working
      directory on ``datastore1`` (Broadcom KB 304387).
    * ``notools`` — VMware Tools not installed: backed up crash-consistently (quiesce=False).
    * ``db-rdm`` — Windows 2003 with ``E:`` on a physical RDM (no redo log: in no snapshot, its
      data changes with the LUN), ``F:`` on a virtual RDM (snapshotted like a disk) and ``T:``
      on an ``independent_nonpersistent`` disk (its writes go at power off).
    """
    if "datastore2" not in host.datastores:
        host.add_datastore("datastore2", 1024 * GiB)
    xp = host.add_vm(ERA_XP, disks=[4 * GiB], guest_os="winXPProGuest", ip_address="192.0.2.21")
    fs = host.add_guest_volumes(xp, {0: [(None, "C", "SYSTEM")]})
    _put(fs, r"C:\Windows\system.ini", "[drivers]\r\nwave=mmdrv.dll\r\n")
    _put(fs, r"C:\Windows\pre-freeze-script.bat", "@echo off\r\necho legacy-pre %1 >> C:\\vcb-quiesce.log\r\n")
    _put(fs, r"C:\Windows\post-thaw-script.bat", "@echo off\r\necho legacy-post %1 >> C:\\vcb-quiesce.log\r\n")
    _put(fs, r"C:\Documents and Settings\report.txt", "quarterly figures\r\n")

    w19 = host.add_vm(ERA_W2019, disks=[8 * GiB], guest_os="windows2019srv_64Guest", ip_address="192.0.2.22")
    w19.extra_config["disk.EnableUUID"] = "TRUE"
    fs = host.add_guest_volumes(w19, {0: [(None, "C", "SYSTEM")]})
    _put(fs, _WIN_SCRIPTS_D + r"\10-app.bat", "@echo off\r\necho app %1 >> C:\\vcb-quiesce.log\r\n")

    ind = host.add_vm(
        ERA_INDEPENDENT, disks=[4 * GiB, 4 * GiB], disk_modes=["persistent", "independent_persistent"],
        ip_address="192.0.2.23",
    )
    fs = host.add_guest_volumes(ind, {0: [(None, "C", "SYSTEM")], 1: [(None, "E", "TEMPDB")]})
    _put(fs, r"E:\tempdb.mdf", bytes(4096))

    web = host.add_vm(
        ERA_TWO_DATASTORES, os_family="linux", disks=[4 * GiB, 4 * GiB], disk_datastores=[None, "datastore2"],
        ip_address="192.0.2.24",
    )
    lfs = host.add_guest_volumes(web, {0: [(None, "/", "ROOT")], 1: [(None, "/srv", "SRV")]})
    _put(lfs, "/srv/index.html", "<html><body>web-2ds</body></html>\n")

    bare = host.add_vm(ERA_NO_TOOLS, os_family="linux", disks=[2 * GiB], tools="not-installed")
    bfs = host.add_guest_volumes(bare, {0: [(None, "/", "ROOT")]})
    _put(bfs, "/etc/hostname", "notools\n")

    # built powered off, then started: what the nonpersistent disk holds now is its base
    rdm = host.add_vm(
        ERA_RDM, disks=[4 * GiB, 8 * GiB, 4 * GiB, 2 * GiB], power_state="poweredOff", ip_address="192.0.2.25",
        disk_rdms=[None, "physicalMode", "virtualMode", None],
        disk_modes=["persistent", "independent_persistent", "persistent", "independent_nonpersistent"],
    )
    fs = host.add_guest_volumes(
        rdm, {0: [(None, "C", "SYSTEM")], 1: [(None, "E", "SANDATA")], 2: [(None, "F", "LOGS")], 3: [(None, "T", "TEMP")]},
    )
    _put(fs, r"E:\db\orders.mdf", bytes(range(256)) * 64)
    _put(fs, r"F:\db\orders.ldf", b"log" * 1024)
    _put(fs, r"T:\README.txt", "scratch space: emptied at every power off\r\n")
    host.power_on(rdm)


#: named inventories ``Host.demo(inventory=...)`` builds
INVENTORIES = {"demo": populate_demo, "era": populate_era_demo}
