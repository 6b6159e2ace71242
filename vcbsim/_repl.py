r"""``vcbsim repl``: step through a VCB backup on the demo host, one documented step at a time.

The command interpreter is a plain class, ``Interpreter``: give it a line, it returns (or, when
called, prints) what a learner sees. prompt_toolkit is only the front end (history, tab
completion of commands, VM names and guest paths); when stdin is not a terminal the front end
reads plain lines, so a pipe or pexpect drives the same commands.

>>> repl = Interpreter(width=100)
>>> repl("backup win2003-sql image")
backup of win2003-sql prepared (image-level, VMDK export); 'step' runs the first documented step
>>> repl.close()

One concern, although over 700 lines: the REPL's commands (``Interpreter``, one method per
command) and its two front ends; the session it drives is ``_teach_core.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from vcbsim.simulator import PROFILES, SimulatedCrash, VcbsimError
from vcbsim.simulator._demo import INVENTORIES

from ._teach_core import (
    DOC_STEPS,
    FAULT_PRESETS,
    STEP_TITLES,
    GuidedBackup,
    TeachSession,
    console_width,
    describe_error,
    error_code_note,
    pipe_safe,
    scripts_dir,
)
from ._teach_render import (
    event_line,
    render_chains,
    render_inventory,
    render_scripts,
    render_state,
    render_step,
    render_tree,
    render_vms,
)

__all__ = ["Interpreter", "main"]

PROMPT = "vcbsim> "


class CommandError(VcbsimError, ValueError):
    """A command was used wrongly; the message says how to use it."""


class Refused(Exception):
    """A command was understood but cannot be done; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    usage: str
    help: str
    func: Callable[[list[str]], Any]
    args: tuple[str, ...] = ()  # what each positional argument completes to: "vm", "path", "word:a|b"


