"""generate_video as an MCP task (io.modelcontextprotocol/tasks), in both protocol modes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
import respx
from mcp import Client
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult

from cutout_mcp.config import Settings
from cutout_mcp.server import build_server
from cutout_mcp.server.tasks import EXTENSION_ID, TASK_MAX_WAIT_SECONDS
from cutout_mcp.server.tasks.wire import CreateTaskResult

from .conftest import FAST_RETRY, FakeClock, envelope, video_job
from .tasks_client import TaskEnded, TasksClient, cancel_task, get_task

pytestmark = pytest.mark.anyio

GENERATE = "/api/v2/imageToVideo/generate"
RESULT = "/api/v2/imageToVideo/getResult"
JOB_ID = 700842286474565
ARGS = {"image_url": "https://img.example.com/cat.jpg", "prompt": "the cat blinks"}


@asynccontextmanager
async def tasks_client(settings: Settings, mode: str, clock: FakeClock) -> AsyncIterator[tuple[Client, TasksClient]]:
    # The client's waits must not move the server's clock: with the ledger's threads in play, a client
    # spinning on a shared fake clock would run the server past its wait bound.
    extension = TasksClient(sleep=FakeClock().sleep)
    server = build_server(settings, clock=clock, retry=FAST_RETRY)
    async with Client(server, mode=mode, extensions=[extension]) as client:
        yield client, extension


def rendering(*percentages: float) -> list[httpx.Response]:
    return [httpx.Response(200, json=envelope(video_job(percentage=p))) for p in percentages]


def done() -> httpx.Response:
    return httpx.Response(200, json=envelope(video_job(status=1)))


async def test_a_declaring_client_gets_a_task_and_polls_it_to_the_video(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    # The job takes far longer than a client's call limit: the task keeps waiting for it.
    upstream.get(RESULT).mock(side_effect=[*rendering(*range(0, 100, 2)), done()])
    async with tasks_client(settings, mode, clock) as (client, extension):
        start = clock.now()
        result = await client.call_tool("generate_video", ARGS)
    assert result.is_error is False
    data = result.structured_content
    assert data is not None
    assert data["credits_charged"] == 5
    if mode == "legacy":  # tasks are not defined on the 2025-11-25 wire: the plain bounded call
        assert extension.polls == []
        assert clock.now() - start <= settings.wait_seconds
        assert data["status"] == "processing"
        assert f"id={JOB_ID}" in data["next_step"]
    else:
        assert data["status"] == "succeeded"
        assert data["result_url"] == "https://cdn.example.com/v.mp4"
        assert extension.polls[-1].status == "completed"
        assert clock.now() - start > settings.wait_seconds
        working = [p.status_message or "" for p in extension.polls if p.status == "working"]
        submitted = working.index(next(m for m in working if str(JOB_ID) in m))
        assert all(str(JOB_ID) in message for message in working[submitted:])  # once paid for, never lost


async def test_the_task_handle_is_returned_at_once_and_names_the_job_while_it_runs(
    settings: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).mock(side_effect=[*rendering(10, 50), done()])
    async with tasks_client(settings, "auto", clock) as (client, _):
        assert client.server_capabilities.extensions[EXTENSION_ID] == {}  # beside MCP Apps (io.modelcontextprotocol/ui)
        handle = await client.session.call_tool("generate_video", ARGS, allow_claimed=True)
        assert isinstance(handle, CreateTaskResult)
        assert handle.status == "working"
        assert handle.ttl_ms is not None
        assert handle.ttl_ms >= TASK_MAX_WAIT_SECONDS * 1000
        assert handle.poll_interval_ms is not None
        assert handle.poll_interval_ms > 0
        assert len(handle.task_id) >= len("task_") + 32  # 24 random bytes, url-safe: 192 bits
        task = await get_task(client.session, handle.task_id)
        while task.status == "working":
            assert task.status_message
            await anyio.lowlevel.checkpoint()
            task = await get_task(client.session, handle.task_id)
        assert task.status == "completed"
        assert task.result is not None
        final = CallToolResult.model_validate(task.result)
        assert final.structured_content is not None
        assert final.structured_content["id"] == JOB_ID


async def test_a_client_that_does_not_declare_tasks_gets_the_bounded_wait(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).mock(side_effect=rendering(*range(0, 100, 1)))
    server = build_server(settings, clock=clock, retry=FAST_RETRY)
    async with Client(server, mode=mode) as client:
        raw = await client.session.call_tool("generate_video", ARGS, allow_claimed=True)
    assert isinstance(raw, CallToolResult)
    assert raw.structured_content is not None
    assert raw.structured_content["status"] == "processing"
    assert f"id={JOB_ID}" in raw.structured_content["next_step"]


async def test_a_failed_job_completes_the_task_with_the_tool_error(
    settings: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(json=envelope(video_job(status=2)))
    async with tasks_client(settings, "auto", clock) as (client, _):
        result = await client.call_tool("generate_video", ARGS)
    assert result.is_error is True
    assert f"Video job {JOB_ID} failed" in result.content[0].text  # type: ignore[union-attr]


class BlockingClock(FakeClock):
    """Time that stands still once the task first sleeps, so a test can act at that moment."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = anyio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.set()
        await anyio.sleep_forever()


