"""PayPal's webhook event list (GET /v1/notifications/webhooks-events).

The same OAuth client credentials as the `api` verification mode, with the same token
cache (adapters.paypal.verify_api.ApiVerifier); the REST app needs no more than the
Webhooks feature it already has for verification.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import requests

from adapters.api import (
    ApiClient,
    Item,
    Page,
    ProviderApiError,
    ProviderAuthError,
    Source,
    object_list,
)
from adapters.base import nested_deeper
from adapters.paypal.verify_api import ApiVerifier
from gateway.config.settings import API_BASES, EndpointConfig, Settings, option_name
from gateway.core.errors import ConfigurationError, UpstreamUnavailable
from gateway.storage.checkpoints import Cursor

EVENTS_PATH: Final = "/v1/notifications/webhooks-events"
PAGE_SIZE: Final = 100
# A next link's query is kept in the checkpoint (backfill_checkpoints.cursor).
MAX_QUERY: Final = 2048


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PayPalEvents(Source):
    """One REST app's webhook events in a window, following the next links."""

    resources = ("webhooks-events",)

    def __init__(self, client: ApiClient, verifier: ApiVerifier, credentials: str) -> None:
        self.client = client
        self.verifier = verifier
        self.credentials = credentials

    @classmethod
    def for_endpoint(
        cls,
        settings: Settings,
        endpoint: EndpointConfig,
        *,
        session: requests.Session | None = None,
    ) -> PayPalEvents:
        """Build the listing from the endpoint's client credentials and api_base, or refuse."""
        names = (
            f"{option_name(settings, endpoint, 'client_id')} and"
            f" {option_name(settings, endpoint, 'client_secret')}"
        )
        options = endpoint.options
        if not options.get("client_id") or not options.get("client_secret"):
            raise ConfigurationError(
                f"paypal endpoint {endpoint.name!r} has no client credentials: set {names}"
            )
        verifier = ApiVerifier.from_options(options)
        base = str(options.get("api_base") or API_BASES["paypal"][0])
        client = ApiClient(
            provider="paypal",
            api_base=base,
            credentials=names,
            headers=lambda: {"Authorization": f"Bearer {_token(verifier, names)}"},
            session=session,
        )
        return cls(client, verifier, names)

    def pages(self, since: datetime, until: datetime, start: Cursor | None) -> Iterator[Page]:
        """Yield the events created in [since, until], from start's page on."""
        query: str | None = start.token if start is not None else None
        position = start.position if start is not None else 0
        # Every next link followed, to refuse a listing that links back to a page it gave.
        seen: set[str] = set() if query is None else {query}
        while True:
            params: Any
            if query is None:
                params = {
                    "start_time": _time(since),
                    "end_time": _time(until),
                    "page_size": PAGE_SIZE,
                }
            else:
                # The query of PayPal's own next link, as it gave it.
                params = None
            path = EVENTS_PATH if query is None else f"{EVENTS_PATH}?{query}"
            answer = self.client.get(path, params, on_unauthorized=self._renew)
            listed = object_list(answer, "events", "paypal")
            items: list[Item] = []
            refused = 0
            for event in listed:
                if (
                    isinstance(event, dict)
                    and isinstance(event.get("id"), str)
                    and not nested_deeper(event)
                ):
                    items.append(Item(event=event))
                else:
                    refused += 1
            position += len(listed)
            query = self._next_query(answer)
            if query is not None:
                if query in seen:
                    raise ProviderApiError(
                        "paypal API linked back to the same page (its next links never end);"
                        " stopped there, the checkpoint is kept: rerun later to resume"
                    )
                seen.add(query)
            yield Page(
                items,
                refused,
                None if query is None else Cursor("webhooks-events", query, position),
            )
            if query is None:
                return

    def _renew(self) -> bool:
        self.verifier.invalidate()
        return True

    def _next_query(self, answer: Any) -> str | None:
        """Return the query of the page's rel=next link, if it points at this listing."""
        links = answer.get("links") if isinstance(answer, dict) else None
        for link in links if isinstance(links, list) else ():
            if not isinstance(link, dict) or link.get("rel") != "next":
                continue
            href = link.get("href")
            parts = urlsplit(href) if isinstance(href, str) else None
            base = urlsplit(self.client.base)
            # Never follow a link elsewhere: the bearer token goes with the request.
            if (
                parts is None
                or (parts.scheme, parts.netloc) != (base.scheme, base.netloc)
                or parts.path != EVENTS_PATH
                or not parts.query
                or len(parts.query) > MAX_QUERY
            ):
                raise ProviderApiError(
                    "paypal API gave a next link that is not its event list on the API base;"
                    " not followed (the checkpoint is kept)"
                )
            return parts.query
        return None


def _token(verifier: ApiVerifier, names: str) -> str:
    try:
        return verifier.token()
    except UpstreamUnavailable:
        raise ProviderAuthError(
            f"paypal API did not issue an access token: check {names}"
        ) from None
