"""Structured JSON logs that pass through a redaction filter first."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.core import guard

# LogRecord attributes that are not caller-supplied extras.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Remove card numbers and track data from a record before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, redacted, and redact extras and exceptions."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not drop the line
            message = str(record.msg)
        record.msg = guard.redact(message)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, _redacted(value))
        if record.exc_info:
            record.exc_text = guard.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def _redacted(value: Any, depth: int = 0) -> Any:
    """Return an extra's value with card data removed, looking inside numbers and containers."""
    if isinstance(value, str):
        return guard.redact(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        # A card number passed as a JSON number is still a card number.
        return "[REDACTED]" if guard.scan_text(str(value)) else value
    if depth > 8:
        return "[nested]"
    if isinstance(value, dict):
        return {_redacted(str(k), depth + 1): _redacted(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redacted(v, depth + 1) for v in value]
    # Anything else is rendered by the formatter with str(): redact that rendering now.
    return guard.redact(str(value))


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line with its extras."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_text:
            entry["exception"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


def configure(level: str = "INFO") -> None:
    """Send every log line, JSON-formatted and redacted, to standard error."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_paysieve", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    handler._paysieve = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
