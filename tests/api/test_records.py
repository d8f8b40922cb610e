"""The read API: auth matrix, record shapes, filters, keyset pages, change feed, limits, headers."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select

from gateway.api.records import COLLECTIONS
from gateway.app import openapi_document
from gateway.core import guard
from gateway.storage.joined import SERVED_BOOKKEEPING
from gateway.storage.store import Store
from gateway.storage.tables import audit_log, events, field_columns
from tests.support.api import T0, apply, bearer, make_key, pm, store_of, sub, txn
from tests.support.webhooks import sample, signed_post

ROUTES = [
    "/v1/transactions",
    "/v1/transactions/stripe/ch_1",
    "/v1/payment-methods",
    "/v1/payment-methods/stripe/pm_1",
    "/v1/subscriptions",
    "/v1/subscriptions/stripe/sub_1",
    "/v1/events",
]
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")

# The largest BIGINT the served-value check would not withhold as card data.
LARGEST_SERVABLE_SEQ = 2**63 - 9


@pytest.fixture
def seeded(app: Flask) -> Store:
    """Return the store holding one record of each type for account default."""
    store = store_of(app)
    apply(
        store,
        txn(
            "ch_1",
            kind="payment",
            status="succeeded",
            amount=500,
            currency="USD",
            customer="cus_1",
            payment_method="pm_1",
        ),
        pm(
            "pm_1",
            customer="cus_1",
            brand="visa",
            last4="4242",
            exp_month=12,
            exp_year=2030,
            status="active",
        ),
    )
    apply(
        store,
        sub(
            "sub_1",
            customer="cus_1",
            plan="plan_1",
            status="active",
            current_period_end=T0,
            cancel_at_period_end=False,
        ),
    )
    return store


@pytest.fixture
def key(engine: Engine) -> str:
    """Return a records:read key for every account."""
    return make_key(engine, "records:read")


def get(client: FlaskClient, path: str, key: str, **params: Any) -> Any:
    """GET a route with a key and return the response."""
    return client.get(path, headers=bearer(key), query_string=params)


# ------------------------------------------------------------------ auth matrix


@pytest.mark.parametrize("route", ROUTES)
def test_valid_key_reads(client: FlaskClient, seeded: Store, key: str, route: str) -> None:
    response = get(client, route, key)
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer not-a-key",
        "Basic cHN:aw==",
        "Bearer psk_0123456789ab_" + "A" * 43,
    ],
)
def test_missing_or_bad_key_is_401(
    client: FlaskClient, seeded: Store, route: str, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = client.get(route, headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {
        "error": {"code": "unauthorized", "message": "a valid API key is required"}
    }


def test_right_prefix_wrong_secret_is_401(client: FlaskClient, seeded: Store, key: str) -> None:
    forged = key[: len("psk_0123456789ab_")] + ("B" * 43 if key[-1] != "B" else "C" * 43)
    assert client.get("/v1/transactions", headers=bearer(forged)).status_code == 401


@pytest.mark.parametrize("route", ROUTES)
def test_revoked_key_is_401(client: FlaskClient, seeded: Store, engine: Engine, route: str) -> None:
    revoked = make_key(engine, "records:read", revoked=True)
    assert get(client, route, revoked).status_code == 401


@pytest.mark.parametrize("route", ROUTES)
def test_wrong_scope_is_403(client: FlaskClient, seeded: Store, engine: Engine, route: str) -> None:
    other = make_key(engine, "audit:read", "customers:erase")
    response = get(client, route, other)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


def test_key_bound_to_another_account_sees_nothing_of_this_one(
    client: FlaskClient, seeded: Store, engine: Engine
) -> None:
    apply(seeded, txn("ch_eu", status="succeeded"), account="eu")
    eu_key = make_key(engine, "records:read", accounts=["eu"])
    for route in ROUTES:
        response = get(client, route, eu_key)
        if "/stripe/" in route:
            assert response.status_code == 404, route
            assert response.get_json()["error"]["code"] == "not_found"
        else:
            assert response.status_code == 200, route
            assert all(item["account"] == "eu" for item in response.get_json()["data"]), route
    listed = get(client, "/v1/transactions", eu_key).get_json()["data"]
    assert [t["id"] for t in listed] == ["ch_eu"]
    # Asking for the other account by filter is the same as asking for nothing.
    assert get(client, "/v1/transactions", eu_key, account="default").get_json()["data"] == []
    assert get(client, "/v1/transactions/stripe/ch_eu", eu_key).status_code == 200
    settle(client, make_key(engine), 3)
    feed = get(client, "/v1/events", eu_key).get_json()["data"]
    assert [e["account"] for e in feed] == ["eu"]


def test_same_id_in_two_accounts_needs_the_account(
    client: FlaskClient, seeded: Store, key: str
) -> None:
    apply(seeded, txn("ch_1", status="failed"), account="eu")
    response = get(client, "/v1/transactions/stripe/ch_1", key)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "ambiguous_record"
    one = get(client, "/v1/transactions/stripe/ch_1", key, account="eu").get_json()
    assert (one["account"], one["status"]) == ("eu", "failed")


# ------------------------------------------------------------------ shapes


def test_transaction_shape_embeds_its_payment_method(
    client: FlaskClient, seeded: Store, key: str
) -> None:
    body = get(client, "/v1/transactions/stripe/ch_1", key).get_json()
    expected = {
        "id",
        "kind",
        "status",
        "provider_status",
        "amount",
        "currency",
        "customer",
        "payment_intent",
        "charge",
        "order",
        "invoice",
        "subscription",
        "refund_of",
        "payment_method",
        *SERVED_BOOKKEEPING,
    }
    assert set(body) == expected
    assert (body["amount"], body["currency"], body["customer"]) == (500, "USD", "cus_1")
    assert body["payment_intent"] is None
    method = body["payment_method"]
    assert method["token"] == "pm_1"
    assert (method["brand"], method["last4"], method["exp_month"]) == ("visa", "4242", 12)
    assert set(method) == {
        "token",
        "customer",
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "status",
        *SERVED_BOOKKEEPING,
    }
    for stamp in ("created_at", "updated_at"):
        assert RFC3339_UTC.fullmatch(body[stamp]), body[stamp]
    assert body["last_event_id"].startswith("evt_")


def test_payment_method_is_null_or_token_only(client: FlaskClient, app: Flask, key: str) -> None:
    store = store_of(app)
    apply(store, txn("ch_none", status="pending"), txn("ch_early", payment_method="pm_later"))
    none = get(client, "/v1/transactions/stripe/ch_none", key).get_json()
    assert none["payment_method"] is None
    early = get(client, "/v1/transactions/stripe/ch_early", key).get_json()["payment_method"]
    assert early["token"] == "pm_later"
    assert early["brand"] is None and early["created_at"] is None


def test_subscription_and_payment_method_shapes(
    client: FlaskClient, seeded: Store, key: str
) -> None:
    subscription = get(client, "/v1/subscriptions/stripe/sub_1", key).get_json()
    assert set(subscription) == {
        "id",
        "customer",
        "plan",
        "status",
        "provider_status",
        "current_period_end",
        "cancel_at_period_end",
        *SERVED_BOOKKEEPING,
    }
    assert subscription["current_period_end"] == "2026-03-02T14:00:00Z"
    assert subscription["cancel_at_period_end"] is False
    method = get(client, "/v1/payment-methods/stripe/pm_1", key).get_json()
    assert method["last4"] == "4242"


def test_dump_schemas_serve_exactly_the_allowlisted_columns() -> None:
    for collection in COLLECTIONS:
        served = set(collection.item().fields)
        assert served == {*field_columns(collection.record_type), *SERVED_BOOKKEEPING}


def test_unknown_record_and_malformed_path_are_404(
    client: FlaskClient, seeded: Store, key: str
) -> None:
    for path in (
        "/v1/transactions/stripe/ch_nope",
        "/v1/transactions/nope/ch_1",
        "/v1/transactions/stripe/bad%20id",
        "/v1/payment-methods/STRIPE/pm_1",
    ):
        response = get(client, path, key)
        assert response.status_code == 404, path
        assert "nope" not in response.get_data(as_text=True)


# ------------------------------------------------------------------ filters


@pytest.fixture
def varied(app: Flask) -> Store:
    """Return a store with transactions differing in every filterable field."""
    store = store_of(app)
    apply(store, txn("ch_a", kind="payment", status="succeeded", customer="cus_a"))
    apply(store, txn("ch_b", kind="refund", status="refunded", customer="cus_b"))
    apply(store, txn("ch_c", kind="payment", status="failed", customer="cus_a"), account="eu")
    apply(
        store,
        txn("pay_d", kind="payment", status="succeeded", customer="cus_d"),
        provider="razorpay",
    )
    apply(store, pm("pm_a", status="active"), pm("pm_b", status="detached"))
    apply(store, sub("sub_a", status="active"), sub("sub_b", status="canceled"))
    return store


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["ch_a", "ch_b", "ch_c", "pay_d"]),
        ({"provider": "razorpay"}, ["pay_d"]),
        ({"account": "eu"}, ["ch_c"]),
        ({"customer": "cus_a"}, ["ch_a", "ch_c"]),
        ({"status": "succeeded"}, ["ch_a", "pay_d"]),
        ({"kind": "refund"}, ["ch_b"]),
        ({"kind": "payment", "customer": "cus_a", "account": "default"}, ["ch_a"]),
    ],
)
def test_transaction_filters(
    client: FlaskClient, varied: Store, key: str, params: dict[str, str], expected: list[str]
) -> None:
    body = get(client, "/v1/transactions", key, **params).get_json()
    assert [t["id"] for t in body["data"]] == expected


def test_status_filters_of_other_lists(client: FlaskClient, varied: Store, key: str) -> None:
    methods = get(client, "/v1/payment-methods", key, status="detached").get_json()["data"]
    assert [m["token"] for m in methods] == ["pm_b"]
    subs = get(client, "/v1/subscriptions", key, status="canceled").get_json()["data"]
    assert [s["id"] for s in subs] == ["sub_b"]
    subs = get(client, "/v1/subscriptions", key, customer="cus_x").get_json()["data"]
    assert subs == []


def test_updated_since(client: FlaskClient, app: Flask, key: str) -> None:
    store = store_of(app)
    apply(store, txn("ch_old"))
    time.sleep(0.05)
    middle = datetime.now(UTC)
    time.sleep(0.05)
    apply(store, txn("ch_new"))
    since = middle.isoformat().replace("+00:00", "Z")
    body = get(client, "/v1/transactions", key, updated_since=since).get_json()
    assert [t["id"] for t in body["data"]] == ["ch_new"]
    # The same instant in another offset selects the same records.
    shifted = middle.astimezone(timezone_plus(5, 30)).isoformat()
    body = get(client, "/v1/transactions", key, updated_since=shifted).get_json()
    assert [t["id"] for t in body["data"]] == ["ch_new"]


def timezone_plus(hours: int, minutes: int) -> Any:
    """Return a fixed UTC offset."""
    from datetime import timezone

    return timezone(timedelta(hours=hours, minutes=minutes))


@pytest.mark.parametrize(
    ("route", "params"),
    [
        ("/v1/transactions", {"updated_since": "yesterday-secret"}),
        ("/v1/transactions", {"updated_since": "2026-03-02T14:00:00"}),
        ("/v1/transactions", {"updated_since": "2026-13-02T14:00:00Z"}),
        ("/v1/transactions", {"status": "secret-status"}),
        ("/v1/transactions", {"kind": "secret-kind"}),
        ("/v1/transactions", {"provider": "Secret!"}),
        ("/v1/transactions", {"customer": "secret value"}),
        ("/v1/transactions", {"limit": "0"}),
        ("/v1/transactions", {"limit": "501"}),
        ("/v1/transactions", {"limit": "secret"}),
        ("/v1/transactions", {"secret_param": "1"}),
        ("/v1/payment-methods", {"kind": "payment"}),
        ("/v1/subscriptions", {"status": "refunded"}),
        ("/v1/events", {"after": "-1"}),
        ("/v1/events", {"after": "secret"}),
        ("/v1/events", {"limit": "501"}),
        # Found by schemathesis: past bigint, and past the calendar's ends once offset.
        ("/v1/events", {"after": str(2**63)}),
        ("/v1/transactions", {"updated_since": "0001-01-01T00:00:00+05:00"}),
        ("/v1/transactions", {"updated_since": "9999-12-31T23:59:59-05:00"}),
        # Only ASCII digits are numbers here: int() would read these as 3, 10, 5 and 1.
        ("/v1/transactions", {"limit": "\u0663"}),
        ("/v1/transactions", {"limit": "1_0"}),
        ("/v1/transactions", {"limit": " 5"}),
        ("/v1/transactions", {"limit": "+1"}),
        ("/v1/events", {"after": "\u0663"}),
        ("/v1/events", {"after": "\u00b2"}),
        ("/v1/events", {"after": "99999999999999999999999"}),
        ("/v1/events", {"after": "9" * 5000}),
        ("/v1/events", {"limit": "\uff15"}),
        ("/v1/transactions", {"updated_since": "\u0662\u0660\u0662\u0666-03-02T14:00:00Z"}),
        ("/v1/transactions", {"updated_since": "10000-01-01T00:00:00Z"}),
        ("/v1/transactions", {"updated_since": "0000-12-31T23:59:59Z"}),
        ("/v1/transactions", {"updated_since": "2026-03-02T14:00:00Z\n"}),
        ("/v1/transactions", {"customer": "cus_secret\n"}),
        ("/v1/transactions", {"provider": "stripe\n"}),
        ("/v1/subscriptions", {"account": "default\n"}),
        ("/v1/transactions", {"cursor": "\u0663" * 23}),
        ("/v1/transactions/stripe/ch_1", {"account": "secret account"}),
        ("/v1/customers/stripe/cus_1/export", {"account": "secret account"}),
        ("/v1/customers/stripe/cus_1/export", {"secret_param": "1"}),
    ],
)
def test_invalid_parameters_are_400_without_echo(
    client: FlaskClient, key: str, route: str, params: dict[str, str]
) -> None:
    response = get(client, route, key, **params)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"]["code"] == "invalid_parameter"
    assert set(body["error"]) == {"code", "message"}
    text = response.get_data(as_text=True)
    assert "secret" not in text and "999" not in text


@pytest.mark.parametrize(
    ("route", "params"),
    [
        ("/v1/transactions", {"updated_since": "0001-01-01T00:00:00Z"}),
        ("/v1/transactions", {"updated_since": "9999-12-31T23:59:59.999999Z"}),
        # The largest seq a BIGINT holds that the served-value check would not withhold
        # (2**63 - 1 itself holds a Luhn-valid run: no answer could have served it).
        ("/v1/events", {"after": str(LARGEST_SERVABLE_SEQ)}),
        ("/v1/events", {"after": "0000000000000000001"}),
        ("/v1/transactions", {"limit": "500"}),
    ],
)
def test_extreme_valid_parameters_are_answered(
    client: FlaskClient, seeded: Store, key: str, route: str, params: dict[str, str]
) -> None:
    response = get(client, route, key, **params)
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/transactions/stripe/" + "9" * 300,
        "/v1/transactions/stripe/%D9%A3",
        "/v1/transactions/stripe/ch_1%0A",
        "/v1/transactions/stripe/ch_1%00",
        "/v1/payment-methods/%C2%B2/pm_1",
        "/v1/subscriptions/stripe/" + "%FF" * 20,
        "/v1/customers/stripe/" + "9" * 300 + "/export",
        "/v1/customers/%D9%A3/cus_1/export",
    ],
)
def test_unparseable_path_parameters_are_json_404(
    client: FlaskClient, engine: Engine, path: str
) -> None:
    everything = make_key(engine, "records:read", "customers:erase", "audit:read")
    response = client.get(path, headers=bearer(everything))
    assert response.status_code == 404, path
    assert response.get_json()["error"]["code"] == "not_found"
    assert "999" not in response.get_data(as_text=True)
    if "/customers/" in path:
        erased = client.delete(path.removesuffix("/export"), headers=bearer(everything))
        assert erased.status_code == 404


def test_repeated_parameter_is_400(client: FlaskClient, key: str) -> None:
    response = client.get("/v1/transactions?status=failed&status=succeeded", headers=bearer(key))
    assert response.status_code == 400


# ------------------------------------------------------------------ pagination


def walk(client: FlaskClient, key: str, path: str, **params: Any) -> tuple[list[str], int]:
    """Follow next_cursor to the end; return the ids seen and the number of pages."""
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = get(client, path, key, **query)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        pages += 1
        seen += [item.get("id") or item.get("token") for item in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages


def test_pages_cover_everything_once(client: FlaskClient, app: Flask, key: str) -> None:
    store = store_of(app)
    for i in range(25):
        apply(store, txn(f"ch_{i:02d}", status="succeeded" if i % 2 else "failed"))
    seen, pages = walk(client, key, "/v1/transactions", limit=10)
    assert seen == [f"ch_{i:02d}" for i in range(25)]
    assert pages == 3
    odd, _ = walk(client, key, "/v1/transactions", limit=4, status="succeeded")
    assert odd == [f"ch_{i:02d}" for i in range(1, 25, 2)]
    exact, pages = walk(client, key, "/v1/transactions", limit=25)
    assert (len(exact), pages) == (25, 1)
    default = get(client, "/v1/transactions", key).get_json()
    assert len(default["data"]) == 25 and default["next_cursor"] is None


def test_default_and_maximum_limit(client: FlaskClient, app: Flask, key: str) -> None:
    store = store_of(app)
    apply(store, *[txn(f"ch_{i:03d}") for i in range(101)])
    first = get(client, "/v1/transactions", key).get_json()
    assert len(first["data"]) == 100 and first["next_cursor"] is not None
    assert len(get(client, "/v1/transactions", key, limit=500).get_json()["data"]) == 101


@pytest.mark.parametrize(
    "cursor", ["garbage", "AAAA", "x" * 64, "AQAAAAAAAAAAAAAAAAAAAAA", "!!!", "A"]
)
def test_garbage_cursor_is_400(client: FlaskClient, key: str, cursor: str) -> None:
    response = get(client, "/v1/transactions", key, cursor=cursor)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] in ("invalid_cursor", "invalid_parameter")


def test_cursor_past_bigint_is_400(client: FlaskClient, key: str) -> None:
    from gateway.api.cursors import cursor_scope, encode_cursor

    cursor = encode_cursor(2**64 - 1, cursor_scope("transactions", {}))
    response = get(client, "/v1/transactions", key, cursor=cursor)
    assert response.status_code == 400


def test_cursor_is_bound_to_its_list_and_filters(client: FlaskClient, app: Flask, key: str) -> None:
    store = store_of(app)
    apply(store, *[txn(f"ch_{i}", status="failed") for i in range(3)])
    cursor = get(client, "/v1/transactions", key, limit=1, status="failed").get_json()[
        "next_cursor"
    ]
    assert cursor is not None
    ok = get(client, "/v1/transactions", key, limit=1, status="failed", cursor=cursor)
    assert ok.status_code == 200
    for path, params in [
        ("/v1/transactions", {"status": "succeeded"}),
        ("/v1/transactions", {}),
        ("/v1/subscriptions", {"status": "failed"} and {}),
    ]:
        response = get(client, path, key, cursor=cursor, **params)
        assert response.status_code == 400, (path, params)
        assert response.get_json()["error"]["code"] == "invalid_cursor"


def test_walk_while_records_arrive_returns_each_existing_record_once(
    client: FlaskClient, app: Flask, key: str
) -> None:
    store = store_of(app)
    existing = [f"ch_{i:03d}" for i in range(60)]
    for i in range(0, 60, 6):
        apply(store, *[txn(ident, status="pending") for ident in existing[i : i + 6]])
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        n = 0
        try:
            while not stop.is_set():
                # New records, and updates to existing ones, while the walk goes on.
                apply(store, txn(f"new_{n:04d}"), txn(existing[n % 60], status="succeeded"))
                n += 1
                # Leave SQLite's single write lock free now and then for the audit writes.
                time.sleep(0.002)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen, pages = walk(client, key, "/v1/transactions", limit=7)
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert len(seen) == len(set(seen)), "a record was served twice"
    assert [ident for ident in seen if ident.startswith("ch_")] == existing
    assert pages >= 9


# ------------------------------------------------------------------ change feed


def test_feed_lists_events_in_seq_order_with_object_ids(
    client: FlaskClient, app: Flask, key: str
) -> None:
    store = store_of(app)
    first = apply(store, txn("ch_1", payment_method="pm_1"), pm("pm_1"), event_type="charge.x")
    second = apply(store, sub("sub_1"))
    third = apply(store)
    settle(client, key, 3)
    body = get(client, "/v1/events", key).get_json()
    assert [e["id"] for e in body["data"]] == [first, second, third]
    seqs = [e["seq"] for e in body["data"]]
    assert seqs == sorted(seqs)
    event = body["data"][0]
    assert event["object_ids"] == {
        "transaction": ["ch_1"],
        "payment_method": ["pm_1"],
        "subscription": [],
    }
    assert event["type"] == "charge.x" and event["outcome"] == "stored"
    assert RFC3339_UTC.fullmatch(event["occurred_at"]) and RFC3339_UTC.fullmatch(
        event["received_at"]
    )
    assert set(event) == {
        "seq",
        "provider",
        "account",
        "id",
        "type",
        "occurred_at",
        "received_at",
        "outcome",
        "object_ids",
        "dropped_fields",
    }
    assert body["next_after"] == seqs[-1] and body["has_more"] is False
    page = get(client, "/v1/events", key, after=seqs[0], limit=1).get_json()
    assert [e["id"] for e in page["data"]] == [second]
    assert (page["next_after"], page["has_more"]) == (seqs[1], True)
    empty = get(client, "/v1/events", key, after=seqs[-1]).get_json()
    assert empty == {"data": [], "next_after": seqs[-1], "has_more": False}
    assert get(client, "/v1/events", key, provider="razorpay").get_json()["data"] == []


def settle(client: FlaskClient, key: str, count: int, timeout: float = 20) -> None:
    """Wait until the feed serves count events from the start.

    On PostgreSQL the feed holds events back while any older transaction in the
    cluster runs (other databases' included), so a test sharing a server waits.
    """
    deadline = time.monotonic() + timeout
    while len(poll_all(client, key, 0, limit=500)[0]) < count:
        assert time.monotonic() < deadline, "the change feed did not catch up"
        time.sleep(0.01)


def poll_all(
    client: FlaskClient, key: str, after: int = 0, limit: int = 3
) -> tuple[list[int], int]:
    """Poll the feed until caught up; return the seqs served and the last after."""
    seqs: list[int] = []
    while True:
        body = get(client, "/v1/events", key, after=after, limit=limit).get_json()
        seqs += [e["seq"] for e in body["data"]]
        after = body["next_after"]
        if not body["has_more"]:
            return seqs, after


def test_feed_never_skips_an_event_that_commits_late(
    client: FlaskClient, app: Flask, key: str, monkeypatch: pytest.MonkeyPatch, dialect: str
) -> None:
    """A writer holding a lower seq open hides higher seqs until it commits."""
    store = store_of(app)
    apply(store, txn("ch_before"))
    settle(client, key, 1)
    _, after = poll_all(client, key)
    entered, release = threading.Event(), threading.Event()
    event_object = Store._event_object

    def slow_event_object(self: Store, seq: int, record_type: str, key: str) -> Any:
        # Called inside the transaction, after the event row took its seq.
        if key == "ch_slow":
            entered.set()
            assert release.wait(10)
        return event_object(self, seq, record_type, key)

    monkeypatch.setattr(Store, "_event_object", slow_event_object)
    slow = threading.Thread(target=apply, args=(store, txn("ch_slow")))
    slow.start()
    assert entered.wait(10)
    # The slow writer has its event row (and seq) but has not committed.
    fast = threading.Thread(target=apply, args=(store, txn("ch_fast")))
    fast.start()
    if dialect == "postgresql":
        fast.join(10)
        assert not fast.is_alive(), "writers must not wait for each other to commit"
        # The higher seq is committed, but the lower one may still commit: hold both back.
        hidden, after_hidden = poll_all(client, key, after)
        assert hidden == [] and after_hidden == after
    else:
        # SQLite: the fast writer waits for the write lock, so seq order is commit order
        # (and the feed's audit write would wait too: nothing to poll meanwhile).
        time.sleep(0.2)
        assert fast.is_alive()
    release.set()
    slow.join(10)
    fast.join(10)
    settle(client, key, 3)
    late, _ = poll_all(client, key, after)
    body = get(client, "/v1/events", key, after=after).get_json()
    ids = [e["id"] for e in body["data"]]
    assert len(late) == 2 and late == sorted(late)
    touched = [e["object_ids"]["transaction"] for e in body["data"]]
    assert sorted(touched) == [["ch_fast"], ["ch_slow"]]
    assert len(ids) == 2


def test_polling_during_interleaved_writers_serves_every_event_once(
    client: FlaskClient, app: Flask, key: str
) -> None:
    store = store_of(app)
    writers, per_writer = 4, 20
    done = threading.Event()
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for i in range(per_writer):
                apply(store, txn(f"ch_{w}_{i}"), pm(f"pm_{w}_{i}"))
                # Webhooks arrive, they are not a tight loop: leave SQLite's lock to others.
                time.sleep(0.002)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    served: list[int] = []
    after = 0
    while any(t.is_alive() for t in threads):
        seqs, after = poll_all(client, key, after, limit=5)
        served += seqs
        time.sleep(0.002)
    with store.engine.connect() as conn:
        stored = [r.seq for r in conn.execute(select(events.c.seq).order_by(events.c.seq))]
    # Catching up may wait: on PostgreSQL any transaction running in the cluster (another
    # database's too) holds the horizon back until it ends; nothing is skipped meanwhile.
    deadline = time.monotonic() + 20
    while len(served) < len(stored) and time.monotonic() < deadline:
        seqs, after = poll_all(client, key, after, limit=5)
        served += seqs
        time.sleep(0.01)
    done.set()
    assert not errors
    assert served == sorted(served) and len(served) == len(set(served))
    assert len(stored) == writers * per_writer
    assert served == stored


# ------------------------------------------------------------------ audit trail


def test_reads_are_audited_without_values(
    client: FlaskClient, seeded: Store, key: str, engine: Engine
) -> None:
    get(client, "/v1/transactions", key)
    get(client, "/v1/transactions/stripe/ch_1", key)
    get(client, "/v1/transactions/stripe/ch_missing", key)
    client.get("/v1/events")
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(audit_log).order_by(audit_log.c.seq))]
    prefix = key.split("_")[1]
    assert [(r["actor"], r["route"], r["outcome"], r["count"]) for r in rows] == [
        (prefix, "/v1/transactions", "ok", 1),
        (prefix, "/v1/transactions/<provider>/<ident>", "ok", 1),
        (prefix, "/v1/transactions/<provider>/<ident>", "not_found", 0),
        ("anonymous", "/v1/events", "unauthorized", 0),
    ]
    assert all(r["action"] == "read" for r in rows)
    text = repr(rows)
    for value in ("ch_1", "cus_1", "4242", "ch_missing", key.split("_", 2)[2]):
        assert value not in text


def test_use_sets_last_used(client: FlaskClient, key: str, engine: Engine) -> None:
    from gateway.api.keys import list_keys

    get(client, "/v1/transactions", key)
    with engine.connect() as conn:
        (record,) = list_keys(conn)
    assert record.last_used_at is not None


# ------------------------------------------------------------------ rate limit


def test_rate_limit_answers_429_with_retry_after(
    make_app: Callable[..., Flask], engine: Engine
) -> None:
    app = make_app(rate_limit="3 per minute")
    client = app.test_client()
    first, second = make_key(engine), make_key(engine)
    for _ in range(3):
        assert get(client, "/v1/transactions", first).status_code == 200
    limited = get(client, "/v1/transactions", first)
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["X-Content-Type-Options"] == "nosniff"
    # Per key: another key has its own budget; the webhooks and health have none.
    assert get(client, "/v1/transactions", second).status_code == 200
    for n in range(5):
        assert client.get("/healthz").status_code == 200
        assert client.get("/openapi.json").status_code == 200
        event = sample("stripe", "charge.succeeded", event_id=f"evt_limit_{n}")
        assert signed_post(client, "stripe", event).status_code == 200


def test_requests_without_a_key_are_limited_by_address(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(rate_limit="2 per minute").test_client()
    assert [client.get("/v1/events").status_code for _ in range(3)] == [401, 401, 429]


def test_rate_limit_in_redis(make_app: Callable[..., Flask], engine: Engine) -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379", socket_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    key = make_key(engine)
    config = {"rate_limit": "2 per minute", "rate_limit_storage": "redis://127.0.0.1:6379"}
    first, second = make_app(**config).test_client(), make_app(**config).test_client()
    # Two gateway processes share one budget through Redis.
    assert get(first, "/v1/transactions", key).status_code == 200
    assert get(second, "/v1/transactions", key).status_code == 200
    limited = get(first, "/v1/transactions", key)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    prefix = key.split("_")[1]
    stored = redis.Redis.from_url("redis://127.0.0.1:6379").keys(f"*{prefix}*")
    assert stored, "the limit lives in Redis"


def test_bad_rate_limit_setting_fails_at_startup(make_app: Callable[..., Flask]) -> None:
    from gateway.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        make_app(rate_limit="lots")


# ------------------------------------------------------------------ headers, OpenAPI, docs

SECURITY = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def test_security_headers_on_every_kind_of_answer(
    client: FlaskClient, seeded: Store, key: str
) -> None:
    answers = [
        get(client, "/v1/transactions", key),
        get(client, "/v1/transactions/stripe/nope", key),
        client.get("/v1/transactions"),
        client.get("/healthz"),
        client.get("/no-such-route"),
        client.post("/webhooks/stripe", data=b"{}", content_type="application/json"),
        client.get("/openapi.json"),
        client.delete("/v1/transactions", headers=bearer(key)),
    ]
    for response in answers:
        for name, value in SECURITY.items():
            assert response.headers.get(name) == value, (response.status_code, name)
        assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
        assert response.content_type.startswith("application/json")


def test_docs_page_gets_exactly_the_csp_it_needs(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    html = page.get_data(as_text=True)
    assert "<script>" not in html and "http" not in html.replace("charset", "")
    for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
        response = client.get(asset)
        assert response.status_code == 200, asset
        response.close()
    assert client.get("/docs/static/index.html").status_code == 404
    assert client.get("/docs/static/..%2f__init__.py").status_code == 404


def test_openapi_document_is_valid(client: FlaskClient) -> None:
    from openapi_spec_validator import validate

    document = client.get("/openapi.json").get_json()
    validate(document)
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["security"] == [{"bearerAuth": []}]
    paths = document["paths"]
    for route in ("/v1/transactions", "/v1/payment-methods", "/v1/subscriptions", "/v1/events"):
        assert "get" in paths[route]
    params = {p["name"] for p in paths["/v1/transactions"]["get"]["parameters"]}
    assert params == {
        "provider",
        "account",
        "customer",
        "status",
        "kind",
        "updated_since",
        "limit",
        "cursor",
    }
    schemas = document["components"]["schemas"]
    assert set(schemas["TransactionOut"]["properties"]) == set(COLLECTIONS[0].item().fields)
    assert document == openapi_document()


# ------------------------------------------------------------------ every keyed route


def keyed_routes(app: Flask) -> list[tuple[str, str, str]]:
    """Return (method, template, path) of every keyed route, with sample path values."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?provider>", "stripe", rule.rule)
        path = re.sub(r"<[^>]+>", "x_1", path)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, rule.rule, path))
    return found


