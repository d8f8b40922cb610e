"""Prometheus metrics: what deliveries came to, why they failed, and how long requests took.

Under gunicorn every worker is its own process. ``gunicorn.conf.py`` sets
``PROMETHEUS_MULTIPROC_DIR`` before any worker imports this module, so
prometheus-client keeps each counter in a per-process file and ``/metrics``
(answered by whichever worker gets the scrape) sums them all. Without that
variable (``paysieve serve``, tests) the plain in-process registry is served.

Labels never carry request data: provider and endpoint names come from the
configuration (an unknown route is not labelled at all), outcomes and
reasons from closed vocabularies.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.core.errors import GatewayError, MalformedBody, VerificationError

DELIVERIES = Counter(
    "paysieve_deliveries",
    "Webhook deliveries by provider, endpoint and outcome (stored, duplicate, ignored "
    "or the error code answered).",
    ["provider", "endpoint", "outcome"],
)
VERIFICATION_FAILURES = Counter(
    "paysieve_verification_failures",
    "Deliveries refused by verification or parsing, by error code and reason.",
    ["provider", "endpoint", "code", "reason"],
)
FIELDS_DROPPED = Counter(
    "paysieve_fields_dropped",
    "Fields dropped from stored deliveries (outside the allowlist, bad shape or guard hit).",
    ["provider", "endpoint"],
)
GUARD_HITS = Counter(
    "paysieve_guard_hits",
    "Values the guard dropped as card data, by reason (pan, track, cvv_key).",
    ["provider", "reason"],
)
SERVED_VALUES_WITHHELD = Counter(
    "paysieve_served_values_withheld",
    "Values the read API withheld from an answer as card data, by route template and reason.",
    ["route", "reason"],
)
STORAGE_ERRORS = Counter(
    "paysieve_storage_errors",
    "Storage operations that failed and were answered 503, by error class.",
    ["error"],
)
OUTBOUND_ATTEMPTS = Counter(
    "paysieve_outbound_attempts",
    "Outbound webhook attempts by outcome (delivered, failed, dead, refused).",
    ["outcome"],
)
OUTBOUND_SECONDS = Histogram(
    "paysieve_outbound_attempt_duration_seconds",
    "Outbound webhook attempt latency, from connect to the status line read.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0),
)
OUTBOUND_LAG = Histogram(
    "paysieve_outbound_delivery_lag_seconds",
    "From a change's commit to its delivery's 2xx answer.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0),
)
OUTBOUND_QUEUE = Gauge(
    "paysieve_outbound_queue_depth",
    "Outbound deliveries not delivered, by state (pending, failed, dead), as last counted.",
    ["state"],
    multiprocess_mode="max",
)
OUTBOUND_DISABLED = Counter(
    "paysieve_outbound_subscribers_disabled",
    "Subscribers the sender disabled, by reason (gone: answered 410; failing: for 5 days).",
    ["reason"],
)
STORAGE_BATCH = Histogram(
    "paysieve_storage_batch_deliveries",
    "Deliveries written per write transaction: more than one when deliveries arriving"
    " together share a commit (gateway.storage.groupcommit).",
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
)
REQUEST_SECONDS = Histogram(
    "paysieve_request_duration_seconds",
    "Request latency by route pattern, method and status.",
    ["route", "method", "status"],
    # Razorpay gives up after 5 s: the buckets resolve the range that matters.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0),
)

# First matching fragment of a verification message -> reason label. Messages are
# constants in the adapters; the label set stays closed whatever they become.
_VERIFICATION_REASONS: tuple[tuple[str, str], ...] = (
    ("certificate", "certificate"),
    ("configured", "not_configured"),
    ("missing", "missing_header"),
    ("malformed", "malformed_header"),
    ("unsupported", "malformed_header"),
    ("too old", "stale_timestamp"),
    ("in the future", "future_timestamp"),
    ("utf-8", "not_utf8"),
    ("does not match", "bad_signature"),
    ("does not verify", "bad_signature"),
    ("rejected", "bad_signature"),
)
_MALFORMED_REASONS: tuple[tuple[str, str], ...] = (
    ("nesting", "too_deep"),
    ("not valid json", "invalid_json"),
    ("json object", "not_an_object"),
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

bp = Blueprint("metrics", __name__)


def reason_slug(exc: GatewayError) -> str:
    """Return a short, closed-vocabulary reason for a refused delivery."""
    message = exc.message.lower()
    if isinstance(exc, VerificationError):
        table, default = _VERIFICATION_REASONS, "other"
    elif isinstance(exc, MalformedBody):
        table, default = _MALFORMED_REASONS, "invalid_envelope"
    else:
        return exc.code
    return next((slug for fragment, slug in table if fragment in message), default)


@dataclass(slots=True)
class Delivery:
    """What the route learnt about one delivery, filled in as it goes."""

    outcome: str = "error"
    dropped: int = 0


@contextmanager
def observe_delivery(provider: str, endpoint: str) -> Iterator[Delivery]:
    """Count one routed delivery by its outcome, or by the error it was refused with."""
    seen = Delivery()
    try:
        yield seen
    except GatewayError as exc:
        DELIVERIES.labels(provider, endpoint, exc.code).inc()
        if isinstance(exc, VerificationError | MalformedBody):
            VERIFICATION_FAILURES.labels(provider, endpoint, exc.code, reason_slug(exc)).inc()
        raise
    except Exception:
        # Answered 500 by gateway.web.http; counted so an alert can see it.
        DELIVERIES.labels(provider, endpoint, "internal_error").inc()
        raise
    DELIVERIES.labels(provider, endpoint, seen.outcome).inc()
    if seen.dropped:
        FIELDS_DROPPED.labels(provider, endpoint).inc(seen.dropped)


def storage_error(exc: BaseException) -> None:
    """Count one storage failure by its exception class (never its message)."""
    STORAGE_ERRORS.labels(type(exc).__name__).inc()


def guard_hit(provider: str, reason: str) -> None:
    """Count one value the guard dropped."""
    GUARD_HITS.labels(provider, reason).inc()


def served_value_withheld(route: str, reason: str) -> None:
    """Count one value withheld from an answer (route template, never a path)."""
    SERVED_VALUES_WITHHELD.labels(route, reason).inc()


def registry(multiproc_dir: str) -> CollectorRegistry:
    """Return the registry to serve: every worker's files, or this process's own."""
    if not multiproc_dir:
        return REGISTRY
    collected = CollectorRegistry()
    MultiProcessCollector(collected, path=multiproc_dir)  # type: ignore[no-untyped-call]
    return collected


@bp.get("/metrics")
def metrics() -> Response:
    """Serve every metric in the Prometheus text format."""
    from flask import current_app

    settings = current_app.extensions["paysieve.settings"]
    body = generate_latest(registry(settings.metrics_multiproc_dir))
    return Response(body, status=200, content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Serve /metrics and time every request by its route pattern."""
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer() -> None:
        g.paysieve_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("paysieve_started")
        if started is not None:
            # The pattern, not the path: a path can carry ids, and unknown paths are unbounded.
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            observe_request(route, request.method, response.status_code, started)
        return response


def observe_request(route: str, method: str, status: int, started: float) -> None:
    """Time one answered request by its route pattern, method and status, from started."""
    label = method if method in _METHODS else "other"
    REQUEST_SECONDS.labels(route, label, str(status)).observe(time.perf_counter() - started)


__all__ = [
    "DELIVERIES",
    "FIELDS_DROPPED",
    "GUARD_HITS",
    "REQUEST_SECONDS",
    "SERVED_VALUES_WITHHELD",
    "STORAGE_BATCH",
    "STORAGE_ERRORS",
    "VERIFICATION_FAILURES",
    "Delivery",
    "guard_hit",
    "init_app",
    "observe_delivery",
    "observe_request",
    "reason_slug",
    "registry",
    "served_value_withheld",
    "storage_error",
]
