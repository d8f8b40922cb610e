"""An attacker's toolkit: card numbers in every written form, where to plant them, where to look.

The deliveries are correctly signed, so every check the gateway makes after
verification is what stands between a smuggled card number and storage.
"""

from __future__ import annotations

import base64
import copy
import io
import logging
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask.testing import FlaskClient
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from adapters.paypal.adapter import (
    AUTH_ALGO_HEADER,
    CERT_URL,
    TRANSMISSION_ID,
    TRANSMISSION_SIG,
    TRANSMISSION_TIME,
)
from adapters.paypal.verify_cert import AUTH_ALGO, signed_message
from gateway.observability import logs
from gateway.storage.tables import metadata
from tests.support.api import bearer, make_key
from tests.support.database import all_rows, database_bytes, plain_rows
from tests.support.paypal import CERT_URL as PAYPAL_CERT_URL
from tests.support.paypal import WEBHOOK_ID, Pki
from tests.support.webhooks import signed_post

RAZORPAY_SECRET = "rzp-smuggling-" + "s" * 32
PROVIDERS = ("stripe", "razorpay", "paypal")
ALL_SCOPES = ("records:read", "customers:erase", "audit:read")
READ_ROUTES = ("/v1/transactions", "/v1/payment-methods", "/v1/subscriptions")

# ------------------------------------------------------------------ card numbers

# (brand, IIN prefixes, lengths): the shapes a card number comes in.
BRANDS: tuple[tuple[str, tuple[str, ...], tuple[int, ...]], ...] = (
    ("visa", ("4",), (16, 13, 19)),
    ("mastercard", ("51", "52", "53", "54", "55"), (16,)),
    ("mastercard", tuple(str(n) for n in range(2221, 2721)), (16,)),
    ("amex", ("34", "37"), (15,)),
    ("discover", ("6011", "644", "649", "65"), (16, 19)),
    ("diners", ("300", "305", "36", "38"), (14,)),
    ("jcb", tuple(str(n) for n in range(3528, 3590)), (16,)),
    ("unionpay", ("62",), (16, 19)),
    ("rupay", ("60", "65", "508", "353", "356"), (16,)),
    ("maestro", ("50", "56", "58", "63", "67"), (12, 13, 16, 19)),
)

# Runs of one to three non-alphanumeric characters, as people and systems write them.
SEPARATORS = (
    "",
    " ",
    "-",
    "_",
    ":",
    "/",
    "|",
    ".",
    ",",
    "+",
    "\\",
    "\u00a0",
    "\u2013",
    "--",
    "__",
    ": ",
    " - ",
    "\t",
)


def luhn_check_digit(partial: str) -> str:
    """Return the digit that makes partial + digit pass the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(digits: str) -> bool:
    """Return whether a digit string passes the Luhn check."""
    return luhn_check_digit(digits[:-1]) == digits[-1]


@dataclass(frozen=True)
class Pan:
    """One card number as planted (written) and as its bare digits."""

    written: str
    digits: str

    def __repr__(self) -> str:
        return f"Pan({self.written!r})"


@st.composite
def bare_pans(draw: st.DrawFn) -> str:
    """Draw a Luhn-valid, brand-shaped card number as bare digits."""
    _, prefixes, lengths = draw(st.sampled_from(BRANDS))
    prefix = draw(st.sampled_from(prefixes))
    length = draw(st.sampled_from(lengths))
    body = draw(st.text("0123456789", min_size=length - len(prefix) - 1, max_size=length))
    partial = (prefix + body)[: length - 1]
    return partial + luhn_check_digit(partial)


def _groups(draw: st.DrawFn, digits: str) -> list[str]:
    """Split digits 4-4-4-4(-...), as printed on cards, or at irregular points."""
    if draw(st.booleans()):
        return [digits[i : i + 4] for i in range(0, len(digits), 4)]
    cuts = draw(st.lists(st.integers(1, len(digits) - 1), max_size=6, unique=True))
    points = [0, *sorted(cuts), len(digits)]
    return [digits[a:b] for a, b in zip(points, points[1:], strict=False)]


@st.composite
def pans(draw: st.DrawFn, *, separators: tuple[str, ...] = SEPARATORS) -> Pan:
    """Draw a card number written with separators drawn from a wide set."""
    digits = draw(bare_pans())
    groups = _groups(draw, digits)
    if draw(st.booleans()):
        sep = draw(st.sampled_from(separators))
        written = sep.join(groups)
    else:
        seps = draw(
            st.lists(
                st.sampled_from(separators), min_size=len(groups) - 1, max_size=len(groups) - 1
            )
        )
        written = groups[0] + "".join(s + g for s, g in zip(seps, groups[1:], strict=True))
    return Pan(written, digits)


# Separators an id keeps (DESIGN.md: ids match ^[A-Za-z0-9_.:-]{1,128}$): a card
# number written with these passes every shape check and meets the detector alone.
ID_SEPARATORS = ("", "-", "_", ":", ".", "--", "__", "-_", ".:")


def disguise(original: str, pan: Pan, how: int) -> str:
    """Return a value that hides the number: bare, behind the id's prefix, or inside text."""
    if how == 0:
        return pan.written
    prefix = re.match(r"[A-Za-z]+[_-]", original)
    if how == 1:
        return (prefix.group(0) if prefix else "") + pan.written
    return f"{original[:6]}_{pan.written}_x"


