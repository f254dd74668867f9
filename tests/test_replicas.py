"""Several `cutout-mcp` replicas as one server: real processes, one real PostgreSQL, one sandbox.

The client rotates its requests across the replicas the way a non-sticky load balancer would (each
HTTP request to the next replica), which 2026-07-28 clients allow: every call is its own request.
Two SQLite processes on one state folder get the same double-submit test.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from cutout_mcp.sandbox import Sandbox, SandboxConfig, run_sandbox
from cutout_mcp.server.tasks.wire import CreateTaskResult

from .tasks_client import TasksClient, get_task
from .test_e2e import CUTOUT_MCP, GENERATE, free_port, text_of, wait_for_port

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

TOKENS = {"alice": "alice-token-0123456789abcdef", "bob": "bob-token-0123456789abcdef0"}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(queue_seconds=0.5, queue_depth=1, job_seconds=3.0, video_format="gif")
    async with run_sandbox(config) as running:
        yield running


class Replicas:
    """N `cutout-mcp --transport streamable-http` processes sharing one state."""

    def __init__(self, sandbox: Sandbox, count: int, *flags: str, **env: str) -> None:
        self.ports = [free_port() for _ in range(count)]
        shared = {
            "CUTOUT_API_KEY": sandbox.api_key,
            "CUTOUT_BASE_URL": sandbox.base_url,
            "CUTOUT_SANDBOX": "1",  # a standalone sandbox: declared, so its image URLs pass pre-flight
            "CUTOUT_LOG_LEVEL": "WARNING",
            "CUTOUT_MCP_TOKEN": ",".join(f"{name}:{token}" for name, token in TOKENS.items()),
            "CUTOUT_TASK_LEASE_SECONDS": "2",
            **env,
        }
        self.processes = [
            subprocess.Popen(
                [CUTOUT_MCP, "--transport", "streamable-http", "--port", str(port), *flags],
                env={**os.environ, **shared},
                stdout=subprocess.DEVNULL,
            )
            for port in self.ports
        ]

    async def started(self) -> Replicas:
        for port, process in zip(self.ports, self.processes, strict=True):
            await wait_for_port(port, process)
        return self

    def kill(self, index: int) -> None:
        os.kill(self.processes[index].pid, signal.SIGKILL)
        self.processes[index].wait()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@asynccontextmanager
async def replicas(sandbox: Sandbox, count: int, *flags: str, **env: str) -> AsyncIterator[Replicas]:
    group = Replicas(sandbox, count, *flags, **env)
    try:
        yield await group.started()
    finally:
        group.stop()


class RoundRobin(httpx2.AsyncBaseTransport):
    """Sends each HTTP request to the next replica: a load balancer without affinity."""

    def __init__(self, ports: list[int]) -> None:
        self._next: Iterator[int] = itertools.cycle(ports)
        self._inner = httpx2.AsyncHTTPTransport()
        self.sent: list[int] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = next(self._next)
        self.sent.append(port)
        request.url = request.url.copy_with(port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@asynccontextmanager
async def client(ports: list[int], user: str = "alice", **options: Any) -> AsyncIterator[Client]:
    """The official client, as `user`, its requests spread over `ports` in turn."""
    headers = {"Authorization": f"Bearer {TOKENS[user]}"}
    timeout = httpx2.Timeout(30, read=300)
    async with httpx2.AsyncClient(transport=RoundRobin(ports), headers=headers, timeout=timeout) as http:
        url = f"http://127.0.0.1:{ports[0]}/mcp"
        async with Client(streamable_http_client(url, http_client=http), **options) as connected:
            yield connected


async def submit_together(session: Client, calls: list[dict[str, Any]]) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    async def one(index: int) -> None:
        results[index] = await session.call_tool("generate_video", calls[index])

    async with anyio.create_task_group() as tg:
        for index in range(len(calls)):
            tg.start_soon(one, index)
    return results


async def test_identical_submits_across_replicas_pay_once_and_jobs_are_listed_for_their_owner_only(
    sandbox: Sandbox, database_url: str
) -> None:
    image = sandbox.url("/samples/photo.jpg")
    same = {"image_url": image, "prompt": "same", "wait_seconds": 0}
    with anyio.fail_after(90):
        async with replicas(sandbox, 3, CUTOUT_DATABASE_URL=database_url) as group:
            async with client(group.ports) as alice:
                results = await submit_together(alice, [same] * 6)
                assert all(r.is_error is False for r in results), [text_of(r) for r in results]
                ids = {r.structured_content["id"] for r in results}
                assert len(ids) == 1, "every identical call got the one job"
                assert sorted(r.structured_content["credits_charged"] for r in results) == [0, 0, 0, 0, 0, 5]
                (job_id,) = ids
                for _ in group.ports:  # one listing per replica
                    listed = (await alice.call_tool("list_video_jobs", {})).structured_content
                    assert [job["id"] for job in listed["jobs"]] == [job_id]
                    assert listed["credits"]["spent"] == 5
            async with client(group.ports, "bob") as bob:
                for _ in group.ports:
                    assert (await bob.call_tool("list_video_jobs", {})).structured_content["jobs"] == []
                    refused = await bob.call_tool("get_video_result", {"id": job_id})
                    assert refused.is_error is True
    assert sandbox.state.requests[GENERATE] == 1
    assert sandbox.state.charges == 1


async def test_a_budget_is_held_exactly_across_replicas(sandbox: Sandbox, database_url: str) -> None:
    image = sandbox.url("/samples/photo.jpg")
    calls = [{"image_url": image, "prompt": f"video {n}", "wait_seconds": 0} for n in range(7)]
    with anyio.fail_after(90):
        async with (
            replicas(sandbox, 3, CUTOUT_DATABASE_URL=database_url, CUTOUT_CREDIT_BUDGET="17") as group,
            client(group.ports) as alice,
        ):
            results = await submit_together(alice, calls)
            credits = (await alice.call_tool("list_video_jobs", {})).structured_content["credits"]
    paid = [r for r in results if not r.is_error]
    refused = [r for r in results if r.is_error]
    assert len(paid) == 3, "three videos of 5 credits fit in 17"
    assert all("CUTOUT_CREDIT_BUDGET=17" in text_of(r) for r in refused)
    assert (credits["spent_total"], credits["remaining"]) == (15, 2)
    assert sandbox.state.charges == 3


async def test_a_task_made_on_one_replica_is_read_and_finished_on_the_others(
    sandbox: Sandbox, database_url: str
) -> None:
    with anyio.fail_after(90):
        async with (
            replicas(sandbox, 3, CUTOUT_DATABASE_URL=database_url) as group,
            client(group.ports, extensions=[TasksClient(sleep=anyio.sleep)]) as alice,
        ):
            handle = await alice.session.call_tool(
                "generate_video", {"image_url": sandbox.url("/samples/photo.jpg")}, allow_claimed=True
            )
            assert isinstance(handle, CreateTaskResult)
            # each request goes to the next replica: all three answer for the task, while it runs
            seen = [await get_task(alice.session, handle.task_id) for _ in group.ports]
            assert {task.task_id for task in seen} == {handle.task_id}
            task = seen[-1]
            while task.status == "working":
                await anyio.sleep(0.2)
                task = await get_task(alice.session, handle.task_id)
            async with client(group.ports, "bob", extensions=[TasksClient(sleep=anyio.sleep)]) as bob:
                for _ in group.ports:  # and none of them to anyone else
                    with pytest.raises(MCPError, match="Task not found"):
                        await get_task(bob.session, handle.task_id)
    assert task.status == "completed", task.status_message
    assert task.result is not None
    assert task.result["structuredContent"]["status"] == "succeeded"
    assert sandbox.state.charges == 1


async def test_a_task_survives_kill_9_of_its_replica_with_one_submit(sandbox: Sandbox, database_url: str) -> None:
    with anyio.fail_after(90):
        async with replicas(sandbox, 2, CUTOUT_DATABASE_URL=database_url) as group:
            async with client(group.ports[:1], extensions=[TasksClient(sleep=anyio.sleep)]) as first:
                handle = await first.session.call_tool(
                    "generate_video", {"image_url": sandbox.url("/samples/photo.jpg")}, allow_claimed=True
                )
                assert isinstance(handle, CreateTaskResult)
                task = await get_task(first.session, handle.task_id)
                while "Video job" not in (task.status_message or ""):  # paid; the job id is written
                    await anyio.sleep(0.05)
                    task = await get_task(first.session, handle.task_id)
                group.kill(0)  # the replica running the task dies mid-job
            async with client(group.ports[1:], extensions=[TasksClient(sleep=anyio.sleep)]) as second:
                task = await get_task(second.session, handle.task_id)
                while task.status == "working":
                    await anyio.sleep(0.2)
                    task = await get_task(second.session, handle.task_id)
    assert task.status == "completed", task.status_message
    assert task.result is not None
    assert task.result["structuredContent"]["status"] == "succeeded"
    assert sandbox.state.requests[GENERATE] == 1, "adopted and watched, never submitted again"
    assert sandbox.state.charges == 1


async def test_two_sqlite_processes_on_one_state_folder_submit_identical_calls_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    same = {"image_url": sandbox.url("/samples/photo.jpg"), "prompt": "same", "wait_seconds": 0}
    with anyio.fail_after(90):
        async with (
            replicas(sandbox, 2, CUTOUT_STATE_DIR=str(tmp_path / "state")) as group,
            client(group.ports) as alice,
        ):
            results = await submit_together(alice, [same] * 6)
    assert len({r.structured_content["id"] for r in results}) == 1
    assert sorted(r.structured_content["credits_charged"] for r in results) == [0, 0, 0, 0, 0, 5]
    assert sandbox.state.requests[GENERATE] == 1


async def test_stateless_replicas_serve_a_2025_11_25_client_without_affinity(
    sandbox: Sandbox, database_url: str
) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    with anyio.fail_after(90):
        async with (
            replicas(sandbox, 2, "--stateless", CUTOUT_DATABASE_URL=database_url) as group,
            client(group.ports, mode="legacy") as legacy,
        ):
            started = await legacy.call_tool(
                "generate_video", {"image_url": sandbox.url("/samples/photo.jpg"), "wait_seconds": 0}
            )
            assert started.is_error is False, text_of(started)
            job_id = started.structured_content["id"]
            finished = await legacy.call_tool(
                "get_video_result", {"id": job_id, "wait_seconds": 30}, progress_callback=on_progress
            )
    assert finished.structured_content["status"] == "succeeded"
    assert progress, "progress still arrives on the call's own response stream"
    assert progress[-1] == 100