def test_every_keyed_route_is_rate_limited(make_app: Callable[..., Flask], engine: Engine) -> None:
    app = make_app(rate_limit="2 per minute")
    client = app.test_client()
    routes = keyed_routes(app)
    templates = {template for _, template, _ in routes}
    assert {"/v1/audit-log", "/v1/customers/<provider>/<customer>/export"} <= templates
    assert ("DELETE", "/v1/customers/<provider>/<customer>") in {(m, t) for m, t, _ in routes}
    everything = bearer(make_key(engine, "records:read", "customers:erase", "audit:read"))
    for method, template, path in routes:
        answers = [client.open(path, method=method, headers=everything) for _ in range(3)]
        assert all(a.status_code < 429 for a in answers[:2]), (method, template)
        limited = answers[2]
        assert limited.status_code == 429, (method, template)
        assert limited.get_json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) >= 1


def test_refused_scope_is_audited_and_logged_with_the_key_prefix(
    client: FlaskClient, seeded: Store, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    auditor = make_key(engine, "audit:read")
    reader = make_key(engine, "records:read")
    caplog.set_level("INFO")
    assert get(client, "/v1/transactions/stripe/ch_1", auditor).status_code == 403
    assert get(client, "/v1/customers/stripe/cus_1/export", auditor).status_code == 403
    assert client.delete("/v1/customers/stripe/cus_1", headers=bearer(reader)).status_code == 403
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.route, audit_log.c.outcome).order_by(
                audit_log.c.seq
            )
        ).all()
    auditor_prefix, reader_prefix = auditor.split("_")[1], reader.split("_")[1]
    assert [tuple(row) for row in rows] == [
        (auditor_prefix, "/v1/transactions/<provider>/<ident>", "forbidden"),
        (auditor_prefix, "/v1/customers/<provider>/<customer>/export", "forbidden"),
        (reader_prefix, "/v1/customers/<provider>/<customer>", "forbidden"),
    ]
    refusals = [r.getMessage() for r in caplog.records if "scope" in r.getMessage()]
    assert len(refusals) == 3
    assert auditor_prefix in refusals[0] and "/v1/transactions/<provider>/<ident>" in refusals[0]
    assert reader_prefix in refusals[2]
    for message in refusals:
        assert "cus_1" not in message and "ch_1" not in message
        assert "anonymous" not in message


@pytest.mark.parametrize("route", ["/v1/events", "/v1/audit-log"])
def test_a_card_number_as_a_seq_is_refused_not_echoed_as_null(
    client: FlaskClient, engine: Engine, route: str
) -> None:
    # Luhn-valid, 19 digits: echoed as next_after it would be withheld (null, not an integer).
    key = bearer(make_key(engine, "records:read", "audit:read"))
    for after in (4601070564448064000, 2**63 - 1):
        response = client.get(f"{route}?after={after}", headers=key)
        assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "invalid query parameter: after"
    for after in (5, LARGEST_SERVABLE_SEQ):
        assert guard.card_data_reason(after) is None
        assert client.get(f"{route}?after={after}", headers=key).status_code == 200
