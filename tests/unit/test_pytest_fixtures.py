"""The pytest plugin's host and server fixtures (docs/pytest-fixtures.md)."""

from __future__ import annotations

import pytest

from vcbsim.conformance._pytest_plugin import VSphereServer

DEMO = ["rhel5-web", "win2003-sql"]


def _names(host) -> list[str]:
    return sorted(vm.name for vm in host.vms.values())


def test_esx_host_is_the_demo_host(esx_host) -> None:
    assert _names(esx_host) == DEMO
    assert esx_host.profile.name == "esx-3.5u2"


def test_esx_host_is_fresh_per_test_a(esx_host) -> None:
    esx_host.add_vm("only-in-a", os_family="linux", disks=[1024 * 1024])
    assert "only-in-a" in _names(esx_host)


def test_esx_host_is_fresh_per_test_b(esx_host) -> None:
    assert _names(esx_host) == DEMO


def test_esx_host_empty_has_no_vms(esx_host_empty) -> None:
    assert esx_host_empty.vms == {}


@pytest.mark.parametrize("round_", [1, 2])
def test_module_host_is_reset_between_tests(esx_host_module, round_) -> None:
    assert _names(esx_host_module) == DEMO, "a change from the previous test survived"
    vm = esx_host_module.find_vm("name:rhel5-web")
    esx_host_module.create_snapshot(vm, f"left-by-{round_}")
    esx_host_module.add_vm(f"extra-{round_}", os_family="linux", disks=[1024 * 1024])


@pytest.mark.parametrize("round_", [1, 2])
def test_session_host_is_reset_between_tests(esx_host_session, round_) -> None:
    assert _names(esx_host_session) == DEMO
    assert not list(esx_host_session.find_vm("name:rhel5-web").snapshots())
    esx_host_session.create_snapshot(esx_host_session.find_vm("name:rhel5-web"), "stale")


def test_vsphere_server_gives_url_credentials_si_and_control(vsphere_server) -> None:
    assert vsphere_server.url == f"https://127.0.0.1:{vsphere_server.port}/sdk"
    assert (vsphere_server.user, vsphere_server.password) == ("user", "pass")
    assert vsphere_server.si.content.about.apiType == "HostAgent"
    assert sorted(vm["name"] for vm in vsphere_server.control.vms()) == DEMO
    assert _names(vsphere_server.esx_host) == DEMO
    assert vsphere_server.si is vsphere_server.si  # one kept session


@pytest.mark.parametrize("round_", [1, 2])
def test_module_server_is_reset_and_keeps_its_session(vsphere_server_module, round_) -> None:
    srv = vsphere_server_module
    assert sorted(vm["name"] for vm in srv.control.vms()) == DEMO
    assert srv.control.faults() == []
    srv.control.add_vm(f"extra-{round_}", os="linux", disks=["1MiB"])
    srv.control.add_fault("snapshot.create", target="*")
    # the pyVmomi session made in an earlier test still works after the reset
    assert srv.si.content.sessionManager.currentSession is not None


def test_session_server_is_reset(vsphere_server_session) -> None:
    srv = vsphere_server_session
    assert sorted(vm["name"] for vm in srv.control.vms()) == DEMO
    srv.control.add_vm("extra", os="linux", disks=["1MiB"])


def test_session_server_is_reset_again(vsphere_server_session) -> None:
    assert sorted(vm["name"] for vm in vsphere_server_session.control.vms()) == DEMO


def test_vsphere_server_without_pytest_serves_a_given_host_and_stops() -> None:
    from urllib.error import URLError

    from vcbsim.simulator import Host
    from vcbsim.simulator.soap import ControlClient

    host = Host("esxi-7.0")
    host.add_vm("tiny", os_family="linux", disks=[1024 * 1024])
    with VSphereServer(host, user="ci", password="s3cret", http=True) as srv:
        assert srv.url.startswith("http://127.0.0.1:")
        assert srv.esx_host is host
        assert srv.si.content.about.version.startswith("7.0")
        assert [vm["name"] for vm in srv.control.vms()] == ["tiny"]
        url = srv.url
    assert repr(srv) == "VSphereServer(stopped)"
    with pytest.raises(RuntimeError, match="not started"):
        _ = srv.url
    with pytest.raises((URLError, OSError)):
        ControlClient(url, "ci", "s3cret", timeout=5).vms()


def test_stop_logs_the_sessions_out() -> None:
    from pyVim.connect import SmartConnect

    srv = VSphereServer().start()
    try:
        srv.connect()
        _ = srv.si
        watcher = SmartConnect(host=srv.host, port=srv.port, user=srv.user, pwd=srv.password,
                               disableSslCertValidation=True)
        assert len(watcher.content.sessionManager.sessionList) == 3
        srv.logout()  # what stop() does first
        assert len(watcher.content.sessionManager.sessionList) == 1
    finally:
        srv.stop()


def test_small_disks_keep_the_demo_inventory_on_small_disks() -> None:
    with VSphereServer(small=True, http=True) as srv:
        assert sorted(vm["name"] for vm in srv.control.vms()) == DEMO
        assert all(d.capacity <= 96 * 1024 * 1024 for vm in srv.esx_host.vms.values() for d in vm.disks)
        srv.reset()  # the reset rebuilds the small inventory
        assert all(d.capacity <= 96 * 1024 * 1024 for vm in srv.esx_host.vms.values() for d in vm.disks)
