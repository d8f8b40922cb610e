"""gunicorn's access log through paysieve's logger: no request value, whatever the format asks."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import pytest
from gunicorn.config import Config

from gateway.web.serving import Logger

CARD = "4111111111111111"


class _Response:
    status = "200 OK"
    status_code = 200
    sent = 40
    response_length = 40
    headers = [("Content-Type", "application/json"), ("X-Echo", f"card {CARD}")]


class _Request:
    method = "POST"
    path = f"/webhooks/stripe/{CARD}"
    query = f"card={CARD}"
    uri = f"/webhooks/stripe/{CARD}?card={CARD}"
    version = (1, 1)
    headers = [
        ("HOST", "gateway.test"),
        ("STRIPE-SIGNATURE", f"t=1,v1={CARD}"),
        ("REFERER", f"https://x.test/{CARD}"),
        ("USER-AGENT", f"agent {CARD}"),
    ]


def access_line(access_format: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Return the line paysieve's gunicorn logger writes for a request full of card numbers."""
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", access_format)
    logger = Logger(cfg)
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    monkeypatch.setattr(logger.access_log, "handlers", [Keep()])
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/webhooks/stripe/{CARD}",
        "QUERY_STRING": f"card={CARD}",
        "RAW_URI": f"/webhooks/stripe/{CARD}",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_STRIPE_SIGNATURE": f"t=1,v1={CARD}",
        "paysieve.route": "/webhooks/<provider>/<endpoint>",
    }
    logger.access(_Response(), _Request(), environ, datetime.timedelta(milliseconds=3))
    assert len(lines) == 1
    return lines[0]


def test_the_shipped_format_shows_the_route_template(monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = '%(h)s "%(m)s %({paysieve.route}e)s" %(s)s %(B)s %(M)sms'
    line = access_line(shipped, monkeypatch)
    assert line == '127.0.0.1 "POST /webhooks/<provider>/<endpoint>" 200 40 3ms'


def test_no_format_can_show_a_request_value(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every atom that could carry one: the request line, path, query, referer, agent,
    # request headers in any case, environ entries and response headers.
    hostile = (
        "%(r)s|%(U)s|%(q)s|%(f)s|%(a)s|%({stripe-signature}i)s|%({Stripe-Signature}I)s|"
        "%({host}i)s|%({PATH_INFO}e)s|%({QUERY_STRING}e)s|%({HTTP_STRIPE_SIGNATURE}e)s|"
        "%({x-echo}o)s|%(m)s"
    )
    line = access_line(hostile, monkeypatch)
    assert CARD not in line
    fields = line.split("|")
    # Dashed: the request line, path, query, referer, agent and every request header.
    assert fields[:8] == ["-"] * 8
    assert fields[-1] == "POST"
