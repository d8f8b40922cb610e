"""Data-subject routes: export (GDPR art. 15/20) and erasure (art. 17) of one customer."""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from flask import Blueprint, Response, current_app, jsonify, request

from adapters.registry import adapter_classes
from gateway.api import auth, keys, records
from gateway.api.keys import ApiKey
from gateway.api.schemas import ID_PATTERN, PROVIDER_PATTERN
from gateway.audit import audit_log
from gateway.core.errors import BadRequest, GatewayError, NotFound, StorageUnavailable
from gateway.privacy import batching
from gateway.privacy import erasure as privacy_erasure
from gateway.privacy import export as privacy_export
from gateway.storage.store import Store

log = logging.getLogger(__name__)

ERASE_SCOPE: Final = "customers:erase"
_ACCOUNT_RE = re.compile(r"[a-z0-9_-]{1,64}")

bp = Blueprint("privacy", __name__, url_prefix="/v1")


def _store() -> Store:
    store: Store = current_app.extensions["paysieve.store"]
    return store


def _subject(provider: str, customer: str) -> None:
    """Refuse path values that cannot name a customer, without echoing them."""
    if not re.fullmatch(PROVIDER_PATTERN, provider) or not re.fullmatch(ID_PATTERN, customer):
        raise NotFound("no such customer")
    # A provider paysieve does not know has no customers (a disabled one may still have).
    if provider not in adapter_classes():
        raise NotFound("no such customer")


def _accounts(key: ApiKey) -> list[str] | None:
    """Return the accounts a request may touch: ?account=, narrowed to the key's accounts."""
    if set(request.args) - {"account"}:
        raise BadRequest("unknown query parameter", code="invalid_parameter")
    account = request.args.get("account")
    if account is not None and not _ACCOUNT_RE.fullmatch(account):
        raise BadRequest("invalid query parameter: account", code="invalid_parameter")
    if account is not None:
        if not key.sees(account):
            raise NotFound("no such customer")
        return [account]
    return None if key.accounts is None else sorted(key.accounts)


def _rule() -> str:
    return request.url_rule.rule if request.url_rule is not None else "/"


@bp.get("/customers/<provider>/<customer>/export")
@auth.audited_read
def export_customer(key: ApiKey, provider: str, customer: str) -> tuple[dict[str, Any], int]:
    """Serve every record held about a customer, decrypted, as one JSON document."""
    _subject(provider, customer)
    document = privacy_export.export(
        _store(),
        provider=provider,
        customer=customer,
        serialize=records.serve_record,
        accounts=_accounts(key),
        actor=key.prefix,
        route=_rule(),
    )
    count = sum(len(document[name]) for name, _ in batching.EXPORT_TABLES)
    return document, count


@bp.delete("/customers/<provider>/<customer>")
def erase_customer(provider: str, customer: str) -> Response:
    """Erase a customer: delete methods and subscriptions, unlink kept transactions."""
    key: ApiKey | None = None
    try:
        key = auth.authorize(ERASE_SCOPE)
        _subject(provider, customer)
        accounts = _accounts(key)
    except StorageUnavailable:
        raise
    except GatewayError as exc:
        try:
            with _store().writing() as conn:
                audit_log.append(
                    conn,
                    actor=auth.actor(),
                    action="customers.erase",
                    route=_rule(),
                    outcome=exc.code,
                )
        except StorageUnavailable:
            log.warning("audit entry for a refused erasure could not be written")
        raise
    erasure = privacy_erasure.erase(
        _store(),
        provider=provider,
        customer=customer,
        accounts=accounts,
        # The configured endpoints are tombstoned too, as `paysieve erase` does: a late
        # event may arrive on an account that never held the customer's rows.
        settings=current_app.extensions["paysieve.settings"],
        actor=key.prefix,
        route=_rule(),
    )
    with _store().writing() as conn:
        keys.touch(conn, key.prefix)
    # Counts and a keyed-hash pseudonym, no stored value: nothing for the served-value check,
    # whose digit-run rule a hex digest can trip.
    return jsonify(erasure.as_dict())
