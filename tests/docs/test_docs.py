"""The documentation site: references rendered from the code, a strict build, the README."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gateway.app import openapi_document
from gateway.config import settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("paysieve_docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _section(page: str, heading: str) -> str:
    """Return the text under a ### heading, up to the next heading."""
    start = page.index(heading)
    following = re.search(r"^#{2,3} ", page[start + len(heading) :], re.M)
    end = start + len(heading) + following.start() if following else len(page)
    return page[start:end]


def test_settings_reference_lists_every_setting_with_its_default(hooks: ModuleType) -> None:
    page = hooks.settings_reference()
    for field in dataclasses.fields(settings.Settings):
        if field.name in hooks._NOT_FILE_SETTINGS:
            continue
        section = _section(page, f"### `{field.name}` {{#{field.name}}}")
        default = field.default
        shown = str(default) if isinstance(default, int) else None
        if isinstance(default, str) and default:
            shown = f'"{default}"'
        if shown is not None:
            assert f"default: `{shown}`" in section, field.name
        assert hooks.SETTING_TEXT[field.name] in section
    for variable in settings.ENVIRONMENT:
        assert f"environment: `{variable}`" in page, variable
    for provider, options in settings.PROVIDER_OPTIONS.items():
        assert f"`{provider}`" in page
        for option in options:
            assert f"### `{option}`" in page, option
    for variable in settings.NOT_SETTINGS:
        assert f"| `{variable}` |" in page
    for secret in settings.SECRET_SETTINGS | settings.SECRET_OPTIONS:
        assert "secret: masked" in _section(page, f"### `{secret}`")


def test_settings_reference_shows_what_each_variable_accepts(hooks: ModuleType) -> None:
    page = hooks.settings_reference()
    assert "`PAYSIEVE_LOG_LEVEL`, one of `DEBUG`, `INFO`, `WARNING`, `ERROR`" in page
    assert "`PAYSIEVE_TRUSTED_PROXY_HOPS`, 0 or a positive integer" in page
    assert "`PAYSIEVE_STRIPE_WEBHOOK_SECRETS`, comma-separated list" in page
    assert "`PAYSIEVE_PAYPAL_VERIFY`, one of `api`, `cert`" in page


