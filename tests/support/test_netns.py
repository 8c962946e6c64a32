"""The network-namespace hosts of tests/support/netns.py: who reaches whom, and that nothing is left behind."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import netns
from tests.support.netns import Host, NetnsError, Network, network, wait_for_tcp

# GET http://ADDRESS:PORT/PATH from wherever it runs; prints "STATUS BODY".
FETCH = (
    "import http.client, sys\n"
    "connection = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=5)\n"
    "connection.request('GET', sys.argv[3])\n"
    "response = connection.getresponse()\n"
    "print(response.status, response.read().decode())\n"
)
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
two_hosts = netns.two_hosts  # the fixture, made visible to the tests of this module


def fetch_from(host: Host, address: str, port: int, path: str = "/") -> str:
    return host.run([sys.executable, "-c", FETCH, address, str(port), path]).stdout.strip()


def fetch_here(address: str, port: int, path: str = "/") -> tuple[int, str]:
    connection = http.client.HTTPConnection(address, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def ip_names() -> str:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return listed + subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout


def gone(pid: int) -> bool:
    """Not running any more (a zombie waiting for a reaper that is not us counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


@pytest.fixture
def root_server(two_hosts: Network) -> Iterator[tuple[str, int]]:
    """An HTTP server in the root namespace on the bridge address, answering with the caller's address."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = f"root namespace sees {self.client_address[0]}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((two_hosts.gateway, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield two_hosts.gateway, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_on_host_a_answers_the_root_namespace_and_host_b_and_all_is_removed_after(tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("served from host A")
    forward_before = IP_FORWARD.read_text()
    with network(2) as net:
        a, b = net.hosts
        assert a.address != b.address and {a.address, b.address} <= set(map(str, net.subnet.hosts()))  # type: ignore[union-attr]
        server = a.popen(
            [sys.executable, "-m", "http.server", "8080", "--bind", a.address, "--directory", str(tmp_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_tcp(a.address, 8080, process=server)
        assert fetch_here(a.address, 8080, "/marker.txt") == (200, "served from host A")
        assert fetch_from(b, a.address, 8080, "/marker.txt") == "200 served from host A"
        names = [net.bridge, *(host.name for host in net.hosts), *(host.veth for host in net.hosts)]
        assert all(name in ip_names() for name in names)
        assert server.poll() is None
    assert server.poll() is not None  # stopped by the network
    assert net.leftovers() == []
    assert not any(name in ip_names() for name in names)
    assert IP_FORWARD.read_text() == forward_before  # bridged, not routed: forwarding never needed


def test_a_server_on_the_bridge_address_is_reachable_from_inside_each_host(
    two_hosts: Network, root_server: tuple[str, int]
) -> None:
    address, port = root_server
    for host in two_hosts.hosts:
        assert fetch_from(host, address, port) == f"200 root namespace sees {host.address}"


def test_each_host_has_its_own_loopback_and_no_route_out_of_the_subnet(two_hosts: Network) -> None:
    own_loopback = (
        "import socket\n"
        "server = socket.create_server(('127.0.0.1', 0))\n"
        "socket.create_connection(server.getsockname(), timeout=2).close()\n"
        "print('loopback works')\n"
    )
    with socket.create_server(("127.0.0.1", 0)) as root_only:  # on the root namespace's loopback: not theirs
        probe = (
            "import socket, sys\n"
            "try:\n"
            "    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2)\n"
            "except ConnectionRefusedError:\n"
            "    print('refused')\n"
        )
        for host in two_hosts.hosts:
            assert host.run([sys.executable, "-c", own_loopback]).stdout == "loopback works\n"
            assert host.run([sys.executable, "-c", probe, str(root_only.getsockname()[1])]).stdout == "refused\n"
            routes = host.run(["ip", "-4", "route"]).stdout
            assert "default" not in routes and str(two_hosts.subnet) in routes


def test_the_environment_is_passed_to_processes_inside_a_host(two_hosts: Network) -> None:
    host = two_hosts.hosts[1]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CORPUSBOT_PROBE": "from the test"}
    shown = host.run([sys.executable, "-c", "import os; print(os.environ['CORPUSBOT_PROBE'])"], env=env)
    assert shown.stdout == "from the test\n"
    [line] = [line for line in host.run(["ip", "netns", "identify"]).stdout.splitlines() if line]
    assert line == host.name


def test_everything_is_removed_when_the_block_fails_even_processes_left_inside() -> None:
    with pytest.raises(RuntimeError, match="the test failed"), network(2) as net:
        sleeper = net.hosts[0].popen(["sleep", "60"])
        orphan = int(net.hosts[1].run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"]).stdout)
        assert not gone(orphan) and sleeper.poll() is None
        raise RuntimeError("the test failed")
    assert sleeper.poll() == -signal.SIGTERM  # its own processes are asked to stop first
    assert gone(orphan)  # the rest inside is killed
    assert net.leftovers() == []


def test_a_setup_failing_half_way_removes_what_it_had_made(monkeypatch: pytest.MonkeyPatch) -> None:
    add_host = Network._add_host

    def fail_on_the_second(self: Network, number: int) -> None:
        if number == 2:
            raise NetnsError("the second host could not be made")
        add_host(self, number)

    monkeypatch.setattr(Network, "_add_host", fail_on_the_second)
    half = Network(3)
    with pytest.raises(NetnsError, match="second host"):
        half.open()
    assert half._made == [half.bridge, f"cbn-{half.tag}-h1", f"cbv{half.tag}h1"]  # made, then removed
    assert half.leftovers() == []


def test_the_fixture_fails_with_a_clear_message_without_ip_or_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(shutil, "which", lambda *args, **kwargs: None)
        with pytest.raises(pytest.fail.Exception, match="iproute2's `ip` command"):
            netns.require_netns()
    with monkeypatch.context() as patch:
        patch.setattr(os, "geteuid", lambda: 1000)
        with pytest.raises(pytest.fail.Exception, match="must run as root"):
            Network(2)


def test_interface_names_fit_in_15_characters_for_any_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getpid", lambda: 4194304)  # Linux's largest pid_max
    big = Network(netns.MAX_HOSTS)
    names = [big.bridge, *(f"cbv{big.tag}h{number}" for number in range(1, netns.MAX_HOSTS + 1))]
    assert max(map(len, names)) <= netns.IFNAMSIZ
    with pytest.raises(ValueError):
        Network(netns.MAX_HOSTS + 1)
