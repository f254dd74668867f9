"""The video and edit tools through the SDK's in-memory client, in both protocol modes."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import anyio
import httpx
import pytest
import respx

from cutout_mcp import catalog
from cutout_mcp.config import Settings

from .conftest import API_KEY, FakeClock, connect, envelope, video_job

pytestmark = pytest.mark.anyio

GENERATE = "/api/v2/imageToVideo/generate"
RESULT = "/api/v2/imageToVideo/getResult"
EDIT = "/api/v1/image/edit"
JOB_ID = 700842286474565
IMAGE = "https://img.example.com/cat.jpg"


def text_of(result: Any) -> str:
    return " ".join(block.text for block in result.content if getattr(block, "type", "") == "text")


def edit_answer(**extra: Any) -> dict[str, Any]:
    data = {
        "id": 789012345678901,
        "userId": 1,
        "imageUrl": "https://cdn.example.com/edit.jpg",
        "prompt": "make it blue",
        "model": "gpt-image-1",
        "aspectRatios": "16:9",
        "referenceImageUrl": [IMAGE.replace("http://", "https://")],
        "status": 1,
        "failReason": None,
        "deleted": 0,
        "duration": "3.5",
        "createdAt": 1763547221159,
    }
    data.update(extra)
    return envelope(data)


# --- listing ------------------------------------------------------------------


async def test_tools_are_listed_with_constraints_and_annotations(
    settings: Settings, mode: str, clock: FakeClock
) -> None:
    async with connect(settings, mode, clock) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert client.instructions
        instructions = client.instructions
    assert set(tools) == {"generate_video", "get_video_result", "edit_image", "list_video_jobs", "get_upload_url"}
    for name in tools:
        assert f"- {name}:" in instructions, f"the instructions name {name}"

    edit = tools["edit_image"].input_schema["properties"]
    assert edit["model"]["enum"] == list(catalog.EDIT_MODEL_NAMES)
    assert edit["aspect_ratio"]["enum"] == list(catalog.ASPECT_RATIOS)
    assert edit["image_urls"]["minItems"] == 1
    assert edit["image_urls"]["maxItems"] == 6
    accepts = re.compile(edit["image_urls"]["items"]["pattern"]).match
    for form in ("https://img.example.com/a.jpg", "/home/me/My Cat.jpg", "~/cat.png", "C:\\Users\\me\\cat.jpg"):
        assert accepts(form), f"the schema tells an assistant it may pass {form}"
    for form in ("file:///home/me/cat.jpg", "data:image/png;base64,iVBORw0KGgo=", "upload:uploads/ab/cat.jpg"):
        assert accepts(form), f"the schema tells an assistant it may pass {form}"
    for form in ("http://img.example.com/a.jpg", "cat.jpg", "ftp://x/a.jpg", "data:text/plain;base64,AAAA"):
        assert not accepts(form), f"the schema refuses {form}"
    assert edit["prompt"]["maxLength"] == catalog.MAX_PROMPT_CHARS
    assert tools["edit_image"].input_schema["required"] == ["prompt", "image_urls"]

    video = tools["generate_video"].input_schema["properties"]
    assert video["wait_seconds"]["maximum"] == catalog.MAX_WAIT_SECONDS
    assert video["wait_seconds"]["default"] == settings.wait_seconds
    assert "300" in video["image_url"]["description"]
    assert "6000" in video["image_url"]["description"]

    assert "5 CREDITS" in (tools["generate_video"].description or "")
    assert "gemini-3-pro-image-preview 15" in (tools["edit_image"].description or "")
    assert tools["get_video_result"].annotations.read_only_hint is True
    assert tools["generate_video"].annotations.idempotent_hint is False
    assert tools["generate_video"].annotations.open_world_hint is True
    for tool in tools.values():
        assert tool.output_schema is not None
        assert "credits_charged" in tool.output_schema["properties"]


# --- valid calls ----------------------------------------------------------------


async def test_edit_image_returns_structured_result(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    route = upstream.post(EDIT).respond(json=edit_answer())
    async with connect(settings, mode, clock) as client:
        result = await client.call_tool(
            "edit_image",
            {"prompt": "make it blue", "image_urls": [IMAGE], "model": "gpt-image-1", "aspect_ratio": "16:9"},
        )
    assert result.is_error is False
    data = result.structured_content
    assert data["image_url"] == "https://cdn.example.com/edit.jpg"
    assert data["credits_charged"] == 4
    assert data["aspect_ratio"] == "16:9"
    assert data["duration_seconds"] == 3.5
    assert json.loads(route.calls.last.request.content)["aspectRatios"] == "16:9"


async def test_generate_video_waits_until_done_with_rising_progress(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).mock(
        side_effect=[
            httpx.Response(200, json=envelope(video_job(wait_number=3))),
            httpx.Response(200, json=envelope(video_job(wait_number=1))),
            httpx.Response(200, json=envelope(video_job(wait_number=0, percentage=0))),
            httpx.Response(200, json=envelope(video_job(percentage=40))),
            httpx.Response(200, json=envelope(video_job(percentage=40))),
            httpx.Response(200, json=envelope(video_job(percentage=90))),
            httpx.Response(200, json=envelope(video_job(status=1))),
        ]
    )
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async with connect(settings, mode, clock) as client:
        result = await client.call_tool(
            "generate_video",
            {"image_url": IMAGE, "prompt": "blink", "wait_seconds": 600},
            progress_callback=on_progress,
        )
    assert result.is_error is False, text_of(result)
    job = result.structured_content
    assert job["status"] == "succeeded"
    assert job["result_url"] == "https://cdn.example.com/v.mp4"
    assert job["cover_url"] == "https://cdn.example.com/c.jpg"
    assert job["credits_charged"] == 5
    assert job["next_step"] is None
    values = [p[0] for p in progress]
    assert all(a < b for a, b in itertools.pairwise(values)), f"progress must strictly increase: {values}"
    assert values[-1] == 100
    assert all(total == 100 for _, total, _ in progress)
    assert "3 jobs ahead" in (progress[0][2] or "")
    assert any("rendering (40%" in (m or "") for _, _, m in progress)


async def test_generate_video_returns_unfinished_job_at_the_bound(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    polls = upstream.get(RESULT).respond(json=envelope(video_job(percentage=10)))
    start = clock.time
    async with connect(settings, mode, clock) as client:
        result = await client.call_tool("generate_video", {"image_url": IMAGE, "wait_seconds": 20})
    assert result.is_error is False
    job = result.structured_content
    assert job["status"] == "processing"
    assert job["id"] == JOB_ID
    assert f"id={JOB_ID}" in job["next_step"]
    assert clock.time - start == pytest.approx(20), "waits exactly up to the bound"
    assert sum(clock.sleeps) == pytest.approx(20)
    assert 2 <= polls.call_count <= 12


async def test_wait_seconds_zero_reads_once(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    polls = upstream.get(RESULT).respond(json=envelope(video_job(wait_number=4)))
    async with connect(settings, mode, clock) as client:
        result = await client.call_tool("get_video_result", {"id": str(JOB_ID)})
    assert result.structured_content["status"] == "queued"
    assert result.structured_content["credits_charged"] == 0
    assert polls.call_count == 1
    assert clock.sleeps == []


async def test_failed_job_is_an_error_naming_its_id(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(json=envelope(video_job(status=2)))
    async with connect(settings, mode, clock) as client:
        generated = await client.call_tool("generate_video", {"image_url": IMAGE})
        read = await client.call_tool("get_video_result", {"id": JOB_ID})
    for result in (generated, read):
        assert result.is_error is True
        assert str(JOB_ID) in text_of(result)
        assert "failed" in text_of(result)


async def test_unknown_upstream_status_is_not_reported_raw(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.get(RESULT).respond(json=envelope(video_job(status=3)))
    async with connect(settings, mode, clock) as client:
        result = await client.call_tool("get_video_result", {"id": JOB_ID})
    assert result.structured_content["status"] == "queued"


async def test_polling_failure_after_submit_still_names_the_job(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(503)
    async with connect(settings, mode, clock) as client:
        result = await client.call_tool("generate_video", {"image_url": IMAGE})
    assert result.is_error is True
    assert f"id={JOB_ID}" in text_of(result)
    assert "5 credits" in text_of(result)


@pytest.mark.parametrize(
    ("code", "msg", "words"),
    [
        (9011, "Image contains inappropriate content, cannot be processed.", "inappropriate"),
        (1001, "Insufficient balance", "too few credits"),
        (1001, "The server is abnormal. Please contact us.", "server problem"),
    ],
)
async def test_upstream_refusals_reach_the_client_as_tool_errors(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter, code: int, msg: str, words: str
) -> None:
    upstream.post(GENERATE).respond(json=envelope(None, code=code, msg=msg))
    async with connect(settings, mode, clock) as client:
        result = await client.call_tool("generate_video", {"image_url": IMAGE})
    assert result.is_error is True
    assert words in text_of(result)
    assert "Traceback" not in text_of(result)


async def test_unknown_job_id_reaches_the_client(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.get(RESULT).respond(json=envelope(None, code=4002, msg="No results were found for the current ID."))
    async with connect(settings, mode, clock) as client:
        result = await client.call_tool("get_video_result", {"id": 12345})
    assert result.is_error is True
    assert "no job with this id" in text_of(result)


async def test_failed_edit_names_the_reason(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(EDIT).respond(json=edit_answer(status=0, imageUrl=None, failReason="model overloaded"))
    async with connect(settings, mode, clock) as client:
        result = await client.call_tool("edit_image", {"prompt": "x", "image_urls": [IMAGE]})
    assert result.is_error is True
    assert "model overloaded" in text_of(result)


# --- bad input never reaches cutout.pro ---------------------------------------

BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("generate_video", {"image_url": "not a url"}, "image_url"),
    ("generate_video", {"image_url": "ftp://img.example.com/a.jpg"}, "image_url"),
    ("generate_video", {"image_url": "file:///etc/passwd"}, "image_url"),
    ("generate_video", {"image_url": "https://"}, "image_url"),
    ("generate_video", {"image_url": "https://user:pw@img.example.com/a.jpg"}, "user name or password"),
    ("generate_video", {"image_url": "https://img.example.com/" + "a" * 3000}, "image_url"),
    ("generate_video", {"image_url": IMAGE, "prompt": "x" * 5000}, "prompt"),
    ("generate_video", {"image_url": IMAGE, "wait_seconds": -1}, "wait_seconds"),
    ("generate_video", {"image_url": IMAGE, "wait_seconds": 100000}, "wait_seconds"),
    ("generate_video", {}, "image_url"),
    ("edit_image", {"prompt": "x", "image_urls": ["http://img.example.com/a.jpg"]}, "image_urls"),
    ("edit_image", {"prompt": "x", "image_urls": [IMAGE] * 7}, "image_urls"),
    ("edit_image", {"prompt": "x", "image_urls": []}, "image_urls"),
    ("edit_image", {"prompt": "x", "image_urls": [IMAGE] * 4, "model": "qwen-image-edit-plus"}, "at most 3"),
    ("edit_image", {"prompt": "x", "image_urls": [IMAGE], "model": "dall-e-9"}, "model"),
    ("edit_image", {"prompt": "x", "image_urls": [IMAGE], "aspect_ratio": "2:1"}, "aspect_ratio"),
    ("edit_image", {"prompt": "", "image_urls": [IMAGE]}, "prompt"),
    ("edit_image", {"prompt": "   ", "image_urls": [IMAGE]}, "prompt is empty"),
    ("edit_image", {"prompt": "x" * 2001, "image_urls": [IMAGE]}, "prompt"),
    ("edit_image", {"prompt": "x", "image_urls": "https://img.example.com/a.jpg"}, "image_urls"),
    ("get_video_result", {"id": -5}, "id"),
    ("get_video_result", {"id": 0}, "id"),
    ("get_video_result", {"id": "abc"}, "id"),
    ("get_video_result", {"id": "12a"}, "id"),
    ("get_video_result", {"id": 2**64}, "id"),
    ("get_video_result", {"id": str(2**63)}, "between 1 and"),
    ("get_video_result", {"id": "99999999999999999999999"}, "id"),
    ("get_video_result", {"id": 1.5}, "id"),
    ("get_video_result", {"id": True}, "id"),
    ("get_video_result", {"id": 5, "wait_seconds": 601}, "wait_seconds"),
]


@pytest.mark.parametrize(("tool", "arguments", "names"), BAD_CALLS)
async def test_bad_arguments_are_refused_before_any_upstream_call(
    settings: Settings,
    mode: str,
    clock: FakeClock,
    upstream: respx.MockRouter,
    tool: str,
    arguments: dict[str, Any],
    names: str,
) -> None:
    async with connect(settings, mode, clock) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error is True
    assert names in text_of(result)
    assert "Traceback" not in text_of(result)
    assert len(upstream.calls) == 0, "nothing may be sent (or charged) for invalid input"


async def test_without_a_key_tools_list_and_calls_name_the_variable(
    mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    keyless = Settings(base_url="https://api.cutout.test")
    async with connect(keyless, mode, clock) as client:
        assert len((await client.list_tools()).tools) == 5
        for tool, arguments in [
            ("generate_video", {"image_url": IMAGE}),
            ("edit_image", {"prompt": "x", "image_urls": [IMAGE]}),
            ("get_video_result", {"id": 1}),
        ]:
            result = await client.call_tool(tool, arguments)
            assert result.is_error is True
            assert "CUTOUT_API_KEY" in text_of(result)
    assert len(upstream.calls) == 0


async def test_results_never_carry_the_key(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(401, json=envelope(None, code=401, msg=f"key {API_KEY} invalid"))
    async with connect(settings, mode, clock) as client:
        result = await client.call_tool("generate_video", {"image_url": IMAGE})
    assert result.is_error is True
    assert API_KEY not in result.model_dump_json()


# --- cancellation ----------------------------------------------------------------


class BlockingClock(FakeClock):
    """Sleeps forever, and tells the test when a sleep starts and when it is cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = anyio.Event()
        self.cancelled = anyio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        try:
            await anyio.sleep_forever()
        finally:
            self.cancelled.set()


