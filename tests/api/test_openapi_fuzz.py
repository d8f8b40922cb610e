"""Schemathesis against a live gateway: no 5xx, and every answer matches /openapi.json."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine
from werkzeug.serving import make_server

from tests.support.api import T0, apply, make_key, pm, store_of, sub, txn

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 25
SCOPES = ("records:read", "customers:erase", "audit:read", "subscribers:manage")
EXPORT = "/v1/customers/{provider}/{customer}/export"
ERASE = "/v1/customers/{provider}/{customer}"


@pytest.fixture
def live(make_app: Callable[..., Flask], engine: Engine) -> Iterator[tuple[str, str]]:
    """Serve a seeded gateway on 127.0.0.1; return its base URL and a key holding every scope."""
    app = make_app(rate_limit="100000 per minute")
    # Generated subscriber URLs name hosts no DNS here answers: each resolves to a public
    # address, so the checks after resolution run (no sender runs in this app).
    app.extensions["paysieve.resolver"] = lambda host, port: ["93.184.216.34"]
    store = store_of(app)
    apply(
        store,
        txn(
            "ch_1",
            kind="payment",
            status="succeeded",
            amount=1,
            currency="EUR",
            customer="cus_1",
            payment_method="pm_1",
        ),
        pm(
            "pm_1",
            customer="cus_1",
            brand="visa",
            last4="4242",
            exp_month=1,
            exp_year=2030,
            status="active",
        ),
    )
    apply(store, txn("ch_2", payment_method="pm_unseen"), sub("sub_1", current_period_end=T0))
    apply(store, sub("sub_2", customer="cus_1", plan="plan_1", status="active"))
    key = make_key(engine, *SCOPES)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", key
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_document(live: tuple[str, str], mode: GenerationMode) -> None:
    base_url, key = live
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {(op.method.upper(), op.path) for op in operations}
    assert {("GET", EXPORT), ("DELETE", ERASE), ("GET", "/v1/audit-log")} <= documented
    # Generated customer ids almost never name the seeded one: export and erase it first, so
    # a full export and a real erasure are checked against the document too.
    subject = {"provider": "stripe", "customer": "cus_1"}
    answers = []
    for method, path in (("GET", EXPORT), ("DELETE", ERASE), ("GET", EXPORT)):
        case = schema[path][method].Case(path_parameters=subject)
        response = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)
        assert response.status_code == 200
        answers.append(response.json())
    before, erasure, after = answers
    assert before["transactions"] and before["payment_methods"] and before["subscriptions"]
    assert erasure["deleted"] == {"payment_methods": 1, "subscriptions": 1}
    assert after["erasures"] and not after["payment_methods"]

    # Each operation on its own: one strategy over all of them would leave some untried.
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

        check()
