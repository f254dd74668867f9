"""The installed `cutout-mcp` process against the sandbox, over every transport.

The sandbox runs in the test process (so tests can read its charge counter
and inject faults); the server is the real console script, spawned with
CUTOUT_BASE_URL pointing at the sandbox, and driven by the official client.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client

from cutout_mcp.sandbox import Sandbox, SandboxConfig, run_sandbox

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CUTOUT_MCP = str(Path(sys.executable).with_name("cutout-mcp"))
GENERATE = "/api/v2/imageToVideo/generate"
RESULT = "/api/v2/imageToVideo/getResult"
EDIT = "/api/v1/image/edit"
TRANSPORTS = ["stdio", "sse", "streamable-http"]
MODES = ["auto", "legacy"]


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(queue_seconds=0.5, queue_depth=1, job_seconds=1.5, video_format="gif")
    async with run_sandbox(config) as running:
        yield running


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each spawned server keeps its ledger in the test's own folder, never in the user's home."""
    folder = tmp_path / "state"
    monkeypatch.setenv("CUTOUT_STATE_DIR", str(folder))
    return folder


def server_env(sandbox: Sandbox) -> dict[str, str]:
    return {
        "CUTOUT_SANDBOX": "1",  # declared: the sandbox's own loopback image URLs are then trusted
        "CUTOUT_API_KEY": sandbox.api_key,
        "CUTOUT_BASE_URL": sandbox.base_url,
        "CUTOUT_LOG_LEVEL": "WARNING",
        "CUTOUT_STATE_DIR": os.environ["CUTOUT_STATE_DIR"],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    with anyio.fail_after(30):
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"cutout-mcp exited with {process.returncode}")
            try:
                stream = await anyio.connect_tcp("127.0.0.1", port)
            except OSError:
                await anyio.sleep(0.05)
                continue
            await stream.aclose()
            return


@asynccontextmanager
async def connect(transport: str, mode: str, sandbox: Sandbox, **client_options: Any) -> AsyncIterator[Client]:
    """Spawn the installed server on `transport` and connect the official client to it."""
    env = server_env(sandbox)
    if transport == "stdio":
        params = StdioServerParameters(command=CUTOUT_MCP, env=env)
        async with Client(params, mode=mode, **client_options) as client:
            yield client
        return
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped in finally
        [CUTOUT_MCP, "--transport", transport, "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
    )
    try:
        await wait_for_port(port, process)
        target: Any = (
            f"http://127.0.0.1:{port}/mcp"
            if transport == "streamable-http"
            else sse_client(f"http://127.0.0.1:{port}/sse")
        )
        async with Client(target, mode=mode, **client_options) as client:
            yield client
    finally:
        process.terminate()
        process.wait(timeout=10)


def text_of(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_full_session(transport: str, mode: str, sandbox: Sandbox) -> None:
    image = sandbox.url("/samples/photo.jpg")
    async with connect(transport, mode, sandbox) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"generate_video", "get_video_result", "edit_image"} <= names

        edit = await client.call_tool(
            "edit_image", {"prompt": "warmer light", "image_urls": [image], "aspect_ratio": "1:1"}
        )
        assert edit.is_error is False, text_of(edit)
        assert edit.structured_content is not None
        assert edit.structured_content["credits_charged"] == 4
        async with httpx.AsyncClient() as http:
            picture = await http.get(edit.structured_content["image_url"])
        assert picture.headers["content-type"].startswith("image/")

        progress: list[float] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        started = await client.call_tool(
            "generate_video", {"image_url": image, "wait_seconds": 0}, progress_callback=on_progress
        )
        assert started.is_error is False, text_of(started)
        assert started.structured_content is not None
        job_id = started.structured_content["id"]
        assert started.structured_content["status"] in ("queued", "processing")
        assert f"id={job_id}" in started.structured_content["next_step"]

        resumed = await client.call_tool(
            "get_video_result", {"id": str(job_id), "wait_seconds": 30}, progress_callback=on_progress
        )
        assert resumed.is_error is False, text_of(resumed)
        assert resumed.structured_content is not None
        assert resumed.structured_content["status"] == "succeeded"
        assert resumed.structured_content["result_url"].startswith(sandbox.base_url)
        assert progress, "progress notifications reach the client"
        assert progress[-1] == 100

        failures = {
            "sandbox:inappropriate": "inappropriate",
            "sandbox:no-balance": "too few credits",
            "sandbox:abnormal": "server problem",
        }
        for token, words in failures.items():
            refused = await client.call_tool("generate_video", {"image_url": image, "prompt": token})
            assert refused.is_error is True
            assert words in text_of(refused)

        unknown = await client.call_tool("get_video_result", {"id": 123456})
        assert unknown.is_error is True
        assert "no job with this id" in text_of(unknown)

    assert sandbox.state.charges == 2, "one edit and one video; refused submits cost nothing"


