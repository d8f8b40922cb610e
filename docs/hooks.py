"""MkDocs hooks: render the configuration and API references from the code at build time.

A page holding ``<!-- paysieve:settings-reference -->`` (up to an optional
``<!-- /paysieve:settings-reference -->``: what stands between is for readers of the
Markdown source) gets the settings table of
``gateway.config.settings`` (names, defaults, environment variables, endpoint options);
one holding ``<!-- paysieve:api-reference -->`` gets the OpenAPI document of
``gateway.app.openapi_document()``. Nothing is fetched: both come from the installed
package. A setting without a description below stops the build, so the page cannot fall
behind the code (tests/docs/test_docs.py holds the same rule).
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mkdocs.exceptions import PluginError

SETTINGS_MARKER = "<!-- paysieve:settings-reference -->"
API_MARKER = "<!-- paysieve:api-reference -->"

# What each top-level setting does. Keys must be exactly the settings of
# gateway.config.settings (Settings' fields that the file and environment may set).
SETTING_TEXT: dict[str, str] = {
    "database_url": (
        "Where sanitised records live: SQLite (embedded, WAL) or PostgreSQL as "
        "`postgresql+psycopg://user@host:5432/db`. `postgres://`, `postgresql://`, "
        "`postgresql+psycopg2://` and `mysql://` are refused with the fix. A relative SQLite "
        "path is read against the paysieve home; a SQLite path whose directory does not exist "
        "is an error (only the default's `var/` is made on first use)."
    ),
    "tolerance_seconds": (
        "Signed timestamps (Stripe's `t=`, PayPal's transmission time) older or newer than "
        "this many seconds are refused: replay protection in both directions."
    ),
    "max_body_bytes": (
        "Bodies larger than this are refused with 413 before they are read past the limit "
        "(chunked bodies too). Keep nginx's `client_max_body_size` equal to it."
    ),
    "data_keys": (
        "Encryption keys for data at rest (AES-256-GCM): the first encrypts, all decrypt. "
        "Required: the gateway refuses to start without one. Make one with "
        "`paysieve data-keys generate`; see [encryption at rest](../privacy/encryption.md)."
    ),
    "data_keys_file": (
        "A file of data keys, one a line, read after `data_keys` (for secrets mounted as files)."
    ),
    "outbound_allow_networks": (
        "Networks (CIDR) an outbound subscriber's address may be in besides public ones: "
        "internal billing services are usually on private addresses. Checked when a "
        "subscriber is added and again at every connect (no DNS rebinding)."
    ),
    "outbound_retry_schedule": (
        "Comma-separated seconds before each attempt of an outbound delivery: the first is "
        "the first attempt, each next one is waited after a failure; when the list is used up "
        "the delivery is dead."
    ),
    "outbound_ca_bundle": (
        "A PEM bundle of the certificate authorities outbound endpoints are verified against "
        "instead of the system's (an internal CA); a relative path is read against the home."
    ),
    "index_key": (
        "The blind-index key: keyed HMAC for equality lookups on encrypted columns "
        "(customer filter, tokens, erasure tombstones). Required, different from every data "
        "key, and never rotated."
    ),
    "retention_events_days": (
        "Days an event (and its change-feed rows) is kept after receipt; "
        "`paysieve purge` deletes older ones."
    ),
    "retention_transactions_days": (
        "Days a transaction is kept after its last change (7 years by default, for accounting law)."
    ),
    "retention_payment_methods_days": (
        "Days a payment method is kept after its last change once detached, deleted or "
        "expired. Active ones are never purged by age."
    ),
    "retention_subscriptions_days": (
        "Days a subscription is kept after its last change once canceled or expired. Live "
        "ones are never purged by age."
    ),
    "retention_audit_days": (
        "Days an entry of the audit trail (`audit_log`, `privacy_log`) is kept."
    ),
    "retention_outbound_days": (
        "Days an outbound delivery row is kept once delivered (from its delivery) or dead "
        "(from its last attempt). Pending and failed ones are never purged by age."
    ),
    "log_level": "Logs are JSON lines on standard error, card numbers redacted.",
    "rate_limit": (
        "Requests each API key may make per route of the read API (clients without a valid "
        "key: per address), in flask-limiter's notation; beyond it 429 with `Retry-After`."
    ),
    "rate_limit_storage": (
        "Where the rate limits are counted: `memory://` (per process) or a store every "
        "gateway process shares, such as `redis://127.0.0.1:6379`."
    ),
    "trusted_proxy_hops": (
        "How many proxies in front append `X-Forwarded-For`/`-Proto` (1 for nginx alone, 2 "
        "for a load balancer and nginx). 0 trusts no forwarded header. Set it to exactly "
        "the number of your own hops: one more lets a client choose its address."
    ),
    "metrics_multiproc_dir": (
        "Where gunicorn workers keep their metric files so `/metrics` sums every worker; "
        "`gunicorn.conf.py` sets one. Must not hold the SQLite database."
    ),
}

# What each option of an [[endpoints]] table does (gateway.config.settings.PROVIDER_OPTIONS).
OPTION_TEXT: dict[str, str] = {
    "webhook_secrets": (
        "The provider's signing secrets for this account. Several are accepted at once "
        "during a rotation, new first. Without one the provider's route answers 404."
    ),
    "source_networks": (
        "Optional CIDRs this account's deliveries must come from; any other address gets "
        "403 `source_not_allowed` before the body is read."
    ),
    "webhook_id": (
        "The id PayPal shows for the webhook (Developer Dashboard, your REST app, Webhooks); "
        "part of what PayPal signs. Without it the endpoint is disabled."
    ),
    "verify": (
        "How PayPal deliveries are verified: `api` (the default: ask PayPal's "
        "verify-webhook-signature API) or `cert` (offline, against PayPal's certificate)."
    ),
    "api_base": (
        "The provider's API host: PayPal's for `api` mode and backfill (the sandbox is "
        "`https://api-m.sandbox.paypal.com`), Stripe's and Razorpay's for backfill and "
        "reconcile only. Must be https: anything else is refused at start."
    ),
    "client_id": "The REST app's client id (`api` mode, and backfill and reconcile).",
    "client_secret": "The REST app's client secret (`api` mode, and backfill and reconcile).",
    "api_key": (
        "Stripe, for [backfill and reconcile](../backfill.md) only: a restricted key whose one "
        "permission is Events: Read."
    ),
    "key_id": (
        "Razorpay, for [backfill and reconcile](../backfill.md) only: the API key id of a key "
        "pair given to paysieve alone."
    ),
    "key_secret": (
        "Razorpay, for [backfill and reconcile](../backfill.md) only: that key pair's secret."
    ),
    "trust_roots": (
        "`cert` mode: the PEM bundle PayPal's certificate must chain to, or `certifi` for "
        "certifi's bundle. Read at start: a bad path stops it."
    ),
    "cert_cache_dir": (
        "`cert` mode: a directory of pre-seeded certificates, one `<CERT-name>.pem` file "
        "each. Read only, never written."
    ),
    "fetch_certs": (
        "`cert` mode, file only: `true` (the default) fetches a certificate missing from "
        "`cert_cache_dir` from PayPal's API hosts; `false` never fetches (air-gapped)."
    ),
    "dev_signing_key": (
        "Written only by the development configuration: the key `paysieve simulate` signs "
        "PayPal samples with. Never set it yourself."
    ),
    "dev_cert_url": (
        "Written only by the development configuration: the certificate URL its samples "
        "name. Never set it yourself."
    ),
}

# PAYSIEVE_* variables that are not settings (gateway.config.settings.NOT_SETTINGS).
OTHER_VARIABLE_TEXT: dict[str, str] = {
    "PAYSIEVE_CONFIG": (
        "The TOML file to read instead of `config/paysieve.toml`; a missing file is an error."
    ),
    "PAYSIEVE_HOME": (
        "The paysieve home: an absolute directory holding `config/paysieve.toml`, "
        "`var/paysieve.dev.toml` and the default database, against which every relative "
        "path is read. Unset: the checkout paysieve runs from (an installed wheel has none)."
    ),
    "PAYSIEVE_TEST_DATABASE_URL": (
        "The test suite's PostgreSQL server (a private database is made on it per run); "
        "unset, the suite uses a temporary SQLite file."
    ),
    "PAYSIEVE_BENCH_POSTGRES_URL": "The PostgreSQL server `make bench` measures against.",
}

_NOT_FILE_SETTINGS = frozenset({"endpoints", "source", "home", "origins"})


class DocsReferenceError(PluginError):
    """The code and the reference texts above disagree: the build must stop."""


def _code(value: object) -> str:
    """Return a value as a Markdown code span, whatever backticks it holds."""
    text = str(value)
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _text(value: object) -> str:
    """Return Markdown text (OpenAPI descriptions are Markdown) on one line, without raw HTML.

    Code spans are kept as they are; outside them ``<``, ``>`` and ``&`` are escaped, and a
    ``|`` cannot end a table cell.
    """
    parts = " ".join(str(value).split()).split("`")
    for index in range(0, len(parts), 2):
        parts[index] = html.escape(parts[index], quote=False).replace("|", "&#124;")
    return "`".join(parts)


def _missing(kind: str, names: Iterable[str], texts: Mapping[str, str]) -> None:
    names = set(names)
    undocumented = sorted(names - set(texts))
    stale = sorted(set(texts) - names)
    if undocumented or stale:
        raise DocsReferenceError(
            f"docs/hooks.py: {kind} without a description: {', '.join(undocumented) or '-'}; "
            f"described but not in gateway/config/settings.py: {', '.join(stale) or '-'}"
        )


def _accepts(coerce: Callable[[str], Any], settings: Any) -> str:
    """Say what an environment variable accepts, from its coercer in the settings table."""
    if coerce is settings._csv:
        return "comma-separated list"
    if coerce is settings._int:
        return "positive integer"
    if coerce is settings._count:
        return "0 or a positive integer"
    if coerce is settings._str:
        return "string"
    for cell in coerce.__closure__ or ():
        choices = cell.cell_contents
        if isinstance(choices, tuple) and all(isinstance(c, str) for c in choices):
            return "one of " + ", ".join(_code(c) for c in choices)
    raise DocsReferenceError(f"docs/hooks.py cannot describe the coercer {coerce!r}")


def _toml(value: object) -> str:
    """Return a default as it would be written in the TOML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value) if not isinstance(value, int) else str(value)


