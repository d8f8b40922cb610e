"""Slow clients: gunicorn alone is blocked by them; behind deploy/nginx/paysieve.conf it is not."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import requests
from sqlalchemy import Engine, select

from gateway.storage.tables import events
from tests.support.processes import Gunicorn, Nginx, figures, running, signed_headers
from tests.support.webhooks import sample

pytestmark = pytest.mark.slow

# 3 workers x 4 threads (the shipped gthread default): 12 requests in progress at most.
WORKERS = 3
BODY_BYTES = 1024
# Rendered short here; the shipped file says 10s.
BODY_TIMEOUT = 4
HEADER_TIMEOUT = 4
PROBE_TIMEOUT = 2.0
SHIPPED_MAX_BODY = 1_048_576


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    """Return nginx's path, or skip (outside CI only) when it is not installed."""
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()),
        None,
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is missing in CI (.ci/run installs it)")
        pytest.skip("nginx is not installed (apt-get install nginx); CI runs this test")
    return found


@dataclass
class Stack:
    """gunicorn with the shipped configuration, and nginx with the shipped file in front."""

    gunicorn: Gunicorn
    nginx: Nginx

    def gunicorn_saw(self, since: int) -> list[str]:
        """Return gunicorn's access-log lines for webhook posts written after offset since."""
        assert self.gunicorn.log is not None
        text = self.gunicorn.log.read_bytes()[since:].decode(errors="replace")
        return [line for line in text.splitlines() if '"POST /webhooks/' in line]

    def gunicorn_log_size(self) -> int:
        """Return how much gunicorn has logged so far."""
        assert self.gunicorn.log is not None
        return self.gunicorn.log.stat().st_size


@pytest.fixture
def stack(nginx_binary: str, database_url: str, engine: Engine, tmp_path: Path) -> Iterator[Stack]:
    """Start gunicorn on loopback and nginx in front of it; stop both whatever happens."""
    gateway = Gunicorn(
        database_url,
        workers=WORKERS,
        extra_env={
            "PAYSIEVE_TRUSTED_PROXY_HOPS": "1",
            # Only nginx's own address may deliver: a forged X-Forwarded-For must not count.
            "PAYSIEVE_STRIPE_SOURCE_NETWORKS": "127.0.0.0/8",
        },
    )
    proxy = Nginx(
        tmp_path / "nginx",
        upstream=f"127.0.0.1:{gateway.port}",
        overrides={
            "client_body_timeout 10s;": f"client_body_timeout {BODY_TIMEOUT}s;",
            "client_header_timeout 10s;": f"client_header_timeout {HEADER_TIMEOUT}s;",
        },
    )
    with running(gateway, workdir=tmp_path):
        try:
            yield Stack(gateway, proxy.start())
        finally:
            proxy.stop()


def slow_body() -> tuple[bytes, bytes]:
    """Return the head of a signed 1 KB Stripe delivery and its body."""
    event = sample("stripe", "charge.succeeded")
    event["id"] = "evt_slowclient"
    raw = orjson.dumps(event)[: BODY_BYTES - 2] + b"}"
    body = raw.ljust(BODY_BYTES, b" ")
    lines = [
        "POST /webhooks/stripe HTTP/1.1",
        "Host: paysieve.test",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in signed_headers(body).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), body


def open_slow(port: int, count: int) -> list[socket.socket]:
    """Open count connections that have sent their headers and none of their body."""
    head, _ = slow_body()
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            opened.append(sock)
            sock.sendall(head)
    except BaseException:
        close_all(opened)
        raise
    return opened


def close_all(socks: list[socket.socket]) -> None:
    """Close every socket, ignoring ones already gone."""
    for sock in socks:
        try:
            sock.close()
        except OSError:
            pass


def trickle_and_probe(
    socks: list[socket.socket], url: str, *, seconds: int, stop_when_blocked: bool = False
) -> list[float | None]:
    """Send one body byte a second on every socket and GET /healthz each second.

    Returns each probe's latency in seconds, None for a probe that did not get
    a 200 within PROBE_TIMEOUT.
    """
    _, body = slow_body()
    latencies: list[float | None] = []
    for tick in range(seconds):
        started = time.monotonic()
        for sock in socks:
            try:
                sock.send(body[tick : tick + 1])
            except OSError:
                pass  # cut by the server: the answer is read later
        try:
            ok = requests.get(url + "/healthz", timeout=PROBE_TIMEOUT).status_code == 200
        except requests.RequestException:
            ok = False
        latencies.append(time.monotonic() - started if ok else None)
        if stop_when_blocked and not ok:
            break
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    return latencies


@dataclass(frozen=True)
class Answer:
    """What one raw connection received before it was closed."""

    status: int | None
    content_type: str
    body: bytes
    seconds: float


