"""Tests for the storage guard: card numbers, track data and sensitive keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import guard
from gateway.core.guard import (
    PAN,
    TRACK,
    GuardHit,
    card_data_reason,
    check,
    check_paths,
    contains_pan,
    contains_track_data,
    is_sensitive_key,
    redact,
    scan_text,
)
from gateway.core.records import Record


def luhn_ok(number: str) -> bool:
    """Return whether number passes Luhn (written independently of the guard)."""
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char) * (2 if index % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def with_check_digit(body: str) -> str:
    """Return body followed by the digit that makes it Luhn-valid."""
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def padded(prefix: str, length: int) -> str:
    """Return a Luhn-valid number of length digits: prefix, zeros, check digit."""
    return with_check_digit(prefix.ljust(length - 1, "0"))


def bump_last(number: str) -> str:
    """Return number with its last digit changed, which always breaks Luhn."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


# Well-known provider test numbers, plus generated ones for ranges that have none.
CARDS = [
    "4242424242424242",  # Visa
    "4000056655665556",  # Visa debit
    "4222222222222",  # Visa, 13 digits
    padded("4", 19),  # Visa, 19 digits
    "5555555555554444",  # Mastercard
    "5200828282828210",  # Mastercard debit
    "2223003122003222",  # Mastercard 2-series
    padded("2720", 16),  # Mastercard 2-series top
    "378282246310005",  # Amex
    "371449635398431",  # Amex
    padded("34", 15),  # Amex
    "6011111111111117",  # Discover
    "6011000990139424",  # Discover
    padded("644", 16),  # Discover
    padded("622126", 19),  # Discover / UnionPay co-brand, low end
    padded("622925", 16),  # Discover / UnionPay co-brand, high end
    "3056930009020004",  # Diners
    "36227206271667",  # Diners, 14 digits
    padded("305", 14),  # Diners
    padded("38", 16),  # Diners
    padded("39", 14),  # Diners
    "3566002020360505",  # JCB
    padded("3528", 16),  # JCB low end
    padded("3589", 19),  # JCB high end
    "6200000000000005",  # UnionPay
    padded("81", 19),  # UnionPay
    padded("6521", 16),  # RuPay
    padded("82", 16),  # RuPay
    padded("508", 16),  # RuPay
    padded("353", 16),  # RuPay
    "6759649826438453",  # Maestro
    "5018000000000009",  # Maestro
    padded("50", 12),  # Maestro, 12 digits
    padded("56", 19),  # Maestro, 19 digits
]


def spaced(number: str, sep: str) -> str:
    """Return number in groups of four joined by sep."""
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


def test_card_fixtures_are_luhn_valid() -> None:
    # Guards the table itself: a typo would turn a hit test into a miss test.
    assert all(luhn_ok(card) for card in CARDS)


SHAPES = [
    "{bare}",
    "{spaces}",
    "{dashes}",
    "{dots}",
    "card {bare} ok",
    "x{bare}y",
    "paid with {spaces}, thanks",
    "ref:{dashes}.",
    "12345678{bare}",  # glued to other digits before
    "{bare}987654",  # glued to other digits after
]


def alnum_only(text: str) -> str:
    """Return text without its separators: what a reader of the digits sees."""
    return "".join(char for char in text if char.isalnum())


@pytest.mark.parametrize("card", CARDS)
def test_pan_found(card: str) -> None:
    # Shapes loop inside one case per card: 340 separate cases cost more than the checks.
    for shape in SHAPES:
        text = shape.format(
            bare=card,
            spaces=spaced(card, " "),
            dashes=spaced(card, "-"),
            dots=spaced(card, "."),
        )
        assert contains_pan(text), shape
        assert scan_text(text) == "pan", shape
        assert card[-8:] not in alnum_only(redact(text)), shape


