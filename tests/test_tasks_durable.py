"""Tasks outlive the process that made them: any server on the same storage answers for them and
finishes them, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult
from pydantic import SecretStr

from cutout_mcp.config import Settings
from cutout_mcp.core.storage import TaskRow, open_storage
from cutout_mcp.server import build_server
from cutout_mcp.server.tasks.wire import CreateTaskResult

from .conftest import FAST_RETRY, FakeClock, envelope, video_job
from .tasks_client import TasksClient, cancel_task, get_task
from .test_tasks import ARGS, GENERATE, JOB_ID, RESULT, BlockingClock

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgresql"])
def shared(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return settings
    return settings.model_copy(update={"database_url": SecretStr(request.getfixturevalue("database_url"))})


@asynccontextmanager
async def server(settings: Settings, clock: FakeClock) -> AsyncIterator[Client]:
    app = build_server(settings, clock=clock, retry=FAST_RETRY)
    async with Client(app, extensions=[TasksClient(sleep=FakeClock().sleep)]) as client:
        yield client


async def finished(client: Client, task_id: str) -> Any:
    with anyio.fail_after(10):
        while True:
            task = await get_task(client.session, task_id)
            if task.status != "working":
                return task
            await anyio.lowlevel.checkpoint()


async def test_a_task_left_by_a_stopped_server_is_finished_by_the_next_one(
    shared: Settings, upstream: respx.MockRouter
) -> None:
    submits = upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    polls = upstream.get(RESULT).respond(json=envelope(video_job(percentage=30)))
    stopping = BlockingClock()  # the first server polls once, then waits until it is stopped
    async with server(shared, stopping) as first:
        handle = await first.session.call_tool("generate_video", ARGS, allow_claimed=True)
        assert isinstance(handle, CreateTaskResult)
        await stopping.sleeping.wait()
        await anyio.wait_all_tasks_blocked()  # its progress, with the job id, is written

    polls.respond(json=envelope(video_job(status=1)))
    async with server(shared, FakeClock()) as second:  # another replica, or the same server restarted
        task = await finished(second, handle.task_id)
    assert task.status == "completed", task.status_message
    result = CallToolResult.model_validate(task.result)
    assert result.structured_content is not None
    assert (result.structured_content["id"], result.structured_content["status"]) == (JOB_ID, "succeeded")
    assert result.structured_content["credits_charged"] == 5, "the result still says what the submit cost"
    assert submits.call_count == 1, "the job was watched again, never submitted again"


async def test_a_task_without_a_job_id_is_failed_as_possibly_charged_and_never_resubmitted(
    shared: Settings, upstream: respx.MockRouter
) -> None:
    submits = upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    clock = FakeClock()
    now = clock.now()
    orphan = TaskRow(  # its process died after the submit was sent, before the job id came back
        task_id="task_" + "x" * 32,
        owner="local",
        tool="generate_video",
        status="working",
        created_at=now - 60,
        updated_at=now - 60,
        expires_at=now + 3600,
        status_message="generate_video is starting.",
        lease_holder="a dead process",
        lease_expires=now - 1,
    )
    async with open_storage(shared, clock) as storage:
        await storage.create_task(orphan)
    async with server(shared, clock) as client:
        task = await finished(client, orphan.task_id)
    assert task.status == "failed"
    assert task.status_message is not None
    assert "may have been submitted and charged" in task.status_message
    assert "not submitted again" in task.status_message
    assert task.error is not None
    assert submits.call_count == 0


async def test_any_server_on_the_storage_answers_for_a_task_but_only_to_its_owner(
    shared: Settings, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(json=envelope(video_job(percentage=30)))
    running = BlockingClock()
    async with server(shared, running) as first:
        handle = await first.session.call_tool("generate_video", ARGS, allow_claimed=True)
        assert isinstance(handle, CreateTaskResult)
        await running.sleeping.wait()
        await anyio.wait_all_tasks_blocked()
        async with server(shared, FakeClock()) as other:
            seen = await get_task(other.session, handle.task_id)
            assert seen.status == "working"
            assert seen.status_message is not None
            assert str(JOB_ID) in seen.status_message, "the other server reads the job id the first one wrote"
        stranger = build_server(shared, clock=FakeClock(), retry=FAST_RETRY, principal=lambda: "mallory")
        async with Client(stranger, extensions=[TasksClient(sleep=FakeClock().sleep)]) as theirs:
            with pytest.raises(MCPError) as caught:
                await get_task(theirs.session, handle.task_id)
            assert caught.value.error.message == "Failed to retrieve task: Task not found"


async def test_a_ledger_fault_when_creating_a_task_falls_back_to_the_ordinary_call(
    settings: Settings, upstream: respx.MockRouter
) -> None:
    import sqlite3

    from cutout_mcp.core.storage import FILE_NAME

    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).mock(side_effect=[httpx.Response(200, json=envelope(video_job(percentage=30)))] * 100)
    async with server(settings, FakeClock()) as client:
        with sqlite3.connect(settings.state_dir / FILE_NAME) as db:
            db.execute("CREATE TRIGGER no_tasks BEFORE INSERT ON tasks BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        raw = await client.session.call_tool("generate_video", ARGS, allow_claimed=True)
    assert isinstance(raw, CallToolResult), "no task handle that no other server could find"
    assert raw.structured_content is not None
    assert raw.structured_content["id"] == JOB_ID


async def test_a_task_cancelled_through_another_server_is_cancelled_everywhere(
    shared: Settings, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(json=envelope(video_job(percentage=30)))
    running = BlockingClock()
    async with server(shared, running) as first:
        handle = await first.session.call_tool("generate_video", ARGS, allow_claimed=True)
        assert isinstance(handle, CreateTaskResult)
        await running.sleeping.wait()
        await anyio.wait_all_tasks_blocked()
        async with server(shared, FakeClock()) as other:
            await cancel_task(other.session, handle.task_id)
            seen_there = await get_task(other.session, handle.task_id)
        seen_here = await get_task(first.session, handle.task_id)
    for task in (seen_there, seen_here):
        assert task.status == "cancelled"
        assert task.status_message is not None
        assert "cannot be cancelled at cutout.pro" in task.status_message
        assert f"id={JOB_ID}" in task.status_message, "the job to resume with is named"
