"""Layers: each package imports only those below it, and no sibling modules import each other."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


@pytest.mark.parametrize("contract", ["layers", "acyclic"])
def test_import_contract_is_kept(contract: str) -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--contract", contract],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_gateway_package_has_a_layer() -> None:
    layers = _contracts()["layers"]["layers"]
    assert isinstance(layers, list)
    named = {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}
    packages = {f"gateway.{path.parent.name}" for path in (ROOT / "gateway").glob("*/__init__.py")}
    modules = {f"gateway.{path.stem}" for path in (ROOT / "gateway").glob("*.py")}
    missing = sorted((packages | modules) - {"gateway.__init__"} - named)
    assert not missing, f"pyproject.toml [tool.importlinter] layers do not name {missing}"
