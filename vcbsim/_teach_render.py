"""Rich renderings shared by ``vcbsim repl``, ``vcbsim demo`` and ``vcbsim inventory``.

Everything here returns rich renderables (or plain strings) and prints nothing itself, so the
same code draws to a terminal, to a string for tests and doctests, or to a pipe.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ._teach_core import STEP_TITLES, Frame, StepView, TeachSession, human, scripts_dir, short_file

__all__ = [
    "event_line",
    "render_chains",
    "render_inventory",
    "render_scripts",
    "render_state",
    "render_step",
    "render_tree",
    "render_vms",
    "step_heading",
]

_WIN_TOOLS = "C:\\Program Files\\VMware\\VMware Tools\\"
_SHA = re.compile(r"sha256=([0-9a-f]{12})[0-9a-f]{52}")


def event_line(ev: Any, session: TeachSession | None = None, width: int = 100) -> str:
    """``Event.line()`` made short: proxy paths as ``<proxy>/...``, digests cut, one line."""
    text = ev.line()
    if session is not None:
        text = text.replace(str(session.proxy_root), "<proxy>")
    text = _SHA.sub(r"sha256=\1…", text)
    text = text.replace(_WIN_TOOLS, "…\\")
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text


def step_heading(step: str) -> Text:
    t = Text()
    t.append(f"{step:<6}", style="bold cyan")
    t.append(" " + STEP_TITLES.get(step, ""), style="bold")
    return t


def render_scripts_run(runs: list[tuple[str, str, Any]]) -> Table:
    t = Table(title=None, box=None, pad_edge=False, show_edge=False)
    t.add_column("#", justify="right")
    t.add_column("script")
    t.add_column("argument")
    t.add_column("exit", justify="right")
    for i, (path, arg, code) in enumerate(runs, 1):
        code_text = Text("not launched" if code is None else str(code), style="red" if code not in (0,) else "green")
        t.add_row(str(i), path.replace(_WIN_TOOLS, "…\\"), arg, code_text)
    return t


def render_tree(frame: Frame, vm_name: str) -> Tree:
    """The snapshot tree as vSphere shows it, with ``You are here`` at the current state."""
    root = Tree(Text(vm_name, style="bold"))
    nodes: dict[str | None, Tree] = {None: root}
    for moref, name, parent, quiesced in frame.snapshots:
        label = Text(f"{name} ({moref}{', quiesced' if quiesced else ''})")
        nodes[moref] = nodes.get(parent, root).add(label)
    nodes.get(frame.current, root).add(Text("You are here", style="italic"))
    return root


def render_chains(frame: Frame) -> Table:
    """Each disk's chain, writable layer first, with the bytes each layer holds."""
    t = Table(box=None, pad_edge=False, show_edge=False)
    t.add_column("disk")
    t.add_column("redo-log chain (writable first)")
    t.add_column("holds", justify="right")
    for c in frame.chains:
        for i, (f, n) in enumerate(c.layers):
            role = " (writable)" if i == 0 and len(c.layers) > 1 else (" (base)" if i == len(c.layers) - 1 else "")
            t.add_row(c.label if i == 0 else "", short_file(f) + role, human(n))
    return t


def render_state(frame: Frame, vm_name: str) -> Group:
    """Quiesce state, snapshot tree, chains and mounts of one moment."""
    q = Text("quiesce: ", style="bold")
    q.append(frame.phase + (" (guest frozen)" if frame.frozen else ""))
    mounts = Text("mounted on the proxy: ", style="bold")
    mounts.append(", ".join(frame.mounts) if frame.mounts else "nothing")
    return Group(q, render_tree(frame, vm_name), render_chains(frame), mounts)


def render_step(view: StepView, session: TeachSession, vm_name: str, *, width: int = 100, state: bool = True) -> Group:
    """One documented step: heading, scripts, trace lines, what changed, the state after."""
    parts: list[RenderableType] = [step_heading(view.step)]
    if view.skipped:
        parts.append(Text("  not reached on this path: " + ", ".join(view.skipped), style="yellow"))
    runs = view.script_runs()
    if runs:
        parts.append(Text("scripts run:", style="bold"))
        parts.append(render_scripts_run(runs))
    parts.append(Text("trace:", style="bold"))
    for ev in view.events:
        parts.append(Text("  " + event_line(ev, session, width - 2), style="dim" if ev.kind == "guest.write" else ""))
    changes = view.changes
    parts.append(Text("what changed:", style="bold"))
    if changes:
        parts.extend(Text("  - " + c) for c in changes)
    else:
        parts.append(Text("  - nothing on the VM or the proxy"))
    if state:
        parts.append(render_state(view.after, vm_name))
    return Group(*parts)


