"""The client half of the tasks extension, as a test would use it (and as an example for clients)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp_types import CallToolResult, EmptyResult

from cutout_mcp.server.tasks import EXTENSION_ID, TaskIdParams
from cutout_mcp.server.tasks.wire import CancelTaskRequest, CreateTaskResult, GetTaskRequest, GetTaskResult


class TaskEnded(Exception):
    """The task ended without a result (failed or cancelled)."""

    def __init__(self, task: GetTaskResult) -> None:
        super().__init__(f"task ended {task.status}: {task.status_message}")
        self.task = task


async def get_task(session: Any, task_id: str) -> GetTaskResult:
    return await session.send_request(GetTaskRequest(params=TaskIdParams(task_id=task_id)), GetTaskResult)  # type: ignore[no-any-return]


async def cancel_task(session: Any, task_id: str) -> None:
    await session.send_request(CancelTaskRequest(params=TaskIdParams(task_id=task_id)), EmptyResult)


class TasksClient(ClientExtension):
    """Declares the extension and turns a task handle into the final tool result by polling tasks/get."""

    identifier = EXTENSION_ID

    def __init__(self, sleep: Callable[[float], Awaitable[None]]) -> None:
        self.sleep = sleep
        self.polls: list[GetTaskResult] = []

    def claims(self) -> Sequence[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=self._resolve)]

    async def _resolve(self, handle: CreateTaskResult, ctx: ClaimContext) -> CallToolResult:
        interval = handle.poll_interval_ms or 1000
        while True:
            await self.sleep(interval / 1000)
            task = await get_task(ctx.session, handle.task_id)
            self.polls.append(task)
            interval = task.poll_interval_ms or interval
            if task.status == "completed":
                return CallToolResult.model_validate(task.result)
            if task.status in ("failed", "cancelled"):
                raise TaskEnded(task)