_KIND_NAMES = {str: "string", int: "integer", tuple: "list of strings"}


def settings_reference() -> str:
    """Render every setting, endpoint option and PAYSIEVE_* variable as Markdown."""
    from adapters.paypal.verify_api import DEFAULT_API_BASE
    from gateway.config import settings

    fields = {
        f.name: f for f in dataclasses.fields(settings.Settings) if f.name not in _NOT_FILE_SETTINGS
    }
    if set(fields) != set(settings._TOP_LEVEL):
        raise DocsReferenceError(
            "gateway/config/settings.py: Settings' fields and _TOP_LEVEL differ: "
            + ", ".join(sorted(set(fields) ^ set(settings._TOP_LEVEL)))
        )
    _missing("settings", fields, SETTING_TEXT)
    options = {o for allowed in settings.PROVIDER_OPTIONS.values() for o in allowed}
    _missing("endpoint options", options, OPTION_TEXT)
    _missing("variables", settings.NOT_SETTINGS, OTHER_VARIABLE_TEXT)

    variables: dict[str, list[tuple[str, Callable[[str], Any]]]] = {}
    for variable, (target, coerce) in settings.ENVIRONMENT.items():
        variables.setdefault(target, []).append((variable, coerce))

    out = ["## Settings", ""]
    out.append(
        "Each setting is a top-level key of the TOML file and, where listed, an environment "
        "variable, which wins over the file."
    )
    out.append("")
    for name, field in fields.items():
        default = field.default
        if default is dataclasses.MISSING:
            default = field.default_factory()  # type: ignore[misc]
        out += [f"### {_code(name)} {{#{name}}}", ""]
        out.append(f"- file: {_code(name)}, {_KIND_NAMES[settings._TOP_LEVEL[name]]}")
        for variable, coerce in variables.get(name, []):
            out.append(f"- environment: {_code(variable)}, {_accepts(coerce, settings)}")
        if not variables.get(name):
            out.append("- environment: none (file only)")
        out.append(f"- default: {_code(_toml(default))}" + (" (not set)" if not default else ""))
        if name in settings.SECRET_SETTINGS:
            out.append("- secret: masked by `paysieve config check`, never logged")
        out += ["", SETTING_TEXT[name], ""]

    out += ["## Endpoint options", ""]
    out.append(
        "Each `[[endpoints]]` table of the TOML file configures one account of a provider: "
        "`provider` (one of "
        + ", ".join(_code(p) for p in sorted(settings.PROVIDER_OPTIONS))
        + "), `name` (default `default`; 1-64 of a-z, 0-9, _ and -; served at "
        "`/webhooks/<provider>/<name>`, the `default` one at `/webhooks/<provider>`) and the "
        "options below. The environment variables configure the endpoint named `default`."
    )
    out.append("")
    defaults = {"verify": "api", "api_base": DEFAULT_API_BASE, "fetch_certs": True}
    for option in sorted(options):
        providers = sorted(
            p for p, allowed in settings.PROVIDER_OPTIONS.items() if option in allowed
        )
        out += [f"### {_code(option)} {{#option-{option.replace('_', '-')}}}", ""]
        out.append("- providers: " + ", ".join(_code(p) for p in providers))
        envs = [
            (variable, coerce)
            for provider in providers
            for variable, coerce in variables.get(f"endpoint:{provider}:{option}", [])
        ]
        for variable, coerce in envs:
            out.append(f"- environment: {_code(variable)}, {_accepts(coerce, settings)}")
        if not envs:
            out.append("- environment: none (file only)")
        if option in defaults:
            out.append(f"- default: {_code(_toml(defaults[option]))}")
        if option in settings.SECRET_OPTIONS:
            out.append("- secret: masked by `paysieve config check`, never logged")
        out += ["", OPTION_TEXT[option], ""]

    out += ["## Other variables", ""]
    out.append(
        "These `PAYSIEVE_*` variables are not settings and are allowed; any other "
        "`PAYSIEVE_*` variable is refused with the closest valid name."
    )
    out.append("")
    out += ["| variable | meaning |", "| --- | --- |"]
    for variable in sorted(settings.NOT_SETTINGS):
        out.append(f"| {_code(variable)} | {OTHER_VARIABLE_TEXT[variable]} |")
    out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------- API reference

