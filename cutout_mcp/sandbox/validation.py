"""Request body checks, phrased the way upstream plausibly answers.

Upstream documents no parameter-error code; the sandbox uses 4001 with a
message naming the field (see `envelope.invalid`). Rules come from the catalog
so they match what the MCP server enforces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cutout_mcp import catalog
from cutout_mcp.sandbox.envelope import NOT_FOUND, NOT_FOUND_MSG, ApiError, invalid


@dataclass(frozen=True)
class VideoRequest:
    image_url: str
    prompt: str


@dataclass(frozen=True)
class EditRequest:
    prompt: str
    model: catalog.EditModel
    aspect_ratio: str
    image_urls: tuple[str, ...]


def _is_http_url(value: object) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object.")
    return body


def parse_video(body: Any) -> VideoRequest:
    data = _object(body)
    image_url = data.get("imageUrl")
    if image_url is None or image_url == "":
        raise invalid("imageUrl is required.")
    if not _is_http_url(image_url):
        raise invalid("imageUrl must be an http(s) URL.")
    prompt = data.get("prompt")
    if prompt is None:
        prompt = ""
    if not isinstance(prompt, str):
        raise invalid("prompt must be a string.")
    return VideoRequest(image_url=image_url, prompt=prompt)


def parse_edit(body: Any) -> EditRequest:
    data = _object(body)
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid("prompt is required.")
    model_name = data.get("model")
    if not isinstance(model_name, str) or not model_name:
        raise invalid("model is required.")
    try:
        model = catalog.edit_model(model_name)
    except KeyError:
        supported = ", ".join(catalog.EDIT_MODEL_NAMES)
        raise invalid(f"model '{model_name}' is not supported. Supported models: {supported}.") from None
    ratio = data.get("aspectRatios")
    if not isinstance(ratio, str) or ratio not in catalog.ASPECT_RATIOS:
        allowed = ", ".join(catalog.ASPECT_RATIOS)
        raise invalid(f"aspectRatios '{ratio}' is not supported. Use one of: {allowed}.")
    urls = data.get("imageUrl")
    if not isinstance(urls, list) or len(urls) < catalog.MIN_EDIT_IMAGES:
        raise invalid("imageUrl must be a non-empty array of image URLs.")
    if not all(_is_http_url(u) for u in urls):
        raise invalid("every imageUrl entry must be an http(s) URL.")
    if len(urls) > model.max_images:
        raise invalid(f"model '{model.name}' accepts at most {model.max_images} images, got {len(urls)}.")
    return EditRequest(prompt=prompt, model=model, aspect_ratio=ratio, image_urls=tuple(urls))


def parse_job_id(raw: str | None) -> int:
    """A job id as upstream's `long`; anything else cannot name a job, so it is 4002."""
    if raw is None or not raw.strip().isdigit():
        raise ApiError(NOT_FOUND, NOT_FOUND_MSG)
    value = int(raw.strip())
    if value > catalog.MAX_JOB_ID:
        raise ApiError(NOT_FOUND, NOT_FOUND_MSG)
    return value
