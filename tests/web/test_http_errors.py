"""Every answer is JSON in the one error shape, and every request log line names a route template.

Some requests never reach Flask's handlers: a malformed request line, headers too large,
a URI too long are answered by the HTTP server itself. Those are sent here as raw bytes
to the development server (what `paysieve serve` runs) and to gunicorn (production).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from werkzeug.serving import make_server

from gateway.cli import devconfig
from gateway.web import http
from tests.support.api import bearer, make_key

SECRET = "sekrit7q"
ROOT = Path(__file__).resolve().parents[2]


def assert_error_shape(status: int, content_type: str, body: bytes) -> None:
    """Assert that an answer is a JSON error in the DESIGN.md shape, without the secret."""
    assert content_type.startswith("application/json"), (status, content_type)
    document = json.loads(body)
    assert set(document) == {"error"}
    assert set(document["error"]) == {"code", "message"}
    assert SECRET.encode() not in body


# ------------------------------------------------------------------ through Flask


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        # Werkzeug would redirect these (merge_slashes) with an HTML body and a Location.
        ("GET", f"/v1//transactions?x={SECRET}", 404),
        ("GET", "//healthz", 404),
        ("GET", f"/v1/transactions//stripe//{SECRET}", 404),
        ("GET", f"/{SECRET}", 404),
        ("PUT", "/healthz", 405),
        ("DELETE", "/v1/transactions", 405),
        # Flask's automatic OPTIONS answer is an empty text/html page.
        ("OPTIONS", "/healthz", 405),
        ("OPTIONS", "/v1/transactions", 405),
        ("OPTIONS", "/webhooks/stripe", 405),
    ],
)
def test_routing_answers_are_json(client: FlaskClient, method: str, path: str, status: int) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    assert "Location" not in response.headers
    assert_error_shape(response.status_code, response.content_type, response.get_data())
    if status == 405:
        assert response.headers["Allow"]


@pytest.mark.parametrize(
    ("path", "status"), [("/healthz/", 200), ("/v1/transactions/", 401), ("/v1/events/", 401)]
)
def test_a_trailing_slash_is_not_redirected(client: FlaskClient, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert "Location" not in response.headers
    assert response.content_type.startswith("application/json")


def test_oversized_body_is_json_413(client: FlaskClient) -> None:
    response = client.post(
        "/webhooks/stripe",
        data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        content_type="application/json",
    )
    assert response.status_code == 413
    assert_error_shape(413, response.content_type, response.get_data())


# ------------------------------------------------------------------ the development server


@pytest.fixture
def dev_server(app: Flask) -> Iterator[int]:
    """Serve the app on a loopback port with the handler `paysieve serve` uses."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=http.DevRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def send_raw(port: int, data: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send raw bytes; return the status line, the headers and the body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_line, headers, body


MALFORMED = [
    pytest.param(f"GARBAGE-{SECRET}\r\n\r\n".encode(), 400, id="bad-request-line"),
    pytest.param(f"GET /{SECRET} HTTP/9\r\n\r\n".encode(), 400, id="bad-version"),
    pytest.param(f"GET /{SECRET} HTTP/2.0\r\n\r\n".encode(), 400, id="unsupported-version"),
    pytest.param(
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: {SECRET}{'a' * 70000}\r\n\r\n".encode(),
        431,
        id="header-line-too-long",
    ),
    pytest.param(
        b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(120)) + b"\r\n",
        431,
        id="too-many-headers",
    ),
    pytest.param(f"GET /{SECRET}{'a' * 70000} HTTP/1.1\r\n\r\n".encode(), 414, id="uri-too-long"),
    pytest.param(
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: abc\r\nConnection: close\r\n\r\n{}",
        400,
        id="bad-content-length",
    ),
    pytest.param(
        f"GET /v1//events?api_key={SECRET} HTTP/1.1\r\nHost: x\r\n"
        "Connection: close\r\n\r\n".encode(),
        404,
        id="double-slash",
    ),
    pytest.param(
        b"OPTIONS /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, id="options"
    ),
]


