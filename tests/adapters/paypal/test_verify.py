"""PayPal verification, both modes, against PayPal's servers mocked with responses."""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import responses
from responses import matchers

from adapters.paypal import PayPalAdapter
from adapters.paypal.verify_api import ApiVerifier, verify_request_body
from adapters.paypal.verify_cert import (
    CACHE_SIZE,
    FAILURE_SECONDS,
    FETCHES_PER_MINUTE,
    MAX_CERT_BYTES,
    CertVerifier,
)
from gateway.config.settings import EndpointConfig, Settings
from gateway.core.errors import MalformedBody, UpstreamUnavailable, VerificationError
from tests.support.paypal import (
    API_BASE,
    CERT_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN_URL,
    VERIFY_URL,
    WEBHOOK_ID,
    Pki,
    api_endpoint,
    cert_endpoint,
    make_pki,
)

BODY = b'{"id":"WH-TEST0001-0001","event_type":"PAYMENT.CAPTURE.COMPLETED","amount":1.0}'


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Return a test PKI shared by this module (RSA key generation is slow)."""
    return make_pki(tmp_path_factory.mktemp("paypal-pki"))


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """Mock PayPal's servers; any unregistered URL raises ConnectionError."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def _endpoint(table: dict[str, Any]) -> EndpointConfig:
    options = {k: v for k, v in table.items() if k not in ("provider", "name")}
    return EndpointConfig(provider="paypal", name=table["name"], options=options)


def _adapter(tolerance: int = 300) -> PayPalAdapter:
    return PayPalAdapter(Settings(tolerance_seconds=tolerance))


def _signed(
    adapter: PayPalAdapter, endpoint: EndpointConfig, body: bytes = BODY, **overrides: Any
) -> dict[str, str]:
    timestamp = overrides.pop("timestamp", int(time.time()))
    headers = adapter.sign(body, endpoint, timestamp=timestamp, event_id="WH-TEST0001-0001")
    headers.update(overrides)
    return headers


def _token(rsps: responses.RequestsMock, *, expires_in: int = 32400, token: str = "A21AA") -> Any:  # noqa: S107
    return rsps.post(
        TOKEN_URL,
        json={
            "scope": "https://uri.paypal.com/services/applications/webhooks",
            "access_token": token,
            "token_type": "Bearer",
            "app_id": "APP-80W284485P519543T",
            "expires_in": expires_in,
            "nonce": "2026-01-01T00:00:00Z",
        },
        match=[matchers.urlencoded_params_matcher({"grant_type": "client_credentials"})],
    )


def _verdict(rsps: responses.RequestsMock, verdict: str = "SUCCESS", status: int = 200) -> Any:
    return rsps.post(VERIFY_URL, json={"verification_status": verdict}, status=status)


# -- api mode -----------------------------------------------------------------


