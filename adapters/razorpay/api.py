"""Razorpay's payments, refunds and subscriptions, as the webhook events they imply.

Razorpay keeps no list of events, so each object read is turned into the one event
whose webhook would carry it in its current state (a captured payment into
``payment.captured``, a processed refund into ``refund.processed``, ...), and that
synthetic event goes through the same sanitiser and pipeline as a webhook.

Its event id is derived from the object's id, the event type and a digest of the
allowlisted record it makes: rerunning a backfill over unchanged objects stores
nothing new, and an object that changed becomes a new event.

Its time (``created_at``) is when the object was read, marked as unknown
(``EventMeta.time_unknown``): the object's own ``created_at`` would be older than
every webhook about it, so a backfill could never correct a state a lost webhook
left behind; the time of the read is the moment the state was true. A webhook
sent later than the read still wins, a late delivery of an older one never moves
the record back, and an erasure always wins over a snapshot, however recent.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import requests

from adapters.api import (
    ApiClient,
    Item,
    ObjectRefused,
    Page,
    ProviderApiError,
    Source,
    epoch,
    object_list,
)
from adapters.base import nested_deeper
from adapters.razorpay.adapter import EVENT_ID_HEADER
from adapters.shapes import ID_PATTERN
from gateway.config.settings import API_BASES, EndpointConfig, Settings, option_name
from gateway.core.errors import ConfigurationError, GatewayError
from gateway.core.records import Sanitised
from gateway.storage.checkpoints import Cursor

PAGE_SIZE: Final = 100
# resource -> (path, the payload entity name its webhooks carry it under, query extras).
RESOURCES: Final[dict[str, tuple[str, str, tuple[tuple[str, str], ...]]]] = {
    # Card details come with a payment only when asked for (as webhooks send them).
    "payments": ("/v1/payments", "payment", (("expand[]", "card"),)),
    "refunds": ("/v1/refunds", "refund", ()),
    "subscriptions": ("/v1/subscriptions", "subscription", ()),
}

# An object's status -> the webhook event that carries it in that state.
EVENT_TYPES: Final[dict[str, dict[str, str]]] = {
    "payment": {
        "authorized": "payment.authorized",
        "captured": "payment.captured",
        # A refunded payment was captured; its status word says refunded.
        "refunded": "payment.captured",
        "failed": "payment.failed",
    },
    "refund": {
        "created": "refund.created",
        "pending": "refund.created",
        "processed": "refund.processed",
        "failed": "refund.failed",
    },
    "subscription": {
        "authenticated": "subscription.authenticated",
        "active": "subscription.activated",
        "pending": "subscription.pending",
        "halted": "subscription.halted",
        "paused": "subscription.paused",
        "cancelled": "subscription.cancelled",
        "completed": "subscription.completed",
    },
}
# A subscription in another state (created, expired, a new word) changed somehow.
_SUBSCRIPTION_OTHERWISE: Final = "subscription.updated"
_LETTERS: Final = str.maketrans("0123456789", "ghijklmnop")
_MAX_ID: Final = 128

Sanitiser = Callable[[dict[str, Any]], Sanitised]


def synthetic_event(
    name: str, entity: Mapping[str, Any], read_at: datetime, sanitise: Sanitiser
) -> Item | None:
    """Return the event a webhook would carry entity in, or None if no webhook would.

    Raises ObjectRefused for an object without a usable id or one the sanitiser refuses.
    """
    object_id = entity.get("id")
    if not isinstance(object_id, str) or not _valid_id(object_id):
        raise ObjectRefused(f"a {name} without a usable id")
    status = entity.get("status")
    table = EVENT_TYPES[name]
    event_type = table.get(status) if isinstance(status, str) else None
    if event_type is None:
        if name != "subscription":
            # A payment only created (never attempted) sends no webhook: nothing to mend.
            return None
        event_type = _SUBSCRIPTION_OTHERWISE
    event: dict[str, Any] = {
        "entity": "event",
        "event": event_type,
        "contains": [name],
        "payload": {name: {"entity": dict(entity)}},
        "created_at": epoch(read_at),
    }
    if nested_deeper(event):
        raise ObjectRefused(f"a {name} nested deeper than a webhook may be")
    try:
        sanitised = sanitise(event)
    except GatewayError as exc:
        raise ObjectRefused(f"a {name} the sanitiser refuses") from exc
    event_id = f"bf.{event_type}.{object_id}.{_digest(sanitised)}"
    if len(event_id) > _MAX_ID:
        raise ObjectRefused(f"a {name} whose id is too long")
    return Item(event=event, headers={EVENT_ID_HEADER: event_id}, snapshot=True)


def _valid_id(value: str) -> bool:
    return re.fullmatch(ID_PATTERN, value) is not None and len(value) <= 64


def _digest(sanitised: Sanitised) -> str:
    """Return 16 letters digesting the allowlisted records (no digit runs: never PAN-like)."""
    canonical = orjson.dumps(
        sorted(
            (record.type, sorted(record.values.items(), key=lambda kv: kv[0]))
            for record in sanitised.records
        ),
        default=str,
    )
    return hashlib.sha256(canonical).hexdigest()[:16].translate(_LETTERS)


class RazorpayObjects(Source):
    """One Razorpay account's payments, refunds and subscriptions created in a window."""

    resources = tuple(RESOURCES)

    def __init__(
        self,
        client: ApiClient,
        sanitise: Sanitiser,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.sanitise = sanitise
        self.clock = clock

    @classmethod
    def for_endpoint(
        cls,
        settings: Settings,
        endpoint: EndpointConfig,
        sanitise: Sanitiser,
        *,
        session: requests.Session | None = None,
    ) -> RazorpayObjects:
        """Build the listing from the endpoint's key id, key secret and api_base, or refuse."""
        id_name = option_name(settings, endpoint, "key_id")
        secret_name = option_name(settings, endpoint, "key_secret")
        key_id = endpoint.options.get("key_id")
        key_secret = endpoint.options.get("key_secret")
        if not isinstance(key_id, str) or not key_id or not isinstance(key_secret, str):
            raise ConfigurationError(
                f"razorpay endpoint {endpoint.name!r} has no API key: set {id_name} and"
                f" {secret_name} (a read-only key)"
            )
        base = str(endpoint.options.get("api_base") or API_BASES["razorpay"][0])
        client = ApiClient(
            provider="razorpay",
            api_base=base,
            credentials=f"{id_name} and {secret_name}",
            auth=(key_id, key_secret),
            session=session,
        )
        return cls(client, sanitise)

    def pages(self, since: datetime, until: datetime, start: Cursor | None) -> Iterator[Page]:
        """Yield each resource's objects created in [since, until], from start on."""
        names = list(RESOURCES)
        first = names.index(start.resource) if start is not None else 0
        for index in range(first, len(names)):
            resource = names[index]
            path, name, extras = RESOURCES[resource]
            skip = start.position if start is not None and index == first else 0
            # The previous page's object ids: a server ignoring skip answers them again.
            previous: list[Any] | None = None
            while True:
                params: list[tuple[str, Any]] = [
                    ("from", epoch(since)),
                    ("to", epoch(until)),
                    ("count", PAGE_SIZE),
                    ("skip", skip),
                    *extras,
                ]
                answer = self.client.get(path, params)
                listed = object_list(answer, "items", "razorpay")
                ids = [e.get("id") if isinstance(e, Mapping) else None for e in listed]
                if listed and ids == previous:
                    raise ProviderApiError(
                        f"razorpay API answered the same page of {resource} again (it ignores"
                        " skip); stopped there, the checkpoint is kept: rerun later to resume"
                    )
                previous = ids
                read_at = self.clock()
                items: list[Item] = []
                refused = skipped = 0
                for entity in listed:
                    try:
                        if not isinstance(entity, Mapping):
                            raise ObjectRefused(f"a {name} that is not an object")
                        item = synthetic_event(name, entity, read_at, self.sanitise)
                    except ObjectRefused:
                        refused += 1
                        continue
                    if item is None:
                        skipped += 1
                    else:
                        items.append(item)
                skip += len(listed)
                more = len(listed) >= PAGE_SIZE
                if more:
                    following: Cursor | None = Cursor(resource, None, skip)
                elif index + 1 < len(names):
                    following = Cursor(names[index + 1], None, 0)
                else:
                    following = None
                yield Page(items, refused, following, skipped=skipped)
                if not more:
                    break
