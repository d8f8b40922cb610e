"""Helpers the tests share: signed deliveries, rows, keys, planted card data, processes.

Fixtures live in conftest.py; everything a test imports lives here."""
