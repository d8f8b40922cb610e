"""Crypto: sealed values round-trip, are bound to their row and column, rotate, refuse card data."""

from __future__ import annotations

import pytest

from gateway.core.crypto import (
    PREFIX,
    Cipher,
    UndecryptableValue,
    aad,
    bidx_column,
    cipher_from_settings,
    generate_key,
    kid_of,
)
from gateway.core.errors import CardDataRefused, ConfigurationError
from tests.support.database import TEST_DATA_KEY, TEST_INDEX_KEY

OTHER_KEY = "b3RoZXItZGF0YS1rZXktMDAwMDAwMDAwMDAwMDAwMDA"
ROW = {"provider": "stripe", "account": "default", "id": "ch_1", "customer": "cus_42"}


def cipher(*data_keys: str) -> Cipher:
    return cipher_from_settings(data_keys or (TEST_DATA_KEY,), "", TEST_INDEX_KEY)


def test_a_sealed_value_opens_to_what_was_sealed() -> None:
    associated = aad("transactions", "customer", "stripe", "default", "ch_1")
    sealed = cipher().seal("cus_42", associated)
    assert sealed is not None
    assert sealed.startswith(f"{PREFIX}{cipher().current_kid}.")
    assert "cus_42" not in sealed
    assert cipher().open(sealed, associated) == "cus_42"


def test_sealing_twice_gives_two_ciphertexts() -> None:
    associated = aad("transactions", "customer", "stripe", "default", "ch_1")
    assert cipher().seal("cus_42", associated) != cipher().seal("cus_42", associated)


def test_none_stays_none() -> None:
    assert cipher().seal(None, b"") is None
    assert cipher().open(None, b"") is None
    assert cipher().bidx("customer", None) is None


def test_a_value_does_not_open_under_another_row_or_column() -> None:
    sealed = cipher().seal("cus_42", aad("transactions", "customer", "stripe", "default", "ch_1"))
    for elsewhere in (
        aad("transactions", "customer", "stripe", "default", "ch_2"),
        aad("transactions", "payment_method", "stripe", "default", "ch_1"),
        aad("subscriptions", "customer", "stripe", "default", "ch_1"),
    ):
        with pytest.raises(UndecryptableValue, match="failed authentication"):
            cipher().open(sealed, elsewhere)


def test_a_tampered_value_does_not_open() -> None:
    associated = aad("transactions", "customer", "stripe", "default", "ch_1")
    sealed = cipher().seal("cus_42", associated)
    assert sealed is not None
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(UndecryptableValue, match="failed authentication"):
        cipher().open(flipped, associated)
    with pytest.raises(UndecryptableValue, match="not a sealed value"):
        cipher().open("cus_42", associated)


def test_rotation_opens_old_values_and_seals_new_ones_under_the_first_key() -> None:
    associated = aad("transactions", "customer", "stripe", "default", "ch_1")
    old = cipher(TEST_DATA_KEY)
    rotated = cipher(OTHER_KEY, TEST_DATA_KEY)
    sealed_before = old.seal("cus_42", associated)
    assert sealed_before is not None
    assert rotated.open(sealed_before, associated) == "cus_42"
    sealed_after = rotated.seal("cus_42", associated)
    assert sealed_after is not None
    assert kid_of(sealed_after) == rotated.current_kid != old.current_kid
    assert rotated.kids == {old.current_kid, rotated.current_kid}
    with pytest.raises(UndecryptableValue, match="not configured"):
        cipher(OTHER_KEY).open(sealed_before, associated)


def test_blind_indexes_do_not_change_with_the_data_key() -> None:
    # Lookups keep working through a rotation: the index key is separate.
    assert cipher(TEST_DATA_KEY).bidx("customer", "cus_42") == cipher(OTHER_KEY).bidx(
        "customer", "cus_42"
    )
    assert cipher().bidx("customer", "cus_42") != cipher().bidx("token", "cus_42")


@pytest.mark.parametrize("card", ["4242424242424242", "4242 4242 4242 4242", "%B4242424242424242^"])
def test_card_data_is_refused_and_not_quoted(card: str) -> None:
    with pytest.raises(CardDataRefused) as refused:
        cipher().seal(card, aad("transactions", "customer", "stripe", "default", "ch_1"))
    assert card not in str(refused.value)
    assert "4242" not in str(refused.value)


def test_a_row_is_sealed_with_blind_indexes_and_opened_without_them() -> None:
    sealed = cipher().seal_row("transactions", ROW)
    assert sealed["customer"] != "cus_42"
    assert sealed[bidx_column("customer")] == cipher().bidx("customer", "cus_42")
    assert sealed["id"] == "ch_1"
    assert cipher().open_row("transactions", sealed) == ROW


def test_a_sealed_cell_copied_to_another_row_does_not_open() -> None:
    sealed = cipher().seal_row("transactions", ROW)
    copied = dict(cipher().seal_row("transactions", ROW | {"id": "ch_2"}))
    copied["customer"] = sealed["customer"]
    with pytest.raises(UndecryptableValue):
        cipher().open_row("transactions", copied)


def test_keys_are_required_and_kept_apart() -> None:
    with pytest.raises(ConfigurationError, match="PAYSIEVE_DATA_KEYS"):
        cipher_from_settings((), "", TEST_INDEX_KEY)
    with pytest.raises(ConfigurationError, match="PAYSIEVE_INDEX_KEY"):
        cipher_from_settings((TEST_DATA_KEY,), "", "")
    with pytest.raises(ConfigurationError, match="must differ"):
        cipher_from_settings((TEST_DATA_KEY,), "", TEST_DATA_KEY)


def test_a_malformed_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError) as refused:
        cipher_from_settings(("not-a-key-at-all",), "", TEST_INDEX_KEY)
    assert "not-a-key-at-all" not in str(refused.value)


def test_generated_keys_are_usable_and_distinct() -> None:
    first, second = generate_key(), generate_key()
    assert first != second
    made = cipher_from_settings((first,), "", second)
    associated = aad("payment_methods", "token", "stripe", "default", "x")
    assert made.open(made.seal("pm_1", associated), associated) == "pm_1"


def test_kid_of_a_value_that_is_not_sealed_is_none() -> None:
    assert kid_of("cus_42") is None
