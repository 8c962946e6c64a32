"""Which hosts may be fetched: the server-side request forgery guard.

A URL given to ``corpusbot index`` is fetched by the server, from inside its network. Unless
allow-listed, a host is refused when any address it resolves to is not a public one (loopback,
private, link-local, multicast, reserved, unspecified, shared or otherwise not global). The
check runs after DNS resolution and before connecting, for the first request and every
redirect; the connection then goes to the address that was checked (``fetch`` pins it), so a
DNS answer that changes between the check and the connection (rebinding) cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]  # (host, port) -> its addresses, as text


class Refused(Exception):
    """A URL that must not be fetched; the message says why and how to allow it."""


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (``getaddrinfo``)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise Refused(f"{host} does not resolve ({error})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class AllowList:
    """Intranet sources fetched although their addresses are not public: host names and networks."""

    hosts: frozenset[str] = frozenset()  # lower-case names; ".corp.example" allows every name under it
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """From entries such as ``wiki.corp.example``, ``.corp.example``, ``10.0.0.0/8`` or ``192.0.2.7``.

        Raises ``ValueError`` naming the entry that is neither a host name nor an address or network.
        """
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry.rstrip(".")
            if not name or any(not part or len(part) > 63 for part in name.lstrip(".").split(".")):
                raise ValueError(f"{raw.strip()!r} is neither a host name nor an IP address or network")
            if any(ch in name for ch in "/:@ \t[]"):
                raise ValueError(f"{raw.strip()!r} is neither a host name nor an IP address or network")
            hosts.add(name)
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return name in self.hosts or any(entry.startswith(".") and name.endswith(entry) for entry in self.hosts)

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def __bool__(self) -> bool:
        return bool(self.hosts or self.networks)


def is_public(address: IPAddress) -> bool:
    """A global unicast address: not loopback, private, link-local, multicast, reserved, unspecified or shared."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public(mapped)
    return address.is_global and not (
        address.is_multicast
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or address.is_unspecified
    )


class Guard:
    """Vets a host before every connection; ``resolve`` is injectable so tests never touch the network."""

    def __init__(self, allow: AllowList | None = None, resolve: Resolver | None = None) -> None:
        self.allow = allow or AllowList()
        self.resolve = resolve or system_resolver

    def vet(self, host: str, port: int) -> str:
        """The address to connect to for ``host``; raises ``Refused`` when it must not be fetched.

        Every address the host resolves to must pass, not only the first: a resolver answering
        a public and a private address must not get the private one through on a later connection.
        """
        if not host:
            raise Refused("the URL has no host")
        literal = _literal(host)
        addresses = [literal] if literal is not None else [_parse(a) for a in self.resolve(host, port)]
        if not addresses:
            raise Refused(f"{host} does not resolve to any address")
        if self.allow.allows_host(host):
            return str(addresses[0])
        for address in addresses:
            if not is_public(address) and not self.allow.allows_address(address):
                raise Refused(
                    f"{host} resolves to {address}, which is not a public address; to fetch an intranet "
                    "source, allow it with CORPUSBOT_FETCH_ALLOW (host names or networks, comma-separated)"
                )
        return str(addresses[0])


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _parse(text: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 scope ("fe80::1%eth0") is no part of it
    except ValueError:
        raise Refused(f"the resolver gave {text!r}, which is not an IP address") from None
