"""gunicorn's own output, held to the gateway's rules (gunicorn.conf.py wires it in).

gunicorn answers requests it cannot parse itself, before the app sees them, with an
HTML page quoting the request line, and logs that line in its error log. Here its
error log goes through the card-data redaction every application log line gets, its
access log shows a method only if it is a real one, and its own error answers are
the JSON error shape of every other answer, quoting nothing.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from gunicorn import glogging, util

from gateway.core import guard
from gateway.web.http import SECURITY_HEADERS, error_body

# The methods an access log names; anything else a client sent is logged as "-".
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# gunicorn's line for a request its parser refused quotes the offending request line or
# header after the colon: only the client's address is kept.
_REFUSED: Final = re.compile(r"(Invalid request from ip=[^:\s]*): .*", re.DOTALL)
# gunicorn names the request it failed on: the path carries ids and tokens.
_FAILED_ON: Final = re.compile(r"^(Error handling request)\b.*?$", re.MULTILINE)
# Its configuration dump at DEBUG lists raw_env and every other setting, which may
# carry secrets: the dump is not logged at all.
_CONFIG_DUMP: Final = "Current configuration"
# Secrets in the shapes paysieve and Stripe give them, wherever a line quotes one.
_SECRETS: Final = re.compile(r"\b(psk|whsec)_[A-Za-z0-9_+/=-]+|(?i:bearer)\s+\S+")


def _redacted(value: Any) -> Any:
    return guard.redact(value) if isinstance(value, str) else value


def scrub(text: str) -> str:
    """Return a gunicorn error-log line without request values, secrets or card data."""
    text = _REFUSED.sub(r"\1: refused by the HTTP parser", text)
    text = _FAILED_ON.sub(r"\1", text)
    if text.startswith(_CONFIG_DUMP):
        return f"{_CONFIG_DUMP}: not logged (it may hold secrets; see gunicorn.conf.py)"
    text = _SECRETS.sub(lambda m: (m.group(1) or "bearer") + "_[masked]", text)
    return guard.redact(text)


class _Scrubbing(logging.Filter):
    """Scrub every record of gunicorn's error log, at every level, before a handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, scrubbed; scrub a traceback too (it can quote a request)."""
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class _RedactedAtoms(glogging.SafeAtoms):  # type: ignore[misc]
    """Access-log atoms: request headers never, every other value redacted as it is read.

    Only the atoms the format names are read, so a line costs a redaction per atom it
    shows (five in the shipped format), not one per environ key and header.
    """

    def __getitem__(self, name: str) -> Any:
        if name.lower().endswith("}i"):
            return "-"
        return _redacted(super().__getitem__(name))


class Logger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger: error-log lines scrubbed, access-log methods checked."""

    atoms_wrapper_class = _RedactedAtoms

    def setup(self, cfg: Any) -> None:
        """Set gunicorn's handlers up, then scrub everything its error log takes."""
        super().setup(cfg)
        if not any(isinstance(f, _Scrubbing) for f in self.error_log.filters):
            self.error_log.addFilter(_Scrubbing())

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        """Return the access-log atoms with the method checked and request values removed."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        method = atoms.get("m")
        atoms["m"] = method if method in _METHODS else "-"
        # What the shipped format never uses, and a custom one must not show.
        for name in ("r", "U", "q", "f", "a"):
            atoms[name] = "-"
        # Request headers and the redaction of the rest: _RedactedAtoms, as the line is made.
        return atoms


def write_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Answer a request gunicorn refused with the JSON error shape; quote nothing of it."""
    # 501 is gunicorn's answer to a transfer coding it does not know: the client's
    # request is malformed, and a 5xx would read as the gateway failing.
    if status_int == 501:
        status_int = 400
    _, body = error_body(status_int)
    head = [
        f"HTTP/1.1 {status_int} {_REASONS.get(status_int, 'Error')}",
        "Connection: close",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in SECURITY_HEADERS.items()),
    ]
    util.write_nonblock(sock, ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


# Standard reason phrases: gunicorn's own may quote the request.
_REASONS: Final = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


def install() -> None:
    """Make gunicorn's own error answers JSON (called from gunicorn.conf.py, before forking)."""
    util.write_error = write_error
