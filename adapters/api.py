"""Reading a provider's API for backfill and reconcile: pages of events, retried politely.

Each provider's listing (adapters/<provider>/api.py) is a Source yielding Pages of Items:
webhook-shaped events the pipeline takes as if they had just been verified. Nothing here
logs or raises a provider's answer, a URL's query or a credential: errors name the status
and the setting to fix, never what was sent or received.
"""

from __future__ import annotations

import email.utils
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import requests

from gateway.core.errors import GatewayError
from gateway.storage.checkpoints import Cursor

# (connect, read) seconds per request.
TIMEOUT: Final = (5.0, 30.0)
# A page of 100 objects is well under this; more is not an answer we read.
MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024
# 429: wait what Retry-After asks, at most this long, at most this many times.
MAX_RETRY_AFTER_SECONDS: Final = 60.0
MAX_RATE_LIMIT_RETRIES: Final = 5
# 5xx and unreachable: this many retries, waiting 1, 2, 4, ... seconds (capped).
MAX_SERVER_RETRIES: Final = 4
MAX_BACKOFF_SECONDS: Final = 16.0
# Retry-After without a usable value.
DEFAULT_RETRY_AFTER_SECONDS: Final = 5.0


class ProviderApiError(GatewayError):
    """The provider's API cannot be read now; the checkpoint is kept for a rerun."""

    status = 502
    code = "provider_api_error"


class ProviderAuthError(ProviderApiError):
    """The provider refused the credentials (wrong, expired or lacking a scope)."""

    code = "provider_auth_error"


class ObjectRefused(Exception):
    """One listed object is malformed: it is counted and skipped, never stored."""


@dataclass(slots=True)
class Item:
    """One webhook-shaped event from a listing."""

    event: dict[str, Any]
    # The headers the adapter's meta() reads (Razorpay's event id); never signatures.
    headers: Mapping[str, str] = field(default_factory=dict)
    # Synthesised from an object's current state rather than listed as an event: its time
    # is when it was read, so an erasure always wins over it (EventMeta.time_unknown).
    snapshot: bool = False


@dataclass(slots=True)
class Page:
    """One page of a listing: its items, how many objects were refused, where to go on."""

    items: list[Item]
    refused: int
    # Where the next page starts; None: the listing is done.
    next: Cursor | None
    # Objects in a state no webhook carries (a payment only created): nothing to store.
    skipped: int = 0


class Source(ABC):
    """One endpoint's listing at one provider, over a time window."""

    # The collections read, in order; a Cursor names one of them.
    resources: tuple[str, ...]

    @abstractmethod
    def pages(self, since: datetime, until: datetime, start: Cursor | None) -> Iterator[Page]:
        """Yield the window's pages from start (the beginning when None)."""


def epoch(moment: datetime) -> int:
    """Return a datetime as Unix seconds."""
    return int(moment.astimezone(UTC).timestamp())


class ApiClient:
    """GET JSON from one provider's API: timeouts, no redirects, bounded retries."""

    def __init__(
        self,
        *,
        provider: str,
        api_base: str,
        credentials: str,
        auth: tuple[str, str] | None = None,
        headers: Callable[[], Mapping[str, str]] | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.provider = provider
        self.base = api_base.rstrip("/")
        # What an operator fixes when the provider refuses: settings named, never values.
        self.credentials = credentials
        self._auth = auth
        self._headers = headers or dict
        self._session = session or requests.Session()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"ApiClient(provider={self.provider!r}, api_base={self.base!r})"

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        *,
        on_unauthorized: Callable[[], bool] | None = None,
    ) -> Any:
        """Return the decoded JSON answer of GET base+path, retrying 429 and 5xx.

        on_unauthorized, when given, is asked once after a 401 whether to try again
        (a cached OAuth token may have expired early).
        """
        rate_limited = 0
        failures = 0
        while True:
            response = self._send(path, params)
            status = response.status_code if response is not None else None
            if status == 200 and response is not None:
                return self._json(response)
            if response is not None:
                # Streamed: give the connection back; only the status and headers are read.
                response.close()
            if status == 401 and on_unauthorized is not None and on_unauthorized():
                on_unauthorized = None
                continue
            if status in (401, 403):
                raise ProviderAuthError(
                    f"{self.provider} API refused the credentials (HTTP {status}): check "
                    f"{self.credentials}"
                )
            if status == 429 and response is not None:
                rate_limited += 1
                if rate_limited > MAX_RATE_LIMIT_RETRIES:
                    raise ProviderApiError(
                        f"{self.provider} API kept answering 429 (rate limited) after"
                        f" {MAX_RATE_LIMIT_RETRIES} retries; the checkpoint is kept: rerun"
                        " the same command later to resume"
                    )
                self._pause(_retry_after(response.headers.get("Retry-After")))
                continue
            if status is None or status >= 500:
                failures += 1
                if failures > MAX_SERVER_RETRIES:
                    what = "was unreachable" if status is None else f"answered HTTP {status}"
                    raise ProviderApiError(
                        f"{self.provider} API {what} after {MAX_SERVER_RETRIES} retries; the"
                        " checkpoint is kept: rerun the same command to resume"
                    )
                self._pause(min(MAX_BACKOFF_SECONDS, 2.0 ** (failures - 1)))
                continue
            raise ProviderApiError(
                f"{self.provider} API answered HTTP {status} to a listing request; check the"
                " --since/--until window and the API base setting"
            )

    def _pause(self, seconds: float) -> None:
        (self._sleep or pause)(seconds)

    def _send(
        self, path: str, params: Mapping[str, Any] | list[tuple[str, Any]] | None
    ) -> requests.Response | None:
        try:
            return self._session.get(
                self.base + path,
                params=params,
                auth=self._auth,
                headers={"Accept": "application/json", **self._headers()},
                timeout=TIMEOUT,
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException:
            # The exception's text can hold the URL: only that it failed matters.
            return None

    def _json(self, response: requests.Response) -> Any:
        chunks = []
        size = 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                response.close()
                raise ProviderApiError(f"{self.provider} API answered with an oversized page")
            chunks.append(chunk)
        try:
            return orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError:
            # orjson's message can quote the answer: never pass it on.
            raise ProviderApiError(
                f"{self.provider} API answered a page that is not JSON"
            ) from None


def pause(seconds: float) -> None:
    """Wait before a retry (looked up at each retry, so a test can count the waits)."""
    time.sleep(seconds)


def _retry_after(value: str | None) -> float:
    """Return the seconds a Retry-After header asks for, capped (seconds or an HTTP date)."""
    if value is None:
        return DEFAULT_RETRY_AFTER_SECONDS
    value = value.strip()
    seconds: float
    # isdigit() alone takes "²" (byte 0xB2 read as Latin-1), which float() refuses.
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER_SECONDS
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, min(MAX_RETRY_AFTER_SECONDS, seconds))


def object_list(answer: Any, key: str, provider: str) -> list[Any]:
    """Return the list under key of a page, or refuse the page."""
    found = answer.get(key) if isinstance(answer, dict) else None
    if not isinstance(found, list):
        raise ProviderApiError(f"{provider} API answered a page without its {key} list")
    return found
