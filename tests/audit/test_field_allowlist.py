"""The shipped property tests, on the suite's database (3 examples per event type)."""

from __future__ import annotations

from gateway.audit.selftest.test_field_allowlist import *  # noqa: F403
from tests.audit.conftest import audit_database_url, audit_examples  # noqa: F401 - overrides
