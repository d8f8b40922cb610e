"""Backfill checkpoints: saved, replaced and cleared, by one backfill or two at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import Engine

from gateway.core.errors import CardDataRefused
from gateway.storage import checkpoints
from gateway.storage.checkpoints import Checkpoint, Cursor
from tests.support.database import assert_nowhere

SAVES = 150
PAN_GROUPS = ["4111", "1111", "1111", "1111"]


def test_two_backfills_saving_at_once_never_fail(
    make_app: Callable[..., Flask], engine: Engine
) -> None:
    store = make_app().extensions["paysieve.pipeline"].store
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    until = since + timedelta(hours=12)
    failures: list[str] = []

    def backfill(run: int) -> None:
        for page in range(SAVES):
            cursor = Cursor("events", f"evt_run{'ab'[run]}page{page:03d}", page)
            try:
                checkpoints.save(store, "stripe", "default", Checkpoint(since, until, cursor, page))
            except Exception as exc:  # noqa: BLE001 - any failure is what this counts
                failures.append(type(exc).__name__)

    threads = [threading.Thread(target=backfill, args=(run,)) for run in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    saved = checkpoints.load(store, "stripe", "default")
    assert saved is not None and saved.cursor.position == SAVES - 1
    assert (saved.since, saved.until, saved.objects) == (since, until, SAVES - 1)


def test_a_save_replaces_the_window_and_clear_forgets_it(
    make_app: Callable[..., Flask], engine: Engine
) -> None:
    store = make_app().extensions["paysieve.pipeline"].store
    since = datetime(2026, 12, 1, tzinfo=UTC)
    first = Checkpoint(since, since + timedelta(hours=1), Cursor("payments", None, 100), 100)
    second = Checkpoint(since, since + timedelta(hours=2), Cursor("refunds", None, 0), 250)
    checkpoints.save(store, "razorpay", "default", first)
    checkpoints.save(store, "razorpay", "default", second)
    checkpoints.save(store, "razorpay", "other", first)
    assert checkpoints.load(store, "razorpay", "default") == second
    assert checkpoints.load(store, "razorpay", "other") == first
    checkpoints.clear(store, "razorpay", "default")
    assert checkpoints.load(store, "razorpay", "default") is None
    assert checkpoints.load(store, "razorpay", "other") == first


def test_a_cursor_that_looks_like_card_data_is_refused_and_the_last_one_kept(
    make_app: Callable[..., Flask], engine: Engine, database_url: str
) -> None:
    store = make_app().extensions["paysieve.pipeline"].store
    since = datetime(2026, 12, 1, tzinfo=UTC)
    kept = Checkpoint(since, since + timedelta(hours=1), Cursor("events", "evt_A", 100), 100)
    checkpoints.save(store, "stripe", "default", kept)
    separated = ["\u00a0".join(PAN_GROUPS), "\u200b".join(PAN_GROUPS), "_".join(PAN_GROUPS)]
    tokens = ["evt_4111111111111111", "evt_4111-1111-1111-1111", *separated]
    for token in tokens:
        planted = Checkpoint(since, since + timedelta(hours=1), Cursor("events", token, 200), 200)
        with pytest.raises(CardDataRefused):
            checkpoints.save(store, "stripe", "default", planted)
    assert checkpoints.load(store, "stripe", "default") == kept
    assert_nowhere(tokens, engine, database_url)
