"""Logs: a card number planted anywhere in a log call never reaches the configured stream."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from gateway.observability import logs

PANS = ("4242424242424242", "5555-5555-5555-4444", "3782 822463 10005", "6011.1111.1111.1117")
DIGITS = tuple(p.replace("-", "").replace(" ", "").replace(".", "") for p in PANS)
TRACK = "%B4111111111111111^ROSEN/JENNY^2512101000000000?"
LEVELS = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)


@pytest.fixture
def emitted() -> Iterator[io.StringIO]:
    """Configure production logging (JSON, redacted) and capture its handler's stream."""
    root = logging.getLogger()
    level = root.level
    logs.configure("DEBUG")
    stream = io.StringIO()
    (handler,) = [h for h in root.handlers if getattr(h, "_paysieve", False)]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def _lines(stream: io.StringIO) -> str:
    err = stream.getvalue()
    for line in err.splitlines():
        orjson.loads(line)  # every line is one JSON object
    return err


def _assert_clean(output: str) -> None:
    assert output, "nothing was logged"
    for value in (*PANS, *DIGITS, TRACK, "4111111111111111"):
        assert value not in output, f"a planted card number reached the log ({value[:4]}...)"


@pytest.mark.parametrize("level", LEVELS, ids=logging.getLevelName)
@pytest.mark.parametrize("pan", PANS)
def test_message_at_every_level(emitted: io.StringIO, level: int, pan: str) -> None:
    logging.getLogger("gateway.test").log(level, f"charge for card {pan} failed")
    output = _lines(emitted)
    _assert_clean(output)
    assert "[REDACTED]" in output


@pytest.mark.parametrize("level", LEVELS, ids=logging.getLevelName)
def test_args_and_mapping_args(emitted: io.StringIO, level: int) -> None:
    log = logging.getLogger("gateway.test")
    log.log(level, "card %s and %s", PANS[0], int(DIGITS[1]))
    log.log(level, "card %(card)s", {"card": PANS[2]})
    log.log(level, "track %r", TRACK)
    _assert_clean(_lines(emitted))


@pytest.mark.parametrize("level", LEVELS, ids=logging.getLevelName)
def test_extras_of_every_type(emitted: io.StringIO, level: int) -> None:
    logging.getLogger("gateway.test").log(
        level,
        "delivery",
        extra={
            "card": PANS[0],
            "number": int(DIGITS[1]),
            "nested": {"deep": [PANS[2], {"k": TRACK}], DIGITS[3]: "key"},
            "items": (PANS[3],),
        },
    )
    _assert_clean(_lines(emitted))


def test_message_that_is_not_a_string(emitted: io.StringIO) -> None:
    log = logging.getLogger("gateway.test")
    log.info(ValueError(PANS[0]))
    log.info({"card": PANS[1]})
    log.info(int(DIGITS[2]))
    _assert_clean(_lines(emitted))


@pytest.mark.parametrize("level", LEVELS, ids=logging.getLevelName)
def test_exception_messages_and_tracebacks(emitted: io.StringIO, level: int) -> None:
    log = logging.getLogger("gateway.test")
    card = PANS[0]
    try:
        try:
            raise KeyError(card)
        except KeyError as inner:
            raise ValueError(f"could not charge {TRACK}") from inner
    except ValueError:
        log.log(level, "failed for %s", PANS[1], exc_info=True, stack_info=True)
    output = _lines(emitted)
    _assert_clean(output)
    assert "Traceback" in output and "KeyError" in output


def test_broken_format_string_still_redacted(emitted: io.StringIO) -> None:
    logging.getLogger("gateway.test").info(f"card {PANS[0]} %s %s", "only one")
    _assert_clean(_lines(emitted))


def test_stack_info_is_redacted(emitted: io.StringIO) -> None:
    # The source line below is part of the stack: it holds a card number literal.
    logging.getLogger("gateway.test").info("stack", stack_info=True)  # 4242424242424242
    _assert_clean(_lines(emitted))