# Anything that is not a letter or digit separates digits, alone or repeated.
SEPARATORS = [
    "_",
    ":",
    "/",
    "|",
    "\\",
    ",",
    "+",
    "*",
    "#",
    "=",
    "~",
    "'",
    "\t",
    "\n",
    "\r\n",
    "\u00a0",  # no-break space
    "\u2009",  # thin space
    "\u202f",  # narrow no-break space
    "\u3000",  # ideographic space
    "\u200b",  # zero-width space
    "\u00ad",  # soft hyphen
    "\u2010",  # hyphen
    "\u2013",  # en dash
    "\u2014",  # em dash
    "\u2212",  # minus sign
    "\uff0d",  # full-width hyphen-minus
    "\u30fb",  # katakana middle dot
    "\u0301",  # combining acute accent
    "--",
    "__",
    "  ",
    " / ",
    " - ",
    "._.",
    "\u00a0-\u00a0",
]


@pytest.mark.parametrize("sep", SEPARATORS, ids=ascii)
def test_pan_found_with_any_separator(sep: str) -> None:
    for card in CARDS:
        for text in (spaced(card, sep), f"evt_{spaced(card, sep)}", f"x{spaced(card, sep)}y"):
            assert scan_text(text) == "pan", card
            assert card_data_reason(text) == "pan", card
            redacted = redact(text)
            assert card[-8:] not in alnum_only(redacted), card
            assert "[REDACTED]" in redacted


@pytest.mark.parametrize(
    "text",
    [
        "4000_0566_5566_5556",
        "5555:5555:5555:4444",
        "3782--822463--10005",
        "4111/1111/1111/1111",
        "4111|1111|1111|1111",
        "4242  4242  4242  4242",
        "4242\\4242\\4242\\4242",
        "4242, 4242, 4242, 4242",
        "4242 - 4242 - 4242 - 4242",
        "(4242) [4242] {4242} <4242>",
        "4-2-4-2-4-2-4-2-4-2-4-2-4-2-4-2",
        "charge.4000_0566_5566_5556",
        "ch_4111/1111/1111/1111x",
        "４２４２＿４２４２＿４２４２＿４２４２",  # full-width digits and low line
    ],
)
def test_attacker_separators_are_found(text: str) -> None:
    assert contains_pan(text)
    assert scan_text(text) == "pan"
    assert card_data_reason(text) == "pan"
    assert redact(text).count("[REDACTED]") == 1
    assert not any(char.isdigit() for char in redact(text))


def test_any_run_of_separators_joins_digits_and_only_a_letter_ends_the_run() -> None:
    assert scan_text("4242---4242---4242---4242") == "pan"
    assert scan_text("4242----4242----4242----4242") == "pan"
    assert scan_text("4111____1111____1111____1111") == "pan"
    assert scan_text("4111-_.:1111-_.:1111-_.:1111") == "pan"
    assert scan_text("____".join("4111111111111111")) == "pan"
    assert scan_text("4111" + " " * 40 + "111111111111") == "pan"
    assert scan_text("4242 a 4242 b 4242 c 4242") is None
    assert scan_text("4242x4242y4242z4242") is None


@pytest.mark.parametrize(
    "text",
    [
        "3782 822463 10005",  # Amex 4-6-5 grouping
        "4242-4242 4242.4242",  # mixed separators
        "４２４２４２４２４２４２４２４２",  # full-width digits
        "cards 4000056655665556 and 5555555555554444",
    ],
)
def test_pan_found_in_other_layouts(text: str) -> None:
    assert contains_pan(text)


