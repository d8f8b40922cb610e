"""10,000 hostile requests: only 4xx answers, nothing stored, the process still alive."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests.support.database import all_rows
from tests.support.processes import figures
from tests.support.webhooks import STRIPE_SECRET, sample

pytestmark = pytest.mark.slow

REQUESTS = 10_000
# Requests per hypothesis example: generation overhead shared ten ways keeps the run short.
BATCH = 10
MAX_BODY = 64 * 1024
TYPES = ("charge.succeeded", "payment_intent.succeeded", "customer.subscription.updated")
WEBHOOK = "/webhooks/stripe"


def stripe_header(body: bytes, *, timestamp: int, secret: str = STRIPE_SECRET) -> str:
    """Sign bytes as Stripe does, including bytes that are not UTF-8."""
    payload = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# Real events, built once: building one per request would cost more than the request.
EVENTS = [sample("stripe", kind) for kind in TYPES for _ in range(3)]
BODIES = [orjson.dumps(event) for event in EVENTS]


def now() -> int:
    """Return the current Unix time."""
    return int(time.time())


# orjson writes 64-bit integers; bigger ones are spelt out in huge_numbers below.
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

# Values no envelope field accepts: wrong types, huge numbers, ids with forbidden characters.
hostile_values = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=2**53, max_value=2**63 - 1),
    st.integers(min_value=-(2**63), max_value=-1),
    st.lists(int64, max_size=3),
    st.dictionaries(st.text(max_size=5), int64, max_size=3),
    st.just(""),
    st.text(max_size=20).map(lambda text: text + " {/}"),
    st.text(min_size=129, max_size=300).filter(lambda text: not text.isascii()),
)


@st.composite
def envelope_broken(draw: st.DrawFn) -> bytes:
    """Return a real event whose id, type or created has a value it can never take."""
    event = dict(draw(st.sampled_from(EVENTS)))
    event[draw(st.sampled_from(("id", "type", "created")))] = draw(hostile_values)
    return orjson.dumps(event)


@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    """Return a real event cut short."""
    body = draw(st.sampled_from(BODIES))
    return body[: draw(st.integers(min_value=0, max_value=len(body) - 1))]


@st.composite
def not_utf8(draw: st.DrawFn) -> bytes:
    """Return a real event with bytes that are not UTF-8 spliced in."""
    body = draw(st.sampled_from(BODIES))
    at = draw(st.integers(min_value=0, max_value=len(body)))
    bad = draw(st.sampled_from((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80")))
    return body[:at] + bad + body[at:]


@st.composite
def deeply_nested(draw: st.DrawFn) -> bytes:
    """Return an object nested past the parser's depth bound."""
    depth = draw(st.integers(min_value=33, max_value=3_000))
    opener, closer = draw(st.sampled_from(((b"[", b"]"), (b'{"a":', b"}"))))
    return (
        b'{"id":"evt_1","type":"charge.succeeded","data":'
        + opener * depth
        + b"1"
        + closer * depth
        + b"}"
    )


huge_numbers = st.sampled_from(
    (
        b'{"id":"evt_1","type":"charge.succeeded","created":1' + b"0" * 400 + b"}",
        b'{"id":"evt_1","type":"charge.succeeded","created":1e999}',
        b'{"id":"evt_1","type":"charge.succeeded","created":-1e999}',
        b'{"id":"evt_1","type":"charge.succeeded","created":18446744073709551616}',
    )
)
not_an_object = st.one_of(int64, st.text(), st.lists(int64), st.none()).map(orjson.dumps)
# Bodies that fail after verification: each is signed correctly.
broken_bodies = st.one_of(
    envelope_broken(), truncated(), not_utf8(), deeply_nested(), huge_numbers, not_an_object
)
# Anything at all, real events included: each goes with a bad signature.
any_bodies = st.one_of(
    broken_bodies,
    st.sampled_from(BODIES),
    st.binary(max_size=2048),
)


