"""URL paths the sandbox answers on, named once."""

from __future__ import annotations

VIDEO_GENERATE = "/api/v2/imageToVideo/generate"
VIDEO_RESULT = "/api/v2/imageToVideo/getResult"
IMAGE_EDIT = "/api/v1/image/edit"
API_PATHS: tuple[str, ...] = (VIDEO_GENERATE, VIDEO_RESULT, IMAGE_EDIT)

SAMPLE_PHOTO = "/samples/photo.jpg"
MEDIA_PREFIX = "/media/"
CONTROL_PREFIX = "/__sandbox__/"
STAGING_PREFIX = "/staging/"
"""The sandbox's object store (`sandbox.staged`): what sandbox mode stages local images on."""


def counter_key(path: str) -> str:
    """Bucket for the per-endpoint request counter: API paths as-is, media and samples grouped."""
    if path in API_PATHS:
        return path
    if path.startswith(MEDIA_PREFIX):
        return "/media"
    if path.startswith("/samples/"):
        return "/samples"
    if path.startswith(STAGING_PREFIX):
        return "/staging"
    return "other"
