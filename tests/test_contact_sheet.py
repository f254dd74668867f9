"""A finished video comes with a contact sheet the assistant can look at; every result stays far below
the 1 MB some clients allow a tool result."""

from __future__ import annotations

import base64
import importlib.util
import io
import random
from pathlib import Path

import httpx
import pytest
import respx
from mcp_types import CallToolResult
from PIL import Image

from cutout_mcp import catalog
from cutout_mcp.config import Settings
from cutout_mcp.core.outputs import contact_sheet as sheets
from cutout_mcp.core.outputs import downloads
from cutout_mcp.core.outputs.contact_sheet import NoContactSheet, contact_sheet

from .conftest import FakeClock, connect, envelope, video_job

pytestmark = pytest.mark.anyio

HAS_AV = importlib.util.find_spec("av") is not None
needs_av = pytest.mark.skipif(not HAS_AV, reason="PyAV missing: pip install -e '.[test]'")

RESULT = "/api/v2/imageToVideo/getResult"
EDIT = "/api/v1/image/edit"
JOB_ID = 700842286474565
VIDEO_URL = "https://cdn.example.com/v.mp4"
COVER_URL = "https://cdn.example.com/c.jpg"
FPS = 12
SIZE = (320, 240)
TOOL_RESULT_LIMIT = 1024 * 1024
"""The largest tool result some clients accept."""


def shade(index: int, count: int) -> tuple[int, int, int]:
    """Frame `index` of `count` is a flat colour going from blue to red: its place in time shows."""
    red = round(255 * index / (count - 1))
    return (red, 40, 255 - red)


def frames(count: int, noisy: bool = False) -> list[Image.Image]:
    if noisy:  # noise defeats JPEG compression: the hardest case for the byte bound
        rng = random.Random(3)
        return [Image.frombytes("RGB", SIZE, rng.randbytes(SIZE[0] * SIZE[1] * 3)) for _ in range(count)]
    return [Image.new("RGB", SIZE, shade(i, count)) for i in range(count)]


def mp4(images: list[Image.Image], keyframe_every: int = 250) -> bytes:
    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.gop_size = keyframe_every
        for image in images:
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def gif(images: list[Image.Image]) -> bytes:
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=round(1000 / FPS), loop=0)
    return out.getvalue()


