"""Real gunicorn processes, signed Stripe traffic and the figures the reliability tests print."""

from __future__ import annotations

import os
import pwd
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import stripe
from sqlalchemy import Engine, select

from gateway.crypto import generate_key
from gateway.db import events, transactions
from tests.conftest import STRIPE_SECRET, sample

REPO = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
# One pair of keys per test session: every instance sharing a database must share them.
DATA_KEY = generate_key()
INDEX_KEY = generate_key()

# The payment-intent lifecycle each group of events walks through, oldest first.
LIFECYCLE = (
    "payment_intent.requires_action",
    "payment_intent.processing",
    "payment_intent.amount_capturable_updated",
    "payment_intent.succeeded",
)


def free_port() -> int:
    """Return a loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_group(process: subprocess.Popen[bytes] | None, *, grace: float) -> None:
    """SIGTERM a server's process group, SIGKILL it after grace seconds or once it exits.

    The last SIGKILL reaches workers a killed master orphaned, which would otherwise
    outlive the test.
    """
    if process is None or process.poll() is not None:
        return
    pgid = os.getpgid(process.pid)
    os.killpg(pgid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        process.wait(timeout=10)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class Gunicorn:
    """One gunicorn instance serving gateway:create_app() from gunicorn.conf.py."""

    database_url: str
    workers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        """Return the base URL the instance listens on."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, workdir: Path) -> Gunicorn:
        """Start the instance in its own process group and wait until it answers."""
        empty = workdir / "empty.toml"
        empty.write_text("# configured through the environment\n")
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PAYSIEVE_", "PROMETHEUS_", "GUNICORN_", "WEB_CONCURRENCY"))
        }
        env.update(
            PAYSIEVE_CONFIG=str(empty),
            PAYSIEVE_DATABASE_URL=self.database_url,
            PAYSIEVE_STRIPE_WEBHOOK_SECRETS=STRIPE_SECRET,
            PAYSIEVE_DATA_KEYS=DATA_KEY,
            PAYSIEVE_INDEX_KEY=INDEX_KEY,
            PAYSIEVE_LOG_LEVEL="WARNING",
            GUNICORN_HOST="127.0.0.1",
            PORT=str(self.port),
            GUNICORN_WORKERS=str(self.workers),
            PROMETHEUS_MULTIPROC_DIR=str(workdir / f"metrics-{self.port}"),
        )
        env.update(self.extra_env)
        Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(exist_ok=True)
        self.log = workdir / f"gunicorn-{self.port}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(GUNICORN), "-c", str(REPO / "gunicorn.conf.py"), "gateway:create_app()"],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_until(lambda: self.get("/healthz").status_code == 200, what="/healthz")
        return self

    def get(self, path: str) -> requests.Response:
        """GET a path of this instance."""
        return requests.get(self.url + path, timeout=10)

    def wait_until(self, check: Callable[[], bool], *, what: str, seconds: float = 30) -> None:
        """Poll until check() is true, or fail with the instance's log."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited early:\n{self.tail()}")
            try:
                if check():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"gunicorn never satisfied {what}:\n{self.tail()}")

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's worker processes."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def tail(self, lines: int = 40) -> str:
        """Return the end of the instance's log."""
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), then kill the whole process group if it lingers."""
        stop_group(self.process, grace=20)


@contextmanager
def running(*instances: Gunicorn, workdir: Path) -> Iterator[tuple[Gunicorn, ...]]:
    """Start the instances and stop every one of them whatever happens."""
    try:
        for instance in instances:
            instance.start(workdir)
        yield instances
    finally:
        for instance in instances:
            instance.stop()


@dataclass(frozen=True)
class Delivery:
    """One signed event body, ready to post."""

    event_id: str
    body: bytes


def lifecycle_events(groups: int, *, seed: int = 7) -> tuple[list[Delivery], dict[str, str]]:
    """Return distinct events walking payment intents through LIFECYCLE, and each intent's last.

    Returns the deliveries and, per payment intent id, the id of the event that
    must have written its final state.
    """
    rng = random.Random(seed)
    templates = {kind: sample("stripe", kind) for kind in LIFECYCLE}
    deliveries: list[Delivery] = []
    final: dict[str, str] = {}
    base = int(time.time()) - 86_400
    for group in range(groups):
        intent = f"pi_load{group:06d}{rng.randrange(16**8):08x}"
        for step, kind in enumerate(LIFECYCLE):
            template = templates[kind]
            old = template["data"]["object"]["id"]
            event = orjson.loads(orjson.dumps(template).replace(old.encode(), intent.encode()))
            event["id"] = f"evt_load{group:06d}s{step}"
            event["created"] = base + group + step * 60
            deliveries.append(Delivery(event["id"], orjson.dumps(event)))
            final[intent] = event["id"]
    return deliveries, final


def signed_headers(body: bytes, *, secret: str = STRIPE_SECRET) -> dict[str, str]:
    """Return the headers Stripe would send with this body, signed now."""
    value = stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=int(time.time())
    )
    return {"Stripe-Signature": value, "Content-Type": "application/json"}


@dataclass
class Tally:
    """What a load run saw, across threads."""

    statuses: Counter[str] = field(default_factory=Counter)
    codes: Counter[int] = field(default_factory=Counter)
    retried: int = 0
    connection_errors: int = 0
    retry_after_missing: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, response: requests.Response | None) -> None:
        """Record one attempt's answer (None when the connection failed)."""
        with self.lock:
            if response is None:
                self.connection_errors += 1
                return
            self.codes[response.status_code] += 1
            if response.status_code == 200:
                self.statuses[response.json()["status"]] += 1
            elif response.status_code == 503 and "Retry-After" not in response.headers:
                self.retry_after_missing += 1

    @property
    def five_xx(self) -> int:
        """Return how many answers were 5xx."""
        return sum(n for code, n in self.codes.items() if code >= 500)