def read_answer(sock: socket.socket, *, deadline: float, since: float) -> Answer:
    """Read until the server closes the connection (or deadline); parse the response."""
    received = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except OSError:
            chunk = b""
        if not chunk:
            break
        received += chunk
    seconds = time.monotonic() - since
    if not received:
        return Answer(None, "", b"", seconds)
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    return Answer(int(status_line.split()[1]), headers.get("content-type", ""), body, seconds)


def assert_json_error(status: int | None, content_type: str, body: bytes, code: str) -> None:
    """Assert an answer is paysieve's JSON error shape with this code."""
    assert content_type.split(";")[0] == "application/json", content_type
    document = orjson.loads(body)
    assert set(document) == {"error"}
    assert document["error"]["code"] == code, document
    assert isinstance(document["error"]["message"], str) and document["error"]["message"]


def test_slow_bodies_block_gunicorn_but_not_nginx(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Directly at gunicorn: more trickling bodies than it has threads, and /healthz stops.
    # The kernel hands connections to whichever worker accepts first, so one worker may
    # take most of a batch while another stays free: add batches until every one is held.
    direct: list[socket.socket] = []
    blocked: list[float | None] = []
    try:
        for _ in range(6):
            direct += open_slow(stack.gunicorn.port, 50)
            blocked += trickle_and_probe(
                direct, stack.gunicorn.url, seconds=3, stop_when_blocked=True
            )
            if None in blocked:
                break
    finally:
        close_all(direct)
    assert None in blocked, f"gunicorn kept answering /healthz under slow bodies: {blocked}"
    # Closed connections free the threads (their reads end, 400): gunicorn recovers.
    stack.gunicorn.wait_until(
        lambda: len(stack.gunicorn_saw(0)) == len(direct), what=f"{len(direct)} x 400"
    )
    assert stack.gunicorn.get("/healthz").status_code == 200

    results: dict[int, tuple[float, float]] = {}
    for count, seconds in ((12, 5), (50, 10)):
        logged = stack.gunicorn_log_size()
        socks = open_slow(stack.nginx.port, count)
        try:
            latencies = trickle_and_probe(socks, stack.nginx.url, seconds=seconds)
            # The bodies now stall: nginx cuts each once client_body_timeout passes.
            stalled = time.monotonic()
            deadline = stalled + BODY_TIMEOUT + 4
            answers = [read_answer(sock, deadline=deadline, since=stalled) for sock in socks]
        finally:
            close_all(socks)
        assert None not in latencies, f"/healthz through nginx failed under {count}: {latencies}"
        assert max(latencies) < PROBE_TIMEOUT  # type: ignore[type-var]
        # nginx closes a timed-out connection without an answer (so never an HTML page)
        # and logs the 408.
        assert [answer.status for answer in answers] == [None] * count
        for answer in answers:
            assert BODY_TIMEOUT - 1 < answer.seconds < BODY_TIMEOUT + 3
        # Not one of them reached gunicorn: nginx never forwards a partial body.
        assert stack.gunicorn_saw(logged) == []
        cut = [e for e in stack.nginx.access_entries() if e["status"] == 408]
        assert len(cut) == count + sum(results)
        assert {(e["route"], e["bytes"], e["upstream_status"]) for e in cut} == {
            ("/webhooks/<provider>", 0, "")
        }
        # Each was held for the trickle plus one client_body_timeout: a silence, not a total.
        assert min(float(e["request_time"]) for e in cut[-count:]) > seconds + BODY_TIMEOUT - 1
        results[count] = (max(latencies), max(answer.seconds for answer in answers))

    figures(
        capsys,
        "slow-clients",
        direct_probes=len(blocked),
        direct_blocked=blocked.count(None),
        **{f"nginx{n}_worst_healthz_s": f"{worst:.3f}" for n, (worst, _) in results.items()},
        **{f"nginx{n}_cut_after_s": f"{cut:.1f}" for n, (_, cut) in results.items()},
    )


def test_slow_headers_are_cut_without_reaching_gunicorn(stack: Stack) -> None:
    logged = stack.gunicorn_log_size()
    sock = socket.create_connection(("127.0.0.1", stack.nginx.port), timeout=5)
    try:
        sock.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: paysieve.test\r\nX-Pad: ")
        started = time.monotonic()
        # Header bytes keep coming, but the header's whole time is bounded.
        closed_after: float | None = None
        for _ in range(HEADER_TIMEOUT + 4):
            try:
                sock.send(b"a")
            except OSError:
                closed_after = time.monotonic() - started
                break
            time.sleep(1)
        answer = read_answer(sock, deadline=time.monotonic() + 3, since=started)
    finally:
        sock.close()
    assert closed_after is not None, "nginx kept a trickling header open"
    # The header's time is a total, not a silence: cut though bytes kept coming.
    assert HEADER_TIMEOUT - 1 < answer.seconds < HEADER_TIMEOUT + 3
    assert answer.status is None
    assert stack.gunicorn_saw(logged) == []
    entry = stack.nginx.access_entries()[-1]
    assert (entry["status"], entry["bytes"], entry["upstream_status"]) == (408, 0, "")


def test_nginx_answers_its_own_errors_as_json(stack: Stack) -> None:
    url = stack.nginx.url
    logged = stack.gunicorn_log_size()

    # Over PAYSIEVE_MAX_BODY_BYTES: refused from the Content-Length, nothing read or forwarded.
    with socket.create_connection(("127.0.0.1", stack.nginx.port), timeout=5) as sock:
        sock.sendall(
            b"POST /webhooks/stripe HTTP/1.1\r\nHost: paysieve.test\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {SHIPPED_MAX_BODY + 1}\r\n\r\n".encode()
        )
        answer = read_answer(sock, deadline=time.monotonic() + 5, since=time.monotonic())
    assert answer.status == 413
    assert_json_error(answer.status, answer.content_type, answer.body, "payload_too_large")

    with socket.create_connection(("127.0.0.1", stack.nginx.port), timeout=5) as sock:
        sock.sendall(b"NOT AN HTTP REQUEST\r\n\r\n")
        answer = read_answer(sock, deadline=time.monotonic() + 5, since=time.monotonic())
    assert answer.status == 400
    assert_json_error(answer.status, answer.content_type, answer.body, "bad_request")

    too_long = requests.get(url + "/v1/transactions?q=" + "x" * 9000, timeout=5)
    assert too_long.status_code == 414
    assert_json_error(
        too_long.status_code, too_long.headers["Content-Type"], too_long.content, "uri_too_long"
    )
    big_header = requests.get(url + "/healthz", headers={"X-Pad": "x" * 9000}, timeout=5)
    assert big_header.status_code == 431
    assert_json_error(
        big_header.status_code,
        big_header.headers["Content-Type"],
        big_header.content,
        "headers_too_large",
    )
    unknown = requests.get(url + "/wp-login.php", timeout=5)
    assert unknown.status_code == 404
    assert_json_error(
        unknown.status_code, unknown.headers["Content-Type"], unknown.content, "not_found"
    )
    assert stack.gunicorn_saw(logged) == []

    # gunicorn gone: nginx's 502 is JSON too, with Retry-After as paysieve's own 503.
    stack.gunicorn.stop()
    gone = requests.get(url + "/v1/customers/stripe/cus_SecretCustomer1", timeout=10)
    assert gone.status_code == 502
    assert gone.headers["Retry-After"] == "5"
    assert_json_error(gone.status_code, gone.headers["Content-Type"], gone.content, "bad_gateway")


def test_deliveries_pass_and_logs_hold_no_request_values(stack: Stack, engine: Engine) -> None:
    url = stack.nginx.url
    event = sample("stripe", "charge.succeeded")
    event["id"] = "evt_throughnginx"
    body = orjson.dumps(event)
    # A client-written X-Forwarded-For is ignored: nginx appends the address it saw.
    headers = {**signed_headers(body), "X-Forwarded-For": "203.0.113.9"}
    delivered = requests.post(url + "/webhooks/stripe", data=body, headers=headers, timeout=10)
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["status"] == "stored"
    with engine.connect() as conn:
        assert conn.execute(select(events.c.id)).scalars().all() == ["evt_throughnginx"]

    # Values in paths and query strings (the read API's customer ids and tokens).
    secrets = ("cus_SecretCustomer1", "pm_SecretToken1", "LeakedApiKey1")
    requests.get(url + f"/v1/customers/stripe/{secrets[0]}/export?api_key={secrets[2]}", timeout=10)
    requests.get(url + f"/v1/payment-methods/stripe/{secrets[1]}", timeout=10)
    stack.gunicorn.stop()  # and an upstream failure, which nginx would log with its request line
    requests.get(url + f"/v1/payment-methods/stripe/{secrets[1]}?api_key={secrets[2]}", timeout=10)
    stack.nginx.stop()

    logs = stack.nginx.access_log.read_text() + stack.nginx.error_log.read_text()
    for secret in secrets:
        assert secret not in logs
    assert "/v1/payment-methods/stripe" not in logs and "?" not in logs
    routes = [entry["route"] for entry in stack.nginx.access_entries()]
    assert routes[-4:] == [
        "/webhooks/<provider>",
        "/v1/customers/<provider>/<customer>/export",
        "/v1/payment-methods/<provider>/<ident>",
        "/v1/payment-methods/<provider>/<ident>",
    ]