def render_vms(host: Any) -> Table:
    t = Table(title="virtual machines", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for col in ("name", "moref", "guest", "power", "tools", "ip", "disks", "snapshots"):
        t.add_column(col, no_wrap=col != "snapshots")
    for vm in host.vms.values():
        t.add_row(
            vm.name,
            vm.moref,
            vm.os_family if vm.guest_os is None else vm.guest_os.removesuffix("Guest"),
            vm.power_state,
            vm.tools.state if vm.tools is not None else "not-installed",
            vm.ip_address or "-",
            str(len(vm.disks)),
            ", ".join(s.name for s in vm.snapshots()) or "-",
        )
    return t


def _volumes(vm: Any) -> Iterable[tuple[str, str, str, str]]:
    guest = vm.guest
    if guest is None:
        return []
    out = []
    for v in guest.volumes:
        name = f"{v.letter}:" if getattr(v, "letter", None) else (getattr(v, "mount_point", None) or "(no drive letter)")
        disk = vm.disks[v.disk_index].label if v.disk_index < len(vm.disks) else str(v.disk_index)
        part = getattr(v, "partition", 0)
        out.append((name, str(getattr(v, "label", "") or ""), disk, str(getattr(part, "index", part))))
    return out


def _disk_mode(d: Any) -> str:
    """``persistent``, ``indep-nonpersistent``, ``RDM physical`` ... (short: a table cell)."""
    rdm = getattr(d, "rdm", None)
    if rdm:
        return "RDM " + str(rdm).removesuffix("Mode")
    return str(d.disk_mode).replace("independent_", "indep-")


def render_disks(host: Any) -> Table:
    t = Table(title="disks and volumes", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    # the era inventory's cases (disk modes, RDMs, a second datastore) get their own columns
    era = any(
        _disk_mode(d) != "persistent" or d.datastore != vm.datastore for vm in host.vms.values() for d in vm.disks
    )
    # (there the partition column makes room for them)
    cols = ("vm", "disk", "capacity", "mode", "datastore", "volume", "label") if era else (
        "vm", "disk", "capacity", "volume", "label", "partition"
    )
    for col in cols:
        t.add_column(col, no_wrap=col in ("vm", "disk", "mode"))
    for vm in host.vms.values():
        vols = list(_volumes(vm))
        for d in vm.disks:
            mine = [v for v in vols if v[2] == d.label] or [("-", "", d.label, "")]
            for i, (name, label, _, part) in enumerate(mine):
                first = (vm.name, d.label, human(d.capacity)) if i == 0 else ("", "", "")
                if era:
                    mode = (_disk_mode(d), d.datastore) if i == 0 else ("", "")
                    t.add_row(*first, *mode, name, label)
                else:
                    t.add_row(*first, name, label, part)
    return t


def script_rows(host: Any, vm: Any) -> list[tuple[str, str, str]]:
    """``(order, path, what it does)`` of the scripts VMware Tools would run, in freeze order."""
    if vm.tools is None or vm.guest is None:
        return []
    plan = vm.tools.script_plan(host.profile)  # the list a quiesce on this profile runs
    rows = []
    for i, e in enumerate(plan.entries, 1):
        paths = [e.path] + ([e.thaw_path] if e.legacy and e.thaw_path else [])
        for p in paths:
            try:
                text = vm.guest.read_bytes(p).decode("utf-8", "replace")
            except Exception:  # a legacy slot may have only one of its two files
                continue
            from vcbsim.simulator.tools import parse_script

            st = parse_script(text).statements
            what = "; ".join(_statement_text(s) for s in st) or "exit 0 (nothing the simulator models)"
            rows.append((str(i) + (" (legacy)" if e.legacy else ""), p.replace(_WIN_TOOLS, "…\\"), what))
    return rows


def _statement_text(st: Any) -> str:
    tags = f"[{','.join(st.tags)}] " if st.tags is not None else ""
    if st.kind == "exit":
        return f"{tags}exit {st.code}"
    if st.kind == "sleep":
        return f"{tags}sleep {st.seconds:g}"
    return f"{tags}echo {st.text} {'>>' if st.append else '>'} {st.path}"


def render_scripts(host: Any, vm: Any) -> Table:
    t = Table(
        title=f"quiescing scripts of {vm.name} (freeze: ascending; thaw/freezeFail: descending)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        caption=f"…\\ is {_WIN_TOOLS.rstrip(chr(92))}" if vm.os_family == "windows" else None,
        caption_justify="left",
    )
    t.add_column("order", justify="right")
    t.add_column("script")
    t.add_column("what it does")
    for row in script_rows(host, vm):
        t.add_row(*row)
    if not t.rows:
        t.add_row("-", f"(none; add one under {scripts_dir(vm)})", "")
    return t


def render_inventory(host: Any) -> Group:
    parts: list[RenderableType] = [render_vms(host), render_disks(host)]
    for vm in host.vms.values():
        parts.append(render_scripts(host, vm))
    return Group(*parts)