_SCOPE_RE = re.compile(r"\b[a-z_]+:[a-z_]+\b")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(name: str) -> str:
    return "schema-" + name.lower()


def _schema_type(schema: Mapping[str, Any]) -> str:
    """Describe a JSON schema in one line: its type, with links to named schemas."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#{_anchor(name)})"
    for combiner, word in (("allOf", " and "), ("oneOf", " or "), ("anyOf", " or ")):
        if combiner in schema:
            return word.join(_schema_type(part) for part in schema[combiner])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(str(k) for k in kind)
    if kind == "array":
        kind = "array of " + _schema_type(schema.get("items", {}))
    elif kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        if isinstance(extra, Mapping):
            kind = "object of " + _schema_type(extra)
    text = str(kind)
    if schema.get("format"):
        text += f" ({schema['format']})"
    if schema.get("nullable"):
        text += ", nullable"
    return text


def _json(value: object) -> str:
    """Return a schema value as written in JSON, a string without its quotes."""
    return value if isinstance(value, str) else json.dumps(value)


def _constraints(schema: Mapping[str, Any]) -> str:
    """Describe a JSON schema's constraints: enum, pattern, range, default."""
    parts = []
    if "enum" in schema:
        parts.append("one of " + ", ".join(_code(_json(v)) for v in schema["enum"]))
    if "pattern" in schema:
        parts.append("pattern " + _code(schema["pattern"]))
    for key, word in (("minimum", "min"), ("maximum", "max")):
        if key in schema:
            parts.append(f"{word} {schema[key]}")
    for key, word in (("minLength", "min length"), ("maxLength", "max length")):
        if key in schema:
            parts.append(f"{word} {schema[key]}")
    if "default" in schema:
        parts.append("default " + _code(_json(schema["default"])))
    return "; ".join(parts)


