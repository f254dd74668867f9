"""One readable sentence per rejected argument, instead of pydantic's report.

The SDK validates tool arguments against the schema and answers with
pydantic's multi-line text (error types, documentation links, the rejected
value). `describe_invalid_arguments` turns that into what a person or a model
can act on: which argument, which rule, and a short excerpt of what was sent.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from cutout_mcp import catalog
from cutout_mcp.core.inputs.image_sources import data_uri_too_large

RULES = {
    "image_url": "must be an http(s) URL of a public image, an absolute local path, a file:// URI, "
    "a data:image/jpeg|png;base64 URI or an upload: reference",
    "image_urls": f"must be a list of {catalog.MIN_EDIT_IMAGES} to {catalog.MAX_EDIT_IMAGES} images "
    "(https:// URLs, local paths, data: URIs or upload: references)",
    "image_urls[]": f"must be an https:// URL of a public {' or '.join(catalog.EDIT_IMAGE_FORMATS)} image, an "
    "absolute local path, a file:// URI, a data:image/jpeg|png;base64 URI or an upload: reference",
    "id": "must be a positive integer job id (or a string of digits) below 2^63",
}
"""The rule to state for arguments whose raw pydantic message says little."""


def describe_invalid_arguments(tool: str, error: ValidationError) -> str:
    parts: list[str] = []
    seen: set[str] = set()
    for detail in error.errors():
        where = _location(detail)
        if where in seen:
            continue
        seen.add(where)
        oversized = _oversized_data_uri(detail, where)
        parts.append(oversized or f"{where}: {_rule(detail, where)}{_excerpt(detail)}")
    return f"Invalid arguments for {tool}: " + "; ".join(parts) + "."


def _oversized_data_uri(detail: ErrorDetails, where: str) -> str | None:
    """A data: URI past the schema's length names the decoded 10 MB rule, as the server's own check does."""
    value = detail.get("input")
    if detail["type"] != "string_too_long" or not where.startswith("image_url"):
        return None
    if not isinstance(value, str) or value.lstrip()[:5].lower() != "data:":
        return None
    return str(data_uri_too_large(where, len(value))).removesuffix(".")


def _location(detail: ErrorDetails) -> str:
    """`image_urls[0]` from ('image_urls', 0); union branch names are dropped."""
    text = ""
    for part in detail["loc"]:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not text:
            text = part
        elif part.startswith(("constrained-", "function-")) or part in ("int", "str", "float", "list"):
            continue
        else:
            text += f".{part}"
    return text or "arguments"


def _rule(detail: ErrorDetails, where: str) -> str:
    name = where.split("[", 1)[0].split(".", 1)[0] + ("[]" if where.endswith("]") else "")
    kind = detail["type"]
    if kind == "missing":
        return "is required"
    if name in RULES and kind in ("string_pattern_mismatch", "int_parsing", "string_type", "int_type", "url_parsing"):
        return RULES[name]
    if name in RULES and kind in ("int_from_float", "bool_type", "greater_than_equal", "less_than_equal"):
        return RULES[name]
    message = detail["msg"]
    return message[0].lower() + message[1:] if message else "is invalid"


def _excerpt(detail: ErrorDetails) -> str:
    if detail["type"] == "missing":
        return ""
    given = detail.get("input")
    value = repr(given[:61] if isinstance(given, str) else given)  # never the repr of a 14 MB string
    return f" (got {value[:60]}{'…' if len(value) > 60 else ''})"
