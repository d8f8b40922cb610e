"""Trusted proxies and per-endpoint source networks."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from gateway.config.settings import load_settings
from gateway.core.errors import ConfigurationError
from gateway.ingest.sources import parse_networks
from tests.support.database import all_rows
from tests.support.webhooks import sample, signed_post, stripe_endpoint

STRIPE_NETWORK = "203.0.113.0/24"


def allowlisted(**options: Any) -> dict[str, Any]:
    """Return a Stripe endpoint table accepting deliveries from STRIPE_NETWORK only."""
    return {**stripe_endpoint(), "source_networks": [STRIPE_NETWORK], **options}


def test_delivery_from_inside_the_allowlist_is_stored(make_app: Any) -> None:
    client = make_app(endpoints=[allowlisted()]).test_client()
    client.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    response = signed_post(client, "stripe", sample("stripe", "charge.succeeded"))
    assert response.get_json()["status"] == "stored"


def test_delivery_from_outside_is_403_before_the_body_is_read(
    make_app: Any, engine: Engine
) -> None:
    client = make_app(endpoints=[allowlisted()]).test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    response = signed_post(client, "stripe", sample("stripe", "charge.succeeded"))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "source_not_allowed"
    assert "198.51.100.9" not in response.get_data(as_text=True)
    assert all_rows(engine)["events"] == []


def test_forwarded_for_is_ignored_without_trusted_proxies(make_app: Any) -> None:
    client = make_app(endpoints=[allowlisted()]).test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    forged = {"X-Forwarded-For": "203.0.113.7"}
    response = signed_post(client, "stripe", sample("stripe", "charge.succeeded"), headers=forged)
    assert response.status_code == 403


def test_forwarded_for_is_believed_for_the_configured_hops(make_app: Any) -> None:
    client = make_app(endpoints=[allowlisted()], trusted_proxy_hops=1).test_client()
    # The load balancer connects; it appends the provider's address as the last hop.
    client.environ_base["REMOTE_ADDR"] = "10.0.0.2"
    via_lb = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}
    ok = signed_post(client, "stripe", sample("stripe", "charge.succeeded"), headers=via_lb)
    assert ok.get_json()["status"] == "stored"
    # A client cannot prepend its way in: only the last hop is trusted.
    spoofed = {"X-Forwarded-For": "203.0.113.7, 198.51.100.9"}
    refused = signed_post(client, "stripe", sample("stripe", "charge.succeeded"), headers=spoofed)
    assert refused.status_code == 403


def test_endpoints_without_an_allowlist_accept_any_source(make_app: Any) -> None:
    client = make_app().test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    response = signed_post(client, "stripe", sample("stripe", "charge.succeeded"))
    assert response.status_code == 200


def test_ipv4_mapped_addresses_match_ipv4_networks(make_app: Any) -> None:
    client = make_app(endpoints=[allowlisted()]).test_client()
    client.environ_base["REMOTE_ADDR"] = "::ffff:203.0.113.7"
    response = signed_post(client, "stripe", sample("stripe", "charge.succeeded"))
    assert response.status_code == 200


def test_environment_sets_the_default_endpoints_networks() -> None:
    settings = load_settings(
        environ={
            "PAYSIEVE_STRIPE_WEBHOOK_SECRETS": "whsec_x",
            "PAYSIEVE_STRIPE_SOURCE_NETWORKS": "3.18.12.63/32, 2001:db8::/32",
            "PAYSIEVE_TRUSTED_PROXY_HOPS": "2",
        }
    )
    endpoint = settings.endpoint("stripe", "default")
    assert endpoint is not None
    assert endpoint.options["source_networks"] == ("3.18.12.63/32", "2001:db8::/32")
    assert settings.trusted_proxy_hops == 2


@pytest.mark.parametrize("raw", [["not-a-network"], ["10.0.0.0/33"], 42])
def test_a_bad_network_stops_startup(raw: object) -> None:
    with pytest.raises(ConfigurationError):
        parse_networks(raw, where="endpoint stripe/default")
