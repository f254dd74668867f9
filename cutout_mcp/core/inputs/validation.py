"""Argument rules that a JSON schema cannot hold, checked before anything is sent.

The schema already bounds lengths, counts and enums; this module adds what
depends on several arguments at once (qwen-image-edit-plus takes at most 3
images) or on parsing (a URL must have a host, no credentials, the right
scheme). Every failure names the argument and the rule.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from cutout_mcp import catalog
from cutout_mcp.errors import CutoutMcpError

_WHITESPACE = re.compile(r"\s")
"""Any Unicode whitespace (as `str.isspace`); a compiled search is cheaper than testing each character."""


class InvalidArgumentError(CutoutMcpError, ValueError):
    """A tool argument breaks a documented rule; nothing was sent or charged."""


def url_pattern(*, https_only: bool, trusted_origins: tuple[str, ...] = ()) -> str:
    """The schema pattern for an image URL: scheme, then no whitespace."""
    return "^(" + _url_prefixes(https_only, trusted_origins) + r")[^\s]+$"


def _url_prefixes(https_only: bool, trusted_origins: tuple[str, ...]) -> str:
    alternatives = ["https://" if https_only else "https?://"]
    alternatives += [re.escape(origin.rstrip("/")) + "/" for origin in trusted_origins]
    return "|".join(alternatives)


def image_pattern(*, https_only: bool, trusted_origins: tuple[str, ...] = ()) -> str:
    """The schema pattern for an image argument: a URL as `url_pattern` says, an absolute local path
    (`/…`, `~…`, `C:\\…`, `\\\\server\\…`; spaces allowed), a `file:` URI, a JPEG/PNG `data:` URI or
    an `upload:` reference (`core.inputs.image_sources` parses each)."""
    urls = _url_prefixes(https_only, trusted_origins)
    others = [
        r"(" + urls + r")[^\s]+",
        r"data:image/(jpeg|jpg|png);base64,[A-Za-z0-9+/=]+",
        r"upload:[^\s]+",
        r"file:[^\s]+",
        r"(/|~|[A-Za-z]:[\\/]|\\\\)[^\n\r]*",
    ]
    return "^(" + "|".join(others) + ")$"


def check_image_url(url: str, argument: str, *, https_only: bool, trusted_origins: tuple[str, ...] = ()) -> str:
    """Return the URL stripped of surrounding space, or raise naming the rule it breaks."""
    url = url.strip()
    if not url:
        raise InvalidArgumentError(f"{argument} is empty: give the image's http(s) URL.")
    if len(url) > catalog.MAX_URL_CHARS:
        raise InvalidArgumentError(f"{argument} is longer than {catalog.MAX_URL_CHARS} characters.")
    if _WHITESPACE.search(url):
        raise InvalidArgumentError(f"{argument} contains whitespace; URL-encode it.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise InvalidArgumentError(f"{argument} is not a valid URL ({exc}).") from exc
    trusted = any(url.startswith(origin.rstrip("/") + "/") for origin in trusted_origins)
    if parts.scheme not in ("http", "https"):
        raise InvalidArgumentError(
            f"{argument} must be an http(s) URL that cutout.pro can fetch; {parts.scheme or 'no'} scheme given."
        )
    if https_only and parts.scheme != "https" and not trusted:
        raise InvalidArgumentError(f"{argument} must use https: the Image Edit API only fetches HTTPS URLs.")
    if not parts.hostname:
        raise InvalidArgumentError(f"{argument} has no host name.")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgumentError(f"{argument} must not carry a user name or password.")
    return url


def check_prompt(prompt: str | None, argument: str = "prompt", *, required: bool) -> str | None:
    text = (prompt or "").strip()
    if not text:
        if required:
            raise InvalidArgumentError(f"{argument} is empty: describe the edit you want.")
        return None
    if len(text) > catalog.MAX_PROMPT_CHARS:
        raise InvalidArgumentError(f"{argument} has {len(text)} characters; the limit is {catalog.MAX_PROMPT_CHARS}.")
    return text


def check_edit_images(model_name: str, image_urls: list[str]) -> catalog.EditModel:
    """The model's entry, once the number of images fits it."""
    try:
        model = catalog.edit_model(model_name)
    except KeyError:
        raise InvalidArgumentError(
            f"model {model_name!r} is unknown; use one of: {', '.join(catalog.EDIT_MODEL_NAMES)}."
        ) from None
    count = len(image_urls)
    if count < catalog.MIN_EDIT_IMAGES:
        raise InvalidArgumentError("image_urls is empty: give at least one image URL.")
    if count > model.max_images:
        raise InvalidArgumentError(f"image_urls has {count} images, but {model.name} takes at most {model.max_images}.")
    return model


def parse_job_id(value: int | str) -> int:
    """Job ids are positive 64-bit integers; digit strings are accepted too."""
    if isinstance(value, bool):
        raise InvalidArgumentError("id must be a job id (a positive integer), not a boolean.")
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii() or not text.isdigit():
            raise InvalidArgumentError(f"id must be a positive integer job id; {value[:40]!r} is not.")
        number = int(text)
    else:
        number = value
    if not 1 <= number <= catalog.MAX_JOB_ID:
        raise InvalidArgumentError(f"id must be between 1 and {catalog.MAX_JOB_ID} (a 64-bit job id).")
    return number
