"""Served media is real: Pillow/PyAV open it and its shape matches what the API said."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
import respx
from PIL import Image

from cutout_mcp import catalog
from cutout_mcp.sandbox import ManualClock, SandboxConfig, SandboxState, create_app
from cutout_mcp.sandbox.media import av_available

from .helpers import BASE, EDIT, GENERATE, RESULT, SAMPLE, edit_body

pytestmark = pytest.mark.anyio


def image_of(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


async def finished_job(client: httpx.AsyncClient, clock: ManualClock, image_url: str, prompt: str) -> dict[str, Any]:
    job_id = (await client.post(GENERATE, json={"imageUrl": image_url, "prompt": prompt})).json()["data"]
    clock.advance(60)
    data: dict[str, Any] = (await client.get(RESULT, params={"id": job_id})).json()["data"]
    assert data["status"] == 1
    return data


async def test_the_sample_photo_meets_every_models_rules(client: httpx.AsyncClient) -> None:
    """The sample the sandbox instructions offer must be usable with every edit model and for a video."""
    response = await client.get("/samples/photo.jpg")
    assert response.headers["content-type"] == "image/jpeg"
    image = image_of(response.content)
    assert image.format == "JPEG"
    width, height = image.size
    for model in catalog.EDIT_MODELS:
        if model.size_rules is not None:
            assert model.size_rules.violations(width, height, len(response.content)) == [], model.name
    assert catalog.VIDEO_MIN_SIDE_PX <= min(width, height) <= max(width, height) <= catalog.VIDEO_MAX_SIDE_PX
    assert len(response.content) <= catalog.MAX_IMAGE_BYTES


async def test_video_and_cover_are_real_and_match_the_reported_size(
    client: httpx.AsyncClient, clock: ManualClock, state: SandboxState
) -> None:
    data = await finished_job(client, clock, SAMPLE, "slow zoom")
    cover = image_of((await client.get(data["cover"])).content)
    assert cover.format == "JPEG"
    assert cover.size == (data["width"], data["height"])

    response = await client.get(data["resultUrl"])
    assert response.status_code == 200
    if state.video_ext == "mp4":
        av = pytest.importorskip("av", reason="PyAV missing: pip install -e '.[test]'")
        assert data["resultUrl"].endswith(".mp4")
        assert response.headers["content-type"] == "video/mp4"
        with av.open(io.BytesIO(response.content)) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == (data["width"], data["height"])
            assert sum(1 for _ in container.decode(video=0)) >= 12
    else:
        assert data["resultUrl"].endswith(".gif")
        gif = image_of(response.content)
        assert gif.format == "GIF"
        assert gif.n_frames >= 12


async def test_gif_fallback_is_an_animated_gif(clock: ManualClock) -> None:
    state = SandboxState(SandboxConfig(clock=clock, video_format="gif", fetch_remote=False))
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers={"APIKEY": "sandbox-key"}) as c:
        # an unreachable source: the video is drawn over a placeholder showing the prompt
        data = await finished_job(c, clock, "https://unreachable.invalid/cat.png", "a cat on a skateboard")
        assert data["resultUrl"].endswith(".gif")
        gif = image_of((await c.get(data["resultUrl"])).content)
    assert gif.format == "GIF"
    assert gif.n_frames == 24
    assert gif.size == (data["width"], data["height"])
    assert gif.info.get("loop") == 0


@pytest.mark.skipif(not av_available(), reason="PyAV missing: pip install -e '.[test]'")
async def test_mp4_is_chosen_when_pyav_is_installed(state: SandboxState) -> None:
    assert state.video_ext == "mp4"


@pytest.mark.parametrize(
    ("ratio", "expected"), [("16:9", 16 / 9), ("9:16", 9 / 16), ("1:1", 1.0), ("4:3", 4 / 3), ("original", 4 / 3)]
)
async def test_edited_image_has_the_requested_aspect_ratio(
    client: httpx.AsyncClient, ratio: str, expected: float
) -> None:
    assert ratio in catalog.ASPECT_RATIOS
    data = (await client.post(EDIT, json=edit_body(aspectRatios=ratio))).json()["data"]
    response = await client.get(data["imageUrl"])
    assert response.headers["content-type"] == "image/jpeg"
    image = image_of(response.content)
    assert image.format == "JPEG"
    assert image.width / image.height == pytest.approx(expected, rel=0.01)


async def test_edited_image_visibly_differs_from_the_source(client: httpx.AsyncClient) -> None:
    data = (await client.post(EDIT, json=edit_body(aspectRatios="original"))).json()["data"]
    edited = image_of((await client.get(data["imageUrl"])).content).convert("RGB")
    source = image_of((await client.get("/samples/photo.jpg")).content).convert("RGB").resize(edited.size)
    diff = sum(abs(a - b) for a, b in zip(edited.getpixel((500, 100)), source.getpixel((500, 100)), strict=True))
    assert diff > 40


async def test_media_is_cached_after_first_request(client: httpx.AsyncClient) -> None:
    data = (await client.post(EDIT, json=edit_body())).json()["data"]
    first = (await client.get(data["imageUrl"])).content
    assert (await client.get(data["imageUrl"])).content == first


async def test_unknown_media_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/media/edit/123456789012345.jpg")).status_code == 404
    assert (await client.get("/media/other/1.jpg")).status_code == 404


@respx.mock(assert_all_mocked=False)
async def test_remote_sources_are_fetched_with_a_size_cap(clock: ManualClock, respx_mock: respx.MockRouter) -> None:
    wide = io.BytesIO()
    Image.new("RGB", (600, 300), (10, 200, 10)).save(wide, format="PNG")
    respx_mock.get("https://img.example/wide.png").respond(200, content=wide.getvalue())
    respx_mock.get("https://img.example/huge.png").respond(200, content=b"\0" * (catalog.MAX_IMAGE_BYTES + 1))
    respx_mock.get("https://img.example/gone.png").respond(404)

    state = SandboxState(SandboxConfig(clock=clock, fetch_remote=True, fetch_timeout=2.0))
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers={"APIKEY": "sandbox-key"}) as c:
        sizes = {}
        for name in ("wide", "huge", "gone"):
            body = edit_body(aspectRatios="original", imageUrl=[f"https://img.example/{name}.png"])
            data = (await c.post(EDIT, json=body)).json()["data"]
            sizes[name] = image_of((await c.get(data["imageUrl"])).content).size
    assert sizes["wide"] == (600, 300), "a fetched source keeps its own ratio and size"
    assert sizes["huge"] == (960, 720), "over 10 MB: placeholder instead"
    assert sizes["gone"] == (960, 720)


def test_auto_format_falls_back_to_gif_without_pyav(clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cutout_mcp.sandbox.state.av_available", lambda: False)
    assert SandboxState(SandboxConfig(clock=clock)).video_ext == "gif"
    with pytest.raises(ValueError, match="PyAV"):
        SandboxState(SandboxConfig(clock=clock, video_format="mp4"))
