"""Where a webhook may go: https URLs whose addresses are public or explicitly allowed.

An endpoint is checked when it is registered and again at every attempt. At an attempt
the host is resolved once, every address checked, and the connection made to a checked
address with the URL's host name kept for the Host header, SNI and certificate check:
a name that resolves elsewhere a moment later (DNS rebinding) is never connected to.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from gateway.config.settings import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to (socket.getaddrinfo by default).
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL_LENGTH: Final = 2048
TIMEOUT_SECONDS: Final = 15.0
# What is read of an answer before the connection is closed: only the status is used.
MAX_RESPONSE_BYTES: Final = 64 * 1024


class AddressRefused(Exception):
    """An endpoint URL or one of its addresses is not allowed; the message says why."""


def system_resolver(host: str, port: int) -> Sequence[str]:
    """Return the addresses the system resolves a host to."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"the host {host} does not resolve") from exc
    return [str(info[4][0]) for info in found]


def check_url(url: str) -> tuple[str, int]:
    """Return a URL's host and port, or refuse a URL that is not plain https."""
    if len(url) > MAX_URL_LENGTH:
        raise AddressRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError as exc:
        raise AddressRefused("the URL cannot be parsed; write it as https://host/path") from exc
    if parts.scheme != "https":
        raise AddressRefused("the URL must be https://")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("the URL must not hold credentials (user:password@)")
    if not parts.hostname:
        raise AddressRefused("the URL has no host")
    if parts.fragment:
        raise AddressRefused("the URL must not have a #fragment")
    return parts.hostname, port


def allowed(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    """Return whether an address is public, or inside one of the allowed networks."""
    if any(address in network for network in networks if network.version == address.version):
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return allowed(address.ipv4_mapped, networks)
    return address.is_global and not address.is_multicast


def checked_addresses(
    host: str, port: int, networks: Sequence[IPNetwork], resolver: Resolver
) -> list[IPAddress]:
    """Resolve a host once; return its addresses (IPv4 first), refusing any not allowed."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    names = [str(literal)] if literal is not None else list(resolver(host, port))
    addresses = []
    for name in names:
        try:
            addresses.append(ipaddress.ip_address(name.split("%", 1)[0]))
        except ValueError as exc:
            raise AddressRefused(f"the host {host} resolved to something not an address") from exc
    if not addresses:
        raise AddressRefused(f"the host {host} does not resolve")
    for address in addresses:
        if not allowed(address, networks):
            raise AddressRefused(
                f"the host {host} resolves to {address}, a private, loopback, link-local or"
                " reserved address; allow its network in PAYSIEVE_OUTBOUND_ALLOW_NETWORKS"
                " if the endpoint is an internal service"
            )
    return sorted(set(addresses), key=lambda a: (a.version, int(a)))


def check_endpoint(url: str, networks: Sequence[IPNetwork], resolver: Resolver) -> None:
    """Refuse an endpoint URL that is not https or resolves to an address not allowed."""
    host, port = check_url(url)
    checked_addresses(host, port, networks, resolver)


class _PinnedAdapter(HTTPAdapter):
    """Connect to the address in the URL while verifying TLS for the endpoint's host name."""

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._hostname
        kwargs["assert_hostname"] = self._hostname
        super().init_poolmanager(*args, **kwargs)


@dataclass(frozen=True)
class Answer:
    """What an endpoint answered: the status and a Retry-After, never the body."""

    status: int
    retry_after: str | None
    duration_ms: int


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    networks: Sequence[IPNetwork],
    resolver: Resolver,
    ca_bundle: str = "",
) -> Answer:
    """POST body to url at a checked address; follow no redirect; read little of the answer.

    Raises AddressRefused, or requests' errors for timeouts and connection failures.
    """
    host, port = check_url(url)
    address = checked_addresses(host, port, networks, resolver)[0]
    parts = urlsplit(url)
    pinned = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    target = urlunsplit(("https", pinned, parts.path or "/", parts.query, ""))
    netloc_host = f"[{host}]" if ":" in host else host
    sent = dict(headers) | {"Host": netloc_host if port == 443 else f"{netloc_host}:{port}"}
    started = time.monotonic()
    with requests.Session() as session:
        # No proxy from the environment: the connection must go to the checked address.
        session.trust_env = False
        session.mount("https://", _PinnedAdapter(host))
        response = session.post(
            target,
            data=body,
            headers=sent,
            timeout=TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,
            verify=ca_bundle or True,
        )
        try:
            read = 0
            for chunk in response.iter_content(8192):
                read += len(chunk)
                if read >= MAX_RESPONSE_BYTES or time.monotonic() - started > TIMEOUT_SECONDS:
                    break
        finally:
            response.close()
    duration_ms = int((time.monotonic() - started) * 1000)
    return Answer(response.status_code, response.headers.get("Retry-After"), duration_ms)