@pytest.mark.parametrize(("raw", "status"), MALFORMED)
def test_dev_server_answers_malformed_requests_with_json(
    dev_server: int, raw: bytes, status: int
) -> None:
    status_line, headers, body = send_raw(dev_server, raw)
    assert status_line.split(b" ", 2)[1] == str(status).encode(), status_line
    # The reason phrase is the standard one: Python's own repeats the request line.
    assert SECRET.encode() not in status_line
    assert_error_shape(status, headers.get("content-type", ""), body)
    assert headers["x-content-type-options"] == "nosniff"


def test_dev_server_logs_route_templates_only(
    dev_server: int, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="werkzeug")
    base = f"http://127.0.0.1:{dev_server}"
    key = bearer(make_key(engine, "records:read"))
    requests.get(f"{base}/v1/customers/stripe/cus_{SECRET}/export?api_key={SECRET}", timeout=5)
    requests.get(f"{base}/v1/transactions/stripe/ch_{SECRET}", headers=key, timeout=5)
    requests.get(f"{base}/v1/transactions?customer=cus_{SECRET}", headers=key, timeout=5)
    requests.get(f"{base}/nothing/{SECRET}?token={SECRET}", timeout=5)
    send_raw(dev_server, f"GARBAGE-{SECRET}\r\n\r\n".encode())
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    text = "\n".join(lines)
    assert SECRET not in text
    assert '"GET /v1/customers/<provider>/<customer>/export" 401' in text
    assert '"GET /v1/transactions/<provider>/<ident>" 404' in text
    assert '"GET /v1/transactions" 200' in text
    assert '"GET <unmatched>" 404' in text
    assert '<unmatched>" 400' in text


# ------------------------------------------------------------------ gunicorn


def free_port() -> int:
    """Return a loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def wait_until_up(port: int, process: subprocess.Popen[Any], timeout: float = 20) -> None:
    """Wait until /healthz answers on a port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


@pytest.fixture
def configured_env(tmp_path: Path, database_url: str, engine: Engine) -> dict[str, str]:
    """Return an environment whose configuration points at the test database."""
    config = tmp_path / "paysieve.toml"
    devconfig.write_config(config, database_url=database_url)
    return {**os.environ, "PAYSIEVE_CONFIG": str(config)}


@pytest.fixture
def run_server(
    configured_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[list[str], dict[str, str]], tuple[int, Callable[[], str]]]]:
    """Start a server command on a free port; return its port and a reader of its output."""
    started: list[subprocess.Popen[Any]] = []

    def start(command: list[str], extra: dict[str, str]) -> tuple[int, Callable[[], str]]:
        port = free_port()
        output = tmp_path / f"server-{port}.log"
        handle = output.open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own commands
            [arg.replace("{port}", str(port)) for arg in command],
            env={**configured_env, "PORT": str(port), **extra},
            cwd=tmp_path,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        handle.close()
        started.append(process)
        wait_until_up(port, process)

        def read() -> str:
            process.terminate()
            process.wait(15)
            return output.read_text(errors="replace")

        return port, read

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(5)


def probe_logged_values(port: int, key: dict[str, str]) -> None:
    """Send requests carrying the secret in paths, query strings and ids."""
    base = f"http://127.0.0.1:{port}"
    requests.get(f"{base}/v1/customers/stripe/cus_{SECRET}/export?api_key={SECRET}", timeout=5)
    requests.delete(f"{base}/v1/customers/stripe/cus_{SECRET}", headers=key, timeout=5)
    requests.get(f"{base}/v1/payment-methods/stripe/pm_{SECRET}", headers=key, timeout=5)
    requests.get(f"{base}/v1/transactions?customer=cus_{SECRET}", headers=key, timeout=5)
    requests.get(f"{base}/nothing/{SECRET}?token={SECRET}", timeout=5)


