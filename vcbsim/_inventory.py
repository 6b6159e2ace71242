"""``vcbsim inventory``: the demo host's VMs, disks, volumes and quiescing scripts as tables."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from rich.console import Console

from ._teach_core import console_width, pipe_safe, piped_width
from ._teach_render import render_inventory, script_rows

__all__ = ["main"]


@pipe_safe(0)
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="vcbsim inventory",
        description="Show the demo host that 'vcbsim demo' and 'vcbsim repl' start from.",
    )
    p.add_argument("--profile", default="esx-3.5u2", help="host profile (esx-3.5u1, esx-3.5u2, esxi-7.0)")
    p.add_argument("--inventory", default="demo", choices=("demo", "era"),
                   help="'era': the second inventory, a VM per era-specific case (XP with the legacy "
                        "scripts, an independent disk, two datastores, no Tools, Windows 2019, RDMs and a "
                        "nonpersistent disk)")
    p.add_argument("--json", action="store_true", help="print the host dump and scripts as JSON")
    p.add_argument("--width", type=console_width, default=None,
                   help="output width in columns, 40 or more (default: the terminal's; 120 when piped)")
    ns = p.parse_args(list(argv) if argv is not None else None)
    from vcbsim.simulator import Host, VcbsimError

    try:
        host = Host.demo(ns.profile, inventory=ns.inventory)
    except VcbsimError as exc:
        sys.stderr.write(f"vcbsim inventory: {exc}\n")
        return 2
    if ns.json:
        data = host.dump()
        data["scripts"] = {
            vm.name: [{"order": o, "path": path, "does": what} for o, path, what in script_rows(host, vm)]
            for vm in host.vms.values()
        }
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return 0
    console = Console(width=ns.width or piped_width(), highlight=False, markup=False, emoji=False)
    console.print(f"host {host.name} ({host.profile.name}, {host.profile.product} {host.profile.version})")
    console.print(render_inventory(host))
    return 0
