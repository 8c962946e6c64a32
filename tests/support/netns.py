"""Several "hosts" on one machine for tests: Linux network namespaces joined by a bridge in the root namespace.

    with network(2) as net:                      # or the ``two_hosts`` fixture
        a, b = net.hosts
        server = a.popen([sys.executable, "-m", "http.server", "8080", "--bind", a.address])
        wait_for_tcp(a.address, 8080, process=server)   # from the root namespace
        b.run([...])                              # reaches a.address too, and net.gateway

Topology, one free /24 per network (``10.201.K.0/24``, K in 1..254, never one that overlaps an address or a
route already on the machine):

    root namespace   bridge ``cbb<tag>`` holding ``10.201.K.1`` (``net.gateway``), ports ``cbv<tag>h<i>``
    host i           namespace ``cbn-<tag>-h<i>``: ``lo`` up, ``eth0`` = ``10.201.K.<i+1>`` (``host.address``),
                     the other end of the veth ``cbv<tag>h<i>``

All hosts and the root namespace share one subnet on one bridge, so host-to-host traffic is switched by the
bridge: nothing is routed, ``net.ipv4.ip_forward`` is never touched. The hosts have no default route: they reach
the subnet and their own loopback, nothing else. A server in the root namespace is reachable from the hosts when
it listens on ``net.gateway`` (not on 127.0.0.1, which is each namespace's own loopback); start it after the
network is up, since the address exists only while it is. ``<tag>`` is the pid (hex) and a counter, so runs in
parallel never share a name. Closing (also after a failure, half-way through setup included) stops the processes
started with ``Host.popen``, kills whatever else is left inside the namespaces, then deletes the veths, the
namespaces and the bridge; ``Network.leftovers()`` lists anything of this network still on the machine.

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2's ``ip``; without them the fixture fails with a message
saying so instead of skipping.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

SUBNET_PREFIX = "10.201"  # networks are 10.201.K.0/24
MAX_HOSTS = 99  # interface names stay within Linux's 15 characters
IFNAMSIZ = 15
COMMAND_TIMEOUT = 15.0
_counter = itertools.count(1)


class NetnsError(RuntimeError):
    """An ``ip`` command failed while building or removing a network."""


def require_netns() -> str:
    """The path of ``ip``; fails the test with a clear message when namespaces can't be made here (never skips)."""
    if not sys.platform.startswith("linux"):
        pytest.fail(f"tests with network namespaces need Linux (this is {sys.platform})", pytrace=False)
    ip = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if ip is None:
        pytest.fail(
            "tests with network namespaces need iproute2's `ip` command, which is not installed "
            "(Debian/Ubuntu: apt-get install iproute2)",
            pytrace=False,
        )
    if os.geteuid() != 0:
        pytest.fail(
            f"tests with network namespaces must run as root (CAP_NET_ADMIN, CAP_SYS_ADMIN); euid is {os.geteuid()}",
            pytrace=False,
        )
    return ip