NEAR_MISSES = [
    *(bump_last(card) for card in CARDS[:6]),  # Luhn-invalid
    "1700000000",  # Unix timestamp
    "1700000000000",  # millisecond timestamp
    "1709876543210",
    "100000",
    "99999999999",  # 11 digits
    "42424242424",  # 11-digit prefix of a PAN
    "4242 4242 424",
    "2026-03-02",
    "2026-03-02T10:15:30Z",
    "2026-03-02 10:15:30.123456",
    "+919876543210",
    "+91 98765 43210",
    "+1 (415) 555-2671",
    "pay_DESp9bgForNoUd",
    "ch_3MmlLrLkdIwHu7ix0snN0B15",
    "pi_3MtwBwLkdIwHu7ix28a3tqPa",
    "order_1700000000_42",
    "4242 / 4242 a 4242 / 4242",  # a letter breaks the run
    padded("4", 15),  # Visa prefix, Visa never has 15 digits
    padded("4", 12),
    padded("37", 16),  # Amex prefix, Amex is always 15
    padded("51", 15),  # Mastercard prefix, Mastercard is always 16
    padded("36", 13),  # Diners needs 14+
    padded("3528", 15),  # JCB needs 16+
    padded("1", 16),  # Luhn-valid, but no brand starts with 1
    padded("9", 16),
    padded("7", 19),
    "9" * 24,  # no 12-19 window of nines is Luhn-valid
    "420992474286969382255304",  # 24 digits, Visa-led, no Luhn-valid window at all
    "400815653103885655840447",
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_are_not_pans(text: str) -> None:
    assert not contains_pan(text)
    assert scan_text(text) is None
    assert redact(text) == text


@pytest.mark.parametrize("run", ["9" * 24, "420992474286969382255304", "400815653103885655840447"])
def test_long_run_fixtures_have_no_luhn_window(run: str) -> None:
    # Proves the long-run near misses pass on Luhn, not just on the brand table.
    windows = (
        run[start : start + length]
        for length in range(12, 20)
        for start in range(len(run) - length + 1)
    )
    assert not any(luhn_ok(window) for window in windows)


TRACKS = [
    "%B4242424242424242^DOE/JOHN^2512101000000000000000?",
    "B4242424242424242^DOE/JOHN A^25121010000",
    "raw: %B5555555555554444^SMITH/JANE^2701201? end",
    ";4242424242424242=25121010000000000?",
    "4242424242424242=2512101",
    "swipe=;378282246310005=2601101123?",
    "1234;4242424242424242=2512101?",  # digits glued before the PAN
    # Luhn-valid but no known brand: only the track structure catches it.
    f"%B{padded('1', 16)}^DOE/JOHN^2512101?",
    f";{padded('9', 16)}=2512101?",
]


@pytest.mark.parametrize("text", TRACKS)
def test_track_data_found(text: str) -> None:
    assert contains_track_data(text)
    assert scan_text(text) == "track"
    redacted = redact(text)
    assert "=2512" not in redacted and "^DOE" not in redacted and "^SMITH" not in redacted
    assert "[REDACTED]" in redacted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (";4242424242424248=2512101?", None),  # Luhn-invalid PAN
        # "=" separates digits too, and a window across it ("2424242424242412") is a PAN.
        (";4242424242424241=2512101?", "pan"),
        ("%B4242424242424241^DOE/JOHN^2512101?", None),
        ("4242424242424242=2513101", "pan"),  # month 13: a PAN, but not track data
        ("%B4242424242424242^^2512101?", "pan"),  # no name field
        ("a=2512", None),
        ("amount=250000&currency=INR", None),
    ],
)
def test_track_near_misses(text: str, expected: str | None) -> None:
    assert not contains_track_data(text)
    assert scan_text(text) == expected


@pytest.mark.parametrize(
    "name",
    [
        "cvv",
        "CVV",
        "cvc",
        "cvv2",
        "CVV2",
        "cvc2",
        "card_cvc",
        "cardCvv",
        "card.cvv",
        "cid",
        "CID",
        "csc",
        "card-csc",
        "pin",
        "PIN",
        "card_pin",
        "pinBlock",
        "PINBlock",
        "pin_block",
        "pin_number",
        "security_code",
        "securityCode",
        "card security code",
        "card_verification_value",
        "cardVerificationCode",
        "track1",
        "track2",
        "track_data",
        "trackData",
        "magstripe",
        "mag_stripe",
    ],
)
def test_sensitive_keys(name: str) -> None:
    assert is_sensitive_key(name)


