"""Results people can open: local copies in CUTOUT_OUTPUT_DIR, resource links, and the edit preview."""

from __future__ import annotations

import base64
import io
import random
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx
from PIL import Image

from cutout_mcp.config import Settings
from cutout_mcp.core.outputs import downloads
from cutout_mcp.core.outputs.downloads import DownloadError, Downloads, make_preview

from .conftest import FakeClock, connect, envelope, video_job

pytestmark = pytest.mark.anyio

RESULT = "/api/v2/imageToVideo/getResult"
EDIT = "/api/v1/image/edit"
JOB_ID = 700842286474565
EDIT_ID = 789012345678901
VIDEO_URL = "https://cdn.example.com/v.mp4"
COVER_URL = "https://cdn.example.com/c.jpg"
EDITED_URL = "https://cdn.example.com/edit.png"
VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64


def picture(width: int, height: int, fmt: str = "PNG", noisy: bool = False) -> bytes:
    image = Image.new("RGB", (width, height), (40, 120, 200))
    if noisy:  # noise defeats JPEG compression: the hardest case for the preview's byte bound
        image = Image.frombytes("RGB", (width, height), random.Random(7).randbytes(width * height * 3))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "videos"


@pytest.fixture
def saving(settings: Settings, out_dir: Path) -> Settings:
    return settings.model_copy(update={"output_dir": out_dir})


def finished_job(upstream: respx.MockRouter, **extra: Any) -> None:
    upstream.get(RESULT).respond(json=envelope(video_job(status=1, **extra)))