@pytest.mark.parametrize("mode", MODES)
async def test_failed_job_reaches_the_client_with_its_id(mode: str, sandbox: Sandbox) -> None:
    async with connect("stdio", mode, sandbox) as client:
        result = await client.call_tool(
            "generate_video",
            {"image_url": sandbox.url("/samples/photo.jpg"), "prompt": "sandbox:job-fails", "wait_seconds": 30},
        )
    assert result.is_error is True
    job_ids = [job_id for job_id in sandbox.state.jobs]
    assert len(job_ids) == 1
    assert str(job_ids[0]) in text_of(result)
    assert "failed" in text_of(result)


async def test_a_video_wait_survives_5xx_bursts_and_slow_answers(sandbox: Sandbox) -> None:
    sandbox.state.faults.http_error(path=RESULT, count=2, status=503)
    sandbox.state.faults.slow(delay=0.5, path=RESULT, count=1)
    async with connect("stdio", "auto", sandbox) as client:
        result = await client.call_tool(
            "generate_video", {"image_url": sandbox.url("/samples/photo.jpg"), "wait_seconds": 30}
        )
    assert result.is_error is False, text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["status"] == "succeeded"
    assert sandbox.state.faults.fired >= 3
    assert sandbox.state.charges == 1


@pytest.mark.parametrize("kind", ["http_error", "disconnect", "malformed"])
@pytest.mark.parametrize("path", [GENERATE, EDIT])
async def test_a_paid_post_that_reached_cutout_is_never_repeated(kind: str, path: str, sandbox: Sandbox) -> None:
    getattr(sandbox.state.faults, kind)(path=path, count=1)
    image = sandbox.url("/samples/photo.jpg")
    async with connect("stdio", "auto", sandbox) as client:
        if path == GENERATE:
            result = await client.call_tool("generate_video", {"image_url": image, "wait_seconds": 0})
        else:
            result = await client.call_tool("edit_image", {"prompt": "x", "image_urls": [image]})
    assert result.is_error is True
    assert "Traceback" not in text_of(result)
    assert sandbox.state.requests[path] == 1, "the POST was sent once"
    assert sandbox.state.charges == 1, "and charged once"