@pytest.mark.parametrize(
    "name",
    [
        "shipping",
        "spinner",
        "pinned",
        "opinion",
        "pincode",  # Indian postal code
        "pin_code",
        "pinCode",
        "PINCode",
        "acid",
        "cidr",
        "decide",
        "tracking_number",
        "track",
        "cvc_check",  # a verdict (pass/fail), not the code
        "cvcCheck",
        "cvv_result",
        "security_code_check",
        "pin_status",
        "last4",
        "customer",
        "description",
    ],
)
def test_ordinary_keys(name: str) -> None:
    assert not is_sensitive_key(name)


def _transaction(**values: object) -> Record:
    """Return a transaction record with a clean id and the given fields."""
    return Record(type="transaction", values={"id": "pay_DESp9bgForNoUd", **values})


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("customer", "card 4242 4242 4242 4242", "pan"),
        ("description", "x378282246310005y", "pan"),
        ("amount_refunded", 4242424242424242, "pan"),
        ("reference", 5555555555554444, "pan"),
        ("description", ";4242424242424242=25121010000?", "track"),
        ("cvc", "123", "cvv_key"),
        ("card_pin", 1234, "cvv_key"),
        ("notes", ["ok", "4000056655665556"], "pan"),
        ("extra", {"k": "6011111111111117"}, "pan"),
    ],
)
def test_check_drops_only_the_hit_field(field: str, value: object, reason: str) -> None:
    record = _transaction(amount=5000, currency="INR", status="succeeded", **{field: value})
    original = dict(record.values)

    kept, hits = check([record])

    assert hits == [GuardHit(path=f"transaction.{field}", reason=reason)]
    assert len(kept) == 1
    assert kept[0] is not record
    assert kept[0].type == "transaction"
    expected = {k: v for k, v in original.items() if k != field}
    assert kept[0].values == expected
    assert record.values == original  # input untouched
    assert str(value) not in repr(hits)


def test_check_keeps_clean_records_and_ordinary_numbers() -> None:
    records = [
        _transaction(amount=100000, created=1700000000, created_ms=1700000000000, ok=True),
        Record(type="payment_method", values={"token": "pm_1N3x", "last4": "4242"}),
        Record(type="subscription", values={"id": "sub_1", "phone": "+919876543210"}),
    ]

    kept, hits = check(records)

    assert hits == []
    assert [r.values for r in kept] == [r.values for r in records]
    assert all(k is not r for k, r in zip(kept, records, strict=True))


@pytest.mark.parametrize(
    ("record", "path"),
    [
        (
            Record(
                type="payment_method", values={"token": "tok_4242424242424242", "last4": "4242"}
            ),
            "payment_method.token",
        ),
        (
            Record(type="transaction", values={"id": 4242424242424242, "amount": 10}),
            "transaction.id",
        ),
        (
            Record(type="subscription", values={"id": ";4242424242424242=2512101?"}),
            "subscription.id",
        ),
    ],
)
def test_check_drops_whole_record_on_identity_hit(record: Record, path: str) -> None:
    clean = _transaction(amount=10)

    kept, hits = check([record, clean])

    assert [h.path for h in hits] == [path]
    assert [k.values for k in kept] == [clean.values]
    assert "4242424242424242" not in repr(hits)


def test_check_reports_every_hit_in_a_record() -> None:
    record = _transaction(a="4242424242424242", b="ok", cvv="123")

    kept, hits = check([record])

    assert {(h.path, h.reason) for h in hits} == {
        ("transaction.a", "pan"),
        ("transaction.cvv", "cvv_key"),
    }
    assert kept[0].values == {"id": "pay_DESp9bgForNoUd", "b": "ok"}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("metadata.4242424242424242", GuardHit("metadata.[pan]", "pan")),
        ("metadata.card.4242-4242-4242-4242.x", GuardHit("metadata.card.[pan].x", "pan")),
        ("notes.x378282246310005y", GuardHit("notes.x[pan]y", "pan")),
        ("metadata.;4242424242424242=2512101?", GuardHit("metadata.;[pan]?", "track")),
        ("metadata.4000_0566_5566_5556", GuardHit("metadata.[pan]", "pan")),
        ("udf.5555:5555:5555:4444.note", GuardHit("udf.[pan].note", "pan")),
    ],
)
def test_check_paths_reports_redacted_path(path: str, expected: GuardHit) -> None:
    assert check_paths([path]) == [expected]


