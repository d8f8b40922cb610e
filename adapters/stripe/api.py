"""Stripe's event list (GET /v1/events): the events a webhook endpoint would have received.

Stripe keeps events for 30 days. A restricted key with the single permission
"Events: Read" is all this needs (PAYSIEVE_STRIPE_API_KEY).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

import requests

from adapters.api import ApiClient, Item, Page, ProviderApiError, Source, epoch, object_list
from adapters.base import nested_deeper
from gateway.config.settings import API_BASES, EndpointConfig, Settings, option_name
from gateway.core.errors import ConfigurationError
from gateway.storage.checkpoints import Cursor

EVENTS_PATH: Final = "/v1/events"
PAGE_SIZE: Final = 100


class StripeEvents(Source):
    """One Stripe account's events, newest first, 100 a page."""

    resources = ("events",)

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    @classmethod
    def for_endpoint(
        cls,
        settings: Settings,
        endpoint: EndpointConfig,
        *,
        session: requests.Session | None = None,
    ) -> StripeEvents:
        """Build the listing from the endpoint's api_key and api_base, or refuse."""
        key_name = option_name(settings, endpoint, "api_key")
        key = endpoint.options.get("api_key")
        if not isinstance(key, str) or not key:
            raise ConfigurationError(
                f"stripe endpoint {endpoint.name!r} has no API key: set {key_name} to a"
                " restricted key with Events: Read"
            )
        base = str(endpoint.options.get("api_base") or API_BASES["stripe"][0])
        client = ApiClient(
            provider="stripe",
            api_base=base,
            credentials=f"{key_name} (a restricted key with Events: Read)",
            headers=lambda: {"Authorization": f"Bearer {key}"},
            session=session,
        )
        return cls(client)

    def pages(self, since: datetime, until: datetime, start: Cursor | None) -> Iterator[Page]:
        """Yield the events created in [since, until], from start's event on."""
        after = start.token if start is not None else None
        position = start.position if start is not None else 0
        # Every page's last event, to refuse a listing that comes back to a page it gave.
        seen: set[str] = set() if after is None else {after}
        while True:
            params: dict[str, Any] = {
                "created[gte]": epoch(since),
                "created[lte]": epoch(until),
                "limit": PAGE_SIZE,
            }
            if after is not None:
                params["starting_after"] = after
            answer = self.client.get(EVENTS_PATH, params)
            listed = object_list(answer, "data", "stripe")
            items: list[Item] = []
            refused = 0
            # The page's last event with an id: where the next page starts, even if refused.
            last: str | None = None
            for event in listed:
                event_id = event.get("id") if isinstance(event, dict) else None
                if not isinstance(event_id, str) or not event_id:
                    refused += 1
                    continue
                last = event_id
                if nested_deeper(event):
                    refused += 1
                    continue
                items.append(Item(event=event))
            position += len(listed)
            has_more = answer.get("has_more")
            if not isinstance(has_more, bool):
                raise ProviderApiError("stripe API answered a page without has_more")
            done = not has_more
            if not done:
                # Never a silent end: the rest of the window would go unread.
                if last is None:
                    raise ProviderApiError(
                        "stripe API answered has_more without an event to continue after;"
                        " stopped there, the checkpoint is kept: rerun later to resume"
                    )
                if last in seen:
                    raise ProviderApiError(
                        "stripe API answered the same page again (its has_more never ends);"
                        " stopped there, the checkpoint is kept: rerun later to resume"
                    )
                seen.add(last)
                after = last
            yield Page(items, refused, None if done else Cursor("events", after, position))
            if done:
                return