def test_the_demo_saves_real_media(tmp_path: Path) -> None:
    from PIL import Image

    output_dir = tmp_path / "demo"
    result = subprocess.run(
        [CUTOUT_MCP, "demo", "--output", str(output_dir)], capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "Tools: " in output
    assert "100.0%" in output, "the progress bar reached the end"
    saved = {path.name.split("-")[0].split(".")[0]: path for path in output_dir.iterdir()}
    assert set(saved) == {"source", "edited", "video", "cover", "contact"}
    assert f"a local file: {saved['source']}" in output, "the video is made from a local file"
    with Image.open(saved["edited"]) as edited:
        assert edited.format == "JPEG"
        assert edited.width * 9 == edited.height * 16, "the demo asks for 16:9"
    with Image.open(saved["cover"]) as cover:
        assert cover.format == "JPEG"
    assert saved["video"].stat().st_size > 1000
    with Image.open(saved["contact"]) as sheet:
        assert sheet.format == "JPEG", "the contact sheet the assistant was shown is saved too"


# --- long jobs done right (ledger, no double charge, tasks) against the sandbox ----------


async def test_a_job_submitted_before_a_restart_is_listed_and_finished_after_it(sandbox: Sandbox) -> None:
    image = sandbox.url("/samples/photo.jpg")
    async with connect("stdio", "auto", sandbox) as first:
        started = await first.call_tool("generate_video", {"image_url": image, "wait_seconds": 0})
    assert started.structured_content is not None
    job_id = started.structured_content["id"]

    async with connect("stdio", "auto", sandbox) as second:
        listed = await second.call_tool("list_video_jobs", {})
        assert listed.structured_content is not None
        assert job_id in [job["id"] for job in listed.structured_content["jobs"]]
        finished = await second.call_tool("get_video_result", {"id": job_id, "wait_seconds": 30})
    assert finished.structured_content is not None
    assert finished.structured_content["status"] == "succeeded"
    assert sandbox.state.charges == 1


@pytest.mark.parametrize("transport", ["stdio", "streamable-http"])
async def test_identical_submissions_in_flight_cost_one_job(transport: str, sandbox: Sandbox) -> None:
    arguments = {"image_url": sandbox.url("/samples/photo.jpg"), "prompt": "same", "wait_seconds": 0}
    results: list[Any] = []
    async with connect(transport, "auto", sandbox) as client:

        async def submit() -> None:
            results.append(await client.call_tool("generate_video", arguments))

        async with anyio.create_task_group() as tg:
            tg.start_soon(submit)
            tg.start_soon(submit)
        again = await client.call_tool("generate_video", arguments)
        paid_again = await client.call_tool("generate_video", {**arguments, "force_new": True})
    ids = {result.structured_content["id"] for result in [*results, again]}
    assert len(ids) == 1, "every identical call got the one job"
    assert sorted(r.structured_content["credits_charged"] for r in [*results, again]) == [0, 0, 5]
    assert paid_again.structured_content["id"] not in ids
    assert sandbox.state.charges == 2, "5 credits for the three identical calls, 5 for force_new"


async def test_a_task_aware_client_gets_the_video_as_a_task_over_http(sandbox: Sandbox) -> None:
    from .tasks_client import TasksClient

    extension = TasksClient(sleep=anyio.sleep)
    async with connect("streamable-http", "auto", sandbox, extensions=[extension]) as client:
        result = await client.call_tool(
            "generate_video", {"image_url": sandbox.url("/samples/photo.jpg"), "wait_seconds": 0}
        )
    assert result.is_error is False, text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["status"] == "succeeded", "the task waited past wait_seconds=0"
    assert extension.polls, "the client polled tasks/get"
    assert sandbox.state.charges == 1


async def test_cutout_sandbox_alone_starts_a_sandbox_whose_sample_every_model_accepts() -> None:
    """What an MCP bundle's "sandbox" toggle sets: CUTOUT_SANDBOX=1 and nothing else (no key, no URL)."""
    env = {"CUTOUT_SANDBOX": "1", "CUTOUT_LOG_LEVEL": "WARNING", "CUTOUT_STATE_DIR": os.environ["CUTOUT_STATE_DIR"]}
    async with Client(StdioServerParameters(command=CUTOUT_MCP, env=env)) as client:
        info = await client.read_resource("cutout://sandbox")
        sample = json.loads(info.contents[0].text)["sample_image_url"]  # type: ignore[union-attr]
        assert sample in (client.instructions or "").split(), "the sample URL stands alone, no punctuation glued on"
        edit = await client.call_tool(
            "edit_image", {"prompt": "warmer light", "image_urls": [sample], "model": "seedream-4.0"}
        )  # the pre-flight is on: the sample meets seedream-4.0's pixel minimum
        assert edit.is_error is False, text_of(edit)
        assert [block.type for block in edit.content] == ["text", "resource_link", "image"]


async def test_a_sandbox_not_declared_is_an_upstream_like_any_other(sandbox: Sandbox) -> None:
    """Without CUTOUT_SANDBOX, a loopback CUTOUT_BASE_URL's own images are refused like any loopback URL."""
    env = {**server_env(sandbox), "CUTOUT_SANDBOX": "0"}
    image = sandbox.url("/samples/photo.jpg")
    async with Client(StdioServerParameters(command=CUTOUT_MCP, env=env)) as client:
        refused = await client.call_tool("generate_video", {"image_url": image})
    assert refused.is_error is True
    assert "loopback" in text_of(refused)
    assert sandbox.state.charges == 0
