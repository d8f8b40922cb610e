"""The pytest plugin ``paysieve audit --self-test`` loads: its options."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --paysieve-examples (hypothesis examples per event type)."""
    parser.addoption(
        "--paysieve-examples",
        type=int,
        default=None,
        help="generated payloads per event type (default 10)",
    )
