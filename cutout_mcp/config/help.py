"""`cutout-mcp --help`'s environment section, from the settings' own docstrings."""

from __future__ import annotations

from cutout_mcp.config.environment import ENV_VARS, ENVIRONMENT, FILE_VARS
from cutout_mcp.config.settings import Settings


def _field_docstrings() -> dict[str, str]:
    """Each setting's docstring, read from this module's source only when --help asks: pydantic's
    `use_attribute_docstrings` would parse the source at every start (about 40 ms)."""
    import ast
    import inspect

    body = ast.parse(inspect.getsource(Settings)).body[0]
    assert isinstance(body, ast.ClassDef)
    docs: dict[str, str] = {}
    for node, following in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


def environment_help() -> str:
    """One line per variable, from the settings' own docstrings, for `cutout-mcp --help`."""
    docs = _field_docstrings()
    lines = ["environment:"]
    for field, var in ENV_VARS.items():
        help_text = docs.get(field, "").split("\n")[0]
        scope = " (HTTP transports only)" if ENVIRONMENT[var] == "http" else ""
        lines.append(f"  {var:<32} {help_text}{scope}")
        if field in FILE_VARS:
            lines.append(f"  {FILE_VARS[field]:<32} a file holding {var} instead")
    return "\n".join(lines)
