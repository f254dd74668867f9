"""The README and docs/ stay true: their tables and figures are the code's, the README's commands are the
ones CI runs, the settings are the ones `cutout-mcp --help` lists, and every relative link resolves."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cutout_mcp import catalog
from cutout_mcp.catalog import model_table_markdown
from cutout_mcp.config import ENVIRONMENT, SETTING_OF, Settings
from cutout_mcp.core.inputs import preflight
from cutout_mcp.core.jobs.pace import PollPolicy
from cutout_mcp.core.jobs.watch import HEARTBEAT_SECONDS
from cutout_mcp.core.outputs import downloads
from cutout_mcp.core.storage import sqlite_db as ledger
from cutout_mcp.sandbox import media

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()
PAGES = {path.name: path.read_text() for path in sorted(DOCS.glob("*.md"))}
CONFIGURATION = PAGES["configuration.md"]
MB = 1024 * 1024


def page(name: str) -> str:
    return README if name == "README.md" else PAGES[name]


def test_model_table_matches_the_catalog() -> None:
    tools = PAGES["tools.md"]
    start = tools.index("<!-- model-table:start -->") + len("<!-- model-table:start -->")
    end = tools.index("<!-- model-table:end -->")
    assert tools[start:end].strip() == model_table_markdown()


def test_readme_starts_with_the_run_and_test_commands() -> None:
    blocks = README.split("```bash\n")[1:3]
    run, test = (block.split("\n```", 1)[0] for block in blocks)
    assert run.endswith("cutout-mcp demo")
    assert test.endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[test]'" in ci
    assert "\npytest\n" in ci, ".ci/run runs the README's test command"


def test_the_module_map_lists_every_module_of_the_tree() -> None:
    architecture = PAGES["architecture.md"]
    start = architecture.index("<!-- module-map:start -->")
    end = architecture.index("<!-- module-map:end -->")
    listed = re.findall(r"^\| `(cutout_mcp/[^`]+\.py)` \| (.+) \|$", architecture[start:end], re.MULTILINE)
    in_tree = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "cutout_mcp").rglob("*.py")
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    }
    assert {name for name, _ in listed} == in_tree, "docs/architecture.md's module map and cutout_mcp/ differ"
    assert all(job.strip() for _, job in listed), "every module's job is stated"


def documented_variables(text: str) -> dict[str, str | None]:
    """Each CUTOUT_* (or staging AWS_*) variable named in the first cell of a table row -> that row's
    default cell.

    Rows of a two-column table (variable, meaning) have no default cell: None.
    """
    found: dict[str, str | None] = {}
    for line in text.splitlines():
        is_row = line.startswith(("| `CUTOUT_", "| `AWS_"))
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if is_row else []
        for name in re.findall(r"`((?:CUTOUT|AWS)_[A-Z_]+)`", cells[0] if cells else ""):
            found[name] = cells[1].strip("`") if len(cells) >= 3 else None
    return found


def readme_default(value: object) -> str | None:
    """How the configuration table writes a default; None when it is computed (a per-platform folder)."""
    if value is None or value == ():
        return "("  # "(none)", "(no limit)"...
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    return None


def check_default(variable: str, cell: str | None, where: str) -> None:
    field = Settings.model_fields[SETTING_OF[variable]]
    expected = None if field.default_factory is not None else readme_default(field.default)
    if cell is None or expected is None:
        return
    if expected == "(":
        assert cell.startswith("("), f"{variable} has no default, but {where} says {cell!r}"
    else:
        assert cell == expected, f"{variable} defaults to {expected}, but {where} says {cell!r}"


@pytest.mark.parametrize("variable", sorted(ENVIRONMENT))
def test_every_variable_is_documented_with_its_real_default(variable: str) -> None:
    documented = documented_variables(CONFIGURATION)
    assert variable in documented, f"{variable} is missing from docs/configuration.md"
    check_default(variable, documented[variable], "docs/configuration.md")


def test_the_readme_s_settings_are_real_with_their_real_defaults() -> None:
    documented = documented_variables(README)
    assert 5 <= len(documented) <= 12, "the README lists the settings most people need, not all of them"
    for variable, cell in documented.items():
        assert variable in ENVIRONMENT, f"the README documents {variable}, which the server does not read"
        check_default(variable, cell, "the README")


def help_text() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cutout_mcp", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_the_configuration_page_has_exactly_the_settings_and_flags_of_help() -> None:
    shown = help_text()
    in_help = set(re.findall(r"^\s+((?:CUTOUT|AWS)_[A-Z_]+)\s", shown, re.MULTILINE))
    assert set(ENVIRONMENT) <= in_help, "every variable the settings read is in --help"
    in_page = set(documented_variables(CONFIGURATION))
    assert in_help - in_page == set(), "docs/configuration.md lacks variables --help lists"
    assert in_page - in_help == set(), "docs/configuration.md documents variables --help does not list"
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", shown)) - {"--help"}
    missing = {flag for flag in flags if f"`{flag}`" not in CONFIGURATION}
    assert missing == set(), f"docs/configuration.md lacks the flags {sorted(missing)}"


def test_the_ledger_durability_the_docs_state_is_the_code_s() -> None:
    pragma = re.search(r"PRAGMA synchronous = (\w+)", inspect.getsource(ledger))
    assert pragma is not None
    stated = set(re.findall(r"synchronous=(\w+)", " ".join([README, *PAGES.values()])))
    assert stated == {pragma.group(1)}, f"the docs say synchronous={stated}, the ledger sets {pragma.group(1)}"


FIGURES = [
    ("long-jobs.md", f"(default `CUTOUT_WAIT_SECONDS`, {Settings().wait_seconds:.0f})"),
    ("tools.md", f"wait_seconds={Settings().wait_seconds:.0f}, force_new"),
    ("long-jobs.md", f"(≤ {downloads.PREVIEW_SIDE_PX} px, ≤ {downloads.PREVIEW_MAX_BYTES // 1024} KB)"),
    ("long-jobs.md", f"`CUTOUT_PREVIEW_SECONDS` ({Settings().preview_seconds:g} s)"),
    ("long-jobs.md", f"at most {downloads.PREVIEW_WORKERS} images are shrunk at once"),
    ("long-jobs.md", f"reading one of the last {downloads.SHEETS_KEPT} finished jobs again"),
    (
        "long-jobs.md",
        f"capped ({downloads.MAX_VIDEO_BYTES // MB} MB per video, {downloads.MAX_IMAGE_BYTES // MB} MB per image, "
        f"{downloads.DOWNLOAD_SECONDS:.0f} s)",
    ),
    ("long-jobs.md", f"at least every {HEARTBEAT_SECONDS:g} s"),
    ("long-jobs.md", f"({PollPolicy().min_interval:.0f}–{PollPolicy().max_interval:.0f} s)"),
    ("long-jobs.md", f"({PollPolicy().seconds_per_queued_job:.0f} s until two reads"),
    ("long-jobs.md", f"`CUTOUT_TASK_LEASE_SECONDS` ({Settings().task_lease_seconds:.0f} s)"),
    ("security.md", f"at most {preflight.HEAD_BYTES // 1024} KB, {preflight.TIMEOUT_SECONDS:.0f} s"),
    ("security.md", f"every redirect (at most {preflight.MAX_REDIRECTS})"),
    ("security.md", f"`CUTOUT_MAX_REQUEST_BODY` (bytes, default {Settings().max_request_body_size // MB} MiB)"),
    ("sandbox.md", f"a {media.SAMPLE_SIZE[0]}×{media.SAMPLE_SIZE[1]} JPEG"),
    ("sandbox.md", f"at least {catalog.SEEDREAM_SIZE_RULES.min_pixels:,} pixels"),
    ("tools.md", f"Prompts are limited to {catalog.MAX_PROMPT_CHARS:,} characters"),
    ("README.md", f"| `CUTOUT_WAIT_SECONDS` | default {Settings().wait_seconds:.0f}, 0–600 |"),
]


@pytest.mark.parametrize(("where", "figure"), FIGURES)
def test_figures_in_the_docs_are_read_from_the_code(where: str, figure: str) -> None:
    assert figure in " ".join(page(where).split()), f"{where} should say {figure!r} (the code's figure)"


# --- links ---------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def anchors(text: str) -> set[str]:
    """The anchors GitHub makes for a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", re.sub(r"```.*?```", "", text, flags=re.DOTALL), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def relative_links() -> list[tuple[str, str]]:
    found = [("README.md", target) for target in LINK.findall(README)]
    found += [(f"docs/{name}", target) for name, text in PAGES.items() for target in LINK.findall(text)]
    return [(source, target) for source, target in found if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]