def serve_video(upstream: respx.MockRouter) -> respx.Route:
    upstream.get(COVER_URL).respond(content=picture(64, 64, "JPEG"), headers={"content-type": "image/jpeg"})
    return upstream.get(VIDEO_URL).respond(content=VIDEO_BYTES, headers={"content-type": "video/mp4"})


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def content(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def inside(folder: Path, name: str) -> Path:
    return folder.resolve() / name


def links(result: Any) -> list[Any]:
    return [block for block in result.content if block.type == "resource_link"]


def edit_answer(url: str = EDITED_URL) -> dict[str, Any]:
    data = {
        "id": EDIT_ID,
        "imageUrl": url,
        "model": "gpt-image-1",
        "aspectRatios": "original",
        "referenceImageUrl": ["https://img.example.com/cat.jpg"],
        "status": 1,
        "createdAt": 1763547221159,
    }
    return envelope(data)


EDIT_ARGS = {"prompt": "make it blue", "image_urls": ["https://img.example.com/cat.jpg"], "model": "gpt-image-1"}


async def test_a_finished_video_is_saved_and_linked(
    saving: Settings, out_dir: Path, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    finished_job(upstream)
    video = serve_video(upstream)
    async with connect(saving, mode, clock) as client:
        result = await client.call_tool("get_video_result", {"id": JOB_ID})
        again = await client.call_tool("get_video_result", {"id": JOB_ID})
    assert result.is_error is False
    data = result.structured_content
    assert data is not None
    local = Path(data["local_path"])
    assert local == inside(out_dir, f"video-{JOB_ID}.mp4")
    assert content(local) == VIDEO_BYTES
    assert content(data["cover_local_path"])[:2] == b"\xff\xd8"
    assert data["result_url"] == VIDEO_URL  # the remote link is still there
    assert str(local) in data["message"]
    uris = [link.uri for link in links(result)]
    assert uris == [local.as_uri(), Path(data["cover_local_path"]).as_uri()]
    assert links(result)[0].mime_type == "video/mp4"
    assert names(out_dir) == [f"video-{JOB_ID}-cover.jpg", f"video-{JOB_ID}.mp4"]
    assert again.structured_content is not None
    assert again.structured_content["local_path"] == str(local)
    assert video.call_count == 1  # the second read reuses the finished copy


async def test_a_failed_download_keeps_the_remote_result(
    saving: Settings, out_dir: Path, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    finished_job(upstream)
    upstream.get(VIDEO_URL).respond(status_code=503)
    upstream.get(COVER_URL).mock(side_effect=httpx.ConnectError("refused"))
    async with connect(saving, mode, clock) as client:
        result = await client.call_tool("get_video_result", {"id": JOB_ID})
    assert result.is_error is False
    data = result.structured_content
    assert data is not None
    assert data["status"] == "succeeded"
    assert data["result_url"] == VIDEO_URL
    assert data["local_path"] is None
    assert "failed (HTTP 503)" in data["message"]
    assert "result_url still works until it expires" in data["message"]
    assert [link.uri for link in links(result)] == [VIDEO_URL]
    assert names(out_dir) == []  # no partial file left behind


async def test_an_oversized_download_is_refused_and_leaves_nothing(
    saving: Settings, out_dir: Path, clock: FakeClock, upstream: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloads, "MAX_VIDEO_BYTES", 1000)
    finished_job(upstream, cover="")
    upstream.get(VIDEO_URL).respond(content=VIDEO_BYTES, headers={"content-type": "video/mp4"})
    async with connect(saving, "auto", clock) as client:
        result = await client.call_tool("get_video_result", {"id": JOB_ID})
    data = result.structured_content
    assert data is not None
    assert data["local_path"] is None
    assert "cap" in data["message"]
    assert names(out_dir) == []


async def test_names_come_from_the_id_never_from_the_url(
    saving: Settings, out_dir: Path, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    evil = "https://cdn.example.com/a/%2e%2e/%2e%2e/..%2F..%2Fhome%2Fx%2F.bashrc"
    finished_job(upstream, resultUrl=evil, cover="")
    upstream.route(host="cdn.example.com").respond(content=b"#!/bin/sh\n", headers={})
    async with connect(saving, "auto", clock) as client:
        result = await client.call_tool("get_video_result", {"id": JOB_ID})
    data = result.structured_content
    assert data is not None
    assert Path(data["local_path"]) == inside(out_dir, f"video-{JOB_ID}.mp4")
    assert names(out_dir) == [f"video-{JOB_ID}.mp4"]
    assert ".bashrc" not in names(out_dir.parent)


async def test_save_refuses_a_stem_that_could_leave_the_folder(out_dir: Path) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        await Downloads(out_dir).save(VIDEO_URL, "../escape", "video")
    with pytest.raises(DownloadError):
        await Downloads(out_dir).save("file:///etc/passwd", "video-1", "video")


async def test_edit_image_returns_a_small_preview_and_a_link(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(EDIT).respond(json=edit_answer())
    upstream.get(EDITED_URL).respond(content=picture(2000, 1500), headers={"content-type": "image/png"})
    async with connect(settings, mode, clock) as client:
        result = await client.call_tool("edit_image", EDIT_ARGS)
    assert result.is_error is False
    assert result.structured_content is not None
    assert result.structured_content["local_path"] is None
    (image,) = [block for block in result.content if block.type == "image"]
    assert image.mime_type == "image/jpeg"
    jpeg = base64.b64decode(image.data)
    assert len(jpeg) <= 200 * 1024
    with Image.open(io.BytesIO(jpeg)) as preview:
        assert preview.format == "JPEG"
        assert preview.size == (512, 384)
    assert [link.uri for link in links(result)] == [EDITED_URL]


async def test_a_saved_edit_is_previewed_from_the_local_copy(
    saving: Settings, out_dir: Path, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(EDIT).respond(json=edit_answer())
    png = picture(800, 600)
    fetch = upstream.get(EDITED_URL).respond(content=png, headers={"content-type": "image/png"})
    async with connect(saving, "auto", clock) as client:
        result = await client.call_tool("edit_image", EDIT_ARGS)
    data = result.structured_content
    assert data is not None
    local = Path(data["local_path"])
    assert local == inside(out_dir, f"edit-{EDIT_ID}.png")
    assert content(local) == png
    assert [link.uri for link in links(result)] == [local.as_uri()]
    assert [block.type for block in result.content].count("image") == 1
    assert fetch.call_count == 1


async def test_an_edit_whose_image_cannot_be_fetched_still_returns(
    settings: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(EDIT).respond(json=edit_answer())
    upstream.get(EDITED_URL).respond(status_code=404)
    async with connect(settings, "auto", clock) as client:
        result = await client.call_tool("edit_image", EDIT_ARGS)
    assert result.is_error is False
    assert result.structured_content is not None
    assert result.structured_content["image_url"] == EDITED_URL
    assert [block.type for block in result.content] == ["text", "resource_link"]


def test_the_preview_stays_small_even_for_noisy_images() -> None:
    jpeg = make_preview(picture(1024, 1024, noisy=True))
    assert len(jpeg) <= downloads.PREVIEW_MAX_BYTES
    with Image.open(io.BytesIO(jpeg)) as preview:
        assert max(preview.size) <= downloads.PREVIEW_SIDE_PX


def test_a_transparent_png_previews_on_white() -> None:
    out = io.BytesIO()
    Image.new("RGBA", (100, 100), (0, 0, 0, 0)).save(out, "PNG")
    with Image.open(io.BytesIO(make_preview(out.getvalue()))) as preview:
        assert preview.convert("RGB").getpixel((50, 50)) == (255, 255, 255)


async def test_a_preview_that_takes_too_long_is_left_out_and_the_edit_returns(
    settings: Settings, clock: FakeClock, upstream: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    never = anyio.Event()

    async def stalled(request: httpx.Request) -> httpx.Response:
        await never.wait()  # a result host that accepts the connection and never answers
        raise AssertionError("unreachable")

    upstream.post(EDIT).respond(json=edit_answer())
    upstream.get(EDITED_URL).mock(side_effect=stalled)
    hurried = settings.model_copy(update={"preview_seconds": 0.05})
    with caplog.at_level("INFO", logger="cutout_mcp.core.outputs.downloads"):
        async with connect(hurried, "auto", clock) as client:
            result = await client.call_tool("edit_image", EDIT_ARGS)
    assert result.is_error is False
    assert result.structured_content is not None
    assert result.structured_content["image_url"] == EDITED_URL
    assert [block.type for block in result.content] == ["text", "resource_link"]
    assert "not ready within 0.05 s (CUTOUT_PREVIEW_SECONDS)" in caplog.text


async def test_one_download_client_serves_every_preview(
    settings: Settings, clock: FakeClock, upstream: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[httpx.AsyncClient] = []

    class Counted(httpx.AsyncClient):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            made.append(self)

    monkeypatch.setattr(httpx, "AsyncClient", Counted)
    upstream.post(EDIT).respond(json=edit_answer())
    upstream.get(EDITED_URL).respond(content=picture(300, 200, "JPEG"), headers={"content-type": "image/jpeg"})
    async with connect(settings, "auto", clock) as client:
        for _ in range(3):
            result = await client.call_tool("edit_image", EDIT_ARGS)
            assert [block.type for block in result.content] == ["text", "resource_link", "image"]
    assert len(made) == 2, "one client for cutout.pro's API (with the key), one for downloads, for the server's life"
    assert all(http.is_closed for http in made)


def test_a_large_jpeg_is_previewed_from_a_reduced_decode() -> None:
    jpeg = make_preview(picture(4000, 2250, "JPEG", noisy=True))
    with Image.open(io.BytesIO(jpeg)) as preview:
        assert preview.format == "JPEG"
        assert preview.size == (512, 288)


def test_a_jpeg_that_already_fits_is_the_preview_itself() -> None:
    small = picture(400, 300, "JPEG")
    assert make_preview(small) == small


def test_a_jpeg_with_exif_is_previewed_without_it() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: a re-encoded preview must not carry metadata on
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (40, 120, 200)).save(out, "JPEG", exif=exif)
    with Image.open(io.BytesIO(make_preview(out.getvalue()))) as preview:
        assert "exif" not in preview.info
        assert preview.size == (400, 300)


def test_a_large_jpeg_is_shrunk_for_the_preview() -> None:
    with Image.open(io.BytesIO(make_preview(picture(1024, 576, "JPEG")))) as preview:
        assert preview.format == "JPEG"
        assert preview.size == (downloads.PREVIEW_SIDE_PX, 288)