_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def deliver(
    url: str,
    delivery: Delivery,
    tally: Tally,
    *,
    retry: bool = True,
    attempts: int = 60,
    pause: float = 0.2,
) -> bool:
    """Post one delivery; as a provider does, retry on 5xx or a broken connection."""
    for attempt in range(attempts):
        if attempt:
            with tally.lock:
                tally.retried += 1
            time.sleep(pause)
        try:
            response: requests.Response | None = _session().post(
                f"{url}/webhooks/stripe",
                data=delivery.body,
                headers=signed_headers(delivery.body),
                timeout=15,
            )
        except requests.RequestException:
            response = None
            # A connection a killed worker held is gone: start a fresh one.
            _local.session = None
        tally.add(response)
        if response is not None and response.status_code < 500:
            assert response.status_code == 200, response.text
            return True
        if not retry:
            return False
    return False


def send_all(
    plan: Iterable[tuple[str, Delivery]], tally: Tally, *, concurrency: int = 16, **options: Any
) -> list[bool]:
    """Deliver (url, delivery) pairs from a thread pool; return whether each landed."""
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda item: deliver(item[0], item[1], tally, **options), plan))


def stored_state(engine: Engine, final: dict[str, str]) -> tuple[int, int, list[str]]:
    """Return the events stored, the intents found, and intents not in their final state."""
    with engine.connect() as conn:
        stored = len(conn.execute(select(events.c.id)).all())
        rows = conn.execute(
            select(transactions.c.id, transactions.c.status, transactions.c.last_event_id).where(
                transactions.c.id.in_(list(final))
            )
        ).all()
    wrong = [
        row.id for row in rows if (row.status, row.last_event_id) != ("succeeded", final[row.id])
    ]
    return stored, len(rows), wrong


def figures(capsys: pytest.CaptureFixture[str], name: str, **values: object) -> None:
    """Print a test's figures on one line, past pytest's capture so CI logs show them."""
    with capsys.disabled():
        print(f"\n[{name}] " + " ".join(f"{key}={value}" for key, value in values.items()))


NGINX_CONF = REPO / "deploy" / "nginx" / "paysieve.conf"


def render_nginx_conf(
    workdir: Path, *, listen: int, upstream: str, overrides: dict[str, str] | None = None
) -> str:
    """Return deploy/nginx/paysieve.conf with its addresses and paths moved under workdir.

    overrides maps a directive line of the shipped file (``client_body_timeout 10s;``)
    to its replacement; every line named must be in the file exactly once.
    """
    text = NGINX_CONF.read_text()
    # The user line only matters to a root master: keep its workers able to read workdir.
    replacements = {
        "user www-data;": f"user {pwd.getpwuid(os.geteuid()).pw_name};",
        "listen 80 default_server;": f"listen 127.0.0.1:{listen} default_server;",
        "server 127.0.0.1:8000;": f"server {upstream};",
        "/run/nginx.pid": str(workdir / "nginx.pid"),
        "/var/log/nginx/": f"{workdir / 'logs'}/",
        "/var/lib/nginx/": f"{workdir / 'temp'}/",
        **(overrides or {}),
    }
    for old, new in replacements.items():
        if old not in text:
            raise AssertionError(f"{NGINX_CONF.name} no longer contains {old!r}")
        if old.endswith(";") and text.count(old) != 1:
            raise AssertionError(f"{NGINX_CONF.name} contains {old!r} more than once")
        text = text.replace(old, new)
    return text


@dataclass
class Nginx:
    """One nginx running deploy/nginx/paysieve.conf in the foreground, all its files in workdir."""

    workdir: Path
    upstream: str
    overrides: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the base URL nginx listens on."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        """Return the access log file."""
        return self.workdir / "logs" / "paysieve.access.log"

    @property
    def error_log(self) -> Path:
        """Return the error log file."""
        return self.workdir / "logs" / "error.log"

    def access_entries(self) -> list[dict[str, Any]]:
        """Return the access log's JSON lines, oldest first."""
        if not self.access_log.exists():
            return []
        return [orjson.loads(line) for line in self.access_log.read_text().splitlines()]

    def start(self) -> Nginx:
        """Start nginx (daemon off, own process group) and wait until it proxies /healthz."""
        for name in ("logs", "temp"):
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(
            render_nginx_conf(
                self.workdir, listen=self.port, upstream=self.upstream, overrides=self.overrides
            )
        )
        out = self.workdir / "nginx.out"
        with out.open("wb") as sink:
            self.process = subprocess.Popen(
                ["nginx", "-p", str(self.workdir), "-e", "stderr", "-c", str(conf)]
                + ["-g", "daemon off;"],
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited early:\n{out.read_text(errors='replace')}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"nginx never proxied /healthz:\n{out.read_text(errors='replace')}")

    def stop(self) -> None:
        """Stop nginx (SIGTERM, then SIGKILL to its whole process group if it lingers)."""
        # SIGTERM is nginx's fast shutdown: open slow connections are not waited for.
        stop_group(self.process, grace=10)