def test_check_paths_skips_clean_paths() -> None:
    paths = ["metadata.note", "lines.data.0.amount", "metadata.1700000000000", "customer.cvv"]
    assert check_paths(paths) == []
    assert check_paths(iter(["a.b", "metadata.4242424242424242"])) == [
        GuardHit("metadata.[pan]", "pan")
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("charge 4242 4242 4242 4242 for 12.00", "charge [REDACTED] for 12.00"),
        ("a 4000056655665556 b 5555-5555-5555-4444 c", "a [REDACTED] b [REDACTED] c"),
        ("ref 11117777 4242424242424242", "ref 11117777 [REDACTED]"),
        # Windows span separators: "5678 4242..." starts a Luhn-valid Maestro window.
        ("ref 12345678 4242424242424242", "ref 1234[REDACTED]"),
        ("x%B4242424242424242^DOE/JOHN^2512101000? y", "x[REDACTED] y"),
        ("track ;4242424242424242=25121010000? z", "track [REDACTED] z"),
        ("ts=1700000000000 amount=100000 id=ch_3MmlLrLkdIwHu7ix0snN0B15", None),
        ("id=evt_4000_0566_5566_5556 ok", "id=evt_[REDACTED] ok"),
        ("a 5555:5555:5555:4444 b 3782--822463--10005 c", "a [REDACTED] b [REDACTED] c"),
        ("path /4111/1111/1111/1111/ end", "path /[REDACTED]/ end"),
        (
            "at 2026-12-04 13:23:06,123 card 4111|1111|1111|1111",
            "at 2026-12-04 13:23:06,123 card [REDACTED]",
        ),
        ("", None),
    ],
)
def test_redact(text: str, expected: str | None) -> None:
    assert redact(text) == (text if expected is None else expected)


# Restated from the guard's docstring: (lowest prefix, highest prefix, lengths).
BRAND_TABLE = [
    ("4", "4", {13, 16, 19}),
    ("51", "55", {16}),
    ("2221", "2720", {16}),
    ("34", "34", {15}),
    ("37", "37", {15}),
    ("6011", "6011", set(range(16, 20))),
    ("644", "649", set(range(16, 20))),
    ("65", "65", set(range(12, 20))),
    ("622126", "622925", set(range(16, 20))),
    ("300", "305", set(range(14, 20))),
    ("36", "36", set(range(14, 20))),
    ("38", "39", set(range(14, 20))),
    ("3528", "3589", set(range(16, 20))),
    ("62", "62", set(range(12, 20))),
    ("60", "60", set(range(12, 20))),
    ("81", "82", set(range(12, 20))),
    ("508", "508", set(range(12, 20))),
    ("353", "353", set(range(12, 20))),
    ("356", "356", set(range(12, 20))),
    ("50", "50", set(range(12, 20))),
    ("56", "69", set(range(12, 20))),
]


def naive_contains_pan(digits: str) -> bool:
    """Return whether an unseparated digit string holds a PAN, by brute force."""
    for start in range(len(digits)):
        for length in range(12, 20):
            window = digits[start : start + length]
            if len(window) != length or not luhn_ok(window):
                continue
            for low, high, lengths in BRAND_TABLE:
                if low <= window[: len(low)] <= high and length in lengths:
                    return True
    return False


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="0123456789", min_size=0, max_size=40))
def test_contains_pan_matches_brute_force(digits: str) -> None:
    assert contains_pan(digits) == naive_contains_pan(digits)


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet="0123456789 .-=^%B;?/xJOHN", max_size=60),
    st.sampled_from(CARDS),
    st.text(alphabet="0123456789 .-=^%B;?/xJOHN", max_size=20),
)
def test_redact_leaves_nothing_to_find(prefix: str, card: str, suffix: str) -> None:
    text = prefix + card + suffix
    assert scan_text(text) is not None
    redacted = redact(text)
    assert not contains_pan(redacted)
    assert not contains_track_data(redacted)


