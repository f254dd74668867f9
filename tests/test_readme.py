"""The README stays true: its tables and figures are the code's, its commands are the ones CI runs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from cutout_mcp import catalog
from cutout_mcp.catalog import model_table_markdown
from cutout_mcp.config import ENVIRONMENT, SETTING_OF, Settings
from cutout_mcp.core import downloads, preflight
from cutout_mcp.core.pace import PollPolicy
from cutout_mcp.core.storage import sqlite_db as ledger
from cutout_mcp.core.watch import HEARTBEAT_SECONDS
from cutout_mcp.sandbox import media

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MB = 1024 * 1024


def test_model_table_matches_the_catalog() -> None:
    start = README.index("<!-- model-table:start -->") + len("<!-- model-table:start -->")
    end = README.index("<!-- model-table:end -->")
    assert README[start:end].strip() == model_table_markdown()


def test_readme_starts_with_the_run_and_test_commands() -> None:
    blocks = README.split("```bash\n")[1:3]
    run, test = (block.split("\n```", 1)[0] for block in blocks)
    assert run.endswith("cutout-mcp demo")
    assert test.endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[test]'" in ci
    assert "\npytest\n" in ci, ".ci/run runs the README's test command"


def test_the_module_map_lists_every_module_of_the_tree() -> None:
    start = README.index("<!-- module-map:start -->")
    end = README.index("<!-- module-map:end -->")
    listed = re.findall(r"^\| `(cutout_mcp/[^`]+\.py)` \| (.+) \|$", README[start:end], re.MULTILINE)
    in_tree = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "cutout_mcp").rglob("*.py")
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    }
    assert {name for name, _ in listed} == in_tree, "README's module map and cutout_mcp/ differ"
    assert all(job.strip() for _, job in listed), "every module's job is stated"


def documented_variables() -> dict[str, str | None]:
    """Each CUTOUT_* variable named in the first cell of a README table row -> that row's default cell.

    Rows of a two-column table (variable, meaning) have no default cell: None.
    """
    found: dict[str, str | None] = {}
    for line in README.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("| `CUTOUT_") else []
        for name in re.findall(r"`(CUTOUT_[A-Z_]+)`", cells[0] if cells else ""):
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


@pytest.mark.parametrize("variable", sorted(ENVIRONMENT))
def test_every_variable_is_documented_with_its_real_default(variable: str) -> None:
    documented = documented_variables()
    assert variable in documented, f"{variable} is missing from the README's configuration tables"
    field = Settings.model_fields[SETTING_OF[variable]]
    expected = None if field.default_factory is not None else readme_default(field.default)
    cell = documented[variable]
    if cell is None or expected is None:
        return
    if expected == "(":
        assert cell.startswith("("), f"{variable} has no default, but the README says {cell!r}"
    else:
        assert cell == expected, f"{variable} defaults to {expected}, but the README says {cell!r}"


def test_the_ledger_durability_the_readme_states_is_the_code_s() -> None:
    pragma = re.search(r"PRAGMA synchronous = (\w+)", inspect.getsource(ledger))
    assert pragma is not None
    stated = set(re.findall(r"synchronous=(\w+)", README))
    assert stated == {pragma.group(1)}, f"README says synchronous={stated}, the ledger sets {pragma.group(1)}"


FIGURES = [
    f"(default `CUTOUT_WAIT_SECONDS`, {Settings().wait_seconds:.0f})",
    f"wait_seconds={Settings().wait_seconds:.0f}, force_new",
    f"(≤ {downloads.PREVIEW_SIDE_PX} px, ≤ {downloads.PREVIEW_MAX_BYTES // 1024} KB)",
    f"`CUTOUT_PREVIEW_SECONDS` ({Settings().preview_seconds:g} s)",
    f"at most {downloads.PREVIEW_WORKERS} images are shrunk at once",
    f"reading one of the last {downloads.SHEETS_KEPT} finished jobs again",
    f"capped ({downloads.MAX_VIDEO_BYTES // MB} MB per video, {downloads.MAX_IMAGE_BYTES // MB} MB per image, "
    f"{downloads.DOWNLOAD_SECONDS:.0f} s)",
    f"at least every {HEARTBEAT_SECONDS:g} s",
    f"({PollPolicy().min_interval:.0f}–{PollPolicy().max_interval:.0f} s)",
    f"({PollPolicy().seconds_per_queued_job:.0f} s until two reads",
    f"at most {preflight.HEAD_BYTES // 1024} KB, {preflight.TIMEOUT_SECONDS:.0f} s",
    f"every redirect (at most {preflight.MAX_REDIRECTS})",
    f"a {media.SAMPLE_SIZE[0]}×{media.SAMPLE_SIZE[1]} JPEG",
    f"at least {catalog.SEEDREAM_SIZE_RULES.min_pixels:,} pixels",
    f"Prompts are limited to {catalog.MAX_PROMPT_CHARS:,} characters",
    f"`CUTOUT_MAX_REQUEST_BODY` (bytes, default {Settings().max_request_body_size // MB} MiB)",
]


@pytest.mark.parametrize("figure", FIGURES)
def test_figures_in_the_readme_are_read_from_the_code(figure: str) -> None:
    assert figure in " ".join(README.split()), f"the README should say {figure!r} (the code's figure)"
