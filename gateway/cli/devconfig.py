"""The zero-configuration trial: a local development configuration under ``var/``."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.registry import adapter_classes
from gateway.config.settings import (
    DEV_CONFIG_PATH,
    ENVIRONMENT,
    Settings,
    config_path,
    dev_config_path,
)
from gateway.core.crypto import generate_key

# The database the trial writes into its configuration (relative: read against the home),
# and the only one `serve` migrates unasked (gateway.cli.serve).
DEV_DATABASE_URL = f"sqlite:///{DEV_CONFIG_PATH.parent.as_posix()}/paysieve.db"


def is_dev_database(settings: Settings) -> bool:
    """Return whether the settings name the trial's own database in the trial's home."""
    if not settings.home:
        return False
    own = Path(settings.home) / DEV_CONFIG_PATH.parent / "paysieve.db"
    return settings.database_url == f"sqlite:///{own}"


HEADER = """\
# Local development configuration, made by `paysieve serve` because no
# configuration existed. Its secrets were generated on this machine and sign
# only `paysieve simulate` traffic. Never deploy it: write config/paysieve.toml
# (see config/paysieve.example.toml) or set PAYSIEVE_* variables instead.
"""


def needs_dev_config(environ: Mapping[str, str] | None = None) -> bool:
    """Return whether nothing at all is configured (no file, no PAYSIEVE_* variables)."""
    environ = os.environ if environ is None else environ
    if config_path(environ) is not None:
        return False
    return not any(environ.get(name) for name in ENVIRONMENT)


def ensure_dev_config(environ: Mapping[str, str] | None = None) -> str | None:
    """Write or complete the development configuration when it is the one in use.

    Returns what was done, for the command line to print, or None.
    """
    environ = os.environ if environ is None else environ
    dev = dev_config_path(environ)
    if dev is None:
        return None
    if needs_dev_config(environ):
        path = dev
        added = write_config(path, database_url=DEV_DATABASE_URL)
        return (
            f"No configuration found: wrote a development configuration to {path} with freshly "
            f"generated secrets for {', '.join(added)} (never deploy it)."
        )
    if config_path(environ) == dev:
        keyed = _add_missing_keys(dev)
        added = _add_missing_providers(dev)
        if keyed:
            added.append("encryption at rest")
        if added:
            return f"Added development endpoints for {', '.join(added)} to {dev}."
    return None


def write_config(path: Path, *, database_url: str) -> list[str]:
    """Write a configuration with a fresh endpoint for every provider; return the providers."""
    _write(path, [HEADER, f'database_url = "{database_url}"', *_key_lines()])
    return _add_missing_providers(path)


def _key_lines() -> list[str]:
    """Return fresh encryption-at-rest keys as top-level TOML lines."""
    return [
        "# Encryption at rest: data keys (the first encrypts) and the blind index key.",
        f"data_keys = [{_toml(generate_key())}]",
        f"index_key = {_toml(generate_key())}",
    ]


def _add_missing_keys(path: Path) -> bool:
    """Add data keys to a development configuration written before they existed."""
    text = path.read_text(encoding="utf-8")
    existing = tomllib.loads(text)
    if existing.get("data_keys") or existing.get("index_key"):
        return False
    lines = text.rstrip("\n").split("\n")
    # Top-level keys must come before the first [[endpoints]] table.
    at = next((i for i, line in enumerate(lines) if line.startswith("[")), len(lines))
    _write(path, [*lines[:at], *_key_lines(), *lines[at:]])
    return True


def _add_missing_providers(path: Path) -> list[str]:
    """Append a default endpoint, with fresh secrets, for each provider the file lacks."""
    existing = tomllib.loads(path.read_text(encoding="utf-8")).get("endpoints", [])
    configured = {entry.get("provider") for entry in existing}
    lines: list[str] = []
    added: list[str] = []
    dummy = Settings()
    for name, cls in sorted(adapter_classes().items()):
        if name in configured:
            continue
        options = cls(dummy).dev_options(path.parent)
        lines += ["", "[[endpoints]]", f'provider = "{name}"', 'name = "default"']
        lines += [f"{key} = {_toml(value)}" for key, value in options.items()]
        added.append(name)
    if added:
        _write(path, [path.read_text(encoding="utf-8").rstrip("\n"), *lines])
    return added


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written private: the file holds secrets.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