# ------------------------------------------------------------------ plant places

Path_ = tuple[str | int, ...]

# Reference keys whose names do not end in "id" (ids of other objects, tokens).
REFERENCE_KEYS = frozenset(
    {
        "charge",
        "customer",
        "payment_intent",
        "payment_method",
        "invoice",
        "subscription",
        "order",
        "refund",
        "plan",
        "price",
        "product",
        "setup_intent",
        "latest_charge",
        "balance_transaction",
        "mandate",
        "source",
        "token",
        "dispute",
        "href",
        "reference",
    }
)


def leaves(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Yield (path, value) for every scalar leaf (string, number) of a payload."""
    if isinstance(node, dict):
        for key, child in node.items():
            yield from leaves(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from leaves(child, (*path, index))
    elif isinstance(node, str) or (isinstance(node, int) and not isinstance(node, bool)):
        yield path, node


def string_leaves(event: dict[str, Any]) -> list[Path_]:
    """Return the path of every string leaf."""
    return [path for path, value in leaves(event) if isinstance(value, str)]


def number_leaves(event: dict[str, Any]) -> list[Path_]:
    """Return the path of every integer leaf."""
    return [path for path, value in leaves(event) if isinstance(value, int)]


def is_reference(path: Path_) -> bool:
    """Return whether a leaf's key names an id or a reference to another object."""
    keys = [part for part in path if isinstance(part, str)]
    key = keys[-1].lower() if keys else ""
    return key.endswith("id") or key in REFERENCE_KEYS


def reference_leaves(event: dict[str, Any]) -> list[Path_]:
    """Return the path of every id and reference string of a payload."""
    return [path for path in string_leaves(event) if is_reference(path)]


def containers(event: dict[str, Any]) -> list[Path_]:
    """Return the path of every object (dict) of a payload, the top level first."""
    found: list[Path_] = [()]

    def walk(node: Any, path: Path_) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                if isinstance(child, dict):
                    found.append((*path, key))
                walk(child, (*path, key))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                if isinstance(child, dict):
                    found.append((*path, index))
                walk(child, (*path, index))

    walk(event, ())
    return found


def at(node: Any, path: Path_) -> Any:
    """Return the value at a path."""
    for part in path:
        node = node[part]
    return node


def replaced(event: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    """Return a copy of an event with the leaf at path replaced."""
    event = copy.deepcopy(event)
    *parent, last = path
    at(event, tuple(parent))[last] = value
    return event


def with_key(event: dict[str, Any], path: Path_, key: str, value: Any) -> dict[str, Any]:
    """Return a copy of an event with a new key inside the object at path."""
    event = copy.deepcopy(event)
    target = at(event, path)
    assert isinstance(target, dict)
    target[key] = value
    return event


# Objects a card number is most likely slipped into as a key name, per provider (the
# first of these that the sample carries is used: samples differ by event type).
NAMED_CONTAINERS: dict[str, tuple[Path_, ...]] = {
    "stripe": (
        (),
        ("data",),
        ("data", "object"),
        ("data", "object", "metadata"),
        ("data", "object", "payment_method_details", "card", "checks"),
        ("data", "object", "card", "checks"),
    ),
    "razorpay": (
        (),
        ("payload",),
        ("payload", "payment", "entity"),
        ("payload", "payment", "entity", "notes"),
        ("payload", "payment", "entity", "card"),
        ("payload", "payment", "entity", "acquirer_data"),
        ("payload", "refund", "entity", "notes"),
    ),
    "paypal": (
        (),
        ("resource",),
        ("resource", "payment_source", "card"),
        ("resource", "payment_source", "card", "attributes", "vault"),
        ("resource", "purchase_units", 0),
        ("resource", "supplementary_data", "related_ids"),
    ),
}


def present(event: dict[str, Any], path: Path_) -> bool:
    """Return whether an event has an object at path."""
    try:
        return isinstance(at(event, path), dict)
    except (KeyError, IndexError, TypeError):
        return False


# Where each provider puts the event id and type in the body (Razorpay's id is a header).
EVENT_ID_PATH: dict[str, Path_ | None] = {"stripe": ("id",), "razorpay": None, "paypal": ("id",)}
EVENT_TYPE_PATH: dict[str, Path_] = {
    "stripe": ("type",),
    "razorpay": ("event",),
    "paypal": ("event_type",),
}
EVENT_ID_PREFIX = {"stripe": "evt_", "razorpay": "evt_", "paypal": "WH-"}

# Headers the providers' signatures do not cover, which an attacker controls freely.
UNSIGNED_HEADERS = ("X-Forwarded-For", "User-Agent", "X-Smuggled", "X-Request-Id", "Referer")


# ------------------------------------------------------------------ posting


def _paypal_key(path: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def paypal_headers(raw: bytes, pki: Pki, *, transmission_id: str) -> dict[str, str]:
    """Return PayPal's transmission headers for a body, signed over a chosen transmission id."""
    when = datetime.fromtimestamp(int(time.time()), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = signed_message(transmission_id, when, WEBHOOK_ID, raw)
    signature = _paypal_key(str(pki.key_path)).sign(message, padding.PKCS1v15(), hashes.SHA256())
    return {
        TRANSMISSION_ID: transmission_id,
        TRANSMISSION_TIME: when,
        TRANSMISSION_SIG: base64.b64encode(signature).decode("ascii"),
        CERT_URL: PAYPAL_CERT_URL,
        AUTH_ALGO_HEADER: AUTH_ALGO,
        "Content-Type": "application/json",
    }


def wire(value: str) -> str:
    """Return a header value as a WSGI server hands it over (UTF-8 bytes read as Latin-1)."""
    return value.encode("utf-8").decode("latin-1")


def post(
    client: FlaskClient,
    provider: str,
    event: dict[str, Any],
    *,
    event_id: str | None = None,
    headers: dict[str, str] | None = None,
    pki: Pki | None = None,
    transmission_id: str | None = None,
) -> Any:
    """Post an event correctly signed; PayPal optionally under a chosen transmission id."""
    extra = {name: wire(value) for name, value in (headers or {}).items()}
    if provider == "paypal" and transmission_id is not None:
        assert pki is not None
        raw = orjson.dumps(event)
        sent = paypal_headers(raw, pki, transmission_id=wire(transmission_id)) | extra
        return client.post("/webhooks/paypal", data=raw, headers=sent)
    if provider == "razorpay":
        event_id = wire(event_id) if event_id is not None else f"evt_{time.time_ns():x}"
    return signed_post(client, provider, event, event_id=event_id, headers=extra)


# ------------------------------------------------------------------ where to look

_NOT_DIGIT = re.compile(r"\D")
_NOT_DIGIT_BYTES = re.compile(rb"\D")


def digits_of(value: str) -> str:
    """Return a value's ASCII digits alone, in order."""
    return _NOT_DIGIT.sub("", value).encode("ascii", "ignore").decode()


class LogTap(logging.Handler):
    """Keep each log record's message and extras as emitted, before any filter rewrites them."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Render the record's message and every extra to text."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - the raw format string is then what was logged
            message = str(record.msg)
        extras = {k: v for k, v in vars(record).items() if k not in self._STANDARD}
        self.seen.append(message + " " + repr(extras))


@dataclass
class Logs:
    """The raw log records (LogTap) and the production JSON lines (gateway.observability.logs)."""

    tap: LogTap
    stream: io.StringIO

    def texts(self) -> list[str]:
        """Return every raw record and every formatted line."""
        return [*self.tap.seen, *self.stream.getvalue().splitlines()]

    def clear(self) -> None:
        """Forget what was logged so far."""
        self.tap.seen.clear()
        self.stream.seek(0)
        self.stream.truncate()


def capture_logs() -> tuple[Logs, Any]:
    """Install the production log handler on a buffer and a raw tap before it; return both."""
    root = logging.getLogger()
    level = root.level
    logs.configure("DEBUG")
    (handler,) = [h for h in root.handlers if getattr(h, "_paysieve", False)]
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    tap = LogTap()
    # First in line, so it sees each record before the redacting filter rewrites it.
    root.handlers.insert(0, tap)

    def restore() -> None:
        root.removeHandler(tap)
        root.removeHandler(handler)
        root.setLevel(level)

    return Logs(tap, stream), restore


@dataclass
class Finding:
    """Where a form of a planted number was seen."""

    where: str
    form: str
    pan: Pan

    def __str__(self) -> str:
        return f"{self.form} form of {self.pan!r} found in {self.where}"


@dataclass
class Sweep:
    """Look for planted numbers everywhere the gateway keeps or says anything."""

    pans: list[Pan]
    findings: list[Finding] = field(default_factory=list)

    def _found(self, where: str, form: str, pan: Pan | None = None) -> None:
        self.findings.append(Finding(where, form, pan or self.pans[0]))

    def value(self, where: str, value: Any) -> None:
        """Check one stored, served or logged value: exactly as planted, and digits only."""
        if value is None or isinstance(value, bool):
            return
        if isinstance(value, bytes | memoryview):
            value = bytes(value).decode("latin-1")
        if isinstance(value, dict):
            for key, child in value.items():
                self.value(f"{where} key", key)
                self.value(f"{where}.{key}", child)
            return
        if isinstance(value, list | tuple):
            for index, child in enumerate(value):
                self.value(f"{where}[{index}]", child)
            return
        rendered = str(value)
        digits = digits_of(rendered)
        for pan in self.pans:
            if pan.written in rendered:
                self._found(where, "written", pan)
            elif pan.digits in digits:
                self._found(where, "digits-only", pan)

    def rows(self, label: str, tables: dict[str, list[dict[str, Any]]]) -> None:
        """Check every column of every row."""
        for table, rows in tables.items():
            for index, row in enumerate(rows):
                for column, value in row.items():
                    self.value(f"{label} {table}[{index}].{column}", value)

    def file(self, blob: bytes) -> None:
        """Check the database file and its WAL: as planted, and digits only across the bytes."""
        if not blob:
            return
        digits = _NOT_DIGIT_BYTES.sub(b"", blob)
        for pan in self.pans:
            if pan.written.encode("utf-8") in blob:
                self._found("the database file or its WAL", "written", pan)
            elif pan.digits.encode() in digits:
                self._found("the database file or its WAL", "digits-only", pan)

    def answer(self, where: str, response: Any) -> Any:
        """Check one HTTP answer: never a 5xx, always JSON, nothing of a number in it."""
        body = response.get_data()
        if response.status_code >= 500:
            self._found(f"{where}: a {response.status_code} answer", "status")
        if response.mimetype != "application/json":
            self._found(f"{where}: a {response.mimetype} answer", "status")
            self.value(f"{where} body", body.decode("utf-8", "replace"))
            return None
        for pan in self.pans:
            if pan.written.encode("utf-8") in body:
                self._found(f"{where} bytes", "written", pan)
        document = orjson.loads(body)
        self.value(where, document)
        if response.status_code >= 400:
            error = document.get("error") if isinstance(document, dict) else None
            if not isinstance(error, dict) or set(error) != {"code", "message"}:
                self._found(f"{where}: a {response.status_code} without the error shape", "status")
        return document

    def text(self, where: str, lines: list[str]) -> None:
        """Check lines of text (log lines, metrics) one at a time."""
        for index, line in enumerate(lines):
            self.value(f"{where} line {index}", line)

    def report(self) -> str:
        """Return the findings, one per line."""
        return "\n".join(str(finding) for finding in self.findings)


def empty_tables(engine: Engine) -> None:
    """Delete every row of every table (between examples of one test)."""
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(text(f'DELETE FROM "{table.name}"'))  # noqa: S608 - our table names


def stored_nothing(engine: Engine) -> list[str]:
    """Return the tables that hold rows (an empty list when nothing at all is stored)."""
    return [name for name, rows in all_rows(engine).items() if rows]


def read_everything(client: FlaskClient, engine: Engine, sweep: Sweep) -> None:
    """Read every read route with a key of all scopes, following each record to its own route."""
    key = make_key(engine, *ALL_SCOPES)
    auth = bearer(key)
    customers: set[tuple[str, str]] = set()
    for route in READ_ROUTES:
        document = sweep.answer(f"GET {route}", client.get(route, headers=auth))
        if not isinstance(document, dict):
            continue
        for item in document.get("data", []):
            ident = item.get("token") or item.get("id")
            one = f"{route}/{item['provider']}/{ident}"
            sweep.answer(f"GET {route}/<provider>/<id>", client.get(one, headers=auth))
            if item.get("customer"):
                customers.add((item["provider"], item["customer"]))
            method = item.get("payment_method")
            if isinstance(method, dict) and method.get("customer"):
                customers.add((item["provider"], method["customer"]))
    for provider, customer in sorted(customers):
        route = f"/v1/customers/{provider}/{customer}/export"
        sweep.answer(
            "GET /v1/customers/<provider>/<customer>/export", client.get(route, headers=auth)
        )
    sweep.answer("GET /v1/events", client.get("/v1/events?after=0", headers=auth))
    sweep.answer("GET /v1/audit-log", client.get("/v1/audit-log", headers=auth))
    metrics = client.get("/metrics")
    sweep.text("GET /metrics", metrics.get_data(as_text=True).splitlines())


def look_everywhere(
    *,
    sweep: Sweep,
    client: FlaskClient,
    engine: Engine,
    database_url: str,
    captured: Logs,
) -> None:
    """Check every read route, every table (sealed and opened), the file and WAL, the logs."""
    read_everything(client, engine, sweep)
    sweep.rows("stored", all_rows(engine))
    sweep.rows("opened", plain_rows(engine))
    sweep.file(database_bytes(database_url))
    sweep.text("the logs", captured.texts())


def fixed_pans(count: int, *, seed: int = 15) -> list[Pan]:
    """Return a reproducible list of card numbers, each brand and separator in turn."""
    chooser = random.Random(seed)  # noqa: S311 - test data, not secrets
    found: list[Pan] = []
    for index in range(count):
        _, prefixes, lengths = BRANDS[index % len(BRANDS)]
        prefix = chooser.choice(prefixes)
        length = chooser.choice(lengths)
        partial = prefix + "".join(chooser.choice("0123456789") for _ in range(length))
        partial = partial[: length - 1]
        digits = partial + luhn_check_digit(partial)
        sep = SEPARATORS[index % len(SEPARATORS)]
        groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
        found.append(Pan(sep.join(groups), digits))
    return found
