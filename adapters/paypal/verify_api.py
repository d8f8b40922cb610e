"""PayPal verification by PayPal's own verify-webhook-signature API.

PayPal is asked, with an OAuth2 client-credentials token, whether it sent
the delivery. The token is cached until shortly before it expires and is
fetched by one thread at a time. The event sent back is the received bytes
spliced into the request body, never a re-serialisation (which would change
numbers such as ``1.0`` and make PayPal answer FAILURE).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson
import requests

from gateway.core.errors import ConfigurationError, UpstreamUnavailable, VerificationError

DEFAULT_API_BASE: Final = "https://api-m.paypal.com"
TOKEN_PATH: Final = "/v1/oauth2/token"  # noqa: S105 - a URL path, not a secret
VERIFY_PATH: Final = "/v1/notifications/verify-webhook-signature"
# (connect, read) seconds per call: worst case a token and a verify call stay
# well inside PayPal's delivery timeout, and a slow PayPal becomes a 503 retry.
TIMEOUT: Final = (1.0, 2.0)
# Renew this long before PayPal's expires_in runs out (at most half the lifetime).
EXPIRY_MARGIN_SECONDS: Final = 300.0
MAX_RESPONSE_BYTES: Final = 64 * 1024


def verify_request_body(
    *,
    auth_algo: str,
    cert_url: str,
    transmission_id: str,
    transmission_sig: str,
    transmission_time: str,
    webhook_id: str,
    raw_body: bytes,
) -> bytes:
    """Return the verify-webhook-signature body with the received event bytes spliced in."""
    head = orjson.dumps(
        {
            "auth_algo": auth_algo,
            "cert_url": cert_url,
            "transmission_id": transmission_id,
            "transmission_sig": transmission_sig,
            "transmission_time": transmission_time,
            "webhook_id": webhook_id,
        }
    )
    # The caller has checked raw_body is one JSON object, so splicing stays valid JSON.
    return head[:-1] + b',"webhook_event":' + raw_body + b"}"


class ApiVerifier:
    """Ask PayPal to verify deliveries for one endpoint (one REST app)."""

    def __init__(
        self,
        *,
        api_base: str,
        client_id: str,
        client_secret: str,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        if not api_base.startswith("https://"):
            raise ConfigurationError("PayPal api_base must be an https URL")
        self._base = api_base.rstrip("/")
        self._auth = (client_id, client_secret)
        self._clock = clock
        self._session = session or requests.Session()
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ApiVerifier(api_base={self._base!r})"

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ApiVerifier:
        """Build a verifier from an endpoint's options (api_base, client_id, client_secret)."""
        client_id = options.get("client_id")
        client_secret = options.get("client_secret")
        if not isinstance(client_id, str) or not isinstance(client_secret, str):
            raise ConfigurationError("PayPal api verification needs client_id and client_secret")
        base = options.get("api_base") or DEFAULT_API_BASE
        return cls(api_base=str(base), client_id=client_id, client_secret=client_secret)

    def verify(self, body: bytes) -> None:
        """Post a verify-webhook-signature body; raise unless PayPal answers SUCCESS."""
        response = self._post_verify(body, self.token())
        if response.status_code == 401:
            # The token was revoked or expired early: fetch a new one, once.
            self.invalidate()
            response = self._post_verify(body, self.token())
        status = response.status_code
        if status == 200:
            result = _json(response)
            verdict = result.get("verification_status") if isinstance(result, dict) else None
            if verdict == "SUCCESS":
                return
            if verdict == "FAILURE":
                raise VerificationError("PayPal says the signature does not verify")
            raise UpstreamUnavailable("PayPal answered an unexpected verification result")
        if status in (400, 422):
            # PayPal refuses the verification request itself (bad header values).
            raise VerificationError("PayPal rejected the verification request")
        # 3xx (never followed), 401/403 (credentials), 429 and 5xx: PayPal retries later.
        raise UpstreamUnavailable("PayPal verification is unavailable")

    def token(self) -> str:
        """Return a cached access token, fetching a new one (one thread at a time) if due."""
        token = self._token
        if token is not None and self._clock() < self._expires_at:
            return token
        with self._lock:
            # Another thread may have fetched it while this one waited.
            if self._token is not None and self._clock() < self._expires_at:
                return self._token
            token, lifetime = self._fetch_token()
            margin = min(EXPIRY_MARGIN_SECONDS, lifetime / 2)
            self._token = token
            self._expires_at = self._clock() + lifetime - margin
            return token

    def invalidate(self) -> None:
        """Forget the cached token."""
        with self._lock:
            self._token = None
            self._expires_at = 0.0

    def _fetch_token(self) -> tuple[str, float]:
        try:
            response = self._session.post(
                self._base + TOKEN_PATH,
                data={"grant_type": "client_credentials"},
                auth=self._auth,
                headers={"Accept": "application/json"},
                timeout=TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise UpstreamUnavailable("PayPal token endpoint is unreachable") from exc
        if response.status_code != 200:
            # Wrong credentials are an operator's problem: 503 keeps PayPal retrying meanwhile.
            raise UpstreamUnavailable("PayPal did not issue an access token")
        result = _json(response)
        token = result.get("access_token") if isinstance(result, dict) else None
        lifetime = result.get("expires_in") if isinstance(result, dict) else None
        if not isinstance(token, str) or not token:
            raise UpstreamUnavailable("PayPal token response has no access_token")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = 60
        return token, float(lifetime)

    def _post_verify(self, body: bytes, token: str) -> requests.Response:
        try:
            return self._session.post(
                self._base + VERIFY_PATH,
                data=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
                timeout=TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise UpstreamUnavailable("PayPal verification is unreachable") from exc


def _json(response: requests.Response) -> Any:
    content = response.content
    if len(content) > MAX_RESPONSE_BYTES:
        raise UpstreamUnavailable("PayPal answered with an oversized response")
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise UpstreamUnavailable("PayPal answered with a non-JSON response") from exc