class Interpreter:
    """The REPL's commands, without a terminal.

    Args:
        session: a ``TeachSession`` (the demo host, a proxy and a backup medium); a new one if
            omitted.
        width: the console width output is rendered for.
        color: render ANSI colours (the terminal front end); plain text otherwise.

    ``execute(line)`` returns the output as text; calling the interpreter prints it (what the
    tutorial's examples do). ``done`` turns true after ``quit``.
    """

    def __init__(self, session: TeachSession | None = None, *, width: int = 100, color: bool = False) -> None:
        self.session = session if session is not None else TeachSession()
        self.width = width
        self.color = color
        self.done = False
        #: whether the last command failed (an error, a usage message, an unknown command)
        self.failed = False
        self._out: list[RenderableType | str] = []
        self.commands: dict[str, Command] = {}
        for c in (
            Command("help", "help [COMMAND]", "list the commands, or explain one", self.do_help, ("command",)),
            Command("vms", "vms", "list the virtual machines on the host", self.do_vms),
            Command("inventory", "inventory", "VMs, disks, volumes and quiescing scripts", self.do_inventory),
            Command("scripts", "scripts VM", "the quiescing scripts VMware Tools will run, in order", self.do_scripts, ("vm",)),
            Command(
                "script",
                'script add VM NAME "LINE" ["LINE" ...] | script rm VM NAME | script show VM NAME',
                "add (one quoted argument per line), remove or show a quiescing script in backupScripts.d",
                self.do_script,
                ("word:add|rm|show", "vm", "script"),
            ),
            Command("ls", "ls VM [DIR]", "list a guest directory", self.do_ls, ("vm", "path")),
            Command("cat", "cat VM FILE", "show a guest file", self.do_cat, ("vm", "path")),
            Command("write", 'write VM FILE "TEXT"', "write a guest file (the guest keeps working during a backup)", self.do_write, ("vm", "path")),
            Command("rm", "rm VM FILE", "delete a guest file", self.do_rm, ("vm", "path")),
            Command(
                "backup",
                "backup VM [image|file] [full|differential|incremental]",
                "prepare a backup (image: VMDK export; file: Windows volumes by drive letter)",
                self.do_backup,
                ("vm", "word:image|file", "word:full|differential|incremental"),
            ),
            Command("step", "step", "run the next documented step of the backup and show what changed", self.do_step),
            Command("next", "next", "same as step", self.do_step),
            Command("run", "run", "run the rest of the backup, one step after the other", self.do_run),
            Command("status", "status", "where the backup is, and what is left", self.do_status),
            Command("state", "state VM", "quiesce state, snapshot tree, redo-log chains, mounts", self.do_state, ("vm",)),
            Command("tree", "tree VM", "the VM's snapshot tree", self.do_tree, ("vm",)),
            Command("chains", "chains VM", "each disk's redo-log chain and sizes", self.do_chains, ("vm",)),
            Command("mounts", "mounts", "what is mounted on the proxy", self.do_mounts),
            Command("trace", "trace [N]", "the last N trace lines (default 20), with their seed step", self.do_trace),
            Command("snapshot", "snapshot VM NAME [noquiesce]", "take a snapshot by hand (quiesced unless noquiesce)", self.do_snapshot, ("vm",)),
            Command("unsnapshot", "unsnapshot VM NAME", "remove a snapshot by hand, committing its redo log", self.do_unsnapshot, ("vm", "snapshot")),
            Command(
                "fault",
                "fault prefreeze|slow-snapshot|vss|crash|remove VM [ARG] | fault list | fault clear",
                "inject a fault into the next backup in one command",
                self.do_fault,
                ("word:prefreeze|slow-snapshot|vss|crash|remove|list|clear", "vm"),
            ),
            Command("reset", "reset [demo|era]", "rebuild the demo host from scratch (forgets scripts, files, faults); 'era': the era inventory", self.do_reset,
                    ("word:demo|era",)),
            Command("quit", "quit", "leave the REPL", self.do_quit),
            Command("exit", "exit", "leave the REPL", self.do_quit),
        ):
            self.commands[c.name] = c

    # -- running commands -------------------------------------------------------------------

    def __call__(self, line: str) -> None:
        out = self.execute(line)
        if out:
            print(out)

    def execute(self, line: str) -> str:
        """Run one command line and return its output as text (no trailing spaces)."""
        self._out = []
        self.failed = False
        try:
            words = split_line(line)
        except ValueError as exc:
            self.failed = True
            return f"error: {exc} (quote text with \"...\")"
        if not words:
            return ""
        name, args = words[0].lower(), words[1:]
        cmd = self.commands.get(name)
        if cmd is None:
            self.failed = True
            close = [c for c in self.commands if c.startswith(name[:2])]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            return f"unknown command {name!r}{hint}; 'help' lists the commands"
        try:
            cmd.func(args)
        except CommandError as exc:
            self.failed = True
            self._say(f"usage: {cmd.usage}" + (f"\n{exc}" if str(exc) else ""))
        except Refused as exc:
            self.failed = True
            self._say(f"error: {exc}")
        except Exception as exc:  # every simulator error is shown, never kills the REPL
            self.failed = True
            self._say(f"error: {_describe(exc)}")
        except SimulatedCrash as exc:  # an injected crash point: the proxy "died" here
            self._say(f"the proxy crashed at {exc} (injected); 'backup' again to see the next run clean up")
        return self._render()

    def _say(self, item: RenderableType | str) -> None:
        self._out.append(item)

    def _render(self) -> str:
        buf = io.StringIO()
        console = Console(
            file=buf,
            width=self.width,
            color_system="standard" if self.color else None,
            force_terminal=self.color,
            highlight=False,
            emoji=False,
            markup=False,
            soft_wrap=False,
        )
        for item in self._out:
            console.print(item)
        self._out = []
        text = buf.getvalue()
        return "\n".join(line.rstrip() for line in text.splitlines())

    def close(self) -> None:
        self.session.close()

    # -- completion --------------------------------------------------------------------------

    def complete(self, text: str) -> list[str]:
        """Completions of the last word of ``text`` (the command line up to the cursor)."""
        try:
            words = split_line(text)
        except ValueError:
            return []
        if not text or text.endswith(" "):
            words.append("")
        if len(words) <= 1:
            prefix = words[0] if words else ""
            return sorted(c for c in self.commands if c.startswith(prefix.lower()))
        cmd = self.commands.get(words[0].lower())
        if cmd is None:
            return []
        i = len(words) - 2
        prefix = words[-1]
        kinds = cmd.args
        if cmd.name == "script" and len(words) >= 2:
            kinds = ("word:add|rm|show", "vm", "script")
        if i >= len(kinds):
            return []
        kind = kinds[i]
        if kind.startswith("word:"):
            return [w for w in kind[5:].split("|") if w.startswith(prefix)]
        if kind == "command":
            return sorted(c for c in self.commands if c.startswith(prefix))
        if kind == "vm":
            return sorted(vm.name for vm in self.session.host.vms.values() if vm.name.startswith(prefix))
        vm = self._find_vm(words[1] if cmd.name != "script" else (words[2] if len(words) > 2 else ""))
        if vm is None:
            return []
        if kind == "snapshot":
            return sorted({s.name for s in vm.snapshots() if s.name.startswith(prefix)})
        if kind == "script":
            d = scripts_dir(vm)
            fs = vm.guest
            try:
                names = fs.listdir(d) if fs is not None and fs.is_dir(d) else []
            except Exception:
                names = []
            return sorted(n for n in names if n.lower().startswith(prefix.lower()))
        if kind == "path":
            return self._complete_path(vm, prefix)
        return []

    def _complete_path(self, vm: Any, prefix: str) -> list[str]:
        fs = vm.guest
        if fs is None:
            return []
        sep = "\\" if vm.os_family == "windows" else "/"
        if vm.os_family == "windows" and len(prefix) < 3:
            letters = [f"{v.letter}:\\" for v in fs.volumes if getattr(v, "letter", None)]
            return [p for p in letters if p.lower().startswith(prefix.lower())]
        head, _, tail = prefix.rpartition(sep)
        directory = head + sep if head and not head.endswith(":") else (head + sep if head else sep)
        try:
            names = fs.listdir(directory)
        except Exception:
            return []
        out = []
        for n in names:
            if n.lower().startswith(tail.lower()):
                full = directory + n
                try:
                    if fs.is_dir(full):
                        full += sep
                except Exception:
                    pass
                out.append(full)
        return sorted(out)

    # -- helpers -------------------------------------------------------------------------------

    def _find_vm(self, name: str) -> Any:
        try:
            return self.session.host.find_vm(name) if name else None
        except Exception:
            return None

    def _vm(self, args: list[str], n: int = 1) -> Any:
        if len(args) < n:
            raise CommandError
        return self.session.vm(args[0])

    def _fs(self, vm: Any, *, read: bool = False) -> Any:
        """The guest's file system; for reading, also while the guest is frozen (a frozen
        guest holds writes, not reads; the host's ``guest_fs`` refuses both then)."""
        if read and vm.guest is not None:
            return vm.guest
        return self.session.host.guest_fs(vm)

    @contextlib.contextmanager
    def _guest(self, vm: Any, path: str) -> Iterator[None]:
        """Say what went wrong with a guest path in the guest's own terms (``D:\\nope.txt``,
        not the file system's volume-relative path)."""
        from vcbsim.simulator import InvalidInputError, NotFoundError

        sep = "\\" if vm.os_family == "windows" else "/"
        parent = path.rstrip(sep).rpartition(sep)[0] or sep
        if parent.endswith(":"):
            parent += sep
        try:
            yield
        except NotFoundError as exc:
            if exc.kind == "drive":
                drives = ", ".join(str(k) for k in exc.fields.get("known") or [])
                msg = f"{vm.name} has no drive {exc.name}; its drives: {drives or 'none'}"
            else:
                msg = f"{vm.name} has no {path}; 'ls {vm.name} {parent}' lists what is there"
            raise Refused(msg) from None
        except InvalidInputError as exc:
            expected = exc.expected
            if "a file" in expected:
                msg = f"{path} on {vm.name} is a folder; 'ls {vm.name} {path}' lists it"
            elif "directory" in expected:
                msg = f"{path} on {vm.name} is a file, not a folder; 'cat {vm.name} {path}' shows it"
            else:
                msg = f"{path} on {vm.name}: expected {expected}" + (f"; {exc.hint}" if exc.hint else "")
            raise Refused(msg) from None

    # -- commands --------------------------------------------------------------------------------

    def do_help(self, args: list[str]) -> None:
        if args:
            c = self.commands.get(args[0].lower())
            if c is None:
                msg = f"no command {args[0]!r}"
                raise CommandError(msg)
            self._say(f"{c.usage}\n  {c.help}")
            return
        t = Table(box=None, pad_edge=False, show_header=False)
        t.add_column("usage", style="bold")
        t.add_column("what")
        for c in self.commands.values():
            if c.name in ("next", "exit"):
                continue
            t.add_row(c.usage if len(c.usage) <= 44 else c.name + " ...", c.help)
        self._say(t)
        self._say(
            "A backup: 'backup win2003-sql file', then 'step' (or 'next') until it is over.\n"
            "Documented steps: " + ", ".join(DOC_STEPS) + " (docs/seed/vcb-workflow.txt)."
        )

    def do_vms(self, args: list[str]) -> None:
        self._say(render_vms(self.session.host))

    def do_inventory(self, args: list[str]) -> None:
        self._say(render_inventory(self.session.host))

    def do_scripts(self, args: list[str]) -> None:
        vm = self._vm(args)
        self._say(render_scripts(self.session.host, vm))

    def do_script(self, args: list[str]) -> None:
        if len(args) < 3 or args[0] not in ("add", "rm", "show"):
            raise CommandError
        action, vm = args[0], self.session.vm(args[1])
        name = args[2]
        if "\\" in name or "/" in name:
            raise CommandError("NAME is a file name inside backupScripts.d, such as 30-mine.bat")
        fs = self._fs(vm, read=action == "show")
        d = scripts_dir(vm)
        sep = "\\" if vm.os_family == "windows" else "/"
        path = d + sep + name
        if action == "add":
            if len(args) < 4:
                raise CommandError('the script text is missing, for example "[freeze] exit 3"')
            with self._guest(vm, path):
                if not fs.exists(d):
                    fs.mkdir(d)
                newline = "\r\n" if vm.os_family == "windows" else "\n"
                fs.write_bytes(path, (newline.join(args[3:]) + newline).encode())
            self._say(f"added {path}")
            self._say(render_scripts(self.session.host, vm))
        elif action == "rm":
            with self._guest(vm, path):
                fs.delete(path)
            self._say(f"removed {path}")
        else:
            with self._guest(vm, path):
                text = fs.read_bytes(path).decode("utf-8", "replace")
            self._say(text.replace("\r\n", "\n").rstrip("\n"))

    def do_ls(self, args: list[str]) -> None:
        vm = self._vm(args)
        fs = self._fs(vm, read=True)
        if len(args) > 1:
            path = args[1]
        else:
            path = "C:\\" if vm.os_family == "windows" else "/"
        t = Table(box=None, pad_edge=False, show_header=False)
        t.add_column("name")
        t.add_column("size", justify="right")
        sep = "\\" if vm.os_family == "windows" else "/"
        with self._guest(vm, path):
            for n in sorted(fs.listdir(path), key=str.lower):
                full = path.rstrip(sep) + sep + n
                if fs.is_dir(full):
                    t.add_row(n + sep, "<dir>")
                else:
                    t.add_row(n, str(fs.stat(full).size))
        self._say(t)

    def do_cat(self, args: list[str]) -> None:
        vm = self._vm(args, 2)
        with self._guest(vm, args[1]):
            data = self._fs(vm, read=True).read_bytes(args[1])
        self._say(Text(data.decode("utf-8", "replace").replace("\r\n", "\n").rstrip("\n")))

    def do_write(self, args: list[str]) -> None:
        if len(args) < 3:
            raise CommandError
        vm = self.session.vm(args[0])
        text = " ".join(args[2:])
        if vm.os_family == "windows":
            text = "\r\n".join(text.split("\n"))
        if vm.tools is not None and vm.tools.frozen:
            sep = "\\" if vm.os_family == "windows" else "/"
            parent = args[1].rpartition(sep)[0]
            parent = parent + sep if not parent or parent.endswith(":") else parent
            with self._guest(vm, parent):
                if not self._fs(vm, read=True).is_dir(parent):
                    msg = f"{parent} on {vm.name} is not a folder"
                    raise Refused(msg)
            self.session.hold_write(vm, args[1], text.encode())
            self._say(
                f"{vm.name} is frozen ({vm.tools.phase}, from WF-1b to WF-1d): the guest holds this write of "
                f"{len(text.encode())} bytes to {args[1]}, as a frozen file system holds an application's write; "
                "it lands when the guest thaws (WF-1d), in the redo log, so the snapshot does not have it"
            )
            return
        before = self.session.frame(vm)
        fs = self._fs(vm)
        with self._guest(vm, args[1]):
            fs.write_bytes(args[1], text.encode())
        self._say(f"wrote {len(text.encode())} bytes to {args[1]}")
        changed = self.session.frame(vm).changes_since(before)
        if changed:
            self._say("\n".join("  - " + c for c in changed))

    def do_rm(self, args: list[str]) -> None:
        vm = self._vm(args, 2)
        with self._guest(vm, args[1]):
            self._fs(vm).delete(args[1])
        self._say(f"deleted {args[1]}")

    def do_backup(self, args: list[str]) -> None:
        vm = self._vm(args)
        mode = args[1].lower() if len(args) > 1 else "image"
        types = {"image": "fullvm", "fullvm": "fullvm", "file": "file"}
        if mode not in types:
            msg = f"backup type: expected image or file, got {mode!r}"
            raise CommandError(msg)
        kind = args[2].lower() if len(args) > 2 else None
        b = self.session.start_backup(vm.name, types[mode], kind)
        what = "image-level, VMDK export" if b.type == "fullvm" else f"file-level, {b.result.kind}"
        self._say(f"backup of {vm.name} prepared ({what}); 'step' runs the first documented step")

    def _backup(self) -> GuidedBackup:
        b = self.session.backup
        if b is None:
            raise CommandError("no backup in progress; start one with 'backup VM [image|file]'")
        return b

    def do_step(self, args: list[str]) -> None:
        b = self._backup()
        if b.finished:
            self._say("the backup is over; start another with 'backup VM [image|file]'")
            return
        view = b.step()
        if view is not None:
            self._say(render_step(view, self.session, b.vm.name, width=self.width))
            for note in view.notes:
                self._say(note)
        if b.finished:
            self._say_end(b)
        elif view is not None:
            nxt = b.pending[0].step if b.pending else _next_doc_step(view.step)
            if nxt:
                self._say(Text(f"next: {nxt} ('step')", style="dim"))

    def _say_end(self, b: GuidedBackup) -> None:
        for ev in b.tail:
            self._say(Text("  " + event_line(ev, self.session, self.width - 2)))
        r = b.result
        if r.status == "failed":
            cause = f" (caused in {r.cause_step})" if r.cause_step and r.cause_step != r.failed_step else ""
            fault = f": {r.fault}" if r.fault and not _python_name(r.fault) else ""
            self._say(Text(f"backup FAILED at {r.failed_step}{cause}{fault}", style="bold red"))
            self._say(Text(r.reason))
            note = error_code_note(r.reason)
            if note:
                self._say(Text(note, style="dim"))
        else:
            where = f"; backup #{r.backup_id} on the medium" if r.backup_id is not None else ""
            self._say(Text(f"backup finished: {r.status}{where}", style="bold green"))
        vm = b.vm
        left = [s.name for s in vm.snapshots()]
        self._say(
            f"left behind: snapshots {', '.join(left) if left else 'none'}; "
            f"mounts {', '.join(self.session.mounts) if self.session.mounts else 'none'}"
        )

    def do_run(self, args: list[str]) -> None:
        b = self._backup()
        if b.finished:
            self._say("the backup is over; start another with 'backup VM [image|file]'")
            return
        for view in b.run_all():
            self._say(render_step(view, self.session, b.vm.name, width=self.width, state=False))
            for note in view.notes:
                self._say(note)
        self._say(render_state(self.session.frame(b.vm), b.vm.name))
        self._say_end(b)

    def do_status(self, args: list[str]) -> None:
        b = self.session.backup
        if b is None:
            self._say("no backup yet; start one with 'backup VM [image|file]'")
            return
        done = [v.step for v in b.done]
        state = "over" if b.finished else "in progress"
        self._say(f"backup of {b.vm.name} ({'image' if b.type == 'fullvm' else 'file'}): {state}")
        self._say(f"done: {', '.join(done) if done else 'nothing yet'}")
        if b.died:
            self._say(f"the run died: {b.died}; what it left stays until the next run cleans up")
        elif b.finished:
            summary = b.result.summary().replace(str(self.session.proxy_root), "<proxy>")
            if b.result.fault and _python_name(b.result.fault):
                summary = summary.replace(f": {b.result.fault}: ", ": ", 1)
            self._say(summary)
        else:
            nxt = b.pending[0].step if b.pending else (_next_doc_step(done[-1]) if done else DOC_STEPS[0])
            if nxt:
                self._say(f"next: {nxt}, {STEP_TITLES.get(nxt, '')} ('step' does it, 'run' does the rest)")
            paused = self.session.handoff.paused
            if paused is not None:
                self._say(
                    f"the proxy is inside its snapshot call (CreateSnapshot_Task), paused after {paused}: "
                    f"{b.vm.name} is busy, so removing its snapshot by hand is refused (TaskInProgress)"
                )
            for w in self.session.held_writes:
                self._say(f"held until the guest thaws: {len(w.data)} bytes to {w.path} on {w.vm.name}")

    def do_state(self, args: list[str]) -> None:
        vm = self._vm(args)
        self._say(render_state(self.session.frame(vm), vm.name))

    def do_tree(self, args: list[str]) -> None:
        vm = self._vm(args)
        self._say(render_tree(self.session.frame(vm), vm.name))

    def do_chains(self, args: list[str]) -> None:
        vm = self._vm(args)
        self._say(render_chains(self.session.frame(vm)))

    def do_mounts(self, args: list[str]) -> None:
        m = self.session.mounts
        self._say("\n".join(m) if m else "nothing is mounted on the proxy")

    def do_trace(self, args: list[str]) -> None:
        try:
            n = int(args[0]) if args else 20
        except ValueError:
            raise CommandError("N is a number of lines") from None
        for ev in self.session.host.trace.events[-n:] if n > 0 else []:
            self._say(event_line(ev, self.session, self.width))

    def do_snapshot(self, args: list[str]) -> None:
        vm = self._vm(args, 2)
        quiesce = not (len(args) > 2 and args[2].lower() == "noquiesce")
        before = self.session.frame(vm)
        snap = self.session.host.create_snapshot(vm, args[1], quiesce=quiesce)
        self._say(f"snapshot {snap.name} ({snap.moref}) created{' quiesced' if snap.quiesced else ''}")
        self._say("\n".join("  - " + c for c in self.session.frame(vm).changes_since(before)))

    def do_unsnapshot(self, args: list[str]) -> None:
        vm = self._vm(args, 2)
        before = self.session.frame(vm)
        self.session.host.remove_snapshot(vm, args[1])
        self._say(f"snapshot {args[1]} removed")
        self._say("\n".join("  - " + c for c in self.session.frame(vm).changes_since(before)))

    def do_fault(self, args: list[str]) -> None:
        host = self.session.host
        if not args:
            raise CommandError(_preset_list())
        what = args[0].lower()
        if what == "list":
            rules = host.faults.rules
            if not rules:
                self._say("no faults armed")
            hits = host.faults.hits()
            for r in rules:
                key = r.label or f"{r.operation}:{r.target}"
                extra = ", ".join(
                    f"{k}={v}" for k, v in (("fault", r.fault), ("delay", r.delay), ("exit_code", r.exit_code)) if v
                )
                self._say(f"{key}: {r.operation} on {r.target} {extra} (fired {hits.get(key, 0)}x)")
            return
        if what == "clear":
            host.faults.clear()
            self._say("all faults cleared")
            return
        preset = FAULT_PRESETS.get(what)
        if preset is None:
            msg = f"no fault {args[0]!r}; the faults:\n{_preset_list()}"
            raise CommandError(msg)
        if len(args) < 2:
            msg = f"{preset.usage()}: which VM? ({', '.join(self._vm_names())})"
            raise CommandError(msg)
        if len(args) > 3:
            msg = f"{preset.usage()} takes at most one argument after the VM, got {len(args) - 2}"
            raise CommandError(msg)
        vm = self.session.vm(args[1])
        try:
            value = preset.parse(args[2]) if len(args) > 2 else preset.default
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        label = preset.label(vm)
        if any(r.label == label for r in host.faults.rules):
            self._say(f"{what} is already armed on {vm.name}; 'fault list' shows it, 'fault clear' removes every fault")
            return
        rule = host.add_fault(preset.build(host, vm, value))
        self._say(f"armed {what} on {vm.name}: {preset.describe(host, vm, value)}\n  rule: {rule.operation} target={rule.target}")

    def _vm_names(self) -> list[str]:
        return [vm.name for vm in self.session.host.vms.values()]

    def do_reset(self, args: list[str]) -> None:
        if args:  # reset era | reset demo: rebuild with that named inventory
            if len(args) != 1 or args[0] not in INVENTORIES:
                msg = f"reset: expected no argument or one of {', '.join(INVENTORIES)}, got {' '.join(args)!r}"
                raise CommandError(msg)
            self.session.host.populate = INVENTORIES[args[0]]
        self.session.reset()
        self._say("the demo host is rebuilt: " + ", ".join(vm.name for vm in self.session.host.vms.values()))

    def do_quit(self, args: list[str]) -> None:
        self.done = True


