"""The installed `cutout-mcp` over stdio against the sandbox: a person's spend confirmation, and the
contact sheet of every finished video (the sandbox's MP4 with PyAV, its GIF without)."""

from __future__ import annotations

import base64
import importlib.util
import io
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client import ClientRequestContext
from mcp_types import CallToolResult, ElicitRequestParams, ElicitResult
from PIL import Image

from cutout_mcp.sandbox import Sandbox, SandboxConfig, run_sandbox

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CUTOUT_MCP = str(Path(sys.executable).with_name("cutout-mcp"))
HAS_AV = importlib.util.find_spec("av") is not None


@asynccontextmanager
async def sandbox_serving(video_format: str) -> AsyncIterator[Sandbox]:
    config = SandboxConfig(queue_seconds=0.2, queue_depth=1, job_seconds=0.8, video_format=video_format)  # type: ignore[arg-type]
    async with run_sandbox(config) as running:
        yield running


@asynccontextmanager
async def spawn(
    sandbox: Sandbox, mode: str, state: Path, env: dict[str, str] | None = None, **client_options: Any
) -> AsyncIterator[Client]:
    variables = {
        "CUTOUT_API_KEY": sandbox.api_key,
        "CUTOUT_BASE_URL": sandbox.base_url,
        "CUTOUT_SANDBOX": "1",  # declared: its loopback origin is trusted for images only then
        "CUTOUT_LOG_LEVEL": "WARNING",
        "CUTOUT_STATE_DIR": str(state),
        **(env or {}),
    }
    params = StdioServerParameters(command=CUTOUT_MCP, env=variables)
    async with Client(params, mode=mode, **client_options) as client:
        yield client


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


@pytest.mark.parametrize(
    ("video_format", "mode"),
    [
        pytest.param(
            "mp4", "auto", marks=pytest.mark.skipif(not HAS_AV, reason="PyAV missing: pip install -e '.[test]'")
        ),
        ("gif", "legacy"),
    ],
)
async def test_a_finished_video_arrives_with_a_contact_sheet(video_format: str, mode: str, tmp_path: Path) -> None:
    async with sandbox_serving(video_format) as sandbox, spawn(sandbox, mode, tmp_path) as client:
        result = await client.call_tool(
            "generate_video", {"image_url": sandbox.url("/samples/photo.jpg"), "wait_seconds": 30}
        )
    assert result.is_error is False, text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["status"] == "succeeded"
    assert result.structured_content["result_url"].endswith(f".{video_format}")
    (image,) = [block for block in result.content if block.type == "image"]
    assert image.mime_type == "image/jpeg"
    jpeg = base64.b64decode(image.data)
    assert len(jpeg) <= 200 * 1024
    with Image.open(io.BytesIO(jpeg)) as sheet:
        assert sheet.format == "JPEG"
        assert max(sheet.size) == 512  # four 480×360 frames, two by two
        assert sheet.size == (512, 384)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_person_confirms_the_spend_and_a_client_that_cannot_ask_spends_nothing(
    mode: str, tmp_path: Path
) -> None:
    questions: list[str] = []

    async def person(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        questions.append(getattr(params, "message", ""))
        return ElicitResult(action="accept", content={"confirm": True})

    arguments = {"prompt": "warmer light", "image_urls": [], "model": "gemini-3-pro-image-preview"}
    async with sandbox_serving("gif") as sandbox:
        arguments["image_urls"] = [sandbox.url("/samples/photo.jpg")]
        confirm = {"CUTOUT_CONFIRM_SPEND": "above:4", "CUTOUT_PREVIEW": "off"}
        async with spawn(sandbox, mode, tmp_path, confirm) as client:  # a client without elicitation
            refused = await client.call_tool("edit_image", arguments)
        assert refused.is_error is True
        assert "cannot show the confirmation question" in text_of(refused)
        assert "CUTOUT_CONFIRM_SPEND" in text_of(refused)
        assert sandbox.state.charges == 0

        async with spawn(sandbox, mode, tmp_path, confirm, elicitation_callback=person) as client:
            cheap = await client.call_tool("edit_image", {**arguments, "model": "gpt-image-1"})
            paid = await client.call_tool("edit_image", arguments)
        assert cheap.is_error is False, text_of(cheap)
        assert paid.is_error is False, text_of(paid)
        assert paid.structured_content is not None
        assert paid.structured_content["credits_charged"] == 15
        assert len(questions) == 1, "only the call above 4 credits was asked about"
        assert "gemini-3-pro-image-preview" in questions[0]
        assert "spend 15 cutout.pro credits" in questions[0]
        assert sandbox.state.charges == 2
