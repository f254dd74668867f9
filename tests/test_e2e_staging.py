"""Local files and data URIs through the installed server in sandbox mode: staged on the sandbox, no bucket."""

from __future__ import annotations

import base64
import io
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters

from cutout_mcp.sandbox import Sandbox, SandboxConfig, run_sandbox

from .memstore import jpeg
from .test_e2e import CUTOUT_MCP, free_port, server_env, text_of, wait_for_port

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

RED = (220, 20, 20)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(queue_seconds=0.3, queue_depth=1, job_seconds=1.0, video_format="gif")
    async with run_sandbox(config) as running:
        yield running


@pytest.fixture
def pictures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CUTOUT_STATE_DIR", str(tmp_path / "state"))
    folder = tmp_path / "Pictures"
    folder.mkdir()
    (folder / "red cat.jpg").write_bytes(jpeg(640, 480, RED))
    return folder


@asynccontextmanager
async def stdio(sandbox: Sandbox, pictures: Path) -> AsyncIterator[Client]:
    env = {**server_env(sandbox), "CUTOUT_INPUT_DIRS": str(pictures)}
    async with Client(StdioServerParameters(command=CUTOUT_MCP, env=env)) as client:
        yield client


def reddish(jpeg_bytes: bytes) -> bool:
    from PIL import Image

    with Image.open(io.BytesIO(jpeg_bytes)) as image:
        red, green, blue = image.convert("RGB").resize((1, 1)).getpixel((0, 0))
    return bool(red > 120 and red > 2 * green and red > 2 * blue)


async def test_a_video_from_a_local_file_is_made_from_its_bytes_and_the_copy_is_gone_after(
    sandbox: Sandbox, pictures: Path
) -> None:
    path = str(pictures / "red cat.jpg")
    async with stdio(sandbox, pictures) as client:
        started = await client.call_tool("generate_video", {"image_url": path, "wait_seconds": 0})
        assert started.is_error is False, text_of(started)
        assert started.structured_content is not None
        job_id = started.structured_content["id"]
        (job,) = sandbox.state.jobs.values()
        assert job.image_url.startswith(sandbox.base_url + "/staging/staged/")
        assert "signature=" in job.image_url
        assert sandbox.state.staged, "staged on the sandbox while the job runs"
        done = await client.call_tool("get_video_result", {"id": job_id, "wait_seconds": 30})
    assert done.structured_content is not None
    assert done.structured_content["status"] == "succeeded", text_of(done)
    assert done.structured_content["image_url"] == path
    assert "signature=" not in text_of(done)
    async with httpx.AsyncClient() as http:
        cover = await http.get(done.structured_content["cover_url"])
    assert reddish(cover.content), "the sandbox fetched the staged bytes through their URL"
    assert sandbox.state.staged == {}, "deleted once the job is finished"
    assert sandbox.state.charges == 1


async def test_an_edit_of_a_data_uri_works_without_a_bucket(sandbox: Sandbox, pictures: Path) -> None:
    inline = "data:image/jpeg;base64," + base64.b64encode(jpeg(640, 480, RED)).decode()
    async with stdio(sandbox, pictures) as client:
        edit = await client.call_tool("edit_image", {"prompt": "x", "image_urls": [inline], "aspect_ratio": "1:1"})
    assert edit.is_error is False, text_of(edit)
    assert edit.structured_content is not None
    assert edit.structured_content["reference_image_urls"][0].startswith("data: (")
    assert sandbox.state.staged == {}


async def test_a_remote_server_refuses_a_local_path_and_points_at_get_upload_url(
    sandbox: Sandbox, pictures: Path
) -> None:
    port = free_port()
    env = {**os.environ, **server_env(sandbox)}
    env.pop("CUTOUT_INPUT_DIRS", None)
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped in finally
        [CUTOUT_MCP, "--transport", "streamable-http", "--port", str(port)], env=env, stdout=subprocess.DEVNULL
    )
    try:
        await wait_for_port(port, process)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            result: Any = await client.call_tool("generate_video", {"image_url": str(pictures / "red cat.jpg")})
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert result.is_error is True
    assert "get_upload_url" in text_of(result)
    assert sandbox.state.charges == 0
    assert sandbox.state.staged == {}


async def test_a_remote_user_uploads_through_get_upload_url_and_makes_a_video_in_sandbox_mode(
    sandbox: Sandbox, pictures: Path
) -> None:
    port = free_port()
    env = {**os.environ, **server_env(sandbox)}
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped in finally
        [CUTOUT_MCP, "--transport", "streamable-http", "--port", str(port)], env=env, stdout=subprocess.DEVNULL
    )
    try:
        await wait_for_port(port, process)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            ticket: Any = await client.call_tool(
                "get_upload_url", {"filename": "red cat.jpg", "content_type": "image/jpeg"}
            )
            assert ticket.is_error is False, text_of(ticket)
            upload = ticket.structured_content
            async with httpx.AsyncClient() as http:
                put = await http.put(
                    upload["upload_url"],
                    content=(pictures / "red cat.jpg").read_bytes(),
                    headers={"Content-Type": "image/jpeg"},
                )
            assert put.status_code == 200
            started: Any = await client.call_tool(
                "generate_video", {"image_url": upload["image_url"], "wait_seconds": 0}
            )
            assert started.is_error is False, text_of(started)
            done: Any = await client.call_tool(
                "get_video_result", {"id": started.structured_content["id"], "wait_seconds": 30}
            )
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert done.structured_content["status"] == "succeeded", text_of(done)
    assert done.structured_content["image_url"] == upload["image_url"]
    async with httpx.AsyncClient() as http:
        cover = await http.get(done.structured_content["cover_url"])
    assert reddish(cover.content), "the video was made from the uploaded bytes"
    assert sandbox.state.staged == {}, "the upload and its staged copy are both gone once the job is done"
    assert sandbox.state.charges == 1
