"""The zero-configuration trial: a local development configuration under ``var/``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.registry import adapter_classes
from gateway.settings import DEV_CONFIG_PATH, ENVIRONMENT, Settings, config_path

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


def write_dev_config(path: Path = DEV_CONFIG_PATH) -> Path:
    """Write a development configuration with fresh secrets for every provider."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER, f'database_url = "sqlite:///{path.parent.as_posix()}/paysieve.db"', ""]
    dummy = Settings()
    for name, cls in sorted(adapter_classes().items()):
        options = cls(dummy).dev_options(path.parent)
        lines += ["[[endpoints]]", f'provider = "{name}"', 'name = "default"']
        lines += [f"{key} = {_toml(value)}" for key, value in options.items()]
        lines.append("")
    # Written private: the file holds secrets.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