async def test_cancel_stops_polling_and_names_the_job_to_resume(settings: Settings, upstream: respx.MockRouter) -> None:
    clock = BlockingClock()
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    polls = upstream.get(RESULT).respond(json=envelope(video_job(percentage=30)))
    server = build_server(settings, clock=clock, retry=FAST_RETRY)
    async with Client(server, extensions=[TasksClient(sleep=FakeClock().sleep)]) as client:
        handle = await client.session.call_tool("generate_video", ARGS, allow_claimed=True)
        assert isinstance(handle, CreateTaskResult)
        await clock.sleeping.wait()  # the task has polled cutout.pro and waits for the next poll
        reads = polls.call_count
        assert reads == 1
        await cancel_task(client.session, handle.task_id)
        task = await get_task(client.session, handle.task_id)
        for _ in range(100):
            if task.status != "working":
                break
            await anyio.lowlevel.checkpoint()
            task = await get_task(client.session, handle.task_id)
        assert task.status == "cancelled"
        assert task.status_message is not None
        assert "cannot be cancelled at cutout.pro" in task.status_message
        assert f"id={JOB_ID}" in task.status_message
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        assert polls.call_count == reads
        with pytest.raises(TaskEnded):
            await TasksClient(sleep=FakeClock().sleep)._resolve(handle, _claim_context(client))


def _claim_context(client: Client) -> Any:
    from mcp.client.extension import ClaimContext

    return ClaimContext(session=client.session, tool_name="generate_video", read_timeout_seconds=None)


async def test_an_unknown_task_id_is_invalid_params(settings: Settings, clock: FakeClock) -> None:
    async with tasks_client(settings, "auto", clock) as (client, _):
        with pytest.raises(MCPError) as caught:
            await get_task(client.session, "task_" + "A" * 32)
        assert caught.value.error.code == -32602
        with pytest.raises(MCPError) as caught:
            await cancel_task(client.session, "task_nope")
        assert caught.value.error.code == -32602


async def test_a_client_that_did_not_declare_tasks_may_not_call_tasks_get(settings: Settings, clock: FakeClock) -> None:
    async with Client(build_server(settings, clock=clock)) as client:
        with pytest.raises(MCPError) as caught:
            await get_task(client.session, "task_x")
    assert caught.value.error.code == -32021


def _as(subject: str) -> Any:
    token = AccessToken(token=f"{subject}-token", client_id="c", scopes=[], subject=subject, claims={"iss": "i"})
    return auth_context_var.set(AuthenticatedUser(token))


async def test_another_callers_task_is_not_found(
    settings: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).mock(side_effect=[*rendering(10), done()])
    async with tasks_client(settings, "auto", clock) as (client, _):
        reset = _as("alice")
        try:
            handle = await client.session.call_tool("generate_video", ARGS, allow_claimed=True)
            assert isinstance(handle, CreateTaskResult)
            assert (await get_task(client.session, handle.task_id)).task_id == handle.task_id
        finally:
            auth_context_var.reset(reset)
        reset = _as("bob")
        try:
            with pytest.raises(MCPError) as caught:
                await get_task(client.session, handle.task_id)
            assert caught.value.error.code == -32602
            assert caught.value.error.message == "Failed to retrieve task: Task not found"
            with pytest.raises(MCPError):
                await cancel_task(client.session, handle.task_id)
        finally:
            auth_context_var.reset(reset)
        # Without credentials (the local user) it is someone else's too.
        with pytest.raises(MCPError):
            await get_task(client.session, handle.task_id)