def test_the_docs_are_found_and_linked() -> None:
    assert relative_links(), "the link check found links to check"
    for name in PAGES:
        assert f"](docs/{name})" in README, f"README's Documentation section links docs/{name}"
    assert len(README.splitlines()) <= 300, "the README stays a short front door"


@pytest.mark.parametrize(("source", "target"), relative_links())
def test_every_relative_link_resolves(source: str, target: str) -> None:
    path, _, anchor = target.partition("#")
    file = (ROOT / source).parent / path if path else ROOT / source
    assert file.exists(), f"{source} links {target}, which does not exist"
    if anchor and file.suffix == ".md":
        assert anchor in anchors(file.read_text()), f"{source} links {target}: no heading makes #{anchor}"


# --- snippets: each works from this repository ------------------------------------------------------

SNIPPET_PAGES = {"README.md": README, **{f"docs/{name}": text for name, text in PAGES.items()}}
RELEASED_FORM = re.compile(r"uvx cutout-mcp|\"command\": \"uvx\"|pip install '?cutout-mcp\b")
"""A command that needs cutout-mcp on PyPI."""
CHECKOUT_FORM = re.compile(r"\.venv/bin/cutout-mcp|pip install (?:-e )?'?\.(?:\[|'|\s|$)")
"""The same, from a checkout: the venv's command, or the package installed from `.`."""
NEARBY_LINES = 12
EXTRAS_INSTALLED = re.compile(r"pip install (?:-e )?'(?:cutout-mcp|\.)\[([\w,-]+)\]'")
REPO_PATH = re.compile(r"(?<![\w./-])((?:cutout_mcp|tests|bench|examples|docs|deploy|\.ci)/[\w./-]*[\w/])")
MADE_BY_RUNS = {"tests/browser/artifacts/", "deploy/secrets.env"}
"""Paths the docs name that a run or the operator makes (never committed)."""
VENV_TOOLS = {"pip", "python", "pytest", "ruff", "mypy"}


