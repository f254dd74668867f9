"""The README stays true: its model table is the catalog's, its commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

from cutout_mcp.catalog import model_table_markdown

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


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
