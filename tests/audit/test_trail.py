"""The minimisation trail: counts per shape and day, collapsed paths, guard hits; never values."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select

from gateway.audit import trail
from gateway.audit.trail import COLLAPSED_KEY, collapse_key, leaf_paths
from gateway.db import trail_counts, trail_guard_hits, trail_shapes
from tests.conftest import all_rows, sample, signed_post

PAN = "4242424242424242"


def test_keys_that_could_be_values_are_collapsed() -> None:
    assert collapse_key("amount") == "amount"
    for key in ("4242424242424242", "12", "Jenny Rosen", "jenny@example.com", "a-b", "x" * 65, ""):
        assert collapse_key(key) == COLLAPSED_KEY
    paths = leaf_paths(
        {
            "data": {"object": {"metadata": {"Jenny": "x"}, "notes": {"a": 1}, "amount": 5}},
            "items": [{"id": "a"}, {"id": "b"}],
            PAN: {"nested": 1},
        }
    )
    assert set(paths) == {
        "data.object.metadata.*",
        "data.object.notes.*",
        "data.object.amount",
        "items[].id",
        f"{COLLAPSED_KEY}.nested",
    }


def test_the_plain_key_cache_is_bounded_and_never_holds_a_collapsed_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: set[str] = set()
    monkeypatch.setattr(trail, "_PLAIN_SEEN", seen)
    payload = {f"field_{n}": n for n in range(trail._PLAIN_SEEN_LIMIT + 50)} | {PAN: 1, "a b": 2}
    for _ in range(2):  # the second walk answers plain keys from the cache
        paths = leaf_paths(payload)
        assert "field_0" in paths and "field_4100" in paths
        assert set(paths[COLLAPSED_KEY]) == {1, 2}
    assert len(seen) == trail._PLAIN_SEEN_LIMIT
    assert PAN not in seen and "a b" not in seen


def test_one_count_per_shape_and_day_and_paths_once(client: FlaskClient, engine: Engine) -> None:
    for _ in range(3):
        event = sample("stripe", "charge.succeeded")
        event["data"]["object"]["metadata"] = {PAN: "Jenny Rosen", "order": "6735"}
        event["data"]["object"]["x_extra"] = {"Jenny Rosen": PAN}
        assert signed_post(client, "stripe", event).status_code == 200
    with engine.connect() as conn:
        counts = conn.execute(select(trail_counts)).all()
        shapes = conn.execute(select(trail_shapes)).all()
    assert [(c.provider, c.event_type, c.count) for c in counts] == [
        ("stripe", "charge.succeeded", 3)
    ]
    paths = {s.path: s.kept for s in shapes}
    assert len(shapes) == len(paths), "a shape's paths are stored once"
    assert paths["data.object.amount"] is True
    assert paths["data.object.payment_method_details.card.last4"] is True
    assert paths["data.object.description"] is False
    assert paths["data.object.billing_details.email"] is False
    assert "data.object.metadata.*" in paths
    assert f"data.object.x_extra.{COLLAPSED_KEY}" in paths
    text = repr(all_rows(engine)["trail_shapes"])
    for value in (PAN, "Jenny", "6735", "example.com"):
        assert value not in text


def test_guard_hits_are_counted_per_day(client: FlaskClient, engine: Engine) -> None:
    event = sample("stripe", "charge.succeeded")
    event["data"]["object"]["status"] = PAN
    assert signed_post(client, "stripe", event).status_code == 200
    with engine.connect() as conn:
        hits = conn.execute(select(trail_guard_hits)).all()
    assert [(h.provider, h.reason, h.count) for h in hits] == [("stripe", "pan", 1)]


def test_duplicates_are_not_counted_twice(client: FlaskClient, engine: Engine) -> None:
    event = sample("stripe", "refund.created")
    assert signed_post(client, "stripe", event).get_json()["status"] == "stored"
    assert signed_post(client, "stripe", event).get_json()["status"] == "duplicate"
    with engine.connect() as conn:
        assert conn.execute(select(trail_counts.c.count)).scalar_one() == 1