class TestApiMode:
    def test_success_posts_raw_bytes_with_bearer_token(
        self, pki: Pki, mocked: responses.RequestsMock
    ) -> None:
        token = _token(mocked)
        verify = _verdict(mocked)
        adapter = _adapter()
        endpoint = _endpoint(api_endpoint(pki))
        headers = _signed(adapter, endpoint)
        adapter.verify(BODY, headers, endpoint)

        assert token.call_count == 1 and verify.call_count == 1
        token_request = mocked.calls[0].request
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        assert token_request.headers["Authorization"] == f"Basic {expected}"
        sent = mocked.calls[1].request
        assert sent.headers["Authorization"] == "Bearer A21AA"
        # The received bytes, spliced in: `1.0` survives (re-serialising would make it 1).
        assert sent.body.endswith(b'"webhook_event":' + BODY + b"}")
        payload = orjson.loads(sent.body)
        assert payload["webhook_id"] == WEBHOOK_ID
        assert payload["transmission_id"] == headers["PAYPAL-TRANSMISSION-ID"]
        assert payload["transmission_time"] == headers["PAYPAL-TRANSMISSION-TIME"]
        assert payload["transmission_sig"] == headers["PAYPAL-TRANSMISSION-SIG"]
        assert payload["cert_url"] == CERT_URL
        assert payload["auth_algo"] == "SHA256withRSA"

    def test_request_body_keeps_number_spelling(self) -> None:
        raw = b'{"id":"WH-1","resource":{"amount":{"value":1.0,"x":1e2}}}'
        body = verify_request_body(
            auth_algo="SHA256withRSA",
            cert_url=CERT_URL,
            transmission_id="t",
            transmission_sig="s",
            transmission_time="2026-01-01T00:00:00Z",
            webhook_id=WEBHOOK_ID,
            raw_body=raw,
        )
        assert raw in body
        assert orjson.loads(body)["webhook_event"]["resource"]["amount"]["value"] == 1.0

    def test_failure_is_a_verification_error(
        self, pki: Pki, mocked: responses.RequestsMock
    ) -> None:
        _token(mocked)
        _verdict(mocked, "FAILURE")
        adapter = _adapter()
        endpoint = _endpoint(api_endpoint(pki))
        with pytest.raises(VerificationError, match="does not verify"):
            adapter.verify(BODY, _signed(adapter, endpoint), endpoint)

    @pytest.mark.parametrize("status", [500, 502, 503, 429])
    def test_verify_5xx_is_upstream_unavailable(
        self, pki: Pki, mocked: responses.RequestsMock, status: int
    ) -> None:
        _token(mocked)
        _verdict(mocked, status=status)
        adapter = _adapter()
        endpoint = _endpoint(api_endpoint(pki))
        with pytest.raises(UpstreamUnavailable):
            adapter.verify(BODY, _signed(adapter, endpoint), endpoint)

    def test_token_5xx_is_upstream_unavailable(
        self, pki: Pki, mocked: responses.RequestsMock
    ) -> None:
        mocked.post(TOKEN_URL, status=503)
        verify = _verdict(mocked)
        adapter = _adapter()
        endpoint = _endpoint(api_endpoint(pki))
        with pytest.raises(UpstreamUnavailable, match="access token"):
            adapter.verify(BODY, _signed(adapter, endpoint), endpoint)
        assert verify.call_count == 0

    @pytest.mark.parametrize(
        "error",
        [
            requests.exceptions.ConnectTimeout,
            requests.exceptions.ReadTimeout,
            requests.exceptions.ConnectionError,
        ],
    )
    def test_timeouts_are_upstream_unavailable(
        self, pki: Pki, mocked: responses.RequestsMock, error: type[Exception]
    ) -> None:
        _token(mocked)
        mocked.post(VERIFY_URL, body=error("slow"))
        adapter = _adapter()
        endpoint = _endpoint(api_endpoint(pki))
        with pytest.raises(UpstreamUnavailable, match="unreachable"):
            adapter.verify(BODY, _signed(adapter, endpoint), endpoint)

    def test_timeouts_are_bounded(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        _token(mocked)
        _verdict(mocked)
        adapter = _adapter()
        endpoint = _endpoint(api_endpoint(pki))
        adapter.verify(BODY, _signed(adapter, endpoint), endpoint)
        for call in mocked.calls:
            connect, read = call.request.req_kwargs["timeout"]
            assert connect + read <= 3.0

    def test_token_is_cached(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        token = _token(mocked)
        verify = _verdict(mocked)
        adapter = _adapter()
        endpoint = _endpoint(api_endpoint(pki))
        for _ in range(3):
            adapter.verify(BODY, _signed(adapter, endpoint), endpoint)
        assert token.call_count == 1 and verify.call_count == 3

    def test_token_is_refreshed_before_expiry(self, mocked: responses.RequestsMock) -> None:
        now = [1000.0]
        verifier = ApiVerifier(
            api_base=API_BASE,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            clock=lambda: now[0],
        )
        _token(mocked, expires_in=3600, token="first")
        assert verifier.token() == "first"
        mocked.replace(
            responses.POST, TOKEN_URL, json={"access_token": "second", "expires_in": 3600}
        )
        now[0] += 3600 - 400  # still outside the renewal margin
        assert verifier.token() == "first"
        now[0] += 200  # inside the margin: renewed before PayPal would refuse it
        assert verifier.token() == "second"
        assert len(mocked.calls) == 2

    def test_revoked_token_is_replaced_once(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        token = _token(mocked)
        mocked.post(VERIFY_URL, status=401, json={"error": "invalid_token"})
        mocked.post(VERIFY_URL, json={"verification_status": "SUCCESS"})
        adapter = _adapter()
        endpoint = _endpoint(api_endpoint(pki))
        adapter.verify(BODY, _signed(adapter, endpoint), endpoint)
        assert token.call_count == 2

    def test_bad_credentials_are_upstream_unavailable(
        self, pki: Pki, mocked: responses.RequestsMock
    ) -> None:
        mocked.post(TOKEN_URL, status=401, json={"error": "invalid_client"})
        adapter = _adapter()
        endpoint = _endpoint(api_endpoint(pki))
        with pytest.raises(UpstreamUnavailable):
            adapter.verify(BODY, _signed(adapter, endpoint), endpoint)

    def test_token_fetched_once_under_concurrency(
        self, pki: Pki, mocked: responses.RequestsMock
    ) -> None:
        def slow_token(request: Any) -> tuple[int, dict[str, str], bytes]:
            time.sleep(0.2)  # every thread arrives while the first fetch is in flight
            return 200, {}, orjson.dumps({"access_token": "shared", "expires_in": 32400})

        token = mocked.add_callback(responses.POST, TOKEN_URL, callback=slow_token)
        verify = _verdict(mocked)
        adapter = _adapter()
        endpoint = _endpoint(api_endpoint(pki))
        headers = _signed(adapter, endpoint)
        errors: list[BaseException] = []
        barrier = threading.Barrier(8)

        def deliver() -> None:
            barrier.wait()
            try:
                adapter.verify(BODY, headers, endpoint)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion
                errors.append(exc)

        threads = [threading.Thread(target=deliver) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert token.call_count == 1
        assert verify.call_count == 8

    def test_redirect_is_not_followed(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        _token(mocked)
        mocked.post(VERIFY_URL, status=302, headers={"Location": "https://evil.example/verify"})
        evil = mocked.post("https://evil.example/verify", json={"verification_status": "SUCCESS"})
        adapter = _adapter()
        endpoint = _endpoint(api_endpoint(pki))
        with pytest.raises(UpstreamUnavailable):
            adapter.verify(BODY, _signed(adapter, endpoint), endpoint)
        assert evil.call_count == 0

    def test_non_json_body_is_never_sent(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        token = _token(mocked)
        adapter = _adapter()
        endpoint = _endpoint(api_endpoint(pki))
        raw = b'{"id":"WH-1"}, "injected": 1'
        with pytest.raises(Exception, match="JSON"):
            adapter.verify(raw, _signed(adapter, endpoint, raw), endpoint)
        assert token.call_count == 0

    def test_http_api_base_is_refused(self) -> None:
        with pytest.raises(Exception, match="https"):
            ApiVerifier(api_base="http://api-m.paypal.com", client_id="a", client_secret="b")


# -- checks shared by both modes ------------------------------------------------


@pytest.fixture(params=["api", "cert"])
def any_mode(request: pytest.FixtureRequest, pki: Pki) -> EndpointConfig:
    """Return an endpoint in each verification mode."""
    table = api_endpoint(pki) if request.param == "api" else cert_endpoint(pki)
    return _endpoint(table)


class TestTransmission:
    def test_replayed_old_transmission(
        self, any_mode: EndpointConfig, mocked: responses.RequestsMock
    ) -> None:
        adapter = _adapter(tolerance=300)
        headers = _signed(adapter, any_mode, timestamp=int(time.time()) - 360)
        with pytest.raises(VerificationError, match="too old"):
            adapter.verify(BODY, headers, any_mode)
        assert len(mocked.calls) == 0

    def test_future_transmission(
        self, any_mode: EndpointConfig, mocked: responses.RequestsMock
    ) -> None:
        adapter = _adapter(tolerance=300)
        headers = _signed(adapter, any_mode, timestamp=int(time.time()) + 360)
        with pytest.raises(VerificationError, match="future"):
            adapter.verify(BODY, headers, any_mode)
        assert len(mocked.calls) == 0

    @pytest.mark.parametrize(
        "name",
        [
            "PAYPAL-TRANSMISSION-ID",
            "PAYPAL-TRANSMISSION-TIME",
            "PAYPAL-TRANSMISSION-SIG",
            "PAYPAL-CERT-URL",
            "PAYPAL-AUTH-ALGO",
        ],
    )
    def test_missing_header(
        self, any_mode: EndpointConfig, mocked: responses.RequestsMock, name: str
    ) -> None:
        adapter = _adapter()
        headers = _signed(adapter, any_mode)
        del headers[name]
        with pytest.raises(VerificationError, match=f"missing {name}"):
            adapter.verify(BODY, headers, any_mode)

    @pytest.mark.parametrize(
        ("name", "value", "message"),
        [
            ("PAYPAL-TRANSMISSION-TIME", "yesterday", "malformed PAYPAL-TRANSMISSION-TIME"),
            # Past year 9999 (in UTC too): an OverflowError before any authentication.
            ("PAYPAL-TRANSMISSION-TIME", "9999-12-31T23:59:59-23:59", "PAYPAL-TRANSMISSION-TIME"),
            ("PAYPAL-TRANSMISSION-TIME", "99999-01-01T00:00:00Z", "PAYPAL-TRANSMISSION-TIME"),
            ("PAYPAL-TRANSMISSION-TIME", "２０２６-01-01T00:00:00Z", "PAYPAL-TRANSMISSION-TIME"),
            ("PAYPAL-TRANSMISSION-ID", "a|b", "malformed PAYPAL-TRANSMISSION-ID"),
            ("PAYPAL-TRANSMISSION-SIG", "not base64!", "malformed PAYPAL-TRANSMISSION-SIG"),
            ("PAYPAL-AUTH-ALGO", "SHA1withRSA", "unsupported PAYPAL-AUTH-ALGO"),
        ],
    )
    def test_malformed_header(
        self,
        any_mode: EndpointConfig,
        mocked: responses.RequestsMock,
        name: str,
        value: str,
        message: str,
    ) -> None:
        adapter = _adapter()
        headers = _signed(adapter, any_mode, **{name: value})
        with pytest.raises(VerificationError, match=message):
            adapter.verify(BODY, headers, any_mode)
        assert len(mocked.calls) == 0

    @pytest.mark.parametrize("body", [b"[1, 2]", b"not json", b'{"id": 1'])
    def test_a_body_that_is_not_one_json_object_costs_no_request(
        self, any_mode: EndpointConfig, mocked: responses.RequestsMock, body: bytes
    ) -> None:
        # Refused before the certificate fetch (cert) or PayPal's API (api): unsigned
        # garbage makes paysieve contact no one.
        adapter = _adapter()
        headers = adapter.sign(body, any_mode, timestamp=int(time.time()), event_id="WH-1")
        with pytest.raises(MalformedBody):
            adapter.verify(body, headers, any_mode)
        assert len(mocked.calls) == 0

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("http://api.paypal.com/v1/notifications/certs/CERT-1", "not https"),
            ("https://evil.example.com/v1/notifications/certs/CERT-1", "not on a PayPal API host"),
            (
                "https://api.paypal.com.evil.example/v1/notifications/certs/CERT-1",
                "PayPal API host",
            ),
            ("https://paypal.com/v1/notifications/certs/CERT-1", "PayPal API host"),
            ("https://api.paypal.com@evil.example/v1/notifications/certs/CERT-1", "not a PayPal"),
            ("https://api.paypal.com:8443/v1/notifications/certs/CERT-1", "not a PayPal"),
            ("https://api.paypal.com/v1/oauth2/token", "not a PayPal certificate URL"),
            ("https://api.paypal.com/v1/notifications/certs/../x", "not a PayPal certificate"),
            ("https://api.paypal.com/v1/notifications/certs/CERT-1?x=1", "not a PayPal"),
        ],
    )
    def test_cert_url_outside_paypal_is_never_fetched(
        self, any_mode: EndpointConfig, mocked: responses.RequestsMock, url: str, message: str
    ) -> None:
        adapter = _adapter()
        headers = _signed(adapter, any_mode, **{"PAYPAL-CERT-URL": url})
        with pytest.raises(VerificationError, match=message):
            adapter.verify(BODY, headers, any_mode)
        assert len(mocked.calls) == 0


# -- cert mode ----------------------------------------------------------------


def _cert_verifier(pki: Pki, **kwargs: Any) -> CertVerifier:
    return CertVerifier(trust_roots=[pki.root.cert], **kwargs)


def _sign_direct(pki: Pki, body: bytes, **overrides: str) -> dict[str, Any]:
    """Return CertVerifier.verify keyword arguments signed by the test leaf."""
    adapter = _adapter()
    endpoint = _endpoint(cert_endpoint(pki))
    headers = adapter.sign(body, endpoint, timestamp=int(time.time()), event_id="WH-1")
    args = {
        "transmission_id": headers["PAYPAL-TRANSMISSION-ID"],
        "transmission_time": headers["PAYPAL-TRANSMISSION-TIME"],
        "webhook_id": WEBHOOK_ID,
        "signature": headers["PAYPAL-TRANSMISSION-SIG"],
        "cert_url": CERT_URL,
        "auth_algo": "SHA256withRSA",
    }
    args.update(overrides)
    return args


class TestCertMode:
    def test_downloads_verifies_and_caches(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        download = mocked.get(CERT_URL, body=pki.chain_pem())
        adapter = _adapter()
        endpoint = _endpoint(cert_endpoint(pki))
        adapter.verify(BODY, _signed(adapter, endpoint), endpoint)
        adapter.verify(BODY, _signed(adapter, endpoint), endpoint)
        assert download.call_count == 1
        call = mocked.calls[0]
        connect, read = call.request.req_kwargs["timeout"]
        assert connect + read <= 3.0

    def test_tampered_body(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        mocked.get(CERT_URL, body=pki.chain_pem())
        verifier = _cert_verifier(pki)
        args = _sign_direct(pki, BODY)
        verifier.verify(BODY, **args)
        with pytest.raises(VerificationError, match="signature does not match"):
            verifier.verify(BODY.replace(b"1.0", b"9.0"), **args)

    @pytest.mark.parametrize("field", ["transmission_id", "transmission_time", "webhook_id"])
    def test_signed_fields_are_bound(
        self, pki: Pki, mocked: responses.RequestsMock, field: str
    ) -> None:
        mocked.get(CERT_URL, body=pki.chain_pem())
        args = _sign_direct(pki, BODY)
        args[field] = args[field][:-1] + ("0" if args[field][-1] != "0" else "1")
        with pytest.raises(VerificationError, match="signature does not match"):
            _cert_verifier(pki).verify(BODY, **args)

    def test_signature_from_another_key(
        self, pki: Pki, mocked: responses.RequestsMock, tmp_path: Path
    ) -> None:
        other = make_pki(tmp_path / "other")
        mocked.get(CERT_URL, body=pki.chain_pem())
        args = _sign_direct(other, BODY)
        with pytest.raises(VerificationError, match="signature does not match"):
            _cert_verifier(pki).verify(BODY, **args)

    def test_expired_certificate(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        past = datetime.now(UTC) - timedelta(days=400)
        from adapters.paypal.devpki import make_leaf

        expired = make_leaf(
            pki.intermediate,
            ["messageverificationcerts.paypal.com"],
            not_before=past,
            not_after=past + timedelta(days=365),
        )
        mocked.get(CERT_URL, body=pki.chain_pem(expired))
        with pytest.raises(VerificationError, match="expired"):
            _cert_verifier(pki).verify(BODY, **_sign_direct(pki, BODY))

    def test_cached_certificate_expires_too(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        download = mocked.get(CERT_URL, body=pki.chain_pem())
        now = [datetime.now(UTC)]
        verifier = _cert_verifier(pki, clock=lambda: now[0])
        args = _sign_direct(pki, BODY)
        verifier.verify(BODY, **args)
        now[0] = pki.leaf.cert.not_valid_after_utc + timedelta(seconds=1)
        with pytest.raises(VerificationError, match="expired"):
            verifier.verify(BODY, **args)
        assert download.call_count == 1

    def test_not_yet_valid_certificate(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        from adapters.paypal.devpki import make_leaf

        future = datetime.now(UTC) + timedelta(days=10)
        early = make_leaf(
            pki.intermediate,
            ["messageverificationcerts.paypal.com"],
            not_before=future,
            not_after=future + timedelta(days=365),
        )
        mocked.get(CERT_URL, body=pki.chain_pem(early))
        with pytest.raises(VerificationError, match="not yet valid"):
            _cert_verifier(pki).verify(BODY, **_sign_direct(pki, BODY))

    def test_untrusted_root(self, pki: Pki, mocked: responses.RequestsMock, tmp_path: Path) -> None:
        impostor = make_pki(tmp_path / "impostor")
        # A chain that looks exactly like PayPal's, from a root the gateway does not trust.
        mocked.get(CERT_URL, body=impostor.chain_pem())
        args = _sign_direct(impostor, BODY)
        with pytest.raises(VerificationError, match="does not chain to a trusted root"):
            _cert_verifier(pki).verify(BODY, **args)

    def test_self_signed_leaf(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        from adapters.paypal.devpki import make_ca

        rogue = make_ca("messageverificationcerts.paypal.com")
        mocked.get(CERT_URL, body=rogue.cert_pem())
        with pytest.raises(VerificationError):
            _cert_verifier(pki).verify(BODY, **_sign_direct(pki, BODY))

    @pytest.mark.parametrize(
        "names",
        [["messageverificationcerts.example.com"], ["paypal.com.evil.example"], ["notpaypal.com"]],
    )
    def test_certificate_not_naming_paypal(
        self, pki: Pki, mocked: responses.RequestsMock, names: list[str]
    ) -> None:
        from adapters.paypal.devpki import make_leaf

        leaf = make_leaf(pki.intermediate, names)
        mocked.get(CERT_URL, body=pki.chain_pem(leaf))
        with pytest.raises(VerificationError, match="does not name a paypal.com host"):
            _cert_verifier(pki).verify(BODY, **_sign_direct(pki, BODY))

    def test_redirect_is_refused(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        mocked.get(CERT_URL, status=302, headers={"Location": "https://evil.example/cert.pem"})
        evil = mocked.get("https://evil.example/cert.pem", body=pki.chain_pem())
        with pytest.raises(VerificationError, match="redirects"):
            _cert_verifier(pki).verify(BODY, **_sign_direct(pki, BODY))
        assert evil.call_count == 0

    @pytest.mark.parametrize("status", [500, 503])
    def test_download_5xx_is_upstream_unavailable(
        self, pki: Pki, mocked: responses.RequestsMock, status: int
    ) -> None:
        mocked.get(CERT_URL, status=status)
        with pytest.raises(UpstreamUnavailable):
            _cert_verifier(pki).verify(BODY, **_sign_direct(pki, BODY))

    def test_download_404_is_a_verification_error(
        self, pki: Pki, mocked: responses.RequestsMock
    ) -> None:
        mocked.get(CERT_URL, status=404)
        with pytest.raises(VerificationError, match="does not serve"):
            _cert_verifier(pki).verify(BODY, **_sign_direct(pki, BODY))

    @pytest.mark.parametrize(
        "error", [requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout]
    )
    def test_download_timeout_is_upstream_unavailable(
        self, pki: Pki, mocked: responses.RequestsMock, error: type[Exception]
    ) -> None:
        mocked.get(CERT_URL, body=error("slow"))
        with pytest.raises(UpstreamUnavailable, match="unreachable"):
            _cert_verifier(pki).verify(BODY, **_sign_direct(pki, BODY))

    def test_oversized_download(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        mocked.get(CERT_URL, body=pki.chain_pem() + b"\n" * MAX_CERT_BYTES)
        with pytest.raises(VerificationError, match="too large"):
            _cert_verifier(pki).verify(BODY, **_sign_direct(pki, BODY))

    def test_garbage_download(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        mocked.get(CERT_URL, body=b"<html>not a cert</html>")
        with pytest.raises(VerificationError, match="not PEM"):
            _cert_verifier(pki).verify(BODY, **_sign_direct(pki, BODY))

    @pytest.mark.parametrize(
        ("first", "error"),
        [({"status": 503}, UpstreamUnavailable), ({"status": 404}, VerificationError)],
    )
    def test_failed_url_is_remembered_briefly(
        self,
        pki: Pki,
        mocked: responses.RequestsMock,
        first: dict[str, Any],
        error: type[Exception],
    ) -> None:
        failing = mocked.get(CERT_URL, **first)
        now = [1000.0]
        verifier = _cert_verifier(pki, monotonic=lambda: now[0])
        args = _sign_direct(pki, BODY)
        with pytest.raises(error):
            verifier.verify(BODY, **args)
        # A flood naming the failed URL costs no further request within the minute.
        now[0] += FAILURE_SECONDS - 1
        for _ in range(5):
            with pytest.raises(error):
                verifier.verify(BODY, **args)
        assert failing.call_count == 1
        # Once the minute is over the URL is fetched again, and a good answer is used.
        mocked.replace(responses.GET, CERT_URL, body=pki.chain_pem())
        now[0] += 2
        verifier.verify(BODY, **args)
        verifier.verify(BODY, **args)
        assert len(mocked.calls) == 2

    def test_fetches_of_new_urls_are_capped_per_minute(
        self, pki: Pki, mocked: responses.RequestsMock
    ) -> None:
        # Unsigned garbage naming a fresh PayPal URL each time costs a bounded number of
        # outbound requests; past the cap the answer is 503, so PayPal itself retries.
        base = "https://api.paypal.com/v1/notifications/certs/CERT-flood-"
        listed = mocked.get(re.compile(re.escape(base) + r"\d+"), status=404)
        now = [1000.0]
        verifier = _cert_verifier(pki, monotonic=lambda: now[0])
        for n in range(FETCHES_PER_MINUTE):
            with pytest.raises(VerificationError, match="does not serve"):
                verifier.verify(BODY, **_sign_direct(pki, BODY, cert_url=f"{base}{n}"))
        with pytest.raises(UpstreamUnavailable, match="too many"):
            verifier.verify(BODY, **_sign_direct(pki, BODY, cert_url=f"{base}99"))
        assert listed.call_count == FETCHES_PER_MINUTE
        # The refused URL is not remembered as failed: once the minute is over it is fetched.
        mocked.get(f"{base}99", body=pki.chain_pem())
        now[0] += 61
        verifier.verify(BODY, **_sign_direct(pki, BODY, cert_url=f"{base}99"))

    def test_preseeded_cache_dir_needs_no_network(
        self, pki: Pki, mocked: responses.RequestsMock, tmp_path: Path
    ) -> None:
        (tmp_path / "CERT-360caa42-fca2a594-test.pem").write_bytes(pki.chain_pem())
        verifier = _cert_verifier(pki, cache_dir=tmp_path, fetch=False)
        verifier.verify(BODY, **_sign_direct(pki, BODY))
        assert len(mocked.calls) == 0

    def test_preseeded_cert_is_still_checked(
        self, pki: Pki, mocked: responses.RequestsMock, tmp_path: Path
    ) -> None:
        impostor = make_pki(tmp_path / "impostor")
        (tmp_path / "CERT-360caa42-fca2a594-test.pem").write_bytes(impostor.chain_pem())
        verifier = _cert_verifier(pki, cache_dir=tmp_path, fetch=False)
        with pytest.raises(VerificationError, match="trusted root"):
            verifier.verify(BODY, **_sign_direct(impostor, BODY))

    def test_fetching_off_and_not_seeded(
        self, pki: Pki, mocked: responses.RequestsMock, tmp_path: Path
    ) -> None:
        verifier = _cert_verifier(pki, cache_dir=tmp_path, fetch=False)
        with pytest.raises(VerificationError, match="not in the local cache"):
            verifier.verify(BODY, **_sign_direct(pki, BODY))
        assert len(mocked.calls) == 0

    def test_cache_is_bounded(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        now = [1000.0]
        verifier = _cert_verifier(pki, monotonic=lambda: now[0])
        urls = [
            f"https://api.paypal.com/v1/notifications/certs/CERT-{i}" for i in range(CACHE_SIZE + 5)
        ]
        for url in urls:
            mocked.get(url, body=pki.chain_pem())
            verifier.verify(BODY, **_sign_direct(pki, BODY, cert_url=url))
            now[0] += 61  # past the fetch cap's minute
        assert len(verifier._cache) == CACHE_SIZE
        assert urls[0] not in verifier._cache and urls[-1] in verifier._cache

    def test_bad_signature_encoding(self, pki: Pki, mocked: responses.RequestsMock) -> None:
        with pytest.raises(VerificationError, match="not base64"):
            _cert_verifier(pki).verify(BODY, **_sign_direct(pki, BODY, signature="abc"))
        assert len(mocked.calls) == 0

    def test_unreadable_trust_roots_fail_at_startup(self, tmp_path: Path) -> None:
        from gateway.core.errors import ConfigurationError

        endpoint = _endpoint(cert_endpoint(make_pki(tmp_path), trust_roots=str(tmp_path / "no")))
        with pytest.raises(ConfigurationError, match="trust roots"):
            _adapter().enabled(endpoint)