# Timestamps in every shape the gateway stores, serves or logs. Each is a card number by
# chance once its date-time shape is broken (test_timestamps_are_exempt_only_whole).
TIMESTAMPS = [
    "2026-08-26 08:02:24.493048",  # as SQLite stores it
    "2026-06-20 06:42:05.482842",
    "2026-04-08 23:34:40.567183+00:00",  # str(datetime)
    "2026-08-13 09:31:11.983577+00:00",
    "2026-01-21 04:51:00,451",  # a log's asctime
    "2026-08-15 16:20:50,940",
]


@pytest.mark.parametrize("stamp", TIMESTAMPS)
def test_timestamps_are_exempt_only_whole(stamp: str) -> None:
    assert scan_text(stamp) is None
    assert card_data_reason(stamp) is None
    assert redact(stamp) == stamp
    # The same digits in another shape are a candidate, and so is a run that carries a
    # date-time and more digits: the exemption never hides a neighbour.
    assert scan_text(stamp.replace(":", "/").replace("T", " ")) == "pan"
    glued = f"{stamp}_4000_0566_5566_5556"
    assert scan_text(glued) == "pan"
    assert "5566" not in redact(glued)


# Values the storage boundary binds and the API serves, as providers and the gateway
# write them: none may be refused.
REALISTIC = [
    "ch_3MmlLrLkdIwHu7ix0snN0B15",  # Stripe
    "pi_3MtwBwLkdIwHu7ix28a3tqPa",
    "evt_1NG8Du2eZvKYlo2CUI79vXWy",
    "cus_NffrFeUfNV2Hib",
    "pm_1MqLiJLkdIwHu7ixUEgbFdYF",
    "in_1MtHbELkdIwHu7ixl4OzzPMv",
    "8PT597110X687430LKGECATA",  # PayPal
    "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
    "b2b3a8c0-9b1f-11ee-8c90-0242ac120002",
    "PAYMENT.CAPTURE.COMPLETED",
    "pay_29QQoUBi66xm2f",  # Razorpay
    "order_DBJOWzybf0sJbb",
    "sub_00000000000001",
    "payment.captured",
    "charge.succeeded",
    "customer.subscription.updated",
    "2026-12-04T13:23:06.123456Z",  # served timestamps
    "2026-12-04T23:59:59.999999Z",
    "2026-12-04T13:23:06Z",
    "2026-12-04",
    "/v1/customers/<provider>/<customer>",  # route templates
    "/webhooks/<provider>/<endpoint>",
    "/v1/transactions/<provider>/<id>",
    "psk_1a2b3c4d5e6f",  # API key prefix
    "records:read",
    "100000",
    "1,234,567.89",
    "1700000000",
    "1700000000000",
    "order_1700000000_42",
    "+91 98765 43210",
    "+44 20 7946 0958",
    "192.168.100.200:8080",
]


@pytest.mark.parametrize("value", REALISTIC)
def test_realistic_values_are_clear(value: str) -> None:
    assert scan_text(value) is None
    assert card_data_reason(value) is None
    assert redact(value) == value
    # Clear because it holds no card number, not because the detector is blind around it.
    planted = f"{value}_4111/1111/1111/1111"
    assert scan_text(planted) == "pan"
    assert redact(planted).endswith("[REDACTED]")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4000_0566_5566_5556", "pan"),
        (4000056655665556, "pan"),
        (-4000056655665556, "pan"),
        (["ok", "5555:5555:5555:4444"], "pan"),
        (("ok", {"k": "3782--822463--10005"}), "pan"),
        ({"4111|1111|1111|1111": "key"}, "pan"),
        (";4111111111111111=2512101?", "track"),
        ("ch_3MmlLrLkdIwHu7ix0snN0B15", None),
        (1700000000000, None),
        (True, None),
        (None, None),
        (12.5, None),
        ("", None),
    ],
)
def test_card_data_reason(value: object, expected: str | None) -> None:
    assert card_data_reason(value) == expected