def pyproject() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.mark.parametrize("where", sorted(SNIPPET_PAGES))
def test_every_released_install_has_a_checkout_form_beside_it(where: str) -> None:
    lines = SNIPPET_PAGES[where].splitlines()
    for number, line in enumerate(lines):
        if RELEASED_FORM.search(line):
            around = "\n".join(lines[max(0, number - NEARBY_LINES) : number + NEARBY_LINES + 1])
            assert CHECKOUT_FORM.search(around), (
                f"{where}:{number + 1} says {line.strip()!r}, which works only after a release: "
                "give the form that works from a checkout beside it"
            )


def test_the_extras_the_docs_and_messages_install_exist() -> None:
    sources = [*SNIPPET_PAGES.values(), *(path.read_text() for path in (ROOT / "cutout_mcp").rglob("*.py"))]
    named = {extra for text in sources for group in EXTRAS_INSTALLED.findall(text) for extra in group.split(",")}
    declared = set(pyproject()["project"]["optional-dependencies"])
    assert {"postgres", "staging"} <= named, "the docs name the extras the optional features need"
    assert named <= declared, f"the docs or messages install extras pyproject.toml lacks: {sorted(named - declared)}"


def test_the_checkout_commands_name_real_programs() -> None:
    scripts = set(pyproject()["project"]["scripts"])
    named = {name for text in SNIPPET_PAGES.values() for name in re.findall(r"\.venv/bin/([\w-]+)", text)}
    assert "cutout-mcp" in named
    assert named <= scripts | VENV_TOOLS, f"no such program in the venv: {sorted(named - scripts - VENV_TOOLS)}"


def test_every_path_into_the_repository_the_docs_name_exists() -> None:
    named = {(where, path) for where, text in SNIPPET_PAGES.items() for path in REPO_PATH.findall(text)}
    assert len(named) > 50, "the check finds the paths the docs name"
    missing = sorted(
        f"{where}: {path}" for where, path in named if path not in MADE_BY_RUNS and not (ROOT / path).exists()
    )
    assert missing == [], "the docs name paths that do not exist"
