"""Per-endpoint allowlists of the networks a provider's deliveries may come from."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from gateway.config.settings import EndpointConfig, Settings
from gateway.core.errors import ConfigurationError, Forbidden

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(raw: object, *, where: str) -> tuple[Network, ...]:
    """Return the CIDR networks of an endpoint's ``source_networks`` option."""
    if raw is None or raw == "":
        return ()
    items: Iterable[object]
    if isinstance(raw, str):
        items = raw.split(",")
    elif isinstance(raw, list | tuple):
        items = raw
    else:
        raise ConfigurationError(f"{where}: source_networks must be a list of CIDR networks")
    networks: list[Network] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            # strict=False: an operator pasting 54.187.174.169/24 means the /24 around it.
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ConfigurationError(f"{where}: {text!r} is not a CIDR network") from None
    return tuple(networks)


class SourceNetworks:
    """Refuse deliveries from outside an endpoint's configured networks (off when unset)."""

    def __init__(self, settings: Settings) -> None:
        self._networks: dict[tuple[str, str], tuple[Network, ...]] = {}
        for endpoint in settings.endpoints:
            where = f"endpoint {endpoint.provider}/{endpoint.name}"
            networks = parse_networks(endpoint.options.get("source_networks"), where=where)
            if networks:
                self._networks[(endpoint.provider, endpoint.name)] = networks

    def check(self, endpoint: EndpointConfig, address: str | None) -> None:
        """Raise Forbidden unless the address is inside the endpoint's allowlist, if it has one."""
        networks = self._networks.get((endpoint.provider, endpoint.name))
        if not networks:
            return
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            ip = None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
            ip = ip.ipv4_mapped
        if ip is None or not any(ip in network for network in networks):
            # The address is not echoed: error answers carry nothing from the request.
            raise Forbidden(
                "deliveries to this endpoint are not accepted from this address",
                code="source_not_allowed",
            )