@dataclass(eq=False)
class Host:
    """One network namespace: ``address`` is where the root namespace and the other hosts reach it."""

    name: str  # the namespace (``ip netns``)
    address: str  # of its eth0, e.g. 10.201.7.2
    veth: str  # the root end of its veth, a port of the bridge
    network: Network = field(repr=False)

    def popen(self, args: Sequence[str], *, env: Mapping[str, str] | None = None, **kwargs: Any) -> subprocess.Popen:
        """``args`` started inside this host (``ip netns exec``, which execs: the Popen's pid is the command's).

        ``env`` is the whole environment, as for Popen (None: this process's); other keyword arguments go to
        Popen. The network stops the process when it closes, if the test has not.
        """
        return self.network._track(
            subprocess.Popen(
                [self.network.ip, "netns", "exec", self.name, *args],
                env=dict(env) if env is not None else None,
                **kwargs,
            )
        )

    def run(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 30.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``args`` run to completion inside this host, output captured as text; AssertionError when it fails."""
        process = self.popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            raise AssertionError(f"{list(args)} in {self.name} ran over {timeout}s: {stdout}{stderr}") from None
        if check and process.returncode != 0:
            raise AssertionError(f"{list(args)} in {self.name} exited {process.returncode}: {stdout}{stderr}")
        return subprocess.CompletedProcess(list(args), process.returncode, stdout, stderr)


class Network:
    """Hosts on one bridge; build with :func:`network` (or ``Network(count).open()`` and ``close()``)."""

    def __init__(self, count: int = 2) -> None:
        if not 1 <= count <= MAX_HOSTS:
            raise ValueError(f"a network has 1 to {MAX_HOSTS} hosts, not {count}")
        self.ip = require_netns()
        self.count = count
        self.tag = f"{os.getpid():x}n{next(_counter) % 0x100:x}"  # wraps: never 256 alive at once
        self.bridge = f"cbb{self.tag}"
        self.hosts: list[Host] = []
        self.subnet: ipaddress.IPv4Network | None = None
        self.gateway = ""  # the root namespace's address on the bridge, once open
        self._namespaces: list[str] = []  # made so far (also half-made hosts), for close()
        self._veths: list[str] = []
        self._processes: list[subprocess.Popen] = []
        self._made: list[str] = []  # every name this network created, for leftovers()
        if len(f"cbv{self.tag}h{count}") > IFNAMSIZ:
            raise ValueError(f"interface names for tag {self.tag} would exceed {IFNAMSIZ} characters")

    # -- building ----------------------------------------------------------

    def open(self) -> Network:
        """Make the bridge, the subnet and the hosts; on any failure, undo what was made and raise."""
        try:
            self._made.append(self.bridge)
            self._ip("link", "add", "name", self.bridge, "type", "bridge")
            self._ip("link", "set", self.bridge, "up")
            self._claim_subnet()
            for number in range(1, self.count + 1):
                self._add_host(number)
            self._wait_until_up()
        except BaseException:
            with contextlib.suppress(Exception):
                self.close()
            raise
        return self

    def _claim_subnet(self) -> None:
        """Put the first free 10.201.K.1/24 on the bridge, checking afterwards that nobody else took K meanwhile."""
        start = os.getpid() % 254
        tried: set[int] = set()
        for _ in range(8):
            used = self._used_networks()
            for step in range(254):
                third = 1 + (start + step) % 254
                candidate = ipaddress.IPv4Network(f"{SUBNET_PREFIX}.{third}.0/24")
                if third not in tried and not any(candidate.overlaps(other) for other in used):
                    break
            else:
                raise NetnsError(f"no free /24 left in {SUBNET_PREFIX}.0.0/16")
            tried.add(third)
            gateway = f"{SUBNET_PREFIX}.{third}.1"
            self._ip("addr", "add", f"{gateway}/24", "dev", self.bridge)
            if not self._others_in(candidate):
                self.subnet, self.gateway = candidate, gateway
                return
            self._ip("addr", "del", f"{gateway}/24", "dev", self.bridge)  # a parallel run took it: next one
        raise NetnsError("could not claim a free /24 (other runs kept taking the candidates)")

    def _used_networks(self) -> list[ipaddress.IPv4Network]:
        used = [
            ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}").network
            for link in json.loads(self._ip("-j", "-4", "addr", "show") or "[]")
            for info in link.get("addr_info", [])
        ]
        for route in json.loads(self._ip("-j", "-4", "route", "show", "table", "all") or "[]"):
            with contextlib.suppress(ValueError):
                if route.get("dst", "default") != "default":
                    used.append(ipaddress.ip_network(route["dst"], strict=False))
        return [network for network in used if isinstance(network, ipaddress.IPv4Network)]

    def _others_in(self, subnet: ipaddress.IPv4Network) -> list[str]:
        return [
            link["ifname"]
            for link in json.loads(self._ip("-j", "-4", "addr", "show") or "[]")
            for info in link.get("addr_info", [])
            if link["ifname"] != self.bridge and ipaddress.ip_address(info["local"]) in subnet
        ]

    def _add_host(self, number: int) -> None:
        assert self.subnet is not None
        name, veth = f"cbn-{self.tag}-h{number}", f"cbv{self.tag}h{number}"
        address = str(self.subnet.network_address + number + 1)
        self._made += [name, veth]
        self._namespaces.append(name)
        self._ip("netns", "add", name)
        self._veths.append(veth)
        self._ip("link", "add", "name", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        self._ip("link", "set", veth, "master", self.bridge)
        self._ip("link", "set", veth, "up")
        self._ip("-n", name, "link", "set", "lo", "up")
        self._ip("-n", name, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        self._ip("-n", name, "link", "set", "eth0", "up")
        self.hosts.append(Host(name, address, veth, self))

    def _wait_until_up(self, timeout: float = 5.0) -> None:
        """Until the bridge, its ports and each host's eth0 have a carrier (a few ms after ``set up``)."""
        deadline = time.monotonic() + timeout
        while True:
            down = [name for name in [self.bridge, *self._veths] if not self._has_carrier(name)]
            down += [f"{host.name}/eth0" for host in self.hosts if not self._has_carrier("eth0", host.name)]
            if not down:
                return
            if time.monotonic() > deadline:
                raise NetnsError(f"links still down after {timeout}s: {down}")
            time.sleep(0.01)

    def _has_carrier(self, link: str, namespace: str | None = None) -> bool:
        where = ["-n", namespace] if namespace else []
        [info] = json.loads(self._ip(*where, "-j", "link", "show", "dev", link))
        return "LOWER_UP" in info.get("flags", []) and info.get("operstate") in ("UP", "UNKNOWN")

    # -- processes -----------------------------------------------------------

    def _track(self, process: subprocess.Popen) -> subprocess.Popen:
        self._processes.append(process)
        return process

    # -- removing ------------------------------------------------------------

    def close(self) -> None:
        """Stop the processes, then remove veths, namespaces and bridge; raises NetnsError listing what failed."""
        problems: list[str] = []
        for process in self._processes:
            _stop(process)
        for name in self._namespaces:
            problems += self._kill_inside(name)
        for veth in self._veths:  # deleting one end removes the pair at once (a namespace's own goes lazily)
            problems += self._delete(["link", "del", "dev", veth], f"veth {veth}")
        for name in self._namespaces:
            problems += self._delete(["netns", "del", name], f"namespace {name}")
        problems += self._delete(["link", "del", "dev", self.bridge], f"bridge {self.bridge}")
        self._veths, self._namespaces = [], []
        left = self.leftovers()
        if problems or left:
            raise NetnsError(f"cleaning up network {self.tag}: {problems}; still present: {left}")

    def _kill_inside(self, namespace: str) -> list[str]:
        """SIGKILL every process still inside the namespace (left by a test's processes); all were started here."""
        deadline = time.monotonic() + 5.0
        while True:
            try:
                pids = [int(pid) for pid in self._ip("netns", "pids", namespace).split()]
            except NetnsError:
                return []  # the namespace is not there: nothing inside
            if not pids:
                return []
            if time.monotonic() > deadline:
                return [f"processes {pids} still inside {namespace}"]
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def _delete(self, args: list[str], what: str) -> list[str]:
        try:
            self._ip(*args)
        except NetnsError as error:
            if "Cannot find device" in str(error) or "No such file" in str(error):
                return []
            return [f"{what}: {error}"]
        return []

    def leftovers(self) -> list[str]:
        """Namespaces and links of this network still on the machine (empty once closed)."""
        namespaces = [line.split()[0] for line in self._ip("netns", "list").splitlines() if line.strip()]
        links = [link["ifname"] for link in json.loads(self._ip("-j", "link", "show") or "[]")]
        return [name for name in namespaces + links if name in self._made]

    def _ip(self, *args: str) -> str:
        result = subprocess.run([self.ip, *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        if result.returncode != 0:
            raise NetnsError(f"`ip {' '.join(args)}` exited {result.returncode}: {result.stderr.strip()}")
        return result.stdout


def _stop(process: subprocess.Popen, grace: float = 5.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def network(count: int = 2) -> Iterator[Network]:
    """``count`` hosts on a fresh bridge and /24, removed again when the block ends (also on failure)."""
    net = Network(count).open()
    try:
        yield net
    finally:
        net.close()


@pytest.fixture
def two_hosts() -> Iterator[Network]:
    """Two hosts. In a test module: ``two_hosts = netns.two_hosts`` (pytest finds fixtures by attribute name; a
    ``from … import two_hosts`` works too but trips ruff's F401/F811)."""
    with network(2) as net:
        yield net


def wait_for_tcp(address: str, port: int, timeout: float = 10.0, process: subprocess.Popen | None = None) -> None:
    """Until something accepts TCP connections at ``address:port`` (from this namespace); fails fast if
    ``process`` (the server) exits first."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode} before {address}:{port} opened")
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listening at {address}:{port} after {timeout}s") from None
            time.sleep(0.02)
