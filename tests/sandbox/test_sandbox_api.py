"""The three endpoints answer in upstream's envelope, field names and error codes."""

from __future__ import annotations

import re

import httpx
import pytest

from cutout_mcp import catalog
from cutout_mcp.sandbox import SandboxState

from .helpers import EDIT, GENERATE, RESULT, SAMPLE, edit_body

pytestmark = pytest.mark.anyio

ENVELOPE_KEYS = {"code", "data", "msg", "time", "requestId"}
VIDEO_KEYS = {
    "id", "userId", "imageUrl", "originalPrompt", "resultUrl", "cover", "width", "height",
    "status", "percentage", "waitNumber", "createdAt",
}  # fmt: skip
EDIT_KEYS = {
    "id", "userId", "imageUrl", "prompt", "model", "aspectRatios", "referenceImageUrl",
    "status", "failReason", "deleted", "duration", "createdAt",
}  # fmt: skip
NOT_FOUND_MSG = "No results were found for the current ID. Please check if the ID input is incorrect."


def assert_envelope(body: dict[str, object], code: int = 0) -> None:
    assert set(body) == ENVELOPE_KEYS
    assert body["code"] == code
    assert isinstance(body["time"], int)
    assert isinstance(body["requestId"], str)
    assert re.fullmatch(r"[0-9a-f]{32}", body["requestId"])


async def test_generate_returns_a_15_digit_job_id_and_charges_video_credits(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    response = await client.post(GENERATE, json={"imageUrl": SAMPLE, "prompt": "slow zoom"})
    body = response.json()
    assert response.status_code == 200
    assert_envelope(body)
    assert body["msg"] is None
    assert isinstance(body["data"], int)
    assert len(str(body["data"])) == 15
    assert state.charges == 1
    assert state.credits_spent == catalog.VIDEO_CREDITS
    assert state.balance == state.config.balance - catalog.VIDEO_CREDITS


async def test_get_result_has_the_documented_fields(client: httpx.AsyncClient, state: SandboxState) -> None:
    job_id = (await client.post(GENERATE, json={"imageUrl": SAMPLE, "prompt": "p"})).json()["data"]
    body = (await client.get(RESULT, params={"id": job_id})).json()
    assert_envelope(body)
    data = body["data"]
    assert set(data) == VIDEO_KEYS
    assert data["id"] == job_id
    assert data["userId"] == state.config.user_id
    assert data["imageUrl"] == SAMPLE
    assert data["originalPrompt"] == "p"
    assert data["status"] == 0
    assert data["resultUrl"] is None
    assert data["cover"] is None
    assert data["createdAt"] == int(state.clock.now() * 1000)


async def test_prompt_is_optional_for_video(client: httpx.AsyncClient) -> None:
    job_id = (await client.post(GENERATE, json={"imageUrl": SAMPLE})).json()["data"]
    data = (await client.get(RESULT, params={"id": job_id})).json()["data"]
    assert data["originalPrompt"] == ""


@pytest.mark.parametrize("job_id", ["123456789012345", "abc", "", "99999999999999999999999"])
async def test_unknown_or_malformed_id_is_4002(client: httpx.AsyncClient, job_id: str) -> None:
    response = await client.get(RESULT, params={"id": job_id})
    body = response.json()
    assert response.status_code == 200
    assert_envelope(body, code=4002)
    assert body["data"] is None
    assert body["msg"] == NOT_FOUND_MSG


async def test_edit_returns_the_documented_object_and_charges_the_model_price(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    model = catalog.edit_model("gemini-3-pro-image-preview")
    response = await client.post(EDIT, json=edit_body(model=model.name, aspectRatios="original"))
    body = response.json()
    assert_envelope(body)
    data = body["data"]
    assert set(data) == EDIT_KEYS
    assert len(str(data["id"])) == 15
    assert data["status"] == 1
    assert data["failReason"] is None
    assert data["deleted"] == 0
    assert re.fullmatch(r"\d+\.\d\d", data["duration"])
    assert data["model"] == model.name
    assert data["aspectRatios"] == "original"
    assert data["referenceImageUrl"] == [SAMPLE]
    assert data["imageUrl"].startswith("http://testserver/media/edit/")
    assert state.credits_spent == model.credits
    assert state.charges == 1


@pytest.mark.parametrize("key", [None, "wrong-key"])
async def test_missing_or_wrong_key_is_401_with_an_envelope(
    client: httpx.AsyncClient, state: SandboxState, key: str | None
) -> None:
    headers = {"APIKEY": key} if key else {}
    client.headers.pop("APIKEY")
    response = await client.post(GENERATE, json={"imageUrl": SAMPLE}, headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert_envelope(body, code=401)
    assert "API key is invalid" in body["msg"]
    assert state.charges == 0


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"prompt": "  "}, "prompt is required"),
        ({"model": "dall-e-9"}, "model 'dall-e-9' is not supported"),
        ({"aspectRatios": "2:1"}, "aspectRatios '2:1' is not supported"),
        ({"imageUrl": []}, "imageUrl must be a non-empty array"),
        ({"imageUrl": ["ftp://host/a.jpg"]}, "http(s) URL"),
        ({"model": "qwen-image-edit-plus", "imageUrl": [SAMPLE] * 4}, "at most 3 images, got 4"),
    ],
)
async def test_edit_validation_answers_4001_and_charges_nothing(
    client: httpx.AsyncClient, state: SandboxState, overrides: dict[str, object], fragment: str
) -> None:
    body = (await client.post(EDIT, json=edit_body(**overrides))).json()
    assert_envelope(body, code=4001)
    assert fragment in body["msg"]
    assert state.charges == 0


async def test_six_images_are_accepted_where_the_catalog_allows_six(client: httpx.AsyncClient) -> None:
    assert catalog.edit_model("gpt-image-1").max_images == 6
    body = (await client.post(EDIT, json=edit_body(model="gpt-image-1", imageUrl=[SAMPLE] * 6))).json()
    assert body["code"] == 0


@pytest.mark.parametrize("payload", [{}, {"imageUrl": "not-a-url"}, {"imageUrl": SAMPLE, "prompt": 3}])
async def test_video_validation_answers_4001(
    client: httpx.AsyncClient, state: SandboxState, payload: dict[str, object]
) -> None:
    body = (await client.post(GENERATE, json=payload)).json()
    assert_envelope(body, code=4001)
    assert state.charges == 0


async def test_non_json_body_answers_4001(client: httpx.AsyncClient) -> None:
    response = await client.post(GENERATE, content=b"imageUrl=x", headers={"Content-Type": "text/plain"})
    assert response.json()["code"] == 4001