@pytest.mark.parametrize("table", ["SETTING_TEXT", "OPTION_TEXT", "OTHER_VARIABLE_TEXT"])
def test_an_undocumented_setting_stops_the_build(
    hooks: ModuleType, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts: dict[str, str] = dict(getattr(hooks, table))
    name = sorted(texts)[0]
    del texts[name]
    monkeypatch.setattr(hooks, table, texts)
    with pytest.raises(hooks.DocsReferenceError, match=f"without a description: {name}"):
        hooks.settings_reference()


def test_a_description_of_a_setting_that_is_gone_stops_the_build(
    hooks: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hooks, "SETTING_TEXT", {**hooks.SETTING_TEXT, "old_setting": "gone"})
    with pytest.raises(hooks.DocsReferenceError, match="not in gateway/config/settings.py: old_"):
        hooks.settings_reference()


def test_api_reference_lists_every_route_parameter_answer_and_schema(hooks: ModuleType) -> None:
    document = openapi_document()
    page = hooks.api_reference(document)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in hooks._METHODS:
                continue
            section = _section(page, f"### `{method.upper()} {path}`")
            for parameter in [*item.get("parameters", []), *operation.get("parameters", [])]:
                assert f"| `{parameter['name']}` | {parameter['in']} |" in section
            for status in operation["responses"]:
                assert f"\n| {status} | " in section, (path, method, status)
    for name in document["components"]["schemas"]:
        assert f"### {name} {{#schema-{name.lower()}}}" in page
    # Today's read routes name their scope in the 403 answer.
    assert "Scopes: `records:read`." in _section(page, "### `GET /v1/transactions`")


def test_api_reference_renders_scopes_bodies_and_markdown_safely(hooks: ModuleType) -> None:
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1", "description": "Send `Bearer <key>` | <b>"},
        "security": [{"bearerAuth": []}],
        "components": {
            "parameters": {"Customer": {"in": "path", "name": "customer", "required": True}},
            "responses": {"Forbidden": {"description": "the key lacks the scope"}},
        },
        "paths": {
            "/v1/customers/{provider}/{customer}": {
                "parameters": [
                    {"in": "path", "name": "provider", "required": True},
                    {"$ref": "#/components/parameters/Customer"},
                ],
                "delete": {
                    "summary": "Erase a customer",
                    "x-scopes": ["customers:erase"],
                    "parameters": [
                        {"in": "query", "name": "account", "schema": {"pattern": "^(a|b)$"}}
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/x/Body"}}},
                    },
                    "responses": {
                        "200": {"description": "the counts"},
                        "403": {"$ref": "#/components/responses/Forbidden"},
                    },
                },
            },
            "/healthz": {"get": {"security": [], "responses": {"200": {"description": "up"}}}},
            "/v1/audit-log": {
                "get": {
                    "security": [{"bearerAuth": ["audit:read"]}],
                    "responses": {"200": {"description": "entries"}},
                }
            },
        },
    }
    page = hooks.api_reference(document)
    assert "`Bearer <key>` &#124; &lt;b&gt;" in page
    assert "Scopes: `customers:erase`." in _section(page, "### `DELETE /v1/customers/")
    assert "| `provider` | path | yes |" in page
    assert "| `customer` | path | yes |" in page
    assert "| 403 | the key lacks the scope |" in page
    assert "pattern `^(a|b)$`" in page
    assert "Request body (required): `application/json`: [Body](#schema-body)" in page
    assert "Scopes: none: no API key." in page
    assert "Scopes: `audit:read`." in page


def test_the_site_builds_strict_with_both_references(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr
    reference = (tmp_path / "operators" / "settings-reference" / "index.html").read_text()
    for name in settings.ENVIRONMENT:
        assert name in reference
    api = (tmp_path / "billing" / "api-reference" / "index.html").read_text()
    for path in openapi_document()["paths"]:
        assert path in api
    assert not (tmp_path / "hooks.py").exists()


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```(?:sh|console)?\n(.*?)^```", readme, re.M | re.S)
    return [line for block in blocks for line in block.splitlines()]


def test_readme_commands_call_the_virtualenv() -> None:
    lines = _readme_commands()
    assert any(".venv/bin/paysieve simulate --list" in line for line in lines)
    for line in lines:
        if line.lstrip().startswith("#"):
            continue
        for match in re.finditer(r"(\S*)paysieve (?=[a-z-]+)", line):
            assert match.group(1).endswith(".venv/bin/"), line


def test_readme_states_the_python_the_package_requires() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    readme = (ROOT / "README.md").read_text()
    assert 'Python 3.11 or later (`requires-python = ">=3.11"`' in readme


def test_the_documents_agree_on_which_scope_exports_and_erases() -> None:
    """Export needs records:read, erasure customers:erase: no page says otherwise."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for page in pages:
        text = page.read_text()
        rows = [line for line in text.splitlines() if line.startswith("|")]
        for row in rows:
            if "customers:erase" in row:
                assert "export" not in row.lower(), f"{page.name}: {row}"
            if "/export" in row and "scope" in row:
                assert "records:read" in row, f"{page.name}: {row}"
        prose = " ".join(line for line in text.splitlines() if not line.startswith("|"))
        for sentence in re.split(r"(?<=\.)\s", prose):
            if "export" in sentence.lower() and "customers:erase" in sentence:
                assert "records:read" in sentence, f"{page.name}: {sentence}"


def test_every_link_of_the_readme_reaches_a_file() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        if "://" not in link:
            assert (ROOT / link).is_file(), link
