"""Which URLs and addresses atlaswatch may fetch: http(s) only, and no private networks by default."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

ALLOWED_SCHEMES = frozenset({"http", "https"})
NAT64 = ipaddress.ip_network("64:ff9b::/96")
CGNAT = ipaddress.ip_network("100.64.0.0/10")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedURL(Exception):
    """A URL refused before any I/O: bad scheme, no host, or a forbidden address."""


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=())

    @classmethod
    def from_settings(cls, allow_private: bool, networks: tuple[str, ...]) -> AddressPolicy:
        try:
            parsed = tuple(ipaddress.ip_network(item, strict=False) for item in networks)
        except ValueError as error:
            raise BlockedURL(f"[fetch] allowed_networks has an invalid network: {error}") from error
        return cls(allow_private=allow_private, allowed_networks=parsed)


def unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address hidden in an IPv4-mapped, NAT64 or 6to4 IPv6 address, else the address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def forbidden_reason(address: IPAddress) -> str | None:
    """Why fetching from this address is refused by default, or None when it is a public address."""
    address = unwrap(address)
    checks = (
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local or cloud metadata address"),
        (
            isinstance(address, ipaddress.IPv4Address) and address in CGNAT,
            "a carrier-grade NAT address",
        ),
        (address.is_private, "a private-network address"),
        (address.is_multicast, "a multicast address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for failed, reason in checks if failed), None)


def check_address(address: IPAddress, policy: AddressPolicy) -> None:
    if any(unwrap(address) in network or address in network for network in policy.allowed_networks):
        return
    reason = forbidden_reason(address)
    if reason and not policy.allow_private:
        raise BlockedURL(
            f"{address} is {reason}; set [fetch] allow_private_networks = true, or list it in "
            "[fetch] allowed_networks, to poll feeds on your own network"
        )


def check_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; anything else is refused before any I/O."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise BlockedURL(f"{url!r} is not a valid URL: {error}") from error
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise BlockedURL(
            f"{url!r}: only http and https URLs are fetched, not {scheme or 'a relative URL'}"
        )
    if not parts.hostname:
        raise BlockedURL(f"{url!r} has no host name")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the name resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def check_target(url: str, policy: AddressPolicy) -> list[IPAddress]:
    """Refuse the URL unless its scheme is allowed and every address it resolves to is allowed."""
    _, host, port = check_url(url)
    addresses = resolve(host, port)
    for address in addresses:
        check_address(address, policy)
    return addresses
