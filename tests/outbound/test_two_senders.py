"""Two `paysieve deliver` processes on one PostgreSQL: each delivery sent once, in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from standardwebhooks import Webhook

from gateway.storage.store import Store
from gateway.storage.tables import outbound_deliveries
from tests.support.api import apply, txn
from tests.support.database import TEST_DATA_KEY, TEST_INDEX_KEY
from tests.support.receiver import Receiver

PAYSIEVE = Path(sys.executable).with_name("paysieve")
RECORDS = 200
CHANGES = 10


def test_two_senders_deliver_each_once_in_record_order(
    dialect: str,
    database_url: str,
    engine: Engine,
    store: Store,
    receiver: Receiver,
    add_subscriber: Callable[..., str],
) -> None:
    if dialect != "postgresql":
        pytest.skip("several senders share a queue on PostgreSQL (SQLite has one writer)")
    secret = add_subscriber("billing", receiver.url())
    statuses = ("pending", "requires_action", "authorized", "succeeded", "refunded")
    for change in range(CHANGES):
        for record in range(RECORDS):
            apply(store, txn(f"ch_{record}", status=statuses[change % len(statuses)]))
    total = RECORDS * CHANGES
    env = os.environ | {
        "PAYSIEVE_DATABASE_URL": database_url,
        "PAYSIEVE_DATA_KEYS": TEST_DATA_KEY,
        "PAYSIEVE_INDEX_KEY": TEST_INDEX_KEY,
        "PAYSIEVE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8",
        "PAYSIEVE_OUTBOUND_CA_BUNDLE": receiver.ca_bundle,
    }
    started = time.monotonic()
    senders = [
        subprocess.Popen(  # noqa: S603 - our own console script
            [str(PAYSIEVE), "deliver", "--idle-seconds", "0.1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 300
        while len(receiver.received) < total and time.monotonic() < deadline:
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        time.sleep(1)  # anything sent twice would arrive now
    finally:
        for process in senders:
            process.send_signal(signal.SIGTERM)
        errors = [process.communicate(timeout=30)[1] for process in senders]
    assert all(process.returncode == 0 for process in senders), errors
    got = list(receiver.received)
    ids = [r.headers["webhook-id"] for r in got]
    print(
        f"\n[two-senders] deliveries={len(got)} seconds={elapsed:.1f}"
        f" per_second={len(got) / elapsed:.0f}"
    )
    assert len(got) == total and len(set(ids)) == total, "each delivery exactly once"
    seqs: dict[str, list[int]] = defaultdict(list)
    for request in got:
        payload = Webhook(secret).verify(request.body, request.headers)
        seqs[payload["record"]["id"]].append(payload["event"]["seq"])
    assert len(seqs) == RECORDS
    assert all(order == sorted(order) for order in seqs.values()), "per-record order"
    with engine.connect() as conn:
        states = dict(
            conn.execute(
                select(outbound_deliveries.c.state, func.count()).group_by(
                    outbound_deliveries.c.state
                )
            ).all()
        )
    assert states == {"delivered": total}
