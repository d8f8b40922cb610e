"""Last line of defence before storage: drop anything that looks like card data.

The guard scans every value about to be stored (``check``), every dropped
field path (``check_paths``), every value bound into the database or served by
the API (``card_data_reason``), every stored value the auditors' scan reads and
every log line (``redact``) for:

Card numbers (reason ``"pan"``)
    A candidate is a run of at least 12 digits in which any number of separator
    characters may sit between any two neighbouring digits, anywhere in
    the text (``"x4242424242424242y"`` counts). Unicode decimal digits count as
    digits. A separator character is anything that is not a letter or a digit
    (``str.isalnum`` is false): space, tab, newline, NBSP and every other Unicode
    space, ``-`` and every Unicode dash, ``.``, ``_``, ``:``, ``/``, ``\\``,
    ``|``, ``,``, ``+``, ``=``, brackets, quotes, zero-width and combining
    characters, and so on, alone or repeated (``"3782--822463--10005"``,
    ``"4111 / 1111 / 1111 / 1111"``, ``"4111____1111____1111____1111"``). Only a
    letter ends the run: a card number spelled out between letters is an
    encoding no digit-run detector can read, while separators, however many,
    are how card numbers are written. Every contiguous window of 12-19 digits inside
    a run is tried, so a PAN glued to other digits is still found. A window is a
    PAN when it is Luhn-valid and its leading digits and length fit a card brand:

    ==========  =================================================  ===========
    Brand       IIN prefixes                                       Lengths
    ==========  =================================================  ===========
    Visa        4                                                  13, 16, 19
    Mastercard  51-55, 2221-2720                                   16
    Amex        34, 37                                             15
    Discover    6011, 644-649, 65, 622126-622925                   16-19
    Diners      300-305, 36, 38, 39                                14-19
    JCB         3528-3589                                          16-19
    UnionPay    62, 81                                             12-19
    RuPay       60, 65, 81, 82, 508, 353, 356                      12-19
    Maestro     50, 56-69                                          12-19
    ==========  =================================================  ===========

    One shape of run is not a candidate: a run that is, as a whole, one UTC
    date-time written with a space between date and time, as SQLite stores it
    (``2026-12-04 13:23:06.123456``), as ``str()`` writes an aware one
    (``2026-12-04 13:23:06.123456+00:00``) and as a log's asctime does
    (``2026-12-04 13:23:06,123``): years 1900-2199, a valid month, day, hour,
    minute and second, at most six fraction digits (``.`` or ``,``), and no
    offset or ``+00:00`` / ``+0000``. Without it more than half of SQLite's
    stored times would be card numbers by chance. It is narrow on purpose: no
    provider id can hold a space, so no value a provider sends is exempt; a
    digit separated from the date-time by separators alone makes the whole run
    a candidate again; and the free digits (hour to fraction, the offset fixed)
    cannot spell an arbitrary card number. The ``T`` form needs no exemption:
    its run starts after the ``T``, and a time there written with ``Z``
    (``13:23:06.123456Z``, as the API serves times) has at most twelve digits
    starting 0-2, which no brand's card number is. A time with a numeric offset,
    ``+00:00`` included, is scanned like any digits (about one in eight such times
    with microseconds reads as a card number; no provider time is stored as text).

    Event ids alone (``scan_event_id``, for the columns and answer fields that hold
    one) have one shape scanned in two parts: a PayPal webhook event id, ``WH-``
    and two groups of 15-20 upper-case letters and digits joined by one ``-``
    (``WH-2WR32451HC0233532-67976317FL4543714``). PayPal's groups end and start
    with runs of up to eight digits, so the join reads as one 12-19 digit run and
    about one real event id in twenty would pass Luhn and the brand filter. Each
    group is scanned on its own: a card number inside a group is found, one split
    by the join of an event id of this exact shape is not. Every other value,
    whatever its shape, is scanned whole.

    The brand filter keeps Unix timestamps, phone numbers with a country code
    and long numeric references mostly clear; it cannot clear them all, since
    Maestro alone accepts any Luhn-valid 12-19 digits starting 56-69. Random
    hex (digests, UUIDs) holds such runs by chance: columns of digests are
    checked for their shape instead (gateway.storage.tables, gateway.audit.scan).

Track data (reason ``"track"``)
    Track 1 ``%B<PAN>^<NAME>^<YYMM>`` (the ``%`` optional) and track 2
    ``<PAN>=<YYMM>`` (a ``;`` sentinel optional), where YYMM has a month
    01-12 and the PAN is 12-19 digits that pass Luhn. The brand filter is not
    applied here: the surrounding structure is already specific.

Sensitive keys (reason ``"cvv_key"``)
    See ``is_sensitive_key``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from gateway.core.records import IDENTITY, Record

PAN: Final = "pan"
TRACK: Final = "track"
CVV_KEY: Final = "cvv_key"

_MIN_PAN: Final = 12
_MAX_PAN: Final = 19

# (brand, lowest prefix, highest prefix, lengths); both prefixes have the same
# number of digits, so comparing strings compares numbers.
_ANY: Final = frozenset(range(_MIN_PAN, _MAX_PAN + 1))
_IIN_RANGES: Final[tuple[tuple[str, str, str, frozenset[int]], ...]] = (
    ("visa", "4", "4", frozenset({13, 16, 19})),
    ("mastercard", "51", "55", frozenset({16})),
    ("mastercard", "2221", "2720", frozenset({16})),
    ("amex", "34", "34", frozenset({15})),
    ("amex", "37", "37", frozenset({15})),
    ("discover", "6011", "6011", frozenset(range(16, 20))),
    ("discover", "644", "649", frozenset(range(16, 20))),
    ("discover", "65", "65", frozenset(range(16, 20))),
    ("discover", "622126", "622925", frozenset(range(16, 20))),
    ("diners", "300", "305", frozenset(range(14, 20))),
    ("diners", "36", "36", frozenset(range(14, 20))),
    ("diners", "38", "39", frozenset(range(14, 20))),
    ("jcb", "3528", "3589", frozenset(range(16, 20))),
    ("unionpay", "62", "62", _ANY),
    ("unionpay", "81", "81", _ANY),
    ("rupay", "60", "60", _ANY),
    ("rupay", "65", "65", _ANY),
    ("rupay", "81", "82", _ANY),
    ("rupay", "508", "508", _ANY),
    ("rupay", "353", "353", _ANY),
    ("rupay", "356", "356", _ANY),
    ("maestro", "50", "50", _ANY),
    ("maestro", "56", "69", _ANY),
)
# No brand starts with these, so most positions in a digit run are skipped cheaply.
_IIN_FIRST_DIGITS: Final = frozenset(lo[0] for _, lo, _, _ in _IIN_RANGES)
# The shortest card number any brand starting with a digit has.
_SHORTEST_BY_FIRST_DIGIT: Final = {
    first: min(min(lengths) for _, lo, _, lengths in _IIN_RANGES if lo[0] == first)
    for first in _IIN_FIRST_DIGITS
}

# Luhn: the value a digit contributes when it sits in a doubled position.
_DOUBLED: Final = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)

# A separator: anything but a letter or a digit (``[\W_]`` is exactly ``not str.isalnum``).
_SEP: Final = r"[\W_]"
# A candidate: 12+ digits with any separators between neighbours. Greedy from the
# leftmost digit, so every match is a whole run; possessive, since a separator is never
# a digit and giving any back cannot help.
_RUN: Final = re.compile(rf"\d(?:{_SEP}*+\d){{11,}}+")
# A run that is one space-separated UTC date-time is exempt (see the module docstring).
# The year is kept to 1900-2199, so no exempt run starts with a brand prefix.
_DATE: Final = r"(?:19|20|21)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
_DATETIME_RUN: Final = re.compile(
    rf"{_DATE} "
    r"(?:[01]\d|2[0-3]):[0-5]\d(?::(?:[0-5]\d|60)(?:[.,]\d{1,6})?)?"
    r"(?:\+00:?00)?"
)
# A PayPal webhook event id, whose two groups are scanned apart (see the module docstring).
_PAYPAL_EVENT_ID: Final = re.compile(r"WH-([0-9A-Z]{15,20})-([0-9A-Z]{15,20})")
_DIGIT: Final = re.compile(r"\d")
_NOT_DIGIT: Final = re.compile(r"\D")
_ASCII_DIGITS: Final = b"0123456789"
_NON_DIGIT_BYTES: Final = bytes(c for c in range(256) if c not in _ASCII_DIGITS)
_YYMM: Final = r"\d\d(?:0[1-9]|1[0-2])"
# The tails (service code, discretionary data, end sentinel) only widen what
# redact() removes: discretionary data can carry the card's CVV and PIN offset.
_TRACK1: Final = re.compile(r"%?B(\d{12,19})\^[^^]{2,26}\^" + _YYMM + r"[^?\s]*\??")
_TRACK2: Final = re.compile(r";?(\d{12,19})=" + _YYMM + r"[\d=]*\??")

# Sensitive names matched anywhere in the key with separators removed; a verdict
# word right after (Stripe's ``cvc_check: "pass"``) names a result, not the secret.
_VERDICT: Final = r"(?:check|result|status|response|match|outcome)"
_SENSITIVE_IN_KEY: Final = re.compile(
    r"(?:cvv|cvc|securitycode|cardverification|pinblock|track[12]|trackdata"
    r"|magstripe|magneticstripe)(?!\d*" + _VERDICT + ")"
)
# Short names that are also parts of ordinary words (acid, spinner), so they
# count only as a whole component of the key.
_SENSITIVE_COMPONENTS: Final = frozenset({"cid", "csc", "pin"})
_VERDICT_COMPONENTS: Final = re.compile(_VERDICT + r"(?:s|es|ed)?")
_KEY_COMPONENT: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_NOT_ALNUM: Final = re.compile(r"[^0-9a-z]")

_REDACTED: Final = "[REDACTED]"
_PATH_PAN: Final = "[pan]"


@dataclass(frozen=True, slots=True)
class GuardHit:
    """One field or path the guard refused; holds the path, never the value."""

    path: str
    reason: str


def contains_pan(text: str) -> bool:
    """Return whether text holds a Luhn-valid 12-19 digit run, with or without separators."""
    if len(text) < _MIN_PAN:
        return False
    return any(True for _ in _pan_spans(text))


def contains_track_data(text: str) -> bool:
    """Return whether text holds magnetic-stripe track 1 or track 2 data."""
    if len(text) < _MIN_PAN:
        return False
    return any(True for _ in _track_spans(text))


def is_sensitive_key(name: str) -> bool:
    """Return whether a field name says it holds a card security code, PIN or track data.

    ``cvv``, ``cvc`` (and ``cvv2``, ``cvc2``), ``security_code``,
    ``card_verification...``, ``pin_block``, ``track1``, ``track2``,
    ``track_data`` and ``magstripe`` match anywhere in the key once it is
    lower-cased and stripped of everything but letters and digits, so
    ``card_cvc``, ``CVV2`` and ``securityCode`` match. ``cid``, ``csc`` and
    ``pin`` match only as a whole component (split on separators and
    camelCase), so ``pin``, ``card_pin`` and ``pinBlock`` match while
    ``shipping``, ``spinner``, ``pinned`` and ``opinion`` do not. ``pincode``,
    ``pin_code`` and ``pinCode`` are the Indian postal code and do not match.
    A name for a verification verdict (``cvc_check``, ``cvv_result``) does
    not match: it holds pass/fail, not the code.
    """
    if _SENSITIVE_IN_KEY.search(_NOT_ALNUM.sub("", name.lower())):
        return True
    parts = [part.lower() for part in _KEY_COMPONENT.findall(name)]
    for index, part in enumerate(parts):
        if part not in _SENSITIVE_COMPONENTS:
            continue
        following = parts[index + 1] if index + 1 < len(parts) else ""
        if _VERDICT_COMPONENTS.fullmatch(following):
            continue
        if part == "pin" and following == "code":
            continue
        return True
    return False


def scan_text(text: str) -> str | None:
    """Return "track" or "pan" for the card data text holds, or None."""
    # Both kinds need 12 digits in one run, so short strings leave at once.
    if len(text) < _MIN_PAN:
        return None
    # It runs on every value stored and served: ASCII text with fewer than 12 digits cannot
    # hold a run and leaves without a search; otherwise each run is found once, track data
    # is looked for only where its "^" or "=" is, and a run is tested for a PAN window on
    # its digits alone, Luhn sums built only once a window fits a brand.
    if text.isascii():
        encoded = text.encode("ascii")
        if len(encoded) - len(encoded.translate(None, _ASCII_DIGITS)) < _MIN_PAN:
            return None
    run = _RUN.search(text)
    if run is None:
        return None
    if ("^" in text or "=" in text) and _a_candidate(text, run) and contains_track_data(text):
        return TRACK
    while run is not None:
        if not _is_datetime(text, run) and _has_pan_window(_run_digits(run.group())):
            return PAN
        run = _RUN.search(text, run.end())
    return None


def _a_candidate(text: str, first: re.Match[str]) -> bool:
    """Return whether text, whose first run is first, has a run that is not a date-time."""
    return not _is_datetime(text, first) or next(_candidates(text, first.end()), None) is not None


def _run_digits(run: str) -> str:
    """Return the digits of a run (separators removed) as ASCII digits."""
    if run.isascii():
        return run.encode("ascii").translate(None, _NON_DIGIT_BYTES).decode("ascii")
    return _ascii_digits(_NOT_DIGIT.sub("", run))


def check(records: list[Record]) -> tuple[list[Record], list[GuardHit]]:
    """Drop every field holding card data or named for it; drop records whose identity hits."""
    kept: list[Record] = []
    hits: list[GuardHit] = []
    for record in records:
        identity = IDENTITY[record.type]
        values: dict[str, Any] = {}
        identity_hit = False
        for name, value in record.values.items():
            reason = CVV_KEY if _sensitive_field(name) else _scan_value(value)
            if reason is None:
                values[name] = value
                continue
            hits.append(GuardHit(path=f"{record.type}.{name}", reason=reason))
            identity_hit = identity_hit or name == identity
        # Without its identity the record cannot be matched to a row, so none of it is stored.
        if not identity_hit:
            kept.append(Record(type=record.type, values=values, fill_only=record.fill_only))
    return kept, hits


# Record field names are the schemas' own few words, the same on every delivery: each is
# judged once per process. (Payload keys, chosen by senders, never go through this cache.)
_sensitive_field: Final = lru_cache(maxsize=512)(is_sensitive_key)


def check_paths(paths: Iterable[str]) -> list[GuardHit]:
    """Report dropped field paths holding card data, with long digit runs redacted."""
    hits: list[GuardHit] = []
    for path in paths:
        reason = scan_text(path)
        if reason is not None:
            hits.append(GuardHit(path=_RUN.sub(_PATH_PAN, path), reason=reason))
    return hits


def redact(text: str) -> str:
    """Replace every PAN and track-data match in text with '[REDACTED]'."""
    if len(text) < _MIN_PAN:
        return text
    text = _replace_spans(text, _track_spans(text))
    return _replace_spans(text, _pan_spans(text))


def scan_event_id(value: object) -> str | None:
    """Return "track" or "pan" for the card data an event id holds, or None.

    ``card_data_reason`` with one difference: a PayPal-shaped event id is scanned
    group by group (see the module docstring). Only for values that are event ids.
    """
    if isinstance(value, str):
        groups = _PAYPAL_EVENT_ID.fullmatch(value)
        if groups is not None:
            return scan_text(groups[1]) or scan_text(groups[2])
    return _scan_value(value)


def card_data_reason(value: object) -> str | None:
    """Return "track" or "pan" for the card data a value to bind or serve holds, or None.

    The one check of the storage boundary (gateway.storage.tables's column types) and of every
    value the API serves: strings, integers (not booleans) and containers, recursively.
    """
    return _scan_value(value)


def _scan_value(value: object) -> str | None:
    """Return the card-data reason for a stored value, looking inside containers."""
    if isinstance(value, str):
        return scan_text(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return scan_text(str(value))
    # Schemas should only produce scalars; a container is still scanned, not trusted.
    if isinstance(value, dict):
        return _scan_all([*value.keys(), *value.values()])
    if isinstance(value, list | tuple | set | frozenset):
        return _scan_all(value)
    return None


def _scan_all(values: Iterable[object]) -> str | None:
    """Return the first card-data reason among values."""
    for value in values:
        reason = _scan_value(value)
        if reason is not None:
            return reason
    return None


def _pan_spans(text: str) -> Iterator[tuple[int, int]]:
    """Yield the character span of every PAN window in text."""
    for run in _candidates(text):
        positions = [digit.start() for digit in _DIGIT.finditer(text, run.start(), run.end())]
        digits = _ascii_digits("".join(text[index] for index in positions))
        for start, end in _pan_windows(digits):
            yield positions[start], positions[end - 1] + 1


def _candidates(text: str, pos: int = 0) -> Iterator[re.Match[str]]:
    """Yield every digit run of text from pos that may hold a PAN: 12+ digits, not a date-time."""
    for run in _RUN.finditer(text, pos):
        if not _is_datetime(text, run):
            yield run


def _is_datetime(text: str, run: re.Match[str]) -> bool:
    """Return whether a digit run is, as a whole, one date-time."""
    return _DATETIME_RUN.fullmatch(text, run.start(), run.end()) is not None


def _has_pan_window(digits: str) -> bool:
    """Return whether a digit string has a brand-shaped, Luhn-valid window."""
    count = len(digits)
    for start in range(count - _MIN_PAN + 1):
        # The shortest window a brand starting with this digit allows must fit.
        if count - start < _SHORTEST_BY_FIRST_DIGIT.get(digits[start], _MAX_PAN + 1):
            continue
        if _brand_lengths(digits[start : start + 6]):
            return next(_pan_windows(digits), None) is not None
    return False


def _pan_windows(digits: str) -> Iterator[tuple[int, int]]:
    """Yield (start, end) of every brand-shaped, Luhn-valid window in a digit string."""
    count = len(digits)
    odd_doubled: list[int] = []
    even_doubled: list[int] = []
    for start in range(count - _MIN_PAN + 1):
        if digits[start] not in _IIN_FIRST_DIGITS:
            continue
        lengths = _brand_lengths(digits[start : start + 6])
        if lengths and not odd_doubled:
            # Prefix sums of Luhn contributions for both parities make each window O(1);
            # built only once some window fits a brand (most runs in ids and times never do).
            odd_doubled, even_doubled = _luhn_sums(digits)
        for length in lengths:
            end = start + length
            if end > count:
                continue
            # The last digit is never doubled; doubling alternates leftwards from it.
            sums = odd_doubled if (end - 1) % 2 == 0 else even_doubled
            if (sums[end] - sums[start]) % 10 == 0:
                yield start, end


def _luhn_sums(digits: str) -> tuple[list[int], list[int]]:
    """Return the prefix sums of Luhn contributions, digit by digit, for both parities."""
    count = len(digits)
    odd_doubled = [0] * (count + 1)
    even_doubled = [0] * (count + 1)
    for index, char in enumerate(digits):
        digit = ord(char) - 48
        doubled = _DOUBLED[digit]
        odd_doubled[index + 1] = odd_doubled[index] + (doubled if index % 2 else digit)
        even_doubled[index + 1] = even_doubled[index] + (digit if index % 2 else doubled)
    return odd_doubled, even_doubled


@lru_cache(maxsize=4096)
def _brand_lengths(prefix: str) -> frozenset[int]:
    """Return the PAN lengths some brand allows for a six-digit prefix."""
    lengths: set[int] = set()
    for _, low, high, allowed in _IIN_RANGES:
        if low <= prefix[: len(low)] <= high:
            lengths |= allowed
    return frozenset(lengths)


def _track_spans(text: str) -> Iterator[tuple[int, int]]:
    """Yield the character span of every track 1 or track 2 match whose PAN passes Luhn."""
    if "^" in text:
        for match in _TRACK1.finditer(text):
            if _luhn(_ascii_digits(match.group(1))):
                yield match.span()
    if "=" in text:
        for match in _TRACK2.finditer(text):
            digits = _ascii_digits(match.group(1))
            # The regex may have swallowed digits glued before the PAN; the PAN ends at '='.
            if any(_luhn(digits[-length:]) for length in range(_MIN_PAN, len(digits) + 1)):
                yield match.span()


def _luhn(digits: str) -> bool:
    """Return whether an ASCII digit string passes the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        total += _DOUBLED[digit] if index % 2 else digit
    return total % 10 == 0


def _ascii_digits(digits: str) -> str:
    """Return a string of Unicode decimal digits as ASCII digits."""
    if digits.isascii():
        return digits
    # Full-width or other-script digits are still a card number to whoever reads them.
    return "".join(str(int(char)) for char in digits)


def _replace_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """Return text with the union of spans replaced, one marker per merged span."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    if not merged:
        return text
    pieces: list[str] = []
    cursor = 0
    for start, end in merged:
        pieces.append(text[cursor:start])
        pieces.append(_REDACTED)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)