@pytest.mark.slow
def test_gunicorn_access_log_carries_route_templates_only(
    run_server: Callable[..., tuple[int, Callable[[], str]]], engine: Engine
) -> None:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    port, read = run_server(
        [gunicorn, "-c", str(ROOT / "gunicorn.conf.py"), "gateway:create_app()"],
        {"GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "2"},
    )
    probe_logged_values(port, bearer(make_key(engine, "records:read")))
    log = read()
    assert SECRET not in log
    assert '"GET /v1/customers/<provider>/<customer>/export" 401' in log
    assert '"DELETE /v1/customers/<provider>/<customer>" 403' in log
    assert '"GET /v1/payment-methods/<provider>/<ident>" 404' in log
    assert '"GET /v1/transactions" 200' in log
    assert '"GET <unmatched>" 404' in log


@pytest.mark.slow
def test_paysieve_serve_logs_route_templates_only(
    run_server: Callable[..., tuple[int, Callable[[], str]]], engine: Engine
) -> None:
    paysieve = str(Path(sys.executable).parent / "paysieve")
    port, read = run_server([paysieve, "serve", "--port", "{port}"], {})
    probe_logged_values(port, bearer(make_key(engine, "records:read")))
    send_raw(port, f"GARBAGE-{SECRET}\r\n\r\n".encode())
    output = read()
    assert SECRET not in output
    messages = []
    for line in output.splitlines():
        if line.startswith("{"):
            messages.append(json.loads(line)["message"])
    text = "\n".join(messages)
    assert '"GET /v1/customers/<provider>/<customer>/export" 401' in text
    assert '"DELETE /v1/customers/<provider>/<customer>" 403' in text
    assert '"GET /v1/transactions" 200' in text
    assert '"GET <unmatched>" 404' in text


# Requests gunicorn refuses itself, before the app sees them, each carrying a card number
# or a secret.
CARD = "4111111111111111"
API_KEY = "psk_0123456789ab_" + "k" * 43
WEBHOOK_SECRET = "whsec_" + "s" * 32
GUNICORN_REFUSES = [
    pytest.param(f"{CARD} {CARD}\r\n\r\n".encode(), 400, id="bad-request-line"),
    pytest.param(f"GET /healthz HTTP/{CARD}\r\n\r\n".encode(), 400, id="bad-version"),
    pytest.param(
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-{CARD}\r\n\r\n".encode(), 400, id="header-no-colon"
    ),
    pytest.param(
        f"GET /{CARD}{'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 414, id="uri-too-long"
    ),
    pytest.param(
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization Bearer {API_KEY}\r\n\r\n".encode(),
        400,
        id="key-in-a-header-line",
    ),
    pytest.param(
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
        + WEBHOOK_SECRET.encode()
        + b", chunked\r\n\r\n0\r\n\r\n",
        400,
        id="unknown-transfer-coding",
    ),
]


@pytest.mark.slow
def test_gunicorn_refusals_are_json_and_its_logs_hold_no_card_number(
    run_server: Callable[..., tuple[int, Callable[[], str]]],
) -> None:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    port, read = run_server(
        [gunicorn, "-c", str(ROOT / "gunicorn.conf.py"), "gateway:create_app()"],
        {
            "GUNICORN_WORKERS": "1",
            "GUNICORN_THREADS": "2",
            # DEBUG: gunicorn's most talkative lines, its configuration dump among them.
            "GUNICORN_CMD_ARGS": (
                f"--log-level debug -e CANARY_SECRET={WEBHOOK_SECRET} -e CANARY_PLAIN={SECRET}"
            ),
        },
    )
    requests.get(f"http://127.0.0.1:{port}/v1/customers/stripe/cus_{SECRET}/export", timeout=5)
    for param in GUNICORN_REFUSES:
        raw, status = param.values
        status_line, headers, body = send_raw(port, raw)  # type: ignore[arg-type]
        assert status_line.split(b" ", 2)[1] == str(status).encode(), param.id
        assert CARD.encode() not in status_line + body, param.id
        assert_error_shape(status, headers.get("content-type", ""), body)  # type: ignore[arg-type]
    # A method that is a card number is not logged as sent.
    send_raw(port, f"P{CARD} /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    # A malformed chunk, met while the app reads the body: a 400, not a 500.
    status_line, headers, body = send_raw(
        port,
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    )
    assert status_line.split(b" ", 2)[1] == b"400", status_line
    assert_error_shape(400, headers.get("content-type", ""), body)
    log = read()
    for value in (CARD, API_KEY, WEBHOOK_SECRET, SECRET):
        assert value not in log
    assert "internal_error" not in log and "unhandled" not in log