def cell_colours(jpeg: bytes) -> list[tuple[int, ...]]:
    """The colour at the middle of each of the sheet's four cells, in reading order."""
    with Image.open(io.BytesIO(jpeg)) as sheet:
        assert sheet.format == "JPEG"
        w, h = sheet.size
        rgb = sheet.convert("RGB")
        return [rgb.getpixel((x * w // 4, y * h // 4)) for y in (1, 3) for x in (1, 3)]  # type: ignore[misc]


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 24) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def check_bounds(jpeg: bytes) -> tuple[int, int]:
    assert len(jpeg) <= sheets.SHEET_MAX_BYTES
    with Image.open(io.BytesIO(jpeg)) as sheet:
        assert max(sheet.size) <= sheets.SHEET_SIDE_PX
        return sheet.size


# --- the sheet ------------------------------------------------------------------------------


@needs_av
@pytest.mark.parametrize("keyframe_every", [1, FPS, 250], ids=["all-key", "key-each-second", "one-key"])
def test_an_mp4_sheet_shows_four_evenly_spaced_frames(keyframe_every: int) -> None:
    count = 4 * FPS  # four seconds
    jpeg = contact_sheet(mp4(frames(count), keyframe_every))
    assert check_bounds(jpeg) == (512, 384)  # 2×2 cells of 255×191, 2 px apart
    expected = [shade(round(i * (count - 1) / 3), count) for i in range(4)]  # first, a third, two thirds, last
    assert all(close(got, want) for got, want in zip(cell_colours(jpeg), expected, strict=True)), cell_colours(jpeg)


def test_a_gif_sheet_shows_four_evenly_spaced_frames() -> None:
    count = 2 * FPS
    jpeg = contact_sheet(gif(frames(count)))
    check_bounds(jpeg)
    expected = [shade(round(i * (count - 1) / 3), count) for i in range(4)]
    assert all(close(got, want, 40) for got, want in zip(cell_colours(jpeg), expected, strict=True))


@needs_av
def test_the_sheet_is_read_from_a_local_file_too(tmp_path: Path) -> None:
    path = tmp_path / "video-1.mp4"
    path.write_bytes(mp4(frames(FPS)))
    check_bounds(contact_sheet(path))
    path = tmp_path / "video-2.gif"
    path.write_bytes(gif(frames(FPS)))
    check_bounds(contact_sheet(path))


@pytest.mark.parametrize("kind", ["gif", pytest.param("mp4", marks=needs_av)])
def test_the_sheet_stays_within_its_bounds_for_noise(kind: str) -> None:
    noise = frames(8, noisy=True)
    check_bounds(contact_sheet(gif(noise) if kind == "gif" else mp4(noise)))


@pytest.mark.parametrize(
    "data",
    [b"", b"<html>not a video</html>", b"\x00\x00\x00\x18ftypmp42" + bytes(4000), b"GIF89a" + bytes(100)],
    ids=["empty", "html", "broken-mp4", "broken-gif"],
)
def test_what_is_not_a_readable_video_gives_no_sheet(data: bytes) -> None:
    with pytest.raises(NoContactSheet):
        contact_sheet(data)


@needs_av
def test_a_cut_off_mp4_gives_no_sheet_rather_than_an_error() -> None:
    whole = mp4(frames(FPS))
    with pytest.raises(NoContactSheet):
        contact_sheet(whole[: len(whole) // 2])


def test_without_pyav_an_mp4_gives_no_sheet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sheets, "av_available", lambda: False)
    with pytest.raises(NoContactSheet, match="PyAV"):
        contact_sheet(b"\x00\x00\x00\x18ftypmp42" + bytes(100))


# --- in the tool results ------------------------------------------------------------------------


def images_of(result: CallToolResult) -> list[bytes]:
    return [base64.b64decode(block.data) for block in result.content if block.type == "image"]


def serve(upstream: respx.MockRouter, video: bytes, cover: bytes | None = None) -> tuple[respx.Route, respx.Route]:
    upstream.get(RESULT).respond(json=envelope(video_job(status=1)))
    cover_route = upstream.get(COVER_URL).respond(
        content=cover if cover is not None else picture((60, 40)), headers={"content-type": "image/jpeg"}
    )
    kind = "image/gif" if video.startswith(b"GIF") else "video/mp4"
    return upstream.get(VIDEO_URL).respond(content=video, headers={"content-type": kind}), cover_route


def serve_failing_once(upstream: respx.MockRouter) -> respx.Route:
    """A finished job whose video fails to download (503) on the first try and comes as a GIF after."""
    upstream.get(RESULT).respond(json=envelope(video_job(status=1)))
    video = upstream.get(VIDEO_URL)
    video.side_effect = [
        httpx.Response(503),
        httpx.Response(200, content=gif(frames(FPS)), headers={"content-type": "image/gif"}),
    ]
    return video


def picture(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 10)).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize("kind", ["gif", pytest.param("mp4", marks=needs_av)])
async def test_a_finished_video_comes_with_its_contact_sheet(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter, kind: str
) -> None:
    video = gif(frames(FPS)) if kind == "gif" else mp4(frames(FPS))
    fetched, _ = serve(upstream, video)
    async with connect(settings, mode, clock) as client:
        result = await client.call_tool("get_video_result", {"id": JOB_ID})
    assert result.is_error is False
    (sheet,) = images_of(result)
    assert check_bounds(sheet) == (512, 384)
    assert [block.type for block in result.content] == ["text", "resource_link", "image"]
    assert fetched.call_count == 1


async def test_reading_a_finished_video_again_reuses_its_sheet(
    settings: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    fetched, _ = serve(upstream, gif(frames(FPS)))
    async with connect(settings, "auto", clock) as client:
        first = await client.call_tool("get_video_result", {"id": JOB_ID})
        again = await client.call_tool("get_video_result", {"id": JOB_ID})
    assert images_of(first) == images_of(again)
    assert len(images_of(again)) == 1
    assert fetched.call_count == 1  # the video was fetched and decoded once


async def test_a_sheet_that_could_not_be_made_is_tried_again_on_the_next_read(
    settings: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    video = serve_failing_once(upstream)
    upstream.get(COVER_URL).respond(status_code=503)
    async with connect(settings, "auto", clock) as client:
        first = await client.call_tool("get_video_result", {"id": JOB_ID})
        again = await client.call_tool("get_video_result", {"id": JOB_ID})
    assert images_of(first) == []
    (sheet,) = images_of(again)
    assert check_bounds(sheet) == (512, 384)
    assert video.call_count == 2


async def test_a_cover_shown_for_a_failed_fetch_does_not_stand_in_for_the_sheet_later(
    settings: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    serve_failing_once(upstream)
    upstream.get(COVER_URL).respond(content=picture((60, 40)), headers={"content-type": "image/jpeg"})
    async with connect(settings, "auto", clock) as client:
        first = await client.call_tool("get_video_result", {"id": JOB_ID})
        again = await client.call_tool("get_video_result", {"id": JOB_ID})
    (cover,) = images_of(first)
    with Image.open(io.BytesIO(cover)) as shown:
        assert shown.size == (60, 40)
    (sheet,) = images_of(again)
    assert check_bounds(sheet) == (512, 384)


@needs_av
async def test_a_saved_video_is_sheeted_from_the_local_copy(
    settings: Settings, clock: FakeClock, upstream: respx.MockRouter, tmp_path: Path
) -> None:
    saving = settings.model_copy(update={"output_dir": tmp_path / "out"})
    fetched, _ = serve(upstream, mp4(frames(FPS)))
    async with connect(saving, "auto", clock) as client:
        result = await client.call_tool("get_video_result", {"id": JOB_ID})
    (sheet,) = images_of(result)
    assert check_bounds(sheet) == (512, 384)
    assert fetched.call_count == 1  # the download that saved it; the sheet read the file


async def test_without_frames_the_cover_is_shown(
    settings: Settings,
    clock: FakeClock,
    upstream: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(sheets, "av_available", lambda: False)  # an MP4 without the 'video' extra
    serve(upstream, b"\x00\x00\x00\x18ftypmp42" + bytes(1000), cover=picture((60, 40)))
    with caplog.at_level("INFO", logger="cutout_mcp.core.outputs.downloads"):
        async with connect(settings, "auto", clock) as client:
            result = await client.call_tool("get_video_result", {"id": JOB_ID})
    (cover,) = images_of(result)
    with Image.open(io.BytesIO(cover)) as shown:
        assert shown.size == (60, 40)
    assert f"No contact sheet for video job {JOB_ID}" in caplog.text
    assert "showing its cover" in caplog.text


async def test_a_video_over_the_preview_cap_is_not_fetched_whole(
    settings: Settings, clock: FakeClock, upstream: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloads, "PREVIEW_FETCH_BYTES", 1000)
    serve(upstream, gif(frames(FPS)))
    async with connect(settings, "auto", clock) as client:
        result = await client.call_tool("get_video_result", {"id": JOB_ID})
    (cover,) = images_of(result)
    with Image.open(io.BytesIO(cover)) as shown:
        assert shown.size == (60, 40)


@pytest.mark.parametrize(
    "cover",
    [
        httpx.Response(200, content=b"not a picture", headers={"content-type": "image/jpeg"}),
        httpx.Response(503),
    ],
    ids=["undecodable", "unreachable"],
)
async def test_when_nothing_can_be_shown_the_result_still_arrives(
    settings: Settings,
    clock: FakeClock,
    upstream: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    cover: httpx.Response,
) -> None:
    upstream.get(RESULT).respond(json=envelope(video_job(status=1)))
    upstream.get(VIDEO_URL).respond(status_code=404)
    upstream.get(COVER_URL).mock(return_value=cover)
    with caplog.at_level("INFO", logger="cutout_mcp.core.outputs.downloads"):
        async with connect(settings, "auto", clock) as client:
            result = await client.call_tool("get_video_result", {"id": JOB_ID})
    assert result.is_error is False
    assert result.structured_content is not None
    assert result.structured_content["result_url"] == VIDEO_URL
    assert images_of(result) == []
    assert "showing its cover" not in caplog.text  # no line claims a cover the result does not carry
    assert "its cover could not be shown either" in caplog.text


async def test_previews_off_means_no_sheet_and_no_fetch(
    settings: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    fetched, cover = serve(upstream, gif(frames(FPS)))
    async with connect(settings.model_copy(update={"preview": False}), "auto", clock) as client:
        result = await client.call_tool("get_video_result", {"id": JOB_ID})
    assert images_of(result) == []
    assert fetched.call_count == cover.call_count == 0


async def test_an_unfinished_video_has_no_sheet(
    settings: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.get(RESULT).respond(json=envelope(video_job(percentage=50)))
    async with connect(settings, "auto", clock) as client:
        result = await client.call_tool("get_video_result", {"id": JOB_ID})
    assert images_of(result) == []


# --- the largest result ------------------------------------------------------------------------


async def test_the_largest_results_stay_well_under_the_1_mb_tool_result_limit(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    # The worst case for each paid tool: the longest arguments the schema allows, and pictures of noise,
    # which JPEG cannot compress, so the inline image is as large as its bound lets it be.
    long_url = "https://img.example.com/" + "a" * (catalog.MAX_URL_CHARS - 40) + ".png"
    urls = [long_url.replace("aaaa", f"{n:04}", 1) for n in range(catalog.MAX_EDIT_IMAGES)]
    prompt = "p" * catalog.MAX_PROMPT_CHARS
    noise = Image.frombytes("RGB", (1400, 1400), random.Random(5).randbytes(1400 * 1400 * 3))
    noisy_png = io.BytesIO()
    noise.save(noisy_png, "PNG")
    edited = {
        "id": 789012345678901,
        "imageUrl": "https://cdn.example.com/edit.png",
        "prompt": prompt,
        "model": "gpt-image-1",
        "aspectRatios": "original",
        "referenceImageUrl": urls,
        "status": 1,
        "createdAt": 1763547221159,
    }
    upstream.post(EDIT).respond(json=envelope(edited))
    upstream.get("https://cdn.example.com/edit.png").respond(content=noisy_png.getvalue())
    serve(upstream, mp4(frames(8, noisy=True)) if HAS_AV else gif(frames(8, noisy=True)))
    async with connect(settings, mode, clock) as client:
        edit = await client.call_tool("edit_image", {"prompt": prompt, "image_urls": urls, "model": "gpt-image-1"})
        video = await client.call_tool("get_video_result", {"id": JOB_ID})
    sizes: dict[str, int] = {}
    for name, result in (("edit_image", edit), ("get_video_result", video)):
        assert result.is_error is False
        assert len(images_of(result)) == 1
        sizes[name] = len(result.model_dump_json(by_alias=True, exclude_none=True).encode())
    assert max(sizes.values()) <= TOOL_RESULT_LIMIT // 2, sizes
    assert min(sizes.values()) > 100 * 1024, "the worst case was reached: large pictures"
