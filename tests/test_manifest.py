"""server.json is a valid registry manifest that matches the package."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema

import cutout_mcp
from cutout_mcp.config import ENVIRONMENT

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "tests" / "schemas" / "server.schema.2025-12-11.json"
"""The MCP registry's server.json schema, vendored (source and version in tests/schemas/README.md)."""


def manifest() -> dict:  # type: ignore[type-arg]
    return json.loads((ROOT / "server.json").read_text())


def test_manifest_validates_against_the_registry_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert manifest()["$schema"] == schema["$id"], "server.json names another schema version than the one vendored"
    jsonschema.validate(manifest(), schema, cls=jsonschema.Draft7Validator)


def test_manifest_versions_match_the_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)
    assert version is not None
    data = manifest()
    assert data["version"] == version.group(1) == cutout_mcp.__version__
    assert data["packages"][0]["version"] == version.group(1)
    assert data["packages"][0]["identifier"] == "cutout-mcp"


def test_manifest_lists_every_variable_with_the_key_as_required_secret() -> None:
    variables = {v["name"]: v for v in manifest()["packages"][0]["environmentVariables"]}
    stdio_variables = {name for name, scope in ENVIRONMENT.items() if scope != "http"}
    assert set(variables) == stdio_variables, "server.json must list every CUTOUT_* variable a stdio user can set"
    assert variables["CUTOUT_API_KEY"]["isRequired"] is True
    assert variables["CUTOUT_API_KEY"]["isSecret"] is True
    assert all(not v.get("isRequired") for name, v in variables.items() if name != "CUTOUT_API_KEY")