async def test_cancelling_the_call_stops_polling(settings: Settings, mode: str, upstream: respx.MockRouter) -> None:
    clock = BlockingClock()
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    polls = upstream.get(RESULT).respond(json=envelope(video_job(percentage=10)))
    async with connect(settings, mode, clock) as client:  # type: ignore[arg-type]
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "generate_video", {"image_url": IMAGE, "wait_seconds": 60})
                await clock.sleeping.wait()
                tg.cancel_scope.cancel()
            await clock.cancelled.wait()
        calls_at_cancel = polls.call_count
        await client.list_tools()  # the session still works after the cancelled call
    assert calls_at_cancel == 1
    assert polls.call_count == 1, "no poll after the call was cancelled"


async def test_unknown_tool_is_an_error(settings: Settings, mode: str, clock: FakeClock) -> None:
    async with connect(settings, mode, clock) as client:
        result = await client.call_tool("make_coffee", {})
    assert result.is_error is True


# --- prompts ------------------------------------------------------------------


@pytest.mark.parametrize("output_dir", [False, True])
async def test_the_video_prompt_walks_from_a_photo_to_a_saved_video_with_the_spend_first(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter, tmp_path: Any, output_dir: bool
) -> None:
    if output_dir:
        settings = settings.model_copy(update={"output_dir": tmp_path / "videos"})
    async with connect(settings, mode, clock) as client:
        assert client.server_capabilities is not None
        assert client.server_capabilities.prompts is not None, "prompts are advertised, and there is one"
        (listed,) = (await client.list_prompts()).prompts
        arguments = {argument.name: argument.required for argument in listed.arguments or []}
        prompt = await client.get_prompt(listed.name, {"image": IMAGE, "motion": "the cat blinks"})
        bare = await client.get_prompt(listed.name, {"image": "~/Pictures/cat.jpg"})
    assert listed.name == "video_from_photo"
    assert arguments == {"image": True, "motion": False}
    (message,) = prompt.messages
    assert message.role == "user"
    text = message.content.text  # type: ignore[union-attr]
    assert IMAGE in text.split(), "the photo stands alone"
    assert "the cat blinks" in text
    cost = text.index(f"{catalog.VIDEO_CREDITS} credits")
    assert cost < text.index("generate_video once"), "the spend comes before the paid call"
    assert "get_video_result" in text
    assert ("local_path" in text) is output_dir
    assert ("result_url" in text) is not output_dir
    assert "~/Pictures/cat.jpg" in bare.messages[0].content.text  # type: ignore[union-attr]
    assert not upstream.calls, "a prompt spends nothing"