# PayPal's own example event ids: their groups join into 15-digit runs, one Luhn-valid.
PAYPAL_EVENT_IDS = (
    "WH-2WR32451HC0233532-67976317FL4543714",
    "WH-0JD87562XN25889-1PW58473VJ6644317",
    "WH-1KN88882SX3393624-5KL56837LL2466420",
    "WH-7Y7254563A4550640-11V2185806837105M",
    "WH-9RT5550331H6023410-4HA8125X1K5536627",
)


@pytest.mark.parametrize("event_id", PAYPAL_EVENT_IDS)
def test_paypal_event_ids_are_not_card_numbers(event_id: str) -> None:
    assert guard.scan_event_id(event_id) is None


def test_the_paypal_split_is_for_event_ids_only() -> None:
    # Anywhere else the shape is scanned whole: a card number split at the dash is found.
    for value in ("WH-ABCDEFG41111111-11111111ABCDEFG", "WH-ABCDEFGHIJK3782-82246310005ABCD"):
        assert guard.scan_text(value) == guard.PAN
        assert guard.card_data_reason(value) == guard.PAN
        assert guard.scan_event_id(value) is None


@pytest.mark.parametrize(
    "value",
    [
        # Inside one group.
        "WH-4111111111111111A-67976317FL4543714",
        "WH-2WR32451HC0233532-5555555555554444A",
        # Not PayPal's shape: the whole value is scanned, join and all.
        "WH-4111111111111111",
        "WH-2WR32451HC0233532-67976317FL4543714x",
        "wh-2wr32451hc0233532-67976317fl4543714",
        "evt_2WR32451HC0233532-67976317FL4543714",
    ],
)
def test_card_numbers_near_the_paypal_id_shape_are_found(value: str) -> None:
    assert guard.scan_event_id(value) == guard.PAN
    assert guard.scan_text(value) == guard.PAN


@pytest.mark.parametrize(
    "value",
    [
        # Card numbers spelled by a date-time's own digits (seconds, fraction, offset):
        # the T form is never exempt, and the space form is UTC only, at most microseconds.
        "2026-12-04T13:00:37.828224631-00:05",  # Amex 378282246310005
        "2026-12-04T13:41:11.111111111-11:11",  # Visa 4111111111111111
        "2026-12-04 13:41:11.111111111-11:11",
        "2026-12-04 13:41:11.111111111",
        "2026-12-04T13:41:11.111111-11:11",
    ],
)
def test_a_card_number_dressed_as_a_date_time_is_found(value: str) -> None:
    assert scan_text(value) == "pan"
    assert card_data_reason(value) == "pan"


def reference_scan_text(text: str) -> str | None:
    """Return scan_text's verdict as its definition states it: track first, then PAN."""
    if not any(True for _ in guard._candidates(text)):
        return None
    if contains_track_data(text):
        return TRACK
    if contains_pan(text):
        return PAN
    return None


_SCAN_PARTS = st.one_of(
    st.text(alphabet="0123456789 .-:=^%B;?/_TZx+\u0660\u00a0", max_size=12),
    st.sampled_from([*CARDS, *TIMESTAMPS, "2026-12-04T20:50:12.123456Z", "=2512", "^JOHN^2512"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_SCAN_PARTS, max_size=6).map("".join))
def test_scan_text_matches_its_definition(text: str) -> None:
    assert scan_text(text) == reference_scan_text(text)