@st.composite
def bad_signature(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    """Return Stripe-Signature headers that must not verify for this body."""
    stamp = now()
    choice = draw(st.integers(min_value=0, max_value=7))
    if choice == 0:
        return {}
    if choice == 1:
        return {"Stripe-Signature": stripe_header(body, timestamp=stamp, secret="whsec_wrong")}
    if choice == 2:
        return {"Stripe-Signature": stripe_header(body, timestamp=stamp - 10_000)}
    if choice == 3:
        return {"Stripe-Signature": stripe_header(body, timestamp=stamp + 10_000)}
    if choice == 4:
        digest = draw(st.text("0123456789abcdef", min_size=0, max_size=80))
        return {"Stripe-Signature": f"t={stamp},v1={digest}"}
    if choice == 5:
        # Signed over other bytes: a body altered in transit.
        return {"Stripe-Signature": stripe_header(body + b" ", timestamp=stamp)}
    if choice == 6:
        big = draw(st.integers(min_value=10**20, max_value=10**40))
        return {"Stripe-Signature": f"t={big},v1={'0' * 64}"}
    alphabet = st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f")
    return {"Stripe-Signature": draw(st.text(alphabet, max_size=200))}


@st.composite
def hostile_requests(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    """Return (path, body, headers) for one request that must be refused."""
    kind = draw(st.sampled_from(("signed_broken", "bad_signature", "oversized", "off_contract")))
    headers = {"Content-Type": "application/json"}
    if kind == "signed_broken":
        body = draw(broken_bodies)
        headers["Stripe-Signature"] = stripe_header(body, timestamp=now())
        return WEBHOOK, body, headers
    if kind == "bad_signature":
        body = draw(any_bodies)
        headers.update(draw(bad_signature(body)))
        return WEBHOOK, body, headers
    if kind == "oversized":
        body = b'{"id":"evt_1","pad":"' + b"x" * draw(st.integers(MAX_BODY, 3 * MAX_BODY)) + b'"}'
        headers["Stripe-Signature"] = stripe_header(body, timestamp=now())
        return WEBHOOK, body, headers
    body = BODIES[0]
    headers["Stripe-Signature"] = stripe_header(body, timestamp=now())
    path = draw(st.sampled_from((WEBHOOK, "/webhooks/nope", "/webhooks/stripe/nope")))
    if path == WEBHOOK:
        # Signed and well formed, but not declared as JSON.
        headers["Content-Type"] = draw(
            st.sampled_from(("text/plain", "application/x-www-form-urlencoded", "", "json"))
        )
    extra = draw(
        st.dictionaries(
            st.sampled_from(("X-A", "X-Forwarded-For", "Accept")),
            st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=50),
            max_size=3,
        )
    )
    headers.update(extra)
    return path, body, headers


def test_ten_thousand_hostile_requests_get_only_4xx(
    make_app: Any, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(max_body_bytes=MAX_BODY)
    client: FlaskClient = app.test_client()
    codes: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    started = time.perf_counter()

    @settings(
        max_examples=REQUESTS // BATCH,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(hostile_requests(), min_size=BATCH, max_size=BATCH))
    def post(batch: list[tuple[str, bytes, dict[str, str]]]) -> None:
        for path, body, headers in batch:
            response = client.post(path, data=body, headers=headers)
            codes[response.status_code] += 1
            answer = (response.status_code, response.get_data()[:200])
            assert 400 <= response.status_code < 500, answer
            payload = response.get_json()
            assert set(payload) == {"error"}
            errors[payload["error"]["code"]] += 1

    post()
    seconds = time.perf_counter() - started
    rows = all_rows(engine)
    live = client.get("/healthz")
    figures(
        capsys,
        "fuzz",
        requests=sum(codes.values()),
        codes=dict(sorted(codes.items())),
        errors=dict(errors.most_common()),
        stored=len(rows["events"]),
        seconds=round(seconds, 1),
    )
    assert sum(codes.values()) >= REQUESTS
    assert rows["events"] == [] and rows["transactions"] == []
    assert live.status_code == 200