def _scopes(operation: Mapping[str, Any], document: Mapping[str, Any]) -> str:
    """Return the scopes an operation needs, as the document states them."""
    found: list[str] = []
    for key in ("x-scopes", "x-scope", "x-required-scopes"):
        value = operation.get(key)
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            found += [str(v) for v in value]
    security = operation.get("security", document.get("security"))
    if security == []:
        return "none: no API key"
    for requirement in security or []:
        for scopes in requirement.values():
            found += [str(s) for s in scopes]
    if not found:
        # A bearer scheme carries no scope list in OpenAPI 3.0: the 403 answer names it.
        forbidden = operation.get("responses", {}).get("403", {})
        found = _SCOPE_RE.findall(str(forbidden.get("description", "")))
    return ", ".join(_code(s) for s in dict.fromkeys(found)) or "any valid API key"


def _schema_of(content: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{_code(media)}: {_schema_type(body.get('schema', {}))}" for media, body in content.items()
    )


def api_reference(document: Mapping[str, Any]) -> str:
    """Render an OpenAPI 3 document as Markdown: every route, then every schema."""
    out: list[str] = []
    info = document.get("info", {})
    out.append(
        f"{_text(info.get('title', 'API'))}, version {_code(info.get('version', '?'))}, "
        f"OpenAPI {_code(document.get('openapi', '?'))}."
    )
    if info.get("description"):
        out += ["", _text(info["description"])]
    schemes = document.get("components", {}).get("securitySchemes", {})
    for name, scheme in schemes.items():
        out += [
            "",
            f"Authentication {_code(name)}: {_text(scheme.get('type', ''))} "
            f"{_text(scheme.get('scheme', ''))}"
            + (f" ({_code(scheme['description'])})" if scheme.get("description") else "")
            + ".",
        ]
    out += [
        "",
        "## Routes",
        "",
        "| method | path | summary | scopes |",
        "| --- | --- | --- | --- |",
    ]
    operations = []
    for path, item in document.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method in _METHODS:
            if method in item:
                operations.append((path, method, item[method], shared))
    for path, method, operation, _ in operations:
        anchor = _operation_anchor(path, method, operation)
        out.append(
            f"| {method.upper()} | [{_code(path)}](#{anchor}) | "
            f"{_text(operation.get('summary', ''))} | {_scopes(operation, document)} |"
        )
    for path, method, operation, shared in operations:
        anchor = _operation_anchor(path, method, operation)
        out += ["", f"### {_code(method.upper() + ' ' + path)} {{#{anchor}}}", ""]
        if operation.get("summary"):
            out += [_text(operation["summary"]) + ".", ""]
        if operation.get("description"):
            out += [_text(operation["description"]), ""]
        out.append(f"Scopes: {_scopes(operation, document)}.")
        if operation.get("tags"):
            out.append(" Tags: " + ", ".join(_code(t) for t in operation["tags"]) + ".")
        out.append("")
        parameters = [*shared, *operation.get("parameters", [])]
        if parameters:
            out += [
                "| parameter | in | required | type | constraints | description |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
            for parameter in parameters:
                parameter = _resolve(document, parameter)
                schema = parameter.get("schema", {})
                out.append(
                    f"| {_code(parameter.get('name', '?'))} | {parameter.get('in', '')} | "
                    f"{'yes' if parameter.get('required') else 'no'} | {_schema_type(schema)} | "
                    f"{_constraints(schema)} | {_text(parameter.get('description', ''))} |"
                )
            out.append("")
        body = operation.get("requestBody")
        if body:
            out += [
                f"Request body ({'required' if body.get('required') else 'optional'}): "
                + _schema_of(body.get("content", {})),
                "",
            ]
        out += ["| status | description | body | headers |", "| --- | --- | --- | --- |"]
        for status, response in operation.get("responses", {}).items():
            response = _resolve(document, response)
            headers = ", ".join(_code(h) for h in response.get("headers", {}))
            out.append(
                f"| {status} | {_text(response.get('description', ''))} | "
                f"{_schema_of(response.get('content', {}))} | {headers} |"
            )
    schemas = document.get("components", {}).get("schemas", {})
    if schemas:
        out += ["", "## Schemas"]
    for name, schema in schemas.items():
        out += ["", f"### {name} {{#{_anchor(name)}}}", ""]
        if schema.get("description"):
            out += [_text(schema["description"]), ""]
        properties = schema.get("properties", {})
        if not properties:
            out.append(f"Type: {_schema_type(schema)}.")
            continue
        required = set(schema.get("required", []))
        out += [
            "| field | type | required | constraints | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for field_name, field_schema in properties.items():
            out.append(
                f"| {_code(field_name)} | {_schema_type(field_schema)} | "
                f"{'yes' if field_name in required else 'no'} | {_constraints(field_schema)} | "
                f"{_text(field_schema.get('description', ''))} |"
            )
    out.append("")
    return "\n".join(out)


def _resolve(document: Mapping[str, Any], item: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return what a local ``$ref`` (``#/components/...``) points at, or the item itself."""
    ref = item.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return item
    target: Any = document
    for part in ref[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return _resolve(document, target)


def _operation_anchor(path: str, method: str, operation: Mapping[str, Any]) -> str:
    ident = operation.get("operationId") or f"{method}-{path}"
    return "op-" + "".join(c if c.isalnum() else "-" for c in str(ident).lower()).strip("-")


def _fill(markdown: str, marker: str, render: Callable[[], str]) -> str:
    """Replace a marker, and what stands between it and its end marker, with a rendering."""
    start = markdown.find(marker)
    if start < 0:
        return markdown
    end_marker = marker.replace("<!-- paysieve:", "<!-- /paysieve:")
    end = markdown.find(end_marker, start)
    end = start + len(marker) if end < 0 else end + len(end_marker)
    return markdown[:start] + render() + markdown[end:]


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace the reference markers with the references rendered from the code."""
    from gateway.app import openapi_document

    markdown = _fill(markdown, SETTINGS_MARKER, settings_reference)
    return _fill(markdown, API_MARKER, lambda: api_reference(openapi_document()))