def split_line(line: str) -> list[str]:
    """Split a command line like a shell, but keep backslashes (Windows paths) as they are."""
    lex = shlex.shlex(line, posix=True)
    lex.whitespace_split = True
    lex.escape = ""
    lex.commenters = ""
    return list(lex)


def _next_doc_step(step: str) -> str | None:
    if step not in DOC_STEPS:
        return None
    i = DOC_STEPS.index(step)
    return DOC_STEPS[i + 1] if i + 1 < len(DOC_STEPS) else None


def _preset_list() -> str:
    return "\n".join(f"  {p.usage():<34} {p.describe(None, _AnyVM, p.default)}" for p in FAULT_PRESETS.values())


class _AnyVM:
    """Stands for "the VM" in the list of faults."""

    name = "the VM"
    os_family = "windows"
    tools = None


def _python_name(fault: str) -> bool:
    """A Python exception class name (``NotFoundError``), not a vSphere fault (learners see
    vSphere's names, which a real host answers, and the message, not Python's)."""
    return fault.endswith("Error") and not fault.startswith("vim.")


def _describe(exc: BaseException) -> str:
    return describe_error(exc)


# -- front ends ------------------------------------------------------------------------------


def _prompt_toolkit_loop(interp: Interpreter, history: Path | None) -> None:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer, Completion
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    class _Completer(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Any:
            text = document.text_before_cursor
            last = "" if text.endswith(" ") else (split_line(text)[-1] if _splits(text) else "")
            for c in interp.complete(text):
                yield Completion(completion_text(c), start_position=-len(last), display=c)

    hist: Any = InMemoryHistory()
    if history is not None:
        try:
            history.parent.mkdir(parents=True, exist_ok=True)
            hist = FileHistory(str(history))
        except OSError:
            pass
    session: Any = PromptSession(history=hist, completer=_Completer(), complete_while_typing=False)
    while not interp.done:
        try:
            line = session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        out = interp.execute(line)
        if out:
            sys.stdout.write(out + "\n")
            sys.stdout.flush()


def completion_text(word: str) -> str:
    """What a tab inserts for a completed word: the word and a space, so the next word can be
    typed at once; a folder (ending in a path separator) takes no space, its contents follow."""
    return word if word.endswith(("\\", "/")) else word + " "


def _splits(text: str) -> bool:
    try:
        return bool(split_line(text))
    except ValueError:
        return False


def _plain_loop(interp: Interpreter, stdin: Any, stdout: Any) -> None:
    while not interp.done:
        stdout.write(PROMPT)
        stdout.flush()
        line = stdin.readline()
        if not line:
            stdout.write("\n")
            break
        out = interp.execute(line.rstrip("\n"))
        if out:
            stdout.write(out + "\n")
        stdout.flush()


@pipe_safe(0)
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="vcbsim repl",
        description="Interactive console on the demo host: add scripts, start a backup and step "
        "through it one documented step at a time ('help' inside lists the commands).",
    )
    p.add_argument("--seed", type=int, default=0, help="the host's seed (default 0)")
    p.add_argument("--profile", default=None, choices=sorted(PROFILES),
                   help="host profile (default: esx-3.5u2); the era inventory differs by it")
    p.add_argument("--inventory", default="demo", choices=sorted(INVENTORIES),
                   help="'era': a VM per era-specific case (XP with the legacy scripts, Windows 2019, "
                        "an independent disk, two datastores, no Tools, RDMs and a nonpersistent disk)")
    p.add_argument("--workdir", help="where the proxy exposes snapshots (default: a temporary directory)")
    p.add_argument("--plain", action="store_true", help="plain line input even on a terminal")
    p.add_argument("--width", type=console_width, default=None,
                   help="output width in columns, 40 or more (default: the terminal's, or 100)")
    p.add_argument("-c", "--command", action="append", default=[], help="run this command and exit (repeatable)")
    ns = p.parse_args(list(argv) if argv is not None else None)
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    import shutil

    width = ns.width or (shutil.get_terminal_size((100, 24)).columns if tty else 100)
    session = TeachSession(ns.workdir, seed=ns.seed, inventory=ns.inventory, profile=ns.profile)
    interp = Interpreter(session, width=width, color=tty and not ns.plain)
    try:
        if ns.command:
            failed = 0
            for line in ns.command:
                out = interp.execute(line)
                if out:
                    print(out)
                failed += interp.failed
            return 1 if failed else 0
        print(f"vcbsim repl: {'era' if ns.inventory == 'era' else 'demo'} host {interp.session.host.name} "
              f"({interp.session.host.profile.name}) with " + ", ".join(interp.session.host.vms[m].name for m in interp.session.host.vms) + ". Type 'help'.")
        if tty and not ns.plain:
            _prompt_toolkit_loop(interp, Path.home() / ".vcbsim_history")
        else:
            _plain_loop(interp, sys.stdin, sys.stdout)
    finally:
        interp.close()
    return 0
