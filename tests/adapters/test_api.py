"""The providers' API client: Retry-After, backoff, unreachable hosts, odd answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
import responses

import adapters.api
from adapters.api import ApiClient, ProviderApiError
from gateway.config.settings import load_settings
from gateway.core.errors import ConfigurationError
from tests.support.backfill import record_pauses

BASE = "https://api.provider.test"


@pytest.fixture
def servers() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        yield mocked


def client() -> ApiClient:
    return ApiClient(provider="stripe", api_base=BASE, credentials="PAYSIEVE_STRIPE_API_KEY")


def test_retry_after_as_an_http_date_is_honoured_and_capped(
    servers: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses = record_pauses(monkeypatch)
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    late = format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)
    servers.get(BASE + "/x", status=429, headers={"Retry-After": soon})
    servers.get(BASE + "/x", status=429, headers={"Retry-After": late})
    servers.get(BASE + "/x", status=429, headers={"Retry-After": "soon, 4242424242424242"})
    servers.get(BASE + "/x", status=429)
    servers.get(BASE + "/x", json={"ok": True})
    assert client().get("/x") == {"ok": True}
    assert 25 <= pauses.seconds[0] <= 30
    assert pauses.seconds[1:] == [60.0, 5.0, 5.0]


def test_an_unreachable_api_is_retried_then_one_line(
    servers: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses = record_pauses(monkeypatch)
    servers.get(BASE + "/x", body=requests.ConnectionError("secret-bearing url"))
    with pytest.raises(ProviderApiError) as refused:
        client().get("/x")
    assert pauses.seconds == [1.0, 2.0, 4.0, 8.0]
    assert refused.value.message == (
        "stripe API was unreachable after 4 retries; the checkpoint is kept: rerun the same"
        " command to resume"
    )


def test_another_client_error_is_one_line_without_the_answer(
    servers: responses.RequestsMock,
) -> None:
    servers.get(BASE + "/x", status=400, json={"error": {"message": "4242424242424242"}})
    with pytest.raises(ProviderApiError, match="HTTP 400") as refused:
        client().get("/x")
    assert "4242" not in refused.value.message


def test_a_redirect_is_not_followed(servers: responses.RequestsMock) -> None:
    servers.get(BASE + "/x", status=302, headers={"Location": "https://elsewhere.test/x"})
    with pytest.raises(ProviderApiError, match="HTTP 302"):
        client().get("/x")
    assert len(servers.calls) == 1


def test_an_oversized_page_is_refused(
    servers: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapters.api, "MAX_RESPONSE_BYTES", 1024)
    servers.get(BASE + "/x", body=b'{"data": "' + b"x" * 4096 + b'"}')
    with pytest.raises(ProviderApiError, match="oversized"):
        client().get("/x")


@pytest.mark.parametrize(
    ("provider", "variable", "example"),
    [
        ("stripe", "PAYSIEVE_STRIPE_API_BASE", "https://api.stripe.com"),
        ("razorpay", "PAYSIEVE_RAZORPAY_API_BASE", "https://api.razorpay.com"),
    ],
)
def test_api_bases_must_be_https(provider: str, variable: str, example: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{variable} must be https \\({example}\\)"):
        load_settings({variable: "http://stub.local"})


def test_an_api_base_in_the_file_is_named_by_its_endpoint(tmp_path: Path) -> None:
    config = tmp_path / "p.toml"
    config.write_text('[[endpoints]]\nprovider = "razorpay"\nname = "in"\napi_base = "ftp://x"\n')
    with pytest.raises(ConfigurationError, match="api_base of razorpay endpoint 'in' must be"):
        load_settings({"PAYSIEVE_CONFIG": str(config)})
