"""The guest's own programs (``tools/_programs.py``) on a real guest file system."""

from __future__ import annotations

import pytest

from vcbsim.simulator import Host
from vcbsim.simulator.tools._programs import NOT_FOUND, find_program, run_command_line, run_program


@pytest.fixture(scope="module")
def host() -> Host:
    return Host.demo("esxi-7.0")


def _fs(host: Host, family: str):  # noqa: ANN202 - a GuestFileSystem
    vm = next(vm for vm in host.vms.values() if vm.os_family == family)
    return vm.guest


def test_programs_are_found_as_the_guest_finds_them(host: Host) -> None:
    linux, windows = _fs(host, "linux"), _fs(host, "windows")
    assert find_program("/bin/echo", linux).system == "echo"
    assert find_program("sh", linux).system == "sh"
    assert find_program("/opt/bin/echo", linux) is None  # not on the PATH
    assert find_program("C:\\Windows\\System32\\cmd.exe", windows).system == "cmd.exe"
    assert find_program("c:/windows/system32/CMD", windows).system == "cmd.exe"  # case, slashes, .exe
    assert find_program("/bin/echo", windows) is None
    windows.mkdir("C:\\tools")
    windows.write_bytes("C:\\tools\\job.bat", b"exit 4\r\n")
    found = find_program("C:\\tools\\job.bat", windows)
    assert found is not None and found.system is None
    assert run_program(found, [], windows).exit_code == 4


def test_sh_command_lines_follow_the_shells_rules(host: Host) -> None:
    fs = _fs(host, "linux")
    assert run_command_line("true && exit 3", fs).exit_code == 3
    assert run_command_line("false && exit 3", fs).exit_code == 1
    assert run_command_line("false || exit 5; exit 6", fs).exit_code == 5
    assert run_command_line("no-such-tool", fs).exit_code == NOT_FOUND["linux"]
    out = run_command_line("mkdir -p /srv/wf && echo hi > /srv/wf/a.txt && cat /srv/wf/a.txt", fs)
    assert out.exit_code == 0 and fs.read_bytes("/srv/wf/a.txt") == b"hi\n"
    assert run_command_line("rm /srv/wf/a.txt; test -e /srv/wf/a.txt", fs).exit_code == 1
    assert run_command_line("rm /srv/wf/a.txt", fs).exit_code == 1 and run_command_line("rm -f /srv/wf/a.txt", fs).exit_code == 0
    assert run_command_line("sleep 2.5; sleep 1", fs).duration == 3.5


def test_cmd_command_lines_and_built_ins(host: Host) -> None:
    fs = _fs(host, "windows")
    assert run_command_line("mkdir C:\\wfu & echo x > C:\\wfu\\f.txt & type C:\\wfu\\f.txt", fs).exit_code == 0
    assert run_command_line("mkdir C:\\wfu", fs).exit_code == 1  # it exists
    assert run_command_line("type C:\\none.txt || exit /b 9", fs).exit_code == 9
    assert run_command_line("del C:\\wfu\\f.txt && type C:\\wfu\\f.txt", fs).exit_code == 1
    assert run_command_line("frobnicate.exe", fs).exit_code == NOT_FOUND["windows"]
