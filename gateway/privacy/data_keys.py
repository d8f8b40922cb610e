"""The startup check: every data key the stored values were sealed with is configured."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from gateway.core.crypto import KID_LENGTH, PREFIX, SEALED, kid_of
from gateway.core.errors import ConfigurationError
from gateway.privacy.batching import table_named
from gateway.privacy.rotation import SUBSCRIBER_SECRETS
from gateway.storage.store import Store
from gateway.storage.tables import subscribers

log = logging.getLogger(__name__)

# Rows sampled at each end of each table and at evenly spaced pk probes between: an
# interrupted rotation leaves old-key rows in the middle of the pk range, not at its ends.
KEY_CHECK_SAMPLE: Final = 100
KEY_CHECK_PROBES: Final = 32
KEY_CHECK_PROBE_ROWS: Final = 4


def stored_key_ids(store: Store) -> tuple[set[str], int]:
    """Return the key ids seen in a sample of sealed values and how many were in clear."""
    seen: set[str] = set()
    clear = 0
    head = len(PREFIX) + KID_LENGTH + 1

    def note(values: Sequence[Any]) -> None:
        nonlocal clear
        for value in values:
            if value is None:
                continue
            kid = kid_of(value)
            if kid is None:
                clear += 1
            else:
                seen.add(kid)

    with store.engine.connect() as conn:
        for name, columns in SEALED.items():
            table = table_named(name)
            heads = [func.substr(table.c[c], 1, head) for c in columns]
            for order in (table.c.pk.asc(), table.c.pk.desc()):
                for row in conn.execute(select(*heads).order_by(order).limit(KEY_CHECK_SAMPLE)):
                    note(row)
            low, high = conn.execute(select(func.min(table.c.pk), func.max(table.c.pk))).one()
            if low is None:
                continue
            step = max(1, (int(high) - int(low)) // KEY_CHECK_PROBES)
            for start in range(int(low), int(high) + 1, step):
                probe = (
                    select(*heads)
                    .where(table.c.pk >= start)
                    .order_by(table.c.pk)
                    .limit(KEY_CHECK_PROBE_ROWS)
                )
                for row in conn.execute(probe):
                    note(row)
        # Subscribers are a handful of rows, each holding signing secrets: read them all.
        secret_heads = [func.substr(subscribers.c[c], 1, head) for c in SUBSCRIBER_SECRETS]
        for row in conn.execute(select(*secret_heads)):
            note(row)
    return seen, clear


def check_keys(store: Store, *, allow_clear: bool = False) -> None:
    """Refuse to run against sealed data no configured key opens, or data left in clear."""
    try:
        seen, clear = stored_key_ids(store)
    except DBAPIError as exc:
        # Not migrated yet, or not reachable: requests answer 503 until it is.
        log.warning("data key check skipped: storage unavailable (%s)", type(exc).__name__)
        return
    missing = sorted(seen - store.cipher.kids)
    if missing:
        raise ConfigurationError(
            f"stored data is encrypted under key id(s) {', '.join(missing)}, which no "
            f"configured data key has (configured: {', '.join(sorted(store.cipher.kids))}): "
            "add the key back to PAYSIEVE_DATA_KEYS (any position after the first); remove "
            "an old key only after `paysieve rotate-keys` has finished"
        )
    if clear and not allow_clear:
        raise ConfigurationError(
            "stored data holds references in clear from before encryption at rest: run "
            "`paysieve rotate-keys` to encrypt them, then start again"
        )
