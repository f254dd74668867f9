"""Outbound connections to public addresses only: the SSRF guard for image pre-flight and result downloads.

`GuardedBackend` is an httpcore network backend. httpx hands it the URL's host
name; it resolves the name itself, refuses when any answer is not a public
address, and opens the TCP connection to the address it checked. TLS SNI and
the Host header still carry the original name (httpcore sets them from the
URL), so certificates verify as usual. Because resolving, checking and
connecting happen in one call, a DNS answer that changes between check and
connect (rebinding) cannot slip through, and every redirect hop, being a new
connection, is checked the same way. The trusted origins (the declared sandbox's and the operator's
staging bucket's, exactly `host:port`) may also be reached on loopback; nothing else may.

Why not a library: the candidates (advocate, httpx-secure) either target
requests, rewrite URLs, or lean on `ipaddress.is_global` alone, which misses
IPv4 carried inside IPv6 (6to4, NAT64) and some multicast and site-local
forms. Classification here is the standard library's `ipaddress` plus those
cases, in one small function that the tests walk class by class.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

from cutout_mcp.upstream.tls import shared_ssl_context

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""`(host, port) -> addresses`; injected in tests, `system_resolver` otherwise."""

CLOUD_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server (a public-looking address)
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
    )
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)  # RFC 1918 and IPv6 unique-local


class BlockedAddressError(Exception):
    """The URL's host is, or resolves to, an address the server must not reach."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} resolves to {address}, a {reason} address")
        self.host, self.address, self.reason = host, address, reason


class ResolutionError(Exception):
    """The host name has no address (or the lookup failed)."""


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64, IPv4-compatible), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why `ip` must not be reached (a short class name), or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped (zone-local)"
        if ip.teredo is not None:
            return "Teredo tunnel"
        if ip in _NAT64_LOCAL:
            return "NAT64 local-use"
        inner = embedded_ipv4(ip)
        if inner is not None:
            reason = blocked_reason(inner)
            return f"{reason} (IPv4 {inner} inside IPv6)" if reason else None
    if ip in CLOUD_METADATA:
        return "cloud metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "carrier-grade NAT"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local"
    if any(ip in net for net in _PRIVATE if net.version == ip.version):
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "special-purpose (not publicly routable)"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host`."""
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ResolutionError(f"{host} could not be resolved ({exc.strerror or exc})") from exc
    return [str(info[4][0]) for info in infos]


def origin_key(origin: str) -> tuple[str, int] | None:
    """`(host, port)` of an origin such as `http://127.0.0.1:8765`, for the trusted set."""
    parts = urlsplit(origin.rstrip("/"))
    if not parts.hostname:
        return None
    return parts.hostname.lower(), parts.port or (443 if parts.scheme == "https" else 80)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to the checked address."""

    def __init__(
        self,
        *,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
        trusted: Iterable[tuple[str, int]] = (),
    ) -> None:
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()
        self._trusted = frozenset(trusted)

    async def vet(self, host: str, port: int) -> str:
        """The address to connect to for `host`, once every address it has is allowed."""
        host = host.strip("[]").lower()
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            answers = await self._resolver(host, port)
            try:
                addresses = [ipaddress.ip_address(a) for a in answers]
            except ValueError:
                raise ResolutionError(f"{host} resolved to something that is not an IP address") from None
        if not addresses:
            raise ResolutionError(f"{host} has no address")
        # A trusted origin (the declared sandbox's, the staging bucket's) may also be on loopback; every
        # other address, its own included, must be public.
        trusted = (host, port) in self._trusted
        for ip in addresses:
            reason = None if trusted and ip.is_loopback else blocked_reason(ip)
            if reason:
                raise BlockedAddressError(host, str(ip), reason)
        return str(addresses[0])

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore backend interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await self.vet(host, port)
        return await self._inner.connect_tcp(
            address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore backend interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddressError(path, path, "Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(
    backend: GuardedBackend, *, max_connections: int = 10, keepalive: int = 0, keepalive_expiry: float | None = None
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection goes through `backend`.

    httpx has no public hook for a network backend, so the transport's
    connection pool is replaced by one built with it (same TLS defaults). A kept-alive connection was
    vetted when it was opened, so keeping some (`keepalive`) is as safe as keeping none.
    That writes a private attribute of httpx's transport, so `pyproject.toml`
    pins httpx and httpcore to the versions this was tested with, and
    `tests/test_preflight.py::test_the_guarded_backend_makes_every_connection`
    fails if a new httpx stops using the replaced pool.
    """
    ssl_context = shared_ssl_context()
    # given the context, the transport does not build (and then discard) a second one of its own
    transport = httpx.AsyncHTTPTransport(retries=0, verify=ssl_context)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=max_connections,
        max_keepalive_connections=keepalive,
        keepalive_expiry=keepalive_expiry,
        network_backend=backend,
    )
    return transport
