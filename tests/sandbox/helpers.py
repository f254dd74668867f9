"""Constants and request builders shared by the sandbox tests."""

from __future__ import annotations

BASE = "http://testserver"
SAMPLE = f"{BASE}/samples/photo.jpg"
GENERATE = "/api/v2/imageToVideo/generate"
RESULT = "/api/v2/imageToVideo/getResult"
EDIT = "/api/v1/image/edit"


def edit_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "prompt": "make it autumn",
        "model": "gemini-2.5-flash-image",
        "aspectRatios": "16:9",
        "imageUrl": [SAMPLE],
    }
    body.update(overrides)
    return body
